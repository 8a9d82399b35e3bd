import Annals

/// Reads server-sent events (`text/event-stream`) as the bytes arrive: feed it chunks of any size,
/// down to one byte, and it returns the events each chunk completes.
///
/// It follows the WHATWG HTML standard's sections "Parsing an event stream" and "Interpreting an
/// event stream":
///
/// - Lines end with LF, CRLF or CR; a CRLF split between two chunks is one line end.
/// - One byte order mark (EF BB BF) at the very start of the stream is skipped.
/// - A line that starts with `:` is a comment, and is skipped. A line without a `:` is a field with an
///   empty value. One space after the colon is dropped: `id:7` and `id: 7` are the same.
/// - `data` lines are joined with LF. `event` sets the event's type (an empty one is the default
///   type, `nil`). `id` sets the last event id, which carries over to later events, unless its value
///   holds a NUL: then the line is ignored. `retry` sets ``reconnectionTime`` when its value is ASCII
///   digits only, and is ignored otherwise (also when the number does not fit a `UInt64`). Any other
///   field is ignored.
/// - A blank line dispatches the event, unless the block had no `data` line: then nothing is
///   dispatched. Either way the next block starts with no data and the default type.
/// - An event the stream ends before its blank line is never returned: the standard discards it.
///
/// Bytes are kept as they came: ``ServerSentEvent/data`` is the bytes and ``ServerSentEvent/text``
/// decodes them; `id` and `event` are decoded with invalid UTF-8 replaced by U+FFFD.
///
/// **Work and memory.** Each byte is looked at once, as it arrives (the value of an `id`, `event` or
/// `retry` line once more, when the line ends); nothing is scanned from the start of a buffer again,
/// so a stream costs time linear in its length however it is split into chunks. The parser holds the
/// current line and the data of the current event, each at most ``maximumLineBytes`` (the text of a
/// comment, and the value of a field it ignores, are not held at all); exceeding either throws.
public struct ServerSentEventParser: Sendable {
    /// The longest line, and the largest data of one event (its `data` lines joined), in bytes; a
    /// line end does not count.
    public let maximumLineBytes: Int
    /// The last event id as of the last blank line, as an `EventSource` would send it in
    /// `Last-Event-ID` when it reconnects; `nil` when the stream has set none (or cleared it with an
    /// empty `id:`).
    public private(set) var lastEventID: String?
    /// The reconnection time from the last valid `retry` line, in milliseconds, whether or not an
    /// event was dispatched after it; `nil` until the stream sends one.
    public private(set) var reconnectionTime: UInt64?
    /// The bytes looked at so far: each byte fed, and each byte of an `id`, `event` or `retry` value
    /// once more when its line ends. It shows that the work is linear in the input.
    package private(set) var bytesExamined = 0

    /// Which field the current line holds.
    private enum Field: Sendable {
        case data
        case event
        case id
        case retry
        /// A field the standard does not define: skipped.
        case other

        init(_ name: [UInt8]) {
            if name.elementsEqual("data".utf8) {
                self = .data
            } else if name.elementsEqual("event".utf8) {
                self = .event
            } else if name.elementsEqual("id".utf8) {
                self = .id
            } else if name.elementsEqual("retry".utf8) {
                self = .retry
            } else {
                self = .other
            }
        }
    }

    /// Where in the current line the next byte goes.
    private enum LineState: Sendable {
        /// Before the first colon: the bytes are the field name.
        case name
        /// Just after the colon: one space is dropped here.
        case valueStart(Field)
        case value(Field)
        /// The line started with a colon.
        case comment
    }

    private var state = LineState.name
    private var name: [UInt8] = []
    /// The value of an `event`, `id` or `retry` line (a `data` value goes straight to `data`).
    private var value: [UInt8] = []
    private var lineLength = 0
    /// The last byte was a CR, so an LF now is the second half of a CRLF.
    private var followsCarriageReturn = false
    /// How many bytes of a byte order mark the stream has started with; `nil` once past its start.
    private var byteOrderMarkMatched: Int? = 0
    private var data: [UInt8] = []
    private var hasData = false
    private var eventType: String?
    /// The standard's "last event ID buffer": set by `id` lines, kept across events.
    private var idBuffer = ""
    private var blockRetry: UInt64?
    private var failure: EventStoreError?

    /// A parser at the start of a stream.
    ///
    /// - Parameter maximumLineBytes: the longest line, and the largest data of one event, it accepts
    ///   (at least 1). The default, 64 MiB, holds the largest event a store accepts (16 MiB) written
    ///   as base64 with its metadata.
    public init(maximumLineBytes: Int = 64 << 20) {
        self.maximumLineBytes = max(1, maximumLineBytes)
    }

