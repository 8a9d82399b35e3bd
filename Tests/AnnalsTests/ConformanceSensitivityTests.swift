import Annals
import AnnalsTesting
import Testing

/// The conformance suite must catch broken stores: each store here breaks one law on purpose, and the
/// checks of that law must fail against it.
@Suite("The conformance suite catches broken stores")
struct ConformanceSensitivityTests {
    /// Checks the expectation, lets other tasks run, then appends blindly: law 2 broken.
    struct RacyHarness: EventStoreHarness {
        func withStore<R: Sendable>(limits: EventStoreLimits, _ body: @Sendable (any EventStore) async throws -> R)
            async throws -> R
        {
            let base = try InMemoryEventStore(configuration: .init(limits: limits))
            let store = Wrapped(base: base) { events, stream, expected in
                let info = try await base.streamInfo(stream)
                guard expected.isSatisfied(byLastRevision: info?.lastRevision, isSoftDeleted: info?.isDeleted ?? false)
                else {
                    throw EventStoreError.wrongExpectedRevision(
                        stream: stream, expected: expected, actual: info?.lastRevision)
                }
                for _ in 0..<3 { await Task.yield() }
                return try await base.append(events, to: stream, expecting: .any)
            }
            return try await body(store)
        }
    }

    /// Ignores the limits it is asked for: law 9 broken.
    struct LimitlessHarness: EventStoreHarness {
        func withStore<R: Sendable>(limits: EventStoreLimits, _ body: @Sendable (any EventStore) async throws -> R)
            async throws -> R
        {
            try await body(InMemoryEventStore())
        }
    }

    /// Writes a retried batch again under new ids: law 6 broken.
    struct ForgetfulHarness: EventStoreHarness {
        func withStore<R: Sendable>(limits: EventStoreLimits, _ body: @Sendable (any EventStore) async throws -> R)
            async throws -> R
        {
            let base = try InMemoryEventStore(configuration: .init(limits: limits))
            let store = Wrapped(base: base) { events, stream, expected in
                var fresh = events
                for index in fresh.indices { fresh[index].id = .init() }
                return try await base.append(fresh, to: stream, expecting: expected)
            }
            return try await body(store)
        }
    }

    @Test("a store that checks expectations apart from the write fails law 2", .timeLimit(.minutes(1)))
    func racy() async throws {
        let check = try #require(EventStoreConformance.checks.first { $0.name.hasPrefix("of 16 racing exact") })
        await #expect(throws: (any Error).self) { try await check.run(RacyHarness()) }
    }

    @Test("a store that ignores its limits fails law 9", .timeLimit(.minutes(1)))
    func limitless() async throws {
        for check in EventStoreConformance.checks(forLaw: 9) {
            await #expect(throws: (any Error).self) { try await check.run(LimitlessHarness()) }
        }
    }

    @Test("a store that forgets event ids fails law 6", .timeLimit(.minutes(1)))
    func forgetful() async throws {
        let check = try #require(EventStoreConformance.checks.first { $0.name.hasPrefix("an exact retry") })
        await #expect(throws: (any Error).self) { try await check.run(ForgetfulHarness()) }
    }
}

/// An in-memory store whose appends go through `append`.
struct Wrapped: ForwardingEventStore {
    let base: InMemoryEventStore
    let appendBody: @Sendable ([EventData], StreamName, ExpectedRevision) async throws -> AppendResult

    init(
        base: InMemoryEventStore,
        append: @escaping @Sendable ([EventData], StreamName, ExpectedRevision) async throws -> AppendResult
    ) {
        self.base = base
        self.appendBody = append
    }

    func append(_ events: [EventData], to stream: StreamName, expecting expected: ExpectedRevision) async throws
        -> AppendResult
    {
        try await appendBody(events, stream, expected)
    }
}
