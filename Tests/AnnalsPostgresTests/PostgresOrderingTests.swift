import Annals
import AnnalsPostgres
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

struct Rollback: Error {}

@Suite("PostgreSQL ordering", .enabled(if: PostgresAvailability.url != nil, "\(PostgresAvailability.reason)"))
struct PostgresOrderingTests {
    static func batch(_ count: Int, _ tag: Int) -> [EventData] {
        (0..<count).map { EventData(type: "Ordered", data: Data("{\"tag\":\(tag),\"n\":\($0)}".utf8)) }
    }

    @Test(
        "8 writers hold transactions open up to 200 ms and some roll back; a subscriber and a poller see each committed event once, in order",
        .timeLimit(.minutes(3))
    )
    func writersHoldingTransactions() async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let target = 20_000
            let committed = Shared<[UUID]>([])
            let rolledBack = Shared<Set<UUID>>([])
            let finalCount = Shared<Int?>(nil)
            let subscriber = Task {
                var seen: [RecordedEvent] = []
                for try await event in store.subscribe(to: .all, from: .beginning) {
                    seen.append(event)
                    if let total = finalCount.withLock({ $0 }), seen.count >= total { break }
                }
                return seen
            }
            let poller = Task {
                var next: UInt64 = 0
                while true {
                    let page = try await store.readAll(
                        from: Position(next), direction: .forwards, filter: .all, limit: 2_000)
                    for event in page {
                        guard event.position.value == next else {
                            throw PostgresTestFailure(
                                "the poller read position \(event.position) while \(next) was due")
                        }
                        next += 1
                    }
                    if let total = finalCount.withLock({ $0 }), next >= UInt64(total) { return next }
                    if page.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        var random = SystemRandomNumberGenerator()
                        let stream = try StreamName("ordered-\(writer)")
                        var round = 0
                        while committed.withLock({ $0.count }) < target {
                            round += 1
                            let events = Self.batch(125, writer * 100_000 + round)
                            let rollback = Int.random(in: 0..<100, using: &random) < 15
                            do {
                                try await store.client.withTransaction(logger: store.configuration.logger) {
                                    connection in
                                    _ = try await store.append(events, to: stream, expecting: .any, in: connection)
                                    try await Task.sleep(for: .milliseconds(Int.random(in: 0...200, using: &random)))
                                    if rollback { throw Rollback() }
                                }
                                committed.withLock { $0 += events.map(\.id) }
                            } catch {
                                guard rollback else { throw error }
                                rolledBack.withLock { $0.formUnion(events.map(\.id)) }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            // A last event wakes the subscriber once the writers are done. The count is set first: the
            // subscriber may see the sentinel before its append returns here.
            let sentinel = EventData(type: "Sentinel", data: Data("{}".utf8))
            let committedIDs = committed.withLock { $0 } + [sentinel.id]
            finalCount.withLock { $0 = committedIDs.count }
            _ = try await store.append([sentinel], to: try StreamName("ordered-end"), expecting: .any)
            let seen = try await subscriber.value
            let polled = try await poller.value
            #expect(
                seen.map(\.position.value) == Array(0..<UInt64(committedIDs.count)),
                "the subscriber saw a gap or a repeat")
            #expect(Set(seen.map(\.id)) == Set(committedIDs), "the subscriber's events are not the committed ones")
            #expect(rolledBack.withLock { $0 }.isDisjoint(with: seen.map(\.id)), "a rolled-back event was delivered")
            #expect(polled == UInt64(committedIDs.count))
            #expect(!rolledBack.withLock { $0 }.isEmpty, "the test must roll some transactions back")
        }
    }

    @Test(
        "two independent instances append at once and a subscriber on either sees everything in one order",
        .timeLimit(.minutes(2)))
    func twoInstances() async throws {
        let url = try #require(PostgresAvailability.url)
        let schema = PostgresHarness.freshSchema()
        let perWriter = 50
        try await PostgresHarness.withStore(url: url, schema: schema) { first in
            try await PostgresHarness.withStore(url: url, schema: schema, drop: false) { second in
                let total = 2 * 4 * perWriter * 5
                let subscribers = [first, second].map { store in
                    Task {
                        var seen: [RecordedEvent] = []
                        for try await event in store.subscribe(to: .all, from: .beginning) {
                            seen.append(event)
                            if seen.count == total { break }
                        }
                        return seen
                    }
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, store) in [first, second].enumerated() {
                        for writer in 0..<4 {
                            group.addTask {
                                let stream = try StreamName("instance\(index)-\(writer)")
                                for round in 0..<perWriter {
                                    _ = try await store.append(Self.batch(5, round), to: stream, expecting: .any)
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let seenByFirst = try await subscribers[0].value
                let seenBySecond = try await subscribers[1].value
                #expect(seenByFirst.map(\.position.value) == Array(0..<UInt64(total)))
                #expect(seenByFirst.map(\.id) == seenBySecond.map(\.id), "the two instances disagree on the order")
                #expect(Set(seenByFirst.map(\.stream.rawValue)).count == 8)
            }
        }
    }

    /// The listener costs every commit while it listens, so it listens only while a subscriber waits;
    /// a subscriber that starts waiting must then still wake at once for another process's append.
    @Test(
        "a store listens only while a subscriber waits, and that subscriber wakes for another instance's append",
        .timeLimit(.minutes(1)))
    func listensOnlyWhileWanted() async throws {
        let url = try #require(PostgresAvailability.url)
        let schema = PostgresHarness.freshSchema()
        var configuration = PostgresHarness.configuration(schema: schema)
        // No head check in time to wake the subscriber: only a notification can.
        configuration.pollInterval = .seconds(120)
        let listening = "LISTEN \"annals_\(schema)\";"
        defer { Task { try? await PostgresHarness.dropSchema(schema, url: url) } }
        try await PostgresEventStore.withStore(url: url, configuration: configuration) { first in
            try await PostgresHarness.withStore(url: url, schema: schema, drop: false) { second in
                // Backends whose last statement was the LISTEN (one that stopped shows its UNLISTEN).
                func listeners() async throws -> Int64 {
                    let rows = try await second.client.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE query = \(listening)",
                        logger: Logger(label: "test"))
                    for try await (count, ) in rows.decode((Int64,).self) { return count }
                    return 0
                }
                func awaitListeners(_ wanted: Int64, within limit: Duration) async throws -> Int64 {
                    let end = ContinuousClock.now + limit
                    var count = try await listeners()
                    while count != wanted, ContinuousClock.now < end {
                        try await Task.sleep(for: .milliseconds(100))
                        count = try await listeners()
                    }
                    return count
                }
                _ = try await first.append(Self.batch(1, 0), to: try StreamName("listened-0"), expecting: .any)
                try await Task.sleep(for: .seconds(1))
                #expect(try await listeners() == 0, "nobody waits for commits, yet a connection listens")

                let delivered = Task {
                    for try await event in first.subscribe(to: .all, from: .end) { return event.stream.rawValue }
                    return ""
                }
                #expect(try await awaitListeners(1, within: .seconds(5)) == 1, "a subscriber waits, yet nobody listens")
                let started = ContinuousClock.now
                _ = try await second.append(Self.batch(1, 1), to: try StreamName("listened-1"), expecting: .any)
                #expect(try await delivered.value == "listened-1")
                let waited = ContinuousClock.now - started
                #expect(waited < .seconds(5), "the notification took \(waited)")

                // The subscriber has stopped waiting: the LISTEN ends after the linger.
                // Generous: in a whole-suite run on two cores the UNLISTEN once came later than linger + 5 s.
                let limit = PostgresEventStore.listenLinger + .seconds(15)
                #expect(try await awaitListeners(0, within: limit) == 0, "still listening \(limit) after the last wait")
            }
        }
    }

    /// A tombstone moves no head, so only its notification can wake a subscriber in another process.
    @Test(
        "a tombstone through one instance ends a live subscriber of the stream on another at once",
        .timeLimit(.minutes(1)))
    func tombstoneReachesAnotherInstance() async throws {
        let url = try #require(PostgresAvailability.url)
        let schema = PostgresHarness.freshSchema()
        var configuration = PostgresHarness.configuration(schema: schema)
        // No head check in time to wake the subscriber (and a head check would not see a tombstone).
        configuration.pollInterval = .seconds(120)
        let listening = "LISTEN \"annals_\(schema)\";"
        defer { Task { try? await PostgresHarness.dropSchema(schema, url: url) } }
        try await PostgresEventStore.withStore(url: url, configuration: configuration) { watcher in
            try await PostgresHarness.withStore(url: url, schema: schema, drop: false) { writer in
                let stream = try StreamName("doomed-1")
                _ = try await writer.append(Self.batch(2, 0), to: stream, expecting: .noStream)
                let heard = Task { () -> String in
                    var iterator = watcher.subscribe(to: .stream(stream), from: .beginning).makeAsyncIterator()
                    do {
                        while try await iterator.next() != nil {}
                        return "the subscription ended quietly"
                    } catch let error as EventStoreError {
                        return error.code.rawValue
                    }
                }
                // The watcher's subscriber has caught up and waits: its store listens.
                let end = ContinuousClock.now + .seconds(10)
                var listeners: Int64 = 0
                while listeners == 0, ContinuousClock.now < end {
                    try await Task.sleep(for: .milliseconds(100))
                    let rows = try await writer.client.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE query = \(listening)",
                        logger: Logger(label: "test"))
                    for try await (count, ) in rows.decode((Int64,).self) { listeners = count }
                }
                #expect(listeners == 1, "a subscriber waits, yet nobody listens")
                let started = ContinuousClock.now
                try await writer.tombstone(stream, expecting: .any)
                let outcome = try await withThrowingTaskGroup(of: String?.self) { group in
                    group.addTask { try await heard.value }
                    group.addTask {
                        try await Task.sleep(for: .seconds(5))
                        heard.cancel()
                        return nil
                    }
                    defer { group.cancelAll() }
                    return try await group.next() ?? nil
                }
                #expect(outcome == "stream-deleted", "heard \(outcome ?? "nothing within 5 s")")
                #expect(ContinuousClock.now - started < .seconds(5))
            }
        }
    }

    @Test("a stream created by metadata waits for an open append's transaction, so streams list in commit order")
    func streamsListInCommitOrder() async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let (first, second) = (try StreamName("listed-first"), try StreamName("listed-second"))
            let committedAt = Shared<ContinuousClock.Instant?>(nil)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await store.client.withTransaction(logger: store.configuration.logger) { connection in
                        _ = try await store.append(Self.batch(1, 0), to: first, expecting: .noStream, in: connection)
                        try await Task.sleep(for: .milliseconds(400))
                    }
                    committedAt.withLock { $0 = .now }
                }
                try await Task.sleep(for: .milliseconds(100))
                try await store.setMetadata(StreamMetadata(maxCount: 5), for: second)
                let finished = ContinuousClock.now
                try await group.waitForAll()
                let committed = try #require(committedAt.withLock { $0 })
                // The metadata's transaction had to wait for the append's commit (the counter row lock).
                #expect(finished >= committed - .milliseconds(50))
            }
            #expect(try await store.listStreams(after: nil, limit: 10).map(\.stream) == [first, second])
            #expect(try await store.listStreams(after: first, limit: 10).map(\.stream) == [second])
        }
    }
}

struct PostgresTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A lock-protected value that closures can share.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { value in try body(&value) }
    }
}