    /// Reads the next bytes of the stream and returns the events they complete, in order.
    ///
    /// - Throws: ``Annals/EventStoreError/Code/limitExceeded`` when a line, or the data of one event,
    ///   grows past ``maximumLineBytes``. The parser is spent then: this call returns none of the
    ///   events its chunk completed, and every later call throws the same error. Drop the connection.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(EventStoreError) -> [ServerSentEvent] {
        if let failure { throw failure }
        var events: [ServerSentEvent] = []
        let wasContiguous: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            parse(buffer, into: &events)
        }
        if wasContiguous == nil {
            Array(bytes).withUnsafeBufferPointer { buffer in parse(buffer, into: &events) }
        }
        if let failure { throw failure }
        return events
    }

    // MARK: Bytes

    private mutating func parse(_ buffer: UnsafeBufferPointer<UInt8>, into events: inout [ServerSentEvent]) {
        for byte in buffer {
            if let matched = byteOrderMarkMatched {
                if byte == Self.byteOrderMark[matched] {
                    bytesExamined &+= 1
                    byteOrderMarkMatched = matched + 1 < Self.byteOrderMark.count ? matched + 1 : nil
                    continue
                }
                // Not a byte order mark after all: the bytes that looked like its start are text.
                byteOrderMarkMatched = nil
                for earlier in Self.byteOrderMark[..<matched] { take(earlier, into: &events) }
            }
            take(byte, into: &events)
            if failure != nil { return }
        }
    }

    private mutating func take(_ byte: UInt8, into events: inout [ServerSentEvent]) {
        bytesExamined &+= 1
        if byte == Self.lineFeed, followsCarriageReturn {
            followsCarriageReturn = false
            return
        }
        followsCarriageReturn = byte == Self.carriageReturn
        if byte == Self.lineFeed || byte == Self.carriageReturn {
            endLine(into: &events)
            return
        }
        guard failure == nil else { return }
        guard lineLength < maximumLineBytes else {
            fail("A server-sent event line is longer than \(maximumLineBytes) bytes.")
            return
        }
        lineLength += 1
        switch state {
        case .name:
            guard byte == Self.colon else {
                name.append(byte)
                return
            }
            if name.isEmpty {
                state = .comment
            } else {
                let field = Field(name)
                if field == .data { startDataLine() }
                state = .valueStart(field)
            }
        case .valueStart(let field):
            state = .value(field)
            if byte != Self.space { append(byte, to: field) }
        case .value(let field):
            append(byte, to: field)
        case .comment:
            break
        }
    }

    private mutating func append(_ byte: UInt8, to field: Field) {
        switch field {
        case .data:
            guard data.count < maximumLineBytes else {
                fail("A server-sent event's data is longer than \(maximumLineBytes) bytes.")
                return
            }
            data.append(byte)
        case .event, .id, .retry:
            // Bounded by the line's length.
            value.append(byte)
        case .other:
            break
        }
    }

    /// A `data` line begins: it is joined to the one before with LF.
    private mutating func startDataLine() {
        if hasData {
            guard data.count < maximumLineBytes else {
                fail("A server-sent event's data is longer than \(maximumLineBytes) bytes.")
                return
            }
            data.append(Self.lineFeed)
        }
        hasData = true
    }

    // MARK: Lines

    private mutating func endLine(into events: inout [ServerSentEvent]) {
        guard failure == nil else { return }
        switch state {
        case .name where name.isEmpty:
            dispatch(into: &events)
        case .name:
            // A field without a colon: the whole line is its name, and its value is empty.
            let field = Field(name)
            if field == .data { startDataLine() }
            apply(field)
        case .valueStart(let field), .value(let field):
            apply(field)
        case .comment:
            break
        }
        state = .name
        name.removeAll(keepingCapacity: true)
        value.removeAll()
        lineLength = 0
    }

    /// Applies a finished `event`, `id` or `retry` line (a `data` line's bytes are in `data` already).
    private mutating func apply(_ field: Field) {
        switch field {
        case .event:
            bytesExamined &+= value.count
            eventType = value.isEmpty ? nil : String(decoding: value, as: UTF8.self)
        case .id:
            bytesExamined &+= value.count
            if !value.contains(0) { idBuffer = String(decoding: value, as: UTF8.self) }
        case .retry:
            bytesExamined &+= value.count
            if let milliseconds = Self.milliseconds(value) {
                reconnectionTime = milliseconds
                blockRetry = milliseconds
            }
        case .data, .other:
            break
        }
    }

    /// The blank line: the block's event, if it had data.
    private mutating func dispatch(into events: inout [ServerSentEvent]) {
        lastEventID = idBuffer.isEmpty ? nil : idBuffer
        if hasData {
            let payload = data
            data = []
            events.append(ServerSentEvent(id: lastEventID, event: eventType, data: payload, retry: blockRetry))
        }
        hasData = false
        eventType = nil
        blockRetry = nil
    }

    private mutating func fail(_ message: String) {
        failure = EventStoreError(.limitExceeded, message)
        data = []
        name = []
        value = []
    }

    /// A `retry` value: ASCII digits only, at least one, that fit a `UInt64`.
    private static func milliseconds(_ digits: [UInt8]) -> UInt64? {
        guard !digits.isEmpty else { return nil }
        var result: UInt64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            let (shifted, shiftOverflowed) = result.multipliedReportingOverflow(by: 10)
            let (sum, sumOverflowed) = shifted.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !shiftOverflowed, !sumOverflowed else { return nil }
            result = sum
        }
        return result
    }

    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]
    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
    private static let colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")
}
