import Foundation

/// The 4 KiB block every index run file is made of (decision 0007, §2.2).
///
/// A block is 4,092 bytes of payload followed by the `u32` little-endian CRC32C of that payload. The
/// block is the unit of reading, checking and caching: a reader never trusts a byte of a run before the
/// CRC of the block holding it has been checked, so a torn or rotted run fails one read with the file and
/// block named instead of answering from damaged data. Entries never straddle blocks, so a verified
/// block can be decoded on its own. A block that was never written (zeros) does not verify: the CRC32C
/// of 4,092 zero bytes is not zero.
package enum IndexBlock {
    /// Bytes in a block on disk.
    package static let size = 4096
    /// Bytes of payload in a block: the block less its CRC.
    package static let payloadSize = 4092

    /// Pads `payload` with zeros to ``payloadSize`` and appends its CRC32C, making it a block.
    ///
    /// Padding with zeros keeps the bytes after the last entry deterministic, so two runs written from
    /// the same entries are byte-identical (golden files, `annals verify`).
    package static func seal(_ payload: inout [UInt8]) {
        precondition(payload.count <= payloadSize, "an index block payload holds at most \(payloadSize) bytes")
        if payload.count < payloadSize {
            payload.append(contentsOf: repeatElement(0, count: payloadSize - payload.count))
        }
        let crc = CRC32C.checksum(payload)
        for shift in stride(from: 0, to: 32, by: 8) { payload.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
    }

    /// Whether `block` is exactly one block long and its payload matches its CRC.
    package static func verify(_ block: UnsafeRawBufferPointer) -> Bool {
        guard block.count == size else { return false }
        let stored = ByteReader.u32(block, at: payloadSize)
        return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[..<payloadSize])) == stored
    }

    /// Whether `block` is exactly one block long and its payload matches its CRC.
    package static func verify(_ block: [UInt8]) -> Bool {
        block.withUnsafeBytes { verify($0) }
    }

    /// The payload of `block` (block `number` of the run at `path`), once its size and CRC are checked.
    ///
    /// Takes the block by value so that, when the caller hands over its only reference, dropping the CRC
    /// reuses the array's storage instead of copying 4 KiB: this is what the block cache stores.
    package static func verifiedPayload(
        of bytes: consuming [UInt8],
        path: String,
        block number: UInt64
    ) throws(IndexBlockError) -> [UInt8] {
        guard bytes.count == size else { throw .short(path: path, block: number) }
        guard verify(bytes) else { throw .damaged(path: path, block: number) }
        bytes.removeLast(size - payloadSize)
        return bytes
    }

    /// Reads block `number` of the open run `fd` (at `path`) through `io` and returns its verified payload.
    ///
    /// This is the `load` a run reader gives the ``BlockCache``. A block number from damaged data can be
    /// arbitrarily large; an offset past what a file can hold is reported as a short block, as the end of
    /// the file would be, rather than trapping on overflow.
    ///
    /// - Throws: ``IndexBlockError`` when the block is short or damaged, the `FileIOError` of a failed read.
    package static func read(
        block number: UInt64,
        of fd: Int32,
        path: String,
        io: some FileIO
    ) throws -> [UInt8] {
        let (offset, overflow) = number.multipliedReportingOverflow(by: UInt64(size))
        guard !overflow, offset <= UInt64(Int64.max - Int64(size)) else {
            throw IndexBlockError.short(path: path, block: number)
        }
        let bytes = try io.read(fd, count: size, at: Int64(offset))
        return try verifiedPayload(of: bytes, path: path, block: number)
    }
}

// MARK: - Reading fields

extension IndexBlock {
    // Every reader checks `offset <= count - width` (never `offset + width <= count`, which could
    // overflow): offsets come from entry counts and indexes in the data, which a bug or a CRC-valid block
    // of another format version can make anything. Out of range answers nil; the caller reports the
    // block as malformed.

    /// The byte at `offset` of `payload`, or nil if it lies outside.
    package static func u8(in payload: UnsafeRawBufferPointer, at offset: Int) -> UInt8? {
        guard offset >= 0, offset < payload.count else { return nil }
        return payload[offset]
    }

