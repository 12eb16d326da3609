// Multi-device from Swift: a desktop shows a link code, the phone links it, both of
// Alice's devices get Bob's message, an archived chat syncs, the phone unlinks it; a
// malformed code is a typed error.
import Foundation
import Pawl
import XCTest

private let alicePhone = "+4915100000093"
private let bobPhone = "+4915100000094"

final class LinkingTests: XCTestCase {
    private static let relayResult: Result<Relay, Error> = Result { try Relay.start() }
    private var tmp: URL!

    private func relay() throws -> Relay { try Self.relayResult.get() }

    override class func tearDown() {
        if case let .success(relay) = relayResult { relay.stop() }
        super.tearDown()
    }

    override func setUpWithError() throws {
        tmp = try makeTemporaryDirectory("pawl-swift-linking")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private func open(_ name: String) throws -> PawlClient {
        let relay = try relay()
        return try PawlClient.open(dbPath: tmp.appendingPathComponent(name).path, dbKey: newDatabaseKey(),
                                   relayUrl: relay.url, pinnedCertSha256: relay.pin)
    }

    func testADesktopIsLinkedByItsCode() async throws {
        let phone = try open("phone.db"), bob = try open("bob.db"), desktop = try open("desktop.db")
        let pEvents = EventQueue(), bEvents = EventQueue(), dEvents = EventQueue()
        try phone.setListener(listener: pEvents)
        try bob.setListener(listener: bEvents)
        try desktop.setListener(listener: dEvents)
        for (client, number, events) in [(phone, alicePhone, pEvents), (bob, bobPhone, bEvents)] {
            try await client.requestCode(phone: number)
            try await client.verifyCode(phone: number, code: try relay().code(for: number))
            try client.start()
            _ = try await events.waitFor(isPreKeysUploaded)
        }

        _ = try await phone.sendText(peer: bobPhone, text: "before the desktop")
        _ = try await bEvents.waitFor(isMessage)

        let linking = try await desktop.startLinking()
        guard let code = try await linking.nextCode() else { return XCTFail("no link code") }
        XCTAssertTrue(code.code.hasPrefix("pawl-link:1,"))
        XCTAssertEqual(Array(code.qrPng.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        XCTAssertEqual(try parseLinkCode(code: code.code).identityKey, try desktop.identityKey())
        let deviceId = try await phone.linkDevice(code: code.code)
        XCTAssertEqual(deviceId, 2)
        let addr = try await linking.finished()
        XCTAssertEqual(addr, Address(name: alicePhone, deviceId: 2))
        try desktop.start()
        _ = try await dEvents.waitFor(isConnected)
        guard case let .deviceLinked(linked) = try await pEvents.waitFor({
            if case .deviceLinked = $0 { return true }; return false
        }) else { return XCTFail() }
        XCTAssertEqual(linked, 2)
        guard case let .historySynced(done, chunks, messages) = try await dEvents.waitFor({
            if case .historySynced = $0 { return true }; return false
        }) else { return XCTFail() }
        XCTAssertEqual([done, chunks, messages], [1, 1, 1])
        XCTAssertEqual(try desktop.messages(peer: bobPhone, limit: 10).map { $0.text }, ["before the desktop"])

        _ = try await bob.sendText(peer: alicePhone, text: "to both devices")
        for events in [pEvents, dEvents] {
            guard case let .message(m) = try await events.waitFor(isMessage) else { return XCTFail() }
            XCTAssertEqual(m.text, "to both devices")
            XCTAssertEqual(m.sender, bobPhone)
        }
        XCTAssertEqual(try phone.ownDevices(), [2])

        try await desktop.setArchived(peer: bobPhone, archived: true)
        for _ in 0..<200 {
            try await phone.syncAppState()
            if try phone.chatState(peer: bobPhone).archived { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        XCTAssertTrue(try phone.chatState(peer: bobPhone).archived)

        try await phone.unlinkDevice(deviceId: 2)
        XCTAssertEqual(try phone.ownDevices(), [])

        assertPawlError(.invalidArgument, { try parseLinkCode(code: "not a link code") },
                        matches: { if case .InvalidArgument = $0 { return true }; return false })
        for c in [phone, bob, desktop] { try await c.shutdown() }
    }
}
