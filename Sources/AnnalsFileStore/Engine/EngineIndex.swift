import Annals
import Foundation

/// A place in the log: the first position of a segment and a byte offset in it.
struct LogPoint: Equatable, Sendable {
    var segmentFirstPosition: UInt64
    var offset: UInt64
}

/// A stored event as an idempotency check needs it: its stream and revision, and its content.
struct StoredEvent {
    var stream: StreamName
    var revision: UInt64
    var event: EventData
}

/// The file store's index, as the writer, the readers and recovery use it (decision 0007's facade).
///
/// Two implementations: ``MemoryIndex`` (every table in memory, persisted by a checkpoint at close)
/// and ``DiskIndex`` (a memtable in memory, immutable runs on disk, listed by a manifest). Every
/// method is called under the store's engine lock; the writer is the only caller of the mutating ones.
/// Positions at or above ``durableHead`` are pending and never returned by reads (law 5).
protocol EngineIndex: AnyObject, Sendable {
    /// The position the next event gets (pending events included).
    var head: UInt64 { get }
    /// Reads return positions below this one only.
    var durableHead: UInt64 { get }
    /// Makes every pending event readable: called once a group is flushed.
    func publishDurable()
    /// How many more events the index takes before it must be frozen (``freeze(end:)``).
    var freeSlots: Int { get }
    /// Waits, outside the engine lock, until a frozen part of the index is written, so that another
    /// freeze may follow; throws `unavailable` when it cannot be written.
    func waitForFlush() throws(EventStoreError)
    /// Sets aside what the index holds as of the log end `end` and starts afresh (under the lock).
    func freeze(end: LogPoint)
    /// Writes what ``freeze(end:)`` set aside, in the background; `publish` runs a closure under the
    /// engine lock, to swap the result in.
    func startFlush(publish: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void)
    /// Sets aside and writes what the index holds while recovery scans the log (no lock, no readers),
    /// when ``freeSlots`` is too small for the next record; the scan resumes at `end`.
    func flushDuringRecovery(end: LogPoint) throws
    /// Writes everything the index holds to disk before the store closes (the log ends at `end`).
    func flushAtClose(end: LogPoint, publish: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void)
    /// Waits for a background write to finish, as a process killed after it would have (tests).
    func waitForBackgroundWork()
    /// Starts no more background work, and returns once what is running has finished (at close).
    func finishBackgroundWork() async
    /// The segments' first positions, by segment index: the writer tells the index of each new one.
    func segmentsChanged(_ firstPositions: [UInt64])

    /// Decides an append: idempotent retry, or where to write; throws when it must fail. Order of checks:
    /// idempotency (law 6), tombstone, expectation (law 2).
    func decide(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision,
        storedEvent: (UInt64) throws(EventStoreError) -> StoredEvent
    ) throws(EventStoreError) -> StreamTable.AppendDecision
    /// Records an append that ``decide(_:to:expecting:storedEvent:)`` let through; its record starts
    /// at `location` and ends at `end`.
    @discardableResult
    func apply(
        _ events: [EventData], to stream: StreamName, location: UInt64, end: LogPoint
    ) throws(EventStoreError) -> AppendResult
    /// Checks a metadata record (`metadata` set) or a soft delete or tombstone.
    func checkControl(
        _ kind: RecordFormat.Kind, stream: StreamName, expected: ExpectedRevision, metadata: StreamMetadata?
    ) throws(EventStoreError)
    /// Records a durable control record that ends at `end`.
    func applyControl(_ kind: RecordFormat.Kind, stream: StreamName, metadata: StreamMetadata?, end: LogPoint)
    /// Whether the log already holds an event with this id (recovery refuses a log that repeats one).
    func contains(_ id: UUID) throws(EventStoreError) -> Bool
    /// How many events `stream` has, pending ones included (recovery checks a record's first revision).
    func eventCount(of stream: StreamName) throws(EventStoreError) -> UInt64

    /// Where the record holding durable `position` starts (a packed ``Location``).
    func location(of position: UInt64) throws(EventStoreError) -> UInt64
    /// Up to `limit` visible revisions of a stream from `revision` in read order, with their positions
    /// and locations, and the stream's metadata (for `maxAge`); throws for a tombstoned stream.
    func streamChunk(
        _ stream: StreamName, from revision: StreamRevision?, direction: ReadDirection, limit: Int
    ) throws(EventStoreError) -> (
        entries: [(revision: UInt64, position: UInt64, location: UInt64)], metadata: StreamMetadata
    )
    /// Up to `limit` candidate positions of `$all` from `position` in read order, with their locations;
    /// the caller applies `filter.matches` to each event it loads.
    func allChunk(
        from position: Position?, direction: ReadDirection, filter: EventFilter, limit: Int
    ) throws(EventStoreError) -> [(position: UInt64, location: UInt64)]
    /// What the index knows of a stream; `recordedAt` loads the time of an event given its position
    /// and location (for `maxAge`).
    func info(
        _ stream: StreamName, now: Date, recordedAt: (UInt64, UInt64) throws -> Date
    ) throws -> StreamInfo?
    /// How many streams ``listStreams(after:limit:now:recordedAt:)`` lists in all.
    func listedStreamCount() throws(EventStoreError) -> Int
    /// Streams in creation order after `after`.
    func listStreams(
        after: StreamName?, limit: Int, now: Date, recordedAt: (UInt64, UInt64) throws -> Date
    ) throws -> [StreamInfo]
}
