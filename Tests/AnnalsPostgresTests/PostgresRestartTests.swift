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
        // Attempts that began before the server was back and ended after: in flight, or waiting for a
        // connection, while it was down.
        let spanned = Shared(0)
        // 0 up, 1 stopped, 2 restarted.
        let phase = Shared(0)
        let restartedAt = Shared<ContinuousClock.Instant?>(nil)
        var configuration = PostgresHarness.configuration()
        // After the restart the first group's lease can hang in postgres-nio; the bound turns that
        // into a failure the writers retry.
        configuration.appendTimeout = .seconds(5)
        try await PostgresEventStore.withStore(url: server.url, configuration: configuration) { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        let stream = try StreamName("restart-\(writer)")
                        // Appends go on until the server has been restarted, and 10 rounds more.
                        var roundsAfterRestart = 0
                        var round = 0
                        while roundsAfterRestart < 10 {
                            if phase.withLock({ $0 }) == 2 { roundsAfterRestart += 1 }
                            defer { round += 1 }
                            let events = PostgresOrderingTests.batch(3, writer * 1_000_000 + round)
                            // Retry the very same events until the store answers: safe, because appends
                            // are idempotent by event id.
                            while true {
                                let began = phase.withLock { $0 }
                                do {
                                    let result = try await store.append(events, to: stream, expecting: .any)
                                    acknowledged.withLock { $0.append((events.map(\.id), result)) }
                                    if began < 2 && phase.withLock({ $0 }) == 2 { spanned.withLock { $0 += 1 } }
                                    break
                                } catch {
                                    retried.withLock { $0 += 1 }
                                    // The store must recover once the server is back: a bound, not a hang.
                                    if let back = restartedAt.withLock({ $0 }),
                                        ContinuousClock.now - back > .seconds(60)
                                    {
                                        Issue.record(
                                            "writer \(writer): appends still fail 60 s after the restart: \(error)")
                                        throw error
                                    }
                                    try await Task.sleep(for: .milliseconds(100))
                                }
                            }
                        }
                    }
                }
                group.addTask {
                    while acknowledged.withLock({ $0.count }) < 40 { try await Task.sleep(for: .milliseconds(10)) }
                    try await offThread { server.stop(mode: "immediate") }
                    phase.withLock { $0 = 1 }
                    try await Task.sleep(for: .seconds(1))
                    try await offThread { try server.start() }
                    restartedAt.withLock { $0 = .now }
                    phase.withLock { $0 = 2 }
                    print(
                        "restart test: the server is back after \(acknowledged.withLock { $0.count }) acknowledged appends"
                    )
                }
                try await group.waitForAll()
            }
            print("restart test: writers done; \(retried.withLock { $0 }) failed attempts, reading back")
            let log = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            #expect(log.map(\.position.value) == Array(0..<UInt64(log.count)), "positions have gaps")
            #expect(Set(log.map(\.id)).count == log.count, "an event id appears twice")
            let stored = Dictionary(uniqueKeysWithValues: log.map { ($0.id, $0) })
            for ack in acknowledged.withLock({ $0 }) {
                for (index, id) in ack.ids.enumerated() {
                    #expect(stored[id]?.position.value == ack.result.firstPosition.value + UInt64(index))
                }
            }
            let batches = acknowledged.withLock { $0 }
            #expect(log.count == batches.count * 3, "every batch is stored exactly once")

            // Retries of acknowledged appends (a client that never saw the answer) answer the original
            // result and add nothing.
            for (index, ack) in batches.enumerated() where index % 7 == 0 {
                let original = log.first { $0.id == ack.ids[0] }
                let stream = try #require(original?.stream)
                let events = log.filter { ack.ids.contains($0.id) }.map {
                    EventData(
                        id: $0.id, type: $0.type, data: $0.data, contentType: $0.contentType, metadata: $0.metadata)
                }
                #expect(try await store.append(events, to: stream, expecting: .any) == ack.result)
            }
            let after = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            #expect(after.count == log.count, "a retry added events")
        }
        let disturbed = retried.withLock { $0 } + spanned.withLock { $0 }
        #expect(disturbed > 0, "the restart must have interrupted or held up some appends")
    }
}
