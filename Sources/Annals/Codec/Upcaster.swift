/// Turns a stored old version of an event into the next version, so old events decode into today's type.
///
/// Upcasters run on JSON before decoding, in a chain: the codec applies the upcaster for
/// `(type, version)`, then the one for the result, until none matches. An upcaster may also rename the
/// type.
///
/// ```swift
/// // OrderPlaced v1 had no currency; v2 has one.
/// Upcaster("OrderPlaced", from: 1) { event in
///     event.data["currency"] = .string("EUR")
/// }
/// ```
public struct Upcaster: Sendable {
    /// The stored type this upcaster reads.
    public let eventType: String
    /// The stored version this upcaster reads.
    public let fromVersion: Int
    let transform: @Sendable (inout UpcastingEvent) throws -> Void

    /// An upcaster from `version` to `version + 1` (unless the closure sets another).
    public init(
        _ eventType: String,
        from version: Int,
        _ transform: @escaping @Sendable (inout UpcastingEvent) throws -> Void
    ) {
        self.eventType = eventType
        self.fromVersion = version
        self.transform = transform
    }
}

/// An event on its way through upcasters: type, version and JSON data, all changeable.
public struct UpcastingEvent: Sendable {
    /// The event type; set it to rename the event.
    public var type: String
    /// The version the data is now in; set to `from + 1` before the closure runs.
    public var version: Int
    /// The payload.
    public var data: JSONValue
    /// The event's metadata, for reading (e.g. when it was recorded is on the event itself).
    public let metadata: EventMetadata
}
