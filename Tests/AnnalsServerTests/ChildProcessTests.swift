import AnnalsTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The harness that starts `annals serve`, the crash workload, `pg_ctl` and the browser: a child
/// inherits no descriptor it was not given, and waiting for a child ends when it exits.
@Suite("Child processes of the tests")
struct ChildProcessTests {
    @Test("a child inherits only its standard descriptors, even ones opened without close-on-exec")
    func nothingInherited() throws {
        var leaky: [Int32] = [0, 0]
        #expect(pipe(&leaky) == 0)
        defer { for descriptor in leaky { close(descriptor) } }
        // `ls` lists its own /proc/self/fd: 0, 1, 2 and the directory it is reading.
        let child = try Child(executable: "/bin/ls", arguments: ["/proc/self/fd"])
        #expect(child.wait() == 0)
        let listed = Set(child.output.split(separator: "\n").compactMap { Int32($0) })
        #expect(listed.isSubset(of: [0, 1, 2, 3]), "the child had \(listed.sorted())")
        #expect(!listed.contains(leaky[0]) && !listed.contains(leaky[1]))
    }

    @Test("a child's exit ends the wait even when a process it started still holds its output open")
    func exitEndsTheWait() throws {
        let started = ContinuousClock.now
        let child = try Child(executable: "/bin/sh", arguments: ["-c", "sleep 20 & echo started"])
        #expect(child.wait() == 0)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(child.output.contains("started"))
    }

    @Test("descriptors handed over land on 3, 4, … in the order given")
    func extraDescriptors() throws {
        let first = try Spawn.pipe()
        let second = try Spawn.pipe()
        defer { for descriptor in [first.read, first.write, second.read, second.write] { close(descriptor) } }
        let pid = try Spawn.start(
            "/bin/sh", ["-c", "echo three >&3; echo four >&4"], output: .null, extra: [first.write, second.write])
        #expect(Spawn.exitCode(of: pid) == 0)
        var buffer = [UInt8](repeating: 0, count: 64)
        let one = read(first.read, &buffer, buffer.count)
        #expect(String(decoding: buffer[0..<max(one, 0)], as: UTF8.self) == "three\n")
        let two = read(second.read, &buffer, buffer.count)
        #expect(String(decoding: buffer[0..<max(two, 0)], as: UTF8.self) == "four\n")
    }
}
