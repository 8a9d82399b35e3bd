import Annals
import Foundation

/// The JSON shapes of the HTTP API, shared by the server and the Swift client so both sides read and
/// write exactly the same bytes. `docs/http-api.md` describes them.
///
/// An event's `data` is written as JSON when its content type is JSON and its bytes are one valid JSON
/// value, and as base64 otherwise (`data` for `application/octet-stream`, `dataBase64` for JSON-typed
/// bytes that are not JSON). Metadata likewise (`metadata` or `metadataBase64`; absent when empty).
public enum WireFormat {
    // MARK: Events to append

    /// Decodes an append body: an array of events (or one event object).
    public static func decodeEvents(_ body: [UInt8], maxDepth: Int = 64) throws(EventStoreError) -> [EventData] {
        let root = try JSONNode.parse(body, maxDepth: maxDepth)
        let nodes: [JSONNode]
        switch root.kind {
        case .array(let elements): nodes = elements
        case .object: nodes = [root]
        default: throw EventStoreError(.invalidEvent, "The body must be a JSON array of events.")
        }
        var events: [EventData] = []
        events.reserveCapacity(nodes.count)
        for (index, node) in nodes.enumerated() {
            events.append(try decodeEvent(node, in: body, index: index))
        }
        return events
    }

    static func decodeEvent(_ node: JSONNode, in body: [UInt8], index: Int) throws(EventStoreError) -> EventData {
        func invalid(_ message: String) -> EventStoreError {
            EventStoreError(.invalidEvent, "Event \(index): \(message)")
        }
        guard case .object(let members) = node.kind else { throw invalid("must be a JSON object.") }
        let known: Set<String> = ["id", "type", "data", "dataBase64", "contentType", "metadata", "metadataBase64"]
        if let unknown = members.first(where: { !known.contains($0.key) }) {
            throw invalid("unknown field '\(unknown.key)'.")
        }
        let id: UUID
        if let idNode = node["id"] {
            guard let text = idNode.stringValue, let parsed = UUID(uuidString: text) else {
                throw invalid("'id' must be a UUID string.")
            }
            id = parsed
        } else {
            id = UUID()
        }
        guard let type = node["type"]?.stringValue else { throw invalid("'type' (a string) is required.") }
        let contentType: ContentType
        switch node["contentType"]?.stringValue {
        case nil where node["contentType"] == nil: contentType = node["dataBase64"] == nil ? .json : .binary
        case ContentType.json.rawValue: contentType = .json
        case ContentType.binary.rawValue: contentType = .binary
        default:
            throw invalid("'contentType' must be \"application/json\" or \"application/octet-stream\".")
        }
        let data: Data
        switch (node["data"], node["dataBase64"]) {
        case (let json?, nil) where contentType == .json:
            data = Data(body[json.range])
        case (let text?, nil):
            guard let string = text.stringValue, let bytes = Data(base64Encoded: string) else {
                throw invalid("binary 'data' must be a base64 string.")
            }
            data = bytes
        case (nil, let text?):
            guard let string = text.stringValue, let bytes = Data(base64Encoded: string) else {
                throw invalid("'dataBase64' must be a base64 string.")
            }
            data = bytes
        case (nil, nil):
            throw invalid("'data' is required.")
        case (_?, _?):
            throw invalid("give 'data' or 'dataBase64', not both.")
        }
        let metadata: Data
        switch (node["metadata"], node["metadataBase64"]) {
        case (nil, nil): metadata = Data()
        case (let json?, nil): metadata = json.isNull ? Data() : Data(body[json.range])
        case (nil, let text?):
            guard let string = text.stringValue, let bytes = Data(base64Encoded: string) else {
                throw invalid("'metadataBase64' must be a base64 string.")
            }
            metadata = bytes
        case (_?, _?):
            throw invalid("give 'metadata' or 'metadataBase64', not both.")
        }
        return EventData(id: id, type: type, data: data, contentType: contentType, metadata: metadata)
    }

