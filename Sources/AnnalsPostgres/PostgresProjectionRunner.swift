import Annals
import Logging
import PostgresNIO
import ServiceLifecycle

/// A projection whose read model lives in the store's database: it writes through the connection it is
/// given, inside the transaction that also saves its checkpoint.
public protocol PostgresProjection: Sendable {
    /// A unique, stable name: the key of its checkpoint.
    var name: String { get }
    /// The events it follows.
    var target: SubscriptionTarget { get }
    /// Applies one event to the read model, on `connection`, inside the runner's transaction.
    func apply(_ event: RecordedEvent, in connection: PostgresConnection) async throws
    /// Clears the read model before a rebuild, inside the runner's transaction.
    func reset(in connection: PostgresConnection) async throws
}

/// Runs a ``PostgresProjection`` exactly once per event: each event is applied and its checkpoint
/// saved in one transaction, so a crash, a cancellation or an error between events neither skips an
/// event nor applies one twice. A ServiceLifecycle `Service`.
public struct PostgresProjectionRunner<P: PostgresProjection>: Service {
    /// The projection it runs.
    public let projection: P
    /// The store it reads events from, and whose database holds the read model and the checkpoint.
    public let store: PostgresEventStore

    /// A runner for `projection` on `store`; nothing runs until ``run()``, ``catchUp(pageSize:)`` or
    /// ``rebuild()``.
    public init(projection: P, store: PostgresEventStore) {
        self.projection = projection
        self.store = store
    }

    /// Follows the target until cancelled, applying each event in its own transaction.
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            for try await event in store.subscribe(to: projection.target, from: try await startingPoint()) {
                try await applyExactlyOnce(event)
            }
        }
    }

    /// Applies everything after the checkpoint up to the current end; returns how many events.
    @discardableResult
    public func catchUp(pageSize: Int = 512) async throws -> Int {
        var applied = 0
        while true {
            let checkpoint = try await PostgresCheckpointStore(store: store).checkpoint(for: projection.name)
            let page = try await store.readPage(of: projection.target, after: checkpoint, limit: max(1, pageSize))
            for event in page {
                try await applyExactlyOnce(event)
                applied += 1
            }
            if page.count < max(1, pageSize) { return applied }
        }
    }

    /// Clears the read model and the checkpoint in one transaction.
    public func rebuild() async throws {
        try await store.client.withTransaction(logger: store.logger) { connection in
            try await projection.reset(in: connection)
            try await connection.query(
                "DELETE FROM \(unescaped: store.schema).checkpoints WHERE name = \(projection.name)",
                logger: store.logger
            )
        }
    }

    /// Applies `event` and moves the checkpoint in one transaction — unless the checkpoint shows the
    /// event applied already (a redelivery after a restart), which makes it a no-op.
    private func applyExactlyOnce(_ event: RecordedEvent) async throws {
        let value = projection.target.checkpoint(of: event)
        try await store.client.withTransaction(logger: store.logger) { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", logger: store.logger)
            // Lock the checkpoint row so two runners of one projection cannot both apply an event.
            try await connection.query(
                """
                INSERT INTO \(unescaped: store.schema).checkpoints (name, checkpoint) VALUES (\(projection.name), -1)
                ON CONFLICT (name) DO NOTHING
                """,
                logger: store.logger
            )
            var current: Int64 = -1
            for try await checkpoint in try await connection.query(
                "SELECT checkpoint FROM \(unescaped: store.schema).checkpoints WHERE name = \(projection.name) FOR UPDATE",
                logger: store.logger
            ).decode(Int64.self) {
                current = checkpoint
            }
            guard current < Int64(value) else { return }
            try await projection.apply(event, in: connection)
            try await PostgresCheckpointStore.save(
                value, for: projection.name, schema: store.schema, on: connection, store.logger)
        }
    }

    private func startingPoint() async throws -> SubscriptionStart {
        projection.target.start(after: try await PostgresCheckpointStore(store: store).checkpoint(for: projection.name))
    }
}
