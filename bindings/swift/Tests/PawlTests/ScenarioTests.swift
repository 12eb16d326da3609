// The bindings scenario (the same in every language): two clients over a pawl-relay process
// on loopback register, exchange messages both ways, see delivered and read states, agree
// on the safety number, and get typed errors for bad input.
import Foundation
import Pawl
import XCTest

private let alicePhone = "+4915100000051"
private let bobPhone = "+4915100000052"

final class ScenarioTests: XCTestCase {
    // One relay for the class, started on first use, stopped in tearDown().
    private static let relayResult: Result<Relay, Error> = Result { try Relay.start() }
    private var tmp: URL!

    private func relay() throws -> Relay { try Self.relayResult.get() }

    override class func tearDown() {
        if case let .success(relay) = relayResult { relay.stop() }
        super.tearDown()
    }

    override func setUpWithError() throws {
        tmp = try makeTemporaryDirectory("pawl-swift-test")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private func db(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    private func open(_ name: String, key: Data = newDatabaseKey()) throws -> PawlClient {
        let relay = try relay()
        return try PawlClient.open(dbPath: db(name), dbKey: key, relayUrl: relay.url, pinnedCertSha256: relay.pin)
    }

    private func register(_ client: PawlClient, _ phone: String) async throws {
        try await client.requestCode(phone: phone)
        try await client.verifyCode(phone: phone, code: try relay().code(for: phone))
    }

    func testTwoClientsChatThroughARelay() async throws {
        let alice = try open("alice.db")
        let bob = try open("bob.db")
        let aEvents = EventQueue(), bEvents = EventQueue()
        try alice.setListener(listener: aEvents)
        try bob.setListener(listener: bEvents)

        try await register(alice, alicePhone)
        try await register(bob, bobPhone)
        XCTAssertEqual(try alice.address(), Address(name: alicePhone, deviceId: 1))
        XCTAssertEqual(try alice.identityKey().count, 33)
        try alice.start()
        try bob.start()
        // Connected, then the first prekeys go up (others can start sessions after that).
        for events in [aEvents, bEvents] {
            _ = try await events.waitFor(isConnected)
            _ = try await events.waitFor(isPreKeysUploaded)
        }
        XCTAssertTrue(alice.isConnected())
        let found = try await alice.discover(phones: [bobPhone, "+4915100000099"])
        XCTAssertEqual(found, [bobPhone])

        // Alice -> Bob: sent, received, delivered.
        let mid = try await alice.sendText(peer: bobPhone, text: "hello bob")
        guard case let .message(got) = try await bEvents.waitFor(isMessage) else { return XCTFail() }
        XCTAssertEqual(got.text, "hello bob")
        XCTAssertEqual(got.sender, alicePhone)
        XCTAssertFalse(got.outgoing)
        _ = try await aEvents.waitFor(isDelivered(mid))
        XCTAssertTrue([.delivered, .read].contains(try alice.messageStatus(id: mid)))

        // Bob reads: Alice sees the read receipt.
        let marked = try await bob.markRead(peer: alicePhone)
        XCTAssertEqual(marked, 1)
        guard case let .read(_, by) = try await aEvents.waitFor(isRead(mid)) else { return XCTFail() }
        XCTAssertEqual(by, Address(name: bobPhone, deviceId: 1))
        XCTAssertEqual(try alice.messageStatus(id: mid), .read)

        // Bob -> Alice, with typing and presence first.
        try await bob.setTyping(peer: alicePhone, started: true)
        let typing = try await aEvents.waitFor {
            if case let .typing(peer, started) = $0 { return started && peer.name == bobPhone }
            return false
        }
        XCTAssertEqual(typing, .typing(peer: Address(name: bobPhone, deviceId: 1), started: true))
        try await bob.setPresence(peer: alicePhone, online: true)
        let presence = try await aEvents.waitFor {
            if case let .presence(peer, _) = $0 { return peer.name == bobPhone }
            return false
        }
        XCTAssertEqual(presence, .presence(peer: Address(name: bobPhone, deviceId: 1), online: true))
        let reply = try await bob.sendText(peer: alicePhone, text: "and back, alice")
        guard case let .message(back) = try await aEvents.waitFor(isMessage) else { return XCTFail() }
        XCTAssertEqual(back.text, "and back, alice")
        XCTAssertEqual(back.sender, bobPhone)
        _ = try await bEvents.waitFor(isDelivered(reply))

        // The store: the chat newest first, search, one message by id.
        let chat = try alice.messages(peer: bobPhone, limit: 10)
        XCTAssertEqual(chat.map(\.text), ["and back, alice", "hello bob"])
        XCTAssertEqual(chat.map(\.outgoing), [false, true])
        XCTAssertEqual(chat[1].status, .read)
        XCTAssertEqual(chat[0].sender, bobPhone)
        XCTAssertNotNil(chat[0].receivedAt)  // incoming
        XCTAssertNil(chat[1].receivedAt)     // outgoing
        XCTAssertGreaterThan(chat[1].sentAt, 1_600_000_000_000)  // ms since the epoch
        XCTAssertEqual(chat[0].chatId, chat[1].chatId)
        XCTAssertEqual(try bob.search(query: "hello", limit: 10).map(\.text), ["hello bob"])
        XCTAssertEqual(try alice.message(id: mid)?.body, Data("hello bob".utf8))
        XCTAssertNil(try alice.message(id: 1_000_000_000))

        // An attachment: Alice encrypts and uploads a file, sends it as a media message; Bob
        // gets the description, downloads the file and has Alice's bytes.
        try await exchangeAttachment(alice: alice, bob: bob, bEvents: bEvents)

        // The same safety number on both sides; each accepts the other's QR payload.
        let aSN = try alice.safetyNumber(peer: bobPhone)
        let bSN = try bob.safetyNumber(peer: alicePhone)
        XCTAssertEqual(aSN.digits, bSN.digits)
        XCTAssertEqual(aSN.digits.count, 60)
        XCTAssertTrue(aSN.digits.allSatisfy(\.isASCII) && aSN.digits.allSatisfy(\.isNumber))
        XCTAssertEqual(Array(aSN.qrPng.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertTrue(aSN.qrSvg.contains("<svg"))
        XCTAssertTrue(try alice.compareScanned(peer: bobPhone, scanned: bSN.scannable))
        XCTAssertTrue(try bob.compareScanned(peer: alicePhone, scanned: aSN.scannable))
        XCTAssertFalse(try alice.compareScanned(peer: bobPhone, scanned: aSN.scannable))  // our own

        // A malformed scanned QR payload is a typed error (code 1), not a crash.
        assertPawlError(.invalidArgument, {
            try alice.compareScanned(peer: bobPhone, scanned: Data([0x00]) + Data("not a fingerprint".utf8))
        }, matches: { if case .InvalidArgument = $0 { return true }; return false })

        try await alice.shutdown()
        try await bob.shutdown()
        XCTAssertFalse(alice.isConnected())
    }

    /// The attachment step of the scenario (after the text exchange): upload, send_media,
    /// the received description, download (same bytes), a wrong media key (typed error,
    /// no file), and the media message in Bob's store.
    private func exchangeAttachment(alice: PawlClient, bob: PawlClient, bEvents: EventQueue) async throws {
        // 300 KB of deterministic, non-repeating bytes (xorshift), so several chunks.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: 300_000)
        for i in bytes.indices {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            bytes[i] = UInt8(truncatingIfNeeded: state >> 24)
        }
        let original = Data(bytes)
        let source = tmp.appendingPathComponent("picture.png")
        try original.write(to: source)

        let attachment = try await alice.uploadAttachment(kind: .image, path: source.path)
        XCTAssertEqual(attachment.kind, .image)
        XCTAssertEqual(attachment.fileLength, UInt64(original.count))
        XCTAssertEqual(attachment.mediaKey.count, 32)
        XCTAssertEqual(attachment.fileSha256.count, 32)
        XCTAssertEqual(attachment.fileEncSha256.count, 32)
        XCTAssertNotEqual(attachment.fileSha256, attachment.fileEncSha256)
        XCTAssertFalse(attachment.blobId.isEmpty)

        let sent = MediaMessage(attachment: attachment, mimeType: "image/png", fileName: "picture.png",
                                caption: "a picture", thumbnail: Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]),
                                width: 640, height: 480)
        let mediaId = try await alice.sendMedia(peer: bobPhone, media: sent)
        let event = try await bEvents.waitFor {
            if case let .message(m) = $0 { return m.media != nil }
            return false
        }
        guard case let .message(got) = event, let media = got.media else { return XCTFail("no media message") }
        XCTAssertEqual(media, sent)  // every field, the attachment included
        XCTAssertEqual(media.mimeType, "image/png")
        XCTAssertEqual(media.fileName, "picture.png")
        XCTAssertEqual(media.thumbnail, Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]))
        XCTAssertEqual(media.width, 640)
        XCTAssertEqual(media.height, 480)
        XCTAssertEqual(got.text, "a picture")
        XCTAssertEqual(got.sender, alicePhone)
        XCTAssertFalse(got.outgoing)

        let target = tmp.appendingPathComponent("downloaded.png")
        try await bob.downloadAttachment(attachment: media.attachment, path: target.path)
        XCTAssertEqual(try Data(contentsOf: target), original)

        // Another 32-byte media key: the MAC check fails, a typed error, nothing written.
        var wrong = media.attachment
        wrong.mediaKey = Data(wrong.mediaKey.map { $0 ^ 0x5A })
        XCTAssertEqual(wrong.mediaKey.count, 32)
        let badTarget = tmp.appendingPathComponent("wrong-key.png")
        let error = await assertPawlErrorAsync(.protocol, {
            try await bob.downloadAttachment(attachment: wrong, path: badTarget.path)
        }, matches: { if case .Protocol = $0 { return true }; return false })
        XCTAssertEqual(error?.code, 9)
        XCTAssertFalse(FileManager.default.fileExists(atPath: badTarget.path))

        // The store: Bob's chat has it (newest first) with the media set; Alice's copy too.
        let bobChat = try bob.messages(peer: alicePhone, limit: 10)
        XCTAssertEqual(bobChat.first?.text, "a picture")
        XCTAssertEqual(bobChat.first?.media, sent)
        XCTAssertEqual(bobChat.filter { $0.media != nil }.count, 1)
        XCTAssertEqual(try alice.message(id: mediaId)?.media, sent)
    }

