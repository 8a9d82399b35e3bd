import Foundation

/// An open run file: its header and top-level fences in memory, every other block read through the
/// ``BlockCache`` and checked against its CRC on the way in.
///
/// A final class so that a reader's snapshot keeps the descriptor open after a merge has retired the
/// run; the descriptor closes when the last reference goes.
final class RunReader: Sendable {
    typealias Key = (UInt64, UInt64)

    let path: String
    let header: RunFormat.Header
    let headerCRC: UInt32
    let fileLength: UInt64
    let fd: Int32
    let io: any FileIO
    private let cache: BlockCache
    /// The first key of every fence block, per fenced section.
    private let top: [RunFormat.Section: [Key]]

    /// The run's sequence number, which names its blocks in the cache.
    var sequence: UInt64 { header.sequence }

    /// Opens `path`, checking block 0, the store and the `top` blocks; the caller compares the header
    /// CRC and length with its manifest.
    init(path: String, storeID: UUID, io: any FileIO, cache: BlockCache) throws {
        let fd = try io.open(path, create: false)
        do {
            let length = try io.size(fd)
            let block0 = try IndexBlock.read(block: 0, of: fd, path: path, io: io)
            guard let header = block0.withUnsafeBytes({ RunFormat.Header.decode($0) }) else {
                throw IndexBlockError.malformed(path: path, block: 0, reason: "not a run header of index format 1")
            }
            guard header.storeID == storeID else {
                throw IndexBlockError.malformed(
                    path: path, block: 0, reason: "the run belongs to store \(header.storeID)")
            }
            let crcBytes = try io.read(fd, count: 4, at: Int64(IndexBlock.payloadSize))
            guard crcBytes.count == 4 else { throw IndexBlockError.short(path: path, block: 0) }
            let topExtent = header.extent(.top)
            var keys: [Key] = []
            for block in 0..<topExtent.blocks {
                let payload = try IndexBlock.read(block: topExtent.firstBlock + block, of: fd, path: path, io: io)
                let remaining = Int(topExtent.entries) - keys.count
                for index in 0..<min(RunFormat.fencesPerBlock, remaining) {
                    keys.append(try Self.key(payload, at: index * RunFormat.fenceSize, path: path, block: block))
                }
            }
            var top: [RunFormat.Section: [Key]] = [:]
            var start = 0
            for section in RunFormat.fencedSections {
                let fenceBlocks = Self.fenceBlocks(header.extent(section).blocks)
                guard start + fenceBlocks <= keys.count else {
                    throw IndexBlockError.malformed(path: path, block: 0, reason: "top fences are missing")
                }
                top[section] = Array(keys[start..<(start + fenceBlocks)])
                start += fenceBlocks
            }
            self.path = path
            self.header = header
            self.headerCRC = crcBytes.withUnsafeBytes { ByteReader.u32($0, at: 0) }
            self.fileLength = UInt64(length)
            self.fd = fd
            self.io = io
            self.cache = cache
            self.top = top
        } catch {
            io.close(fd)
            throw error
        }
    }

    deinit {
        io.close(fd)
    }

    private static func fenceBlocks(_ blocks: UInt64) -> Int {
        Int((blocks + UInt64(RunFormat.fencesPerBlock) - 1) / UInt64(RunFormat.fencesPerBlock))
    }

    private static func key(_ payload: [UInt8], at offset: Int, path: String, block: UInt64) throws -> Key {
        guard let high = IndexBlock.u64(in: payload, at: offset), let low = IndexBlock.u64(in: payload, at: offset + 8)
        else { throw IndexBlockError.malformed(path: path, block: block, reason: "a key lies outside the block") }
        return (high, low)
    }

    private func malformed(_ block: UInt64, _ reason: String) -> IndexBlockError {
        .malformed(path: path, block: block, reason: reason)
    }

