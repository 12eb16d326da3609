#!/usr/bin/env bash
# Generate the Kotlin binding from the built library (next to this script):
#
#   generated/kotlin/org/pawl/pawl_ffi.kt   uniffi-generated (package org.pawl); the
#                                           Gradle build compiles it too
#   build/lib/libpawl_ffi.so                the library it loads (host platform: tests)
#
# Both are build products (git-ignored): the generated code always matches the library.
# (generated/ is outside build/ so that `gradle clean` keeps it.)
#
#   bindings/kotlin/build.sh                          # cargo build (debug), then generate
#   PAWL_PROFILE=release bindings/kotlin/build.sh
#   PAWL_LIB_DIR=/some/dir bindings/kotlin/build.sh   # no cargo build: use the
#       libpawl_ffi.so and uniffi-bindgen already in that directory
#
# Without PAWL_LIB_DIR it builds like bindings/python/build.sh (`cargo build -p pawl-ffi
# --features cli`), in CARGO_TARGET_DIR when set, else the workspace's target/.
# uniffi-bindgen itself runs `cargo metadata --no-deps` (reads the manifests, builds
# nothing) to find ffi/; uniffi.toml here sets the package and a rename (see it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
profile="${PAWL_PROFILE:-debug}"
# shellcheck source=../lib.sh
. "$here/../lib.sh"
lib="$(pawl_lib_name)"
libdir="$(pawl_lib_dir "$lib" uniffi-bindgen)"

gen="$here/generated/kotlin"
rm -rf "$gen"
mkdir -p "$gen" "$here/build/lib"
# -n: no ktlint (not installed; the generator only warns about it).
"$libdir/uniffi-bindgen" generate "$libdir/$lib" --language kotlin --no-format \
    --metadata-no-deps --config "$here/uniffi.toml" --out-dir "$gen" >/dev/null
[ -s "$gen/org/pawl/pawl_ffi.kt" ] || { echo "kotlin build.sh: nothing generated" >&2; exit 1; }
cp "$libdir/$lib" "$here/build/lib/$lib"
# A release library for shipping: drop the debug information (tens of MB).
if [ "$profile" = release ] && command -v strip >/dev/null 2>&1 && [ "$(uname -s)" = Linux ]; then
    strip --strip-debug "$here/build/lib/$lib"
fi
echo "pawl: generated $gen/org/pawl/pawl_ffi.kt and copied $lib ($profile, from $libdir)"
