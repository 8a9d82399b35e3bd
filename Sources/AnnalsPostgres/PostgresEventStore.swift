import Annals
import Foundation
import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The ``Annals/EventStore`` on PostgreSQL: for teams that run PostgreSQL already, and for many
/// stateless Annals processes on one database.
///
/// - **Ordering.** Positions come from one counter row, locked by each append's transaction until it
///   commits: positions are contiguous, a rollback gives them back, and commit order is position
///   order, so no reader of `$all` ever sees position p+1 while p is still to come. Readers take no
///   lock at all.
/// - **Group commit.** Concurrent appends from one process go into one transaction (each in its own
///   savepoint-free function call, so one failing expectation does not affect the others).
/// - **Subscriptions** wake on `LISTEN/NOTIFY` from a dedicated connection, which ``run()`` keeps
///   open and reconnects (listening while a subscriber waits), and on a periodic check of the head;
///   they always re-read by position, so a lost notification only delays, never loses.
/// - **Schema.** Its own schema (default `annals`), created and migrated by ``migrate()``, safely
///   when several processes start at once.
///
/// ## Opening and closing
///
/// The store needs a running `PostgresClient` (its `run()` in a task or a `ServiceGroup`), migrations,
/// and its own ``run()`` for notifications. For a scope, ``withStore(url:configuration:_:)`` does all
/// of that and stops both when the closure returns or throws:
///
/// ```swift
/// try await PostgresEventStore.withStore(url: "postgres://annals:secret@localhost/orders") { store in
///     try await store.append(events, to: stream)
/// }
/// ```
///
/// In a long-running service the store is a ServiceLifecycle `Service`: run it in the `ServiceGroup`
/// (with the client's `run()` around it, and ``migrate()`` before the first append), and graceful
/// shutdown or cancellation stops it. There is no `close()`, and no `Task` to start by hand.
public final class PostgresEventStore: EventStore, Service {
    /// How the store behaves.
    public struct Configuration: Sendable {
        /// The schema holding the store's tables. Lower-case letters, digits and `_`.
        public var schema: String
        /// Size and count limits (law 9).
        public var limits: EventStoreLimits
        /// How many events a subscription reads at a time.
        public var subscriptionPageSize: Int
        /// How often the head is checked without a notification (a safety net for lost ones).
        public var pollInterval: Duration
        /// The most connections the client that ``PostgresEventStore/withStore(url:configuration:_:)``
        /// creates may open, at least 3: `run()` holds one for its listener and one for group commits,
        /// and reads and transactions use the others.
        public var maximumConnections: Int
        /// The longest an append's group transaction may take, connection lease included. Past it the
        /// append fails with `unavailable` ("may or may not have been committed"): retrying it with the
        /// same event ids is safe.
        public var appendTimeout: Duration
        /// The longest one read query may take, connection lease included: a page of events (of
        /// `read`, `readAll` and subscriptions), a stream row, a count, the head. Past it the read fails
        /// with `unavailable`; a subscription then ends with that error. Per query, so a read of many
        /// pages may take longer in all.
        public var readTimeout: Duration
        /// Where the store logs (migrations applied, failed head checks and a lost commit connection at
        /// `debug`, a lost notification connection at `warning`), and the logger its queries are made with;
        /// ``PostgresEventStore/withStore(url:configuration:_:)`` gives it to the client too.
        public var logger: Logger
        /// Told about each group commit; nil by default. (The store's metrics need none: see
        /// ``metricsFactory``.)
        public var commitObserver: CommitObserver?
        /// Where the store's metrics go (``Annals/StoreMetrics``, dimension `store="postgres"`); nil for
        /// the factory bootstrapped for the process.
        public var metricsFactory: (any MetricsFactory)?

