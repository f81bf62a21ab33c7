/*
 * redact.c - a text (what a probe says about an answer or a command's output, an upstream
 * answer the pool passes on) with every credential of the instance taken out, before it
 * is kept, logged or sent.
 *
 * DESIGN
 * A provider's error body or an exec probe's output can hold a key, and not only the
 * probed account's: a 401 that echoes the token it refused, a proxy in front of several
 * accounts that quotes another one's, a command that printed its environment. Providers
 * also quote keys in part: "sk-proj-Ab12...", "key ending in ...9xQz2Lm7", and a verdict
 * cut at its buffer's size, or a parser's "near '...'" that starts inside a token, shows
 * a key's start, end or middle. So the rule is: every run of ROTA_REDACT_MIN (8) bytes or
 * more that appears anywhere in any credential of the instance is replaced, however it
 * is cut, and so is a whole credential shorter than that. A fragment shorter than 8 bytes
 * stays: it cannot be told from ordinary text (a provider's own mask shows fewer), and 7
 * bytes of a key of 20 or more leave too many unknown to guess.
 *
 * Index: every 8-byte window of every credential, as a 64-bit word, sorted and
 * deduplicated (8 bytes per byte of key: about 8 MB for 10,000 keys of 100 bytes, built
 * in one sort per generation). A text is scanned once: at each position one binary
 * search asks whether the 8 bytes there are a window of some key; a hit starts a run,
 * which grows while the windows at the following positions (up to its end) are hits too,
 * so a fragment of any length from 8 up is covered whole, and overlapping fragments of
 * different keys merge into one "[redacted]". Credentials under 8 bytes are kept aside
 * and matched whole, one by one (there should be none).
 *
 * A key rotated out at a reload may still be valid at its provider, and echoed after: a
 * set built with the previous generation's ("prev") redacts that generation's keys too,
 * but not the ones before it (each set holds its own windows apart, so they do not pile
 * up reload after reload).
 *
 * The set copies nothing of a key but the windows and the short keys, in memory it owns
 * and wipes before freeing; nothing here logs. Built on one thread, then read-only:
 * rota_redact_text runs on any thread at once; the reference count is atomic.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

#define REDACTED "[redacted]"
#define MIN      ROTA_REDACT_MIN

struct rota_redact {
    atomic_uint refs;
    uint64_t *win; /* every MIN-byte window of every credential, sorted, unique */
    size_t nwin;
    uint64_t *own; /* those of this set's own credentials ("win" itself without "prev") */
    size_t nown;
    char *shorts; /* credentials under MIN bytes, each followed by a NUL: own first */
    size_t nshorts_bytes, nown_shorts;
};

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* Heap sort, in place: qsort may sort through a scratch copy it frees unwiped (glibc's
 * merge sort does), and these words are pieces of keys. */
static void sift_down(uint64_t *a, size_t at, size_t n)
{
    for (size_t c; (c = 2 * at + 1) < n; at = c) {
        if (c + 1 < n && a[c + 1] > a[c])
            c++;
        if (a[at] >= a[c])
            return;
        uint64_t t = a[at];
        a[at] = a[c];
        a[c] = t;
    }
}

static void sort_in_place(uint64_t *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end > 1; end--) {
        uint64_t t = a[0];
        a[0] = a[end - 1];
        a[end - 1] = t;
        sift_down(a, 0, end - 1);
    }
}

static uint64_t window(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    return w;
}

/* "a" and "b" (sorted, unique) merged into a new sorted, unique array; NULL when out of
 * memory. */
static uint64_t *merge(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, size_t *n)
{
    uint64_t *m = malloc((na + nb ? na + nb : 1) * sizeof(*m));
    size_t i = 0, j = 0, k = 0;
    while (m && (i < na || j < nb)) {
        uint64_t v = j >= nb || (i < na && a[i] <= b[j]) ? a[i] : b[j];
        i += i < na && a[i] == v;
        j += j < nb && b[j] == v;
        m[k++] = v;
    }
    *n = k;
    return m;
}

