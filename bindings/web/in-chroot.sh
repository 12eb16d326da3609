#!/usr/bin/env bash
# Runs a command inside the forky chroot that setup-chroot.sh installs, with this repository
# (wherever this clone is) bind-mounted at /src, e.g.
#
#   bash bindings/web/in-chroot.sh cargo build --target wasm32-unknown-unknown -p pawl-core --no-default-features
#
# The command runs in /src, or in the matching folder of /src when called from inside the
# repository. Environment inside (nothing else of the caller's environment passes, except the
# variables listed in `pass` below):
#   CARGO_HOME=/opt/cargo-home            registry cache, kept in the chroot between runs
#   CARGO_TARGET_DIR=/src/target/web      under the repository's target/, apart from the host's
#   CC_wasm32_unknown_unknown=clang-22, AR_wasm32_unknown_unknown=llvm-ar-22   (C parts: SQLite)
#   PATH starting with /opt/wasm-bindgen-<Cargo.lock's version>/bin
#
# Mounts (the repository at /src, /proc, a tmpfs on /dev/shm) are made in a private mount
# and PID namespace when unshare works: they exist only for this run, and every process the
# command starts ends with it. Otherwise they are made on the host and unmounted on exit,
# failure included. Runs are serialized with a lock file (flock).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$here/../.." && pwd -P)"
CHROOT="${PAWL_WEB_CHROOT:-/var/cache/pawl/web-forky}"
MARKER="$CHROOT/.pawl-web-ready"

[ $# -ge 1 ] || { echo "usage: in-chroot.sh <command> [args...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "in-chroot.sh: needs root (mount/chroot)" >&2; exit 1; }

# Into private mount and PID namespaces (once), when the kernel allows it.
if [ -z "${_PAWL_WEB_NS:-}" ] \
    && unshare --mount --pid --fork --kill-child /bin/true 2>/dev/null; then
    export _PAWL_WEB_NS=1
    exec unshare --mount --propagation private --pid --fork --kill-child \
        /usr/bin/env bash "$0" "$@"
fi
unset _PAWL_WEB_NS

# One run at a time per chroot, and none while setup-chroot.sh changes it (same lock file,
# beside the chroot).
mkdir -p "$(dirname "$CHROOT")"
exec 9>"$CHROOT.lock"
flock 9

[ -f "$MARKER" ] || { echo "in-chroot.sh: run bindings/web/setup-chroot.sh first ($CHROOT not ready)" >&2; exit 1; }

# The wasm-bindgen CLI must be exactly the version of the crate in Cargo.lock.
wb_version="$(awk '/^\[\[package\]\]/ { n = 0 }
                   /^name = "wasm-bindgen"$/ { n = 1; next }
                   n && /^version = / { gsub(/"/, "", $3); print $3; n = 0 }' \
                  "$ROOT/Cargo.lock" | sort -u)"
case "$wb_version" in
    "" | *$'\n'*)
        echo "in-chroot.sh: expected exactly one wasm-bindgen version in Cargo.lock, found: ${wb_version:-none}" >&2
        exit 1 ;;
esac
wb_bin="/opt/wasm-bindgen-$wb_version/bin"      # inside the chroot
if [ ! -x "$CHROOT$wb_bin/wasm-bindgen" ] || ! grep -qx "wasm-bindgen=$wb_version" "$MARKER"; then
    echo "in-chroot.sh: Cargo.lock has wasm-bindgen $wb_version but the chroot's CLI is" \
         "$(sed -n 's/^wasm-bindgen=//p' "$MARKER"); run bindings/web/setup-chroot.sh" >&2
    exit 1
fi

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
pawl_unmount_on_exit

# A mount left by a killed earlier run (host-namespace mode) is replaced, not stacked on.
mount_fresh() {   # mount_fresh <mountpoint> <mount args...>
    local where="$1"; shift
    mkdir -p "$where"
    while mountpoint -q "$where"; do umount "$where" 2>/dev/null || umount -l "$where"; done
    mount "$@" "$where"
    mounted+=("$where")
}

# debootstrap creates the basic device nodes; bind /dev only if they are missing.
if [ ! -c "$CHROOT/dev/null" ] || [ ! -c "$CHROOT/dev/urandom" ]; then
    mount_fresh "$CHROOT/dev" --bind /dev
fi
mount_fresh "$CHROOT/proc" -t proc proc
mount_fresh "$CHROOT/dev/shm" -t tmpfs -o mode=1777 tmpfs
mount_fresh "$CHROOT/src" --bind "$ROOT"
cmp -s /etc/resolv.conf "$CHROOT/etc/resolv.conf" || cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"

# The caller's folder, if inside the repository.
workdir=/src
cwd="$(pwd -P)"
case "$cwd/" in "$ROOT"/*) workdir="/src${cwd#"$ROOT"}" ;; esac

pass=()
for v in RUSTFLAGS CARGO_BUILD_JOBS CARGO_TERM_COLOR CARGO_INCREMENTAL CARGO_PROFILE_RELEASE_DEBUG \
         RUST_BACKTRACE RUST_LOG TERM http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && pass+=("$v=${!v}")
done
for v in $(compgen -e); do
    case "$v" in PAWL_WEB_CHROOT) ;; PAWL_*) pass+=("$v=${!v}") ;; esac
done

set +e
chroot "$CHROOT" /usr/bin/env -i \
    HOME=/root LANG=C.UTF-8 TMPDIR=/tmp \
    PATH="$wb_bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    CARGO_HOME=/opt/cargo-home \
    CARGO_TARGET_DIR=/src/target/web \
    CC_wasm32_unknown_unknown=clang-22 \
    AR_wasm32_unknown_unknown=llvm-ar-22 \
    "${pass[@]}" \
    /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$workdir" "$@" 9>&-
rc=$?
set -e
exit $rc
