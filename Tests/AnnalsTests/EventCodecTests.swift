import Annals
import Foundation
import Testing

/// Version 2 of an event that had no currency in version 1.
struct OrderPlacedV2: Codable, Sendable, Equatable {
    var orderID: String
    var total: Int
    var currency: String
}

struct ItemAdded: Codable, Sendable, Equatable {
    var sku: String
}

enum ShopEvent: Sendable, Equatable {
    case placed(OrderPlacedV2)
    case added(ItemAdded)
    case removed(ItemAdded)  // same payload type as `added`: told apart by the case
}

@Suite("EventCodec")
struct EventCodecTests {
    let codec = EventCodec<ShopEvent>()
        .registering(OrderPlacedV2.self, as: "OrderPlaced", version: 3, ShopEvent.placed)
        .registering(ItemAdded.self, as: "ItemAdded", ShopEvent.added)
        .registering(ItemAdded.self, as: "ItemRemoved", ShopEvent.removed)
        .upcasting(Upcaster("OrderPlaced", from: 1) { $0.data["currency"] = .string("EUR") })
        .upcasting(
            Upcaster("OrderPlaced", from: 2) { event in
                // v2 called the total "amount".
                event.data["total"] = event.data["amount"]
                event.data["amount"] = nil
            }
        )
        .upcasting(
            Upcaster("LegacyItemPut", from: 1) {
                $0.type = "ItemAdded"
                $0.version = 1
            })

    func recorded(_ data: EventData) throws -> RecordedEvent {
        RecordedEvent(data, stream: try StreamName("shop-1"), revision: 0, position: 0, recordedAt: Date())
    }

    @Test("events round-trip through type names, JSON and metadata")
    func roundTrip() throws {
        let metadata = EventMetadata(
            correlationID: "c-1",
            causationID: "cause-1",
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            custom: ["tenant": .string("acme")]
        )
        for event in [
            ShopEvent.placed(OrderPlacedV2(orderID: "o-1", total: 1200, currency: "USD")),
            .added(ItemAdded(sku: "A")), .removed(ItemAdded(sku: "B")),
        ] {
            let data = try codec.encode(event, metadata: metadata)
            #expect(try codec.decode(recorded(data)) == event)
            let decoded = EventMetadata(decoding: data.metadata)
            #expect(decoded.correlationID == "c-1")
            #expect(decoded.causationID == "cause-1")
            #expect(decoded.traceparent == metadata.traceparent)
            #expect(decoded.custom["tenant"] == .string("acme"))
        }
        #expect(try codec.encode(.removed(ItemAdded(sku: "B"))).type == "ItemRemoved")
        #expect(try codec.encode(.added(ItemAdded(sku: "B"))).type == "ItemAdded")
        #expect(
            try EventMetadata(decoding: codec.encode(.placed(.init(orderID: "o", total: 1, currency: "X"))).metadata)
                .schemaVersion == 3)
    }

    @Test("old versions are upcast in a chain into today's type")
    func upcasting() throws {
        let v1 = EventData(type: "OrderPlaced", data: Data(#"{"orderID":"o-1","amount":500}"#.utf8))
        #expect(try codec.decode(recorded(v1)) == .placed(OrderPlacedV2(orderID: "o-1", total: 500, currency: "EUR")))
        let v2 = EventData(
            type: "OrderPlaced",
            data: Data(#"{"orderID":"o-2","amount":700,"currency":"GBP"}"#.utf8),
            metadata: Data(#"{"schemaVersion":2}"#.utf8)
        )
        #expect(try codec.decode(recorded(v2)) == .placed(OrderPlacedV2(orderID: "o-2", total: 700, currency: "GBP")))
        let renamed = EventData(type: "LegacyItemPut", data: Data(#"{"sku":"Z"}"#.utf8))
        #expect(try codec.decode(recorded(renamed)) == .added(ItemAdded(sku: "Z")))
    }

    @Test("unknown types, bad payloads and future versions give clear errors")
    func errors() throws {
        let unknown = EventData(type: "Mystery", data: Data("{}".utf8))
        #expect(
            throws: EventCodingError(
                .unknownEventType, eventType: "Mystery", "No payload type is registered under this name.")
        ) {
            try codec.decode(recorded(unknown))
        }
        #expect(try codec.decodeIfKnown(recorded(unknown)) == nil)
        let broken = EventData(type: "ItemAdded", data: Data(#"{"nope":1}"#.utf8))
        do {
            _ = try codec.decodeIfKnown(recorded(broken))
            Issue.record("an undecodable payload must throw")
        } catch let error as EventCodingError {
            #expect(error.code == .undecodablePayload)
            #expect(error.eventType == "ItemAdded")
        }
        let future = EventData(
            type: "ItemAdded", data: Data(#"{"sku":"A"}"#.utf8), metadata: Data(#"{"schemaVersion":9}"#.utf8))
        do {
            _ = try codec.decode(recorded(future))
            Issue.record("a future version must throw")
        } catch let error as EventCodingError {
            #expect(error.code == .unsupportedVersion)
        }
        let notJSON = EventData(type: "OrderPlaced", data: Data([0xFF, 0x00]))
        do {
            _ = try codec.decode(recorded(notJSON))
            Issue.record("a payload that is not JSON must throw")
        } catch let error as EventCodingError {
            #expect(error.code == .undecodablePayload)
        }
    }

    @Test("an event no registration recognises cannot be encoded")
    func unregistered() {
        let partial = EventCodec<ShopEvent>().registering(ItemAdded.self, as: "ItemAdded", ShopEvent.added)
        #expect(throws: EventCodingError.self) { try partial.encode(.removed(ItemAdded(sku: "A"))) }
    }

    @Test("metadata that is not a JSON object reads as empty, never as an error")
    func lenientMetadata() {
        #expect(EventMetadata(decoding: Data("[1,2]".utf8)) == EventMetadata())
        #expect(EventMetadata(decoding: Data([0xFF])) == EventMetadata())
        #expect(EventMetadata().encoded().isEmpty)
    }

    @Test("traceparent values are validated by the W3C rules")
    func traceparent() {
        #expect(EventMetadata.isValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(!EventMetadata.isValidTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"))
        #expect(!EventMetadata.isValidTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"))
        #expect(!EventMetadata.isValidTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(!EventMetadata.isValidTraceparent("garbage"))
    }

    @Test("JSON values keep 64-bit integers exact")
    func jsonIntegers() throws {
        let value = try JSONValue(parsing: Data(#"{"big":9007199254740993,"f":1.5,"list":[true,null,"s"]}"#.utf8))
        #expect(value["big"] == .integer(9_007_199_254_740_993))
        #expect(value["f"] == .number(1.5))
        #expect(try JSONValue(parsing: value.encoded()) == value)
    }
}
