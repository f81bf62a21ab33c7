/* test_xl_openai_stream: OpenAI's chat completion streams through the translation
 * module (workers/xl_openai_stream.c): recorded streams of real providers (OpenAI's
 * parallel tool calls, OpenRouter's signed reasoning, usage on every chunk, a tool index
 * given twice, llama.cpp's reasoning, an error inside the stream) read into events,
 * written back as a client's stream, and read again to the same events; the written
 * stream is well formed whatever order the events come in, and a failure ends it with
 * an error object and no [DONE]. */
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

#define CHUNK(delta, finish)                                                               \
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":"      \
    "1700000000,\"model\":\"gpt-4.1-2025-04-14\",\"service_tier\":\"default\","            \
    "\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":" delta           \
    ",\"logprobs\":null,\"finish_reason\":" finish "}],\"usage\":null}\n\n"

/* OpenAI (gpt-4.1): two parallel calls, usage in a last chunk of no choices. */
static const char openai_tools[] =
    CHUNK("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":"
          "\"call_P\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
          "\"arguments\":\"\"}}],\"refusal\":null}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"ci\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\": \\\"Paris\\\"}\"}}]}",
          "null")
    CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_R\",\"type\":\"function\",\"function\":"
          "{\"name\":\"get_weather\",\"arguments\":\"\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\\\"city\\\": "
          "\\\"Rome\\\"}\"}}]}", "null")
    CHUNK("{}", "\"tool_calls\"")
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[],\"usage\":{\"prompt_tokens\":80,"
    "\"completion_tokens\":40,\"total_tokens\":120,\"prompt_tokens_details\":{\"cached_tokens\":"
    "64,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,"
    "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n"
    "data: [DONE]\n\n";

/* What a client asking for usage gets from it. */
static const char openai_tools_out[] =
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
    "\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
    "[{\"index\":0,\"id\":\"call_P\",\"type\":\"function\",\"function\":{\"name\":"
    "\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
    "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"ci\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
    "[{\"index\":0,\"function\":{\"arguments\":\"ty\\\": \\\"Paris\\\"}\"}}]},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
    "[{\"index\":1,\"id\":\"call_R\",\"type\":\"function\",\"function\":{\"name\":"
    "\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
    "[{\"index\":1,\"function\":{\"arguments\":\"{\\\"city\\\": \\\"Rome\\\"}\"}}]},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"delta\":{},"
    "\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: {\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[],\"usage\":{\"prompt_tokens\":80,"
    "\"completion_tokens\":40,\"total_tokens\":120,\"prompt_tokens_details\":{\"cached_tokens\":"
    "64},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n"
    "data: [DONE]\n\n";

#define OR(delta, finish)                                                                  \
    "data: {\"id\":\"gen-1\",\"provider\":\"Anthropic\",\"model\":\"anthropic/claude-sonnet-4\"," \
    "\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"choices\":[{\"index\":0,"  \
    "\"delta\":" delta ",\"finish_reason\":" finish ",\"native_finish_reason\":null,"      \
    "\"logprobs\":null}]}\n\n"

/* OpenRouter in front of Anthropic: reasoning and reasoning_details side by side, the
 * signature in an entry of its own, a processing comment, usage in a last chunk. */
static const char openrouter_reasoning[] =
    ": OPENROUTER PROCESSING\n\n"
    OR("{\"role\":\"assistant\",\"content\":\"\",\"reasoning\":\"Let me think\","
       "\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"Let me think\","
       "\"format\":\"anthropic-claude-v1\",\"index\":0}]}", "null")
    OR("{\"role\":\"assistant\",\"content\":\"\",\"reasoning\":\" \\\"more\\\".\","
       "\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\" \\\"more\\\".\","
       "\"format\":\"anthropic-claude-v1\",\"index\":0}]}", "null")
    OR("{\"role\":\"assistant\",\"content\":\"\",\"reasoning\":null,\"reasoning_details\":"
       "[{\"type\":\"reasoning.text\",\"signature\":\"EqQBCkYI\",\"format\":"
       "\"anthropic-claude-v1\",\"index\":0}]}", "null")
    OR("{\"role\":\"assistant\",\"content\":\"Hello\"}", "null")
    OR("{\"role\":\"assistant\",\"content\":\" there\"}", "\"stop\"")
    "data: {\"id\":\"gen-1\",\"provider\":\"Anthropic\",\"model\":\"anthropic/claude-sonnet-4\","
    "\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":"
    "{\"prompt_tokens\":20,\"completion_tokens\":30,\"total_tokens\":50,\"cost\":0.0001,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":"
    "{\"reasoning_tokens\":12}}}\n\n"
    "data: [DONE]\n\n";

