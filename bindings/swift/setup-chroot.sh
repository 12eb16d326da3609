#!/usr/bin/env bash
# Idempotently installs a Debian trixie chroot holding the Swift toolchain (swiftlang) and
# libc6-dev. Debian 12 (bookworm) has no Swift package; trixie does.
# The chroot lives outside the repository: PAWL_SWIFT_CHROOT (default /var/cache/pawl/swift-trixie).
# A marker file is written only after a complete install, so an interrupted install is redone.
set -euo pipefail

CHROOT="${PAWL_SWIFT_CHROOT:-/var/cache/pawl/swift-trixie}"
MARKER="$CHROOT/.pawl-swift-ready"

if [ -f "$MARKER" ]; then
    echo "swift chroot ready: $CHROOT"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "setup-chroot.sh: needs root (debootstrap/chroot)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends debootstrap
fi

# A partial tree from an interrupted run: start over.
if [ -e "$CHROOT" ]; then
    echo "removing incomplete chroot $CHROOT"
    # Make sure nothing is still mounted inside before deleting.
    for m in $(awk -v p="$CHROOT/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" || true
    done
    rm -rf --one-file-system "$CHROOT"
fi
mkdir -p "$(dirname "$CHROOT")"

echo "debootstrap trixie into $CHROOT (a few minutes)"
# debootstrap's default Debian mirror unless PAWL_DEBIAN_MIRROR names another one.
debootstrap --variant=minbase trixie "$CHROOT" ${PAWL_DEBIAN_MIRROR:+"$PAWL_DEBIAN_MIRROR"}

cleanup() { umount "$CHROOT/proc" 2>/dev/null || true; }
trap cleanup EXIT
mount -t proc proc "$CHROOT/proc"
chroot "$CHROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update
chroot "$CHROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends swiftlang libc6-dev ca-certificates
chroot "$CHROOT" apt-get clean
chroot "$CHROOT" swift --version

date -u +%FT%TZ > "$MARKER"
echo "swift chroot ready: $CHROOT"
