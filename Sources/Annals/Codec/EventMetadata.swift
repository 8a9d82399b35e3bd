import Foundation

/// The conventional metadata of an event: correlation, causation, trace context, schema version, and
/// anything else as JSON.
///
/// Encoded as one flat JSON object: `{"correlationId": …, "causationId": …, "traceparent": …,
/// "tracestate": …, "schemaVersion": 2, …custom keys}`. Unknown keys are kept in ``custom``.
public struct EventMetadata: Sendable, Hashable, Codable {
    /// Ties together everything that happened because of one request.
    public var correlationID: String?
    /// The id of the command or event that caused this event.
    public var causationID: String?
    /// A W3C trace-context `traceparent` (`00-<trace id>-<parent id>-<flags>`).
    public var traceparent: String?
    /// The W3C trace-context `tracestate` that goes with ``traceparent`` (vendor-specific values).
    public var tracestate: String?
    /// The version of the event's schema; absent means 1.
    public var schemaVersion: Int?
    /// Every other key.
    public var custom: [String: JSONValue]

    /// Metadata with these fields; every one is absent by default.
    public init(
        correlationID: String? = nil,
        causationID: String? = nil,
        traceparent: String? = nil,
        tracestate: String? = nil,
        schemaVersion: Int? = nil,
        custom: [String: JSONValue] = [:]
    ) {
        self.correlationID = correlationID
        self.causationID = causationID
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.schemaVersion = schemaVersion
        self.custom = custom
    }

    static let correlationKey = "correlationId"
    static let causationKey = "causationId"
    static let traceparentKey = "traceparent"
    static let tracestateKey = "tracestate"
    static let schemaVersionKey = "schemaVersion"

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Decodes one flat JSON object: the known keys into their fields (a value of the wrong type is dropped),
    /// every other key into ``custom``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        var custom: [String: JSONValue] = [:]
        for key in container.allKeys {
            switch key.stringValue {
            case Self.correlationKey: correlationID = try? container.decode(String.self, forKey: key)
            case Self.causationKey: causationID = try? container.decode(String.self, forKey: key)
            case Self.traceparentKey: traceparent = try? container.decode(String.self, forKey: key)
            case Self.tracestateKey: tracestate = try? container.decode(String.self, forKey: key)
            case Self.schemaVersionKey: schemaVersion = try? container.decode(Int.self, forKey: key)
            default: custom[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
            }
        }
        self.custom = custom
    }

    /// Encodes one flat JSON object: the fields that are set, under their keys (`correlationId`, …), beside
    /// the ``custom`` keys.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (key, value) in custom { try container.encode(value, forKey: Key(key)) }
        try container.encodeIfPresent(correlationID, forKey: Key(Self.correlationKey))
        try container.encodeIfPresent(causationID, forKey: Key(Self.causationKey))
        try container.encodeIfPresent(traceparent, forKey: Key(Self.traceparentKey))
        try container.encodeIfPresent(tracestate, forKey: Key(Self.tracestateKey))
        try container.encodeIfPresent(schemaVersion, forKey: Key(Self.schemaVersionKey))
    }

    /// Reads metadata bytes. Empty bytes, or bytes that are not a JSON object, give empty metadata: metadata
    /// written by other clients must never make an event unreadable.
    public init(decoding data: Data) {
        guard !data.isEmpty, let decoded = try? JSONDecoder().decode(EventMetadata.self, from: data) else {
            self.init()
            return
        }
        self = decoded
    }

    /// The metadata as compact JSON (keys sorted), or empty bytes when there is nothing to say.
    public func encoded() -> Data {
        if correlationID == nil, causationID == nil, traceparent == nil, tracestate == nil, schemaVersion == nil,
            custom.isEmpty
        {
            return Data()
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings, integers and JSONValue cannot fail.
        return (try? encoder.encode(self)) ?? Data()
    }

    /// Whether `value` is a well-formed W3C `traceparent` (version 00).
    public static func isValidTraceparent(_ value: String) -> Bool {
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "00", parts[1].utf8.count == 32, parts[2].utf8.count == 16,
            parts[3].utf8.count == 2
        else { return false }
        let isLowerHex = { (part: Substring) in
            part.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        guard parts.dropFirst().allSatisfy(isLowerHex) else { return false }
        return parts[1].contains { $0 != "0" } && parts[2].contains { $0 != "0" }
    }
}
