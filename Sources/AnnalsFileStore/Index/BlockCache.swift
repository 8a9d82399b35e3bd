import Foundation
import Synchronization

/// A verified block's payload, shared by the cache and every reader holding it.
///
/// A class so that a cache hit hands out a reference instead of copying 4 KiB, and so that a block
/// evicted while a reader still decodes it stays alive until that reader lets go.
package final class CachedBlock: Sendable {
    /// The payload (the block without its CRC), already checked.
    package let bytes: [UInt8]

    package init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The byte at `offset`, or nil outside the payload.
    package func u8(at offset: Int) -> UInt8? { IndexBlock.u8(in: bytes, at: offset) }
    /// The little-endian `u16` at `offset`, or nil if it does not lie wholly inside the payload.
    package func u16(at offset: Int) -> UInt16? { IndexBlock.u16(in: bytes, at: offset) }
    /// The little-endian `u32` at `offset`, or nil if it does not lie wholly inside the payload.
    package func u32(at offset: Int) -> UInt32? { IndexBlock.u32(in: bytes, at: offset) }
    /// The little-endian `u64` at `offset`, or nil if it does not lie wholly inside the payload.
    package func u64(at offset: Int) -> UInt64? { IndexBlock.u64(in: bytes, at: offset) }
    /// The 16-byte id at `offset`, or nil if it does not lie wholly inside the payload.
    package func uuid(at offset: Int) -> UUID? { IndexBlock.uuid(in: bytes, at: offset) }
}

