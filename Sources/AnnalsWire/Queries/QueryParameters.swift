import Annals
import Foundation

/// A request's query parameters, as the HTTP API reads them: percent-decoded strictly (a bad escape is
/// `invalid-argument`, never a guess; `+` is a space), each name given at most once.
///
/// The server parses a request's query into one (``init(parsing:)``) and the typed queries
/// (``StreamReadQuery``, ``LogReadQuery``, ``StreamListQuery``, ``SubscriptionQuery``) read it; the
/// client builds the same types and sends their ``encoded`` text, so both ends read one contract.
public struct QueryParameters: Sendable, Hashable {
    /// Each parameter's decoded value by name.
    public private(set) var values: [String: String]

    /// These values.
    public init(_ values: [String: String] = [:]) {
        self.values = values
    }

    /// Parses the raw query (the text after `?`, without it; nil for none).
    ///
    /// - Throws: `invalid-argument` for a bad percent-escape, bytes that are not UTF-8, or a name given
    ///   twice.
    public init(parsing rawQuery: String?) throws(EventStoreError) {
        var values: [String: String] = [:]
        for pair in (rawQuery ?? "").split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try Self.percentDecode(parts[0], what: "query", plusIsSpace: true)
            let value = parts.count > 1 ? try Self.percentDecode(parts[1], what: "query", plusIsSpace: true) : ""
            if values[key] != nil {
                throw EventStoreError(.invalidArgument, "The query parameter '\(key)' is given twice.")
            }
            values[key] = value
        }
        self.values = values
    }

    /// The value of `name`, or nil.
    public subscript(name: String) -> String? {
        get { values[name] }
        set { values[name] = newValue }
    }

    /// Whether no parameter is given.
    public var isEmpty: Bool { values.isEmpty }

    /// The query as sent: `name=value` pairs in name order, joined by `&`, every byte but letters,
    /// digits and `-._~` percent-encoded.
    public var encoded: String {
        values.sorted { $0.key < $1.key }
            .map { "\(WireFormat.percentEncode($0.key))=\(WireFormat.percentEncode($0.value))" }
            .joined(separator: "&")
    }

    /// Strict percent-decoding of a path segment or a query part: every `%` starts two hex digits, and
    /// the bytes are UTF-8; with `plusIsSpace` (a query), `+` is a space.
    ///
    /// - Throws: `invalid-argument`, naming `what` (`path`, `query`).
    public static func percentDecode(_ raw: Substring, what: String, plusIsSpace: Bool = false)
        throws(EventStoreError) -> String
    {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.utf8.count)
        var iterator = raw.utf8.makeIterator()
        func hex(_ byte: UInt8?) -> UInt8? {
            switch byte {
            case let digit? where (0x30...0x39).contains(digit): digit - 0x30
            case let letter? where (0x41...0x46).contains(letter): letter - 0x41 + 10
            case let letter? where (0x61...0x66).contains(letter): letter - 0x61 + 10
            default: nil
            }
        }
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = hex(iterator.next()), let low = hex(iterator.next()) else {
                    throw EventStoreError(.invalidArgument, "The \(what) has an invalid percent-escape.")
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(0x20)
            default:
                bytes.append(byte)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw EventStoreError(.invalidArgument, "The \(what), percent-decoded, is not UTF-8.")
        }
        return text
    }

    /// Refuses any parameter but `names` (and `access_token`, which every route takes), so a typo is an
    /// error rather than a silent default.
    ///
    /// - Throws: `invalid-argument` naming the first unknown parameter.
    public func allowOnly(_ names: Set<String>) throws(EventStoreError) {
        if let unknown = values.keys.sorted().first(where: { !names.contains($0) && $0 != "access_token" }) {
            throw EventStoreError(.invalidArgument, "Unknown query parameter '\(unknown)'.")
        }
    }

    /// A non-negative integer parameter that fits 63 bits: decimal digits only, no sign, no spaces.
    ///
    /// - Throws: `invalid-argument` for anything else.
    public func integer(_ name: String) throws(EventStoreError) -> UInt64? {
        guard let text = values[name] else { return nil }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt64(text),
            value <= UInt64(Int64.max)
        else {
            throw EventStoreError(
                .invalidArgument, "'\(name)' must be an integer from 0 to \(Int64.max); got '\(text)'.")
        }
        return value
    }

    /// `direction`: `forwards` (the default) or `backwards`.
    public func direction() throws(EventStoreError) -> ReadDirection {
        switch values["direction"] {
        case nil, "forwards": .forwards
        case "backwards": .backwards
        case let other?:
            throw EventStoreError(.invalidArgument, "'direction' is forwards or backwards; got '\(other)'.")
        }
    }

    /// `type`, `category` and `streamPrefix` as a filter (`type` is 1–256 comma-separated event types).
    public func filter() throws(EventStoreError) -> EventFilter {
        var filter = EventFilter()
        if let types = values["type"] {
            let names = types.split(separator: ",").map(String.init)
            guard !names.isEmpty, names.count <= 256 else {
                throw EventStoreError(.invalidArgument, "'type' is 1–256 comma-separated event types.")
            }
            filter.eventTypes = Set(names)
        }
        if let category = values["category"] {
            guard !category.isEmpty else { throw EventStoreError(.invalidArgument, "'category' must not be empty.") }
            filter.category = category
        }
        if let prefix = values["streamPrefix"] {
            guard !prefix.isEmpty else { throw EventStoreError(.invalidArgument, "'streamPrefix' must not be empty.") }
            filter.streamPrefix = prefix
        }
        return filter
    }

    /// Writes `filter` as `type`, `category` and `streamPrefix` (types sorted).
    mutating func write(_ filter: EventFilter) {
        if let types = filter.eventTypes { values["type"] = types.sorted().joined(separator: ",") }
        if let category = filter.category { values["category"] = category }
        if let prefix = filter.streamPrefix { values["streamPrefix"] = prefix }
    }
}