    /// Block `relative` of `section`, verified, through the cache.
    private func block(
        _ section: RunFormat.Section, _ relative: UInt64, priority: BlockCache.Priority = .low
    ) throws -> CachedBlock {
        let extent = header.extent(section)
        guard relative < extent.blocks else {
            throw malformed(extent.firstBlock, "block \(relative) of section \(section) is past its end")
        }
        let number = extent.firstBlock + relative
        return try cache.block(file: sequence, block: number, priority: priority) {
            try IndexBlock.read(block: number, of: fd, path: path, io: io)
        }
    }

    // MARK: Fixed-size entries

    /// Entry `index` of a section of 8-byte entries (`locations` and the position groups).
    private func u64Entry(_ section: RunFormat.Section, _ index: UInt64) throws -> UInt64 {
        let perBlock = UInt64(RunFormat.positionsPerBlock)
        let cached = try block(section, index / perBlock)
        let offset = Int(index % perBlock) * 8
        guard let value = cached.u64(at: offset) else { throw malformed(index / perBlock, "an entry lies outside") }
        return value
    }

    /// Where the record of `position` starts: its segment's first position and the byte offset in it.
    func location(of position: UInt64) throws -> (segmentFirstPosition: UInt64, offset: UInt64) {
        precondition(position >= header.firstPosition && position < header.endPosition, "position outside the run")
        let packed = try u64Entry(.locations, position - header.firstPosition)
        let segment = packed >> 40
        let perBlock = UInt64(IndexBlock.payloadSize / 16)
        guard segment < header.extent(.segments).entries else {
            throw malformed(header.extent(.locations).firstBlock, "a location names segment #\(segment) of the run")
        }
        let cached = try block(.segments, segment / perBlock)
        guard let first = cached.u64(at: Int(segment % perBlock) * 16) else {
            throw malformed(header.extent(.locations).firstBlock, "a location names segment #\(segment) of the run")
        }
        return (first, packed & ((1 << 40) - 1))
    }

    // MARK: Keyed lookups through fences

    /// The block of `section` whose first key is the last one at or below `key`; nil when `key` is below
    /// the section's first key (or the section is empty).
    private func fencedBlock(_ section: RunFormat.Section, _ key: Key) throws -> UInt64? {
        guard let keys = top[section], let fenceBlock = Self.lastAtOrBelow(key, count: keys.count, { keys[$0] })
        else { return nil }
        let fenceCount = header.extent(section).blocks
        let perBlock = UInt64(RunFormat.fencesPerBlock)
        let first = UInt64(fenceBlock) * perBlock
        let inBlock = Int(min(perBlock, fenceCount - first))
        let fenceOffset = fenceBlocksBefore(section) + UInt64(fenceBlock)
        let cached = try block(.fences, fenceOffset, priority: .high)
        var failure: IndexBlockError?
        let found = Self.lastAtOrBelow(key, count: inBlock) { index in
            guard let high = cached.u64(at: index * 16), let low = cached.u64(at: index * 16 + 8) else {
                failure = malformed(fenceOffset, "a fence lies outside its block")
                return (UInt64.max, UInt64.max)
            }
            return (high, low)
        }
        if let failure { throw failure }
        return found.map { first + UInt64($0) }
    }

    private func fenceBlocksBefore(_ section: RunFormat.Section) -> UInt64 {
        var total: UInt64 = 0
        for other in RunFormat.fencedSections {
            if other == section { break }
            total += UInt64(Self.fenceBlocks(header.extent(other).blocks))
        }
        return total
    }

