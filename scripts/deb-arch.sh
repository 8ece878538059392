# shellcheck shell=bash
# Sourced by scripts/package-deb.sh and scripts/check-packages.sh: what each Debian
# architecture of the packages is in the rest of the project. The caller defines `die`.

# The Rust target triple whose binary (dist/fillguard-<triple>) the package carries.
target_of() {
    case $1 in
        amd64) echo x86_64-unknown-linux-gnu ;;
        arm64) echo aarch64-unknown-linux-gnu ;;
        armhf) echo armv7-unknown-linux-gnueabihf ;;
        *) die "unknown architecture $1 (known: amd64 arm64 armhf)" ;;
    esac
}

# What `file` says about that binary, as a shell pattern.
file_pattern_of() {
    case $1 in
        amd64) echo "ELF 64-bit LSB *, x86-64,*" ;;
        arm64) echo "ELF 64-bit LSB *, ARM aarch64,*" ;;
        armhf) echo "ELF 32-bit LSB *, ARM, EABI5*" ;;
    esac
}

# The qemu-user that runs it on an x86_64 machine (none for amd64).
qemu_of() {
    case $1 in
        amd64) echo "" ;;
        arm64) echo qemu-aarch64-static ;;
        armhf) echo qemu-arm-static ;;
    esac
}
