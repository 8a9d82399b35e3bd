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
        switch try await pending.next() {
        case .result(let result): return result
        case .lead: throw EventStoreError(.unavailable, "An append was asked to lead a group it cannot take.")
        }
    }

    /// Commits a group of appends in one transaction holding the counter row's lock.
    private func commit(_ group: [PendingAppend]) async {
        let recordedAt = Date()
        let started = ContinuousClock.now
        do {
            // Bounded: after a server restart a lease or query can wait forever (seen with postgres-nio
            // 1.33 under load), and every append queued behind the leader would wait with it.
            let (outcomes, head) = try await withDeadline(configuration.appendTimeout) { [self] in
                try await client.withTransaction(logger: logger) { connection in
                    // The counter row lock orders appends; stricter isolation would only add serialization errors.
                    try await connection.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", logger: logger)
                    var head: Int64 = 0
                    for try await value in try await connection.query(
                        "SELECT next_position FROM \(unescaped: schema).counter WHERE id = 1 FOR UPDATE",
                        logger: logger
                    ).decode(Int64.self) {
                        head = value
                    }
                    let start = head
                    var outcomes: [Result<AppendResult, EventStoreError>] = []
                    for append in group {
                        let outcome = try await appendOne(append, at: head, recordedAt: recordedAt, on: connection)
                        if case .success(let result) = outcome, result.firstPosition.value == UInt64(head) {
                            head += Int64(append.events.count)
                        }
                        outcomes.append(outcome)
                    }
                    if head > start {
                        try await connection.query(
                            "UPDATE \(unescaped: schema).counter SET next_position = \(head) WHERE id = 1",
                            logger: logger
                        )
                        // Delivered on commit, to every listening process.
                        try await connection.query("SELECT pg_notify(\(channel), \(String(head)))", logger: logger)
                    }
                    return (outcomes, head)
                }
            }
            notifier.publish(head: UInt64(head))
            configuration.commitObserver?(
                CommitReport(
                    appends: group.count,
                    events: zip(group, outcomes).reduce(0) { total, pair in
                        guard case .success(let result) = pair.1, result.lastPosition.value < UInt64(head) else {
                            return total
                        }
                        return total + pair.0.events.count
                    },
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

    /// Appends one batch inside the group's transaction, through the schema's `append_events` function.
    func appendOne(
        _ append: PendingAppend,
        at position: Int64,
        recordedAt: Date,
        on connection: PostgresConnection
    ) async throws -> Result<AppendResult, EventStoreError> {
        let (kind, expected): (Int32, Int64?) =
            switch append.expected {
            case .any: (0, nil)
            case .noStream: (1, nil)
            case .streamExists: (2, nil)
            case .exact(let revision): (3, Int64(exactly: revision.value) ?? -1)
            }
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
        for try await (status, firstRevision, firstPosition, actual, conflict) in rows.decode(
            (Int32, Int64?, Int64?, Int64?, UUID?).self
        ) {
            let count = UInt64(events.count)
            switch status {
            case 0, 1:
                let revision = UInt64(firstRevision ?? 0)
                let start = UInt64(firstPosition ?? position)
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
                let id = conflict ?? events[0].id
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
        throw EventStoreError(.unavailable, "append_events returned no row.")
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
