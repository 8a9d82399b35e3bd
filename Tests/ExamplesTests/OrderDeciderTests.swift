import Foundation
import Testing

@testable import OrdersExample

/// Given past events, when a command, then new events or a rejection: every rule of an order.
@Suite("The order decider")
struct OrderDeciderTests {
    let decider = OrderDecider()
    let placedAt = Date(timeIntervalSince1970: 1_700_000_000)

    // MARK: Events to build histories from

    var placed: OrderEvent {
        .placed(OrderPlaced(orderID: "1", customer: "Ada", currency: "EUR", placedAt: placedAt))
    }

    func added(_ sku: String = "BOOK-42", quantity: Int = 2, unitPrice: Int = 1_250) -> OrderEvent {
        .itemAdded(OrderItemAdded(orderID: "1", sku: sku, quantity: quantity, unitPrice: unitPrice))
    }

    var confirmed: OrderEvent { .confirmed(OrderConfirmed(orderID: "1")) }
    var shipped: OrderEvent { .shipped(OrderShipped(orderID: "1")) }
    var cancelled: OrderEvent { .cancelled(OrderCancelled(orderID: "1", reason: "changed my mind")) }

    /// When `command`, given `history`: the events the decider decides.
    func decide(_ command: OrderCommand, given history: [OrderEvent]) throws(OrderRejection) -> [OrderEvent] {
        try decider.decide(command, state: decider.fold(history))
    }

    // MARK: Placing

    @Test("placing an order records OrderPlaced with the time the command brought")
    func placing() throws {
        let events = try decide(.place(orderID: "1", customer: "Ada", currency: "EUR", at: placedAt), given: [])
        #expect(events == [placed])
    }

