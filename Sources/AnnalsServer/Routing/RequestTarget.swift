import Annals
import Foundation

/// A request's query parameters, percent-decoded strictly (a bad escape is a 400, never a guess), each
/// given at most once.
struct RequestTarget: Sendable {
    var query: [String: String] = [:]

    /// No parameters.
    init() {}

    init(query rawQuery: String?) throws(EventStoreError) {
        var query: [String: String] = [:]
        for pair in (rawQuery ?? "").split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try Self.decode(parts[0], what: "query", plusIsSpace: true)
            let value = parts.count > 1 ? try Self.decode(parts[1], what: "query", plusIsSpace: true) : ""
            if query[key] != nil {
                throw EventStoreError(.invalidArgument, "The query parameter '\(key)' is given twice.")
            }
            query[key] = value
        }
        self.query = query
    }

    /// Strict percent-decoding: every `%` starts two hex digits, and the bytes are UTF-8.
    static func decode(_ raw: Substring, what: String, plusIsSpace: Bool = false) throws(EventStoreError) -> String {
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

    /// Rejects parameters a route does not know, so a typo is an error rather than a silent default.
    func allowOnly(_ names: Set<String>) throws(EventStoreError) {
        if let unknown = query.keys.sorted().first(where: { !names.contains($0) && $0 != "access_token" }) {
            throw EventStoreError(.invalidArgument, "Unknown query parameter '\(unknown)'.")
        }
    }

    /// A non-negative integer parameter that fits 63 bits.
    func integer(_ name: String) throws(EventStoreError) -> UInt64? {
        guard let text = query[name] else { return nil }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt64(text),
            value <= UInt64(Int64.max)
        else {
            throw EventStoreError(
                .invalidArgument, "'\(name)' must be an integer from 0 to \(Int64.max); got '\(text)'.")
        }
        return value
    }

    func direction() throws(EventStoreError) -> ReadDirection {
        switch query["direction"] {
        case nil, "forwards": .forwards
        case "backwards": .backwards
        case let other?:
            throw EventStoreError(.invalidArgument, "'direction' is forwards or backwards; got '\(other)'.")
        }
    }

    func limit(default value: Int, maximum: Int?) throws(EventStoreError) -> Int {
        guard let limit = try integer("limit") else { return value }
        if let maximum, limit > UInt64(maximum) {
            throw EventStoreError(
                .invalidArgument, "'limit' is at most \(maximum) for a JSON page; ask for NDJSON for more.")
        }
        return Int(limit)
    }

    /// `type`, `category` and `streamPrefix` as a filter.
    func filter() throws(EventStoreError) -> EventFilter {
        var filter = EventFilter()
        if let types = query["type"] {
            let names = types.split(separator: ",").map(String.init)
            guard !names.isEmpty, names.count <= 256 else {
                throw EventStoreError(.invalidArgument, "'type' is 1–256 comma-separated event types.")
            }
            filter.eventTypes = Set(names)
        }
        if let category = query["category"] {
            guard !category.isEmpty else { throw EventStoreError(.invalidArgument, "'category' must not be empty.") }
            filter.category = category
        }
        if let prefix = query["streamPrefix"] {
            guard !prefix.isEmpty else { throw EventStoreError(.invalidArgument, "'streamPrefix' must not be empty.") }
            filter.streamPrefix = prefix
        }
        return filter
    }
}
