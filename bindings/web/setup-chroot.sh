#!/usr/bin/env bash
# Idempotently installs what building Pawl for the browser needs (see the web design notes):
#
#  - a Debian forky chroot holding rustc/cargo, clippy (rust-clippy), the wasm32 standard
#    library (libstd-rust-dev-wasm32), rust-lld (rust-llvm) and clang-22/llvm-22/lld-22 for
#    the C parts (SQLite). bookworm has none of it and trixie's rustc (1.85) is older than the
#    workspace's rust-version; the host's rustup cannot download the wasm32 target.
#  - inside it, the wasm-bindgen CLI at exactly the version of the `wasm-bindgen` crate in
#    Cargo.lock (the two must match), built with `cargo install` into
#    /opt/wasm-bindgen-<version>/bin (Debian's own package is older).
#  - on the host, Debian's chromium and chromium-driver, for browser tests driven by
#    playwright-core and for wasm-bindgen-test-runner (through chromedriver).
#
# The chroot lives outside the repository: PAWL_WEB_CHROOT (default /var/cache/pawl/web-forky).
# Two markers, each written only after its step completed, so an interrupted run redoes
# exactly what is missing:
#   .pawl-web-base-ready   debootstrap + apt done (otherwise the tree is rebuilt from scratch)
#   .pawl-web-ready        everything done; records the wasm-bindgen version and PACKAGES.
#                          When Cargo.lock names another version later, only the CLI is
#                          installed; packages added to PACKAGES later are installed too.
# Cargo's registry cache for builds in the chroot: /opt/cargo-home in the chroot.
#
#   PAWL_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   PAWL_WEB_JOBS        cargo install jobs (default 1: the machine is shared)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$here/../.." && pwd)"
CHROOT="${PAWL_WEB_CHROOT:-/var/cache/pawl/web-forky}"
BASE_MARKER="$CHROOT/.pawl-web-base-ready"
MARKER="$CHROOT/.pawl-web-ready"
MIRROR="${PAWL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CARGO_HOME_IN=/opt/cargo-home       # inside the chroot
PACKAGES=(rustc cargo rust-clippy libstd-rust-dev-wasm32 rust-llvm clang-22 llvm-22 lld-22
          ca-certificates gcc libc6-dev pkg-config)

# The version of the wasm-bindgen crate in Cargo.lock (exactly one is expected).
lock_wasm_bindgen_version() {
    local versions
    versions="$(awk '/^\[\[package\]\]/ { n = 0 }
                     /^name = "wasm-bindgen"$/ { n = 1; next }
                     n && /^version = / { gsub(/"/, "", $3); print $3; n = 0 }' \
                    "$ROOT/Cargo.lock" | sort -u)"
    case "$versions" in
        "") echo "setup-chroot.sh: no wasm-bindgen crate in $ROOT/Cargo.lock" >&2; return 1 ;;
        *$'\n'*) echo "setup-chroot.sh: several wasm-bindgen versions in Cargo.lock:" $versions >&2; return 1 ;;
    esac
    echo "$versions"
}

WB_VERSION="$(lock_wasm_bindgen_version)"
WB_ROOT_IN="/opt/wasm-bindgen-$WB_VERSION"     # inside the chroot

