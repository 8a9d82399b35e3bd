import Foundation

/// The blocked Bloom filter of an index run's `IDF` (event ids) and `DIF` (stream-name hashes) sections.
///
/// One filter block is the 4,092-byte payload of one 4 KiB index block (the block's CRC is handled by the
/// block layer). A run has one filter block per 16 data blocks of `IDS` (170 ids each, 2,720 keys) or of
/// `DIR`, so filters are built as the data blocks stream out and a lookup reads one block (decision 0007,
/// §2.2 and §4). Each key touches a single 64-byte line, one cache line, so a probe costs one memory access.
/// At about 12 bits per key and 8 probes, the false-positive rate is about 0.4–0.5 %; there are no false
/// negatives.
///
/// The layout is part of the on-disk format and must give the same bits on every platform. For a 64-bit
/// key hash `k`:
///
/// 1. `m = mix(k)`, the SplitMix64 finalizer: `z = (k ^ (k >> 30)) × 0xBF58476D1CE4E5B9`,
///    `z = (z ^ (z >> 27)) × 0x94D049BB133111EB`, `m = z ^ (z >> 31)` (all arithmetic mod 2⁶⁴).
/// 2. line `L = ((m >> 32) × 63) >> 32`, in 0..<63; the line is payload bytes `64·L ..< 64·L + 64`.
///    Bytes 4,032..<4,092 are not used and are written as zero.
/// 3. `h = m mod 2³²`. Eight times: bit `b = h >> 23` (0..<512) of the line is set, then
///    `h = h × 0x9E3779B9 mod 2³²`.
/// 4. Bit `b` of a line is bit `b & 7` (1 = least significant) of line byte `b >> 3`: payload byte
///    `64·L + (b >> 3)`, mask `1 << (b & 7)`.
/// 5. A key may be present only if all eight of its bits are set. Probes may coincide, so a key sets at
///    most eight bits.
///
/// Step 1 matters: `DIR` is sorted by name hash, so the keys of one `DIF` block share their high bits, and
/// taking the line from the raw hash would pile them into one or two lines. The finalizer is a bijection
/// that spreads any input, whatever its distribution.
package enum BlockedBloom {
    /// Bytes of one filter block: a 4 KiB index block less its CRC.
    package static let payloadSize = 4_092
    /// 64-byte lines in a filter block; the 60 bytes left over stay zero.
    package static let lineCount = 63
    /// Bytes of one line: a CPU cache line.
    package static let lineSize = 64
    /// Bits set per key, all within one line.
    package static let probeCount = 8

    /// Adds a key, given its 64-bit hash, to the filter block `payload` (at least `lineCount × lineSize`
    /// bytes, normally `payloadSize`).
    package static func insert(_ hash: UInt64, into payload: UnsafeMutableRawBufferPointer) {
        precondition(payload.count >= lineCount * lineSize, "a filter block holds \(lineCount) lines of 64 bytes")
        let (lineStart, firstProbe) = locate(hash)
        var probe = firstProbe
        for _ in 0..<probeCount {
            let bit = Int(probe >> 23)
            payload[lineStart + (bit >> 3)] |= UInt8(1) << (bit & 7)
            probe &*= 0x9E37_79B9
        }
    }

    /// Whether a key with this hash may be in the filter block `payload`: `false` means it is certainly
    /// absent; `true` means present, or a false positive (about 1 in 200 to 250 for a full block).
    package static func mayContain(_ hash: UInt64, in payload: UnsafeRawBufferPointer) -> Bool {
        precondition(payload.count >= lineCount * lineSize, "a filter block holds \(lineCount) lines of 64 bytes")
        let (lineStart, firstProbe) = locate(hash)
        var probe = firstProbe
        for _ in 0..<probeCount {
            let bit = Int(probe >> 23)
            if payload[lineStart + (bit >> 3)] & (UInt8(1) << (bit & 7)) == 0 { return false }
            probe &*= 0x9E37_79B9
        }
        return true
    }

    /// A filter block of `payloadSize` bytes holding `hashes`.
    package static func build(hashes: some Sequence<UInt64>) -> [UInt8] {
        var payload = [UInt8](repeating: 0, count: payloadSize)
        payload.withUnsafeMutableBytes { buffer in
            for hash in hashes { insert(hash, into: buffer) }
        }
        return payload
    }

    /// The key hash of an event id for `IDF`: XXH64, seed 0, of the id's 16 bytes in RFC 4122 order.
    ///
    /// Ids are not used directly: `IDS` is sorted by id, and time-ordered ids (UUIDv7) share their
    /// leading bytes.
    package static func idHash(_ id: UUID) -> UInt64 {
        withUnsafeBytes(of: id.uuid) { IndexHash.xxh64($0) }
    }

    /// Steps 1 to 3 of the layout: the byte offset of the key's line, and the first probe value.
    private static func locate(_ hash: UInt64) -> (lineStart: Int, probe: UInt32) {
        var z = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        let mixed = z ^ (z >> 31)
        let line = Int(((mixed >> 32) &* UInt64(lineCount)) >> 32)
        return (line * lineSize, UInt32(truncatingIfNeeded: mixed))
    }
}
