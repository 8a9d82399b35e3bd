import Foundation

/// The list of the on-disk index's live runs and the part of the log they cover (decision 0007, §2.3).
///
/// `index/manifest` is written after every flush and merge: to `index/manifest.tmp`, flushed, renamed
/// over the old one, and the directory flushed; the runs it names are flushed before it. Like every
/// index file it is derived from the log, so a manifest that is missing, damaged, of another store or
/// of an unknown version only means a rebuild. Layout (little-endian):
///
/// ```
/// "ANNALSMF", u32 index format (1), store id (16), u64 manifest sequence,
/// u64 durable head H, u64 first position of the segment holding the log end, u64 log end offset E,
/// u64 streams numbered,
/// u32 N, N × (u64 first position, u32 generation, u32 0, u64 byte length),
/// u32 R, R × (u64 sequence, u32 level, u32 0, u64 a, u64 b, u64 file length, u32 header CRC, u32 0),
/// u32 CRC32C of everything before it
/// ```
///
/// The last segment's byte length is `E`: the log the runs cover ends there.
struct IndexManifest: Equatable, Sendable {
    static let fileName = "manifest"
    static let magic: [UInt8] = Array("ANNALSMF".utf8)
    static let version: UInt32 = 1

    /// A segment as the manifest saw it.
    struct Segment: Equatable, Sendable {
        var firstPosition: UInt64
        var generation: UInt32
        var length: UInt64
    }

    /// A live run: its file, level, the positions `[a, b)` it covers, and what its file must look like.
    struct Run: Equatable, Sendable {
        var sequence: UInt64
        var level: UInt32
        var firstPosition: UInt64
        var endPosition: UInt64
        var fileLength: UInt64
        var headerCRC: UInt32
    }

    var storeID: UUID
    var sequence: UInt64
    var durableHead: UInt64
    var endSegmentFirstPosition: UInt64
    var endOffset: UInt64
    var streamsNumbered: UInt64
    var segments: [Segment]
    var runs: [Run]

    /// Why a manifest was not used: each means a rebuild of the index from the log.
    enum Problem: Error, Equatable, CustomStringConvertible {
        case truncated
        case badMagic
        case unknownVersion(UInt32)
        case checksumMismatch
        case otherStore(UUID)
        case inconsistent(String)