    @Test("placing an order twice is refused as alreadyPlaced")
    func placingTwice() {
        #expect(throws: OrderRejection.alreadyPlaced) {
            try decide(.place(orderID: "1", customer: "Ada", currency: "EUR", at: placedAt), given: [placed])
        }
    }

    @Test(
        "every command but place needs a placed order: orderNotFound",
        arguments: [
            OrderCommand.addItem(sku: "BOOK-42", quantity: 1, unitPrice: 100),
            .removeItem(sku: "BOOK-42"),
            .confirm,
            .ship,
            .cancel(reason: "never mind"),
        ]
    )
    func needsAnOrder(command: OrderCommand) {
        #expect(throws: OrderRejection.orderNotFound) {
            try decide(command, given: [])
        }
    }

    // MARK: Editing

    @Test("adding an item records its quantity and unit price in cents")
    func addingAnItem() throws {
        let events = try decide(.addItem(sku: "BOOK-42", quantity: 2, unitPrice: 1_250), given: [placed])
        #expect(events == [added("BOOK-42", quantity: 2, unitPrice: 1_250)])
    }

    @Test("a quantity must be at least 1 and at most the maximum: invalidQuantity", arguments: [0, -1, 10_001])
    func invalidQuantity(quantity: Int) {
        #expect(throws: OrderRejection.invalidQuantity(quantity)) {
            try decide(.addItem(sku: "BOOK-42", quantity: quantity, unitPrice: 1_250), given: [placed])
        }
    }

    @Test("a unit price must not be negative: invalidUnitPrice")
    func invalidUnitPrice() {
        #expect(throws: OrderRejection.invalidUnitPrice(-1)) {
            try decide(.addItem(sku: "BOOK-42", quantity: 1, unitPrice: -1), given: [placed])
        }
    }

    @Test("adding an article again raises its quantity, at the same unit price")
    func addingAgain() throws {
        let events = try decide(.addItem(sku: "BOOK-42", quantity: 3, unitPrice: 1_250), given: [placed, added()])
        #expect(events == [added("BOOK-42", quantity: 3, unitPrice: 1_250)])
        let state = decider.fold([placed, added()] + events)
        #expect(state.lines["BOOK-42"] == OrderLine(quantity: 5, unitPrice: 1_250))
        #expect(state.itemCount == 5)
        #expect(state.total == 6_250)
    }

    @Test("adding an article again at another unit price is refused: unitPriceMismatch")
    func addingAgainAtAnotherPrice() {
        #expect(throws: OrderRejection.unitPriceMismatch(sku: "BOOK-42", unitPrice: 1_250)) {
            try decide(.addItem(sku: "BOOK-42", quantity: 1, unitPrice: 999), given: [placed, added()])
        }
    }

    @Test("removing an item records the quantity and price it takes out")
    func removingAnItem() throws {
        let history = [placed, added(), added("MUG-7", quantity: 1, unitPrice: 899)]
        let events = try decide(.removeItem(sku: "MUG-7"), given: history)
        #expect(events == [.itemRemoved(OrderItemRemoved(orderID: "1", sku: "MUG-7", quantity: 1, unitPrice: 899))])
        let state = decider.fold(history + events)
        #expect(state.itemCount == 2)
        #expect(state.total == 2_500)
    }

    @Test("removing an article the order does not hold is refused: itemNotInOrder")
    func removingAMissingItem() {
        #expect(throws: OrderRejection.itemNotInOrder(sku: "MUG-7")) {
            try decide(.removeItem(sku: "MUG-7"), given: [placed, added()])
        }
    }

    @Test("items cannot change after confirmation: editingAfterConfirmation")
    func editingAfterConfirmation() {
        #expect(throws: OrderRejection.editingAfterConfirmation) {
            try decide(.addItem(sku: "MUG-7", quantity: 1, unitPrice: 899), given: [placed, added(), confirmed])
        }
        #expect(throws: OrderRejection.editingAfterConfirmation) {
            try decide(.removeItem(sku: "BOOK-42"), given: [placed, added(), confirmed])
        }
        #expect(throws: OrderRejection.editingAfterConfirmation) {
            try decide(.removeItem(sku: "BOOK-42"), given: [placed, added(), confirmed, shipped])
        }
    }

    @Test("a cancelled order cannot be edited: orderCancelled")
    func editingACancelledOrder() {
        #expect(throws: OrderRejection.orderCancelled) {
            try decide(.addItem(sku: "MUG-7", quantity: 1, unitPrice: 899), given: [placed, added(), cancelled])
        }
    }

    // MARK: Confirming

    @Test("confirming an order with items records OrderConfirmed")
    func confirming() throws {
        #expect(try decide(.confirm, given: [placed, added()]) == [confirmed])
    }

    @Test("confirming an order without items is refused: emptyOrder")
    func confirmingAnEmptyOrder() {
        #expect(throws: OrderRejection.emptyOrder) {
            try decide(.confirm, given: [placed])
        }
        let removed = OrderEvent.itemRemoved(
            OrderItemRemoved(orderID: "1", sku: "BOOK-42", quantity: 2, unitPrice: 1_250)
        )
        #expect(throws: OrderRejection.emptyOrder) {
            try decide(.confirm, given: [placed, added(), removed])
        }
    }

    @Test("confirming a confirmed order changes nothing")
    func confirmingTwice() throws {
        #expect(try decide(.confirm, given: [placed, added(), confirmed]).isEmpty)
    }

    @Test("confirming a cancelled order is refused: orderCancelled")
    func confirmingACancelledOrder() {
        #expect(throws: OrderRejection.orderCancelled) {
            try decide(.confirm, given: [placed, added(), cancelled])
        }
    }

    // MARK: Shipping

    @Test("shipping a confirmed order records OrderShipped")
    func shipping() throws {
        #expect(try decide(.ship, given: [placed, added(), confirmed]) == [shipped])
    }

    @Test("shipping before confirmation is refused: notConfirmed")
    func shippingUnconfirmed() {
        #expect(throws: OrderRejection.notConfirmed) {
            try decide(.ship, given: [placed, added()])
        }
    }

    @Test("shipping a cancelled order is refused: orderCancelled")
    func shippingACancelledOrder() {
        #expect(throws: OrderRejection.orderCancelled) {
            try decide(.ship, given: [placed, added(), confirmed, cancelled])
        }
    }

    @Test("shipping twice is refused: alreadyShipped")
    func shippingTwice() {
        #expect(throws: OrderRejection.alreadyShipped) {
            try decide(.ship, given: [placed, added(), confirmed, shipped])
        }
    }

    // MARK: Cancelling

    @Test("an order can be cancelled before and after confirmation")
    func cancelling() throws {
        let cancel = OrderCommand.cancel(reason: "changed my mind")
        #expect(try decide(cancel, given: [placed]) == [cancelled])
        #expect(try decide(cancel, given: [placed, added(), confirmed]) == [cancelled])
    }

    @Test("cancelling a shipped order is refused: alreadyShipped")
    func cancellingAfterShipping() {
        #expect(throws: OrderRejection.alreadyShipped) {
            try decide(.cancel(reason: "too late"), given: [placed, added(), confirmed, shipped])
        }
    }

    @Test("cancelling a cancelled order changes nothing")
    func cancellingTwice() throws {
        #expect(try decide(.cancel(reason: "again"), given: [placed, cancelled]).isEmpty)
    }

    // MARK: Evolving

    @Test("folding the events gives the order's status, lines and total")
    func folding() {
        let state = decider.fold([placed, added(), added("MUG-7", quantity: 1, unitPrice: 899), confirmed, shipped])
        #expect(state.status == .shipped)
        #expect(state.orderID == "1")
        #expect(state.customer == "Ada")
        #expect(state.currency == "EUR")
        #expect(state.itemCount == 3)
        #expect(state.total == 3_399)
    }
}
