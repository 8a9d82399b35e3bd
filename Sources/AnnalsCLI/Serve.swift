import Annals
import AnnalsFileStore
import AnnalsServer
import AnnalsWire
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

#if Postgres
    import AnnalsPostgres
#endif

/// Environment variables the commands read when an option is not given.
enum ServerEnvironment {
    static func value(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The data directory: `given` (--data), else ANNALS_DATA, else ./annals-data.
    static func dataDirectory(_ given: String? = nil) -> String {
        given ?? value("ANNALS_DATA") ?? "./annals-data"
    }
}

/// Which store a command works on.
enum StoreChoice {
    case server(url: String, token: String?)
    case postgres(url: String)
    case data(directory: String)

    /// Options on the command line win over the environment; at most one of them may be given.
    /// Then ANNALS_SERVER (unless `acceptsServer` is false: `serve` is a server, not a client of one),
    /// ANNALS_POSTGRES_URL, ANNALS_DATA, and finally ./annals-data.
    static func resolve(
        server: String?, token: String?, postgres: String?, data: String?, acceptsServer: Bool = true
    ) throws(EventStoreError) -> StoreChoice {
        let given = [server, postgres, data].compactMap { $0 }
        if given.count > 1 {
            throw EventStoreError(.invalidArgument, "Give one of --server, --postgres and --data.")
        }
        let token = token ?? ServerEnvironment.value("ANNALS_TOKEN")
        if let server { return .server(url: server, token: token) }
        if let postgres { return .postgres(url: postgres) }
        if let data { return .data(directory: data) }
        if acceptsServer, let server = ServerEnvironment.value("ANNALS_SERVER") {
            return .server(url: server, token: token)
        }
        if let postgres = ServerEnvironment.value("ANNALS_POSTGRES_URL") { return .postgres(url: postgres) }
        return .data(directory: ServerEnvironment.dataDirectory())
    }
}

extension AnnalsCommand {
    /// `annals serve`: the HTTP server on the file store (default) or PostgreSQL.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the Annals HTTP server.",
            discussion: """
                Serves the file store in --data (default ./annals-data) or a PostgreSQL store (--postgres URL) \
                on http://127.0.0.1:2113. On the first start it creates an admin token and prints it once; \
                only its hash is kept. Every option can also be set through the environment variable named \
                in its help. SIGTERM or SIGINT shut the server down gracefully.
                """
        )

        @Option(name: .long, help: "The file store's data directory (ANNALS_DATA; default ./annals-data).")
        var data: String?

        @Option(name: .long, help: "Serve a PostgreSQL store instead (ANNALS_POSTGRES_URL).")
        var postgres: String?

        @Option(name: .long, help: "The address to listen on (ANNALS_HOST; default 127.0.0.1).")
        var host: String?

        @Option(name: .long, help: "The port to listen on (ANNALS_PORT; default 2113; 0 picks a free one).")
        var port: Int?

        @Option(name: .long, help: "A PEM certificate chain for TLS (ANNALS_TLS_CERT).")
        var tlsCert: String?

        @Option(name: .long, help: "The PEM private key for TLS (ANNALS_TLS_KEY).")
        var tlsKey: String?

        @Flag(name: .long, help: "Allow a non-loopback address without TLS (ANNALS_INSECURE=1).")
        var insecure = false

        @Option(
            name: .long,
            help:
                "Export traces and metrics over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (ANNALS_OTEL_ENDPOINT; needs the OTel trait)."
        )
        var otelEndpoint: String?

        @Option(
            name: .long,
            help:
                "The most memory the file store's index may hold, e.g. 64MiB or 1GiB (ANNALS_INDEX_MEMORY; default 64MiB)."
        )
        var indexMemory: String?

        @Option(
            name: .long,
            help:
                "Events appended between two flushes of the file store's index to disk (ANNALS_INDEX_MEMTABLE_EVENTS; default 65536)."
        )
        var indexMemtableEvents: Int?

        @Option(
            name: .long,
            help:
                "Log level: trace, debug, info, notice, warning, error, critical (ANNALS_LOG_LEVEL; default info; debug logs every request)."
        )
        var logLevel: String?

