/* test_xl_responses_stream: Responses API streams through the translation module
 * (workers/xl_responses_stream.c): a recorded stream (reasoning with its encrypted
 * state, text, parallel function calls, usage) read into events, written back as a
 * client's stream and read again to the same events; a chat completions stream written
 * as a Responses stream; the written stream keeps the API's framing whatever order the
 * events come in (each event named as its type, sequence numbers in order, one output
 * item open at a time, each added item done, response.completed last with the whole
 * response); a failure ends with an error event. */
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

#define EV(name, rest) "event: " name "\ndata: {\"type\":\"" name "\"," rest "}\n\n"
#define RESP(status, out, usage)                                                           \
    "\"response\":{\"id\":\"resp_68a\",\"object\":\"response\",\"created_at\":1700000000,"   \
    "\"status\":\"" status "\",\"error\":null,\"incomplete_details\":null,\"model\":"      \
    "\"gpt-5-2025-08-07\",\"output\":[" out "],\"usage\":" usage "}"
#define FC(n, id, call, args)                                                              \
    "{\"id\":\"" id "\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":" \
    "\"" args "\",\"call_id\":\"" call "\",\"name\":\"get_weather\"}"

/* OpenAI's (gpt-5): reasoning summarized in two parts, text, two calls, usage. */
static const char recorded[] =
    EV("response.created", "\"sequence_number\":0," RESP("in_progress", "", "null"))
    EV("response.in_progress", "\"sequence_number\":1," RESP("in_progress", "", "null"))
    EV("response.output_item.added", "\"sequence_number\":2,\"output_index\":0,\"item\":"
       "{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[]}")
    EV("response.reasoning_summary_part.added", "\"sequence_number\":3,\"item_id\":\"rs_1\","
       "\"output_index\":0,\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}")
    EV("response.reasoning_summary_text.delta", "\"sequence_number\":4,\"item_id\":\"rs_1\","
       "\"output_index\":0,\"summary_index\":0,\"delta\":\"**Plan**\",\"obfuscation\":\"x\"")
    EV("response.reasoning_summary_part.added", "\"sequence_number\":5,\"item_id\":\"rs_1\","
       "\"output_index\":0,\"summary_index\":1,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}")
    EV("response.reasoning_summary_text.delta", "\"sequence_number\":6,\"item_id\":\"rs_1\","
       "\"output_index\":0,\"summary_index\":1,\"delta\":\"Two cities.\"")
    EV("response.output_item.done", "\"sequence_number\":7,\"output_index\":0,\"item\":{\"id\":"
       "\"rs_1\",\"type\":\"reasoning\",\"encrypted_content\":\"gAAAAABoXyz\",\"summary\":[{"
       "\"type\":\"summary_text\",\"text\":\"**Plan**\"},{\"type\":\"summary_text\",\"text\":"
       "\"Two cities.\"}]}")
    EV("response.output_item.added", "\"sequence_number\":8,\"output_index\":1,\"item\":{\"id\":"
       "\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":"
       "\"assistant\"}")
    EV("response.content_part.added", "\"sequence_number\":9,\"item_id\":\"msg_1\","
       "\"output_index\":1,\"content_index\":0,\"part\":{\"type\":\"output_text\","
       "\"annotations\":[],\"logprobs\":[],\"text\":\"\"}")
    EV("response.output_text.delta", "\"sequence_number\":10,\"item_id\":\"msg_1\","
       "\"output_index\":1,\"content_index\":0,\"delta\":\"Checking\",\"logprobs\":[]")
    EV("response.output_text.delta", "\"sequence_number\":11,\"item_id\":\"msg_1\","
       "\"output_index\":1,\"content_index\":0,\"delta\":\" \\\"both\\\".\",\"logprobs\":[]")
    EV("response.output_text.done", "\"sequence_number\":12,\"item_id\":\"msg_1\","
       "\"output_index\":1,\"content_index\":0,\"text\":\"Checking \\\"both\\\".\"")
    EV("response.output_item.done", "\"sequence_number\":13,\"output_index\":1,\"item\":{\"id\":"
       "\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":"
       "\"output_text\",\"annotations\":[],\"text\":\"Checking \\\"both\\\".\"}],\"role\":"
       "\"assistant\"}")
    EV("response.output_item.added", "\"sequence_number\":14,\"output_index\":2,\"item\":{\"id\":"
       "\"fc_1\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\","
       "\"call_id\":\"call_P\",\"name\":\"get_weather\"}")
    EV("response.function_call_arguments.delta", "\"sequence_number\":15,\"item_id\":\"fc_1\","
       "\"output_index\":2,\"delta\":\"{\\\"city\\\":\"")
    EV("response.function_call_arguments.delta", "\"sequence_number\":16,\"item_id\":\"fc_1\","
       "\"output_index\":2,\"delta\":\"\\\"Paris\\\"}\"")
    EV("response.function_call_arguments.done", "\"sequence_number\":17,\"item_id\":\"fc_1\","
       "\"output_index\":2,\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"")
    EV("response.output_item.done", "\"sequence_number\":18,\"output_index\":2,\"item\":"
       FC(2, "fc_1", "call_P", "{\\\"city\\\":\\\"Paris\\\"}"))
    EV("response.output_item.added", "\"sequence_number\":19,\"output_index\":3,\"item\":{\"id\":"
       "\"fc_2\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\","
       "\"call_id\":\"call_R\",\"name\":\"get_weather\"}")
    EV("response.function_call_arguments.delta", "\"sequence_number\":20,\"item_id\":\"fc_2\","
       "\"output_index\":3,\"delta\":\"{\\\"city\\\":\\\"Rome\\\"}\"")
    EV("response.output_item.done", "\"sequence_number\":21,\"output_index\":3,\"item\":"
       FC(3, "fc_2", "call_R", "{\\\"city\\\":\\\"Rome\\\"}"))
    EV("response.completed", "\"sequence_number\":22," RESP("completed", "{}", "{\"input_tokens\":"
       "120,\"input_tokens_details\":{\"cached_tokens\":100},\"output_tokens\":60,"
       "\"output_tokens_details\":{\"reasoning_tokens\":30},\"total_tokens\":180}"));

/* A chat completions stream (OpenRouter in front of Anthropic): signed reasoning, text,
 * two calls, usage. */
static const char chat[] =
    "data: {\"id\":\"gen-1\",\"model\":\"anthropic/claude\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"role\":\"assistant\",\"reasoning\":\"Think\"}}]}\n\n"
    "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_details\":[{"
    "\"type\":\"reasoning.text\",\"signature\":\"EqQB\"}]}}]}\n\n"
    "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"On it.\"}}]}\n\n"
    "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"id\":\"call_1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n"
    "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"function\":{\"arguments\":\"1}\"}}]}}]}\n\n"
    "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
    "\"id\":\"call_2\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}\n\n"
    "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
    "\"tool_calls\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\n\n"
    "data: [DONE]\n\n";

#define EVMAX 256
struct evlist {
    struct rota_xl_ev ev[EVMAX];
    uint32_t n;
};

static struct evlist first, again;

struct ctx {
    struct rota_arena a;
    struct rota_xl x;
    struct rota_xl_req r;
};

static void ctx_init(struct ctx *c)
{
    memset(c, 0, sizeof(*c));
    rota_arena_init(&c->a, 64u << 20);
    c->x = (struct rota_xl){.a = &c->a, .from = ROTA_XL_RESPONSES, .to = ROTA_XL_RESPONSES,
                            .now_s = 1700000000, .req = &c->r};
    c->r.stream = c->r.include_usage = true;
    c->r.model = (struct rota_xl_val){"\"alias\"", 7};
}

/* Each SSE event of "s" through format "f"'s ev_in, the events appended to "l". */
static int read_stream(struct rota_xl *x, const struct rota_xl_format *f, const char *s,
                       size_t len, struct evlist *l)
{
    struct rota_xl_sin in = {0};
    static struct rota_xl_evs evs;
    memset(l, 0, sizeof(*l));
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
        int rc = f->ev_in(x, &in, name, nlen, data, dlen, &evs);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < evs.n && l->n < EVMAX; i++)
            l->ev[l->n++] = evs.ev[i];
    }
    return 0;
}

