import Instrumentation
import Logging
import Metrics
import ServiceLifecycle
import Tracing

/// Runs a ``Projection``: resumes from its checkpoint, applies history and then live events, and saves
/// the checkpoint as it goes. A ServiceLifecycle `Service`: add it to a `ServiceGroup`, or call
/// ``run()`` in a task and cancel the task to stop.
///
/// The checkpoint is a position for `$all` and category targets and a revision for a stream target.
/// ``catchUp()`` applies everything up to the current end and returns (for tools, tests and
/// examples); ``rebuild()`` resets the read model and forgets the checkpoint, so the next run starts
/// from the first event.
public struct ProjectionRunner<P: Projection>: Service {
    /// How the runner reads and saves checkpoints.
    public struct Configuration: Sendable {
        /// Save the checkpoint after this many events (and whenever the runner catches up). Default 1.
        public var checkpointEvery: Int
        /// Events read per page by ``ProjectionRunner/catchUp()``.
        public var pageSize: Int

        /// A configuration; a value below 1 is taken as 1.
        public init(checkpointEvery: Int = 1, pageSize: Int = 512) {
            self.checkpointEvery = max(1, checkpointEvery)
            self.pageSize = max(1, pageSize)
        }
    }

    /// The projection the runner feeds.
    public let projection: P
    /// The store the events come from.
    public let store: any EventStore
    /// Where the projection's checkpoint is kept, under its ``Projection/name``.
    public let checkpoints: any CheckpointStore
    /// How the runner reads and saves checkpoints.
    public let configuration: Configuration
    let logger: Logger
    /// `annals_projection_events_total{projection}`: events applied (process managers included).
    private let applied: Counter

    /// A runner that feeds `projection` from `store` and keeps its checkpoint in `checkpoints`.
    ///
    /// It counts the events it applies in `annals_projection_events_total{projection}`, through the
    /// bootstrapped metrics factory.
    ///
    /// - Parameters:
    ///   - logger: where the runner logs (label `annals.projection` by default).
    public init(
        projection: P,
        store: any EventStore,
        checkpoints: any CheckpointStore,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "annals.projection")
    ) {
        self.projection = projection
        self.store = store
        self.checkpoints = checkpoints
        self.applied = Counter(label: "annals_projection_events_total", dimensions: [("projection", projection.name)])
        self.configuration = configuration
        self.logger = logger
    }

    /// Follows the target until cancelled (or graceful shutdown), applying every event once per run.
    public func run() async throws {
        let start = try await startingPoint()
        logger.info("Projection starting", metadata: ["projection": "\(projection.name)", "from": "\(start)"])
        try await cancelWhenGracefulShutdown {
            var pending = 0
            var last: UInt64?
            for try await event in store.subscribe(to: projection.target, from: start) {
                try await apply(event)
                last = projection.target.checkpoint(of: event)
                pending += 1
                if pending >= configuration.checkpointEvery, let value = last {
                    try await checkpoints.save(value, for: projection.name)
                    pending = 0
                }
            }
            // The subscription ended because the task was cancelled: keep what was applied.
            if pending > 0, let last {
                try await checkpoints.save(last, for: projection.name)
            }
        }
    }

    /// Applies one event in a span (`annals.projection <name>`, kind consumer) that continues the trace
    /// the event's metadata carries, so the commands a process manager issues join the request's trace.
    private func apply(_ event: RecordedEvent) async throws {
        defer { applied.increment() }
        // Reading the metadata costs a JSON decode per event: only when something traces.
        let carried =
            TraceFields.isActive && !event.metadata.isEmpty
            ? TraceFields.context(of: EventMetadata(decoding: event.metadata)) : nil
        let parent = carried ?? .current ?? .topLevel
        try await withSpan("annals.projection \(projection.name)", context: parent, ofKind: .consumer) { span in
            if span.isRecording {
                span.attributes["annals.stream"] = event.stream.rawValue
                span.attributes["annals.event_type"] = event.type
            }
            try await projection.apply(event)
        }
    }

    /// Applies every event after the checkpoint up to the current end, saves the checkpoint, and returns
    /// how many events were applied.
    @discardableResult
    public func catchUp() async throws -> Int {
        var applied = 0
        var cursor = try await checkpoints.checkpoint(for: projection.name)
        while true {
            let page = try await readPage(after: cursor)
            for event in page {
                try await apply(event)
                cursor = projection.target.checkpoint(of: event)
                applied += 1
                if applied % configuration.checkpointEvery == 0, let cursor {
                    try await checkpoints.save(cursor, for: projection.name)
                }
            }
            if page.count < configuration.pageSize { break }
        }
        if let cursor { try await checkpoints.save(cursor, for: projection.name) }
        return applied
    }

    /// Resets the read model and forgets the checkpoint; the next ``run()`` or ``catchUp()`` starts from
    /// the first event.
    public func rebuild() async throws {
        try await projection.reset()
        try await checkpoints.delete(for: projection.name)
    }

    private func startingPoint() async throws -> SubscriptionStart {
        projection.target.start(after: try await checkpoints.checkpoint(for: projection.name))
    }

    private func readPage(after cursor: UInt64?) async throws -> [RecordedEvent] {
        try await store.readPage(of: projection.target, after: cursor, limit: configuration.pageSize)
    }
}
