import Annals
import AnnalsWire
import Foundation
import Testing

/// Stream metadata is held to its documented schema, with messages written for people (the audit saw
/// `truncateBefore` above 2⁶³−1 kept, Swift `DecodingError` text for an overflowing `maxCount`, and
/// `null` accepted).
@Suite("Stream metadata validation")
struct MetadataValidationTests {
    static let refused: [(body: String, mentions: String)] = [
        (#"{"truncateBefore": 9223372036854775808}"#, "truncateBefore"),
        (#"{"truncateBefore": 18446744073709551616}"#, "truncateBefore"),
        (#"{"maxCount": 99999999999999999999}"#, "maxCount"),
        (#"{"maxAge": 9223372036854775808}"#, "maxAge"),
        (#"{"maxCount": null}"#, "null"),
        (#"{"maxAge": null}"#, "null"),
        (#"{"truncateBefore": null}"#, "null"),
        (#"{"custom": null}"#, "custom"),
        (#"{"custom": [1, 2]}"#, "custom"),
        (#"{"maxCount": 0}"#, "maxCount"),
        (#"{"maxCount": 1.5}"#, "maxCount"),
        (#"{"maxCount": "10"}"#, "maxCount"),
        (#"{"maxAge": -1}"#, "maxAge"),
    ]

    @Test("values out of range, of the wrong type or null are 400 invalid-argument that says which field")
    func refusesWithPlainMessages() async throws {
        try await TestServer.with { server in
            for (body, mentions) in Self.refused {
                let answer = try await server.request(
                    .PUT, "/streams/order-1/metadata", token: server.admin,
                    headers: ["Content-Type": "application/json"], body: Array(body.utf8))
                #expect(answer.status == 400, "\(body): \(answer.body)")
                let error = try #require(WireFormat.decodeError(Array(answer.body.utf8)), "\(body)")
                #expect(error.code == .invalidArgument, "\(body): \(error)")
                #expect(error.message.contains(mentions), "\(body): \(error.message)")
                for leaked in ["DecodingError", "codingPath", "Swift", "not valid JSON", "dataCorrupted"] {
                    #expect(!error.message.contains(leaked), "\(body): \(error.message)")
                }
            }
            // Nothing refused was kept: a metadata write would have made the stream known.
            let info = try await server.request(.GET, "/streams/order-1/metadata", token: server.admin)
            #expect(info.status == 404, "\(info.body)")
        }
    }

    @Test("the largest values and every field together are kept")
    func acceptsTheSchema() async throws {
        try await TestServer.with { server in
            let body =
                #"{"maxCount": 9223372036854775807, "maxAge": 0, "truncateBefore": 9223372036854775807, "custom": {"owner": "billing", "n": [1, null]}}"#
            let answer = try await server.request(
                .PUT, "/streams/order-1/metadata", token: server.admin, headers: ["Content-Type": "application/json"],
                body: Array(body.utf8))
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.body.contains(#""truncateBefore":9223372036854775807"#), "\(answer.body)")
            #expect(answer.body.contains(#""maxCount":9223372036854775807"#), "\(answer.body)")
        }
    }
}
