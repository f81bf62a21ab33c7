/* test_xlate: the translation between wire formats (workers/xlate.h), on the golden
 * corpus in tests/xlate/.
 *
 * Each case is a directory holding "case" (what it shows, then "from F", "to T", "kind
 * request|answer|stream", optionally "model M" and "cut"), its "input" and its
 * "expected" output, and optionally "request" (the client's request, read first, for
 * answers and streams that depend on it: usage asked for, the model). A request case
 * marked "refused" must be refused, "expected" holding the message. For every case:
 *   - request: "input" (format F) is translated to T and must equal "expected" byte for
 *     byte; then T's own reader must take it;
 *   - answer: "input" (format T) is translated back to F: equal, and F's reader takes it;
 *   - stream: "input" (T's server-sent events) is fed in pieces of every size from 1 to
 *     64 bytes and whole; each run must give "expected" exactly; F's own stream reader
 *     then reads every event of it in order, and F's rules hold (below). "cut" cases end
 *     before the upstream's own end, and the client's stream must end with F's error.
 * And every stream case is also cut at every byte: whatever came, the client's stream
 * ends well formed, with F's error event when the upstream's end had not come.
 *
 * F's rules for a client stream: Anthropic's message_start before anything, every
 * content_block_start closed by exactly one content_block_stop of its index before the
 * next starts, message_delta then message_stop last; OpenAI's chunks end with [DONE]
 * (or with an error and no [DONE]); Gemini's events are all JSON objects.
 *
 * ROTA_XLATE_BLESS=1 writes "expected" from what the translation gives (for a new case;
 * read it before committing it).
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats.h"
#include "xlate.h"

#ifndef ROTA_TEST_SRC
#define ROTA_TEST_SRC "tests"
#endif

struct tcase {
    char dir[512], name[128];
    enum rota_xl_fmt from, to;
    char kind[16], model[128];
    bool cut, refused;
    char *input, *expected, *request;
    size_t ninput, nexpected, nrequest;
};

static char *slurp(const char *dir, const char *file, size_t *len)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (cap - n < 2) {
            cap *= 2;
            b = realloc(b, cap);
        }
    }
    fclose(f);
    if (b)
        b[n] = 0;
    *len = n;
    return b;
}

static enum rota_xl_fmt fmt_named(const char *s)
{
    for (int f = 0; f < ROTA_XL_FORMATS; f++)
        if (strcmp(rota_xl_of((enum rota_xl_fmt)f)->name, s) == 0)
            return (enum rota_xl_fmt)f;
    fail_msg("unknown format %s", s);
    return ROTA_XL_FORMATS;
}

static void load(struct tcase *t, const char *dir, const char *name)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "%.200s/%.200s", dir, name);
    snprintf(t->name, sizeof(t->name), "%.120s", name);
    size_t n;
    char *c = slurp(t->dir, "case", &n);
    if (!c)
        fail_msg("%s: no case file", name);
    for (char *line = strtok(c, "\n"); line; line = strtok(NULL, "\n")) {
        char k[32], v[128];
        if (line[0] == '#')
            continue;
        int got = sscanf(line, "%31s %127s", k, v);
        if (got >= 1 && strcmp(k, "cut") == 0)
            t->cut = true;
        else if (got >= 1 && strcmp(k, "refused") == 0)
            t->refused = true;
        else if (got == 2 && strcmp(k, "from") == 0)
            t->from = fmt_named(v);
        else if (got == 2 && strcmp(k, "to") == 0)
            t->to = fmt_named(v);
        else if (got == 2 && strcmp(k, "kind") == 0)
            snprintf(t->kind, sizeof(t->kind), "%.15s", v);
        else if (got == 2 && strcmp(k, "model") == 0)
            snprintf(t->model, sizeof(t->model), "%s", v);
    }
    free(c);
    t->input = slurp(t->dir, "input", &t->ninput);
    t->expected = slurp(t->dir, "expected", &t->nexpected);
    t->request = slurp(t->dir, "request", &t->nrequest);
    if (!t->input)
        fail_msg("%s: no input", name);
}

static void unload(struct tcase *t)
{
    free(t->input);
    free(t->expected);
    free(t->request);
}

static void setup_x(struct rota_xl *x, struct rota_arena *a, const struct tcase *t,
                    struct rota_xl_req *r)
{
    memset(x, 0, sizeof(*x));
    rota_arena_init(a, 64u << 20);
    x->a = a;
    x->from = t->from;
    x->to = t->to;
    x->model = t->model[0] ? t->model : "target-model";
    x->now_s = 1700000000;
    x->where = rota_xl_of(t->from)->where;
    memset(r, 0, sizeof(*r));
    if (t->request) {
        struct rota_xl rx = *x;
        rx.to = t->from;
        if (rota_xl_read(&rx, t->request, t->nrequest, r))
            fail_msg("%s: its request is not read: %s", t->name, rx.err);
    } else {
        r->stream = true;
        r->parallel_tools = -1;
        r->thinking = -1;
    }
    x->req = r;
}

static void check_output(const struct tcase *t, const char *out, size_t n)
{
    if (getenv("ROTA_XLATE_BLESS")) {
        char path[700];
        snprintf(path, sizeof(path), "%s/expected", t->dir);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(out, 1, n, f);
        fclose(f);
        return;
    }
    if (!t->expected)
        fail_msg("%s: no expected output; this is what came:\n%.*s", t->name, (int)n, out);
    if (n != t->nexpected || memcmp(out, t->expected, n) != 0)
        fail_msg("%s: the output differs from expected; it is:\n%.*s", t->name, (int)n, out);
}

/* ---- the client format's rules for a stream ---- */

