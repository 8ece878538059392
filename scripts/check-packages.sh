#!/usr/bin/env bash
# Checks the Debian packages that scripts/package-deb.sh built, and fails on any mismatch.
#
#   scripts/check-packages.sh [DEB...]   (default: dist/fillguard_<version>_{amd64,arm64,armhf}.deb)
#   scripts/check-packages.sh --self-test
#
# For each package: its control fields (Architecture from the file name, Cargo.toml's
# version, no Depends for a static binary), its control members and modes, and its `dpkg -c`
# listing (printed) against the exact set of paths, modes and owners expected; the binary
# inside is the static binary of its architecture and the same bytes as dist/'s; its man page
# covers every command; an ARM package's binary runs --version and check-config on its
# conffile under qemu-user when that is installed. The amd64 package is then installed into a scratch root with `dpkg --root` (maintainer scripts run
# without chroot, with a recording systemctl and systemd "running" in the scratch root), where
# `systemd-analyze verify` checks the installed unit against the installed binary, the
# installed binary runs `--version`, `check-config` on the installed conffile and one paper
# loop turn; a reinstall takes the upgrade path, and a purge must keep the database.
# Each package also goes through lintian when it is installed (CHECK_LINTIAN=0 skips it).
# CHECK_PACKAGES_LIVE_INSTALL=1 also installs and purges the amd64 package on this machine (root).
#
# --self-test breaks copies of the amd64 package (a mode, a path, the conffile list, the
# architecture, a maintainer script that starts the service) and fails unless the check
# rejects every one.
set -euo pipefail
cd "$(dirname "$0")/.."

DIST="${DIST:-$PWD/dist}"
# The installed binary is checked with the package's configuration alone: any FILLGUARD_*
# variable of the caller would be read as a configuration key.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^FILLGUARD_' || true)

die() { echo "check-packages: FAILED: $*" >&2; exit 1; }

crate_version() {
    local version
    version=$(awk '/^\[/{section=$0} section=="[package]" && /^version *=/{gsub(/.*= *"|".*/, ""); print; exit}' Cargo.toml)
    echo "${version//-/\~}"
}

# target_of, file_pattern_of, qemu_of.
# shellcheck source=scripts/deb-arch.sh
. scripts/deb-arch.sh

# The listing the package must have: "mode owner path", one a line, sorted by path.
expected_listing() {
    local file dir
    {
        printf '%s root/root ./%s\n' \
            -rwxr-xr-x usr/bin/fillguard \
            -rw-r--r-- lib/systemd/system/fillguard.service \
            -rw-r--r-- lib/systemd/system/fillguard-backup.service \
            -rw-r--r-- lib/systemd/system/fillguard-backup.timer \
            -rw-r--r-- etc/fillguard/fillguard.toml \
            -rw-r--r-- usr/share/man/man1/fillguard.1.gz \
            -rw-r--r-- usr/share/doc/fillguard/copyright \
            -rw-r--r-- usr/share/doc/fillguard/changelog.gz \
            -rw-r--r-- usr/share/doc/fillguard/README.md.gz \
            -rw-r--r-- usr/share/lintian/overrides/fillguard
        (cd dashboards && find . -path ./schema -prune -o -type f -printf '%P\n') | while read -r file; do
            printf -- '-rw-r--r-- root/root ./usr/share/fillguard/dashboards/%s\n' "$file"
        done
        # Every directory on the way, 0755.
        {
            printf '%s\n' usr/bin lib/systemd/system etc/fillguard usr/share/man/man1 usr/share/doc/fillguard \
                usr/share/lintian/overrides
            (cd dashboards && find . -path ./schema -prune -o -type d -printf 'usr/share/fillguard/dashboards/%P\n')
        } | while read -r dir; do
            dir=${dir%/}
            while [ "$dir" != . ]; do
                printf 'drwxr-xr-x root/root ./%s/\n' "$dir"
                dir=$(dirname "$dir")
            done
        done
        printf 'drwxr-xr-x root/root ./\n'
    } | LC_ALL=C sort -u -k3
}

