import Annals
import AnnalsFileStore
import ArgumentParser
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension AnnalsCommand {
    /// A workload for crash tests: appends random batches to random streams until killed, printing one
    /// line per acknowledged append. Hidden from help; the durability tests kill it with SIGKILL and
    /// check that every acknowledged event survived.
    struct CrashWorkload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crash-workload",
            abstract: "Append random batches until killed, printing each acknowledgement (for crash tests).",
            shouldDisplay: false
        )

        @OptionGroup var store: StoreOptions

        @Option(help: "Seed for the random choices.")
        var seed: UInt64 = 1

        @Option(help: "Concurrent appenders.")
        var writers: Int = 4

        @Option(help: "Segment size in bytes (small values exercise segment rollover).")
        var segmentSize: Int = 256 * 1024

        @Option(help: "Events between two flushes of the index (small values flush runs all the time).")
        var memtableEvents: Int = IndexConfiguration().memtableEvents

        func run() async throws {
            var configuration = store.configuration
            configuration.segmentSize = segmentSize
            configuration.index.memtableEvents = memtableEvents
            let store = try FileEventStore.open(at: store.directory, configuration: configuration)
            Acknowledgements.print("ready")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<max(1, writers) {
                    group.addTask {
                        var random = SplitMix(seed: seed &+ UInt64(writer) &* 0x9E37_79B9)
                        while true {
                            let stream = try StreamName("crash-\(random.next() % 16)")
                            let count = Int(random.next() % 5) + 1
                            let events = (0..<count).map { _ in
                                let size = Int(random.next() % 300)
                                let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                                return EventData(type: "Crashed", data: Data(bytes), contentType: .binary)
                            }
                            let result = try await store.append(events, to: stream, expecting: .any)
                            let ids = events.map { "\"\($0.id)\"" }.joined(separator: ",")
                            let data = events.map { "\"\($0.data.base64EncodedString())\"" }.joined(separator: ",")
                            let line =
                                #"{"stream":"\#(stream)","firstRevision":\#(result.firstRevision),"firstPosition":\#(result.firstPosition),"ids":[\#(ids)],"data":[\#(data)]}"#
                            Acknowledgements.print(line)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

/// Writes acknowledgement lines whole, one at a time, and flushes each before the next append can be
/// acknowledged to the test.
enum Acknowledgements {
    private static let lock = Mutex(())

    /// Writes the line with one unbuffered `write`, so a SIGKILL never leaves half a line.
    static func print(_ line: String) {
        lock.withLock { _ in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
    }
}

/// A small deterministic random generator.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
