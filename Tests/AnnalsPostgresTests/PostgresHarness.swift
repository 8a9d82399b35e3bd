import Annals
import AnnalsPostgres
import AnnalsTesting
import Foundation
import Logging
import PostgresNIO

/// Fresh schemas on the test server: one per store, dropped afterwards.
struct PostgresHarness: EventStoreHarness {
    let url: String

    func withStore<R: Sendable>(
        limits: EventStoreLimits,
        _ body: @Sendable (any EventStore) async throws -> R
    ) async throws -> R {
        try await Self.withStore(url: url, limits: limits) { try await body($0) }
    }

    static func configuration(schema: String = freshSchema(), limits: EventStoreLimits = EventStoreLimits())
        -> PostgresEventStore.Configuration
    {
        PostgresEventStore.Configuration(
            schema: schema,
            limits: limits,
            pollInterval: .milliseconds(200),
            // Many stores run at once in the tests: keep each pool small.
            maximumConnections: 12,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
    }

    static func freshSchema() -> String {
        "annals_t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
    }

    static func withStore<R: Sendable>(
        url: String,
        schema: String = freshSchema(),
        limits: EventStoreLimits = EventStoreLimits(),
        drop: Bool = true,
        _ body: @Sendable (PostgresEventStore) async throws -> R
    ) async throws -> R {
        let configuration = configuration(schema: schema, limits: limits)
        let result: Result<R, any Error>
        do {
            result = .success(try await PostgresEventStore.withStore(url: url, configuration: configuration, body))
        } catch {
            result = .failure(error)
        }
        if drop { try? await dropSchema(schema, url: url) }
        return try result.get()
    }

    static func dropSchema(_ schema: String, url: String) async throws {
        let client = PostgresClient(
            configuration: try PostgresURL.configuration(url),
            backgroundLogger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query("DROP SCHEMA IF EXISTS \(unescaped: "\"\(schema)\"") CASCADE")
            group.cancelAll()
        }
    }
}