static void write_stream(struct rota_xl *x, const struct evlist *l, struct rota_jbuf *out)
{
    struct rota_xl_sout st = {.open = -1};
    rota_jbuf_init(&st.held, 1u << 20);
    rota_jbuf_init(&st.held2, 1u << 20);
    for (uint32_t i = 0; i < l->n; i++)
        assert_int_equal(rota_xl_responses.ev_out(x, &st, &l->ev[i], out), 0);
    rota_jbuf_free(&st.held);
    rota_jbuf_free(&st.held2);
}

static bool same(struct rota_xl_val a, struct rota_xl_val b)
{
    return a.len == b.len && (!a.len || memcmp(a.p, b.p, a.len) == 0);
}

static bool content_ev(const struct rota_xl_ev *e)
{
    return e->type == ROTA_XL_EV_TEXT || e->type == ROTA_XL_EV_THINKING ||
           e->type == ROTA_XL_EV_SIGNATURE || e->type == ROTA_XL_EV_TOOL ||
           e->type == ROTA_XL_EV_ARGS;
}

static const struct rota_xl_ev *last(const struct evlist *l, enum rota_xl_ev_type t)
{
    for (uint32_t i = l->n; i-- > 0;)
        if (l->ev[i].type == t)
            return &l->ev[i];
    return NULL;
}

