import Annals
import CAnnalsCRC32C
import Dispatch
import Foundation
import Logging
import Metrics
import Synchronization

/// How the file store's index uses memory and disk (decision 0007).
///
/// The index lives on disk, in immutable files ("runs") under `index/` that a background flush writes
/// whenever ``memtableEvents`` events have been appended since the last one. In memory it keeps two
/// memtables of recent entries (fixed arrays, allocated when the store opens) and a cache of run
/// blocks, together within ``memoryBudget``: the store's memory does not grow with its log.
public struct IndexConfiguration: Sendable, Equatable {
    /// The most memory the index holds: two memtables, and a cache of run blocks with the rest (at least
    /// 1 MiB). Default 64 MiB.
    public var memoryBudget: Int
    /// Events appended between two flushes of the index to disk. Default 65,536.
    public var memtableEvents: Int

    /// An index configuration; by default a 64 MiB budget and memtables of 65,536 events.
    public init(memoryBudget: Int = 64 << 20, memtableEvents: Int = 65_536) {
        self.memoryBudget = memoryBudget
        self.memtableEvents = memtableEvents
    }

    /// Checks the values: `memtableEvents` 16 to 4,194,304, and a `memoryBudget` that holds the two
    /// memtables (each sized for `memtableEvents` plus one largest append of `limits`) and 1 MiB of
    /// block cache.
    public func validate(for limits: EventStoreLimits = EventStoreLimits()) throws(EventStoreError) {
        guard memtableEvents >= 16, memtableEvents <= 1 << 22 else {
            throw EventStoreError(
                .invalidArgument, "memtableEvents must be 16 to 4,194,304; it is \(memtableEvents).")
        }
        let least = memtableBytes(limits: limits) + (1 << 20)
        guard memoryBudget >= least else {
            throw EventStoreError(
                .invalidArgument,
                "The index memory budget must be at least \(least) bytes (two memtables of \(memtableEvents) events plus an append of \(limits.maxEventsPerAppend), and 1 MiB of cache); it is \(memoryBudget)."
            )
        }
    }

    /// What the two memtables take: allocated when the store opens.
    func memtableBytes(limits: EventStoreLimits) -> Int {
        2 * IndexMemtable.bytes(capacity: memtableEvents + limits.maxEventsPerAppend)
    }
}

/// The file store's index on disk: an active memtable of what was written since the last flush, at
/// most one frozen memtable being written as a run in the background, and the immutable runs a
/// manifest lists, read through a block cache (decision 0007).
///
/// Memory stays inside ``IndexConfiguration/memoryBudget`` however long the log grows: the memtables are
/// allocated once, and run blocks live in the cache. Every lookup that misses the memtables goes to the
/// runs, newest first, through their fences and Bloom filters; law 6 stays exact because every id is
/// in some run or memtable for ever.
///
/// Called under the store's engine lock (``EngineIndex``), except ``waitForFlush()``,
/// ``startFlush(publish:)`` and the flush itself, which run on the writer's queue and on the index's
/// own flush queue and touch only the frozen memtable, which nothing writes, until they publish
/// under the engine lock.
final class DiskIndex: EngineIndex, @unchecked Sendable {
    static let directoryName = "index"

    let storeID: UUID
    let indexDirectory: String
    let runsDirectory: String
    let io: any FileIO
    let cache: BlockCache
    let settings: IndexConfiguration
    let logger: Logger
    /// Slots per memtable: room for a whole append after `memtableEvents`.
    let capacity: Int
    /// What the two memtables allocate.
    let memtableBytes: Int

    private(set) var active: IndexMemtable
    private(set) var durableHead: UInt64
    private var frozen: IndexMemtable?
    private var spare: IndexMemtable?
    private(set) var runs: [RunReader]
    private var segmentFirstPositions: [UInt64] = []
    /// What the last manifest said besides its runs; held while a manifest is written, so flushes and
    /// merges write one at a time, each with the runs published when it is written.
    private let manifestState = Mutex(Coverage())
    private var nextRunSequence: UInt64
    /// The stream record the last decide or check found, for the apply that follows it.
    private var stash: (name: StreamName, record: IndexMemtable.Stream?)?

    private let flushQueue = DispatchQueue(label: "annals.file-store.index-flush")
    private let flushes = DispatchGroup()
    private let mergeQueue = DispatchQueue(label: "annals.file-store.index-merge")
    private let merges = DispatchGroup()
    private let mergeState = Mutex(MergeState())
    private let flushState = Mutex<FlushState>(FlushState())

    /// A frozen memtable on its way to disk.
    private struct FlushJob: @unchecked Sendable {
        var memtable: IndexMemtable
        var end: LogPoint
        var segments: [UInt64]
        var runSequence: UInt64
    }

    private struct FlushState: @unchecked Sendable {
        var job: FlushJob?
        var failure: EventStoreError?
        var publish: (@Sendable (@escaping @Sendable () -> Void) -> Void)?
    }

    /// The index's metrics (docs/http-api.md): its memory, its runs, and its flushes, merges and stalls.
    private struct IndexMetrics: Sendable {
        let memory: Gauge
        let runs: Gauge
        let flushes: Counter
        let merges: Counter
        let stalls: Counter

