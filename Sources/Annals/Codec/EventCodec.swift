import Foundation

/// Maps typed events to ``EventData`` (type name, JSON data, metadata) and back.
///
/// Register each payload type once under a stable name, with how to embed it in your event type and
/// (optionally) how to take it out. With an enum of one payload struct per case — the natural shape of
/// an aggregate's events — registration reads:
///
/// ```swift
/// enum OrderEvent: Sendable { case placed(OrderPlaced), shipped(OrderShipped) }
///
/// let codec = EventCodec<OrderEvent>()
///     .registering(OrderPlaced.self, as: "OrderPlaced", version: 2, OrderEvent.placed)
///     .registering(OrderShipped.self, as: "OrderShipped", OrderEvent.shipped)
///     .upcasting(Upcaster("OrderPlaced", from: 1) { $0.data["currency"] = .string("EUR") })
/// ```
///
/// Decoding surfaces unknown type names and undecodable payloads as ``EventCodingError``;
/// ``decodeIfKnown(_:)`` returns `nil` for unknown names instead, for projections that only care about
/// some events.
public struct EventCodec<Event: Sendable>: Sendable {
    struct Registration: Sendable {
        var name: String
        var version: Int
        var encode: @Sendable (Event) throws -> Data?
        var decode: @Sendable (Data) throws -> Event
    }

    private var registrations: [Registration] = []
    private var byName: [String: Int] = [:]
    private var upcasters: [UpcasterKey: Upcaster] = [:]

    struct UpcasterKey: Hashable {
        var type: String
        var version: Int
    }

    /// A codec with no registrations and no upcasters.
    public init() {}

    /// The registered type names.
    public var registeredTypes: [String] { registrations.map(\.name) }

    /// Registers a payload type under `name`.
    ///
    /// - Parameters:
    ///   - version: the current schema version of the payload; stored in metadata as `schemaVersion`
    ///     when above 1.
    ///   - embed: makes an event from the payload (an enum case constructor, such as `OrderEvent.placed`).
    ///   - extract: takes the payload out of an event, or returns `nil`. When omitted, an enum case whose
    ///     single associated value is the payload is recognised by reflection.
    public func registering<Payload: Codable & Sendable>(
        _ payload: Payload.Type,
        as name: String,
        version: Int = 1,
        _ embed: @escaping @Sendable (Payload) -> Event,
        extract: (@Sendable (Event) -> Payload?)? = nil
    ) -> EventCodec {
        var copy = self
        let extract = extract ?? { event in Self.reflectPayload(of: event, embed: embed) }
        let registration = Registration(
            name: name,
            version: version,
            encode: { event in
                guard let payload = extract(event) else { return nil }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                return try encoder.encode(payload)
            },
            decode: { data in
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                return embed(try decoder.decode(Payload.self, from: data))
            }
        )
        if let existing = copy.byName[name] {
            copy.registrations[existing] = registration
        } else {
            copy.byName[name] = copy.registrations.count
            copy.registrations.append(registration)
        }
        return copy
    }

    /// Adds an upcaster for old stored versions.
    public func upcasting(_ upcaster: Upcaster) -> EventCodec {
        var copy = self
        copy.upcasters[UpcasterKey(type: upcaster.eventType, version: upcaster.fromVersion)] = upcaster
        return copy
    }

    /// Encodes an event as ``EventData``.
    ///
    /// - Throws: ``EventCodingError/Code/unregisteredEvent`` when no registration recognises the event.
    public func encode(_ event: Event, id: UUID = UUID(), metadata: EventMetadata = EventMetadata()) throws
        -> EventData
    {
        for registration in registrations {
            if let data = try registration.encode(event) {
                var metadata = metadata
                metadata.schemaVersion = registration.version == 1 ? nil : registration.version
                return EventData(id: id, type: registration.name, data: data, metadata: metadata.encoded())
            }
        }
        throw EventCodingError(
            .unregisteredEvent,
            eventType: String(describing: event),
            "No registration recognises this event; register its payload type with the codec."
        )
    }

