import Foundation

/// What one run holds, sorted as the file wants it: made from a frozen memtable by a flush (and, later,
/// from older runs by a merge).
struct RunInput: Sendable {
    /// A stream's positions in this run, in revision order from `firstRevision`.
    struct StreamGroup: Sendable {
        var number: UInt64
        var firstRevision: UInt64
        var positions: [UInt64]
    }

    /// The positions of one category or event type, ascending.
    struct HashGroup: Sendable {
        var hash: UInt64
        var positions: [UInt64]
    }

    var storeID: UUID
    var sequence: UInt64
    var level: UInt32
    var firstPosition: UInt64
    /// (first position, generation) of each segment `locations` refers to, in index order.
    var segments: [(firstPosition: UInt64, generation: UInt64)]
    /// One per position from `firstPosition`: index into `segments` << 40 | record offset.
    var locations: [UInt64]
    /// (id high, id low, position), sorted by id.
    var ids: [(UInt64, UInt64, UInt64)]
    var streams: [StreamGroup]
    var categories: [HashGroup]
    var types: [HashGroup]
    /// Sorted by (name hash, number).
    var directory: [RunFormat.DirectoryRecord]
    var firstStreamNumber: UInt64
    /// Name hashes of the streams created in the span, by number from `firstStreamNumber`.
    var created: [UInt64]
    var spanStart: (segment: UInt64, offset: UInt64)
    var spanEnd: (segment: UInt64, offset: UInt64)
}

/// Entries read one at a time, from memory or from a run file (so that a merge holds no more than a
/// block of each input at once).
protocol EntryCursor<Element> {
    associatedtype Element
    mutating func next() throws -> Element?
}

/// A cursor over an array.
struct ArrayCursor<Element>: EntryCursor {
    let array: [Element]
    var index = 0

    init(_ array: [Element]) { self.array = array }

    mutating func next() -> Element? {
        guard index < array.count else { return nil }
        defer { index += 1 }
        return array[index]
    }
}

/// A group of positions in a run: a stream's (keyed by number, from `firstRevision`), a category's
/// or an event type's (keyed by hash).
struct GroupSummary: Equatable, Sendable {
    var key: UInt64
    var firstRevision: UInt64
    var count: UInt64
}

/// The kinds of position groups a run has.
enum GroupKind: CaseIterable, Sendable {
    case stream, category, type

    var summaries: RunFormat.Section {
        switch self {
        case .stream: .streamSummaries
        case .category: .categorySummaries
        case .type: .typeSummaries
        }
    }

    var positions: RunFormat.Section {
        switch self {
        case .stream: .streamPositions
        case .category: .categoryPositions
        case .type: .typePositions
        }
    }
}

/// What a run is written from: a frozen memtable (``RunInput``) or two runs being merged
/// (``RunMerge``). Each cursor may be asked for more than once; each time it starts over.
protocol RunSource {
    var storeID: UUID { get }
    var sequence: UInt64 { get }
    var level: UInt32 { get }
    var firstPosition: UInt64 { get }
    var segmentList: [(firstPosition: UInt64, generation: UInt64)] { get }
    var firstStreamNumber: UInt64 { get }
    var spanStart: (segment: UInt64, offset: UInt64) { get }
    var spanEnd: (segment: UInt64, offset: UInt64) { get }
    func locationCursor() throws -> any EntryCursor<UInt64>
    /// (id high, id low, position), by id.
    func idCursor() throws -> any EntryCursor<(UInt64, UInt64, UInt64)>
    func groupCursor(_ kind: GroupKind) throws -> any EntryCursor<GroupSummary>
    /// Every group's positions, group after group in ``groupCursor(_:)``'s order.
    func groupPositionCursor(_ kind: GroupKind) throws -> any EntryCursor<UInt64>
    /// By (name hash, number).
    func directoryCursor() throws -> any EntryCursor<RunFormat.DirectoryRecord>
    func createdCursor() throws -> any EntryCursor<UInt64>
}

