import Annals
import Foundation
import NIOCore
import PostgresNIO

extension PostgresEventStore {
    /// Appends `events` to `stream`, all or none, when `expected` holds (laws 1, 2 and 6).
    ///
    /// Concurrent appends of this process are committed together, in one transaction, and this returns
    /// once it has committed, so the events are durable. A failed expectation, a tombstone or a reused id
    /// fails only its own append. Past ``Configuration/appendTimeout`` it throws
    /// ``Annals/EventStoreError/Code/unavailable``, and the append may or may not have been committed:
    /// retrying it with the same event ids is safe (law 6).
    @discardableResult
    public func append(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision
    ) async throws -> AppendResult {
        try await metrics.measureAppend(events, to: stream) {
            try await appendQueued(events, to: stream, expecting: expected)
        }
    }

    /// Queues the append for a group commit, leading groups when it is this call's turn.
    private func appendQueued(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision
    ) async throws -> AppendResult {
        try configuration.limits.check(events, stream: stream)
        let pending = PendingAppend(events: events, stream: stream, expected: expected)
        if batcher.submit(pending) {
            await lead(until: pending)
            // Led until its own append was committed: the outcome is here, no need to wait for a turn.
            if let result = pending.outcome { return try result.get() }
        }
        while true {
            switch await pending.turn() {
            case .lead: await lead(until: pending)
            case .done(let result): return try result.get()
            }
        }
    }

    /// Commits queued groups until `own` is done, then hands leadership on (or until the queue is
    /// empty, giving leadership up).
    private func lead(until own: PendingAppend) async {
        while true {
            // Writers whose appends the last group just acknowledged are runnable now; letting them
            // queue their next append first makes one group of them instead of a group of one and a
            // group of the rest (16 writers: 3,300 events/s without it, 5,300 with it). After a group
            // of one there is nobody to wait for, and the yield costs a lone writer awaiting each
            // append about 4 % of its rate (measured against the same CALL without the store).
            if batcher.lastGroupWasShared { await Task.yield() }
            guard let group = batcher.takeAll() else { return }
            await commit(group)
            if own.isResolved {
                batcher.handOff()
                return
            }
        }
    }