#define EVERY(delta, finish, out)                                                          \
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\"," \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish "}],"        \
    "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":" out ",\"total_tokens\":1}}\n\n"

/* A gateway that sends usage on every chunk, tool arguments in the same chunks. */
static const char usage_every_chunk[] =
    EVERY("{\"role\":\"assistant\",\"content\":\"On it.\"}", "null", "1")
    EVERY("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":"
          "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\"}}]}", "null", "3")
    EVERY("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}",
          "null", "5")
    EVERY("{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":\"function\",\"function\":"
          "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]}", "null",
          "8")
    EVERY("{}", "\"tool_calls\"", "9")
    "data: [DONE]\n\n";

/* Gemini's OpenAI-compatible endpoint: each call whole, both at index 0; then a server
 * that gives no index at all (its pieces continue the last call). */
static const char repeated_index[] =
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"function\":"
    "{\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\",\"name\":\"get_weather\"},\"id\":"
    "\"call_1\",\"type\":\"function\",\"index\":0}]},\"index\":0}],\"created\":1,\"id\":"
    "\"g1\",\"model\":\"gemini-2.5-flash\",\"object\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"function\":"
    "{\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\",\"name\":\"get_weather\"},\"id\":"
    "\"call_2\",\"type\":\"function\",\"index\":0}]},\"index\":0}],\"created\":1,\"id\":"
    "\"g1\",\"model\":\"gemini-2.5-flash\",\"object\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"call_3\",\"function\":"
    "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]},\"index\":0}],\"id\":\"g1\"}\n\n"
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"\",\"function\":"
    "{\"arguments\":\"1}\"}}]},\"index\":0}],\"id\":\"g1\"}\n\n"
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\",\"index\":0}],"
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,\"total_tokens\":11},"
    "\"id\":\"g1\"}\n\n"
    "data: [DONE]\n\n";

/* llama.cpp's server with a reasoning model (--reasoning-format deepseek). */
static const char llamacpp_reasoning[] =
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":null}}],\"created\":1700000000,\"id\":\"chatcmpl-L\",\"model\":\"qwen3\","
    "\"system_fingerprint\":\"b5000\",\"object\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"reasoning_content\":"
    "\"Hmm\"}}],\"created\":1700000000,\"id\":\"chatcmpl-L\",\"model\":\"qwen3\","
    "\"object\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"Hi\"}}],"
    "\"created\":1700000000,\"id\":\"chatcmpl-L\",\"model\":\"qwen3\",\"object\":"
    "\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{}}],\"created\":"
    "1700000000,\"id\":\"chatcmpl-L\",\"model\":\"qwen3\",\"object\":\"chat.completion.chunk\","
    "\"usage\":{\"completion_tokens\":3,\"prompt_tokens\":9,\"total_tokens\":12},\"timings\":"
    "{\"prompt_n\":9,\"predicted_n\":3}}\n\n"
    "data: [DONE]\n\n";

/* ---- reading and writing ---- */

#define S ROTA_XL_EV_START
#define T ROTA_XL_EV_TOOL
#define A ROTA_XL_EV_ARGS
#define U ROTA_XL_EV_USAGE
#define EVMAX 256
struct evlist {
    struct rota_xl_ev ev[EVMAX];
    uint32_t n;
};

struct ctx {
    struct rota_arena a;
    struct rota_xl x;
    struct rota_xl_req r;
};

static void ctx_init(struct ctx *c, bool usage)
{
    memset(c, 0, sizeof(*c));
    rota_arena_init(&c->a, 64u << 20);
    c->x = (struct rota_xl){.a = &c->a, .from = ROTA_XL_OPENAI, .to = ROTA_XL_OPENAI,
                            .now_s = 1700000000, .req = &c->r};
    c->r.stream = true;
    c->r.include_usage = usage;
    c->r.model = (struct rota_xl_val){"\"alias\"", 7};
}

