import Annals
import AnnalsTestSupport
import Foundation
import Testing

@testable import AnnalsFileStore

/// A memtable filled at random, with what each lookup must answer kept beside it.
private struct FilledMemtable {
    let memtable: IndexMemtable
    var ids: [UUID] = []
    var numbers: [StreamName: UInt64] = [:]
    var streamPositions: [UInt64: [UInt64]] = [:]
    var categoryPositions: [UInt64: [UInt64]] = [:]
    var typePositions: [UInt64: [UInt64]] = [:]
    var names: [UInt64: StreamName] = [:]

    /// `events` events over `streams` streams (stream numbers from 1,000), from position 5,000, in
    /// segments of 700 events; some streams deleted, tombstoned, or with metadata too large for a block.
    init(events: Int, streams: Int, seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        memtable = IndexMemtable(capacity: events + 10)
        memtable.reset(firstPosition: 5_000, firstStreamNumber: 1_000)
        let types = ["Opened", "Deposited", "Withdrawn", "Closed", "Renamed"]
        var offset: Int64 = 0
        for index in 0..<events {
            let name = try StreamName(
                "cat\(Int.random(in: 0..<7, using: &random))-\(Int.random(in: 0..<streams, using: &random))")
            let number: UInt64
            if let known = numbers[name] {
                number = known
            } else {
                number = memtable.createStream(name, nameHash: IndexHash.key(.stream, name.rawValue))
                numbers[name] = number
                names[number] = name
            }
            var bytes = (
                UInt64.random(in: 0...UInt64.max, using: &random), UInt64.random(in: 0...UInt64.max, using: &random)
            )
            let id = withUnsafeBytes(of: &bytes) { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
            let type = types[Int.random(in: 0..<types.count, using: &random)]
            let position = 5_000 + UInt64(index)
            offset += 97
            memtable.append(
                id: id, stream: number, location: Location.pack(segment: 3 + index / 700, offset: offset),
                categoryHash: IndexHash.key(.category, name.category), typeHash: IndexHash.key(.eventType, type))
            ids.append(id)
            streamPositions[number, default: []].append(position)
            categoryPositions[IndexHash.key(.category, name.category), default: []].append(position)
            typePositions[IndexHash.key(.eventType, type), default: []].append(position)
        }
        let sorted = numbers.values.sorted()
        for (index, number) in sorted.enumerated() {
            guard var state = memtable.streams[number]?.state else { continue }
            switch index % 9 {
            case 1: state = StreamRules.deleting(state, tombstone: false)
            case 2: state = StreamRules.deleting(state, tombstone: true)
            case 3:
                state.metadata = StreamMetadata(
                    maxCount: 5, custom: ["note": .string(String(repeating: "x", count: 5_000))])
            case 4: state.metadata = StreamMetadata(maxAge: 60)
            default: break
            }
            memtable.setState(state, ofStream: number)
        }
    }

    func segmentFirstPosition(_ segment: Int) -> UInt64 { UInt64(segment) * 1_000 }

    func input(sequence: UInt64 = 7) -> RunInput {
        RunInput(
            memtable: memtable, count: memtable.count, storeID: storeID, sequence: sequence,
            segmentFirstPosition: segmentFirstPosition, spanStart: (3_000, 40), spanEnd: (7_000, 999))
    }

    let storeID = UUID(uuid: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))
}

@Suite("Index runs and manifest")
struct IndexRunTests {
    @Test("a run written from a memtable answers every lookup the memtable answers, and nothing more")
    func runMatchesMemtable() throws {
        let directory = TemporaryDirectory("run")
        defer { directory.remove() }
        let io = PosixFileIO()
        try io.makeDirectory(directory.path)
        let filled = try FilledMemtable(events: 6_000, streams: 400, seed: 0x5EED)
        let path = directory.path + "/" + RunFormat.fileName(7)
        let written = try RunWriter.write(filled.input(), to: path, io: io)
        let cache = BlockCache(capacityBytes: 256 * 1024)
        let reader = try RunReader(path: path, storeID: filled.storeID, io: io, cache: cache)
        #expect(reader.header == written.header)
        #expect(reader.headerCRC == written.headerCRC)
        #expect(reader.fileLength == written.fileLength)
        #expect(reader.fileLength % UInt64(IndexBlock.size) == 0)
        #expect(reader.header.firstPosition == 5_000 && reader.header.endPosition == 11_000)

        // Locations and ids.
        for slot in 0..<filled.memtable.count {
            let position = 5_000 + UInt64(slot)
            let location = filled.memtable.location(ofSlot: slot)
            let found = try reader.location(of: position)
            #expect(found.segmentFirstPosition == filled.segmentFirstPosition(Location.segment(location)))
            #expect(found.offset == UInt64(Location.offset(location)))
            #expect(try reader.position(of: IndexMemtable.split(filled.ids[slot])) == position)
        }
        var random = SeededRandom(seed: 99)
        for _ in 0..<5_000 {
            let absent = (
                UInt64.random(in: 0...UInt64.max, using: &random), UInt64.random(in: 0...UInt64.max, using: &random)
            )
            #expect(try reader.position(of: absent) == nil)
        }

        // Streams: positions by revision, directory records, created names.
        for (number, positions) in filled.streamPositions {
            let group = try #require(try reader.streamGroup(number))
            #expect(group.first == 0)
            #expect(group.count == UInt64(positions.count))
            let read = try (0..<group.count).map { try reader.position(.streamPositions, entry: group.firstEntry + $0) }
            #expect(read == positions)
            let name = try #require(filled.names[number])
            let record = try #require(
                try reader.directoryRecord(hash: IndexHash.key(.stream, name.rawValue), name: name.rawValue))
            let expected = try #require(filled.memtable.streams[number])
            let stream = try record.stream()
            #expect(stream.name == expected.name && stream.number == number)
            #expect(stream.state == expected.state)
            #expect(stream.firstPosition == positions.first && stream.lastPosition == positions.last)
            #expect(try reader.createdHash(number) == IndexHash.key(.stream, name.rawValue))
        }
        #expect(try reader.streamGroup(999) == nil)
        #expect(try reader.streamGroup(5_000) == nil)
        #expect(try reader.createdHash(999) == nil)
        for missing in ["cat1-nobody", "other", "cat3-400"] {
            #expect(try reader.directoryRecord(hash: IndexHash.key(.stream, missing), name: missing) == nil)
        }

