import Annals
import AnnalsTesting
import Foundation
import Synchronization
import Testing

@Suite("CommandHandler")
struct CommandHandlerTests {
    let stream: StreamName

    init() throws { stream = try StreamName("counter-1") }

    func handler(
        _ store: any EventStore,
        configuration: CommandHandler<CounterDecider>.Configuration = .init(),
        snapshots: Snapshotting<CounterState>? = nil
    ) -> CommandHandler<CounterDecider> {
        CommandHandler(
            store: store,
            decider: CounterDecider(),
            codec: CounterEvent.codec,
            snapshotting: snapshots,
            configuration: configuration
        )
    }

    /// A store on which the first append of each of `contenders` commands waits until all of them are
    /// about to append: they all loaded the empty stream and expect no stream, so all but one conflict.
    /// Every read yields, so the retries interleave as they do on a store that does I/O (without a pause
    /// between attempts, 5 attempts let all 32 commands through in none of 30 runs).
    static func racingStore(contenders: Int) throws -> (store: InterferingStore, base: InMemoryEventStore) {
        let base = try InMemoryEventStore()
        let appends = Mutex(0)
        let ready = CommitNotifier()  // Its head: how many commands are about to append.
        var store = InterferingStore(base: base) { _ in
            let count = appends.withLock { count in
                count += 1
                return count
            }
            guard count <= contenders else { return }
            ready.publish(head: UInt64(count))
            try await ready.wait(untilHeadExceeds: UInt64(contenders - 1))
        }
        store.afterRead = { _ in await Task.yield() }
        return (store, base)
    }

    @Test("handles commands: load, decide, append with the loaded revision", .timeLimit(.minutes(1)))
    func handles() async throws {
        let store = try InMemoryEventStore()
        let handler = handler(store)
        let first = try await handler.handle(.increment(5), on: stream)
        #expect(first.state.value == 5)
        #expect(first.revision == 0)
        #expect(first.attempts == 1)
        let second = try await handler.handle(.increment(7), on: stream)
        #expect(second.state.value == 12)
        #expect(second.append?.firstRevision == 1)
        let loaded = try await handler.load(stream)
        #expect(loaded.state == CounterState(value: 12, increments: 2))
        #expect(loaded.revision == 1)
    }

