import Annals
import AnnalsTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

@testable import AnnalsPostgres

@Suite("PostgreSQL group commit", .enabled(if: PostgresAvailability.url != nil, "\(PostgresAvailability.reason)"))
struct PostgresGroupCommitTests {
    /// Every group goes through the store's own group commit (`append_group_commit`), and the very same
    /// appends through the in-memory store one by one: outcomes and the final logs must be the same.
    /// A group of one takes `append_one_commit` (handing retries to `append_group_commit`); groups of
    /// 8 or more with only new ids take `append_group`'s set-based path, the others (small groups,
    /// retries, ids repeated in a group) its one-by-one path.
    @Test(
        "a group commit decides each append as appending them one by one would (in-memory store as oracle)",
        arguments: [0x5EED_0001, 0x5EED_0002] as [UInt64])
    func groupsMatchOneByOne(seed: UInt64) async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let oracle = try InMemoryEventStore()
            var random = SeededRandom(seed: seed)
            // New streams keep appearing (the pool grows with the rounds), so groups create streams too.
            let streams = try (0..<30).map { try StreamName("group-\($0)") }
            var earlier: [(stream: StreamName, events: [EventData])] = []
            var setBasedGroups = 0
            var groupsOfOne = 0
            func newEvents(_ count: Int) -> [EventData] {
                (0..<count).map { _ in
                    EventData(type: "Grouped", data: Data("{\"n\":\(Int.random(in: 0..<1_000, using: &random))}".utf8))
                }
            }
            for round in 0..<160 {
                // Now and then a stream is soft-deleted or tombstoned, on both stores.
                if round % 9 == 8 {
                    let stream = streams[Int.random(in: 0..<(4 + round / 6), using: &random)]
                    let tombstone = Int.random(in: 0..<4, using: &random) == 0
                    let expected = await outcome {
                        try await tombstone ? oracle.tombstone(stream) : oracle.delete(stream)
                    }
                    let actual = await outcome {
                        try await tombstone ? store.tombstone(stream) : store.delete(stream)
                    }
                    #expect(
                        Self.summary(expected.map { _ in nil }) == Self.summary(actual.map { _ in nil }),
                        "removing \(stream)")
                }
                // A group of one (append_one's path, retries included), a small group, or a large one.
                let isOne = round % 4 == 0
                let isSmall = round % 4 == 1
                let withRetries = !isSmall && Bool.random(using: &random)
                let size =
                    isOne ? 1 : isSmall ? Int.random(in: 2...7, using: &random) : Int.random(in: 8...24, using: &random)
                var group: [PendingAppend] = []
                for _ in 0..<size {
                    var stream = streams[Int.random(in: 0..<(4 + round / 6), using: &random)]
                    var events = newEvents(Int.random(in: 1...3, using: &random))
                    let roll = Int.random(in: 0..<(isOne ? 6 : 20), using: &random)
                    if withRetries, roll < 3, let old = earlier.randomElement(using: &random) {
                        (stream, events) = old  // the same append again: an idempotent retry
                    } else if withRetries, roll == 3, let old = earlier.randomElement(using: &random) {
                        events = old.events.map { EventData(id: $0.id, type: "Altered", data: $0.data) }
                    } else if withRetries, roll == 4, let previous = group.last {
                        (stream, events) = (previous.stream, previous.events)  // repeated within the group
                    }
                    let expected: ExpectedRevision =
                        switch Int.random(in: 0..<10, using: &random) {
                        case 0..<4: .any
                        case 4..<6: .noStream
                        case 6..<7: .streamExists
                        default: .exact(StreamRevision(UInt64.random(in: 0...8, using: &random)))
                        }
                    group.append(PendingAppend(events: events, stream: stream, expected: expected))
                }
                if !withRetries && size >= 8 { setBasedGroups += 1 }
                if isOne { groupsOfOne += 1 }
                await store.commit(group)
                for append in group {
                    guard case .done(let result) = await append.turn() else {
                        Issue.record("an append of a committed group was told to lead")
                        continue
                    }
                    let actual = result.mapError { $0 as any Error }
                    let expected = await outcome {
                        try await oracle.append(append.events, to: append.stream, expecting: append.expected)
                    }
                    #expect(
                        Self.summary(actual.map { $0 }) == Self.summary(expected.map { $0 }),
                        "round \(round): \(append.events.count) event(s) to \(append.stream) expecting \(append.expected)"
                    )
                    if case .success = expected { earlier.append((append.stream, append.events)) }
                }
            }
            #expect(setBasedGroups > 25 && groupsOfOne == 40, "\(setBasedGroups) set-based groups")
            let log = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            let reference = try await oracle.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            #expect(log.map(\.id) == reference.map(\.id))
            #expect(log.map(\.position) == reference.map(\.position))
            #expect(log.map(\.revision) == reference.map(\.revision))
            #expect(log.map(\.stream) == reference.map(\.stream))
        }
    }

    /// Every state a stream can be in, every kind of expectation, then the same append again (a retry)
    /// and again with other contents under the same ids: appends awaited one by one, so each is a
    /// group of one (`append_single` for one event, `append_group_commit` otherwise and when
    /// `append_single` leaves it undecided), decided as the in-memory store decides.
    @Test("a group of one decides every stream state and expectation as the in-memory store does")
    func groupsOfOneMatchTheOracle() async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let oracle = try InMemoryEventStore()
            let stores: [any EventStore] = [store, oracle]
            let states = ["absent", "written", "deleted", "tombstoned", "metadata-only"]
            let expectations: [ExpectedRevision] = [
                .any, .noStream, .streamExists, .exact(StreamRevision(0)), .exact(StreamRevision(1)),
                .exact(StreamRevision(5)),
            ]
            // One event (append_single, falling back to append_group_commit) and two (append_group_commit).
            for (s, state) in states.enumerated() {
                for (e, expected) in expectations.enumerated() {
                    for count in [1, 2] {
                        let stream = try StreamName("one-\(s)-\(e)-\(count)")
                        let setup = (0..<2).map { _ in EventData(type: "Setup", data: Data("{}".utf8)) }
                        for target in stores {
                            switch state {
                            case "written": _ = try await target.append(setup, to: stream, expecting: .noStream)
                            case "deleted":
                                _ = try await target.append(setup, to: stream, expecting: .noStream)
                                try await target.delete(stream)
                            case "tombstoned":
                                _ = try await target.append(setup, to: stream, expecting: .noStream)
                                try await target.tombstone(stream)
                            case "metadata-only": try await target.setMetadata(StreamMetadata(maxCount: 9), for: stream)
                            default: break
                            }
                        }
                        let events = (0..<count).map { EventData(type: "One", data: Data("{\"n\":\($0)}".utf8)) }
                        let altered = events.map { EventData(id: $0.id, type: "Altered", data: $0.data) }
                        for (attempt, batch) in [events, events, altered].enumerated() {
                            let actual = await outcome {
                                try await store.append(batch, to: stream, expecting: expected)
                            }
                            let wanted = await outcome {
                                try await oracle.append(batch, to: stream, expecting: expected)
                            }
                            #expect(
                                Self.summary(actual.map { $0 }) == Self.summary(wanted.map { $0 }),
                                "\(state) stream, expecting \(expected), \(count) events, attempt \(attempt)")
                        }
                    }
                }
            }
            let log = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            let reference = try await oracle.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            #expect(log.map(\.id) == reference.map(\.id))
            #expect(log.map(\.position) == reference.map(\.position))
            #expect(log.map(\.revision) == reference.map(\.revision))
            #expect(try await store.headPosition() == oracle.headPosition())
            for info in try await oracle.listStreams(after: nil, limit: 1_000) {
                #expect(try await store.streamInfo(info.stream) == info, "\(info.stream)")
            }
        }
    }

    @Test("a schema at version 2 holding events is migrated to the newest, and appends carry on from its head")
    func upgradeFromVersion2() async throws {
        let url = try #require(PostgresAvailability.url)
        let configuration = PostgresHarness.configuration()
        let schema = "\"\(configuration.schema)\""
        defer { Task { try? await PostgresHarness.dropSchema(configuration.schema, url: url) } }
        let client = PostgresClient(
            configuration: try PostgresURL.configuration(url), backgroundLogger: configuration.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            // Version 2, as an older Annals left it.
            let logger = configuration.logger
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: logger)
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL:
                            "CREATE TABLE \(schema).migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                    ), logger: logger)
                for (index, statements) in Schema.migrations.prefix(2).enumerated() {
                    for sql in statements {
                        try await connection.query(
                            PostgresQuery(unsafeSQL: sql.replacingOccurrences(of: "$S", with: schema)), logger: logger)
                    }
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "INSERT INTO \(schema).migrations (version) VALUES (\(index + 1))"),
                        logger: logger)
                }
            }
            let store = try PostgresEventStore(client: client, configuration: configuration)
            let stream = try StreamName("upgraded-1")
            let old = (0..<3).map { EventData(type: "Old", data: Data("{\"n\":\($0)}".utf8)) }
            // Through version 2's append_group (same parameters), in a transaction of ours.
            let first = try await client.withTransaction(logger: logger) { connection in
                try await store.append(old, to: stream, expecting: .noStream, in: connection)
            }
            #expect(first.lastPosition == Position(2))

            try await store.migrate()
            var versions: [Int] = []
            for try await version in try await client.query(
                "SELECT version FROM \(unescaped: schema).migrations ORDER BY 1", logger: logger
            )
            .decode(Int.self) {
                versions.append(version)
            }
            #expect(versions == Array(1...Schema.migrations.count))
            #expect(try await store.append(old, to: stream, expecting: .noStream) == first, "a retry after the upgrade")
            let next = try await store.append(
                [EventData(type: "New", data: Data("{}".utf8))], to: stream, expecting: .exact(StreamRevision(2)))
            #expect(next.firstPosition == Position(3))
            #expect(next.firstRevision == StreamRevision(3))
            let log = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            #expect(log.map(\.type) == ["Old", "Old", "Old", "New"])
            #expect(log.map(\.position.value) == [0, 1, 2, 3])
        }
    }

    /// PL/pgSQL keeps a statement's plan for the session. Plans made while the tables were empty must
    /// not scan them once they are large: the functions allow index access and nested loops only.
    @Test("append_group and append_one never scan a table, even with plans made while the tables were empty")
    func noTableScans() async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let logger = store.configuration.logger
            try await store.client.withTransaction(logger: logger) { connection in
                func group(_ appends: [(String, [EventData])]) async throws {
                    try await connection.query(
                        try Self.group(appends).query(calling: "SELECT count(*) FROM \(store.schema).append_group"),
                        logger: logger)
                }
                // append_one, as append_one_commit calls it for a group of one (here in our transaction,
                // so a refused append is not rolled back: the counter just moves on).
                func one(_ stream: String, _ appended: [EventData], _ expected: ExpectedRevision) async throws {
                    let call = GroupCall(
                        [PendingAppend(events: appended, stream: try StreamName(stream), expected: expected)],
                        recordedAt: Date(), channel: "annals_test_unused")
                    try await connection.query(
                        call.queryOne(calling: "SELECT count(*) FROM \(store.schema).append_one"), logger: logger)
                }
                func events(_ count: Int) -> [EventData] {
                    (0..<count).map { EventData(type: "Scanned", data: Data("{\"n\":\($0)}".utf8)) }
                }
                // Sequential scans per table that this backend has not reported yet: the building of the
                // tables' indexes in the migration may still be among them, hence a count before and after.
                func sequentialScans() async throws -> [String: Int64] {
                    let rows = try await connection.query(
                        """
                        SELECT relname, seq_scan FROM pg_stat_xact_user_tables
                        WHERE schemaname = \(store.configuration.schema) AND relname IN ('events', 'streams', 'counter')
                        """, logger: logger)
                    var scans: [String: Int64] = [:]
                    for try await (table, count) in rows.decode((String, Int64).self) { scans[table] = count }
                    return scans
                }
                let before = try await sequentialScans()
                // Every path, while the tables are (nearly) empty, often enough for generic plans.
                func everyPath(_ round: Int) async throws {
                    try await group([("scan-\(round % 3)", events(1))])
                    try await group((0..<10).map { ("scan-\($0 + round * 10)", events(1)) })
                    let retried = events(2)
                    try await group([("scan-retry-\(round)", retried)])
                    try await group([("scan-retry-\(round)", retried), ("scan-x", events(1))])
                    try await one("scan-one-\(round)", events(1), .noStream)
                    try await one("scan-one-\(round)", events(2), .exact(StreamRevision(0)))
                    try await one("scan-one-\(round)", events(1), .exact(StreamRevision(0)))
                    try await one("scan-one-\(round)", retried, .any)
                }
                for round in 0..<8 { try await everyPath(round) }
                // The tables grow: 40,000 events, 4,000 streams.
                for batch in 0..<4 {
                    try await group([("scan-big-\(batch)", events(9_000))])
                    try await group((0..<1_000).map { ("scan-many-\(batch)-\($0)", events(1)) })
                }
                for round in 8..<12 { try await everyPath(round) }
                let after = try await sequentialScans()
                #expect(before.keys.sorted() == ["counter", "events", "streams"])
                let scans = after.merging(before) { $0 - $1 }
                #expect(scans.values.allSatisfy { $0 == 0 }, "sequential scans: \(scans)")
            }
        }
    }

    /// `append_single` commits inside, so it cannot run in the transaction the test above counts scans
    /// in: here it runs in autocommit on one connection (one session, so its plans are kept), and the
    /// rows that sequential scans read are counted from the statistics this session reports.
    /// `held`: `append_single_prepared` as a prepared statement, on a connection set up as the one the
    /// store holds for commits; else `append_single` in autocommit on a plain connection.
    @Test(
        "append_single never scans a table, even with plans made while the tables were empty",
        arguments: [false, true])
    func appendSingleNeverScans(held: Bool) async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let logger = store.configuration.logger
            try await store.client.withConnection { connection in
                if held {
                    try await CommitConnection.configure(connection, schema: store.configuration.schema, logger: logger)
                }
                func call(_ stream: String, _ event: EventData, _ expected: ExpectedRevision) async throws {
                    let append = PendingAppend(events: [event], stream: try StreamName(stream), expected: expected)
                    let statement = AppendSingleStatement(append, recordedAt: Date(), channel: "annals_test_unused")
                    do {
                        if held {
                            for try await _ in try await connection.execute(statement, logger: logger) {}
                        } else {
                            try await connection.query(
                                try statement.query(calling: "CALL \(store.schema).append_single"), logger: logger)
                        }
                    } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                        // An id seen before: the store takes append_group_commit then.
                    }
                }
                func group(_ appends: [(String, [EventData])]) async throws {
                    try await connection.query(
                        try Self.group(appends).query(calling: "CALL \(store.schema).append_group_commit"),
                        logger: logger)
                }
                func event() -> EventData { EventData(type: "Scanned", data: Data("{}".utf8)) }
                // Rows read by sequential scans of events and streams, as reported so far (this session's
                // statistics are flushed when it goes idle after pg_stat_force_next_flush()).
                func scannedRows() async throws -> Int64 {
                    try await connection.query("SELECT pg_stat_force_next_flush()", logger: logger)
                    let rows = try await connection.query(
                        """
                        SELECT coalesce(sum(seq_tup_read), 0)::bigint FROM pg_stat_user_tables
                        WHERE schemaname = \(store.configuration.schema) AND relname IN ('events', 'streams')
                        """, logger: logger)
                    for try await (count, ) in rows.decode((Int64,).self) { return count }
                    return 0
                }
                // Every path: a new stream, an existing one, a refusal (rolled back), a retry (unique_violation).
                func everyPath(_ round: Int) async throws {
                    let retried = event()
                    try await call("single-\(round)", retried, .noStream)
                    try await call("single-\(round)", event(), .exact(StreamRevision(0)))
                    try await call("single-\(round)", event(), .exact(StreamRevision(0)))
                    try await call("single-\(round)", event(), .streamExists)
                    try await call("single-absent-\(round)", event(), .streamExists)
                    try await call("single-\(round)", retried, .any)
                }
                let before = try await scannedRows()
                for round in 0..<8 { try await everyPath(round) }
                // The tables grow: 40,000 events, 4,000 streams.
                for batch in 0..<4 {
                    try await group([("single-big-\(batch)", (0..<9_000).map { _ in event() })])
                    try await group((0..<1_000).map { ("single-many-\(batch)-\($0)", [event()]) })
                }
                let grown = try await scannedRows()
                for round in 8..<12 { try await everyPath(round) }
                let after = try await scannedRows()
                // Scans while the tables were small read a few rows at most; one scan of the grown tables
                // reads thousands.
                #expect(
                    grown - before < 1_000, "rows read by sequential scans before the tables grew: \(grown - before)")
                #expect(after - grown < 1_000, "rows read by sequential scans of the grown tables: \(after - grown)")
                let count = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max).count
                #expect(count == 40_000 + 8 * 3 + 4 * 3)
            }
        }
    }

    @Test("an append in a REPEATABLE READ transaction is refused, and nothing is written")
    func refusesOtherIsolationLevels() async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let stream = try StreamName("isolated-1")
            await #expect {
                try await store.client.withTransaction(logger: store.configuration.logger) { connection in
                    try await connection.query(
                        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: store.configuration.logger)
                    _ = try await store.append(
                        [EventData(type: "Isolated", data: Data("{}".utf8))], to: stream, expecting: .any,
                        in: connection)
                }
            } throws: { error in
                "\(error)".contains("READ COMMITTED")
            }
            #expect(try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: 10).isEmpty)
            #expect(try await store.streamInfo(stream) == nil)
        }
    }

    /// What must agree between the stores: the result, or the error's code and actual revision.
    static func summary(_ result: Result<AppendResult?, any Error>) -> String {
        switch result {
        case .success(let result): "\(String(describing: result))"
        case .failure(let error as EventStoreError): "\(error.code) \(String(describing: error.actualRevision))"
        case .failure(let error): "\(error)"
        }
    }

    /// The call for a group of appends expecting any revision, notifying a channel nobody listens on.
    static func group(_ appends: [(String, [EventData])]) throws -> GroupCall {
        GroupCall(
            try appends.map { PendingAppend(events: $1, stream: try StreamName($0), expected: .any) },
            recordedAt: Date(), channel: "annals_test_unused")
    }
}

private func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }

}

extension GroupCall {
    /// `head` applied to `append_one`'s eleven arguments (schema version 4, which processes built for
    /// it still call; this store calls `append_single` instead).
    fileprivate func queryOne(calling head: String) -> PostgresQuery {
        """
        \(unescaped: head)(\(streams[0]), \(categories[0]), \(kinds[0]), \(expectations[0]), \(ids), \(types), \
        \(contentTypes), \(data), \(metadata), \(recordedAt), \(channel))
        """
    }
}
