import Annals
import AnnalsWire
import ArgumentParser
import Foundation

extension AnnalsCommand {
    /// `annals subscribe`: follows a stream, a category or `$all` live.
    struct Subscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a stream's, a category's or $all's events, then follow new ones until interrupted.",
            discussion: """
                On a data directory (--data, the default) it opens the store itself and holds the directory's \
                lock until it is interrupted or --count is reached: meanwhile no other process can open the \
                directory (annals serve cannot start on it), so nothing new arrives and it only shows what is \
                there. To follow a directory a server has open, subscribe through the server: \
                --server http://127.0.0.1:2113 --token T.
                """)

        @OptionGroup var store: StoreOptions

        @Argument(help: "The stream to follow, or $all.")
        var stream: String = "$all"

        @Option(name: .long, help: "Follow the streams of this category instead.")
        var category: String?

        @Option(name: .long, help: "start (default), end, or a position (revision, for a stream) to start after.")
        var from: String = "start"

        @Option(name: .long, help: "Stop after this many events.")
        var count: Int?

        @Flag(name: .long, help: "Print one JSON object per line (NDJSON).")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let target: SubscriptionTarget
                if let category {
                    target = .category(category)
                } else if stream == "$all" {
                    target = .all
                } else {
                    target = .stream(try StreamName(stream))
                }
                let start: SubscriptionStart
                switch from {
                case "start": start = .beginning
                case "end": start = .end
                default:
                    guard let after = UInt64(from), after <= UInt64(Int64.max) else {
                        throw EventStoreError(.invalidArgument, "--from is start, end, or a number to start after.")
                    }
                    start = target.start(after: after)
                }
                let (json, count) = (json, count)
                try await store.withStore { store in
                    var seen = 0
                    for try await event in store.subscribe(to: target, from: start) {
                        print(json ? EventJSON.line(event) : EventJSON.text(event))
                        fflushStandardOutput()
                        seen += 1
                        if let count, seen >= count { return }
                    }
                }
            }
        }
    }

    /// `annals export`: the whole store as NDJSON.
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write every event, in position order, and then every stream's metadata and deletion, as NDJSON.",
            discussion: """
                Each line is an event in the HTTP API's JSON (id, stream, revision, position, type, data, \
                metadata, recordedAt), then one line per stream with metadata or a deletion: \
                {"streamState": <the stream's information as GET /streams/{stream}/metadata answers it>}. \
                `annals import` reads it back.
                """)

        @OptionGroup var store: StoreOptions

        @Option(name: .long, help: "Write to this file instead of standard output.")
        var output: String?

        func run() async throws {
            try await reportingErrors {
                let output = output
                let sink: FileHandle
                if let output {
                    guard FileManager.default.createFile(atPath: output, contents: nil) else {
                        throw EventStoreError(.unavailable, "Cannot create \(output).")
                    }
                    sink = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
                } else {
                    sink = FileHandle.standardOutput
                }
                let (events, streams) = try await store.withStore { store in
                    try await Porting.export(from: store, to: sink)
                }
                if output != nil { try sink.synchronize() }
                try sink.close()
                progress("Exported \(events) events and the state of \(streams) streams.")
            }
        }
    }

    /// `annals import`: NDJSON from `annals export` into an empty store.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load an export into an empty store, keeping every event id, revision and position.",
            discussion: """
                The target store must be empty. Events are appended in position order with exact expected \
                revisions; the import stops with an error if any event would get another position than it \
                had. Stream metadata, soft deletes and tombstones are applied after the events. Times \
                (recordedAt) are the import's, not the original ones.
                """)

        @OptionGroup var store: StoreOptions

        @Option(name: .long, help: "Read from this file instead of standard input.")
        var input: String?

        func run() async throws {
            try await reportingErrors {
                let source: FileHandle
                if let input {
                    guard let handle = FileHandle(forReadingAtPath: input) else {
                        throw EventStoreError(.notFound, "Cannot read \(input).")
                    }
                    source = handle
                } else {
                    source = FileHandle.standardInput
                }
                let (events, streams) = try await store.withStore { store in
                    try await Porting.import(from: source, into: store)
                }
                progress("Imported \(events) events and the state of \(streams) streams.")
            }
        }
    }
}

