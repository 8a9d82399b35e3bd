import Annals
import Foundation
import Testing

@testable import OrdersExample

@Suite("The order summary projection")
struct OrderSummaryProjectionTests {
    let placedAt = Date(timeIntervalSince1970: 1_700_000_000)

    /// A store with two orders: 1 confirmed and shipped (2 x 12.50 + 3 x 1.50), 2 cancelled (1 x 49.99).
    func storeWithTwoOrders() async throws -> InMemoryEventStore {
        let store = try InMemoryEventStore()
        let orders = CommandHandler(store: store, decider: OrderDecider(), codec: OrderEvent.codec)
        let first = try StreamName.order("1")
        try await orders.handle(.place(orderID: "1", customer: "Ada", currency: "EUR", at: placedAt), on: first)
        try await orders.handle(.addItem(sku: "BOOK-42", quantity: 2, unitPrice: 1_250), on: first)
        try await orders.handle(.addItem(sku: "MUG-7", quantity: 1, unitPrice: 899), on: first)
        try await orders.handle(.addItem(sku: "PEN-1", quantity: 3, unitPrice: 150), on: first)
        try await orders.handle(.removeItem(sku: "MUG-7"), on: first)
        try await orders.handle(.confirm, on: first)
        try await orders.handle(.ship, on: first)
        let second = try StreamName.order("2")
        try await orders.handle(.place(orderID: "2", customer: "Grace", currency: "GBP", at: placedAt), on: second)
        try await orders.handle(.addItem(sku: "LAMP-3", quantity: 1, unitPrice: 4_999), on: second)
        try await orders.handle(.cancel(reason: "changed her mind"), on: second)
        return store
    }

    let expected = [
        OrderSummary(orderID: "1", customer: "Ada", currency: "EUR", status: .shipped, itemCount: 5, total: 2_950),
        OrderSummary(orderID: "2", customer: "Grace", currency: "GBP", status: .cancelled, itemCount: 1, total: 4_999),
    ]

    @Test("catching up summarises every order: status, item count and total", .timeLimit(.minutes(1)))
    func summarises() async throws {
        let store = try await storeWithTwoOrders()
        let projection = OrderSummaryProjection()
        let runner = ProjectionRunner(projection: projection, store: store, checkpoints: InMemoryCheckpointStore())
        #expect(try await runner.catchUp() == 10)
        #expect(projection.summaries == expected)
        #expect(projection.summary(of: "2")?.status == .cancelled)
        #expect(projection.summary(of: "3") == nil)
    }

    @Test("it follows only the order category", .timeLimit(.minutes(1)))
    func followsOrdersOnly() async throws {
        let store = try await storeWithTwoOrders()
        let unrelated = EventData(type: "SomethingElse", data: Data("{}".utf8))
        _ = try await store.append([unrelated], to: StreamName("invoice-1"), expecting: .noStream)
        let projection = OrderSummaryProjection()
        let runner = ProjectionRunner(projection: projection, store: store, checkpoints: InMemoryCheckpointStore())
        #expect(try await runner.catchUp() == 10)
        #expect(projection.summaries == expected)
    }

    @Test("rebuilding clears the summaries and replays them the same", .timeLimit(.minutes(1)))
    func rebuilds() async throws {
        let store = try await storeWithTwoOrders()
        let projection = OrderSummaryProjection()
        let runner = ProjectionRunner(projection: projection, store: store, checkpoints: InMemoryCheckpointStore())
        try await runner.catchUp()
        try await runner.rebuild()
        #expect(projection.summaries.isEmpty)
        #expect(try await runner.catchUp() == 10)
        #expect(projection.summaries == expected)
    }

    @Test("an event delivered twice is counted once", .timeLimit(.minutes(1)))
    func appliesOnce() async throws {
        let store = try await storeWithTwoOrders()
        let projection = OrderSummaryProjection()
        for event in try await store.readCategory(OrderDecider.streamCategory) {
            try await projection.apply(event)
            try await projection.apply(event)
        }
        #expect(projection.summaries == expected)
    }
}
