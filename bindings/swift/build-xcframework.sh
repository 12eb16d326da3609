#!/usr/bin/env bash
# macOS only (Xcode): build pawl_ffiFFI.xcframework (static libpawl_ffi for iOS devices,
# the iOS simulator and macOS) next to Package.swift and generate the Swift sources, so
# the package links the XCFramework (Package.swift switches to a binaryTarget when it is
# there). Written for Xcode 15+/rustup; not runnable on the Linux machines that run the
# suite (see README).
#
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios \
#       aarch64-apple-darwin x86_64-apple-darwin
#   bindings/swift/build-xcframework.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh: needs macOS with Xcode" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
cd "$root"

# The Swift sources and header, generated from a release build for this Mac.
PAWL_PROFILE=release bash "$here/build.sh"

for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin; do
    # The crate's crate-type includes staticlib: target/<t>/release/libpawl_ffi.a
    cargo build -p pawl-ffi --locked --release --target "$t"
done

work="$here/xcframework-build"
rm -rf "$work" "$here/pawl_ffiFFI.xcframework"
mkdir -p "$work/ios" "$work/ios-sim" "$work/macos" "$work/headers/pawl_ffiFFI"
cp "$target/aarch64-apple-ios/release/libpawl_ffi.a" "$work/ios/"
lipo -create \
    "$target/aarch64-apple-ios-sim/release/libpawl_ffi.a" \
    "$target/x86_64-apple-ios/release/libpawl_ffi.a" \
    -output "$work/ios-sim/libpawl_ffi.a"
lipo -create \
    "$target/aarch64-apple-darwin/release/libpawl_ffi.a" \
    "$target/x86_64-apple-darwin/release/libpawl_ffi.a" \
    -output "$work/macos/libpawl_ffi.a"

# Headers in a folder named after the module (several XCFrameworks in one app would
# otherwise each bring a top-level module.modulemap). No `link` line: Xcode/SwiftPM link
# the XCFramework's library themselves.
cp "$here/Sources/pawl_ffiFFI/pawl_ffiFFI.h" "$work/headers/pawl_ffiFFI/"
cat > "$work/headers/pawl_ffiFFI/module.modulemap" <<'MAP'
module pawl_ffiFFI {
    header "pawl_ffiFFI.h"
    export *
}
MAP

xcodebuild -create-xcframework \
    -library "$work/ios/libpawl_ffi.a" -headers "$work/headers" \
    -library "$work/ios-sim/libpawl_ffi.a" -headers "$work/headers" \
    -library "$work/macos/libpawl_ffi.a" -headers "$work/headers" \
    -output "$here/pawl_ffiFFI.xcframework"
rm -rf "$work"
echo "pawl swift: $here/pawl_ffiFFI.xcframework and Sources/Pawl/pawl_ffi.swift"
