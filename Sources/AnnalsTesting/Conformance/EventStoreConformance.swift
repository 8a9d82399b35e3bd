import Annals

/// The conformance suite: every law of ``Annals/EventStore``, as named checks to run against any store.
///
/// ```swift
/// @Test(arguments: EventStoreConformance.checks)
/// func conformance(_ check: ConformanceCheck) async throws {
///     try await check.run(MyStoreHarness())
/// }
/// ```
public enum EventStoreConformance {
    /// Every check, in law order.
    public static var checks: [ConformanceCheck] {
        appendChecks + concurrencyChecks + orderChecks + idempotencyChecks + subscriptionChecks
            + retentionChecks + limitChecks + inputChecks + readChecks
    }

    /// The checks of one law.
    public static func checks(forLaw law: Int) -> [ConformanceCheck] {
        checks.filter { $0.law == law }
    }
}
