import Annals
import AnnalsWire
import AsyncAlgorithms
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Set once (the server shuts down, a client went away); waiters return then, or when cancelled.
final class ShutdownSignal: Sendable {
    private struct State {
        var isSet = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    var isSet: Bool { state.withLock { $0.isSet } }

    func trigger() {
        let waiters = state.withLock { state in
            state.isSet = true
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the signal is set (at once if it already is), or when the task is cancelled.
    func wait() async {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state in
                    if state.isSet || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

/// Writes a subscription as server-sent events: `id` is the event's checkpoint (its revision for a
/// stream, its position otherwise), `data` the event's JSON. A comment every `keepAlive` when idle.
/// The frames are AnnalsWire's (``ServerSentEventEncoder``), which the Swift client parses.
///
/// One event is in flight at a time: the writer waits for the socket (TCP paces a slow client), and
/// the subscription is pull-based, so nothing buffers without bound.
enum ServerSentEvents {
    enum Item: Sendable {
        case event(RecordedEvent)
        case keepAlive
        case failure(EventStoreError)
        case end
    }

    static func stream(
        _ subscription: EventSubscription,
        target: SubscriptionTarget,
        keepAlive: Duration,
        endSignals: [ShutdownSignal],
        metrics: ServerMetrics,
        logger: Logger,
        writer: inout any ResponseBodyWriter
    ) async throws {
        try await writer.write(ByteBuffer(bytes: ServerSentEventEncoder.subscriptionOpening))
        let items = AsyncChannel<Item>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await event in subscription { await items.send(.event(event)) }
                } catch is CancellationError {
                } catch {
                    // Say why, as an `error` event; a client that reconnects resumes with Last-Event-ID.
                    if !(error is EventStoreError) {
                        logger.error("subscription failed", metadata: ["error": "\(error)"])
                    }
                    let failure = error as? EventStoreError ?? EventStoreError(.unavailable, "The subscription failed.")
                    await items.send(.failure(failure))
                }
                await items.send(.end)
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: keepAlive)
                    await items.send(.keepAlive)
                }
            }
            for signal in endSignals {
                group.addTask {
                    await signal.wait()
                    await items.send(.end)
                }
            }
            var lastWrite = ContinuousClock.now
            for await item in items {
                switch item {
                case .event(let event):
                    let frame = ServerSentEvent(event, checkpoint: target.checkpoint(of: event))
                    try await writer.write(ByteBuffer(bytes: ServerSentEventEncoder.encode(frame)))
                    lastWrite = ContinuousClock.now
                    metrics.eventDelivered()
                case .keepAlive:
                    // Only when the stream has been quiet for a while.
                    guard ContinuousClock.now - lastWrite >= keepAlive / 2 else { continue }
                    try await writer.write(ByteBuffer(bytes: ServerSentEventEncoder.keepAlive))
                    lastWrite = ContinuousClock.now
                case .failure(let error):
                    let frame = ServerSentEvent(
                        failure: logger.publicError(error, metadata: ["subscription": "\(target)"]))
                    try await writer.write(ByteBuffer(bytes: ServerSentEventEncoder.encode(frame)))
                case .end:
                    group.cancelAll()
                    items.finish()
                }
            }
            group.cancelAll()
        }
        try await writer.finish(nil)
    }
}
