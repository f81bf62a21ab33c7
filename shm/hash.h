/*
 * hash.h - the hashes that name things in the table.
 *
 * DESIGN
 * rota_hash_str keys routes and models in the table's index and must give the same
 * value in every process and every version with the same ABI: it is FNV-1a 64 with a
 * final avalanche. rota_hash_mix is a 64-bit finaliser (splitmix64's) used to combine
 * keys, e.g. for rendezvous hashing. Neither is for adversarial input.
 */
#ifndef ROTA_SHM_HASH_H
#define ROTA_SHM_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t rota_hash_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* The home slot of "key" in the table's index ("mask" = slots - 1). Keys are mixed first:
 * account ids are often consecutive numbers, which would otherwise fill one run of slots
 * that every probe for a key landing in it walks. */
static inline uint32_t rota_index_home(uint64_t key, uint32_t mask)
{
    return (uint32_t)rota_hash_mix(key) & mask;
}

static inline uint64_t rota_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return rota_hash_mix(h);
}

static inline uint64_t rota_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
    return rota_hash_mix(h);
}

#endif
