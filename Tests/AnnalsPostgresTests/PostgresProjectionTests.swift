import Annals
import AnnalsPostgres
import Foundation
import Logging
import PostgresNIO
import Testing

/// Records each applied event in a table whose primary key is the event id: applying one twice fails.
struct AppliedEventsProjection: PostgresProjection {
    let name = "applied-events"
    let target: SubscriptionTarget = .category("projected")
    let schema: String

    func apply(_ event: RecordedEvent, in connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO \(unescaped: "\"\(schema)\"").applied (event_id, position) VALUES (\(event.id), \(Int64(event.position.value)))",
            logger: Logger(label: "test")
        )
    }

    func reset(in connection: PostgresConnection) async throws {
        try await connection.query("DELETE FROM \(unescaped: "\"\(schema)\"").applied", logger: Logger(label: "test"))
    }
}

@Suite(
    "PostgreSQL projections and snapshots",
    .enabled(if: PostgresAvailability.url != nil, "\(PostgresAvailability.reason)"))
struct PostgresProjectionTests {
    @Test(
        "a projection stopped at random moments and restarted applies every event exactly once", .timeLimit(.minutes(2))
    )
    func exactlyOnce() async throws {
        let url = try #require(PostgresAvailability.url)
        let schema = PostgresHarness.freshSchema()
        try await PostgresHarness.withStore(url: url, schema: schema) { store in
            try await store.client.query(
                "CREATE TABLE \(unescaped: "\"\(schema)\"").applied (event_id uuid PRIMARY KEY, position bigint NOT NULL)"
            )
            let projection = AppliedEventsProjection(schema: schema)
            var expected: [UUID] = []
            for round in 0..<12 {
                let events = PostgresOrderingTests.batch(25, round)
                expected += events.map(\.id)
                _ = try await store.append(events, to: try StreamName("projected-\(round % 3)"), expecting: .any)
                _ = try await store.append(
                    PostgresOrderingTests.batch(5, round), to: try StreamName("other-1"), expecting: .any)
                // A runner that is killed (cancelled) at a random moment, mid-transaction or between events.
                let runner = Task { try await PostgresProjectionRunner(projection: projection, store: store).run() }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...60)))
                runner.cancel()
                _ = await runner.result
            }
            try await PostgresProjectionRunner(projection: projection, store: store).catchUp()
            var applied: [UUID] = []
            for try await id in try await store.client.query(
                "SELECT event_id FROM \(unescaped: "\"\(schema)\"").applied ORDER BY position"
            ).decode(UUID.self) {
                applied.append(id)
            }
            #expect(applied == expected, "every event of the category once, in order")
            // Rebuild: the read model and checkpoint are reset together, then everything is applied again.
            let runner = PostgresProjectionRunner(projection: projection, store: store)
            try await runner.rebuild()
            #expect(try await runner.catchUp() == expected.count)
        }
    }

    @Test(
        "snapshots and checkpoints are kept in PostgreSQL; an older snapshot never replaces a newer one",
        .timeLimit(.minutes(1)))
    func snapshotsAndCheckpoints() async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let snapshots = PostgresSnapshotStore(store: store)
            let stream = try StreamName("snap-1")
            #expect(try await snapshots.load(stream) == nil)
            let newer = Snapshot(
                stream: stream, revision: 9, schemaVersion: 2, state: Data("{\"v\":9}".utf8),
                takenAt: Date(timeIntervalSince1970: 1_000))
            try await snapshots.save(newer)
            try await snapshots.save(Snapshot(stream: stream, revision: 3, schemaVersion: 2, state: Data("{}".utf8)))
            let loaded = try #require(try await snapshots.load(stream))
            #expect(loaded.revision == 9 && loaded.state == newer.state && loaded.schemaVersion == 2)
            let checkpoints = PostgresCheckpointStore(store: store)
            #expect(try await checkpoints.checkpoint(for: "p") == nil)
            try await checkpoints.save(41, for: "p")
            try await checkpoints.save(42, for: "p")
            #expect(try await checkpoints.checkpoint(for: "p") == 42)
            try await checkpoints.delete(for: "p")
            #expect(try await checkpoints.checkpoint(for: "p") == nil)
        }
    }
}
