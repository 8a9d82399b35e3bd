import Annals
import AnnalsTesting
import Testing

extension ConformanceCheck: CustomTestStringConvertible {
    public var testDescription: String { description }
}

@Suite("FileEventStore conformance, index in memory")
struct FileStoreConformanceTests {
    @Test("obeys", .timeLimit(.minutes(2)), arguments: EventStoreConformance.checks)
    func obeys(_ check: ConformanceCheck) async throws {
        try await check.run(FileStoreHarness())
    }
}

@Suite("FileEventStore conformance, index on disk")
struct DiskIndexConformanceTests {
    @Test("obeys", .timeLimit(.minutes(2)), arguments: EventStoreConformance.checks)
    func obeys(_ check: ConformanceCheck) async throws {
        try await check.run(FileStoreHarness(index: .tiny))
    }
}