if [ -f "$MARKER" ] && grep -qx "wasm-bindgen=$WB_VERSION" "$MARKER" \
    && grep -qxF "packages=${PACKAGES[*]}" "$MARKER" \
    && [ -x "$CHROOT$WB_ROOT_IN/bin/wasm-bindgen" ] && [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "web chroot ready: $CHROOT (wasm-bindgen $WB_VERSION)"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "setup-chroot.sh: needs root (debootstrap/chroot/apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
t_start=$SECONDS

# No in-chroot.sh run while the chroot changes (the same lock file, beside the chroot).
mkdir -p "$(dirname "$CHROOT")"
exec 9>"$CHROOT.lock"
flock 9

# --- host: debootstrap (for the chroot) and chromium (for browser tests) -------------------
host_pkgs=()
command -v debootstrap >/dev/null 2>&1 || host_pkgs+=(debootstrap)
[ -x /usr/bin/chromium ] || host_pkgs+=(chromium)
[ -x /usr/bin/chromedriver ] || host_pkgs+=(chromium-driver)
if [ ${#host_pkgs[@]} -gt 0 ]; then
    echo "host: apt-get install ${host_pkgs[*]}"
    apt-get update
    # Without recommends: chromium's pull in avahi, cups helpers, perl modules and more,
    # which headless tests do not need.
    apt-get install -y --no-install-recommends "${host_pkgs[@]}"
fi
/usr/bin/chromium --version

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
pawl_unmount_on_exit

mount_proc() {
    if ! mountpoint -q "$CHROOT/proc"; then
        mount -t proc proc "$CHROOT/proc"
        mounted+=("$CHROOT/proc")
    fi
}

# The host's extra CA certificates (a TLS-inspecting proxy's): without them cargo in the
# chroot fails with "self-signed certificate in certificate chain".
sync_ca_certs() {
    local changed=0 f
    mkdir -p "$CHROOT/usr/local/share/ca-certificates"
    for f in /usr/local/share/ca-certificates/*.crt; do
        [ -f "$f" ] || continue
        if ! cmp -s "$f" "$CHROOT/usr/local/share/ca-certificates/$(basename "$f")"; then
            cp "$f" "$CHROOT/usr/local/share/ca-certificates/"
            changed=1
        fi
    done
    cmp -s /etc/resolv.conf "$CHROOT/etc/resolv.conf" || cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
    if [ "$changed" = 1 ] && [ -x "$CHROOT/usr/sbin/update-ca-certificates" ]; then
        chroot "$CHROOT" update-ca-certificates
    fi
}

in_chroot() {
    chroot "$CHROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TMPDIR=/tmp \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# --- the forky chroot -----------------------------------------------------------------------
if [ ! -f "$BASE_MARKER" ]; then
    # A partial tree from an interrupted run: start over.
    if [ -e "$CHROOT" ]; then
        echo "removing incomplete chroot $CHROOT"
        # Nothing may still be mounted inside (in-chroot.sh binds the repository at /src).
        for m in $(awk -v p="$CHROOT/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r); do
            umount "$m" 2>/dev/null || umount -l "$m"
        done
        if awk -v p="$CHROOT/" 'index($2, p) == 1' /proc/mounts | grep -q .; then
            echo "setup-chroot.sh: something is still mounted under $CHROOT; not deleting" >&2
            exit 1
        fi
        rm -rf --one-file-system "$CHROOT"
    fi
    echo "debootstrap forky into $CHROOT (a few minutes)"
    t=$SECONDS
    # bookworm's debootstrap has no forky script; sid's works for it.
    debootstrap --variant=minbase forky "$CHROOT" "$MIRROR" /usr/share/debootstrap/scripts/sid
    echo "debootstrap took $((SECONDS - t)) s"

    # The mirror's testing/unstable Release files can be past their Valid-Until.
    echo 'Acquire::Check-Valid-Until "false";' > "$CHROOT/etc/apt/apt.conf.d/99pawl-no-valid-until"
    sync_ca_certs
    mount_proc

    echo "apt-get install ${PACKAGES[*]}"
    t=$SECONDS
    in_chroot apt-get update
    in_chroot apt-get install -y --no-install-recommends "${PACKAGES[@]}"
    in_chroot update-ca-certificates
    in_chroot apt-get clean
    echo "apt took $((SECONDS - t)) s"

    in_chroot rustc --version
    in_chroot clang-22 --version | head -n1
    ls "$CHROOT"/usr/lib/rustlib/wasm32-unknown-unknown/lib/libcore-*.rlib >/dev/null
    in_chroot sh -c 'command -v rust-lld && command -v llvm-ar-22' >/dev/null

    { date -u +%FT%TZ; in_chroot rustc --version; } > "$BASE_MARKER"
fi

# --- the wasm-bindgen CLI at the lock's version ---------------------------------------------
rm -f "$MARKER"
sync_ca_certs
mount_proc

# Packages added to PACKAGES after this chroot was made (rust-clippy, for clippy on wasm32).
missing=()
for p in "${PACKAGES[@]}"; do
    in_chroot dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qx "install ok installed" \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "apt-get install ${missing[*]}"
    in_chroot apt-get update
    in_chroot apt-get install -y --no-install-recommends "${missing[@]}"
    in_chroot apt-get clean
fi
mkdir -p "$CHROOT$CARGO_HOME_IN"

wb_ok() {
    [ -x "$CHROOT$WB_ROOT_IN/bin/wasm-bindgen" ] \
        && [ "$(in_chroot "$WB_ROOT_IN/bin/wasm-bindgen" --version)" = "wasm-bindgen $WB_VERSION" ]
}

if ! wb_ok; then
    echo "cargo install wasm-bindgen-cli $WB_VERSION into $WB_ROOT_IN (about 7 minutes at -j1)"
    t=$SECONDS
    partial="$WB_ROOT_IN.partial"
    build=/var/tmp/wasm-bindgen-cli-build       # kept between the two attempts below
    rm -rf "$CHROOT$partial" "$CHROOT$WB_ROOT_IN"
    install_cli() {
        in_chroot CARGO_HOME="$CARGO_HOME_IN" \
            cargo install wasm-bindgen-cli --version "=$WB_VERSION" \
            --root "$partial" --target-dir "$build" -j "${PAWL_WEB_JOBS:-1}" "$@"
    }
    # --locked (the CLI's own lock file) first; it has failed on a dependency before, and
    # then the newest compatible dependencies are used.
    if ! install_cli --locked; then
        echo "cargo install --locked failed; trying without --locked"
        install_cli
    fi
    mv "$CHROOT$partial" "$CHROOT$WB_ROOT_IN"
    rm -rf "$CHROOT$build"
    echo "cargo install took $((SECONDS - t)) s"
    if ! wb_ok; then
        echo "setup-chroot.sh: $WB_ROOT_IN/bin/wasm-bindgen does not report version $WB_VERSION" >&2
        exit 1
    fi
fi
in_chroot "$WB_ROOT_IN/bin/wasm-bindgen" --version

{
    date -u +%FT%TZ
    in_chroot rustc --version
    echo "wasm-bindgen=$WB_VERSION"
    echo "packages=${PACKAGES[*]}"
} > "$MARKER"
echo "web chroot ready: $CHROOT (wasm-bindgen $WB_VERSION) in $((SECONDS - t_start)) s"
