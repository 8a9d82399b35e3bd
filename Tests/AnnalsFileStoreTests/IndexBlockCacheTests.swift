import Foundation
import Testing

@testable import AnnalsFileStore

@Suite("Index blocks")
struct IndexBlockTests {
    private static func randomPayload(count: Int = IndexBlock.payloadSize) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    @Test("a sealed block is 4,096 bytes, verifies, and gives back its zero-padded payload")
    func sealAndVerify() throws {
        for count in [IndexBlock.payloadSize, 1_000, 0] {
            let payload = Self.randomPayload(count: count)
            var block = payload
            IndexBlock.seal(&block)
            #expect(block.count == IndexBlock.size)
            #expect(IndexBlock.verify(block))
            let expected = payload + [UInt8](repeating: 0, count: IndexBlock.payloadSize - count)
            #expect(try IndexBlock.verifiedPayload(of: block, path: "r.run", block: 3) == expected)
            #expect(IndexBlock.u32(in: block, at: IndexBlock.payloadSize) == CRC32C.checksum(expected))
        }
    }

    @Test("flipping any single bit of a sealed block, in its payload or its CRC, fails verification")
    func bitFlips() {
        var block = Self.randomPayload()
        IndexBlock.seal(&block)
        let crcBits = (IndexBlock.payloadSize * 8)..<(IndexBlock.size * 8)
        let bits = Array(stride(from: 0, to: IndexBlock.size * 8, by: 97)) + Array(crcBits)
        for bit in bits {
            var flipped = block
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            let damaged = flipped
            #expect(!IndexBlock.verify(damaged), "bit \(bit)")
            #expect(throws: IndexBlockError.damaged(path: "r.run", block: 7)) {
                try IndexBlock.verifiedPayload(of: damaged, path: "r.run", block: 7)
            }
        }
    }

    @Test("a block of the wrong size is short, and a block of zeros (never written) does not verify")
    func shortAndZeroBlocks() {
        var block = Self.randomPayload()
        IndexBlock.seal(&block)
        for count in [0, 1, IndexBlock.payloadSize, IndexBlock.size - 1] {
            let short = Array(block[..<count])
            #expect(!IndexBlock.verify(short))
            #expect(throws: IndexBlockError.short(path: "r.run", block: 2)) {
                try IndexBlock.verifiedPayload(of: short, path: "r.run", block: 2)
            }
        }
        #expect(!IndexBlock.verify(block + [0]))
        #expect(!IndexBlock.verify([UInt8](repeating: 0, count: IndexBlock.size)))
    }

    @Test("the errors name the file and block and send the operator to annals verify")
    func errorDescriptions() {
        let damaged = IndexBlockError.damaged(path: "index/runs/00000000000000000042.run", block: 9)
        #expect(
            damaged.description
                == "index run index/runs/00000000000000000042.run, block 9: checksum mismatch; run `annals verify`")
        #expect(damaged.path == "index/runs/00000000000000000042.run")
        #expect(damaged.block == 9)
        let short = IndexBlockError.short(path: "a.run", block: 12)
        #expect(short.description.hasPrefix("index run a.run, block 12: "))
        #expect(short.description.hasSuffix("; run `annals verify`"))
        let malformed = IndexBlockError.malformed(path: "a.run", block: 1, reason: "entry count 900 exceeds 170")
        #expect(malformed.description == "index run a.run, block 1: entry count 900 exceeds 170; run `annals verify`")
    }

    @Test("entries never straddle blocks: 170 entries of 24 bytes fill a block and the 171st starts the next")
    func entriesNeverStraddle() throws {
        var writer = IndexBlockWriter()
        func entry(_ index: Int) -> [UInt8] { (0..<24).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) } }
        for index in 0..<170 {
            let location = writer.append(entry(index))
            #expect(location == IndexBlockWriter.Location(block: 0, offset: index * 24))
        }
        #expect(writer.blocksWritten == 0)
        #expect(writer.bytesInBlock == 4_080)
        let next = writer.append(entry(170))
        #expect(next == IndexBlockWriter.Location(block: 1, offset: 0))
        #expect(writer.blocksWritten == 1)
        #expect(writer.sealed.count == IndexBlock.size)
        writer.finishBlock()
        #expect(writer.blocksWritten == 2)
        #expect(writer.sealed.count == 2 * IndexBlock.size)

        let first = try IndexBlock.verifiedPayload(of: Array(writer.sealed[..<4096]), path: "r", block: 0)
        #expect(Array(first[..<24]) == entry(0))
        #expect(Array(first[4_056..<4_080]) == entry(169))
        #expect(first[4_080...].allSatisfy { $0 == 0 })
        let second = try IndexBlock.verifiedPayload(of: Array(writer.sealed[4096...]), path: "r", block: 1)
        #expect(Array(second[..<24]) == entry(170))
        #expect(second[24...].allSatisfy { $0 == 0 })
    }

    @Test("finishing an empty block writes nothing, and removing sealed blocks keeps the block count")
    func finishAndRemove() {
        var writer = IndexBlockWriter()
        writer.finishBlock()
        #expect(writer.blocksWritten == 0)
        #expect(writer.sealed.isEmpty)
        writer.beginEntry(size: 13)
        writer.put(UInt8(1))
        writer.put(UInt32(2))
        writer.put(UInt64(3))
        writer.finishBlock()
        writer.finishBlock()
        #expect(writer.blocksWritten == 1)
        writer.removeSealed()
        #expect(writer.sealed.isEmpty)
        let location = writer.append([9, 9])
        #expect(location == IndexBlockWriter.Location(block: 1, offset: 0))
        // An entry that fits exactly in what is left stays in the block.
        writer.append([UInt8](repeating: 7, count: IndexBlock.payloadSize - 2))
        #expect(writer.blocksWritten == 1)
        #expect(writer.bytesLeftInBlock == 0)
        writer.finishBlock()
        #expect(writer.blocksWritten == 2)
        #expect(IndexBlock.verify(writer.sealed))
    }

    @Test("fields written by the block writer read back, and every read out of range answers nil")
    func fieldReaders() throws {
        let id = UUID()
        var writer = IndexBlockWriter()
        writer.beginEntry(size: 31)
        writer.put(UInt8(0xAB))
        writer.put(UInt16(0xBEEF))
        writer.put(UInt32(0xDEAD_BEEF))
        writer.put(UInt64(0x0123_4567_89AB_CDEF))
        writer.put(id)
        writer.finishBlock()
        let payload = try IndexBlock.verifiedPayload(of: writer.sealed, path: "r", block: 0)
        #expect(IndexBlock.u8(in: payload, at: 0) == 0xAB)
        #expect(IndexBlock.u16(in: payload, at: 1) == 0xBEEF)
        #expect(IndexBlock.u32(in: payload, at: 3) == 0xDEAD_BEEF)
        #expect(IndexBlock.u64(in: payload, at: 7) == 0x0123_4567_89AB_CDEF)
        #expect(IndexBlock.uuid(in: payload, at: 15) == id)
        #expect(Array(payload[1..<3]) == [0xEF, 0xBE])  // little-endian

        let end = payload.count
        #expect(IndexBlock.u8(in: payload, at: end - 1) == 0)
        #expect(IndexBlock.u64(in: payload, at: end - 8) == 0)
        #expect(IndexBlock.uuid(in: payload, at: end - 16) != nil)
        for offset in [-1, end, Int.min, Int.max, Int.max - 1] {
            #expect(IndexBlock.u8(in: payload, at: offset) == nil)
        }
        for offset in [-1, end - 1, Int.min, Int.max, Int.max - 1] {
            #expect(IndexBlock.u16(in: payload, at: offset) == nil)
        }
        for offset in [-1, end - 3, Int.min, Int.max, Int.max - 3] {
            #expect(IndexBlock.u32(in: payload, at: offset) == nil)
        }
        for offset in [-1, end - 7, Int.min, Int.max, Int.max - 7] {
            #expect(IndexBlock.u64(in: payload, at: offset) == nil)
        }
        for offset in [-1, end - 15, Int.min, Int.max, Int.max - 15] {
            #expect(IndexBlock.uuid(in: payload, at: offset) == nil)
        }
        let empty: [UInt8] = []
        #expect(IndexBlock.u8(in: empty, at: 0) == nil)
        #expect(IndexBlock.u64(in: empty, at: 0) == nil)

        let cached = CachedBlock(bytes: payload)
        #expect(cached.u16(at: 1) == 0xBEEF)
        #expect(cached.u64(at: 7) == 0x0123_4567_89AB_CDEF)
        #expect(cached.uuid(at: 15) == id)
        #expect(cached.u32(at: end - 2) == nil)
    }

    @Test("reading a run's blocks through FileIO verifies them and names a short or damaged block")
    func readThroughFileIO() throws {
        let directory = TemporaryDirectory("index-block")
        defer { directory.remove() }
        let io = PosixFileIO()
        try io.makeDirectory(directory.path)
        let path = directory.path + "/00000000000000000001.run"
        var writer = IndexBlockWriter()
        for index in 0..<300 { writer.append((0..<24).map { UInt8(truncatingIfNeeded: index + $0) }) }
        writer.finishBlock()
        #expect(writer.blocksWritten == 2)
        let fd = try io.open(path, create: true)
        defer { io.close(fd) }
        try io.write(fd, writer.sealed + [1, 2, 3], at: 0)

        let first = try IndexBlock.read(block: 0, of: fd, path: path, io: io)
        #expect(first == Array(writer.sealed[..<IndexBlock.payloadSize]))
        #expect(try IndexBlock.read(block: 1, of: fd, path: path, io: io).count == IndexBlock.payloadSize)
        for block: UInt64 in [2, 3, UInt64.max, UInt64.max / 4096] {
            #expect(throws: IndexBlockError.short(path: path, block: block)) {
                try IndexBlock.read(block: block, of: fd, path: path, io: io)
            }
        }
        try io.write(fd, [0xFF], at: 4_096 + 100)
        #expect(throws: IndexBlockError.damaged(path: path, block: 1)) {
            try IndexBlock.read(block: 1, of: fd, path: path, io: io)
        }
    }
}

