#!/usr/bin/env bash
# Run `swift <args...>` on this package inside the trixie chroot (setup-chroot.sh), as
# run-tests.sh and bench.sh do. Expects build.sh to have run (generated sources, lib/).
#
# The package is copied (not bind-mounted: nothing of the repository is ever mounted
# inside the chroot) to /opt/pawl-swift/pkg in the chroot, where its .build stays between
# runs (warm runs recompile nothing); lib/libpawl_ffi.so and the relay go to its lib/.
# /proc is mounted for the run only (see below); nothing stays mounted afterwards.
#
#   PAWL_RELAY_BIN=<host path of pawl-relay>   copied in; the tests get its chroot path
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CHROOT="${PAWL_SWIFT_CHROOT:-/var/cache/pawl/swift-trixie}"
[ -f "$CHROOT/.pawl-swift-ready" ] || { echo "swift-in-chroot.sh: run setup-chroot.sh first" >&2; exit 1; }
[ -f "$here/Sources/Pawl/pawl_ffi.swift" ] || { echo "swift-in-chroot.sh: run build.sh first" >&2; exit 1; }

pkg=/opt/pawl-swift/pkg            # inside the chroot
dst="$CHROOT$pkg"

# One run at a time per chroot (shared work dir and /proc mount).
exec 9>"$CHROOT/.pawl-swift-lock"
flock 9

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
pawl_unmount_on_exit

# The sources: replace the copy; tar keeps modification times, so SwiftPM's incremental
# build sees unchanged files as unchanged.
mkdir -p "$dst/lib"
rm -rf "$dst/Sources" "$dst/Tests" "$dst/Package.swift"
tar -C "$here" -cf - Package.swift Sources Tests | tar -C "$dst" -xf -
for f in "$here"/lib/libpawl_ffi.so; do
    cmp -s "$f" "$dst/lib/$(basename "$f")" || cp -p "$f" "$dst/lib/"
done
relay_env=()
if [ -n "${PAWL_RELAY_BIN:-}" ]; then
    cmp -s "$PAWL_RELAY_BIN" "$dst/lib/pawl-relay" || cp -p "$PAWL_RELAY_BIN" "$dst/lib/pawl-relay"
    relay_env=(PAWL_RELAY_BIN="$pkg/lib/pawl-relay")
fi

# /proc: preferably in private PID and mount namespaces (unshare): the proc mount then
# exists only for this run and vanishes with it, and every process the tests start (the
# relay) ends when the run ends, even after a crash. Without namespaces: mount /proc here
# and unmount it on exit (trap above).
runner=()
if unshare --pid --fork --kill-child --mount-proc="$CHROOT/proc" chroot "$CHROOT" /bin/true 2>/dev/null; then
    runner=(unshare --pid --fork --kill-child --mount-proc="$CHROOT/proc")
elif ! mountpoint -q "$CHROOT/proc"; then
    mount -t proc proc "$CHROOT/proc"
    mounted+=("$CHROOT/proc")
fi
# debootstrap creates the basic device nodes; bind /dev only if they are missing.
if [ ! -c "$CHROOT/dev/null" ] || [ ! -c "$CHROOT/dev/urandom" ]; then
    mount --bind /dev "$CHROOT/dev"
    mounted+=("$CHROOT/dev")
fi

# Quote the arguments for the shell inside; the linker flags go right after the
# subcommand (for `swift run`, what follows the product name goes to the program).
[ $# -ge 1 ] || { echo "usage: swift-in-chroot.sh test|build|run [args...]" >&2; exit 2; }
args=" $(printf '%q' "$1") -Xlinker -L$pkg/lib -Xlinker -rpath=$pkg/lib"
shift
for a in "$@"; do args+=" $(printf '%q' "$a")"; done
set +e
"${runner[@]}" chroot "$CHROOT" /usr/bin/env -i \
    HOME=/root LANG=C.UTF-8 TMPDIR=/tmp \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LD_LIBRARY_PATH="$pkg/lib" "${relay_env[@]}" \
    PAWL_BENCH_N="${PAWL_BENCH_N:-}" \
    /bin/bash -c "cd $pkg && exec swift$args"
rc=$?
set -e
exit $rc
