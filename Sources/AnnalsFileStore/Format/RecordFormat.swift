import Annals
import Foundation

/// The on-disk format of records and segment headers (format version 1); see `docs/file-format.md`.
///
/// A record is one framed, checksummed unit of the log — an append's batch of events, or a change to a
/// stream's metadata, a soft delete or a tombstone:
///
/// ```
/// 0   u32 magic "ANRC"          16  store id (16 bytes)
/// 4   u32 frame length L        32  u64 position (first event's; the head for other kinds)
/// 8   u32 CRC32C                40  u64 group start: the offset of the first record of the same write
/// 12  u8 kind, u8 version,      48  body …
///     u16 reserved (0)          L-4 u32 frame length again (for backward scans)
/// ```
///
/// The CRC covers bytes 12..<L-4 (kind, version, store id, position, group start, body) and then the
/// length at 4, so a record copied to another place, another store, or cut short fails its check. The
/// group start lets recovery tell a torn group commit (damage followed by records of the same write,
/// none of it acknowledged) from damage to an earlier, acknowledged write. All integers are
/// little-endian.
package enum RecordFormat {
    package static let formatVersion: UInt8 = 1
    static let magic: UInt32 = 0x4352_4E41  // "ANRC" in file order
    static let headerSize = 48
    static let overhead = headerSize + 4
    /// The largest frame accepted when reading: the largest append plus generous room for names.
    static let maximumFrameLength = 64 * 1024 * 1024

    /// The largest events record a batch within `limits` can make; must not exceed the frame limit.
    static func largestRecord(for limits: EventStoreLimits) -> Int? {
        let perEvent = 16 + 1 + 2 + 4 + 4  // id, content type, and the three length fields
        let (events, overflow1) = limits.maxEventsPerAppend.multipliedReportingOverflow(by: perEvent)
        let (total, overflow2) = events.addingReportingOverflow(limits.maxAppendSize)
        guard !overflow1, !overflow2 else { return nil }
        return total + overhead + 2 + 256 + 8 + 8 + 4
    }

    package enum Kind: UInt8, Sendable {
        case events = 1
        case metadata = 2
        case softDelete = 3
        case tombstone = 4
    }

    // MARK: Encoding

    /// The exact encoded size of an events record.
    static func eventsRecordSize(stream: StreamName, events: [EventData]) -> Int {
        var size = overhead + 2 + stream.rawValue.utf8.count + 8 + 8 + 4
        for event in events {
            size += 16 + 1 + 2 + event.type.utf8.count + 4 + event.data.count + 4 + event.metadata.count
        }
        return size
    }

    static func encodeEvents(
        into writer: inout ByteWriter,
        storeID: UUID,
        position: UInt64,
        groupStart: Int64,
        stream: StreamName,
        firstRevision: UInt64,
        recordedAt: Date,
        events: [EventData]
    ) {
        let start = beginRecord(
            into: &writer, kind: .events, storeID: storeID, position: position, groupStart: groupStart)
        putName(stream.rawValue, into: &writer)
        writer.put(firstRevision)
        writer.put(UInt64(bitPattern: nanoseconds(recordedAt)))
        writer.put(UInt32(events.count))
        for event in events {
            withUnsafeBytes(of: event.id.uuid) { writer.put(bytes: $0) }
            writer.put(event.contentType == .json ? UInt8(0) : UInt8(1))
            putName(event.type, into: &writer)
            writer.put(UInt32(event.data.count))
            writer.put(bytes: event.data)
            writer.put(UInt32(event.metadata.count))
            writer.put(bytes: event.metadata)
        }
        endRecord(into: &writer, start: start)
    }

    static func encodeControl(
        into writer: inout ByteWriter,
        kind: Kind,
        storeID: UUID,
        position: UInt64,
        groupStart: Int64,
        stream: StreamName,
        metadata: Data? = nil
    ) {
        let start = beginRecord(into: &writer, kind: kind, storeID: storeID, position: position, groupStart: groupStart)
        putName(stream.rawValue, into: &writer)
        if let metadata {
            writer.put(UInt32(metadata.count))
            writer.put(bytes: metadata)
        }
        endRecord(into: &writer, start: start)
    }

    private static func beginRecord(
        into writer: inout ByteWriter,
        kind: Kind,
        storeID: UUID,
        position: UInt64,
        groupStart: Int64
    ) -> Int {
        let start = writer.count
        writer.put(magic)
        writer.put(UInt32(0))  // length, set at the end
        writer.put(UInt32(0))  // CRC, set at the end
        writer.put(kind.rawValue)
        writer.put(formatVersion)
        writer.put(UInt16(0))
        withUnsafeBytes(of: storeID.uuid) { writer.put(bytes: $0) }
        writer.put(position)
        writer.put(UInt64(groupStart))
        return start
    }

    private static func endRecord(into writer: inout ByteWriter, start: Int) {
        let length = UInt32(writer.count - start + 4)
        writer.put(length)
        writer.set(length, at: start + 4)
        let crc = writer.bytes.withUnsafeBytes { buffer in
            checksum(of: UnsafeRawBufferPointer(rebasing: buffer[start..<(start + Int(length))]))
        }
        writer.set(crc, at: start + 8)
    }

    private static func putName(_ name: String, into writer: inout ByteWriter) {
        let utf8 = name.utf8
        writer.put(UInt16(utf8.count))
        writer.put(bytes: utf8)
    }

    /// The CRC of a whole frame (its CRC field ignored).
    static func checksum(of frame: UnsafeRawBufferPointer) -> UInt32 {
        let length = frame.count
        let covered = UnsafeRawBufferPointer(rebasing: frame[12..<(length - 4)])
        let lengthBytes = UnsafeRawBufferPointer(rebasing: frame[4..<8])
        return CRC32C.checksum(lengthBytes, continuing: CRC32C.checksum(covered))
    }

    static func nanoseconds(_ date: Date) -> Int64 {
        let value = date.timeIntervalSince1970 * 1_000_000_000
        guard value.isFinite, value > Double(Int64.min), value < Double(Int64.max) else { return 0 }
        return Int64(value)
    }

    // MARK: Decoding

    /// Why a frame is not a valid record.
    package enum FrameProblem: Error, Sendable, Equatable, CustomStringConvertible {
        /// Zeros: the end of the written part of a preallocated segment.
        case end
        /// The file ends inside the frame.
        case truncated
        case badMagic
        case badLength(UInt32)
        case badChecksum
        case wrongStore
        case unknownVersion(UInt8)
        case unknownKind(UInt8)
        case wrongPosition(expected: UInt64, found: UInt64)
        case malformedBody
        /// The on-disk index could not be read while the log was checked against it.
        case indexUnreadable(String)

        /// Whether the problem is one a torn write leaves (a frame not fully on disk), rather than an
        /// intact record that does not fit: only these may be cut away at the end of the log.
        package var isTornWrite: Bool {
            switch self {
            case .end, .truncated, .badMagic, .badLength, .badChecksum: true
            default: false
            }
        }

        package var description: String {
            switch self {
            case .end: "end of data"
            case .truncated: "the record is cut short"
            case .indexUnreadable(let reason): "the index cannot be read (\(reason))"
            case .badMagic: "no record starts here"
            case .badLength(let length): "impossible record length \(length)"
            case .badChecksum: "checksum mismatch"
            case .wrongStore: "the record belongs to another store"
            case .unknownVersion(let version): "unknown format version \(version)"
            case .unknownKind(let kind): "unknown record kind \(kind)"
            case .wrongPosition(let expected, let found): "record for position \(found) where \(expected) was due"
            case .malformedBody: "the record's body is malformed"
            }
        }
    }

    /// The fixed part of a frame, read before the rest.
    struct FrameHeader {
        var length: Int
        var crc: UInt32
        var kindRaw: UInt8
        var version: UInt8
        var position: UInt64
        var groupStart: Int64
    }

    /// Parses the first bytes of a frame (at least `headerSize`).
    static func parseHeader(_ bytes: UnsafeRawBufferPointer) -> Result<FrameHeader, FrameProblem> {
        guard bytes.count >= 8 else { return .failure(.truncated) }
        let magicValue = ByteReader.u32(bytes, at: 0)
        let length = ByteReader.u32(bytes, at: 4)
        if magicValue == 0 && length == 0 { return .failure(.end) }
        guard magicValue == magic else { return .failure(.badMagic) }
        guard length >= UInt32(overhead), length <= UInt32(maximumFrameLength) else {
            return .failure(.badLength(length))
        }
        guard bytes.count >= headerSize else { return .failure(.truncated) }
        return .success(
            FrameHeader(
                length: Int(length),
                crc: ByteReader.u32(bytes, at: 8),
                kindRaw: bytes[12],
                version: bytes[13],
                position: ByteReader.u64(bytes, at: 32),
                groupStart: Int64(truncatingIfNeeded: ByteReader.u64(bytes, at: 40))
            )
        )
    }

    /// Validates a whole frame: length suffix, checksum, version, store, kind.
    static func validate(_ frame: UnsafeRawBufferPointer, storeID: UUID) -> Result<(FrameHeader, Kind), FrameProblem> {
        let header: FrameHeader
        switch parseHeader(frame) {
        case .success(let parsed): header = parsed
        case .failure(let problem): return .failure(problem)
        }
        guard frame.count >= header.length else { return .failure(.truncated) }
        let whole = UnsafeRawBufferPointer(rebasing: frame[0..<header.length])
        guard ByteReader.u32(whole, at: header.length - 4) == UInt32(header.length) else {
            return .failure(.badChecksum)
        }
        guard checksum(of: whole) == header.crc else { return .failure(.badChecksum) }
        guard header.version == formatVersion else { return .failure(.unknownVersion(header.version)) }
        let idMatches = withUnsafeBytes(of: storeID.uuid) { id in
            id.elementsEqual(UnsafeRawBufferPointer(rebasing: whole[16..<32]))
        }
        guard idMatches else { return .failure(.wrongStore) }
        guard let kind = Kind(rawValue: header.kindRaw) else { return .failure(.unknownKind(header.kindRaw)) }
        return .success((header, kind))
    }

    /// A decoded events record.
    package struct EventsRecord: Sendable {
        package var position: UInt64
        package var stream: StreamName
        package var firstRevision: UInt64
        package var recordedAt: Date
        package var events: [EventData]

        package func recorded(at index: Int) -> RecordedEvent {
            RecordedEvent(
                events[index],
                stream: stream,
                revision: StreamRevision(firstRevision + UInt64(index)),
                position: Position(position + UInt64(index)),
                recordedAt: recordedAt
            )
        }
    }

    /// A decoded control record.
    package struct ControlRecord: Sendable {
        package var kind: Kind
        package var stream: StreamName
        package var metadata: StreamMetadata?
    }

    /// Decodes the body of a validated events frame.
    ///
    /// Without `payloads`, data and metadata are skipped (left empty): recovery needs only ids and types.
    static func decodeEvents(
        _ frame: UnsafeRawBufferPointer,
        header: FrameHeader,
        payloads: Bool = true
    ) throws(FrameProblem) -> EventsRecord {
        do {
            var reader = ByteReader(
                UnsafeRawBufferPointer(rebasing: frame[0..<(header.length - 4)]), offset: headerSize)
            let stream = try readStreamName(&reader)
            let firstRevision = try reader.u64()
            let nanos = Int64(bitPattern: try reader.u64())
            let count = Int(try reader.u32())
            guard count > 0, count <= reader.remaining / 27 + 1 else { throw FrameProblem.malformedBody }
            var events: [EventData] = []
            events.reserveCapacity(count)
            for _ in 0..<count {
                let idBytes = try reader.bytes(16)
                var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: idBytes) }
                let contentRaw = try reader.u8()
                guard contentRaw <= 1 else { throw FrameProblem.malformedBody }
                let typeLength = Int(try reader.u16())
                let typeBytes = try reader.bytes(typeLength)
                // A batch usually holds one type: reuse the previous event's string when the bytes match.
                let type: String
                if let previous = events.last?.type, previous.utf8.elementsEqual(typeBytes) {
                    type = previous
                } else {
                    guard let decoded = String(validating: typeBytes, as: UTF8.self) else {
                        throw FrameProblem.malformedBody
                    }
                    type = decoded
                }
                let dataBytes = try reader.bytes(Int(try reader.u32()))
                let metadataBytes = try reader.bytes(Int(try reader.u32()))
                let data = payloads ? Data(dataBytes) : Data()
                let metadata = payloads ? Data(metadataBytes) : Data()
                events.append(
                    EventData(
                        id: UUID(uuid: uuid),
                        type: type,
                        data: data,
                        contentType: contentRaw == 0 ? .json : .binary,
                        metadata: metadata
                    )
                )
            }
            guard reader.remaining == 0 else { throw FrameProblem.malformedBody }
            guard firstRevision <= UInt64.max - UInt64(count), header.position <= UInt64.max - UInt64(count) else {
                throw FrameProblem.malformedBody
            }
            return EventsRecord(
                position: header.position,
                stream: stream,
                firstRevision: firstRevision,
                recordedAt: Date(timeIntervalSince1970: Double(nanos) / 1_000_000_000),
                events: events
            )
        } catch let problem as FrameProblem {
            throw problem
        } catch {
            throw .malformedBody
        }
    }

    static func decodeControl(_ frame: UnsafeRawBufferPointer, header: FrameHeader, kind: Kind) throws(FrameProblem)
        -> ControlRecord
    {
        do {
            var reader = ByteReader(
                UnsafeRawBufferPointer(rebasing: frame[0..<(header.length - 4)]), offset: headerSize)
            let stream = try readStreamName(&reader)
            var metadata: StreamMetadata? = nil
            if kind == .metadata {
                let json = Data(try reader.bytes(Int(try reader.u32())))
                let decoded = try JSONDecoder().decode(StreamMetadata.self, from: json)
                try decoded.validate()
                metadata = decoded
            }
            guard reader.remaining == 0 else { throw FrameProblem.malformedBody }
            return ControlRecord(kind: kind, stream: stream, metadata: metadata)
        } catch let problem as FrameProblem {
            throw problem
        } catch {
            throw .malformedBody
        }
    }

    private static func readStreamName(_ reader: inout ByteReader) throws -> StreamName {
        let length = Int(try reader.u16())
        guard let raw = String(validating: try reader.bytes(length), as: UTF8.self) else {
            throw FrameProblem.malformedBody
        }
        do {
            return try StreamName(allowingSystemName: raw)
        } catch {
            throw FrameProblem.malformedBody
        }
    }
}
