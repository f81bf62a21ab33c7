/*
 * xlate.c - rota-bench --xlate: what the translation between wire formats costs, on
 * this machine, beside what pass-through costs in the same run.
 *
 * DESIGN
 * A 10 KB chat request as an agent sends it (a system prompt, six turns of prose, two
 * tools with JSON Schemas, a tool call and its result) in OpenAI's format; the same
 * request in the other formats is made by translating it, so every pair starts from
 * what a client of that format would send. Each row times one translation (read and
 * write) for many iterations per round and prints the median of the rounds' means, the
 * arena reset between iterations as the pool resets it between requests. The baseline
 * row is pass-through: the bounded scan and the model's splice every request pays.
 *
 * Streams: an OpenAI stream of 200 text chunks and a tool call in 20 argument pieces,
 * and the same answer as Anthropic's and Gemini's events (made by translating it),
 * each translated to the other formats event by event; the cost per upstream event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats.h"
#include "proxy.h"
#include "xlate.h"

#define ROUNDS 7

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return v[n / 2];
}

static const char prose[] =
    "The scheduler keeps every account busy without tripping its limits: it reads each "
    "window's remaining allowance, prefers the account with the most headroom, and "
    "leaves an account before its ceiling so that a burst from another client cannot "
    "push it over. When a provider answers 429, the account cools down for the time the "
    "provider asked, and the request moves on to the next choice without the client "
    "noticing. \\\"Quotes\\\" and a newline\\n stay escaped as they came. ";

/* The 10 KB request, in OpenAI's format. */
static char *openai_request(size_t *len)
{
    struct rota_jbuf b;
    rota_jbuf_init(&b, 0);
    rota_jbuf_rawz(&b, "{\"model\":\"chat-model\",\"messages\":[{\"role\":\"system\","
                       "\"content\":\"You are a careful assistant. ");
    rota_jbuf_rawz(&b, prose);
    rota_jbuf_rawz(&b, "\"}");
    for (int t = 0; t < 6; t++) {
        rota_jbuf_rawz(&b, t % 2 ? ",{\"role\":\"assistant\",\"content\":\""
                                 : ",{\"role\":\"user\",\"content\":\"");
        for (int k = 0; k < 3; k++)
            rota_jbuf_rawz(&b, prose);
        rota_jbuf_rawz(&b, "\"}");
    }
    rota_jbuf_rawz(&b,
                   ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
                   "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
                   "\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":2}\"}}]},{\"role\":\"tool\","
                   "\"tool_call_id\":\"call_1\",\"content\":\"sunny, 21C, light wind from the "
                   "west\"},{\"role\":\"user\",\"content\":\"");
    rota_jbuf_rawz(&b, prose);
    rota_jbuf_rawz(&b, "\"}],\"tools\":[");
    for (int t = 0; t < 2; t++)
        rota_jbuf_rawz(&b,
                       t ? ",{\"type\":\"function\",\"function\":{\"name\":\"search_docs\","
                           "\"description\":\"Search the documentation\",\"parameters\":{\"type\":"
                           "\"object\",\"properties\":{\"query\":{\"type\":\"string\"},\"limit\":{"
                           "\"type\":\"integer\",\"minimum\":1,\"maximum\":50}},\"required\":["
                           "\"query\"]}}}"
                         : "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                           "\"description\":\"Weather for a city\",\"parameters\":{\"type\":"
                           "\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{"
                           "\"type\":\"integer\"}},\"required\":[\"city\"]}}}");
    rota_jbuf_rawz(&b, "],\"max_tokens\":1024,\"temperature\":0.2,\"stream\":true}");
    return rota_jbuf_take(&b, len);
}

static void xl_init(struct rota_xl *x, struct rota_arena *a, enum rota_xl_fmt from,
                    enum rota_xl_fmt to)
{
    memset(x, 0, sizeof(*x));
    x->a = a;
    x->from = from;
    x->to = to;
    x->model = "target-model";
    x->now_s = 1700000000;
}

