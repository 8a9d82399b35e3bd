import Annals
import AnnalsClient
import AnnalsTestSupport
import Foundation
import Testing

/// What the real `annals` binary tells a user who trips: one line `annals: <code>: <message>`, exit
/// status 2, no usage text, and a hint where one helps.
@Suite("The CLI's messages on first contact")
struct CLIMessageTests {
    /// A path for a data directory (not created); the caller removes it.
    static func dataPath() -> String {
        NSTemporaryDirectory() + "annals-cli-messages-\(UUID().uuidString)"
    }

    /// Runs `annals` with `arguments`; its status and its standard output and error together.
    static func annals(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let child = try Child(arguments: arguments)
        let status = try await child.exit()
        return (status, child.output)
    }

    @Test(
        "a data directory a running server holds is refused, with a hint to go through the server",
        .timeLimit(.minutes(2)))
    func lockedByServer() async throws {
        let data = Self.dataPath()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (server, _, _) = try await Child.serve(data: data)
        let commands = [["read"], ["append", "order-1", "OrderPlaced", "{}"], ["streams"], ["verify"]]
        for command in commands {
            let (status, output) = try await Self.annals(command + ["--data", data])
            #expect(status == 2, "\(command): \(output)")
            #expect(
                output.contains("annals: unavailable: The store at \(data) is locked by pid \(server.pid)."),
                "\(command): \(output)")
            #expect(
                output.contains("go through it: --server http://127.0.0.1:2113 --token T"), "\(command): \(output)")
        }
        server.signal(SIGTERM)
        #expect((try await server.exit()) == 0, "\(server.output)")
    }

    @Test("append --file with a missing file names the file and the system's reason", .timeLimit(.minutes(2)))
    func missingFile() async throws {
        let data = Self.dataPath()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let missing = data + "-missing.json"
        let (status, output) = try await Self.annals(
            ["append", "order-1", "OrderPlaced", "--file", missing, "--data", data])
        #expect(status == 2, "\(output)")
        #expect(
            output.contains("annals: invalid-argument: Cannot read \(missing): no such file or directory."),
            "\(output)")
        #expect(!output.contains("NSCocoaErrorDomain"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: data), "nothing is opened for an append that cannot start")
    }

    @Test(
        "data or metadata that is not JSON is refused with the byte offset, as the server does, without usage text",
        .timeLimit(.minutes(2)))
    func invalidJSON() async throws {
        let data = Self.dataPath()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (status, output) = try await Self.annals(
            ["append", "order-1", "OrderPlaced", #"{"total": 12,}"#, "--data", data])
        #expect(status == 2, "\(output)")
        #expect(
            output.contains(
                "annals: invalid-json: The event's data is not valid JSON: Invalid JSON at byte 13: expected a key."),
            "\(output)")
        #expect(output.contains("--binary"), "\(output)")
        #expect(!output.lowercased().contains("usage:"), "\(output)")

        let (metadataStatus, metadataOutput) = try await Self.annals(
            ["append", "order-1", "OrderPlaced", "{}", "--metadata", #"{"a""#, "--data", data])
        #expect(metadataStatus == 2, "\(metadataOutput)")
        #expect(
            metadataOutput.contains("annals: invalid-json: --metadata is not valid JSON: Invalid JSON at byte 4:"),
            "\(metadataOutput)")
        #expect(!metadataOutput.lowercased().contains("usage:"), "\(metadataOutput)")
        #expect(!FileManager.default.fileExists(atPath: data), "nothing is written for data that is refused")
    }

    @Test(
        "a --limit that is not a count from 0 says what a limit must be", .timeLimit(.minutes(2)),
        arguments: ["read", "streams"], ["-1", "ten", "99999999999999999999"])
    func badLimit(command: String, limit: String) async throws {
        let data = Self.dataPath()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (status, output) = try await Self.annals([command, "--limit", limit, "--data", data])
        #expect(status == 2, "\(output)")
        #expect(
            output.contains("annals: invalid-argument: --limit must be a number from 0 to \(Int.max); got '\(limit)'."),
            "\(output)")
        #expect(!output.contains("Missing value"), "\(output)")
    }

    @Test(
        "read says when a stream has never been written, and keeps 'No events.' for an empty page",
        .timeLimit(.minutes(2)))
    func readOfAStreamNeverWritten() async throws {
        let data = Self.dataPath()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let appended = try await Self.annals(["append", "order-1", "OrderPlaced", "{}", "--data", data])
        #expect(appended.status == 0, "\(appended.output)")

        let never = try await Self.annals(["read", "order-2", "--data", data])
        #expect(never.status == 0, "\(never.output)")
        #expect(never.output == "Stream 'order-2' has never been written.\n", "\(never.output)")

        let beyond = try await Self.annals(["read", "order-1", "--from", "5", "--data", data])
        #expect(beyond.status == 0, "\(beyond.output)")
        #expect(beyond.output == "No events.\n", "\(beyond.output)")

        let json = try await Self.annals(["read", "order-2", "--json", "--data", data])
        #expect(json.status == 0 && json.output.isEmpty, "scripts get no text: \(json.output)")
    }

    @Test(
        "through a server, read tells a deleted stream from one never written", .timeLimit(.minutes(2)))
    func readOfADeletedStreamThroughAServer() async throws {
        let data = Self.dataPath()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (server, url, printed) = try await Child.serve(data: data)
        let admin = try #require(printed, "the first start prints an admin token: \(server.output)")
        let store = try RemoteEventStore(url: url, token: admin)
        let stream = try StreamName("order-1")
        _ = try await store.append([EventData(type: "OrderPlaced", data: Data("{}".utf8))], to: stream)
        try await store.delete(stream, expecting: .any)

        let deleted = try await Self.annals(["read", "order-1", "--server", url, "--token", admin])
        #expect(deleted.status == 0, "\(deleted.output)")
        #expect(deleted.output.contains("stream 'order-1' is deleted"), "\(deleted.output)")
        let never = try await Self.annals(["read", "order-9", "--server", url, "--token", admin])
        #expect(never.output == "Stream 'order-9' has never been written.\n", "\(never.output)")

        server.signal(SIGTERM)
        #expect((try await server.exit()) == 0, "\(server.output)")
    }

    @Test("--verbose shows the file store's routine log lines, which are debug lines", .timeLimit(.minutes(2)))
    func verboseShowsDebugLines() async throws {
        let data = Self.dataPath()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let quiet = try await Self.annals(["append", "order-1", "OrderPlaced", "{}", "--data", data])
        #expect(quiet.status == 0 && !quiet.output.contains("Opened file store"), "\(quiet.output)")
        let verbose = try await Self.annals(["read", "order-1", "--verbose", "--data", data])
        #expect(verbose.status == 0, "\(verbose.output)")
        #expect(verbose.output.contains("debug") && verbose.output.contains("Opened file store"), "\(verbose.output)")
    }
}
