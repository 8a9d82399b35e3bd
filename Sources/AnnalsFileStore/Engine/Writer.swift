import Annals
import Dispatch
import Foundation
import Synchronization

struct AppendRequest {
    var events: [EventData]
    var stream: StreamName
    var expected: ExpectedRevision
    var continuation: CheckedContinuation<AppendResult, any Error>
}

struct ControlRequest {
    var kind: RecordFormat.Kind
    var stream: StreamName
    var expected: ExpectedRevision
    var metadata: StreamMetadata?
    var continuation: CheckedContinuation<Void, any Error>
}

enum WriteRequest {
    case append(AppendRequest)
    case control(ControlRequest)
}

/// The segment the writer appends to.
struct ActiveSegment {
    var index: Int
    var fd: Int32
    var firstPosition: UInt64
    /// Where the next record goes; everything before it is durable.
    var writeOffset: Int64
}

/// The single writer: greedy group commit on a dedicated thread.
///
/// Appends queue up while a flush is in progress; the writer then takes all of them, decides each in
/// order against the stream table (which already holds the earlier ones of the group, above the durable
/// head), encodes them into one reused buffer, writes it with one call, flushes once, and only then
/// moves the durable head and resumes every caller. No timers: a lone append is flushed at once, and
/// the batch grows by itself with the load. Control records (metadata, deletes) are committed alone.
///
/// Blocking calls (`pwrite`, `fdatasync`) run on the writer's own dispatch queue, never on Swift's
/// cooperative pool. Everything but `pending` is touched only on that queue.
final class Writer: @unchecked Sendable {
    private let queue = DispatchQueue(label: "annals.file-store.writer")
    private let pending = Mutex<(requests: [WriteRequest], isRunning: Bool)>(([], false))
    private let segmentsDirectory: String
    private let segmentSize: Int64
    private var active: ActiveSegment
    private var buffer = ByteWriter(capacity: 1 << 20)
    private var isClosed = false

    init(segmentsDirectory: String, active: ActiveSegment, segmentSize: Int64) {
        self.segmentsDirectory = segmentsDirectory
        self.active = active
        self.segmentSize = segmentSize
    }

    func enqueue(_ request: WriteRequest, store: FileEventStore) {
        let start = pending.withLock { pending in
            pending.requests.append(request)
            if pending.isRunning { return false }
            pending.isRunning = true
            return true
        }
        if start { queue.async { self.run(store) } }
    }

