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
    associatedtype Base: EventStore
    /// The store that answers whatever this one does not.
    var base: Base { get }
}

extension ForwardingEventStore {
    public func append(_ events: [EventData], to stream: StreamName, expecting expected: ExpectedRevision)
        async throws -> AppendResult
    {
        try await base.append(events, to: stream, expecting: expected)
    }

    public func read(_ stream: StreamName, from revision: StreamRevision?, direction: ReadDirection, limit: Int)
        async throws -> [RecordedEvent]
    {
        try await base.read(stream, from: revision, direction: direction, limit: limit)
    }

    public func readAll(from position: Position?, direction: ReadDirection, filter: EventFilter, limit: Int)
        async throws -> [RecordedEvent]
    {
        try await base.readAll(from: position, direction: direction, filter: filter, limit: limit)
    }

    public func streamInfo(_ stream: StreamName) async throws -> StreamInfo? { try await base.streamInfo(stream) }

    public func listStreams(after: StreamName?, limit: Int) async throws -> [StreamInfo] {
        try await base.listStreams(after: after, limit: limit)
    }

    public func streamCount() async throws -> UInt64 { try await base.streamCount() }

    public func headPosition() async throws -> Position { try await base.headPosition() }

    public func checkHealth() async throws { try await base.checkHealth() }

    public func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) async throws {
        try await base.setMetadata(metadata, for: stream)
    }

    public func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try await base.delete(stream, expecting: expected)
    }

    public func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        try await base.tombstone(stream, expecting: expected)
    }

    public func subscribe(to target: SubscriptionTarget, from start: SubscriptionStart) -> EventSubscription {
        base.subscribe(to: target, from: start)
    }
}