        /// A configuration; by default schema `annals`, the default limits, 512 events per subscription page,
        /// a head check every 500 ms, at most 20 connections, and 30 s for an append and for a read query.
        /// `maximumConnections` below 3 counts as 3. ``PostgresEventStore/init(client:configuration:)`` checks
        /// the schema name and the limits.
        public init(
            schema: String = "annals",
            limits: EventStoreLimits = EventStoreLimits(),
            subscriptionPageSize: Int = 512,
            pollInterval: Duration = .milliseconds(500),
            maximumConnections: Int = 20,
            appendTimeout: Duration = .seconds(30),
            readTimeout: Duration = .seconds(30),
            logger: Logger = Logger(label: "annals.postgres")
        ) {
            self.appendTimeout = appendTimeout
            self.readTimeout = readTimeout
            self.schema = schema
            self.limits = limits
            self.subscriptionPageSize = subscriptionPageSize
            self.pollInterval = pollInterval
            self.maximumConnections = max(3, maximumConnections)
            self.logger = logger
        }
    }

    /// The client the store queries through; its `run()` must be going while the store is used.
    public let client: PostgresClient
    /// How the store behaves.
    public let configuration: Configuration
    let notifier = CommitNotifier()
    let batcher = AppendBatcher()
    let commitConnection = CommitConnection()
    let metrics: StoreMetrics
    /// The schema name, quoted for SQL.
    let schema: String
    var logger: Logger { configuration.logger }

    /// Creates a store on a client. Call ``migrate()`` (or use ``withStore(url:configuration:_:)``)
    /// before the first append.
    public init(client: PostgresClient, configuration: Configuration = Configuration()) throws(EventStoreError) {
        guard Schema.isValidName(configuration.schema) else {
            throw EventStoreError(
                .invalidArgument,
                "The schema name '\(configuration.schema)' must be lower-case letters, digits and '_', at most 56 bytes."
            )
        }
        try configuration.limits.validate()
        self.client = client
        self.configuration = configuration
        self.schema = "\"\(configuration.schema)\""
        self.metrics = StoreMetrics(store: "postgres", factory: configuration.metricsFactory)
    }

