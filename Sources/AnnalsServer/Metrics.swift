import Annals
import Metrics
import Synchronization

/// The server's own counters: what `GET /stats` reports (counted here, because swift-metrics only
/// writes), and the server's metrics through swift-metrics.
///
/// The stores emit their own metrics (``Annals/StoreMetrics``) and Hummingbird's `MetricsMiddleware`
/// the HTTP ones; the server adds:
///
/// | Name | Kind | Dimensions |
/// |---|---|---|
/// | `annals_errors_total` | counter | `code`: the error code answered |
/// | `annals_subscriptions_live` | gauge | none: server-sent-event subscriptions open now |
/// | `annals_events_delivered_total` | counter | none: events sent to subscribers |
/// | `annals_streaming_reads_live` | gauge | none: NDJSON reads open now |
final class ServerMetrics: Sendable {
    struct State {
        var appends: UInt64 = 0
        var eventsWritten: UInt64 = 0
        var bytesWritten: UInt64 = 0
        var liveSubscriptions: Int = 0
        var streamingReads: Int = 0
        /// Append latency of the current whole second since `started`, and the mean of the second before.
        var latencySecond: Int64 = 0
        var latencySum: Double = 0
        var latencyCount: Int = 0
        var previousSecondMean: Double?
    }

    let state = Mutex(State())
    private let started: ContinuousClock.Instant
    private let factory: any MetricsFactory
    private let subscriptions: Gauge
    private let delivered: Counter
    private let streamingReads: Gauge
    /// One counter per error code answered: a closed set, so it cannot grow without bound.
    private let errors = Mutex<[EventStoreError.Code: Counter]>([:])

    init(started: ContinuousClock.Instant = .now, factory: (any MetricsFactory)? = nil) {
        let factory = factory ?? MetricsSystem.factory
        self.started = started
        self.factory = factory
        subscriptions = Gauge(label: "annals_subscriptions_live", factory: factory)
        delivered = Counter(label: "annals_events_delivered_total", factory: factory)
        streamingReads = Gauge(label: "annals_streaming_reads_live", factory: factory)
    }

    /// The whole second since the metrics began that `instant` falls in.
    private func second(of instant: ContinuousClock.Instant) -> Int64 {
        (instant - started).components.seconds
    }

    /// The mean append latency over the last whole second, in microseconds; nil when it had no append.
    func appendLatencyMicroseconds(now: ContinuousClock.Instant = .now) -> UInt64? {
        let current = second(of: now)
        let mean: Double? = state.withLock { state in
            switch current - state.latencySecond {
            case 0: return state.previousSecondMean
            case 1: return state.latencyCount == 0 ? nil : state.latencySum / Double(state.latencyCount)
            default: return nil
            }
        }
        return mean.map { UInt64(max(0, ($0 * 1e6).rounded())) }
    }

    /// An append request the server answered, which took the store `seconds`.
    func append(events: [EventData], seconds: Double, now: ContinuousClock.Instant = .now) {
        let current = second(of: now)
        var bytes: UInt64 = 0
        for event in events { bytes &+= UInt64(event.byteCount) }
        state.withLock {
            if current != $0.latencySecond {
                let mean = $0.latencyCount == 0 ? nil : $0.latencySum / Double($0.latencyCount)
                $0.previousSecondMean = current == $0.latencySecond + 1 ? mean : nil
                ($0.latencySecond, $0.latencySum, $0.latencyCount) = (current, 0, 0)
            }
            $0.latencySum += seconds
            $0.latencyCount += 1
            $0.appends += 1
            $0.eventsWritten += UInt64(events.count)
            $0.bytesWritten &+= bytes
        }
    }

    /// An error answered with `code`.
    func error(_ code: EventStoreError.Code) {
        let counter = errors.withLock { counters in
            if let counter = counters[code] { return counter }
            let counter = Counter(label: "annals_errors_total", dimensions: [("code", code.rawValue)], factory: factory)
            counters[code] = counter
            return counter
        }
        counter.increment()
    }

    func subscriptionStarted() {
        let live = state.withLock {
            $0.liveSubscriptions += 1
            return $0.liveSubscriptions
        }
        subscriptions.record(live)
    }

    func subscriptionEnded() {
        let live = state.withLock {
            $0.liveSubscriptions -= 1
            return $0.liveSubscriptions
        }
        subscriptions.record(live)
    }

    func streamingReadStarted() {
        streamingReads.record(
            state.withLock {
                $0.streamingReads += 1
                return $0.streamingReads
            })
    }

    func streamingReadEnded() {
        streamingReads.record(
            state.withLock {
                $0.streamingReads -= 1
                return $0.streamingReads
            })
    }

    func eventDelivered() { delivered.increment() }
}
