/*
 * redact.c - what a probe says about an answer or a command's output, with the
 * credentials taken out, before it is kept or logged.
 *
 * DESIGN
 * A provider's error body or an exec probe's output can hold a key (a 401 that echoes
 * the token it refused, a command that printed its ROTA_CREDENTIAL), and a parser's
 * verdict quotes the start of what it could not read ("near 'sk-...'"). The probe thread
 * runs every message of a result through rota_probe_redact with each credential it
 * holds, and rotad again with each credential of its config before logging. A verdict is
 * cut at its buffer's size, so a key may appear only in part: any run of text that
 * matches the start of a credential over REDACT_MIN bytes (or the whole of a shorter
 * one) is replaced, not only the whole credential. Pure functions, any thread.
 */
#include <string.h>

#include "probe.h"

#define REDACTED   "[redacted]"
#define REDACT_MIN 8

/* How many bytes at "p" (of "left") match the start of "secret" (of "sl"). */
static size_t prefix_match(const char *p, size_t left, const char *secret, size_t sl)
{
    size_t m = 0;
    while (m < left && m < sl && p[m] == secret[m])
        m++;
    return m;
}

void rota_probe_redact(char *text, size_t cap, const char *secret)
{
    size_t sl = secret ? strlen(secret) : 0;
    if (!text || cap == 0 || sl == 0)
        return;
    size_t need = sl < REDACT_MIN ? sl : REDACT_MIN, rl = sizeof(REDACTED) - 1;
    size_t len = strnlen(text, cap - 1);
    text[len] = 0;
    for (size_t i = 0; i < len;) {
        size_t m = prefix_match(text + i, len - i, secret, sl);
        if (m < need) {
            i++;
            continue;
        }
        /* text[i, i + m) becomes REDACTED; what follows moves, cut at "cap" */
        size_t tail = len - (i + m);
        size_t put = i + rl < cap - 1 ? rl : cap - 1 - i;
        size_t keep = i + put + tail < cap - 1 ? tail : cap - 1 - i - put;
        memmove(text + i + put, text + i + m, keep);
        memcpy(text + i, REDACTED, put);
        len = i + put + keep;
        text[len] = 0;
        i += put;
    }
}

const char *rota_probe_secret(const struct rota_probe_target *t)
{
    if (t->command[0]) /* exec: the credential alone */
        return t->auth;
    const char *sp = strrchr(t->auth, ' '); /* "Name: [Scheme ]credential" */
    return sp ? sp + 1 : t->auth;
}
