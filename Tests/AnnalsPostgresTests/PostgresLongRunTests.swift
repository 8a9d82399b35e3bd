import Annals
import Foundation
import Logging
import PostgresNIO
import Testing

@testable import AnnalsPostgres

/// What lives as long as the store — the listener, the notifier's waiters, the pool — must not grow
/// with the subscriptions that came and went.
@Suite("PostgreSQL over a long run", .enabled(if: PostgresAvailability.url != nil, "\(PostgresAvailability.reason)"))
struct PostgresLongRunTests {
    @Test(
        "300 subscriptions opened, fed and closed: the last as quick as the first, one listener, no waiter left over",
        .timeLimit(.minutes(2)))
    func subscriptionChurn() async throws {
        let url = try #require(PostgresAvailability.url)
        try await PostgresHarness.withStore(url: url) { store in
            let stream = try StreamName("churn-1")
            // Backends listening for this store's commits (other tests share the database).
            let listening = "LISTEN \"annals_\(store.configuration.schema)\";"
            func listeners() async throws -> Int64 {
                let rows = try await store.client.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = \(listening)", logger: Logger(label: "test"))
                for try await (count, ) in rows.decode((Int64,).self) { return count }
                return 0
            }
            var rounds: [Duration] = []
            var mostListeners: Int64 = 0
            for round in 0..<300 {
                let started = ContinuousClock.now
                let (ready, readySignal) = AsyncStream.makeStream(of: Void.self)
                let subscriber = Task {
                    // After the last revision written, not `.end`: the append below must be the event seen.
                    let start: SubscriptionStart =
                        round == 0 ? .beginning : .afterRevision(StreamRevision(UInt64(round - 1)))
                    var iterator = store.subscribe(to: .stream(stream), from: start).makeAsyncIterator()
                    readySignal.yield()
                    return try await iterator.next()?.revision
                }
                var readyIterator = ready.makeAsyncIterator()
                _ = await readyIterator.next()
                let written = try await store.append(
                    [EventData(type: "Churned", data: Data("{}".utf8))], to: stream, expecting: .any)
                #expect(try await subscriber.value == written.firstRevision)
                rounds.append(ContinuousClock.now - started)
                if round % 30 == 29 { mostListeners = max(mostListeners, try await listeners()) }
            }
            let first = rounds[0..<50].sorted()[25]
            let last = rounds[250..<300].sorted()[25]
            #expect(last / first <= 2, "median round: \(first) in the first 50, \(last) in the last 50")
            #expect(mostListeners <= 1, "\(mostListeners) connections listened at once for one store's commits")
            #expect(!store.notifier.hasWaiters, "a closed subscription still waits for commits")
        }
    }
}
