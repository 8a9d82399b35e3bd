import Annals
import AnnalsClient
import AnnalsFileStore
import AnnalsServer
import AnnalsWire
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

// An application that embeds Annals: its own Hummingbird router, with its own route and middleware,
// and Annals' HTTP API mounted under /es, on a file store in ./embedded-data.
//
//     swift run embedded-server-example            # serves on 127.0.0.1:8080 until Ctrl-C
//     swift run embedded-server-example --check    # on a free port: append, read, hello; then exits

let arguments = CommandLine.arguments.dropFirst()
let check = arguments.contains("--check")
let directory = value(of: "--data") ?? "embedded-data"
let port = check ? 0 : Int(value(of: "--port") ?? "8080") ?? 8080

func value(of option: String) -> String? {
    guard let index = arguments.firstIndex(of: option), arguments.index(after: index) < arguments.endIndex else {
        return nil
    }
    return arguments[arguments.index(after: index)]
}

var logger = Logger(label: "embedded-server-example")
logger.logLevel = .notice

do {
    let store = try FileEventStore.open(at: directory)
    let tokens = FileTokenRegistry(path: directory + "/tokens.json")
    let admin = try await tokens.createFirstAdminToken()
    let listening = AsyncStream<Int>.makeStream()
    let application = buildApplication(store: store, tokens: tokens, port: port, logger: logger) { port in
        listening.continuation.yield(port)
    }
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: application)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            // A server that cannot start (a port in use) ends the wait for its port with its error.
            defer { listening.continuation.finish() }
            try await group.run()
        }
        var ports = listening.stream.makeAsyncIterator()
        guard let bound = await ports.next() else {
            try await tasks.waitForAll()
            return
        }
        print("Serving /hello and Annals under http://127.0.0.1:\(bound)/es/ (data in \(directory))")
        if let admin { print("Created the first admin token (shown only this once): \(admin.token)") }
        if check {
            try await runCheck(port: bound, token: admin?.token, tokens: tokens)
            await group.triggerGracefulShutdown()
        }
        try await tasks.waitForAll()
    }
    await store.close()
} catch {
    FileHandle.standardError.write(Data("embedded-server-example: \(error)\n".utf8))
    exit(1)
}

/// Appends and reads an event through `/es` with the Annals client, and asks the application's own
/// route; throws when any answer is not what it should be.
func runCheck(port: Int, token: String?, tokens: FileTokenRegistry) async throws {
    // A later run of --check on the same directory has no first token to show: make one for itself.
    var secret = token
    var madeHere: String?
    if secret == nil {
        let created = try await tokens.create(name: "check", role: .writer, scopes: [])
        (secret, madeHere) = (created.token, created.record.id)
    }
    defer { if let madeHere { _ = try? tokens.revoke(id: madeHere) } }
    let events = try RemoteEventStore(url: "http://127.0.0.1:\(port)/es", token: secret)
    let stream = try StreamName("greeting-\(UInt32.random(in: 0...UInt32.max))")
    let result = try await events.append(
        [EventData(type: "Greeted", data: Data(#"{"who":"embedded"}"#.utf8))], to: stream)
    let read = try await events.read(stream)
    guard read.count == 1, read[0].type == "Greeted" else {
        throw EventStoreError(.unavailable, "The event read back through /es is not the one appended.")
    }
    let response = try await HTTPClient.shared.execute(
        HTTPClientRequest(url: "http://127.0.0.1:\(port)/hello"), timeout: .seconds(10))
    guard response.status == .ok else {
        throw EventStoreError(.unavailable, "GET /hello answered \(response.status).")
    }
    print(
        "check: appended \(stream) at position \(result.firstPosition), read it back through /es; /hello answered 200")
}