static void same_events(const struct evlist *a, const struct evlist *b)
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
    assert_int_equal(last(a, ROTA_XL_EV_FINISH)->finish, last(b, ROTA_XL_EV_FINISH)->finish);
    const struct rota_xl_usage *u = &last(a, ROTA_XL_EV_USAGE)->usage,
                               *v = &last(b, ROTA_XL_EV_USAGE)->usage;
    assert_int_equal(u->in, v->in);
    assert_int_equal(u->out, v->out);
    assert_int_equal(u->cached, v->cached);
    assert_int_equal(u->reasoning, v->reasoning);
}

/* The Responses API's framing of stream "s": named as typed, numbered in order, one
 * item open at a time and each closed, the last event "end". */
static void framing(const char *s, size_t len, const char *end)
{
    uint64_t seq = 0;
    int open = -1, items = 0;
    char lastname[64] = "";
    for (size_t at = 0, n; (n = rota_fmt_sse_event(s + at, len - at)) > 0; at += n, seq++) {
        char name[64];
        if (sscanf(s + at, "event: %63s", name) != 1)
            fail_msg("an event without a name at %zu:\n%s", at, s);
        char head[160];
        snprintf(head, sizeof(head), "\ndata: {\"type\":\"%s\",\"sequence_number\":%llu", name,
                 (unsigned long long)seq);
        if (strncmp(s + at + 7 + strlen(name), head, strlen(head)) != 0)
            fail_msg("event %llu (%s) is not typed and numbered:\n%.*s",
                     (unsigned long long)seq, name, (int)n, s + at);
        if (seq == 0 && strcmp(name, "response.created") != 0 && strcmp(name, "error") != 0)
            fail_msg("the stream begins with %s", name);
        if (strcmp(name, "response.output_item.added") == 0) {
            if (open >= 0)
                fail_msg("item %d added while %d is open", items, open);
            open = items++;
        } else if (strcmp(name, "response.output_item.done") == 0) {
            if (open < 0)
                fail_msg("an item done that is not open");
            open = -1;
        } else if (strstr(name, ".delta") && open < 0) {
            fail_msg("%s with no item open", name);
        }
        snprintf(lastname, sizeof(lastname), "%s", name);
    }
    if (open >= 0 && strcmp(end, "error") != 0)
        fail_msg("item %d is never done", open);
    assert_string_equal(lastname, end);
}

