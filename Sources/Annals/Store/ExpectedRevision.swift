/// What an append expects of its stream; checked atomically with the write.
///
/// | Expectation | Succeeds when |
/// |---|---|
/// | ``any`` | always (unless the stream is tombstoned) |
/// | ``noStream`` | the stream has no events, or was soft-deleted |
/// | ``streamExists`` | the stream has events and is not soft-deleted |
/// | ``exact(_:)`` | the stream's last revision is exactly this one |
public enum ExpectedRevision: Sendable, Hashable, CustomStringConvertible {
    /// Any state of the stream, unless it is tombstoned.
    case any
    /// The stream has no events, or was soft-deleted.
    case noStream
    /// The stream has events and is not soft-deleted.
    case streamExists
    /// The stream's last revision is exactly this one.
    case exact(StreamRevision)

    /// The wire form: `any`, `no-stream`, `exists` or the revision in decimal.
    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no-stream"
        case .streamExists: "exists"
        case .exact(let revision): String(revision.value)
        }
    }

    /// Parses the wire form: `any`, `no-stream`, `exists` or a non-negative decimal revision.
    public init?(_ text: String) {
        switch text {
        case "any": self = .any
        case "no-stream": self = .noStream
        case "exists": self = .streamExists
        default:
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let value = UInt64(text)
            else { return nil }
            self = .exact(StreamRevision(value))
        }
    }

    /// Whether a stream whose last revision is `last` (nil: no events) and deletion state satisfies this.
    public func isSatisfied(byLastRevision last: StreamRevision?, isSoftDeleted: Bool) -> Bool {
        switch self {
        case .any: true
        case .noStream: last == nil || isSoftDeleted
        case .streamExists: last != nil && !isSoftDeleted
        case .exact(let revision): last == revision
        }
    }
}
