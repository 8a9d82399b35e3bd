import Annals
import AnnalsTesting
import Foundation
import Synchronization
import Testing

@Suite("CommandHandler")
struct CommandHandlerTests {
    let stream: StreamName

    init() throws { stream = try StreamName("counter-1") }

    func handler(_ store: any EventStore, maxAttempts: Int = 5, snapshots: Snapshotting<CounterState>? = nil)
        -> CommandHandler<CounterDecider>
    {
        CommandHandler(
            store: store,
            decider: CounterDecider(),
            codec: CounterEvent.codec,
            snapshotting: snapshots,
            configuration: .init(maxAttempts: maxAttempts)
        )
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
            try await handler(store, maxAttempts: 3).handle(.increment(1), on: stream)
            Issue.record("the handler must give up")
        } catch let error as EventStoreError {
            #expect(error.code == .wrongExpectedRevision)
        }
        #expect(attempts.withLock { $0 } == 3)
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