        init(factory: any MetricsFactory) {
            let dimensions = [("store", "file")]
            memory = Gauge(label: "annals_index_memory_bytes", dimensions: dimensions, factory: factory)
            runs = Gauge(label: "annals_index_runs", dimensions: dimensions, factory: factory)
            flushes = Counter(label: "annals_index_flushes_total", dimensions: dimensions, factory: factory)
            merges = Counter(label: "annals_index_merges_total", dimensions: dimensions, factory: factory)
            stalls = Counter(label: "annals_index_stalls_total", dimensions: dimensions, factory: factory)
        }
    }
    private let metrics: IndexMetrics

    /// Counters for the bench and `/metrics`.
    package struct Statistics: Sendable {
        package var flushes = 0
        package var merges = 0
        package var stalls = 0
    }
    private let statistics = Mutex(Statistics())

    private init(
        storeID: UUID, directory: String, io: any FileIO, settings: IndexConfiguration, limits: EventStoreLimits,
        logger: Logger, metricsFactory: (any MetricsFactory)?
    ) {
        self.metrics = IndexMetrics(factory: metricsFactory ?? MetricsSystem.factory)
        self.memtableBytes = settings.memtableBytes(limits: limits)
        self.storeID = storeID
        self.indexDirectory = directory + "/" + Self.directoryName
        self.runsDirectory = indexDirectory + "/" + RunFormat.runsDirectoryName
        self.io = io
        self.settings = settings
        self.logger = logger
        self.capacity = settings.memtableEvents + limits.maxEventsPerAppend
        self.cache = BlockCache(
            capacityBytes: max(1 << 20, settings.memoryBudget - settings.memtableBytes(limits: limits)))
        self.active = IndexMemtable(capacity: capacity)
        self.durableHead = 0
        self.runs = []
        self.nextRunSequence = 1
    }

    /// What opening found: the index, and where in the log the scan must resume (nil: from the start).
    struct Opened {
        var index: DiskIndex
        var resume: LogPoint?
    }

    /// Opens the index of a store: from its manifest when that is usable, else empty for a rebuild
    /// (any runs and manifest removed). `segments` are the segment files: first position and size.
    static func open(
        directory: String, storeID: UUID, io: any FileIO, settings: IndexConfiguration, limits: EventStoreLimits,
        logger: Logger, metricsFactory: (any MetricsFactory)? = nil, segments: [(firstPosition: UInt64, size: Int64)]
    ) throws -> Opened {
        let index = DiskIndex(
            storeID: storeID, directory: directory, io: io, settings: settings, limits: limits, logger: logger,
            metricsFactory: metricsFactory)
        try io.makeDirectory(index.indexDirectory)
        try io.makeDirectory(index.runsDirectory)
        do {
            if let manifest = try IndexManifest.read(indexDirectory: index.indexDirectory, storeID: storeID, io: io) {
                if let resume = try index.adopt(manifest, segments: segments) {
                    return Opened(index: index, resume: resume)
                }
            }
        } catch let error as EventStoreError where error.code == .corruptedStorage {
            throw error
        } catch {
            logger.warning("Rebuilding the index from the log", metadata: ["reason": "\(error)"])
        }
        try index.clearFiles()
        return Opened(index: index, resume: nil)
    }

    /// Starts from `manifest` if it matches the segments and its runs open; nil (and nothing kept)
    /// otherwise.
    private func adopt(_ manifest: IndexManifest, segments: [(firstPosition: UInt64, size: Int64)]) throws -> LogPoint?
    {
        let sizes = Dictionary(segments.map { ($0.firstPosition, $0.size) }, uniquingKeysWith: { first, _ in first })
        if let last = manifest.segments.last, sizes[last.firstPosition] == nil,
            !sizes.keys.contains(where: { $0 > last.firstPosition })
        {
            // The log ends before the segment the index covers: acknowledged events are gone.
            throw EventStoreError(
                .corruptedStorage,
                "The index covers the log up to the segment starting at position \(last.firstPosition), which is missing: segments are missing."
            )
        }
        for segment in manifest.segments {
            guard let size = sizes[segment.firstPosition], segment.length <= UInt64(size) else {
                logger.warning("The index manifest names a segment that is missing or shorter; rebuilding")
                return nil
            }
        }
        var opened: [RunReader] = []
        for run in manifest.runs {
            let path = runsDirectory + "/" + RunFormat.fileName(run.sequence)
            guard io.fileExists(path) else { return nil }
            let reader = try RunReader(path: path, storeID: storeID, io: io, cache: cache)
            guard reader.headerCRC == run.headerCRC, reader.fileLength == run.fileLength,
                reader.header.firstPosition == run.firstPosition, reader.header.endPosition == run.endPosition
            else { return nil }
            opened.append(reader)
        }
        let listed = Set(manifest.runs.map { RunFormat.fileName($0.sequence) })
        var removed = false
        for name in try io.contents(ofDirectory: runsDirectory) where !listed.contains(name) {
            try io.remove(runsDirectory + "/" + name)
            removed = true
        }
        if removed { try io.syncDirectory(runsDirectory) }
        runs = opened
        durableHead = manifest.durableHead
        manifestState.withLock {
            $0 = Coverage(
                sequence: manifest.sequence, durableHead: manifest.durableHead,
                end: LogPoint(segmentFirstPosition: manifest.endSegmentFirstPosition, offset: manifest.endOffset),
                streamsNumbered: manifest.streamsNumbered, segments: manifest.segments.map(\.firstPosition))
        }
        nextRunSequence = (manifest.runs.map(\.sequence).max() ?? 0) + 1
        active.reset(firstPosition: manifest.durableHead, firstStreamNumber: manifest.streamsNumbered)
        return LogPoint(segmentFirstPosition: manifest.endSegmentFirstPosition, offset: manifest.endOffset)
    }