    /// Decodes a stored event, running upcasters first.
    ///
    /// - Throws: ``EventCodingError`` with ``EventCodingError/Code/unknownEventType``,
    ///   ``EventCodingError/Code/undecodablePayload`` or ``EventCodingError/Code/unsupportedVersion``.
    public func decode(_ event: RecordedEvent) throws -> Event {
        try decode(type: event.type, data: event.data, metadata: event.metadata)
    }

    /// Decodes a stored event, or returns `nil` when its type is not registered (and no upcaster knows
    /// it). Undecodable payloads of known types still throw.
    public func decodeIfKnown(_ event: RecordedEvent) throws -> Event? {
        do {
            return try decode(event)
        } catch let error as EventCodingError where error.code == .unknownEventType {
            return nil
        }
    }

    /// Decodes a type name, data and metadata, running upcasters first.
    public func decode(type: String, data: Data, metadata: Data) throws -> Event {
        let meta = EventMetadata(decoding: metadata)
        var version = meta.schemaVersion ?? 1
        var type = type
        var data = data
        if upcasters[UpcasterKey(type: type, version: version)] != nil {
            var json: JSONValue
            do {
                json = try JSONValue(parsing: data)
            } catch {
                throw EventCodingError(.undecodablePayload, eventType: type, "The payload is not JSON: \(error)")
            }
            var steps = 0
            while let upcaster = upcasters[UpcasterKey(type: type, version: version)] {
                steps += 1
                guard steps <= 1_000 else {
                    throw EventCodingError(.undecodablePayload, eventType: type, "The upcasters form a cycle.")
                }
                var event = UpcastingEvent(type: type, version: version + 1, data: json, metadata: meta)
                do {
                    try upcaster.transform(&event)
                } catch {
                    throw EventCodingError(
                        .undecodablePayload,
                        eventType: type,
                        "Upcasting from version \(version) failed: \(error)"
                    )
                }
                (type, version, json) = (event.type, event.version, event.data)
            }
            data = try json.encoded()
        }
        guard let index = byName[type] else {
            throw EventCodingError(.unknownEventType, eventType: type, "No payload type is registered under this name.")
        }
        let registration = registrations[index]
        guard version <= registration.version else {
            throw EventCodingError(
                .unsupportedVersion,
                eventType: type,
                "Stored version \(version) is newer than the registered version \(registration.version)."
            )
        }
        do {
            return try registration.decode(data)
        } catch {
            throw EventCodingError(.undecodablePayload, eventType: type, "The payload does not decode: \(error)")
        }
    }

    /// The payload of an enum case with a single associated value, if it has type `Payload` and the case
    /// is the one `embed` builds.
    private static func reflectPayload<Payload>(of event: Event, embed: (Payload) -> Event) -> Payload? {
        if let payload = event as? Payload { return payload }
        let mirror = Mirror(reflecting: event)
        guard let child = mirror.children.first, let payload = child.value as? Payload else { return nil }
        let rebuilt = Mirror(reflecting: embed(payload))
        guard rebuilt.children.first?.label == child.label else { return nil }
        return payload
    }
}

/// A failure to encode or decode a typed event.
public struct EventCodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable error code (`unknown-event-type`, …).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code as text, such as `unknown-event-type`.
        public let rawValue: String
        /// A code with this text; the codes the codec throws are the static members.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        /// The code's ``rawValue``.
        public var description: String { rawValue }

        /// No payload type is registered under the stored type name.
        public static let unknownEventType = Code("unknown-event-type")
        /// The payload is not valid JSON for its registered type.
        public static let undecodablePayload = Code("undecodable-payload")
        /// The stored version is newer than the code knows.
        public static let unsupportedVersion = Code("unsupported-version")
        /// The event to encode matches no registration.
        public static let unregisteredEvent = Code("unregistered-event")
    }

    /// What kind of failure this is; stable, unlike the message.
    public var code: Code
    /// The stored type name (or, for encoding, a description of the event).
    public var eventType: String
    /// A sentence that says what went wrong.
    public var message: String

    /// A failure of `code` for the event type `eventType`, explained by `message`.
    public init(_ code: Code, eventType: String, _ message: String) {
        self.code = code
        self.eventType = eventType
        self.message = message
    }

    /// `<code> '<event type>': <message>`.
    public var description: String { "\(code) '\(eventType)': \(message)" }
}
