import Foundation
import Instrumentation
import Tracing

/// Carries trace context in an event's metadata, for swift-distributed-tracing's `inject` and
/// `extract`: `traceparent` and `tracestate` (W3C trace context) in their own fields, any other key an
/// instrument uses as a string in ``EventMetadata/custom``.
///
/// A command handler writes the context into the events it records, and a projection runner reads it
/// back from each event it applies, so one trace follows a request through a process manager to the
/// commands it issues.
public struct MetadataTraceCarrier: Injector, Extractor, Sendable {
    /// A carrier; it holds no state.
    public init() {}

    /// Writes `value` under `key`: `traceparent` and `tracestate` to their fields, others to `custom`.
    public func inject(_ value: String, forKey key: String, into metadata: inout EventMetadata) {
        switch key.lowercased() {
        case EventMetadata.traceparentKey: metadata.traceparent = value
        case EventMetadata.tracestateKey: metadata.tracestate = value
        default: metadata.custom[key] = .string(value)
        }
    }

    /// The value under `key`, or nil.
    public func extract(key: String, from metadata: EventMetadata) -> String? {
        switch key.lowercased() {
        case EventMetadata.traceparentKey: return metadata.traceparent
        case EventMetadata.tracestateKey: return metadata.tracestate
        default:
            if case .string(let value)? = metadata.custom[key] { return value }
            return nil
        }
    }
}

/// Trace context as plain key–value pairs, the way the process's instrument writes it (`traceparent`
/// and `tracestate` for W3C trace context).
public enum TraceFields {
    /// Whether the current instrument (the bootstrapped one, or a task-local tracer) records anything:
    /// false for swift-distributed-tracing's no-op instrument, so hot paths skip work whose result it
    /// would drop (decoding an event's metadata for its context, a middleware per request).
    public static var isActive: Bool {
        let instrument = InstrumentationSystem.instrument
        return !(instrument is NoOpInstrument) && !(instrument is NoOpTracer)
    }

    /// What the current instrument writes for `context`: empty when nothing traces (no tracer is
    /// bootstrapped) or `context` holds no span.
    public static func of(_ context: ServiceContext) -> [String: String] {
        var fields: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &fields, using: DictionaryCarrier())
        return fields
    }

    /// The trace context an event's metadata carries, read by the current instrument; nil when it
    /// carries none or nothing traces.
    public static func context(of metadata: EventMetadata) -> ServiceContext? {
        guard metadata.traceparent != nil || !metadata.custom.isEmpty || metadata.tracestate != nil else { return nil }
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(metadata, into: &context, using: MetadataTraceCarrier())
        return context.isEmpty ? nil : context
    }

    /// The trace fields an event carries, as the current instrument reads and writes them; without an
    /// instrument, its `traceparent` and `tracestate` as they are.
    public static func of(_ metadata: EventMetadata) -> [String: String] {
        if let context = context(of: metadata) {
            let fields = of(context)
            if !fields.isEmpty { return fields }
        }
        var fields: [String: String] = [:]
        if let traceparent = metadata.traceparent { fields[EventMetadata.traceparentKey] = traceparent }
        if let tracestate = metadata.tracestate { fields[EventMetadata.tracestateKey] = tracestate }
        return fields
    }

    /// Writes `fields` into `metadata` (``MetadataTraceCarrier``).
    public static func write(_ fields: [String: String], into metadata: inout EventMetadata) {
        let carrier = MetadataTraceCarrier()
        for (key, value) in fields { carrier.inject(value, forKey: key, into: &metadata) }
    }
}

/// A `[String: String]` carrier.
struct DictionaryCarrier: Injector, Extractor, Sendable {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }

    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}

/// Runs a store operation in a span (`annals.append`, `annals.read`, `annals.read_all`) with the
/// store's name and the stream as attributes; an error is recorded on the span and rethrown.
package func withStoreSpan<T>(
    _ name: String, store: String, stream: StreamName? = nil, _ operation: () async throws -> T
) async throws -> T {
    try await withSpan(name, ofKind: .internal) { span in
        // A no-op span drops attributes, but setting them still builds a dictionary per call.
        if span.isRecording {
            span.attributes["annals.store"] = store
            if let stream { span.attributes["annals.stream"] = stream.rawValue }
        }
        return try await operation()
    }
}
