import Annals

/// Writes server-sent events (`text/event-stream`) as bytes: events, comments, `retry` lines and the
/// blank lines that end blocks.
///
/// Lines end with LF. Every line is written whole, so a ``ServerSentEventParser`` reads back what
/// was written: an event written with ``write(_:)`` comes back equal (see there for the two things
/// that cannot travel), comments are skipped, and a `retry` line sets the parser's
/// ``ServerSentEventParser/reconnectionTime``.
///
/// ```swift
/// var encoder = ServerSentEventEncoder()
/// encoder.retry(milliseconds: 2_000)
/// encoder.comment("subscribed")
/// encoder.endBlock()
/// encoder.write(ServerSentEvent(id: "17", data: "{}"))
/// // "retry: 2000\n: subscribed\n\nid: 17\ndata: {}\n\n"
/// ```
public struct ServerSentEventEncoder: Sendable {
    /// Everything written so far.
    public private(set) var bytes: [UInt8] = []

    /// An encoder that has written nothing yet.
    public init() {}

    /// Writes `event` as one block: its `event`, `id` and `retry` lines when set, one `data` line per
    /// line of its data, then the blank line that dispatches it.
    ///
    /// An event always gets at least one `data` line (an empty one for empty data), since a block
    /// without one dispatches nothing. Two things cannot travel: a line break in the data (LF, CRLF or
    /// CR) starts a new `data` line, which the parser joins with LF, so CRLF and CR come back as LF;
    /// and `id` and `event` cannot hold a line break at all, so CR and LF in them are written as
    /// spaces.
    public mutating func write(_ event: ServerSentEvent) {
        if let type = event.event { field(Self.eventName, Self.singleLine(type)) }
        if let id = event.id { field(Self.idName, Self.singleLine(id)) }
        if let retry = event.retry { field(Self.retryName, Array(String(retry).utf8)) }
        var start = 0
        var index = 0
        while index < event.data.count {
            let byte = event.data[index]
            guard byte == Self.lineFeed || byte == Self.carriageReturn else {
                index += 1
                continue
            }
            field(Self.dataName, event.data[start..<index])
            let isCRLF =
                byte == Self.carriageReturn && index + 1 < event.data.count && event.data[index + 1] == Self.lineFeed
            index += isCRLF ? 2 : 1
            start = index
        }
        field(Self.dataName, event.data[start..<event.data.count])
        endBlock()
    }

    /// Writes `retry: <milliseconds>`: a client should wait this long before it reconnects. It ends
    /// no block; the next ``endBlock()`` or event does.
    public mutating func retry(milliseconds: UInt64) {
        field(Self.retryName, Array(String(milliseconds).utf8))
    }

    /// Writes `text` as a comment, `: <text>`, one comment line per line of `text`. Parsers skip
    /// comments; they keep proxies from closing a quiet connection, or say something to a person
    /// reading the stream. It ends no block.
    public mutating func comment(_ text: String) {
        let lines = text.utf8.split(omittingEmptySubsequences: false) {
            $0 == Self.lineFeed || $0 == Self.carriageReturn
        }
        for line in lines {
            bytes.append(Self.colon)
            bytes.append(Self.space)
            bytes.append(contentsOf: line)
            bytes.append(Self.lineFeed)
        }
    }

    /// Writes a blank line, which ends a block: a parser dispatches the block's event, if it had
    /// `data`, and forgets its type.
    public mutating func endBlock() {
        bytes.append(Self.lineFeed)
    }

    /// `event` as one block on its own (``write(_:)``).
    public static func encode(_ event: ServerSentEvent) -> [UInt8] {
        var encoder = ServerSentEventEncoder()
        encoder.write(event)
        return encoder.bytes
    }

    // MARK: Lines

    private mutating func field(_ name: [UInt8], _ value: some Collection<UInt8>) {
        bytes.append(contentsOf: name)
        bytes.append(Self.colon)
        bytes.append(Self.space)
        bytes.append(contentsOf: value)
        bytes.append(Self.lineFeed)
    }

    /// `text` with CR and LF replaced by spaces, for the fields that cannot hold a line break.
    private static func singleLine(_ text: String) -> [UInt8] {
        text.utf8.map { $0 == lineFeed || $0 == carriageReturn ? space : $0 }
    }

    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
    private static let colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")
    private static let dataName = Array("data".utf8)
    private static let eventName = Array("event".utf8)
    private static let idName = Array("id".utf8)
    private static let retryName = Array("retry".utf8)
}

// MARK: Annals subscriptions

extension ServerSentEventEncoder {
    /// What the server writes first on every subscription: `retry: 2000`
    /// (``ServerSentEvent/subscriptionRetry``), the comment `: subscribed`, so the client knows the
    /// subscription is in place, and a blank line.
    public static let subscriptionOpening: [UInt8] = {
        var encoder = ServerSentEventEncoder()
        encoder.retry(milliseconds: ServerSentEvent.subscriptionRetry)
        encoder.comment("subscribed")
        encoder.endBlock()
        return encoder.bytes
    }()

    /// The comment the server writes on a quiet subscription, `: keep-alive`, and a blank line.
    public static let keepAlive: [UInt8] = {
        var encoder = ServerSentEventEncoder()
        encoder.comment("keep-alive")
        encoder.endBlock()
        return encoder.bytes
    }()
}
