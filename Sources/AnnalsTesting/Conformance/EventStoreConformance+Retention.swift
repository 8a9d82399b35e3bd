import Annals
import Foundation

extension EventStoreConformance {
    static var retentionChecks: [ConformanceCheck] {
        [
            ConformanceCheck(law: 8, "soft delete hides a stream and a later append continues its revisions") { store in
                let stream = try Sample.stream("soft")
                _ = try await store.append(Sample.events(3), to: stream, expecting: .any)
                try await store.delete(stream, expecting: .exact(2))
                try await require(
                    try await Sample.all(store, stream).isEmpty, "a soft-deleted stream still reads events")
                let info = try await store.streamInfo(stream)
                try await require(
                    info?.isDeleted == true && info?.visibleEventCount == 0, "stream info must say deleted")
                try await require(
                    info?.metadata.truncateBefore == StreamRevision(3), "soft delete sets truncateBefore to 3")
                try await requireError(.wrongExpectedRevision, "stream-exists on a soft-deleted stream") {
                    try await store.append(Sample.events(1), to: stream, expecting: .streamExists)
                }
                let again = try await store.append(Sample.events(2), to: stream, expecting: .noStream)
                try await require(again.firstRevision == 3, "revisions must continue at 3, not \(again.firstRevision)")
                let events = try await Sample.all(store, stream)
                try await require(events.map(\.revision.value) == [3, 4], "only the new events are visible")
                try await require(
                    try await store.streamInfo(stream)?.isDeleted == false, "an append revives the stream")
                try await require(try await Sample.log(store).count == 5, "$all shows the log as committed")
            },
            ConformanceCheck(law: 8, "a tombstone makes every later append and read fail") { store in
                let stream = try Sample.stream("tomb")
                _ = try await store.append(Sample.events(2), to: stream, expecting: .any)
                try await requireError(.wrongExpectedRevision, "a tombstone with a wrong expectation") {
                    try await store.tombstone(stream, expecting: .exact(0))
                }
                try await store.tombstone(stream, expecting: .exact(1))
                for expectation in [ExpectedRevision.any, .noStream, .exact(1), .streamExists] {
                    try await requireError(.streamDeleted, "an append expecting \(expectation) to a tombstoned stream")
                    {
                        try await store.append(Sample.events(1), to: stream, expecting: expectation)
                    }
                }
                try await requireError(.streamDeleted, "a read of a tombstoned stream") {
                    try await Sample.all(store, stream)
                }
                try await requireError(.streamDeleted, "deleting a tombstoned stream") {
                    try await store.delete(stream, expecting: .any)
                }
                try await require(
                    try await store.streamInfo(stream)?.isTombstoned == true, "stream info must say tombstoned")
                let fresh = try Sample.stream("tomb-fresh")
                try await store.tombstone(fresh, expecting: .noStream)
                try await requireError(.streamDeleted, "an append to a stream tombstoned before it had events") {
                    try await store.append(Sample.events(1), to: fresh, expecting: .any)
                }
            },
            ConformanceCheck(law: 8, "deleting with a wrong expectation fails and changes nothing") { store in
                let stream = try Sample.stream("delete-expect")
                _ = try await store.append(Sample.events(2), to: stream, expecting: .any)
                let error = try await requireError(.wrongExpectedRevision, "delete expecting revision 0") {
                    try await store.delete(stream, expecting: .exact(0))
                }
                try await require(error.actualRevision == 1, "the delete error must report revision 1")
                try await require(try await Sample.all(store, stream).count == 2, "a failed delete hid events")
                try await store.delete(try Sample.stream("delete-missing"), expecting: .any)
            },
            ConformanceCheck(law: 8, "truncateBefore hides earlier events from stream reads") { store in
                let stream = try Sample.stream("truncate")
                _ = try await store.append(Sample.events(10), to: stream, expecting: .any)
                try await store.setMetadata(StreamMetadata(truncateBefore: 6), for: stream)
                let events = try await Sample.all(store, stream)
                try await require(events.map(\.revision.value) == [6, 7, 8, 9], "truncateBefore 6 must leave 6...9")
                let backwards = try await store.read(stream, from: nil, direction: .backwards, limit: 100)
                try await require(
                    backwards.map(\.revision.value) == [9, 8, 7, 6], "backwards reads honour truncateBefore")
                let fromThree = try await store.read(stream, from: 3, direction: .forwards, limit: 2)
                try await require(
                    fromThree.map(\.revision.value) == [6, 7], "a read from a hidden revision starts at 6")
                try await require(try await store.streamInfo(stream)?.visibleEventCount == 4, "stream info counts 4")
                _ = try await store.append(Sample.events(1), to: stream, expecting: .exact(9))
            },
            ConformanceCheck(law: 8, "maxCount keeps only the newest events visible") { store in
                let stream = try Sample.stream("max-count")
                _ = try await store.append(Sample.events(10), to: stream, expecting: .any)
                try await store.setMetadata(StreamMetadata(maxCount: 3), for: stream)
                try await require(
                    try await Sample.all(store, stream).map(\.revision.value) == [7, 8, 9], "maxCount 3 leaves 7...9")
                _ = try await store.append(Sample.events(2), to: stream, expecting: .exact(9))
                try await require(
                    try await Sample.all(store, stream).map(\.revision.value) == [9, 10, 11], "the window moves")
                try await store.setMetadata(StreamMetadata(), for: stream)
                try await require(
                    try await Sample.all(store, stream).count == 12, "clearing maxCount shows every event again")
            },
            ConformanceCheck(law: 8, "maxAge hides events older than it") { store in
                let stream = try Sample.stream("max-age")
                _ = try await store.append(Sample.events(3), to: stream, expecting: .any)
                try await store.setMetadata(StreamMetadata(maxAge: 3_600), for: stream)
                try await require(
                    try await Sample.all(store, stream).count == 3, "events an hour old are still visible")
                // Age is measured in whole time: wait until the events are measurably older than zero seconds.
                try await Task.sleep(for: .milliseconds(20))
                try await store.setMetadata(StreamMetadata(maxAge: 0), for: stream)
                try await require(try await Sample.all(store, stream).isEmpty, "maxAge 0 must hide every older event")
            },
            ConformanceCheck(law: 8, "metadata round-trips with its custom part and is validated") { store in
                let stream = try Sample.stream("meta")
                try await require(try await store.streamInfo(stream) == nil, "an unknown stream has no info")
                let metadata = StreamMetadata(
                    maxCount: 50,
                    maxAge: 86_400,
                    truncateBefore: 2,
                    custom: ["owner": .string("billing"), "tags": .array([.string("a"), .integer(7)])]
                )
                try await store.setMetadata(metadata, for: stream)
                let info = try await store.streamInfo(stream)
                try await require(
                    info?.metadata == metadata, "metadata came back as \(String(describing: info?.metadata))")
                try await require(info?.lastRevision == nil, "metadata alone creates no events")
                try await requireError(.invalidArgument, "maxCount 0") {
                    try await store.setMetadata(StreamMetadata(maxCount: 0), for: stream)
                }
                try await requireError(.invalidArgument, "a negative maxAge") {
                    try await store.setMetadata(StreamMetadata(maxAge: -1), for: stream)
                }
                try await require(
                    try await store.streamInfo(stream)?.metadata == metadata, "invalid metadata was stored")
                _ = try await store.append(Sample.events(1), to: stream, expecting: .noStream)
            },
        ]
    }

