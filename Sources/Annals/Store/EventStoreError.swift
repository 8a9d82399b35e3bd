import Foundation

/// Every failure of an ``EventStore``: a stable ``Code`` plus the context a caller needs.
///
/// `description` is safe to show a user; `debugDescription` adds every field.
public struct EventStoreError: Error, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// A stable error code; its `rawValue` is part of the wire API (`wrong-expected-revision`, …).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code as it goes on the wire, such as `wrong-expected-revision`.
        public let rawValue: String
        /// A code with this wire text; the codes stores throw are the static members.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        /// The code's ``rawValue``.
        public var description: String { rawValue }

        /// The stream's revision differs from the append's expectation; see ``actualRevision``.
        public static let wrongExpectedRevision = Code("wrong-expected-revision")
        /// The stream was tombstoned; nothing can be read from or appended to it.
        public static let streamDeleted = Code("stream-deleted")
        /// An event id is stored already, with other content or in another stream.
        public static let duplicateEventID = Code("duplicate-event-id")
        /// A stream name breaks the naming rules, or names a system stream.
        public static let invalidStreamName = Code("invalid-stream-name")
        /// An event is malformed (type name, empty batch, …).
        public static let invalidEvent = Code("invalid-event")
        /// An argument is out of range (a negative limit, a mismatched subscription start, …).
        public static let invalidArgument = Code("invalid-argument")
        /// A size or count limit was exceeded; nothing was written.
        public static let limitExceeded = Code("limit-exceeded")
        /// Stored data failed a check (checksum, format); see the message for where.
        public static let corruptedStorage = Code("corrupted-storage")
        /// The store is closed.
        public static let storeClosed = Code("store-closed")
        /// An earlier I/O failure put the store into a failed state; reopen it to recover.
        public static let storeFailed = Code("store-failed")
        /// The storage could not be reached or written.
        public static let unavailable = Code("unavailable")
        /// Something that should exist does not.
        public static let notFound = Code("not-found")
    }

    /// What kind of failure this is; stable, unlike the message.
    public var code: Code
    /// A sentence that says what went wrong.
    public var message: String
    /// The stream involved, when there is one.
    public var stream: StreamName?
    /// The append's expectation, for ``Code/wrongExpectedRevision``.
    public var expectedRevision: ExpectedRevision?
    /// The stream's actual last revision, for ``Code/wrongExpectedRevision``; `nil` when the stream has no events.
    public var actualRevision: StreamRevision?
    /// The event involved, for ``Code/duplicateEventID``.
    public var eventID: UUID?

    /// An error of `code`, explained by `message`, with the context that applies.
    public init(
        _ code: Code,
        _ message: String,
        stream: StreamName? = nil,
        expectedRevision: ExpectedRevision? = nil,
        actualRevision: StreamRevision? = nil,
        eventID: UUID? = nil
    ) {
        self.code = code
        self.message = message
        self.stream = stream
        self.expectedRevision = expectedRevision
        self.actualRevision = actualRevision
        self.eventID = eventID
    }

    /// `<code>: <message>`: safe to show a user.
    public var description: String { "\(code): \(message)" }

    /// Every field that is set (and the actual revision of a wrong-expected-revision error), for logs and
    /// test failures.
    public var debugDescription: String {
        var parts = ["code: \(code)", "message: \(message)"]
        if let stream { parts.append("stream: \(stream)") }
        if let expectedRevision { parts.append("expected: \(expectedRevision)") }
        if code == .wrongExpectedRevision { parts.append("actual: \(actualRevision.map(\.description) ?? "none")") }
        if let eventID { parts.append("eventID: \(eventID)") }
        return "EventStoreError(\(parts.joined(separator: ", ")))"
    }

    /// A wrong-expected-revision error with both revisions in the message.
    public static func wrongExpectedRevision(
        stream: StreamName,
        expected: ExpectedRevision,
        actual: StreamRevision?
    ) -> EventStoreError {
        EventStoreError(
            .wrongExpectedRevision,
            "Append to '\(stream)' expected revision \(expected), but the stream is at "
                + (actual.map { "revision \($0)" } ?? "no stream") + ".",
            stream: stream,
            expectedRevision: expected,
            actualRevision: actual
        )
    }

    /// A stream-deleted error for a tombstoned stream.
    public static func streamDeleted(_ stream: StreamName) -> EventStoreError {
        EventStoreError(.streamDeleted, "Stream '\(stream)' is tombstoned.", stream: stream)
    }
}
