#!/usr/bin/env bash
# Per-call overhead of the Kotlin binding: version(), certSha256(32 B), and
# PawlProtocol.encrypt / decrypt of 100 bytes with in-memory databases, after a
# warm-up (src/bench/kotlin/org/pawl/Bench.kt; the same measurement as
# bindings/python/bench.py and `cargo run -p pawl-ffi --example overhead`).
#
#   bindings/kotlin/bench.sh                          # cargo build (debug), then measure
#   PAWL_PROFILE=release bindings/kotlin/bench.sh
#   PAWL_LIB_DIR=/dir bindings/kotlin/bench.sh        # the library already built in /dir
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=toolchain.sh
. "$here/toolchain.sh"
pawl_kotlin_toolchain
bash "$here/build.sh"
pawl_compile_jar "$here/build/pawl.jar" "$KOTLIN_RUNTIME_CP" \
    "$here/generated/kotlin" "$here/src/main/kotlin"
pawl_compile_jar "$here/build/pawl-bench.jar" "$here/build/pawl.jar:$KOTLIN_RUNTIME_CP" \
    "$here/src/bench/kotlin"
exec java -Djna.library.path="$here/build/lib" \
    -cp "$here/build/pawl.jar:$here/build/pawl-bench.jar:$KOTLIN_RUNTIME_CP" org.pawl.Bench