    static var limitChecks: [ConformanceCheck] {
        let limits = EventStoreLimits(maxEventSize: 1_000, maxEventsPerAppend: 10, maxAppendSize: 2_000)
        return [
            ConformanceCheck(law: 9, "an event over the size limit is rejected and nothing is written", limits: limits)
            {
                store in
                let stream = try Sample.stream("limit-size")
                let error = try await requireError(.limitExceeded, "an event of 1,001 bytes") {
                    try await store.append([Sample.event(), Sample.sized(1_001)], to: stream, expecting: .any)
                }
                try await require(error.stream == stream, "the error names the stream")
                try await require(try await store.headPosition() == 0, "the rejected append wrote events")
                _ = try await store.append([Sample.sized(1_000)], to: stream, expecting: .noStream)
            },
            ConformanceCheck(law: 9, "an append over the event count limit is rejected", limits: limits) { store in
                let stream = try Sample.stream("limit-count")
                try await requireError(.limitExceeded, "11 events in one append") {
                    try await store.append(Sample.events(11), to: stream, expecting: .any)
                }
                try await require(try await store.headPosition() == 0, "the rejected append wrote events")
                _ = try await store.append(Sample.events(10), to: stream, expecting: .noStream)
            },
            ConformanceCheck(law: 9, "an append over the byte limit is rejected", limits: limits) { store in
                let stream = try Sample.stream("limit-bytes")
                try await requireError(.limitExceeded, "four events of 600 bytes") {
                    try await store.append((0..<4).map { _ in Sample.sized(600) }, to: stream, expecting: .any)
                }
                try await require(try await store.headPosition() == 0, "the rejected append wrote events")
                _ = try await store.append((0..<3).map { _ in Sample.sized(600) }, to: stream, expecting: .noStream)
            },
        ]
    }

