import Annals
import Foundation

/// What `verify` found in a store directory.
public struct VerificationReport: Sendable, Codable {
    /// One finding: where, and what.
    public struct Finding: Sendable, Codable, CustomStringConvertible {
        /// The file, relative to the store directory.
        public var file: String
        /// The byte offset in the file, when the finding is about one place.
        public var offset: Int64?
        /// What is wrong there, in words for the operator.
        public var message: String
        /// Damage loses data; a note (a torn tail that opening will cut away) does not.
        public var isDamage: Bool

        /// One line: `DAMAGE` or `note`, the file, the offset when there is one, and the message.
        public var description: String {
            "\(isDamage ? "DAMAGE" : "note"): \(file)\(offset.map { " at offset \($0)" } ?? ""): \(message)"
        }
    }

    /// One segment's figures.
    public struct Segment: Sendable, Codable {
        /// The segment file, relative to the store directory.
        public var file: String
        /// The position of the segment's first event, from its file name.
        public var firstPosition: UInt64
        /// How many valid records the segment holds (events and stream changes).
        public var records: Int
        /// How many events those records hold.
        public var events: Int
        /// The bytes the log uses in the file: from its start (the header) to the end of its last valid
        /// record. Not the file's size, which is the preallocated segment size for the segment being
        /// written.
        public var bytes: Int64
    }

    /// The store directory that was checked.
    public var directory: String
    /// The store's identity from `store.id`; nil when that file is missing or unreadable.
    public var storeID: String?
    /// The segments' figures, in log order (a segment whose creation was interrupted is only a finding).
    public var segments: [Segment] = []
    /// Everything found, damage and notes, in the order found.
    public var findings: [Finding] = []
    /// How many events the log holds (up to the first damage).
    public var events: UInt64 = 0
    /// How many streams the log names (up to the first damage).
    public var streams: Int = 0
    /// How many valid records the segments hold, summed over the segments.
    public var records: Int = 0
    /// The bytes the log uses, summed over the segments (see ``Segment/bytes``).
    public var bytes: Int64 = 0

    /// Whether no finding is damage.
    public var isHealthy: Bool { !findings.contains { $0.isDamage } }
}

extension FileEventStore {
    /// Checks every checksum in a store directory and rebuilds the index from the log, checking that
    /// positions and revisions are contiguous and event ids unique. Changes nothing.
    ///
    /// Unlike opening, it does not stop at the first damage: it looks for the next valid record and goes
    /// on, so the report names every damaged place. Takes the directory's lock: it fails with
    /// ``Annals/EventStoreError/Code/unavailable`` while a process has the store open.
    public static func verify(at directory: String) throws -> VerificationReport {
        try verify(at: directory, io: PosixFileIO())
    }

