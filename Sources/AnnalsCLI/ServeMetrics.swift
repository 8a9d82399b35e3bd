import Annals
import AnnalsServer
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization
import Tracing

#if OTel
    import OTel
#endif

/// The observability backends of `annals serve`: a Prometheus registry, scraped at `GET /metrics`, as
/// the process's swift-metrics backend; and with `--otel-endpoint` (the `OTel` trait) traces and
/// metrics exported over OTLP/HTTP as well. Bootstrapped once per process, before any store opens
/// (stores make their metric handles when they open).
final class ServeMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// What must run beside the server to export (OTel's batching exporters); they go into the
    /// server's service group before it, so they stop after it and flush what it recorded last.
    let exportServices: [any Service]

    private static let bootstrapped = Mutex<ServeMetrics?>(nil)

    /// The process's backends, bootstrapped by the first call; later calls (a second `serve` in one
    /// process, as tests may run) get the same ones.
    ///
    /// - Parameter otelEndpoint: an OTLP/HTTP collector (`http://host:4318`), traces going to
    ///   `/v1/traces` and metrics to `/v1/metrics` under it; nil for none.
    /// - Throws: `invalid-argument` when the endpoint is not an http(s) URL, or this build lacks the
    ///   `OTel` trait.
    static func bootstrap(otelEndpoint: String?, logger: Logger) throws(EventStoreError) -> ServeMetrics {
        if let existing = bootstrapped.withLock({ $0 }) { return existing }
        let metrics = try ServeMetrics(otelEndpoint: otelEndpoint, logger: logger)
        return bootstrapped.withLock { stored in
            if let stored { return stored }
            stored = metrics
            return metrics
        }
    }

    private init(otelEndpoint: String?, logger: Logger) throws(EventStoreError) {
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
        guard let otelEndpoint else {
            exportServices = []
            MetricsSystem.bootstrap(factory)
            return
        }
        guard otelEndpoint.hasPrefix("http://") || otelEndpoint.hasPrefix("https://") else {
            throw EventStoreError(
                .invalidArgument, "--otel-endpoint is an http(s) URL of an OTLP/HTTP collector; got '\(otelEndpoint)'.")
        }
        #if OTel
            let endpoint = otelEndpoint.hasSuffix("/") ? String(otelEndpoint.dropLast()) : otelEndpoint
            var configuration = OTel.Configuration.default
            configuration.serviceName = "annals"
            configuration.diagnosticLogger = .custom(logger)
            configuration.logs.enabled = false
            configuration.traces.otlpExporter.endpoint = endpoint + "/v1/traces"
            configuration.traces.otlpExporter.protocol = .httpProtobuf
            configuration.metrics.otlpExporter.endpoint = endpoint + "/v1/metrics"
            configuration.metrics.otlpExporter.protocol = .httpProtobuf
            configuration.metrics.exportInterval = .seconds(10)
            configuration.metrics.defaultDurationHistogramBuckets = durations
            do {
                let tracing = try OTel.makeTracingBackend(configuration: configuration)
                let exported = try OTel.makeMetricsBackend(configuration: configuration)
                InstrumentationSystem.bootstrap(tracing.factory)
                MetricsSystem.bootstrap(MultiplexMetricsHandler(factories: [factory, exported.factory]))
                exportServices = [tracing.service, exported.service]
            } catch {
                throw EventStoreError(.invalidArgument, "The OTLP exporter cannot be set up: \(error).")
            }
        #else
            _ = logger
            throw Traits.missing("OpenTelemetry export (--otel-endpoint)", trait: "OTel")
        #endif
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
