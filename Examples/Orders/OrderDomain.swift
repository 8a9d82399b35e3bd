import Annals
import Foundation

// The order system's domain: what a customer can ask of an order, what happened to it, and the rules
// that decide between the two. Everything here is pure: no store, no clock, no random ids.

// MARK: - Commands

/// What someone asks of an order. Time comes in with the command: deciders never read a clock.
enum OrderCommand: Sendable, Equatable, CustomStringConvertible {
    /// Opens a new order for a customer; amounts will be in `currency`.
    case place(orderID: String, customer: String, currency: String, at: Date)
    /// Adds `quantity` units of an article at `unitPrice` cents each.
    case addItem(sku: String, quantity: Int, unitPrice: Int)
    /// Takes an article out of the order, whatever its quantity.
    case removeItem(sku: String)
    /// Freezes the order's content; it can then be shipped.
    case confirm
    /// Hands a confirmed order to the carrier.
    case ship
    /// Calls the order off, before it ships.
    case cancel(reason: String)

    var description: String {
        switch self {
        case .place(let orderID, let customer, let currency, _):
            "place order \(orderID) for \(customer) in \(currency)"
        case .addItem(let sku, let quantity, let unitPrice):
            "add \(quantity) x \(sku) at \(OrderMoney.format(unitPrice)) each"
        case .removeItem(let sku):
            "remove \(sku)"
        case .confirm:
            "confirm"
        case .ship:
            "ship"
        case .cancel(let reason):
            "cancel (\(reason))"
        }
    }
}

// MARK: - Events

/// An order was opened. Version 2 added `currency`; version 1 events are upcast with "EUR".
struct OrderPlaced: Codable, Sendable, Equatable {
    static let typeName = "OrderPlaced"

    var orderID: String
    var customer: String
    var currency: String
    var placedAt: Date
}

/// Units of an article were added to an order.
struct OrderItemAdded: Codable, Sendable, Equatable {
    static let typeName = "OrderItemAdded"

    var orderID: String
    var sku: String
    var quantity: Int
    /// The price of one unit, in cents.
    var unitPrice: Int
}

/// An article was taken out of an order; the event says how many units and at what price, so readers
/// need not remember the lines themselves.
struct OrderItemRemoved: Codable, Sendable, Equatable {
    static let typeName = "OrderItemRemoved"

    var orderID: String
    var sku: String
    var quantity: Int
    var unitPrice: Int
}

/// An order's content was frozen.
struct OrderConfirmed: Codable, Sendable, Equatable {
    static let typeName = "OrderConfirmed"

    var orderID: String
}

/// An order left the warehouse.
struct OrderShipped: Codable, Sendable, Equatable {
    static let typeName = "OrderShipped"

    var orderID: String
}

/// An order was called off.
struct OrderCancelled: Codable, Sendable, Equatable {
    static let typeName = "OrderCancelled"

    var orderID: String
    var reason: String
}

/// Everything that can happen to an order: one case per event, one `Codable` payload per case.
enum OrderEvent: Sendable, Equatable, CustomStringConvertible {
    case placed(OrderPlaced)
    case itemAdded(OrderItemAdded)
    case itemRemoved(OrderItemRemoved)
    case confirmed(OrderConfirmed)
    case shipped(OrderShipped)
    case cancelled(OrderCancelled)

    /// Maps order events to stored events and back.
    ///
    /// `OrderPlaced` is at version 2 (it gained a currency). Orders placed by the first version of the
    /// system are stored without one; the upcaster gives them the currency they were priced in, euros,
    /// so they decode into today's `OrderPlaced`.
    static let codec = EventCodec<OrderEvent>()
        .registering(OrderPlaced.self, as: OrderPlaced.typeName, version: 2, OrderEvent.placed)
        .registering(OrderItemAdded.self, as: OrderItemAdded.typeName, OrderEvent.itemAdded)
        .registering(OrderItemRemoved.self, as: OrderItemRemoved.typeName, OrderEvent.itemRemoved)
        .registering(OrderConfirmed.self, as: OrderConfirmed.typeName, OrderEvent.confirmed)
        .registering(OrderShipped.self, as: OrderShipped.typeName, OrderEvent.shipped)
        .registering(OrderCancelled.self, as: OrderCancelled.typeName, OrderEvent.cancelled)
        .upcasting(
            Upcaster(OrderPlaced.typeName, from: 1) { event in
                if event.data["currency"] == nil { event.data["currency"] = .string("EUR") }
            }
        )

