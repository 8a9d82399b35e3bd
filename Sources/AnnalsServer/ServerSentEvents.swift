import Annals
import AnnalsWire
import AsyncAlgorithms
import Hummingbird
import NIOCore
import Synchronization

/// Set once when the server starts its graceful shutdown; live subscriptions then end cleanly.
final class ShutdownSignal: Sendable {
    private let state = Mutex<(isSet: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func trigger() {
        let waiters = state.withLock { state in
            state.isSet = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the signal is set (at once if it already is).
    func wait() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if state.isSet { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

/// Writes a subscription as server-sent events: `id` is the event's checkpoint (its revision for a
/// stream, its position otherwise), `data` the event's JSON. A comment every `keepAlive` when idle.
///
/// One event is in flight at a time: the writer waits for the socket (TCP paces a slow client), and
/// the subscription is pull-based, so nothing buffers without bound.
enum ServerSentEvents {
    enum Item: Sendable {
        case event(RecordedEvent)
        case keepAlive
        case end
    }

    static func stream(
        _ subscription: EventSubscription,
        target: SubscriptionTarget,
        keepAlive: Duration,
        shutdown: ShutdownSignal,
        metrics: ServerMetrics,
        writer: inout any ResponseBodyWriter
    ) async throws {
        try await writer.write(ByteBuffer(string: "retry: 2000\n: subscribed\n\n"))
        let items = AsyncChannel<Item>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await event in subscription { await items.send(.event(event)) }
                } catch is CancellationError {
                } catch {
                    // The store failed or closed: end the stream; the client reconnects with Last-Event-ID.
                }
                await items.send(.end)
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: keepAlive)
                    await items.send(.keepAlive)
                }
            }
            group.addTask {
                await shutdown.wait()
                await items.send(.end)
            }
            for await item in items {
                switch item {
                case .event(let event):
                    var bytes = Array("id: \(target.checkpoint(of: event))\ndata: ".utf8)
                    bytes.append(contentsOf: WireFormat.encode(event))
                    bytes.append(contentsOf: [0x0A, 0x0A])
                    try await writer.write(ByteBuffer(bytes: bytes))
                    metrics.delivered()
                case .keepAlive:
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
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