/* "body" (format "from") translated to "to": a malloc'd body, or NULL with why. */
static char *translate(const char *body, size_t len, enum rota_xl_fmt from, enum rota_xl_fmt to,
                       size_t *out_len)
{
    struct rota_arena a;
    rota_arena_init(&a, 0);
    struct rota_xl x;
    struct rota_xl_req r;
    xl_init(&x, &a, from, to);
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    char *res = NULL;
    if (rota_xl_request(&x, body, len, &r, &out) == 0)
        res = rota_jbuf_take(&out, out_len);
    else
        fprintf(stderr, "rota-bench: %s to %s: %s\n", rota_xl_of(from)->name,
                rota_xl_of(to)->name, x.err);
    rota_jbuf_free(&out);
    rota_arena_free(&a);
    return res;
}

static void request_row(const char *body, size_t len, enum rota_xl_fmt from, enum rota_xl_fmt to)
{
    struct rota_arena a;
    rota_arena_init(&a, 0);
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    double per[ROUNDS];
    const int iters = 2000;
    for (int round = -1; round < ROUNDS; round++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < iters; i++) {
            struct rota_xl x;
            struct rota_xl_req r;
            xl_init(&x, &a, from, to);
            rota_jbuf_reset(&out);
            if (rota_xl_request(&x, body, len, &r, &out)) {
                fprintf(stderr, "rota-bench: %s\n", x.err);
                goto done;
            }
            rota_arena_reset(&a);
        }
        if (round >= 0) /* round -1 warms up */
            per[round] = (double)(now_ns() - t0) / iters / 1000.0;
    }
    printf("  %-12s -> %-12s %6zu B -> %6zu B   %7.2f us   %s\n", rota_xl_of(from)->name,
           rota_xl_of(to)->name, len, out.len, median(per, ROUNDS),
           median(per, ROUNDS) <= 20.0 ? "ok (<= 20 us)" : "MISSED (<= 20 us)");
done:
    rota_jbuf_free(&out);
    rota_arena_free(&a);
}

static void passthrough_row(const char *body, size_t len)
{
    double per[ROUNDS];
    const int iters = 20000;
    size_t sink = 0;
    for (int round = -1; round < ROUNDS; round++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < iters; i++) {
            struct rota_fmt_req r;
            struct rota_fmt_body out;
            if (rota_fmt_scan_request(body, len, &r))
                return;
            rota_fmt_splice_pieces(ROTA_FMT_OPENAI, body, len, &r, "target-model", false, &out);
            sink += out.len;
        }
        if (round >= 0)
            per[round] = (double)(now_ns() - t0) / iters / 1000.0;
    }
    printf("  %-12s -> %-12s %6zu B (pass-through: scan, splice) %7.2f us\n", "openai",
           "openai", len, median(per, ROUNDS));
    if (!sink)
        printf("  (nothing spliced)\n");
}

