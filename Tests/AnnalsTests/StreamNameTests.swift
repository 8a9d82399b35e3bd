import Annals
import Foundation
import Testing

@Suite("Stream names, revisions and expectations")
struct StreamNameTests {
    @Test("a category is the part before the first dash")
    func category() throws {
        #expect(try StreamName("order-42").category == "order")
        #expect(try StreamName("order-42-line-1").category == "order")
        #expect(try StreamName("order").category == "order")
        #expect(try StreamName("-x").category == "")
    }

    @Test("names compare by bytes, not by Unicode equivalence")
    func byteComparison() throws {
        let composed = try StreamName("caf\u{E9}")
        let decomposed = try StreamName("cafe\u{301}")
        #expect(composed.rawValue == decomposed.rawValue, "Swift strings call these equal")
        #expect(composed != decomposed)
        #expect(Set([composed, decomposed]).count == 2)
        #expect(try StreamName("a") < StreamName("b"))
    }

    @Test(
        "invalid names are rejected with a clear code",
        arguments: ["", String(repeating: "x", count: 257), "a\u{0}b", "a\u{1F}", "a\u{7F}", "$reserved"]
    )
    func invalid(_ name: String) {
        #expect(throws: EventStoreError.self) { try StreamName(name) }
        do {
            _ = try StreamName(name)
        } catch {
            #expect(error.code == .invalidStreamName)
        }
    }

    @Test("a decoded name is validated")
    func decoding() throws {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(StreamName.self, from: Data("\"\"".utf8)) }
        let name = try JSONDecoder().decode(StreamName.self, from: Data("\"order-1\"".utf8))
        #expect(name.rawValue == "order-1")
    }

    @Test("expected revisions parse their wire form and nothing else")
    func expectedRevisionParsing() {
        #expect(ExpectedRevision("any") == .any)
        #expect(ExpectedRevision("no-stream") == .noStream)
        #expect(ExpectedRevision("exists") == .streamExists)
        #expect(ExpectedRevision("42") == .exact(42))
        #expect(ExpectedRevision("18446744073709551615") == .exact(StreamRevision(UInt64.max)))
        for bad in ["-1", "+1", "18446744073709551616", "1e3", "", " 1", "0x10", "one"] {
            #expect(ExpectedRevision(bad) == nil, "\(bad) must not parse")
        }
    }

    @Test("the next revision or position is nil at the end of the range")
    func nextAtEnd() {
        #expect(StreamRevision(UInt64.max).next == nil)
        #expect(Position(UInt64.max).next == nil)
        #expect(StreamRevision(1).next == 2)
    }

    @Test("limits reject sizes that would overflow")
    func limitOverflow() {
        let limits = EventStoreLimits(maxEventSize: 16 * 1024 * 1024, maxEventsPerAppend: .max, maxAppendSize: .max)
        #expect(throws: Never.self) { try limits.validate() }
        #expect(throws: EventStoreError.self) { try EventStoreLimits(maxEventSize: 16 * 1024 * 1024 + 1).validate() }
        #expect(throws: EventStoreError.self) { try EventStoreLimits(maxEventsPerAppend: 0).validate() }
    }
}
