import Annals
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The Annals HTTP server: serves any ``Annals/EventStore`` over HTTP/JSON with server-sent-event
/// subscriptions, bearer tokens, limits, metrics and an admin page. `docs/http-api.md` is the API.
public struct AnnalsServer: Sendable {
    let api: API

    public init(
        store: any EventStore,
        tokens: any TokenRegistry,
        configuration: ServerConfiguration = ServerConfiguration(),
        logger: Logger = Logger(label: "annals.server")
    ) throws(EventStoreError) {
        if (configuration.tlsCertificatePath == nil) != (configuration.tlsKeyPath == nil) {
            throw EventStoreError(.invalidArgument, "TLS needs both a certificate and a key.")
        }
        guard (1...65_535).contains(configuration.port) || configuration.port == 0 else {
            throw EventStoreError(.invalidArgument, "The port must be 0–65535; got \(configuration.port).")
        }
        api = API(store: store, tokens: tokens, configuration: configuration, logger: logger)
    }

    /// Feed this to the store's `commitObserver` so `/metrics` shows flush latency and group sizes.
    public var commitObserver: CommitObserver {
        { [metrics = api.metrics] report in metrics.commit(report) }
    }

    /// Answers one request without a socket (the route × role tests use this and a real socket both).
    public func respond(to request: Request) async -> Response {
        await api.respond(to: request)
    }

    /// Runs until SIGTERM or SIGINT (or cancellation): then stops accepting, ends live subscriptions,
    /// lets in-flight requests finish, and returns. Closing the store is the caller's job.
    ///
    /// - Parameter onListening: called with the bound port once the server accepts connections.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let configuration = api.configuration
        let responder = CallbackResponder<BasicRequestContext> { [api] request, _ in
            await api.respond(to: request)
        }
        let http = HTTPServerBuilder.http1(
            configuration: .init(idleTimeout: .nanoseconds(Int64(configuration.idleTimeout / .nanoseconds(1)))))
        let server: HTTPServerBuilder
        if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificate).map {
                    NIOSSLCertificateSource.certificate($0)
                }
                let tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                server = try .tls(http, tlsConfiguration: tls)
            } catch {
                throw EventStoreError(.invalidArgument, "The TLS certificate or key cannot be loaded: \(error).")
            }
        } else {
            server = http
        }
        let application = Application(
            responder: responder,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
            logger: api.logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: application), .init(service: SubscriptionCloser(signal: api.shutdown))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: api.logger))
        try await group.run()
    }
}

/// Shut down first (services stop in reverse order): ends live subscriptions so the HTTP server's
/// graceful shutdown does not wait for them forever.
private struct SubscriptionCloser: Service {
    let signal: ShutdownSignal

    func run() async throws {
        try? await gracefulShutdown()
        signal.trigger()
    }
}

/// Lets a store be created with a commit observer before the server that consumes the reports exists:
/// give the store ``observer``, then ``connect(_:)`` the server's ``AnnalsServer/commitObserver``.
public final class CommitObserverRelay: Sendable {
    private let target = Mutex<CommitObserver?>(nil)

    public init() {}

    public var observer: CommitObserver {
        { [self] report in forward(report) }
    }

    private func forward(_ report: CommitReport) {
        target.withLock { $0 }?(report)
    }

    public func connect(_ observer: @escaping CommitObserver) {
        target.withLock { $0 = observer }
    }
}
