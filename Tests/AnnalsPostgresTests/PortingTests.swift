import Annals
import AnnalsFileStore
import AnnalsPostgres
import AnnalsTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// `annals export` from a file store and `annals import` into PostgreSQL, with the real binary.
@Suite(
    "Moving a store between backends", .enabled(if: PostgresAvailability.url != nil, "\(PostgresAvailability.reason)"))
struct PortingTests {
    @Test(
        "file store → NDJSON → PostgreSQL → NDJSON keeps every event, id, revision, position and stream state",
        .timeLimit(.minutes(2)))
    func fileToPostgres() async throws {
        let url = try #require(PostgresAvailability.url)
        let scratch = NSTemporaryDirectory() + "annals-port-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let data = scratch + "/data"
        try await FileEventStore.withStore(at: data) { store in
            for index in 0..<300 {
                let stream = try StreamName("order-\(index % 7)")
                _ = try await store.append(
                    [
                        EventData(
                            type: "Placed", data: Data(#"{"n": \#(index), "s": "é\n"}"#.utf8),
                            metadata: Data(#"{"c":1}"#.utf8)),
                        EventData(type: "Blob", data: Data([0, 255, UInt8(index % 256)]), contentType: .binary),
                    ], to: stream, expecting: .any)
            }
            try await store.delete(try StreamName("order-1"))
            _ = try await store.append([EventData(type: "Again", data: Data("{}".utf8))], to: try StreamName("order-2"))
            try await store.tombstone(try StreamName("order-3"))
            try await store.setMetadata(
                StreamMetadata(maxCount: 5, custom: ["owner": .string("ops")]), for: try StreamName("order-4"))
            try await store.setMetadata(StreamMetadata(custom: ["empty": .bool(true)]), for: try StreamName("config-1"))
        }
        let database = "annals_port_" + UUID().uuidString.prefix(8).lowercased()
        try await Self.createDatabase(database, url: url)
        var components = try #require(URLComponents(string: url))
        components.path = "/" + database
        let target = try #require(components.string)

        let export = try Child(arguments: ["export", "--data", data, "--output", scratch + "/a.ndjson"])
        #expect((try await export.exit()) == 0, "\(export.output)")
        let load = try Child(arguments: ["import", "--postgres", target, "--input", scratch + "/a.ndjson"])
        #expect((try await load.exit()) == 0, "\(load.output)")
        let again = try Child(arguments: ["export", "--postgres", target, "--output", scratch + "/b.ndjson"])
        #expect((try await again.exit()) == 0, "\(again.output)")
        // Into a store that is not empty: refused, nothing written.
        let twice = try Child(arguments: ["import", "--postgres", target, "--input", scratch + "/a.ndjson"])
        #expect((try await twice.exit()) != 0 && twice.output.contains("not empty"), "\(twice.output)")

        let original = try await FileEventStore.withStore(at: data) { try await Self.snapshot($0) }
        var configuration = PostgresEventStore.Configuration()
        configuration.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let moved = try await PostgresEventStore.withStore(url: target, configuration: configuration) {
            try await Self.snapshot($0)
        }
        #expect(original.events.count == 601)
        #expect(moved.events == original.events, "every event, id, revision, position and byte")
        #expect(moved.streams == original.streams, "metadata, deletes and tombstones")
        let first = try String(contentsOfFile: scratch + "/a.ndjson", encoding: .utf8)
        let second = try String(contentsOfFile: scratch + "/b.ndjson", encoding: .utf8)
        let strip = { (text: String) in text.replacing(/"recordedAt":"[^"]*"/, with: "") }
        #expect(strip(first) == strip(second), "exporting the import gives the same file, times aside")
    }

    struct Snapshot: Equatable {
        var events: [String]
        var streams: [String]
    }

    /// Everything but times, as comparable strings.
    static func snapshot(_ store: any EventStore) async throws -> Snapshot {
        let events = try await store.readAll().map {
            "\($0.position) \($0.stream)@\($0.revision) \($0.id) \($0.type) \($0.contentType) \($0.data.base64EncodedString()) \($0.metadata.base64EncodedString())"
        }
        let streams = try await store.listStreams(after: nil, limit: 1_000).map {
            "\($0.stream) \($0.lastRevision.map(\.description) ?? "-") \($0.visibleEventCount) \($0.isDeleted) \($0.isTombstoned) \($0.metadata)"
        }
        return Snapshot(events: events, streams: streams.sorted())
    }

    static func createDatabase(_ name: String, url: String) async throws {
        let client = PostgresClient(
            configuration: try PostgresURL.configuration(url),
            backgroundLogger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query("CREATE DATABASE \(unescaped: name)")
            group.cancelAll()
        }
    }
}
