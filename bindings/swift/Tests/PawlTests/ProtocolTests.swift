// The low-level protocol API (apps with their own transport): bundle, session, encrypt,
// decrypt, typed errors (mirrors bindings/python/tests/test_protocol.py).
import Foundation
import Pawl
import XCTest

final class ProtocolTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws { tmp = try makeTemporaryDirectory("pawl-swift-protocol") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }
    private func db(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    func testSessionsOverAnAppTransport() throws {
        let alice = try PawlProtocol.open(dbPath: db("a.db"), dbKey: newDatabaseKey())
        let bob = try PawlProtocol.open(dbPath: db("b.db"), dbKey: newDatabaseKey())
        let bundle = try bob.prekeyBundle(deviceId: 1, oneTimePrekeyId: 7)  // what Bob publishes
        XCTAssertEqual(bundle.identityKey, try bob.identityKey())
        XCTAssertEqual(bundle.identityKey.count, 33)
        XCTAssertEqual(bundle.registrationId, try bob.registrationId())
        XCTAssertEqual(bundle.prekeyId, 7)
        XCTAssertFalse(try alice.hasSession(name: "bob", deviceId: 1))
        try alice.processPrekeyBundle(name: "bob", deviceId: 1, bundle: bundle)
        XCTAssertTrue(try alice.hasSession(name: "bob", deviceId: 1))

        let first = try alice.encrypt(name: "bob", deviceId: 1, plaintext: Data("hello".utf8))
        XCTAssertEqual(first.messageType, 3)  // PreKeySignalMessage until Bob answers
        XCTAssertNotEqual(first.body, Data("hello".utf8))
        XCTAssertEqual(try bob.decrypt(name: "alice", deviceId: 1, ciphertext: first), Data("hello".utf8))
        // A replay: typed DuplicateMessage, code 14.
        assertPawlError(.duplicateMessage, { try bob.decrypt(name: "alice", deviceId: 1, ciphertext: first) },
                        matches: { if case .DuplicateMessage = $0 { return true }; return false })

        let answer = try bob.encrypt(name: "alice", deviceId: 1, plaintext: Data("hi alice".utf8))
        XCTAssertEqual(answer.messageType, 2)
        XCTAssertEqual(try alice.decrypt(name: "bob", deviceId: 1, ciphertext: answer), Data("hi alice".utf8))

        // A tampered message fails with a typed error and changes nothing: the intact one
        // still decrypts afterwards.
        let next = try alice.encrypt(name: "bob", deviceId: 1, plaintext: Data("intact".utf8))
        var body = next.body
        body[body.count - 12] ^= 0x01
        let tampered = Ciphertext(messageType: next.messageType, body: body)
        XCTAssertThrowsError(try bob.decrypt(name: "alice", deviceId: 1, ciphertext: tampered)) { error in
            guard let error = error as? PawlError else { return XCTFail("not a PawlError: \(error)") }
            XCTAssertEqual(error.errorCode, .protocol, "\(error)")
        }
        XCTAssertEqual(try bob.decrypt(name: "alice", deviceId: 1, ciphertext: next), Data("intact".utf8))

        for i in 0..<20 {
            let m = try alice.encrypt(name: "bob", deviceId: 1, plaintext: Data("n\(i)".utf8))
            XCTAssertEqual(try bob.decrypt(name: "alice", deviceId: 1, ciphertext: m), Data("n\(i)".utf8))
        }
    }

    func testProtocolErrorsAreTyped() throws {
        let p = try PawlProtocol.open(dbPath: db("p.db"), dbKey: newDatabaseKey())
        assertPawlError(.noSession, { try p.encrypt(name: "nobody", deviceId: 1, plaintext: Data("x".utf8)) },
                        matches: { if case .NoSession = $0 { return true }; return false })
        let isInvalid: (PawlError) -> Bool = { if case .InvalidArgument = $0 { return true }; return false }
        assertPawlError(.invalidArgument, {
            try p.decrypt(name: "nobody", deviceId: 1, ciphertext: Ciphertext(messageType: 9, body: Data()))
        }, matches: isInvalid)
        assertPawlError(.protocol, {
            try p.decrypt(name: "nobody", deviceId: 1, ciphertext: Ciphertext(messageType: 2, body: Data([0x33]) + Data("garbage".utf8)))
        }, matches: { if case .Protocol = $0 { return true }; return false })
        var bundle = try p.prekeyBundle(deviceId: 1, oneTimePrekeyId: nil)
        XCTAssertNil(bundle.prekey)
        bundle.signedPrekey = Data([0x05] + [UInt8](repeating: 1, count: 31))  // 32 bytes: not a key
        assertPawlError(.invalidArgument, { try p.processPrekeyBundle(name: "me", deviceId: 2, bundle: bundle) },
                        matches: isInvalid)
        assertPawlError(.invalidArgument, { try PawlProtocol.open(dbPath: db("q.db"), dbKey: Data("short".utf8)) },
                        matches: isInvalid)
        // Wrong key for an existing protocol database: code 2.
        let key = newDatabaseKey()
        _ = try PawlProtocol.open(dbPath: db("k.db"), dbKey: key)
        assertPawlError(.wrongDatabaseKey, { try PawlProtocol.open(dbPath: db("k.db"), dbKey: newDatabaseKey()) },
                        matches: { if case .WrongDatabaseKey = $0 { return true }; return false })
    }

    func testVersionAndPinHelpers() throws {
        XCTAssertEqual(version().split(separator: ".").count, 3)
        // certSha256 is plain SHA-256: the FIPS 180-2 test vector for "abc".
        XCTAssertEqual(certSha256(der: Data("abc".utf8)).map { String(format: "%02x", $0) }.joined(),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let pem = "-----BEGIN CERTIFICATE-----\nYWJj\n-----END CERTIFICATE-----\n"
        XCTAssertEqual(derFromPEM(pem), Data("abc".utf8))
        XCTAssertEqual(pinFromPEM(pem), certSha256(der: Data("abc".utf8)))
        XCTAssertNil(pinFromPEM("no certificate here"))
        XCTAssertEqual(newDatabaseKey().count, 32)
        XCTAssertNotEqual(newDatabaseKey(), newDatabaseKey())
        XCTAssertEqual(ErrorCode.allCases.map(\.rawValue), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 99])
    }
}

