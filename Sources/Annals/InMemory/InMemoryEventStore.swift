import Foundation
import Metrics
import Synchronization

/// An ``EventStore`` in memory: exact, fast, and gone when the process ends.
///
/// It obeys every law of ``EventStore`` except durability (laws 4 and 5 hold trivially within the
/// process), so it is the store to test deciders, command handlers and projections with. Appends are
/// serialised by a lock held only for the in-memory update; reads copy out what they return.
///
/// ## Opening and closing
///
/// The store holds only memory: create it with ``init(configuration:)`` and drop it when done. There
/// is nothing to close and no `withStore` scope; its events go with the last reference to it.
public final class InMemoryEventStore: EventStore {
    /// How the store behaves.
    public struct Configuration: Sendable {
        /// Size and count limits (law 9).
        public var limits: EventStoreLimits
        /// The clock that stamps `recordedAt` and judges `maxAge`.
        public var clock: @Sendable () -> Date
        /// How many events a subscription reads at a time.
        public var subscriptionPageSize: Int
        /// Where the store's metrics go (``StoreMetrics``, dimension `store="memory"`); nil for the
        /// factory bootstrapped for the process.
        public var metricsFactory: (any MetricsFactory)?

        /// A configuration; by default the standard limits, the system clock, subscription pages of 512 events
        /// and the bootstrapped metrics factory. ``InMemoryEventStore/init(configuration:)`` checks the limits.
        public init(
            limits: EventStoreLimits = EventStoreLimits(),
            clock: @escaping @Sendable () -> Date = { Date() },
            subscriptionPageSize: Int = 512,
            metricsFactory: (any MetricsFactory)? = nil
        ) {
            self.limits = limits
            self.clock = clock
            self.subscriptionPageSize = subscriptionPageSize
            self.metricsFactory = metricsFactory
        }
    }

    private let configuration: Configuration
    private let storage: Mutex<InMemoryStorage>
    private let notifier = CommitNotifier()
    private let metrics: StoreMetrics

    /// Creates an empty store.
    ///
    /// - Throws: ``EventStoreError/Code/invalidArgument`` when the limits are out of range.
    public init(configuration: Configuration = Configuration()) throws(EventStoreError) {
        try configuration.limits.validate()
        self.configuration = configuration
        self.storage = Mutex(InMemoryStorage())
        self.metrics = StoreMetrics(store: "memory", factory: configuration.metricsFactory)
    }

    /// Appends events to a stream, atomically, if it meets the expectation; see
    /// ``EventStore/append(_:to:expecting:)``. Runs ``appendNow(_:to:expecting:)`` in an `annals.append` span.
    @discardableResult
    public func append(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision
    ) async throws -> AppendResult {
        try await withStoreSpan("annals.append", store: "memory", stream: stream) {
            try appendNow(events, to: stream, expecting: expected)
        }
    }

    /// Appends synchronously; the same as ``append(_:to:expecting:)``.
    @discardableResult
    public func appendNow(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision
    ) throws(EventStoreError) -> AppendResult {
        let started = ContinuousClock.now
        do {
            try configuration.limits.check(events, stream: stream)
            let now = configuration.clock()
            let (result, head) = try storage.withLock { storage throws(EventStoreError) in
                let result = try storage.append(events, to: stream, expecting: expected, now: now)
                return (result, UInt64(storage.log.count))
            }
            notifier.publish(head: head)
            metrics.appended(events, result: result, duration: ContinuousClock.now - started)
            return result
        } catch {
            metrics.appendFailed()
            throw error
        }
    }

    /// Reads events of one stream; see ``EventStore/read(_:from:direction:limit:)``.
    public func read(
        _ stream: StreamName,
        from revision: StreamRevision?,
        direction: ReadDirection,
        limit: Int
    ) async throws -> [RecordedEvent] {
        try await withStoreSpan("annals.read", store: "memory", stream: stream) {
            guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A read limit must not be negative.") }
            let now = configuration.clock()
            return try storage.withLock { storage throws(EventStoreError) in
                try storage.read(stream, from: revision, direction: direction, limit: limit, now: now)
            }
        }
    }

    /// Reads `$all`, optionally filtered; see ``EventStore/readAll(from:direction:filter:limit:)``.
    public func readAll(
        from position: Position?,
        direction: ReadDirection,
        filter: EventFilter,
        limit: Int
    ) async throws -> [RecordedEvent] {
        try await withStoreSpan("annals.read_all", store: "memory") {
            guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A read limit must not be negative.") }
            return storage.withLock { storage in
                storage.readAll(from: position, direction: direction, filter: filter, limit: limit)
            }
        }
    }

    /// What the store knows of a stream; see ``EventStore/streamInfo(_:)``.
    public func streamInfo(_ stream: StreamName) async throws -> StreamInfo? {
        let now = configuration.clock()
        return storage.withLock { $0.info(stream, now: now) }
    }

