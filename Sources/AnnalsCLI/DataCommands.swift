import Annals
import AnnalsFileStore
import AnnalsWire
import ArgumentParser
import Foundation
import Logging

#if Client
    import AnnalsClient
#endif
#if Postgres
    import AnnalsPostgres
#endif

/// Where a command finds its store: a server, PostgreSQL, or a file store's data directory.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The file store's data directory (ANNALS_DATA; default ./annals-data).")
    var data: String?

    @Option(name: .long, help: "Use a running server instead (ANNALS_SERVER), with --token.")
    var server: String?

    @Option(name: .long, help: "The bearer token for --server (ANNALS_TOKEN).")
    var token: String?

    @Option(name: .long, help: "Use a PostgreSQL store instead (ANNALS_POSTGRES_URL).")
    var postgres: String?

    @Flag(name: .long, help: "Log the store's work (opening, recovery) to standard error.")
    var verbose = false

    var directory: String { ServerEnvironment.dataDirectory(data) }

    /// The level the stores log at: their routine work is `debug`, so `--verbose` shows it.
    var logLevel: Logger.Level { verbose ? .debug : .warning }

    /// The file store's configuration (for the commands that only work on a data directory).
    var configuration: FileEventStore.Configuration {
        var configuration = FileEventStore.Configuration()
        configuration.logger.logLevel = logLevel
        return configuration
    }

    func withStore<R: Sendable>(_ body: @Sendable (any EventStore) async throws -> R) async throws -> R {
        switch try StoreChoice.resolve(server: server, token: token, postgres: postgres, data: data) {
        case .server(let url, let token):
            #if Client
                return try await body(try RemoteEventStore(url: url, token: token))
            #else
                _ = (url, token)
                throw Traits.missing("the HTTP client (--server)", trait: "Client")
            #endif
        case .postgres(let url):
            #if Postgres
                var configuration = PostgresEventStore.Configuration()
                configuration.logger.logLevel = logLevel
                return try await PostgresEventStore.withStore(url: url, configuration: configuration) {
                    try await body($0)
                }
            #else
                _ = url
                throw Traits.missing("PostgreSQL", trait: "Postgres")
            #endif
        case .data(let directory):
            return try await explainingLock {
                try await FileEventStore.withStore(at: directory, configuration: configuration) {
                    try await body($0)
                }
            }
        }
    }
}

/// The options of the commands that work on a file store's data directory only (`verify`): no
/// `--server`, `--postgres` or `--token` for them to refuse.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .long, help: "The file store's data directory (ANNALS_DATA; default ./annals-data).")
    var data: String?

    var directory: String { ServerEnvironment.dataDirectory(data) }
}

/// Runs `body`, which opens a data directory, and adds to the refusal of a directory another process
/// has open what to do about it. The store's own message stays generic: it cannot know who holds the
/// lock, nor that a server offers the same store.
func explainingLock<R>(_ body: () async throws -> R) async throws -> R {
    do {
        return try await body()
    } catch let error as EventStoreError where FileEventStore.isLockedByAnotherProcess(error) {
        var explained = error
        explained.message +=
            " If that process is `annals serve`, go through it: --server http://127.0.0.1:2113 --token T"
            + " (the server's address and a token); or stop the server first."
        throw explained
    }
}

/// Parses a `--limit`, read as text so that a negative one reaches this check (ArgumentParser would
/// take `-1` for an option and report a missing value). The stores and the server take 0 to `Int.max`.
func parseLimit(_ text: String) throws(EventStoreError) -> Int {
    guard let limit = Int(text), limit >= 0 else {
        throw EventStoreError(.invalidArgument, "--limit must be a number from 0 to \(Int.max); got '\(text)'.")
    }
    return limit
}

/// The contents of a file named on the command line, or an `invalid-argument` error that says why not
/// (the system's reason, rather than Foundation's error domain and code).
func contentsOfArgumentFile(_ path: String) throws(EventStoreError) -> Data {
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        // Foundation wraps the errno in its own error; `as? NSError` would miss it on Linux.
        let reason: String
        if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error,
            case let posix = underlying as NSError, posix.domain == NSPOSIXErrorDomain
        {
            reason = String(cString: strerror(Int32(posix.code))).lowercased()
        } else {
            reason = error.localizedDescription
        }
        throw EventStoreError(.invalidArgument, "Cannot read \(path): \(reason).")
    }
}