final class EventQueueTests: XCTestCase {
    func testWaitsTimeOutAndCancelWithoutEndingTheQueue() async throws {
        let queue = EventQueue()
        let start = Date()
        do {
            _ = try await queue.next(timeout: 0.2)
            XCTFail("no event was queued")
        } catch is EventTimeout {}
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.19)

        let waiter = Task { try await queue.waitFor(timeout: 30, isConnected) }
        try await Task.sleep(nanoseconds: 50_000_000)
        waiter.cancel()
        do {
            _ = try await waiter.value
            XCTFail("a cancelled wait returned")
        } catch is CancellationError {}

        // Still usable: skipped events are dropped, a match is returned, order is kept.
        queue.onEvent(event: .disconnected(reason: "a"))
        queue.onEvent(event: .connected)
        queue.onEvent(event: .preKeysUploaded(count: 3))
        let connected = try await queue.waitFor(timeout: 1, isConnected)
        XCTAssertEqual(connected, .connected)
        let next = try await queue.next(timeout: 1)
        XCTAssertEqual(next, .preKeysUploaded(count: 3))
        let later = Task { try await queue.waitFor(timeout: 5, isPreKeysUploaded) }
        try await Task.sleep(nanoseconds: 50_000_000)
        queue.onEvent(event: .preKeysUploaded(count: 1))
        let got = try await later.value
        XCTAssertEqual(got, .preKeysUploaded(count: 1))
        XCTAssertEqual(queue.pending, [])
    }
}
