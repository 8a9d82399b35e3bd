import Annals

extension EventStoreError.Code {
    /// No token, or one the server does not know.
    public static let unauthorized = EventStoreError.Code("unauthorized")
    /// The token's role or scopes do not allow this request.
    public static let forbidden = EventStoreError.Code("forbidden")
    /// No route has this path.
    public static let routeNotFound = EventStoreError.Code("route-not-found")
    /// The route exists, but not for this method.
    public static let methodNotAllowed = EventStoreError.Code("method-not-allowed")
    /// The body's content type is not one the route accepts.
    public static let unsupportedMediaType = EventStoreError.Code("unsupported-media-type")
    /// The token holds as many live subscriptions as it may.
    public static let tooManySubscriptions = EventStoreError.Code("too-many-subscriptions")
    /// The token holds as many streaming (NDJSON) reads as it may.
    public static let tooManyStreamingReads = EventStoreError.Code("too-many-streaming-reads")
    /// The request's body did not arrive within the server's body timeout.
    public static let requestTimeout = EventStoreError.Code("request-timeout")
}

/// Every error code the HTTP API answers, with its status: the one table the server answers from, the
/// client reads, and `docs/http-api.md` (§Errors) is tested against.
public enum WireError {
    /// Each code the API answers and its HTTP status, in the order of the docs' table.
    public static let statuses: KeyValuePairs<EventStoreError.Code, Int> = [
        .invalidArgument: 400,
        .invalidJSON: 400,
        .invalidEvent: 400,
        .invalidStreamName: 400,
        .unauthorized: 401,
        .forbidden: 403,
        .notFound: 404,
        .routeNotFound: 404,
        .methodNotAllowed: 405,
        .requestTimeout: 408,
        .wrongExpectedRevision: 409,
        .duplicateEventID: 409,
        .streamDeleted: 410,
        .limitExceeded: 413,
        .unsupportedMediaType: 415,
        .tooManySubscriptions: 429,
        .tooManyStreamingReads: 429,
        .corruptedStorage: 500,
        .storeClosed: 503,
        .storeFailed: 503,
        .unavailable: 503,
    ]

    private static let statusByCode: [EventStoreError.Code: Int] = Dictionary(
        statuses.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })

    /// The HTTP status for a code; a code the table does not name (one a later server may add) is 400.
    public static func status(for code: EventStoreError.Code) -> Int {
        statusByCode[code] ?? 400
    }

    /// What a client is told of a server-side failure (a 5xx code): a stable sentence. The store's own
    /// text (a PostgreSQL message, a file path, an errno) goes to the server's log only.
    public static func publicMessage(for code: EventStoreError.Code) -> String {
        switch code {
        case .storeClosed: "The store is closed (the server is stopping)."
        case .storeFailed:
            "The store failed after an I/O error and refuses writes until the server is restarted; see the server's log."
        case .corruptedStorage: "Stored data failed a check; see the server's log."
        default: "The store could not be reached or written; see the server's log."
        }
    }

    /// The error as a client may see it: a 5xx error keeps its code and loses its message (see
    /// ``publicMessage(for:)``); any other is unchanged.
    public static func publicError(_ error: EventStoreError) -> EventStoreError {
        guard status(for: error.code) >= 500 else { return error }
        return EventStoreError(error.code, publicMessage(for: error.code))
    }
}
