import Annals

// Events: one Codable payload per event, gathered in an enum per aggregate.
struct OrderPlaced: Codable, Sendable, Equatable {
    var customer: String
}

struct ItemAdded: Codable, Sendable, Equatable {
    var sku: String
    var quantity: Int
}

struct OrderConfirmed: Codable, Sendable, Equatable {
    var itemCount: Int
}

enum OrderEvent: Sendable, Equatable {
    case placed(OrderPlaced)
    case itemAdded(ItemAdded)
    case confirmed(OrderConfirmed)
}

// The codec gives each payload a stable type name in the store.
let codec = EventCodec<OrderEvent>()
    .registering(OrderPlaced.self, as: "OrderPlaced", OrderEvent.placed)
    .registering(ItemAdded.self, as: "ItemAdded", OrderEvent.itemAdded)
    .registering(OrderConfirmed.self, as: "OrderConfirmed", OrderEvent.confirmed)

// Commands, the reasons to refuse them, and the state the rules need.
enum OrderCommand: Sendable {
    case place(customer: String)
    case addItem(sku: String, quantity: Int)
    case confirm
}

enum OrderRejection: Error {
    case alreadyPlaced
    case notPlaced
    case alreadyConfirmed
    case emptyOrder
}

struct OrderState: Sendable {
    var isPlaced = false
    var isConfirmed = false
    var itemCount = 0
}

// The decider: the rules, pure and synchronous.
struct OrderDecider: Decider {
    var initialState: OrderState { OrderState() }

    func decide(_ command: OrderCommand, state: OrderState) throws(OrderRejection) -> [OrderEvent] {
        switch command {
        case .place(let customer):
            guard !state.isPlaced else { throw .alreadyPlaced }
            return [.placed(OrderPlaced(customer: customer))]
        case .addItem(let sku, let quantity):
            guard state.isPlaced else { throw .notPlaced }
            guard !state.isConfirmed else { throw .alreadyConfirmed }
            return [.itemAdded(ItemAdded(sku: sku, quantity: quantity))]
        case .confirm:
            guard state.isPlaced else { throw .notPlaced }
            guard state.itemCount > 0 else { throw .emptyOrder }
            if state.isConfirmed { return [] }  // Confirmed already: nothing new to record.
            return [.confirmed(OrderConfirmed(itemCount: state.itemCount))]
        }
    }

    func evolve(_ state: OrderState, _ event: OrderEvent) -> OrderState {
        var state = state
        switch event {
        case .placed: state.isPlaced = true
        case .itemAdded(let item): state.itemCount += item.quantity
        case .confirmed: state.isConfirmed = true
        }
        return state
    }
}

// Handle commands: load, decide, append with the expected revision, retry on conflicts.
let store = try InMemoryEventStore()
let orders = CommandHandler(store: store, decider: OrderDecider(), codec: codec)
let order = try StreamName("order-42")

try await orders.handle(.place(customer: "Ada"), on: order)
try await orders.handle(.addItem(sku: "book", quantity: 2), on: order)
let confirmation = try await orders.handle(.confirm, on: order)
print("Confirmed \(order) with \(confirmation.state.itemCount) items.")

do {
    try await orders.handle(.addItem(sku: "pen", quantity: 1), on: order)
} catch let rejection as OrderRejection {
    print("Refused to add a pen: \(rejection)")
}

// Read the stream back and decode its events.
for event in try await store.read(order) {
    let decoded = try codec.decode(event)
    print("revision \(event.revision): \(decoded)")
}

// Subscribe: history first, then live events. This order has three events; stop after them.
var received = 0
for try await event in store.subscribe(to: .stream(order), from: .beginning) {
    print("subscription: \(event.type) at position \(event.position)")
    received += 1
    if received == 3 { break }
}