    /// The little-endian `u16` at `offset` of `payload`, or nil if it does not lie wholly inside.
    package static func u16(in payload: UnsafeRawBufferPointer, at offset: Int) -> UInt16? {
        guard offset >= 0, offset <= payload.count - 2 else { return nil }
        return UInt16(payload[offset]) | UInt16(payload[offset + 1]) << 8
    }

    /// The little-endian `u32` at `offset` of `payload`, or nil if it does not lie wholly inside.
    package static func u32(in payload: UnsafeRawBufferPointer, at offset: Int) -> UInt32? {
        guard offset >= 0, offset <= payload.count - 4 else { return nil }
        return ByteReader.u32(payload, at: offset)
    }

    /// The little-endian `u64` at `offset` of `payload`, or nil if it does not lie wholly inside.
    package static func u64(in payload: UnsafeRawBufferPointer, at offset: Int) -> UInt64? {
        guard offset >= 0, offset <= payload.count - 8 else { return nil }
        return ByteReader.u64(payload, at: offset)
    }

    /// The 16-byte id at `offset` of `payload` (bytes in `uuid_t` order, as the log stores event ids), or
    /// nil if it does not lie wholly inside.
    package static func uuid(in payload: UnsafeRawBufferPointer, at offset: Int) -> UUID? {
        guard offset >= 0, offset <= payload.count - 16 else { return nil }
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &uuid) {
            $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: payload[offset..<offset + 16]))
        }
        return UUID(uuid: uuid)
    }

    /// The byte at `offset` of `payload`, or nil if it lies outside.
    package static func u8(in payload: [UInt8], at offset: Int) -> UInt8? {
        payload.withUnsafeBytes { u8(in: $0, at: offset) }
    }

    /// The little-endian `u16` at `offset` of `payload`, or nil if it does not lie wholly inside.
    package static func u16(in payload: [UInt8], at offset: Int) -> UInt16? {
        payload.withUnsafeBytes { u16(in: $0, at: offset) }
    }

    /// The little-endian `u32` at `offset` of `payload`, or nil if it does not lie wholly inside.
    package static func u32(in payload: [UInt8], at offset: Int) -> UInt32? {
        payload.withUnsafeBytes { u32(in: $0, at: offset) }
    }

    /// The little-endian `u64` at `offset` of `payload`, or nil if it does not lie wholly inside.
    package static func u64(in payload: [UInt8], at offset: Int) -> UInt64? {
        payload.withUnsafeBytes { u64(in: $0, at: offset) }
    }

    /// The 16-byte id at `offset` of `payload`, or nil if it does not lie wholly inside.
    package static func uuid(in payload: [UInt8], at offset: Int) -> UUID? {
        payload.withUnsafeBytes { uuid(in: $0, at: offset) }
    }
}

// MARK: - Errors

/// A run block that cannot be used: the file and block it is in, and what is wrong.
///
/// The store reports it as `EventStoreError(.corruptedStorage, error.description)`, and the indexer
/// rebuilds the run from its log span (decision 0007, §5), so the message names the file and block and
/// sends the operator to `annals verify`.
package enum IndexBlockError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The block's payload does not match its CRC.
    case damaged(path: String, block: UInt64)
    /// The file ends before the block does.
    case short(path: String, block: UInt64)
    /// The block's CRC holds but its contents contradict the format (a count or an offset out of range).
    case malformed(path: String, block: UInt64, reason: String)

    package var path: String {
        switch self {
        case .damaged(let path, _), .short(let path, _), .malformed(let path, _, _): path
        }
    }

    package var block: UInt64 {
        switch self {
        case .damaged(_, let block), .short(_, let block), .malformed(_, let block, _): block
        }
    }

    package var description: String {
        switch self {
        case .damaged(let path, let block):
            "index run \(path), block \(block): checksum mismatch; run `annals verify`"
        case .short(let path, let block):
            "index run \(path), block \(block): the file ends inside the block; run `annals verify`"
        case .malformed(let path, let block, let reason):
            "index run \(path), block \(block): \(reason); run `annals verify`"
        }
    }
}

// MARK: - Writing

