import AnnalsTestSupport
import Foundation
import Testing

@testable import AnnalsFileStore

/// One XXH64 test vector. The values were computed with the Python `xxhash` package (4.1.0, xxHash 0.8.4)
/// and agree with the system's libxxhash 0.8.1; the first three are the widely published ones.
struct XXH64Vector: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let seed: UInt64
    let expected: UInt64

    var testDescription: String { name }

    static let all: [XXH64Vector] = [
        XXH64Vector(name: "empty", bytes: [], seed: 0, expected: 0xEF46_DB37_51D8_E999),
        XXH64Vector(name: "a", bytes: Array("a".utf8), seed: 0, expected: 0xD24E_C4F1_A98C_6E5B),
        XXH64Vector(name: "abc", bytes: Array("abc".utf8), seed: 0, expected: 0x44BC_2CF5_AD77_0999),
        XXH64Vector(name: "abc, seed 1", bytes: Array("abc".utf8), seed: 1, expected: 0xBEA9_CA81_9932_8908),
        // 9 bytes: one 8-byte lane and one single byte.
        XXH64Vector(name: "123456789", bytes: Array("123456789".utf8), seed: 0, expected: 0x8CB8_41DB_40E6_AE83),
        // 32 bytes: exactly one stripe, no tail.
        XXH64Vector(name: "bytes 0..<32", bytes: (0..<32).map { UInt8($0) }, seed: 0, expected: 0xCBF5_9C51_16FF_32B4),
        // 43 bytes: one stripe, an 8-byte lane and three single bytes.
        XXH64Vector(
            name: "the quick brown fox", bytes: Array("The quick brown fox jumps over the lazy dog".utf8), seed: 0,
            expected: 0x0B24_2D36_1FDA_71BC),
        // 44 bytes: one stripe, an 8-byte lane and a 4-byte lane.
        XXH64Vector(
            name: "the quick brown fox.", bytes: Array("The quick brown fox jumps over the lazy dog.".utf8), seed: 0,
            expected: 0x44AD_3370_5751_AD73),
        // 255 bytes: seven stripes, three 8-byte lanes, a 4-byte lane and three single bytes.
        XXH64Vector(
            name: "bytes 0..<255", bytes: (0..<255).map { UInt8($0) }, seed: 0, expected: 0x0F7D_9750_7CAA_D693),
        XXH64Vector(
            name: "bytes 0..<255, seed 0x9E3779B97F4A7C15", bytes: (0..<255).map { UInt8($0) },
            seed: 0x9E37_79B9_7F4A_7C15, expected: 0x5352_384C_05C2_F45E),
    ]
}

@Suite("Index building blocks: XXH64, key hashes, blocked Bloom filter")
struct IndexBuildingBlocksTests {
    // MARK: XXH64

