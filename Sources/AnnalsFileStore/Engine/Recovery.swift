import Annals
import Foundation

/// What opening a store directory found.
struct Recovered {
    var storeID: UUID
    var state: EngineState
    var active: ActiveSegment
    var statistics: RecoveryStatistics
}

/// What opening did: how much of the log it scanned.
package struct RecoveryStatistics: Sendable {
    /// Whether the persisted index was used (and only the log after it scanned).
    package var usedCheckpoint = false
    /// Records read and checked during the scan.
    package var scannedRecords = 0
    /// Bytes of log scanned.
    package var scannedBytes: Int64 = 0
}

/// Opens a store directory: checks its identity, scans every segment, rebuilds the stream table, and
/// repairs only what a crash can leave behind.
///
/// The rules:
/// - A torn record, zeros or junk at the very end of the last segment is an append that was never
///   acknowledged: it is cut away (the bytes are zeroed) — but only when no valid record follows it.
/// - Any other damage (a bad checksum in a sealed segment, or before a valid record) is refused with the
///   segment and offset: cutting it away could lose acknowledged events.
/// - A segment of another store, a missing segment, or an unknown format version is refused.
/// - A last segment whose header was never completed (a crash while creating it) holds nothing
///   acknowledged and is removed.
struct Recovery {
    static let segmentsDirectoryName = "segments"

    let directory: String
    let io: any FileIO
    let configuration: FileEventStore.Configuration

    var segmentsDirectory: String { directory + "/" + Self.segmentsDirectoryName }

    func run() throws -> Recovered {
        var opened: [Int32] = []
        do {
            return try recover(opened: &opened)
        } catch {
            for fd in opened { io.close(fd) }
            if let error = error as? EventStoreError { throw error }
            throw EventStoreError(.unavailable, "Cannot open the store at \(directory): \(error).")
        }
    }