/// Packs fixed- or variable-size entries into sealed blocks, never letting an entry straddle two.
///
/// A run writer encodes each section through one of these: it announces an entry with
/// ``beginEntry(size:)`` (which seals the current block first when the entry does not fit in what is
/// left), writes the entry's fields with the `put` methods, and calls ``finishBlock()`` at the end of a
/// section so that the next section starts on a block of its own. Sealed blocks collect in ``sealed``
/// until the caller writes them out and calls ``removeSealed()``, which keeps the buffer's storage, so
/// a flush or merge reuses one buffer for the whole run.
package struct IndexBlockWriter {
    /// Where an entry was placed: its block (counted from the writer's first) and byte offset in the
    /// payload. An offset of 0 marks the first entry of a block, whose key goes into the fences.
    package struct Location: Hashable, Sendable {
        package var block: UInt64
        package var offset: Int
    }

    /// Sealed blocks not yet removed, back to back; a whole number of blocks.
    package private(set) var sealed: [UInt8]
    /// Blocks sealed since the writer was created, including those already removed from ``sealed``.
    package private(set) var blocksWritten: UInt64 = 0
    /// The open block's payload so far.
    private var payload: [UInt8]
    /// Where the announced entry ends in `payload`; `put` past it is a bug in the caller.
    private var entryEnd = 0

    /// A writer whose ``sealed`` buffer starts with room for `capacity` bytes.
    package init(capacity: Int = IndexBlock.size) {
        sealed = []
        sealed.reserveCapacity(capacity)
        payload = []
        payload.reserveCapacity(IndexBlock.size)
    }

    /// Bytes of payload used in the open block (0 when no block is open).
    package var bytesInBlock: Int { payload.count }

    /// Bytes still free in the open block.
    package var bytesLeftInBlock: Int { IndexBlock.payloadSize - payload.count }

    /// Announces an entry of `size` bytes, sealing the open block first if the entry does not fit in it.
    ///
    /// The entry's bytes must then be written with `put` before the next entry is announced.
    @discardableResult
    package mutating func beginEntry(size: Int) -> Location {
        precondition(size > 0 && size <= IndexBlock.payloadSize, "an index entry is 1 to 4,092 bytes")
        precondition(payload.count == entryEnd, "the previous entry was not completely written")
        if size > bytesLeftInBlock { finishBlock() }
        let location = Location(block: blocksWritten, offset: payload.count)
        entryEnd = payload.count + size
        return location
    }

    /// Appends a whole entry: ``beginEntry(size:)`` then its bytes.
    @discardableResult
    package mutating func append(_ entry: some Collection<UInt8>) -> Location {
        let location = beginEntry(size: entry.count)
        put(bytes: entry)
        return location
    }

    package mutating func put(_ value: UInt8) {
        checkRoom(1)
        payload.append(value)
    }

    package mutating func put(_ value: UInt16) {
        checkRoom(2)
        payload.append(UInt8(truncatingIfNeeded: value))
        payload.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    package mutating func put(_ value: UInt32) {
        checkRoom(4)
        for shift in stride(from: 0, to: 32, by: 8) {
            payload.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    package mutating func put(_ value: UInt64) {
        checkRoom(8)
        for shift in stride(from: 0, to: 64, by: 8) {
            payload.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    /// Writes an id's 16 bytes in `uuid_t` order, as the log stores it.
    package mutating func put(_ value: UUID) {
        checkRoom(16)
        withUnsafeBytes(of: value.uuid) { payload.append(contentsOf: $0) }
    }

    package mutating func put(bytes: some Collection<UInt8>) {
        checkRoom(bytes.count)
        payload.append(contentsOf: bytes)
    }

    /// Pads and seals the open block, if any entry was written to it; a section that wrote nothing
    /// takes no block.
    package mutating func finishBlock() {
        precondition(payload.count == entryEnd, "the last entry was not completely written")
        guard !payload.isEmpty else { return }
        IndexBlock.seal(&payload)
        sealed.append(contentsOf: payload)
        payload.removeAll(keepingCapacity: true)
        entryEnd = 0
        blocksWritten += 1
    }

    /// Empties ``sealed`` once the caller has written it out, keeping its storage for the next blocks.
    package mutating func removeSealed() {
        sealed.removeAll(keepingCapacity: true)
    }

    /// Traps when the caller writes more than the entry it announced, which would break a block's layout.
    private func checkRoom(_ count: Int) {
        precondition(payload.count + count <= entryEnd, "an index entry was written past its announced size")
    }
}