    /// Removes every run and the manifest, and starts empty: the log is scanned from its start.
    func clearFiles() throws {
        // Run sequences keep counting up, and the old runs' blocks leave the cache: a new run never
        // finds an old one's blocks under its name.
        for run in runs { cache.removeAll(file: run.sequence) }
        runs = []
        for name in try io.contents(ofDirectory: runsDirectory) { try io.remove(runsDirectory + "/" + name) }
        for name in [IndexManifest.fileName, IndexManifest.fileName + ".tmp"]
        where io.fileExists(indexDirectory + "/" + name) {
            try io.remove(indexDirectory + "/" + name)
        }
        try io.syncDirectory(runsDirectory)
        try io.syncDirectory(indexDirectory)
        durableHead = 0
        manifestState.withLock { $0 = Coverage() }
        active.reset(firstPosition: 0, firstStreamNumber: 0)
    }

    // MARK: Errors

    /// Runs a lookup in the runs, turning what it throws into the store's errors.
    private func reading<T>(_ body: () throws -> T) throws(EventStoreError) -> T {
        do {
            return try body()
        } catch let error as EventStoreError {
            throw error
        } catch let error as IndexBlockError {
            throw EventStoreError(.corruptedStorage, error.description)
        } catch {
            throw EventStoreError(.unavailable, "Reading the index failed: \(error).")
        }
    }

    // MARK: Lookups

    var head: UInt64 { active.endPosition }

    /// The newest record of a stream: the memtables', else the newest run's that has one.
    private func streamRecord(_ name: StreamName) throws(EventStoreError) -> IndexMemtable.Stream? {
        if let number = active.numbers[name] { return active.streams[number] }
        if let frozen, let number = frozen.numbers[name] { return frozen.streams[number] }
        let hash = IndexHash.key(.stream, name.rawValue)
        return try reading {
            for run in runs.reversed() {
                if let record = try run.directoryRecord(hash: hash, name: name.rawValue) { return try record.stream() }
            }
            return nil
        }
    }

    /// The newest record of stream `number`, whose name hash is `hash`.
    private func streamRecord(number: UInt64, hash: () throws -> UInt64?) throws(EventStoreError) -> IndexMemtable
        .Stream?
    {
        if let record = active.streams[number] { return record }
        if let record = frozen?.streams[number] { return record }
        return try reading {
            guard let hash = try hash() else { return nil }
            for run in runs.reversed() {
                if let record = try run.directoryRecord(hash: hash, number: number) { return try record.stream() }
            }
            return nil
        }
    }

    /// The position of an event id, pending ones included.
    private func position(of id: UUID) throws(EventStoreError) -> UInt64? {
        if let slot = active.slot(of: id) { return active.firstPosition + UInt64(slot) }
        if let frozen, let slot = frozen.slot(of: id) { return frozen.firstPosition + UInt64(slot) }
        let key = IndexMemtable.split(id)
        return try reading {
            for run in runs.reversed() {
                if let position = try run.position(of: key) { return position }
            }
            return nil
        }
    }

    /// The positions of a stream's revisions in `revisions`, ascending; only durable ones unless
    /// `pending`.
    private func positions(
        ofStream number: UInt64, _ revisions: Range<UInt64>, pending: Bool = false
    ) throws(EventStoreError) -> [UInt64] {
        guard !revisions.isEmpty else { return [] }
        var result: [UInt64] = []
        try reading {
            for run in runs {
                guard let group = try run.streamGroup(number) else { continue }
                let low = max(group.first, revisions.lowerBound)
                let high = min(group.first + group.count, revisions.upperBound)
                guard low < high else { continue }
                for revision in low..<high {
                    result.append(try run.position(.streamPositions, entry: group.firstEntry + revision - group.first))
                }
            }
        }
        for memtable in [frozen, active].compactMap({ $0 }) {
            let visible = memtable === active && !pending ? visibleSlots(active) : memtable.count
            for slot in memtable.slots(
                ofStream: number, from: revisions.lowerBound, visible: visible, limit: revisions.count)
            where memtable.revision(ofSlot: slot) < revisions.upperBound {
                result.append(memtable.firstPosition + UInt64(slot))
            }
        }
        return result
    }

    /// Slots of `memtable` below the durable head.
    private func visibleSlots(_ memtable: IndexMemtable) -> Int {
        durableHead <= memtable.firstPosition ? 0 : min(memtable.count, Int(durableHead - memtable.firstPosition))
    }

    /// How many of a stream's revisions are durable: only the active memtable holds pending ones.
    private func durableCount(_ record: IndexMemtable.Stream) -> UInt64 {
        var count = record.state.eventCount
        guard active.streams[record.number] != nil else { return count }
        var slot = Int(active.streams[record.number]?.lastSlot ?? IndexMemtable.noSlot)
        while slot >= 0, active.firstPosition + UInt64(slot) >= durableHead {
            count -= 1
            slot = Int(active.previousSlot(of: slot))
        }
        return count
    }