struct rules {
    enum rota_xl_fmt f;
    int events;
    bool started, stopped, done, error, delta;
    int open; /* Anthropic: the block open, -1 none */
    int blocks;
    char why[200];
};

static bool broke(struct rules *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool broke(struct rules *s, const char *fmt, ...)
{
    if (s->why[0])
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    return false;
}

static bool has(const char *d, size_t n, const char *s)
{
    return memmem(d, n, s, strlen(s)) != NULL;
}

static int index_of(const char *d, size_t n)
{
    const char *p = memmem(d, n, "\"index\":", 8);
    return p ? atoi(p + 8) : -1;
}

/* One event of the client's stream against its format's rules. */
static bool rule(struct rules *s, const char *name, size_t nlen, const char *d, size_t n)
{
    s->events++;
    if (s->done || s->error)
        return broke(s, "an event after the end (event %d)", s->events);
    switch (s->f) {
    case ROTA_XL_ANTHROPIC: {
        char ev[64];
        snprintf(ev, sizeof(ev), "%.*s", (int)nlen, name);
        if (strcmp(ev, "error") == 0) {
            s->error = true;
            return true;
        }
        if (!s->started && strcmp(ev, "message_start") != 0)
            return broke(s, "%s before message_start", ev);
        if (strcmp(ev, "message_start") == 0) {
            if (s->started)
                return broke(s, "a second message_start");
            s->started = true;
        } else if (strcmp(ev, "content_block_start") == 0) {
            if (s->open >= 0)
                return broke(s, "block %d starts while %d is open", index_of(d, n), s->open);
            if (index_of(d, n) != s->blocks)
                return broke(s, "block %d starts, %d expected", index_of(d, n), s->blocks);
            s->open = s->blocks++;
        } else if (strcmp(ev, "content_block_delta") == 0) {
            if (s->open < 0 || index_of(d, n) != s->open)
                return broke(s, "a delta for block %d, open %d", index_of(d, n), s->open);
        } else if (strcmp(ev, "content_block_stop") == 0) {
            if (s->open < 0 || index_of(d, n) != s->open)
                return broke(s, "a stop for block %d, open %d", index_of(d, n), s->open);
            s->open = -1;
        } else if (strcmp(ev, "message_delta") == 0) {
            if (s->open >= 0)
                return broke(s, "message_delta while block %d is open", s->open);
            s->delta = true;
        } else if (strcmp(ev, "message_stop") == 0) {
            if (!s->delta)
                return broke(s, "message_stop without message_delta");
            s->done = true;
        } else if (strcmp(ev, "ping") != 0) {
            return broke(s, "an unknown event %s", ev);
        }
        return true;
    }
    case ROTA_XL_OPENAI:
        if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
            s->done = true;
            return true;
        }
        if (has(d, n, "\"error\"")) {
            s->error = true;
            return true;
        }
        if (!has(d, n, "\"chat.completion.chunk\""))
            return broke(s, "a chunk that is not a chat.completion.chunk");
        return true;
    case ROTA_XL_RESPONSES:
        if (has(d, n, "\"response.completed\"") || has(d, n, "\"response.incomplete\""))
            s->done = true;
        if (has(d, n, "\"response.failed\"") || (nlen == 5 && memcmp(name, "error", 5) == 0))
            s->error = true;
        return true;
    default: /* Gemini, Code Assist: JSON objects; an error object ends it */
        if (n == 0 || d[0] != '{')
            return broke(s, "an event that is not a JSON object");
        if (has(d, n, "\"error\""))
            s->error = true;
        else if (has(d, n, "\"finishReason\""))
            s->done = true; /* Gemini has no closing event: its last carries this */
        return true;
    }
}

