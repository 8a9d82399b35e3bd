import Annals
import AnnalsWire
import Foundation
import HTTPTypes
import Testing

@testable import AnnalsServer

/// W3C trace headers on an append go into the events' metadata, byte for byte the same on a retry.
@Suite("Trace headers on appends")
struct TraceHeadersTests {
    static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test("merged into empty metadata, into an object without them, never over a context of its own")
    func merge() {
        let fields = ["traceparent": Self.traceparent, "tracestate": "vendor=1"]
        func merged(_ text: String) -> String {
            String(decoding: TraceHeaders.merge(fields, into: Data(text.utf8)), as: UTF8.self)
        }
        let members = #""traceparent":"\#(Self.traceparent)","tracestate":"vendor=1""#
        #expect(merged("") == "{\(members)}")
        #expect(merged("{}") == "{\(members)}")
        #expect(merged(#"{"correlationId":"c-1"}"#) == #"{"correlationId":"c-1","# + members + "}")
        #expect(merged(#" { "a" : [1, {"b":2}] } "#) == #" { "a" : [1, {"b":2}] ,"# + members + "} ")
        #expect(merged(#"{"traceparent":"00-1-2-01"}"#) == #"{"traceparent":"00-1-2-01"}"#, "its own context wins")
        #expect(merged("[1,2]") == "[1,2]", "not an object: unchanged")
        #expect(merged(#""text""#) == #""text""#)
        #expect(TraceHeaders.merge([:], into: Data("{}".utf8)) == Data("{}".utf8))
    }

    @Test("without a tracer, a valid traceparent and its tracestate are taken as they are; a malformed one is not")
    func plainHeaders() {
        var headers = HTTPFields()
        headers[HTTPField.Name("traceparent")!] = Self.traceparent
        headers[HTTPField.Name("tracestate")!] = "vendor=1"
        #expect(TraceHeaders.fields(of: headers) == ["traceparent": Self.traceparent, "tracestate": "vendor=1"])
        headers[HTTPField.Name("traceparent")!] = "00-zz-00f067aa0ba902b7-01"
        #expect(TraceHeaders.fields(of: headers).isEmpty)
        #expect(TraceHeaders.fields(of: HTTPFields()).isEmpty)
    }

    @Test("an append with trace headers stores them; the same retry is idempotent; other headers are a conflict")
    func appendKeepsContext() async throws {
        try await TestServer.with { server in
            let id = UUID().uuidString.lowercased()
            let body = Array(#"[{"id":"\#(id)","type":"Traced","data":{},"metadata":{"correlationId":"c-1"}}]"#.utf8)
            func append(_ traceparent: String) async throws -> (status: Int, body: String) {
                let answer = try await server.request(
                    .POST, "/streams/traced-1", token: server.admin,
                    headers: ["Content-Type": "application/json", "traceparent": traceparent, "tracestate": "v=1"],
                    body: body)
                return (answer.status, answer.body)
            }
            let first = try await append(Self.traceparent)
            #expect(first.status == 201, "\(first.body)")
            let events = try await server.store.read(try StreamName("traced-1"))
            let metadata = EventMetadata(decoding: try #require(events.first).metadata)
            #expect(metadata.traceparent == Self.traceparent)
            #expect(metadata.tracestate == "v=1")
            #expect(metadata.correlationID == "c-1", "the client's own metadata is kept")
            let retry = try await append(Self.traceparent)
            #expect(retry.status == 201 && retry.body == first.body, "the same retry is idempotent: \(retry)")
            let other = try await append("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01")
            #expect(other.status == 409 && other.body.contains("duplicate-event-id"), "\(other)")
            #expect(try await server.store.read(try StreamName("traced-1")).count == 1)
        }
    }
}
