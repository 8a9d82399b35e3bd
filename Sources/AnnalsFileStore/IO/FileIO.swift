#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Every file operation the file store makes, behind one small interface: the fault seam.
///
/// ``PosixFileIO`` performs them; tests substitute an implementation that fails the k-th write or
/// flush, runs out of space, or simulates power loss (`FaultyFileIO` in the tests). The engine never
/// touches a file any other way.
package protocol FileIO: Sendable {
    /// Opens (and with `create`, creates) a file for reading and writing; returns a descriptor.
    func open(_ path: String, create: Bool) throws -> Int32
    func close(_ fd: Int32)
    /// Writes all of `bytes` at `offset`.
    func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws
    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read (0 at the end).
    func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int
    /// Makes the file's data durable (`fdatasync`).
    func sync(_ fd: Int32) throws
    /// Makes a directory's entries durable (`fsync` on the directory).
    func syncDirectory(_ path: String) throws
    func truncate(_ fd: Int32, to size: Int64) throws
    /// Reserves space for `size` bytes (the file reads as zeros beyond what was written).
    func preallocate(_ fd: Int32, size: Int64) throws
    func size(_ fd: Int32) throws -> Int64
    func rename(_ from: String, to: String) throws
    func remove(_ path: String) throws
    func makeDirectory(_ path: String) throws
    func fileExists(_ path: String) -> Bool
    func contents(ofDirectory path: String) throws -> [String]
}

/// A failed file operation: which one, on what, and the `errno`.
package struct FileIOError: Error, Sendable, CustomStringConvertible {
    package var operation: String
    package var path: String
    package var code: Int32

    package init(_ operation: String, _ path: String, code: Int32) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    package var description: String {
        "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
    }

    package var isNoSpace: Bool { code == ENOSPC }
}

extension FileIO {
    /// Reads exactly `count` bytes at `offset`, or fewer at the end of the file.
    package func read(_ fd: Int32, count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var total = 0
        while total < count {
            let got = try bytes.withUnsafeMutableBytes { (buffer) throws -> Int in
                try read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]), at: offset + Int64(total))
            }
            if got == 0 { break }
            total += got
        }
        if total < count { bytes.removeLast(count - total) }
        return bytes
    }

    /// Replaces a small file whole, crash-safely: writes `bytes` to `<path>.tmp`, flushes it, renames it
    /// over `path` and flushes `directory` (the file's own). A crash leaves the old file or the new one.
    package func replaceFile(_ path: String, with bytes: [UInt8], directory: String) throws {
        let temporary = path + ".tmp"
        let fd = try open(temporary, create: true)
        do {
            try truncate(fd, to: 0)
            try write(fd, bytes, at: 0)
            try sync(fd)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        try rename(temporary, to: path)
        try syncDirectory(directory)
    }

    package func write(_ fd: Int32, _ bytes: [UInt8], at offset: Int64) throws {
        try bytes.withUnsafeBytes { buffer in try write(fd, buffer, at: offset) }
    }
}
