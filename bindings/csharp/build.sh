#!/usr/bin/env bash
# Build the C# package's pieces (next to this script), all build products (git-ignored):
#
#   build/generated/NativeMethods.g.cs   P/Invoke declarations (csbindgen), from ffi/src/capi.rs
#   build/include/pawl.h                 the C header (cbindgen), for C and C++ users
#   build/libpawl_ffi.so                 the native library (host platform)
#   build/Pawl.dll, build/Pawl.xml       the assembly (Mono's mcs, C# 7.2) and its docs
#
#   bindings/csharp/build.sh                          # cargo build (debug), then the rest
#   PAWL_PROFILE=release bindings/csharp/build.sh
#   PAWL_LIB_DIR=/some/dir bindings/csharp/build.sh   # no cargo: libpawl_ffi.so and
#       pawl-capi-gen already built in that directory
#
# Without PAWL_LIB_DIR: `cargo build -p pawl-ffi --features cli` (the library and the
# generator), in CARGO_TARGET_DIR when set, else the workspace's target/. The same
# sources build for netstandard2.0 with Pawl.csproj (dotnet pack; see README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
profile="${PAWL_PROFILE:-debug}"
# shellcheck source=../lib.sh
. "$here/../lib.sh"
lib="$(pawl_lib_name)"
libdir="$(pawl_lib_dir "$lib" pawl-capi-gen)"

out="$here/build"
mkdir -p "$out/generated" "$out/include"
"$libdir/pawl-capi-gen" "$out/generated" >/dev/null
mv "$out/generated/pawl.h" "$out/include/pawl.h"
cp "$libdir/$lib" "$out/$lib"
if [ "$profile" = release ] && command -v strip >/dev/null 2>&1 && [ "$(uname -s)" = Linux ]; then
    strip --strip-debug "$out/$lib"
fi
mcs -langversion:7.2 -target:library -unsafe -optimize+ -nologo -warnaserror \
    -doc:"$out/Pawl.xml" -out:"$out/Pawl.dll" \
    "$out/generated/NativeMethods.g.cs" "$here"/src/*.cs
echo "pawl: built $out/Pawl.dll, $out/include/pawl.h and copied $lib ($profile, from $libdir)"
