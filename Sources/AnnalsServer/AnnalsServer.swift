import Annals
import AnnalsWire
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOEmbedded
import ServiceLifecycle
import Synchronization

/// The Annals HTTP server: serves any ``Annals/EventStore`` over HTTP/JSON with server-sent-event
/// subscriptions, bearer tokens, limits, metrics and an admin console. `docs/http-api.md` is the API.
///
/// It is ``AnnalsRoutes`` in a Hummingbird router of its own, with a request log, JSON answers for
/// unknown routes, TLS when configured, and a ServiceLifecycle `Service`: run it in a `ServiceGroup`
/// that handles the signals (as `annals serve` does), and a graceful shutdown stops accepting, ends
/// live subscriptions, lets in-flight requests finish, and returns. An application that has its own
/// Hummingbird server mounts ``AnnalsRoutes`` instead.
public struct AnnalsServer: Service {
    /// The routes the server answers.
    public let routes: AnnalsRoutes
    let responder: RouterResponder<BasicAnnalsRequestContext>
    let onListening: @Sendable (Int) async -> Void
    let transport: ServerTransport?

    /// A server for `store`, checking bearer tokens against `tokens`. Nothing listens until ``run()``,
    /// and the server never closes the store.
    ///
    /// - Parameters:
    ///   - store: any store; the server names none, so the caller composes it (as `annals serve` does).
    ///   - tokens: where tokens are kept and looked up (re-read at most once a second).
    ///   - configuration: where to listen and what to accept.
    ///   - logger: routine events go to it at `debug`, failures at `warning` and above.
    ///   - metrics: what `GET /metrics` answers (see ``AnnalsRoutes/init(store:tokens:configuration:logger:metrics:metricsFactory:)``).
    ///   - metricsFactory: where the server's own metrics and Hummingbird's HTTP metrics go; nil for the
    ///     factory bootstrapped for the process.
    ///   - transport: wraps the HTTP/1.1 server in another layer, such as TLS (`annals serve` built with the
    ///     `TLS` trait makes one from the configuration's certificate and key; the library itself links no
    ///     TLS). Nil for plain HTTP.
    ///   - onListening: called with the bound port once the server accepts connections.
    /// - Throws: `invalid-argument` when only one of the TLS certificate and key is given, when they are
    ///   given without a `transport`, or when the port is not 0–65535.
    public init(
        store: any EventStore,
        tokens: any TokenRegistry,
        configuration: ServerConfiguration = ServerConfiguration(),
        logger: Logger = Logger(label: "annals.server"),
        metrics: MetricsExposition? = nil,
        metricsFactory: (any MetricsFactory)? = nil,
        transport: ServerTransport? = nil,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(EventStoreError) {
        if (configuration.tlsCertificatePath == nil) != (configuration.tlsKeyPath == nil) {
            throw EventStoreError(.invalidArgument, "TLS needs both a certificate and a key.")
        }
        if configuration.tlsCertificatePath != nil, transport == nil {
            throw EventStoreError(
                .invalidArgument,
                "TLS needs a transport that speaks it: annals serve built with the TLS trait (swift build --traits TLS) makes one from the certificate and key."
            )
        }
        self.transport = transport
        guard (1...65_535).contains(configuration.port) || configuration.port == 0 else {
            throw EventStoreError(.invalidArgument, "The port must be 0–65535; got \(configuration.port).")
        }
        routes = AnnalsRoutes(
            store: store, tokens: tokens, configuration: configuration, logger: logger, metrics: metrics,
            metricsFactory: metricsFactory)
        let router = Router(context: BasicAnnalsRequestContext.self)
        // A server span per request, continuing the client's trace (never recording the token a query
        // may carry) — when something traces as the server is made: with the no-op instrument the
        // middleware still built each span's attributes, about 8 % of the CPU of an append at 64
        // connections (docs/performance.md).
        if TraceFields.isActive {
            router.add(middleware: TracingMiddleware(redactingQueryParameters: ["access_token"]))
        }
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: FallbackMiddleware(environment: routes.environment))
        // Hummingbird's HTTP metrics, labelled by route template, method and status; after the fallback,
        // which refuses methods outside the standard ones, so clients cannot grow the label set.
        router.add(middleware: MetricsMiddleware())
        router.addRoutes(routes.collection(context: BasicAnnalsRequestContext.self))
        responder = router.buildResponder()
        self.onListening = onListening
    }