    func location(of position: UInt64) throws(EventStoreError) -> UInt64 {
        if position >= active.firstPosition { return active.location(ofSlot: Int(position - active.firstPosition)) }
        if let frozen, position >= frozen.firstPosition {
            return frozen.location(ofSlot: Int(position - frozen.firstPosition))
        }
        guard let run = run(holding: position) else {
            throw EventStoreError(.corruptedStorage, "No index run covers position \(position).")
        }
        let found = try reading { try run.location(of: position) }
        guard let segment = segmentIndex(firstPosition: found.segmentFirstPosition) else {
            throw EventStoreError(
                .corruptedStorage, "The index places position \(position) in a segment that is not open.")
        }
        return Location.pack(segment: segment, offset: Int64(found.offset))
    }

    private func run(holding position: UInt64) -> RunReader? {
        var low = 0
        var high = runs.count
        while low < high {
            let mid = (low + high) / 2
            if runs[mid].header.endPosition <= position { low = mid + 1 } else { high = mid }
        }
        return low < runs.count && runs[low].header.firstPosition <= position ? runs[low] : nil
    }

    private func segmentIndex(firstPosition: UInt64) -> Int? {
        var low = 0
        var high = segmentFirstPositions.count
        while low < high {
            let mid = (low + high) / 2
            if segmentFirstPositions[mid] < firstPosition { low = mid + 1 } else { high = mid }
        }
        return low < segmentFirstPositions.count && segmentFirstPositions[low] == firstPosition ? low : nil
    }

    func segmentsChanged(_ firstPositions: [UInt64]) { segmentFirstPositions = firstPositions }

    // MARK: Writing

    func publishDurable() { durableHead = active.endPosition }

    var freeSlots: Int { active.count >= settings.memtableEvents ? 0 : active.remaining }

    func decide(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision,
        storedEvent: (UInt64) throws(EventStoreError) -> StoredEvent
    ) throws(EventStoreError) -> StreamTable.AppendDecision {
        let record = try streamRecord(stream)
        stash = (stream, record)
        guard let first = events.first, let firstPosition = try position(of: first.id) else {
            for event in events where try position(of: event.id) != nil {
                throw StreamRules.duplicate(event.id, stream)
            }
            let firstRevision = try StreamRules.checkAppend(to: stream, state: record?.state, expecting: expected)
            return .write(firstRevision: firstRevision, firstPosition: head)
        }
        // A retry (law 6): the same events, at consecutive revisions of this stream from the first one's.
        guard let record else { throw StreamRules.duplicate(first.id, stream) }
        let stored = try storedEvent(firstPosition)
        guard stored.stream == stream, stored.event.id == first.id, stored.event.hasSameContent(as: first) else {
            throw StreamRules.duplicate(first.id, stream)
        }
        let revisions = stored.revision..<(stored.revision + UInt64(events.count))
        let positions = try positions(ofStream: record.number, revisions, pending: true)
        guard positions.count == events.count else {
            throw StreamRules.duplicate(events[min(positions.count, events.count - 1)].id, stream)
        }
        for (event, position) in zip(events, positions).dropFirst() {
            let other = try storedEvent(position)
            guard other.event.id == event.id, other.event.hasSameContent(as: event) else {
                throw StreamRules.duplicate(event.id, stream)
            }
        }
        return .idempotent(
            AppendResult(
                firstRevision: StreamRevision(revisions.lowerBound),
                nextExpectedRevision: StreamRevision(revisions.upperBound - 1),
                firstPosition: Position(positions[0]),
                lastPosition: Position(positions[positions.count - 1])
            ))
    }

    /// The number of `stream` in the active memtable, carrying its record there (or creating it).
    private func carry(_ stream: StreamName) throws(EventStoreError) -> UInt64 {
        if let number = active.numbers[stream] { return number }
        let record: IndexMemtable.Stream?
        if let stash, stash.name == stream {
            record = stash.record
        } else {
            record = try streamRecord(stream)
        }
        stash = nil
        if let record {
            active.adopt(record)
            return record.number
        }
        return active.createStream(stream, nameHash: IndexHash.key(.stream, stream.rawValue))
    }

    func apply(
        _ events: [EventData], to stream: StreamName, location: UInt64, end: LogPoint
    ) throws(EventStoreError) -> AppendResult {
        let number = try carry(stream)
        let firstRevision = active.streams[number]?.state.eventCount ?? 0
        let firstPosition = active.endPosition
        let categoryHash = IndexHash.key(.category, stream.category)
        var typeName = ""
        var typeHash: UInt64 = 0
        for event in events {
            if event.type != typeName || typeHash == 0 {
                typeName = event.type
                typeHash = IndexHash.key(.eventType, typeName)
            }
            active.append(
                id: event.id, stream: number, location: location, categoryHash: categoryHash, typeHash: typeHash)
        }
        return AppendResult(
            firstRevision: StreamRevision(firstRevision),
            nextExpectedRevision: StreamRevision(firstRevision + UInt64(events.count - 1)),
            firstPosition: Position(firstPosition),
            lastPosition: Position(firstPosition + UInt64(events.count - 1))
        )
    }