static void test_recorded_stream(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c);
    if (read_stream(&c.x, &rota_xl_responses, recorded, strlen(recorded), &first))
        fail_msg("refused: %s", c.x.err);
    enum rota_xl_ev_type want[] = {
        ROTA_XL_EV_START, ROTA_XL_EV_THINKING, ROTA_XL_EV_THINKING, ROTA_XL_EV_THINKING,
        ROTA_XL_EV_SIGNATURE, ROTA_XL_EV_TEXT, ROTA_XL_EV_TEXT, ROTA_XL_EV_TOOL, ROTA_XL_EV_ARGS,
        ROTA_XL_EV_ARGS, ROTA_XL_EV_TOOL, ROTA_XL_EV_ARGS, ROTA_XL_EV_USAGE, ROTA_XL_EV_FINISH,
        ROTA_XL_EV_END};
    assert_int_equal(first.n, sizeof(want) / sizeof(want[0]));
    for (uint32_t i = 0; i < first.n; i++)
        if (first.ev[i].type != want[i])
            fail_msg("event %u is of type %d, not %d", i, first.ev[i].type, want[i]);
    assert_int_equal(first.ev[13].finish, ROTA_XL_FINISH_TOOLS);
    assert_int_equal(first.ev[12].usage.cached, 100);
    assert_int_equal(first.ev[10].index, 1);
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    write_stream(&c.x, &first, &out);
    framing(out.p, out.len, "response.completed");
    if (read_stream(&c.x, &rota_xl_responses, out.p, out.len, &again))
        fail_msg("its own stream refused: %s\n%s", c.x.err, out.p);
    same_events(&first, &again);
    /* response.completed holds the whole answer */
    const char *done = strstr(out.p, "event: response.completed");
    assert_non_null(done);
    assert_non_null(strstr(done, "\"status\":\"completed\""));
    assert_non_null(strstr(done, "{\"id\":\"rs_68a_0\",\"type\":\"reasoning\",\"summary\":[{"
                                 "\"type\":\"summary_text\",\"text\":\"**Plan**\\n\\nTwo "
                                 "cities.\"}],\"encrypted_content\":\"gAAAAABoXyz\"}"));
    assert_non_null(strstr(done, "\"text\":\"Checking \\\"both\\\".\",\"annotations\":[]}]}"));
    assert_non_null(strstr(done, "{\"id\":\"fc_68a_2\",\"type\":\"function_call\",\"status\":"
                                 "\"completed\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\","
                                 "\"call_id\":\"call_P\",\"name\":\"get_weather\"}"));
    assert_non_null(strstr(done, "\"usage\":{\"input_tokens\":120,\"input_tokens_details\":"
                                 "{\"cached_tokens\":100},\"output_tokens\":60,"));
    assert_non_null(strstr(out.p, "event: response.output_text.done\ndata: {\"type\":"
                                  "\"response.output_text.done\",\"sequence_number\":14,"
                                  "\"item_id\":\"msg_68a_1\",\"output_index\":1,"
                                  "\"content_index\":0,\"text\":\"Checking \\\"both\\\".\",\"logprobs\":[]}"));
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

/* A chat completions provider's stream, for a Responses client. */
static void test_from_chat_completions(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c);
    c.x.to = ROTA_XL_OPENAI;
    if (read_stream(&c.x, &rota_xl_openai, chat, strlen(chat), &first))
        fail_msg("refused: %s", c.x.err);
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    write_stream(&c.x, &first, &out);
    framing(out.p, out.len, "response.completed");
    if (read_stream(&c.x, &rota_xl_responses, out.p, out.len, &again))
        fail_msg("refused: %s\n%s", c.x.err, out.p);
    same_events(&first, &again);
    assert_non_null(strstr(out.p, "\"id\":\"resp_gen-1\""));
    assert_non_null(strstr(out.p, "\"encrypted_content\":\"EqQB\""));
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

