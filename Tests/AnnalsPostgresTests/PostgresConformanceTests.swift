import Annals
import AnnalsTesting
import Testing

@Suite(
    "PostgresEventStore conformance", .enabled(if: PostgresAvailability.url != nil, "\(PostgresAvailability.reason)"))
struct PostgresConformanceTests {
    @Test("obeys", .timeLimit(.minutes(2)), arguments: EventStoreConformance.checks)
    func obeys(_ check: ConformanceCheck) async throws {
        try await check.run(PostgresHarness(url: try #require(PostgresAvailability.url)))
    }
}

@Suite("PostgreSQL availability")
struct PostgresAvailabilityTests {
    @Test("under CI a real PostgreSQL server is available, so no PostgreSQL test is skipped")
    func availableUnderCI() {
        if PostgresAvailability.isCI {
            #expect(PostgresAvailability.url != nil, "\(PostgresAvailability.reason)")
        }
    }
}