    static var inputChecks: [ConformanceCheck] {
        [
            ConformanceCheck(law: 10, "invalid stream names are rejected") { store in
                let bad = [
                    "", String(repeating: "a", count: 257), "nul\u{0}name", "bell\u{7}", "line\nbreak", "c1\u{85}",
                    "$system", String(repeating: "é", count: 129),
                ]
                for name in bad {
                    do {
                        _ = try StreamName(name)
                        throw ConformanceFailure("the stream name \(name.debugDescription) was accepted")
                    } catch let error as EventStoreError {
                        try await require(
                            error.code == .invalidStreamName, "\(name.debugDescription) failed with \(error.code)")
                    }
                }
                _ = try StreamName(String(repeating: "a", count: 256))
                _ = try StreamName(String(repeating: "é", count: 128))
                let system = try StreamName(allowingSystemName: "$settings")
                try await requireError(.invalidStreamName, "an append to a system stream") {
                    try await store.append(Sample.events(1), to: system, expecting: .any)
                }
                let longest = try StreamName(String(repeating: "z", count: 256))
                _ = try await store.append(Sample.events(1), to: longest, expecting: .noStream)
                try await require(try await Sample.all(store, longest).count == 1, "a 256-byte name must work")
            },
            ConformanceCheck(law: 10, "invalid event types and empty appends are rejected") { store in
                let stream = try Sample.stream("types")
                for type in ["", String(repeating: "t", count: 257), "nul\u{0}", "tab\t"] {
                    try await requireError(.invalidEvent, "event type \(type.debugDescription)") {
                        try await store.append([Sample.event(type)], to: stream, expecting: .any)
                    }
                }
                try await requireError(.invalidEvent, "an empty append") {
                    try await store.append([], to: stream, expecting: .any)
                }
                try await require(try await store.headPosition() == 0, "a rejected append wrote events")
                _ = try await store.append(
                    [Sample.event(String(repeating: "t", count: 256))], to: stream, expecting: .any)
            },
            ConformanceCheck(law: 10, "stream names are compared byte for byte") { store in
                let composed = try StreamName("caf\u{E9}")
                let decomposed = try StreamName("cafe\u{301}")
                try await require(composed != decomposed, "names with different bytes must differ")
                _ = try await store.append(Sample.events(1), to: composed, expecting: .noStream)
                _ = try await store.append(Sample.events(2), to: decomposed, expecting: .noStream)
                try await require(try await Sample.all(store, composed).count == 1, "the composed name holds 1 event")
                try await require(
                    try await Sample.all(store, decomposed).count == 2, "the decomposed name holds 2 events")
            },
            ConformanceCheck(law: 10, "bad read arguments are rejected and reads past the end are empty") { store in
                let stream = try Sample.stream("bounds")
                _ = try await store.append(Sample.events(5), to: stream, expecting: .any)
                try await requireError(.invalidArgument, "a negative stream read limit") {
                    try await store.read(stream, from: nil, direction: .forwards, limit: -1)
                }
                try await requireError(.invalidArgument, "a negative $all read limit") {
                    try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: -1)
                }
                try await requireError(.invalidArgument, "a negative list limit") {
                    try await store.listStreams(after: nil, limit: -1)
                }
                try await require(
                    try await store.read(stream, from: 5, direction: .forwards, limit: 10).isEmpty, "read past the end")
                try await require(
                    try await store.read(stream, from: StreamRevision(UInt64.max), direction: .forwards, limit: 10)
                        .isEmpty, "read at the end of the range")
                try await require(
                    try await store.read(stream, from: nil, direction: .forwards, limit: 0).isEmpty, "limit 0")
                try await require(
                    try await store.readAll(from: 5, direction: .forwards, filter: .all, limit: 10).isEmpty,
                    "$all past the end")
                try await require(
                    try await store.readAll(from: Position(UInt64.max), direction: .forwards, filter: .all, limit: 10)
                        .isEmpty, "$all at the end of the range")
                let backwards = try await store.read(
                    stream, from: StreamRevision(UInt64.max), direction: .backwards, limit: 2)
                try await require(
                    backwards.map(\.revision.value) == [4, 3], "backwards from beyond the end starts at the last event")
                let allBackwards = try await store.readAll(
                    from: Position(UInt64.max), direction: .backwards, filter: .all, limit: 2)
                try await require(allBackwards.map(\.position.value) == [4, 3], "$all backwards from beyond the end")
                try await require(
                    try await Sample.all(store, try Sample.stream("never-written")).isEmpty,
                    "a missing stream reads empty")
            },
        ]
    }
}
