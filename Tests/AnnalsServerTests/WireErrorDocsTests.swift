import Annals
import AnnalsWire
import Foundation
import Testing

/// The error table in docs/http-api.md and the one the server answers from are the same table.
@Suite("Wire errors against the docs")
struct WireErrorDocsTests {
    static let httpAPI = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/http-api.md")

    /// The `| code | status | meaning |` rows of the table under `## Errors`.
    static func documentedRows() throws -> [(code: String, status: Int)] {
        let text = try String(contentsOf: httpAPI, encoding: .utf8)
        let section = try #require(text.components(separatedBy: "\n## Errors\n").dropFirst().first)
        let body = section.components(separatedBy: "\n## ").first ?? section
        return body.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4, cells[1].hasPrefix("`"), let status = Int(cells[2]) else { return nil }
            return (cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`")), status)
        }
    }

    @Test("every code the server answers is documented with its status, in the same order")
    func tableMatches() throws {
        let documented = try Self.documentedRows()
        #expect(documented.count >= 10, "the docs' table was found")
        let answered = WireError.statuses.map { ($0.key.rawValue, $0.value) }
        #expect(documented.map(\.code) == answered.map(\.0))
        #expect(documented.map(\.status) == answered.map(\.1))
    }

    @Test("a code no table names is answered with 400")
    func unknownCode() {
        #expect(WireError.status(for: EventStoreError.Code("some-future-code")) == 400)
        #expect(WireError.status(for: .storeFailed) == 503)
    }
}
