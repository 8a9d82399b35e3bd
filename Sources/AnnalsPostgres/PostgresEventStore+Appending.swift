import Annals
import Foundation
import NIOCore
import PostgresNIO

extension PostgresEventStore {
    public func append(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision
    ) async throws -> AppendResult {
        try configuration.limits.check(events, stream: stream)
        let pending = PendingAppend(events: events, stream: stream, expected: expected)
        if batcher.submit(pending) {
            // The leader commits groups until the queue is empty. (Known limit: under unbroken load
            // the leader keeps committing others' appends after its own is done.)
            while let group = batcher.takeAll() { await commit(group) }
        }
        return try await pending.result()
    }

    /// Commits a group of appends: `BEGIN`, one `append_group` statement (it locks the counter row,
    /// appends each in order, advances the counter and notifies), `COMMIT` — three round trips.
    ///
    /// Not the statement alone in autocommit: postgres-nio completes a query at the server's
    /// CommandComplete, which comes before an implicit commit, so the append would be acknowledged
    /// before it is durable. An explicit `COMMIT` answers only once the commit is done.
    private func commit(_ group: [PendingAppend]) async {
        let recordedAt = Date()
        let started = ContinuousClock.now
        var kinds: [Int32] = []
        // Only read for an exact expectation (kind 3); -1 never matches a revision.
        var expectations: [Int64] = []
        var counts: [Int32] = []
        var events: [EventData] = []
        for append in group {
            let (kind, expected) = Self.wireExpectation(append.expected)
            kinds.append(kind)
            expectations.append(expected ?? -1)
            counts.append(Int32(append.events.count))
            events.append(contentsOf: append.events)
        }
        let (streams, categories) = (group.map(\.stream.rawValue), group.map(\.stream.category))
        let (groupKinds, groupExpectations, groupCounts, groupEvents) = (kinds, expectations, counts, events)
        do {
            // Bounded: after a server restart a lease or query can wait forever (seen with postgres-nio
            // 1.33 under load), and every append queued behind the leader would wait with it.
            let outcomes = try await withDeadline(configuration.appendTimeout) { [self] in
                try await client.withTransaction(logger: logger) { connection in
                    let rows = try await connection.query(
                        """
                        SELECT status, first_revision, first_position, actual_revision, conflict_id
                        FROM \(unescaped: schema).append_group(
                            \(streams), \(categories), \(groupKinds), \(groupExpectations), \(groupCounts),
                            \(groupEvents.map(\.id)), \(groupEvents.map(\.type)),
                            \(groupEvents.map { Int16($0.contentType == .json ? 0 : 1) }),
                            \(groupEvents.map { ByteBuffer(data: $0.data) }), \(groupEvents.map { ByteBuffer(data: $0.metadata) }),
                            \(recordedAt), \(channel))
                        """,
                        logger: logger
                    )
                    var outcomes: [Result<AppendResult, EventStoreError>] = []
                    for try await row in rows.decode((Int32, Int64?, Int64?, Int64?, UUID?).self) {
                        guard outcomes.count < group.count else { break }
                        outcomes.append(Self.outcome(of: group[outcomes.count], row))
                    }
                    guard outcomes.count == group.count else {
                        throw EventStoreError(
                            .unavailable, "append_group answered \(outcomes.count) rows for \(group.count) appends.")
                    }
                    return outcomes
                }
            }
            var head: UInt64 = 0
            var written = 0
            for (append, outcome) in zip(group, outcomes) {
                if case .success(let result) = outcome {
                    head = max(head, result.lastPosition.value + 1)
                    written += append.events.count
                }
            }
            if head > 0 { notifier.publish(head: head) }
            configuration.commitObserver?(
                CommitReport(
                    appends: group.count, events: written,
                    bytes: group.reduce(0) { $0 + $1.events.reduce(0) { $0 + $1.byteCount } },
                    flushDuration: ContinuousClock.now - started))
            for (append, outcome) in zip(group, outcomes) { append.resolve(outcome) }
        } catch {
            let failure = Self.storeError(
                error,
                "The append may or may not have been committed; retry it with the same event ids"
            )
            for append in group { append.resolve(.failure(failure)) }
        }
    }

    /// The expectation as `append_events` takes it: a kind (0 any, 1 no stream, 2 exists, 3 exact) and
    /// the revision for an exact one.
    static func wireExpectation(_ expected: ExpectedRevision) -> (Int32, Int64?) {
        switch expected {
        case .any: (0, nil)
        case .noStream: (1, nil)
        case .streamExists: (2, nil)
        case .exact(let revision): (3, Int64(exactly: revision.value) ?? -1)
        }
    }

    /// Appends one batch inside the caller's transaction, through the schema's `append_events` function
    /// (the caller holds the counter row's lock and passes the head).
    func appendOne(
        _ append: PendingAppend,
        at position: Int64,
        recordedAt: Date,
        on connection: PostgresConnection
    ) async throws -> Result<AppendResult, EventStoreError> {
        let (kind, expected) = Self.wireExpectation(append.expected)
        let events = append.events
        let rows = try await connection.query(
            """
            SELECT status, first_revision, first_position, actual_revision, conflict_id
            FROM \(unescaped: schema).append_events(
                \(append.stream.rawValue), \(append.stream.category), \(kind), \(expected), \(position),
                \(events.map(\.id)), \(events.map(\.type)), \(events.map { Int16($0.contentType == .json ? 0 : 1) }),
                \(events.map { ByteBuffer(data: $0.data) }), \(events.map { ByteBuffer(data: $0.metadata) }),
                \(recordedAt))
            """,
            logger: logger
        )
        for try await row in rows.decode((Int32, Int64?, Int64?, Int64?, UUID?).self) {
            return Self.outcome(of: append, row)
        }
        throw EventStoreError(.unavailable, "append_events returned no row.")
    }

