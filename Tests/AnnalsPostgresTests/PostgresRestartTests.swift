import Annals
import AnnalsPostgres
import AnnalsTestSupport
import Foundation
import Synchronization
import Testing

@Suite("PostgreSQL restarts", .enabled(if: PostgresAvailability.canStartServers, "\(PostgresAvailability.reason)"))
struct PostgresRestartTests {
    @Test(
        "the server is killed mid-load and restarted; acknowledged appends survive and retries add no duplicates",
        .timeLimit(.minutes(3)))
    func killAndRestart() async throws {
        // A private server, so stopping it disturbs no other test.
        let server = try PostgresTestServer()
        try server.start()
        defer { server.remove() }
        let acknowledged = Shared<[(ids: [UUID], result: AppendResult)]>([])
        let retried = Shared(0)
        var configuration = PostgresHarness.configuration()
        // After the restart the first group's lease can hang in postgres-nio; the bound turns that
        // into a failure the writers retry.
        configuration.appendTimeout = .seconds(5)
        try await PostgresEventStore.withStore(url: server.url, configuration: configuration) { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        let stream = try StreamName("restart-\(writer)")
                        for round in 0..<40 {
                            let events = PostgresOrderingTests.batch(3, writer * 1_000 + round)
                            // Retry the very same events until the store answers: safe, because appends
                            // are idempotent by event id.
                            while true {
                                do {
                                    let result = try await store.append(events, to: stream, expecting: .any)
                                    acknowledged.withLock { $0.append((events.map(\.id), result)) }
                                    break
                                } catch {
                                    retried.withLock { $0 += 1 }
                                    try await Task.sleep(for: .milliseconds(100))
                                }
                            }
                        }
                    }
                }
                group.addTask {
                    while acknowledged.withLock({ $0.count }) < 40 { try await Task.sleep(for: .milliseconds(10)) }
                    try await offThread { server.stop(mode: "immediate") }
                    try await Task.sleep(for: .seconds(1))
                    try await offThread { try server.start() }
                }
                try await group.waitForAll()
            }
            let log = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            #expect(log.map(\.position.value) == Array(0..<UInt64(log.count)), "positions have gaps")
            #expect(Set(log.map(\.id)).count == log.count, "an event id appears twice")
            let stored = Dictionary(uniqueKeysWithValues: log.map { ($0.id, $0) })
            for ack in acknowledged.withLock({ $0 }) {
                for (index, id) in ack.ids.enumerated() {
                    #expect(stored[id]?.position.value == ack.result.firstPosition.value + UInt64(index))
                }
            }
            #expect(log.count == 4 * 40 * 3, "every batch is stored exactly once")
        }
        #expect(retried.withLock { $0 } > 0, "the restart must have interrupted some appends")
    }
}
