/*
 * escape.c - text from a table, from rotad or from a provider's answer, made safe to
 * print on a terminal, and measured in the columns it takes there.
 *
 * DESIGN
 * The names rotactl prints come from places the operator does not control: a table any
 * writer of the instance may have built, rotad's replies, a provider's answer (`rotactl
 * parse`). A byte among them can move the cursor, clear the screen, retitle the window or
 * make the terminal answer with input of its own. Every such string goes through
 * rotactl_esc before it is printed as text, which writes these bytes as \xNN:
 *   - C0 controls (0x00-0x1f) and DEL (0x7f);
 *   - every byte that is not part of valid UTF-8 (a lone 0x9b is CSI to a terminal in an
 *     8-bit mode), overlong forms, surrogates and code points past U+10FFFF included;
 *   - the C1 controls U+0080-U+009F written as UTF-8 (xterm obeys those too), the bidi
 *     marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F, U+202A-U+202E,
 *     U+2066-U+2069), which reorder what follows them, and the line and paragraph
 *     separators U+2028 and U+2029: each of their bytes.
 * Everything else passes as it is: printable ASCII and valid UTF-8, so names in any script
 * read as written. A backslash is left alone too: names from a config cannot hold one, and
 * JSON quoted in text keeps its own escapes; the cost is that a name holding the four
 * characters \x1b reads like one holding ESC.
 *
 * The result is valid UTF-8 without a control character. rotactl_width counts the columns
 * it takes: 1 per character, 2 for East Asian wide ones, 0 for combining marks, as
 * wcwidth(3) does in a UTF-8 locale for the scripts names are written in, but without
 * depending on the locale rotactl runs in. Tables pad by that count, not by bytes.
 * Pure functions, no state: any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "rotactl.h"
#include "utf8.h"

/* A code point a terminal acts on instead of showing it (or that rearranges the text
 * after it). */
static bool acts(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061c || c == 0x200e || c == 0x200f ||
           (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* "s" escaped into "buf" (when "n" > 0), stopping before a character or an escape that
 * would not fit; returns the length the whole of it takes, escaped. */
static size_t esc_into(const char *s, char *buf, size_t n, bool *cut)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t need = 0, out = 0;
    *cut = false;
    while (*p) {
        uint32_t c;
        size_t len = rota_utf8_next(p, &c);
        size_t take = len ? len : 1; /* input bytes */
        bool escape = len == 0 || acts(c);
        size_t w = escape ? 4 * take : take; /* output bytes */
        if (!*cut && out + w < n) {
            if (escape) {
                for (size_t i = 0; i < take; i++)
                    snprintf(buf + out + 4 * i, 5, "\\x%02x", p[i]);
            } else {
                memcpy(buf + out, p, take);
            }
            out += w;
        } else {
            *cut = true;
        }
        need += w;
        p += take;
    }
    if (n)
        buf[out] = 0;
    return need;
}

const char *rotactl_esc(const char *s, char *buf, size_t n)
{
    bool cut;
    if (!s)
        s = "";
    esc_into(s, buf, n, &cut);
    if (cut && n > 4) {
        /* Show that something is missing; back off to a character boundary first. */
        size_t len = strlen(buf);
        while (len + 4 > n || (len > 0 && ((unsigned char)buf[len] & 0xc0) == 0x80))
            len--;
        for (size_t k = len > 3 ? len - 3 : 0; k < len; k++)
            if (buf[k] == '\\' && buf[k + 1] == 'x') /* nor inside an escape */
                len = k;
        memcpy(buf + len, "...", 4);
    }
    return buf;
}

char *rotactl_esc_dup(const char *s)
{
    bool cut;
    if (!s)
        s = "";
    size_t n = esc_into(s, NULL, 0, &cut) + 1;
    char *buf = malloc(n);
    if (!buf) {
        fprintf(stderr, "rotactl: out of memory\n");
        exit(ROTACTL_UNREACHABLE);
    }
    esc_into(s, buf, n, &cut);
    return buf;
}

bool rotactl_utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c;
        size_t len = rota_utf8_next(p, &c);
        if (len == 0)
            return false;
        p += len;
    }
    return true;
}

bool rotactl_esc_needed(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c;
        size_t len = rota_utf8_next(p, &c);
        if (len == 0 || acts(c))
            return true;
        p += len;
    }
    return false;
}

/* Columns code point "c" takes: 0 for combining marks and zero-width characters, 2 for
 * East Asian wide and fullwidth ones and emoji, 1 for the rest. */
static size_t cp_width(uint32_t c)
{
    static const uint32_t zero[][2] = {{0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd},
                                       {0x0610, 0x061a}, {0x064b, 0x065f}, {0x1ab0, 0x1aff},
                                       {0x1dc0, 0x1dff}, {0x200b, 0x200f}, {0x2060, 0x2064},
                                       {0x20d0, 0x20ff}, {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f},
                                       {0xfeff, 0xfeff}};
    static const uint32_t wide[][2] = {
        {0x1100, 0x115f},   {0x2e80, 0x303e},   {0x3041, 0x33ff},  {0x3400, 0x4dbf},
        {0x4e00, 0x9fff},   {0xa000, 0xa4cf},   {0xac00, 0xd7a3},  {0xf900, 0xfaff},
        {0xfe30, 0xfe4f},   {0xff00, 0xff60},   {0xffe0, 0xffe6},  {0x1f300, 0x1f64f},
        {0x1f900, 0x1f9ff}, {0x20000, 0x2fffd}, {0x30000, 0x3fffd}};
    for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
        if (c >= zero[i][0] && c <= zero[i][1])
            return 0;
    for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
        if (c >= wide[i][0] && c <= wide[i][1])
            return 2;
    return 1;
}

size_t rotactl_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p) {
        uint32_t c;
        size_t len = rota_utf8_next(p, &c);
        if (len == 0) { /* not escaped text: count what rotactl_esc would write */
            w += 4;
            p++;
            continue;
        }
        w += acts(c) ? 4 * len : cp_width(c);
        p += len;
    }
    return w;
}

void rotactl_pad(FILE *out, const char *s, size_t width, bool right)
{
    size_t w = rotactl_width(s);
    if (!right)
        fputs(s, out);
    for (; w < width; w++)
        fputc(' ', out);
    if (right)
        fputs(s, out);
}
