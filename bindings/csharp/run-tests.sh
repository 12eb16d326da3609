#!/usr/bin/env bash
# The C# suite: install Mono and NUnit from Debian when missing, build the library, the
# generated P/Invoke code and Pawl.dll once (build.sh), then
#   1. the C header check: ffi/tests/c/smoke.c against build/include/pawl.h (C11 with
#      -Werror, and as C++), linked with the library and run;
#   2. the NUnit tests (tests/*.cs) with nunit-console; they start their own
#      pawl-relay on loopback.
# Idempotent; exits non-zero on any failure. Extra arguments go to nunit-console
# (e.g. -run:Pawl.Tests.ProtocolTests).
#
#   bindings/csharp/run-tests.sh                     # cargo builds ffi + relay (debug)
#   PAWL_LIB_DIR=/dir bindings/csharp/run-tests.sh   # no cargo: libpawl_ffi.so,
#                                                    # pawl-capi-gen, pawl-relay from /dir
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

nunit_dll=/usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll
if ! command -v mcs >/dev/null 2>&1 || ! command -v nunit-console >/dev/null 2>&1 \
    || [ ! -e "$nunit_dll" ]; then
    echo "== installing Mono and NUnit (for the C# bindings' tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends mono-devel nunit-console libnunit-cil-dev >/dev/null
fi
command -v cc >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1 || {
    echo "== installing a C/C++ compiler (for the header check)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends gcc g++ libc6-dev >/dev/null
}

echo "== c# bindings: build"
bash "$here/build.sh"
# shellcheck source=../lib.sh
. "$here/../lib.sh"
relay="$(pawl_relay_bin)"
out="$here/build"

echo "== c header: compile and run ffi/tests/c/smoke.c"
smoke="$root/ffi/tests/c/smoke.c"
cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$out/include" "$smoke" \
    -L"$out" -lpawl_ffi -o "$out/smoke"
c++ -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$out/include" "$smoke"
LD_LIBRARY_PATH="$out" "$out/smoke"

echo "== c# bindings: nunit"
mcs -langversion:7.2 -target:library -nologo -warnaserror -r:"$out/Pawl.dll" \
    -r:"$nunit_dll" -out:"$out/Pawl.Tests.dll" "$here"/tests/*.cs
cd "$out"
# nunit-console's exit status is the number of failed tests (0: all passed).
PAWL_RELAY_BIN="$relay" LD_LIBRARY_PATH="$out" exec nunit-console -nologo -noshadow \
    -labels -nothread Pawl.Tests.dll "$@"
