import Annals

/// The server's statistics: the answer to `GET /stats` (role admin), which the admin page polls.
///
/// The head and the stream count come from the store; the counters count what the server process has
/// done since it started, so they begin at zero on every start. In JSON (`docs/http-api.md`, §GET
/// /stats):
///
/// ```json
/// {"headPosition": 42, "streams": 7, "appends": 12, "eventsWritten": 40, "bytesWritten": 2048,
///  "liveSubscriptions": 1, "store": "FileEventStore", "version": "0.1.0", "appendLatencyMicroseconds": 850}
/// ```
public struct ServerStatistics: Sendable, Hashable {
    /// The head of `$all`: the position the next event will get (the number of events in the log).
    public var headPosition: Position
    /// Every stream in the store, deleted ones included.
    public var streams: UInt64
    /// Successful append requests since the server started (idempotent retries included).
    public var appends: UInt64
    /// Events written by those appends.
    public var eventsWritten: UInt64
    /// Event bytes (type, data and metadata) written by those appends.
    public var bytesWritten: UInt64
    /// Subscriptions (server-sent-event streams) open now.
    public var liveSubscriptions: Int
    /// The store's type name, such as `FileEventStore` or `PostgresEventStore`.
    public var store: String
    /// The server's Annals version.
    public var version: String
    /// The mean time the store took for an append request over the last whole second, in microseconds;
    /// nil when that second had no append (and from servers that do not report it).
    public var appendLatencyMicroseconds: UInt64?

    /// Statistics with the given values.
    public init(
        headPosition: Position, streams: UInt64, appends: UInt64, eventsWritten: UInt64, bytesWritten: UInt64,
        liveSubscriptions: Int, store: String, version: String, appendLatencyMicroseconds: UInt64? = nil
    ) {
        self.headPosition = headPosition
        self.streams = streams
        self.appends = appends
        self.eventsWritten = eventsWritten
        self.bytesWritten = bytesWritten
        self.liveSubscriptions = liveSubscriptions
        self.store = store
        self.version = version
        self.appendLatencyMicroseconds = appendLatencyMicroseconds
    }

    /// The JSON the server answers: the members in the order of the type's properties.
    public func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("headPosition", headPosition.value)
        writer.member("streams", streams)
        writer.member("appends", appends)
        writer.member("eventsWritten", eventsWritten)
        writer.member("bytesWritten", bytesWritten)
        writer.member("liveSubscriptions", liveSubscriptions)
        writer.member("store", store)
        writer.member("version", version)
        writer.key("appendLatencyMicroseconds")
        if let appendLatencyMicroseconds { writer.number(appendLatencyMicroseconds) } else { writer.null() }
        writer.endObject()
        return writer.bytes
    }

    /// Reads the answer to `GET /stats`, as ``encoded()`` writes it (the client's side). Members it does
    /// not know are ignored, so a newer server may add some.
    ///
    /// - Throws: `invalid-json` when `body` is not JSON; `unavailable` when a member is missing or
    ///   malformed (every count is an integer from 0 to 2⁶³−1).
    public init(decoding body: [UInt8]) throws(EventStoreError) {
        let reader = try AnswerReader(parsing: body, answer: "answer to GET /stats")
        self.init(
            headPosition: Position(try reader.unsigned("headPosition")),
            streams: try reader.unsigned("streams"),
            appends: try reader.unsigned("appends"),
            eventsWritten: try reader.unsigned("eventsWritten"),
            bytesWritten: try reader.unsigned("bytesWritten"),
            liveSubscriptions: Int(clamping: try reader.unsigned("liveSubscriptions")),
            store: try reader.string("store"),
            version: try reader.string("version"),
            appendLatencyMicroseconds: try reader.optionalUnsigned("appendLatencyMicroseconds"))
    }
}
