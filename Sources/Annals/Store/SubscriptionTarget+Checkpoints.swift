extension SubscriptionTarget {
    /// Whether checkpoints of this target are stream revisions (a stream) rather than positions.
    public var isStream: Bool {
        if case .stream = self { return true }
        return false
    }

    /// The checkpoint an event leaves: its revision for a stream target, its position otherwise.
    public func checkpoint(of event: RecordedEvent) -> UInt64 {
        isStream ? event.revision.value : event.position.value
    }

    /// Where to resume after `checkpoint` (nil: from the beginning).
    public func start(after checkpoint: UInt64?) -> SubscriptionStart {
        guard let checkpoint else { return .beginning }
        return isStream ? .afterRevision(StreamRevision(checkpoint)) : .afterPosition(Position(checkpoint))
    }
}

extension EventStore {
    /// Reads up to `limit` events of `target` after `checkpoint` (nil: from the first), forwards.
    ///
    /// The one page read behind subscriptions and projection runners; returns nothing when the
    /// checkpoint is at the end of the number range.
    public func readPage(
        of target: SubscriptionTarget,
        after checkpoint: UInt64?,
        limit: Int
    ) async throws -> [RecordedEvent] {
        switch target {
        case .stream(let stream):
            guard let from = checkpoint.map({ StreamRevision($0).next }) ?? StreamRevision(0) else { return [] }
            return try await read(stream, from: from, direction: .forwards, limit: limit)
        case .allMatching(let filter):
            guard let from = checkpoint.map({ Position($0).next }) ?? Position(0) else { return [] }
            return try await readAll(from: from, direction: .forwards, filter: filter, limit: limit)
        case .category(let category):
            guard let from = checkpoint.map({ Position($0).next }) ?? Position(0) else { return [] }
            return try await readAll(from: from, direction: .forwards, filter: .category(category), limit: limit)
        }
    }
}
