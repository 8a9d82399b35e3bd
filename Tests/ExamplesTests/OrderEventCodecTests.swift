import Annals
import Foundation
import Testing

@testable import OrdersExample

@Suite("The order event codec")
struct OrderEventCodecTests {
    let placedAt = Date(timeIntervalSince1970: 1_700_000_000)

    /// `OrderPlaced` as version 1 of the system stored it: no currency, no schema version in metadata.
    let version1JSON = #"{"customer":"Charles Babbage","orderID":"0999","placedAt":"2023-11-14T22:13:20Z"}"#

    @Test("an OrderPlaced stored by version 1, without a currency, decodes with EUR", .timeLimit(.minutes(1)))
    func upcastsVersion1() async throws {
        let store = try InMemoryEventStore()
        let stream = try StreamName.order("0999")
        let legacy = EventData(type: "OrderPlaced", data: Data(version1JSON.utf8))
        _ = try await store.append([legacy], to: stream, expecting: .noStream)

        let stored = try await store.read(stream)
        let recorded = try #require(stored.first)
        #expect(EventMetadata(decoding: recorded.metadata).schemaVersion == nil)
        let event = try OrderEvent.codec.decode(recorded)
        let expected = OrderPlaced(orderID: "0999", customer: "Charles Babbage", currency: "EUR", placedAt: placedAt)
        #expect(event == .placed(expected))
    }

    @Test("an order placed by version 1 loads through the command handler and takes new items", .timeLimit(.minutes(1)))
    func loadsVersion1() async throws {
        let store = try InMemoryEventStore()
        let stream = try StreamName.order("0999")
        let legacy = EventData(type: OrderPlaced.typeName, data: Data(version1JSON.utf8))
        _ = try await store.append([legacy], to: stream, expecting: .noStream)

        let orders = CommandHandler(store: store, decider: OrderDecider(), codec: OrderEvent.codec)
        let loaded = try await orders.load(stream)
        #expect(loaded.state.status == .placed)
        #expect(loaded.state.currency == "EUR")
        #expect(loaded.revision == 0)
        let result = try await orders.handle(.addItem(sku: "GEAR-9", quantity: 12, unitPrice: 75), on: stream)
        #expect(result.state.total == 900)
        #expect(result.revision == 1)
    }

    @Test("OrderPlaced is written as version 2, with its currency, and reads back the same")
    func writesVersion2() throws {
        let placed = OrderEvent.placed(
            OrderPlaced(orderID: "1", customer: "Ada", currency: "GBP", placedAt: placedAt)
        )
        let data = try OrderEvent.codec.encode(placed)
        #expect(data.type == "OrderPlaced")
        #expect(EventMetadata(decoding: data.metadata).schemaVersion == 2)
        let json = try JSONValue(parsing: data.data)
        #expect(json["currency"]?.stringValue == "GBP")
        #expect(try OrderEvent.codec.decode(type: data.type, data: data.data, metadata: data.metadata) == placed)
    }

    @Test("every order event survives a round trip through the codec")
    func roundTrips() throws {
        let events: [OrderEvent] = [
            .placed(OrderPlaced(orderID: "1", customer: "Ada", currency: "EUR", placedAt: placedAt)),
            .itemAdded(OrderItemAdded(orderID: "1", sku: "BOOK-42", quantity: 2, unitPrice: 1_250)),
            .itemRemoved(OrderItemRemoved(orderID: "1", sku: "BOOK-42", quantity: 2, unitPrice: 1_250)),
            .confirmed(OrderConfirmed(orderID: "1")),
            .shipped(OrderShipped(orderID: "1")),
            .cancelled(OrderCancelled(orderID: "1", reason: "changed my mind")),
        ]
        for event in events {
            let data = try OrderEvent.codec.encode(event)
            #expect(try OrderEvent.codec.decode(type: data.type, data: data.data, metadata: data.metadata) == event)
        }
        let types = try events.map { try OrderEvent.codec.encode($0).type }
        #expect(
            types == [
                "OrderPlaced", "OrderItemAdded", "OrderItemRemoved", "OrderConfirmed", "OrderShipped", "OrderCancelled",
            ]
        )
    }
}
