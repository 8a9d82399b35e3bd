import Annals
import Foundation

/// The index entries of the positions written since the last flush of the on-disk index: one slot per
/// position, in fixed arrays allocated (and touched) once, so the memtable's memory is the same from
/// the first append to the millionth (decision 0007, §1).
///
/// A slot holds the event's location in the log, its stream's number, its revision, its id, the hashes
/// of its category and event type, and the slot of the stream's previous event in this memtable (a
/// chain, so a stream's recent revisions are found without a per-stream array). An open-addressing
/// table at load ≤ ½ finds a slot by event id (law 6). The stream records the memtable's events and
/// control records changed are kept beside the slots, as ``Stream`` values, and go to the run's
/// directory when the memtable is written.
///
/// Only the writer fills a memtable, under the engine lock. Readers see slots below a count they read
/// under the same lock; those slots never change until the memtable is reset, which happens only once
/// no reader holds it (the index keeps a retired memtable until it is uniquely referenced).
final class IndexMemtable: @unchecked Sendable {
    /// A stream record as this memtable leaves it: the state the rules need, where its events are, and
    /// how to walk its events that live in this memtable.
    struct Stream: Sendable, Equatable {
        var name: StreamName
        var number: UInt64
        var state: StreamState
        /// The `$all` position of revision 0, and of its last revision (any memtable or run); nil while
        /// the stream has no events.
        var firstPosition: UInt64?
        var lastPosition: UInt64?
        /// The revision of its first event in this memtable, and the slot of its last one here.
        var firstRevisionHere: UInt64?
        var lastSlot: Int32 = -1
    }

    static let noSlot: Int32 = -1

    let capacity: Int
    /// The `$all` position of slot 0.
    private(set) var firstPosition: UInt64 = 0
    /// Slots filled.
    private(set) var count = 0
    /// The first stream number this memtable may create, and how many it created.
    private(set) var firstStreamNumber: UInt64 = 0
    private(set) var createdStreams: [UInt64] = []
    /// Stream records changed while this memtable was active, by number.
    private(set) var streams: [UInt64: Stream] = [:]
    /// Stream number by name, for the streams in ``streams``.
    private(set) var numbers: [StreamName: UInt64] = [:]

    private let locations: UnsafeMutableBufferPointer<UInt64>
    private let streamNumbers: UnsafeMutableBufferPointer<UInt64>
    private let revisions: UnsafeMutableBufferPointer<UInt64>
    private let idHigh: UnsafeMutableBufferPointer<UInt64>
    private let idLow: UnsafeMutableBufferPointer<UInt64>
    private let categoryHashes: UnsafeMutableBufferPointer<UInt64>
    private let typeHashes: UnsafeMutableBufferPointer<UInt64>
    private let previous: UnsafeMutableBufferPointer<Int32>
    /// Open addressing by id: slot + 1, 0 for empty. A power of two at least twice the capacity.
    private let idTable: UnsafeMutableBufferPointer<Int32>

    /// Bytes a memtable of `capacity` slots allocates: seven 8-byte and one 4-byte array per slot, and
    /// the id table (4 bytes an entry, a power of two at least twice the capacity).
    static func bytes(capacity: Int) -> Int {
        var tableSize = 1
        while tableSize < capacity * 2 { tableSize <<= 1 }
        return capacity * (8 * 7 + 4) + tableSize * 4
    }

