import Annals
import AnnalsWire
import Hummingbird
import NIOCore
import Synchronization

/// How a streaming (NDJSON) read pages through the store within a byte budget.
///
/// A fixed page of 512 events held whatever their size: four readers that never read, on a stream of
/// 1 MiB events, took a server from 44 MB to 473 MB. The page now follows the events' size: it starts
/// at one event, and each next page holds about `budget` bytes at the average size seen so far (never fewer
/// than one event, never more than 512). Lines are written in chunks of at most `chunkBytes` (one line,
/// when a line is longer), and at the end of each page: a slow client holds the writer at the chunk it
/// is on, and the page it came from is all that waits in memory besides. (One write per event instead
/// cost a flush, a system call, per event.)
enum NDJSONPaging {
    static let maximumPage = 512
    /// One event first: its size sets the next page's, so even the first page stays near the budget.
    static let firstPage = 1
    /// The most bytes of lines gathered before a write.
    static let chunkBytes = 64 << 10

    /// Events for the next page, given the average encoded size so far.
    static func pageSize(averageEventBytes: Int, budget: Int) -> Int {
        guard averageEventBytes > 0 else { return firstPage }
        return max(1, min(maximumPage, budget / averageEventBytes))
    }

    static func stream<Cursor: Sendable>(
        from start: Cursor?,
        limit: Int,
        budget: Int,
        following: @Sendable (RecordedEvent) -> Cursor?,
        read: @Sendable (_ cursor: Cursor?, _ count: Int) async throws -> [RecordedEvent],
        into writer: inout any ResponseBodyWriter
    ) async throws {
        var next = start
        var remaining = limit
        var bytesSeen = 0
        var eventsSeen = 0
        while remaining > 0 {
            let size = pageSize(averageEventBytes: eventsSeen == 0 ? 0 : bytesSeen / eventsSeen, budget: budget)
            let want = min(remaining, size)
            let page = try await read(next, want)
            var chunk: [UInt8] = []
            for event in page {
                let line = WireFormat.encode(event)
                if !chunk.isEmpty, chunk.count + line.count + 1 > chunkBytes {
                    try await writer.write(ByteBuffer(bytes: chunk))
                    chunk.removeAll(keepingCapacity: true)
                }
                chunk += line
                chunk.append(0x0A)
                bytesSeen &+= line.count + 1
                eventsSeen += 1
            }
            if !chunk.isEmpty { try await writer.write(ByteBuffer(bytes: chunk)) }
            remaining -= page.count
            guard page.count == want, let last = page.last, let cursor = following(last) else { break }
            next = cursor
        }
    }
}

/// How many of something (live subscriptions, open streaming reads) each token holds, against a limit.
final class TokenSlots: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// Takes a slot for `token` if it holds fewer than `limit`; false when it holds them all.
    func acquire(_ token: String, limit: Int) -> Bool {
        counts.withLock { counts in
            guard counts[token, default: 0] < limit else { return false }
            counts[token, default: 0] += 1
            return true
        }
    }

    func release(_ token: String) {
        counts.withLock { counts in
            counts[token, default: 1] -= 1
            if counts[token, default: 0] <= 0 { counts[token] = nil }
        }
    }
}
