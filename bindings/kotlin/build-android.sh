#!/usr/bin/env bash
# Everything the Gradle build (build.gradle.kts) needs, for an Android app:
#
#   src/main/jniLibs/<abi>/libpawl_ffi.so   cross-compiled with cargo-ndk (release)
#   generated/kotlin/org/pawl/pawl_ffi.kt   the uniffi-generated Kotlin (build.sh)
#
#   bindings/kotlin/build-android.sh
#   PAWL_ANDROID_ABIS="arm64-v8a x86_64" bindings/kotlin/build-android.sh
#
# Needs: the Android NDK (r28 or later: 16 KB page alignment by default; found by
# cargo-ndk in the Android Studio SDK, or set ANDROID_NDK_HOME), `cargo install
# cargo-ndk`, the Rust targets (added here with rustup when missing), perl and make
# (SQLCipher's vendored OpenSSL is built from source for each ABI).
# Not run in Pawl's CI (no NDK there).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
abis="${PAWL_ANDROID_ABIS:-arm64-v8a armeabi-v7a x86_64}"
api="${PAWL_ANDROID_API:-24}" # = minSdk in build.gradle.kts
profile="${PAWL_PROFILE:-release}"

command -v cargo-ndk >/dev/null || { echo "cargo-ndk missing: cargo install cargo-ndk" >&2; exit 1; }
targets=()
flags=()
for abi in $abis; do
    case "$abi" in
        arm64-v8a) targets+=(aarch64-linux-android) ;;
        armeabi-v7a) targets+=(armv7-linux-androideabi) ;;
        x86_64) targets+=(x86_64-linux-android) ;;
        x86) targets+=(i686-linux-android) ;;
        *) echo "unknown ABI $abi" >&2; exit 1 ;;
    esac
    flags+=(-t "$abi")
done
if command -v rustup >/dev/null; then
    rustup target add "${targets[@]}"
fi
cargo_flags=(build -p pawl-ffi --locked)
[ "$profile" = release ] && cargo_flags+=(--release)
cd "$root"
rm -rf "$here/src/main/jniLibs"
cargo ndk "${flags[@]}" --platform "$api" -o "$here/src/main/jniLibs" "${cargo_flags[@]}"

# The Kotlin sources, from a host build of the same crate (same exports).
PAWL_PROFILE="$profile" bash "$here/build.sh"
find "$here/src/main/jniLibs" -name '*.so' | sort
