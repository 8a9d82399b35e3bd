import Annals
import AnnalsWire
import Foundation
import HTTPTypes
import Instrumentation
import Tracing

/// The trace context a request carries in its headers, and how an append writes it into its events.
///
/// An append's events get the context the *request* carries (the client's span), not the server's
/// own span: a retry that repeats its trace headers then writes the very same metadata, and stays an
/// idempotent retry (law 6); a retry with other trace headers is a different append of the same ids,
/// `409 duplicate-event-id`, as any other change is.
enum TraceHeaders {
    /// The trace fields of `headers`, as the process's instrument reads and writes them; without one,
    /// a valid W3C `traceparent` (and its `tracestate`) as they are. Empty when the request has none.
    static func fields(of headers: HTTPFields) -> [String: String] {
        var incoming = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(headers, into: &incoming, using: HTTPFieldsExtractor())
        let fields = TraceFields.of(incoming)
        if !fields.isEmpty { return fields }
        guard let traceparent = headers[HTTPField.Name("traceparent")!],
            EventMetadata.isValidTraceparent(traceparent)
        else { return [:] }
        var plain = ["traceparent": traceparent]
        if let tracestate = headers[HTTPField.Name("tracestate")!], tracestate.utf8.count <= 512 {
            plain["tracestate"] = tracestate
        }
        return plain
    }

    /// `metadata` with `fields` added, when it is empty or a JSON object that has none of their keys;
    /// otherwise (other JSON, or a context of its own) unchanged. The members go before the object's
    /// closing brace, in key order, so the same fields always give the same bytes.
    static func merge(_ fields: [String: String], into metadata: Data) -> Data {
        guard !fields.isEmpty else { return metadata }
        let sorted = fields.sorted { $0.key < $1.key }
        // The members as an object; minus its braces, they splice into another object.
        var object = JSONWriter()
        object.beginObject()
        for (key, value) in sorted { object.member(key, value) }
        object.endObject()
        let bare = object.bytes.dropFirst().dropLast()
        if metadata.isEmpty { return Data(object.bytes) }
        let bytes = [UInt8](metadata)
        guard let node = try? JSONNode.parse(bytes, maxDepth: 64), case .object = node.kind,
            !fields.keys.contains(where: { node[$0] != nil })
        else { return metadata }
        guard let close = bytes.lastIndex(of: UInt8(ascii: "}")) else { return metadata }
        let inside = bytes[bytes.index(after: bytes.firstIndex(of: UInt8(ascii: "{"))!)..<close]
        let isEmptyObject = inside.allSatisfy { [0x20, 0x09, 0x0A, 0x0D].contains($0) }
        var merged = Array(bytes[..<close])
        if !isEmptyObject { merged.append(UInt8(ascii: ",")) }
        merged += bare
        merged += bytes[close...]
        return Data(merged)
    }
}

/// Reads trace headers from `HTTPFields` for swift-distributed-tracing's `extract`.
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from headers: HTTPFields) -> String? {
        guard let name = HTTPField.Name(key) else { return nil }
        return headers[name]
    }
}
