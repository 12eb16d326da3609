// A pawl-relay process on loopback with a self-signed certificate (like the Python suite's
// conftest.py): `--code-dir` makes it write each registration code to <dir>/<phone>.code.
// The binary's path comes from PAWL_RELAY_BIN (run-tests.sh sets it).
import Foundation
import Pawl
import XCTest

#if canImport(Glibc)
import Glibc
private let streamSocket = Int32(SOCK_STREAM.rawValue)
#elseif canImport(Darwin)
import Darwin
private let streamSocket = SOCK_STREAM
#endif

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fresh temporary directory (removed by `removeTemporaryDirectory`).
func makeTemporaryDirectory(_ prefix: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func loopbackAddress(port: UInt16) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}

/// A port that was free a moment ago (bind to port 0, read it back, close).
func freePort() throws -> UInt16 {
    let fd = socket(AF_INET, streamSocket, 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var addr = loopbackAddress(port: 0)
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
        }
    }
    guard ok else { throw TestFailure("bind() to 127.0.0.1:0 failed") }
    return UInt16(bigEndian: addr.sin_port)
}

/// Whether something accepts TCP connections on 127.0.0.1:port.
func canConnect(port: UInt16) -> Bool {
    let fd = socket(AF_INET, streamSocket, 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = loopbackAddress(port: port)
    return withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

final class Relay {
    let url: String
    /// SHA-256 of the relay certificate's DER encoding (computed with `certSha256`).
    let pin: Data
    let pem: String
    let codes: URL
    let dir: URL
    private let process: Process

    private init(url: String, pin: Data, pem: String, codes: URL, dir: URL, process: Process) {
        self.url = url
        self.pin = pin
        self.pem = pem
        self.codes = codes
        self.dir = dir
        self.process = process
    }

    static func start() throws -> Relay {
        guard let binary = ProcessInfo.processInfo.environment["PAWL_RELAY_BIN"], !binary.isEmpty else {
            throw TestFailure("PAWL_RELAY_BIN is not set (run-tests.sh sets it to the pawl-relay binary)")
        }
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestFailure("\(binary) missing: build it with `cargo build -p pawl-relay` (run-tests.sh does)")
        }
        let dir = try makeTemporaryDirectory("pawl-relay")
        let codes = dir.appendingPathComponent("codes", isDirectory: true)
        try FileManager.default.createDirectory(at: codes, withIntermediateDirectories: true)
        let pemURL = dir.appendingPathComponent("relay.pem")
        let logURL = dir.appendingPathComponent("relay.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let port = try freePort()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "--db", "sqlite:\(dir.appendingPathComponent("relay.db").path)",
            "--listen", "127.0.0.1:\(port)",
            "--tls-self-signed", pemURL.path,
            "--code-dir", codes.path,
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: logURL)
        try process.run()

        let log = { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
        let deadline = Date().addingTimeInterval(20)
        while true {
            if !process.isRunning {
                throw TestFailure("pawl-relay exited (\(process.terminationStatus)): \(log())")
            }
            if let size = try? FileManager.default.attributesOfItem(atPath: pemURL.path)[.size] as? Int,
               size > 0, canConnect(port: port) {
                break
            }
            if Date() > deadline {
                process.terminate()
                throw TestFailure("pawl-relay did not start: \(log())")
            }
            usleep(50_000)
        }
        let pem = try String(contentsOf: pemURL, encoding: .utf8)
        guard let pin = pinFromPEM(pem) else { throw TestFailure("no certificate in \(pemURL.path)") }
        return Relay(url: "wss://127.0.0.1:\(port)/v1/ws", pin: pin, pem: pem, codes: codes, dir: dir, process: process)
    }

    /// The registration code the relay wrote for `phone`.
    func code(for phone: String) throws -> String {
        let file = codes.appendingPathComponent("\(phone).code")
        return try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dir)
    }
}
