#!/usr/bin/env bash
# Install Debian's rustc 1.85 (the `rustc-web` packages) as /usr/bin/rustc.
#
# fillguard's MSRV is 1.85 (Cargo.toml `rust-version`), and the cross-build path
# uses Debian's compiler, so CI needs it next to rustup's stable toolchain.
# rustup's rustc/cargo stay first on PATH; Debian's compiler is used through
# RUSTC=/usr/bin/rustc (see scripts/check-msrv.sh).
#
# Idempotent: does nothing when /usr/bin/rustc already reports 1.85.x.
# Needs root to install; without root it only reports what is missing.
#
# Environment:
#   RUST_DEB_VERSION  exact Debian version to install
#                     (default 1.85.0+dfsg3-1~deb12u3; if the archive does not
#                     carry it, the available 1.85.* version is used instead)
set -euo pipefail

RUST_DEB_VERSION="${RUST_DEB_VERSION:-1.85.0+dfsg3-1~deb12u3}"
WANT_MINOR="1.85"
DEB_RUSTC=/usr/bin/rustc

# Host toolchain packages (installed at the exact version chosen below).
HOST_PACKAGES=(rustc-web libstd-rust-web-dev "libstd-rust-web-${WANT_MINOR}")

# Cross-build hooks, empty for now. To build for ARM later, fill these in
# (see the cross-build notes):
#   FOREIGN_ARCHES=(arm64 armhf)
#   EXTRA_PACKAGES=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user-static)
#   TARGET_STD_ARCHES=(arm64 armhf)   # libstd-rust-web-dev:<arch> unpacked, not installed
FOREIGN_ARCHES=()
EXTRA_PACKAGES=()
TARGET_STD_ARCHES=()

log() { printf 'install-rust-1.85: %s\n' "$*"; }
die() { printf 'install-rust-1.85: ERROR: %s\n' "$*" >&2; exit 1; }

deb_rustc_is_185() {
    [[ -x "$DEB_RUSTC" ]] && "$DEB_RUSTC" --version 2>/dev/null | grep -q "^rustc ${WANT_MINOR//./\\.}\."
}

host_toolchain_ready() {
    deb_rustc_is_185 || return 1
    # The hooks above add further requirements once they are filled in.
    local arch pkg
    for pkg in "${EXTRA_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || return 1
    done
    for arch in "${TARGET_STD_ARCHES[@]}"; do
        [[ -d "/usr/lib/rustlib/$(rust_triple "$arch")/lib" ]] || return 1
    done
    return 0
}

rust_triple() {
    case "$1" in
        arm64) echo aarch64-unknown-linux-gnu ;;
        armhf) echo armv7-unknown-linux-gnueabihf ;;
        *) die "no Rust target known for Debian architecture $1" ;;
    esac
}

# Versions of a package that apt can install, one per line.
available_versions() {
    apt-cache policy "$1" 2>/dev/null | awk '
        /Version table:/ { in_table = 1; next }
        in_table && NF >= 2 && $2 ~ /^[0-9]+$/ { print $1; next }
        in_table && $1 == "***" && NF >= 3 { print $2 }'
}

choose_version() {
    local versions
    versions="$(available_versions rustc-web)"
    [[ -n "$versions" ]] || die "apt knows no rustc-web package (is this Debian 12 with main enabled?)"
    if grep -qxF "$RUST_DEB_VERSION" <<<"$versions"; then
        log "rustc-web $RUST_DEB_VERSION is available"
        return
    fi
    local fallback
    fallback="$(grep -E "^${WANT_MINOR//./\\.}\." <<<"$versions" | sort -V | tail -n1 || true)"
    [[ -n "$fallback" ]] || die "no rustc-web ${WANT_MINOR}.* in the archive; available: $(tr '\n' ' ' <<<"$versions")"
    log "rustc-web $RUST_DEB_VERSION is not available; using rustc-web $fallback instead"
    RUST_DEB_VERSION="$fallback"
}

add_foreign_arches() {
    local arch
    for arch in "${FOREIGN_ARCHES[@]}"; do
        dpkg --print-foreign-architectures | grep -qx "$arch" || dpkg --add-architecture "$arch"
    done
}

install_packages() {
    local specs=() pkg
    for pkg in "${HOST_PACKAGES[@]}"; do
        specs+=("$pkg=$RUST_DEB_VERSION")
    done
    specs+=("${EXTRA_PACKAGES[@]}")
    log "apt-get install ${specs[*]}"
    # No recommends: cargo-web would put a second cargo in /usr/bin.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        --allow-downgrades "${specs[@]}" </dev/null
    # bookworm-security carries newer rustc-web; keep 1.85 through upgrades.
    apt-mark hold "${HOST_PACKAGES[@]}" >/dev/null
}

# Standard libraries for foreign targets: unpack only (installing them would
# pull the foreign LLVM).
unpack_target_std() {
    [[ ${#TARGET_STD_ARCHES[@]} -gt 0 ]] || return 0
    local dir arch
    dir="$(mktemp -d)"
    for arch in "${TARGET_STD_ARCHES[@]}"; do
        (cd "$dir" && apt-get download "libstd-rust-web-dev:$arch=$RUST_DEB_VERSION")
    done
    for deb in "$dir"/*.deb; do
        dpkg -x "$deb" /
    done
    rm -rf "$dir"
}

main() {
    if host_toolchain_ready; then
        log "already installed: $("$DEB_RUSTC" --version)"
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        if [[ -x "$DEB_RUSTC" ]]; then
            die "$DEB_RUSTC is $("$DEB_RUSTC" --version), not ${WANT_MINOR}; run this script as root to install rustc-web ${WANT_MINOR}"
        fi
        die "$DEB_RUSTC (rustc ${WANT_MINOR}) is missing; run this script as root (sudo $0) to install rustc-web ${WANT_MINOR}"
    fi

    add_foreign_arches
    # A foreign-architecture index can fail during a mirror sync; the rest still works.
    apt-get update -q </dev/null || log "apt-get update reported errors; continuing"
    choose_version
    install_packages
    unpack_target_std

    deb_rustc_is_185 || die "after installing, $DEB_RUSTC --version does not print ${WANT_MINOR}.x"
    log "installed: $("$DEB_RUSTC" --version)"
}

main "$@"
