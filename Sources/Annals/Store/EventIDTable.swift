import Foundation

/// Event id → `$all` position, in 256 dictionaries chosen by a hash of the id.
///
/// One dictionary of every id stored is rehashed whole when it outgrows its capacity: at 3.1 million
/// events that is one pause of several hundred milliseconds on the writer, inside the index lock, and
/// every append waits behind it (a 64-connection soak saw p99 go from 30 ms to 923 ms in that minute).
/// Split 256 ways, each rehash moves 1/256 of the ids, and the pauses stay in the low milliseconds
/// however large the store grows. The shard is chosen from all 16 bytes, so ids that share a prefix
/// or a suffix (time-ordered UUIDs, a fixed node field) still spread evenly.
package struct EventIDTable: Sendable, Sequence {
    private static let shardCount = 256
    private var shards: [[UUID: UInt64]] = Array(repeating: [:], count: shardCount)
    package private(set) var count = 0

    package init() {}

    private static func shard(of id: UUID) -> Int {
        let (high, low) = withUnsafeBytes(of: id.uuid) { bytes in
            (
                bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            )
        }
        return Int(truncatingIfNeeded: ((high ^ low) &* 0x9E37_79B9_7F4A_7C15) >> 56)
    }

    package subscript(id: UUID) -> UInt64? {
        get { shards[Self.shard(of: id)][id] }
        set {
            let shard = Self.shard(of: id)
            let before = shards[shard].count
            shards[shard][id] = newValue
            count += shards[shard].count - before
        }
    }

    /// Makes room for `total` ids in all, spread evenly over the shards.
    package mutating func reserveCapacity(_ total: Int) {
        let perShard = total / Self.shardCount + total / (Self.shardCount * 8) + 1
        for index in shards.indices where shards[index].capacity < perShard {
            shards[index].reserveCapacity(perShard)
        }
    }

    package func makeIterator() -> FlattenSequence<[[UUID: UInt64]]>.Iterator {
        shards.joined().makeIterator()
    }
}
