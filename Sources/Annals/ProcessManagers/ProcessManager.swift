/// Reacts to events with commands on other streams: the bank transfer's "debit A, then credit B, then
/// compensate if B refuses".
///
/// A process manager is run like a projection (wrap it with ``asProjection``, run it with a
/// ``ProjectionRunner``), so it resumes from its checkpoint and may see an event again after a crash.
/// It stays idempotent in two ways that work together:
///
/// - every command it issues carries ``CommandMetadata/init(causedBy:index:)``: a command id derived
///   from the triggering event, so the events a ``CommandHandler`` appends for it get the same ids each
///   time and a repeat is stored once (law 6);
/// - its deciders recognise a command they have applied (by a transfer id, say) and decide no events.
public protocol ProcessManager: Sendable {
    /// A unique, stable name: the key of its checkpoint.
    var name: String { get }
    /// The events it reacts to.
    var target: SubscriptionTarget { get }
    /// Reacts to one event, typically by handling commands on other aggregates.
    func react(to event: RecordedEvent) async throws
}

extension ProcessManager {
    /// The process manager as a ``Projection``, to run with a ``ProjectionRunner``.
    public var asProjection: ProcessManagerProjection<Self> { ProcessManagerProjection(manager: self) }
}

/// Adapts a ``ProcessManager`` to ``Projection``. It has no read model, so `reset()` does nothing.
public struct ProcessManagerProjection<M: ProcessManager>: Projection {
    /// The process manager it runs.
    public let manager: M
    /// The process manager's name: the key of its checkpoint.
    public var name: String { manager.name }
    /// The events the process manager reacts to.
    public var target: SubscriptionTarget { manager.target }
    /// Hands the event to ``ProcessManager/react(to:)``.
    public func apply(_ event: RecordedEvent) async throws { try await manager.react(to: event) }
}
