import Annals
import Foundation

extension EventStoreConformance {
    static var appendChecks: [ConformanceCheck] {
        [
            ConformanceCheck(law: 1, "a batch is seen whole by concurrent readers") { store in
                let streams = try (0..<4).map { try Sample.stream("atomic-\($0)") }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for stream in streams {
                        group.addTask {
                            for round in 0..<40 {
                                _ = try await store.append(
                                    Sample.events(5, from: round * 5), to: stream, expecting: .any)
                            }
                        }
                    }
                    group.addTask {
                        var done = false
                        while !done {
                            let log = try await Sample.log(store)
                            var perStream: [StreamName: Int] = [:]
                            for event in log { perStream[event.stream, default: 0] += 1 }
                            for (stream, count) in perStream {
                                try await require(
                                    count % 5 == 0, "$all showed \(count) events of \(stream): part of a batch")
                            }
                            for stream in streams {
                                let count = try await Sample.all(store, stream).count
                                try await require(count % 5 == 0, "\(stream) showed \(count) events: part of a batch")
                            }
                            done = log.count == 4 * 40 * 5
                            await Task.yield()
                        }
                    }
                    try await group.waitForAll()
                }
            },
            ConformanceCheck(law: 1, "a failing batch writes nothing", limits: EventStoreLimits(maxEventSize: 1_000)) {
                store in
                let stream = try Sample.stream("atomic-fail")
                var badType = Sample.events(3)
                badType[1].type = ""
                try await requireError(.invalidEvent, "a batch with an empty type") {
                    try await store.append(badType, to: stream, expecting: .any)
                }
                var tooBig = Sample.events(3)
                tooBig.append(Sample.sized(1_001))
                try await requireError(.limitExceeded, "a batch whose last event is too big") {
                    try await store.append(tooBig, to: stream, expecting: .any)
                }
                try await requireError(.wrongExpectedRevision, "a batch with a wrong expectation") {
                    try await store.append(Sample.events(3), to: stream, expecting: .streamExists)
                }
                try await require(
                    try await Sample.all(store, stream).isEmpty, "a failed batch left events in the stream")
                try await require(try await store.headPosition() == Position(0), "a failed batch moved the head")
                try await require(try await Sample.log(store).isEmpty, "a failed batch left events in $all")
            },
        ]
    }

    static var concurrencyChecks: [ConformanceCheck] {
        [
            ConformanceCheck(law: 2, "of 16 racing exact appends exactly one wins") { store in
                let stream = try Sample.stream("race-exact")
                _ = try await store.append(Sample.events(1), to: stream, expecting: .noStream)
                let outcomes = try await race(16) {
                    try await store.append(Sample.events(2), to: stream, expecting: .exact(0))
                }
                try await checkRace(outcomes, actual: StreamRevision(2))
                try await require(try await Sample.all(store, stream).count == 3, "the stream must hold 1 + 2 events")
            },
            ConformanceCheck(law: 2, "of 16 racing no-stream appends exactly one wins") { store in
                let stream = try Sample.stream("race-new")
                let outcomes = try await race(16) {
                    try await store.append(Sample.events(1), to: stream, expecting: .noStream)
                }
                try await checkRace(outcomes, actual: StreamRevision(0))
                try await require(try await Sample.all(store, stream).count == 1, "the stream must hold one event")
            },
            ConformanceCheck(law: 2, "each expectation is checked and a failure reports the actual revision") { store in
                let stream = try Sample.stream("expect")
                var error = try await requireError(.wrongExpectedRevision, "stream-exists on a missing stream") {
                    try await store.append(Sample.events(1), to: stream, expecting: .streamExists)
                }
                try await require(error.actualRevision == nil, "a missing stream has no actual revision")
                try await require(
                    error.stream == stream && error.expectedRevision == .streamExists,
                    "the error names stream and expectation")
                error = try await requireError(.wrongExpectedRevision, "exact(0) on a missing stream") {
                    try await store.append(Sample.events(1), to: stream, expecting: .exact(0))
                }
                try await require(error.actualRevision == nil, "a missing stream has no actual revision")
                let first = try await store.append(Sample.events(2), to: stream, expecting: .noStream)
                try await require(
                    first.firstRevision == 0 && first.nextExpectedRevision == 1, "first revisions are 0 and 1")
                error = try await requireError(.wrongExpectedRevision, "no-stream on an existing stream") {
                    try await store.append(Sample.events(1), to: stream, expecting: .noStream)
                }
                try await require(
                    error.actualRevision == StreamRevision(1),
                    "actual revision must be 1, got \(String(describing: error.actualRevision))")
                error = try await requireError(.wrongExpectedRevision, "exact(0) when the stream is at 1") {
                    try await store.append(Sample.events(1), to: stream, expecting: .exact(0))
                }
                try await require(error.actualRevision == StreamRevision(1), "actual revision must be 1")
                _ = try await store.append(Sample.events(1), to: stream, expecting: .exact(1))
                _ = try await store.append(Sample.events(1), to: stream, expecting: .streamExists)
                let last = try await store.append(Sample.events(1), to: stream, expecting: .any)
                try await require(last.nextExpectedRevision == 4, "after five events the revision is 4")
            },
        ]
    }

    static var orderChecks: [ConformanceCheck] {
        [
            ConformanceCheck(law: 3, "revisions are contiguous from 0 in every stream") { store in
                let stream = try Sample.stream("contiguous")
                var expected: UInt64 = 0
                for size in [1, 3, 2, 5] {
                    let result = try await store.append(Sample.events(size), to: stream, expecting: .any)
                    try await require(
                        result.firstRevision.value == expected,
                        "batch started at \(result.firstRevision), expected \(expected)")
                    expected += UInt64(size)
                    try await require(
                        result.nextExpectedRevision.value == expected - 1, "batch ended at the wrong revision")
                }
                let events = try await Sample.all(store, stream)
                try await require(events.map(\.revision.value) == Array(0..<11), "revisions are not 0..<11")
            },
            ConformanceCheck(law: 3, "positions are contiguous and in commit order under 8 writers") { store in
                let results = try await withThrowingTaskGroup(of: [(StreamName, Int, AppendResult)].self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            let stream = try Sample.stream("writer-\(writer)")
                            var results: [(StreamName, Int, AppendResult)] = []
                            for round in 0..<40 {
                                let size = 1 + (round + writer) % 3
                                let result = try await store.append(Sample.events(size), to: stream, expecting: .any)
                                results.append((stream, size, result))
                            }
                            return results
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
                let log = try await Sample.log(store)
                let total = results.reduce(0) { $0 + $1.1 }
                try await require(log.count == total, "$all holds \(log.count) events, expected \(total)")
                try await require(
                    log.map(\.position.value) == Array(0..<UInt64(total)), "positions are not contiguous from 0")
                var lastRevision: [StreamName: UInt64] = [:]
                for event in log {
                    let expected = lastRevision[event.stream].map { $0 + 1 } ?? 0
                    try await require(
                        event.revision.value == expected,
                        "in $all, \(event.stream) went to revision \(event.revision) after \(expected)")
                    lastRevision[event.stream] = event.revision.value
                }
                for (stream, size, result) in results {
                    let first = log[Int(result.firstPosition.value)]
                    try await require(
                        first.stream == stream && first.revision == result.firstRevision,
                        "an append result points elsewhere")
                    try await require(
                        result.lastPosition.value - result.firstPosition.value == UInt64(size - 1),
                        "a batch is not contiguous in $all")
                }
            },
            ConformanceCheck(law: 3, "a reader of $all never sees a position before the one below it") { store in
                let total = 8 * 60
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            let stream = try Sample.stream("gap-\(writer)")
                            for round in 0..<60 {
                                _ = try await store.append(Sample.events(1, from: round), to: stream, expecting: .any)
                            }
                        }
                    }
                    group.addTask {
                        var next: UInt64 = 0
                        while next < UInt64(total) {
                            let page = try await store.readAll(
                                from: Position(next), direction: .forwards, filter: .all, limit: 50)
                            for event in page {
                                try await require(
                                    event.position.value == next,
                                    "read position \(event.position) while \(next) was still to come")
                                next += 1
                            }
                            await Task.yield()
                        }
                    }
                    try await group.waitForAll()
                }
            },
            ConformanceCheck(law: 4, "an acknowledged append is readable at once everywhere") { store in
                let stream = try Sample.stream("ack")
                let events = Sample.events(3)
                let result = try await store.append(events, to: stream, expecting: .noStream)
                let read = try await Sample.all(store, stream)
                try await require(
                    read.map(\.id) == events.map(\.id), "the stream does not show the acknowledged events")
                for (stored, sent) in zip(read, events) {
                    try await require(stored.eventData == sent, "an event came back different from how it was appended")
                    try await require(stored.stream == stream, "an event came back in the wrong stream")
                }
                try await require(try await store.headPosition() == Position(3), "the head did not move to 3")
                let info = try await store.streamInfo(stream)
                try await require(
                    info?.lastRevision == result.nextExpectedRevision, "stream info disagrees with the append")
                try await require(
                    info?.visibleEventCount == 3,
                    "stream info counts \(String(describing: info?.visibleEventCount)) events")
                try await require(
                    try await Sample.log(store).map(\.id) == events.map(\.id), "$all does not show the events")
            },
        ]
    }

    static var idempotencyChecks: [ConformanceCheck] {
        [
            ConformanceCheck(law: 6, "an exact retry returns the original result and writes nothing") { store in
                let stream = try Sample.stream("retry")
                let batch = Sample.events(3)
                let original = try await store.append(batch, to: stream, expecting: .noStream)
                _ = try await store.append(Sample.events(2), to: stream, expecting: .any)
                for expectation in [ExpectedRevision.noStream, .exact(2), .exact(99), .any, .streamExists] {
                    let again = try await store.append(batch, to: stream, expecting: expectation)
                    try await require(
                        again == original, "a retry expecting \(expectation) returned \(again), not \(original)")
                }
                try await require(try await Sample.all(store, stream).count == 5, "a retry wrote events")
                try await require(try await store.headPosition() == Position(5), "a retry moved the head")
            },
            ConformanceCheck(law: 6, "a stored id with other content is rejected") { store in
                let stream = try Sample.stream("dup-content")
                let event = Sample.event("Sampled", 1)
                _ = try await store.append([event], to: stream, expecting: .any)
                var changed = event
                changed.data = Data("{\"value\":2}".utf8)
                let error = try await requireError(.duplicateEventID, "the same id with other data") {
                    try await store.append([changed], to: stream, expecting: .any)
                }
                try await require(error.eventID == event.id, "the error must name the reused id")
                var otherType = event
                otherType.type = "Other"
                try await requireError(.duplicateEventID, "the same id with another type") {
                    try await store.append([otherType], to: stream, expecting: .any)
                }
                try await require(try await Sample.all(store, stream).count == 1, "a rejected duplicate wrote events")
            },
            ConformanceCheck(law: 6, "a stored id in another stream is rejected") { store in
                let event = Sample.event()
                _ = try await store.append([event], to: try Sample.stream("dup-a"), expecting: .any)
                try await requireError(.duplicateEventID, "the same event in another stream") {
                    try await store.append([event], to: try Sample.stream("dup-b"), expecting: .any)
                }
                try await require(
                    try await store.streamInfo(try Sample.stream("dup-b"))?.lastRevision == nil, "dup-b got events")
            },
            ConformanceCheck(law: 6, "an id repeated within one batch is rejected") { store in
                let event = Sample.event()
                try await requireError(.duplicateEventID, "a batch with one id twice") {
                    try await store.append([event, event], to: try Sample.stream("dup-batch"), expecting: .any)
                }
                try await require(try await store.headPosition() == Position(0), "the batch wrote events")
            },
            ConformanceCheck(law: 6, "a batch mixing stored and new ids is rejected and writes nothing") { store in
                let stream = try Sample.stream("dup-mixed")
                let stored = Sample.events(2)
                _ = try await store.append(stored, to: stream, expecting: .any)
                for mixed in [[stored[0], Sample.event()], [Sample.event(), stored[1]], [stored[1], stored[0]]] {
                    try await requireError(.duplicateEventID, "a batch of stored and new ids") {
                        try await store.append(mixed, to: stream, expecting: .any)
                    }
                }
                try await require(try await Sample.all(store, stream).count == 2, "a mixed batch wrote events")
            },
        ]
    }

    /// Runs `body` `count` times at once; returns each outcome.
    static func race(
        _ count: Int,
        _ body: @escaping @Sendable () async throws -> AppendResult
    ) async throws -> [Result<AppendResult, EventStoreError>] {
        try await withThrowingTaskGroup(of: Result<AppendResult, EventStoreError>.self) { group in
            for _ in 0..<count {
                group.addTask {
                    do {
                        return .success(try await body())
                    } catch let error as EventStoreError {
                        return .failure(error)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    static func checkRace(_ outcomes: [Result<AppendResult, EventStoreError>], actual: StreamRevision) async throws {
        var wins = 0
        for outcome in outcomes {
            switch outcome {
            case .success: wins += 1
            case .failure(let error):
                try await require(
                    error.code == .wrongExpectedRevision,
                    "a loser failed with \(error.code), not wrong-expected-revision")
                try await require(
                    error.actualRevision == actual,
                    "a loser reported revision \(String(describing: error.actualRevision)), not \(actual)")
            }
        }
        try await require(wins == 1, "\(wins) of \(outcomes.count) racing appends succeeded; exactly one must")
    }
}
