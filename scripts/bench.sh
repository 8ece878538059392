#!/usr/bin/env bash
# The unprotected window, measured: for each policy, real `fillguard run` processes trade
# against `fillguard sim-exchange` with an injected round trip and a fill-delay distribution,
# fed by `fillguard signal`, first one signal at a time, then 5 and 20 at once. Every figure
# comes from the simulator's own record (GET /sim/timeline, GET /sim/requests), never from the
# agent's clock: the window of a trade runs from its entry's fill on the exchange to the moment
# both protective legs were live there. examples/bench_report turns the records into a table
# (stdout, target/bench/bench.md), target/bench/bench.json and target/bench/windows.svg; the
# last line printed is unprotected_p99_ratio_baseline_over_oco=<x>, or =n/a (reason).
#
#   scripts/bench.sh                 # every policy of BENCH_POLICIES, about 14 minutes
#   BENCH_TRADES=20 BENCH_ROUNDS_5=2 BENCH_ROUNDS_20=1 scripts/bench.sh    # a quick look
#
# A policy is a TOML snippet, scripts/bench-policies/NAME.toml (its [poll] and [protection]
# tables); a snippet today's binary refuses (check-config) is reported as not available. Not
# part of the test command: it takes minutes. One release build of the tree, then every wait is
# bounded and every process it started is stopped on exit.
#
# Settings (environment):
#   BENCH_POLICIES     policies in table order (default: baseline separate oco otoco)
#   BENCH_TRADES       trades one signal at a time, per policy (default 200)
#   BENCH_ROUNDS_5     rounds of 5 simultaneous signals (default 6)
#   BENCH_ROUNDS_20    rounds of 20 simultaneous signals (default 3)
#   BENCH_LATENCY_MS   injected round trip of every exchange request (default 50)
#   BENCH_FILL_DELAY   fill-delay distribution of MARKET entries (default 0.5:0,0.5:50..500)
#   BENCH_SEED         the simulator's seed (default 1)
#   BENCH_PARALLEL     policies measured at the same time (default 4; 1 for one after another)
#   BENCH_OUT          output directory (default target/bench)
#   BENCH_BUILD        0 to use the binaries already built (default 1: cargo build --release)
#   BENCH_BIN, BENCH_REPORT  those binaries (default: target/release/fillguard and
#                      target/release/examples/bench_report)
set -euo pipefail
cd "$(dirname "$0")/.."

POLICIES=(${BENCH_POLICIES:-baseline separate oco otoco})
TRADES="${BENCH_TRADES:-200}"
ROUNDS_5="${BENCH_ROUNDS_5:-6}"
ROUNDS_20="${BENCH_ROUNDS_20:-3}"
LATENCY_MS="${BENCH_LATENCY_MS:-50}"
FILL_DELAY="${BENCH_FILL_DELAY:-0.5:0,0.5:50..500}"
SEED="${BENCH_SEED:-1}"
PARALLEL="${BENCH_PARALLEL:-4}"
OUT="${BENCH_OUT:-$PWD/target/bench}"
POLICY_DIR="$PWD/scripts/bench-policies"
BIN="${BENCH_BIN:-$PWD/target/release/fillguard}"
REPORT="${BENCH_REPORT:-$PWD/target/release/examples/bench_report}"

# Bounds of every wait, in tenths of a second unless named otherwise.
SIM_START_TENTHS=100         # the simulator prints its address
ROUND_TENTHS=1200            # a round's trades all protected (or failed)
CLOSE_TENTHS=300             # a round's trades all closed after the price crossed
COMMAND_SECONDS=20           # any one fillguard signal / status / curl call
AGENT_STOP_TENTHS=100        # the agent ends after SIGTERM
AGENT_START_TENTHS=300       # the agent's database migrated, so `signal` can write to it
AGENT_TICKS_MAX=36000        # loop turns of one agent
SYMBOL=BTC_USDT
START_PRICE=60000
CLOSE_PRICE=63000            # crosses every take-profit (3 %) of a BUY at START_PRICE

