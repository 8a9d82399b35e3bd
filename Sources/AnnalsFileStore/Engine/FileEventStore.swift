import Annals
import Dispatch
import Foundation
import Logging
import Metrics
import Synchronization

/// The embedded, durable ``Annals/EventStore``: a log of checksummed segment files in a directory.
///
/// Appends go through one writer with greedy group commit: it takes every queued append, checks each
/// expectation in order (seeing earlier appends of the same group), writes the group with one write and
/// one `fdatasync`, and only then acknowledges (law 4) and lets readers see the events (law 5). A failed
/// write or flush puts the store into a failed state: that append and every later one fail with
/// ``Annals/EventStoreError/Code/storeFailed``; reopening the directory recovers from what is on disk.
///
/// On open the store scans the log, cuts away a torn record at the very end of the last segment (an
/// append that was never acknowledged), and refuses to open — naming segment and offset — when it finds
/// damage anywhere else. One process at a time may open a directory.
///
/// ## Opening and closing
///
/// Open the store for a scope with ``withStore(at:configuration:_:)``: it is closed — queued appends
/// finished, the index written to disk, the files closed and the directory released — when the
/// closure returns or throws.
///
/// ```swift
/// try await FileEventStore.withStore(at: "./annals-data") { store in
///     try await store.append(events, to: stream)
/// }
/// ```
///
/// Where a scope does not fit, pair ``open(at:configuration:)`` with ``close()`` in the same task, on
/// every path out (return and throw), as `withStore` does. Never close from an unstructured task
/// (`defer { Task { await store.close() } }`): nothing waits for it, so the directory can still be
/// locked, and appends still queued, after the function returns. A store dropped without ``close()``
/// releases its files and the directory, but does not write the index's last memtable, so the next
/// open scans the log written since the last index flush.
public final class FileEventStore: EventStore {
    /// How the store behaves.
    public struct Configuration: Sendable {
        /// Size and count limits (law 9).
        public var limits: EventStoreLimits
        /// The size segment files are preallocated to. Default 64 MiB.
        public var segmentSize: Int
        /// How many events a subscription reads at a time.
        public var subscriptionPageSize: Int
        /// The clock that stamps `recordedAt` and judges `maxAge`.
        public var clock: @Sendable () -> Date
        /// Where the store logs: opening and closing at `debug`; what recovery cuts away or removes, and an
        /// index write or merge that failed (it is retried), at `warning`; a failed write or flush at `critical`.
        public var logger: Logger
        /// Told about each group commit; nil by default. (The store's metrics need none: see
        /// ``metricsFactory``.)
        public var commitObserver: CommitObserver?
        /// Where the store's metrics go (``Annals/StoreMetrics``, dimension `store="file"`); nil for the
        /// factory bootstrapped for the process.
        public var metricsFactory: (any MetricsFactory)?
        /// How the index uses memory and disk: by default within 64 MiB, whatever the size of the log.
        public var index = IndexConfiguration()
        /// Keeps the whole index in memory instead (its size grows with the log), with a checkpoint
        /// written at close: the mode before decision 0007, kept for its tests until it is removed.
        package var keepsIndexInMemory = false

        /// A configuration; by default the default limits, 64 MiB segments, 512 events per subscription
        /// page, the system clock and no commit observer.
        ///
        /// ``FileEventStore/open(at:configuration:)`` checks it: `segmentSize` must be 4 KiB to 1 TiB,
        /// and the limits must fit the file store's largest record (64 MiB).
        public init(
            limits: EventStoreLimits = EventStoreLimits(),
            segmentSize: Int = 64 * 1024 * 1024,
            subscriptionPageSize: Int = 512,
            clock: @escaping @Sendable () -> Date = { Date() },
            logger: Logger = Logger(label: "annals.file-store"),
            commitObserver: CommitObserver? = nil,
            metricsFactory: (any MetricsFactory)? = nil
        ) {
            self.commitObserver = commitObserver
            self.metricsFactory = metricsFactory
            self.limits = limits
            self.segmentSize = segmentSize
            self.subscriptionPageSize = subscriptionPageSize
            self.clock = clock
            self.logger = logger
        }
    }

    /// The directory the store lives in.
    public let directory: String
    /// The store's identity, from `store.id`.
    public let storeID: UUID
    /// What opening scanned.
    package let recovery: RecoveryStatistics
    let configuration: Configuration
    let metrics: StoreMetrics
    let io: any FileIO
    let engine: Mutex<EngineState>
    let notifier: CommitNotifier
    let writer: Writer
    private let lock: DirectoryLock

