import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Walks the records of one segment file in order, reading it in large chunks.
///
/// Used by recovery and by `verify`. It validates each frame (magic, length, checksum, store, version)
/// and hands valid ones to a callback; it stops at the first problem and says where.
struct SegmentScanner {
    let io: any FileIO
    let fd: Int32
    let fileSize: Int64
    let storeID: UUID
    private var chunk: [UInt8] = []
    private var chunkStart: Int64 = 0
    static let chunkSize = 4 * 1024 * 1024

    init(io: any FileIO, fd: Int32, fileSize: Int64, storeID: UUID) {
        self.io = io
        self.fd = fd
        self.fileSize = fileSize
        self.storeID = storeID
    }

    enum Outcome: Equatable {
        /// Every byte up to `offset` is valid records; from there on zeros or the end of the file.
        case end(offset: Int64)
        /// A frame at `offset` is not valid.
        case problem(offset: Int64, RecordFormat.FrameProblem)
    }

    /// Scans from `offset`; calls `body` with each valid frame and its offset. `body` may throw a
    /// `FrameProblem` to stop the scan at that frame.
    mutating func scan(
        from offset: Int64,
        _ body: (Int64, RecordFormat.FrameHeader, RecordFormat.Kind, UnsafeRawBufferPointer) throws(RecordFormat
            .FrameProblem) -> Void
    ) throws -> Outcome {
        var offset = offset
        while true {
            if offset >= fileSize { return .end(offset: offset) }
            let headerBytes = try window(at: offset, count: RecordFormat.headerSize)
            let header: RecordFormat.FrameHeader
            switch headerBytes.withUnsafeBytes({ RecordFormat.parseHeader($0) }) {
            case .success(let parsed): header = parsed
            case .failure(.end): return .end(offset: offset)
            case .failure(.truncated): return .problem(offset: offset, .truncated)
            case .failure(let problem): return .problem(offset: offset, problem)
            }
            guard offset + Int64(header.length) <= fileSize else { return .problem(offset: offset, .truncated) }
            let frame = try window(at: offset, count: header.length)
            let outcome: Result<Void, RecordFormat.FrameProblem> = frame.withUnsafeBytes { bytes in
                switch RecordFormat.validate(bytes, storeID: storeID) {
                case .failure(let problem): return .failure(problem)
                case .success(let (validated, kind)):
                    do throws(RecordFormat.FrameProblem) {
                        try body(offset, validated, kind, bytes)
                        return .success(())
                    } catch {
                        return .failure(error)
                    }
                }
            }
            if case .failure(let problem) = outcome { return .problem(offset: offset, problem) }
            offset += Int64(header.length)
        }
    }

    /// The first valid frame after `offset`, if any (a sign that damage at `offset` is not a torn tail).
    mutating func hasValidFrame(after offset: Int64) throws -> Int64? {
        try validFrames(after: offset, limit: 1).first?.offset
    }

    /// Valid frames found after `offset` by searching for the magic, with the group start each records.
    mutating func validFrames(after offset: Int64, limit: Int = .max) throws -> [(offset: Int64, groupStart: Int64)] {
        var found: [(offset: Int64, groupStart: Int64)] = []
        var candidate = offset + 1
        let magic: [UInt8] = [0x41, 0x4E, 0x52, 0x43]
        while candidate + Int64(RecordFormat.overhead) <= fileSize, found.count < limit {
            let bytes = try window(at: candidate, count: min(Self.chunkSize, Int(fileSize - candidate)))
            // memchr skips the zeros of a preallocated tail at memory speed.
            let hit: Int? = bytes.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress else { return nil }
                var from = 0
                while from + 4 <= buffer.count {
                    guard let hit = memchr(base + from, Int32(magic[0]), buffer.count - from) else { return nil }
                    let index = base.distance(to: UnsafeRawPointer(hit))
                    if index + 4 <= buffer.count, buffer[index + 1] == magic[1], buffer[index + 2] == magic[2],
                        buffer[index + 3] == magic[3]
                    {
                        return index
                    }
                    from = index + 1
                }
                return nil
            }
            guard let index = hit else {
                candidate += Int64(max(1, bytes.count - 3))
                continue
            }
            let at = candidate + Int64(index)
            let header = try window(at: at, count: RecordFormat.headerSize)
            if case .success(let parsed) = header.withUnsafeBytes({ RecordFormat.parseHeader($0) }),
                at + Int64(parsed.length) <= fileSize
            {
                let frame = try window(at: at, count: parsed.length)
                if case .success = frame.withUnsafeBytes({ RecordFormat.validate($0, storeID: storeID) }) {
                    found.append((at, parsed.groupStart))
                    candidate = at + Int64(parsed.length)
                    continue
                }
            }
            candidate = at + 1
        }
        return found
    }

    /// `count` bytes at `offset` (fewer at the end of the file), from the chunk when it holds them.
    private mutating func window(at offset: Int64, count: Int) throws -> ArraySlice<UInt8> {
        let end = offset + Int64(count)
        if offset >= chunkStart, end <= chunkStart + Int64(chunk.count) {
            let low = Int(offset - chunkStart)
            return chunk[low..<(low + count)]
        }
        if count > Self.chunkSize {
            return try io.read(fd, count: count, at: offset)[...]
        }
        chunk = try io.read(fd, count: Int(min(Int64(Self.chunkSize), fileSize - offset)), at: offset)
        chunkStart = offset
        return chunk[0..<min(count, chunk.count)]
    }
}
