import Foundation

/// Entries of one section of a run, read block by block straight from the file (not through the block
/// cache, which a merge would only flush), so a merge holds one block of each input at a time.
struct SectionCursor<Element>: EntryCursor {
    let run: RunReader
    let section: RunFormat.Section
    let entrySize: Int
    let decode: (CachedBlock, Int) -> Element?
    private var index: UInt64 = 0
    private var block: CachedBlock?
    private var blockNumber: UInt64 = .max

    init(
        _ run: RunReader, _ section: RunFormat.Section, entrySize: Int, decode: @escaping (CachedBlock, Int) -> Element?
    ) {
        self.run = run
        self.section = section
        self.entrySize = entrySize
        self.decode = decode
    }

    mutating func next() throws -> Element? {
        let extent = run.header.extent(section)
        guard index < extent.entries else { return nil }
        let perBlock = UInt64(IndexBlock.payloadSize / entrySize)
        let relative = index / perBlock
        if relative != blockNumber {
            block = CachedBlock(
                bytes: try IndexBlock.read(block: extent.firstBlock + relative, of: run.fd, path: run.path, io: run.io))
            blockNumber = relative
        }
        guard let block, let value = decode(block, Int(index % perBlock) * entrySize) else {
            throw IndexBlockError.malformed(
                path: run.path, block: extent.firstBlock + relative, reason: "an entry of \(section) lies outside")
        }
        index += 1
        return value
    }
}

extension RunReader {
    func u64Cursor(_ section: RunFormat.Section) -> SectionCursor<UInt64> {
        SectionCursor(self, section, entrySize: 8) { $0.u64(at: $1) }
    }

    func idCursor() -> SectionCursor<(UInt64, UInt64, UInt64)> {
        SectionCursor(self, .ids, entrySize: RunFormat.idEntrySize) { block, offset in
            guard let id = block.uuid(at: offset), let position = block.u64(at: offset + 16) else { return nil }
            let (high, low) = IndexMemtable.split(id)
            return (high, low, position)
        }
    }

    func groupCursor(_ kind: GroupKind) -> SectionCursor<GroupSummary> {
        if kind == .stream {
            return SectionCursor(self, .streamSummaries, entrySize: RunFormat.streamSummarySize) { block, offset in
                guard let key = block.u64(at: offset), let first = block.u64(at: offset + 8),
                    let count = block.u64(at: offset + 16)
                else { return nil }
                return GroupSummary(key: key, firstRevision: first, count: count)
            }
        }
        return SectionCursor(self, kind.summaries, entrySize: RunFormat.groupSummarySize) { block, offset in
            guard let key = block.u64(at: offset), let count = block.u64(at: offset + 8) else { return nil }
            return GroupSummary(key: key, firstRevision: 0, count: count)
        }
    }

    /// The segments this run's locations name: (first position, generation).
    func segmentList() throws -> [(firstPosition: UInt64, generation: UInt64)] {
        var cursor = SectionCursor(self, .segments, entrySize: 16) { block, offset -> (UInt64, UInt64)? in
            guard let first = block.u64(at: offset), let generation = block.u64(at: offset + 8) else { return nil }
            return (first, generation)
        }
        var list: [(firstPosition: UInt64, generation: UInt64)] = []
        while let entry = try cursor.next() { list.append(entry) }
        return list
    }
}

/// The directory records of a run in file order.
struct DirectoryCursor: EntryCursor {
    let run: RunReader
    private var block: UInt64 = 0
    private var payload: CachedBlock?
    private var offset = 0

    init(_ run: RunReader) { self.run = run }

    mutating func next() throws -> RunFormat.DirectoryRecord? {
        let extent = run.header.extent(.directory)
        while block < extent.blocks {
            if payload == nil {
                payload = CachedBlock(
                    bytes: try IndexBlock.read(block: extent.firstBlock + block, of: run.fd, path: run.path, io: run.io)
                )
                offset = 0
            }
            if let payload, offset <= IndexBlock.payloadSize - 41 {
                let (record, size) = try run.directoryEntry(payload, at: offset, block)
                if let record, size > 0 {
                    offset += size
                    return record
                }
            }
            block += 1
            payload = nil
        }
        return nil
    }
}

/// Two runs of adjacent position ranges, read as one (decision 0007, §2.4): locations and position
/// groups concatenated, ids and summaries merged as sorted streams, the newer directory record of each
/// stream kept.
struct RunMerge: RunSource {
    let older: RunReader
    let newer: RunReader
    let sequence: UInt64
    let segmentList: [(firstPosition: UInt64, generation: UInt64)]
    /// What a segment index of the newer run becomes in the merged run.
    private let newerSegmentShift: UInt64

    init(older: RunReader, newer: RunReader, sequence: UInt64) throws {
        precondition(older.header.endPosition == newer.header.firstPosition, "merged runs must be adjacent")
        self.older = older
        self.newer = newer
        self.sequence = sequence
        var list = try older.segmentList()
        let newerList = try newer.segmentList()
        var shift = UInt64(list.count)
        var rest = newerList[...]
        if let last = list.last, let first = newerList.first, last.firstPosition == first.firstPosition {
            shift -= 1
            rest = rest.dropFirst()
        }
        list += rest
        segmentList = list
        newerSegmentShift = shift
    }

    var storeID: UUID { older.header.storeID }
    var level: UInt32 { max(older.header.level, newer.header.level) + 1 }
    var firstPosition: UInt64 { older.header.firstPosition }
    var firstStreamNumber: UInt64 { older.header.firstStreamNumber }
    var spanStart: (segment: UInt64, offset: UInt64) { older.header.spanStart }
    var spanEnd: (segment: UInt64, offset: UInt64) { newer.header.spanEnd }

