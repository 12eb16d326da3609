#!/usr/bin/env bash
# The Swift suite: install the trixie chroot with the Swift toolchain when missing
# (setup-chroot.sh; once, ~4 min), generate the binding (build.sh), then run `swift test`
# (XCTest) inside the chroot. The tests start their own pawl-relay on loopback.
# Idempotent; needs root (debootstrap, chroot, mount). Extra arguments go to `swift test`
# (e.g. --filter ProtocolTests). Exits non-zero when a test fails.
#
#   PAWL_LIB_DIR=<dir>   use an already-built libpawl_ffi.so, uniffi-bindgen and pawl-relay
#                        from <dir>: no cargo at all. Unset: cargo builds them (like
#                        bindings/python), in CARGO_TARGET_DIR when set, PAWL_PROFILE=release
#                        for a release library.
#   PAWL_SWIFT_CHROOT    the chroot (default /var/cache/pawl/swift-trixie)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

echo "== swift bindings: toolchain (trixie chroot)"
bash "$here/setup-chroot.sh"

echo "== swift bindings: build"
bash "$here/build.sh"
# shellcheck source=../lib.sh
. "$here/../lib.sh"
relay="$(pawl_relay_bin)"

echo "== swift bindings: swift test"
# XCTest only: the Swift Testing runner would close the output with "0 tests passed".
PAWL_RELAY_BIN="$relay" exec bash "$here/swift-in-chroot.sh" test --disable-swift-testing "$@"
