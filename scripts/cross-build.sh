#!/usr/bin/env bash
# Static release binaries of fillguard for a VPS (x86_64) and a Raspberry Pi
# (64-bit aarch64, 32-bit armv7), without Docker: Debian's rustc 1.85 with the
# arm64/armhf standard libraries unpacked from their packages, gcc cross linkers
# and qemu-user for trying the ARM binaries. See README "Building for a Raspberry Pi".
#
#   scripts/cross-build.sh [TARGET...]   (default: all three)
#
# Output: dist/fillguard-<target>. Fails unless `file` calls each one statically linked.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
# The rustc-web version whose standard library exists for arm64 and armhf in bookworm main.
RUST_WEB_VERSION="${RUST_WEB_VERSION:-1.85.0+dfsg3-1~deb12u3}"
DEBIAN_RUSTC=/usr/bin/rustc
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/cross}"

die() { echo "cross-build: $*" >&2; exit 1; }

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
    case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) die "unknown target $t (known: ${ALL_TARGETS[*]})" ;; esac
done

needs_arm() { for t in "${targets[@]}"; do [ "$t" = x86_64-unknown-linux-gnu ] || return 0; done; return 1; }

# Installs only what is missing, so a second run changes nothing.
install_packages() {
    local want_arm=$1 missing=()
    [ -x "$DEBIAN_RUSTC" ] || missing+=(rustc-web libstd-rust-web-dev libstd-rust-web-1.85)
    if [ "$want_arm" = yes ]; then
        command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
        command -v arm-linux-gnueabihf-gcc >/dev/null || missing+=(gcc-arm-linux-gnueabihf)
        # The target C libraries (headers and static libc.a) for bundled SQLite,
        # ring and the static link; only recommended by the cross compilers.
        [ -f /usr/aarch64-linux-gnu/lib/libc.a ] || missing+=(libc6-dev-arm64-cross)
        [ -f /usr/arm-linux-gnueabihf/lib/libc.a ] || missing+=(libc6-dev-armhf-cross)
        command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
        command -v qemu-arm-static >/dev/null || missing+=(qemu-user-static)
    fi
    local std_missing=()
    if [ "$want_arm" = yes ]; then
        [ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib ] || std_missing+=("libstd-rust-web-dev:arm64=$RUST_WEB_VERSION")
        [ -d /usr/lib/rustlib/armv7-unknown-linux-gnueabihf/lib ] || std_missing+=("libstd-rust-web-dev:armhf=$RUST_WEB_VERSION")
    fi
    [ ${#missing[@]} -gt 0 ] || [ ${#std_missing[@]} -gt 0 ] || return 0
    [ "$(id -u)" = 0 ] || die "missing system packages (${missing[*]} ${std_missing[*]}); run as root to install them"
    local -a pkgs=()
    for p in "${missing[@]}"; do
        case $p in
            rustc-web|libstd-rust-web-dev|libstd-rust-web-1.85) pkgs+=("$p=$RUST_WEB_VERSION") ;;
            *) pkgs+=("$p") ;;
        esac
    done
    dpkg --add-architecture arm64
    dpkg --add-architecture armhf
    # A foreign-architecture index can fail while its mirror is mid-sync; the
    # indexes that did update are enough, and a missing package fails below.
    timeout 600 apt-get update || echo "cross-build: apt-get update reported errors; continuing" >&2
    if [ ${#pkgs[@]} -gt 0 ]; then
        # sort -u: qemu-user-static may be listed twice.
        mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
        DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y --no-install-recommends "${pkgs[@]}"
    fi
    if [ ${#std_missing[@]} -gt 0 ]; then
        # Only the target rlibs are wanted: unpacking instead of installing
        # avoids pulling in the foreign-architecture LLVM.
        local tmp
        tmp=$(mktemp -d)
        chmod 755 "$tmp"  # apt downloads as its own user
        (cd "$tmp" && timeout 600 apt-get download "${std_missing[@]}" && for d in ./*.deb; do dpkg -x "$d" /; done)
        rm -rf "$tmp"
    fi
}

# Builds one target into dist/fillguard-<target> and checks it is static.
build_one() {
    local target=$1 started elapsed out
    local -a env=()
    case $target in
        x86_64-unknown-linux-gnu)
            # Set here, not in .cargo/config.toml: for the host triple a config
            # rustflags section would also reach proc-macros of plain builds.
            env+=(CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static")
            ;;
        aarch64-unknown-linux-gnu)
            env+=(CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc)
            ;;
        armv7-unknown-linux-gnueabihf)
            env+=(CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc)
            ;;
    esac
    # Debian's rustc 1.85 for every target: it is the one with ARM standard
    # libraries, and using it for x86_64 too makes all three the same compiler.
    env+=(RUSTC="$DEBIAN_RUSTC")
    started=$(date +%s)
    # --target always, so +crt-static never applies to build scripts or proc-macros.
    env "${env[@]}" nice -n "${CROSS_BUILD_NICE:-10}" cargo build --locked --release --target "$target"
    elapsed=$(( $(date +%s) - started ))
    mkdir -p dist
    out="dist/fillguard-$target"
    cp "$CARGO_TARGET_DIR/$target/release/fillguard" "$out"
    local description size
    description=$(file -b "$out")
    size=$(stat -c %s "$out")
    printf '%s: %s bytes (%s KiB), built in %ss\n  file: %s\n' "$out" "$size" "$(( size / 1024 ))" "$elapsed" "$description"
    case $description in
        *"statically linked"*|*"static-pie linked"*) ;;
        *) die "$out is not statically linked" ;;
    esac
}

main() {
    local want_arm=no
    needs_arm && want_arm=yes
    install_packages "$want_arm"
    command -v file >/dev/null || die "the file command is missing (apt-get install file)"
    [ -x "$DEBIAN_RUSTC" ] || die "$DEBIAN_RUSTC is missing"
    for t in "${targets[@]}"; do
        build_one "$t"
    done
}

main