    var description: String {
        switch self {
        case .placed(let placed):
            "OrderPlaced(\(placed.orderID) for \(placed.customer), \(placed.currency))"
        case .itemAdded(let added):
            "OrderItemAdded(\(added.quantity) x \(added.sku) at \(OrderMoney.format(added.unitPrice)))"
        case .itemRemoved(let removed):
            "OrderItemRemoved(\(removed.quantity) x \(removed.sku))"
        case .confirmed:
            "OrderConfirmed"
        case .shipped:
            "OrderShipped"
        case .cancelled(let cancelled):
            "OrderCancelled(\(cancelled.reason))"
        }
    }
}

// MARK: - State

/// Where an order stands.
enum OrderStatus: String, Sendable, Equatable {
    /// Open for editing.
    case placed
    /// Content frozen, waiting to ship.
    case confirmed
    /// With the carrier; nothing more can change.
    case shipped
    /// Called off; nothing more can change.
    case cancelled
}

/// One article of an order.
struct OrderLine: Sendable, Equatable {
    var quantity: Int
    /// The price of one unit, in cents.
    var unitPrice: Int

    /// The line's amount, in cents.
    var amount: Int { quantity * unitPrice }
}

/// What the decider knows of an order, folded from its events.
struct OrderState: Sendable, Equatable {
    /// `nil` until the order is placed.
    var status: OrderStatus?
    var orderID = ""
    var customer = ""
    var currency = ""
    /// The order's lines, by SKU.
    var lines: [String: OrderLine] = [:]

    /// How many units the order holds.
    var itemCount: Int { lines.values.reduce(0) { $0 + $1.quantity } }
    /// What the order costs, in cents.
    var total: Int { lines.values.reduce(0) { $0 + $1.amount } }
}

// MARK: - Rejections

/// Why a command was refused.
enum OrderRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// The order was never placed.
    case orderNotFound
    /// `place` on an order that exists already.
    case alreadyPlaced
    /// Items added or removed after the order was confirmed.
    case editingAfterConfirmation
    /// Anything but `cancel` on a cancelled order.
    case orderCancelled
    /// `ship` before `confirm`.
    case notConfirmed
    /// `confirm` on an order without items.
    case emptyOrder
    /// `ship` or `cancel` on an order that has shipped.
    case alreadyShipped
    /// A quantity of zero, a negative one, or one above ``OrderDecider/maximumQuantity`` per line.
    case invalidQuantity(Int)
    /// A negative unit price, or one above ``OrderDecider/maximumUnitPrice``.
    case invalidUnitPrice(Int)
    /// The article is in the order at another unit price.
    case unitPriceMismatch(sku: String, unitPrice: Int)
    /// `removeItem` for an article the order does not hold.
    case itemNotInOrder(sku: String)

    var description: String {
        switch self {
        case .orderNotFound: "there is no such order"
        case .alreadyPlaced: "the order has been placed already"
        case .editingAfterConfirmation: "the order is confirmed; its items can no longer change"
        case .orderCancelled: "the order is cancelled"
        case .notConfirmed: "the order is not confirmed yet"
        case .emptyOrder: "the order has no items"
        case .alreadyShipped: "the order has shipped already"
        case .invalidQuantity(let quantity): "\(quantity) is not a valid quantity"
        case .invalidUnitPrice(let price): "\(price) cents is not a valid unit price"
        case .unitPriceMismatch(let sku, let unitPrice):
            "\(sku) is in the order at \(OrderMoney.format(unitPrice)) a unit already"
        case .itemNotInOrder(let sku): "\(sku) is not in the order"
        }
    }
}

// MARK: - Decider

/// The rules of an order.
///
/// - `place` opens an order once.
/// - `addItem` needs a quantity of at least 1 and a unit price in cents; adding an article again raises
///   its quantity (at the same unit price). `removeItem` needs the article in the order.
/// - Items change only before confirmation; `confirm` needs at least one item (confirming twice
///   changes nothing).
/// - `ship` needs a confirmed order; `cancel` works until the order ships (cancelling twice changes
///   nothing). Nothing but `cancel` works on a cancelled order.
struct OrderDecider: Decider {
    typealias State = OrderState
    typealias Command = OrderCommand
    typealias Event = OrderEvent
    typealias Rejection = OrderRejection

    /// The category of order streams: `order-<id>`.
    static let streamCategory = "order"
    /// The most units of one article an order may hold.
    static let maximumQuantity = 10_000
    /// The highest unit price, in cents (one million).
    static let maximumUnitPrice = 100_000_000