    /// Encodes events to append (the client's side).
    public static func encodeEvents(_ events: [EventData]) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginArray()
        for event in events {
            writer.beginObject()
            writer.member("id", event.id.uuidString.lowercased())
            writer.member("type", event.type)
            writeContent(event.data, contentType: event.contentType, metadata: event.metadata, into: &writer)
            writer.endObject()
        }
        writer.endArray()
        return writer.bytes
    }

    static func writeContent(_ data: Data, contentType: ContentType, metadata: Data, into writer: inout JSONWriter) {
        writer.member("contentType", contentType.rawValue)
        if contentType == .binary {
            writer.member("data", data.base64EncodedString())
        } else if isEmbeddable(data) {
            writer.key("data")
            writer.raw(data)
        } else {
            writer.member("dataBase64", data.base64EncodedString())
        }
        if metadata.isEmpty {
        } else if isEmbeddable(metadata), !metadata.elementsEqual("null".utf8) {
            writer.key("metadata")
            writer.raw(metadata)
        } else {
            writer.member("metadataBase64", metadata.base64EncodedString())
        }
    }

    /// Whether bytes can go into the JSON as they are and come back identical: one valid JSON value,
    /// with no whitespace around it and no line break in it (NDJSON and SSE are one event per line).
    /// Anything else travels as base64, still byte for byte.
    static func isEmbeddable(_ bytes: Data) -> Bool {
        guard let first = bytes.first, let last = bytes.last else { return false }
        // Line breaks anywhere (so also at the ends); spaces and tabs at the ends.
        if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 { return false }
        if bytes.contains(where: { $0 == 0x0A || $0 == 0x0D }) { return false }
        return JSONNode.isValid(bytes)
    }

    // MARK: Recorded events

    /// Writes a recorded event as one JSON object on one line: `id`, `stream`, `revision`, `position`,
    /// `type`, its content (`contentType`, `data` or `dataBase64`, `metadata` or `metadataBase64`) and
    /// `recordedAt`. It is a line of an NDJSON read, and the `data` of a subscription's event.
    public static func write(_ event: RecordedEvent, into writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("id", event.id.uuidString.lowercased())
        writer.member("stream", event.stream.rawValue)
        writer.member("revision", event.revision.value)
        writer.member("position", event.position.value)
        writer.member("type", event.type)
        writeContent(event.data, contentType: event.contentType, metadata: event.metadata, into: &writer)
        writer.member("recordedAt", timestamp(event.recordedAt))
        writer.endObject()
    }

    /// A recorded event as JSON, on one line, as `write(_:into:)` writes it.
    public static func encode(_ event: RecordedEvent) -> [UInt8] {
        var writer = JSONWriter()
        write(event, into: &writer)
        return writer.bytes
    }

    /// Decodes one recorded event (the client's side, and `annals import`).
    public static func decodeRecorded(_ node: JSONNode, in body: [UInt8]) throws(EventStoreError) -> RecordedEvent {
        guard case .object(let members) = node.kind else {
            throw EventStoreError(.invalidEvent, "A recorded event must be a JSON object.")
        }
        let placement: Set<String> = ["stream", "revision", "position", "recordedAt"]
        let content = try decodeEvent(
            JSONNode(kind: .object(members.filter { !placement.contains($0.key) }), range: node.range),
            in: body, index: 0)
        guard let streamText = node["stream"]?.stringValue else {
            throw EventStoreError(.invalidEvent, "A recorded event lacks 'stream'.")
        }
        let stream = try StreamName(allowingSystemName: streamText)
        let revision = try unsigned(node["revision"], in: body, name: "revision")
        let position = try unsigned(node["position"], in: body, name: "position")
        guard let time = node["recordedAt"]?.stringValue, let recordedAt = parseTimestamp(time) else {
            throw EventStoreError(.invalidEvent, "A recorded event lacks a valid 'recordedAt'.")
        }
        return RecordedEvent(
            content, stream: stream, revision: StreamRevision(revision), position: Position(position),
            recordedAt: recordedAt)
    }

    /// A non-negative integer member, checked to fit 63 bits.
    public static func unsigned(_ node: JSONNode?, in body: [UInt8], name: String) throws(EventStoreError) -> UInt64 {
        guard let value = node?.unsignedValue(in: body) else {
            throw EventStoreError(.invalidArgument, "'\(name)' must be an integer from 0 to \(Int64.max).")
        }
        return value
    }

    // MARK: Results, streams, errors

    /// The answer to an append: `{"firstRevision": …, "nextExpectedRevision": …, "firstPosition": …,
    /// "lastPosition": …}`.
    public static func encode(_ result: AppendResult) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("firstRevision", result.firstRevision.value)
        writer.member("nextExpectedRevision", result.nextExpectedRevision.value)
        writer.member("firstPosition", result.firstPosition.value)
        writer.member("lastPosition", result.lastPosition.value)
        writer.endObject()
        return writer.bytes
    }

    /// Reads the answer to an append, as `encode(_:)` writes it (the client's side).
    ///
    /// - Throws: `invalid-json` when `body` is not JSON; `invalid-argument` when a member is missing or
    ///   not an integer from 0 to 2⁶³−1.
    public static func decodeAppendResult(_ body: [UInt8]) throws(EventStoreError) -> AppendResult {
        let node = try JSONNode.parse(body)
        return AppendResult(
            firstRevision: StreamRevision(try unsigned(node["firstRevision"], in: body, name: "firstRevision")),
            nextExpectedRevision: StreamRevision(
                try unsigned(node["nextExpectedRevision"], in: body, name: "nextExpectedRevision")),
            firstPosition: Position(try unsigned(node["firstPosition"], in: body, name: "firstPosition")),
            lastPosition: Position(try unsigned(node["lastPosition"], in: body, name: "lastPosition")))
    }

    /// Writes a stream's information as one JSON object: `stream`, `lastRevision` (`null` when it has no
    /// events), `eventCount`, `isDeleted`, `isTombstoned` and `metadata`. It is the answer to
    /// `GET /streams/{stream}/metadata` and an entry of `GET /streams`.
    public static func write(_ info: StreamInfo, into writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("stream", info.stream.rawValue)
        writer.key("lastRevision")
        if let last = info.lastRevision { writer.number(last.value) } else { writer.null() }
        writer.member("eventCount", info.visibleEventCount)
        writer.member("isDeleted", info.isDeleted)
        writer.member("isTombstoned", info.isTombstoned)
        writer.key("metadata")
        writer.raw(encodeMetadata(info.metadata))
        writer.endObject()
    }

    /// Reads a stream's information, as `write(_:into:)` writes it, from `node` inside `body` (the
    /// client's side, and the `streamState` lines of an import). `isDeleted` and `isTombstoned` default to
    /// `false` and `metadata` to none when absent.
    ///
    /// - Throws: `invalid-argument` when `stream` or `eventCount` is missing, a member is malformed, or
    ///   the metadata breaks its schema (``decodeMetadata(_:)``); `invalid-stream-name` for a bad name.
    public static func decodeStreamInfo(_ node: JSONNode, in body: [UInt8]) throws(EventStoreError) -> StreamInfo {
        guard let name = node["stream"]?.stringValue else {
            throw EventStoreError(.invalidArgument, "A stream entry lacks 'stream'.")
        }
        let last: StreamRevision? =
            node["lastRevision"].map { $0.isNull } ?? true
            ? nil : StreamRevision(try unsigned(node["lastRevision"], in: body, name: "lastRevision"))
        let metadata = try node["metadata"].map { node throws(EventStoreError) in
            try decodeMetadata(Array(body[node.range]))
        }
        return StreamInfo(
            stream: try StreamName(allowingSystemName: name),
            lastRevision: last,
            visibleEventCount: try unsigned(node["eventCount"], in: body, name: "eventCount"),
            isDeleted: node["isDeleted"].flatMap { if case .bool(let b) = $0.kind { b } else { nil } } ?? false,
            isTombstoned: node["isTombstoned"].flatMap { if case .bool(let b) = $0.kind { b } else { nil } } ?? false,
            metadata: metadata ?? StreamMetadata())
    }

    /// Stream metadata as a JSON object with sorted keys, holding only the fields that are set (`{}` when
    /// none is), as ``decodeMetadata(_:)`` reads it.
    public static func encodeMetadata(_ metadata: StreamMetadata) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(metadata)) ?? Data("{}".utf8))
    }

    /// Decodes stream metadata against its documented schema: an object with `maxCount` (1 to
    /// 2⁶³−1), `maxAge` (seconds, 0 to 2⁶³−1), `truncateBefore` (a revision, 0 to 2⁶³−1) and `custom`
    /// (an object), each optional and none `null`. Every refusal is `invalid-argument` with a message
    /// that names the field and the rule.
    public static func decodeMetadata(_ body: [UInt8]) throws(EventStoreError) -> StreamMetadata {
        let node = try JSONNode.parse(body)
        guard case .object(let members) = node.kind else {
            throw EventStoreError(.invalidArgument, "Stream metadata is a JSON object.")
        }
        let known: Set<String> = ["maxCount", "maxAge", "truncateBefore", "custom"]
        if let unknown = members.first(where: { !known.contains($0.key) }) {
            throw EventStoreError(
                .invalidArgument,
                "Unknown metadata field '\(unknown.key)'; the fields are maxCount, maxAge, truncateBefore and custom.")
        }
        func whole(_ name: String, least: UInt64, meaning: String) throws(EventStoreError) -> UInt64? {
            guard let value = node[name] else { return nil }
            if value.isNull {
                throw EventStoreError(.invalidArgument, "'\(name)' must not be null; leave it out for \(meaning).")
            }
            guard let number = value.unsignedValue(in: body), number >= least else {
                throw EventStoreError(
                    .invalidArgument, "'\(name)' must be a whole number from \(least) to \(Int64.max).")
            }
            return number
        }
        var metadata = StreamMetadata()
        metadata.maxCount = try whole("maxCount", least: 1, meaning: "no count limit").map { Int($0) }
        metadata.maxAge = try whole("maxAge", least: 0, meaning: "no age limit").map { Int($0) }
        metadata.truncateBefore = try whole("truncateBefore", least: 0, meaning: "no truncation").map {
            StreamRevision($0)
        }
        if let custom = node["custom"] {
            guard case .object = custom.kind else {
                throw EventStoreError(
                    .invalidArgument, "'custom' must be a JSON object; leave it out when there is nothing to keep.")
            }
            do {
                metadata.custom = try JSONDecoder().decode([String: JSONValue].self, from: Data(body[custom.range]))
            } catch {
                // The parser accepted these bytes already; a JSON object always decodes as JSONValue.
                throw EventStoreError(.invalidArgument, "'custom' must be a JSON object.")
            }
        }
        return metadata
    }

    /// The JSON body of an error answer: `{"error": {"code": …, "message": …, …}}`.
    public static func encode(_ error: EventStoreError) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("error")
        writer.beginObject()
        writer.member("code", error.code.rawValue)
        writer.member("message", error.message)
        if let stream = error.stream { writer.member("stream", stream.rawValue) }
        if let expected = error.expectedRevision { writer.member("expectedRevision", expected.description) }
        if error.code == .wrongExpectedRevision {
            writer.key("actualRevision")
            if let actual = error.actualRevision { writer.number(actual.value) } else { writer.null() }
        }
        if let id = error.eventID { writer.member("eventId", id.uuidString.lowercased()) }
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    /// Reads an error answer back into the error the server raised (the client's side).
    public static func decodeError(_ body: [UInt8]) -> EventStoreError? {
        guard let root = try? JSONNode.parse(body), let node = root["error"],
            let code = node["code"]?.stringValue, let message = node["message"]?.stringValue
        else { return nil }
        var error = EventStoreError(.init(code), message)
        error.stream = node["stream"]?.stringValue.flatMap { try? StreamName(allowingSystemName: $0) }
        error.expectedRevision = node["expectedRevision"]?.stringValue.flatMap { ExpectedRevision($0) }
        if let actual = node["actualRevision"], !actual.isNull {
            error.actualRevision = (try? unsigned(actual, in: body, name: "actualRevision")).map { StreamRevision($0) }
        }
        error.eventID = node["eventId"]?.stringValue.flatMap(UUID.init(uuidString:))
        return error
    }

    /// A stream name (or any text) as one URL path segment or query value: everything but letters,
    /// digits and `-._~` percent-encoded, so `/`, `%`, `+` and `?` survive the trip.
    public static func percentEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    // MARK: Time

    /// `2026-12-03T13:22:17.553Z`: UTC, to the millisecond (rounded to the nearest, so a time parsed
    /// from this text writes the same text again; Foundation's formatter truncates, and a parsed
    /// `.553` that is stored as `.55299…` came back as `.552`).
    public static func timestamp(_ date: Date) -> String {
        let scaled = (date.timeIntervalSince1970 * 1000).rounded()
        // Years 0000–9999 only; anything else (never a clock's reading) is written clamped.
        let milliseconds = Int64(max(-62_167_219_200_000, min(253_402_300_799_999, scaled)))
        let (days, inDay) = floorDivide(milliseconds, 86_400_000)
        // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        var text: [UInt8] = []
        text.reserveCapacity(24)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                text.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(year, 4)
        text.append(UInt8(ascii: "-"))
        digits(month, 2)
        text.append(UInt8(ascii: "-"))
        digits(day, 2)
        text.append(UInt8(ascii: "T"))
        digits(inDay / 3_600_000, 2)
        text.append(UInt8(ascii: ":"))
        digits(inDay / 60_000 % 60, 2)
        text.append(UInt8(ascii: ":"))
        digits(inDay / 1_000 % 60, 2)
        text.append(UInt8(ascii: "."))
        digits(inDay % 1_000, 3)
        text.append(UInt8(ascii: "Z"))
        return String(decoding: text, as: UTF8.self)
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    /// Reads an ISO 8601 time with or without fractional seconds (`2025-01-15T09:30:12.345Z` or
    /// `2025-01-15T09:30:12Z`), as ``timestamp(_:)`` writes it; `nil` when `text` is not one.
    public static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}
