import Annals
import AnnalsServer
import AnnalsWire
import AsyncHTTPClient
import Foundation
import InMemoryTracing
import Logging
import NIOCore
import NIOHTTP1
import Testing
import Tracing

@testable import BankExample

/// One trace follows a bank transfer from an HTTP append through the process manager to the credit.
@Suite("Tracing across a bank transfer")
struct TracingTests {
    @Test("a transfer started by an HTTP append is one trace: request, process manager, commands, appends")
    func transferTrace() async throws {
        let tracer = InMemoryTracer()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("annals-trace-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokens = FileTokenRegistry(path: directory + "/tokens.json")
        let admin = try #require(try await tokens.createFirstAdminToken())
        let store = try InMemoryEventStore()
        let bank = Bank(store: store)
        try await bank.accounts.handle(.open(accountID: "alice", owner: "Alice"), on: .account("alice"))
        try await bank.accounts.handle(.deposit(amount: 500), on: .account("alice"))
        try await bank.accounts.handle(.open(accountID: "bob", owner: "Bob"), on: .account("bob"))
        let requested = try TransferEvent.codec.encode(
            .requested(
                TransferRequested(
                    transferID: "t1", fromAccountID: "alice", toAccountID: "bob", amount: 120,
                    requestedAt: Date(timeIntervalSince1970: 1_700_000_000))),
            id: UUID(), metadata: EventMetadata())
        let body =
            #"[{"id":"\#(requested.id.uuidString)","type":"TransferRequested","data":"#
            + String(decoding: requested.data, as: UTF8.self) + "}]"

        try await withTracer(tracer) {
            let listening = AsyncStream<Int>.makeStream()
            let server = try AnnalsServer(
                store: store, tokens: tokens, configuration: ServerConfiguration(port: 0),
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            ) { listening.continuation.yield($0) }
            let runner = ProjectionRunner(
                projection: bank.transferProcess.asProjection, store: store, checkpoints: InMemoryCheckpointStore())
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                group.addTask { try await runner.run() }
                defer { group.cancelAll() }
                var ports = listening.stream.makeAsyncIterator()
                let port = try #require(await ports.next())
                // The caller's span. AsyncHTTPClient is instrumented: it opens a client span ("POST") under
                // it and sends that span's context as headers. (Its tracer is fixed when a client is made,
                // so this test makes its own rather than HTTPClient.shared, made by whichever test came first.)
                var configuration = HTTPClient.Configuration()
                configuration.tracing.tracer = tracer
                let http = HTTPClient(configuration: configuration)
                defer { Task { [http] in try? await http.shutdown() } }
                try await withSpan("client transfer") { _ in
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/streams/transfer-t1")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(admin.token)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: body))
                    let response = try await http.execute(request, timeout: .seconds(10))
                    _ = try await response.body.collect(upTo: 1 << 16)
                    #expect(response.status == .created)
                }
                let deadline = ContinuousClock.now + .seconds(20)
                while try await bank.transfer("t1").status != .completed {
                    guard ContinuousClock.now < deadline else {
                        Issue.record("the transfer did not complete")
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }

        let root = try #require(tracer.finishedSpans.first { $0.operationName == "client transfer" })
        let spans = tracer.finishedSpans.filter { $0.traceID == root.traceID }
        func named(_ prefix: String) -> [FinishedInMemorySpan] { spans.filter { $0.operationName.hasPrefix(prefix) } }
        // The server's span for the request, and the append it made, continue the client's trace.
        let described = tracer.finishedSpans.map { "\($0.operationName) \($0.spanID) ← \($0.parentSpanID ?? "-")" }
        let client = try #require(named("POST").first, "\(described)")
        #expect(client.parentSpanID == root.spanID)
        let http = try #require(spans.first { $0.operationName == "/streams/{stream}" }, "\(described)")
        #expect(http.parentSpanID == client.spanID, "the server's span continues the client's: \(described)")
        #expect(
            named("annals.append").contains { $0.parentSpanID == http.spanID },
            "the append of the request is the HTTP span's child")
        // The process manager handles each event of the transfer in a span whose parent is the context the
        // event carries: the request's (the client span), copied from event to event by
        // CommandMetadata(causedBy:).
        let handling = named("annals.projection transfer-process")
        #expect(handling.count >= 3, "TransferRequested, AccountDebited, AccountCredited: \(handling.count)")
        #expect(handling.allSatisfy { $0.parentSpanID == client.spanID }, "\(described)")
        // Each command is the child of the handling that issued it, and each command's append its child.
        let commands = named("annals.command")
        let debit = try #require(commands.first { $0.operationName.contains("AccountDecider") })
        #expect(handling.contains { $0.spanID == debit.parentSpanID }, "the debit's parent is a handling span")
        let credit = try #require(commands.last { $0.operationName.contains("AccountDecider") })
        #expect(credit.spanID != debit.spanID, "a debit and a credit")
        #expect(handling.contains { $0.spanID == credit.parentSpanID }, "the credit's parent is a handling span")
        #expect(debit.parentSpanID != credit.parentSpanID, "the credit is issued while handling AccountDebited")
        #expect(
            named("annals.append").contains { $0.parentSpanID == credit.spanID },
            "the credit's append is the credit command's child")
        // And nothing of the transfer left the trace.
        #expect(commands.count >= 4, "debit, record the debit, credit, complete: \(commands.map(\.operationName))")
    }
}