/* Each SSE event of "s" through ev_in; the events appended to "l". 0, or ev_in's error. */
static int read_stream(struct rota_xl *x, const char *s, size_t len, struct evlist *l)
{
    struct rota_xl_sin in = {0};
    static struct rota_xl_evs evs;
    for (size_t at = 0, n; (n = rota_fmt_sse_event(s + at, len - at)) > 0; at += n) {
        const char *name = NULL, *data = NULL;
        size_t nlen = 0, dlen = 0;
        for (const char *p = s + at, *e = s + at + n; p < e;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            size_t ll = (size_t)((nl ? nl : e) - p);
            if (ll >= 7 && memcmp(p, "event: ", 7) == 0)
                name = p + 7, nlen = ll - 7;
            if (ll >= 6 && memcmp(p, "data: ", 6) == 0)
                data = p + 6, dlen = ll - 6;
            p = nl ? nl + 1 : e;
        }
        if (!data)
            continue;
        evs.n = 0;
        int rc = rota_xl_openai.ev_in(x, &in, name, nlen, data, dlen, &evs);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < evs.n && l->n < EVMAX; i++)
            l->ev[l->n++] = evs.ev[i];
    }
    return 0;
}

/* Events "l" through ev_out into "out". */
static void write_stream(struct rota_xl *x, const struct evlist *l, struct rota_jbuf *out)
{
    struct rota_xl_sout st = {.open = -1};
    rota_jbuf_init(&st.held, 1u << 20);
    rota_jbuf_init(&st.held2, 1u << 20);
    for (uint32_t i = 0; i < l->n; i++)
        assert_int_equal(rota_xl_openai.ev_out(x, &st, &l->ev[i], out), 0);
    rota_jbuf_free(&st.held);
    rota_jbuf_free(&st.held2);
}

static bool same(struct rota_xl_val a, struct rota_xl_val b)
{
    return a.len == b.len && (!a.len || memcmp(a.p, b.p, a.len) == 0);
}

static void same_usage(const struct rota_xl_usage *a, const struct rota_xl_usage *b)
{
    assert_int_equal(a->in, b->in);
    assert_int_equal(a->out, b->out);
    assert_int_equal(a->cached, b->cached);
    assert_int_equal(a->reasoning, b->reasoning);
    assert_int_equal(a->seen, b->seen);
}

static bool content_ev(const struct rota_xl_ev *e)
{
    return e->type == ROTA_XL_EV_TEXT || e->type == ROTA_XL_EV_THINKING ||
           e->type == ROTA_XL_EV_SIGNATURE || e->type == ROTA_XL_EV_TOOL ||
           e->type == ROTA_XL_EV_ARGS;
}

/* The last event of type "t" in "l", or NULL. */
static const struct rota_xl_ev *last(const struct evlist *l, enum rota_xl_ev_type t)
{
    for (uint32_t i = l->n; i-- > 0;)
        if (l->ev[i].type == t)
            return &l->ev[i];
    return NULL;
}

/* "a" and "b" say the same: their content events in order, the finish, the usage (when
 * "usage"), and an end. */
static void same_events(const struct evlist *a, const struct evlist *b, bool usage)
{
    uint32_t i = 0, j = 0;
    for (;;) {
        while (i < a->n && !content_ev(&a->ev[i]))
            i++;
        while (j < b->n && !content_ev(&b->ev[j]))
            j++;
        if (i == a->n || j == b->n)
            break;
        const struct rota_xl_ev *x = &a->ev[i++], *y = &b->ev[j++];
        if (x->type != y->type || x->index != y->index || !same(x->text, y->text) ||
            !same(x->sig, y->sig) || !same(x->name, y->name) || (x->id.len && !same(x->id, y->id)))
            fail_msg("event %u (type %d, \"%.*s\") is read back as type %d, \"%.*s\"", i - 1,
                     x->type, (int)x->text.len, x->text.p, y->type, (int)y->text.len, y->text.p);
    }
    if (i != a->n || j != b->n)
        fail_msg("%u content events, read back %u", i, j);
    assert_non_null(last(b, ROTA_XL_EV_END));
    assert_non_null(last(b, ROTA_XL_EV_FINISH));
    assert_int_equal(last(a, ROTA_XL_EV_FINISH)->finish, last(b, ROTA_XL_EV_FINISH)->finish);
    if (usage)
        same_usage(&last(a, ROTA_XL_EV_USAGE)->usage, &last(b, ROTA_XL_EV_USAGE)->usage);
    else
        assert_null(last(b, ROTA_XL_EV_USAGE));
}

