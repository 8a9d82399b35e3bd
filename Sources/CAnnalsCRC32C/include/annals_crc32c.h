#ifndef ANNALS_CRC32C_H
#define ANNALS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Extends a CRC32C (Castagnoli) over `length` bytes. Start with 0; the result is final (no extra xor needed).
uint32_t annals_crc32c_extend(uint32_t crc, const void *bytes, size_t length);

/// The same, always in software (for tests that compare the two paths).
uint32_t annals_crc32c_extend_software(uint32_t crc, const void *bytes, size_t length);

/// Whether the CPU's CRC32 instruction is used.
int annals_crc32c_is_hardware_accelerated(void);

/// XXH64 of `length` bytes with `seed`, per the published xxHash specification (xxh64.c). Stable across
/// processes and platforms, so the file store's index can store it (decision 0007, "Hash").
uint64_t annals_xxh64(const void *bytes, size_t length, uint64_t seed);

/// Returns memory freed by the process to the system (glibc's `malloc_trim(0)`; nothing elsewhere).
int annals_release_free_memory(void);

#endif
