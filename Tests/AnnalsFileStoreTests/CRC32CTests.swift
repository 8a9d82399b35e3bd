import Testing

@testable import AnnalsFileStore

@Suite("CRC32C")
struct CRC32CTests {
    @Test("the check value of '123456789' is 0xE3069283, in hardware and in software")
    func checkValue() {
        let bytes = Array("123456789".utf8)
        #expect(CRC32C.checksum(bytes) == 0xE306_9283)
        #expect(CRC32C.softwareChecksum(bytes) == 0xE306_9283)
    }

    @Test("hardware and software agree on every length and alignment, and chaining equals one pass")
    func agree() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<1_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for start in 0..<9 {
            for end in stride(from: start, through: bytes.count, by: 37) {
                let slice = bytes[start..<end]
                #expect(CRC32C.checksum(slice) == CRC32C.softwareChecksum(slice))
            }
        }
        let whole = CRC32C.checksum(bytes)
        let chained = CRC32C.checksum(bytes[500...], continuing: CRC32C.checksum(bytes[..<500]))
        #expect(whole == chained)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }
}