/* A recorded stream read, written and read again: the same events. The client's
 * stream is left in "out" (the caller frees it), the first reading in "first" (its
 * values in c's arena). */
static void round_trip(struct ctx *c, const char *s, struct rota_jbuf *out,
                       struct evlist *first)
{
    static struct evlist again;
    memset(first, 0, sizeof(*first));
    memset(&again, 0, sizeof(again));
    if (read_stream(&c->x, s, strlen(s), first))
        fail_msg("refused: %s", c->x.err);
    rota_jbuf_init(out, 0);
    write_stream(&c->x, first, out);
    if (read_stream(&c->x, out->p, out->len, &again))
        fail_msg("its own stream refused: %s\n%s", c->x.err, out->p);
    same_events(first, &again, c->r.include_usage);
    /* a chunk per event, [DONE] last */
    const char *done = strstr(out->p, "data: [DONE]\n\n");
    assert_non_null(done);
    assert_int_equal(done + 14 - out->p, out->len);
}

static void expect_types(const struct evlist *l, const enum rota_xl_ev_type *t, uint32_t n)
{
    for (uint32_t i = 0; i < n && i < l->n; i++)
        if (l->ev[i].type != t[i])
            fail_msg("event %u is of type %d, not %d", i, l->ev[i].type, t[i]);
    assert_int_equal(l->n, n);
}

#define TYPES(l, ...)                                                                      \
    do {                                                                                   \
        static const enum rota_xl_ev_type t_[] = {__VA_ARGS__};                            \
        expect_types((l), t_, sizeof(t_) / sizeof(t_[0]));                                 \
    } while (0)