    func checkControl(
        _ kind: RecordFormat.Kind, stream: StreamName, expected: ExpectedRevision, metadata: StreamMetadata?
    ) throws(EventStoreError) {
        let record = try streamRecord(stream)
        stash = (stream, record)
        switch kind {
        case .metadata: try StreamRules.checkMetadata(metadata ?? StreamMetadata(), for: stream, state: record?.state)
        default: try StreamRules.checkDelete(stream, state: record?.state, expecting: expected)
        }
    }

    func applyControl(_ kind: RecordFormat.Kind, stream: StreamName, metadata: StreamMetadata?, end: LogPoint) {
        // The check just before found the record (the stash), so carrying it reads nothing.
        guard let number = try? carry(stream), var state = active.streams[number]?.state else {
            logger.critical("The index could not record a control record", metadata: ["stream": "\(stream)"])
            return
        }
        switch kind {
        case .metadata: state.metadata = metadata ?? StreamMetadata()
        case .softDelete: state = StreamRules.deleting(state, tombstone: false)
        case .tombstone: state = StreamRules.deleting(state, tombstone: true)
        case .events: break
        }
        active.setState(state, ofStream: number)
    }

    func contains(_ id: UUID) throws(EventStoreError) -> Bool { try position(of: id) != nil }

    func eventCount(of stream: StreamName) throws(EventStoreError) -> UInt64 {
        try streamRecord(stream)?.state.eventCount ?? 0
    }

    // MARK: Reading

    func streamChunk(
        _ stream: StreamName, from revision: StreamRevision?, direction: ReadDirection, limit: Int
    ) throws(EventStoreError) -> (
        entries: [(revision: UInt64, position: UInt64, location: UInt64)], metadata: StreamMetadata
    ) {
        guard let record = try streamRecord(stream) else { return ([], StreamMetadata()) }
        if record.state.isTombstoned { throw .streamDeleted(stream) }
        let metadata = record.state.metadata
        guard let range = StreamRules.visibleRange(record.state, durableCount: durableCount(record)) else {
            return ([], metadata)
        }
        let revisions: Range<UInt64>
        switch direction {
        case .forwards:
            let start = max(revision?.value ?? 0, range.lowerBound)
            guard start < range.upperBound else { return ([], metadata) }
            revisions = start..<min(range.upperBound, start + UInt64(limit))
        case .backwards:
            let end = min(revision?.value ?? (range.upperBound - 1), range.upperBound - 1)
            guard end >= range.lowerBound else { return ([], metadata) }
            let low = end + 1 - min(UInt64(limit), end + 1 - range.lowerBound)
            revisions = low..<(end + 1)
        }
        let positions = try positions(ofStream: record.number, revisions)
        guard positions.count == revisions.count else {
            throw EventStoreError(
                .corruptedStorage,
                "The index holds \(positions.count) of revisions \(revisions) of \(stream); run `annals verify`.")
        }
        var entries: [(revision: UInt64, position: UInt64, location: UInt64)] = []
        entries.reserveCapacity(positions.count)
        for (offset, position) in positions.enumerated() {
            entries.append((revisions.lowerBound + UInt64(offset), position, try location(of: position)))
        }
        if direction == .backwards { entries.reverse() }
        return (entries, metadata)
    }

    func allChunk(
        from position: Position?, direction: ReadDirection, filter: EventFilter, limit: Int
    ) throws(EventStoreError) -> [(position: UInt64, location: UInt64)] {
        guard durableHead > 0, limit > 0 else { return [] }
        var hashes: [UInt64]? = nil
        var section = RunFormat.Section.categorySummaries
        if let category = filter.category {
            hashes = [IndexHash.key(.category, category)]
        } else if let types = filter.eventTypes {
            hashes = types.map { IndexHash.key(.eventType, $0) }
            section = .typeSummaries
        }
        var positions: [UInt64] = []
        switch direction {
        case .forwards:
            let start = position?.value ?? 0
            guard start < durableHead else { return [] }
            if let hashes {
                positions = try candidates(hashes, section, from: start, limit: limit)
            } else {
                positions = Array(start..<min(durableHead, start + UInt64(limit)))
            }
        case .backwards:
            let end = min(position?.value ?? (durableHead - 1), durableHead - 1)
            if let hashes {
                positions = try candidates(hashes, section, through: end, limit: limit)
            } else {
                positions = Array(((end + 1 - min(UInt64(limit), end + 1))...end).reversed())
            }
        }
        var chunk: [(position: UInt64, location: UInt64)] = []
        chunk.reserveCapacity(positions.count)
        for position in positions { chunk.append((position, try location(of: position))) }
        return chunk
    }

