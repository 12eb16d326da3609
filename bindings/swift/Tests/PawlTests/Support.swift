// Assertions for typed errors and event predicates.
import Foundation
import Pawl
import XCTest

/// Runs `body`, which must throw a `PawlError` for which `matches` is true and whose
/// numeric code is `code`; returns that error.
@discardableResult
func assertPawlError<T>(
    _ code: ErrorCode,
    _ body: () throws -> T,
    matches: (PawlError) -> Bool,
    file: StaticString = #filePath, line: UInt = #line
) -> PawlError? {
    do {
        let value = try body()
        XCTFail("expected PawlError \(code), got a value: \(value)", file: file, line: line)
    } catch let error as PawlError {
        XCTAssertTrue(matches(error), "wrong PawlError case: \(error)", file: file, line: line)
        XCTAssertEqual(error.code, code.rawValue, "\(error)", file: file, line: line)
        XCTAssertEqual(error.errorCode, code, file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, file: file, line: line)
        return error
    } catch {
        XCTFail("expected PawlError \(code), got \(type(of: error)): \(error)", file: file, line: line)
    }
    return nil
}

/// The async form of `assertPawlError`.
@discardableResult
func assertPawlErrorAsync<T>(
    _ code: ErrorCode,
    _ body: () async throws -> T,
    matches: (PawlError) -> Bool,
    file: StaticString = #filePath, line: UInt = #line
) async -> PawlError? {
    do {
        let value = try await body()
        XCTFail("expected PawlError \(code), got a value: \(value)", file: file, line: line)
    } catch let error as PawlError {
        XCTAssertTrue(matches(error), "wrong PawlError case: \(error)", file: file, line: line)
        XCTAssertEqual(error.code, code.rawValue, "\(error)", file: file, line: line)
        XCTAssertEqual(error.errorCode, code, file: file, line: line)
        return error
    } catch {
        XCTFail("expected PawlError \(code), got \(type(of: error)): \(error)", file: file, line: line)
    }
    return nil
}

// Event predicates for EventQueue.waitFor.
func isConnected(_ e: ClientEvent) -> Bool { if case .connected = e { return true }; return false }
func isPreKeysUploaded(_ e: ClientEvent) -> Bool { if case .preKeysUploaded = e { return true }; return false }
func isMessage(_ e: ClientEvent) -> Bool { if case .message = e { return true }; return false }
func isDisconnected(_ e: ClientEvent) -> Bool { if case .disconnected = e { return true }; return false }
func isDelivered(_ id: Int64) -> (ClientEvent) -> Bool {
    { if case let .delivered(messageId, _) = $0 { return messageId == id }; return false }
}
func isRead(_ id: Int64) -> (ClientEvent) -> Bool {
    { if case let .read(messageId, _) = $0 { return messageId == id }; return false }
}