@Suite("Block cache")
struct BlockCacheTests {
    /// The bytes charged for one full payload.
    private static let cost = IndexBlock.payloadSize + BlockCache.entryOverhead

    /// A full payload that names its key, so a reader can tell which load produced it.
    private static func payload(file: UInt64, block: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: file &+ block), count: IndexBlock.payloadSize)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: file >> UInt64(8 * index))
            bytes[8 + index] = UInt8(truncatingIfNeeded: block >> UInt64(8 * index))
        }
        return bytes
    }

    @discardableResult
    private static func read(
        _ cache: BlockCache,
        file: UInt64,
        block: UInt64,
        priority: BlockCache.Priority = .low
    ) -> CachedBlock {
        cache.block(file: file, block: block, priority: priority) { payload(file: file, block: block) }
    }

    @Test("10,000 distinct blocks through a 1 MiB cache never take it over its capacity")
    func boundedByBytes() {
        let cache = BlockCache(capacityBytes: 1 << 20)
        for index in 0..<10_000 {
            let file = UInt64(index / 100)
            let block = UInt64(index % 100)
            let cached = Self.read(cache, file: file, block: block)
            #expect(cached.u64(at: 0) == file && cached.u64(at: 8) == block)
            #expect(cache.residentBytes <= cache.capacityBytes, "after insert \(index)")
        }
        #expect(cache.residentBytes == cache.count * Self.cost)
        #expect(cache.count > 200)  // 16 shards of 64 KiB hold 15 blocks each
        #expect(cache.misses == 10_000)
        #expect(cache.hits == 0)
        #expect(cache.evictions == 10_000 - cache.count)
    }

    @Test("a block used again stays, and the least recently used block goes first")
    func leastRecentlyUsedFirst() {
        let cache = BlockCache(capacityBytes: 4 * Self.cost, shards: 1)
        for block: UInt64 in 0..<4 { Self.read(cache, file: 1, block: block) }
        Self.read(cache, file: 1, block: 0)  // 0 is now the most recently used
        Self.read(cache, file: 1, block: 4)
        #expect(cache.contains(file: 1, block: 0))
        #expect(!cache.contains(file: 1, block: 1))
        Self.read(cache, file: 1, block: 5)
        #expect(!cache.contains(file: 1, block: 2))
        #expect(cache.contains(file: 1, block: 3))
        #expect(cache.contains(file: 1, block: 0))
        #expect(cache.count == 4)
        #expect(cache.evictions == 2)
        #expect(cache.hits == 1)
    }

    @Test("high-priority blocks survive a flood of low-priority ones as long as they fit")
    func priorities() {
        let cache = BlockCache(capacityBytes: 10 * Self.cost, shards: 1)
        for block: UInt64 in 0..<6 { Self.read(cache, file: 1, block: block, priority: .high) }
        for block: UInt64 in 0..<1_000 { Self.read(cache, file: 2, block: block) }
        for block: UInt64 in 0..<6 { #expect(cache.contains(file: 1, block: block)) }
        #expect(cache.count == 10)
        #expect(cache.residentBytes == cache.capacityBytes)

        // A high-priority newcomer displaces data blocks before any high-priority one.
        for block: UInt64 in 6..<10 { Self.read(cache, file: 1, block: block, priority: .high) }
        for block: UInt64 in 0..<10 { #expect(cache.contains(file: 1, block: block)) }
        // Full of high-priority blocks: a data block is returned but not cached, and displaces nothing.
        let uncached = Self.read(cache, file: 3, block: 0)
        #expect(uncached.u64(at: 0) == 3)
        #expect(!cache.contains(file: 3, block: 0))
        #expect(cache.count == 10)
        // Only a high-priority newcomer evicts a high-priority block: the least recently used one.
        Self.read(cache, file: 1, block: 0, priority: .high)
        Self.read(cache, file: 1, block: 10, priority: .high)
        #expect(cache.contains(file: 1, block: 0))
        #expect(!cache.contains(file: 1, block: 1))
        #expect(cache.residentBytes <= cache.capacityBytes)
    }

    @Test("a block larger than a shard's share is returned without being cached")
    func oversizedBlock() {
        let cache = BlockCache(capacityBytes: 2 * Self.cost, shards: 4)
        let block = Self.read(cache, file: 1, block: 1)
        #expect(block.bytes == Self.payload(file: 1, block: 1))
        #expect(cache.count == 0)
        #expect(cache.residentBytes == 0)
        let tiny: [UInt8] = [1]
        let empty = BlockCache(capacityBytes: 0)
        #expect(empty.block(file: 0, block: 0, priority: .high) { tiny }.bytes == tiny)
        #expect(empty.count == 0)
    }

    @Test("removeAll(file:) drops that run's blocks and their bytes, and no other run's")
    func removeFile() {
        let cache = BlockCache(capacityBytes: 256 * Self.cost, shards: 4)
        for file: UInt64 in 1...3 {
            for block: UInt64 in 0..<10 {
                Self.read(cache, file: file, block: block, priority: file == 2 ? .high : .low)
            }
        }
        #expect(cache.count == 30)
        cache.removeAll(file: 2)
        #expect(cache.count == 20)
        #expect(cache.residentBytes == 20 * Self.cost)
        for block: UInt64 in 0..<10 {
            #expect(!cache.contains(file: 2, block: block))
            #expect(cache.contains(file: 1, block: block))
            #expect(cache.contains(file: 3, block: block))
        }
        #expect(cache.evictions == 0)
        // The freed slots are reused.
        for block: UInt64 in 0..<10 { Self.read(cache, file: 4, block: block) }
        #expect(cache.count == 30)
        #expect(cache.residentBytes == 30 * Self.cost)
    }

    @Test("a hit returns the cached block itself and does not call load")
    func hitDoesNotLoad() {
        let cache = BlockCache(capacityBytes: 1 << 20)
        var loads = 0
        let first = cache.block(file: 5, block: 6, priority: .low) {
            loads += 1
            return Self.payload(file: 5, block: 6)
        }
        let second = cache.block(file: 5, block: 6, priority: .low) {
            loads += 1
            return []
        }
        #expect(loads == 1)
        #expect(first === second)
        #expect(cache.hits == 1)
        #expect(cache.misses == 1)
    }

    @Test("a failing load caches nothing and its error reaches the caller")
    func failingLoad() {
        let cache = BlockCache(capacityBytes: 1 << 20)
        let error = IndexBlockError.damaged(path: "r.run", block: 4)
        #expect(throws: error) {
            try cache.block(file: 1, block: 4, priority: .high) { throw error }
        }
        #expect(!cache.contains(file: 1, block: 4))
        #expect(cache.residentBytes == 0)
    }

    @Test("when two loads of one block race, both callers get the block that was cached first")
    func racingLoads() {
        let cache = BlockCache(capacityBytes: 1 << 20, shards: 1)
        var inner: CachedBlock?
        // `load` runs outside the lock, so a nested read stands in for another thread finishing first.
        let outer = cache.block(file: 1, block: 1, priority: .low) {
            inner = Self.read(cache, file: 1, block: 1)
            return [0xFF]
        }
        #expect(outer === inner)
        #expect(outer.bytes == Self.payload(file: 1, block: 1))
        #expect(cache.count == 1)
        #expect(cache.residentBytes == Self.cost)
    }

    @Test(
        "8 tasks reading random blocks concurrently stay within capacity and get the right bytes",
        .timeLimit(.minutes(1)))
    func concurrentReaders() async {
        let cache = BlockCache(capacityBytes: 1 << 20, shards: 16)
        let failures = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var generator = SystemRandomNumberGenerator()
                    var failures = 0
                    for _ in 0..<2_000 {
                        let file = UInt64.random(in: 0..<4, using: &generator)
                        let block = UInt64.random(in: 0..<200, using: &generator)
                        let priority: BlockCache.Priority = block % 8 == 0 ? .high : .low
                        let cached = Self.read(cache, file: file, block: block, priority: priority)
                        if cached.bytes != Self.payload(file: file, block: block) { failures += 1 }
                        if cache.residentBytes > cache.capacityBytes { failures += 1 }
                    }
                    return failures
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
        #expect(cache.residentBytes <= cache.capacityBytes)
        #expect(cache.residentBytes == cache.count * Self.cost)
        #expect(cache.hits + cache.misses == 16_000)
        #expect(cache.hits > 0)
    }
}
