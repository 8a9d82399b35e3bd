import Annals
import Foundation
import Synchronization
import Testing

/// Sums `Incremented` events per stream; signals each applied event.
final class TotalsProjection: Projection {
    let name = "totals"
    let target: SubscriptionTarget = .category("counter")
    let totals = Mutex<[String: Int]>([:])
    let applied = Mutex<[Position]>([])
    let signal: AsyncStream<Int>.Continuation
    let signals: AsyncStream<Int>

    init() {
        (signals, signal) = AsyncStream.makeStream(of: Int.self)
    }

    func apply(_ event: RecordedEvent) async throws {
        guard case .incremented(let incremented)? = try CounterEvent.codec.decodeIfKnown(event) else { return }
        totals.withLock { $0[event.stream.rawValue, default: 0] += incremented.by }
        let count = applied.withLock {
            $0.append(event.position)
            return $0.count
        }
        signal.yield(count)
    }

    func reset() async throws {
        totals.withLock { $0 = [:] }
        applied.withLock { $0 = [] }
    }
}

@Suite("ProjectionRunner")
struct ProjectionRunnerTests {
    func increment(_ store: InMemoryEventStore, _ stream: String, by amount: Int) async throws {
        _ = try await store.append(
            [try CounterEvent.codec.encode(.incremented(Incremented(by: amount)))],
            to: try StreamName(stream)
        )
    }

    @Test("catch-up applies history once and resumes from the checkpoint", .timeLimit(.minutes(1)))
    func catchUp() async throws {
        let store = try InMemoryEventStore()
        let checkpoints = InMemoryCheckpointStore()
        let projection = TotalsProjection()
        let runner = ProjectionRunner(projection: projection, store: store, checkpoints: checkpoints)
        try await increment(store, "counter-1", by: 2)
        try await increment(store, "other-1", by: 100)
        try await increment(store, "counter-2", by: 3)
        #expect(try await runner.catchUp() == 2)
        #expect(try await checkpoints.checkpoint(for: "totals") == 2)
        try await increment(store, "counter-1", by: 5)
        #expect(try await runner.catchUp() == 1)
        #expect(try await runner.catchUp() == 0)
        #expect(projection.totals.withLock { $0 } == ["counter-1": 7, "counter-2": 3])
    }

    @Test("rebuild resets the read model and replays from the first event", .timeLimit(.minutes(1)))
    func rebuild() async throws {
        let store = try InMemoryEventStore()
        let projection = TotalsProjection()
        let runner = ProjectionRunner(projection: projection, store: store, checkpoints: InMemoryCheckpointStore())
        for amount in 1...4 { try await increment(store, "counter-1", by: amount) }
        try await runner.catchUp()
        projection.totals.withLock { $0["counter-1"] = -999 }  // a corrupted read model
        try await runner.rebuild()
        #expect(try await runner.catchUp() == 4)
        #expect(projection.totals.withLock { $0 } == ["counter-1": 10])
    }

    @Test("run follows live events, saves its checkpoint, and stops when cancelled", .timeLimit(.minutes(1)))
    func runsAsService() async throws {
        let store = try InMemoryEventStore()
        let checkpoints = InMemoryCheckpointStore()
        let projection = TotalsProjection()
        let runner = ProjectionRunner(projection: projection, store: store, checkpoints: checkpoints)
        try await increment(store, "counter-1", by: 1)
        let task = Task { try await runner.run() }
        var signals = projection.signals.makeAsyncIterator()
        #expect(await signals.next() == 1)
        try await increment(store, "counter-1", by: 2)
        try await increment(store, "counter-2", by: 3)
        #expect(await signals.next() == 2)
        #expect(await signals.next() == 3)
        task.cancel()
        try await task.value
        #expect(try await checkpoints.checkpoint(for: "totals") == 2)
        // A new runner resumes after the checkpoint: nothing is applied twice.
        try await increment(store, "counter-2", by: 4)
        let resumed = TotalsProjection()
        let second = ProjectionRunner(projection: resumed, store: store, checkpoints: checkpoints)
        #expect(try await second.catchUp() == 1)
        #expect(resumed.applied.withLock { $0 } == [3])
    }
}