    /// One row of `append_events` (or `append_group`) as the append's outcome.
    static func outcome(
        of append: PendingAppend, _ row: (Int32, Int64?, Int64?, Int64?, UUID?)
    ) -> Result<AppendResult, EventStoreError> {
        let (status, firstRevision, firstPosition, actual, conflict) = row
        let count = UInt64(append.events.count)
        switch status {
        case 0, 1:
            let revision = UInt64(firstRevision ?? 0)
            let start = UInt64(firstPosition ?? 0)
            return .success(
                AppendResult(
                    firstRevision: StreamRevision(revision),
                    nextExpectedRevision: StreamRevision(revision + count - 1),
                    firstPosition: Position(start),
                    lastPosition: Position(start + count - 1)
                )
            )
        case 2:
            return .failure(
                .wrongExpectedRevision(
                    stream: append.stream,
                    expected: append.expected,
                    actual: actual.map { StreamRevision(UInt64($0)) }
                )
            )
        case 3:
            return .failure(.streamDeleted(append.stream))
        default:
            let id = conflict ?? append.events[0].id
            return .failure(
                EventStoreError(
                    .duplicateEventID,
                    "Event id \(id) is stored already with other content, at another place or in another stream.",
                    stream: append.stream,
                    eventID: id
                )
            )
        }
    }

    // MARK: Metadata and deletion

    public func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) async throws {
        if stream.isSystem {
            throw EventStoreError(.invalidStreamName, "System streams have no user metadata.", stream: stream)
        }
        try metadata.validate()
        let json: Data
        do {
            json = try JSONEncoder().encode(metadata)
        } catch {
            throw EventStoreError(.invalidArgument, "The metadata cannot be stored as JSON: \(error).", stream: stream)
        }
        do {
            try await client.withTransaction(logger: logger) { connection in
                let row = try await lockStream(stream, create: true, on: connection)
                if row?.isTombstoned == true { throw EventStoreError.streamDeleted(stream) }
                try await connection.query(
                    "UPDATE \(unescaped: schema).streams SET metadata = \(ByteBuffer(data: json)) WHERE name = \(stream.rawValue)",
                    logger: logger
                )
            }
        } catch {
            throw Self.storeError(error, "Setting metadata failed")
        }
    }

    public func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try await remove(stream, expecting: expected, tombstone: false)
    }

    public func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try await remove(stream, expecting: expected, tombstone: true)
    }

    private func remove(_ stream: StreamName, expecting expected: ExpectedRevision, tombstone: Bool) async throws {
        if stream.isSystem {
            throw EventStoreError(.invalidStreamName, "System streams cannot be deleted.", stream: stream)
        }
        do {
            try await client.withTransaction(logger: logger) { connection in
                let row = try await lockStream(stream, create: tombstone, on: connection)
                if row?.isTombstoned == true { throw EventStoreError.streamDeleted(stream) }
                let last = row?.lastRevision
                guard expected.isSatisfied(byLastRevision: last, isSoftDeleted: row?.isDeleted ?? false) else {
                    throw EventStoreError.wrongExpectedRevision(stream: stream, expected: expected, actual: last)
                }
                if tombstone {
                    try await connection.query(
                        "UPDATE \(unescaped: schema).streams SET is_tombstoned = true WHERE name = \(stream.rawValue)",
                        logger: logger
                    )
                } else if let last, let row {
                    var metadata = row.metadata
                    metadata.truncateBefore = StreamRevision(last.value + 1)
                    let json = try JSONEncoder().encode(metadata)
                    try await connection.query(
                        """
                        UPDATE \(unescaped: schema).streams SET is_deleted = true, metadata = \(ByteBuffer(data: json))
                        WHERE name = \(stream.rawValue)
                        """,
                        logger: logger
                    )
                }
            }
        } catch {
            throw Self.storeError(error, "Deleting the stream failed")
        }
    }

    /// Locks a stream's row for the transaction (creating it first when asked); nil when there is none.
    func lockStream(_ stream: StreamName, create: Bool, on connection: PostgresConnection) async throws -> StreamRow? {
        if create {
            try await connection.query(
                "INSERT INTO \(unescaped: schema).streams (name) VALUES (\(stream.rawValue)) ON CONFLICT (name) DO NOTHING",
                logger: logger
            )
        }
        let rows = try await connection.query(
            """
            SELECT name, last_revision, is_deleted, is_tombstoned, metadata
            FROM \(unescaped: schema).streams WHERE name = \(stream.rawValue) FOR UPDATE
            """,
            logger: logger
        )
        for try await row in rows.decode((String, Int64?, Bool, Bool, Data?).self) { return try StreamRow(row) }
        return nil
    }
}

/// A row of the `streams` table.
struct StreamRow {
    var name: StreamName
    var lastRevision: StreamRevision?
    var isDeleted: Bool
    var isTombstoned: Bool
    var metadata: StreamMetadata

    init(_ row: (String, Int64?, Bool, Bool, Data?)) throws {
        name = try StreamName(allowingSystemName: row.0)
        lastRevision = row.1.map { StreamRevision(UInt64(max(0, $0))) }
        isDeleted = row.2
        isTombstoned = row.3
        if let data = row.4, !data.isEmpty {
            metadata = (try? JSONDecoder().decode(StreamMetadata.self, from: data)) ?? StreamMetadata()
        } else {
            metadata = StreamMetadata()
        }
    }
}