static void test_out_any_order(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c);
    struct rota_xl_sout st = {.open = -1};
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    struct rota_xl_ev evs[] = {
        {.type = ROTA_XL_EV_TOOL, .index = 0, .id = {"\"toolu_1\"", 9}, .name = {"\"f\"", 3}},
        {.type = ROTA_XL_EV_TOOL, .index = 0, .id = {"\"toolu_1\"", 9}, .name = {"\"f\"", 3}},
        {.type = ROTA_XL_EV_ARGS, .index = 0, .text = {"\"{}\"", 4}},
        {.type = ROTA_XL_EV_SIGNATURE, .sig = {"\"sg\"", 4}},
        {.type = ROTA_XL_EV_THINKING, .text = {"\"after\"", 7}},
        {.type = ROTA_XL_EV_TOOL, .index = 1, .name = {"\"g\"", 3}, .args = {"{\"b\":[2]}", 9}},
        {.type = ROTA_XL_EV_FINISH, .finish = ROTA_XL_FINISH_LENGTH},
        {.type = ROTA_XL_EV_END},
        {.type = ROTA_XL_EV_TEXT, .text = {"\"late\"", 6}},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        assert_int_equal(rota_xl_responses.ev_out(&c.x, &st, &evs[i], &out), 0);
    framing(out.p, out.len, "response.incomplete");
    assert_null(strstr(out.p, "late"));
    const char *end = strstr(out.p, "event: response.incomplete");
    assert_non_null(strstr(end, "\"incomplete_details\":{\"reason\":\"max_output_tokens\"}"));
    /* four items: the call, the signature alone, the reasoning after it, the whole call */
    assert_non_null(strstr(end, "\"summary\":[{\"type\":\"summary_text\",\"text\":\"\"}],"
                                "\"encrypted_content\":\"sg\"}"));
    assert_non_null(strstr(end, "{\"id\":\"rs_"));
    assert_non_null(strstr(end, "\"arguments\":\"{\\\"b\\\":[2]}\",\"call_id\":\"call_"));
    assert_int_equal(st.blocks, 4);
    /* arguments of a call that is closed are an error, not a broken stream */
    struct rota_xl_sout st2 = {.open = -1};
    rota_jbuf_reset(&out);
    assert_int_equal(rota_xl_responses.ev_out(&c.x, &st2, &evs[0], &out), 0);
    assert_int_equal(rota_xl_responses.ev_out(&c.x, &st2, &evs[4], &out), 0);
    assert_int_equal(rota_xl_responses.ev_out(&c.x, &st2, &evs[2], &out), -EINVAL);
    assert_string_equal(c.x.err, "arguments of tool call 0, which is not open");
    rota_jbuf_free(&st.held);
    rota_jbuf_free(&st.held2);
    rota_jbuf_free(&st2.held);
    rota_jbuf_free(&st2.held2);
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

static void test_fail(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c);
    struct rota_xl_sout st = {.open = -1};
    struct rota_jbuf out;
    rota_jbuf_init(&out, 0);
    struct rota_xl_ev t = {.type = ROTA_XL_EV_TEXT, .text = {"\"Par\"", 5}};
    assert_int_equal(rota_xl_responses.ev_out(&c.x, &st, &t, &out), 0);
    rota_xl_responses.ev_fail(&c.x, &st, "cut \"short\"", &out);
    framing(out.p, out.len, "error");
    assert_non_null(strstr(out.p, "\"item\":{\"id\":\"msg_"));
    assert_non_null(strstr(out.p, "\"type\":\"message\",\"status\":\"incomplete\""));
    const char *err = strstr(out.p, "event: error\n");
    assert_non_null(err);
    assert_non_null(strstr(err, ",\"code\":\"server_error\",\"message\":\"cut \\\"short\\\"\","
                                "\"param\":null,\"error\":{\"type\":\"server_error\",\"code\":"
                                "\"server_error\",\"message\":\"cut \\\"short\\\"\"}}\n\n"));
    size_t n = out.len;
    assert_int_equal(rota_xl_responses.ev_out(&c.x, &st, &t, &out), 0);
    rota_xl_responses.ev_fail(&c.x, &st, "again", &out);
    assert_int_equal(out.len, n); /* nothing after the end */
    /* read back: the provider's failure */
    struct rota_xl_evs evs = {.n = 0};
    struct rota_xl_sin in = {0};
    const char *d = strstr(err, "data: ") + 6;
    assert_int_equal(rota_xl_responses.ev_in(&c.x, &in, "error", 5, d,
                                             (size_t)(strstr(d, "\n") - d), &evs), 0);
    assert_int_equal(evs.ev[evs.n - 1].type, ROTA_XL_EV_ERROR);
    assert_true(same(evs.ev[evs.n - 1].text, (struct rota_xl_val){"\"cut \\\"short\\\"\"", 15}));
    rota_jbuf_free(&st.held);
    rota_jbuf_free(&st.held2);
    rota_jbuf_free(&out);
    rota_arena_free(&c.a);
}