/// Progress and summaries go to standard error, so standard output stays the data.
func progress(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

func fflushStandardOutput() {
    fflush(nil)
}

/// Export and import as NDJSON: the shared format of `annals export` and `annals import`.
enum Porting {
    static let batchLimit = 512

    static func export(from store: any EventStore, to sink: FileHandle) async throws -> (Int, Int) {
        var next: Position?
        var count = 0
        while true {
            let page = try await store.readAll(from: next, direction: .forwards, filter: .all, limit: 1_024)
            var bytes: [UInt8] = []
            for event in page {
                bytes.append(contentsOf: WireFormat.encode(event))
                bytes.append(0x0A)
            }
            try sink.write(contentsOf: bytes)
            count += page.count
            if count / 100_000 != (count - page.count) / 100_000 { progress("  \(count) events…") }
            guard page.count == 1_024, let last = page.last?.position.next else { break }
            next = last
        }
        var streams = 0
        var after: StreamName?
        while true {
            let page = try await store.listStreams(after: after, limit: 1_000)
            var bytes: [UInt8] = []
            for info in page where info.isDeleted || info.isTombstoned || info.metadata != StreamMetadata() {
                var writer = JSONWriter()
                writer.beginObject()
                writer.key("streamState")
                WireFormat.write(info, into: &writer)
                writer.endObject()
                bytes.append(contentsOf: writer.bytes)
                bytes.append(0x0A)
                streams += 1
            }
            try sink.write(contentsOf: bytes)
            guard page.count == 1_000, let last = page.last else { break }
            after = last.stream
        }
        return (count, streams)
    }

    static func `import`(from source: FileHandle, into store: any EventStore) async throws -> (Int, Int) {
        guard try await store.headPosition().value == 0 else {
            throw EventStoreError(.invalidArgument, "The target store is not empty; import needs an empty store.")
        }
        var importer = Importer(store: store)
        var pending: [UInt8] = []
        var finished = false
        var line = 0
        while !finished {
            let chunk = try source.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty {
                finished = true
                if !pending.isEmpty { pending.append(0x0A) }
            } else {
                pending.append(contentsOf: chunk)
            }
            var start = 0
            while let end = pending[start...].firstIndex(of: 0x0A) {
                let bytes = Array(pending[start..<end])
                start = end + 1
                line += 1
                if !bytes.isEmpty { try await importer.take(bytes, line: line) }
            }
            pending.removeFirst(start)
        }
        return try await importer.finish()
    }

    /// Groups consecutive events of one stream into appends and checks each lands where it was.
    struct Importer {
        let store: any EventStore
        var batch: [RecordedEvent] = []
        var states: [StreamInfo] = []
        var count = 0

        init(store: any EventStore) {
            self.store = store
        }

        mutating func take(_ bytes: [UInt8], line: Int) async throws {
            let node: JSONNode
            do {
                node = try JSONNode.parse(bytes)
            } catch {
                throw EventStoreError(error.code, "Line \(line): \(error.message)")
            }
            if let state = node["streamState"] {
                states.append(try WireFormat.decodeStreamInfo(state, in: bytes))
                return
            }
            let event = try WireFormat.decodeRecorded(node, in: bytes)
            if let last = batch.last,
                last.stream != event.stream || batch.count == batchLimit || last.position.next != event.position
            {
                try await flush()
            }
            batch.append(event)
        }

        mutating func flush() async throws {
            guard let first = batch.first else { return }
            let expected: ExpectedRevision = first.revision.previous.map { .exact($0) } ?? .noStream
            let result = try await store.append(batch.map(\.eventData), to: first.stream, expecting: expected)
            guard result.firstPosition == first.position, result.firstRevision == first.revision else {
                throw EventStoreError(
                    .invalidArgument,
                    "Event \(first.id) got position \(result.firstPosition) (revision \(result.firstRevision)) but had \(first.position) (\(first.revision)); the export has gaps or the store is not empty."
                )
            }
            count += batch.count
            if count / 100_000 != (count - batch.count) / 100_000 { progress("  \(count) events…") }
            batch.removeAll(keepingCapacity: true)
        }

        mutating func finish() async throws -> (Int, Int) {
            try await flush()
            for state in states {
                if state.isDeleted { try await store.delete(state.stream, expecting: .any) }
                if state.metadata != StreamMetadata() { try await store.setMetadata(state.metadata, for: state.stream) }
                if state.isTombstoned { try await store.tombstone(state.stream, expecting: .any) }
            }
            return (count, states.count)
        }
    }
}