static bool vis(struct rota_xl_val v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

static struct evlist first;

static void test_openai_parallel_tools(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, true);
    struct rota_jbuf out;
    round_trip(&c, openai_tools, &out, &first);
    TYPES(&first, S, T, A, A, T, A, ROTA_XL_EV_FINISH, ROTA_XL_EV_USAGE, ROTA_XL_EV_END);
    assert_true(vis(first.ev[0].id, "\"chatcmpl-B1\""));
    assert_true(vis(first.ev[1].id, "\"call_P\""));
    assert_true(vis(first.ev[1].name, "\"get_weather\""));
    assert_true(vis(first.ev[3].text, "\"ty\\\": \\\"Paris\\\"}\"")); /* as given */
    assert_int_equal(first.ev[4].index, 1);
    assert_int_equal(first.ev[6].finish, ROTA_XL_FINISH_TOOLS);
    struct rota_xl_usage u = {80, 40, 64, 0, true};
    same_usage(&first.ev[7].usage, &u);
    if (strlen(openai_tools_out) != out.len || memcmp(out.p, openai_tools_out, out.len) != 0)
        fail_msg("written:\n%s", out.p);
    rota_jbuf_free(&out);
    /* a client that did not ask for usage gets none */
    c.r.include_usage = false;
    round_trip(&c, openai_tools, &out, &first);
    assert_null(strstr(out.p, "\"usage\""));
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

static void test_openrouter_signed_reasoning(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, true);
    struct rota_jbuf out;
    round_trip(&c, openrouter_reasoning, &out, &first);
    TYPES(&first, ROTA_XL_EV_START, ROTA_XL_EV_THINKING, ROTA_XL_EV_THINKING,
          ROTA_XL_EV_SIGNATURE, ROTA_XL_EV_TEXT, ROTA_XL_EV_TEXT, ROTA_XL_EV_FINISH,
          ROTA_XL_EV_USAGE, ROTA_XL_EV_END);
    assert_true(vis(first.ev[2].text, "\" \\\"more\\\".\""));
    assert_true(vis(first.ev[3].sig, "\"EqQBCkYI\""));
    assert_int_equal(first.ev[7].usage.reasoning, 12);
    /* the text and its signature as one entry, for the client to send back */
    assert_non_null(strstr(out.p, "{\"reasoning_details\":[{\"type\":\"reasoning.text\","
                                  "\"text\":\"Let me think \\\"more\\\".\",\"signature\":"
                                  "\"EqQBCkYI\",\"index\":0}]}"));
    assert_non_null(strstr(out.p, "{\"reasoning_content\":\"Let me think\"}"));
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

static void test_usage_on_every_chunk(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, true);
    struct rota_jbuf out;
    round_trip(&c, usage_every_chunk, &out, &first);
    TYPES(&first, ROTA_XL_EV_START, ROTA_XL_EV_TEXT, U, T, A, U, A, U, T, A, U,
          ROTA_XL_EV_FINISH, U, ROTA_XL_EV_END);
    assert_true(vis(first.ev[6].text, "\"\\\"Paris\\\"}\""));
    assert_int_equal(first.ev[9].index, 1);
    assert_int_equal(first.ev[12].usage.out, 9);
    /* one usage chunk, at the end */
    const char *u = strstr(out.p, "\"usage\"");
    assert_non_null(u);
    assert_null(strstr(u + 1, "\"usage\""));
    assert_non_null(strstr(out.p, "\"completion_tokens\":9"));
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

static void test_tool_index_repeated_or_missing(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, false);
    struct rota_jbuf out;
    round_trip(&c, repeated_index, &out, &first);
    TYPES(&first, ROTA_XL_EV_START, T, A, T, A, T, A, A, ROTA_XL_EV_FINISH, ROTA_XL_EV_USAGE,
          ROTA_XL_EV_END);
    assert_int_equal(first.ev[3].index, 1);
    assert_true(vis(first.ev[3].id, "\"call_2\""));
    assert_int_equal(first.ev[5].index, 2);
    assert_int_equal(first.ev[7].index, 2); /* no index: the last call's */
    assert_true(vis(first.ev[7].text, "\"1}\""));
    assert_non_null(strstr(out.p, "\"tool_calls\":[{\"index\":2,\"id\":\"call_3\""));
    assert_null(strstr(out.p, "\"usage\""));
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

static void test_llamacpp_reasoning(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, false);
    struct rota_jbuf out;
    round_trip(&c, llamacpp_reasoning, &out, &first);
    TYPES(&first, ROTA_XL_EV_START, ROTA_XL_EV_THINKING, ROTA_XL_EV_TEXT, ROTA_XL_EV_FINISH,
          ROTA_XL_EV_USAGE, ROTA_XL_EV_END);
    assert_int_equal(first.ev[3].finish, ROTA_XL_FINISH_LENGTH);
    assert_int_equal(first.ev[4].usage.in, 9);
    assert_non_null(strstr(out.p, "\"delta\":{},\"finish_reason\":\"length\"}]}"));
    assert_null(strstr(out.p, "reasoning_details")); /* no signature came */
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

/* An error inside the stream (OpenRouter's, after some text): the provider's failure is
 * read as such, and a client's stream given it ends with an error object, no [DONE]. */
static void test_error_inside_the_stream(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, true);
    const char *s = "data: {\"id\":\"c4\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                    "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                    "\"assistant\",\"content\":\"Partial\"},\"finish_reason\":null}]}\n\n"
                    "data: {\"error\":{\"message\":\"upstream \\\"overloaded\\\"\",\"code\":"
                    "502}}\n\n";
    memset(&first, 0, sizeof(first));
    assert_int_equal(read_stream(&c.x, s, strlen(s), &first), 0);
    TYPES(&first, ROTA_XL_EV_START, ROTA_XL_EV_TEXT, ROTA_XL_EV_ERROR);
    assert_true(vis(first.ev[2].text, "\"upstream \\\"overloaded\\\"\""));
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    write_stream(&c.x, &first, &out);
    const char *want = "data: {\"error\":{\"message\":\"upstream \\\"overloaded\\\"\","
                       "\"type\":\"server_error\"}}\n\n";
    assert_non_null(strstr(out.p, "{\"content\":\"Partial\"}"));
    assert_string_equal(out.p + out.len - strlen(want), want);
    assert_null(strstr(out.p, "[DONE]"));
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

/* Events in any order still make a well-formed stream: a call first with no START,
 * a call begun twice, a call that came whole (Gemini's, with a thought signature and
 * no id), reasoning signed, nothing after the end. */
static void test_out_any_order(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, true);
    struct rota_xl_sout st = {.open = -1};
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    struct rota_xl_ev evs[] = {
        {.type = ROTA_XL_EV_TOOL, .index = 0, .id = {"\"toolu_1\"", 9}, .name = {"\"f\"", 3}},
        {.type = ROTA_XL_EV_TOOL, .index = 0, .id = {"\"toolu_1\"", 9}, .name = {"\"f\"", 3}},
        {.type = ROTA_XL_EV_ARGS, .index = 0, .text = {"\"{\\\"a\\\":1}\"", 11}},
        {.type = ROTA_XL_EV_THINKING, .text = {"\"th\"", 4}},
        {.type = ROTA_XL_EV_SIGNATURE, .sig = {"\"sg\"", 4}},
        {.type = ROTA_XL_EV_TOOL, .index = 1, .name = {"\"g\"", 3}, .args = {"{\"b\":[2]}", 9},
         .sig = {"\"ts\"", 4}},
        {.type = ROTA_XL_EV_USAGE, .usage = {7, 3, 0, 1, true}},
        {.type = ROTA_XL_EV_USAGE, .usage = {.out = 5, .seen = true}}, /* a later reading */
        {.type = ROTA_XL_EV_FINISH, .finish = ROTA_XL_FINISH_STOP},
        {.type = ROTA_XL_EV_END},
        {.type = ROTA_XL_EV_TEXT, .text = {"\"late\"", 6}},
        {.type = ROTA_XL_EV_END},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        assert_int_equal(rota_xl_openai.ev_out(&c.x, &st, &evs[i], &out), 0);
    struct rota_xl_val id = rota_xl_tool_id(&c.x, "call_", evs[5].name, evs[5].args, 1,
                                            evs[5].sig);
    char want[4096];
    const char *pre = "data: {\"id\":\"chatcmpl-";
    assert_memory_equal(out.p, pre, strlen(pre)); /* an id made, the client's model */
    const char *model = strstr(out.p, "\"model\":\"alias\"");
    assert_non_null(model);
    size_t plen = (size_t)(model + strlen("\"model\":\"alias\"") - out.p);
    char head[256];
    snprintf(head, sizeof(head), "%.*s", (int)plen, out.p);
    snprintf(want, sizeof(want),
             "%s,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
             "\"finish_reason\":null}]}\n\n"
             "%s,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
             "\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
             "\"\"}}]},\"finish_reason\":null}]}\n\n"
             "%s,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
             "\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":null}]}\n\n"
             "%s,\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"th\"},"
             "\"finish_reason\":null}]}\n\n"
             "%s,\"choices\":[{\"index\":0,\"delta\":{\"reasoning_details\":[{\"type\":"
             "\"reasoning.text\",\"text\":\"th\",\"signature\":\"sg\",\"index\":0}]},"
             "\"finish_reason\":null}]}\n\n"
             "%s,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":"
             "%.*s,\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":"
             "\"{\\\"b\\\":[2]}\"}}]},\"finish_reason\":null}]}\n\n"
             "%s,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
             "%s,\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,"
             "\"total_tokens\":12,\"prompt_tokens_details\":{\"cached_tokens\":0},"
             "\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n"
             "data: [DONE]\n\n",
             head, head, head, head, head, head, (int)id.len, id.p, head, head);
    if (strcmp(out.p, want) != 0)
        fail_msg("written:\n%s\nwanted:\n%s", out.p, want);
    assert_true(vis(rota_xl_id_sig(&c.x, id), "\"ts\"")); /* the signature rides in the id */
    /* a failure after the end adds nothing */
    size_t n = out.len;
    rota_xl_openai.ev_fail(&c.x, &st, "late", &out);
    assert_int_equal(out.len, n);
    /* arguments of a call never begun are an error, not a broken stream */
    struct rota_xl_sout st2 = {.open = -1};
    struct rota_xl_ev orphan = {.type = ROTA_XL_EV_ARGS, .index = 3, .text = {"\"{}\"", 4}};
    rota_jbuf_reset(&out);
    assert_int_equal(rota_xl_openai.ev_out(&c.x, &st2, &orphan, &out), -EINVAL);
    rota_jbuf_free(&st.held);
    rota_jbuf_free(&st.held2);
    rota_jbuf_free(&st2.held);
    rota_jbuf_free(&st2.held2);
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