# `dpkg -c` reduced to "mode owner path", sorted by path.
actual_listing() {
    dpkg -c "$1" | awk '{print $1, $2, $6}' | LC_ALL=C sort -k3
}

check_fields() {
    local deb=$1 arch=$2 field value
    for field in Package Version Architecture Maintainer Section Priority Description Installed-Size; do
        value=$(dpkg-deb -f "$deb" "$field")
        [ -n "$value" ] || die "$deb: no $field field"
    done
    [ "$(dpkg-deb -f "$deb" Package)" = fillguard ] || die "$deb: Package is not fillguard"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] ||
        die "$deb: Architecture is '$(dpkg-deb -f "$deb" Architecture)', the file name says $arch"
    [ "$(dpkg-deb -f "$deb" Version)" = "$VERSION" ] ||
        die "$deb: Version is '$(dpkg-deb -f "$deb" Version)', Cargo.toml says $VERSION"
    for field in Depends Pre-Depends; do
        value=$(dpkg-deb -f "$deb" "$field")
        [ -z "$value" ] || die "$deb: $field '$value' on a static binary"
    done
}

# The control archive: the conffile listed, the maintainer scripts executable, nothing else.
check_control() {
    local deb=$1 members expected conffiles
    members=$(dpkg-deb --ctrl-tarfile "$deb" | tar -tvf - | awk '{print $1, $2, $6}' | LC_ALL=C sort -k3)
    expected=$(printf '%s\n' \
        "drwxr-xr-x root/root ./" \
        "-rw-r--r-- root/root ./conffiles" \
        "-rw-r--r-- root/root ./control" \
        "-rw-r--r-- root/root ./md5sums" \
        "-rwxr-xr-x root/root ./postinst" \
        "-rwxr-xr-x root/root ./postrm" \
        "-rwxr-xr-x root/root ./prerm")
    [ "$members" = "$expected" ] ||
        die "$deb: control members differ:$(diff <(echo "$expected") <(echo "$members") | sed 's/^/  /')"
    conffiles=$(dpkg-deb -I "$deb" conffiles)
    [ "$conffiles" = /etc/fillguard/fillguard.toml ] || die "$deb: conffiles is '$conffiles'"
}

check_binary() {
    local deb=$1 arch=$2 work=$3 description dist_binary
    dpkg-deb -x "$deb" "$work/x-$arch"
    description=$(file -b "$work/x-$arch/usr/bin/fillguard")
    # shellcheck disable=SC2053 # the pattern is a glob on purpose
    [[ $description == $(file_pattern_of "$arch") ]] || die "$deb: /usr/bin/fillguard is not $arch: $description"
    case $description in
        *"statically linked"*|*"static-pie linked"*) ;;
        *) die "$deb: /usr/bin/fillguard is not static: $description" ;;
    esac
    dist_binary="$DIST/fillguard-$(target_of "$arch")"
    if [ -f "$dist_binary" ]; then
        cmp -s "$dist_binary" "$work/x-$arch/usr/bin/fillguard" ||
            die "$deb: /usr/bin/fillguard differs from $dist_binary"
    fi
}

# An ARM package's binary and conffile under qemu-user, when it is installed: the amd64
# package gets the same and more from its scratch install.
check_foreign_run() {
    local deb=$1 arch=$2 work=$3 qemu said
    qemu=$(qemu_of "$arch")
    [ -n "$qemu" ] || return 0
    if ! command -v "$qemu" >/dev/null; then
        echo "SKIPPED: running the $arch binary ($qemu is not installed)"
        return 0
    fi
    said=$(timeout 120 "$qemu" "$work/x-$arch/usr/bin/fillguard" --version) || die "$deb: --version under $qemu"
    [ "$said" = "fillguard ${VERSION//\~/-} ($(target_of "$arch"))" ] || die "$deb: --version says '$said'"
    said=$(timeout 120 "$qemu" "$work/x-$arch/usr/bin/fillguard" check-config --config "$work/x-$arch/etc/fillguard/fillguard.toml") ||
        die "$deb: check-config on its conffile under $qemu: $said"
    grep -qx 'kind = "paper"' <<<"$said" || die "$deb: the conffile's venue is not paper"
    echo "ok: under $qemu: $(timeout 120 "$qemu" "$work/x-$arch/usr/bin/fillguard" --version), check-config on its conffile"
}