/* An OpenAI stream: 200 text chunks, a tool call in 20 pieces, finish, usage, [DONE]. */
static char *openai_stream(size_t *len, int *events)
{
    struct rota_jbuf b;
    rota_jbuf_init(&b, 0);
    static const char head[] = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                               "\"created\":1700000000,\"model\":\"gpt-4.1\",\"choices\":[{"
                               "\"index\":0,\"delta\":";
    int n = 0;
    rota_jbuf_rawz(&b, head);
    rota_jbuf_rawz(&b, "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    n++;
    for (int i = 0; i < 200; i++, n++) {
        rota_jbuf_rawz(&b, head);
        rota_jbuf_rawz(&b, "{\"content\":\" the scheduler keeps\"},\"finish_reason\":null}]}\n\n");
    }
    rota_jbuf_rawz(&b, head);
    rota_jbuf_rawz(&b, "{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
                       "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},"
                       "\"finish_reason\":null}]}\n\n");
    n++;
    for (int i = 0; i < 20; i++, n++) {
        rota_jbuf_rawz(&b, head);
        rota_jbuf_rawz(&b, i == 0    ? "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                                       "\"{\\\"notes\\\":\\\"\"}}]},\"finish_reason\":null}]}\n\n"
                           : i == 19 ? "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                                       "\"x\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
                                     : "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                                       "\"abcd\"}}]},\"finish_reason\":null}]}\n\n");
    }
    rota_jbuf_rawz(&b, head);
    rota_jbuf_rawz(&b, "{},\"finish_reason\":\"tool_calls\"}]}\n\n");
    rota_jbuf_rawz(&b, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                       "\"created\":1700000000,\"model\":\"gpt-4.1\",\"choices\":[],\"usage\":{"
                       "\"prompt_tokens\":2500,\"completion_tokens\":420,\"total_tokens\":2920}}"
                       "\n\ndata: [DONE]\n\n");
    *events = n + 3;
    return rota_jbuf_take(&b, len);
}

/* Stream "up" (format "to", from upstream) translated for a client of format "from":
 * the client's bytes (malloc'd), and the time per upstream event in *us (median). */
static char *stream_row(const char *up, size_t len, int events, enum rota_xl_fmt from,
                        enum rota_xl_fmt to, bool print, size_t *out_len)
{
    double per[ROUNDS];
    const int iters = print ? 200 : 1;
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    static struct rota_xl_stream s;
    for (int round = print ? -1 : ROUNDS - 1; round < ROUNDS; round++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < iters; i++) {
            struct rota_arena a;
            rota_arena_init(&a, 0);
            struct rota_xl x;
            struct rota_xl_req r = {.stream = true, .include_usage = true};
            xl_init(&x, &a, from, to);
            x.req = &r;
            rota_xl_stream_init(&s, &x);
            rota_jbuf_reset(&out);
            int rc = rota_xl_stream_data(&s, up, len, &out);
            if (rc || !rota_xl_stream_ended(&s))
                fprintf(stderr, "rota-bench: the %s stream to %s: %s\n", rota_xl_of(to)->name,
                        rota_xl_of(from)->name, rc ? x.err : "no end");
            rota_xl_stream_free(&s);
            rota_arena_free(&a);
        }
        if (round >= 0)
            per[round] = (double)(now_ns() - t0) / iters / events / 1000.0;
    }
    if (print)
        printf("  %-12s -> %-12s %4d events   %7.3f us per event   %s\n", rota_xl_of(to)->name,
               rota_xl_of(from)->name, events, median(per, ROUNDS),
               median(per, ROUNDS) <= 3.0 ? "ok (<= 3 us)" : "MISSED (<= 3 us)");
    return rota_jbuf_take(&out, out_len);
}

static int count_events(const char *p, size_t n)
{
    int k = 0;
    for (size_t at = 0, l; (l = rota_fmt_sse_event(p + at, n - at)) > 0; at += l)
        k++;
    return k;
}

int bench_xlate(void)
{
    size_t len;
    char *oa = openai_request(&len);
    printf("Translating a request (read in one format, written in another), median of %d "
           "rounds:\n",
           ROUNDS);
    passthrough_row(oa, len);
    static const enum rota_xl_fmt others[] = {ROTA_XL_ANTHROPIC, ROTA_XL_GEMINI,
                                              ROTA_XL_CODE_ASSIST, ROTA_XL_RESPONSES};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        request_row(oa, len, ROTA_XL_OPENAI, others[i]);
    static const enum rota_xl_fmt back[] = {ROTA_XL_ANTHROPIC, ROTA_XL_GEMINI,
                                            ROTA_XL_RESPONSES};
    for (size_t i = 0; i < sizeof(back) / sizeof(back[0]); i++) {
        size_t bl;
        char *b = translate(oa, len, ROTA_XL_OPENAI, back[i], &bl);
        if (!b)
            continue;
        request_row(b, bl, back[i], ROTA_XL_OPENAI);
        if (back[i] == ROTA_XL_ANTHROPIC)
            request_row(b, bl, back[i], ROTA_XL_GEMINI);
        free(b);
    }
    free(oa);

    printf("Translating a stream (an upstream's events to a client's), median of %d rounds:\n",
           ROUNDS);
    int ev;
    size_t sl;
    char *os = openai_stream(&sl, &ev);
    static const enum rota_xl_fmt clients[] = {ROTA_XL_ANTHROPIC, ROTA_XL_GEMINI,
                                               ROTA_XL_RESPONSES};
    for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
        size_t cl;
        char *c = stream_row(os, sl, ev, clients[i], ROTA_XL_OPENAI, true, &cl);
        if (clients[i] != ROTA_XL_RESPONSES && c && cl) /* that stream, from upstream */
            free(stream_row(c, cl, count_events(c, cl), ROTA_XL_OPENAI, clients[i], true, &cl));
        free(c);
    }
    free(os);
    return 0;
}
