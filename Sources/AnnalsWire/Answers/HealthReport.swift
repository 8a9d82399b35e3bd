import Annals

/// Whether the server's store can serve: the answer to `GET /health`, which needs no token.
///
/// The server answers `200` with ``Status/ok`` and the head when the store can serve, and
/// `503` with another status, the store's error code and its message when it cannot (this body, not
/// the error shape). In JSON (`docs/http-api.md`, §GET /health):
///
/// ```json
/// {"status": "ok", "headPosition": 42}
/// {"status": "failed", "code": "store-failed", "message": "The store failed: …"}
/// ```
public struct HealthReport: Sendable, Hashable {
    /// The store's state as `/health` reports it. A newer server may report others: compare with the
    /// constants, and treat anything but ``ok`` as not healthy.
    public struct Status: Sendable, Hashable, CustomStringConvertible {
        /// The text on the wire (`ok`, `failed`, `unavailable`).
        public let rawValue: String

        /// The status with this wire text.
        public init(_ rawValue: String) { self.rawValue = rawValue }

        /// The wire text.
        public var description: String { rawValue }

        /// The store can serve: reads and appends work.
        public static let ok = Status("ok")
        /// The store's writer failed (a full disk, a failed flush): every append is refused with
        /// `store-failed` until the server restarts, though reads may still answer.
        public static let failed = Status("failed")
        /// The store is closed, or its storage cannot be reached (PostgreSQL down).
        public static let unavailable = Status("unavailable")
    }

    /// The store's state.
    public var status: Status
    /// The head of `$all` (the position the next event will get); present when the store is ``Status/ok``.
    public var headPosition: Position?
    /// Why the store cannot serve (`store-failed`, `store-closed`, `unavailable`); `nil` when it can.
    public var code: EventStoreError.Code?
    /// A sentence that says why the store cannot serve; `nil` when it can.
    public var message: String?

    /// Whether the store can serve (the server answered `200`).
    public var isHealthy: Bool { status == .ok }

    /// A report with the given fields; the server writes only those that are set.
    public init(
        status: Status, headPosition: Position? = nil, code: EventStoreError.Code? = nil, message: String? = nil
    ) {
        self.status = status
        self.headPosition = headPosition
        self.code = code
        self.message = message
    }

    /// The JSON the server answers: `status`, then `headPosition`, `code` and `message` when set.
    public func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("status", status.rawValue)
        if let headPosition { writer.member("headPosition", headPosition.value) }
        if let code { writer.member("code", code.rawValue) }
        if let message { writer.member("message", message) }
        writer.endObject()
        return writer.bytes
    }

    /// Reads the answer to `GET /health`, of either status, as ``encoded()`` writes it (the client's
    /// side). Members it does not know are ignored.
    ///
    /// - Throws: `invalid-json` when `body` is not JSON; `unavailable` when it has no `status`, or a
    ///   member is malformed.
    public init(decoding body: [UInt8]) throws(EventStoreError) {
        let reader = try AnswerReader(parsing: body, answer: "answer to GET /health")
        self.init(
            status: Status(try reader.string("status")),
            headPosition: try reader.optionalUnsigned("headPosition").map { Position($0) },
            code: try reader.optionalString("code").map { EventStoreError.Code($0) },
            message: try reader.optionalString("message"))
    }
}
