import Annals
import AnnalsWire
import Testing

/// The typed queries of AnnalsWire: what the client writes, the server reads back as the same value.
@Suite("Query types")
struct QueryTypesTests {
    /// Through the text a client sends and the parsing a server does.
    static func sent(_ parameters: QueryParameters) throws -> QueryParameters {
        try QueryParameters(parsing: parameters.encoded)
    }

    @Test("each typed query reads back as written, odd characters included")
    func roundTrips() throws {
        let reads = [
            StreamReadQuery(), StreamReadQuery(from: StreamRevision(7), direction: .backwards, limit: 20),
            StreamReadQuery(limit: 0),
        ]
        for query in reads { #expect(try StreamReadQuery(parsing: Self.sent(query.parameters)) == query) }
        let logs = [
            LogReadQuery(),
            LogReadQuery(
                from: Position(9_223_372_036_854_775_807), direction: .backwards, limit: 4_096,
                filter: EventFilter(eventTypes: ["A", "B c"], category: "order", streamPrefix: "a b+c/%&=")),
        ]
        for query in logs { #expect(try LogReadQuery(parsing: Self.sent(query.parameters)) == query) }
        let lists = [
            StreamListQuery(),
            StreamListQuery(after: try StreamName("order-1/é?x"), limit: 25, prefix: "order-"),
        ]
        for query in lists { #expect(try StreamListQuery(parsing: Self.sent(query.parameters)) == query) }
        let subscriptions = [
            SubscriptionQuery(), SubscriptionQuery(start: .end(head: nil)), SubscriptionQuery(start: .end(head: 42)),
            SubscriptionQuery(start: .after(5), filter: EventFilter(eventTypes: ["X"], streamPrefix: "p-")),
        ]
        for query in subscriptions { #expect(try SubscriptionQuery(parsing: Self.sent(query.parameters)) == query) }
    }

    @Test("what the server refuses, with the API's words")
    func refusals() throws {
        func refused(_ raw: String, _ parse: (QueryParameters) throws -> Void) -> String? {
            do {
                try parse(try QueryParameters(parsing: raw))
                return nil
            } catch let error as EventStoreError {
                #expect(error.code == .invalidArgument, "\(raw): \(error)")
                return error.message
            } catch {
                Issue.record("\(raw): \(error)")
                return nil
            }
        }
        #expect(refused("from=start&after=3") { _ = try SubscriptionQuery(parsing: $0) }?.contains("not both") == true)
        #expect(refused("head=3") { _ = try SubscriptionQuery(parsing: $0) }?.contains("from=end") == true)
        #expect(refused("from=middle") { _ = try SubscriptionQuery(parsing: $0) } != nil)
        #expect(refused("after=") { _ = try StreamListQuery(parsing: $0) }?.contains("empty") == true)
        #expect(refused("direction=up") { _ = try StreamReadQuery(parsing: $0) } != nil)
        #expect(refused("limit=-1") { _ = try LogReadQuery(parsing: $0) } != nil)
        #expect(refused("from=9223372036854775808") { _ = try StreamReadQuery(parsing: $0) } != nil)
        #expect(refused("a=1&a=2") { _ in } != nil, "a repeated parameter")
        #expect(refused("a=%zz") { _ in } != nil, "a bad escape")
        #expect(try QueryParameters(parsing: "a=b+c%2B").values == ["a": "b c+"], "+ is a space, %2B a plus")
    }
}