int rota_redact_new(const char *const *secrets, uint32_t n, const struct rota_redact *prev,
                    struct rota_redact **out)
{
    size_t nwin = 0, nshort = 0, pshort = prev ? prev->nown_shorts : 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = secrets[i] ? strlen(secrets[i]) : 0;
        if (len >= MIN)
            nwin += len - MIN + 1;
        else if (len)
            nshort += len + 1;
    }
    struct rota_redact *r = calloc(1, sizeof(*r));
    uint64_t *win = malloc((nwin ? nwin : 1) * sizeof(*win));
    char *shorts = malloc(nshort + pshort ? nshort + pshort : 1);
    if (!r || !win || !shorts) {
        free(r);
        free(win);
        free(shorts);
        return -ENOMEM;
    }
    size_t w = 0, s = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = secrets[i] ? strlen(secrets[i]) : 0;
        for (size_t k = 0; len >= MIN && k + MIN <= len; k++)
            win[w++] = window(secrets[i] + k);
        if (len && len < MIN) {
            memcpy(shorts + s, secrets[i], len + 1);
            s += len + 1;
        }
    }
    if (pshort)
        memcpy(shorts + s, prev->shorts, pshort);
    sort_in_place(win, nwin);
    size_t u = 0;
    for (size_t k = 0; k < nwin; k++)
        if (u == 0 || win[k] != win[u - 1])
            win[u++] = win[k];
    wipe(win + u, (nwin - u) * sizeof(*win));
    r->own = r->win = win;
    r->nown = r->nwin = u;
    if (prev && prev->nown) { /* the last generation's keys stay redacted */
        r->win = merge(win, u, prev->own, prev->nown, &r->nwin);
        if (!r->win) {
            wipe(win, nwin * sizeof(*win));
            wipe(shorts, nshort + pshort);
            free(win);
            free(shorts);
            free(r);
            return -ENOMEM;
        }
    }
    atomic_init(&r->refs, 1);
    r->shorts = shorts;
    r->nshorts_bytes = nshort + pshort;
    r->nown_shorts = nshort;
    *out = r;
    return 0;
}

struct rota_redact *rota_redact_ref(struct rota_redact *r)
{
    if (r)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void rota_redact_unref(struct rota_redact *r)
{
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (r->win != r->own) {
        wipe(r->win, r->nwin * sizeof(*r->win));
        free(r->win);
    }
    wipe(r->own, r->nown * sizeof(*r->own));
    wipe(r->shorts, r->nshorts_bytes);
    free(r->own);
    free(r->shorts);
    free(r);
}

/* Are the MIN bytes at "p" a window of some credential? */
static bool hit(const struct rota_redact *r, const char *p)
{
    uint64_t w = window(p);
    size_t lo = 0, hi = r->nwin;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->win[mid] == w)
            return true;
        if (r->win[mid] < w)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Length of the run of credential bytes at text[i] (of "len"), 0 when none. */
static size_t run_at(const struct rota_redact *r, const char *text, size_t i, size_t len)
{
    size_t end = 0;
    if (i + MIN <= len && hit(r, text + i)) {
        end = i + MIN;
        for (size_t j = i + 1; j <= end && j + MIN <= len; j++)
            if (hit(r, text + j))
                end = j + MIN;
    }
    for (size_t s = 0; s < r->nshorts_bytes;) { /* whole short credentials */
        size_t sl = strlen(r->shorts + s);
        if (i + sl <= len && i + sl > end && memcmp(text + i, r->shorts + s, sl) == 0)
            end = i + sl;
        s += sl + 1;
    }
    return end ? end - i : 0;
}

void rota_redact_text(const struct rota_redact *r, char *text, size_t cap)
{
    if (!r || !text || cap == 0)
        return;
    size_t rl = sizeof(REDACTED) - 1;
    size_t len = strnlen(text, cap - 1);
    text[len] = 0;
    for (size_t i = 0; i < len;) {
        size_t m = run_at(r, text, i, len);
        if (!m) {
            i++;
            continue;
        }
        /* text[i, i + m) becomes REDACTED; what follows moves, cut at "cap" */
        size_t tail = len - (i + m);
        size_t put = i + rl < cap - 1 ? rl : cap - 1 - i;
        size_t keep = i + put + tail < cap - 1 ? tail : cap - 1 - i - put;
        memmove(text + i + put, text + i + m, keep);
        memcpy(text + i, REDACTED, put);
        size_t was = len;
        len = i + put + keep;
        text[len] = 0;
        if (was > len) /* no piece of the key left past the end */
            memset(text + len, 0, was - len);
        i += put;
    }
}