    /// Up to `limit` durable positions from `start` upward whose category (or type) hash is one of
    /// `hashes`, ascending. Sources cover consecutive ranges, so they are visited in position order.
    private func candidates(
        _ hashes: [UInt64], _ section: RunFormat.Section, from start: UInt64, limit: Int
    ) throws(EventStoreError) -> [UInt64] {
        var result: [UInt64] = []
        let positionsSection: RunFormat.Section =
            section == .categorySummaries ? .categoryPositions : .typePositions
        for run in runs where run.header.endPosition > start {
            var found: [UInt64] = []
            try reading {
                for hash in hashes {
                    guard let group = try run.hashGroup(section, hash: hash) else { continue }
                    // Each hash's group may hold the smallest positions: take up to the room left from each.
                    var entry = try lowerBound(run, positionsSection, group, start)
                    var taken = 0
                    while entry < group.firstEntry + group.count, taken < limit - result.count {
                        found.append(try run.position(positionsSection, entry: entry))
                        entry += 1
                        taken += 1
                    }
                }
            }
            result += found.sorted().prefix(limit - result.count)
            if result.count >= limit { return result }
        }
        for memtable in [frozen, active].compactMap({ $0 }) {
            let visible = memtable === active ? visibleSlots(active) : memtable.count
            guard visible > 0, memtable.firstPosition + UInt64(visible) > start else { continue }
            let first = start > memtable.firstPosition ? Int(start - memtable.firstPosition) : 0
            for slot in first..<visible where hashes.contains(hash(of: memtable, slot, section)) {
                result.append(memtable.firstPosition + UInt64(slot))
                if result.count >= limit { return result }
            }
        }
        return result
    }

    /// The same, from `end` downward, descending.
    private func candidates(
        _ hashes: [UInt64], _ section: RunFormat.Section, through end: UInt64, limit: Int
    ) throws(EventStoreError) -> [UInt64] {
        var result: [UInt64] = []
        let positionsSection: RunFormat.Section =
            section == .categorySummaries ? .categoryPositions : .typePositions
        for memtable in [active, frozen].compactMap({ $0 }) {
            let visible = memtable === active ? visibleSlots(active) : memtable.count
            guard visible > 0, memtable.firstPosition <= end else { continue }
            let last = min(visible - 1, Int(end - memtable.firstPosition))
            for slot in stride(from: last, through: 0, by: -1) where hashes.contains(hash(of: memtable, slot, section))
            {
                result.append(memtable.firstPosition + UInt64(slot))
                if result.count >= limit { return result }
            }
        }
        for run in runs.reversed() where run.header.firstPosition <= end {
            var found: [UInt64] = []
            try reading {
                for hash in hashes {
                    guard let group = try run.hashGroup(section, hash: hash) else { continue }
                    var entry = try lowerBound(run, positionsSection, group, end + 1)
                    var taken = 0
                    while entry > group.firstEntry, taken < limit - result.count {
                        entry -= 1
                        found.append(try run.position(positionsSection, entry: entry))
                        taken += 1
                    }
                }
            }
            result += found.sorted(by: >).prefix(limit - result.count)
            if result.count >= limit { return result }
        }
        return result
    }

    private func hash(of memtable: IndexMemtable, _ slot: Int, _ section: RunFormat.Section) -> UInt64 {
        section == .categorySummaries ? memtable.categoryHash(ofSlot: slot) : memtable.typeHash(ofSlot: slot)
    }

    /// The first entry of `group` whose position is at least `target`.
    private func lowerBound(
        _ run: RunReader, _ section: RunFormat.Section, _ group: RunReader.Group, _ target: UInt64
    ) throws -> UInt64 {
        var low = group.firstEntry
        var high = group.firstEntry + group.count
        while low < high {
            let mid = low + (high - low) / 2
            if try run.position(section, entry: mid) < target { low = mid + 1 } else { high = mid }
        }
        return low
    }

    func info(_ stream: StreamName, now: Date, recordedAt: (UInt64, UInt64) throws -> Date) throws -> StreamInfo? {
        guard let record = try streamRecord(stream) else { return nil }
        return try info(of: record, now: now, recordedAt: recordedAt)
    }

    private func info(
        of record: IndexMemtable.Stream, now: Date, recordedAt: (UInt64, UInt64) throws -> Date
    ) throws -> StreamInfo? {
        guard StreamRules.isDurable(record.state, firstPosition: record.firstPosition, durableHead: durableHead) else {
            return nil
        }
        let durable = durableCount(record)
        var positions: [UInt64] = []
        var first: UInt64 = 0
        if record.state.metadata.maxAge != nil, !record.state.isTombstoned,
            let range = StreamRules.visibleRange(record.state, durableCount: durable)
        {
            positions = try self.positions(ofStream: record.number, range)
            first = range.lowerBound
        }
        return try StreamRules.info(record.name, state: record.state, durableCount: durable, now: now) { revision in
            let position = positions[Int(revision - first)]
            return try recordedAt(position, try location(of: position))
        }
    }

    func listedStreamCount() throws(EventStoreError) -> Int {
        var count = Int(active.firstStreamNumber) + active.createdStreams.count
        for offset in active.createdStreams.indices.reversed() {
            guard let record = active.streams[active.firstStreamNumber + UInt64(offset)] else { continue }
            if let first = record.firstPosition, first < durableHead { break }
            if !StreamRules.isDurable(record.state, firstPosition: record.firstPosition, durableHead: durableHead) {
                count -= 1
            }
        }
        return count
    }

    func listStreams(
        after: StreamName?, limit: Int, now: Date, recordedAt: (UInt64, UInt64) throws -> Date
    ) throws -> [StreamInfo] {
        var number: UInt64 = 0
        if let after {
            guard let record = try streamRecord(after) else { return [] }
            number = record.number + 1
        }
        let end = active.firstStreamNumber + UInt64(active.createdStreams.count)
        var result: [StreamInfo] = []
        while number < end, result.count < limit {
            let current = number
            let record = try streamRecord(number: current) {
                try self.runs.first { $0.header.firstStreamNumber <= current && current < $0.header.endStreamNumber }?
                    .createdHash(current)
            }
            if let record, let info = try info(of: record, now: now, recordedAt: recordedAt) { result.append(info) }
            number += 1
        }
        return result
    }

