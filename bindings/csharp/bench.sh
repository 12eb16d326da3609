#!/usr/bin/env bash
# Per-call overhead of the C# binding (bench/Bench.cs): version(), certSha256(32 B),
# PawlProtocol.Encrypt / Decrypt of 100 bytes with in-memory databases, after a warm-up.
#
#   PAWL_PROFILE=release bindings/csharp/bench.sh      # cargo builds the release library
#   PAWL_LIB_DIR=/dir bindings/csharp/bench.sh         # a library already built in /dir
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/build.sh"
out="$here/build"
mcs -langversion:7.2 -optimize+ -nologo -r:"$out/Pawl.dll" -out:"$out/Bench.exe" "$here/bench/Bench.cs"
cd "$out"
LD_LIBRARY_PATH="$out" exec mono --optimize=all Bench.exe
