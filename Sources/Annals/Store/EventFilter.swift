/// Selects events of `$all`: by event type, by stream category, by stream-name prefix.
///
/// Every condition that is set must hold. The empty filter (``all``) selects every event.
public struct EventFilter: Sendable, Hashable {
    /// Only these event types, when set.
    public var eventTypes: Set<String>?
    /// Only streams of this category, when set.
    public var category: String?
    /// Only streams whose name starts with these bytes, when set.
    public var streamPrefix: String?

    /// A filter with these conditions; a condition left `nil` lets every event through.
    public init(eventTypes: Set<String>? = nil, category: String? = nil, streamPrefix: String? = nil) {
        self.eventTypes = eventTypes
        self.category = category
        self.streamPrefix = streamPrefix
    }

    /// Selects every event.
    public static let all = EventFilter()
    /// Selects events of these types.
    public static func eventTypes(_ types: Set<String>) -> EventFilter { EventFilter(eventTypes: types) }
    /// Selects the events of the streams of one category (`order` selects `order-42`).
    public static func category(_ category: String) -> EventFilter { EventFilter(category: category) }
    /// Selects the events of streams whose names start with `prefix`, compared byte for byte.
    public static func streamPrefix(_ prefix: String) -> EventFilter { EventFilter(streamPrefix: prefix) }

    /// Whether no condition is set.
    public var isEmpty: Bool { eventTypes == nil && category == nil && streamPrefix == nil }

    /// Whether an event of `type` in `stream` passes.
    public func matches(type: String, stream: StreamName) -> Bool {
        if let eventTypes, !eventTypes.contains(type) { return false }
        if let category, !stream.category.utf8.elementsEqual(category.utf8) { return false }
        if let streamPrefix, !stream.rawValue.utf8.starts(with: streamPrefix.utf8) { return false }
        return true
    }

    /// Whether `event` passes.
    public func matches(_ event: RecordedEvent) -> Bool { matches(type: event.type, stream: event.stream) }
}