/// The cache of verified run blocks that, with the memtables, makes up the index's memory budget
/// (decision 0007, §1).
///
/// **Bounded by bytes.** Each entry is charged its payload's size plus ``entryOverhead``. The capacity
/// is split evenly over the shards and each shard evicts until it is within its share, so
/// ``residentBytes`` never exceeds ``capacityBytes``. A block that alone exceeds a shard's share is
/// returned to the caller without being cached.
///
/// **Two priorities.** Fence and filter blocks are read by nearly every lookup and are few, so they are
/// cached at ``Priority/high``; data blocks at ``Priority/low``. Eviction takes the least recently used
/// low-priority block first. A low-priority block never displaces a high-priority one: when a shard's
/// share is all high-priority blocks, a data block is returned uncached. So high-priority blocks stay
/// resident exactly as long as they fit, and only a high-priority newcomer evicts the least recently
/// used of them. A block keeps the priority it was first cached with.
///
/// **Sharded.** Keys are spread over independent `Mutex`-protected shards, so readers on many threads
/// rarely meet on one lock. A lock is held only for a dictionary lookup and a few list-pointer updates;
/// `load` (the disk read and CRC check) runs outside it. Two threads missing the same block both load
/// it; the first to insert wins and the other's copy is dropped, so every caller gets the one cached
/// instance.
///
/// Each shard keeps an intrusive doubly linked list per priority over an array of nodes, and a
/// dictionary from key to node index. Freed nodes are reused, so a hit or an insert into a full cache
/// allocates nothing.
package final class BlockCache: Sendable {
    /// How readily a block is evicted: ``low`` before ``high``.
    package enum Priority: Int, Sendable {
        /// Data blocks (`LOC`, `IDS`, `STP`, …).
        case low = 0
        /// Fence and filter blocks, needed by most lookups.
        case high = 1
    }

    /// A block of a run: the run's sequence number and the block number in its file.
    package struct Key: Hashable, Sendable {
        package var file: UInt64
        package var block: UInt64

        package init(file: UInt64, block: UInt64) {
            self.file = file
            self.block = block
        }
    }

    /// The bytes charged per entry on top of its payload: an estimate of what else holding a block costs,
    /// so that the budget's accounting stays close to the process's real use.
    ///
    /// About 160 B on a 64-bit platform: the `CachedBlock` object with its allocation header (32 B), the
    /// payload array's header and allocation rounding, including the 4 CRC bytes its capacity keeps
    /// (40 B), the shard's list node (56 B) and its dictionary slot at ≤ ¾ load (32 B). An estimate errs
    /// high on purpose: the budget is a promise about memory.
    package static let entryOverhead = 160

    /// The most the cache holds, in bytes charged.
    package let capacityBytes: Int
    private let shards: [ShardBox]

    /// A cache of at most `capacityBytes`, split evenly over `shards` shards.
    ///
    /// Fewer shards give each a larger share (a big block is cached more often and eviction is closer to
    /// a global LRU); more shards contend less. Tests use one shard for an exact LRU order.
    package init(capacityBytes: Int, shards: Int = 16) {
        precondition(shards >= 1, "a block cache has at least one shard")
        self.capacityBytes = max(0, capacityBytes)
        let share = self.capacityBytes / shards
        self.shards = (0..<shards).map { _ in ShardBox(capacity: share) }
    }

    /// The block `block` of run `file`: the cached one, or the payload `load` returns, which is cached at
    /// `priority` and returned.
    ///
    /// `load` runs outside the shard's lock and must return the verified payload (see
    /// ``IndexBlock/read(block:of:path:io:)``); if it throws, nothing is cached and the error is rethrown.
    /// A hit makes the block the most recently used of its priority.
    package func block(
        file: UInt64,
        block: UInt64,
        priority: Priority,
        load: () throws -> [UInt8]
    ) rethrows -> CachedBlock {
        let key = Key(file: file, block: block)
        let shard = self.shard(for: key)
        if let cached = shard.state.withLock({ $0.lookup(key) }) { return cached }
        let loaded = try CachedBlock(bytes: load())
        return shard.state.withLock { $0.insert(loaded, for: key, priority: priority) }
    }

    /// Whether block `block` of run `file` is cached; unlike a read, this does not count as a use.
    package func contains(file: UInt64, block: UInt64) -> Bool {
        let key = Key(file: file, block: block)
        return shard(for: key).state.withLock { $0.index[key] != nil }
    }

    /// Drops every cached block of run `file`, once a merge has retired it: its sequence number is never
    /// reused, so its blocks could only take space. Readers still holding one keep it.
    package func removeAll(file: UInt64) {
        for shard in shards {
            shard.state.withLock { $0.removeAll(file: file) }
        }
    }

    /// Bytes charged for the blocks cached now (payloads plus ``entryOverhead`` each).
    package var residentBytes: Int { sum(\.residentBytes) }
    /// Blocks cached now.
    package var count: Int { sum(\.index.count) }
    /// Reads answered from the cache.
    package var hits: Int { sum(\.hits) }
    /// Reads that called `load`.
    package var misses: Int { sum(\.misses) }
    /// Blocks dropped to make room (not those dropped by ``removeAll(file:)``).
    package var evictions: Int { sum(\.evictions) }

    private func sum(_ field: (Shard) -> Int) -> Int {
        var total = 0
        for shard in shards { total += shard.state.withLock { field($0) } }
        return total
    }

    private func shard(for key: Key) -> ShardBox {
        // A fixed mix (splitmix64's finaliser) rather than `Hasher`, whose seed changes per process: the
        // spread of a run's consecutive blocks over shards is then the same in every test run.
        var mixed = (key.file &* 0x9E37_79B9_7F4A_7C15) ^ key.block
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        mixed ^= mixed >> 31
        return shards[Int(mixed % UInt64(shards.count))]
    }
}

/// A shard's lock, in a class because a `Mutex` cannot be an array element.
private final class ShardBox: Sendable {
    let state: Mutex<Shard>

    init(capacity: Int) {
        state = Mutex(Shard(capacity: capacity))
    }
}

/// One shard's entries and accounting; every access is under its `Mutex`.
private struct Shard {
    /// An entry, or a free slot (`block` nil) linked into the free list through `next`.
    struct Node {
        var key: BlockCache.Key
        var block: CachedBlock?
        var cost: Int
        var priority: BlockCache.Priority
        /// Towards the more recently used end of its list.
        var previous: Int
        /// Towards the less recently used end (or the next free node).
        var next: Int
    }

    /// A list of nodes from most (`head`) to least (`tail`) recently used.
    struct List {
        var head = Shard.noNode
        var tail = Shard.noNode
    }

    static let noNode = -1

    let capacity: Int
    var nodes: [Node] = []
    var index: [BlockCache.Key: Int] = [:]
    /// Indexed by `Priority.rawValue`.
    var lists = [List(), List()]
    /// The first free node, the rest linked through `next`.
    var freeList = Shard.noNode
    var residentBytes = 0
    /// The part of `residentBytes` charged to high-priority blocks.
    var highBytes = 0
    var hits = 0
    var misses = 0
    var evictions = 0