/// Checks that `bytes` are JSON, with the parser the server uses, so a failure names the byte offset
/// as the server would. `what` says which value, for the message.
func requireJSON(_ bytes: Data, _ what: String, hint: String) throws(EventStoreError) {
    do {
        _ = try JSONNode.parse(Array(bytes))
    } catch {
        throw EventStoreError(error.code, "\(what) is not valid JSON: \(error.message) \(hint)")
    }
}

/// Prints errors the way the tool promises: a clear line on standard error and a non-zero status.
func reportingErrors<R>(_ body: () async throws -> R) async throws -> R {
    do {
        return try await body()
    } catch let error as EventStoreError {
        FileHandle.standardError.write(Data("annals: \(error.description)\n".utf8))
        throw ExitCode(2)
    }
}

extension AnnalsCommand {
    /// `annals append`: appends one event.
    struct Append: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append an event to a stream.",
            discussion: "The event's data comes from the argument, from --file, or from standard input."
        )

        @OptionGroup var store: StoreOptions

        @Argument(help: "The stream to append to.")
        var stream: String

        @Argument(help: "The event type.")
        var type: String

        @Argument(help: "The event's data (JSON unless --binary). Omit to read --file or standard input.")
        var payload: String?

        @Option(name: .long, help: "Read the event's data from this file.")
        var file: String?

        @Option(name: .long, help: "The expected revision: any, no-stream, exists or a number.")
        var expect: String = "any"

        @Option(name: .long, help: "The event id (a UUID); generated when omitted.")
        var id: String?

        @Option(name: .long, help: "The event's metadata (a JSON object).")
        var metadata: String?

        @Flag(name: .long, help: "The data is binary, not JSON.")
        var binary = false

        @Flag(name: .long, help: "Print JSON instead of text.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let name = try StreamName(stream)
                guard let expected = ExpectedRevision(expect) else {
                    throw ValidationError("--expect must be any, no-stream, exists or a non-negative number.")
                }
                let bytes: Data
                if let payload {
                    bytes = Data(payload.utf8)
                } else if let file {
                    bytes = try contentsOfArgumentFile(file)
                } else {
                    bytes = FileHandle.standardInput.readDataToEndOfFile()
                }
                if !binary {
                    try requireJSON(bytes, "The event's data", hint: "Pass --binary for data that is not JSON.")
                }
                if let metadata {
                    try requireJSON(
                        Data(metadata.utf8), "--metadata", hint: "It must be JSON, an object by convention.")
                }
                var eventID = UUID()
                if let id {
                    guard let parsed = UUID(uuidString: id) else { throw ValidationError("--id must be a UUID.") }
                    eventID = parsed
                }
                let event = EventData(
                    id: eventID,
                    type: type,
                    data: bytes,
                    contentType: binary ? .binary : .json,
                    metadata: Data((metadata ?? "").utf8)
                )
                let result = try await store.withStore { try await $0.append([event], to: name, expecting: expected) }
                if json {
                    print(
                        #"{"id":"\#(eventID.uuidString.lowercased())","stream":\#(jsonString(name.rawValue)),"revision":\#(result.nextExpectedRevision),"position":\#(result.lastPosition)}"#
                    )
                } else {
                    print(
                        "Appended \(type) to \(name) at revision \(result.nextExpectedRevision), position \(result.lastPosition)."
                    )
                }
            }
        }
    }

    /// `annals read`: reads a stream or `$all`.
    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read a stream, a category or $all.")

        @OptionGroup var store: StoreOptions

        @Argument(help: "The stream to read, or $all.")
        var stream: String = "$all"

        @Option(name: .long, help: "Read the streams of this category instead.")
        var category: String?

        @Option(name: .long, help: "The first revision (or position, for $all and categories) to read.")
        var from: UInt64?

        @Option(name: .long, parsing: .unconditional, help: "The most events to print.")
        var limit: String = "100"

        @Flag(name: .long, help: "Read from the end backwards.")
        var backwards = false

        @Flag(name: .long, help: "Print one JSON object per line (NDJSON).")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let limit = try parseLimit(limit)
                let direction: ReadDirection = backwards ? .backwards : .forwards
                let (category, stream, from, json) = (category, stream, from, json)
                // An empty page of a stream says why: never written, deleted, or nothing in the range.
                let (events, emptiness) = try await store.withStore { store in
                    if let category {
                        let events = try await store.readCategory(
                            category, from: from.map { Position($0) }, direction: direction, limit: limit)
                        return (events, "No events.")
                    }
                    if stream == "$all" {
                        let events = try await store.readAll(
                            from: from.map { Position($0) }, direction: direction, filter: .all, limit: limit)
                        return (events, "No events.")
                    }
                    let name = try StreamName(stream)
                    let events = try await store.read(
                        name, from: from.map { StreamRevision($0) }, direction: direction, limit: limit)
                    guard events.isEmpty, !json, limit > 0 else { return (events, "No events.") }
                    return (events, Self.emptiness(of: name, try await store.streamInfo(name)))
                }
                for event in events { print(json ? EventJSON.line(event) : EventJSON.text(event)) }
                if !json && events.isEmpty { print(emptiness) }
            }
        }

        /// What to print for an empty read of a stream, given what the store knows of it.
        static func emptiness(of stream: StreamName, _ info: StreamInfo?) -> String {
            guard let info else { return "Stream '\(stream)' has never been written." }
            if info.isDeleted {
                return "No events: stream '\(stream)' is deleted (an append would continue its revisions)."
            }
            return "No events."
        }
    }

    /// `annals streams`: lists streams.
    struct Streams: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List streams in creation order.")

        @OptionGroup var store: StoreOptions

        @Option(name: .long, parsing: .unconditional, help: "The most streams to list.")
        var limit: String = "100"

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let limit = try parseLimit(limit)
                let streams = try await store.withStore { try await $0.listStreams(after: nil, limit: limit) }
                for info in streams {
                    let revision = info.lastRevision.map { "\($0)" } ?? "none"
                    if json {
                        var writer = JSONWriter()
                        WireFormat.write(info, into: &writer)
                        print(String(decoding: writer.bytes, as: UTF8.self))
                    } else {
                        let state = info.isTombstoned ? " (tombstoned)" : info.isDeleted ? " (deleted)" : ""
                        print("\(info.stream)  \(info.visibleEventCount) events, last revision \(revision)\(state)")
                    }
                }
            }
        }
    }

    /// `annals verify`: checks every checksum of a data directory.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every checksum and the index of a file store.",
            discussion: """
                Works on a data directory only, and takes its lock: stop a server that has it open first. \
                Exits with status 1 when it finds damage, 2 when it cannot check.
                """
        )

        @OptionGroup var store: DataDirectoryOptions

        @Flag(name: .long, help: "Print the report as JSON.")
        var json = false

        func run() async throws {
            let directory = store.directory
            let report = try await reportingErrors {
                try await explainingLock { try FileEventStore.verify(at: directory) }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print("Store \(report.storeID ?? "unknown") in \(report.directory)")
                for segment in report.segments {
                    print(
                        "  \(segment.file): \(segment.records) records, \(segment.events) events,"
                            + " \(segment.bytes) bytes used"
                    )
                }
                print(
                    "\(report.events) events in \(report.streams) streams, \(report.records) records,"
                        + " \(report.bytes) bytes used.")
                for finding in report.findings { print(finding.description) }
                print(report.isHealthy ? "OK: no damage found." : "DAMAGED: see above.")
            }
            if !report.isHealthy { throw ExitCode(1) }
        }
    }
}

/// Renders events for people and for scripts (one line of the HTTP API's event JSON).
enum EventJSON {
    static func line(_ event: RecordedEvent) -> String {
        String(decoding: WireFormat.encode(event), as: UTF8.self)
    }

    static func text(_ event: RecordedEvent) -> String {
        let body =
            event.contentType == .json ? String(decoding: event.data, as: UTF8.self) : "<\(event.data.count) bytes>"
        return "#\(event.position) \(event.stream)@\(event.revision) \(event.type) \(body)"
    }
}

/// A JSON string literal.
func jsonString(_ value: String) -> String {
    var writer = JSONWriter()
    writer.string(value)
    return String(decoding: writer.bytes, as: UTF8.self)
}
