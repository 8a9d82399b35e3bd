import Foundation

/// The layout of an index run file (`index/runs/<sequence>.run`, decision 0007 §2.2): 4 KiB blocks
/// (``IndexBlock``), block 0 a header with a directory of sections, each section starting on a block
/// of its own. Integers are little-endian.
enum RunFormat {
    static let magic: [UInt8] = Array("ANNALSRN".utf8)
    static let version: UInt32 = 1
    static let runsDirectoryName = "runs"

    /// The sections of a run, in file order.
    enum Section: UInt8, CaseIterable, Sendable {
        /// (u64 first position, u64 generation) of every segment the span touches.
        case segments = 1
        /// One u64 per position from `a`: index into `segments` (high 24 bits), record offset (low 40).
        case locations = 2
        /// (16-byte id in `uuid_t` order, u64 position), sorted by the id's bytes.
        case ids = 3
        /// A ``BlockedBloom`` block per 16 `ids` blocks, over ``BlockedBloom/idHash(_:)``.
        case idFilter = 4
        /// (u64 number, u64 first revision here, u64 count, u64 first `streamPositions` entry), by number.
        case streamSummaries = 5
        /// u64 positions grouped by stream in `streamSummaries` order, in revision order.
        case streamPositions = 6
        /// (u64 category hash, u64 count, u64 first `categoryPositions` entry), by hash.
        case categorySummaries = 7
        case categoryPositions = 8
        /// The same for event types.
        case typeSummaries = 9
        case typePositions = 10
        /// Stream records sorted by (name hash, number); see ``DirectoryRecord``.
        case directory = 11
        /// A ``BlockedBloom`` block per 16 `directory` blocks, over name hashes.
        case directoryFilter = 12
        /// u64 name hash of each stream created in the span, by number from the first.
        case created = 13
        /// Directory records too large for a block: each starts on a block of its own and runs on.
        case overflow = 14
        /// The first key (two u64) of every block of `ids`, `streamSummaries`, `categorySummaries`,
        /// `typeSummaries` and `directory`, each section's fences starting on a block of their own.
        case fences = 15
        /// The first key of every `fences` block, read when the run is opened.
        case top = 16
    }

    /// A section's place in the file.
    struct SectionExtent: Equatable, Sendable {
        var firstBlock: UInt64
        var blocks: UInt64
        var entries: UInt64
    }

    /// The sections that have fences, in the order their fences are stored.
    static let fencedSections: [Section] = [.ids, .streamSummaries, .categorySummaries, .typeSummaries, .directory]

    static let locationsPerBlock = IndexBlock.payloadSize / 8
    static let idEntrySize = 24
    static let idsPerBlock = IndexBlock.payloadSize / idEntrySize
    static let streamSummarySize = 32
    static let groupSummarySize = 24
    static let positionsPerBlock = IndexBlock.payloadSize / 8
    static let fenceSize = 16
    static let fencesPerBlock = IndexBlock.payloadSize / fenceSize
    /// Data blocks covered by one filter block.
    static let blocksPerFilter: UInt64 = 16
    /// Directory records larger than this go to `overflow`.
    static let largestInlineRecord = 4_000
    /// Flag bits of a directory record.
    static let softDeletedFlag: UInt8 = 1
    static let tombstonedFlag: UInt8 = 2
    static let overflowFlag: UInt8 = 0x80

    /// File name of run `sequence`.
    static func fileName(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".run"
    }

    /// What block 0 says.
    struct Header: Equatable, Sendable {
        var storeID: UUID
        var sequence: UInt64
        var level: UInt32
        var firstPosition: UInt64
        var endPosition: UInt64
        /// Log span: (segment first position, byte offset) of its first record and of its end.
        var spanStart: (segment: UInt64, offset: UInt64)
        var spanEnd: (segment: UInt64, offset: UInt64)
        var firstStreamNumber: UInt64
        var endStreamNumber: UInt64
        var events: UInt64
        var streamsTouched: UInt64
        var categories: UInt64
        var types: UInt64
        var smallestID: (UInt64, UInt64)
        var largestID: (UInt64, UInt64)
        var sections: [Section: SectionExtent]