    init(capacity: Int) {
        self.capacity = capacity
        // Room for a full share of full blocks up front (bounded, for absurd capacities), so that filling
        // the cache does not regrow these while holding the lock.
        let expected = min(capacity / (IndexBlock.payloadSize + BlockCache.entryOverhead) + 1, 1 << 16)
        nodes.reserveCapacity(expected)
        index.reserveCapacity(expected)
    }

    /// The cached block for `key`, made most recently used, or nil (a miss).
    mutating func lookup(_ key: BlockCache.Key) -> CachedBlock? {
        guard let node = index[key], let block = nodes[node].block else {
            misses += 1
            return nil
        }
        hits += 1
        let priority = nodes[node].priority
        if lists[priority.rawValue].head != node {
            unlink(node)
            pushFront(node)
        }
        return block
    }

    /// Caches `block` under `key` and returns it, or, when another thread's load of the same block got
    /// here first, returns that one (with its priority) and drops `block`.
    mutating func insert(_ block: CachedBlock, for key: BlockCache.Key, priority: BlockCache.Priority) -> CachedBlock {
        if let node = index[key], let existing = nodes[node].block {
            unlink(node)
            pushFront(node)
            return existing
        }
        let cost = block.bytes.count + BlockCache.entryOverhead
        guard makeRoom(for: cost, priority: priority) else { return block }
        let node: Int
        let entry = Node(
            key: key, block: block, cost: cost, priority: priority, previous: Shard.noNode, next: Shard.noNode)
        if freeList != Shard.noNode {
            node = freeList
            freeList = nodes[node].next
            nodes[node] = entry
        } else {
            node = nodes.count
            nodes.append(entry)
        }
        pushFront(node)
        index[key] = node
        residentBytes += cost
        if priority == .high { highBytes += cost }
        return block
    }

    /// Evicts least recently used blocks until `cost` more bytes fit; false (evicting nothing) when they
    /// cannot: the block is larger than the shard, or it is low priority and only high-priority blocks
    /// stand in the way.
    mutating func makeRoom(for cost: Int, priority: BlockCache.Priority) -> Bool {
        guard cost <= capacity else { return false }
        // Checked before evicting anything, so that a block that will not be cached costs no entries.
        if priority == .low && highBytes + cost > capacity { return false }
        while residentBytes + cost > capacity {
            let victim =
                lists[BlockCache.Priority.low.rawValue].tail != Shard.noNode
                ? lists[BlockCache.Priority.low.rawValue].tail : lists[BlockCache.Priority.high.rawValue].tail
            guard victim != Shard.noNode else { return false }  // unreachable: the checks above ensure room
            remove(victim)
            evictions += 1
        }
        return true
    }

    mutating func removeAll(file: UInt64) {
        for node in nodes.indices where nodes[node].block != nil && nodes[node].key.file == file {
            remove(node)
        }
    }

    /// Unlinks `node`, forgets its key and block, and puts the slot on the free list.
    mutating func remove(_ node: Int) {
        unlink(node)
        index[nodes[node].key] = nil
        residentBytes -= nodes[node].cost
        if nodes[node].priority == .high { highBytes -= nodes[node].cost }
        nodes[node].block = nil
        nodes[node].cost = 0
        nodes[node].next = freeList
        freeList = node
    }

    /// Makes `node` the most recently used of its priority's list.
    mutating func pushFront(_ node: Int) {
        let list = nodes[node].priority.rawValue
        let head = lists[list].head
        nodes[node].previous = Shard.noNode
        nodes[node].next = head
        if head != Shard.noNode { nodes[head].previous = node } else { lists[list].tail = node }
        lists[list].head = node
    }

    mutating func unlink(_ node: Int) {
        let list = nodes[node].priority.rawValue
        let previous = nodes[node].previous
        let next = nodes[node].next
        if previous != Shard.noNode { nodes[previous].next = next } else { lists[list].head = next }
        if next != Shard.noNode { nodes[next].previous = previous } else { lists[list].tail = previous }
        nodes[node].previous = Shard.noNode
        nodes[node].next = Shard.noNode
    }
}