die() { echo "bench: $*" >&2; exit 1; }
command -v jq >/dev/null || die "jq is missing"
command -v curl >/dev/null || die "curl is missing"
for n in "$TRADES" "$ROUNDS_5" "$ROUNDS_20" "$LATENCY_MS" "$SEED" "$PARALLEL"; do
    [[ $n =~ ^[0-9]+$ ]] || die "not a whole number: $n"
done
[ "$PARALLEL" -ge 1 ] || die "BENCH_PARALLEL must be at least 1"
for policy in "${POLICIES[@]}"; do
    [ -f "$POLICY_DIR/$policy.toml" ] || die "no policy snippet $POLICY_DIR/$policy.toml"
done

if [ "${BENCH_BUILD:-1}" = 1 ]; then
    echo "bench: building the release binary and the report (once)" >&2
    nice cargo build --release --quiet --bin fillguard --example bench_report
fi
[ -x "$BIN" ] && [ -x "$REPORT" ] || die "missing $BIN or $REPORT (run with BENCH_BUILD=1)"

rm -rf "$OUT/runs"
mkdir -p "$OUT/runs"
# Stops every process this script started and has not reaped yet, by its id: the agents and
# simulators (each run lists them in its pids file until it has reaped them), then the policy
# pipelines that started them.
cleanup() {
    local pid file
    for file in "$OUT"/runs/*/pids; do
        [ -f "$file" ] || continue
        while read -r pid; do
            [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
        done < "$file"
    done
    for pid in "${PIPELINES[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
}
PIPELINES=()
trap cleanup EXIT
trap 'exit 130' INT TERM

# The configuration every run shares; a policy snippet goes before it. protection's watch
# interval comes through the environment, so a snippet may open [protection] itself.
base_config() {
    local dir=$1 port=$2
    cat <<TOML
[venue]
kind = "cryptocom"
base_url = "http://127.0.0.1:$port/exchange/v1"
api_key = "bench-key"
api_secret_file = "$dir/api-secret"
timeout_seconds = 10
[store]
path = "$dir/fillguard.db"
[metrics]
listen = "off"
[loop]
interval_seconds = 0.1
[signals]
allow_concurrent_trades = true
[paper]
volatility = "0"
fill_delay_ms = 0
[[watchlist]]
symbol = "$SYMBOL"
strategy = "none"
notional = "100"
stop_loss_pct = "2"
take_profit_pct = "3"
TOML
}

fgc() {
    local dir=$1
    shift
    RUST_LOG=warn FILLGUARD_PROTECTION__WATCH_INTERVAL_SECONDS=0.5 \
        timeout "$COMMAND_SECONDS" "$BIN" --config "$dir/fillguard.toml" "$@" < /dev/null
}

sim_get() { curl -fsS --max-time "$COMMAND_SECONDS" "http://127.0.0.1:$1/sim/$2"; }
sim_price() {
    curl -fsS --max-time "$COMMAND_SECONDS" -X POST -H 'Content-Type: application/json' \
        -d "{\"instrument_name\":\"$SYMBOL\",\"price\":\"$2\"}" \
        "http://127.0.0.1:$1/sim/price" > /dev/null
}

# Whether a snippet passes today's check-config; the reason on stdout when it does not.
refusal() {
    local policy=$1 dir
    dir=$(mktemp -d "$OUT/runs/check-XXXXXX")
    printf 'bench-secret-0123456789' > "$dir/api-secret"
    chmod 600 "$dir/api-secret"
    { cat "$POLICY_DIR/$policy.toml"; base_config "$dir" 9; } > "$dir/fillguard.toml"
    if ! fgc "$dir" check-config > /dev/null 2> "$dir/err"; then
        # The first line of the error, without the temporary file's path.
        head -n 1 "$dir/err" | sed 's/ in TOML file [^ ]*//; s/^fillguard: //'
    fi
    rm -rf "$dir"
}

