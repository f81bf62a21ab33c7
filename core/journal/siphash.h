/*
 * siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012), 64- and 128-bit output, as a
 * keyed MAC of journal records (private to rota).
 *
 * DESIGN
 * Two compression and four finalization rounds over 64-bit little-endian words, the
 * message's length in the last word's top byte; the 128-bit variant xors 0xee into v1
 * at the start and 0xdd before a second finalization. Pure and reentrant: any thread.
 * tests/unit/test_jrecord.c checks both against the reference vectors (key 00..0f,
 * messages 00, 00 01, ...).
 */
#ifndef ROTA_CORE_SIPHASH_H
#define ROTA_CORE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define ROTA_SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline uint64_t rota_sip_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline void rota_sip_round(uint64_t v[4])
{
    v[0] += v[1], v[1] = ROTA_SIP_ROTL(v[1], 13), v[1] ^= v[0], v[0] = ROTA_SIP_ROTL(v[0], 32);
    v[2] += v[3], v[3] = ROTA_SIP_ROTL(v[3], 16), v[3] ^= v[2];
    v[0] += v[3], v[3] = ROTA_SIP_ROTL(v[3], 21), v[3] ^= v[0];
    v[2] += v[1], v[1] = ROTA_SIP_ROTL(v[1], 17), v[1] ^= v[2], v[2] = ROTA_SIP_ROTL(v[2], 32);
}

static inline uint64_t rota_sip_final(uint64_t v[4], uint64_t mark)
{
    v[2] ^= mark;
    for (int i = 0; i < 4; i++)
        rota_sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* SipHash-2-4 of the "n" bytes at "in" under the 16-byte "key" into "out": "outlen" is 8
 * or 16 bytes (little-endian words, as the reference writes them). */
static inline void rota_siphash(const uint8_t key[16], const void *in, size_t n, uint8_t *out,
                                size_t outlen)
{
    const uint8_t *p = in;
    uint64_t k0 = rota_sip_le64(key), k1 = rota_sip_le64(key + 8);
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
                     k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull};
    if (outlen == 16)
        v[1] ^= 0xee;
    size_t whole = n - n % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = rota_sip_le64(p + i);
        v[3] ^= m;
        rota_sip_round(v);
        rota_sip_round(v);
        v[0] ^= m;
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t i = 0; i < n % 8; i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    v[3] ^= last;
    rota_sip_round(v);
    rota_sip_round(v);
    v[0] ^= last;
    uint64_t h[2] = {rota_sip_final(v, outlen == 16 ? 0xee : 0xff), 0};
    if (outlen == 16) {
        v[1] ^= 0xdd;
        h[1] = rota_sip_final(v, 0);
    }
    for (size_t i = 0; i < outlen && i < 16; i++)
        out[i] = (uint8_t)(h[i / 8] >> (8 * (i % 8)));
}

#endif
