import Annals
import Foundation

extension EventStoreConformance {
    static var subscriptionChecks: [ConformanceCheck] {
        [
            ConformanceCheck(law: 7, "a $all subscription delivers history then live events in order") { store in
                let stream = try Sample.stream("sub-all")
                let history = Sample.events(10)
                _ = try await store.append(history, to: stream, expecting: .any)
                var iterator = store.subscribe(to: .all, from: .beginning).makeAsyncIterator()
                let first = try await Sample.take(10, from: &iterator)
                try await require(first.map(\.id) == history.map(\.id), "history came back wrong")
                let live = Sample.events(10, from: 10)
                for event in live { _ = try await store.append([event], to: stream, expecting: .any) }
                let second = try await Sample.take(10, from: &iterator)
                try await require(second.map(\.id) == live.map(\.id), "live events came back wrong")
                try await require((first + second).map(\.position.value) == Array(0..<20), "positions are not 0..<20")
            },
            ConformanceCheck(law: 7, "catch-up hands over to live with no gap or duplicate while 8 writers append") {
                store in
                let seed = try Sample.stream("handover-seed")
                _ = try await store.append(Sample.events(50), to: seed, expecting: .any)
                let perWriter = 100
                let total = 50 + 8 * perWriter
                try await withThrowingTaskGroup(of: [UInt64].self) { group in
                    // Subscribers that start before, during and after the writers, from several points.
                    for (index, start) in [
                        SubscriptionStart.beginning, .afterPosition(24), .beginning, .afterPosition(49),
                    ]
                    .enumerated() {
                        group.addTask {
                            for _ in 0..<(index * 20) { await Task.yield() }
                            var received: [UInt64] = []
                            let expected: Int
                            if case .afterPosition(let position) = start {
                                expected = total - Int(position.value) - 1
                            } else {
                                expected = total
                            }
                            for try await event in store.subscribe(to: .all, from: start) {
                                received.append(event.position.value)
                                if received.count == expected { break }
                            }
                            return received
                        }
                    }
                    for writer in 0..<8 {
                        group.addTask {
                            let stream = try Sample.stream("handover-\(writer)")
                            for round in 0..<perWriter {
                                _ = try await store.append(Sample.events(1, from: round), to: stream, expecting: .any)
                            }
                            return []
                        }
                    }
                    for try await received in group where !received.isEmpty {
                        let first = received[0]
                        try await require(
                            received == Array(first..<(first + UInt64(received.count))),
                            "a subscriber saw a gap, a duplicate or disorder"
                        )
                        try await require(
                            received.last == UInt64(total - 1), "a subscriber stopped at \(received.last ?? 0)")
                    }
                }
            },
            ConformanceCheck(law: 7, "a stream subscription starts after a revision and follows live") { store in
                let stream = try Sample.stream("sub-stream")
                let other = try Sample.stream("sub-other")
                _ = try await store.append(Sample.events(5), to: stream, expecting: .any)
                _ = try await store.append(Sample.events(3), to: other, expecting: .any)
                var iterator = store.subscribe(to: .stream(stream), from: .afterRevision(2)).makeAsyncIterator()
                let history = try await Sample.take(2, from: &iterator)
                try await require(history.map(\.revision.value) == [3, 4], "history after revision 2 must be 3, 4")
                _ = try await store.append(Sample.events(2), to: other, expecting: .any)
                _ = try await store.append(Sample.events(2, from: 5), to: stream, expecting: .any)
                let live = try await Sample.take(2, from: &iterator)
                try await require(live.map(\.revision.value) == [5, 6], "live events must be revisions 5, 6")
                try await require(live.allSatisfy { $0.stream == stream }, "another stream's events leaked in")
            },
            ConformanceCheck(law: 7, "a category subscription sees only its category, in $all order") { store in
                let first = try Sample.stream("cat-1")
                let second = try Sample.stream("cat-2")
                let other = try Sample.stream("dog-1")
                _ = try await store.append(Sample.events(2), to: first, expecting: .any)
                _ = try await store.append(Sample.events(2), to: other, expecting: .any)
                _ = try await store.append(Sample.events(2), to: second, expecting: .any)
                var iterator = store.subscribe(to: .category("cat"), from: .beginning).makeAsyncIterator()
                let history = try await Sample.take(4, from: &iterator)
                try await require(history.allSatisfy { $0.stream.category == "cat" }, "another category leaked in")
                _ = try await store.append(Sample.events(1), to: other, expecting: .any)
                _ = try await store.append(Sample.events(1), to: first, expecting: .any)
                let live = try await Sample.take(1, from: &iterator)
                try await require(
                    live[0].stream == first && live[0].revision == 2, "the live event is cat-1 revision 2")
                let positions = (history + live).map(\.position.value)
                try await require(positions == positions.sorted(), "category events out of $all order")
            },
            ConformanceCheck(law: 7, "a filtered $all subscription delivers only matching events") { store in
                let stream = try Sample.stream("filter-sub")
                for index in 0..<20 {
                    _ = try await store.append(
                        [Sample.event(index % 2 == 0 ? "Even" : "Odd", index)], to: stream, expecting: .any)
                }
                let odds = store.subscribe(to: .allMatching(.eventTypes(["Odd"])), from: .beginning)
                var iterator = odds.makeAsyncIterator()
                let odd = try await Sample.take(10, from: &iterator)
                try await require(odd.allSatisfy { $0.type == "Odd" }, "an Even event passed the filter")
                _ = try await store.append([Sample.event("Even")], to: stream, expecting: .any)
                _ = try await store.append([Sample.event("Odd")], to: stream, expecting: .any)
                let live = try await Sample.take(1, from: &iterator)
                try await require(live[0].type == "Odd" && live[0].revision == 21, "the live Odd event is revision 21")
            },
            ConformanceCheck(law: 7, "a subscription from the end delivers only new events") { store in
                let stream = try Sample.stream("from-end")
                _ = try await store.append(Sample.events(5), to: stream, expecting: .any)
                // The iterators are made after the append: "end" is when subscribe was called.
                let allSubscription = store.subscribe(to: .all, from: .end)
                let streamSubscription = store.subscribe(to: .stream(stream), from: .end)
                let marker = Sample.event("Marker")
                _ = try await store.append([marker], to: stream, expecting: .any)
                var all = allSubscription.makeAsyncIterator()
                var single = streamSubscription.makeAsyncIterator()
                let fromStream = try await Sample.take(1, from: &single)
                let fromAll = try await Sample.take(1, from: &all)
                try await require(fromAll[0].id == marker.id, "$all from the end delivered an old event")
                try await require(
                    fromStream[0].id == marker.id, "a stream subscription from the end delivered an old event")
            },
            ConformanceCheck(law: 7, "a paused subscriber loses nothing and does not stall writers") { store in
                let stream = try Sample.stream("paused")
                _ = try await store.append(Sample.events(1), to: stream, expecting: .any)
                var iterator = store.subscribe(to: .all, from: .beginning).makeAsyncIterator()
                _ = try await Sample.take(1, from: &iterator)
                // The subscriber now stops reading while writers append far more than any buffer.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<4 {
                        group.addTask {
                            let stream = try Sample.stream("paused-\(writer)")
                            for round in 0..<50 {
                                _ = try await store.append(
                                    Sample.events(25, from: round * 25), to: stream, expecting: .any)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let rest = try await Sample.take(5_000, from: &iterator)
                try await require(
                    rest.map(\.position.value) == Array(1...5_000), "the paused subscriber lost or reordered events")
            },
            ConformanceCheck(law: 7, "a subscription ends cleanly when its task is cancelled") { store in
                let stream = try Sample.stream("cancel")
                _ = try await store.append(Sample.events(3), to: stream, expecting: .any)
                let (started, startedContinuation) = AsyncStream.makeStream(of: Int.self)
                let consumer = Task {
                    var count = 0
                    for try await _ in store.subscribe(to: .all, from: .beginning) {
                        count += 1
                        if count == 3 { startedContinuation.yield(count) }
                    }
                    return count
                }
                var signals = started.makeAsyncIterator()
                _ = await signals.next()
                consumer.cancel()
                let delivered = try await consumer.value
                try await require(
                    delivered == 3, "the cancelled subscription delivered \(delivered) events, expected 3")
                _ = try await store.append(Sample.events(1), to: stream, expecting: .any)
            },
            ConformanceCheck(
                law: 8, "a live stream subscriber hears of a tombstone within seconds, with no other append"
            ) {
                store in
                let stream = try Sample.stream("doomed")
                _ = try await store.append(Sample.events(2), to: stream, expecting: .any)
                let (live, liveContinuation) = AsyncStream.makeStream(of: Void.self)
                let consumer = Task { () -> String in
                    var iterator = store.subscribe(to: .stream(stream), from: .beginning).makeAsyncIterator()
                    _ = try await Sample.take(2, from: &iterator)
                    liveContinuation.yield()
                    do {
                        let next = try await iterator.next()
                        return next == nil ? "the subscription ended quietly" : "an event came after the tombstone"
                    } catch let error as EventStoreError {
                        return error.code.rawValue
                    }
                }
                var signals = live.makeAsyncIterator()
                _ = await signals.next()
                try await store.tombstone(stream, expecting: .any)
                // No other append follows: the store itself must wake the subscriber.
                let heard = try await withThrowingTaskGroup(of: String?.self) { group in
                    group.addTask { try await consumer.value }
                    group.addTask {
                        try await Task.sleep(for: .seconds(5))
                        consumer.cancel()  // Awaiting its value does not end it; cancelling does.
                        return nil
                    }
                    defer { group.cancelAll() }
                    return try await group.next() ?? nil
                }
                consumer.cancel()
                try await require(
                    heard == EventStoreError.Code.streamDeleted.rawValue,
                    "the subscriber of a tombstoned stream heard \(heard ?? "nothing within 5 s")")
            },
            ConformanceCheck(law: 7, "a start that does not fit the target is rejected") { store in
                _ = try await store.append(Sample.events(1), to: try Sample.stream("mismatch"), expecting: .any)
                try await requireError(.invalidArgument, "a $all subscription after a revision") {
                    var iterator = store.subscribe(to: .all, from: .afterRevision(0)).makeAsyncIterator()
                    return try await iterator.next()
                }
                try await requireError(.invalidArgument, "a stream subscription after a position") {
                    var iterator = store.subscribe(to: .stream(try Sample.stream("mismatch")), from: .afterPosition(0))
                        .makeAsyncIterator()
                    return try await iterator.next()
                }
            },
        ]
    }
}
