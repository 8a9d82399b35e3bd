import AnnalsWire
import Foundation
import Testing

@Suite("Wire timestamps")
struct TimestampTests {
    // From 1600 on: before 1582 Foundation switches to the Julian calendar, where ISO 8601 (and we) stay
    // proleptic Gregorian.
    @Test("written as Foundation's ISO 8601 formatter writes them, to the millisecond, 1600–9999, leap days too")
    func matchesFoundation() {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        var generator = SystemRandomNumberGenerator()
        var instants: [Int64] = [
            0, -1, 951_782_400_000, 951_868_799_999, 4_107_542_399_999, -2_208_988_800_000, 1_795_169_730_553,
            253_402_300_799_999,
        ]
        for _ in 0..<2_000 {
            instants.append(Int64.random(in: -11_676_096_000_000...253_000_000_000_000, using: &generator))
        }
        for milliseconds in instants {
            // Half a millisecond in, so Foundation's truncation and our rounding agree.
            let date = Date(timeIntervalSince1970: (Double(milliseconds) + 0.4) / 1000)
            #expect(WireFormat.timestamp(date) == style.format(date), "\(milliseconds)")
        }
    }

    @Test("a written time parses back to the same text")
    func roundTrips() throws {
        for _ in 0..<1_000 {
            let date = Date(timeIntervalSince1970: Double.random(in: 0...4_000_000_000))
            let text = WireFormat.timestamp(date)
            let parsed = try #require(WireFormat.parseTimestamp(text))
            #expect(WireFormat.timestamp(parsed) == text)
            #expect(abs(parsed.timeIntervalSince(date)) <= 0.000_501, "within half a millisecond (and rounding)")
        }
    }
}