/* Read client stream "out" with format f's own reader and its rules. */
static void reread_stream(const struct tcase *t, const char *out, size_t n, bool expect_error)
{
    struct rota_arena a;
    rota_arena_init(&a, 64u << 20);
    struct rota_xl x = {.a = &a, .from = t->to, .to = t->from, .now_s = 1700000000};
    struct rota_xl_sin in = {0};
    static struct rota_xl_evs evs;
    struct rules s = {.f = t->from, .open = -1};
    bool ended = false;
    for (size_t at = 0, len; (len = rota_fmt_sse_event(out + at, n - at)) > 0; at += len) {
        const char *name = NULL, *data = NULL;
        size_t nlen = 0, dlen = 0;
        for (const char *p = out + at, *e = out + at + len; p < e;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            size_t ll = (size_t)((nl ? nl : e) - p);
            if (ll && p[ll - 1] == '\r')
                ll--;
            if (ll >= 6 && memcmp(p, "event:", 6) == 0)
                name = p + 6 + (p[6] == ' '), nlen = ll - 6 - (p[6] == ' ');
            if (ll >= 5 && memcmp(p, "data:", 5) == 0)
                data = p + 5 + (p[5] == ' '), dlen = ll - 5 - (p[5] == ' ');
            p = nl ? nl + 1 : e;
        }
        if (!data)
            continue;
        if (!rule(&s, name, nlen, data, dlen))
            fail_msg("%s: the client's stream breaks %s's rules: %s\n%.*s", t->name,
                     rota_xl_of(t->from)->name, s.why, (int)n, out);
        evs.n = 0;
        int rc = rota_xl_of(t->from)->ev_in(&x, &in, name, nlen, data, dlen, &evs);
        if (rc)
            fail_msg("%s: %s's reader refuses the client's event \"%.*s\": %s", t->name,
                     rota_xl_of(t->from)->name, (int)dlen, data, x.err);
        for (uint32_t i = 0; i < evs.n; i++)
            ended |= evs.ev[i].type == ROTA_XL_EV_END;
    }
    if (expect_error && !s.error)
        fail_msg("%s: the client's stream does not end with %s's error\n%.*s", t->name,
                 rota_xl_of(t->from)->name, (int)n, out);
    if (!expect_error && !(ended && s.done))
        fail_msg("%s: the client's stream has no proper end\n%.*s", t->name, (int)n, out);
    rota_arena_free(&a);
}

/* Feed the input in pieces of "step" bytes (0: whole), the first "upto" bytes only. */
static char *run_stream(const struct tcase *t, size_t step, size_t upto, bool *ended,
                        size_t *len)
{
    struct rota_arena a;
    struct rota_xl x;
    struct rota_xl_req r;
    setup_x(&x, &a, t, &r);
    static struct rota_xl_stream s;
    rota_xl_stream_init(&s, &x);
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    int rc = 0;
    for (size_t at = 0; at < upto && !rc;) {
        size_t k = step && upto - at > step ? step : upto - at;
        rc = rota_xl_stream_data(&s, t->input + at, k, &out);
        at += k;
    }
    if (!rc && !rota_xl_stream_ended(&s))
        rc = rota_xl_stream_data(&s, "\n\n", 2, &out); /* a last event unterminated */
    *ended = !rc && s.in.ended;
    if (!*ended)
        rota_xl_stream_fail(&s, "the upstream stream failed", &out); /* none if passed on */
    rota_xl_stream_free(&s);
    rota_arena_free(&a);
    assert_int_equal(out.err, 0);
    return rota_jbuf_take(&out, len);
}