/* A failed stream: an error object after what was written, no [DONE]; before anything,
 * the error alone. */
static void test_fail(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, true);
    struct rota_xl_sout st = {.open = -1};
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    rota_xl_openai.ev_fail(&c.x, &st, "cut \"short\"", &out);
    assert_string_equal(out.p, "data: {\"error\":{\"message\":\"cut \\\"short\\\"\",\"type\":"
                               "\"server_error\"}}\n\n");
    struct rota_xl_ev t = {.type = ROTA_XL_EV_TEXT, .text = {"\"x\"", 3}};
    size_t n = out.len;
    assert_int_equal(rota_xl_openai.ev_out(&c.x, &st, &t, &out), 0);
    assert_int_equal(out.len, n); /* nothing after the end */
    rota_jbuf_free(&st.held2);
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

static void refused_event(const char *data, int err, const char *want)
{
    struct ctx c;
    ctx_init(&c, false);
    struct rota_xl_sin in = {0};
    static struct rota_xl_evs evs;
    evs.n = 0;
    int rc = rota_xl_openai.ev_in(&c.x, &in, NULL, 0, data, strlen(data), &evs);
    if (rc != err || !strstr(c.x.err, want))
        fail_msg("%s: %d \"%s\", not %d \"%s\"", data, rc, c.x.err, err, want);
    rota_arena_free(&c.a);
}

