#!/usr/bin/env bash
# The Kotlin suite: install the toolchain when missing (JNA + JUnit 5 from Debian,
# kotlinc from npm into a cache outside the repository), build the library and the
# binding once, compile the binding (generated + hand-written sources) into one jar and
# the tests into another (each recompiled only when its sources change), and run them
# with the JUnit 5 console launcher. The tests start their own pawl-relay on loopback.
# Idempotent; exits non-zero on any failure. Extra arguments go to the launcher
# (e.g. `--select-method org.pawl.ProtocolTest#protocolErrorsAreTyped`).
#
#   bindings/kotlin/run-tests.sh                        # cargo builds ffi + relay (debug)
#   PAWL_LIB_DIR=/dir bindings/kotlin/run-tests.sh      # no cargo build: libpawl_ffi.so,
#                                                       # uniffi-bindgen, pawl-relay from /dir
# Environment: PAWL_KOTLIN_HOME (where kotlinc is installed; default
# ${XDG_CACHE_HOME:-$HOME/.cache}/pawl/kotlin), CARGO_TARGET_DIR, PAWL_PROFILE.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=toolchain.sh
. "$here/toolchain.sh"
pawl_kotlin_toolchain

echo "== kotlin bindings: build"
bash "$here/build.sh"
# shellcheck source=../lib.sh
. "$here/../lib.sh"
relay="$(pawl_relay_bin)"

echo "== kotlin bindings: compile"
pawl_compile_jar "$here/build/pawl.jar" "$KOTLIN_RUNTIME_CP" \
    "$here/generated/kotlin" "$here/src/main/kotlin"
pawl_compile_jar "$here/build/pawl-tests.jar" "$here/build/pawl.jar:$KOTLIN_RUNTIME_CP:$JUNIT_JAR" \
    "$here/src/test/kotlin"

echo "== kotlin bindings: junit"
cp="$here/build/pawl.jar:$here/build/pawl-tests.jar:$KOTLIN_RUNTIME_CP"
# All tests, unless the arguments select some (the launcher refuses both at once).
select=(--scan-class-path "$here/build/pawl-tests.jar")
for a in "$@"; do
    case "$a" in --select* | -[cmpdfu] | --include-classname* | -n) select=() ;; esac
done
[ -t 1 ] || select+=(--disable-ansi-colors)
exec java -Djna.library.path="$here/build/lib" \
    -Dpawl.relay.bin="$relay" \
    -Dpawl.test.classpath="$cp" \
    -jar "$JUNIT_JAR" \
    --class-path "$cp" \
    "${select[@]}" \
    --fail-if-no-tests \
    --disable-banner \
    --details=tree \
    "$@"