    private func recover(opened: inout [Int32]) throws -> Recovered {
        let identity = try loadOrCreateIdentity()
        var files = try segmentFiles()
        // A matching index checkpoint lets the scan start where it ends.
        var state = EngineState()
        var resume: (segment: Int, offset: Int64)? = nil
        var diskIndex: DiskIndex? = nil
        if !configuration.keepsIndexInMemory {
            let settings = configuration.index
            // The on-disk index: its manifest says where the scan resumes.
            var sizes: [(firstPosition: UInt64, size: Int64)] = []
            for entry in files {
                let fd = try io.open(segmentsDirectory + "/" + entry.name, create: false)
                defer { io.close(fd) }
                sizes.append((entry.firstPosition, try io.size(fd)))
            }
            let opened = try DiskIndex.open(
                directory: directory, storeID: identity.storeID, io: io, settings: settings,
                limits: configuration.limits, logger: configuration.logger,
                metricsFactory: configuration.metricsFactory, segments: sizes)
            diskIndex = opened.index
            state = EngineState(index: opened.index)
            if let point = opened.resume {
                if let segment = files.firstIndex(where: { $0.firstPosition == point.segmentFirstPosition }),
                    point.offset <= UInt64(Int64.max)
                {
                    resume = (segment, Int64(point.offset))
                } else {
                    // The index covers a segment that is gone: acknowledged events are missing.
                    throw corrupted(
                        "The index covers the log up to the segment starting at position \(point.segmentFirstPosition), which is missing: segments are missing."
                    )
                }
            }
        } else if let (checkpoint, restored) = IndexCheckpoint.load(
            directory: directory, storeID: identity.storeID, io: io)
        {
            if checkpoint.segmentIndex >= files.count {
                throw corrupted(
                    "The index names segment #\(checkpoint.segmentIndex), but only \(files.count) segments exist: segments are missing."
                )
            }
            state = restored
            resume = (checkpoint.segmentIndex, checkpoint.endOffset)
        }
        var restart = false
        var statistics = RecoveryStatistics()
        repeat {
            if restart {
                // The checkpoint did not match the log: scan it all.
                for fd in opened { io.close(fd) }
                opened = []
                if let diskIndex {
                    try diskIndex.clearFiles()
                    state = EngineState(index: diskIndex)
                } else {
                    state = EngineState()
                }
                resume = nil
                restart = false
                statistics = RecoveryStatistics()
            }
            var scanned: [(file: SegmentFile, end: Int64)] = []
            for (index, entry) in files.enumerated() {
                let isLast = index == files.count - 1
                let path = segmentsDirectory + "/" + entry.name
                let fd = try io.open(path, create: false)
                opened.append(fd)
                let size = try io.size(fd)
                switch SegmentHeader.decode(try io.read(fd, count: SegmentHeader.size, at: 0)) {
                case .success(let header):
                    guard header.storeID == identity.storeID else {
                        throw corrupted("Segment \(path) belongs to another store (\(header.storeID)).")
                    }
                    guard header.firstPosition == entry.firstPosition else {
                        throw corrupted("Segment \(path) says it starts at position \(header.firstPosition).")
                    }
                case .failure(.unknownVersion(let version)):
                    throw corrupted(
                        "Segment \(path) has format version \(version); this Annals reads version \(RecordFormat.formatVersion)."
                    )
                case .failure:
                    var scanner = SegmentScanner(io: io, fd: fd, fileSize: size, storeID: identity.storeID)
                    if isLast, index > 0 || entry.firstPosition == 0, try scanner.hasValidFrame(after: 0) == nil {
                        // Created but never completed: nothing in it was ever acknowledged.
                        configuration.logger.warning(
                            "Removing a segment whose creation was interrupted",
                            metadata: ["path": "\(path)"]
                        )
                        io.close(fd)
                        opened.removeLast()
                        try io.remove(path)
                        try io.syncDirectory(segmentsDirectory)
                        files.removeLast()
                        if let resume, resume.segment >= files.count { restart = true }
                        continue
                    }
                    throw corrupted("Segment \(path) has a damaged header.")
                }
                let segmentIndex = scanned.count
                let file = SegmentFile(firstPosition: entry.firstPosition, path: path, fd: fd)
                if let resume, index < resume.segment {
                    // Covered by the checkpoint: trusted, not scanned (reads still check every record).
                    state.segments.append(file)
                    scanned.append((file, size))
                    continue
                }
                let start: Int64
                if let resume, index == resume.segment {
                    guard resume.offset >= Int64(SegmentHeader.size), resume.offset <= size,
                        state.index.head >= entry.firstPosition
                    else {
                        restart = true
                        break
                    }
                    start = resume.offset
                } else {
                    guard entry.firstPosition == state.index.head else {
                        throw corrupted(
                            entry.firstPosition > state.index.head
                                ? "Events \(state.index.head)..<\(entry.firstPosition) are missing: a segment before \(path) is gone."
                                : "Segment \(path) starts at \(entry.firstPosition), but the log before it ends at \(state.index.head)."
                        )
                    }
                    start = Int64(SegmentHeader.size)
                }
                state.index.segmentsChanged(state.segments.map(\.firstPosition) + [entry.firstPosition])
                var scanner = SegmentScanner(io: io, fd: fd, fileSize: size, storeID: identity.storeID)
                let outcome = try scanner.scan(from: start) {
                    offset,
                    header,
                    kind,
                    frame throws(RecordFormat.FrameProblem) in
                    try Self.apply(
                        frame, header: header, kind: kind, offset: offset, segment: segmentIndex,
                        segmentFirstPosition: entry.firstPosition, to: &state)
                    statistics.scannedRecords += 1
                    statistics.scannedBytes += Int64(header.length)
                }
                if resume != nil, index == resume?.segment, case .problem(let offset, _) = outcome, offset == start {
                    // The log does not continue where the checkpoint says it ends: it is stale.
                    restart = true
                    break
                }
                if case .problem(_, .indexUnreadable(let reason)) = outcome {
                    // Not damage in the log: the index could not be written or read while it was rebuilt.
                    throw EventStoreError(.unavailable, "The index cannot be written or read: \(reason).")
                }
                let end = try settleTail(outcome, scanner: &scanner, fd: fd, path: path, size: size, isLast: isLast)
                state.segments.append(file)
                scanned.append((file, end))
            }
            if restart { continue }
            state.index.publishDurable()
            state.index.segmentsChanged(state.segments.map(\.firstPosition))
            let active: ActiveSegment
            if let last = scanned.last {
                active = ActiveSegment(
                    index: scanned.count - 1,
                    fd: last.file.fd,
                    firstPosition: last.file.firstPosition,
                    writeOffset: last.end
                )
            } else {
                let segment = try Self.createSegment(
                    directory: segmentsDirectory,
                    firstPosition: state.index.head,
                    storeID: identity.storeID,
                    size: Int64(configuration.segmentSize),
                    io: io
                )
                opened.append(segment.fd)
                state.segments.append(segment)
                state.index.segmentsChanged(state.segments.map(\.firstPosition))
                active = ActiveSegment(
                    index: 0,
                    fd: segment.fd,
                    firstPosition: segment.firstPosition,
                    writeOffset: Int64(SegmentHeader.size)
                )
            }
            statistics.usedCheckpoint = resume != nil
            return Recovered(storeID: identity.storeID, state: state, active: active, statistics: statistics)
        } while true
    }

