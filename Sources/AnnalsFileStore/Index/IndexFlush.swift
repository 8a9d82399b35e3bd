import Annals
import Foundation

extension RunInput {
    /// The run a flush writes from the first `count` slots of a frozen memtable and the stream records
    /// it carries.
    ///
    /// `segmentFirstPosition` maps a location's segment index (the store's) to that segment's first
    /// position; the run stores segments by first position, which never changes, so a run stays true
    /// when segments are added or (issue 16) rewritten.
    init(
        memtable: IndexMemtable,
        count: Int,
        storeID: UUID,
        sequence: UInt64,
        segmentFirstPosition: (Int) -> UInt64,
        spanStart: (segment: UInt64, offset: UInt64),
        spanEnd: (segment: UInt64, offset: UInt64)
    ) {
        var segmentIndexes: [Int: UInt64] = [:]
        var segments: [(firstPosition: UInt64, generation: UInt64)] = []
        var locations: [UInt64] = []
        locations.reserveCapacity(count)
        var ids: [(UInt64, UInt64, UInt64)] = []
        ids.reserveCapacity(count)
        var categoryPositions: [UInt64: [UInt64]] = [:]
        var typePositions: [UInt64: [UInt64]] = [:]
        for slot in 0..<count {
            let location = memtable.location(ofSlot: slot)
            let segment = Location.segment(location)
            let local: UInt64
            if let known = segmentIndexes[segment] {
                local = known
            } else {
                local = UInt64(segments.count)
                segmentIndexes[segment] = local
                segments.append((segmentFirstPosition(segment), 0))
            }
            locations.append(local << 40 | UInt64(Location.offset(location)))
            let position = memtable.firstPosition + UInt64(slot)
            let key = memtable.idKey(ofSlot: slot)
            ids.append((key.high, key.low, position))
            categoryPositions[memtable.categoryHash(ofSlot: slot), default: []].append(position)
            typePositions[memtable.typeHash(ofSlot: slot), default: []].append(position)
        }
        ids.sort { ($0.0, $0.1) < ($1.0, $1.1) }

        var streams: [StreamGroup] = []
        var directory: [RunFormat.DirectoryRecord] = []
        for record in memtable.streams.values {
            if let first = record.firstRevisionHere {
                let slots = memtable.slots(ofStream: record.number, from: first, visible: count, limit: count)
                if !slots.isEmpty {
                    streams.append(
                        StreamGroup(
                            number: record.number, firstRevision: memtable.revision(ofSlot: slots[0]),
                            positions: slots.map { memtable.firstPosition + UInt64($0) }))
                }
            }
            directory.append(RunFormat.DirectoryRecord(record))
        }
        streams.sort { $0.number < $1.number }
        directory.sort { ($0.nameHash, $0.number) < ($1.nameHash, $1.number) }

        self.init(
            storeID: storeID, sequence: sequence, level: 0, firstPosition: memtable.firstPosition,
            segments: segments, locations: locations, ids: ids, streams: streams,
            categories: categoryPositions.map { HashGroup(hash: $0.key, positions: $0.value) }.sorted {
                $0.hash < $1.hash
            },
            types: typePositions.map { HashGroup(hash: $0.key, positions: $0.value) }.sorted { $0.hash < $1.hash },
            directory: directory, firstStreamNumber: memtable.firstStreamNumber, created: memtable.createdStreams,
            spanStart: spanStart, spanEnd: spanEnd)
    }
}

extension RunFormat.DirectoryRecord {
    /// Sorted keys, so that a run's bytes depend only on its contents (custom metadata is a dictionary).
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    /// The directory record of a memtable's stream record: the stream's state at the run's end, since a
    /// flush covers every slot of its memtable.
    init(_ record: IndexMemtable.Stream) {
        var flags: UInt8 = 0
        if record.state.isDeleted { flags |= RunFormat.softDeletedFlag }
        if record.state.isTombstoned { flags |= RunFormat.tombstonedFlag }
        let metadata: [UInt8] =
            record.state.metadata == StreamMetadata()
            ? [] : ((try? Self.encoder.encode(record.state.metadata)).map { Array($0) } ?? [])
        self.init(
            nameHash: IndexHash.key(.stream, record.name.rawValue), number: record.number,
            eventCount: record.state.eventCount, firstPosition: record.firstPosition ?? .max,
            lastPosition: record.lastPosition ?? .max, flags: flags, name: record.name.rawValue, metadata: metadata)
    }

    /// The stream record a run's directory entry describes.
    func stream() throws -> IndexMemtable.Stream {
        let metadata =
            self.metadata.isEmpty
            ? StreamMetadata() : try JSONDecoder().decode(StreamMetadata.self, from: Data(self.metadata))
        return IndexMemtable.Stream(
            name: try StreamName(name), number: number,
            state: StreamState(
                eventCount: eventCount, metadata: metadata, isDeleted: flags & RunFormat.softDeletedFlag != 0,
                isTombstoned: flags & RunFormat.tombstonedFlag != 0),
            firstPosition: firstPosition == .max ? nil : firstPosition,
            lastPosition: lastPosition == .max ? nil : lastPosition)
    }
}
