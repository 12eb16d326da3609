// swift-tools-version:5.10
// Pawl for Swift (iOS, macOS, Linux): the uniffi-generated binding of pawl-ffi plus a small
// hand-written layer. `build.sh` generates Sources/Pawl/pawl_ffi.swift and
// Sources/pawl_ffiFFI/pawl_ffiFFI.h from the built library (build products, git-ignored).
//
// Where the Rust library comes from:
// * `pawl_ffiFFI.xcframework` next to this file (build-xcframework.sh, on a Mac): a
//   binaryTarget with the static library for iOS devices, the iOS simulator and macOS.
// * otherwise: the system-library target `pawl_ffiFFI` (the generated header and a module
//   map that links `pawl_ffi`); pass the library's folder to the linker, e.g.
//   `swift test -Xlinker -L<dir>` with LD_LIBRARY_PATH=<dir> (run-tests.sh does this).
import Foundation
import PackageDescription

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let xcframework = here.appendingPathComponent("pawl_ffiFFI.xcframework").path
let useXCFramework = FileManager.default.fileExists(atPath: xcframework)

let ffiTarget: Target = useXCFramework
    ? .binaryTarget(name: "pawl_ffiFFI", path: "pawl_ffiFFI.xcframework")
    : .systemLibrary(name: "pawl_ffiFFI", path: "Sources/pawl_ffiFFI")

let package = Package(
    name: "Pawl",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Pawl", targets: ["Pawl"]),
    ],
    targets: [
        ffiTarget,
        .target(
            name: "Pawl",
            dependencies: ["pawl_ffiFFI"],
            path: "Sources/Pawl",
            linkerSettings: useXCFramework
                // The static library's random source (getrandom) may use SecRandomCopyBytes.
                ? [.linkedFramework("Security", .when(platforms: [.iOS, .macOS]))]
                : []
        ),
        .executableTarget(
            name: "PawlBench",
            dependencies: ["Pawl"],
            path: "Sources/PawlBench"
        ),
        .testTarget(
            name: "PawlTests",
            dependencies: ["Pawl"],
            path: "Tests/PawlTests"
        ),
    ]
)
