/// Builds a read model from events.
///
/// A projection sees the events of its ``target`` in order, each once per run; a
/// ``ProjectionRunner`` feeds it and keeps its checkpoint. Delivery is at-least-once: after a crash
/// between ``apply(_:)`` and the checkpoint, the last events are applied again, so `apply` should be
/// idempotent (or keep its read model and checkpoint together; see ``CheckpointStore``).
public protocol Projection: Sendable {
    /// A unique, stable name: the key of the projection's checkpoint.
    var name: String { get }
    /// The events the projection follows.
    var target: SubscriptionTarget { get }
    /// Applies one event to the read model.
    func apply(_ event: RecordedEvent) async throws
    /// Clears the read model, before a rebuild from the first event.
    func reset() async throws
}

extension Projection {
    /// Does nothing: for projections whose read model needs no clearing before a rebuild.
    public func reset() async throws {}
}
