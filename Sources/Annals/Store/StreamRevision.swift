/// An event's index in its stream: 0 for the first event, contiguous.
public struct StreamRevision: Sendable, Hashable, Comparable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    /// The revision as a number.
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }
    public init(integerLiteral value: UInt64) { self.value = value }

    /// The revision after this one, or `nil` at the end of the number range.
    public var next: StreamRevision? {
        let (sum, overflow) = value.addingReportingOverflow(1)
        return overflow ? nil : StreamRevision(sum)
    }

    /// The revision before this one, or `nil` at 0.
    public var previous: StreamRevision? { value == 0 ? nil : StreamRevision(value - 1) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
    public var description: String { String(value) }

    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(UInt64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// An event's index in the whole store (`$all`): from 0, contiguous, in commit order.
public struct Position: Sendable, Hashable, Comparable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    /// The position as a number.
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }
    public init(integerLiteral value: UInt64) { self.value = value }

    /// The position after this one, or `nil` at the end of the number range.
    public var next: Position? {
        let (sum, overflow) = value.addingReportingOverflow(1)
        return overflow ? nil : Position(sum)
    }

    /// The position before this one, or `nil` at 0.
    public var previous: Position? { value == 0 ? nil : Position(value - 1) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
    public var description: String { String(value) }

    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(UInt64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