    /// Settles the end of a scanned segment by ``TailRule``: returns where the log ends, after cutting
    /// a torn write away, or throws for damage.
    private func settleTail(
        _ outcome: SegmentScanner.Outcome,
        scanner: inout SegmentScanner,
        fd: Int32,
        path: String,
        size: Int64,
        isLast: Bool
    ) throws -> Int64 {
        switch try TailRule.settle(outcome, scanner: &scanner, size: size, isLast: isLast) {
        case .end(let offset):
            return offset
        case .damage(let offset, let message):
            throw corrupted("Segment \(path) is damaged at offset \(offset) (\(message)).")
        case .tornWrite(let offset, let problem):
            configuration.logger.warning(
                "Cutting away a torn write at the end of the log",
                metadata: ["path": "\(path)", "offset": "\(offset)", "problem": "\(problem)"]
            )
            try io.truncate(fd, to: offset)
            try io.preallocate(fd, size: max(Int64(configuration.segmentSize), offset))
            try io.sync(fd)
            return offset
        }
    }

    /// Applies one valid record to the table; throws when it does not fit where it stands.
    static func apply(
        _ frame: UnsafeRawBufferPointer,
        header: RecordFormat.FrameHeader,
        kind: RecordFormat.Kind,
        offset: Int64,
        segment: Int,
        segmentFirstPosition: UInt64,
        to state: inout EngineState
    ) throws(RecordFormat.FrameProblem) {
        guard header.position == state.index.head else {
            throw .wrongPosition(expected: state.index.head, found: header.position)
        }
        let end = LogPoint(segmentFirstPosition: segmentFirstPosition, offset: UInt64(offset) + UInt64(header.length))
        switch kind {
        case .events:
            let record = try RecordFormat.decodeEvents(frame, header: header, payloads: false)
            if state.index.freeSlots < record.events.count {
                // A full memtable becomes a run before the scan goes on, so a rebuild stays in budget.
                do {
                    try state.index.flushDuringRecovery(
                        end: LogPoint(segmentFirstPosition: segmentFirstPosition, offset: UInt64(offset)))
                } catch {
                    throw .indexUnreadable("\(error)")
                }
            }
            let expectedRevision: UInt64
            var repeated = false
            do throws(EventStoreError) {
                expectedRevision = try state.index.eventCount(of: record.stream)
                for event in record.events where try state.index.contains(event.id) { repeated = true }
            } catch {
                throw .indexUnreadable(error.message)
            }
            guard record.firstRevision == expectedRevision else { throw .malformedBody }
            // An id stored twice would make idempotent retries ambiguous: the log is damaged.
            guard !repeated else { throw .malformedBody }
            do throws(EventStoreError) {
                try state.index.apply(
                    record.events, to: record.stream, location: Location.pack(segment: segment, offset: offset),
                    end: end)
            } catch {
                throw .indexUnreadable(error.message)
            }
        case .metadata, .softDelete, .tombstone:
            let record = try RecordFormat.decodeControl(frame, header: header, kind: kind)
            state.index.applyControl(kind, stream: record.stream, metadata: record.metadata, end: end)
        }
    }

