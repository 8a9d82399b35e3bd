import Annals
import Foundation
import NIOCore
import PostgresNIO

extension PostgresEventStore {
    static let eventColumns =
        "position, event_id, stream_name, revision, type, content_type, data, metadata, recorded_at"

    typealias EventRow = (Int64, UUID, String, Int64, String, Int16, Data, Data, Date)

    static func recorded(_ row: EventRow) throws -> RecordedEvent {
        RecordedEvent(
            id: row.1,
            type: row.4,
            data: row.6,
            contentType: row.5 == 0 ? .json : .binary,
            metadata: row.7,
            stream: try StreamName(allowingSystemName: row.2),
            revision: StreamRevision(UInt64(max(0, row.3))),
            position: Position(UInt64(max(0, row.0))),
            recordedAt: row.8
        )
    }

    /// One page of events (every read is made of these), under ``Configuration/readTimeout``.
    func events(_ query: PostgresQuery) async throws -> [RecordedEvent] {
        try await bounded { [self] in
            var events: [RecordedEvent] = []
            for try await row in try await client.query(query, logger: logger).decode(EventRow.self) {
                events.append(try Self.recorded(row))
            }
            return events
        }
    }

    func streamRow(_ stream: StreamName) async throws -> StreamRow? {
        try await streamRows(
            """
            SELECT name, last_revision, is_deleted, is_tombstoned, metadata
            FROM \(unescaped: schema).streams WHERE name = \(stream.rawValue)
            """
        ).first
    }

    /// Rows of `streams` (all of the query's columns, in `StreamRow`'s order), under the read deadline.
    func streamRows(_ query: PostgresQuery) async throws -> [StreamRow] {
        try await bounded { [self] in
            var rows: [StreamRow] = []
            for try await row in try await client.query(query, logger: logger).decode(
                (String, Int64?, Bool, Bool, Data?).self)
            {
                rows.append(try StreamRow(row))
            }
            return rows
        }
    }

    /// One number (a count, an order), or nil when the query gives no row, under the read deadline.
    func number(_ query: PostgresQuery) async throws -> Int64? {
        try await bounded { [self] in
            for try await value in try await client.query(query, logger: logger).decode(Int64.self) { return value }
            return nil
        }
    }

    /// Reads up to `limit` visible events of `stream`, committed ones only, in queries of at most 1,000
    /// rows, each under ``Configuration/readTimeout``. `maxAge` is judged by this process's clock.
    public func read(
        _ stream: StreamName,
        from revision: StreamRevision?,
        direction: ReadDirection,
        limit: Int
    ) async throws -> [RecordedEvent] {
        try await withStoreSpan("annals.read", store: "postgres", stream: stream) {
            guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A read limit must not be negative.") }
            do {
                guard let row = try await streamRow(stream) else { return [] }
                if row.isTombstoned { throw EventStoreError.streamDeleted(stream) }
                guard limit > 0, !row.isDeleted, let last = row.lastRevision?.value else { return [] }
                let first = row.metadata.firstVisibleRevision(eventCount: last + 1)
                guard first <= last else { return [] }
                let now = Date()
                var result: [RecordedEvent] = []
                var cursor = revision?.value
                let page = Int64(min(limit, 1_000))
                while result.count < limit {
                    let events: [RecordedEvent]
                    switch direction {
                    case .forwards:
                        let from = max(cursor ?? 0, first)
                        guard from <= last else { return result }
                        events = try await self.events(
                            """
                            SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: schema).events
                            WHERE stream_name = \(stream.rawValue) AND revision >= \(Int64(from)) AND revision <= \(Int64(last))
                            ORDER BY revision LIMIT \(page)
                            """
                        )
                    case .backwards:
                        let to = min(cursor ?? last, last)
                        guard to >= first else { return result }
                        events = try await self.events(
                            """
                            SELECT \(unescaped: Self.eventColumns) FROM \(unescaped: schema).events
                            WHERE stream_name = \(stream.rawValue) AND revision <= \(Int64(to)) AND revision >= \(Int64(first))
                            ORDER BY revision DESC LIMIT \(page)
                            """
                        )
                    }
                    for event in events where row.metadata.isWithinMaxAge(recordedAt: event.recordedAt, now: now) {
                        result.append(event)
                        if result.count == limit { return result }
                    }
                    guard Int64(events.count) == page, let lastRead = events.last?.revision.value else { return result }
                    switch direction {
                    case .forwards: cursor = lastRead + 1
                    case .backwards:
                        guard lastRead > 0 else { return result }
                        cursor = lastRead - 1
                    }
                }
                return result
            } catch {
                throw Self.storeError(error, "Reading \(stream) failed")
            }
        }
    }

