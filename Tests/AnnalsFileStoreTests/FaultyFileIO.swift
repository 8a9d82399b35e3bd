import AnnalsTestSupport
import Foundation
import Synchronization

@testable import AnnalsFileStore

#if canImport(Glibc)
    import Glibc
#endif

/// A ``FileIO`` that fails on purpose: the k-th write or flush, no space left, and simulated power loss.
///
/// Every write not yet covered by a successful `sync` of its file is remembered with the bytes it
/// replaced, so ``simulatePowerLoss(seed:)`` can take it back, keep it, or tear it at 512-byte sectors —
/// in any combination, which also reorders them — as a disk without a flush is free to do.
final class FaultyFileIO: FileIO {
    struct Plan: Sendable {
        /// Fail the k-th write (1-based, counted from this object's creation) with `writeError`.
        var failWrite: Int?
        var writeError: Int32 = EIO
        /// Write only the first half of the failing write's bytes before failing.
        var shortWrite = false
        /// Fail the k-th flush with EIO.
        var failSync: Int?
        /// Fail the k-th preallocation with ENOSPC (segment creation).
        var failPreallocate: Int?
    }

    private struct UnsyncedWrite {
        var offset: Int64
        var old: [UInt8]
        var new: [UInt8]
    }

    private struct State {
        var plan: Plan
        var writes = 0
        var syncs = 0
        var preallocations = 0
        var unsynced: [Int32: [UnsyncedWrite]] = [:]
        /// Unsynced writes of files closed since, by path: a descriptor number may be reused.
        var closedUnsynced: [(path: String, writes: [UnsyncedWrite])] = []
        var paths: [Int32: String] = [:]
        var isCrashed = false
    }

    private let base = PosixFileIO()
    private let state: Mutex<State>

    init(_ plan: Plan = Plan()) {
        state = Mutex(State(plan: plan))
    }

    var writeCount: Int { state.withLock { $0.writes } }
    var syncCount: Int { state.withLock { $0.syncs } }

    /// From now on every operation fails, as if the machine had stopped.
    func crash() { state.withLock { $0.isCrashed = true } }

    private func checkCrashed(_ operation: String) throws {
        if state.withLock({ $0.isCrashed }) { throw FileIOError(operation, "(crashed)", code: EIO) }
    }

    func open(_ path: String, create: Bool) throws -> Int32 {
        try checkCrashed("open")
        let fd = try base.open(path, create: create)
        state.withLock { $0.paths[fd] = path }
        return fd
    }

    func close(_ fd: Int32) {
        state.withLock { state in
            if let writes = state.unsynced.removeValue(forKey: fd), let path = state.paths[fd], !writes.isEmpty {
                state.closedUnsynced.append((path, writes))
            }
            state.paths[fd] = nil
        }
        base.close(fd)
    }

    func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        try checkCrashed("write")
        let (number, plan) = state.withLock { state in
            state.writes += 1
            return (state.writes, state.plan)
        }
        let old = try base.read(fd, count: bytes.count, at: offset)
        if number == plan.failWrite {
            if plan.shortWrite {
                let half = UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count / 2)])
                try base.write(fd, half, at: offset)
                remember(fd, offset: offset, old: Array(old.prefix(half.count)), new: Array(half))
            }
            throw FileIOError("write", "fd \(fd)", code: plan.writeError)
        }
        try base.write(fd, bytes, at: offset)
        remember(fd, offset: offset, old: old, new: Array(bytes))
    }

    private func remember(_ fd: Int32, offset: Int64, old: [UInt8], new: [UInt8]) {
        state.withLock { $0.unsynced[fd, default: []].append(UnsyncedWrite(offset: offset, old: old, new: new)) }
    }

    func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try base.read(fd, into: buffer, at: offset)
    }

    func sync(_ fd: Int32) throws {
        try checkCrashed("sync")
        let fails = state.withLock { state in
            state.syncs += 1
            return state.syncs == state.plan.failSync
        }
        if fails { throw FileIOError("fdatasync", "fd \(fd)", code: EIO) }
        try base.sync(fd)
        state.withLock { $0.unsynced[fd] = nil }
    }

    func syncDirectory(_ path: String) throws {
        try checkCrashed("fsync directory")
        try base.syncDirectory(path)
    }

    func truncate(_ fd: Int32, to size: Int64) throws {
        try checkCrashed("ftruncate")
        try base.truncate(fd, to: size)
    }

    func preallocate(_ fd: Int32, size: Int64) throws {
        try checkCrashed("fallocate")
        let fails = state.withLock { state in
            state.preallocations += 1
            return state.preallocations == state.plan.failPreallocate
        }
        if fails { throw FileIOError("fallocate", "fd \(fd)", code: ENOSPC) }
        try base.preallocate(fd, size: size)
    }

    func size(_ fd: Int32) throws -> Int64 { try base.size(fd) }
    func rename(_ from: String, to: String) throws {
        try checkCrashed("rename")
        try base.rename(from, to: to)
    }
    func remove(_ path: String) throws {
        try checkCrashed("unlink")
        try base.remove(path)
    }
    func makeDirectory(_ path: String) throws {
        try checkCrashed("mkdir")
        try base.makeDirectory(path)
    }
    func fileExists(_ path: String) -> Bool { base.fileExists(path) }
    func contents(ofDirectory path: String) throws -> [String] { try base.contents(ofDirectory: path) }

    /// Undoes, keeps or tears each write that no flush covered, at random, as power loss may.
    ///
    /// Writes are undone newest first, so an undone write restores exactly what the disk held before it.
    /// Files stay open; the caller reopens the store on fresh descriptors.
    func simulatePowerLoss(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let (unsynced, closed) = state.withLock { state in
            defer {
                state.unsynced = [:]
                state.closedUnsynced = []
            }
            return (state.unsynced, state.closedUnsynced)
        }
        for (fd, writes) in unsynced { try lose(writes, fd: fd, &random) }
        // Files closed with unflushed writes: still there if not renamed or removed since.
        for (path, writes) in closed where base.fileExists(path) {
            let fd = try base.open(path, create: false)
            defer { base.close(fd) }
            try lose(writes, fd: fd, &random)
        }
    }

    private func lose(_ writes: [UnsyncedWrite], fd: Int32, _ random: inout SeededRandom) throws {
        for write in writes.reversed() {
            switch random.next() % 3 {
            case 0:
                break  // reached the disk
            case 1:
                try base.write(fd, write.old, at: write.offset)  // never reached it
            default:
                // Torn: each 512-byte disk sector independently old or new.
                var bytes = write.new
                var low = 0
                while low < bytes.count {
                    let sectorEnd = Int((write.offset + Int64(low)) / 512 + 1) * 512 - Int(write.offset)
                    let high = min(bytes.count, sectorEnd)
                    if random.next() % 2 == 0 {
                        let oldHigh = min(high, write.old.count)
                        if low < oldHigh { bytes.replaceSubrange(low..<oldHigh, with: write.old[low..<oldHigh]) }
                    }
                    low = high
                }
                try base.write(fd, bytes, at: write.offset)
            }
        }
    }
}
