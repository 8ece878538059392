#!/usr/bin/env bash
# End to end on ARM without ARM hardware: each ARM binary of dist/ runs under
# qemu-user against the x86_64 `fillguard sim-exchange` on 127.0.0.1, reached as
# `localhost` so the static binary's name resolution is exercised, and must
# complete one protected trade that its own `status --json` shows with both
# protective legs on the exchange.
#
#   scripts/cross-build.sh            # builds dist/fillguard-<target>
#   scripts/arm-e2e.sh [TARGET...]    # default: aarch64 and armv7
#
# Every wait is bounded; the simulator is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DIST="${DIST:-$PWD/dist}"
SIM_BINARY="${SIM_BINARY:-$DIST/fillguard-x86_64-unknown-linux-gnu}"
MAX_TICKS="${MAX_TICKS:-60}"
# Seconds any one command of the agent may take under emulation.
COMMAND_TIMEOUT="${COMMAND_TIMEOUT:-300}"

die() { echo "arm-e2e: $*" >&2; exit 1; }

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
[ -x "$SIM_BINARY" ] || die "$SIM_BINARY is missing (scripts/cross-build.sh x86_64-unknown-linux-gnu)"
command -v jq >/dev/null || die "jq is missing"

work=$(mktemp -d)
sim_pid=""
stop_sim() {
    if [ -n "$sim_pid" ]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
        sim_pid=""
    fi
}
trap 'stop_sim; rm -rf "$work"' EXIT

# Starts a fresh simulator (one per target, so two agents never share client order
# ids on one book) and sets sim_port.
start_sim() {
    local dir=$1 line="" waited=0
    printf 'test-secret-0123456789' > "$dir/api-secret"
    chmod 600 "$dir/api-secret"
    RUST_LOG=warn "$SIM_BINARY" --config "$dir/fillguard.toml" sim-exchange \
        --listen 127.0.0.1:0 --seed 11 --faults none --api-key test-key \
        --api-secret-file "$dir/api-secret" > "$dir/sim.out" 2> "$dir/sim.err" < /dev/null &
    sim_pid=$!
    while [ $waited -lt 100 ]; do
        line=$(head -n 1 "$dir/sim.out" 2>/dev/null || true)
        case $line in "listening on 127.0.0.1:"*) break ;; esac
        kill -0 "$sim_pid" 2>/dev/null || die "the simulator exited: $(cat "$dir/sim.err")"
        sleep 0.1
        waited=$((waited + 1))
    done
    case $line in
        "listening on 127.0.0.1:"*) sim_port=${line##*:} ;;
        *) die "the simulator did not report its address within 10 s" ;;
    esac
}

# One ARM target: signal, run, status. Prints one result line; returns non-zero on failure.
run_target() {
    local target=$1 qemu binary dir status version
    case $target in
        aarch64-unknown-linux-gnu) qemu=qemu-aarch64-static ;;
        armv7-unknown-linux-gnueabihf) qemu=qemu-arm-static ;;
        *) die "not an ARM target: $target" ;;
    esac
    command -v "$qemu" >/dev/null || die "$qemu is missing (apt-get install qemu-user-static)"
    binary="$DIST/fillguard-$target"
    [ -x "$binary" ] || die "$binary is missing (scripts/cross-build.sh $target)"
    dir="$work/$target"
    mkdir -p "$dir"
    cat > "$dir/fillguard.toml" <<TOML
[store]
path = "$dir/fillguard.db"
[metrics]
listen = "off"
[loop]
interval_seconds = 0.2
[poll]
interval_seconds = 0.3
deadline_seconds = 20
[protection]
watch_interval_seconds = 0.5
[paper]
volatility = "0"
fill_delay_ms = 200
[[watchlist]]
symbol = "BTC_USDT"
strategy = "none"
notional = "100"
stop_loss_pct = "2"
take_profit_pct = "3"
TOML
    start_sim "$dir"
    agent() {
        FILLGUARD_VENUE__KIND=cryptocom \
        FILLGUARD_VENUE__BASE_URL="http://localhost:$sim_port/exchange/v1" \
        FILLGUARD_VENUE__API_KEY=test-key \
        FILLGUARD_VENUE__API_SECRET_FILE="$dir/api-secret" \
        FILLGUARD_VENUE__TIMEOUT_SECONDS=10 \
        RUST_LOG=warn \
        timeout "$COMMAND_TIMEOUT" "$qemu" "$binary" --config "$dir/fillguard.toml" "$@"
    }
    version=$(agent --version)
    case $version in *"($target)"*) ;; *) echo "$target: FAIL --version says: $version"; stop_sim; return 1 ;; esac
    agent signal --symbol BTC_USDT --side BUY --notional 100 > "$dir/signal.log" 2>&1 \
        || { echo "$target: FAIL signal: $(cat "$dir/signal.log")"; stop_sim; return 1; }
    agent run --max-ticks "$MAX_TICKS" > "$dir/run.log" 2>&1 \
        || { echo "$target: FAIL run: $(tail -n 20 "$dir/run.log")"; stop_sim; return 1; }
    status=$(agent status --json 2> "$dir/status.err") \
        || { echo "$target: FAIL status: $(cat "$dir/status.err")"; stop_sim; return 1; }
    stop_sim
    # A protected trade whose entry, stop-loss and take-profit all carry the
    # exchange's order ids, and both legs still live.
    local summary
    summary=$(jq -r '
        [.trades[] | select(.state == "PROTECTED"
            and .entry.order_id != null
            and .stop_loss.order_id != null and .take_profit.order_id != null
            and (.stop_loss.status | IN("NEW","ACTIVE","PENDING"))
            and (.take_profit.status | IN("NEW","ACTIVE","PENDING")))]
        | first // empty
        | "trade \(.id) \(.side) \(.symbol) \(.state) filled \(.filled_quantity) @ \(.avg_price); entry \(.entry.order_id), stop-loss \(.stop_loss.order_id) (\(.stop_loss.status)), take-profit \(.take_profit.order_id) (\(.take_profit.status))"
    ' <<< "$status")
    if [ -z "$summary" ]; then
        echo "$target: FAIL no protected trade with both legs; status: $status"
        return 1
    fi
    echo "$target: OK $version via localhost:$sim_port; $summary"
}

failed=0
for t in "${targets[@]}"; do
    run_target "$t" || failed=1
done
exit $failed
