import Annals
import AnnalsWire
import Hummingbird
import Logging
import Metrics

/// What `GET /metrics` answers: a content type and the text a metrics backend renders on each scrape.
///
/// `annals serve` passes its Prometheus registry (`text/plain; version=0.0.4`); an application that
/// mounts ``AnnalsRoutes`` may pass its own, or none.
public struct MetricsExposition: Sendable {
    /// The answer's `Content-Type`.
    public var contentType: String
    /// The answer's bytes, made on each request.
    public var render: @Sendable () -> [UInt8]

    /// An exposition of `render()`'s bytes as `contentType`.
    public init(contentType: String = "text/plain; version=0.0.4", render: @escaping @Sendable () -> [UInt8]) {
        self.contentType = contentType
        self.render = render
    }
}

/// Annals' HTTP API as a route collection an application mounts in its own Hummingbird router.
///
/// ```swift
/// let annals = AnnalsRoutes(store: store, tokens: FileTokenRegistry(path: "data/tokens.json"))
/// let router = Router(context: AppContext.self)   // AppContext: AnnalsRequestContext
/// router.add(middleware: LogRequestsMiddleware(.info))   // the application's own middleware
/// router.get("/hello") { _, _ in "hello" }
/// router.addRoutes(annals.collection(context: AppContext.self), atPath: "/es")
/// ```
///
/// Every route of ``RouteTable`` is in the collection, behind the checks its table entry names (query
/// parameters, path names, token, role, scopes); a path's other standard methods answer `405` with
/// `Allow`; every failure is an ``AnnalsHTTPError`` with the JSON error body. `annals serve` is this
/// collection in a router of its own (``AnnalsServer``).
public struct AnnalsRoutes: Sendable {
    let environment: AnnalsEnvironment

    /// Routes over `store`, checking bearer tokens against `tokens`.
    ///
    /// - Parameters:
    ///   - store: any store; the routes never close it.
    ///   - tokens: where tokens are kept and looked up (re-read at most once a second).
    ///   - configuration: the limits and timeouts; its address and TLS files are ``AnnalsServer``'s and
    ///     are not read here.
    ///   - logger: store failures go to it at `warning`, the server's own failures at `error`.
    ///   - metrics: what `GET /metrics` answers (`annals serve` gives its Prometheus registry); without
    ///     it, that route answers `404 route-not-found`, for an application that exports its metrics
    ///     otherwise.
    ///   - metricsFactory: where the routes' own metrics go (`annals_errors_total` and the others in
    ///     `docs/http-api.md`, §Metrics); nil for the factory
    ///     bootstrapped for the process.
    public init(
        store: any EventStore,
        tokens: any TokenRegistry,
        configuration: ServerConfiguration = ServerConfiguration(),
        logger: Logger = Logger(label: "annals.server"),
        metrics: MetricsExposition? = nil,
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        environment = AnnalsEnvironment(
            store: store, tokens: tokens, configuration: configuration, logger: logger, exposition: metrics,
            metricsFactory: metricsFactory)
    }

    /// Every route of the API, for a router whose context is `Context`.
    public func collection<Context: AnnalsRequestContext>(context: Context.Type = Context.self)
        -> RouteCollection<Context>
    {
        let controllers: [any AnnalsController<Context>] = [
            OperationsController(environment: environment), StreamsController(environment: environment),
            SubscriptionsController(environment: environment), TokensController(environment: environment),
        ]
        let collection = RouteCollection(context: Context.self)
        collection.add(middleware: AnnalsErrorMiddleware(environment: environment))
        var covered: [RouteSpec.ID] = []
        for controller in controllers {
            covered += controller.handlers.keys
            collection.addRoutes(controller.routes(tokens: environment.tokens))
        }
        // A route without a handler, or with two, is a defect of this module: every test that builds a
        // server would trap here.
        precondition(
            covered.count == RouteSpec.ID.allCases.count && Set(covered) == Set(RouteSpec.ID.allCases),
            "every route of the table has exactly one handler")
        collection.addRoutes(RouteTable.methodNotAllowedRoutes(context: Context.self))
        return collection
    }
}
