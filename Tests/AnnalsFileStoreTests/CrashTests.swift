import Annals
import AnnalsTestSupport
import Foundation
import Testing

@testable import AnnalsFileStore

#if canImport(Glibc)
    import Glibc
#endif

@Suite("File store: killing the writer process")
struct CrashTests {
    struct Acknowledgement: Decodable {
        var stream: String
        var firstRevision: UInt64
        var firstPosition: UInt64
        var ids: [UUID]
        var data: [String]
    }

    /// Iterations in CI; set ANNALS_CRASH_ITERATIONS for thousands.
    static var iterations: Int {
        ProcessInfo.processInfo.environment["ANNALS_CRASH_ITERATIONS"].flatMap(Int.init) ?? 20
    }

    @Test("every acknowledged event survives SIGKILL at a random moment, then reopening", .timeLimit(.minutes(5)))
    func killAtRandom() async throws {
        let binary = Child.binary
        try #require(
            FileManager.default.isExecutableFile(atPath: binary), "the annals binary is not built at \(binary)")
        var random = SeededRandom(seed: UInt64(Date().timeIntervalSince1970))
        for iteration in 0..<Self.iterations {
            let directory = TemporaryDirectory("annals-kill")
            defer { directory.remove() }
            let wanted = Int(random.next() % 400) + 1
            let (path, seed) = (directory.path, random.next())
            // Blocking reads and waitpid: on a thread of their own, not Swift's few concurrency threads.
            let (lines, killed, status) = try await offThread {
                try Self.runAndKill(binary, directory: path, seed: seed, afterAcknowledgements: wanted)
            }
            #expect(killed, "the workload ended by itself: status \(status)")
            let acknowledgements = try lines.map { try JSONDecoder().decode(Acknowledgement.self, from: Data($0.utf8)) }
            let store = try FileEventStore.open(at: directory.path, configuration: .tiny())
            for ack in acknowledgements {
                let stream = try StreamName(ack.stream)
                let events = try await store.read(
                    stream, from: StreamRevision(ack.firstRevision), direction: .forwards, limit: ack.ids.count)
                #expect(events.map(\.id) == ack.ids, "iteration \(iteration): an acknowledged batch is missing")
                for (index, event) in events.enumerated() where index < ack.data.count {
                    #expect(event.data == Data(base64Encoded: ack.data[index]), "iteration \(iteration): changed data")
                    #expect(event.position.value == ack.firstPosition + UInt64(index), "iteration \(iteration): moved")
                }
            }
            let log = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
            #expect(log.map(\.position.value) == Array(0..<UInt64(log.count)), "iteration \(iteration): gaps")
            #expect(log.count >= acknowledgements.reduce(0) { $0 + $1.ids.count })
            try await Durability.appendWorks(store)
            await store.close()
        }
    }

    /// Starts the crash workload, reads acknowledgements until `count` arrive, kills it with SIGKILL, and
    /// returns every acknowledgement it printed (those still in the pipe included).
    private static func runAndKill(_ binary: String, directory: String, seed: UInt64, afterAcknowledgements count: Int)
        throws
        -> (lines: [String], killed: Bool, status: Int32)
    {
        // Spawn (posix_spawn and waitpid), not Foundation's Process: Process's SIGCHLD handling was seen to leave
        // other tests' timers and child processes waiting forever.
        let (fd, write) = try Spawn.pipe()
        let pid: pid_t
        do {
            defer { close(write) }
            pid = try Spawn.start(
                binary,
                [
                    "crash-workload", "--data", directory, "--seed", String(seed), "--segment-size", "65536",
                    "--memtable-events", "64",
                ],
                output: .descriptor(write), error: .null)
        } catch {
            close(fd)
            throw error
        }
        defer { close(fd) }
        var pending = [UInt8]()
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var killed = false
        while true {
            let got = read(fd, &buffer, buffer.count)
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            pending += buffer[0..<got]
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if line != "ready" { lines.append(line) }
            }
            if !killed, lines.count >= count {
                kill(pid, SIGKILL)
                killed = true
            }
        }
        return (lines, killed, Spawn.exitCode(of: pid) ?? -1)
    }
}
