#!/usr/bin/env bash
# Fuzz fillguard's parsers and normalizer with cargo-fuzz (libFuzzer, nightly Rust).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  how long each target runs (default 60)
#   TARGET              targets to run (default: every target in fuzz/Cargo.toml)
#
# Targets run one after another. Each starts from the committed seeds in fuzz/seeds/<target> and
# keeps what it learns in fuzz/corpus/<target>; a crashing input is written to
# fuzz/artifacts/<target>/. libFuzzer stops a target at its first crash. Prints executions, time
# and crashes per target; exits 1 if any target crashed.
#
# Environment:
#   FUZZ_TOOLCHAIN  rustup toolchain for cargo fuzz (default nightly)
#   FUZZ_LOG_DIR    where each target's libFuzzer output goes (default fuzz/target/logs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
LOG_DIR="${FUZZ_LOG_DIR:-fuzz/target/logs}"
# libFuzzer's own per-input limits: a slow input is a hang, not a pass.
INPUT_TIMEOUT_SECONDS=10
RSS_LIMIT_MB=2048

die() { printf 'fuzz: ERROR: %s\n' "$*" >&2; exit 2; }

seconds="${1:-60}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "SECONDS_PER_TARGET must be a positive integer, got '$seconds'"
shift || true

if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked ||
        cargo "+$TOOLCHAIN" install cargo-fuzz --locked ||
        die "cannot install cargo-fuzz"
fi

mapfile -t all_targets < <(cargo "+$TOOLCHAIN" fuzz list)
[[ ${#all_targets[@]} -gt 0 ]] || die "cargo fuzz list found no targets"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $target "* ]] ||
        die "unknown target '$target' (targets: ${all_targets[*]})"
done

echo "fuzz: building ${targets[*]}"
cargo "+$TOOLCHAIN" fuzz build </dev/null >/dev/null || die "cargo fuzz build failed"
mkdir -p "$LOG_DIR"

# The number after `prefix` on the last line of `log` that has it, else "?".
last_number() {
    local prefix="$1" log="$2" found
    found="$(grep -aoE "$prefix[0-9]+" "$log" | tail -n1 | grep -oE '[0-9]+$' || true)"
    printf '%s' "${found:-?}"
}

crashed_targets=()
summary=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    seeds="fuzz/seeds/$target"
    artifacts="fuzz/artifacts/$target"
    log="$LOG_DIR/$target.log"
    mkdir -p "$corpus" "$seeds" "$artifacts"
    before="$(find "$artifacts" -type f | sort)"
    echo "fuzz: $target for ${seconds}s (log $log)"
    started=$SECONDS
    status=0
    # The first corpus directory receives new inputs; the seeds are only read.
    cargo "+$TOOLCHAIN" fuzz run "$target" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -timeout="$INPUT_TIMEOUT_SECONDS" \
        -rss_limit_mb="$RSS_LIMIT_MB" -print_final_stats=1 </dev/null >"$log" 2>&1 || status=$?
    elapsed=$((SECONDS - started))
    new_artifacts="$(comm -13 <(printf '%s\n' "$before") <(find "$artifacts" -type f | sort) |
        sed '/^$/d')"
    crashes="$(printf '%s' "$new_artifacts" | grep -c . || true)"
    if [[ $status -ne 0 && $crashes -eq 0 ]]; then
        # A failure that left no artifact (a build or harness error) still counts.
        crashes=1
    fi
    runs="$(last_number 'stat::number_of_executed_units: ' "$log")"
    run_seconds="$(grep -aoE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n1 |
        grep -oE 'in [0-9]+' | grep -oE '[0-9]+' || true)"
    run_seconds="${run_seconds:-$elapsed}"
    line="$(printf '%-20s executions %-12s seconds %-6s crashes %s' \
        "$target" "$runs" "$run_seconds" "$crashes")"
    echo "fuzz: $line"
    summary+=("$line")
    if [[ $crashes -ne 0 ]]; then
        crashed_targets+=("$target")
        [[ -z "$new_artifacts" ]] || printf 'fuzz:   artifact %s\n' $new_artifacts
        grep -a -m3 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/fuzz:   /' || true
    fi
done

echo "fuzz: summary"
printf 'fuzz:   %s\n' "${summary[@]}"
if [[ ${#crashed_targets[@]} -gt 0 ]]; then
    echo "fuzz: crashes in ${crashed_targets[*]}; reproduce with: cargo +$TOOLCHAIN fuzz run TARGET ARTIFACT" >&2
    exit 1
fi
echo "fuzz: OK, no crashes"
