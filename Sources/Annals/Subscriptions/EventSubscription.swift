import Instrumentation
import Metrics
import Tracing

/// A subscription: an `AsyncSequence` of recorded events, history first, then live.
///
/// Pull-based: nothing is read until the consumer asks, and the sequence holds at most one page of
/// events. It ends (returns `nil`) when the consuming task is cancelled and throws an
/// ``EventStoreError`` when the store fails, closes, or the target cannot be read (a tombstoned
/// stream).
public struct EventSubscription: AsyncSequence, Sendable {
    /// A subscription delivers recorded events.
    public typealias Element = RecordedEvent

    private let makeSource: @Sendable () -> any EventSubscriptionSource

    /// A subscription whose events come from `makeSource()`; each iterator gets its own source.
    public init(_ makeSource: @escaping @Sendable () -> any EventSubscriptionSource) {
        self.makeSource = makeSource
    }

    /// The catch-up subscription every Annals store uses: pages of `store`'s reads, woken by `notifier`.
    ///
    /// `.end` means the notifier's head now, when the subscription is made.
    public static func catchUp(
        store: any EventStore,
        notifier: CommitNotifier,
        target: SubscriptionTarget,
        start: SubscriptionStart,
        pageSize: Int
    ) -> EventSubscription {
        let head = notifier.head
        return EventSubscription {
            CatchUpSubscriptionSource(
                store: store,
                notifier: notifier,
                target: target,
                start: start,
                pageSize: pageSize,
                endHead: head
            )
        }
    }

    /// An iterator with a source of its own: each iteration reads independently, from the subscription's
    /// start.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(source: makeSource())
    }

    /// Iterates a subscription, pulling from its own ``EventSubscriptionSource``.
    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        var source: any EventSubscriptionSource

        /// The next event, waiting for one to be committed if need be; `nil` once the consuming task is
        /// cancelled.
        ///
        /// - Throws: ``EventStoreError`` when the store fails or closes, or the target cannot be read.
        public mutating func next() async throws -> RecordedEvent? {
            try await source.next()
        }
    }
}

/// The engine behind an ``EventSubscription``: one per iterator, not shared.
public protocol EventSubscriptionSource: Sendable {
    /// The next event, waiting for one to be committed if need be; `nil` once cancelled.
    mutating func next() async throws -> RecordedEvent?
}

/// A subscription engine that pages through a store's reads and waits on its ``CommitNotifier``.
///
/// The state machine: keep a cursor (the last delivered position or revision); note the head, read a
/// page after the cursor; deliver it; when a page comes back short, everything up to the noted head has
/// been seen, so the cursor may move there; when it comes back empty, wait until the head moves past
/// the noted one. Because every event is read from the store by position, a subscriber can never miss
/// one or see one twice, however far behind it falls, and writers never wait for it.
public struct CatchUpSubscriptionSource: EventSubscriptionSource {
    /// Resolves the start lazily (a stream's `.end`, a mismatched start); returns the cursor.
    public typealias Resolver = @Sendable () async throws -> UInt64?

    let store: any EventStore
    let notifier: CommitNotifier
    let target: SubscriptionTarget
    let pageSize: Int
    var resolveStart: Resolver?
    /// Deliver events strictly after this position (or revision, for a stream); nil: from the start.
    var cursor: UInt64?
    var buffer: [RecordedEvent] = []
    var bufferIndex = 0
    /// Whether the first ``next()`` has run (it resolves the start, in an `annals.subscribe` span).
    var begun = false
    /// `annals_subscriber_lag_events{target}`: how many events behind the head each page read starts.
    let lag: Recorder