    /// How many streams ``listStreams(after:limit:)`` lists, from the index; see ``EventStore/streamCount()``.
    public func streamCount() async throws -> UInt64 {
        UInt64(storage.withLock { $0.table.listedStreamCount })
    }

    /// Lists streams in the order they were created; see ``EventStore/listStreams(after:limit:)``.
    public func listStreams(after: StreamName?, limit: Int) async throws -> [StreamInfo] {
        guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A list limit must not be negative.") }
        let now = configuration.clock()
        return storage.withLock { $0.listStreams(after: after, limit: limit, now: now) }
    }

    /// The number of events in `$all`; see ``EventStore/headPosition()``.
    public func headPosition() async throws -> Position {
        Position(storage.withLock { UInt64($0.log.count) })
    }

    /// Replaces a stream's metadata; see ``EventStore/setMetadata(_:for:)``.
    public func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) async throws {
        try storage.withLock { storage throws(EventStoreError) in
            try storage.setMetadata(metadata, for: stream)
        }
    }

    /// Soft-deletes a stream; see ``EventStore/delete(_:expecting:)``.
    public func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try storage.withLock { storage throws(EventStoreError) in
            try storage.delete(stream, expecting: expected, tombstone: false)
        }
    }

    /// Tombstones a stream and wakes its subscribers, whose next read fails; see
    /// ``EventStore/tombstone(_:expecting:)``.
    public func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try storage.withLock { storage throws(EventStoreError) in
            try storage.delete(stream, expecting: expected, tombstone: true)
        }
        notifier.publishChange()
    }

    /// A catch-up subscription over this store's reads, woken by its commits; see
    /// ``EventStore/subscribe(to:from:)``.
    public func subscribe(to target: SubscriptionTarget, from start: SubscriptionStart) -> EventSubscription {
        .catchUp(
            store: self, notifier: notifier, target: target, start: start, pageSize: configuration.subscriptionPageSize)
    }
}

/// The in-memory store's state; every method runs under the store's lock.
struct InMemoryStorage {
    var table = StreamTable()
    var log: [RecordedEvent] = []

    mutating func append(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision,
        now: Date
    ) throws(EventStoreError) -> AppendResult {
        // Read through self: a local copy of `log` would make the appends below copy the whole log.
        let decision = try table.decide(events, to: stream, expecting: expected) { position in
            self.log[Int(position)].eventData
        }
        switch decision {
        case .idempotent(let original):
            return original
        case .write(let firstRevision, let firstPosition):
            for (offset, event) in events.enumerated() {
                self.log.append(
                    RecordedEvent(
                        event,
                        stream: stream,
                        revision: StreamRevision(firstRevision + UInt64(offset)),
                        position: Position(firstPosition + UInt64(offset)),
                        recordedAt: now
                    )
                )
            }
            let result = table.apply(events, to: stream)
            table.durableHead = table.head
            return result
        }
    }

    func read(
        _ stream: StreamName,
        from revision: StreamRevision?,
        direction: ReadDirection,
        limit: Int,
        now: Date
    ) throws(EventStoreError) -> [RecordedEvent] {
        let (positions, metadata, reversed) = try table.streamPositions(stream, from: revision, direction: direction)
        guard limit > 0 else { return [] }
        var result: [RecordedEvent] = []
        func take(_ position: UInt64) -> Bool {
            let event = log[Int(position)]
            if metadata.isWithinMaxAge(recordedAt: event.recordedAt, now: now) { result.append(event) }
            return result.count < limit
        }
        if reversed {
            for position in positions.reversed() where !take(position) { break }
        } else {
            for position in positions where !take(position) { break }
        }
        return result
    }

    func readAll(from position: Position?, direction: ReadDirection, filter: EventFilter, limit: Int) -> [RecordedEvent]
    {
        guard limit > 0 else { return [] }
        var result: [RecordedEvent] = []
        table.allPositions(from: position, direction: direction, filter: filter).visit { position in
            let event = log[Int(position)]
            if filter.isEmpty || filter.matches(event) { result.append(event) }
            return result.count < limit
        }
        return result
    }

    func info(_ stream: StreamName, now: Date) -> StreamInfo? {
        table.info(stream, now: now) { log[Int($0)].recordedAt }
    }

    func listStreams(after: StreamName?, limit: Int, now: Date) -> [StreamInfo] {
        table.listStreams(after: after, limit: limit, now: now) { log[Int($0)].recordedAt }
    }

    mutating func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) throws(EventStoreError) {
        try table.checkMetadata(metadata, for: stream)
        table.applyMetadata(metadata, for: stream)
    }

    mutating func delete(_ stream: StreamName, expecting expected: ExpectedRevision, tombstone: Bool)
        throws(EventStoreError)
    {
        try table.checkDelete(stream, expecting: expected)
        table.applyDelete(stream, tombstone: tombstone)
    }
}
