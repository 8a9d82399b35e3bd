#if Postgres
    import Annals
    import AnnalsPostgres
    import ArgumentParser
    import Foundation
    import Logging
    import PostgresNIO

    extension AnnalsCommand.Bench {
        /// The PostgreSQL scenarios, beside a raw single-row insert-and-commit probe on the same server.
        func runPostgres() async throws {
            guard let url = postgres ?? ProcessInfo.processInfo.environment["ANNALS_POSTGRES_URL"] else {
                throw ValidationError("--store postgres needs --postgres URL (or ANNALS_POSTGRES_URL).")
            }
            let schema = "annals_bench_" + UUID().uuidString.prefix(8).lowercased()
            var configuration = PostgresEventStore.Configuration(schema: schema)
            configuration.logger.logLevel = .warning
            let base = BenchResults(
                store: "postgres",
                directory: url.replacingOccurrences(of: #"://[^@]*@"#, with: "://", options: .regularExpression),
                seconds: seconds
            )
            var scenarios = BenchScenarios(seconds: seconds)
            scenarios.includeSixteenWriters = true
            let plan = scenarios
            let probeSeconds = min(seconds, 2)
            let results = try await PostgresEventStore.withStore(url: url, configuration: configuration) { store in
                var results = base
                results.probeBefore = try await Self.insertProbe(store, seconds: probeSeconds)
                try await plan.run(on: store, into: &results) { try await Self.insertProbe(store, seconds: $0) }
                results.probeAfter = try await Self.insertProbe(store, seconds: probeSeconds)
                try await store.client.query("DROP SCHEMA \(unescaped: "\"\(schema)\"") CASCADE")
                return results
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(results), as: UTF8.self))
            } else {
                print(results.table().replacingOccurrences(of: "flush probe", with: "insert+commit probe"))
            }
        }

        /// Inserts one 128-byte row per transaction (autocommit), in a loop, on one connection.
        static func insertProbe(_ store: PostgresEventStore, seconds: Double) async throws -> FlushProbe.Result {
            let table = "\"\(store.configuration.schema)\".bench_probe"
            try await store.client.query(
                "CREATE TABLE IF NOT EXISTS \(unescaped: table) (id bigserial PRIMARY KEY, payload bytea)")
            let payload = Data(repeating: 0x5A, count: 128)
            let clock = ContinuousClock()
            var latencies: [Double] = []
            try await store.client.withConnection { connection in
                let end = clock.now.advanced(by: .seconds(seconds))
                while clock.now < end {
                    let start = clock.now
                    try await connection.query(
                        "INSERT INTO \(unescaped: table) (payload) VALUES (\(payload))", logger: Logger(label: "bench"))
                    latencies.append(start.duration(to: clock.now).microseconds)
                }
            }
            return FlushProbe.Result(
                flushesPerSecond: Double(latencies.count) / seconds,
                p50Microseconds: percentile(latencies, 0.5),
                p99Microseconds: percentile(latencies, 0.99)
            )
        }
    }
#endif