static void one_event(struct ctx *c, struct rota_xl_sin *in, const char *data, int err,
                      const char *want, struct rota_xl_evs *evs)
{
    evs->n = 0;
    int rc = rota_xl_responses.ev_in(&c->x, in, NULL, 0, data, strlen(data), evs);
    if (rc != err || (want && !strstr(c->x.err, want)))
        fail_msg("%s: %d \"%s\"", data, rc, c->x.err);
}

static void test_in_other_events(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c);
    static struct rota_xl_evs evs;
    struct rota_xl_sin in = {0};
    one_event(&c, &in, "{\"type\":\"response.failed\",\"response\":{\"status\":\"failed\","
                       "\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}",
              0, NULL, &evs);
    assert_int_equal(evs.ev[0].type, ROTA_XL_EV_ERROR);
    assert_true(same(evs.ev[0].text, (struct rota_xl_val){"\"boom\"", 6}));
    memset(&in, 0, sizeof(in));
    one_event(&c, &in, "{\"type\":\"response.incomplete\",\"response\":{\"status\":"
                       "\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},"
                       "\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}}",
              0, NULL, &evs);
    assert_int_equal(evs.n, 4); /* start, usage, finish, end */
    assert_int_equal(evs.ev[2].finish, ROTA_XL_FINISH_LENGTH);
    assert_true(in.ended);
    memset(&in, 0, sizeof(in));
    one_event(&c, &in, "{\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":"
                       "{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\","
                       "\"arguments\":\"{\\\"x\\\":1}\"}}",
              0, NULL, &evs); /* a call whose arguments came only whole */
    assert_int_equal(evs.n, 3);
    assert_int_equal(evs.ev[1].type, ROTA_XL_EV_TOOL);
    assert_int_equal(evs.ev[2].type, ROTA_XL_EV_ARGS);
    one_event(&c, &in, "{\"type\":\"response.output_text.delta\"", -EINVAL,
              "a stream event is not JSON", &evs);
    one_event(&c, &in, "{\"type\":\"response.function_call_arguments.delta\","
                       "\"output_index\":5,\"delta\":\"{}\"}",
              -EINVAL, "function call arguments before the call began", &evs);
    one_event(&c, &in, "{\"type\":\"response.output_item.added\",\"output_index\":500,"
                       "\"item\":{}}",
              -EINVAL, "an output item without an output_index below 128", &evs);
    one_event(&c, &in, "{\"type\":\"response.output_item.added\",\"output_index\":6,"
                       "\"item\":{\"type\":\"function_call\"}}",
              -EINVAL, "a function call item without call_id or name", &evs);
    rota_arena_free(&c.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_stream),
        cmocka_unit_test(test_from_chat_completions),
        cmocka_unit_test(test_out_any_order),
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_in_other_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