# Counts of the agent's trades: total, settled (protected or ended), open (not ended).
trade_counts() {
    fgc "$1" status --json --all 2>/dev/null | jq -r '
        [.trades | length,
         ([.[] | select(.state | IN("PROTECTED","CLOSED","HALTED","RECOVERING"))] | length),
         ([.[] | select(.state | IN("CLOSED","HALTED") | not)] | length)] | @tsv' \
        || echo "-1 -1 -1"
}

# One policy at one number of simultaneous signals: a fresh simulator, database and agent.
run_case() {
    local policy=$1 order=$2 concurrency=$3 rounds=$4
    local dir="$OUT/runs/$(printf '%02d' "$order")-$policy-c$concurrency"
    local sim_pid agent_pid port="" line waited round started
    local round_timeouts=0 close_timeouts=0 expected=0
    mkdir -p "$dir"
    printf 'bench-secret-0123456789' > "$dir/api-secret"
    chmod 600 "$dir/api-secret"
    base_config "$dir" 9 > "$dir/sim.toml"
    started=$(date +%s)
    RUST_LOG=warn "$BIN" --config "$dir/sim.toml" sim-exchange --listen 127.0.0.1:0 \
        --seed "$SEED" --faults "latency=$LATENCY_MS" --fill-delay "$FILL_DELAY" \
        --api-key bench-key --api-secret-file "$dir/api-secret" \
        > "$dir/sim.out" 2> "$dir/sim.err" < /dev/null &
    sim_pid=$!
    echo "$sim_pid" >> "$dir/pids"
    for ((waited = 0; waited < SIM_START_TENTHS; waited++)); do
        line=$(head -n 1 "$dir/sim.out" 2>/dev/null || true)
        case $line in "listening on 127.0.0.1:"*) port=${line##*:}; break ;; esac
        kill -0 "$sim_pid" 2>/dev/null || die "$policy: the simulator exited: $(cat "$dir/sim.err")"
        sleep 0.1
    done
    [ -n "$port" ] || die "$policy: the simulator did not report its address"
    { cat "$POLICY_DIR/$policy.toml"; base_config "$dir" "$port"; } > "$dir/fillguard.toml"
    # Bounded by its turns as well: 0.1 s each at least, so at most about an hour.
    RUST_LOG=warn FILLGUARD_PROTECTION__WATCH_INTERVAL_SECONDS=0.5 \
        "$BIN" --config "$dir/fillguard.toml" run --max-ticks "$AGENT_TICKS_MAX" \
        > "$dir/run.log" 2>&1 < /dev/null &
    agent_pid=$!
    echo "$agent_pid" >> "$dir/pids"
    # `signal` refuses a database the agent has not migrated yet: wait until `status` reads it.
    for ((waited = 0; waited < AGENT_START_TENTHS; waited++)); do
        fgc "$dir" status --json > /dev/null 2>&1 && break
        kill -0 "$agent_pid" 2>/dev/null || die "$policy: the agent exited: $(tail -n 5 "$dir/run.log")"
        sleep 0.1
    done
    [ "$waited" -lt "$AGENT_START_TENTHS" ] || die "$policy: the agent's database was not ready"
    for ((round = 1; round <= rounds; round++)); do
        local signal_pids=() i total settled open
        for ((i = 0; i < concurrency; i++)); do
            fgc "$dir" signal --symbol "$SYMBOL" --side BUY --notional 100 >> "$dir/signal.log" 2>&1 &
            signal_pids+=($!)
        done
        for i in "${signal_pids[@]}"; do wait "$i" || echo "signal failed" >> "$dir/errors"; done
        expected=$((expected + concurrency))
        for ((waited = 0; waited < ROUND_TENTHS; waited++)); do
            read -r total settled open <<< "$(trade_counts "$dir")"
            [ "$total" -ge "$expected" ] && [ "$settled" -ge "$expected" ] && break
            kill -0 "$agent_pid" 2>/dev/null || die "$policy: the agent exited: $(tail -n 5 "$dir/run.log")"
            sleep 0.1
        done
        [ "$waited" -lt "$ROUND_TENTHS" ] || round_timeouts=$((round_timeouts + 1))
        sim_price "$port" "$CLOSE_PRICE"
        for ((waited = 0; waited < CLOSE_TENTHS; waited++)); do
            read -r total settled open <<< "$(trade_counts "$dir")"
            [ "$open" = 0 ] && break
            sleep 0.1
        done
        [ "$waited" -lt "$CLOSE_TENTHS" ] || close_timeouts=$((close_timeouts + 1))
        sim_price "$port" "$START_PRICE"
    done
    sim_get "$port" timeline > "$dir/timeline.json"
    sim_get "$port" requests > "$dir/requests.json"
    kill "$agent_pid" 2>/dev/null || true
    for ((waited = 0; waited < AGENT_STOP_TENTHS; waited++)); do
        kill -0 "$agent_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    rm -f "$dir/pids"
    jq -n --arg policy "$policy" --argjson order "$order" --argjson concurrency "$concurrency" \
        --argjson rounds "$rounds" --argjson latency "$LATENCY_MS" --arg fill_delay "$FILL_DELAY" \
        --argjson seed "$SEED" --argjson round_timeouts "$round_timeouts" \
        --argjson close_timeouts "$close_timeouts" --argjson parallel "$PARALLEL" \
        --argjson elapsed "$(( $(date +%s) - started ))" \
        --arg snippet "$(cat "$POLICY_DIR/$policy.toml")" \
        '{policy: $policy, order: $order, concurrency: $concurrency, rounds: $rounds,
          signals: ($rounds * $concurrency), available: true, latency_ms: $latency,
          fill_delay: $fill_delay, seed: $seed, round_timeouts: $round_timeouts,
          close_timeouts: $close_timeouts, policies_at_once: $parallel,
          elapsed_seconds: $elapsed, snippet: $snippet}' > "$dir/meta.json"
    echo "bench: $policy, $concurrency at once: $rounds rounds in $(( $(date +%s) - started )) s" \
         "($round_timeouts round and $close_timeouts close timeouts)" >&2
}