    /// Reads `store.id`; nil when it does not exist.
    func readIdentity() throws -> StoreIdentity? {
        let path = directory + "/" + StoreIdentity.fileName
        guard io.fileExists(path) else { return nil }
        let fd = try io.open(path, create: false)
        defer { io.close(fd) }
        guard let identity = StoreIdentity.decode(try io.read(fd, count: 64, at: 0)) else {
            throw corrupted("\(path) is damaged.")
        }
        guard identity.formatVersion == UInt32(RecordFormat.formatVersion) else {
            throw corrupted(
                "The store has format version \(identity.formatVersion); this Annals reads version \(RecordFormat.formatVersion)."
            )
        }
        return identity
    }

    func loadOrCreateIdentity() throws -> StoreIdentity {
        let path = directory + "/" + StoreIdentity.fileName
        try io.makeDirectory(segmentsDirectory)
        if let identity = try readIdentity() { return identity }
        guard try segmentFiles().isEmpty else {
            throw corrupted("\(path) is missing, but the directory holds segments.")
        }
        let identity = StoreIdentity(storeID: UUID(), formatVersion: UInt32(RecordFormat.formatVersion))
        try io.replaceFile(path, with: identity.encoded(), directory: directory)
        return identity
    }

    func segmentFiles() throws -> [(name: String, firstPosition: UInt64)] {
        guard io.fileExists(segmentsDirectory) else { return [] }
        return try io.contents(ofDirectory: segmentsDirectory).compactMap { name in
            SegmentHeader.firstPosition(fromFileName: name).map { (name, $0) }
        }
        .sorted { $0.firstPosition < $1.firstPosition }
    }

    private func corrupted(_ message: String) -> EventStoreError {
        EventStoreError(.corruptedStorage, message)
    }

    /// Creates a segment: header written, space preallocated, file and directory synced before it counts.
    static func createSegment(
        directory: String,
        firstPosition: UInt64,
        storeID: UUID,
        size: Int64,
        io: any FileIO
    ) throws -> SegmentFile {
        let path = directory + "/" + SegmentHeader.fileName(firstPosition: firstPosition)
        let fd = try io.open(path, create: true)
        do {
            try io.truncate(fd, to: 0)
            try io.preallocate(fd, size: size)
            let header = SegmentHeader(
                formatVersion: UInt32(RecordFormat.formatVersion),
                storeID: storeID,
                firstPosition: firstPosition
            )
            try io.write(fd, header.encoded(), at: 0)
            try io.sync(fd)
            try io.syncDirectory(directory)
            return SegmentFile(firstPosition: firstPosition, path: path, fd: fd)
        } catch {
            io.close(fd)
            throw error
        }
    }
}

/// What the end of a segment's valid records means — one rule for opening and for `verify`.
enum TailRule {
    enum Verdict: Equatable {
        /// The log ends cleanly here (zeros or the end of the file follow).
        case end(Int64)
        /// A write that was never acknowledged ends the log here: cut it away.
        case tornWrite(at: Int64, RecordFormat.FrameProblem)
        /// Damage that cutting could turn into lost acknowledged events.
        case damage(at: Int64, String)
    }

    /// Only the last segment may end in a torn write, and only with a frame-level problem (a frame not
    /// fully on disk) after which every valid record belongs to the same write: its group starts at or
    /// before the damage. A group is acknowledged only once all of it is flushed, so none of it was.
    static func settle(
        _ outcome: SegmentScanner.Outcome,
        scanner: inout SegmentScanner,
        size: Int64,
        isLast: Bool
    ) throws -> Verdict {
        let offset: Int64
        let problem: RecordFormat.FrameProblem
        switch outcome {
        case .end(let end):
            guard end < size else { return .end(end) }
            offset = end
            problem = .end
        case .problem(let at, let found):
            offset = at
            problem = found
        }
        let later = try scanner.validFrames(after: offset)
        if problem == .end && later.isEmpty { return .end(offset) }
        let sameWrite = later.allSatisfy { $0.groupStart <= offset }
        if isLast, problem.isTornWrite, sameWrite { return .tornWrite(at: offset, problem) }
        if let first = later.first {
            return .damage(at: offset, "\(problem), before a valid record at \(first.offset)")
        }
        return .damage(at: offset, isLast ? "\(problem)" : "\(problem) at the end of a sealed segment")
    }
}
