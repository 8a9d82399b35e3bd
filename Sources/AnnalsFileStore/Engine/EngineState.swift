import Annals
import Foundation

/// An open segment file.
struct SegmentFile: Sendable {
    var firstPosition: UInt64
    var path: String
    var fd: Int32
}

/// What the store holds under its lock: the index, the open segments, and whether the store failed or
/// closed.
struct EngineState: Sendable {
    var index: any EngineIndex
    var segments: [SegmentFile] = []
    var failure: EventStoreError?
    var isClosed = false

    init(index: any EngineIndex = MemoryIndex()) {
        self.index = index
    }

    /// The index as a ``MemoryIndex``: the one `annals verify` and the index checkpoint work with.
    var memoryIndex: MemoryIndex? { index as? MemoryIndex }
}

/// A record's place in the log, packed in 64 bits: the segment's index (high 24 bits) and the record's
/// byte offset in it (low 40 bits).
enum Location {
    static let offsetBits: UInt64 = 40
    static let offsetMask: UInt64 = (1 << offsetBits) - 1

    /// Packs a location; segment sizes are at most 1 TiB and segment counts below 2^24 (both checked
    /// where they are created), so the fields never overlap.
    static func pack(segment: Int, offset: Int64) -> UInt64 {
        UInt64(segment) << offsetBits | (UInt64(offset) & offsetMask)
    }

    static func segment(_ location: UInt64) -> Int { Int(location >> offsetBits) }
    static func offset(_ location: UInt64) -> Int64 { Int64(location & offsetMask) }
}

/// Loads events from their records, reading and checking each record once per load.
///
/// Readers copy the locations they need under the store's lock and load outside it, so a slow disk
/// never blocks the writer; positions below the durable head never change. Reads go through a 64 KiB
/// window, so consecutive small records cost one system call between them.
struct EventLoader {
    static let windowSize = 64 * 1024

    let io: any FileIO
    let segments: [SegmentFile]
    let storeID: UUID
    private var cachedLocation: UInt64 = .max
    private var cached: RecordFormat.EventsRecord?
    private var window: [UInt8] = []
    private var windowSegment = -1
    private var windowStart: Int64 = 0

    init(io: any FileIO, segments: [SegmentFile], storeID: UUID) {
        self.io = io
        self.segments = segments
        self.storeID = storeID
    }

    mutating func event(at position: UInt64, location: UInt64) throws(EventStoreError) -> RecordedEvent {
        if location != cachedLocation || cached == nil {
            cached = try loadRecord(at: location)
            cachedLocation = location
        }
        guard let record = cached, position >= record.position, position - record.position < UInt64(record.events.count)
        else {
            throw EventStoreError(.corruptedStorage, "The record for position \(position) does not hold it.")
        }
        return record.recorded(at: Int(position - record.position))
    }

    private mutating func loadRecord(at location: UInt64) throws(EventStoreError) -> RecordFormat.EventsRecord {
        let segmentIndex = Location.segment(location)
        let offset = Location.offset(location)
        guard segmentIndex < segments.count else {
            throw EventStoreError(.corruptedStorage, "A location names segment #\(segmentIndex), which is not open.")
        }
        let segment = segments[segmentIndex]
        func damaged(_ problem: RecordFormat.FrameProblem) -> EventStoreError {
            EventStoreError(.corruptedStorage, "Segment \(segment.path) at offset \(offset): \(problem).")
        }
        do {
            var header = try bytes(segment: segmentIndex, at: offset, count: RecordFormat.headerSize)
            let parsed: RecordFormat.FrameHeader
            switch header.withUnsafeBytes({ RecordFormat.parseHeader($0) }) {
            case .success(let value): parsed = value
            case .failure(let problem): throw damaged(problem)
            }
            header = try bytes(segment: segmentIndex, at: offset, count: parsed.length)
            return try header.withUnsafeBytes { buffer throws(EventStoreError) in
                switch RecordFormat.validate(buffer, storeID: storeID) {
                case .failure(let problem): throw damaged(problem)
                case .success(let (validated, kind)):
                    guard kind == .events else { throw damaged(.unknownKind(validated.kindRaw)) }
                    do throws(RecordFormat.FrameProblem) {
                        return try RecordFormat.decodeEvents(buffer, header: validated)
                    } catch {
                        throw damaged(error)
                    }
                }
            }
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(.unavailable, "Reading segment \(segment.path) failed: \(error).")
        }
    }

    /// `count` bytes at `offset` of a segment (fewer at its end), through the read window.
    private mutating func bytes(segment: Int, at offset: Int64, count: Int) throws -> ArraySlice<UInt8> {
        if segment == windowSegment, offset >= windowStart, offset + Int64(count) <= windowStart + Int64(window.count) {
            let low = Int(offset - windowStart)
            return window[low..<(low + count)]
        }
        window = try io.read(segments[segment].fd, count: max(count, Self.windowSize), at: offset)
        windowSegment = segment
        windowStart = offset
        return window[0..<min(count, window.count)]
    }
}