    func testWrongDatabaseKeyIsATypedError() throws {
        let key = Data(repeating: 1, count: 32)
        _ = try open("keyed.db", key: key)  // created, then released
        let error = assertPawlError(.wrongDatabaseKey, {
            try open("keyed.db", key: Data(repeating: 2, count: 32))
        }, matches: { if case .WrongDatabaseKey = $0 { return true }; return false })
        XCTAssertEqual(error?.code, 2)
        // The right key still opens it.
        XCTAssertNoThrow(try open("keyed.db", key: key))
    }

    func testBadArgumentsAreTypedErrors() throws {
        let isInvalid: (PawlError) -> Bool = { if case .InvalidArgument = $0 { return true }; return false }
        assertPawlError(.invalidArgument, { try open("short.db", key: Data(repeating: 1, count: 31)) },
                        matches: isInvalid)
        assertPawlError(.invalidArgument, {
            try PawlClient.open(dbPath: db("pin.db"), dbKey: newDatabaseKey(), relayUrl: try relay().url,
                                pinnedCertSha256: Data("short pin".utf8))
        }, matches: isInvalid)

        let client = try open("fresh.db")
        assertPawlError(.notRegistered, { try client.address() },
                        matches: { if case .NotRegistered = $0 { return true }; return false })
        assertPawlError(.invalidArgument, { try client.messageStatus(id: 12345) }, matches: isInvalid)
        // The catch patterns the README shows.
        do {
            _ = try client.address()
            XCTFail("address() of an unregistered client")
        } catch PawlError.NotRegistered {
        } catch {
            XCTFail("\(error)")
        }
        do {
            _ = try open("fresh.db", key: newDatabaseKey())
            XCTFail("opened with another key")
        } catch let error as PawlError where error.errorCode == .wrongDatabaseKey {
            XCTAssertTrue(error.localizedDescription.contains("WrongDatabaseKey"), error.localizedDescription)
        }
        XCTAssertEqual(try client.messages(peer: bobPhone, limit: 10), [])
    }

