#!/usr/bin/env bash
# Per-call overhead of the Swift binding (Sources/PawlBench; the same measurement as
# bindings/python/bench.py): version(), certSha256(32 B), encrypt(100 B), decrypt(100 B)
# through PawlProtocol with in-memory databases. The Swift side is built with -c release;
# the library is whatever build.sh takes (PAWL_LIB_DIR, or cargo with PAWL_PROFILE).
#   PAWL_LIB_DIR=/work/prebuilt bindings/swift/bench.sh
#   PAWL_BENCH_N=0.2 ...   scales the iteration counts
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/setup-chroot.sh" >/dev/null
bash "$here/build.sh"
exec bash "$here/swift-in-chroot.sh" run -c release PawlBench