        var description: String {
            switch self {
            case .truncated: "the manifest is cut short"
            case .badMagic: "the manifest does not start with ANNALSMF"
            case .unknownVersion(let version): "the manifest has index format \(version), this build reads 1"
            case .checksumMismatch: "the manifest's checksum does not match"
            case .otherStore(let id): "the manifest belongs to store \(id)"
            case .inconsistent(let what): "the manifest is inconsistent: \(what)"
            }
        }
    }

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 96 + segments.count * 24 + runs.count * 48)
        writer.put(bytes: Self.magic)
        writer.put(Self.version)
        withUnsafeBytes(of: storeID.uuid) { writer.put(bytes: $0) }
        writer.put(sequence)
        writer.put(durableHead)
        writer.put(endSegmentFirstPosition)
        writer.put(endOffset)
        writer.put(streamsNumbered)
        writer.put(UInt32(segments.count))
        for segment in segments {
            writer.put(segment.firstPosition)
            writer.put(segment.generation)
            writer.put(UInt32(0))
            writer.put(segment.length)
        }
        writer.put(UInt32(runs.count))
        for run in runs {
            writer.put(run.sequence)
            writer.put(run.level)
            writer.put(UInt32(0))
            writer.put(run.firstPosition)
            writer.put(run.endPosition)
            writer.put(run.fileLength)
            writer.put(run.headerCRC)
            writer.put(UInt32(0))
        }
        writer.put(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    /// Decodes a manifest of store `storeID`, checking its checksum and that its runs are in position
    /// order, disjoint and consecutive, and end at `H`.
    static func decode(_ bytes: [UInt8], storeID: UUID) throws(Problem) -> IndexManifest {
        guard bytes.count >= 12 + 16 + 48 + 8 else { throw .truncated }
        guard Array(bytes[0..<8]) == magic else { throw .badMagic }
        let manifest: IndexManifest
        do {
            manifest = try bytes.withUnsafeBytes { buffer in
                var reader = ByteReader(buffer, offset: 8)
                let version = try reader.u32()
                guard version == Self.version else { throw Problem.unknownVersion(version) }
                let stored = ByteReader.u32(buffer, at: buffer.count - 4)
                guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<(buffer.count - 4)])) == stored
                else { throw Problem.checksumMismatch }
                let idBytes = try reader.bytes(16)
                let id = UUID(uuid: idBytes.load(as: uuid_t.self))
                guard id == storeID else { throw Problem.otherStore(id) }
                var manifest = IndexManifest(
                    storeID: id, sequence: try reader.u64(), durableHead: try reader.u64(),
                    endSegmentFirstPosition: try reader.u64(), endOffset: try reader.u64(),
                    streamsNumbered: try reader.u64(), segments: [], runs: [])
                let segmentCount = Int(try reader.u32())
                guard segmentCount <= reader.remaining / 24 else { throw Problem.truncated }
                for _ in 0..<segmentCount {
                    let first = try reader.u64()
                    let generation = try reader.u32()
                    try reader.skip(4)
                    manifest.segments.append(
                        Segment(firstPosition: first, generation: generation, length: try reader.u64()))
                }
                let runCount = Int(try reader.u32())
                guard runCount <= reader.remaining / 48 else { throw Problem.truncated }
                for _ in 0..<runCount {
                    let sequence = try reader.u64()
                    let level = try reader.u32()
                    try reader.skip(4)
                    let run = Run(
                        sequence: sequence, level: level, firstPosition: try reader.u64(),
                        endPosition: try reader.u64(),
                        fileLength: try reader.u64(), headerCRC: try reader.u32())
                    try reader.skip(4)
                    manifest.runs.append(run)
                }
                guard reader.remaining == 4 else {
                    throw Problem.inconsistent("\(reader.remaining - 4) bytes left over")
                }
                return manifest
            }
        } catch let problem as Problem {
            throw problem
        } catch {
            throw .truncated
        }
        var expected: UInt64 = 0
        for run in manifest.runs {
            guard run.firstPosition == expected, run.endPosition > run.firstPosition else {
                throw .inconsistent(
                    "run \(run.sequence) covers \(run.firstPosition)..<\(run.endPosition), not from \(expected)")
            }
            expected = run.endPosition
        }
        guard expected == manifest.durableHead else {
            throw .inconsistent("the runs end at \(expected), the manifest covers \(manifest.durableHead)")
        }
        guard let last = manifest.segments.last, last.firstPosition == manifest.endSegmentFirstPosition,
            last.length == manifest.endOffset
        else { throw .inconsistent("the segment table does not end at the covered log end") }
        return manifest
    }

    /// Writes the manifest to `index/manifest.tmp`, flushes it, renames it into place and flushes the
    /// directory.
    func write(indexDirectory: String, io: any FileIO) throws {
        try io.replaceFile(indexDirectory + "/" + Self.fileName, with: encoded(), directory: indexDirectory)
    }

    /// Reads `index/manifest`: nil when there is none, `Problem` when it cannot be used.
    static func read(indexDirectory: String, storeID: UUID, io: any FileIO) throws -> IndexManifest? {
        let path = indexDirectory + "/" + fileName
        guard io.fileExists(path) else { return nil }
        let fd = try io.open(path, create: false)
        defer { io.close(fd) }
        let size = try io.size(fd)
        guard size <= 64 << 20 else { throw Problem.inconsistent("the manifest is \(size) bytes long") }
        return try decode(try io.read(fd, count: Int(size), at: 0), storeID: storeID)
    }
}
