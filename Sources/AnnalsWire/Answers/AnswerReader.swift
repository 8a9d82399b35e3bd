import Annals
import Foundation

/// Reads the members of a JSON object the server wrote, on the client's side. A member that is missing
/// or of the wrong kind means the other end does not speak this API: `unavailable`, naming the answer
/// and the member. Members the reader is not asked for are ignored, so a newer server may add some.
struct AnswerReader {
    /// The object being read.
    let node: JSONNode
    /// The bytes `node` was parsed from: numbers are read from them.
    let body: [UInt8]
    /// What is being read, for messages: "the answer to GET /stats".
    let answer: String

    /// A reader of `body`, which must be one JSON object.
    ///
    /// - Throws: `invalid-json` when `body` is not JSON; `unavailable` when it is not an object.
    init(parsing body: [UInt8], answer: String) throws(EventStoreError) {
        try self.init(try JSONNode.parse(body), in: body, answer: answer)
    }

    /// A reader of `node`, an object inside `body`.
    ///
    /// - Throws: `unavailable` when `node` is not an object.
    init(_ node: JSONNode, in body: [UInt8], answer: String) throws(EventStoreError) {
        guard case .object = node.kind else {
            throw EventStoreError(.unavailable, "The server's \(answer) is not a JSON object.")
        }
        self.node = node
        self.body = body
        self.answer = answer
    }

    /// The error for a member that is missing or malformed; `expected` says what it should be.
    func malformed(_ name: String, expected: String) -> EventStoreError {
        EventStoreError(.unavailable, "The server's \(answer) has no valid '\(name)' (\(expected)).")
    }

    /// Whether the member is absent or `null`.
    func isAbsent(_ name: String) -> Bool {
        node[name].map(\.isNull) ?? true
    }

    /// A string member.
    func string(_ name: String) throws(EventStoreError) -> String {
        guard let value = node[name]?.stringValue else { throw malformed(name, expected: "a string") }
        return value
    }

    /// A string member that may be absent or `null`.
    func optionalString(_ name: String) throws(EventStoreError) -> String? {
        try isAbsent(name) ? nil : string(name)
    }

    /// An integer member from 0 to 2⁶³−1.
    func unsigned(_ name: String) throws(EventStoreError) -> UInt64 {
        guard let value = node[name]?.unsignedValue(in: body) else {
            throw malformed(name, expected: "an integer from 0 to \(Int64.max)")
        }
        return value
    }

    /// An integer member from 0 to 2⁶³−1 that may be absent or `null`.
    func optionalUnsigned(_ name: String) throws(EventStoreError) -> UInt64? {
        try isAbsent(name) ? nil : unsigned(name)
    }

    /// An array member whose elements are all strings.
    func strings(_ name: String) throws(EventStoreError) -> [String] {
        guard case .array(let elements)? = node[name]?.kind else {
            throw malformed(name, expected: "an array of strings")
        }
        var values: [String] = []
        values.reserveCapacity(elements.count)
        for element in elements {
            guard let value = element.stringValue else { throw malformed(name, expected: "an array of strings") }
            values.append(value)
        }
        return values
    }

    /// An array member.
    func array(_ name: String) throws(EventStoreError) -> [JSONNode] {
        guard case .array(let elements)? = node[name]?.kind else { throw malformed(name, expected: "an array") }
        return elements
    }

    /// A time member, as ``WireFormat/timestamp(_:)`` writes it.
    func timestamp(_ name: String) throws(EventStoreError) -> Date {
        guard let text = node[name]?.stringValue, let date = WireFormat.parseTimestamp(text) else {
            throw malformed(name, expected: "a time such as 2025-01-15T09:30:12.345Z")
        }
        return date
    }
}