    // MARK: Flushing

    func waitForFlush() throws(EventStoreError) {
        if flushState.withLock({ $0.job != nil }) {
            statistics.withLock { $0.stalls += 1 }
            metrics.stalls.increment()
        }
        flushes.wait()
        let (job, failure, publish) = flushState.withLock { ($0.job, $0.failure, $0.publish) }
        guard let job, let failure else { return }
        // The background write failed: try once more here before refusing appends.
        do {
            try finish(job, publish: publish ?? { $0() })
        } catch {
            logger.error("The index cannot be written", metadata: ["error": "\(error)"])
            throw EventStoreError(.unavailable, "The index cannot be written: \(failure.message)")
        }
    }

    func freeze(end: LogPoint) {
        precondition(frozen == nil, "a memtable is frozen already")
        let memtable = active
        frozen = memtable
        let next = spare ?? IndexMemtable(capacity: capacity)
        spare = nil
        next.reset(
            firstPosition: memtable.endPosition,
            firstStreamNumber: memtable.firstStreamNumber + UInt64(memtable.createdStreams.count))
        active = next
        let job = FlushJob(memtable: memtable, end: end, segments: segmentFirstPositions, runSequence: nextRunSequence)
        nextRunSequence += 1
        flushState.withLock { $0 = FlushState(job: job, failure: nil, publish: nil) }
    }

