#!/usr/bin/env bash
# The cost of watching protected trades and of a burst of signals, from tests/many_trades.rs:
# the real shell and core against the paper venue on a virtual clock, every venue call
# counted as the Crypto.com requests it stands for (a protective leg's order detail is the
# plain detail then the advanced one, an open-orders snapshot the plain list and the advanced
# one). Prints, for 1, 10 and 100 open protected trades over one minute at the default
# watch interval (5 s), the requests per minute read back leg by leg (before) and from one
# open-orders snapshot per watch (after), the busiest method's share of its documented limit
# (reference §6) and the headroom left; then the first, median and longest unprotected window
# of twenty simultaneous signals at 50 ms a round trip, with protection first and without.
# The counts do not depend on the machine or the build profile; the test asserts them.
#
#   scripts/bench-watch.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --test many_trades -- --nocapture --test-threads 1 \
    watching_costs_one_snapshot_per_interval_whatever_the_number_of_trades \
    a_burst_of_signals_waits_for_the_protection_of_fills_already_made 2>&1 |
    grep -oE '(open protected trades.*|^ +[0-9]+ \|.*|20 signals.*)'