    init(capacity: Int) {
        precondition(capacity > 0 && capacity < Int(Int32.max) / 4, "memtable capacity out of range")
        self.capacity = capacity
        func make<T>(_ value: T) -> UnsafeMutableBufferPointer<T> {
            let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: capacity)
            buffer.initialize(repeating: value)
            return buffer
        }
        locations = make(0)
        streamNumbers = make(0)
        revisions = make(0)
        idHigh = make(0)
        idLow = make(0)
        categoryHashes = make(0)
        typeHashes = make(0)
        previous = make(Self.noSlot)
        var tableSize = 1
        while tableSize < capacity * 2 { tableSize <<= 1 }
        idTable = .allocate(capacity: tableSize)
        idTable.initialize(repeating: 0)
    }

    deinit {
        for buffer in [locations, streamNumbers, revisions, idHigh, idLow, categoryHashes, typeHashes] {
            buffer.deallocate()
        }
        previous.deallocate()
        idTable.deallocate()
    }

    /// Empties the memtable for positions from `position` and stream numbers from `streamNumber`.
    func reset(firstPosition position: UInt64, firstStreamNumber streamNumber: UInt64) {
        // The whole table, not slot by slot: removing entries one at a time from a linear-probing table
        // breaks the probe chains of the entries after them, which then stay behind, until the table
        // is full and a probe never ends. Clearing 8 bytes a slot once per memtable costs nothing.
        idTable.update(repeating: 0)
        firstPosition = position
        firstStreamNumber = streamNumber
        count = 0
        createdStreams.removeAll(keepingCapacity: true)
        streams.removeAll(keepingCapacity: true)
        numbers.removeAll(keepingCapacity: true)
    }

    var isFull: Bool { count == capacity }
    /// Entries in use in the id table: exactly ``count`` (tests check that a reset leaves none behind).
    var idTableEntries: Int { idTable.reduce(0) { $0 + ($1 == 0 ? 0 : 1) } }
    var remaining: Int { capacity - count }
    /// The position after the last slot.
    var endPosition: UInt64 { firstPosition + UInt64(count) }

    // MARK: Writing

    /// Records a stream the log names for the first time; returns its number.
    func createStream(_ name: StreamName, nameHash: UInt64) -> UInt64 {
        let number = firstStreamNumber + UInt64(createdStreams.count)
        createdStreams.append(nameHash)
        streams[number] = Stream(name: name, number: number, state: StreamState())
        numbers[name] = number
        return number
    }

    /// Makes `record` (found in a run) one this memtable carries, so that its changes go to the next run.
    func adopt(_ record: Stream) {
        var copy = record
        copy.firstRevisionHere = nil
        copy.lastSlot = Self.noSlot
        streams[record.number] = copy
        numbers[record.name] = record.number
    }

    /// Replaces the state of a stream this memtable carries (metadata, deletion).
    func setState(_ state: StreamState, ofStream number: UInt64) {
        streams[number]?.state = state
    }

    /// Adds one event of a carried stream at the next position; returns its slot. The caller checked
    /// that the memtable has room and that the id is new.
    @discardableResult
    func append(
        id: UUID, stream number: UInt64, location: UInt64, categoryHash: UInt64, typeHash: UInt64
    ) -> Int {
        precondition(count < capacity, "memtable full")
        guard var record = streams[number] else {
            preconditionFailure("append to a stream the memtable does not carry")
        }
        let slot = count
        let position = firstPosition + UInt64(slot)
        let revision = record.state.eventCount
        let (high, low) = Self.split(id)
        locations[slot] = location
        streamNumbers[slot] = number
        revisions[slot] = revision
        idHigh[slot] = high
        idLow[slot] = low
        categoryHashes[slot] = categoryHash
        typeHashes[slot] = typeHash
        previous[slot] = record.lastSlot
        let found = probe(high: high, low: low)
        idTable[found.index] = Int32(slot + 1)
        record.state = StreamRules.appending(1, to: record.state)
        if record.firstPosition == nil { record.firstPosition = position }
        record.lastPosition = position
        if record.firstRevisionHere == nil { record.firstRevisionHere = revision }
        record.lastSlot = Int32(slot)
        streams[number] = record
        count += 1
        return slot
    }

    // MARK: Reading (slots below a count read under the engine lock)

    func location(ofSlot slot: Int) -> UInt64 { locations[slot] }
    func streamNumber(ofSlot slot: Int) -> UInt64 { streamNumbers[slot] }
    func revision(ofSlot slot: Int) -> UInt64 { revisions[slot] }
    func categoryHash(ofSlot slot: Int) -> UInt64 { categoryHashes[slot] }
    func typeHash(ofSlot slot: Int) -> UInt64 { typeHashes[slot] }
    func previousSlot(of slot: Int) -> Int32 { previous[slot] }
    func id(ofSlot slot: Int) -> UUID { Self.join(idHigh[slot], idLow[slot]) }
    func idKey(ofSlot slot: Int) -> (high: UInt64, low: UInt64) { (idHigh[slot], idLow[slot]) }

    /// The slot holding `id`, if this memtable has it.
    func slot(of id: UUID) -> Int? {
        let (high, low) = Self.split(id)
        let found = probe(high: high, low: low)
        return found.slot
    }

    /// Linear probing from the id's hash: the index where it is (with its slot) or where it would go.
    private func probe(high: UInt64, low: UInt64) -> (index: Int, slot: Int?) {
        let mask = idTable.count - 1
        var index = Int(truncatingIfNeeded: ((high ^ low) &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
        while true {
            let entry = idTable[index]
            if entry == 0 { return (index, nil) }
            let slot = Int(entry - 1)
            if idHigh[slot] == high, idLow[slot] == low { return (index, slot) }
            index = (index + 1) & mask
        }
    }

    /// The slots of a carried stream's events here from revision `from` upward, in revision order, at
    /// most `limit`, among the first `visible` slots.
    func slots(ofStream number: UInt64, from revision: UInt64, visible: Int, limit: Int) -> [Int] {
        guard let record = streams[number], let firstHere = record.firstRevisionHere else { return [] }
        var slots: [Int] = []
        var slot = Int(record.lastSlot)
        while slot >= 0 {
            if slot < visible {
                let slotRevision = revisions[slot]
                if slotRevision < revision { break }
                slots.append(slot)
            }
            if revisions[slot] == firstHere { break }
            slot = Int(previous[slot])
        }
        slots.reverse()
        return slots.count > limit ? Array(slots.prefix(limit)) : slots
    }

    // MARK: Ids as sortable keys

    /// An id as two integers whose order is the order of its 16 bytes.
    static func split(_ id: UUID) -> (UInt64, UInt64) {
        withUnsafeBytes(of: id.uuid) { bytes in
            (
                UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            )
        }
    }

    static func join(_ high: UInt64, _ low: UInt64) -> UUID {
        var value = (high.bigEndian, low.bigEndian)
        return withUnsafeBytes(of: &value) { bytes in
            UUID(
                uuid: (
                    bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                    bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
                ))
        }
    }
}
