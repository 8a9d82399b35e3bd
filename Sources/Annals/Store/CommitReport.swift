/// What one group commit of a store did: for metrics (the server's `/metrics` shows them).
///
/// Stores that group-commit call their configuration's observer once per group, after the group is
/// durable and before its appends are acknowledged. The observer must be quick and must not block.
public struct CommitReport: Sendable, Hashable {
    /// Append calls in the group, written or idempotent.
    public var appends: Int
    /// Events the group wrote.
    public var events: Int
    /// Bytes the group wrote (record framing included where the store knows it).
    public var bytes: Int
    /// How long making the group durable took: the write and flush (file store), or the transaction
    /// with its commit (PostgreSQL).
    public var flushDuration: Duration

    /// A report with these counts and duration.
    public init(appends: Int, events: Int, bytes: Int, flushDuration: Duration) {
        self.appends = appends
        self.events = events
        self.bytes = bytes
        self.flushDuration = flushDuration
    }
}

/// Called once per group commit.
public typealias CommitObserver = @Sendable (CommitReport) -> Void
