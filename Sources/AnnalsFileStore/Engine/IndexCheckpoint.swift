import Annals
import Foundation

/// The persisted index: the stream table and every event's location, as of a position of the log, so
/// that opening a large store reads this file and scans only the log after it.
///
/// Written when the store closes (to `index/checkpoint.idx.tmp`, flushed, renamed). It is a cache:
/// recovery uses it only when it matches the log exactly — same store, the segment it names exists and
/// holds a record boundary at its end offset — and otherwise scans the whole log. Layout
/// (little-endian):
///
/// ```
/// "ANNALSIX", u32 version, store id (16), u64 head, u32 segment index, u64 end offset in that segment,
/// u32 type count, types (u16 length + UTF-8)…,
/// u32 stream count, streams in creation order (u16 length + name, u8 flags: 1 deleted, 2 tombstoned,
///     u32 length + metadata JSON)…,
/// head × (u32 stream index, u32 type index, 16-byte id, u64 location),
/// u32 CRC32C of everything before it
/// ```
struct IndexCheckpoint {
    static let directoryName = "index"
    static let fileName = "checkpoint.idx"
    static let magic: [UInt8] = Array("ANNALSIX".utf8)
    static let version: UInt32 = 1

    var head: UInt64
    var segmentIndex: Int
    var endOffset: Int64

    /// Writes the checkpoint for `state`, whose log ends at `endOffset` of segment `segmentIndex`.
    static func write(
        _ index: MemoryIndex,
        storeID: UUID,
        segmentIndex: Int,
        endOffset: Int64,
        directory: String,
        io: any FileIO
    ) throws {
        let table = index.table
        let head = Int(table.durableHead)
        var typeNames: [String] = []
        var typeIndex = [UInt32](repeating: 0, count: head)
        for (type, positions) in table.eventTypes {
            for position in positions where position < UInt64(head) {
                typeIndex[Int(position)] = UInt32(typeNames.count)
            }
            typeNames.append(type)
        }
        var streamIndex = [UInt32](repeating: 0, count: head)
        var ids = [UUID](repeating: UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), count: head)
        for (index, name) in table.streamOrder.enumerated() {
            for position in table.streams[name]?.positions ?? [] where position < UInt64(head) {
                streamIndex[Int(position)] = UInt32(index)
            }
        }
        for (id, position) in table.eventIDs where position < UInt64(head) { ids[Int(position)] = id }