static void one(const struct tcase *t)
{
    struct rota_arena a;
    struct rota_xl x;
    struct rota_xl_req r;
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    if (strcmp(t->kind, "request") == 0) {
        setup_x(&x, &a, t, &r);
        int rc = rota_xl_request(&x, t->input, t->ninput, &r, &out);
        if (t->refused) { /* the expected output is the refusal's message */
            if (!rc)
                fail_msg("%s: not refused:\n%.*s", t->name, (int)out.len, out.p);
            assert_true(rc == -ENOTSUP || rc == -EINVAL);
            check_output(t, x.err, strlen(x.err));
            rota_arena_free(&a);
            rota_jbuf_free(&out);
            return;
        }
        if (rc)
            fail_msg("%s: refused: %s", t->name, x.err);
        check_output(t, out.p, out.len);
        struct rota_arena a2;
        rota_arena_init(&a2, 64u << 20);
        struct rota_xl y = {.a = &a2, .from = t->to, .to = t->to, .model = x.model};
        struct rota_xl_req r2;
        if (rota_xl_read(&y, out.p, out.len, &r2))
            fail_msg("%s: %s's reader refuses the output: %s", t->name,
                     rota_xl_of(t->to)->name, y.err);
        rota_arena_free(&a2);
        rota_arena_free(&a);
    } else if (strcmp(t->kind, "answer") == 0) {
        setup_x(&x, &a, t, &r);
        int rc = rota_xl_answer(&x, t->input, t->ninput, &out);
        if (rc)
            fail_msg("%s: refused: %s", t->name, x.err);
        check_output(t, out.p, out.len);
        struct rota_arena a2;
        rota_arena_init(&a2, 64u << 20);
        struct rota_xl y = {.a = &a2, .from = t->from, .to = t->from};
        struct rota_xl_resp resp;
        memset(&resp, 0, sizeof(resp));
        if (rota_xl_of(t->from)->resp_in(&y, out.p, out.len, &resp))
            fail_msg("%s: %s's reader refuses the output: %s", t->name,
                     rota_xl_of(t->from)->name, y.err);
        rota_arena_free(&a2);
        rota_arena_free(&a);
    } else if (strcmp(t->kind, "stream") == 0) {
        bool ended;
        size_t n;
        char *whole = run_stream(t, 0, t->ninput, &ended, &n);
        check_output(t, whole, n);
        if (ended == t->cut)
            fail_msg("%s: the upstream's end %s", t->name, ended ? "came" : "did not come");
        /* ("cut": the upstream's end never came, its error perhaps did) */
        reread_stream(t, whole, n, t->cut);
        for (size_t step = 1; step <= 64; step++) { /* the same, whatever the pieces */
            size_t m;
            char *o = run_stream(t, step, t->ninput, &ended, &m);
            if (m != n || memcmp(o, whole, n) != 0)
                fail_msg("%s: in pieces of %zu bytes the output differs:\n%.*s", t->name,
                         step, (int)m, o);
            free(o);
        }
        for (size_t cut = 0; cut < t->ninput; cut++) { /* cut anywhere: a proper end */
            size_t m;
            char *o = run_stream(t, 7, cut, &ended, &m);
            reread_stream(t, o, m, !ended);
            free(o);
        }
        free(whole);
    } else {
        fail_msg("%s: unknown kind \"%s\"", t->name, t->kind);
    }
    rota_jbuf_free(&out);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void test_corpus(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/xlate", ROTA_TEST_SRC);
    struct dirent **list;
    int n = scandir(dir, &list, NULL, by_name);
    assert_true(n > 0);
    int cases = 0;
    const char *only = getenv("ROTA_XLATE_CASE");
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.' && (!only || strcmp(only, list[i]->d_name) == 0)) {
            struct tcase t;
            load(&t, dir, list[i]->d_name);
            one(&t);
            unload(&t);
            cases++;
        }
        free(list[i]);
    }
    free(list);
    print_message("%d cases\n", cases);
    assert_true(cases > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
