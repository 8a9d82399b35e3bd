/// The name of a stream: 1–256 UTF-8 bytes, no NUL or control characters, compared byte for byte.
///
/// Names are never normalised: `"café"` written with a precomposed `é` and with `e` + a combining
/// accent are two different streams, because their bytes differ. Names starting with `$` are reserved
/// for the system; ``init(_:)`` rejects them with ``EventStoreError/Code/invalidStreamName``.
///
/// The ``category`` of `order-42` is `order`: the part before the first `-` (the whole name when it
/// has no `-`).
public struct StreamName: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// The largest name, in UTF-8 bytes.
    public static let maximumByteCount = 256

    /// The name as a string.
    public let rawValue: String

    /// Validates a user stream name.
    ///
    /// - Throws: ``EventStoreError`` with code ``EventStoreError/Code/invalidStreamName`` when the name is
    ///   empty, longer than 256 UTF-8 bytes, holds a NUL or control character, or starts with `$`.
    public init(_ rawValue: String) throws(EventStoreError) {
        try Self.validate(rawValue, allowingSystem: false)
        self.rawValue = rawValue
    }

    /// Validates a name that may be a system name (starting with `$`).
    ///
    /// Stores use this for their own streams; user appends to a system name are still refused by the
    /// store.
    public init(allowingSystemName rawValue: String) throws(EventStoreError) {
        try Self.validate(rawValue, allowingSystem: true)
        self.rawValue = rawValue
    }

    /// Whether the name is reserved for the system (starts with `$`).
    public var isSystem: Bool { rawValue.utf8.first == UInt8(ascii: "$") }

    /// The part of the name before the first `-`, or the whole name when it has none.
    public var category: String { Self.category(of: rawValue) }

    /// The category of a raw stream name: the part before the first `-`, or the whole name.
    public static func category(of name: String) -> String {
        guard let dash = name.utf8.firstIndex(of: UInt8(ascii: "-")) else { return name }
        return String(name[..<dash])
    }

    /// The name as it is (``rawValue``).
    public var description: String { rawValue }

    /// Whether two names have the same UTF-8 bytes; no Unicode normalisation.
    public static func == (lhs: StreamName, rhs: StreamName) -> Bool {
        lhs.rawValue.utf8.elementsEqual(rhs.rawValue.utf8)
    }

    /// Hashes the UTF-8 bytes, as ``==(_:_:)`` compares them.
    public func hash(into hasher: inout Hasher) {
        // The bytes, not the string: Swift's String hashing follows Unicode equivalence.
        let hashed: Void? = rawValue.utf8.withContiguousStorageIfAvailable { bytes in
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
        if hashed == nil {
            for byte in rawValue.utf8 { hasher.combine(byte) }
        }
        hasher.combine(rawValue.utf8.count)
    }

    /// Byte-wise (UTF-8) lexicographic order.
    public static func < (lhs: StreamName, rhs: StreamName) -> Bool {
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }

    /// Decodes a name from a string; system names are allowed, as stores write their own streams.
    ///
    /// - Throws: `DecodingError.dataCorrupted` when the string is not a valid name.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        do {
            try Self.validate(raw, allowingSystem: true)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
        self.rawValue = raw
    }

    /// Encodes the name as a string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    static func validate(_ name: String, allowingSystem: Bool) throws(EventStoreError) {
        let byteCount = name.utf8.count
        guard byteCount > 0 else {
            throw EventStoreError(.invalidStreamName, "A stream name must not be empty.")
        }
        guard byteCount <= maximumByteCount else {
            throw EventStoreError(
                .invalidStreamName,
                "A stream name must be at most \(maximumByteCount) UTF-8 bytes; this one has \(byteCount)."
            )
        }
        if let bad = name.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            throw EventStoreError(
                .invalidStreamName,
                "A stream name must not contain NUL or control characters (found U+\(hex(bad.value)))."
            )
        }
        if !allowingSystem, name.utf8.first == UInt8(ascii: "$") {
            throw EventStoreError(
                .invalidStreamName,
                "Stream names starting with '$' are reserved for the system."
            )
        }
    }
}

/// Validates an event type name: 1–256 UTF-8 bytes without NUL or control characters.
func validateEventType(_ type: String) throws(EventStoreError) {
    let byteCount = type.utf8.count
    guard byteCount > 0, byteCount <= 256 else {
        throw EventStoreError(
            .invalidEvent,
            "An event type must be 1 to 256 UTF-8 bytes; this one has \(byteCount)."
        )
    }
    if type.utf8.allSatisfy({ $0 < 0x80 }) {
        // ASCII: the control characters are 0x00–0x1F and 0x7F.
        if type.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw EventStoreError(.invalidEvent, "An event type must not contain NUL or control characters.")
        }
    } else if type.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
        throw EventStoreError(.invalidEvent, "An event type must not contain NUL or control characters.")
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
