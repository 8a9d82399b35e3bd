import AnnalsWire
import Foundation
import HTTPTypes
import Testing

@testable import AnnalsServer

/// The route table against itself and against `docs/openapi.yaml`.
@Suite("Route table")
struct RouteTableTests {
    static let openAPI = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml")

    /// One operation as the OpenAPI file declares it.
    struct Operation: Hashable, CustomStringConvertible {
        var method: String
        var path: String
        var id: String
        var role: String
        var scope: String
        /// Query parameter names (none for a route that ignores its query).
        var query: Set<String>

        var description: String { "\(method) \(path) (\(id))" }
    }

    /// The operations under `paths:`, read by indentation: this file's own layout (two spaces per
    /// level, parameters inline or as `{$ref: "#/components/parameters/X"}`), not YAML at large.
    static func operations(in text: String) throws -> [Operation] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func indent(_ line: String) -> Int { line.prefix { $0 == " " }.count }
        func value(_ line: String, _ key: String) -> String? {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(key + ":") else { return nil }
            return trimmed.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
        }
        // components/parameters: key → (name, in).
        var components: [String: (name: String, location: String)] = [:]
        if let start = lines.firstIndex(of: "components:"),
            let parameters = lines[start...].firstIndex(of: "  parameters:")
        {
            var key: String?
            for line in lines[(parameters + 1)...] {
                if !line.isEmpty, indent(line) <= 2 { break }
                if indent(line) == 4, line.hasSuffix(":") {
                    key = line.trimmingCharacters(in: .whitespaces).dropLast().description
                } else if let key, let name = value(line, "name") {
                    components[key, default: ("", "")].name = name
                } else if let key, let location = value(line, "in") {
                    components[key, default: ("", "")].location = location
                }
            }
        }
        func queryName(ofParameterAt index: Int) -> String? {
            let line = lines[index]
            if let range = line.range(of: "#/components/parameters/") {
                let key = line[range.upperBound...].prefix { $0 != "\"" }
                guard let component = components[String(key)] else { return nil }
                return component.location == "query" ? component.name : nil
            }
            // An inline parameter: `- name: x` followed by `in: query` at the next level.
            guard let name = value(line.replacingOccurrences(of: "- ", with: ""), "name") else { return nil }
            let next = lines[(index + 1)...].first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            return next.flatMap { value($0, "in") } == "query" ? name : nil
        }

        let start = try #require(lines.firstIndex(of: "paths:"))
        var result: [Operation] = []
        var path: String?
        var pathQuery: Set<String> = []
        var current: Operation?
        var inParameters = false
        for index in (start + 1)..<lines.count {
            let line = lines[index]
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if indent(line) == 0 { break }
            if indent(line) == 2, line.hasSuffix(":") {
                if let current { result.append(current) }
                current = nil
                path = String(line.trimmingCharacters(in: .whitespaces).dropLast())
                pathQuery = []
                inParameters = false
            } else if indent(line) == 4 {
                let key = line.trimmingCharacters(in: .whitespaces)
                inParameters = key == "parameters:"
                if ["get:", "post:", "put:", "delete:", "patch:", "head:", "options:"].contains(key), let path {
                    if let current { result.append(current) }
                    current = Operation(
                        method: String(key.dropLast()).uppercased(), path: path, id: "", role: "", scope: "",
                        query: pathQuery)
                }
            } else if indent(line) == 6, current != nil {
                inParameters = line.trimmingCharacters(in: .whitespaces) == "parameters:"
                if let id = value(line, "operationId") { current?.id = id }
                if let role = value(line, "x-annals-role") { current?.role = role }
                if let scope = value(line, "x-annals-scope") { current?.scope = scope }
            } else if indent(line) == 6, inParameters, line.trimmingCharacters(in: .whitespaces).hasPrefix("- ") {
                if let name = queryName(ofParameterAt: index) { pathQuery.insert(name) }
            } else if indent(line) == 8, inParameters, line.trimmingCharacters(in: .whitespaces).hasPrefix("- ") {
                if let name = queryName(ofParameterAt: index) { current?.query.insert(name) }
            }
        }
        if let current { result.append(current) }
        return result
    }

    static func expected(_ route: RouteSpec) -> Operation {
        let role: String
        switch route.access {
        case .public: role = "public"
        case .atLeast(let least): role = least.rawValue
        }
        let query: Set<String>
        switch route.query {
        case .ignored: query = []
        case .allowed(let names): query = names
        }
        return Operation(
            method: route.method.rawValue, path: route.path, id: route.id.rawValue, role: role,
            scope: route.scope.rawValue, query: query)
    }

    @Test("every route id has exactly one entry, and no two entries share a method and path")
    func unique() {
        for id in RouteSpec.ID.allCases {
            #expect(RouteTable.all.filter { $0.id == id }.count == 1, "\(id)")
        }
        let keys = RouteTable.all.map { "\($0.method.rawValue) \($0.path)" }
        #expect(Set(keys).count == keys.count)
    }

    @Test("docs/openapi.yaml declares the same routes, roles, scope rules and query parameters")
    func openAPIMatches() throws {
        let documented = try Self.operations(in: String(contentsOf: Self.openAPI, encoding: .utf8))
        #expect(documented.count == RouteTable.all.count, "\(documented)")
        let byID = Dictionary(documented.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for route in RouteTable.all {
            let expected = Self.expected(route)
            #expect(byID[route.id.rawValue] == expected, "table: \(expected) \(expected.query.sorted())")
        }
    }

    @Test("the reader finds what a small document declares")
    func readerSelfTest() throws {
        let text = """
            paths:
              /a/{x}:
                parameters:
                  - {$ref: "#/components/parameters/x"}
                get:
                  operationId: readA
                  x-annals-role: reader
                  x-annals-scope: stream
                  parameters:
                    - name: from
                      in: query
                    - {$ref: "#/components/parameters/limit"}
                    - name: X-Header
                      in: header
                delete:
                  operationId: deleteA
                  x-annals-role: admin
                  x-annals-scope: none
            components:
              parameters:
                x:
                  name: x
                  in: path
                limit:
                  name: limit
                  in: query
            """
        let operations = try Self.operations(in: text)
        #expect(
            operations == [
                Operation(
                    method: "GET", path: "/a/{x}", id: "readA", role: "reader", scope: "stream",
                    query: ["from", "limit"]),
                Operation(method: "DELETE", path: "/a/{x}", id: "deleteA", role: "admin", scope: "none", query: []),
            ])
    }

    @Test("Allow lists a path's methods from the table; unknown shapes have none")
    func methods() {
        func allowed(_ path: String) -> [String] {
            RouteTable.methods(matching: path.split(separator: "/")).map(\.rawValue)
        }
        #expect(allowed("/streams/order-1") == ["GET", "POST", "DELETE"])
        #expect(allowed("/streams/order-1/metadata") == ["GET", "PUT"])
        #expect(allowed("/tokens") == ["GET", "POST"])
        #expect(allowed("/") == ["GET"])
        #expect(allowed("/subscribe/nothing").isEmpty)
        #expect(allowed("/streams/a/b/c").isEmpty)
    }
}
