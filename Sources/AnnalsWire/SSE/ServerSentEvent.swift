import Annals

/// One server-sent event, as the WHATWG HTML standard's `text/event-stream` carries it: what
/// ``ServerSentEventEncoder`` writes and ``ServerSentEventParser`` reads back.
///
/// An Annals subscription sends two kinds (`docs/http-api.md`, §Subscriptions): the events of the
/// subscription (``init(_:checkpoint:)``) and, when it cannot go on, one error event
/// (``init(failure:)``).
public struct ServerSentEvent: Sendable, Hashable {
    /// The `id` field.
    ///
    /// When parsed, this is the stream's last event id as of this event, as an `EventSource` reports
    /// it: an `id` carries over to the events after it until the server sends another, and an empty
    /// `id:` clears it. `nil` when there is none. The encoder writes an `id:` line when it is set.
    public var id: String?
    /// The event type (the `event` field); `nil` for the default type, which an `EventSource` calls
    /// `message`.
    public var event: String?
    /// The data, as the UTF-8 bytes that were sent; several `data` lines are joined with LF (0x0A).
    public var data: [UInt8]
    /// The reconnection time the event's block asked for with `retry:`, in milliseconds; `nil` when the
    /// block had no valid `retry` line.
    public var retry: UInt64?

    /// An event with data given as bytes.
    public init(id: String? = nil, event: String? = nil, data: [UInt8], retry: UInt64? = nil) {
        self.id = id
        self.event = event
        self.data = data
        self.retry = retry
    }

    /// An event with data given as text.
    public init(id: String? = nil, event: String? = nil, data: String, retry: UInt64? = nil) {
        self.init(id: id, event: event, data: Array(data.utf8), retry: retry)
    }

    /// The data as text, decoded as an `EventSource` decodes it: invalid UTF-8 becomes U+FFFD.
    public var text: String { String(decoding: data, as: UTF8.self) }
}

// MARK: Annals subscriptions

extension ServerSentEvent {
    /// The reconnection time a subscription asks for when it opens, in milliseconds (`retry: 2000`).
    public static let subscriptionRetry: UInt64 = 2_000

    /// The type of the event that ends a subscription with an error (`event: error`).
    public static let failureType = "error"

    /// An event of a subscription: `id` is its checkpoint (its revision for a stream subscription, its
    /// position otherwise), `data` its JSON as `WireFormat.encode(_:)` writes it, which is one line.
    public init(_ event: RecordedEvent, checkpoint: UInt64) {
        self.init(id: String(checkpoint), data: WireFormat.encode(event))
    }

    /// The event that ends a subscription because it cannot go on: type `error`, no `id` (the
    /// checkpoint stays that of the last event), `data` the JSON error body.
    public init(failure error: EventStoreError) {
        self.init(event: Self.failureType, data: WireFormat.encode(error))
    }

    /// Whether this is the event that ends a subscription with an error.
    public var isFailure: Bool { event == Self.failureType }
}