    /// Opens the store in `directory`, creating it if it does not exist.
    ///
    /// The caller must ``close()`` it, in the same task, on every path out; prefer
    /// ``withStore(at:configuration:_:)``, which does that.
    ///
    /// - Throws: ``Annals/EventStoreError`` — ``Annals/EventStoreError/Code/unavailable`` when another
    ///   process holds the directory ("locked by pid N") or it cannot be read;
    ///   ``Annals/EventStoreError/Code/corruptedStorage`` with the segment and offset of damage that
    ///   recovery must not cut away, a segment of another store, a missing segment or an unknown format.
    public static func open(at directory: String, configuration: Configuration = Configuration()) throws
        -> FileEventStore
    {
        try open(at: directory, configuration: configuration, io: PosixFileIO())
    }

    /// Opens the store with a given I/O implementation (the fault seam, for tests).
    package static func open(at directory: String, configuration: Configuration, io: any FileIO) throws
        -> FileEventStore
    {
        try configuration.limits.validate()
        try configuration.index.validate(for: configuration.limits)
        guard configuration.segmentSize >= 4096, configuration.segmentSize <= 1 << 40 else {
            throw EventStoreError(.invalidArgument, "segmentSize must be 4096 bytes to 1 TiB.")
        }
        guard let largest = RecordFormat.largestRecord(for: configuration.limits),
            largest <= RecordFormat.maximumFrameLength
        else {
            throw EventStoreError(
                .invalidArgument,
                "The limits allow appends larger than the file store's largest record (64 MiB): lower maxAppendSize or maxEventsPerAppend."
            )
        }
        do {
            let isNew = !io.fileExists(directory)
            try io.makeDirectory(directory)
            if isNew {
                // The new directory's own entry must survive a power loss too.
                let parent = URL(fileURLWithPath: directory).deletingLastPathComponent().path
                try io.syncDirectory(parent.isEmpty ? "." : parent)
            }
        } catch {
            throw EventStoreError(.unavailable, "Cannot create the store directory: \(error).")
        }
        let lock = try DirectoryLock(directory: directory)
        do {
            let recovered = try Recovery(directory: directory, io: io, configuration: configuration).run()
            return FileEventStore(
                directory: directory, configuration: configuration, io: io, lock: lock, recovered: recovered)
        } catch {
            lock.release()
            throw error
        }
    }

    /// Opens the store, runs `body`, and closes the store whether `body` throws or not: the way to use
    /// a file store.
    ///
    /// When this returns, every append `body` made is durable and the directory is free for another
    /// process. Do not keep the store, or a subscription of it, beyond `body`: afterwards their calls
    /// fail with ``Annals/EventStoreError/Code/storeClosed``.
    ///
    /// - Throws: what ``open(at:configuration:)`` throws, and what `body` throws.
    public static func withStore<R>(
        at directory: String,
        configuration: Configuration = Configuration(),
        _ body: (FileEventStore) async throws -> R
    ) async throws -> R {
        let store = try open(at: directory, configuration: configuration)
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }

    private init(
        directory: String, configuration: Configuration, io: any FileIO, lock: DirectoryLock, recovered: Recovered
    ) {
        self.directory = directory
        self.storeID = recovered.storeID
        self.recovery = recovered.statistics
        self.configuration = configuration
        self.metrics = StoreMetrics(store: "file", factory: configuration.metricsFactory)
        self.io = io
        self.lock = lock
        self.engine = Mutex(recovered.state)
        self.notifier = CommitNotifier(head: recovered.state.index.durableHead)
        self.writer = Writer(
            segmentsDirectory: directory + "/" + Recovery.segmentsDirectoryName,
            active: recovered.active,
            segmentSize: Int64(configuration.segmentSize)
        )
        configuration.logger.debug(
            "Opened file store",
            metadata: [
                "directory": "\(directory)", "events": "\(recovered.state.index.durableHead)",
                "segments": "\(recovered.state.segments.count)",
                "usedIndexCheckpoint": "\(recovered.statistics.usedCheckpoint)",
                "scannedRecords": "\(recovered.statistics.scannedRecords)",
            ]
        )
    }

    deinit {
        releaseResources()
    }

    /// Finishes queued appends, then closes the files and releases the directory, so another process
    /// (or another `open` in this one) can open it. Later calls fail with
    /// ``Annals/EventStoreError/Code/storeClosed``; subscriptions end by throwing it.
    ///
    /// Await it in the task that opened the store (``withStore(at:configuration:_:)`` does); closing
    /// twice is harmless.
    public func close() async {
        let alreadyClosed = engine.withLock { state in
            defer { state.isClosed = true }
            return state.isClosed
        }
        if alreadyClosed { return }
        await writer.drain(self)
        await engine.withLock { $0.index }.finishBackgroundWork()
        notifier.finish(throwing: EventStoreError(.storeClosed, "The store is closed."))
        releaseResources()
        configuration.logger.debug("Closed file store", metadata: ["directory": "\(directory)"])
    }