    func testRelayRefusalCarriesTheRelayCode() async throws {
        let phone = "+4915100000053"
        let client = try open("carol.db")
        try await client.requestCode(phone: phone)
        let right = try relay().code(for: phone)
        let wrong = right == "000000" ? "111111" : "000000"
        let error = await assertPawlErrorAsync(.relay, {
            try await client.verifyCode(phone: phone, code: wrong)
        }, matches: { if case .Relay = $0 { return true }; return false })
        guard case let .Relay(_, relayCode, _)? = error else { return XCTFail("no Relay error") }
        XCTAssertFalse(relayCode.isEmpty)  // the relay's own code, e.g. "BadCode"
    }

    func testWrongPinIsATlsError() async throws {
        let client = try PawlClient.open(dbPath: db("pin.db"), dbKey: newDatabaseKey(), relayUrl: try relay().url,
                                         pinnedCertSha256: Data(repeating: 0, count: 32))
        await assertPawlErrorAsync(.tls, { try await client.requestCode(phone: "+4915100000054") },
                                   matches: { if case .Tls = $0 { return true }; return false })
    }

    func testEventsBeforeTheListenerAreKeptForTheStream() async throws {
        // Not registered: the connection task reports Disconnected and retries.
        let client = try open("stream.db")
        try client.start()
        try await Task.sleep(nanoseconds: 300_000_000)  // events queue up before any listener
        let stream = try client.events()
        let first = try await withThrowingTaskGroup(of: ClientEvent?.self) { group in
            group.addTask {
                for await event in stream where isDisconnected(event) { return event }
                return nil
            }
            group.addTask {
                try await Task.sleep(nanoseconds: 20_000_000_000)
                throw EventTimeout(seconds: 20)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
        guard case let .disconnected(reason)? = first else { return XCTFail("no Disconnected event") }
        XCTAssertTrue(reason.contains("not registered"), reason)
        try await client.shutdown()
        client.clearListener()
    }
}