static void test_in_malformed(void **state)
{
    (void)state;
    refused_event("{\"choices\":[", -EINVAL, "a stream event is not JSON");
    refused_event("[1]", -EINVAL, "not a JSON object");
    refused_event("{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                  "\"function\":{\"arguments\":\"{}\"}}]}}]}",
                  -EINVAL, "tool call arguments before the call began");
    refused_event("{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":900,"
                  "\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}}]}",
                  -EFBIG, "a tool call index above 127");
    char big[8192] = "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[";
    for (int i = 0; i < 40; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big),
                 "%s{\"index\":%d,\"id\":\"c%d\",\"function\":{\"name\":\"f\",\"arguments\":"
                 "\"{}\"}}",
                 i ? "," : "", i, i);
    strcat(big, "]}}]}");
    refused_event(big, -EFBIG, "a stream event holds more than 64 parts");
    /* what is not an error: keep-alives, other choices, [DONE] */
    struct ctx c;
    ctx_init(&c, false);
    struct rota_xl_sin in = {0};
    static struct rota_xl_evs evs;
    evs.n = 0;
    assert_int_equal(rota_xl_openai.ev_in(&c.x, &in, NULL, 0, "", 0, &evs), 0);
    const char *other = "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}";
    assert_int_equal(rota_xl_openai.ev_in(&c.x, &in, NULL, 0, other, strlen(other), &evs), 0);
    assert_int_equal(evs.n, 1); /* the start; index 1 is not the choice asked for */
    assert_int_equal(evs.ev[0].type, ROTA_XL_EV_START);
    evs.n = 0;
    assert_int_equal(rota_xl_openai.ev_in(&c.x, &in, NULL, 0, "[DONE]", 6, &evs), 0);
    assert_int_equal(evs.ev[0].type, ROTA_XL_EV_END);
    rota_arena_free(&c.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_parallel_tools),
        cmocka_unit_test(test_openrouter_signed_reasoning),
        cmocka_unit_test(test_usage_on_every_chunk),
        cmocka_unit_test(test_tool_index_repeated_or_missing),
        cmocka_unit_test(test_llamacpp_reasoning),
        cmocka_unit_test(test_error_inside_the_stream),
        cmocka_unit_test(test_out_any_order),
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_in_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
