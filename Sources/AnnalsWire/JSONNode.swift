import Annals

/// A parsed JSON value that remembers where each value lies in the input bytes, so event `data` and
/// `metadata` are stored exactly as the client sent them (no re-encoding, no reordered keys).
///
/// Strict RFC 8259: one value, no trailing garbage, UTF-8 checked, nesting bounded.
public struct JSONNode: Sendable {
    /// What a value is. Strings, Booleans and the members of objects and arrays are parsed; a number
    /// keeps only its place, so read its text from ``JSONNode/range`` and lose no precision.
    public enum Kind: Sendable {
        /// An object's members in the order they were written; a repeated key is kept each time it appears
        /// (``JSONNode/subscript(_:)`` finds the first).
        case object([(key: String, value: JSONNode)])
        /// An array's elements, in order.
        case array([JSONNode])
        /// A string, its escapes decoded.
        case string(String)
        /// A number; its text is the input's bytes at ``JSONNode/range``.
        case number
        /// `true` or `false`.
        case bool(Bool)
        /// `null`.
        case null
    }

    /// What the value is, with its parsed content.
    public var kind: Kind
    /// The value's bytes in the parsed input.
    public var range: Range<Int>

    /// The member named `key` of an object; nil when absent or not an object.
    public subscript(key: String) -> JSONNode? {
        guard case .object(let members) = kind else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The text of a string value, escapes decoded; `nil` for any other kind.
    public var stringValue: String? {
        if case .string(let value) = kind { return value }
        return nil
    }

    /// Whether the value is `null`.
    public var isNull: Bool {
        if case .null = kind { return true }
        return false
    }

    /// The value as a whole number from 0 to 2⁶³−1 (the range every count, revision and position on the
    /// wire has), read from its bytes in `body`; nil for anything else (a fraction, an exponent, a sign,
    /// a number too large, not a number).
    public func unsignedValue(in body: [UInt8]) -> UInt64? {
        guard case .number = kind, let text = String(bytes: body[range], encoding: .utf8), let value = UInt64(text),
            value <= UInt64(Int64.max)
        else { return nil }
        return value
    }

    /// Parses `bytes`. Throws ``Annals/EventStoreError`` with code `invalid-json` and the byte offset.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(EventStoreError) -> JSONNode {
        var parser = Parser(bytes: bytes, maxDepth: maxDepth)
        parser.skipWhitespace()
        let node = try parser.value(depth: 0)
        parser.skipWhitespace()
        if parser.index != bytes.count { throw parser.failure("unexpected bytes after the JSON value") }
        return node
    }

    /// Whether `bytes` are exactly one valid JSON value.
    public static func isValid(_ bytes: some Collection<UInt8>, maxDepth: Int = 64) -> Bool {
        (try? parse(Array(bytes), maxDepth: maxDepth)) != nil
    }
}

extension EventStoreError.Code {
    /// A request body or parameter is not valid JSON, or nests too deeply.
    public static let invalidJSON = EventStoreError.Code("invalid-json")
}

private struct Parser {
    let bytes: [UInt8]
    let maxDepth: Int
    var index = 0

    func failure(_ what: String) -> EventStoreError {
        EventStoreError(.invalidJSON, "Invalid JSON at byte \(index): \(what).")
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(EventStoreError) -> JSONNode {
        guard index < bytes.count else { throw failure("unexpected end") }
        let start = index
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw failure("nested deeper than \(maxDepth) levels") }
            index += 1
            var members: [(key: String, value: JSONNode)] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return JSONNode(kind: .object(members), range: start..<index)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a key") }
                let key = try string()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("expected ':'") }
                index += 1
                skipWhitespace()
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                guard index < bytes.count else { throw failure("unexpected end in an object") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { throw failure("expected ',' or '}'") }
                index += 1
                return JSONNode(kind: .object(members), range: start..<index)
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw failure("nested deeper than \(maxDepth) levels") }
            index += 1
            var elements: [JSONNode] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return JSONNode(kind: .array(elements), range: start..<index)
            }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw failure("unexpected end in an array") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "]") else { throw failure("expected ',' or ']'") }
                index += 1
                return JSONNode(kind: .array(elements), range: start..<index)
            }
        case UInt8(ascii: "\""):
            let value = try string()
            return JSONNode(kind: .string(value), range: start..<index)
        case UInt8(ascii: "t"):
            try literal("true")
            return JSONNode(kind: .bool(true), range: start..<index)
        case UInt8(ascii: "f"):
            try literal("false")
            return JSONNode(kind: .bool(false), range: start..<index)
        case UInt8(ascii: "n"):
            try literal("null")
            return JSONNode(kind: .null, range: start..<index)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try number()
            return JSONNode(kind: .number, range: start..<index)
        default:
            throw failure("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws(EventStoreError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw failure("unexpected end") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw failure("unexpected character")
        }
        index += count
    }

    mutating func digits() throws(EventStoreError) {
        let start = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        if index == start { throw failure("expected a digit") }
    }

    mutating func number() throws(EventStoreError) {
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw failure("unexpected end in a number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            try digits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            try digits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            try digits()
        }
    }

    /// Reads a string (the index on its opening quote), decoding escapes and checking UTF-8.
    mutating func string() throws(EventStoreError) -> String {
        index += 1
        var decoded: [UInt8] = []
        while true {
            guard index < bytes.count else { throw failure("unterminated string") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let value = String(validating: decoded, as: UTF8.self) else {
                    throw failure("a string is not valid UTF-8")
                }
                return value
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw failure("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        else { throw failure("a lone surrogate") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw failure("a lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw failure("a lone surrogate")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw failure("an invalid \\u escape") }
                    decoded.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    throw failure("an invalid escape")
                }
            default:
                guard byte >= 0x20 else { throw failure("a control character inside a string") }
                decoded.append(byte)
                index += 1
            }
        }
    }

    mutating func hex4() throws(EventStoreError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw failure("a short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw failure("an invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}
