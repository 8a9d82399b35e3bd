import Annals
import Foundation

/// What ``NDJSONImporter/finish()`` loaded.
public struct ImportReport: Sendable, Hashable {
    /// The events appended.
    public var events: UInt64
    /// The stream states (metadata, soft deletes, tombstones) applied.
    public var streams: UInt64

    /// A report of `events` events and `streams` stream states.
    public init(events: UInt64 = 0, streams: UInt64 = 0) {
        self.events = events
        self.streams = streams
    }
}

/// Loads NDJSON written by ``NDJSONExport`` (or `annals export`) into an empty store, keeping every
/// event id, revision and position.
///
/// Make one with ``init(into:progress:)``, which checks that the store is empty; hand it the export's
/// bytes with ``feed(_:)`` in chunks of any size, split anywhere; then call ``finish()``.
///
/// - Consecutive events of one stream go in one append (up to 512), with the exact expected revision.
///   Each append must land at the positions its events had, or the import stops with
///   `invalid-argument`: the export has gaps (it was filtered), or something else writes to the
///   store.
/// - Stream states (`streamState` lines, anywhere in the input) are applied by ``finish()``, after
///   every event: a soft delete, then the metadata, then a tombstone.
/// - Times (`recordedAt`) are the import's, not the original ones.
/// - An import that stops with an error leaves what it appended so far; import again into another
///   empty store.
///
/// It holds at most one batch of events, the stream states, and the start of a line whose end has not
/// arrived. It is not `Sendable`: one task feeds it.
public struct NDJSONImporter {
    /// The most events in one append.
    static let batchLimit = 512

    private let store: any EventStore
    private let progress: (UInt64) -> Void
    /// The start of a line whose LF has not arrived yet.
    private var pending: [UInt8] = []
    /// Lines read so far, empty ones included: errors name the line.
    private var line = 0
    private var batch: [RecordedEvent] = []
    private var states: [StreamInfo] = []
    private var count: UInt64 = 0

    /// An importer into `store`, which must be empty.
    ///
    /// - Parameters:
    ///   - store: the store to load.
    ///   - progress: called after each append with the number of events imported so far.
    /// - Throws: `invalid-argument` when the store is not empty (its head position is not 0); the
    ///   store's errors.
    public init(into store: any EventStore, progress: @escaping (UInt64) -> Void = { _ in }) async throws {
        guard try await store.headPosition().value == 0 else {
            throw EventStoreError(.invalidArgument, "The target store is not empty; import needs an empty store.")
        }
        self.store = store
        self.progress = progress
    }

    /// Imports every line that `bytes` completes; the rest waits for the next chunk or ``finish()``.
    ///
    /// Events go to the store in batches, so some of a line's events may be appended only by a later
    /// call. Empty lines are skipped.
    ///
    /// - Throws: `invalid-json` with the line's number when a line is not JSON; the decoders' errors
    ///   when it is not an event or a stream state; `invalid-argument` when an event would land at
    ///   another position than it had; the store's errors. Stop importing after an error.
    public mutating func feed(_ bytes: some Collection<UInt8>) async throws {
        let chunk = Array(bytes)
        var start = 0
        // Only the new bytes are searched for line ends: a long line split over many chunks is read once.
        while let end = chunk[start...].firstIndex(of: 0x0A) {
            let text: [UInt8]
            if pending.isEmpty {
                text = Array(chunk[start..<end])
            } else {
                pending.append(contentsOf: chunk[start..<end])
                text = pending
                pending = []
            }
            start = end + 1
            try await take(text)
        }
        pending.append(contentsOf: chunk[start...])
    }

    /// Imports the last line (also without a final LF) and the last batch, then applies the stream
    /// states.
    ///
    /// - Returns: how many events and stream states were imported.
    /// - Throws: as ``feed(_:)`` does.
    public mutating func finish() async throws -> ImportReport {
        if !pending.isEmpty {
            let text = pending
            pending = []
            try await take(text)
        }
        try await flush()
        for state in states {
            if state.isDeleted { try await store.delete(state.stream, expecting: .any) }
            if state.metadata != StreamMetadata() { try await store.setMetadata(state.metadata, for: state.stream) }
            if state.isTombstoned { try await store.tombstone(state.stream, expecting: .any) }
        }
        return ImportReport(events: count, streams: UInt64(states.count))
    }

    // MARK: Lines and batches

    /// One line: an event joins the batch (which goes to the store first when the event cannot join
    /// it), a stream state is kept for ``finish()``.
    private mutating func take(_ bytes: [UInt8]) async throws {
        line += 1
        guard !bytes.isEmpty else { return }
        let node: JSONNode
        do {
            node = try JSONNode.parse(bytes)
        } catch {
            throw EventStoreError(error.code, "Line \(line): \(error.message)")
        }
        if let state = node["streamState"] {
            states.append(try WireFormat.decodeStreamInfo(state, in: bytes))
            return
        }
        let event = try WireFormat.decodeRecorded(node, in: bytes)
        if let last = batch.last,
            last.stream != event.stream || batch.count == Self.batchLimit || last.position.next != event.position
        {
            try await flush()
        }
        batch.append(event)
    }

    /// Appends the batch and checks that it landed where its events were.
    private mutating func flush() async throws {
        guard let first = batch.first else { return }
        let expected: ExpectedRevision = first.revision.previous.map { .exact($0) } ?? .noStream
        let result = try await store.append(batch.map(\.eventData), to: first.stream, expecting: expected)
        guard result.firstPosition == first.position, result.firstRevision == first.revision else {
            throw EventStoreError(
                .invalidArgument,
                "Event \(first.id) got position \(result.firstPosition) (revision \(result.firstRevision)) but had \(first.position) (\(first.revision)); the export has gaps or the store is not empty."
            )
        }
        count += UInt64(batch.count)
        progress(count)
        batch.removeAll(keepingCapacity: true)
    }
}