    /// Reads up to `limit` events of `$all` that match `filter`, as committed, in one query under
    /// ``Configuration/readTimeout``.
    public func readAll(
        from position: Position?,
        direction: ReadDirection,
        filter: EventFilter,
        limit: Int
    ) async throws -> [RecordedEvent] {
        try await withStoreSpan("annals.read_all", store: "postgres") {
            guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A read limit must not be negative.") }
            guard limit > 0 else { return [] }
            do {
                var binds = PostgresBindings()
                var conditions: [String] = []
                if let position {
                    guard let value = Int64(exactly: position.value) else {
                        if direction == .forwards { return [] }
                        return try await readAll(from: nil, direction: direction, filter: filter, limit: limit)
                    }
                    binds.append(value)
                    conditions.append(
                        direction == .forwards ? "position >= $\(binds.count)" : "position <= $\(binds.count)")
                }
                if let types = filter.eventTypes {
                    binds.append(Array(types))
                    conditions.append("type = ANY($\(binds.count))")
                }
                if let category = filter.category {
                    binds.append(category)
                    conditions.append("category = $\(binds.count)")
                }
                if let prefix = filter.streamPrefix {
                    binds.append(prefix)
                    conditions.append("starts_with(stream_name, $\(binds.count))")
                }
                binds.append(Int64(limit))
                let limitBind = binds.count
                let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
                let order = direction == .forwards ? "ASC" : "DESC"
                let sql = """
                    SELECT \(Self.eventColumns) FROM \(schema).events \(whereClause)
                    ORDER BY position \(order) LIMIT $\(limitBind)
                    """
                return try await events(PostgresQuery(unsafeSQL: sql, binds: binds))
            } catch {
                throw Self.storeError(error, "Reading $all failed")
            }
        }
    }

    /// What the `streams` table knows of `stream` (a count of the events within `maxAge`, when the
    /// metadata sets one); nil for a stream never written.
    public func streamInfo(_ stream: StreamName) async throws -> StreamInfo? {
        do {
            guard let row = try await streamRow(stream) else { return nil }
            return try await info(row)
        } catch {
            throw Self.storeError(error, "Reading \(stream) failed")
        }
    }

    private func info(_ row: StreamRow) async throws -> StreamInfo {
        var visible: UInt64 = 0
        if !row.isDeleted, !row.isTombstoned, let last = row.lastRevision?.value {
            let first = row.metadata.firstVisibleRevision(eventCount: last + 1)
            if first <= last {
                if let maxAge = row.metadata.maxAge {
                    let since = Date().addingTimeInterval(-Double(maxAge))
                    let count = try await number(
                        """
                        SELECT count(*) FROM \(unescaped: schema).events
                        WHERE stream_name = \(row.name.rawValue) AND revision >= \(Int64(first)) AND recorded_at >= \(since)
                        """)
                    visible = UInt64(max(0, count ?? 0))
                } else {
                    visible = last - first + 1
                }
            }
        }
        return StreamInfo(
            stream: row.name,
            lastRevision: row.lastRevision,
            visibleEventCount: visible,
            isDeleted: row.isDeleted,
            isTombstoned: row.isTombstoned,
            metadata: row.metadata
        )
    }

    /// How many streams ``listStreams(after:limit:)`` lists in all: one count of the `streams` table.
    public func streamCount() async throws -> UInt64 {
        do {
            let count = try await number("SELECT count(*) FROM \(unescaped: schema).streams") ?? 0
            return UInt64(max(0, count))
        } catch {
            throw Self.storeError(error, "Counting streams failed")
        }
    }

    /// Up to `limit` streams after `after`, in creation order; an `after` the store does not know lists
    /// nothing.
    public func listStreams(after: StreamName?, limit: Int) async throws -> [StreamInfo] {
        guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A list limit must not be negative.") }
        do {
            var start: Int64 = 0
            if let after {
                guard
                    let order = try await number(
                        "SELECT creation_order FROM \(unescaped: schema).streams WHERE name = \(after.rawValue)")
                else { return [] }
                start = order
            }
            let rows = try await streamRows(
                """
                SELECT name, last_revision, is_deleted, is_tombstoned, metadata FROM \(unescaped: schema).streams
                WHERE creation_order > \(start) ORDER BY creation_order LIMIT \(Int64(limit))
                """)
            var result: [StreamInfo] = []
            for row in rows { result.append(try await info(row)) }
            return result
        } catch {
            throw Self.storeError(error, "Listing streams failed")
        }
    }
}
