import Annals
import AnnalsWire
import Foundation
import Testing

/// The client's SSE parser against the WHATWG event-stream grammar, and against what the server's
/// encoder writes.
@Suite("Server-sent events: the parser and the encoder")
struct ServerSentEventParserTests {
    /// The events in `stream`, fed in one piece.
    static func events(_ stream: String) throws -> [ServerSentEvent] {
        var parser = ServerSentEventParser()
        return try parser.feed(Array(stream.utf8))
    }

    /// The events in `bytes`, fed one byte at a time.
    static func eventsByteByByte(_ bytes: [UInt8]) throws -> [ServerSentEvent] {
        var parser = ServerSentEventParser(maximumLineBytes: 1 << 20)
        var events: [ServerSentEvent] = []
        for index in bytes.indices { events += try parser.feed(bytes[index...index]) }
        return events
    }

    /// The error the parser throws on `bytes`; nil when it throws none.
    static func failure(_ parser: inout ServerSentEventParser, _ bytes: String) -> EventStoreError? {
        do {
            _ = try parser.feed(Array(bytes.utf8))
            return nil
        } catch {
            return error
        }
    }

    // MARK: Lines

    @Test("LF, CR and CRLF all end lines", arguments: ["\n", "\r", "\r\n"])
    func lineEnds(_ end: String) throws {
        let stream = ["id: 1", "data: a", "data: b", "", "data: c", ""].joined(separator: end) + end
        #expect(
            try Self.events(stream) == [
                ServerSentEvent(id: "1", data: "a\nb"), ServerSentEvent(id: "1", data: "c"),
            ])
    }

    @Test("line ends may be mixed in one stream")
    func mixedLineEnds() throws {
        #expect(try Self.events("data: a\rdata: b\r\ndata: c\n\r\n") == [ServerSentEvent(data: "a\nb\nc")])
    }

    @Test("a CRLF split between two chunks is one line end, not a blank line")
    func splitCRLF() throws {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for chunk in ["data: a\r", "\ndata: b\r", "\n\r", "\n"] { events += try parser.feed(Array(chunk.utf8)) }
        #expect(events == [ServerSentEvent(data: "a\nb")])
    }

    @Test("one byte order mark at the start is skipped, also split over chunks; a second one is not")
    func byteOrderMark() throws {
        #expect(try Self.events("\u{FEFF}data: x\n\n") == [ServerSentEvent(data: "x")])
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for chunk: [UInt8] in [[0xEF], [0xBB], [0xBF]] { events += try parser.feed(chunk) }
        events += try parser.feed(Array("data: x\n\n".utf8))
        #expect(events == [ServerSentEvent(data: "x")])
        // The second mark is part of the field name, so the line is a field nobody knows.
        #expect(try Self.events("\u{FEFF}\u{FEFF}data: x\n\n").isEmpty)
        // Two bytes of a mark and then text: the bytes are text too, not dropped.
        var partial = ServerSentEventParser()
        let partialEvents = try partial.feed([0xEF, 0xBB] + Array("data: x\n\n".utf8))
        #expect(partialEvents.isEmpty)
        // Not at the start: data like any other.
        #expect(try Self.events("data: \u{FEFF}x\n\n") == [ServerSentEvent(data: "\u{FEFF}x")])
    }

    // MARK: Fields

    @Test("one space after the colon is dropped, and only one: 'id:7' is 'id: 7'")
    func spaceAfterColon() throws {
        #expect(try Self.events("id:7\ndata:x\n\n") == [ServerSentEvent(id: "7", data: "x")])
        #expect(try Self.events("id: 7\ndata:  x\n\n") == [ServerSentEvent(id: "7", data: " x")])
    }

    @Test("an id carries over to later events; an empty id clears it; an id holding NUL is ignored")
    func ids() throws {
        var parser = ServerSentEventParser()
        let events = try parser.feed(Array("id: 5\ndata: a\n\ndata: b\n\nid: 6\0\ndata: c\n\nid:\ndata: d\n\n".utf8))
        #expect(events.map(\.id) == ["5", "5", "5", nil])
        #expect(events.map(\.text) == ["a", "b", "c", "d"])
        #expect(parser.lastEventID == nil)
        _ = try parser.feed(Array("id: 9\n\n".utf8))
        #expect(parser.lastEventID == "9", "a blank line sets the last event id even without data")
    }

    @Test("data lines are joined with LF, empty ones included")
    func multiLineData() throws {
        #expect(try Self.events("data: a\ndata:\ndata\ndata: d\n\n") == [ServerSentEvent(data: "a\n\n\nd")])
    }

    @Test("comments are skipped, between blocks and inside one")
    func comments() throws {
        #expect(try Self.events(": hello\n:\n: data: x\n\n").isEmpty)
        #expect(try Self.events("data: a\n: a note\ndata: b\n\n") == [ServerSentEvent(data: "a\nb")])
    }

    @Test("a field without a colon has an empty value")
    func fieldWithoutColon() throws {
        #expect(try Self.events("data\n\n") == [ServerSentEvent(data: "")])
        #expect(try Self.events("event\ndata: x\n\n") == [ServerSentEvent(data: "x")])
        #expect(try Self.events("unknown\nunknown: value\ndata: x\n\n") == [ServerSentEvent(data: "x")])
    }

    @Test("a block without data dispatches nothing, and its type does not carry over")
    func noDataNoEvent() throws {
        #expect(try Self.events("event: ping\nid: 3\n\n").isEmpty)
        #expect(try Self.events("event: ping\n\ndata: x\n\n") == [ServerSentEvent(data: "x")])
        #expect(
            try Self.events("event: added\ndata: x\n\n") == [ServerSentEvent(event: "added", data: "x")])
    }

    @Test("retry takes ASCII digits only")
    func retryDigits() throws {
        var parser = ServerSentEventParser()
        let none = try parser.feed(Array("retry: 1500\n\n".utf8))
        #expect(none.isEmpty)
        #expect(parser.reconnectionTime == 1_500)
        let events = try parser.feed(Array("retry:2500\ndata: x\n\n".utf8))
        #expect(events == [ServerSentEvent(data: "x", retry: 2_500)])
        #expect(parser.reconnectionTime == 2_500)
        let later = try parser.feed(Array("data: y\n\n".utf8))
        #expect(later == [ServerSentEvent(data: "y")], "retry is per block")
    }

    @Test(
        "retry that is not digits only is ignored",
        arguments: ["15x0", "-1", "1.5", "+15", "", " 2000", "2000 ", "99999999999999999999999"])
    func retryIgnored(_ value: String) throws {
        var parser = ServerSentEventParser()
        _ = try parser.feed(Array("retry: 1500\n\n".utf8))
        let events = try parser.feed(Array("retry: \(value)\ndata: x\n\n".utf8))
        #expect(events == [ServerSentEvent(data: "x")])
        #expect(parser.reconnectionTime == 1_500)
    }

    // MARK: Chunks, work and limits

    /// A stream that uses most of the grammar at once.
    static let everything = Array(
        ("\u{FEFF}: comment\r\nretry: 1500\r\n\r\n" + "id: 1\nevent: added\ndata: a\ndata\ndata:  b\r\r"
            + "id:2\0\ndata: c\r\n\r\n" + "foo: bar\nid\ndata: d\n\n").utf8)

    @Test("fed whole, one byte at a time or split anywhere, a stream gives the same events")
    func chunking() throws {
        let expected = [
            ServerSentEvent(id: "1", event: "added", data: "a\n\n b"), ServerSentEvent(id: "1", data: "c"),
            ServerSentEvent(data: "d"),
        ]
        var whole = ServerSentEventParser()
        let wholeEvents = try whole.feed(Self.everything)
        #expect(wholeEvents == expected)
        #expect(whole.reconnectionTime == 1_500)
        #expect(try Self.eventsByteByByte(Self.everything) == expected)
        for split in 0...Self.everything.count {
            var parser = ServerSentEventParser()
            var events = try parser.feed(Self.everything[..<split])
            events += try parser.feed(Self.everything[split...])
            #expect(events == expected, "split at byte \(split)")
        }
    }

    @Test("a 4 MiB line fed one byte at a time costs work linear in its length")
    func linearWork() throws {
        let length = 4 << 20
        var input = Array("data: ".utf8)
        input += [UInt8](repeating: UInt8(ascii: "x"), count: length)
        input += [0x0A, 0x0A]
        var parser = ServerSentEventParser(maximumLineBytes: 8 << 20)
        var events: [ServerSentEvent] = []
        for index in input.indices { events += try parser.feed(input[index...index]) }
        #expect(events.count == 1)
        #expect(events.first?.data.count == length)
        // Each byte once (a rescan from the start of the line at every byte would be ~8·10¹² here).
        #expect((input.count...2 * input.count).contains(parser.bytesExamined), "\(parser.bytesExamined)")
    }

    @Test("a line or an event's data over the limit is limit-exceeded, then every feed is")
    func limits() {
        var parser = ServerSentEventParser(maximumLineBytes: 12)
        let fits = Self.failure(&parser, "data: 123456\n: a comment\n\n")
        #expect(fits == nil, "12 bytes fit")
        let line = Self.failure(&parser, "data: 1234567\n")
        #expect(line?.code == .limitExceeded)
        #expect(line?.message.contains("line") == true)
        let spent = Self.failure(&parser, "data: 1\n\n")
        #expect(spent?.code == .limitExceeded, "the parser is spent")
        var joined = ServerSentEventParser(maximumLineBytes: 12)
        let data = Self.failure(&joined, "data: 123456\ndata: 123456\n\n")
        #expect(data?.code == .limitExceeded)
        #expect(data?.message.contains("data") == true)
        var comment = ServerSentEventParser(maximumLineBytes: 12)
        let long = Self.failure(&comment, ": a comment that is long\n")
        #expect(long?.code == .limitExceeded)
    }

    // MARK: The encoder

    @Test("what the encoder writes, the parser reads back")
    func roundTrip() throws {
        let sent = [
            ServerSentEvent(id: "1", data: #"{"n":1}"#),
            ServerSentEvent(id: "2", event: "error", data: "two\nlines"),
            ServerSentEvent(id: "3", data: "", retry: 1_500),
            ServerSentEvent(id: "4", data: "ends with a line feed\n"),
            ServerSentEvent(id: "5", event: "é ✓", data: [0xC3, 0xA9, 0x00, 0xFF]),
        ]
        var encoder = ServerSentEventEncoder()
        encoder.retry(milliseconds: 2_000)
        encoder.comment("subscribed")
        encoder.endBlock()
        for (index, event) in sent.enumerated() {
            encoder.write(event)
            if index == 1 {
                encoder.comment("two\ncomment lines")
                encoder.endBlock()
            }
        }
        var parser = ServerSentEventParser()
        let received = try parser.feed(encoder.bytes)
        #expect(received == sent)
        #expect(parser.reconnectionTime == 1_500)
        #expect(try Self.eventsByteByByte(encoder.bytes) == sent)
        // What cannot travel: CR and CRLF in data come back as LF; a line break in an id is a space.
        let bent = ServerSentEventEncoder.encode(ServerSentEvent(id: "a\nb", data: "x\r\ny\rz"))
        var reader = ServerSentEventParser()
        let bentEvents = try reader.feed(bent)
        #expect(bentEvents == [ServerSentEvent(id: "a b", data: "x\ny\nz")])
    }

    @Test("the server's frames are the bytes the HTTP API documents, and the client reads them")
    func subscriptionFrames() throws {
        #expect(ServerSentEventEncoder.subscriptionOpening == Array("retry: 2000\n: subscribed\n\n".utf8))
        #expect(ServerSentEventEncoder.keepAlive == Array(": keep-alive\n\n".utf8))
        let stream = try StreamName("order-42")
        let recorded = RecordedEvent(
            id: UUID(), type: "OrderPlaced", data: Data(#"{"customer":"Ada"}"#.utf8), contentType: .json,
            metadata: Data(), stream: stream, revision: StreamRevision(0), position: Position(17),
            recordedAt: Date(timeIntervalSince1970: 1_736_933_412))
        let eventFrame = ServerSentEventEncoder.encode(ServerSentEvent(recorded, checkpoint: 17))
        var expectedEvent = Array("id: 17\ndata: ".utf8)
        expectedEvent += WireFormat.encode(recorded)
        expectedEvent += [0x0A, 0x0A]
        #expect(eventFrame == expectedEvent)
        let error = EventStoreError.streamDeleted(stream)
        let errorFrame = ServerSentEventEncoder.encode(ServerSentEvent(failure: error))
        var expectedError = Array("event: error\ndata: ".utf8)
        expectedError += WireFormat.encode(error)
        expectedError += [0x0A, 0x0A]
        #expect(errorFrame == expectedError)

        var parser = ServerSentEventParser()
        let events = try parser.feed(
            ServerSentEventEncoder.subscriptionOpening + eventFrame + ServerSentEventEncoder.keepAlive + errorFrame)
        #expect(parser.reconnectionTime == ServerSentEvent.subscriptionRetry)
        try #require(events.count == 2)
        #expect(!events[0].isFailure && events[0].id == "17")
        let decoded = try WireFormat.decodeRecorded(try JSONNode.parse(events[0].data), in: events[0].data)
        #expect(decoded.id == recorded.id && decoded.position == recorded.position && decoded.data == recorded.data)
        #expect(events[1].isFailure)
        #expect(WireFormat.decodeError(events[1].data)?.code == .streamDeleted)
    }
}