        // Categories and event types.
        for (section, groups) in [
            (RunFormat.Section.categorySummaries, filled.categoryPositions), (.typeSummaries, filled.typePositions),
        ] {
            let positions: RunFormat.Section = section == .categorySummaries ? .categoryPositions : .typePositions
            for (hash, expected) in groups {
                let group = try #require(try reader.hashGroup(section, hash: hash))
                let read = try (0..<group.count).map { try reader.position(positions, entry: group.firstEntry + $0) }
                #expect(read == expected)
            }
            #expect(try reader.hashGroup(section, hash: IndexHash.key(.category, "absent")) == nil)
        }
        #expect(cache.residentBytes <= cache.capacityBytes)
    }

    @Test("the same memtable written twice gives the same bytes")
    func deterministic() throws {
        let directory = TemporaryDirectory("run")
        defer { directory.remove() }
        let io = PosixFileIO()
        try io.makeDirectory(directory.path)
        let filled = try FilledMemtable(events: 1_000, streams: 50, seed: 7)
        _ = try RunWriter.write(filled.input(), to: directory.path + "/a.run", io: io)
        _ = try RunWriter.write(filled.input(), to: directory.path + "/b.run", io: io)
        let first = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/a.run"))
        let second = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/b.run"))
        #expect(first == second)
    }

    @Test("a flipped bit in any block of a run fails the lookup that reads it, naming the file and block")
    func damagedBlock() throws {
        let directory = TemporaryDirectory("run")
        defer { directory.remove() }
        let io = PosixFileIO()
        try io.makeDirectory(directory.path)
        let filled = try FilledMemtable(events: 2_000, streams: 100, seed: 11)
        let path = directory.path + "/" + RunFormat.fileName(7)
        let written = try RunWriter.write(filled.input(), to: path, io: io)
        let blocks = written.fileLength / UInt64(IndexBlock.size)
        var damagedSomewhere = 0
        for block in 1..<blocks {
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[Int(block) * IndexBlock.size + 100] ^= 0x10
            let copy = directory.path + "/damaged.run"
            try Data(bytes).write(to: URL(fileURLWithPath: copy))
            do {
                let reader = try RunReader(
                    path: copy, storeID: filled.storeID, io: io, cache: BlockCache(capacityBytes: 1 << 20))
                for slot in 0..<filled.memtable.count {
                    _ = try reader.location(of: 5_000 + UInt64(slot))
                    _ = try reader.position(of: IndexMemtable.split(filled.ids[slot]))
                }
                for (number, name) in filled.names {
                    _ = try reader.streamGroup(number)
                    _ = try reader.directoryRecord(hash: IndexHash.key(.stream, name.rawValue), name: name.rawValue)
                }
                for hash in filled.categoryPositions.keys { _ = try reader.hashGroup(.categorySummaries, hash: hash) }
                for hash in filled.typePositions.keys { _ = try reader.hashGroup(.typeSummaries, hash: hash) }
            } catch let error as IndexBlockError {
                #expect(error.path == copy)
                #expect(error.block == block)
                damagedSomewhere += 1
            }
        }
        // Every block but the position groups' and overflow's is read by the lookups above; those are read
        // by the group reads of the first test. At least the fenced, filter, location and id blocks fail.
        #expect(damagedSomewhere >= Int(blocks) / 2)
        var header = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        header[10] ^= 1
        try Data(header).write(to: URL(fileURLWithPath: path))
        #expect(throws: IndexBlockError.damaged(path: path, block: 0)) {
            _ = try RunReader(path: path, storeID: filled.storeID, io: io, cache: BlockCache(capacityBytes: 1 << 20))
        }
    }

    @Test("a manifest round-trips, and a damaged, foreign or inconsistent one is refused with its reason")
    func manifest() throws {
        let storeID = UUID()
        let manifest = IndexManifest(
            storeID: storeID, sequence: 3, durableHead: 300, endSegmentFirstPosition: 200, endOffset: 4_096,
            streamsNumbered: 12,
            segments: [
                .init(firstPosition: 0, generation: 0, length: 65_536),
                .init(firstPosition: 200, generation: 0, length: 4_096),
            ],
            runs: [
                .init(sequence: 1, level: 1, firstPosition: 0, endPosition: 256, fileLength: 40_960, headerCRC: 7),
                .init(sequence: 2, level: 0, firstPosition: 256, endPosition: 300, fileLength: 8_192, headerCRC: 9),
            ])
        let bytes = manifest.encoded()
        #expect(try IndexManifest.decode(bytes, storeID: storeID) == manifest)
        #expect(throws: IndexManifest.Problem.otherStore(storeID)) { try IndexManifest.decode(bytes, storeID: UUID()) }
        for index in stride(from: 0, to: bytes.count, by: 5) {
            var damaged = bytes
            damaged[index] ^= 0x04
            #expect(throws: IndexManifest.Problem.self) { try IndexManifest.decode(damaged, storeID: storeID) }
        }
        #expect(throws: IndexManifest.Problem.truncated) {
            try IndexManifest.decode(Array(bytes.prefix(40)), storeID: storeID)
        }
        var gap = manifest
        gap.runs[1].firstPosition = 257
        #expect(throws: IndexManifest.Problem.self) { try IndexManifest.decode(gap.encoded(), storeID: storeID) }
        var short = manifest
        short.durableHead = 299
        #expect(throws: IndexManifest.Problem.self) { try IndexManifest.decode(short.encoded(), storeID: storeID) }

        let directory = TemporaryDirectory("manifest")
        defer { directory.remove() }
        let io = PosixFileIO()
        try io.makeDirectory(directory.path)
        #expect(try IndexManifest.read(indexDirectory: directory.path, storeID: storeID, io: io) == nil)
        try manifest.write(indexDirectory: directory.path, io: io)
        #expect(try IndexManifest.read(indexDirectory: directory.path, storeID: storeID, io: io) == manifest)
        #expect(!io.fileExists(directory.path + "/manifest.tmp"))
    }

    @Test("a reused memtable's id table holds only its own ids, however often it is reset", .timeLimit(.minutes(1)))
    func resetLeavesNoStaleIDs() throws {
        let memtable = IndexMemtable(capacity: 1_000)
        var random = SeededRandom(seed: 42)
        for round in 0..<40 {
            memtable.reset(firstPosition: UInt64(round) * 1_000, firstStreamNumber: UInt64(round))
            #expect(memtable.idTableEntries == 0)
            let number = memtable.createStream(try StreamName("s-\(round)"), nameHash: UInt64(round))
            for _ in 0..<1_000 {
                var bytes = (
                    UInt64.random(in: 0...UInt64.max, using: &random), UInt64.random(in: 0...UInt64.max, using: &random)
                )
                let id = withUnsafeBytes(of: &bytes) { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
                memtable.append(id: id, stream: number, location: 0, categoryHash: 1, typeHash: 2)
            }
            #expect(memtable.idTableEntries == 1_000)
        }
    }

    @Test("a memtable finds every id it holds, walks a stream's chain, and is empty again after a reset")
    func memtable() throws {
        let filled = try FilledMemtable(events: 3_000, streams: 30, seed: 3)
        let memtable = filled.memtable
        for (slot, id) in filled.ids.enumerated() {
            #expect(memtable.slot(of: id) == slot)
            #expect(memtable.id(ofSlot: slot) == id)
        }
        for (number, positions) in filled.streamPositions {
            let slots = memtable.slots(ofStream: number, from: 0, visible: memtable.count, limit: .max)
            #expect(slots.map { 5_000 + UInt64($0) } == positions)
            let tail = memtable.slots(
                ofStream: number, from: UInt64(positions.count / 2), visible: memtable.count, limit: 3)
            #expect(tail.map { 5_000 + UInt64($0) } == Array(positions.dropFirst(positions.count / 2).prefix(3)))
            // Slots not yet published are not returned.
            let visible = memtable.slots(ofStream: number, from: 0, visible: 1_500, limit: .max)
            #expect(visible.map { 5_000 + UInt64($0) } == positions.filter { $0 < 6_500 })
        }
        memtable.reset(firstPosition: 8_000, firstStreamNumber: 2_000)
        #expect(memtable.count == 0 && memtable.streams.isEmpty && memtable.createdStreams.isEmpty)
        for id in filled.ids.prefix(100) { #expect(memtable.slot(of: id) == nil) }
    }
}
