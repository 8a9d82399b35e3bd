import Annals
import AnnalsTesting
import Foundation

@testable import AnnalsFileStore

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    init(_ label: String = "annals") {
        path =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))").path
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs the conformance suite on file stores in temporary directories, with small segments so that
/// segment rollover happens within the checks.
struct FileStoreHarness: EventStoreHarness {
    var segmentSize = 64 * 1024
    /// The on-disk index's configuration; nil keeps the whole index in memory.
    var index: IndexConfiguration? = nil

    func withStore<R: Sendable>(
        limits: EventStoreLimits,
        _ body: @Sendable (any EventStore) async throws -> R
    ) async throws -> R {
        let directory = TemporaryDirectory("annals-conformance")
        defer { directory.remove() }
        var configuration = FileEventStore.Configuration(limits: limits, segmentSize: max(segmentSize, 64 * 1024))
        configuration.index = index ?? IndexConfiguration()
        configuration.keepsIndexInMemory = index == nil
        return try await FileEventStore.withStore(at: directory.path, configuration: configuration) { store in
            try await body(store)
        }
    }
}

/// Reopens a store between checks: the same directory, a fresh process state.
extension FileEventStore.Configuration {
    static func small(limits: EventStoreLimits = EventStoreLimits()) -> Self {
        Self(limits: limits, segmentSize: 64 * 1024)
    }

    /// ``small(limits:)`` with the on-disk index: memtables of 64 events and a 1 MiB budget, so that
    /// flushes and cache evictions happen within every check.
    static func smallOnDisk(limits: EventStoreLimits = EventStoreLimits(maxEventsPerAppend: 500)) -> Self {
        var configuration = small(limits: limits)
        configuration.index = .tiny
        return configuration
    }
}

extension IndexConfiguration {
    /// Memtables of 64 events and the smallest budget the default limits allow (two memtables and 1 MiB
    /// of cache): every test flushes runs, merges them and evicts blocks.
    static let tiny = IndexConfiguration(
        memoryBudget: IndexConfiguration(memoryBudget: 0, memtableEvents: 64).memtableBytes(limits: EventStoreLimits())
            + (1 << 20),
        memtableEvents: 64)
}