    @Test("XXH64 matches the reference implementation", arguments: XXH64Vector.all)
    func xxh64Vectors(vector: XXH64Vector) {
        #expect(IndexHash.xxh64(vector.bytes, seed: vector.seed) == vector.expected)
        vector.bytes.withUnsafeBytes { #expect(IndexHash.xxh64($0, seed: vector.seed) == vector.expected) }
    }

    @Test("XXH64 does not depend on the alignment of the bytes, and takes an empty buffer without an address")
    func xxh64Alignment() {
        var random = SeededRandom(seed: 0x0A11_6E)
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &random) }
        for start in 0..<8 {
            for length in [0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 100, 255] {
                let copy = Array(bytes[start..<start + length])
                let inPlace = bytes[start..<start + length].withUnsafeBytes { IndexHash.xxh64($0, seed: 7) }
                #expect(inPlace == IndexHash.xxh64(copy, seed: 7), "start \(start), length \(length)")
            }
        }
        #expect(IndexHash.xxh64(UnsafeRawBufferPointer(start: nil, count: 0)) == 0xEF46_DB37_51D8_E999)
    }

    // MARK: Key hashes

    @Test("a key hash is XXH64 of the kind's byte and the name's UTF-8, and differs by kind")
    func keyHash() {
        // Literal values from the Python `xxhash` package over b"\x01orders-42", b"\x02…", b"\x03…".
        #expect(IndexHash.key(.stream, "orders-42") == 0xEF07_C27A_4A6F_374B)
        #expect(IndexHash.key(.category, "orders-42") == 0x4E83_ED37_3862_DB6B)
        #expect(IndexHash.key(.eventType, "orders-42") == 0xB0F8_F364_7294_17FB)
        // "café-☕" with a precomposed é (U+00E9) and U+2615; and the empty name, which is the kind byte alone.
        #expect(IndexHash.key(.stream, "caf\u{E9}-\u{2615}") == 0x8482_4E82_B7DA_8B33)
        #expect(IndexHash.key(.stream, "") == 0x8A41_2781_1B21_E730)
        #expect(IndexHash.key(.eventType, "OrderPlaced") == 0x58DE_A01E_A903_CED0)

        let long = String(repeating: "a-long-stream-name-", count: 40)
        for kind in [IndexHash.Kind.stream, .category, .eventType] {
            for name in ["orders-42", "", "caf\u{E9}-\u{2615}", long] {
                #expect(IndexHash.key(kind, name) == IndexHash.xxh64([kind.rawValue] + Array(name.utf8)))
            }
        }
    }

    @Test("the id hash is XXH64 of the id's 16 bytes in RFC 4122 order")
    func idHash() throws {
        let id = try #require(UUID(uuidString: "00010203-0405-0607-0809-0A0B0C0D0E0F"))
        // Python: xxhash.xxh64_intdigest(bytes(range(16))).
        #expect(BlockedBloom.idHash(id) == 0x44B6_EF2F_B841_69F7)
    }

    // MARK: Blocked Bloom filter

    @Test("a full filter block finds every key it holds, and under 2 % of the keys it does not")
    func bloomRates() {
        var random = SeededRandom(seed: 0x1DF)
        let present = (0..<2_688).map { _ in random.next() }
        let payload = BlockedBloom.build(hashes: present)
        // Measured: 416 false positives in 100,000 (0.42 %); 15,634 bits set.
        let (misses, falsePositives) = Self.measure(payload, present: present, random: &random) { $0 }
        #expect(misses == 0)
        #expect(falsePositives < 2_000, "\(falsePositives) false positives in 100,000")
    }

    @Test("keys that share their high bits, as the sorted name hashes of one DIF block do, are spread all the same")
    func bloomRatesOfClusteredKeys() {
        // DIR is sorted by name hash, so one DIF block's hashes lie in a narrow range. Without the filter's own
        // mixing step they would all fall into one or two lines.
        let clustered: (UInt64) -> UInt64 = { (0xABC << 52) | ($0 >> 12) }
        var random = SeededRandom(seed: 0xD1F)
        let present = (0..<2_688).map { _ in clustered(random.next()) }
        let payload = BlockedBloom.build(hashes: present)
        // Measured: 371 false positives in 100,000 (0.37 %).
        let (misses, falsePositives) = Self.measure(payload, present: present, random: &random, shape: clustered)
        #expect(misses == 0)
        #expect(falsePositives < 2_000, "\(falsePositives) false positives in 100,000")
    }

    @Test("the bit layout is the documented one")
    func bloomGolden() {
        // Derived independently (a Python transcription of BlockedBloom's doc comment): key 1 goes to line 21,
        // key 2 to line 54, key 3 to line 7, eight bits each, as (payload byte, value).
        let expected: [(Int, UInt8)] = [
            (456, 0x40), (457, 0x04), (463, 0x01), (471, 0x01), (483, 0x01), (504, 0x40), (507, 0x40), (509, 0x08),
            (1345, 0x02), (1348, 0x01), (1360, 0x10), (1369, 0x80), (1375, 0x20), (1392, 0x01), (1403, 0x40),
            (1405, 0x40), (3470, 0x10), (3485, 0x08), (3489, 0x08), (3491, 0x08), (3496, 0x80), (3503, 0x80),
            (3506, 0x10), (3518, 0x40),
        ]
        var expectedPayload = [UInt8](repeating: 0, count: 4_092)
        for (index, value) in expected { expectedPayload[index] = value }

        let payload = BlockedBloom.build(hashes: [1, 2, 3])
        #expect(payload.count == BlockedBloom.payloadSize)
        #expect(payload == expectedPayload)
    }

    @Test("inserting a key changes at most eight bits, all in one 64-byte line of the first 4,032 bytes")
    func bloomLocality() {
        var random = SeededRandom(seed: 0x11E)
        let base = BlockedBloom.build(hashes: (0..<1_000).map { _ in random.next() })
        for _ in 0..<1_000 {
            let hash = random.next()
            var payload = base
            payload.withUnsafeMutableBytes { BlockedBloom.insert(hash, into: $0) }
            let changed = payload.indices.filter { payload[$0] != base[$0] }
            let lines = Set(changed.map { $0 / BlockedBloom.lineSize })
            let bitsAdded = changed.reduce(0) { $0 + (payload[$1] ^ base[$1]).nonzeroBitCount }
            #expect(lines.count <= 1, "hash \(hash) changed lines \(lines.sorted())")
            #expect(changed.allSatisfy { $0 < BlockedBloom.lineCount * BlockedBloom.lineSize })
            #expect(bitsAdded <= BlockedBloom.probeCount)
            #expect(payload.withUnsafeBytes { BlockedBloom.mayContain(hash, in: $0) })
        }
    }

    @Test("an empty filter block contains nothing")
    func bloomEmpty() {
        let payload = BlockedBloom.build(hashes: [])
        #expect(payload == [UInt8](repeating: 0, count: BlockedBloom.payloadSize))
        var random = SeededRandom(seed: 0xE)
        let found = payload.withUnsafeBytes { buffer in
            (0..<1_000).contains { _ in BlockedBloom.mayContain(random.next(), in: buffer) }
        }
        #expect(!found)
    }

    /// Probes `payload` for every key of `present` (counting misses) and for 100,000 keys drawn from `random`
    /// through `shape` that are not in `present` (counting false positives).
    private static func measure(
        _ payload: [UInt8], present: [UInt64], random: inout SeededRandom, shape: (UInt64) -> UInt64
    ) -> (misses: Int, falsePositives: Int) {
        let presentSet = Set(present)
        return payload.withUnsafeBytes { buffer in
            let misses = present.count(where: { !BlockedBloom.mayContain($0, in: buffer) })
            var falsePositives = 0
            var probed = 0
            while probed < 100_000 {
                let hash = shape(random.next())
                if presentSet.contains(hash) { continue }
                probed += 1
                if BlockedBloom.mayContain(hash, in: buffer) { falsePositives += 1 }
            }
            return (misses, falsePositives)
        }
    }
}