    private var environment: AnnalsEnvironment { routes.environment }

    /// Answers one request without a socket, as the server would over one.
    public func respond(to request: Request) async -> Response {
        let context = BasicAnnalsRequestContext(
            source: ApplicationRequestContextSource(channel: EmbeddedChannel(), logger: environment.logger))
        do {
            return try await responder.respond(to: request, context: context)
        } catch {
            let answer = environment.httpError(for: error, request: request)
            return (try? answer.response(from: request, context: context)) ?? Response(status: .internalServerError)
        }
    }

    /// Listens until cancelled or shut down gracefully (see the type's documentation).
    public func run() async throws {
        try await run(onListening: onListening)
    }

    /// Listens until cancelled or shut down gracefully, calling `onListening` with the bound port once
    /// the server accepts connections. Closing the store is the caller's job.
    public func run(onListening: @escaping @Sendable (Int) async -> Void) async throws {
        let configuration = environment.configuration
        let http = HTTPServerBuilder.http1(
            configuration: .init(
                // A fresh one per connection: it tracks whether that connection has a request in flight.
                additionalChannelHandlers: [ParseErrorResponder()],
                idleTimeout: .nanoseconds(Int64(configuration.idleTimeout / .nanoseconds(1)))))
        let server = try transport?.wrap(http) ?? http
        let isListening = Atomic(false)
        let application = Application(
            responder: responder,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in
                isListening.store(true, ordering: .relaxed)
                await onListening(channel.localAddress?.port ?? configuration.port)
            },
            logger: environment.logger
        )
        do {
            try await application.run()
        } catch let error as IOError where !isListening.load(ordering: .relaxed) {
            throw Self.listenFailure(error, host: configuration.host, port: configuration.port)
        }
    }

    /// Why the server could not start listening, in words that say what to do.
    static func listenFailure(_ error: IOError, host: String, port: Int) -> EventStoreError {
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let reason: String
        switch error.errnoCode {
        case EADDRINUSE:
            reason =
                "the address is in use (another annals serve, or another program, holds the port); stop it or choose another port with --port"
        case EACCES:
            reason = "permission denied (ports below 1024 need privileges); choose another port with --port"
        case EADDRNOTAVAIL:
            reason = "no network interface of this machine has that address; check --host"
        default:
            reason = "\(error)"
        }
        return EventStoreError(.unavailable, "Cannot listen on \(address): \(reason).")
    }
}

/// A layer around the server's HTTP/1.1 channel, such as TLS: what ``AnnalsServer`` listens with
/// instead of plain HTTP. `annals serve` built with the `TLS` trait makes one from a PEM certificate
/// and key (HummingbirdTLS); the library links no TLS itself.
public struct ServerTransport: Sendable {
    /// Wraps the plain HTTP/1.1 server builder.
    public let wrap: @Sendable (HTTPServerBuilder) throws -> HTTPServerBuilder

    /// A transport that wraps the HTTP/1.1 builder with `wrap`, e.g. `{ try .tls($0, tlsConfiguration: tls) }`.
    public init(_ wrap: @escaping @Sendable (HTTPServerBuilder) throws -> HTTPServerBuilder) {
        self.wrap = wrap
    }
}

/// A function value held in a `Mutex` through a struct field, whose abstraction is fixed, so reading
/// and writing it never wraps it in a re-abstraction thunk.
///
/// A function stored as a generic `Mutex`'s value is re-abstracted on the way into `withLock`'s
/// `inout` and again on the way back, so each access wrapped the stored closure in two more thunks,
/// and a call walked one more pair of them per access (a server that slowed to a tenth of its speed
/// after about 60,000 commits, when the commit observer was kept that way).
struct ObserverBox<Input>: Sendable {
    let call: @Sendable (Input) -> Void
}
