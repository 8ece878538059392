#!/usr/bin/env bash
# fillguard's footprint, each figure beside its goal with PASS or MISS and, when missed, what
# the measurement shows limits it (examples/footprint does the measuring):
#   - the size of the static x86_64 release binary (goal ≤ 6 MiB);
#   - start-up to READY=1 on NOTIFY_SOCKET, 20 symbols, paper venue (goal ≤ 100 ms);
#   - peak RSS (VmHWM) of `fillguard run` with 20 symbols over 10 minutes (goal ≤ 10 MiB);
#   - CPU time (user + sys) per loop turn with 10, 30, 100 and 1,000 symbols (growth no worse
#     than linear);
#   - RSS at the start, middle and end of 24 hours of paper time (flat).
# Real `fillguard run` processes of that binary on the paper venue, the metrics endpoint on
# loopback, nothing else on the network; every run bounded in time and stopped at the end.
# Not part of the test command: it takes about 11 minutes on 2 busy cores (the 10-minute runs
# go on beside the others), plus 5 to 17 minutes when the static binary must be built.
#
#   scripts/bench-footprint.sh
#   FOOTPRINT_RSS_SECONDS=60 FOOTPRINT_TURNS=5,15 scripts/bench-footprint.sh   # a quick look
#
# Settings (environment):
#   FOOTPRINT_BINARY       the binary to measure (default: dist/fillguard-x86_64-unknown-linux-gnu,
#                          built by scripts/cross-build.sh, which leaves an up-to-date one alone)
#   FOOTPRINT_RSS_SECONDS  length of the peak-RSS run (default 600)
#   FOOTPRINT_DAY_SPEED    paper speed of the 24-hour run (default 1000: 86.4 s)
#   FOOTPRINT_TURNS        SHORT,LONG: the two runs whose difference gives CPU per turn (default 10,30)
#   FOOTPRINT_SIZES        watchlist sizes of the CPU runs (default 10,30,100,1000)
#   FOOTPRINT_OUT          where the runs' directories and footprint.md go (default target/bench)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${FOOTPRINT_OUT:-target/bench}"
BINARY="${FOOTPRINT_BINARY:-}"
if [[ -z "$BINARY" ]]; then
    scripts/cross-build.sh x86_64-unknown-linux-gnu
    BINARY=dist/fillguard-x86_64-unknown-linux-gnu
fi
[[ -x "$BINARY" ]] || { echo "bench-footprint: $BINARY is not an executable" >&2; exit 2; }
# The measuring program needs no optimization: it only starts, watches and stops agents.
cargo build --quiet --example footprint
mkdir -p "$OUT"
{
    echo "machine: $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "binary: $BINARY ($(file -b "$BINARY" | cut -d, -f1-2)), $("$BINARY" --version | head -1)"
    echo
    "${CARGO_TARGET_DIR:-target}/debug/examples/footprint" --binary "$BINARY" --dir "$OUT/footprint" \
        --rss-seconds "${FOOTPRINT_RSS_SECONDS:-600}" --day-speed "${FOOTPRINT_DAY_SPEED:-1000}" \
        --turns "${FOOTPRINT_TURNS:-10,30}" --sizes "${FOOTPRINT_SIZES:-10,30,100,1000}"
    echo
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/footprint.md"
