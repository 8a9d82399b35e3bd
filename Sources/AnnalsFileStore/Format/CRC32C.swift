import CAnnalsCRC32C

/// CRC32C (Castagnoli): the checksum of every record and file header.
///
/// Uses the CPU's CRC32 instruction where present (SSE4.2, ARMv8 CRC), a table otherwise. The check
/// value — the CRC of the ASCII bytes `123456789` — is `0xE3069283`.
package enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (0 to start).
    package static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        annals_crc32c_extend(crc, bytes.baseAddress, bytes.count)
    }

    package static func checksum(_ bytes: some ContiguousBytes, continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The table-driven path, for tests that compare both.
    package static func softwareChecksum(_ bytes: some ContiguousBytes, continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { annals_crc32c_extend_software(crc, $0.baseAddress, $0.count) }
    }

    /// Whether the CPU instruction is in use.
    package static var isHardwareAccelerated: Bool { annals_crc32c_is_hardware_accelerated() != 0 }
}

/// Bytes that can be viewed contiguously (arrays, slices, `Data`).
package protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
