/// A store of events in streams: the one protocol every Annals store implements.
///
/// Annals ships an in-memory store (``InMemoryEventStore``), and the file, PostgreSQL and remote stores
/// implement the same protocol. Every implementation obeys these laws; the conformance suite in
/// `AnnalsTesting` (`EventStoreConformance`) checks each one by name, so a new store proves itself by
/// running it.
///
/// 1. **Atomic append.** All events of one append become visible together, or none do.
/// 2. **Optimistic concurrency.** The expected revision is checked atomically with the write. Of N
///    concurrent appends with the same exact expectation, exactly one succeeds; the others fail with
///    ``EventStoreError/Code/wrongExpectedRevision`` and report the actual revision.
/// 3. **Order without gaps.** Revisions are contiguous per stream. Positions are contiguous and
///    increase in commit order: no reader of `$all` ever sees position p+1 while p is still to come.
/// 4. **Durable before acknowledged** (durable stores). When `append` returns, the events survive a
///    process kill or power loss. A failed flush is fatal for the writer: nothing after it is
///    acknowledged.
/// 5. **Nothing visible that is not durable.** Readers and subscribers never see an event that a
///    crash could take back.
/// 6. **Idempotent retries.** Re-appending a batch whose event ids are stored already, as the same
///    events in the same order and the same stream, returns the original result and writes nothing,
///    whatever the expected revision, also after a restart. Reusing an event id for different content
///    or in another stream fails with ``EventStoreError/Code/duplicateEventID``.
/// 7. **Subscriptions.** From any position (or stream revision) a subscription delivers history and
///    then live events, in order, with no gap and no duplicate across the switch. A slow subscriber
///    never loses events and never slows writers: its buffer is bounded and it reads history again.
/// 8. **Deletion and retention.** Soft delete hides a stream (it can be written again and continues
///    its revisions); a tombstone makes every later append and read fail with
///    ``EventStoreError/Code/streamDeleted``. `maxCount`, `maxAge` and `truncateBefore` apply to
///    stream reads at once.
/// 9. **Limits.** Event size, events per append and bytes per append (``EventStoreLimits``) are
///    enforced before anything is written; a breach is ``EventStoreError/Code/limitExceeded``.
/// 10. **No traps on bad input.** Every failure is a typed ``EventStoreError``; bad input never crashes
///     the process.
public protocol EventStore: Sendable {
    /// Appends events to a stream, atomically, if the stream meets the expectation.
    ///
    /// - Returns: the revisions and positions the events were given (or, for an idempotent retry, were
    ///   given the first time).
    /// - Throws: ``EventStoreError`` with ``EventStoreError/Code/wrongExpectedRevision``,
    ///   ``EventStoreError/Code/streamDeleted``, ``EventStoreError/Code/duplicateEventID``,
    ///   ``EventStoreError/Code/limitExceeded``, ``EventStoreError/Code/invalidEvent`` or
    ///   ``EventStoreError/Code/invalidStreamName`` (system streams).
    @discardableResult
    func append(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision
    ) async throws -> AppendResult

    /// Reads events of one stream, retention and deletion applied.
    ///
    /// - Parameters:
    ///   - from: the first revision to consider, inclusive; `nil` is the start (forwards) or the end
    ///     (backwards).
    ///   - limit: the most events to return; must not be negative.
    /// - Returns: up to `limit` events in revision order (descending when reading backwards). A stream
    ///   that does not exist, or was soft-deleted, reads as empty.
    /// - Throws: ``EventStoreError/Code/streamDeleted`` for a tombstoned stream.
    func read(
        _ stream: StreamName,
        from revision: StreamRevision?,
        direction: ReadDirection,
        limit: Int
    ) async throws -> [RecordedEvent]

    /// Reads `$all`, the whole log in commit order, optionally filtered.
    ///
    /// `$all` shows every committed event, including those of deleted streams, until space is
    /// reclaimed. A category read is a read of `$all` with ``EventFilter/category(_:)``.
    ///
    /// - Parameters:
    ///   - from: the first position to consider, inclusive; `nil` is the start (forwards) or the end
    ///     (backwards).
    ///   - limit: the most matching events to return; must not be negative.
    func readAll(
        from position: Position?,
        direction: ReadDirection,
        filter: EventFilter,
        limit: Int
    ) async throws -> [RecordedEvent]

    /// What the store knows of a stream, or `nil` if it was never written (neither events nor metadata).
    func streamInfo(_ stream: StreamName) async throws -> StreamInfo?

    /// Lists streams in the order they were created, `limit` at a time, starting after `after`.
    func listStreams(after: StreamName?, limit: Int) async throws -> [StreamInfo]

    /// How many streams ``listStreams(after:limit:)`` lists in all, without listing them.
    ///
    /// The file and in-memory stores answer from their index, PostgreSQL with one count; the default
    /// implementation pages through ``listStreams(after:limit:)``, which costs as much as the list.
    func streamCount() async throws -> UInt64

    /// The position the next appended event will get (the number of events in `$all`).
    func headPosition() async throws -> Position

    /// Checks that the store can serve: returns when it can, throws why not — ``EventStoreError/Code/storeFailed``
    /// after a failed flush (a durable store then refuses every append until it is reopened),
    /// ``EventStoreError/Code/storeClosed``, or ``EventStoreError/Code/unavailable`` when its storage
    /// cannot be reached.
    ///
    /// The default implementation reads ``headPosition()``; a store with a failed state of its own
    /// reports that.
    func checkHealth() async throws

