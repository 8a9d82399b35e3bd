import Annals
import Foundation

/// Runs the order system on an in-memory store and tells what happens, step by step.
///
/// Commands go through a `CommandHandler` (load, decide, append); refused commands print why; an old
/// event is read through the upcaster; a projection builds order summaries; a subscription watches the
/// `order` category, history first and then live.
func runOrdersDemo() async throws {
    let store = try InMemoryEventStore()
    let orders = CommandHandler(store: store, decider: OrderDecider(), codec: OrderEvent.codec)
    let now = Date()

    func send(_ command: OrderCommand, to stream: StreamName) async throws {
        try await narrate(command, to: stream, via: orders)
    }

    print("Annals: the order system")

    heading("1. Order 1001 is placed, edited, confirmed and shipped")
    let order1001 = try StreamName.order("1001")
    try await send(.place(orderID: "1001", customer: "Ada Lovelace", currency: "EUR", at: now), to: order1001)
    try await send(.addItem(sku: "BOOK-42", quantity: 2, unitPrice: 1_250), to: order1001)
    try await send(.addItem(sku: "MUG-7", quantity: 1, unitPrice: 899), to: order1001)
    try await send(.addItem(sku: "PEN-1", quantity: 3, unitPrice: 150), to: order1001)
    try await send(.removeItem(sku: "MUG-7"), to: order1001)
    try await send(.confirm, to: order1001)
    try await send(.addItem(sku: "MUG-7", quantity: 1, unitPrice: 899), to: order1001)
    try await send(.ship, to: order1001)
    let (shipped, revision) = try await orders.load(order1001)
    print(
        "  Loaded from its events: \(shipped.status?.rawValue ?? "unknown"), \(shipped.itemCount) items, "
            + "\(OrderMoney.format(shipped.total, shipped.currency)), last revision \(revision?.description ?? "none")."
    )
    print("  The stream \(order1001) holds:")
    for event in try await store.read(order1001) {
        print("    revision \(event.revision): \(event.type)")
    }

    heading("2. Order 1002: the rules say no")
    let order1002 = try StreamName.order("1002")
    try await send(.place(orderID: "1002", customer: "Grace Hopper", currency: "EUR", at: now), to: order1002)
    try await send(.place(orderID: "1002", customer: "Grace Hopper", currency: "EUR", at: now), to: order1002)
    try await send(.confirm, to: order1002)
    try await send(.addItem(sku: "LAMP-3", quantity: 0, unitPrice: 4_999), to: order1002)
    try await send(.addItem(sku: "LAMP-3", quantity: 1, unitPrice: 4_999), to: order1002)
    try await send(.removeItem(sku: "SOFA-1"), to: order1002)
    try await send(.ship, to: order1002)
    try await send(.cancel(reason: "the customer changed her mind"), to: order1002)
    try await send(.ship, to: order1002)

    heading("3. Order 0999 was stored by version 1 of the system, before orders had a currency")
    let order0999 = try StreamName.order("0999")
    let version1 = #"{"customer":"Charles Babbage","orderID":"0999","placedAt":"2019-03-01T09:30:00Z"}"#
    try await store.append(
        [EventData(type: OrderPlaced.typeName, data: Data(version1.utf8))],
        to: order0999,
        expecting: .noStream
    )
    print("  Stored as \(OrderPlaced.typeName) version 1: \(version1)")
    let (legacy, _) = try await orders.load(order0999)
    print("  Loaded through the upcaster: placed by \(legacy.customer), currency \(legacy.currency).")
    try await send(.addItem(sku: "GEAR-9", quantity: 12, unitPrice: 75), to: order0999)

    heading("4. A projection keeps a summary of every order")
    let summaries = OrderSummaryProjection()
    let runner = ProjectionRunner(projection: summaries, store: store, checkpoints: InMemoryCheckpointStore())
    let applied = try await runner.catchUp()
    print("  Caught up with the store: \(applied) events applied.")
    printSummaries(summaries.summaries)

    heading("5. A subscription to the category \"\(OrderDecider.streamCategory)\": history, then live")
    let stored = try await store.readCategory(OrderDecider.streamCategory).count
    let upcoming = 3
    let (caughtUp, signalCaughtUp) = AsyncStream.makeStream(of: Void.self)
    let watcher = Task {
        defer { signalCaughtUp.finish() }
        var received: [String] = []
        let subscription = store.subscribe(to: .category(OrderDecider.streamCategory), from: .beginning)
        for try await event in subscription {
            received.append("position \(event.position): \(event.type) in \(event.stream)")
            if received.count == stored { signalCaughtUp.finish() }
            if received.count == stored + upcoming { break }
        }
        return received
    }
    // Wait until the subscriber has read the history, so the next events reach it live.
    for await _ in caughtUp {}
    print("  The subscriber has read the \(stored) stored events; now order 1003 comes in.")
    let order1003 = try StreamName.order("1003")
    try await send(.place(orderID: "1003", customer: "Alan Turing", currency: "GBP", at: now), to: order1003)
    try await send(.addItem(sku: "TAPE-1", quantity: 5, unitPrice: 320), to: order1003)
    try await send(.cancel(reason: "a duplicate of another order"), to: order1003)
    let received = try await watcher.value
    print("  The subscription delivered \(received.count) events and stopped:")
    for line in received {
        print("    \(line)")
    }

    let more = try await runner.catchUp()
    print("  The projection resumed from its checkpoint: \(more) more events applied.")
    printSummaries(summaries.summaries)
}

/// Sends a command to an order and prints what came of it: the events recorded, or why it was refused.
private func narrate(
    _ command: OrderCommand,
    to stream: StreamName,
    via orders: CommandHandler<OrderDecider>
) async throws {
    print("  > \(stream): \(command)")
    do {
        let result = try await orders.handle(command, on: stream)
        if result.events.isEmpty {
            print("      nothing to record: the order is that way already")
        } else {
            print("      recorded \(result.events.map(\.description).joined(separator: ", "))")
        }
    } catch let rejection as OrderRejection {
        print("      REFUSED: \(rejection)")
    }
}

private func heading(_ title: String) {
    print("\n\(title)")
}

private func printSummaries(_ summaries: [OrderSummary]) {
    print("    " + column("order", 7) + column("customer", 17) + column("status", 11) + column("items", 7) + "total")
    for summary in summaries {
        print(
            "    " + column(summary.orderID, 7) + column(summary.customer, 17) + column(summary.status.rawValue, 11)
                + column(String(summary.itemCount), 7) + OrderMoney.format(summary.total, summary.currency)
        )
    }
}

/// `text` padded with spaces to `width` characters.
private func column(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(1, width - text.count))
}
