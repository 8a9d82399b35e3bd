import Annals
import AnnalsTesting
import Testing

extension ConformanceCheck: CustomTestStringConvertible {
    public var testDescription: String { description }
}

@Suite("InMemoryEventStore conformance")
struct InMemoryConformanceTests {
    @Test("obeys", .timeLimit(.minutes(1)), arguments: EventStoreConformance.checks)
    func obeys(_ check: ConformanceCheck) async throws {
        try await check.run(InMemoryHarness())
    }

    @Test("the suite covers every law that a store can show in-process")
    func coversEveryLaw() {
        let laws = Set(EventStoreConformance.checks.map(\.law))
        #expect(laws.isSuperset(of: [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]))
        let names = EventStoreConformance.checks.map(\.description)
        #expect(Set(names).count == names.count, "check names must be unique")
    }
}