extension RunInput: RunSource {
    var segmentList: [(firstPosition: UInt64, generation: UInt64)] { segments }
    func locationCursor() -> any EntryCursor<UInt64> { ArrayCursor(locations) }
    func idCursor() -> any EntryCursor<(UInt64, UInt64, UInt64)> { ArrayCursor(ids) }

    func groupCursor(_ kind: GroupKind) -> any EntryCursor<GroupSummary> {
        switch kind {
        case .stream:
            ArrayCursor(
                streams.map {
                    GroupSummary(key: $0.number, firstRevision: $0.firstRevision, count: UInt64($0.positions.count))
                })
        case .category:
            ArrayCursor(
                categories.map { GroupSummary(key: $0.hash, firstRevision: 0, count: UInt64($0.positions.count)) })
        case .type:
            ArrayCursor(types.map { GroupSummary(key: $0.hash, firstRevision: 0, count: UInt64($0.positions.count)) })
        }
    }

    func groupPositionCursor(_ kind: GroupKind) -> any EntryCursor<UInt64> {
        switch kind {
        case .stream: ArrayCursor(streams.flatMap(\.positions))
        case .category: ArrayCursor(categories.flatMap(\.positions))
        case .type: ArrayCursor(types.flatMap(\.positions))
        }
    }

    func directoryCursor() -> any EntryCursor<RunFormat.DirectoryRecord> { ArrayCursor(directory) }
    func createdCursor() -> any EntryCursor<UInt64> { ArrayCursor(created) }
}

/// Writes a run file from a ``RunSource``: sections through an ``IndexBlockWriter``, out to the file
/// through a 1 MiB buffer, block 0 (the header, which needs every section's extent) last; then flushes
/// it. The caller renames it into place and names it in a manifest.
enum RunWriter {
    static let bufferSize = 1 << 20

    /// What the manifest records of a written run.
    struct Written: Sendable {
        var header: RunFormat.Header
        var fileLength: UInt64
        var headerCRC: UInt32
    }

