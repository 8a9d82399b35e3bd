import Annals
import AnnalsTesting
import Testing

@Suite("RemoteEventStore against a real server")
struct RemoteConformanceTests {
    @Test("obeys", .timeLimit(.minutes(2)), arguments: EventStoreConformance.checks)
    func obeys(_ check: ConformanceCheck) async throws {
        try await check.run(RemoteHarness())
    }
}
