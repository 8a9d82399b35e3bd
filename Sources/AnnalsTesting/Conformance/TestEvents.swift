import Annals
import Foundation

/// Small helpers for building events and names in checks.
enum Sample {
    static func event(_ type: String = "Sampled", _ value: Int = 0, id: UUID = UUID()) -> EventData {
        EventData(
            id: id, type: type, data: Data("{\"value\":\(value)}".utf8),
            metadata: Data("{\"source\":\"conformance\"}".utf8))
    }

    static func events(_ count: Int, type: String = "Sampled", from start: Int = 0) -> [EventData] {
        (0..<count).map { event(type, start + $0) }
    }

    static func sized(_ byteCount: Int, type: String = "Sized") -> EventData {
        let dataCount = byteCount - type.utf8.count
        return EventData(
            type: type, data: Data(repeating: UInt8(ascii: "x"), count: max(0, dataCount)), contentType: .binary)
    }

    static func stream(_ name: String) throws -> StreamName { try StreamName(name) }

    /// Reads a stream whole.
    static func all(_ store: any EventStore, _ stream: StreamName) async throws -> [RecordedEvent] {
        try await store.read(stream, from: nil, direction: .forwards, limit: .max)
    }

    /// Reads `$all` whole.
    static func log(_ store: any EventStore) async throws -> [RecordedEvent] {
        try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
    }

    /// Takes `count` events from a subscription iterator, or fails.
    static func take(
        _ count: Int,
        from iterator: inout EventSubscription.AsyncIterator,
        fileID: String = #fileID,
        line: Int = #line
    ) async throws -> [RecordedEvent] {
        var taken: [RecordedEvent] = []
        while taken.count < count {
            guard let event = try await iterator.next() else {
                throw ConformanceFailure(
                    "The subscription ended after \(taken.count) of \(count) events", fileID: fileID, line: line)
            }
            taken.append(event)
        }
        return taken
    }
}