    package static func verify(at directory: String, io: any FileIO) throws -> VerificationReport {
        guard io.fileExists(directory) else {
            throw EventStoreError(.notFound, "There is no store at \(directory).")
        }
        let lock = try DirectoryLock(directory: directory)
        defer { lock.release() }
        var report = VerificationReport(directory: directory)
        let recovery = Recovery(directory: directory, io: io, configuration: Configuration())
        let identityPath = directory + "/" + StoreIdentity.fileName
        guard io.fileExists(identityPath) else {
            report.findings.append(.init(file: StoreIdentity.fileName, message: "missing", isDamage: true))
            return report
        }
        let identity: StoreIdentity
        do {
            guard let found = try recovery.readIdentity() else { throw EventStoreError(.notFound, "missing") }
            identity = found
        } catch {
            report.findings.append(.init(file: StoreIdentity.fileName, message: "\(error)", isDamage: true))
            return report
        }
        report.storeID = identity.storeID.uuidString
        let rebuilt = MemoryIndex()
        var state = EngineState(index: rebuilt)
        let files = try recovery.segmentFiles()
        // After the first damage, positions can no longer be followed; checksums still can.
        var broken = false
        for (index, entry) in files.enumerated() {
            let name = Recovery.segmentsDirectoryName + "/" + entry.name
            let fd = try io.open(recovery.segmentsDirectory + "/" + entry.name, create: false)
            defer { io.close(fd) }
            let size = try io.size(fd)
            // Used bytes grow with each valid record; the preallocated zeros after the last one do not count.
            var figures = VerificationReport.Segment(
                file: name, firstPosition: entry.firstPosition, records: 0, events: 0,
                bytes: min(Int64(SegmentHeader.size), size))
            switch SegmentHeader.decode(try io.read(fd, count: SegmentHeader.size, at: 0)) {
            case .success(let header):
                if header.storeID != identity.storeID {
                    report.findings.append(
                        .init(file: name, offset: 0, message: "belongs to another store", isDamage: true))
                }
            case .failure(let problem):
                var probe = SegmentScanner(io: io, fd: fd, fileSize: size, storeID: identity.storeID)
                if index == files.count - 1, !problem.isUnknownVersion, try probe.hasValidFrame(after: 0) == nil {
                    report.findings.append(
                        .init(
                            file: name,
                            offset: 0,
                            message: "creation was interrupted; opening the store removes it",
                            isDamage: false
                        )
                    )
                    continue
                }
                report.findings.append(.init(file: name, offset: 0, message: "bad header (\(problem))", isDamage: true))
            }
            if !broken, entry.firstPosition != state.index.head {
                report.findings.append(
                    .init(
                        file: name,
                        message:
                            "starts at position \(entry.firstPosition), but the log before it ends at \(state.index.head)",
                        isDamage: true
                    )
                )
            }
            var scanner = SegmentScanner(io: io, fd: fd, fileSize: size, storeID: identity.storeID)
            var offset = Int64(SegmentHeader.size)
            broken = broken || entry.firstPosition != state.index.head
            while true {
                let outcome = try scanner.scan(from: offset) {
                    at, header, kind, frame throws(RecordFormat.FrameProblem) in
                    figures.records += 1
                    figures.bytes = max(figures.bytes, at + Int64(frame.count))
                    if kind == .events {
                        figures.events += Int(
                            try RecordFormat.decodeEvents(frame, header: header, payloads: false).events.count)
                    }
                    // After damage, positions cannot be checked; keep checking checksums.
                    if !broken {
                        try Recovery.apply(
                            frame, header: header, kind: kind, offset: at, segment: index,
                            segmentFirstPosition: entry.firstPosition, to: &state)
                    }
                }
                switch try TailRule.settle(outcome, scanner: &scanner, size: size, isLast: index == files.count - 1) {
                case .end:
                    break
                case .tornWrite(let at, let problem):
                    report.findings.append(
                        .init(
                            file: name,
                            offset: at,
                            message: "a torn write at the end of the log (\(problem)); opening the store cuts it away",
                            isDamage: false
                        )
                    )
                case .damage(let at, let message):
                    report.findings.append(.init(file: name, offset: at, message: message, isDamage: true))
                    broken = true
                    // Go on checking checksums after the damage.
                    if let later = try scanner.hasValidFrame(after: at) {
                        offset = later
                        continue
                    }
                }
                break
            }
            report.segments.append(figures)
            report.records += figures.records
            report.bytes += figures.bytes
        }
        report.events = state.index.head
        report.streams = rebuilt.table.streamOrder.count
        if !broken,
            let (checkpoint, indexed) = IndexCheckpoint.load(directory: directory, storeID: identity.storeID, io: io)
        {
            report.findings += compare(indexed, checkpoint: checkpoint, with: rebuilt)
        }
        return report
    }
}

extension FileEventStore {
    /// Checks the persisted index against the index rebuilt from the log, for the positions it covers.
    static func compare(
        _ indexedState: EngineState,
        checkpoint: IndexCheckpoint,
        with rebuilt: MemoryIndex
    ) -> [VerificationReport.Finding] {
        let file = IndexCheckpoint.directoryName + "/" + IndexCheckpoint.fileName
        guard let indexed = indexedState.memoryIndex else { return [] }
        func damage(_ message: String) -> VerificationReport.Finding {
            .init(file: file, message: message + "; delete the file and reopen the store to rebuild it", isDamage: true)
        }
        guard checkpoint.head <= rebuilt.table.head else {
            return [damage("the index covers \(checkpoint.head) events, the log holds \(rebuilt.table.head)")]
        }
        let count = Int(checkpoint.head)
        guard indexed.locations.count == count, Array(rebuilt.locations.prefix(count)) == indexed.locations else {
            return [damage("event locations differ from the log")]
        }
        for (id, position) in indexed.table.eventIDs where rebuilt.table.eventIDs[id] != position {
            return [damage("event \(id) is at position \(position) in the index but not in the log")]
        }
        for name in indexed.table.streamOrder {
            let positions = indexed.table.streams[name]?.positions ?? []
            let logPositions = (rebuilt.table.streams[name]?.positions ?? []).prefix(positions.count)
            guard Array(logPositions) == positions else { return [damage("stream \(name) differs from the log")] }
        }
        return []
    }
}
