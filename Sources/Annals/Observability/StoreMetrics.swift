import Metrics

/// The metrics every store emits through swift-metrics, made once per store.
///
/// A store makes its handles when it opens, from the factory its configuration names or else the one
/// bootstrapped for the process (`MetricsSystem.bootstrap`), so bootstrap the backend first. Without
/// one, swift-metrics discards everything at almost no cost. Every metric has the dimension
/// `store` (`memory`, `file`, `postgres`, or a name of your own):
///
/// | Name | Kind | What |
/// |---|---|---|
/// | `annals_appends_total` | counter | append calls that succeeded (idempotent retries included) |
/// | `annals_append_failures_total` | counter | append calls that threw |
/// | `annals_events_written_total` | counter | events in those appends |
/// | `annals_bytes_written_total` | counter | their bytes (type, data, metadata) |
/// | `annals_append_duration_seconds` | timer | how long an append call took, queueing included |
/// | `annals_append_events` | recorder | events per append call |
/// | `annals_group_commits_total` | counter | group commits (file store, PostgreSQL) |
/// | `annals_group_commit_appends` | recorder | append calls per group commit |
/// | `annals_flush_duration_seconds` | timer | making one group durable (write and `fdatasync`, or the transaction) |
/// | `annals_head_position` | gauge | the head of `$all` after the last append |
///
/// Each call costs a few atomic updates in the backend and never waits, so a store calls it on its
/// append path; its cost does not grow with the number of commits (`StoreMetricsCostTests`).
public struct StoreMetrics: Sendable {
    /// The store's name, the `store` dimension.
    public let store: String
    private let appends: Counter
    private let failures: Counter
    private let events: Counter
    private let bytes: Counter
    private let appendDuration: Timer
    private let appendEvents: Recorder
    private let groupCommits: Counter
    private let groupAppends: Recorder
    private let flushDuration: Timer
    private let head: Gauge

    /// Handles for a store named `store`, made with `factory` (the bootstrapped one by default).
    public init(store: String, factory: (any MetricsFactory)? = nil) {
        let factory = factory ?? MetricsSystem.factory
        self.store = store
        let dimensions = [("store", store)]
        appends = Counter(label: "annals_appends_total", dimensions: dimensions, factory: factory)
        failures = Counter(label: "annals_append_failures_total", dimensions: dimensions, factory: factory)
        events = Counter(label: "annals_events_written_total", dimensions: dimensions, factory: factory)
        bytes = Counter(label: "annals_bytes_written_total", dimensions: dimensions, factory: factory)
        appendDuration = Timer(label: "annals_append_duration_seconds", dimensions: dimensions, factory: factory)
        appendEvents = Recorder(label: "annals_append_events", dimensions: dimensions, factory: factory)
        groupCommits = Counter(label: "annals_group_commits_total", dimensions: dimensions, factory: factory)
        groupAppends = Recorder(label: "annals_group_commit_appends", dimensions: dimensions, factory: factory)
        flushDuration = Timer(label: "annals_flush_duration_seconds", dimensions: dimensions, factory: factory)
        head = Gauge(label: "annals_head_position", dimensions: dimensions, factory: factory)
    }

    /// Runs one append call in a span (`annals.append`) and records it: its events, bytes and duration
    /// when it returns, a failure when it throws.
    public func measureAppend(
        _ events: [EventData], to stream: StreamName, _ append: () async throws -> AppendResult
    ) async throws -> AppendResult {
        let started = ContinuousClock.now
        do {
            let result = try await withStoreSpan("annals.append", store: store, stream: stream) {
                try await append()
            }
            appended(events, result: result, duration: ContinuousClock.now - started)
            return result
        } catch {
            failures.increment()
            throw error
        }
    }

    /// Records an append call that took `duration` and answered `result`.
    public func appended(_ events: [EventData], result: AppendResult, duration: Duration) {
        appends.increment()
        self.events.increment(by: events.count)
        var byteCount = 0
        for event in events { byteCount &+= event.byteCount }
        bytes.increment(by: byteCount)
        appendDuration.record(duration: duration)
        appendEvents.record(events.count)
        head.record(result.lastPosition.value &+ 1)
    }

    /// Records an append call that threw.
    public func appendFailed() {
        failures.increment()
    }

    /// Records one group commit.
    public func committed(_ report: CommitReport) {
        groupCommits.increment()
        groupAppends.record(report.appends)
        flushDuration.record(duration: report.flushDuration)
    }
}
