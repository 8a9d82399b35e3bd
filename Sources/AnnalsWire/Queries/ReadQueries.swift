import Annals

/// The query of `GET /streams/{stream}`: `from` (a revision), `limit`, `direction`.
public struct StreamReadQuery: Sendable, Hashable {
    /// The first revision to read, inclusive; nil for the start (forwards) or the end (backwards).
    public var from: StreamRevision?
    /// Forwards (the default) or backwards.
    public var direction: ReadDirection
    /// The most events to read; nil for the server's page size (a JSON page) or no bound (NDJSON).
    public var limit: Int?

    /// A read from `from`, in `direction`, of at most `limit` events.
    public init(from: StreamRevision? = nil, direction: ReadDirection = .forwards, limit: Int? = nil) {
        self.from = from
        self.direction = direction
        self.limit = limit
    }

    /// The parameters this route takes.
    public static let names: Set<String> = ["from", "limit", "direction"]

    /// Reads the query a request sent (unknown parameters are the route's to refuse first).
    public init(parsing query: QueryParameters) throws(EventStoreError) {
        from = try query.integer("from").map { StreamRevision($0) }
        direction = try query.direction()
        limit = try query.integer("limit").map { Int($0) }
    }

    /// The query to send.
    public var parameters: QueryParameters {
        var query = QueryParameters()
        if let from { query["from"] = String(from.value) }
        if direction == .backwards { query["direction"] = direction.rawValue }
        if let limit { query["limit"] = String(limit) }
        return query
    }
}

/// The query of `GET /all` and `GET /categories/{category}`: `from` (a position), `limit`,
/// `direction`, and the filter (`type`; on `/all` also `category` and `streamPrefix`).
public struct LogReadQuery: Sendable, Hashable {
    /// The first position to read, inclusive; nil for the start (forwards) or the end (backwards).
    public var from: Position?
    /// Forwards (the default) or backwards.
    public var direction: ReadDirection
    /// The most events to read; nil for the server's page size (a JSON page) or no bound (NDJSON).
    public var limit: Int?
    /// Only the events that match (a category read fills in the category from its path).
    public var filter: EventFilter

    /// A read from `from`, in `direction`, of at most `limit` events matching `filter`.
    public init(
        from: Position? = nil, direction: ReadDirection = .forwards, limit: Int? = nil,
        filter: EventFilter = EventFilter()
    ) {
        self.from = from
        self.direction = direction
        self.limit = limit
        self.filter = filter
    }

    /// The parameters `/all` takes; `/categories/{category}` takes them but `category` and
    /// `streamPrefix`.
    public static let names: Set<String> = ["from", "limit", "direction", "type", "category", "streamPrefix"]

    /// Reads the query a request sent.
    public init(parsing query: QueryParameters) throws(EventStoreError) {
        from = try query.integer("from").map { Position($0) }
        direction = try query.direction()
        limit = try query.integer("limit").map { Int($0) }
        filter = try query.filter()
    }

    /// The query to send.
    public var parameters: QueryParameters {
        var query = QueryParameters()
        if let from { query["from"] = String(from.value) }
        if direction == .backwards { query["direction"] = direction.rawValue }
        if let limit { query["limit"] = String(limit) }
        query.write(filter)
        return query
    }
}

/// The query of `GET /streams`: `after` (a stream name from an earlier answer's `next`), `limit`,
/// `prefix`.
public struct StreamListQuery: Sendable, Hashable {
    /// List the streams after this one; nil for the start.
    public var after: StreamName?
    /// The most streams in the answer; nil for the server's page size.
    public var limit: Int?
    /// Only the streams whose names start with it.
    public var prefix: String?

    /// A listing after `after` of at most `limit` streams starting with `prefix`.
    public init(after: StreamName? = nil, limit: Int? = nil, prefix: String? = nil) {
        self.after = after
        self.limit = limit
        self.prefix = prefix
    }

