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

/// Writes a run file from a ``RunInput``: sections through an ``IndexBlockWriter``, out to the file
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

    static func write(_ input: RunInput, to path: String, io: any FileIO) throws -> Written {
        let fd = try io.open(path, create: true)
        defer { io.close(fd) }
        try io.truncate(fd, to: 0)
        var output = Output(fd: fd, io: io)
        var blocks = IndexBlockWriter(capacity: bufferSize + IndexBlock.size)
        var sections: [RunFormat.Section: RunFormat.SectionExtent] = [:]
        var fences: [RunFormat.Section: [(UInt64, UInt64)]] = [:]
        var next: UInt64 = 1  // block 0 is the header

        /// Writes one section: `body` appends its entries; returns nothing, records the extent.
        func section(
            _ kind: RunFormat.Section, entries: Int, _ body: (inout IndexBlockWriter) throws -> Void
        ) throws {
            let before = blocks.blocksWritten
            try body(&blocks)
            blocks.finishBlock()
            let count = blocks.blocksWritten - before
            sections[kind] = RunFormat.SectionExtent(firstBlock: next, blocks: count, entries: UInt64(entries))
            next += count
            try output.take(&blocks)
        }

        try section(.segments, entries: input.segments.count) { writer in
            for segment in input.segments {
                writer.beginEntry(size: 16)
                writer.put(segment.firstPosition)
                writer.put(segment.generation)
            }
        }
        try section(.locations, entries: input.locations.count) { writer in
            for location in input.locations {
                writer.beginEntry(size: 8)
                writer.put(location)
                try output.takeIfLarge(&writer)
            }
        }
        var idFences: [(UInt64, UInt64)] = []
        try section(.ids, entries: input.ids.count) { writer in
            for (high, low, position) in input.ids {
                if writer.beginEntry(size: RunFormat.idEntrySize).offset == 0 { idFences.append((high, low)) }
                writer.put(IndexMemtable.join(high, low))
                writer.put(position)
                try output.takeIfLarge(&writer)
            }
        }
        fences[.ids] = idFences
        try section(.idFilter, entries: 0) { writer in
            var start = 0
            while start < input.ids.count {
                let end = min(input.ids.count, start + RunFormat.idsPerBlock * Int(RunFormat.blocksPerFilter))
                let filter = BlockedBloom.build(
                    hashes: input.ids[start..<end].lazy.map { BlockedBloom.idHash(IndexMemtable.join($0.0, $0.1)) })
                writer.append(filter)
                start = end
            }
        }
        var streamFences: [(UInt64, UInt64)] = []
        var total: UInt64 = 0
        try section(.streamSummaries, entries: input.streams.count) { writer in
            for group in input.streams {
                if writer.beginEntry(size: RunFormat.streamSummarySize).offset == 0 {
                    streamFences.append((group.number, 0))
                }
                writer.put(group.number)
                writer.put(group.firstRevision)
                writer.put(UInt64(group.positions.count))
                writer.put(total)
                total += UInt64(group.positions.count)
            }
        }
        fences[.streamSummaries] = streamFences
        try section(.streamPositions, entries: Int(total)) { writer in
            for group in input.streams {
                for position in group.positions {
                    writer.beginEntry(size: 8)
                    writer.put(position)
                    try output.takeIfLarge(&writer)
                }
            }
        }
        for (summaries, positions, groups) in [
            (RunFormat.Section.categorySummaries, RunFormat.Section.categoryPositions, input.categories),
            (.typeSummaries, .typePositions, input.types),
        ] {
            var groupFences: [(UInt64, UInt64)] = []
            var entries: UInt64 = 0
            try section(summaries, entries: groups.count) { writer in
                for group in groups {
                    if writer.beginEntry(size: RunFormat.groupSummarySize).offset == 0 {
                        groupFences.append((group.hash, 0))
                    }
                    writer.put(group.hash)
                    writer.put(UInt64(group.positions.count))
                    writer.put(entries)
                    entries += UInt64(group.positions.count)
                }
            }
            fences[summaries] = groupFences
            try section(positions, entries: Int(entries)) { writer in
                for group in groups {
                    for position in group.positions {
                        writer.beginEntry(size: 8)
                        writer.put(position)
                        try output.takeIfLarge(&writer)
                    }
                }
            }
        }
        // Directory: records too large go to overflow, whose blocks are numbered after the directory's
        // filter; the inline entry then holds the overflow block and length instead of name and metadata.
        var overflow: [[UInt8]] = []
        var directoryFences: [(UInt64, UInt64)] = []
        var directoryBlockHashes: [[UInt64]] = []
        var overflowPlan: [(firstBlock: UInt64, length: Int)] = []
        var overflowBlocks: UInt64 = 0
        for record in input.directory where record.inlineSize > RunFormat.largestInlineRecord {
            let bytes = encodeTail(record)
            overflowPlan.append((overflowBlocks, bytes.count))
            overflowBlocks += UInt64((bytes.count + IndexBlock.payloadSize - 1) / IndexBlock.payloadSize)
            overflow.append(bytes)
        }
        var overflowIndex = 0
        try section(.directory, entries: input.directory.count) { writer in
            for record in input.directory {
                let large = record.inlineSize > RunFormat.largestInlineRecord
                let size = large ? 41 + 12 : record.inlineSize
                let location = writer.beginEntry(size: size)
                if location.offset == 0 {
                    directoryFences.append((record.nameHash, record.number))
                    directoryBlockHashes.append([])
                }
                directoryBlockHashes[directoryBlockHashes.count - 1].append(record.nameHash)
                writer.put(record.nameHash)
                writer.put(record.number)
                writer.put(record.eventCount)
                writer.put(record.firstPosition)
                writer.put(record.lastPosition)
                if large {
                    writer.put(record.flags | RunFormat.overflowFlag)
                    writer.put(overflowPlan[overflowIndex].firstBlock)
                    writer.put(UInt32(overflowPlan[overflowIndex].length))
                    overflowIndex += 1
                } else {
                    writer.put(record.flags)
                    writer.put(bytes: encodeTail(record))
                }
            }
        }
        fences[.directory] = directoryFences
        try section(.directoryFilter, entries: 0) { writer in
            var start = 0
            while start < directoryBlockHashes.count {
                let end = min(directoryBlockHashes.count, start + Int(RunFormat.blocksPerFilter))
                writer.append(BlockedBloom.build(hashes: directoryBlockHashes[start..<end].joined()))
                start = end
            }
        }
        try section(.created, entries: input.created.count) { writer in
            for hash in input.created {
                writer.beginEntry(size: 8)
                writer.put(hash)
            }
        }
        try section(.overflow, entries: overflow.count) { writer in
            for bytes in overflow {
                var start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + IndexBlock.payloadSize)
                    writer.append(bytes[start..<end])
                    writer.finishBlock()
                    start = end
                }
            }
        }
        var topKeys: [(UInt64, UInt64)] = []
        var fenceCount = 0
        try section(.fences, entries: 0) { writer in
            for kind in RunFormat.fencedSections {
                for (index, key) in (fences[kind] ?? []).enumerated() {
                    if index % RunFormat.fencesPerBlock == 0 {
                        writer.finishBlock()
                        topKeys.append(key)
                    }
                    writer.beginEntry(size: RunFormat.fenceSize)
                    writer.put(key.0)
                    writer.put(key.1)
                    fenceCount += 1
                }
            }
        }
        sections[.fences]?.entries = UInt64(fenceCount)
        try section(.top, entries: topKeys.count) { writer in
            for key in topKeys {
                writer.beginEntry(size: RunFormat.fenceSize)
                writer.put(key.0)
                writer.put(key.1)
            }
        }
        try output.finish()

        let header = RunFormat.Header(
            storeID: input.storeID, sequence: input.sequence, level: input.level,
            firstPosition: input.firstPosition, endPosition: input.firstPosition + UInt64(input.locations.count),
            spanStart: input.spanStart, spanEnd: input.spanEnd, firstStreamNumber: input.firstStreamNumber,
            endStreamNumber: input.firstStreamNumber + UInt64(input.created.count),
            events: UInt64(input.locations.count),
            streamsTouched: UInt64(input.streams.count), categories: UInt64(input.categories.count),
            types: UInt64(input.types.count),
            smallestID: input.ids.first.map { ($0.0, $0.1) } ?? (0, 0),
            largestID: input.ids.last.map { ($0.0, $0.1) } ?? (0, 0), sections: sections)
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

        func finish() throws {}
    }
}
