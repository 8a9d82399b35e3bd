import Annals
import Foundation
import PostgresNIO

/// A ``Annals/CheckpointStore`` in the store's schema (table `checkpoints`).
///
/// For projections whose read model lives in the same database, ``PostgresProjectionRunner`` writes the
/// read model and the checkpoint in one transaction instead: exactly-once.
public struct PostgresCheckpointStore: CheckpointStore {
    let store: PostgresEventStore

    /// Checkpoints in `store`'s schema, through its client.
    public init(store: PostgresEventStore) { self.store = store }

    /// The checkpoint saved for `name`, or nil when there is none (or a runner has locked its row but
    /// applied nothing yet).
    public func checkpoint(for name: String) async throws -> UInt64? {
        try await storeErrors("Reading the checkpoint failed") {
            try await store.client.withConnection {
                try await Self.checkpoint(for: name, schema: store.schema, on: $0, store.logger)
            }
        }
    }

    // Writes run in explicit transactions: postgres-nio reports a statement done at CommandComplete,
    // before an autocommit statement's commit (at Sync) is durable; a COMMIT answers once it is.

    /// Saves `checkpoint` for `name` in a transaction of its own, durable when it returns.
    ///
    /// - Throws: ``Annals/EventStoreError/Code/invalidArgument`` for a checkpoint past 2⁶³−1;
    ///   ``Annals/EventStoreError/Code/unavailable`` when PostgreSQL fails.
    public func save(_ checkpoint: UInt64, for name: String) async throws {
        try await storeErrors("Saving the checkpoint failed") {
            try await store.client.withTransaction(logger: store.logger) {
                try await Self.save(checkpoint, for: name, schema: store.schema, on: $0, store.logger)
            }
        }
    }

    /// Forgets the checkpoint of `name`, in a transaction of its own.
    public func delete(for name: String) async throws {
        try await storeErrors("Deleting the checkpoint failed") {
            try await store.client.withTransaction(logger: store.logger) {
                try await $0.query(
                    "DELETE FROM \(unescaped: store.schema).checkpoints WHERE name = \(name)", logger: store.logger)
            }
        }
    }

    static func checkpoint(for name: String, schema: String, on connection: PostgresConnection, _ logger: Logger)
        async throws
        -> UInt64?
    {
        for try await value in try await connection.query(
            "SELECT checkpoint FROM \(unescaped: schema).checkpoints WHERE name = \(name)",
            logger: logger
        ).decode(Int64.self) {
            // -1: the row exists (a runner locked it) but nothing was applied yet.
            return value < 0 ? nil : UInt64(value)
        }
        return nil
    }

    static func save(
        _ checkpoint: UInt64, for name: String, schema: String, on connection: PostgresConnection, _ logger: Logger
    )
        async throws
    {
        guard let value = Int64(exactly: checkpoint) else {
            throw EventStoreError(.invalidArgument, "A checkpoint must fit in a signed 64-bit integer.")
        }
        try await connection.query(
            """
            INSERT INTO \(unescaped: schema).checkpoints (name, checkpoint) VALUES (\(name), \(value))
            ON CONFLICT (name) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, updated_at = now()
            """,
            logger: logger
        )
    }
}

/// A ``Annals/SnapshotStore`` in the store's schema (table `snapshots`): the latest snapshot per stream;
/// an older one never replaces a newer one.
public struct PostgresSnapshotStore: SnapshotStore {
    let store: PostgresEventStore

    /// Snapshots in `store`'s schema, through its client.
    public init(store: PostgresEventStore) { self.store = store }

    /// The latest snapshot of `stream`, or nil when there is none.
    public func load(_ stream: StreamName) async throws -> Snapshot? {
        try await storeErrors("Loading the snapshot failed") { try await loadUnmapped(stream) }
    }

    private func loadUnmapped(_ stream: StreamName) async throws -> Snapshot? {
        for try await (revision, version, state, takenAt) in try await store.client.query(
            """
            SELECT revision, schema_version, state, taken_at FROM \(unescaped: store.schema).snapshots
            WHERE stream = \(stream.rawValue)
            """,
            logger: store.logger
        ).decode((Int64, Int32, Data, Date).self) {
            return Snapshot(
                stream: stream,
                revision: StreamRevision(UInt64(max(0, revision))),
                schemaVersion: Int(version),
                state: state,
                takenAt: takenAt
            )
        }
        return nil
    }

    /// Saves `snapshot` in a transaction of its own, unless the stored one is at a later revision.
    ///
    /// - Throws: ``Annals/EventStoreError/Code/invalidArgument`` when the revision does not fit in 64
    ///   signed bits or the schema version in 32; ``Annals/EventStoreError/Code/unavailable`` when
    ///   PostgreSQL fails.
    public func save(_ snapshot: Snapshot) async throws {
        guard let revision = Int64(exactly: snapshot.revision.value),
            let version = Int32(exactly: snapshot.schemaVersion)
        else { throw EventStoreError(.invalidArgument, "The snapshot's revision or schema version is out of range.") }
        try await storeErrors("Saving the snapshot failed") {
            try await saveUnmapped(snapshot, revision: revision, version: version)
        }
    }

    private func saveUnmapped(_ snapshot: Snapshot, revision: Int64, version: Int32) async throws {
        // In a transaction, so that the answer means durable (see `save(_:for:)` of the checkpoints).
        _ = try await store.client.withTransaction(logger: store.logger) { connection in
            try await connection.query(
                """
                INSERT INTO \(unescaped: store.schema).snapshots (stream, revision, schema_version, state, taken_at)
                VALUES (\(snapshot.stream.rawValue), \(revision), \(version), \(snapshot.state), \(snapshot.takenAt))
                ON CONFLICT (stream) DO UPDATE SET revision = EXCLUDED.revision, schema_version = EXCLUDED.schema_version,
                    state = EXCLUDED.state, taken_at = EXCLUDED.taken_at
                WHERE \(unescaped: store.schema).snapshots.revision <= EXCLUDED.revision
                """,
                logger: store.logger
            )
        }
    }
}

/// Runs `body`, turning driver errors into ``Annals/EventStoreError`` (`unavailable`, with context).
@discardableResult
func storeErrors<R>(_ context: String, _ body: () async throws -> R) async throws -> R {
    do {
        return try await body()
    } catch {
        throw PostgresEventStore.storeError(error, context)
    }
}