        static func == (lhs: Header, rhs: Header) -> Bool {
            lhs.storeID == rhs.storeID && lhs.sequence == rhs.sequence && lhs.level == rhs.level
                && lhs.firstPosition == rhs.firstPosition && lhs.endPosition == rhs.endPosition
                && lhs.spanStart == rhs.spanStart && lhs.spanEnd == rhs.spanEnd
                && lhs.firstStreamNumber == rhs.firstStreamNumber && lhs.endStreamNumber == rhs.endStreamNumber
                && lhs.events == rhs.events && lhs.streamsTouched == rhs.streamsTouched
                && lhs.categories == rhs.categories && lhs.types == rhs.types && lhs.smallestID == rhs.smallestID
                && lhs.largestID == rhs.largestID && lhs.sections == rhs.sections
        }

        func extent(_ section: Section) -> SectionExtent {
            sections[section] ?? SectionExtent(firstBlock: 0, blocks: 0, entries: 0)
        }

        /// Block 0's payload.
        func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: IndexBlock.payloadSize)
            writer.put(bytes: RunFormat.magic)
            writer.put(RunFormat.version)
            withUnsafeBytes(of: storeID.uuid) { writer.put(bytes: $0) }
            writer.put(sequence)
            writer.put(level)
            for value in [
                firstPosition, endPosition, spanStart.segment, spanStart.offset, spanEnd.segment, spanEnd.offset,
                firstStreamNumber, endStreamNumber, events, streamsTouched, categories, types,
                smallestID.0, smallestID.1, largestID.0, largestID.1,
            ] {
                writer.put(value)
            }
            writer.put(UInt32(sections.count))
            for section in Section.allCases {
                guard let extent = sections[section] else { continue }
                writer.put(section.rawValue)
                writer.put(extent.firstBlock)
                writer.put(extent.blocks)
                writer.put(extent.entries)
            }
            return writer.bytes
        }

        /// Parses a verified block-0 payload; nil when it is not a run header of this format.
        static func decode(_ payload: UnsafeRawBufferPointer) -> Header? {
            var reader = ByteReader(payload)
            do {
                guard Array(try reader.bytes(8)) == RunFormat.magic, try reader.u32() == RunFormat.version else {
                    return nil
                }
                let id = UUID(uuid: try reader.bytes(16).loadUnaligned(as: uuid_t.self))
                let sequence = try reader.u64()
                let level = try reader.u32()
                var values: [UInt64] = []
                for _ in 0..<16 { values.append(try reader.u64()) }
                var header = Header(
                    storeID: id, sequence: sequence, level: level, firstPosition: values[0], endPosition: values[1],
                    spanStart: (values[2], values[3]), spanEnd: (values[4], values[5]),
                    firstStreamNumber: values[6], endStreamNumber: values[7], events: values[8],
                    streamsTouched: values[9], categories: values[10], types: values[11],
                    smallestID: (values[12], values[13]), largestID: (values[14], values[15]), sections: [:])
                let count = try reader.u32()
                guard count <= 16 else { return nil }
                for _ in 0..<count {
                    guard let section = Section(rawValue: try reader.u8()) else { return nil }
                    header.sections[section] = SectionExtent(
                        firstBlock: try reader.u64(), blocks: try reader.u64(), entries: try reader.u64())
                }
                guard header.endPosition >= header.firstPosition,
                    header.extent(.locations).entries == header.endPosition - header.firstPosition
                else { return nil }
                return header
            } catch {
                return nil
            }
        }
    }

    /// A stream record in a run's directory: the stream's state as of the run's end.
    struct DirectoryRecord: Equatable, Sendable {
        var nameHash: UInt64
        var number: UInt64
        var eventCount: UInt64
        /// `UInt64.max` when the stream has no events.
        var firstPosition: UInt64
        var lastPosition: UInt64
        var flags: UInt8
        var name: String
        /// The metadata as a metadata record stores it (JSON); empty for none.
        var metadata: [UInt8]

        /// Bytes of the record inline: hash, number, count, first, last (8 each), flags, name, metadata.
        var inlineSize: Int { 41 + 2 + name.utf8.count + 4 + metadata.count }
    }
}
