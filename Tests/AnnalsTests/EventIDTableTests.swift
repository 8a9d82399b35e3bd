import Foundation
import Testing

@testable import Annals

@Suite("Event id table")
struct EventIDTableTests {
    @Test("holds what a dictionary holds, however the ids are made")
    func sameAsDictionary() {
        var table = EventIDTable()
        var reference: [UUID: UInt64] = [:]
        table.reserveCapacity(10_000)
        // Random ids, and time-ordered ones that share their first bytes.
        for position in 0..<5_000 as Range<UInt64> {
            let random = UUID()
            var bytes = UUID().uuid
            bytes.0 = 0x01
            bytes.1 = 0x8F
            bytes.15 = UInt8(truncatingIfNeeded: position)
            let ordered = UUID(uuid: bytes)
            table[random] = position
            table[ordered] = position + 1_000_000
            reference[random] = position
            reference[ordered] = position + 1_000_000
        }
        #expect(table.count == reference.count)
        let first = reference.first!
        table[first.key] = 99
        reference[first.key] = 99
        #expect(table.count == reference.count, "replacing a value does not count it twice")
        for (id, position) in reference { #expect(table[id] == position) }
        #expect(Dictionary(uniqueKeysWithValues: Array(table)) == reference)
        #expect(table[UUID()] == nil)
    }
}
