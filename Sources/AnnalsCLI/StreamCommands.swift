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
                let report = try await store.withStore { store in
                    var reported: UInt64 = 0
                    return try await NDJSONExport.export(
                        from: store,
                        progress: { count in
                            if count / 100_000 != reported / 100_000 { progress("  \(count) events…") }
                            reported = count
                        },
                        write: { bytes in try sink.write(contentsOf: bytes) })
                }
                if output != nil { try sink.synchronize() }
                try sink.close()
                progress("Exported \(report.events) events and the state of \(report.streams) streams.")
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
                let report = try await store.withStore { store in
                    var reported: UInt64 = 0
                    var importer = try await NDJSONImporter(into: store) { count in
                        if count / 100_000 != reported / 100_000 { progress("  \(count) events…") }
                        reported = count
                    }
                    while true {
                        let chunk = try source.read(upToCount: 1 << 20) ?? Data()
                        if chunk.isEmpty { break }
                        try await importer.feed(chunk)
                    }
                    return try await importer.finish()
                }
                progress("Imported \(report.events) events and the state of \(report.streams) streams.")
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
