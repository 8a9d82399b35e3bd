import Annals

/// A store that hands every call to another store unless it says otherwise: write a test double
/// (a store that fails, races or forgets) by overriding only the calls it changes.
///
/// ```swift
/// struct FullDisk: ForwardingEventStore {
///     let base: InMemoryEventStore
///     func append(_ events: [EventData], to stream: StreamName, expecting expected: ExpectedRevision)
///         async throws -> AppendResult { throw EventStoreError(.storeFailed, "No space left.") }
/// }
/// ```
public protocol ForwardingEventStore: EventStore {
    /// The type of the store it forwards to.
    associatedtype Base: EventStore
    /// The store that answers whatever this one does not.
    var base: Base { get }
}

extension ForwardingEventStore {
    /// Forwards to ``base``'s `append(_:to:expecting:)`.
    public func append(_ events: [EventData], to stream: StreamName, expecting expected: ExpectedRevision)
        async throws -> AppendResult
    {
        try await base.append(events, to: stream, expecting: expected)
    }

    /// Forwards to ``base``'s `read(_:from:direction:limit:)`.
    public func read(_ stream: StreamName, from revision: StreamRevision?, direction: ReadDirection, limit: Int)
        async throws -> [RecordedEvent]
    {
        try await base.read(stream, from: revision, direction: direction, limit: limit)
    }

    /// Forwards to ``base``'s `readAll(from:direction:filter:limit:)`.
    public func readAll(from position: Position?, direction: ReadDirection, filter: EventFilter, limit: Int)
        async throws -> [RecordedEvent]
    {
        try await base.readAll(from: position, direction: direction, filter: filter, limit: limit)
    }

    /// Forwards to ``base``'s `streamInfo(_:)`.
    public func streamInfo(_ stream: StreamName) async throws -> StreamInfo? { try await base.streamInfo(stream) }

    /// Forwards to ``base``'s `listStreams(after:limit:)`.
    public func listStreams(after: StreamName?, limit: Int) async throws -> [StreamInfo] {
        try await base.listStreams(after: after, limit: limit)
    }

    /// Forwards to ``base``'s `streamCount()`.
    public func streamCount() async throws -> UInt64 { try await base.streamCount() }

    /// Forwards to ``base``'s `headPosition()`.
    public func headPosition() async throws -> Position { try await base.headPosition() }

    /// Forwards to ``base``'s `checkHealth()`.
    public func checkHealth() async throws { try await base.checkHealth() }

    /// Forwards to ``base``'s `setMetadata(_:for:)`.
    public func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) async throws {
        try await base.setMetadata(metadata, for: stream)
    }

    /// Forwards to ``base``'s `delete(_:expecting:)`.
    public func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try await base.delete(stream, expecting: expected)
    }

    /// Forwards to ``base``'s `tombstone(_:expecting:)`.
    public func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try await base.tombstone(stream, expecting: expected)
    }

    /// Forwards to ``base``'s `subscribe(to:from:)`: the subscription reads through ``base``, not through
    /// this store's overrides.
    public func subscribe(to target: SubscriptionTarget, from start: SubscriptionStart) -> EventSubscription {
        base.subscribe(to: target, from: start)
    }
}