    func locationCursor() -> any EntryCursor<UInt64> {
        Concatenation(first: older.u64Cursor(.locations), second: newer.u64Cursor(.locations)) { [newerSegmentShift] in
            ($0 >> 40 + newerSegmentShift) << 40 | ($0 & ((1 << 40) - 1))
        }
    }

    func idCursor() -> any EntryCursor<(UInt64, UInt64, UInt64)> {
        SortedMerge(
            first: older.idCursor(), second: newer.idCursor(), key: { ($0.0, $0.1) }, combine: { _, newer in newer })
    }

    func groupCursor(_ kind: GroupKind) -> any EntryCursor<GroupSummary> {
        SortedMerge(
            first: older.groupCursor(kind), second: newer.groupCursor(kind), key: { ($0.key, 0) },
            combine: { older, newer in
                GroupSummary(key: older.key, firstRevision: older.firstRevision, count: older.count + newer.count)
            })
    }

    func groupPositionCursor(_ kind: GroupKind) -> any EntryCursor<UInt64> {
        GroupPositions(
            olderGroups: older.groupCursor(kind), newerGroups: newer.groupCursor(kind),
            olderPositions: older.u64Cursor(kind.positions), newerPositions: newer.u64Cursor(kind.positions))
    }

    func directoryCursor() -> any EntryCursor<RunFormat.DirectoryRecord> {
        SortedMerge(
            first: DirectoryCursor(older), second: DirectoryCursor(newer), key: { ($0.nameHash, $0.number) },
            combine: { _, newer in newer })
    }

    func createdCursor() -> any EntryCursor<UInt64> {
        Concatenation(first: older.u64Cursor(.created), second: newer.u64Cursor(.created)) { $0 }
    }
}

/// The first cursor's entries, then the second's (mapped).
private struct Concatenation<First: EntryCursor, Second: EntryCursor>: EntryCursor
where First.Element == Second.Element {
    var first: First
    var second: Second
    let mapSecond: (First.Element) -> First.Element
    private var firstDone = false

    init(first: First, second: Second, mapSecond: @escaping (First.Element) -> First.Element) {
        self.first = first
        self.second = second
        self.mapSecond = mapSecond
    }

    mutating func next() throws -> First.Element? {
        if !firstDone {
            if let value = try first.next() { return value }
            firstDone = true
        }
        return try second.next().map(mapSecond)
    }
}

/// Two cursors sorted by key, merged; equal keys are combined into one entry.
private struct SortedMerge<First: EntryCursor, Second: EntryCursor>: EntryCursor
where First.Element == Second.Element {
    typealias Element = First.Element
    var first: First
    var second: Second
    let key: (Element) -> (UInt64, UInt64)
    let combine: (Element, Element) -> Element
    private var pendingFirst: Element?
    private var pendingSecond: Element?
    private var started = false

    init(
        first: First, second: Second, key: @escaping (Element) -> (UInt64, UInt64),
        combine: @escaping (Element, Element) -> Element
    ) {
        self.first = first
        self.second = second
        self.key = key
        self.combine = combine
    }

    mutating func next() throws -> Element? {
        if !started {
            pendingFirst = try first.next()
            pendingSecond = try second.next()
            started = true
        }
        switch (pendingFirst, pendingSecond) {
        case (nil, nil):
            return nil
        case (let value?, nil):
            pendingFirst = try first.next()
            return value
        case (nil, let value?):
            pendingSecond = try second.next()
            return value
        case (let a?, let b?):
            let keyA = key(a)
            let keyB = key(b)
            if keyA < keyB {
                pendingFirst = try first.next()
                return a
            }
            if keyB < keyA {
                pendingSecond = try second.next()
                return b
            }
            pendingFirst = try first.next()
            pendingSecond = try second.next()
            return combine(a, b)
        }
    }
}

/// The positions of merged groups: for each key in order, the older run's positions, then the newer's.
private struct GroupPositions: EntryCursor {
    var olderGroups: SectionCursor<GroupSummary>
    var newerGroups: SectionCursor<GroupSummary>
    var olderPositions: SectionCursor<UInt64>
    var newerPositions: SectionCursor<UInt64>
    private var olderGroup: GroupSummary?
    private var newerGroup: GroupSummary?
    private var started = false
    /// Positions still to take from each input for the current key.
    private var fromOlder: UInt64 = 0
    private var fromNewer: UInt64 = 0

    init(
        olderGroups: SectionCursor<GroupSummary>, newerGroups: SectionCursor<GroupSummary>,
        olderPositions: SectionCursor<UInt64>, newerPositions: SectionCursor<UInt64>
    ) {
        self.olderGroups = olderGroups
        self.newerGroups = newerGroups
        self.olderPositions = olderPositions
        self.newerPositions = newerPositions
    }

    mutating func next() throws -> UInt64? {
        if !started {
            olderGroup = try olderGroups.next()
            newerGroup = try newerGroups.next()
            started = true
        }
        while fromOlder == 0, fromNewer == 0 {
            switch (olderGroup, newerGroup) {
            case (nil, nil):
                return nil
            case (let older?, nil):
                fromOlder = older.count
                olderGroup = try olderGroups.next()
            case (nil, let newer?):
                fromNewer = newer.count
                newerGroup = try newerGroups.next()
            case (let older?, let newer?):
                if older.key <= newer.key {
                    fromOlder = older.count
                    olderGroup = try olderGroups.next()
                }
                if newer.key <= older.key {
                    fromNewer = newer.count
                    newerGroup = try newerGroups.next()
                }
            }
        }
        if fromOlder > 0 {
            fromOlder -= 1
            return try olderPositions.next()
        }
        fromNewer -= 1
        return try newerPositions.next()
    }
}
