import Foundation
import Synchronization

/// A saved state of an aggregate at a stream revision, so loading need not replay every event.
public struct Snapshot: Sendable, Hashable, Codable {
    /// The stream the state was folded from.
    public var stream: StreamName
    /// The revision of the last event folded into the state.
    public var revision: StreamRevision
    /// The version of the state's schema; a snapshot with another version is ignored.
    public var schemaVersion: Int
    /// The encoded state (JSON by default).
    public var state: Data
    /// When the snapshot was taken.
    public var takenAt: Date

    /// A snapshot of `state`, folded from `stream` up to `revision`; taken now unless `takenAt` says otherwise.
    public init(stream: StreamName, revision: StreamRevision, schemaVersion: Int, state: Data, takenAt: Date = Date()) {
        self.stream = stream
        self.revision = revision
        self.schemaVersion = schemaVersion
        self.state = state
        self.takenAt = takenAt
    }
}

/// Stores the latest snapshot of each stream.
///
/// Laws: ``load(_:)`` returns the snapshot most recently saved for the stream (or `nil`); ``save(_:)``
/// replaces it only when the new one has a revision at least as high, so a slow writer cannot roll a
/// snapshot back. Snapshots are a cache: losing them loses nothing but time.
public protocol SnapshotStore: Sendable {
    /// The latest snapshot of `stream`, or `nil`.
    func load(_ stream: StreamName) async throws -> Snapshot?
    /// Saves a snapshot unless a newer one is stored.
    func save(_ snapshot: Snapshot) async throws
}

/// A ``SnapshotStore`` in memory.
public final class InMemorySnapshotStore: SnapshotStore {
    private let snapshots = Mutex<[StreamName: Snapshot]>([:])

    /// An empty store.
    public init() {}

    /// The latest snapshot of `stream`, or `nil`; see ``SnapshotStore/load(_:)``.
    public func load(_ stream: StreamName) async throws -> Snapshot? {
        snapshots.withLock { $0[stream] }
    }

    /// Saves a snapshot unless one with a higher revision is stored; see ``SnapshotStore/save(_:)``.
    public func save(_ snapshot: Snapshot) async throws {
        snapshots.withLock { snapshots in
            if let existing = snapshots[snapshot.stream], existing.revision > snapshot.revision { return }
            snapshots[snapshot.stream] = snapshot
        }
    }
}

/// When and how a ``CommandHandler`` takes snapshots of its decider's state.
public struct Snapshotting<State: Sendable>: Sendable {
    /// Where snapshots are kept.
    public var store: any SnapshotStore
    /// Take a snapshot each time the stream passes a multiple of this many events.
    public var frequency: Int
    /// The state's schema version; stored snapshots with another version are ignored.
    public var schemaVersion: Int
    let encode: @Sendable (State) throws -> Data
    let decode: @Sendable (Data) throws -> State

    /// Snapshots a `Codable` state as JSON every `frequency` events.
    public init(store: any SnapshotStore, every frequency: Int = 100, schemaVersion: Int = 1) where State: Codable {
        self.store = store
        self.frequency = max(1, frequency)
        self.schemaVersion = schemaVersion
        self.encode = { state in try JSONEncoder().encode(state) }
        self.decode = { data in try JSONDecoder().decode(State.self, from: data) }
    }

    /// Whether moving from `old` (nil: no events) to `new` crosses a multiple of the frequency.
    func isDue(from old: StreamRevision?, to new: StreamRevision) -> Bool {
        let frequency = UInt64(frequency)
        let before = old.map { ($0.value + 1) / frequency } ?? 0
        let after = (new.value + 1) / frequency
        return after > before
    }
}
