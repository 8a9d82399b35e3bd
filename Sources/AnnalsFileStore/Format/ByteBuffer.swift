/// Little-endian encoding into a growable byte array.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    var count: Int { bytes.count }

    mutating func put(_ value: UInt8) { bytes.append(value) }

    mutating func put(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    mutating func put(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func put(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func put<C: Collection>(bytes other: C) where C.Element == UInt8 { bytes.append(contentsOf: other) }

    /// Overwrites a UInt32 at `offset`.
    mutating func set(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt32(8 * index)) }
    }
}

/// Bounds-checked little-endian decoding: every read past the end throws, so corrupted lengths never trap.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    struct OutOfBounds: Error {}

    var remaining: Int { buffer.count - offset }

    mutating func skip(_ count: Int) throws {
        guard count >= 0, count <= remaining else { throw OutOfBounds() }
        offset += count
    }

    mutating func u8() throws -> UInt8 {
        guard remaining >= 1 else { throw OutOfBounds() }
        defer { offset += 1 }
        return buffer[offset]
    }

    mutating func u16() throws -> UInt16 {
        guard remaining >= 2 else { throw OutOfBounds() }
        defer { offset += 2 }
        return UInt16(buffer[offset]) | UInt16(buffer[offset + 1]) << 8
    }

    mutating func u32() throws -> UInt32 {
        guard remaining >= 4 else { throw OutOfBounds() }
        defer { offset += 4 }
        return buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian
    }

    mutating func u64() throws -> UInt64 {
        guard remaining >= 8 else { throw OutOfBounds() }
        defer { offset += 8 }
        return buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian
    }

    mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else { throw OutOfBounds() }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count)])
    }

    static func u32(_ buffer: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian
    }

    static func u64(_ buffer: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian
    }
}
