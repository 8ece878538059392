#!/usr/bin/env bash
# fillguard's one test command (also what CI runs, through .ci/run).
#
#   scripts/test.sh            format, clippy, dashboards and alert rules, tests, static
#                              builds of the three targets, ARM end to end under qemu,
#                              .deb packages and their checks, simulation, MSRV (Rust 1.85)
#                              check
#   scripts/test.sh --quick    format, dashboards and alert rules, tests
#   SIMULATE_SEEDS=A..B        the simulation's seeds (default 0..2000; not FILLGUARD_*,
#                              which the binary would read as a configuration key)
#
# Run as root, it first installs the system packages the tests need.
# Honours CARGO_TARGET_DIR (default target/).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "$0"
}

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "test.sh: unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------------------
# install_system_packages: everything the tests need from the system.
# Runs only as root; each installer must skip what is already installed.
# Add later packages here (qemu-user-static, systemd, ...).
# ---------------------------------------------------------------------------
install_system_packages() {
    scripts/install-rust-1.85.sh
    # The journald test (tests/logging.rs) runs Debian's own systemd-journald and journalctl.
    if [[ ! -x /lib/systemd/systemd-journald && ! -x /usr/lib/systemd/systemd-journald ]]; then
        apt_install systemd
    fi
    # tests/systemd.rs: systemd-analyze checks the unit; strace lists the agent's system calls
    # against the unit's filter.
    if ! command -v systemd-analyze >/dev/null; then
        apt_install systemd
    fi
    if ! command -v strace >/dev/null; then
        apt_install strace
    fi
    install_prometheus
    # The static builds check their binaries with `file`; the package checks run lintian.
    if ! command -v file >/dev/null; then
        apt_install file
    fi
    if ! command -v lintian >/dev/null; then
        apt_install lintian
    fi
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; }
}

# Debian's prometheus: promtool for the dashboards step, and the server that
# tests/prometheus.rs starts on loopback. The packaged service is not wanted running.
install_prometheus() {
    if command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v jq >/dev/null; then
        return 0
    fi
    apt_install prometheus jq
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
        systemctl disable --now prometheus
    fi
}

STEP_NAMES=()
STEP_TIMES=()
CURRENT_STEP=""

on_exit() {
    local status=$?
    if [[ $status -ne 0 && -n "$CURRENT_STEP" ]]; then
        printf '\n==> FAILED: %s (exit %s)\n' "$CURRENT_STEP" "$status" >&2
    fi
}
trap on_exit EXIT

step() {
    local name="$1"
    shift
    printf '\n==> %s\n' "$name"
    local start=$SECONDS
    CURRENT_STEP="$name"
    "$@"
    CURRENT_STEP=""
    STEP_NAMES+=("$name")
    STEP_TIMES+=("$((SECONDS - start))")
}

skip() {
    printf '\n==> %s: SKIPPED (%s)\n' "$1" "$2"
    STEP_NAMES+=("$1")
    STEP_TIMES+=("skipped")
}

summary() {
    printf '\n==> timings\n'
    local i
    for i in "${!STEP_NAMES[@]}"; do
        if [[ "${STEP_TIMES[$i]}" == skipped ]]; then
            printf '  %-24s skipped\n' "${STEP_NAMES[$i]}"
        else
            printf '  %-24s %4ss\n' "${STEP_NAMES[$i]}" "${STEP_TIMES[$i]}"
        fi
    done
}

have_rust_185() {
    [[ -x /usr/bin/rustc ]] && /usr/bin/rustc --version | grep -q '^rustc 1\.85\.'
}

if is_root; then
    step "install system packages" install_system_packages
fi

step "cargo fmt" cargo fmt --all -- --check

if [[ $QUICK -eq 1 ]]; then
    skip "cargo clippy" "--quick"
else
    step "cargo clippy" cargo clippy --locked --all-targets -- -D warnings
fi

# Alert rules (promtool check and unit tests) and the Grafana dashboard (structure, and
# Grafana's published schema); tests/prometheus.rs then runs every query on a real Prometheus.
if command -v promtool >/dev/null; then
    step "dashboards" scripts/check-dashboards.sh
else
    skip "dashboards" "promtool is not installed; run 'sudo apt-get install prometheus' (or this script as root) to enable this check"
fi

step "cargo test" cargo test --locked --all-targets

# The static release binaries of the three targets (scripts/cross-build.sh, Debian's rustc
# 1.85), each built once here and reused: the ARM ones trade under qemu against the x86_64
# simulator, and the x86_64 one runs the simulation below. As root the script installs its
# own packages; otherwise it needs them installed already.
HOST_BINARY="dist/fillguard-x86_64-unknown-linux-gnu"
can_cross_build() {
    is_root || {
        [[ -x /usr/bin/rustc && -d /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib &&
           -d /usr/lib/rustlib/armv7-unknown-linux-gnueabihf/lib ]] &&
            command -v aarch64-linux-gnu-gcc >/dev/null &&
            command -v arm-linux-gnueabihf-gcc >/dev/null &&
            command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null
    }
}
CROSS_BUILT=0
if [[ $QUICK -eq 1 ]]; then
    skip "static builds" "--quick"
    skip "arm end to end" "--quick"
    skip "packages" "--quick"
elif ! can_cross_build; then
    skip "static builds" "the cross toolchain is not installed; run 'sudo scripts/cross-build.sh' once to install it"
    skip "arm end to end" "no ARM binaries"
    skip "packages" "no static binaries"
else
    # Stale binaries from an earlier commit must never be tested in this one's place.
    rm -f dist/fillguard-*-unknown-linux-gnu*
    CROSS_BUILD_NICE=0 step "static builds" scripts/cross-build.sh
    CROSS_BUILT=1
    step "arm end to end" scripts/arm-e2e.sh
    # The .deb packages of those binaries: contents, fields, a scratch-root install with
    # systemd-analyze verify, upgrade and purge; then the check's own canary (each broken
    # copy of the package must be rejected for its own reason).
    rm -f dist/fillguard_*.deb
    step "packages" scripts/package-deb.sh
    step "package checks" scripts/check-packages.sh
    step "package checks canary" scripts/check-packages.sh --self-test
fi

# Deterministic simulation: every seed decides faults, crashes, prices and signals, and the
# invariants are checked after every loop turn (README, "Reliability"). Release build: the
# seeds run about ten times faster than in a debug build. The static x86_64 binary when it
# was built above, so the same release build is not made twice.
SIM_SEEDS="${SIMULATE_SEEDS:-0..2000}"
simulate() {
    local binary="$HOST_BINARY"
    if [[ $CROSS_BUILT -eq 0 ]]; then
        cargo build --locked --release
        binary="${CARGO_TARGET_DIR:-target}/release/fillguard"
    fi
    "$binary" simulate --seeds "$SIM_SEEDS"
}
if [[ $QUICK -eq 1 ]]; then
    skip "simulation" "--quick"
else
    step "simulation ($SIM_SEEDS)" simulate
fi

if [[ $QUICK -eq 1 ]]; then
    skip "msrv check (1.85)" "--quick"
elif ! is_root && ! have_rust_185 && [[ "${CI:-}" != true ]]; then
    skip "msrv check (1.85)" "/usr/bin/rustc 1.85 is not installed; run 'sudo scripts/install-rust-1.85.sh' to enable this check"
else
    step "msrv check (1.85)" scripts/check-msrv.sh
fi

summary
