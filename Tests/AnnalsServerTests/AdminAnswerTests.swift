import Annals
import AnnalsWire
import Foundation
import Testing

/// The admin answers' shapes in AnnalsWire, without a server: what the client reads, what the server
/// writes, and what a newer or a broken server may send.
@Suite("Admin answers in AnnalsWire")
struct AdminAnswerTests {
    @Test("a health report of either kind reads back as written; unknown members and statuses are kept apart")
    func health() throws {
        let ok = Array(#"{"status":"ok","headPosition":42}"#.utf8)
        #expect(try HealthReport(decoding: ok) == HealthReport(status: .ok, headPosition: 42))
        #expect(try HealthReport(decoding: ok).encoded() == ok)

        let failed = Array(#"{"status":"failed","code":"store-failed","message":"The store failed: ENOSPC."}"#.utf8)
        let report = try HealthReport(decoding: failed)
        #expect(report.status == .failed)
        #expect(report.code == .storeFailed)
        #expect(report.message == "The store failed: ENOSPC.")
        #expect(!report.isHealthy)
        #expect(report.encoded() == failed)

        // A newer server: a status this client does not name, and a member it does not know.
        let newer = try HealthReport(decoding: Array(#"{"status":"degraded","headPosition":7,"lag":3}"#.utf8))
        #expect(newer == HealthReport(status: HealthReport.Status("degraded"), headPosition: 7))
        #expect(!newer.isHealthy)

        for broken in [#"{"headPosition":1}"#, #"{"status":1}"#, #"{"status":"ok","headPosition":-1}"#, "[]"] {
            let error = #expect(throws: EventStoreError.self) { _ = try HealthReport(decoding: Array(broken.utf8)) }
            #expect(error?.code == .unavailable, "\(broken): \(String(describing: error))")
        }
    }

    @Test("statistics read the docs' example, spaces and all, and write it back compact")
    func statistics() throws {
        let documented = Array(
            #"""
            {"headPosition": 42, "streams": 7, "appends": 12, "eventsWritten": 40, "bytesWritten": 2048,
             "liveSubscriptions": 1, "store": "FileEventStore", "version": "0.1.0", "appendLatencyMicroseconds": 850}
            """#.utf8)
        let statistics = try ServerStatistics(decoding: documented)
        let expected = ServerStatistics(
            headPosition: 42, streams: 7, appends: 12, eventsWritten: 40, bytesWritten: 2048, liveSubscriptions: 1,
            store: "FileEventStore", version: "0.1.0", appendLatencyMicroseconds: 850)
        #expect(statistics == expected)
        #expect(
            String(decoding: statistics.encoded(), as: UTF8.self)
                == #"{"headPosition":42,"streams":7,"appends":12,"eventsWritten":40,"bytesWritten":2048,"#
                + #""liveSubscriptions":1,"store":"FileEventStore","version":"0.1.0","appendLatencyMicroseconds":850}"#)
        // A second without appends is null, and an older server's answer without the member reads as nil.
        var quiet = expected
        quiet.appendLatencyMicroseconds = nil
        #expect(String(decoding: quiet.encoded(), as: UTF8.self).hasSuffix(#""appendLatencyMicroseconds":null}"#))
        #expect(try ServerStatistics(decoding: quiet.encoded()) == quiet)
        let older = Array(
            #"{"headPosition":42,"streams":7,"appends":12,"eventsWritten":40,"bytesWritten":2048,"liveSubscriptions":1,"store":"S","version":"0.1.0"}"#
                .utf8)
        #expect(try ServerStatistics(decoding: older).appendLatencyMicroseconds == nil)

        let missing = #expect(throws: EventStoreError.self) {
            _ = try ServerStatistics(decoding: Array(#"{"headPosition":42}"#.utf8))
        }
        #expect(missing?.code == .unavailable, "\(String(describing: missing))")
    }

    @Test("a token list and a created token read back as written; the hash comes from the secret")
    func tokens() throws {
        let createdAt = try #require(WireFormat.parseTimestamp("2025-01-15T09:31:00.120Z"))
        let info = TokenInfo(
            id: "tok_Xk3vP0aQ", name: "billing \"eu\"", role: .writer, scopes: ["invoice-", "payment-"],
            createdAt: createdAt)
        let list = TokenInfo.encodeList([info])
        #expect(
            String(decoding: list, as: UTF8.self)
                == #"{"tokens":[{"id":"tok_Xk3vP0aQ","name":"billing \"eu\"","role":"writer","#
                + #""scopes":["invoice-","payment-"],"createdAt":"2025-01-15T09:31:00.120Z"}]}"#)
        #expect(try TokenInfo.decodeList(list) == [info])

        let record = TokenRecord(
            id: info.id, name: info.name, role: info.role, scopes: info.scopes, hash: "kept by the registry",
            createdAt: createdAt)
        #expect(TokenInfo.encodeList([TokenInfo(record)]) == list, "a record is listed without its hash")

        let secret = "annals_Xk3vP0aQ_h7Zr2VqLm9sT4wYx8bN1cD6eF0gH3jK5"
        let created = CreatedToken(
            record: TokenRecord(
                id: info.id, name: info.name, role: info.role, scopes: info.scopes, hash: SHA256.hex(secret.utf8),
                createdAt: createdAt),
            token: secret)
        let answer = created.encoded()
        #expect(!String(decoding: answer, as: UTF8.self).contains(SHA256.hex(secret.utf8)), "never the hash")
        #expect(try CreatedToken(decoding: answer) == created)
        #expect(created.info == info)

        let unknownRole = #expect(throws: EventStoreError.self) {
            _ = try TokenInfo.decodeList(
                Array(#"{"tokens":[{"id":"tok_1","name":"n","role":"auditor","scopes":[],"createdAt":"x"}]}"#.utf8))
        }
        #expect(unknownRole?.code == .unavailable, "\(String(describing: unknownRole))")
        let noList = #expect(throws: EventStoreError.self) { _ = try TokenInfo.decodeList(Array("{}".utf8)) }
        #expect(noList?.code == .unavailable, "\(String(describing: noList))")
    }

    @Test("a token request is written by the client and read by the server as the same value")
    func tokenRequestRoundTrip() throws {
        let request = TokenRequest(name: "billing \"ops\"", role: .writer, scopes: ["invoice-", "payment-"])
        #expect(try TokenRequest(decoding: request.encoded()) == request)
        #expect(
            String(decoding: TokenRequest(name: "t", role: .reader).encoded(), as: UTF8.self)
                == #"{"name":"t","role":"reader","scopes":[]}"#)
        for (body, mentions) in [
            (#"[]"#, "JSON object"), (#"{"role":"reader"}"#, "'name'"), (#"{"name":"t","role":"root"}"#, "'role'"),
            (#"{"name":"t","role":"reader","scopes":"order-"}"#, "'scopes'"),
            (#"{"name":"t","role":"reader","ttl":5}"#, "Unknown field 'ttl'"),
        ] {
            let error = #expect(throws: EventStoreError.self) { try TokenRequest(decoding: Array(body.utf8)) }
            #expect(error?.code == .invalidArgument, "\(body)")
            #expect(error?.message.contains(mentions) == true, "\(body): \(String(describing: error))")
        }
    }
}
