// Groups from Swift: Alice creates a group with Bob and Carol, both get the update and
// the message in the group's chat, a non-admin cannot rename it, and after Carol is
// removed she gets nothing sent to the group.
import Foundation
import Pawl
import XCTest

private let alicePhone = "+4915100000084"
private let bobPhone = "+4915100000085"
private let carolPhone = "+4915100000086"

private func isGroupUpdated(_ e: ClientEvent) -> Bool {
    if case .groupUpdated = e { return true }; return false
}

final class GroupsTests: XCTestCase {
    private static let relayResult: Result<Relay, Error> = Result { try Relay.start() }
    private var tmp: URL!

    private func relay() throws -> Relay { try Self.relayResult.get() }

    override class func tearDown() {
        if case let .success(relay) = relayResult { relay.stop() }
        super.tearDown()
    }

    override func setUpWithError() throws {
        tmp = try makeTemporaryDirectory("pawl-swift-groups")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private func registered(_ number: String) async throws -> (PawlClient, EventQueue) {
        let relay = try relay()
        let c = try PawlClient.open(dbPath: tmp.appendingPathComponent("\(number).db").path, dbKey: newDatabaseKey(),
                                    relayUrl: relay.url, pinnedCertSha256: relay.pin)
        let events = EventQueue()
        try c.setListener(listener: events)
        try await c.requestCode(phone: number)
        try await c.verifyCode(phone: number, code: try relay.code(for: number))
        try c.start()
        _ = try await events.waitFor(isPreKeysUploaded)
        return (c, events)
    }

    func testAGroupWithARemoval() async throws {
        let (alice, _) = try await registered(alicePhone)
        let (bob, bEvents) = try await registered(bobPhone)
        let (carol, cEvents) = try await registered(carolPhone)

        let g = try await alice.createGroup(name: "Climbing", members: [bobPhone, carolPhone])
        XCTAssertEqual(g.id.count, 16)
        XCTAssertEqual(g.members, [alicePhone, bobPhone, carolPhone].sorted())
        XCTAssertEqual(g.admins, [alicePhone])
        for (c, events) in [(bob, bEvents), (carol, cEvents)] {
            guard case let .groupUpdated(groupId, chatId) = try await events.waitFor(isGroupUpdated) else {
                return XCTFail()
            }
            XCTAssertEqual(groupId, g.id)
            let got = try c.group(groupId: g.id)
            XCTAssertEqual(got?.name, "Climbing")
            XCTAssertEqual(got?.chatId, chatId)
        }

        _ = try await alice.sendGroupText(groupId: g.id, text: "hello group")
        for (c, events) in [(bob, bEvents), (carol, cEvents)] {
            guard case let .message(m) = try await events.waitFor(isMessage) else { return XCTFail() }
            XCTAssertEqual(m.text, "hello group")
            XCTAssertEqual(m.sender, alicePhone)
            XCTAssertEqual(try c.messages(peer: g.peer, limit: 10).map { $0.text }, ["hello group"])
        }

        await assertPawlErrorAsync(.invalidArgument, { try await bob.renameGroup(groupId: g.id, name: "Bob's") }) {
            if case .InvalidArgument = $0 { return true }; return false
        }

        let g2 = try await alice.removeGroupMembers(groupId: g.id, users: [carolPhone])
        XCTAssertEqual(g2.members, [alicePhone, bobPhone].sorted())
        _ = try await cEvents.waitFor(isGroupUpdated)
        XCTAssertEqual(try carol.group(groupId: g.id)?.isMember, false)
        _ = try await bEvents.waitFor(isGroupUpdated)
        _ = try await alice.sendGroupText(groupId: g.id, text: "without carol")
        guard case let .message(m) = try await bEvents.waitFor(isMessage) else { return XCTFail() }
        XCTAssertEqual(m.text, "without carol")
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertEqual(try carol.messages(peer: g.peer, limit: 10).map { $0.text }, ["hello group"])
        for c in [alice, bob, carol] { try await c.shutdown() }
    }
}