    /// The parameters this route takes.
    public static let names: Set<String> = ["after", "limit", "prefix"]

    /// Reads the query a request sent.
    ///
    /// - Throws: `invalid-argument` for an empty `after` or a `prefix` not 1–256 bytes; the stream
    ///   name's own errors for an `after` that is not one.
    public init(parsing query: QueryParameters) throws(EventStoreError) {
        if let text = query["after"] {
            guard !text.isEmpty else {
                throw EventStoreError(
                    .invalidArgument, "'after' is a stream name from an earlier answer's 'next'; it is empty here.")
            }
            after = try StreamName(allowingSystemName: text)
        }
        limit = try query.integer("limit").map { Int($0) }
        if let text = query["prefix"] {
            guard !text.isEmpty, text.utf8.count <= StreamName.maximumByteCount else {
                throw EventStoreError(.invalidArgument, "'prefix' is 1–256 bytes of a stream name.")
            }
            prefix = text
        }
    }

    /// The query to send.
    public var parameters: QueryParameters {
        var query = QueryParameters()
        if let after { query["after"] = after.rawValue }
        if let limit { query["limit"] = String(limit) }
        if let prefix { query["prefix"] = prefix }
        return query
    }
}

/// The query of the subscription routes: where to start (`from=start`, `from=end` with an optional
/// `head`, or `after=N`), and on `$all` and categories the filter.
///
/// A `Last-Event-ID` header (a browser's `EventSource` resuming) wins over the query's start; the
/// server applies it, since it is a header.
public struct SubscriptionQuery: Sendable, Hashable {
    /// Where a subscription starts.
    public enum Start: Sendable, Hashable {
        /// The first event (`from=start`, the default).
        case start
        /// Only events committed later (`from=end`); with `head`, every event from that head of `$all`
        /// on, however late the connection arrives.
        case end(head: UInt64?)
        /// After this checkpoint: a position for `$all` and categories, a revision for a stream.
        case after(UInt64)
    }

    /// Where to start.
    public var start: Start
    /// Only matching events (`type`; on `/subscribe/all` also `category` and `streamPrefix`).
    public var filter: EventFilter

    /// A subscription from `start`, of the events matching `filter`.
    public init(start: Start = .start, filter: EventFilter = EventFilter()) {
        self.start = start
        self.filter = filter
    }

    /// The parameters `/subscribe/all` takes (a stream subscription takes `from`, `after` and `head`; a
    /// category's also `type`).
    public static let names: Set<String> = ["from", "after", "head", "type", "category", "streamPrefix"]

    /// Reads the query a request sent.
    ///
    /// - Throws: `invalid-argument` for `from` and `after` together, a `from` other than `start` or
    ///   `end`, or a `head` without `from=end`.
    public init(parsing query: QueryParameters) throws(EventStoreError) {
        filter = try query.filter()
        let head = try query.integer("head")
        if let after = try query.integer("after") {
            if query["from"] != nil { throw EventStoreError(.invalidArgument, "Give 'from' or 'after', not both.") }
            if head != nil { throw EventStoreError(.invalidArgument, "'head' goes with from=end only.") }
            start = .after(after)
            return
        }
        switch query["from"] {
        case nil, "start":
            if head != nil { throw EventStoreError(.invalidArgument, "'head' goes with from=end only.") }
            start = .start
        case "end": start = .end(head: head)
        case let other?:
            throw EventStoreError(.invalidArgument, "'from' is start or end (or use 'after=N'); got '\(other)'.")
        }
    }

    /// The query to send.
    public var parameters: QueryParameters {
        var query = QueryParameters()
        switch start {
        case .start: query["from"] = "start"
        case .end(let head):
            query["from"] = "end"
            if let head { query["head"] = String(head) }
        case .after(let checkpoint): query["after"] = String(checkpoint)
        }
        query.write(filter)
        return query
    }
}