    /// Waits until every request queued so far is done; later requests fail with `store-closed`.
    func drain(_ store: FileEventStore) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.run(store)
                self.isClosed = true
                self.writeCheckpoint(store)
                continuation.resume()
            }
        }
    }

    /// Persists the index as of the durable head, so the next open scans only what comes after it.
    private func writeCheckpoint(_ store: FileEventStore) {
        let index = store.engine.withLock { state -> (any EngineIndex)? in state.failure == nil ? state.index : nil }
        if let index, !(index is MemoryIndex) {
            let end = LogPoint(segmentFirstPosition: active.firstPosition, offset: UInt64(active.writeOffset))
            index.flushAtClose(end: end) { body in store.engine.withLock { _ in body() } }
            return
        }
        guard let index = index as? MemoryIndex else { return }
        do {
            try IndexCheckpoint.write(
                index,
                storeID: store.storeID,
                segmentIndex: active.index,
                endOffset: active.writeOffset,
                directory: store.directory,
                io: store.io
            )
        } catch {
            // A cache: without it the next open scans the whole log.
            store.configuration.logger.warning("Could not write the index checkpoint", metadata: ["error": "\(error)"])
        }
    }

    private func run(_ store: FileEventStore) {
        while true {
            let requests: [WriteRequest] = pending.withLock { pending in
                if pending.requests.isEmpty {
                    pending.isRunning = false
                    return []
                }
                defer { pending.requests = [] }
                return pending.requests
            }
            if requests.isEmpty { return }
            var group: [AppendRequest] = []
            for request in requests {
                switch request {
                case .append(let append):
                    group.append(append)
                case .control(let control):
                    if !group.isEmpty { commit(group, store) }
                    group = []
                    commit(control, store)
                }
            }
            if !group.isEmpty { commit(group, store) }
        }
    }

    // MARK: Appends

    /// Commits a group in parts that each fit the index's free slots: when the next append does not
    /// fit, what came before it is committed, and the index is frozen (its flush starts in the
    /// background) before the rest goes on.
    private func commit(_ group: [AppendRequest], _ store: FileEventStore) {
        var start = 0
        while start < group.count {
            let free = store.engine.withLock { $0.index.freeSlots }
            var end = start
            var taken = 0
            while end < group.count, taken + group[end].events.count <= free {
                taken += group[end].events.count
                end += 1
            }
            if end == start {
                // Not even the next append fits: freeze, then try again (never in the failed state,
                // whose memtable may hold events that were not flushed).
                if let refusal = refusal(store) {
                    for request in group[start...] { request.continuation.resume(throwing: refusal) }
                    return
                }
                if let failure = makeRoom(store) {
                    for request in group[start...] { request.continuation.resume(throwing: failure) }
                    return
                }
                continue
            }
            commitPart(Array(group[start..<end]), store)
            start = end
        }
    }

    /// Freezes the index (after its previous frozen part is written); an error when that part cannot
    /// be written.
    private func makeRoom(_ store: FileEventStore) -> EventStoreError? {
        let index = store.engine.withLock { $0.index }
        do throws(EventStoreError) {
            try index.waitForFlush()
        } catch {
            return error
        }
        let end = LogPoint(segmentFirstPosition: active.firstPosition, offset: UInt64(active.writeOffset))
        store.engine.withLock { $0.index.freeze(end: end) }
        index.startFlush { body in store.engine.withLock { _ in body() } }
        return nil
    }

    private func commitPart(_ group: [AppendRequest], _ store: FileEventStore) {
        if let refusal = refusal(store) {
            for request in group { request.continuation.resume(throwing: refusal) }
            return
        }
        let sizes = group.map { RecordFormat.eventsRecordSize(stream: $0.stream, events: $0.events) }
        do {
            try rollIfNeeded(adding: Int64(sizes.reduce(0, +)), store)
        } catch {
            let failure = fail(store, error)
            for request in group { request.continuation.resume(throwing: failure) }
            return
        }
        let now = store.configuration.clock()
        var outcomes: [Result<AppendResult, EventStoreError>] = []
        var accepted: [(request: AppendRequest, firstRevision: UInt64, firstPosition: UInt64)] = []
        var pendingEvents: [UInt64: StoredEvent] = [:]
        store.engine.withLock { state in
            var offset = active.writeOffset
            for (request, size) in zip(group, sizes) {
                do throws(EventStoreError) {
                    let decision = try state.index.decide(
                        request.events, to: request.stream, expecting: request.expected
                    ) {
                        position throws(EventStoreError) in
                        if let event = pendingEvents[position] { return event }
                        var loader = EventLoader(io: store.io, segments: state.segments, storeID: store.storeID)
                        let recorded = try loader.event(at: position, location: try state.index.location(of: position))
                        return StoredEvent(
                            stream: recorded.stream, revision: recorded.revision.value, event: recorded.eventData)
                    }
                    switch decision {
                    case .idempotent(let original):
                        outcomes.append(.success(original))
                    case .write(let firstRevision, let firstPosition):
                        let location = Location.pack(segment: active.index, offset: offset)
                        let end = LogPoint(
                            segmentFirstPosition: active.firstPosition, offset: UInt64(offset) + UInt64(size))
                        let result = try state.index.apply(
                            request.events, to: request.stream, location: location, end: end)
                        offset += Int64(size)
                        for (index, event) in request.events.enumerated() {
                            pendingEvents[firstPosition + UInt64(index)] = StoredEvent(
                                stream: request.stream, revision: firstRevision + UInt64(index), event: event)
                        }
                        accepted.append((request, firstRevision, firstPosition))
                        outcomes.append(.success(result))
                    }
                } catch {
                    outcomes.append(.failure(error))
                }
            }
        }
        if !accepted.isEmpty {
            buffer.reset()
            for item in accepted {
                RecordFormat.encodeEvents(
                    into: &buffer,
                    storeID: store.storeID,
                    position: item.firstPosition,
                    groupStart: active.writeOffset,
                    stream: item.request.stream,
                    firstRevision: item.firstRevision,
                    recordedAt: now,
                    events: item.request.events
                )
            }
            let flushStarted = ContinuousClock.now
            do {
                try flush(store)
            } catch {
                let failure = fail(store, error)
                for request in group { request.continuation.resume(throwing: failure) }
                return
            }
            let report = CommitReport(
                appends: group.count, events: accepted.reduce(0) { $0 + $1.request.events.count },
                bytes: buffer.count, flushDuration: ContinuousClock.now - flushStarted)
            store.metrics.committed(report)
            store.configuration.commitObserver?(report)
        }
        for (request, outcome) in zip(group, outcomes) { request.continuation.resume(with: outcome) }
    }

    // MARK: Control records

    private func commit(_ request: ControlRequest, _ store: FileEventStore) {
        if let refusal = refusal(store) {
            request.continuation.resume(throwing: refusal)
            return
        }
        let checked: Result<UInt64, EventStoreError> = store.engine.withLock { state in
            do throws(EventStoreError) {
                try state.index.checkControl(
                    request.kind, stream: request.stream, expected: request.expected, metadata: request.metadata)
                return .success(state.index.head)
            } catch {
                return .failure(error)
            }
        }
        guard case .success(let head) = checked else {
            if case .failure(let error) = checked { request.continuation.resume(throwing: error) }
            return
        }
        // Encodable: checked by FileEventStore.setMetadata before the request was queued.
        let metadataJSON = request.metadata.map { (try? JSONEncoder().encode($0)) ?? Data("{}".utf8) }
        let size =
            RecordFormat.overhead + 2 + request.stream.rawValue.utf8.count + (metadataJSON.map { 4 + $0.count } ?? 0)
        do {
            try rollIfNeeded(adding: Int64(size), store)
            buffer.reset()
            RecordFormat.encodeControl(
                into: &buffer,
                kind: request.kind,
                storeID: store.storeID,
                position: head,
                groupStart: active.writeOffset,
                stream: request.stream,
                metadata: metadataJSON
            )
            try flush(store)
        } catch {
            request.continuation.resume(throwing: fail(store, error))
            return
        }
        let end = LogPoint(segmentFirstPosition: active.firstPosition, offset: UInt64(active.writeOffset))
        store.engine.withLock { state in
            state.index.applyControl(request.kind, stream: request.stream, metadata: request.metadata, end: end)
        }
        request.continuation.resume()
    }

    // MARK: I/O

    /// Writes the buffer at the end of the active segment, flushes it, and makes what it holds visible.
    /// How far ahead of the write offset the writer zero-fills its segment.
    static let zeroFillChunk: Int64 = 1 << 20
    private var zeroes = [UInt8](repeating: 0, count: Int(zeroFillChunk))
    /// Bytes of the active segment known to be written (records or zeros), not merely allocated.
    private var zeroedUpTo: Int64 = 0

    private func flush(_ store: FileEventStore) throws {
        let end = active.writeOffset + Int64(buffer.count)
        if end > zeroedUpTo {
            // Preallocated space is "unwritten" to the file system: the first flush that touches it
            // must also record its conversion, which makes a flush of a few pages cost twice a small
            // one. Writing zeros a chunk ahead pays that once per chunk. The zeros are what recovery
            // expects past the end of the log, so they need no flush of their own.
            let from = max(zeroedUpTo, active.writeOffset)
            let to = max(end, min(from + Self.zeroFillChunk, segmentSize))
            if to > from {
                try zeroes.withUnsafeBytes { zeros in
                    var offset = from
                    while offset < to {
                        let count = Int(min(Int64(zeros.count), to - offset))
                        try store.io.write(active.fd, UnsafeRawBufferPointer(rebasing: zeros[0..<count]), at: offset)
                        offset += Int64(count)
                    }
                }
            }
            zeroedUpTo = to
        }
        try buffer.bytes.withUnsafeBytes { try store.io.write(active.fd, $0, at: active.writeOffset) }
        try store.io.sync(active.fd)
        active.writeOffset += Int64(buffer.count)
        let head = store.engine.withLock { state in
            state.index.publishDurable()
            return state.index.head
        }
        store.notifier.publish(head: head)
    }

    /// Starts a new segment when the next write would not fit the active one (unless the active one
    /// holds no events yet: two segments never share a first position).
    private func rollIfNeeded(adding bytes: Int64, _ store: FileEventStore) throws {
        guard active.writeOffset > Int64(SegmentHeader.size), active.writeOffset + bytes > segmentSize else { return }
        let (head, segmentCount) = store.engine.withLock { ($0.index.head, $0.segments.count) }
        guard head > active.firstPosition else { return }
        guard segmentCount < 1 << 24 else {
            throw EventStoreError(
                .limitExceeded, "The store has \(segmentCount) segments, the most a location can name.")
        }
        // Seal: cut the preallocated tail, so a sealed segment ends exactly after its last record.
        try store.io.truncate(active.fd, to: active.writeOffset)
        try store.io.sync(active.fd)
        let segment = try Recovery.createSegment(
            directory: segmentsDirectory,
            firstPosition: head,
            storeID: store.storeID,
            size: segmentSize,
            io: store.io
        )
        let index = store.engine.withLock { state in
            state.segments.append(segment)
            state.index.segmentsChanged(state.segments.map(\.firstPosition))
            return state.segments.count - 1
        }
        active = ActiveSegment(
            index: index, fd: segment.fd, firstPosition: head, writeOffset: Int64(SegmentHeader.size))
        zeroedUpTo = Int64(SegmentHeader.size)
    }

    private func refusal(_ store: FileEventStore) -> EventStoreError? {
        if isClosed { return EventStoreError(.storeClosed, "The store is closed.") }
        return store.engine.withLock { $0.failure }
    }

    /// Puts the store into the failed state: nothing after this is acknowledged.
    private func fail(_ store: FileEventStore, _ error: any Error) -> EventStoreError {
        let failure = EventStoreError(
            .storeFailed,
            "A write to the log failed (\(error)); the store accepts no more appends. Reopen it to recover."
        )
        store.engine.withLock { state in
            if state.failure == nil { state.failure = failure }
        }
        store.configuration.logger.critical("File store failed", metadata: ["error": "\(error)"])
        return failure
    }
}