    @Test("a rejection is thrown as the decider's typed error and writes nothing", .timeLimit(.minutes(1)))
    func rejection() async throws {
        let store = try InMemoryEventStore()
        let handler = handler(store)
        try await handler.handle(.increment(90), on: stream)
        await #expect(throws: CounterRejection.ceilingReached(current: 90)) {
            try await handler.handle(.increment(20), on: stream)
        }
        #expect(try await store.read(stream).count == 1)
    }

    @Test("a concurrency conflict reloads and retries, deciding on the new state", .timeLimit(.minutes(1)))
    func retriesOnConflict() async throws {
        let base = try InMemoryEventStore()
        let interfered = Mutex(false)
        let store = InterferingStore(base: base) { stream in
            // Before the handler's first append lands, another writer increments by 50.
            guard
                !interfered.withLock({
                    let was = $0
                    $0 = true
                    return was
                })
            else { return }
            let competing = try CounterEvent.codec.encode(.incremented(Incremented(by: 50)))
            _ = try await base.append([competing], to: stream, expecting: .any)
        }
        let result = try await handler(store).handle(.increment(10), on: stream)
        #expect(result.attempts == 2)
        #expect(result.state.value == 60)
        #expect(result.revision == 1)
        // And the retry decides again: with the ceiling in reach it is rejected, not blindly reapplied.
        let crowded = try InMemoryEventStore()
        let crowding = InterferingStore(base: crowded) { stream in
            guard try await crowded.read(stream).isEmpty else { return }
            _ = try await crowded.append([try CounterEvent.codec.encode(.incremented(.init(by: 95)))], to: stream)
        }
        await #expect(throws: CounterRejection.ceilingReached(current: 95)) {
            try await handler(crowding).handle(.increment(10), on: stream)
        }
    }

    @Test("retries are bounded: after maxAttempts the conflict is thrown", .timeLimit(.minutes(1)))
    func boundedRetries() async throws {
        let base = try InMemoryEventStore()
        let attempts = Mutex(0)
        let store = InterferingStore(base: base) { stream in
            attempts.withLock { $0 += 1 }
            _ = try await base.append([try CounterEvent.codec.encode(.incremented(.init(by: 1)))], to: stream)
        }
        do {
            try await handler(store, configuration: .init(maxAttempts: 3)).handle(.increment(1), on: stream)
            Issue.record("the handler must give up")
        } catch let error as EventStoreError {
            #expect(error.code == .wrongExpectedRevision)
        }
        #expect(attempts.withLock { $0 } == 3)
    }

    @Test("32 concurrent commands on one stream all succeed with the default configuration", .timeLimit(.minutes(1)))
    func concurrentCommands() async throws {
        let contenders = 32
        let (store, base) = try Self.racingStore(contenders: contenders)
        let handler = handler(store)
        let stream = self.stream
        let results = try await withThrowingTaskGroup(of: CommandResult<CounterDecider>.self) { group in
            for _ in 0..<contenders {
                group.addTask { try await handler.handle(.increment(1), on: stream) }
            }
            var results: [CommandResult<CounterDecider>] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(results.count == contenders)
        // Every command decided on all the events before its own: the values 1...32, one each, each at the
        // revision that matches it.
        #expect(results.map(\.state.value).sorted() == Array(1...contenders))
        #expect(results.allSatisfy { result in result.revision.map { Int($0.value) } == result.state.value - 1 })
        // All first appends expected no stream, so at least 31 commands conflicted and tried again. (The
        // unluckiest needed at most 9 of the 20 attempts in 200 runs on two busy cores.)
        #expect(results.map(\.attempts).reduce(0, +) >= 2 * contenders - 1)
        let events = try await base.read(stream)
        #expect(events.count == contenders)
        #expect(events.last?.revision == StreamRevision(UInt64(contenders - 1)))
    }

    @Test("with one attempt, all but one of 32 racing commands fail with the conflict", .timeLimit(.minutes(1)))
    func conflictsSurface() async throws {
        let contenders = 32
        let (store, base) = try Self.racingStore(contenders: contenders)
        let handler = handler(store, configuration: .init(maxAttempts: 1, backoff: .immediate))
        let stream = self.stream
        let (successes, conflicts) = await withTaskGroup(
            of: Result<CommandResult<CounterDecider>, any Error>.self
        ) { group in
            for _ in 0..<contenders {
                group.addTask {
                    do {
                        return .success(try await handler.handle(.increment(1), on: stream))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var successes = 0
            var conflicts = 0
            for await outcome in group {
                switch outcome {
                case .success: successes += 1
                case .failure(let error as EventStoreError) where error.code == .wrongExpectedRevision: conflicts += 1
                case .failure(let error): Issue.record("unexpected error: \(error)")
                }
            }
            return (successes, conflicts)
        }
        #expect(successes == 1)
        #expect(conflicts == contenders - 1)
        #expect(try await base.read(stream).count == 1)
    }

    @Test("retries pause as the backoff says", .timeLimit(.minutes(1)))
    func pausesBetweenAttempts() async throws {
        let base = try InMemoryEventStore()
        let store = InterferingStore(base: base) { stream in
            try await base.append(try CounterEvent.codec.encode(.incremented(.init(by: 1))), to: stream)
        }
        let backoff = Backoff(initial: .milliseconds(20), multiplier: 2, maximum: .milliseconds(30), isJittered: false)
        let handler = handler(store, configuration: .init(maxAttempts: 3, backoff: backoff))
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: EventStoreError.self) { try await handler.handle(.increment(1), on: stream) }
        // A pause never ends early: 20 ms after the first conflict, 30 ms (the maximum) after the second.
        #expect(clock.now - start >= .milliseconds(50))
    }

    @Test("a command cancelled in its pause stops with CancellationError", .timeLimit(.minutes(1)))
    func cancelledDuringPause() async throws {
        let base = try InMemoryEventStore()
        let appends = Mutex(0)
        let conflicted = CommitNotifier()  // Its head: how many of the handler's appends were made to conflict.
        let store = InterferingStore(base: base) { stream in
            try await base.append(try CounterEvent.codec.encode(.incremented(.init(by: 1))), to: stream)
            let count = appends.withLock { count in
                count += 1
                return count
            }
            conflicted.publish(head: UInt64(count))
        }
        // Ten minutes: only cancellation ends this pause within the time limit.
        let backoff = Backoff(initial: .seconds(600), isJittered: false)
        let handler = handler(store, configuration: .init(maxAttempts: 3, backoff: backoff))
        let stream = self.stream
        let command = Task { try await handler.handle(.increment(1), on: stream) }
        try await conflicted.wait(untilHeadExceeds: 0)
        command.cancel()
        await #expect(throws: CancellationError.self) { try await command.value }
        #expect(appends.withLock { $0 } == 1)
    }

    @Test("a load never returns a revision newer than its state", .timeLimit(.minutes(1)))
    func loadIsConsistent() async throws {
        let base = try InMemoryEventStore()
        let interfered = Mutex(false)
        // Another writer appends just after the handler's first read found the stream empty.
        var store = InterferingStore(base: base) { _ in }
        store.afterRead = { stream in
            let first = interfered.withLock { done in
                defer { done = true }
                return !done
            }
            guard first else { return }
            try await base.append(try CounterEvent.codec.encode(.incremented(.init(by: 50))), to: stream)
        }
        let loaded = try await handler(store).load(stream)
        #expect(loaded.state.value == 50)
        #expect(loaded.revision == 0)
    }

    @Test("correlation, causation and trace context flow into event metadata", .timeLimit(.minutes(1)))
    func propagatesMetadata() async throws {
        let store = try InMemoryEventStore()
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        try await handler(store).handle(
            .increment(1),
            on: stream,
            metadata: CommandMetadata(correlationID: "corr-9", causationID: "cmd-3", traceparent: traceparent)
        )
        let metadata = EventMetadata(decoding: try #require(try await store.read(stream).first).metadata)
        #expect(metadata.correlationID == "corr-9")
        #expect(metadata.causationID == "cmd-3")
        #expect(metadata.traceparent == traceparent)
    }

    @Test("the same command id appends its events once", .timeLimit(.minutes(1)))
    func idempotentCommands() async throws {
        let store = try InMemoryEventStore()
        let handler = handler(store)
        let command = CommandMetadata(commandID: UUID())
        let first = try await handler.handle(.increment(3), on: stream, metadata: command)
        let again = try await handler.handle(.increment(3), on: stream, metadata: command)
        #expect(first.append == again.append)
        #expect(again.events.isEmpty)
        #expect(again.state.value == 3)
        #expect(try await store.read(stream).count == 1)
    }

    @Test("an event's derived command metadata is the same each time it is processed")
    func derivedMetadata() throws {
        let event = RecordedEvent(
            EventData(type: "T", data: Data("{}".utf8), metadata: Data(#"{"correlationId":"root"}"#.utf8)),
            stream: try StreamName("x-1"),
            revision: 0,
            position: 0,
            recordedAt: Date()
        )
        #expect(CommandMetadata(causedBy: event, index: 0) == CommandMetadata(causedBy: event, index: 0))
        #expect(
            CommandMetadata(causedBy: event, index: 0).commandID != CommandMetadata(causedBy: event, index: 1).commandID
        )
        #expect(CommandMetadata(causedBy: event).correlationID == "root")
        #expect(CommandMetadata(causedBy: event).causationID == event.id.uuidString)
    }

    @Test("snapshots are taken every N events and used when loading", .timeLimit(.minutes(1)))
    func snapshots() async throws {
        let store = try InMemoryEventStore()
        let snapshots = InMemorySnapshotStore()
        let handler = handler(store, snapshots: Snapshotting(store: snapshots, every: 2))
        for _ in 0..<5 { try await handler.handle(.increment(1), on: stream) }
        let snapshot = try #require(try await snapshots.load(stream))
        #expect(snapshot.revision == 3)
        #expect(
            try JSONDecoder().decode(CounterState.self, from: snapshot.state) == CounterState(value: 4, increments: 4))
        // Prove the snapshot is used: plant one whose state differs from the events.
        let planted = CounterState(value: 40, increments: 99)
        try await snapshots.save(
            Snapshot(stream: stream, revision: 4, schemaVersion: 1, state: try JSONEncoder().encode(planted)))
        #expect(try await handler.load(stream).state == planted)
    }

    @Test("stale snapshots are ignored: other schema version, beyond the stream, undecodable", .timeLimit(.minutes(1)))
    func staleSnapshots() async throws {
        let store = try InMemoryEventStore()
        let snapshots = InMemorySnapshotStore()
        let handler = handler(store, snapshots: Snapshotting(store: snapshots, every: 1000, schemaVersion: 2))
        for _ in 0..<3 { try await handler.handle(.increment(2), on: stream) }
        let expected = CounterState(value: 6, increments: 3)
        let bogus = try JSONEncoder().encode(CounterState(value: -1, increments: -1))
        try await snapshots.save(Snapshot(stream: stream, revision: 2, schemaVersion: 1, state: bogus))
        #expect(try await handler.load(stream).state == expected)
        try await snapshots.save(Snapshot(stream: stream, revision: 50, schemaVersion: 2, state: bogus))
        #expect(try await handler.load(stream).state == expected)
        let other = try StreamName("counter-2")
        try await handler.handle(.increment(1), on: other)
        try await snapshots.save(Snapshot(stream: other, revision: 0, schemaVersion: 2, state: Data("junk".utf8)))
        #expect(try await handler.load(other).state.value == 1)
    }

    @Test("a soft-deleted stream continues from its last revision", .timeLimit(.minutes(1)))
    func afterSoftDelete() async throws {
        let store = try InMemoryEventStore()
        let handler = handler(store)
        try await handler.handle(.increment(4), on: stream)
        try await store.delete(stream)
        let result = try await handler.handle(.increment(1), on: stream)
        #expect(result.revision == 1)
        #expect(result.state.value == 1)
    }

    @Test("the decider spec helper checks given, when, then")
    func deciderSpec() throws {
        let spec = DeciderSpec(CounterDecider(ceiling: 10))
        try spec.when(.increment(3)).then([.incremented(Incremented(by: 3))])
        try spec.given([.incremented(Incremented(by: 9))]).when(.increment(2)).thenRejects(.ceilingReached(current: 9))
        try spec.when(.reset("x")).thenRejects(.nothingToReset)
        #expect(throws: DeciderSpecFailure.self) {
            try spec.when(.increment(1)).then([.incremented(Incremented(by: 2))])
        }
        #expect(throws: DeciderSpecFailure.self) { try spec.when(.increment(1)).thenNothingHappens() }
    }
}
