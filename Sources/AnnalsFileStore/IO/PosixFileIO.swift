#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The real file system, through POSIX calls.
package struct PosixFileIO: FileIO {
    package init() {}

    package func open(_ path: String, create: Bool) throws -> Int32 {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = retrying { Glibc.open(path, flags, 0o644) }
        guard fd >= 0 else { throw FileIOError("open", path, code: errno) }
        return fd
    }

    package func close(_ fd: Int32) { _ = Glibc.close(fd) }

    package func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        var written = 0
        while written < bytes.count {
            let result = retrying {
                pwrite(fd, bytes.baseAddress! + written, bytes.count - written, off_t(offset) + off_t(written))
            }
            guard result > 0 else { throw FileIOError("write", "fd \(fd)", code: result == 0 ? EIO : errno) }
            written += result
        }
    }

    package func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws
        -> Int
    {
        guard buffer.count > 0 else { return 0 }
        let result = retrying { pread(fd, buffer.baseAddress!, buffer.count, off_t(offset)) }
        guard result >= 0 else { throw FileIOError("read", "fd \(fd)", code: errno) }
        return result
    }

    package func sync(_ fd: Int32) throws {
        #if canImport(Darwin)
            let result = fcntl(fd, F_FULLFSYNC)
        #else
            let result = fdatasync(fd)
        #endif
        guard result == 0 else { throw FileIOError("fdatasync", "fd \(fd)", code: errno) }
    }

    package func syncDirectory(_ path: String) throws {
        let fd = retrying { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw FileIOError("open directory", path, code: errno) }
        defer { _ = Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw FileIOError("fsync directory", path, code: errno) }
    }

    package func truncate(_ fd: Int32, to size: Int64) throws {
        guard retrying({ ftruncate(fd, off_t(size)) }) == 0 else {
            throw FileIOError("ftruncate", "fd \(fd)", code: errno)
        }
    }

    package func preallocate(_ fd: Int32, size: Int64) throws {
        #if canImport(Glibc)
            let result = posix_fallocate(fd, 0, off_t(size))
            if result == 0 { return }
            // File systems without fallocate: extending the size still makes the tail read as zeros.
            if result != EOPNOTSUPP && result != EINVAL { throw FileIOError("fallocate", "fd \(fd)", code: result) }
        #endif
        if try self.size(fd) < size { try truncate(fd, to: size) }
    }

    package func size(_ fd: Int32) throws -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileIOError("fstat", "fd \(fd)", code: errno) }
        return Int64(info.st_size)
    }

    package func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw FileIOError("rename", "\(from) -> \(to)", code: errno) }
    }

    package func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw FileIOError("unlink", path, code: errno) }
    }

    package func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw FileIOError("mkdir", path, code: errno) }
    }

    package func fileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    package func contents(ofDirectory path: String) throws -> [String] {
        guard let directory = opendir(path) else { throw FileIOError("opendir", path, code: errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    private func retrying<T: BinaryInteger>(_ body: () -> T) -> T {
        while true {
            let result = body()
            if result < 0 && errno == EINTR { continue }
            return result
        }
    }
}
