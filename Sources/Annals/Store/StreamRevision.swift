/// An event's index in its stream: 0 for the first event, contiguous.
public struct StreamRevision: Sendable, Hashable, Comparable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    /// The revision as a number.
    public var value: UInt64

    /// The revision `value`.
    public init(_ value: UInt64) { self.value = value }
    /// A revision written as a literal, such as the `0` in `.exact(0)`.
    public init(integerLiteral value: UInt64) { self.value = value }

    /// The revision after this one, or `nil` at the end of the number range.
    public var next: StreamRevision? {
        let (sum, overflow) = value.addingReportingOverflow(1)
        return overflow ? nil : StreamRevision(sum)
    }

    /// The revision before this one, or `nil` at 0.
    public var previous: StreamRevision? { value == 0 ? nil : StreamRevision(value - 1) }

    /// Numeric order: the order of the events in their stream.
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
    /// The revision in decimal.
    public var description: String { String(value) }

    /// Decodes a revision from a bare number.
    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(UInt64.self)
    }

    /// Encodes the revision as a bare number.
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

    /// The position `value`.
    public init(_ value: UInt64) { self.value = value }
    /// A position written as a literal, such as the `41` in `.afterPosition(41)`.
    public init(integerLiteral value: UInt64) { self.value = value }

    /// The position after this one, or `nil` at the end of the number range.
    public var next: Position? {
        let (sum, overflow) = value.addingReportingOverflow(1)
        return overflow ? nil : Position(sum)
    }

    /// The position before this one, or `nil` at 0.
    public var previous: Position? { value == 0 ? nil : Position(value - 1) }

    /// Numeric order: the commit order of the events.
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
    /// The position in decimal.
    public var description: String { String(value) }

    /// Decodes a position from a bare number.
    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(UInt64.self)
    }

    /// Encodes the position as a bare number.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
