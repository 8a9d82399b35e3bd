import Testing

@testable import BankExample
@testable import OrdersExample

/// The demos are what a newcomer runs first (`swift run orders-example`, `swift run bank-example`).
@Suite("The example programs")
struct DemoTests {
    @Test("the order system demo runs to the end", .timeLimit(.minutes(1)))
    func ordersDemo() async throws {
        try await runOrdersDemo()
    }

    @Test("the bank demo runs to the end", .timeLimit(.minutes(1)))
    func bankDemo() async throws {
        try await runBankDemo()
    }
}
