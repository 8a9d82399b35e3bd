import Foundation

/// How an event's `data` is encoded.
public enum ContentType: String, Sendable, Hashable, Codable {
    /// UTF-8 JSON (the default).
    case json = "application/json"
    /// Opaque bytes.
    case binary = "application/octet-stream"
}

/// An event to append: its id, type, data and metadata.
///
/// The id makes appends idempotent (law 6): append the same events again, with the same ids, and the
/// store returns the original result and writes nothing.
public struct EventData: Sendable, Hashable {
    /// The event's unique id; generated when not given.
    public var id: UUID
    /// The event type name: 1–256 UTF-8 bytes, no NUL or control characters.
    public var type: String
    /// The payload, JSON by default.
    public var data: Data
    /// How `data` is encoded.
    public var contentType: ContentType
    /// By convention a JSON object; may hold `correlationId`, `causationId` and `traceparent`.
    public var metadata: Data

    /// An event to append: a new id unless one is given, JSON data and no metadata by default.
    ///
    /// The type name is checked when the event is appended, not here.
    public init(
        id: UUID = UUID(),
        type: String,
        data: Data,
        contentType: ContentType = .json,
        metadata: Data = Data()
    ) {
        self.id = id
        self.type = type
        self.data = data
        self.contentType = contentType
        self.metadata = metadata
    }

    /// The bytes this event counts against the size limits: type, data and metadata.
    public var byteCount: Int { type.utf8.count + data.count + metadata.count }

    /// Whether two events carry the same type, data, content type and metadata (ids aside).
    public func hasSameContent(as other: EventData) -> Bool {
        type == other.type && contentType == other.contentType && data == other.data
            && metadata == other.metadata
    }
}

/// An event as stored: its content plus the stream, revision, position and time the store gave it.
public struct RecordedEvent: Sendable, Hashable {
    /// The event's unique id, as appended.
    public var id: UUID
    /// The event type name.
    public var type: String
    /// The payload.
    public var data: Data
    /// How `data` is encoded.
    public var contentType: ContentType
    /// The metadata, as appended; by convention a JSON object (``EventMetadata``).
    public var metadata: Data
    /// The stream the event belongs to.
    public var stream: StreamName
    /// Its index in the stream, from 0.
    public var revision: StreamRevision
    /// Its index in `$all`, from 0, in commit order.
    public var position: Position
    /// When the store committed it (the store's clock).
    public var recordedAt: Date

    /// A stored event with every field given: for stores, and tests that make events by hand.
    public init(
        id: UUID,
        type: String,
        data: Data,
        contentType: ContentType,
        metadata: Data,
        stream: StreamName,
        revision: StreamRevision,
        position: Position,
        recordedAt: Date
    ) {
        self.id = id
        self.type = type
        self.data = data
        self.contentType = contentType
        self.metadata = metadata
        self.stream = stream
        self.revision = revision
        self.position = position
        self.recordedAt = recordedAt
    }

    /// `event` as stored in `stream` at `revision` and `position`, committed at `recordedAt`.
    public init(
        _ event: EventData,
        stream: StreamName,
        revision: StreamRevision,
        position: Position,
        recordedAt: Date
    ) {
        self.init(
            id: event.id,
            type: event.type,
            data: event.data,
            contentType: event.contentType,
            metadata: event.metadata,
            stream: stream,
            revision: revision,
            position: position,
            recordedAt: recordedAt
        )
    }

    /// The event's content, as it was appended.
    public var eventData: EventData {
        EventData(id: id, type: type, data: data, contentType: contentType, metadata: metadata)
    }
}
