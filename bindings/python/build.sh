#!/usr/bin/env bash
# Build libpawl_ffi and generate the Python module from it, into pawl/ (next to this
# script): pawl/pawl_ffi.py (uniffi-generated) and the shared library it loads. Both
# are build products (git-ignored): the generated code always matches the library.
#
#   bindings/python/build.sh              # debug build (what the tests use)
#   PAWL_PROFILE=release bindings/python/build.sh
#
# Uses CARGO_TARGET_DIR when set, else the workspace's target/ (the same build the
# cargo tests use). PAWL_LIB_DIR=<dir>: take libpawl_ffi and uniffi-bindgen from <dir>,
# no cargo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
profile="${PAWL_PROFILE:-debug}"
# shellcheck source=../lib.sh
. "$here/../lib.sh"
lib="$(pawl_lib_name)"
out="$(pawl_lib_dir "$lib" uniffi-bindgen)"
"$out/uniffi-bindgen" generate "$out/$lib" --language python --out-dir "$here/pawl" >/dev/null
cp "$out/$lib" "$here/pawl/$lib"
# A release library for shipping: drop the debug information (tens of MB).
if [ "$profile" = release ] && command -v strip >/dev/null 2>&1 && [ "$(uname -s)" = Linux ]; then
    strip --strip-debug "$here/pawl/$lib"
fi
echo "pawl: generated $here/pawl/pawl_ffi.py and copied $lib ($profile)"
