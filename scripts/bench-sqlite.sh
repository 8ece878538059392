#!/usr/bin/env bash
# fillguard's SQLite store at scale: examples/sqlite_scale builds a real database file with a
# long history (1,000,000 orders by default, with the signals, trades, events and alerts they
# imply, written by the store's own functions) and 50 open trades, then prints, without and
# with the indexes of the latest migration, the idempotency guard's time (p50/p99/max over
# 10,000 calls), start-up reconciliation's database part, the loop's per-turn reads,
# `status --json`, the events' retention, and the database size per 1,000 trades, each against
# its goal (PASS/MISS). Not part of the test command: building the history takes minutes.
#
#   scripts/bench-sqlite.sh                                # the full measurement
#   SQLITE_SCALE_ORDERS=100000 scripts/bench-sqlite.sh     # a quick look
#
# Settings (environment):
#   SQLITE_SCALE_ORDERS  historical orders (default 1000000)
#   SQLITE_SCALE_OPEN    open trades (default 50)
#   SQLITE_SCALE_CALLS   calls per idempotency-guard figure (default 10000)
#   SQLITE_SCALE_OUT     where the database is built (removed afterwards) and the table is
#                        written as sqlite-scale.md (default target/bench)
#   SQLITE_SCALE_BUILD   0 to use the example already built (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${SQLITE_SCALE_ORDERS:-1000000}"
OPEN="${SQLITE_SCALE_OPEN:-50}"
CALLS="${SQLITE_SCALE_CALLS:-10000}"
OUT="${SQLITE_SCALE_OUT:-target/bench}"
BIN=target/sqlite-scale/examples/sqlite_scale

if [[ "${SQLITE_SCALE_BUILD:-1}" != 0 ]]; then
    # Optimized like the release build, without its size settings and link-time optimization.
    cargo build --quiet --profile sqlite-scale --example sqlite_scale
fi
mkdir -p "$OUT"
{
    echo "machine: $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "filesystem of the database: $(df -T "$OUT" | awk 'NR == 2 { print $2 }')"
    "$BIN" --orders "$ORDERS" --open "$OPEN" --calls "$CALLS" --dir "$OUT"
    # Other processes on the machine show in the maxima and the 99th percentiles: the load
    # before and after says how busy it was.
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/sqlite-scale.md"
