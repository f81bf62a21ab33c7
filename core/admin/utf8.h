/*
 * utf8.h - one UTF-8 character at a time (private to rota): what the operator views
 * (JSON) and rotactl (text) check names with before they print them.
 */
#ifndef ROTA_ADMIN_UTF8_H
#define ROTA_ADMIN_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length of the valid UTF-8 character at "p" (of a NUL-terminated string) with its
 * code point in *cp, or 0: a stray byte, a sequence cut short (the NUL stops it), an
 * overlong form, a surrogate, or a code point past U+10FFFF. */
static inline size_t rota_utf8_next(const unsigned char *p, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t n = p[0] >= 0xf0 && p[0] <= 0xf4  ? 4
               : p[0] >= 0xe0 && p[0] < 0xf0 ? 3
               : p[0] >= 0xc2 && p[0] < 0xe0 ? 2
                                             : 0;
    if (n == 0)
        return 0;
    uint32_t c = p[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

#endif
