#!/usr/bin/env bash
# Generate the Swift binding from the built libpawl_ffi and put the library next to it:
#   Sources/Pawl/pawl_ffi.swift        (uniffi-generated Swift)
#   Sources/pawl_ffiFFI/pawl_ffiFFI.h  (its C header; module.modulemap is committed)
#   lib/libpawl_ffi.so (.dylib on macOS)
# All three are build products (git-ignored): the generated code always matches the library.
#
#   bindings/swift/build.sh                          # cargo build (debug), then generate
#   PAWL_PROFILE=release bindings/swift/build.sh
#   PAWL_LIB_DIR=/path/to/built bindings/swift/build.sh   # no cargo: a folder holding
#                                   # libpawl_ffi.so and uniffi-bindgen (and pawl-relay)
#
# Without PAWL_LIB_DIR it builds like bindings/python/build.sh
# (`cargo build -p pawl-ffi --features cli --locked`), in CARGO_TARGET_DIR when set.
# Prints nothing but one summary line on success.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
# shellcheck source=../lib.sh
. "$here/../lib.sh"
lib="$(pawl_lib_name)"
profile="${PAWL_PROFILE:-debug}"
out="$(pawl_lib_dir "$lib" uniffi-bindgen)"

gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
# (uniffi-bindgen warns that swift-format is missing: harmless, the output is unformatted.)
"$out/uniffi-bindgen" generate "$out/$lib" --language swift --out-dir "$gen" >/dev/null 2>"$gen/log" \
    || { cat "$gen/log" >&2; exit 1; }

# Replace a file only when its content changed, so the Swift build stays incremental.
put() {
    mkdir -p "$(dirname "$2")"
    if ! cmp -s "$1" "$2"; then
        cp "$1" "$2.tmp" && mv -f "$2.tmp" "$2"
    fi
}
put "$gen/pawl_ffi.swift" "$here/Sources/Pawl/pawl_ffi.swift"
put "$gen/pawl_ffiFFI.h" "$here/Sources/pawl_ffiFFI/pawl_ffiFFI.h"
mkdir -p "$here/lib"
cp "$out/$lib" "$gen/$lib"
# A release library for shipping: drop the debug information (tens of MB).
if [ "$profile" = release ] && command -v strip >/dev/null 2>&1 && [ "$(uname -s)" = Linux ]; then
    strip --strip-debug "$gen/$lib"
fi
put "$gen/$lib" "$here/lib/$lib"
echo "pawl swift: generated Sources/Pawl/pawl_ffi.swift, Sources/pawl_ffiFFI/pawl_ffiFFI.h; lib/$lib from $out"
