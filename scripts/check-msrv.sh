#!/usr/bin/env bash
# Check that fillguard still builds with its MSRV, Rust 1.85.
#
# Uses rustup's cargo with Debian's rustc 1.85 (/usr/bin/rustc, installed by
# scripts/install-rust-1.85.sh) and the committed Cargo.lock, into a separate
# target directory so it never mixes artifacts with the stable toolchain.
#
# Environment:
#   MSRV_RUSTC        compiler to check with (default /usr/bin/rustc)
#   CARGO_TARGET_DIR  base target dir (default target/); the check uses <base>/msrv
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MSRV="1.85"
MSRV_RUSTC="${MSRV_RUSTC:-/usr/bin/rustc}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}/msrv"

die() { printf 'check-msrv: ERROR: %s\n' "$*" >&2; exit 1; }

# The declared MSRV must match the one checked here.
declared="$(sed -n 's/^[[:space:]]*rust-version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)"
[[ "$declared" == "$MSRV" ]] ||
    die "Cargo.toml must declare rust-version = \"$MSRV\" (found: \"${declared:-none}\")"

[[ -x "$MSRV_RUSTC" ]] ||
    die "$MSRV_RUSTC not found; install Rust $MSRV with: sudo scripts/install-rust-1.85.sh"
version="$("$MSRV_RUSTC" --version)" || die "$MSRV_RUSTC --version failed"
[[ "$version" =~ ^rustc\ ${MSRV//./\\.}\.[0-9]+ ]] ||
    die "$MSRV_RUSTC is '$version', expected rustc $MSRV.x; install it with: sudo scripts/install-rust-1.85.sh"

echo "check-msrv: cargo check with $version (target dir $TARGET_DIR)"
RUSTC="$MSRV_RUSTC" \
    cargo check --locked --all-targets --target-dir "$TARGET_DIR" </dev/null ||
    die "fillguard does not build with Rust $MSRV; if a dependency in Cargo.lock needs a newer rustc, pin an older one with: cargo update -p NAME --precise VERSION"
echo "check-msrv: OK, builds with Rust $MSRV"