    /// Lets go of the directory as a killed process would: no draining, no final index flush (a flush
    /// or merge already running finishes first). For tests.
    package func abandonWithoutCheckpoint() {
        engine.withLock { $0.isClosed = true }
        releaseResources()
    }

    private func releaseResources() {
        // A flush of the index still running would write into a directory another store may own next.
        engine.withLock { $0.index }.waitForBackgroundWork()
        let segments = engine.withLock { state in
            defer { state.segments = [] }
            return state.segments
        }
        for segment in segments { io.close(segment.fd) }
        lock.release()
    }

    // MARK: Writing

    /// Appends `events` to `stream`, all or none, when `expected` holds (laws 1, 2 and 6).
    ///
    /// The limits are checked before anything is queued; the writer then checks idempotency, tombstone and
    /// expectation in order with the rest of its group commit, and this returns once the group is flushed
    /// (`fdatasync`), so the events are durable. Throws ``Annals/EventStoreError/Code/storeClosed`` after
    /// ``close()``, and ``Annals/EventStoreError/Code/storeFailed`` once a write or flush has failed.
    @discardableResult
    public func append(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision
    ) async throws -> AppendResult {
        try await metrics.measureAppend(events, to: stream) {
            try configuration.limits.check(events, stream: stream)
            try checkOpen()
            return try await withCheckedThrowingContinuation { continuation in
                writer.enqueue(
                    .append(
                        AppendRequest(events: events, stream: stream, expected: expected, continuation: continuation)),
                    store: self)
            }
        }
    }