    static func write(_ input: some RunSource, to path: String, io: any FileIO) throws -> Written {
        let fd = try io.open(path, create: true)
        defer { io.close(fd) }
        try io.truncate(fd, to: 0)
        var output = Output(fd: fd, io: io)
        var blocks = IndexBlockWriter(capacity: bufferSize + IndexBlock.size)
        var sections: [RunFormat.Section: RunFormat.SectionExtent] = [:]
        var fences: [RunFormat.Section: [(UInt64, UInt64)]] = [:]
        var next: UInt64 = 1  // block 0 is the header

        /// Writes one section: `body` appends its entries and returns how many; records the extent.
        func section(_ kind: RunFormat.Section, _ body: (inout IndexBlockWriter) throws -> Int) throws {
            let before = blocks.blocksWritten
            let entries = try body(&blocks)
            blocks.finishBlock()
            let count = blocks.blocksWritten - before
            sections[kind] = RunFormat.SectionExtent(firstBlock: next, blocks: count, entries: UInt64(entries))
            next += count
            try output.take(&blocks)
        }

        try section(.segments) { writer in
            for segment in input.segmentList {
                writer.beginEntry(size: 16)
                writer.put(segment.firstPosition)
                writer.put(segment.generation)
            }
            return input.segmentList.count
        }
        var events = 0
        try section(.locations) { writer in
            var cursor = try input.locationCursor()
            while let location = try cursor.next() {
                writer.beginEntry(size: 8)
                writer.put(location)
                events += 1
                try output.takeIfLarge(&writer)
            }
            return events
        }
        var idFences: [(UInt64, UInt64)] = []
        var smallestID: (UInt64, UInt64)? = nil
        var largestID: (UInt64, UInt64) = (0, 0)
        try section(.ids) { writer in
            var cursor = try input.idCursor()
            var count = 0
            while let (high, low, position) = try cursor.next() {
                if writer.beginEntry(size: RunFormat.idEntrySize).offset == 0 { idFences.append((high, low)) }
                writer.put(IndexMemtable.join(high, low))
                writer.put(position)
                if smallestID == nil { smallestID = (high, low) }
                largestID = (high, low)
                count += 1
                try output.takeIfLarge(&writer)
            }
            return count
        }
        fences[.ids] = idFences
        try section(.idFilter) { writer in
            // A second pass over the ids: one filter block per 16 blocks of them.
            var cursor = try input.idCursor()
            var hashes: [UInt64] = []
            let perFilter = RunFormat.idsPerBlock * Int(RunFormat.blocksPerFilter)
            hashes.reserveCapacity(perFilter)
            while true {
                let entry = try cursor.next()
                if let (high, low, _) = entry { hashes.append(BlockedBloom.idHash(IndexMemtable.join(high, low))) }
                if hashes.count == perFilter || (entry == nil && !hashes.isEmpty) {
                    writer.append(BlockedBloom.build(hashes: hashes))
                    hashes.removeAll(keepingCapacity: true)
                    try output.takeIfLarge(&writer)
                }
                if entry == nil { break }
            }
            return 0
        }
        var groupCounts: [GroupKind: Int] = [:]
        for kind in GroupKind.allCases {
            var groupFences: [(UInt64, UInt64)] = []
            var total: UInt64 = 0
            try section(kind.summaries) { writer in
                var cursor = try input.groupCursor(kind)
                var count = 0
                let size = kind == .stream ? RunFormat.streamSummarySize : RunFormat.groupSummarySize
                while let group = try cursor.next() {
                    if writer.beginEntry(size: size).offset == 0 { groupFences.append((group.key, 0)) }
                    writer.put(group.key)
                    if kind == .stream { writer.put(group.firstRevision) }
                    writer.put(group.count)
                    writer.put(total)
                    total += group.count
                    count += 1
                    try output.takeIfLarge(&writer)
                }
                return count
            }
            groupCounts[kind] = Int(sections[kind.summaries]?.entries ?? 0)
            fences[kind.summaries] = groupFences
            try section(kind.positions) { writer in
                var cursor = try input.groupPositionCursor(kind)
                var count = 0
                while let position = try cursor.next() {
                    writer.beginEntry(size: 8)
                    writer.put(position)
                    count += 1
                    try output.takeIfLarge(&writer)
                }
                return count
            }
        }
        // Directory: records too large go to overflow (held here: they are rare); the inline entry then
        // holds the overflow block and length instead of name and metadata. The directory's filter
        // blocks are built as its blocks fill, one per 16.
        var overflow: [[UInt8]] = []
        var overflowBlocks: UInt64 = 0
        var directoryFences: [(UInt64, UInt64)] = []
        var filters: [[UInt8]] = []
        var filterHashes: [UInt64] = []
        try section(.directory) { writer in
            var cursor = try input.directoryCursor()
            var count = 0
            var blocksInFilter = 0
            while let record = try cursor.next() {
                let large = record.inlineSize > RunFormat.largestInlineRecord
                let size = large ? 41 + 12 : record.inlineSize
                let location = writer.beginEntry(size: size)
                if location.offset == 0 {
                    directoryFences.append((record.nameHash, record.number))
                    if blocksInFilter == Int(RunFormat.blocksPerFilter) {
                        filters.append(BlockedBloom.build(hashes: filterHashes))
                        filterHashes.removeAll(keepingCapacity: true)
                        blocksInFilter = 0
                    }
                    blocksInFilter += 1
                }
                filterHashes.append(record.nameHash)
                writer.put(record.nameHash)
                writer.put(record.number)
                writer.put(record.eventCount)
                writer.put(record.firstPosition)
                writer.put(record.lastPosition)
                if large {
                    let bytes = encodeTail(record)
                    writer.put(record.flags | RunFormat.overflowFlag)
                    writer.put(overflowBlocks)
                    writer.put(UInt32(bytes.count))
                    overflowBlocks += UInt64((bytes.count + IndexBlock.payloadSize - 1) / IndexBlock.payloadSize)
                    overflow.append(bytes)
                } else {
                    writer.put(record.flags)
                    writer.put(bytes: encodeTail(record))
                }
                count += 1
                try output.takeIfLarge(&writer)
            }
            if !filterHashes.isEmpty { filters.append(BlockedBloom.build(hashes: filterHashes)) }
            return count
        }
        fences[.directory] = directoryFences
        try section(.directoryFilter) { writer in
            for filter in filters { writer.append(filter) }
            return 0
        }
        var created = 0
        try section(.created) { writer in
            var cursor = try input.createdCursor()
            while let hash = try cursor.next() {
                writer.beginEntry(size: 8)
                writer.put(hash)
                created += 1
            }
            return created
        }
        try section(.overflow) { writer in
            for bytes in overflow {
                var start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + IndexBlock.payloadSize)
                    writer.append(bytes[start..<end])
                    writer.finishBlock()
                    start = end
                }
            }
            return overflow.count
        }
        var topKeys: [(UInt64, UInt64)] = []
        try section(.fences) { writer in
            var count = 0
            for kind in RunFormat.fencedSections {
                for (index, key) in (fences[kind] ?? []).enumerated() {
                    if index % RunFormat.fencesPerBlock == 0 {
                        writer.finishBlock()
                        topKeys.append(key)
                    }
                    writer.beginEntry(size: RunFormat.fenceSize)
                    writer.put(key.0)
                    writer.put(key.1)
                    count += 1
                }
            }
            return count
        }
        try section(.top) { writer in
            for key in topKeys {
                writer.beginEntry(size: RunFormat.fenceSize)
                writer.put(key.0)
                writer.put(key.1)
            }
            return topKeys.count
        }

        let header = RunFormat.Header(
            storeID: input.storeID, sequence: input.sequence, level: input.level,
            firstPosition: input.firstPosition, endPosition: input.firstPosition + UInt64(events),
            spanStart: input.spanStart, spanEnd: input.spanEnd, firstStreamNumber: input.firstStreamNumber,
            endStreamNumber: input.firstStreamNumber + UInt64(created), events: UInt64(events),
            streamsTouched: UInt64(groupCounts[.stream] ?? 0), categories: UInt64(groupCounts[.category] ?? 0),
            types: UInt64(groupCounts[.type] ?? 0), smallestID: smallestID ?? (0, 0), largestID: largestID,
            sections: sections)
        var block0 = header.encoded()
        IndexBlock.seal(&block0)
        try io.write(fd, block0, at: 0)
        try io.sync(fd)
        return Written(
            header: header, fileLength: next * UInt64(IndexBlock.size),
            headerCRC: block0.withUnsafeBytes { ByteReader.u32($0, at: IndexBlock.payloadSize) })
    }

    /// Name and metadata as a directory record stores them after its flags.
    static func encodeTail(_ record: RunFormat.DirectoryRecord) -> [UInt8] {
        var writer = ByteWriter(capacity: 6 + record.name.utf8.count + record.metadata.count)
        writer.put(UInt16(record.name.utf8.count))
        writer.put(bytes: record.name.utf8)
        writer.put(UInt32(record.metadata.count))
        writer.put(bytes: record.metadata)
        return writer.bytes
    }

    /// The file being written: sealed blocks go out in order from block 1.
    private struct Output {
        let fd: Int32
        let io: any FileIO
        var offset = Int64(IndexBlock.size)

        mutating func take(_ writer: inout IndexBlockWriter) throws {
            guard !writer.sealed.isEmpty else { return }
            try io.write(fd, writer.sealed, at: offset)
            offset += Int64(writer.sealed.count)
            writer.removeSealed()
        }

        mutating func takeIfLarge(_ writer: inout IndexBlockWriter) throws {
            if writer.sealed.count >= RunWriter.bufferSize { try take(&writer) }
        }
    }
}