unavailable() {
    local policy=$1 order=$2 reason=$3 concurrency
    for concurrency in 1 5 20; do
        local dir="$OUT/runs/$(printf '%02d' "$order")-$policy-c$concurrency"
        mkdir -p "$dir"
        jq -n --arg policy "$policy" --argjson order "$order" --argjson c "$concurrency" \
            --arg reason "$reason" \
            '{policy: $policy, order: $order, concurrency: $c, available: false,
              reason: $reason}' > "$dir/meta.json"
    done
    echo "bench: $policy is not available: $reason" >&2
}

run_policy() {
    local policy=$1 order=$2
    run_case "$policy" "$order" 1 "$TRADES"
    run_case "$policy" "$order" 5 "$ROUNDS_5"
    run_case "$policy" "$order" 20 "$ROUNDS_20"
}

bench_started=$(date +%s)
order=0
for policy in "${POLICIES[@]}"; do
    reason=$(refusal "$policy")
    if [ -n "$reason" ]; then
        unavailable "$policy" "$order" "today's binary refuses its configuration: $reason"
    else
        while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do sleep 0.5; done
        ( run_policy "$policy" "$order" ) &
        PIPELINES+=($!)
    fi
    order=$((order + 1))
done
failed=0
for pid in "${PIPELINES[@]:-}"; do
    [ -n "$pid" ] || continue
    wait "$pid" || failed=1
done
[ "$failed" = 0 ] || die "a policy's run failed (see $OUT/runs/*/run.log)"
echo "bench: every run done in $(( $(date +%s) - bench_started )) s; the report:" >&2
"$REPORT" "$OUT"
