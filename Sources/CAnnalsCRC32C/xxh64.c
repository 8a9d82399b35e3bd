// XXH64, written from the published xxHash specification (doc/xxhash_spec.md, "XXH64 Algorithm
// Description"). The file store's index hashes stream, category and event-type names with it
// (decision 0007, "Hash"): the result is stored on disk, so it must be the same in every process and
// on every platform, which Swift's per-process seeded `Hasher` is not.
//
// Steps, as the specification numbers them:
//   1. four accumulators seeded from `seed` (inputs of 32 bytes or more), or one (shorter inputs);
//   2. each 32-byte stripe feeds one 8-byte lane to each accumulator through `round`;
//   3. the accumulators converge by rotations and are merged back in one by one;
//   4. the input length is added;
//   5. the tail is consumed in 8-byte, then 4-byte, then 1-byte pieces;
//   6. a final avalanche mixes the bits.
// All lanes are read little-endian through memcpy, so any alignment is fine.
#include "annals_crc32c.h"

#include <string.h>

static const uint64_t prime1 = 0x9E3779B185EBCA87ULL;
static const uint64_t prime2 = 0xC2B2AE3D27D4EB4FULL;
static const uint64_t prime3 = 0x165667B19E3779F9ULL;
static const uint64_t prime4 = 0x85EBCA77C2B2AE63ULL;
static const uint64_t prime5 = 0x27D4EB2F165667C5ULL;

static inline uint64_t rotate_left(uint64_t value, unsigned bits) { return (value << bits) | (value >> (64 - bits)); }

static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t value;
    memcpy(&value, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap64(value);
#endif
    return value;
}

static inline uint32_t load_le32(const unsigned char *p) {
    uint32_t value;
    memcpy(&value, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap32(value);
#endif
    return value;
}

// One lane into one accumulator (the specification's "round").
static inline uint64_t mix_lane(uint64_t accumulator, uint64_t lane) {
    accumulator += lane * prime2;
    accumulator = rotate_left(accumulator, 31);
    return accumulator * prime1;
}

// Folds one of the four stripe accumulators into the converged one (step 3).
static inline uint64_t merge_accumulator(uint64_t accumulator, uint64_t stripe_accumulator) {
    accumulator ^= mix_lane(0, stripe_accumulator);
    return accumulator * prime1 + prime4;
}

uint64_t annals_xxh64(const void *bytes, size_t length, uint64_t seed) {
    const unsigned char *p = bytes;
    size_t remaining = length;
    uint64_t accumulator;

    if (remaining >= 32) {
        uint64_t v1 = seed + prime1 + prime2;
        uint64_t v2 = seed + prime2;
        uint64_t v3 = seed;
        uint64_t v4 = seed - prime1;
        do {
            v1 = mix_lane(v1, load_le64(p));
            v2 = mix_lane(v2, load_le64(p + 8));
            v3 = mix_lane(v3, load_le64(p + 16));
            v4 = mix_lane(v4, load_le64(p + 24));
            p += 32;
            remaining -= 32;
        } while (remaining >= 32);
        accumulator = rotate_left(v1, 1) + rotate_left(v2, 7) + rotate_left(v3, 12) + rotate_left(v4, 18);
        accumulator = merge_accumulator(accumulator, v1);
        accumulator = merge_accumulator(accumulator, v2);
        accumulator = merge_accumulator(accumulator, v3);
        accumulator = merge_accumulator(accumulator, v4);
    } else {
        accumulator = seed + prime5;
    }

    accumulator += (uint64_t)length;

    while (remaining >= 8) {
        accumulator ^= mix_lane(0, load_le64(p));
        accumulator = rotate_left(accumulator, 27) * prime1 + prime4;
        p += 8;
        remaining -= 8;
    }
    if (remaining >= 4) {
        accumulator ^= (uint64_t)load_le32(p) * prime1;
        accumulator = rotate_left(accumulator, 23) * prime2 + prime3;
        p += 4;
        remaining -= 4;
    }
    while (remaining > 0) {
        accumulator ^= (uint64_t)(*p) * prime5;
        accumulator = rotate_left(accumulator, 11) * prime1;
        p += 1;
        remaining -= 1;
    }

    accumulator ^= accumulator >> 33;
    accumulator *= prime2;
    accumulator ^= accumulator >> 29;
    accumulator *= prime3;
    accumulator ^= accumulator >> 32;
    return accumulator;
}
