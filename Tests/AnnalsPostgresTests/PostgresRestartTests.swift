import Annals
import AnnalsTestSupport
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import AnnalsPostgres

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
            // A live $all subscriber across the restart that, as an application would, subscribes again
            // after its last position when the subscription fails.
            let delivered = Shared<[RecordedEvent]>([])
            let resubscribed = Shared(0)
            let subscriber = Task {
                while !Task.isCancelled {
                    let start: SubscriptionStart =
                        delivered.withLock { $0.last }.map { .afterPosition($0.position) }
                        ?? .beginning
                    do {
                        for try await event in store.subscribe(to: .all, from: start) {
                            delivered.withLock { $0.append(event) }
                        }
                        return
                    } catch {
                        resubscribed.withLock { $0 += 1 }
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
            }
            defer { subscriber.cancel() }
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

            // The subscriber has seen every event once, in order, within a bound.
            let waitedFrom = ContinuousClock.now
            while delivered.withLock({ $0.count }) < log.count, ContinuousClock.now - waitedFrom < .seconds(30) {
                try await Task.sleep(for: .milliseconds(50))
            }
            let seen = delivered.withLock { $0 }
            print(
                "restart test: the subscriber saw \(seen.count) of \(log.count) events, subscribing again \(resubscribed.withLock { $0 }) times"
            )
            #expect(seen.map(\.id) == log.map(\.id), "the subscriber saw \(seen.count) of \(log.count) events")
        }
        let disturbed = retried.withLock { $0 } + spanned.withLock { $0 }
        #expect(disturbed > 0, "the restart must have interrupted or held up some appends")
    }

    @Test(
        "a server that stops answering: reads, appends and the head fail within their deadlines, then work again",
        .timeLimit(.minutes(2)))
    func unresponsiveServer() async throws {
        let server = try PostgresTestServer()
        try server.start()
        defer { server.remove() }
        var configuration = PostgresHarness.configuration()
        configuration.appendTimeout = .seconds(2)
        configuration.readTimeout = .seconds(2)
        try await PostgresEventStore.withStore(url: server.url, configuration: configuration) { store in
            let stream = try StreamName("frozen-1")
            let first = PostgresOrderingTests.batch(3, 1)
            // With a 2 s deadline, the very first append (a fresh server, connections still opening, the
            // whole suite beside it) timed out once in CI; retrying with the same ids is safe (law 6).
            _ = try await Self.eventually(within: .seconds(30)) {
                try await store.append(first, to: stream, expecting: .noStream)
            }
            // SIGSTOP on the server and all its processes: connections stay open, nothing answers. The
            // postmaster first, so that it forks no backend after the others were found (the store may
            // be opening a connection right now); then its children, until none is left running.
            let processes = try await offThread { try server.freeze() }
            var resumed = false
            defer { if !resumed { for pid in processes { kill(pid, SIGCONT) } } }
            let pending = PostgresOrderingTests.batch(2, 2)
            for (name, operation) in [
                ("read", { _ = try await store.read(stream) }),
                ("readAll", { _ = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: 10) }),
                ("streamInfo", { _ = try await store.streamInfo(stream) }),
                ("headPosition", { _ = try await store.headPosition() }),
                ("append", { _ = try await store.append(pending, to: stream, expecting: .any) }),
            ] as [(String, () async throws -> Void)] {
                let started = ContinuousClock.now
                await #expect(throws: EventStoreError.self, "\(name) while the server is frozen") {
                    try await operation()
                }
                #expect(ContinuousClock.now - started < .seconds(8), "\(name) took \(ContinuousClock.now - started)")
            }
            for pid in processes { kill(pid, SIGCONT) }
            resumed = true
            // The append that timed out may have been committed once the server went on: retrying it with
            // the same ids is safe, and must succeed within a bound.
            let back = ContinuousClock.now
            while true {
                do {
                    _ = try await store.append(pending, to: stream, expecting: .any)
                    break
                } catch {
                    #expect(ContinuousClock.now - back < .seconds(30), "appends still fail: \(error)")
                    if ContinuousClock.now - back > .seconds(30) { throw error }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            // Reads have the same 2 s deadline, and a server just woken on a loaded machine (the whole suite
            // beside it) may miss it once or twice: they too must work again within the bound.
            let (events, head) = try await Self.eventually(within: .seconds(30)) {
                (try await store.read(stream), try await store.headPosition())
            }
            #expect(events.map(\.id) == (first + pending).map(\.id))
            #expect(head == Position(5))
        }
    }

    /// Retries `operation` until it succeeds or `bound` has passed (then throws its last error).
    static func eventually<T>(within bound: Duration, _ operation: () async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        while true {
            do {
                return try await operation()
            } catch {
                if ContinuousClock.now - started > bound { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// A single append runs on the connection the store keeps for commits, in the appending task, with
    /// the holder closing that connection once the commit passes `appendTimeout`.
    @Test(
        "a commit held up past appendTimeout fails as unavailable within its bound, and appends work again",
        .timeLimit(.minutes(1)))
    func commitPastItsDeadline() async throws {
        let url = try #require(PostgresAvailability.url)
        var configuration = PostgresHarness.configuration()
        configuration.appendTimeout = .seconds(1)
        let logger = Logger(label: "test")
        try await PostgresEventStore.withStore(url: url, configuration: configuration) { store in
            let stream = try StreamName("held-1")
            let first = PostgresOrderingTests.batch(1, 1)
            let held = PostgresOrderingTests.batch(1, 2)
            let last = PostgresOrderingTests.batch(1, 3)
            _ = try await store.append(first, to: stream, expecting: .noStream)
            try await store.client.withConnection { blocker in
                // Another session takes the counter row's lock (the next commit waits for it) and lets go
                // after 5 s: without the bound the append would succeed then.
                try await blocker.query("BEGIN", logger: logger)
                try await blocker.query(
                    "SELECT 1 FROM \(unescaped: store.schema).counter WHERE id = 1 FOR UPDATE", logger: logger)
                async let released: Void = {
                    try await Task.sleep(for: .seconds(5))
                    try await blocker.query("ROLLBACK", logger: logger)
                }()
                let started = ContinuousClock.now
                let error = await #expect(throws: EventStoreError.self) {
                    _ = try await store.append(held, to: stream, expecting: .any)
                }
                let waited = ContinuousClock.now - started
                #expect(error?.code == .unavailable)
                #expect(error?.message.contains("did not answer within") == true, "\(String(describing: error))")
                #expect(waited >= .seconds(1) && waited < .seconds(4), "failed after \(waited)")
                try await released
            }
            // The server may still commit the abandoned append once the lock is free; a retry with the same
            // ids is safe either way.
            _ = try await store.append(held, to: stream, expecting: .any)
            _ = try await store.append(last, to: stream, expecting: .any)
            let events = try await store.read(stream)
            #expect(events.map(\.id) == (first + held + last).map(\.id))
            // The commit connection's search_path (the store's schema) never reaches the pool.
            let rows = try await store.client.query("SHOW search_path")
            for try await path in rows.decode(String.self) { #expect(!path.contains(store.configuration.schema)) }
        }
    }
}
