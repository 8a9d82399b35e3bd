import CAnnalsCRC32C

/// The hashes the on-disk index stores: XXH64, and the key hash of stream, category and event-type names.
///
/// Index runs store these values and sort by them, so they must not change between processes, builds or
/// platforms. Swift's `Hasher` is seeded per process, hence XXH64, implemented in the C target from the
/// published specification and checked against its test vectors (decision 0007, "Hash"). A hash only
/// narrows a lookup: callers resolve collisions by comparing names or by loading the candidate events.
package enum IndexHash {
    /// What a hashed name names. The raw value is the first byte hashed, so a stream, a category and an
    /// event type of the same name get unrelated hashes. Part of the on-disk format: never renumber.
    package enum Kind: UInt8, Sendable {
        case stream = 1
        case category = 2
        case eventType = 3
    }

    /// XXH64 of `bytes` with `seed`.
    package static func xxh64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        annals_xxh64(bytes.baseAddress, bytes.count, seed)
    }

    /// XXH64 of `bytes` with `seed`.
    package static func xxh64(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { xxh64($0, seed: seed) }
    }

    /// The key hash of a name: XXH64, seed 0, over the kind's byte followed by the name's UTF-8.
    ///
    /// The bytes are assembled in a temporary buffer (on the stack for the usual short names), so a lookup
    /// on the append path does not allocate.
    package static func key(_ kind: Kind, _ name: String) -> UInt64 {
        var name = name
        return name.withUTF8 { utf8 in
            withUnsafeTemporaryAllocation(byteCount: utf8.count + 1, alignment: 1) { buffer in
                buffer[0] = kind.rawValue
                UnsafeMutableRawBufferPointer(rebasing: buffer[1...]).copyMemory(from: UnsafeRawBufferPointer(utf8))
                return xxh64(UnsafeRawBufferPointer(buffer))
            }
        }
    }
}
