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

    func withStore<R: Sendable>(
        limits: EventStoreLimits,
        _ body: @Sendable (any EventStore) async throws -> R
    ) async throws -> R {
        let directory = TemporaryDirectory("annals-conformance")
        defer { directory.remove() }
        let configuration = FileEventStore.Configuration(limits: limits, segmentSize: max(segmentSize, 64 * 1024))
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
}
