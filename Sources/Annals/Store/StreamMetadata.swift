import Foundation

/// A stream's settings: retention (`maxCount`, `maxAge`, `truncateBefore`) and a free-form custom part.
///
/// Stream reads honour retention at once (law 8); space is reclaimed later. `$all` and category reads
/// show the log as committed, like EventStoreDB's `$all`, until space is reclaimed.
public struct StreamMetadata: Sendable, Hashable, Codable {
    /// Keep only the newest `maxCount` events visible. Must be positive.
    public var maxCount: Int?
    /// Hide events recorded more than `maxAge` seconds ago. Must not be negative.
    public var maxAge: Int?
    /// Hide events with a revision below this one.
    public var truncateBefore: StreamRevision?
    /// Anything else the application wants to keep beside the stream (a JSON object).
    public var custom: [String: JSONValue]

    /// Metadata with these settings; by default none (no retention). Stores check them with ``validate()``
    /// when the metadata is set.
    public init(
        maxCount: Int? = nil,
        maxAge: Int? = nil,
        truncateBefore: StreamRevision? = nil,
        custom: [String: JSONValue] = [:]
    ) {
        self.maxCount = maxCount
        self.maxAge = maxAge
        self.truncateBefore = truncateBefore
        self.custom = custom
    }

    enum CodingKeys: String, CodingKey {
        case maxCount, maxAge, truncateBefore, custom
    }

    /// Decodes a JSON object with `maxCount`, `maxAge`, `truncateBefore` and `custom`, every key optional.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxCount = try container.decodeIfPresent(Int.self, forKey: .maxCount)
        maxAge = try container.decodeIfPresent(Int.self, forKey: .maxAge)
        truncateBefore = try container.decodeIfPresent(StreamRevision.self, forKey: .truncateBefore)
        custom = try container.decodeIfPresent([String: JSONValue].self, forKey: .custom) ?? [:]
    }

    /// Encodes a JSON object with the settings that are set, and `custom` when it is not empty.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(maxCount, forKey: .maxCount)
        try container.encodeIfPresent(maxAge, forKey: .maxAge)
        try container.encodeIfPresent(truncateBefore, forKey: .truncateBefore)
        if !custom.isEmpty { try container.encode(custom, forKey: .custom) }
    }

    /// Checks the values' ranges.
    public func validate() throws(EventStoreError) {
        if let maxCount, maxCount < 1 {
            throw EventStoreError(.invalidArgument, "maxCount must be at least 1; it is \(maxCount).")
        }
        if let maxAge, maxAge < 0 {
            throw EventStoreError(.invalidArgument, "maxAge must not be negative; it is \(maxAge).")
        }
    }

    /// The lowest revision still visible in a stream of `count` events under `truncateBefore` and `maxCount`.
    public func firstVisibleRevision(eventCount count: UInt64) -> UInt64 {
        var first = truncateBefore?.value ?? 0
        if let maxCount, let keep = UInt64(exactly: max(0, maxCount)), keep < count {
            first = max(first, count - keep)
        }
        return first
    }

    /// Whether an event recorded at `recordedAt` is still visible at `now` under `maxAge`.
    public func isWithinMaxAge(recordedAt: Date, now: Date) -> Bool {
        guard let maxAge else { return true }
        return now.timeIntervalSince(recordedAt) <= Double(maxAge)
    }
}

/// What a store knows of one stream.
public struct StreamInfo: Sendable, Hashable {
    /// The stream's name.
    public var stream: StreamName
    /// The revision of the stream's last event, or `nil` when it has none (metadata only).
    public var lastRevision: StreamRevision?
    /// How many events a read of the stream returns now (retention and deletion applied).
    public var visibleEventCount: UInt64
    /// Soft-deleted: reads return nothing; a new append continues the revisions.
    public var isDeleted: Bool
    /// Tombstoned: every read and append fails with ``EventStoreError/Code/streamDeleted``.
    public var isTombstoned: Bool
    /// The stream's metadata, with the `truncateBefore` a soft delete sets.
    public var metadata: StreamMetadata

    /// A description of a stream with these values: for stores.
    public init(
        stream: StreamName,
        lastRevision: StreamRevision?,
        visibleEventCount: UInt64,
        isDeleted: Bool,
        isTombstoned: Bool,
        metadata: StreamMetadata
    ) {
        self.stream = stream
        self.lastRevision = lastRevision
        self.visibleEventCount = visibleEventCount
        self.isDeleted = isDeleted
        self.isTombstoned = isTombstoned
        self.metadata = metadata
    }
}
