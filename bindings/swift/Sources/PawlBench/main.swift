// Per-call cost through the Swift binding: the same measurement as bindings/python/bench.py
// (Rust side: `cargo run -p pawl-ffi --example overhead`). Run with bench.sh
// (`swift run -c release PawlBench`). PAWL_BENCH_N scales the iteration counts (default 1).
import Foundation
import Pawl

func perCall(_ n: Int, _ f: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<n { try f() }
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000.0 / Double(n)
}

let scale = Double(ProcessInfo.processInfo.environment["PAWL_BENCH_N"] ?? "") ?? 1
func count(_ n: Int) -> Int { max(1, Int(Double(n) * scale)) }

// In-memory databases: disk flushes would drown the per-call cost in noise.
let key = Data(repeating: 7, count: 32)
let alice = try PawlProtocol.open(dbPath: ":memory:", dbKey: key)
let bob = try PawlProtocol.open(dbPath: ":memory:", dbKey: key)
try alice.processPrekeyBundle(name: "bob", deviceId: 1, bundle: try bob.prekeyBundle(deviceId: 1, oneTimePrekeyId: 1))
_ = try bob.decrypt(name: "alice", deviceId: 1, ciphertext: try alice.encrypt(name: "bob", deviceId: 1, plaintext: Data("hi".utf8)))
_ = try alice.decrypt(name: "bob", deviceId: 1, ciphertext: try bob.encrypt(name: "alice", deviceId: 1, plaintext: Data("yo".utf8)))

let n = count(2000)
var sink = 0
let versionUs = perCall(count(100_000)) { sink &+= version().utf8.count }
let der = Data(repeating: 1, count: 32)
let shaUs = perCall(count(100_000)) { sink &+= certSha256(der: der).count }
let plaintext = Data(repeating: UInt8(ascii: "x"), count: 100)
var messages: [Ciphertext] = []
messages.reserveCapacity(n)
let encUs = try perCall(n) { messages.append(try alice.encrypt(name: "bob", deviceId: 1, plaintext: plaintext)) }
var i = 0
let decUs = try perCall(n) {
    sink &+= try bob.decrypt(name: "alice", deviceId: 1, ciphertext: messages[i]).count
    i += 1
}
precondition(sink > 0)
func fmt(_ v: Double) -> String { String(format: "%8.2f", v) }
print("swift version()        \(fmt(versionUs)) us/call")
print("swift cert_sha256(32B) \(fmt(shaUs)) us/call")
print("swift encrypt(100B)    \(fmt(encUs)) us/call")
print("swift decrypt(100B)    \(fmt(decUs)) us/call")
