import Annals
import Foundation

extension EventStoreConformance {
    static var readChecks: [ConformanceCheck] {
        [
            ConformanceCheck(law: 0, "streams and $all read forwards and backwards with limits") { store in
                let stream = try Sample.stream("pages")
                let other = try Sample.stream("pages-other")
                for index in 0..<10 {
                    _ = try await store.append([Sample.event("Sampled", index)], to: stream, expecting: .any)
                    _ = try await store.append([Sample.event("Sampled", index)], to: other, expecting: .any)
                }
                let forwards = try await store.read(stream, from: 2, direction: .forwards, limit: 3)
                try await require(forwards.map(\.revision.value) == [2, 3, 4], "forwards from 2, limit 3")
                let backwards = try await store.read(stream, from: 7, direction: .backwards, limit: 3)
                try await require(backwards.map(\.revision.value) == [7, 6, 5], "backwards from 7, limit 3")
                let tail = try await store.read(stream, from: nil, direction: .backwards, limit: 2)
                try await require(tail.map(\.revision.value) == [9, 8], "backwards from the end")
                let all = try await store.readAll(from: 5, direction: .forwards, filter: .all, limit: 4)
                try await require(all.map(\.position.value) == [5, 6, 7, 8], "$all forwards from 5, limit 4")
                let allBack = try await store.readAll(from: nil, direction: .backwards, filter: .all, limit: 3)
                try await require(allBack.map(\.position.value) == [19, 18, 17], "$all backwards from the end")
                var pages: [RecordedEvent] = []
                var next: Position? = nil
                while true {
                    let page = try await store.readAll(from: next, direction: .forwards, filter: .all, limit: 7)
                    pages += page
                    guard page.count == 7, let last = page.last?.position.next else { break }
                    next = last
                }
                try await require(pages.map(\.position.value) == Array(0..<20), "paging through $all")
            },
            ConformanceCheck(law: 0, "$all filters by event type, category and stream prefix") { store in
                let names = ["order-1", "order-2", "orderline-1", "invoice-1", "order"]
                for (index, name) in names.enumerated() {
                    _ = try await store.append(
                        [Sample.event("Created", index), Sample.event(index % 2 == 0 ? "Even" : "Odd", index)],
                        to: try Sample.stream(name),
                        expecting: .any
                    )
                }
                let orders = try await store.readCategory("order")
                try await require(
                    Set(orders.map(\.stream.rawValue)) == ["order-1", "order-2", "order"],
                    "category order holds order-1, order-2 and order; got \(Set(orders.map(\.stream.rawValue)))"
                )
                try await require(orders.count == 6, "category order holds 6 events")
                let ordersBack = try await store.readCategory("order", from: nil, direction: .backwards, limit: 2)
                try await require(ordersBack.map(\.stream.rawValue) == ["order", "order"], "category backwards")
                let prefixed = try await store.readAll(filter: .streamPrefix("order"))
                try await require(prefixed.count == 8, "prefix order matches 4 streams, 8 events")
                let odd = try await store.readAll(filter: .eventTypes(["Odd"]))
                try await require(odd.map(\.stream.rawValue) == ["order-2", "invoice-1"], "type Odd")
                let both = try await store.readAll(filter: EventFilter(eventTypes: ["Even"], category: "order"))
                try await require(both.map(\.stream.rawValue) == ["order-1", "order"], "type Even in category order")
                let limited = try await store.readAll(
                    from: 3, direction: .forwards, filter: .category("order"), limit: 2)
                try await require(limited.map(\.position.value) == [3, 8], "a limited category read from position 3")
                try await require(try await store.readCategory("nothing").isEmpty, "an unknown category is empty")
            },
            ConformanceCheck(law: 0, "streams are listed in creation order and described") { store in
                let names = try (0..<7).map { try Sample.stream("listed-\($0)") }
                for name in names { _ = try await store.append(Sample.events(2), to: name, expecting: .any) }
                _ = try await store.append(Sample.events(1), to: names[0], expecting: .any)
                var listed: [StreamInfo] = []
                var after: StreamName? = nil
                while true {
                    let page = try await store.listStreams(after: after, limit: 3)
                    listed += page
                    guard page.count == 3 else { break }
                    after = page.last?.stream
                }
                try await require(listed.map(\.stream) == names, "listing returned \(listed.map(\.stream.rawValue))")
                try await require(
                    listed[0].lastRevision == 2 && listed[0].visibleEventCount == 3, "listed-0 has 3 events")
                try await require(listed[1].lastRevision == 1, "listed-1 is at revision 1")
                let count = try await store.streamCount()
                try await require(count == 7, "streamCount() is \(count), but 7 streams are listed")
                try await store.setMetadata(StreamMetadata(maxCount: 1), for: try Sample.stream("listed-by-metadata"))
                try await store.delete(names[1], expecting: .any)
                let counted = try await store.streamCount()
                try await require(
                    counted == 8, "streamCount() is \(counted) after a stream made by metadata and a deletion")
            },
        ]
    }
}