    /// A source that delivers the events of `target` from `start`, history first, then live.
    ///
    /// A start that does not fit the target (a position for a stream, a revision for `$all` or a category)
    /// makes the first ``next()`` throw ``EventStoreError/Code/invalidArgument``.
    ///
    /// - Parameters:
    ///   - pageSize: how many events a read fetches; at least 1.
    ///   - endHead: the head that ``SubscriptionStart/end`` means; `nil` for the notifier's head now.
    public init(
        store: any EventStore,
        notifier: CommitNotifier,
        target: SubscriptionTarget,
        start: SubscriptionStart,
        pageSize: Int = 512,
        endHead: UInt64? = nil
    ) {
        self.store = store
        self.notifier = notifier
        self.target = target
        self.pageSize = max(1, pageSize)
        let kind =
            switch target {
            case .stream: "stream"
            case .category: "category"
            case .allMatching: "all"
            }
        self.lag = Recorder(label: "annals_subscriber_lag_events", dimensions: [("target", kind)])
        let isStream = target.isStream
        switch start {
        case .beginning:
            cursor = nil
        case .afterPosition(let position) where !isStream:
            cursor = position.value
        case .afterRevision(let revision) where isStream:
            cursor = revision.value
        case .afterPosition, .afterRevision:
            resolveStart = { @Sendable in
                throw EventStoreError(
                    .invalidArgument,
                    isStream
                        ? "A stream subscription starts after a revision, not a position."
                        : "A $all or category subscription starts after a position, not a revision."
                )
            }
        case .end:
            // "End" is the head when the subscription was made (`endHead`), not when iteration starts.
            let head = endHead ?? notifier.head
            switch target {
            case .allMatching, .category:
                cursor = head == 0 ? nil : head - 1
            case .stream(let stream):
                // The stream's last revision below the head noted now: events committed after this
                // call are delivered even if the iteration starts later.
                let pageSize = self.pageSize
                resolveStart = { @Sendable [store] in
                    try await Self.lastRevision(of: stream, below: head, in: store, pageSize: pageSize)
                }
            }
        }
    }

    /// The next event: from the page in hand, else from the next page read after the cursor, waiting on
    /// the ``CommitNotifier`` while there is none; see ``EventSubscriptionSource/next()``.
    public mutating func next() async throws -> RecordedEvent? {
        if !begun {
            begun = true
            let span = InstrumentationSystem.tracer.startSpan("annals.subscribe", ofKind: .internal)
            defer { span.end() }
            if span.isRecording { span.attributes["annals.target"] = "\(target)" }
            if let resolve = resolveStart {
                resolveStart = nil
                do {
                    cursor = try await resolve()
                } catch {
                    span.recordError(error)
                    throw error
                }
            }
        }
        while true {
            if bufferIndex < buffer.count {
                let event = buffer[bufferIndex]
                bufferIndex += 1
                return event
            }
            if Task.isCancelled { return nil }
            // A tombstone moves no head: the generation wakes a stream subscriber, whose next read fails
            // with stream-deleted at once rather than at some unrelated append.
            let (noted, generation) = notifier.snapshot
            let page: [RecordedEvent]
            do {
                page = try await readPage()
            } catch {
                // A read cut short by the consumer's cancellation ends the subscription cleanly, whatever
                // error the store's driver reports for it.
                if Task.isCancelled { return nil }
                throw error
            }
            buffer = page
            bufferIndex = 0
            if let first = page.first, noted > first.position.value {
                lag.record(noted - 1 - first.position.value)
            }
            if let last = page.last {
                cursor = target.checkpoint(of: last)
            }
            if page.count < pageSize, !isStream, noted > 0 {
                // Everything below the noted head has been examined.
                cursor = max(cursor ?? 0, noted - 1)
            }
            if page.isEmpty {
                do {
                    try await notifier.wait(untilHeadExceeds: noted, orChangeAfter: generation)
                } catch is CancellationError {
                    return nil
                }
            }
        }
    }

    /// The revision of the last event of `stream` whose position is below `head`; nil if there is none.
    public static func lastRevision(
        of stream: StreamName,
        below head: UInt64,
        in store: any EventStore,
        pageSize: Int
    ) async throws -> UInt64? {
        var from: StreamRevision? = nil
        var earliest: StreamRevision? = nil
        while true {
            let page = try await store.read(stream, from: from, direction: .backwards, limit: pageSize)
            for event in page {
                if event.position.value < head { return event.revision.value }
                earliest = event.revision
            }
            guard page.count == pageSize, let last = page.last, last.revision.value > 0 else { break }
            from = StreamRevision(last.revision.value - 1)
        }
        // Every visible event is newer than the head: start before the earliest of them. With no
        // visible event at all, the stream's own last revision marks the end.
        if let earliest { return earliest.value == 0 ? nil : earliest.value - 1 }
        return try await store.streamInfo(stream)?.lastRevision?.value
    }

    private var isStream: Bool { target.isStream }

    private func readPage() async throws -> [RecordedEvent] {
        try await store.readPage(of: target, after: cursor, limit: pageSize)
    }
}