    /// The last index in `0..<count` whose key is at or below `key` (keys ascending); nil if none.
    private static func lastAtOrBelow(_ key: Key, count: Int, _ keyAt: (Int) -> Key) -> Int? {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if keyAt(mid) <= key { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? nil : low - 1
    }

    /// The position of event `id`, if this run holds it.
    func position(of id: (UInt64, UInt64)) throws -> UInt64? {
        guard header.events > 0, header.extent(.ids).entries > 0, id >= header.smallestID, id <= header.largestID,
            let dataBlock = try fencedBlock(.ids, id)
        else { return nil }
        let filter = try block(.idFilter, dataBlock / RunFormat.blocksPerFilter, priority: .high)
        let hash = BlockedBloom.idHash(IndexMemtable.join(id.0, id.1))
        guard filter.bytes.withUnsafeBytes({ BlockedBloom.mayContain(hash, in: $0) }) else { return nil }
        let cached = try block(.ids, dataBlock)
        let total = header.extent(.ids).entries
        let inBlock = Int(min(UInt64(RunFormat.idsPerBlock), total - dataBlock * UInt64(RunFormat.idsPerBlock)))
        var low = 0
        var high = inBlock
        while low < high {
            let mid = (low + high) / 2
            let entry = try idEntry(cached, mid, dataBlock)
            if entry.key == id { return entry.position }
            if entry.key < id { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    private func idEntry(_ cached: CachedBlock, _ index: Int, _ block: UInt64) throws -> (key: Key, position: UInt64) {
        let offset = index * RunFormat.idEntrySize
        guard let id = cached.uuid(at: offset), let position = cached.u64(at: offset + 16) else {
            throw malformed(block, "an id entry lies outside its block")
        }
        let (high, low) = IndexMemtable.split(id)
        return ((high, low), position)
    }

    /// A stream's entry in this run: its first revision here, its count, and its first `streamPositions`
    /// entry.
    struct Group: Equatable, Sendable {
        var first: UInt64
        var count: UInt64
        var firstEntry: UInt64
    }

    /// Stream `number`'s group in this run, if it has events here.
    func streamGroup(_ number: UInt64) throws -> Group? {
        try summary(.streamSummaries, key: number, entrySize: RunFormat.streamSummarySize) { cached, offset in
            guard let first = cached.u64(at: offset + 8), let count = cached.u64(at: offset + 16),
                let entry = cached.u64(at: offset + 24)
            else { return nil }
            return Group(first: first, count: count, firstEntry: entry)
        }
    }

    /// The group of a category (`categorySummaries`) or event type (`typeSummaries`) hash; `first` is 0.
    func hashGroup(_ section: RunFormat.Section, hash: UInt64) throws -> Group? {
        try summary(section, key: hash, entrySize: RunFormat.groupSummarySize) { cached, offset in
            guard let count = cached.u64(at: offset + 8), let entry = cached.u64(at: offset + 16) else { return nil }
            return Group(first: 0, count: count, firstEntry: entry)
        }
    }

    private func summary(
        _ section: RunFormat.Section, key: UInt64, entrySize: Int, _ decode: (CachedBlock, Int) -> Group?
    ) throws -> Group? {
        guard let dataBlock = try fencedBlock(section, (key, 0)) else { return nil }
        let cached = try block(section, dataBlock)
        let perBlock = UInt64(IndexBlock.payloadSize / entrySize)
        let inBlock = Int(min(perBlock, header.extent(section).entries - dataBlock * perBlock))
        var low = 0
        var high = inBlock
        while low < high {
            let mid = (low + high) / 2
            guard let entryKey = cached.u64(at: mid * entrySize) else {
                throw malformed(dataBlock, "a summary lies outside")
            }
            if entryKey == key {
                guard let group = decode(cached, mid * entrySize) else {
                    throw malformed(dataBlock, "a summary is cut")
                }
                return group
            }
            if entryKey < key { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    /// Entry `index` of a position section (`streamPositions`, `categoryPositions`, `typePositions`).
    func position(_ section: RunFormat.Section, entry index: UInt64) throws -> UInt64 {
        try u64Entry(section, index)
    }

    /// The name hash of stream `number`, created in this run's span.
    func createdHash(_ number: UInt64) throws -> UInt64? {
        guard number >= header.firstStreamNumber, number < header.endStreamNumber else { return nil }
        return try u64Entry(.created, number - header.firstStreamNumber)
    }

    // MARK: Directory

    /// The directory record of the stream called `name` (whose hash is `hash`), if this run has one.
    func directoryRecord(hash: UInt64, name: String) throws -> RunFormat.DirectoryRecord? {
        try directoryRecord(hash: hash) { $0.name == name }
    }

    /// The directory record of stream `number` (whose name hash is `hash`), if this run has one.
    func directoryRecord(hash: UInt64, number: UInt64) throws -> RunFormat.DirectoryRecord? {
        try directoryRecord(hash: hash) { $0.number == number }
    }

    private func directoryRecord(
        hash: UInt64, matching: (RunFormat.DirectoryRecord) -> Bool
    ) throws -> RunFormat.DirectoryRecord? {
        let blocks = header.extent(.directory).blocks
        guard blocks > 0 else { return nil }
        var dataBlock = try fencedBlock(.directory, (hash, 0)) ?? 0
        let filter = try block(.directoryFilter, dataBlock / RunFormat.blocksPerFilter, priority: .high)
        if !filter.bytes.withUnsafeBytes({ BlockedBloom.mayContain(hash, in: $0) }) {
            // The hash's records may begin in the next block (of another filter group).
            guard dataBlock + 1 < blocks, let next = try fencedBlock(.directory, (hash, .max)), next > dataBlock
            else { return nil }
            dataBlock += 1
        }
        while dataBlock < blocks {
            let cached = try block(.directory, dataBlock)
            var offset = 0
            while offset <= IndexBlock.payloadSize - 41 {
                guard let recordHash = cached.u64(at: offset) else { break }
                let (record, size) = try directoryEntry(cached, at: offset, dataBlock)
                if recordHash > hash { return nil }
                if recordHash == hash, let record, matching(record) { return record }
                guard size > 0 else { break }
                offset += size
            }
            dataBlock += 1
        }
        return nil
    }

    /// Decodes the directory entry at `offset`; a nil record with size 0 is the block's zero padding.
    func directoryEntry(
        _ cached: CachedBlock, at offset: Int, _ block: UInt64
    ) throws -> (RunFormat.DirectoryRecord?, Int) {
        guard let hash = cached.u64(at: offset), let number = cached.u64(at: offset + 8),
            let count = cached.u64(at: offset + 16), let first = cached.u64(at: offset + 24),
            let last = cached.u64(at: offset + 32), let flags = cached.u8(at: offset + 40)
        else { throw malformed(block, "a directory entry is cut") }
        if hash == 0, number == 0, count == 0, first == 0, last == 0, flags == 0 {
            return (nil, 0)
        }
        var record = RunFormat.DirectoryRecord(
            nameHash: hash, number: number, eventCount: count, firstPosition: first, lastPosition: last,
            flags: flags & ~RunFormat.overflowFlag, name: "", metadata: [])
        if flags & RunFormat.overflowFlag != 0 {
            guard let overflowBlock = cached.u64(at: offset + 41), let length = cached.u32(at: offset + 49) else {
                throw malformed(block, "an overflow reference is cut")
            }
            var bytes: [UInt8] = []
            var next = overflowBlock
            while bytes.count < Int(length) {
                let chunk = try self.block(.overflow, next)
                bytes.append(contentsOf: chunk.bytes.prefix(Int(length) - bytes.count))
                next += 1
            }
            try decodeTail(bytes[...], into: &record, block)
            return (record, 41 + 12)
        }
        let size = try cached.bytes.withUnsafeBytes { buffer -> Int in
            var reader = ByteReader(buffer, offset: offset + 41)
            do {
                let nameLength = Int(try reader.u16())
                try reader.skip(nameLength)
                let metadataLength = Int(try reader.u32())
                try reader.skip(metadataLength)
            } catch {
                throw malformed(block, "a directory record is cut")
            }
            return reader.offset - offset
        }
        try decodeTail(cached.bytes[(offset + 41)..<(offset + size)], into: &record, block)
        return (record, size)
    }

    private func decodeTail(_ bytes: ArraySlice<UInt8>, into record: inout RunFormat.DirectoryRecord, _ block: UInt64)
        throws
    {
        let copy = Array(bytes)
        try copy.withUnsafeBytes { buffer in
            var reader = ByteReader(buffer)
            do {
                let name = try reader.bytes(Int(try reader.u16()))
                record.name = String(decoding: name, as: UTF8.self)
                record.metadata = Array(try reader.bytes(Int(try reader.u32())))
            } catch {
                throw malformed(block, "a directory record is cut")
            }
        }
    }
}
