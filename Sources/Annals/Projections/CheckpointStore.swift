import Synchronization

/// Where a projection's progress is kept: the position (or stream revision) of the last event applied.
///
/// Laws: ``checkpoint(for:)`` returns what ``save(_:for:)`` last stored for the name (or `nil`), and
/// ``delete(for:)`` forgets it. A store that also holds the read model (PostgreSQL) can write the
/// checkpoint in the read model's transaction, making a projection exactly-once.
public protocol CheckpointStore: Sendable {
    /// The last checkpoint saved for `name`, or `nil`.
    func checkpoint(for name: String) async throws -> UInt64?
    /// Saves the checkpoint of `name`.
    func save(_ checkpoint: UInt64, for name: String) async throws
    /// Forgets the checkpoint of `name`.
    func delete(for name: String) async throws
}

/// A ``CheckpointStore`` in memory.
public final class InMemoryCheckpointStore: CheckpointStore {
    private let checkpoints = Mutex<[String: UInt64]>([:])

    /// An empty store.
    public init() {}

    /// The last checkpoint saved for `name`, or `nil`; see ``CheckpointStore/checkpoint(for:)``.
    public func checkpoint(for name: String) async throws -> UInt64? {
        checkpoints.withLock { $0[name] }
    }

    /// Saves the checkpoint of `name`; see ``CheckpointStore/save(_:for:)``.
    public func save(_ checkpoint: UInt64, for name: String) async throws {
        checkpoints.withLock { $0[name] = checkpoint }
    }

    /// Forgets the checkpoint of `name`; see ``CheckpointStore/delete(for:)``.
    public func delete(for name: String) async throws {
        _ = checkpoints.withLock { $0.removeValue(forKey: name) }
    }
}