    func startFlush(publish: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {
        guard
            let job = flushState.withLock({ state -> FlushJob? in
                state.publish = publish
                return state.job
            })
        else { return }
        flushes.enter()
        flushQueue.async {
            do {
                try self.finish(job, publish: publish)
                self.scheduleMerges(publish: publish)
            } catch {
                self.logger.warning("Writing an index run failed; will retry", metadata: ["error": "\(error)"])
                self.flushState.withLock {
                    $0.failure = EventStoreError(.unavailable, "\(error)")
                }
            }
            self.flushes.leave()
        }
    }

    /// Writes a frozen memtable as a run, swaps it in, and names it in a new manifest.
    private func finish(_ job: FlushJob, publish: (@escaping @Sendable () -> Void) -> Void) throws {
        let input = RunInput(
            memtable: job.memtable, count: job.memtable.count, storeID: storeID, sequence: job.runSequence,
            segmentFirstPosition: { job.segments[$0] },
            spanStart: (0, 0), spanEnd: (job.end.segmentFirstPosition, job.end.offset))
        let reader = try writeRun(input, sequence: job.runSequence)
        try manifestState.withLock { coverage in
            let runs = underLock(publish) { () -> [RunReader] in
                self.runs.append(reader)
                self.spare = self.frozen
                self.frozen = nil
                return self.runs
            }
            coverage.durableHead = job.memtable.endPosition
            coverage.end = job.end
            coverage.streamsNumbered = job.memtable.firstStreamNumber + UInt64(job.memtable.createdStreams.count)
            coverage.segments = job.segments.filter { $0 <= job.end.segmentFirstPosition }
            try writeManifest(&coverage, runs: runs)
        }
        flushState.withLock { $0 = FlushState() }
        statistics.withLock { $0.flushes += 1 }
        metrics.flushes.increment()
        afterBackgroundWork(runs: underLock(publish) { self.runs.count })
    }

    /// What a manifest covers besides its runs.
    private struct Coverage: Sendable {
        var sequence: UInt64 = 0
        var durableHead: UInt64 = 0
        var end = LogPoint(segmentFirstPosition: 0, offset: 0)
        var streamsNumbered: UInt64 = 0
        var segments: [UInt64] = []
    }

    private func writeManifest(_ coverage: inout Coverage, runs: [RunReader]) throws {
        coverage.sequence += 1
        let manifest = IndexManifest(
            storeID: storeID, sequence: coverage.sequence, durableHead: coverage.durableHead,
            endSegmentFirstPosition: coverage.end.segmentFirstPosition, endOffset: coverage.end.offset,
            streamsNumbered: coverage.streamsNumbered,
            segments: coverage.segments.filter { $0 < coverage.end.segmentFirstPosition }.map {
                IndexManifest.Segment(firstPosition: $0, generation: 0, length: 0)
            } + [
                IndexManifest.Segment(
                    firstPosition: coverage.end.segmentFirstPosition, generation: 0, length: coverage.end.offset)
            ],
            runs: runs.map {
                IndexManifest.Run(
                    sequence: $0.sequence, level: $0.header.level, firstPosition: $0.header.firstPosition,
                    endPosition: $0.header.endPosition, fileLength: $0.fileLength, headerCRC: $0.headerCRC)
            })
        try manifest.write(indexDirectory: indexDirectory, io: io)
    }

    /// Runs `body` under the engine lock (through `publish`) and returns what it returns.
    private func underLock<T>(_ publish: (@escaping @Sendable () -> Void) -> Void, _ body: @escaping () -> T) -> T {
        let box = UnsafeBox<T>()
        let send = UnsafeBox<() -> T>()
        send.value = body
        publish { box.value = send.value?() }
        return box.value!
    }

    private func writeRun(_ input: some RunSource, sequence: UInt64) throws -> RunReader {
        let name = RunFormat.fileName(sequence)
        let temporary = runsDirectory + "/" + name + ".tmp"
        _ = try RunWriter.write(input, to: temporary, io: io)
        try io.rename(temporary, to: runsDirectory + "/" + name)
        try io.syncDirectory(runsDirectory)
        return try RunReader(path: runsDirectory + "/" + name, storeID: storeID, io: io, cache: cache)
    }

    // MARK: Merging

    /// Merges runs in the background after a flush, until no two adjacent runs share a level.
    private func scheduleMerges(publish: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {
        let start = mergeState.withLock { state -> Bool in
            if state.isRunning || state.isStopped { return false }
            state.isRunning = true
            return true
        }
        guard start else { return }
        merges.enter()
        mergeQueue.async {
            do {
                while !self.mergeState.withLock({ $0.isStopped }), try self.mergeOnce(publish: publish) {}
            } catch {
                self.logger.warning("Merging index runs failed; will retry", metadata: ["error": "\(error)"])
            }
            self.mergeState.withLock { $0.isRunning = false }
            self.merges.leave()
        }
    }

    private struct MergeState: Sendable {
        var isRunning = false
        /// Set when the store closes: no merge starts after it.
        var isStopped = false
    }

    /// Merges the two adjacent runs of the lowest level that two share; false when there are none.
    func mergeOnce(publish: (@escaping @Sendable () -> Void) -> Void) throws -> Bool {
        let chosen = underLock(publish) { () -> (RunReader, RunReader, UInt64)? in
            var best: Int? = nil
            for index in self.runs.indices.dropLast()
            where self.runs[index].header.level == self.runs[index + 1].header.level {
                if best == nil || self.runs[index].header.level < self.runs[best!].header.level { best = index }
            }
            guard let best else { return nil }
            let sequence = self.nextRunSequence
            self.nextRunSequence += 1
            return (self.runs[best], self.runs[best + 1], sequence)
        }
        guard let (older, newer, sequence) = chosen else { return false }
        let merged = try writeRun(try RunMerge(older: older, newer: newer, sequence: sequence), sequence: sequence)
        try manifestState.withLock { coverage in
            let runs = underLock(publish) { () -> [RunReader] in
                if let index = self.runs.firstIndex(where: { $0 === older }), index + 1 < self.runs.count,
                    self.runs[index + 1] === newer
                {
                    self.runs.replaceSubrange(index...(index + 1), with: [merged])
                }
                return self.runs
            }
            try writeManifest(&coverage, runs: runs)
        }
        // The manifest no longer names the inputs: their files go. Open descriptors stay valid for any
        // reader still holding them.
        for run in [older, newer] {
            try? io.remove(run.path)
            cache.removeAll(file: run.sequence)
        }
        try? io.syncDirectory(runsDirectory)
        statistics.withLock { $0.merges += 1 }
        metrics.merges.increment()
        afterBackgroundWork(runs: underLock(publish) { self.runs.count })
        return true
    }

    func flushAtClose(end: LogPoint, publish: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {
        do {
            try waitForFlush()
            let isEmpty = publishedIsEmpty(publish)
            if isEmpty { return }
            publish { self.freeze(end: end) }
            guard let job = flushState.withLock({ $0.job }) else { return }
            try finish(job, publish: publish)
        } catch {
            // A cache: the next open scans the log after the last manifest.
            logger.warning("Could not write the index at close", metadata: ["error": "\(error)"])
        }
    }

    private func publishedIsEmpty(_ publish: (@escaping @Sendable () -> Void) -> Void) -> Bool {
        let result = Mutex(true)
        publish { result.withLock { $0 = self.active.count == 0 && self.active.streams.isEmpty } }
        return result.withLock { $0 }
    }

    func finishBackgroundWork() async {
        mergeState.withLock { $0.isStopped = true }
        // Without blocking a thread of the cooperative pool: a merge can take seconds.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            flushes.notify(queue: .global()) {
                self.merges.notify(queue: .global()) { continuation.resume() }
            }
        }
    }

    func waitForBackgroundWork() {
        flushes.wait()
        merges.wait()
    }

    /// Writes the active memtable now, during recovery (no readers, no lock), and merges what it can:
    /// the scan goes on after.
    func flushDuringRecovery(end: LogPoint) throws {
        freeze(end: end)
        guard let job = flushState.withLock({ $0.job }) else { return }
        try finish(job) { $0() }
        while try mergeOnce(publish: { $0() }) {}
    }

    /// Flushes and stalls so far.
    package var counters: Statistics { statistics.withLock { $0 } }

    /// What the index holds in memory by its own accounting: the memtables and the cached blocks.
    package var memoryBytes: Int { memtableBytes + cache.residentBytes }

    /// Reports the index's size, and hands the memory a flush or merge used back to the system: their
    /// buffers are freed, but glibc keeps freed memory in each thread's arena, so the process would
    /// grow to the sum of every queue's largest flush or merge.
    private func afterBackgroundWork(runs: Int) {
        metrics.runs.record(runs)
        metrics.memory.record(memoryBytes)
        _ = annals_release_free_memory()
    }
}

/// A slot a closure run under a lock fills in, for the caller to read once the lock is released.
private final class UnsafeBox<Value>: @unchecked Sendable {
    var value: Value?
}