# The man page documents every command under the name fillguard (not the dist/ file name).
check_man_page() {
    local deb=$1 arch=$2 work=$3 page sections command
    page=$(zcat "$work/x-$arch/usr/share/man/man1/fillguard.1.gz")
    sections=$(grep -c '^\.SS "fillguard ' <<<"$page" || true)
    [ "$sections" -ge 7 ] || die "$deb: the man page has $sections command sections, expected at least 7"
    # The page's source escapes every hyphen (\-); these are fixed strings.
    for command in run 'check\-config' status signal breaker simulate 'sim\-exchange'; do
        grep -qF "Usage: fillguard $command " <<<"$page" || die "$deb: the man page has no 'Usage: fillguard $command'"
    done
    ! grep -qF 'unknown\-linux' <<<"$page" || die "$deb: the man page names the dist/ file: $(grep -m1 -F 'unknown\-linux' <<<"$page")"
}

check_one() {
    local deb=$1 work=$2 arch expected actual said
    arch=${deb##*_}
    arch=${arch%.deb}
    target_of "$arch" >/dev/null
    echo "== $deb"
    dpkg -c "$deb"
    check_fields "$deb" "$arch"
    check_control "$deb"
    expected=$(expected_listing)
    actual=$(actual_listing "$deb")
    [ "$expected" = "$actual" ] ||
        die "$deb: dpkg -c differs from what is expected (< expected, > found):
$(diff <(echo "$expected") <(echo "$actual") | grep '^[<>]' | sed 's/^/  /')"
    check_binary "$deb" "$arch" "$work"
    check_man_page "$deb" "$arch" "$work"
    check_foreign_run "$deb" "$arch" "$work"
    if [ "${CHECK_LINTIAN:-1}" = 0 ]; then
        echo "SKIPPED: lintian (CHECK_LINTIAN=0)"
    elif command -v lintian >/dev/null; then
        said=$(lintian --fail-on error,warning "$deb" 2>&1) || die "$deb: lintian: $said"
        grep -v 'running with root privileges' <<<"$said" || true
        echo "ok: lintian: no error or warning"
    else
        echo "SKIPPED: lintian is not installed (apt-get install lintian)"
    fi
    echo "ok: $deb (fields, control, $(echo "$actual" | wc -l) entries, $(file -b "$work/x-$arch/usr/bin/fillguard" | cut -d, -f1-2))"
}

# A systemctl and a deb-systemd-invoke that record their arguments, first on PATH for the
# maintainer scripts; $root/run/systemd/system tells the scripts that systemd runs.
recording_tools() {
    local work=$1 tool
    mkdir -p "$work/bin"
    for tool in systemctl deb-systemd-invoke; do
        printf '#!/bin/sh\necho "%s $*" >> "%s"\n' "$tool" "$work/calls.log" > "$work/bin/$tool"
        chmod 755 "$work/bin/$tool"
    done
}

# dpkg on the scratch root: maintainer scripts run without chroot, with $DPKG_ROOT set.
scratch_dpkg() {
    local work=$1
    shift
    : > "$work/calls.log"
    PATH="$work/bin:$PATH" dpkg --root="$work/root" --force-not-root --force-script-chrootless \
        --log=/dev/null "$@" > "$work/dpkg.out" 2>&1 || { cat "$work/dpkg.out" >&2; die "dpkg $* in the scratch root"; }
    cat "$work/dpkg.out"
}

expect_calls() {
    local work=$1 what=$2 expected=$3 actual
    actual=$(cat "$work/calls.log")
    [ "$actual" = "$expected" ] ||
        die "$what: the maintainer scripts called '${actual//$'\n'/; }', expected '${expected//$'\n'/; }'"
    echo "ok: $what: ${expected//$'\n'/; }"
}

# The installed unit and binary: systemd-analyze verify inside the scratch root (with this
# machine's units beside it for the targets it names), and the binary's own checks.
check_installed() {
    local work=$1 root=$1/root said version_line
    mkdir -p "$root/usr/lib/systemd/system"
    cp -a /lib/systemd/system/. "$root/usr/lib/systemd/system/"
    rm -f "$root/usr/lib/systemd/system/fillguard.service" "$root"/usr/lib/systemd/system/fillguard-backup.*
    # The backup service's commands come from the base system, which the scratch root lacks:
    # this machine's, for the check only.
    local tool system_tools=(/bin/sh /bin/mkdir /usr/bin/find)
    for tool in "${system_tools[@]}"; do
        [ ! -e "$root$tool" ] || die "the package installs $tool"
        install -D -m 0755 "$tool" "$root$tool"
    done
    said=$(systemd-analyze verify --root="$root" fillguard.service fillguard-backup.service fillguard-backup.timer 2>&1) ||
        die "systemd-analyze verify of the installed units: $said"
    [ -z "$said" ] || die "systemd-analyze verify of the installed units: $said"
    rm -rf "$root/usr/lib/systemd"
    rmdir "$root/usr/lib"
    for tool in "${system_tools[@]}"; do rm -f "$root$tool"; done
    rmdir "$root/bin" 2>/dev/null || true
    echo "ok: systemd-analyze verify --root=$root fillguard.service fillguard-backup.service fillguard-backup.timer: clean"
    if [ "$(dpkg --print-architecture)" != amd64 ]; then
        echo "SKIPPED: running the installed amd64 binary on a $(dpkg --print-architecture) machine"
        return 0
    fi
    version_line=$("$root/usr/bin/fillguard" --version)
    [ "$version_line" = "fillguard ${VERSION//\~/-} (x86_64-unknown-linux-gnu)" ] ||
        die "installed fillguard --version says '$version_line'"
    echo "ok: $version_line"
    said=$("$root/usr/bin/fillguard" check-config --config "$root/etc/fillguard/fillguard.toml") ||
        die "check-config on the installed conffile: $said"
    grep -qx 'kind = "paper"' <<<"$said" || die "the installed conffile's venue is not paper: $said"
    echo "ok: check-config --config $root/etc/fillguard/fillguard.toml: venue.kind = paper"
    mkdir -p "$work/state"
    STATE_DIRECTORY="$work/state" FILLGUARD_METRICS__LISTEN=off timeout 120 \
        "$root/usr/bin/fillguard" --config "$root/etc/fillguard/fillguard.toml" run --max-ticks 1 \
        > "$work/run.out" 2>&1 || { cat "$work/run.out" >&2; die "one paper turn of the installed package"; }
    [ -f "$work/state/fillguard.db" ] || die "run --max-ticks 1 left no database in STATE_DIRECTORY"
    said=$(STATE_DIRECTORY="$work/state" "$root/usr/bin/fillguard" --config "$root/etc/fillguard/fillguard.toml" status) ||
        die "status on the database of that turn: $said"
    echo "ok: run --max-ticks 1 on the installed conffile, then status: $(grep -m1 '^open trades' <<<"$said")"
}

# Install, upgrade (a reinstall takes that path) and purge in a scratch root.
check_scratch_install() {
    local deb=$1 work=$2/scratch root
    root=$work/root
    mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/run/systemd/system"
    : > "$root/var/lib/dpkg/status"
    recording_tools "$work"
    echo "== install $deb into the scratch root $root"
    scratch_dpkg "$work" -i "$deb"
    grep -q 'not enabled or started' "$work/dpkg.out" || die "postinst did not say the service is not started"
    expect_calls "$work" "fresh install" "systemctl daemon-reload"
    [ "$(dpkg --root="$root" -s fillguard | sed -n 's/^Status: //p')" = "install ok installed" ] ||
        die "fillguard is not installed in the scratch root"
    check_installed "$work"

    echo "== upgrade (reinstall) with an edited conffile"
    echo '# edited by the operator' >> "$root/etc/fillguard/fillguard.toml"
    scratch_dpkg "$work" --force-confold -i "$deb"
    expect_calls "$work" "upgrade" "systemctl daemon-reload
deb-systemd-invoke try-restart fillguard.service"
    grep -qx '# edited by the operator' "$root/etc/fillguard/fillguard.toml" || die "the upgrade replaced the edited conffile"
    echo "ok: the edited conffile survived the upgrade"

    echo "== purge with a database and a secret in place"
    mkdir -p "$root/var/lib/private/fillguard"
    ln -s private/fillguard "$root/var/lib/fillguard"
    echo database > "$root/var/lib/private/fillguard/fillguard.db"
    (umask 077; echo secret > "$root/etc/fillguard/api-secret")
    scratch_dpkg "$work" --purge fillguard
    expect_calls "$work" "purge" "deb-systemd-invoke stop fillguard-backup.timer fillguard.service
systemctl daemon-reload
systemctl daemon-reload"
    [ "$(cat "$root/var/lib/private/fillguard/fillguard.db")" = database ] || die "the purge removed the database"
    grep -q "kept the trading database $root/var/lib/private/fillguard/fillguard.db" "$work/dpkg.out" ||
        die "the purge did not say where the database is"
    [ ! -e "$root/etc/fillguard/fillguard.toml" ] || die "the purge left the conffile"
    [ -f "$root/etc/fillguard/api-secret" ] || die "the purge removed a file the package does not own"
    for path in usr/bin/fillguard lib/systemd/system/fillguard.service \
        lib/systemd/system/fillguard-backup.service lib/systemd/system/fillguard-backup.timer \
        usr/share/fillguard; do
        [ ! -e "$root/$path" ] || die "the purge left /$path"
    done
    echo "ok: purge kept the database and the operator's secret, removed the package's files"
}

# The amd64 package installed on this machine and purged again, only when asked.
check_live_install() (
    deb=$1
    if [ "${CHECK_PACKAGES_LIVE_INSTALL:-0}" != 1 ]; then
        echo "SKIPPED: installing $deb on this machine (CHECK_PACKAGES_LIVE_INSTALL=1 to do it, as root)"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "CHECK_PACKAGES_LIVE_INSTALL=1 needs root"
    ! dpkg -s fillguard >/dev/null 2>&1 || die "fillguard is already installed here; not touching it"
    echo "== dpkg -i $deb on this machine"
    trap 'dpkg --purge fillguard >/dev/null 2>&1 || true' EXIT
    dpkg -i "$deb"
    /usr/bin/fillguard --version
    /usr/bin/fillguard check-config --config /etc/fillguard/fillguard.toml > /dev/null
    if [ -d /run/systemd/system ]; then
        ! systemctl is-enabled --quiet fillguard.service || die "the package enabled the service"
        ! systemctl is-active --quiet fillguard.service || die "the package started the service"
    fi
    dpkg --purge fillguard
    [ ! -e /usr/bin/fillguard ] || die "dpkg --purge left /usr/bin/fillguard"
    echo "ok: installed, checked and purged on this machine"
)

# Copies of the amd64 package, each broken in one way; the check must reject every one.
self_test() {
    local deb=$1 work=$2 mutation name rest expected broken said failures=0
    # name @@ what the failure must say @@ the change, run inside the unpacked package
    local -a mutations=(
        "binary group-writable@@> -rwxrwxr-x root/root ./usr/bin/fillguard@@chmod 0775 usr/bin/fillguard"
        "binary dynamically linked@@is not static@@cp /bin/true usr/bin/fillguard"
        "unit moved@@< -rw-r--r-- root/root ./lib/systemd/system/fillguard.service@@mkdir -p usr/lib/systemd/system && mv lib/systemd/system/fillguard.service usr/lib/systemd/system/"
        "unit names another binary@@is not executable@@sed -i 's|^ExecStart=/usr/bin/fillguard |ExecStart=/usr/bin/fillguard-old |' lib/systemd/system/fillguard.service"
        "man page under the binary's file name in dist@@the man page has no 'Usage: fillguard run'@@zcat usr/share/man/man1/fillguard.1.gz | sed 's/^Usage: fillguard /Usage: fillguard\\\\-x86_64\\\\-unknown\\\\-linux\\\\-gnu /' | gzip -9n > man && mv man usr/share/man/man1/fillguard.1.gz"
        "dashboard missing@@< -rw-r--r-- root/root ./usr/share/fillguard/dashboards/alerts.yml@@rm usr/share/fillguard/dashboards/alerts.yml"
        "conffile not listed@@conffiles is ''@@: > DEBIAN/conffiles"
        "wrong architecture@@Architecture is 'arm64'@@sed -i 's/^Architecture: .*/Architecture: arm64/' DEBIAN/control"
        "a Depends@@Depends 'libc6'@@sed -i '/^Recommends:/i Depends: libc6' DEBIAN/control"
        "postinst enables the service@@fresh install: the maintainer scripts called@@sed -i 's/^exit 0$/systemctl enable --now fillguard.service\\nexit 0/' DEBIAN/postinst"
        "prerm stops on upgrade@@upgrade: the maintainer scripts called@@sed -i 's/^    upgrade|failed-upgrade)$/    upgrade|failed-upgrade)\\n        systemctl stop fillguard.service/' DEBIAN/prerm"
        "purge deletes the database@@the purge removed the database@@sed -i 's|^    purge)$|    purge)\\n        rm -rf \"\$DPKG_ROOT/var/lib/private/fillguard\"|' DEBIAN/postrm"
    )
    echo "== self-test: the intact package passes"
    "$0" "$deb" > "$work/intact.out" 2>&1 || { cat "$work/intact.out" >&2; die "the intact package fails the check"; }
    for mutation in "${mutations[@]}"; do
        name=${mutation%%@@*}
        rest=${mutation#*@@}
        expected=${rest%%@@*}
        broken="$work/${name//[^a-zA-Z0-9]/-}"
        mkdir -p "$broken"
        dpkg-deb -R "$deb" "$broken/root"
        (cd "$broken/root" && eval "${rest#*@@}")
        dpkg-deb --root-owner-group -Znone --build "$broken/root" "$broken/$(basename "$deb")" >/dev/null
        # Without lintian, so that each copy fails at the check its change is aimed at.
        if said=$(CHECK_LINTIAN=0 DIST="$broken" "$0" "$broken/$(basename "$deb")" 2>&1); then
            echo "NOT CAUGHT: $name"
            failures=$((failures + 1))
        elif ! grep -qF -- "$expected" <<<"$said"; then
            echo "CAUGHT FOR ANOTHER REASON: $name (expected '$expected'):"
            grep -A2 'FAILED' <<<"$said" | sed 's/^/    /'
            failures=$((failures + 1))
        else
            echo "caught: $name:"
            grep -A2 'FAILED' <<<"$said" | sed -e 's/^check-packages: FAILED: //' -e 's/^/    /'
        fi
    done

    [ "$failures" = 0 ] || die "$failures broken package(s) passed the check"
    echo "ok: every broken copy was rejected"
}

main() {
    local deb self=0
    local -a debs=()
    for deb in "$@"; do
        case $deb in
            --self-test) self=1 ;;
            -*) die "unknown option $deb" ;;
            *) debs+=("$deb") ;;
        esac
    done
    VERSION=$(crate_version)
    [ ${#debs[@]} -gt 0 ] || debs=("$DIST/fillguard_${VERSION}_amd64.deb" "$DIST/fillguard_${VERSION}_arm64.deb" "$DIST/fillguard_${VERSION}_armhf.deb")
    for deb in "${debs[@]}"; do
        [ -f "$deb" ] || die "$deb is missing (scripts/package-deb.sh)"
    done
    for tool in dpkg dpkg-deb file systemd-analyze; do
        command -v "$tool" >/dev/null || die "$tool is missing"
    done
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    if [ $self = 1 ]; then
        for deb in "${debs[@]}"; do
            case $deb in *_amd64.deb) self_test "$deb" "$WORK"; return 0 ;; esac
        done
        die "--self-test needs the amd64 package"
    fi
    for deb in "${debs[@]}"; do
        check_one "$deb" "$WORK"
    done
    for deb in "${debs[@]}"; do
        case $deb in
            *_amd64.deb)
                check_scratch_install "$deb" "$WORK"
                check_live_install "$deb"
                ;;
        esac
    done
    echo "ok: ${#debs[@]} package(s) checked"
}

main "$@"