    /// Replaces a stream's metadata. Takes effect on reads at once.
    func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) async throws

    /// Soft-deletes a stream: reads return nothing; a later append continues its revisions.
    ///
    /// Sets `truncateBefore` to the revision after the last one. Deleting a stream that has no events is
    /// allowed and changes nothing.
    func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws

    /// Tombstones a stream: every later append and read fails with ``EventStoreError/Code/streamDeleted``.
    func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws

    /// Subscribes to a stream, a category or `$all`: history from `start`, then live events.
    ///
    /// The sequence is pull-based: the consumer's pace bounds the memory it holds. It ends (returns
    /// `nil`) when the consuming task is cancelled, and throws when the store fails or closes.
    func subscribe(to target: SubscriptionTarget, from start: SubscriptionStart) -> EventSubscription
}

/// The result of a successful append.
public struct AppendResult: Sendable, Hashable, Codable {
    /// The revision of the first event appended.
    public var firstRevision: StreamRevision
    /// The revision of the last event appended: the expected revision for the next append.
    public var nextExpectedRevision: StreamRevision
    /// The `$all` position of the first event appended.
    public var firstPosition: Position
    /// The `$all` position of the last event appended.
    public var lastPosition: Position

    /// A result with these revisions and positions.
    public init(
        firstRevision: StreamRevision,
        nextExpectedRevision: StreamRevision,
        firstPosition: Position,
        lastPosition: Position
    ) {
        self.firstRevision = firstRevision
        self.nextExpectedRevision = nextExpectedRevision
        self.firstPosition = firstPosition
        self.lastPosition = lastPosition
    }
}

/// The direction of a read.
public enum ReadDirection: String, Sendable, Hashable, Codable {
    /// From the start (or the given revision or position) towards the end, in increasing order.
    case forwards
    /// From the end (or the given revision or position) towards the start, in decreasing order.
    case backwards
}

/// What a subscription follows.
///
/// ``all`` follows every event; ``allMatching(_:)`` the events of `$all` that a filter lets through.
/// In a `switch`, match `.allMatching` for both: ``all`` is `.allMatching(.all)`, not a case of its own.
public enum SubscriptionTarget: Sendable, Hashable, CustomStringConvertible {
    /// The events of `$all` that `filter` lets through (event types, category, stream prefix);
    /// checkpoints are positions.
    case allMatching(EventFilter)
    /// One stream; checkpoints are revisions.
    case stream(StreamName)
    /// Every stream of a category (`order` for `order-42`); checkpoints are positions.
    case category(String)

    /// `$all` with no filter: every event, in commit order. The same as `.allMatching(.all)`.
    public static var all: SubscriptionTarget { .allMatching(.all) }

    /// `$all`, `$all(filtered)`, `stream <name>` or `category <name>`.
    public var description: String {
        switch self {
        case .allMatching(let filter): filter.isEmpty ? "$all" : "$all(filtered)"
        case .stream(let stream): "stream \(stream)"
        case .category(let category): "category \(category)"
        }
    }
}

/// Where a subscription starts.
public enum SubscriptionStart: Sendable, Hashable {
    /// From the first event.
    case beginning
    /// From the next event committed after the subscription is made.
    case end
    /// After this position (for `$all` and category subscriptions).
    case afterPosition(Position)
    /// After this revision (for stream subscriptions).
    case afterRevision(StreamRevision)
}

extension EventStore {
    /// Reads ``headPosition()`` and returns: for stores with no failed state of their own.
    public func checkHealth() async throws {
        _ = try await headPosition()
    }

    /// Pages through ``listStreams(after:limit:)`` and counts: for stores that keep no count.
    public func streamCount() async throws -> UInt64 {
        var count: UInt64 = 0
        var after: StreamName?
        while true {
            let page = try await listStreams(after: after, limit: 1_000)
            count += UInt64(page.count)
            guard let last = page.last, page.count == 1_000 else { return count }
            after = last.stream
        }
    }

    /// Reads a stream forwards from the start (or `from`), up to `limit` events.
    public func read(
        _ stream: StreamName,
        from revision: StreamRevision? = nil,
        limit: Int = .max
    ) async throws -> [RecordedEvent] {
        try await read(stream, from: revision, direction: .forwards, limit: limit)
    }

    /// Reads `$all` forwards from the start (or `from`), up to `limit` events.
    public func readAll(
        from position: Position? = nil,
        filter: EventFilter = .all,
        limit: Int = .max
    ) async throws -> [RecordedEvent] {
        try await readAll(from: position, direction: .forwards, filter: filter, limit: limit)
    }

    /// Reads the events of every stream of a category, in `$all` order.
    public func readCategory(
        _ category: String,
        from position: Position? = nil,
        direction: ReadDirection = .forwards,
        limit: Int = .max
    ) async throws -> [RecordedEvent] {
        try await readAll(from: position, direction: direction, filter: .category(category), limit: limit)
    }

    /// Appends events whatever the stream's revision (``ExpectedRevision/any``).
    @discardableResult
    public func append(_ events: [EventData], to stream: StreamName) async throws -> AppendResult {
        try await append(events, to: stream, expecting: .any)
    }

    /// Appends one event.
    @discardableResult
    public func append(
        _ event: EventData,
        to stream: StreamName,
        expecting expected: ExpectedRevision = .any
    ) async throws -> AppendResult {
        try await append([event], to: stream, expecting: expected)
    }

    /// Soft-deletes a stream whatever its revision.
    public func delete(_ stream: StreamName) async throws { try await delete(stream, expecting: .any) }

    /// Tombstones a stream whatever its revision.
    public func tombstone(_ stream: StreamName) async throws { try await tombstone(stream, expecting: .any) }

    /// Subscribes to `$all` from the beginning, or from `start`.
    public func subscribe(from start: SubscriptionStart = .beginning) -> EventSubscription {
        subscribe(to: .all, from: start)
    }
}
