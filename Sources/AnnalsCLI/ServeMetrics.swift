import AnnalsServer
import Metrics
import Prometheus

/// The metrics backend of `annals serve`: a Prometheus registry, bootstrapped as the process's
/// swift-metrics factory once, before any store opens, and scraped at `GET /metrics`.
final class ServeMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    /// The one instance of the process (swift-metrics takes one bootstrap per process; a second
    /// `serve` in the same process, as tests may run, reuses it).
    static let shared = ServeMetrics()

    private init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Appends and flushes take microseconds to milliseconds; the default buckets start at 5 ms.
        let durations: [Duration] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2_500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .seconds(1), .milliseconds(2_500), .seconds(10),
        ]
        factory.defaultDurationHistogramBuckets = durations
        let counts: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 4_096]
        factory.valueHistogramBuckets = ["annals_append_events": counts, "annals_group_commit_appends": counts]
        factory.nameAndLabelSanitizer = Self.sanitize
        MetricsSystem.bootstrap(factory)
    }

    /// What `GET /metrics` answers: the registry in the Prometheus text format.
    var exposition: MetricsExposition {
        MetricsExposition(contentType: "text/plain; version=0.0.4") { [registry] in registry.emitToBuffer() }
    }

    /// The methods an HTTP metric is labelled with by name; any other is `_OTHER` (OpenTelemetry's
    /// convention), so a client sending made-up methods cannot grow the label set.
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    /// Names as given; an HTTP method label outside ``knownMethods`` becomes `_OTHER`.
    @Sendable static func sanitize(_ name: String, _ labels: [(String, String)]) -> (String, [(String, String)]) {
        (
            name,
            labels.map { key, value in
                key == "http.request.method" && !knownMethods.contains(value) ? (key, "_OTHER") : (key, value)
            }
        )
    }
}