        func run() async throws {
            try await reportingErrors {
                var configuration = ServerConfiguration()
                configuration.host = host ?? ServerEnvironment.value("ANNALS_HOST") ?? configuration.host
                if let text = port.map(String.init) ?? ServerEnvironment.value("ANNALS_PORT") {
                    guard let value = Int(text), (0...65_535).contains(value) else {
                        throw EventStoreError(.invalidArgument, "The port must be 0–65535; got '\(text)'.")
                    }
                    configuration.port = value
                }
                configuration.tlsCertificatePath = tlsCert ?? ServerEnvironment.value("ANNALS_TLS_CERT")
                configuration.tlsKeyPath = tlsKey ?? ServerEnvironment.value("ANNALS_TLS_KEY")
                let allowInsecure = insecure || ServerEnvironment.value("ANNALS_INSECURE") == "1"
                if !configuration.isLoopback, configuration.tlsCertificatePath == nil, !allowInsecure {
                    throw EventStoreError(
                        .invalidArgument,
                        "Listening on \(configuration.host) without TLS would send tokens in clear text: give --tls-cert and --tls-key, or --insecure."
                    )
                }
                let levelText = logLevel ?? ServerEnvironment.value("ANNALS_LOG_LEVEL") ?? "info"
                guard let level = Logger.Level(rawValue: levelText) else {
                    throw EventStoreError(.invalidArgument, "Unknown log level '\(levelText)'.")
                }
                var logger = Logger(label: "annals.server")
                logger.logLevel = level
                let scheme = configuration.tlsCertificatePath == nil ? "http" : "https"
                var transport: ServerTransport?
                if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
                    #if TLS
                        transport = try TLSTransport.make(certificate: certificate, key: key)
                    #else
                        _ = (certificate, key)
                        throw Traits.missing("TLS", trait: "TLS")
                    #endif
                }
                // Before the store opens: it makes its metric handles from the bootstrapped factory.
                let metrics = try ServeMetrics.bootstrap(
                    otelEndpoint: otelEndpoint ?? ServerEnvironment.value("ANNALS_OTEL_ENDPOINT"), logger: logger)
                let (serverConfiguration, serverLogger, serverTransport) = (configuration, logger, transport)

                let choice = try StoreChoice.resolve(
                    server: nil, token: nil, postgres: postgres, data: data, acceptsServer: false)
                if case .postgres(let url) = choice {
                    #if Postgres
                        var storeConfiguration = PostgresEventStore.Configuration()
                        storeConfiguration.logger.logLevel = max(level, .notice)
                        try await PostgresEventStore.withStore(url: url, configuration: storeConfiguration) { store in
                            let tokens = try await PostgresTokenRegistry.make(for: store)
                            try await Self.serve(
                                store: store, tokens: tokens, configuration: serverConfiguration, logger: serverLogger,
                                describe: "PostgreSQL schema \(store.configuration.schema)", scheme: scheme,
                                metrics: metrics, transport: serverTransport)
                        }
                    #else
                        _ = (url, serverConfiguration, serverLogger, serverTransport)
                        throw Traits.missing("PostgreSQL", trait: "Postgres")
                    #endif
                } else {
                    guard case .data(let directory) = choice else {
                        throw EventStoreError(.invalidArgument, "serve takes --data or --postgres.")
                    }
                    var storeConfiguration = FileEventStore.Configuration()
                    storeConfiguration.logger.logLevel = max(level, .notice)
                    if let text = indexMemory ?? ServerEnvironment.value("ANNALS_INDEX_MEMORY") {
                        storeConfiguration.index.memoryBudget = try ByteSize.parse(text, option: "--index-memory")
                    }
                    if let text = indexMemtableEvents.map(String.init)
                        ?? ServerEnvironment.value("ANNALS_INDEX_MEMTABLE_EVENTS")
                    {
                        guard let value = Int(text) else {
                            throw EventStoreError(
                                .invalidArgument, "--index-memtable-events takes a number of events; got '\(text)'.")
                        }
                        storeConfiguration.index.memtableEvents = value
                    }
                    let store = try FileEventStore.open(at: directory, configuration: storeConfiguration)
                    do {
                        try await Self.serve(
                            store: store, tokens: FileTokenRegistry(path: directory + "/tokens.json"),
                            configuration: configuration, logger: logger, describe: "file store \(directory)",
                            scheme: scheme, metrics: metrics, transport: transport)
                    } catch {
                        await store.close()
                        throw error
                    }
                    await store.close()
                }
            }
        }

        static func serve(
            store: any EventStore, tokens: any TokenRegistry, configuration: ServerConfiguration, logger: Logger,
            describe: String, scheme: String, metrics: ServeMetrics,
            transport: ServerTransport?
        ) async throws {
            let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
            let server = try AnnalsServer(
                store: store, tokens: tokens, configuration: configuration, logger: logger,
                metrics: metrics.exposition, transport: transport
            ) { port in
                // The first admin token is made only now that the server listens: a first start that
                // fails (a port in use) must not leave a token no one was shown.
                do {
                    if let token = try await tokens.createFirstAdminToken()?.token {
                        FileHandle.standardOutput.write(
                            Data(
                                """
                                Created the first admin token (shown only this once; only its hash is stored):

                                    \(token)

                                Use it as: curl -H 'Authorization: Bearer \(token)' \(scheme)://\(host):\(port)/stats
                                or paste it into the admin page at \(scheme)://\(host):\(port)/


                                """.utf8))
                    }
                } catch {
                    FileHandle.standardError.write(
                        Data(
                            "annals: the first admin token could not be created (\(error)); make one with `annals token create --name admin --role admin`.\n"
                                .utf8))
                }
                // Unbuffered: scripts and tests wait for this line on a pipe.
                FileHandle.standardOutput.write(
                    Data(
                        "Annals \(AnnalsVersion.current) serving the \(describe) at \(scheme)://\(host):\(port)\n".utf8)
                )
            }
            // The library has no signal handling of its own: SIGTERM and SIGINT shut the group down
            // gracefully (stop accepting, end subscriptions, finish requests).
            // The exporters first: a group stops its services in reverse, so they flush after the server.
            let services = metrics.exportServices.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
            let group = ServiceGroup(
                configuration: .init(
                    services: services + [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            try await group.run()
            print("Annals stopped.")
        }
    }
}

/// Sizes given on the command line: a number of bytes, or one with a unit (KiB, MiB, GiB; K, M and G
/// mean the same), e.g. `64MiB`.
enum ByteSize {
    static func parse(_ text: String, option: String) throws(EventStoreError) -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30),
        ]
        var digits = Substring(trimmed)
        var scale = 1
        for (suffix, value) in units where trimmed.hasSuffix(suffix) {
            digits = trimmed.dropLast(suffix.count)
            scale = value
            break
        }
        guard let number = Int(digits.trimmingCharacters(in: .whitespaces)), number >= 0 else {
            throw EventStoreError(.invalidArgument, "\(option) takes a size such as 64MiB or 1GiB; got '\(text)'.")
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: scale)
        guard !overflow else { throw EventStoreError(.invalidArgument, "\(option) is too large: '\(text)'.") }
        return bytes
    }
}
