import Foundation

/// The 64-byte header at the start of every segment file.
///
/// ```
/// 0   "ANNALSEG"             32  u64 first position
/// 8   u32 format version     40  reserved (20 bytes of zeros)
/// 12  u32 header size (64)   60  u32 CRC32C of bytes 0..<60
/// 16  store id (16 bytes)
/// ```
package struct SegmentHeader: Sendable, Equatable {
    static let size = 64
    static let magic: [UInt8] = Array("ANNALSEG".utf8)

    package var formatVersion: UInt32
    package var storeID: UUID
    package var firstPosition: UInt64

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        writer.put(bytes: Self.magic)
        writer.put(formatVersion)
        writer.put(UInt32(Self.size))
        withUnsafeBytes(of: storeID.uuid) { writer.put(bytes: $0) }
        writer.put(firstPosition)
        writer.put(bytes: [UInt8](repeating: 0, count: 20))
        writer.put(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    enum Problem: Error, Equatable {
        case empty
        case damaged
        case unknownVersion(UInt32)

        var isUnknownVersion: Bool {
            if case .unknownVersion = self { return true }
            return false
        }
    }

    static func decode(_ bytes: [UInt8]) -> Result<SegmentHeader, Problem> {
        guard bytes.count >= size else { return .failure(bytes.allSatisfy { $0 == 0 } ? .empty : .damaged) }
        if bytes[0..<size].allSatisfy({ $0 == 0 }) { return .failure(.empty) }
        return bytes.withUnsafeBytes { buffer in
            guard buffer[0..<8].elementsEqual(magic),
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<60])) == ByteReader.u32(buffer, at: 60)
            else { return .failure(.damaged) }
            let version = ByteReader.u32(buffer, at: 8)
            guard version == UInt32(RecordFormat.formatVersion) else { return .failure(.unknownVersion(version)) }
            var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[16..<32])) }
            return .success(
                SegmentHeader(
                    formatVersion: version, storeID: UUID(uuid: uuid), firstPosition: ByteReader.u64(buffer, at: 32))
            )
        }
    }

    /// The file name of the segment that starts at `position`: 20 decimal digits and `.seg`.
    static func fileName(firstPosition position: UInt64) -> String {
        let digits = String(position)
        return String(repeating: "0", count: 20 - digits.count) + digits + ".seg"
    }

    /// The first position a segment file name states, or nil if it is not a segment name.
    static func firstPosition(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(".seg"), name.utf8.count == 24 else { return nil }
        let digits = name.prefix(20)
        guard digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(digits)
    }
}

/// The `store.id` file: which store a directory holds, and in which format.
///
/// ```
/// 0 "ANNALSID"   8 u32 format version   12 store id (16 bytes)   28 u32 CRC32C of bytes 0..<28
/// ```
package struct StoreIdentity: Sendable, Equatable {
    static let fileName = "store.id"
    static let magic: [UInt8] = Array("ANNALSID".utf8)

    package var storeID: UUID
    package var formatVersion: UInt32

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 32)
        writer.put(bytes: Self.magic)
        writer.put(formatVersion)
        withUnsafeBytes(of: storeID.uuid) { writer.put(bytes: $0) }
        writer.put(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) -> StoreIdentity? {
        guard bytes.count == 32, bytes[0..<8].elementsEqual(magic) else { return nil }
        return bytes.withUnsafeBytes { buffer in
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<28])) == ByteReader.u32(buffer, at: 28)
            else { return nil }
            var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[12..<28])) }
            return StoreIdentity(storeID: UUID(uuid: uuid), formatVersion: ByteReader.u32(buffer, at: 8))
        }
    }
}