    var initialState: OrderState { OrderState() }

    func decide(_ command: OrderCommand, state: OrderState) throws(OrderRejection) -> [OrderEvent] {
        switch command {
        case .place(let orderID, let customer, let currency, let time):
            guard state.status == nil else { throw .alreadyPlaced }
            return [.placed(OrderPlaced(orderID: orderID, customer: customer, currency: currency, placedAt: time))]

        case .addItem(let sku, let quantity, let unitPrice):
            try requireEditable(state)
            guard quantity > 0, quantity <= Self.maximumQuantity else { throw .invalidQuantity(quantity) }
            guard unitPrice >= 0, unitPrice <= Self.maximumUnitPrice else { throw .invalidUnitPrice(unitPrice) }
            if let line = state.lines[sku] {
                guard line.unitPrice == unitPrice else {
                    throw .unitPriceMismatch(sku: sku, unitPrice: line.unitPrice)
                }
                guard line.quantity + quantity <= Self.maximumQuantity else {
                    throw .invalidQuantity(line.quantity + quantity)
                }
            }
            let added = OrderItemAdded(orderID: state.orderID, sku: sku, quantity: quantity, unitPrice: unitPrice)
            return [.itemAdded(added)]

        case .removeItem(let sku):
            try requireEditable(state)
            guard let line = state.lines[sku] else { throw .itemNotInOrder(sku: sku) }
            let removed = OrderItemRemoved(
                orderID: state.orderID,
                sku: sku,
                quantity: line.quantity,
                unitPrice: line.unitPrice
            )
            return [.itemRemoved(removed)]

        case .confirm:
            switch state.status {
            case nil: throw .orderNotFound
            case .cancelled: throw .orderCancelled
            case .shipped: throw .alreadyShipped
            case .confirmed: return []
            case .placed:
                guard !state.lines.isEmpty else { throw .emptyOrder }
                return [.confirmed(OrderConfirmed(orderID: state.orderID))]
            }

        case .ship:
            switch state.status {
            case nil: throw .orderNotFound
            case .cancelled: throw .orderCancelled
            case .placed: throw .notConfirmed
            case .shipped: throw .alreadyShipped
            case .confirmed: return [.shipped(OrderShipped(orderID: state.orderID))]
            }

        case .cancel(let reason):
            switch state.status {
            case nil: throw .orderNotFound
            case .shipped: throw .alreadyShipped
            case .cancelled: return []
            case .placed, .confirmed: return [.cancelled(OrderCancelled(orderID: state.orderID, reason: reason))]
            }
        }
    }

    func evolve(_ state: OrderState, _ event: OrderEvent) -> OrderState {
        var state = state
        switch event {
        case .placed(let placed):
            state.status = .placed
            state.orderID = placed.orderID
            state.customer = placed.customer
            state.currency = placed.currency
        case .itemAdded(let added):
            var line = state.lines[added.sku] ?? OrderLine(quantity: 0, unitPrice: added.unitPrice)
            line.quantity += added.quantity
            state.lines[added.sku] = line
        case .itemRemoved(let removed):
            state.lines[removed.sku] = nil
        case .confirmed:
            state.status = .confirmed
        case .shipped:
            state.status = .shipped
        case .cancelled:
            state.status = .cancelled
        }
        return state
    }

    /// Throws unless the order exists and its items may still change.
    private func requireEditable(_ state: OrderState) throws(OrderRejection) {
        switch state.status {
        case nil: throw .orderNotFound
        case .placed: return
        case .confirmed, .shipped: throw .editingAfterConfirmation
        case .cancelled: throw .orderCancelled
        }
    }
}

// MARK: - Streams and money

extension StreamName {
    /// The stream of one order: `order-<id>`.
    static func order(_ orderID: String) throws(EventStoreError) -> StreamName {
        try StreamName("\(OrderDecider.streamCategory)-\(orderID)")
    }
}

/// Formats amounts in cents for people.
enum OrderMoney {
    /// `1250` as `"12.50"`.
    static func format(_ cents: Int) -> String {
        let sign = cents < 0 ? "-" : ""
        let magnitude = cents.magnitude
        let fraction = magnitude % 100
        return "\(sign)\(magnitude / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// `1250, "EUR"` as `"12.50 EUR"`.
    static func format(_ cents: Int, _ currency: String) -> String {
        "\(format(cents)) \(currency)"
    }
}