    /// Creates a client for `url`, runs it and the store, migrates, and runs `body`: the way to use the
    /// store for a scope.
    ///
    /// When this returns, the listener and the client have stopped; do not keep the store, or a
    /// subscription of it, beyond `body`.
    ///
    /// - Parameter url: `postgres://user:password@host:port/database` (or `postgresql://`).
    public static func withStore<R: Sendable>(
        url: String,
        configuration: Configuration = Configuration(),
        _ body: @Sendable (PostgresEventStore) async throws -> R
    ) async throws -> R {
        var clientConfiguration = try PostgresURL.configuration(url)
        clientConfiguration.options.maximumConnections = configuration.maximumConnections
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: configuration.logger)
        let store = try PostgresEventStore(client: client, configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            // The listener ends (inner group) before the client it uses stops (outer group).
            return try await withThrowingTaskGroup(of: Void.self) { listener in
                listener.addTask { try await store.run() }
                defer { listener.cancelAll() }
                return try await body(store)
            }
        }
    }

    /// Creates the schema and applies the migrations it lacks.
    public func migrate() async throws {
        do {
            try await client.withTransaction(logger: logger) { connection in
                // One migrator at a time, across processes.
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(hashtext(\(configuration.schema)))",
                    logger: logger
                )
                // CREATE SCHEMA checks the CREATE privilege even when the schema exists: look first, so a
                // role without it can run against a schema made for it.
                var exists = false
                for try await _ in try await connection.query(
                    "SELECT 1 FROM pg_namespace WHERE nspname = \(configuration.schema)",
                    logger: logger
                ).decode(Int32.self) {
                    exists = true
                }
                if !exists {
                    try await connection.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", logger: logger)
                }
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS \(unescaped: schema).migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                    logger: logger
                )
                var applied: Set<Int> = []
                for try await version in try await connection.query(
                    "SELECT version FROM \(unescaped: schema).migrations",
                    logger: logger
                ).decode(Int.self) {
                    applied.insert(version)
                }
                if let newest = applied.max(), newest > Schema.migrations.count {
                    throw EventStoreError(
                        .unavailable,
                        "The schema is at version \(newest), newer than this Annals knows (\(Schema.migrations.count)); upgrade Annals."
                    )
                }
                for (index, statements) in Schema.migrations.enumerated() where !applied.contains(index + 1) {
                    for sql in statements {
                        let text = sql.replacingOccurrences(of: "$S", with: schema)
                        try await connection.query(PostgresQuery(unsafeSQL: text), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO \(unescaped: schema).migrations (version) VALUES (\(index + 1))",
                        logger: logger
                    )
                    logger.debug(
                        "Applied migration", metadata: ["schema": "\(configuration.schema)", "version": "\(index + 1)"])
                }
            }
            notifier.publish(head: try await currentHead())
        } catch {
            throw Self.storeError(error, "Migrating the schema failed")
        }
    }

    /// Listens for commits of other processes until cancelled (or graceful shutdown): a dedicated
    /// connection with `LISTEN` while a subscriber waits, reconnected after failures, and a periodic
    /// check of the head. Also
    /// keeps one connection leased for group commits. A client of your own needs a pool of at least
    /// three connections for this (listener, group commits, everything else).
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.listen() }
                group.addTask { await self.poll() }
                group.addTask { await self.holdCommitConnection() }
            }
        }
        // Subscriptions waiting for new events end instead of waiting forever.
        notifier.finish(throwing: EventStoreError(.storeClosed, "The store stopped listening for commits."))
    }

    /// The channel commits are announced on.
    var channel: String { "annals_\(configuration.schema)" }

    /// Holds a connection of its own for notifications and listens on it while a subscriber of this
    /// process waits for commits (and for ``listenLinger`` after the last one stopped waiting). With
    /// nobody waiting there is nothing to hear, and a `LISTEN` would still cost every commit, this
    /// process's own included: it wakes the listening connection's server process and this process
    /// (measured: 60–80 µs of a one-event append's median on 2 cores).
    private func listen() async {
        await keepLeased("Notification connection lost; reconnecting", level: .warning) { [self] connection in
            while !Task.isCancelled {
                try await notifier.waitForWaiter()
                try await connection.listen(on: channel) { notifications in
                    // Catch up on what was committed before the LISTEN took effect.
                    notifier.publish(head: try await currentHead())
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { [notifier] in
                            for try await notification in notifications {
                                if let head = UInt64(notification.payload) {
                                    notifier.publish(head: head)
                                } else if notification.payload == Self.changePayload {
                                    notifier.publishChange()
                                }
                            }
                            throw EventStoreError(.unavailable, "The notification connection stopped listening.")
                        }
                        group.addTask { [self] in try await untilNobodyWaits() }
                        _ = try await group.next()
                        group.cancelAll()
                    }
                }
            }
        }
    }

    /// How long ``run()`` keeps listening for commits after the last subscriber of this process stopped
    /// waiting for them.
    public static let listenLinger = Duration.seconds(10)

    /// Returns once no subscriber has waited for commits for ``listenLinger`` (looked at every second).
    private func untilNobodyWaits() async throws {
        var idleSince: ContinuousClock.Instant?
        while true {
            try await Task.sleep(for: .seconds(1))
            if notifier.hasWaiters {
                idleSince = nil
            } else if let since = idleSince {
                if ContinuousClock.now - since >= Self.listenLinger { return }
            } else {
                idleSince = .now
            }
        }
    }

    /// Keeps one connection leased for group commits (see ``CommitConnection``), leasing another
    /// when a commit on it fails.
    private func holdCommitConnection() async {
        await keepLeased("No connection for group commits; leasing another", level: .debug) { [self] connection in
            // Closed afterwards, so that nobody else gets it with the settings of configure(_:).
            try await CommitConnection.configure(connection, schema: configuration.schema, logger: logger)
            await commitConnection.hold(connection, timeout: configuration.appendTimeout)
            try? await connection.close()
        }
    }

    /// Runs `body` on a leased connection, and again on a new lease whenever it ends (a second later
    /// when it failed), until the task is cancelled. The lease runs in a task that is abandoned, not awaited, on
    /// cancellation: postgres-nio was seen to leave a lease after a server restart waiting forever, and
    /// that must not hold up the shutdown.
    private func keepLeased(
        _ failure: String, level: Logger.Level,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Void
    ) async {
        while !Task.isCancelled {
            do {
                try await withDeadline(nil) { [self] in
                    try await client.withConnection { connection in
                        if !Task.isCancelled { try await body(connection) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.log(level: level, "\(failure)", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func poll() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.pollInterval)
                notifier.publish(head: try await currentHead())
            } catch is CancellationError {
                return
            } catch {
                logger.debug("Head check failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The committed head: the position the next event will get.
    func currentHead() async throws -> UInt64 {
        guard let head = try await number("SELECT next_position FROM \(unescaped: schema).counter WHERE id = 1") else {
            throw EventStoreError(.unavailable, "The store's counter row is missing; run migrate().")
        }
        return UInt64(max(0, head))
    }

    /// A read under ``Configuration/readTimeout``.
    func bounded<T: Sendable>(_ read: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withDeadline(configuration.readTimeout, read)
    }

    /// The head of `$all`, from the counter row: the position the next committed event will get.
    ///
    /// - Throws: ``Annals/EventStoreError/Code/unavailable`` when PostgreSQL cannot be reached or does not
    ///   answer within ``Configuration/readTimeout``, or the schema is not migrated.
    public func headPosition() async throws -> Position {
        do {
            return Position(try await currentHead())
        } catch {
            throw Self.storeError(error, "Reading the head failed")
        }
    }

    /// A catch-up subscription (law 7): it reads pages of ``Configuration/subscriptionPageSize`` events by
    /// position and, once caught up, waits for a notification or the next head check. Subscribers hear of
    /// other processes' appends only while this process runs ``run()``.
    public func subscribe(to target: SubscriptionTarget, from start: SubscriptionStart) -> EventSubscription {
        .catchUp(
            store: self, notifier: notifier, target: target, start: start, pageSize: configuration.subscriptionPageSize)
    }

    /// Maps driver errors to ``Annals/EventStoreError`` (law 10); store errors pass through.
    static func storeError(_ error: any Error, _ context: String) -> EventStoreError {
        if let error = error as? EventStoreError { return error }
        if let error = error as? PostgresTransactionError {
            if let inner = error.closureError { return storeError(inner, context) }
            if let inner = error.beginError ?? error.commitError { return storeError(inner, context) }
        }
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? "\(error.code)"
            return EventStoreError(.unavailable, "\(context): PostgreSQL \(state) \(message)")
        }
        return EventStoreError(.unavailable, "\(context): \(error)")
    }
}

/// Parses `postgres://user:password@host:port/database` URLs.
public enum PostgresURL {
    /// A client configuration, without TLS, for `url`: user (default `postgres`), password, host (default
    /// `localhost`), port (default 5432) and database; `?host=/dir` connects through the Unix socket in
    /// `/dir`.
    ///
    /// - Throws: ``Annals/EventStoreError/Code/invalidArgument`` for a scheme other than `postgres` or
    ///   `postgresql`, or any URL parameter but `host` and `sslmode=disable` (TLS is set on a
    ///   `PostgresClient` you create yourself).
    public static func configuration(_ url: String) throws(EventStoreError) -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql"
        else {
            throw EventStoreError(
                .invalidArgument, "A PostgreSQL URL looks like postgres://user:password@host:port/database.")
        }
        for item in components.queryItems ?? [] where item.name != "host" {
            guard item.name == "sslmode", item.value == "disable" else {
                throw EventStoreError(
                    .invalidArgument,
                    "The URL parameter \(item.name)=\(item.value ?? "") is not supported; TLS is configured on a PostgresClient you create yourself."
                )
            }
        }
        let user = components.user ?? "postgres"
        let database = components.path.count > 1 ? String(components.path.dropFirst()) : nil
        var configuration: PostgresClient.Configuration
        let socket = components.queryItems?.first { $0.name == "host" && ($0.value?.hasPrefix("/") ?? false) }?.value
        if let socket {
            let port = components.port ?? 5432
            configuration = .init(
                unixSocketPath: "\(socket)/.s.PGSQL.\(port)", username: user, password: components.password,
                database: database)
        } else {
            configuration = .init(
                host: components.host ?? "localhost",
                port: components.port ?? 5432,
                username: user,
                password: components.password,
                database: database,
                tls: .disable
            )
        }
        return configuration
    }
}
