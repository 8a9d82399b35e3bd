import Annals
import Synchronization

/// The server's counters, rendered in the Prometheus text format at `GET /metrics`.
final class ServerMetrics: Sendable {
    struct Histogram {
        let bounds: [Double]
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            for (index, bound) in bounds.enumerated() where value <= bound { counts[index] += 1 }
            sum += value
            count += 1
        }
    }

    struct State {
        var requests: [String: UInt64] = [:]
        var appends: UInt64 = 0
        var eventsWritten: UInt64 = 0
        var bytesWritten: UInt64 = 0
        var errors: [String: UInt64] = [:]
        var liveSubscriptions: Int = 0
        var eventsDelivered: UInt64 = 0
        var appendSeconds = Histogram(bounds: [
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
        ])
        var batchEvents = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
        var flushSeconds = Histogram(bounds: [
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
        ])
        var groupAppends = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64, 128, 256])
        var groupCommits: UInt64 = 0
        /// Append latency of the current whole second since `started`, and the mean of the second before.
        var latencySecond: Int64 = 0
        var latencySum: Double = 0
        var latencyCount: Int = 0
        var previousSecondMean: Double?
    }

    let state = Mutex(State())
    private let started: ContinuousClock.Instant

    init(started: ContinuousClock.Instant = .now) {
        self.started = started
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

    /// Methods counted by name; any other (a client may send any token as a method) counts as
    /// `other`, so a caller cannot grow the label set, and with it `/metrics`, without bound.
    static let countedMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    func request(method: String, route: String, status: Int) {
        let method = Self.countedMethods.contains(method) ? method : "other"
        state.withLock { $0.requests["method=\"\(method)\",route=\"\(route)\",status=\"\(status)\"", default: 0] += 1 }
    }

    func append(events: [EventData], seconds: Double, now: ContinuousClock.Instant = .now) {
        let current = second(of: now)
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
            $0.bytesWritten += UInt64(events.reduce(0) { $0 + $1.byteCount })
            $0.appendSeconds.observe(seconds)
            $0.batchEvents.observe(Double(events.count))
        }
    }

    /// A store's group commit (see ``Annals/CommitObserver``).
    func commit(_ report: CommitReport) {
        state.withLock {
            $0.groupCommits += 1
            $0.flushSeconds.observe(report.flushDuration / .seconds(1))
            $0.groupAppends.observe(Double(report.appends))
        }
    }

    func error(_ code: EventStoreError.Code) {
        state.withLock { $0.errors[code.rawValue, default: 0] += 1 }
    }

    func subscriptionStarted() { state.withLock { $0.liveSubscriptions += 1 } }
    func subscriptionEnded() { state.withLock { $0.liveSubscriptions -= 1 } }
    func delivered() { state.withLock { $0.eventsDelivered += 1 } }

    func render(headPosition: UInt64?) -> String {
        let state = state.withLock { $0 }
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ lines: [String]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for line in lines { out += line + "\n" }
        }
        func histogram(_ name: String, _ help: String, _ value: Histogram) {
            var lines: [String] = []
            for (bound, count) in zip(value.bounds, value.counts) {
                lines.append("\(name)_bucket{le=\"\(bound)\"} \(count)")
            }
            lines.append("\(name)_bucket{le=\"+Inf\"} \(value.count)")
            lines.append("\(name)_sum \(value.sum)")
            lines.append("\(name)_count \(value.count)")
            metric(name, "histogram", help, lines)
        }
        metric(
            "annals_http_requests_total", "counter", "HTTP requests by method, route and status.",
            state.requests.sorted { $0.key < $1.key }.map { "annals_http_requests_total{\($0.key)} \($0.value)" })
        metric(
            "annals_appends_total", "counter", "Successful append requests (idempotent retries included).",
            ["annals_appends_total \(state.appends)"])
        metric(
            "annals_events_written_total", "counter", "Events written by successful appends.",
            ["annals_events_written_total \(state.eventsWritten)"])
        metric(
            "annals_bytes_written_total", "counter", "Event bytes (type, data, metadata) written.",
            ["annals_bytes_written_total \(state.bytesWritten)"])
        histogram(
            "annals_append_duration_seconds",
            "Time the store took to make an append durable and acknowledge it (the flush included).",
            state.appendSeconds)
        histogram("annals_append_batch_events", "Events per append request.", state.batchEvents)
        metric(
            "annals_group_commits_total", "counter", "Group commits of the store (one write and flush each).",
            ["annals_group_commits_total \(state.groupCommits)"])
        histogram(
            "annals_flush_duration_seconds", "Time to make one group durable (write + fdatasync, or the transaction).",
            state.flushSeconds)
        histogram("annals_group_commit_appends", "Append calls per group commit.", state.groupAppends)
        metric(
            "annals_subscriptions_live", "gauge", "Open server-sent-event subscriptions.",
            ["annals_subscriptions_live \(state.liveSubscriptions)"])
        metric(
            "annals_events_delivered_total", "counter", "Events sent to subscribers.",
            ["annals_events_delivered_total \(state.eventsDelivered)"])
        metric(
            "annals_errors_total", "counter", "Error answers by code.",
            state.errors.sorted { $0.key < $1.key }.map { "annals_errors_total{code=\"\($0.key)\"} \($0.value)" })
        if let headPosition {
            metric(
                "annals_head_position", "gauge", "The position the next event will get.",
                ["annals_head_position \(headPosition)"])
        }
        return out
    }
}