    /// Replaces `stream`'s metadata, through the writer as a record of its own; durable when it returns.
    ///
    /// Out-of-range values fail with ``Annals/EventStoreError/Code/invalidArgument`` before anything is
    /// written.
    public func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) async throws {
        try metadata.validate()
        do {
            _ = try JSONEncoder().encode(metadata)
        } catch {
            throw EventStoreError(.invalidArgument, "The metadata cannot be stored as JSON: \(error).", stream: stream)
        }
        try checkOpen()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writer.enqueue(
                .control(
                    ControlRequest(
                        kind: .metadata, stream: stream, expected: .any, metadata: metadata, continuation: continuation)
                ),
                store: self
            )
        }
    }

    /// Soft-deletes `stream` when `expected` holds (law 8), through the writer as a record of its own;
    /// durable when it returns.
    public func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try checkOpen()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writer.enqueue(
                .control(
                    ControlRequest(
                        kind: .softDelete, stream: stream, expected: expected, metadata: nil, continuation: continuation
                    )),
                store: self
            )
        }
    }

    /// Tombstones `stream` for good when `expected` holds (law 8), through the writer as a record of its
    /// own. Once it is durable, the stream's live subscribers wake and end with
    /// ``Annals/EventStoreError/Code/streamDeleted``.
    public func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try checkOpen()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writer.enqueue(
                .control(
                    ControlRequest(
                        kind: .tombstone, stream: stream, expected: expected, metadata: nil, continuation: continuation)
                ),
                store: self
            )
        }
        // Durable now: live subscribers of the stream read again and end with stream-deleted.
        notifier.publishChange()
    }

    func checkOpen() throws(EventStoreError) {
        let (closed, failure) = engine.withLock { ($0.isClosed, $0.failure) }
        if closed { throw EventStoreError(.storeClosed, "The store is closed.") }
        if let failure { throw failure }
    }

    // MARK: Reading

    /// How many candidate positions a read copies out of the lock at a time.
    static let readChunk = 1_024

    /// Reads up to `limit` visible events of `stream`, durable ones only (law 5), through the index.
    ///
    /// Each event's record is read from its segment and its checksum checked: damage throws
    /// ``Annals/EventStoreError/Code/corruptedStorage`` naming the segment and offset. Reads still answer
    /// after the writer has failed; they fail with ``Annals/EventStoreError/Code/storeClosed`` after
    /// ``close()``.
    public func read(
        _ stream: StreamName,
        from revision: StreamRevision?,
        direction: ReadDirection,
        limit: Int
    ) async throws -> [RecordedEvent] {
        try await withStoreSpan("annals.read", store: "file", stream: stream) {
            guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A read limit must not be negative.") }
            try checkNotClosed()
            let now = configuration.clock()
            var result: [RecordedEvent] = []
            var cursor = revision
            while true {
                // Copy a chunk of (revision, position, location) out of the lock.
                let (chunk, metadata, segments) = try engine.withLock { state throws(EventStoreError) in
                    let (chunk, metadata) = try state.index.streamChunk(
                        stream, from: cursor, direction: direction, limit: Self.readChunk)
                    return (chunk, metadata, state.segments)
                }
                guard limit > 0, let last = chunk.last else { return result }
                var loader = EventLoader(io: io, segments: segments, storeID: storeID)
                for (_, position, location) in chunk {
                    let event = try loader.event(at: position, location: location)
                    if metadata.isWithinMaxAge(recordedAt: event.recordedAt, now: now) {
                        result.append(event)
                        if result.count == limit { return result }
                    }
                }
                guard chunk.count == Self.readChunk else { return result }
                switch direction {
                case .forwards: cursor = StreamRevision(last.0 + 1)
                case .backwards:
                    guard last.0 > 0 else { return result }
                    cursor = StreamRevision(last.0 - 1)
                }
            }
        }
    }

    /// Reads up to `limit` events of `$all` that match `filter`, as committed, durable ones only.
    ///
    /// The index's category and event-type lists narrow a filtered read; each record's checksum is
    /// checked as in ``read(_:from:direction:limit:)``.
    public func readAll(
        from position: Position?,
        direction: ReadDirection,
        filter: EventFilter,
        limit: Int
    ) async throws -> [RecordedEvent] {
        try await withStoreSpan("annals.read_all", store: "file") {
            guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A read limit must not be negative.") }
            try checkNotClosed()
            var result: [RecordedEvent] = []
            var cursor = position
            while limit > 0 {
                let (chunk, segments) = try engine.withLock { state throws(EventStoreError) in
                    let chunk = try state.index.allChunk(
                        from: cursor, direction: direction, filter: filter, limit: Self.readChunk)
                    return (chunk, state.segments)
                }
                guard let last = chunk.last else { return result }
                var loader = EventLoader(io: io, segments: segments, storeID: storeID)
                for (position, location) in chunk {
                    let event = try loader.event(at: position, location: location)
                    if filter.isEmpty || filter.matches(event) {
                        result.append(event)
                        if result.count == limit { return result }
                    }
                }
                guard chunk.count == Self.readChunk else { return result }
                switch direction {
                case .forwards: cursor = Position(last.0 + 1)
                case .backwards:
                    guard last.0 > 0 else { return result }
                    cursor = Position(last.0 - 1)
                }
            }
            return result
        }
    }

    /// What the index knows of `stream`, counting durable events only; nil for a stream never written.
    public func streamInfo(_ stream: StreamName) async throws -> StreamInfo? {
        try checkNotClosed()
        let now = configuration.clock()
        return try engine.withLock { state in
            var loader = EventLoader(io: io, segments: state.segments, storeID: storeID)
            return try state.index.info(stream, now: now) { position, location in
                try loader.event(at: position, location: location).recordedAt
            }
        }
    }

    /// How many streams ``listStreams(after:limit:)`` lists in all, from the index, without listing them.
    public func streamCount() async throws -> UInt64 {
        try checkNotClosed()
        return UInt64(try engine.withLock { state throws(EventStoreError) in try state.index.listedStreamCount() })
    }

    /// Up to `limit` streams after `after`, in creation order, from the index; a stream whose only
    /// events still wait for their flush is not listed.
    public func listStreams(after: StreamName?, limit: Int) async throws -> [StreamInfo] {
        guard limit >= 0 else { throw EventStoreError(.invalidArgument, "A list limit must not be negative.") }
        try checkNotClosed()
        let now = configuration.clock()
        return try engine.withLock { state in
            var loader = EventLoader(io: io, segments: state.segments, storeID: storeID)
            return try state.index.listStreams(after: after, limit: limit, now: now) { position, location in
                try loader.event(at: position, location: location).recordedAt
            }
        }
    }

    /// The durable head: the position the next event will get.
    public func headPosition() async throws -> Position {
        try checkNotClosed()
        return Position(engine.withLock { $0.index.durableHead })
    }

    /// Throws the writer's failure (a failed flush or write: every append is refused until the store
    /// is reopened), or `store-closed`.
    public func checkHealth() async throws {
        try checkOpen()
    }

    /// A catch-up subscription (law 7): it reads pages of ``Configuration/subscriptionPageSize`` events
    /// through this store's reads and, once caught up, waits for the writer to publish a new durable head.
    public func subscribe(to target: SubscriptionTarget, from start: SubscriptionStart) -> EventSubscription {
        .catchUp(
            store: self, notifier: notifier, target: target, start: start, pageSize: configuration.subscriptionPageSize)
    }

    private func checkNotClosed() throws(EventStoreError) {
        if engine.withLock({ $0.isClosed }) { throw EventStoreError(.storeClosed, "The store is closed.") }
    }
}