        let indexDirectory = directory + "/" + directoryName
        try io.makeDirectory(indexDirectory)
        let path = indexDirectory + "/" + fileName
        let temporary = path + ".tmp"
        let fd = try io.open(temporary, create: true)
        defer { io.close(fd) }
        try io.truncate(fd, to: 0)
        var writer = ByteWriter(capacity: 1 << 20)
        var offset: Int64 = 0
        var crc: UInt32 = 0
        func spill(force: Bool = false) throws {
            guard force || writer.count >= 1 << 20 else { return }
            crc = CRC32C.checksum(writer.bytes, continuing: crc)
            try io.write(fd, writer.bytes, at: offset)
            offset += Int64(writer.count)
            writer.reset()
        }
        writer.put(bytes: magic)
        writer.put(version)
        withUnsafeBytes(of: storeID.uuid) { writer.put(bytes: $0) }
        writer.put(UInt64(head))
        writer.put(UInt32(segmentIndex))
        writer.put(UInt64(endOffset))
        writer.put(UInt32(typeNames.count))
        for type in typeNames { putName(type, &writer) }
        writer.put(UInt32(table.streamOrder.count))
        for name in table.streamOrder {
            let record = table.streams[name]
            putName(name.rawValue, &writer)
            writer.put(UInt8((record?.isDeleted == true ? 1 : 0) | (record?.isTombstoned == true ? 2 : 0)))
            let metadata = (try? JSONEncoder().encode(record?.metadata ?? StreamMetadata())) ?? Data("{}".utf8)
            writer.put(UInt32(metadata.count))
            writer.put(bytes: metadata)
            try spill()
        }
        for position in 0..<head {
            writer.put(streamIndex[position])
            writer.put(typeIndex[position])
            withUnsafeBytes(of: ids[position].uuid) { writer.put(bytes: $0) }
            writer.put(index.locations[position])
            try spill()
        }
        try spill(force: true)
        writer.put(crc)
        try io.write(fd, writer.bytes, at: offset)
        try io.sync(fd)
        try io.rename(temporary, to: path)
        try io.syncDirectory(indexDirectory)
    }

    private static func putName(_ name: String, _ writer: inout ByteWriter) {
        writer.put(UInt16(name.utf8.count))
        writer.put(bytes: name.utf8)
    }

    /// Loads a checkpoint into a fresh table and locations; nil when there is none or it is damaged or
    /// belongs to another store.
    static func load(directory: String, storeID: UUID, io: any FileIO) -> (IndexCheckpoint, EngineState)? {
        let path = directory + "/" + directoryName + "/" + fileName
        guard io.fileExists(path), let fd = try? io.open(path, create: false) else { return nil }
        defer { io.close(fd) }
        guard let size = try? io.size(fd), size >= 64, size < Int64(Int.max),
            let bytes = try? io.read(fd, count: Int(size), at: 0), bytes.count == Int(size)
        else { return nil }
        return bytes.withUnsafeBytes { buffer -> (IndexCheckpoint, EngineState)? in
            let body = UnsafeRawBufferPointer(rebasing: buffer[0..<(buffer.count - 4)])
            guard CRC32C.checksum(body) == ByteReader.u32(buffer, at: buffer.count - 4) else { return nil }
            var reader = ByteReader(body)
            do {
                guard try reader.bytes(8).elementsEqual(magic), try reader.u32() == version else { return nil }
                guard try reader.bytes(16).elementsEqual(withUnsafeBytes(of: storeID.uuid) { Array($0) }) else {
                    return nil
                }
                let head = try reader.u64()
                let segmentIndex = Int(try reader.u32())
                let endOffset = try reader.u64()
                guard head <= UInt64(reader.remaining / 32), endOffset <= UInt64(Int64.max) else { return nil }
                var types: [String] = []
                for _ in 0..<Int(try reader.u32()) {
                    guard types.count < reader.remaining else { return nil }
                    types.append(try name(&reader))
                }
                let index = MemoryIndex()
                for _ in 0..<Int(try reader.u32()) {
                    guard reader.remaining > 0 else { return nil }
                    let stream = try StreamName(allowingSystemName: try name(&reader))
                    let flags = try reader.u8()
                    let metadata = try JSONDecoder().decode(
                        StreamMetadata.self, from: Data(try reader.bytes(Int(try reader.u32()))))
                    index.table.restoreStream(
                        stream, metadata: metadata, isDeleted: flags & 1 != 0, isTombstoned: flags & 2 != 0)
                }
                guard UInt64(reader.remaining) == head * 32 else { return nil }
                let count = Int(head)
                var streamIndexes = [UInt32](repeating: 0, count: count)
                var typeIndexes = [UInt32](repeating: 0, count: count)
                var ids = [UUID](repeating: UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), count: count)
                index.locations.reserveCapacity(count)
                for offset in 0..<count {
                    streamIndexes[offset] = try reader.u32()
                    typeIndexes[offset] = try reader.u32()
                    var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                    let idBytes = try reader.bytes(16)
                    withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: idBytes) }
                    ids[offset] = UUID(uuid: uuid)
                    index.locations.append(try reader.u64())
                }
                guard
                    index.table.restoreEvents(
                        ids: ids,
                        typeIndexes: typeIndexes,
                        typeNames: types,
                        streamIndexes: streamIndexes
                    )
                else { return nil }
                index.table.durableHead = head
                return (
                    IndexCheckpoint(head: head, segmentIndex: segmentIndex, endOffset: Int64(endOffset)),
                    EngineState(index: index)
                )
            } catch {
                return nil
            }
        }
    }

    private static func name(_ reader: inout ByteReader) throws -> String {
        let length = Int(try reader.u16())
        guard let text = String(validating: try reader.bytes(length), as: UTF8.self) else {
            throw ByteReader.OutOfBounds()
        }
        return text
    }
}