    /// Commits a group of appends in one round trip: `CALL append_group_commit(…)` locks the counter row,
    /// appends each in order (`append_group`), advances the counter, notifies and commits — inside the
    /// procedure, so the reply comes only once the commit is durable. A group of one append is
    /// `CALL append_single(…)` instead when it has one event (the common case only: a stream that exists or
    /// is new, an expectation that holds, a new id); only when that one leaves the append undecided (a
    /// refusal, a retry) does it take a second round trip, through `append_group_commit`.
    ///
    /// Not a plain `SELECT append_group(…)` in autocommit: postgres-nio completes a query at the server's
    /// CommandComplete, which comes before an implicit commit, so the append would be acknowledged
    /// before it is durable.
    func commit(_ group: [PendingAppend]) async {
        let started = ContinuousClock.now
        let recordedAt = Date()
        let channel = channel
        do {
            let outcomes: [Result<AppendResult, EventStoreError>]
            if let connection = commitConnection.borrow() {
                // Bounded by the holder, which closes the connection past appendTimeout.
                do {
                    outcomes = try await Self.commit(
                        group, recordedAt, channel, schema: schema, onHeld: true, on: connection, logger)
                    commitConnection.giveBack(broken: false)
                } catch {
                    let timedOut = commitConnection.giveBack(broken: true)
                    throw timedOut ? deadlinePassed(configuration.appendTimeout) : error
                }
            } else {
                // Bounded: after a server restart a lease or query can wait forever (seen with
                // postgres-nio 1.33 under load), and every append queued behind the leader would wait
                // with it.
                outcomes = try await withDeadline(configuration.appendTimeout) { [self] in
                    try await client.withConnection { connection in
                        try await Self.commit(
                            group, recordedAt, channel, schema: schema, onHeld: false, on: connection, logger)
                    }
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
            let report = CommitReport(
                appends: group.count, events: written,
                bytes: group.reduce(0) { $0 + $1.events.reduce(0) { $0 + $1.byteCount } },
                flushDuration: ContinuousClock.now - started)
            metrics.committed(report)
            configuration.commitObserver?(report)
            for (append, outcome) in zip(group, outcomes) { append.resolve(outcome) }
        } catch {
            let failure = Self.storeError(
                error,
                "The append may or may not have been committed; retry it with the same event ids"
            )
            for append in group { append.resolve(.failure(failure)) }
        }
    }

    /// The round trip of ``commit(_:)`` on `connection`: `append_single` for a group of one append of
    /// one event (then `append_group_commit` only if it left the append undecided), else
    /// `append_group_commit`.
    private static func commit(
        _ group: [PendingAppend], _ recordedAt: Date, _ channel: String, schema: String, onHeld: Bool,
        on connection: PostgresConnection, _ logger: Logger
    ) async throws -> [Result<AppendResult, EventStoreError>] {
        if group.count == 1, group[0].events.count == 1,
            let outcome = try await appendSingle(
                group[0], recordedAt, channel, schema: schema, onHeld: onHeld, on: connection, logger)
        {
            return [outcome]
        }
        let call = GroupCall(group, recordedAt: recordedAt, channel: channel)
        let rows = try await connection.query(
            call.query(calling: "CALL \(schema).append_group_commit"), logger: logger)
        for try await row in rows.decode(([Int32], [Int64], [Int64], [Int64], [UUID], Int64?).self) {
            return try outcomes(of: group, committed: row)
        }
        throw EventStoreError(.unavailable, "append_group_commit answered no row.")
    }

    /// `CALL append_single(…)` for a group of one append of one event: its outcome, or nil when it left the
    /// append undecided (it rolled back, or failed on an event id seen before: a retry), for
    /// `append_group_commit` to decide.
    ///
    /// On the connection ``CommitConnection`` holds (`onHeld`), whose `search_path` is the store's
    /// schema, it is a prepared statement, parsed and planned once per connection (measured: 4–6 % of
    /// the rate of one-event appends awaited one by one, against the same `CALL` parsed each time).
    private static func appendSingle(
        _ append: PendingAppend, _ recordedAt: Date, _ channel: String, schema: String, onHeld: Bool,
        on connection: PostgresConnection, _ logger: Logger
    ) async throws -> Result<AppendResult, EventStoreError>? {
        do {
            var reply: (Int64?, Int64?)?
            let statement = AppendSingleStatement(append, recordedAt: recordedAt, channel: channel)
            if onHeld {
                for try await row in try await connection.execute(statement, logger: logger) { reply = row }
            } else {
                let rows = try await connection.query(
                    try statement.query(calling: "CALL \(schema).append_single"), logger: logger)
                for try await row in rows.decode((Int64?, Int64?).self) { reply = row }
            }
            if let (revision, position) = reply {
                guard let revision, let position else { return nil }
                return outcome(of: append, (0, revision, position, nil, nil))
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            return nil
        }
        throw EventStoreError(.unavailable, "append_single answered no row.")
    }

    /// The outcomes in `append_group_commit`'s reply: parallel arrays, -1 and the nil UUID for none.
    private static func outcomes(
        of group: [PendingAppend], committed row: ([Int32], [Int64], [Int64], [Int64], [UUID], Int64?)
    ) throws -> [Result<AppendResult, EventStoreError>] {
        let (statuses, firstRevisions, firstPositions, actualRevisions, conflicts, _) = row
        guard
            [firstRevisions.count, firstPositions.count, actualRevisions.count, conflicts.count, group.count]
                .allSatisfy({ $0 == statuses.count })
        else {
            throw EventStoreError(
                .unavailable, "append_group_commit answered \(statuses.count) outcomes for \(group.count) appends.")
        }
        func some(_ value: Int64) -> Int64? { value < 0 ? nil : value }
        let none = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        return group.indices.map { k in
            outcome(
                of: group[k],
                (
                    statuses[k], some(firstRevisions[k]), some(firstPositions[k]), some(actualRevisions[k]),
                    conflicts[k] == none ? nil : conflicts[k]
                ))
        }
    }

    /// The content type as the `events` table keeps it: 0 JSON, 1 binary.
    static func wireContentType(_ event: EventData) -> Int16 { event.contentType == .json ? 0 : 1 }

    /// The expectation as `append_group` takes it: a kind (0 any, 1 no stream, 2 exists, 3 exact) and
    /// the revision for an exact one.
    static func wireExpectation(_ expected: ExpectedRevision) -> (Int32, Int64?) {
        switch expected {
        case .any: (0, nil)
        case .noStream: (1, nil)
        case .streamExists: (2, nil)
        case .exact(let revision): (3, Int64(exactly: revision.value) ?? -1)
        }
    }

    /// Appends one batch inside the caller's transaction, as a group of one through `append_group` (it
    /// takes the counter row's lock until that transaction ends, advances the counter and notifies).
    func appendInTransaction(
        _ append: PendingAppend,
        on connection: PostgresConnection
    ) async throws -> Result<AppendResult, EventStoreError> {
        let call = GroupCall([append], recordedAt: Date(), channel: channel)
        let rows = try await connection.query(
            call.query(
                calling:
                    "SELECT status, first_revision, first_position, actual_revision, conflict_id FROM \(schema).append_group"
            ),
            logger: logger)
        for try await row in rows.decode((Int32, Int64?, Int64?, Int64?, UUID?).self) {
            return Self.outcome(of: append, row)
        }
        throw EventStoreError(.unavailable, "append_group returned no row.")
    }

    /// One row of `append_group` as the append's outcome.
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

    /// Replaces `stream`'s metadata in its own transaction, with the stream's row locked; a stream not
    /// written yet gets a row. Fails with ``Annals/EventStoreError/Code/invalidStreamName`` for a system
    /// stream and ``Annals/EventStoreError/Code/streamDeleted`` for a tombstoned one.
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

    /// Soft-deletes `stream` when `expected` holds (law 8), in its own transaction with the stream's row
    /// locked.
    public func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try await remove(stream, expecting: expected, tombstone: false)
    }

    /// Tombstones `stream` for good when `expected` holds (law 8). Its transaction also notifies the
    /// other processes on the database, so live subscribers of the stream there and here end with
    /// ``Annals/EventStoreError/Code/streamDeleted`` without waiting for another append.
    public func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try await remove(stream, expecting: expected, tombstone: true)
        // Live subscribers of the stream read again and end with stream-deleted: here at once; in other
        // processes on the database through the notification the tombstone's transaction sent.
        notifier.publishChange()
    }

    /// The notification payload of a change that moves no head (a tombstone).
    static let changePayload = "changed"

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
                    // A notification is sent at commit, and only if the transaction commits: a change that
                    // moves no head (a payload that is not a head), for the subscribers of every process.
                    try await connection.query(
                        "SELECT pg_notify(\(channel), \(Self.changePayload))", logger: logger)
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
    ///
    /// A stream is created holding the counter row's lock, as appends create theirs, so that
    /// `creation_order` follows commit order: a reader paging through ``listStreams(after:limit:)`` never
    /// passes a number whose stream commits later.
    func lockStream(_ stream: StreamName, create: Bool, on connection: PostgresConnection) async throws -> StreamRow? {
        if let row = try await selectStream(stream, on: connection) { return row }
        guard create else { return nil }
        try await connection.query(
            "SELECT 1 FROM \(unescaped: schema).counter WHERE id = 1 FOR UPDATE",
            logger: logger
        )
        try await connection.query(
            "INSERT INTO \(unescaped: schema).streams (name) VALUES (\(stream.rawValue)) ON CONFLICT (name) DO NOTHING",
            logger: logger
        )
        return try await selectStream(stream, on: connection)
    }

    private func selectStream(_ stream: StreamName, on connection: PostgresConnection) async throws -> StreamRow? {
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

/// `CALL append_single_prepared(…)` (`append_single` without its per-call settings) as a prepared
/// statement, for a connection set up by ``CommitConnection/configure(_:schema:logger:)``: its
/// `search_path` is the store's schema (so the statement's text is the same for every store), and it
/// has the settings.
struct AppendSingleStatement: PostgresPreparedStatement {
    static let sql = "CALL append_single_prepared($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    /// A constant: postgres-nio's default, `String(reflecting:)` of the type, is worked out at every
    /// execution (measured: about 2 % of the client's time per single append).
    static let name = "annals_append_single_prepared"
    typealias Row = (Int64?, Int64?)

    let stream: String
    let category: String
    let kind: Int32
    let expected: Int64
    let id: UUID
    let type: String
    let contentType: Int16
    let data: ByteBuffer
    let metadata: ByteBuffer
    let recordedAt: Date
    let channel: String

    /// An append of one event.
    init(_ append: PendingAppend, recordedAt: Date, channel: String) {
        let event = append.events[0]
        let (kind, expected) = PostgresEventStore.wireExpectation(append.expected)
        self.stream = append.stream.rawValue
        self.category = append.stream.category
        self.kind = kind
        self.expected = expected ?? -1
        self.id = event.id
        self.type = event.type
        self.contentType = PostgresEventStore.wireContentType(event)
        self.data = ByteBuffer(data: event.data)
        self.metadata = ByteBuffer(data: event.metadata)
        self.recordedAt = recordedAt
        self.channel = channel
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 11)
        bindings.append(stream)
        bindings.append(category)
        bindings.append(kind)
        bindings.append(expected)
        bindings.append(id)
        bindings.append(type)
        bindings.append(contentType)
        bindings.append(data)
        bindings.append(metadata)
        bindings.append(recordedAt)
        bindings.append(channel)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }

    /// The same eleven arguments for a connection without the prepared statement: `head` applied to
    /// them as an unnamed query, e.g. `CALL "annals".append_single`; `head` is SQL text of the store's
    /// own, never input.
    func query(calling head: String) throws -> PostgresQuery {
        PostgresQuery(
            unsafeSQL: head + "(" + (1...11).map { "$\($0)" }.joined(separator: ", ") + ")",
            binds: try makeBindings())
    }
}

/// A group of appends as `append_group` takes it: parallel arrays per append, the events concatenated.
struct GroupCall {
    var streams: [String] = []
    var categories: [String] = []
    /// 0 any, 1 no stream, 2 stream exists, 3 exact (`expectations` holds the revision; -1 never matches).
    var kinds: [Int32] = []
    var expectations: [Int64] = []
    var counts: [Int32] = []
    var ids: [UUID] = []
    var types: [String] = []
    /// 0 JSON, 1 binary.
    var contentTypes: [Int16] = []
    var data: [ByteBuffer] = []
    var metadata: [ByteBuffer] = []
    var recordedAt: Date
    var channel: String

    /// `head` applied to the twelve arguments, e.g. `CALL "annals".append_group_commit(…)`; `head` is
    /// SQL text of the store's own, never input.
    func query(calling head: String) -> PostgresQuery {
        """
        \(unescaped: head)(\(streams), \(categories), \(kinds), \(expectations), \(counts), \(ids), \(types), \
        \(contentTypes), \(data), \(metadata), \(recordedAt), \(channel))
        """
    }

    init(_ group: [PendingAppend], recordedAt: Date, channel: String) {
        self.recordedAt = recordedAt
        self.channel = channel
        for append in group {
            streams.append(append.stream.rawValue)
            categories.append(append.stream.category)
            let (kind, expected) = PostgresEventStore.wireExpectation(append.expected)
            kinds.append(kind)
            expectations.append(expected ?? -1)
            counts.append(Int32(append.events.count))
            for event in append.events {
                ids.append(event.id)
                types.append(event.type)
                contentTypes.append(PostgresEventStore.wireContentType(event))
                data.append(ByteBuffer(data: event.data))
                metadata.append(ByteBuffer(data: event.metadata))
            }
        }
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
