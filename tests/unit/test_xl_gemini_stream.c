/* test_xl_gemini_stream: Gemini's SSE stream and Code Assist's (workers/xl_gemini_stream.c)
 * through the representation's events and back: recorded streams read, written and read
 * again to the same events; calls whose arguments come in pieces written whole; the
 * upstream's error, the client's error end, malformed events. */
#include <errno.h>

#include "formats.h"
#include "xl_gemini_util.h"

/* ---- streams ---- */

/* Gemini's SSE as it comes (CRLF framed, no closing event): a thought summary, text,
 * two parallel calls (the first signed), usage on every event, the finish and the whole
 * usage on the last. */
static const char stream1[] =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"**Planning**\\n\\nI need "
    "two cities.\",\"thought\": true}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": "
    "{\"promptTokenCount\": 61,\"totalTokenCount\": 61,\"promptTokensDetails\": [{\"modality\": "
    "\"TEXT\",\"tokenCount\": 61}]},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": "
    "\"mYc1aPqZ\"}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Checking \\u00e9 both.\"}],"
    "\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 61,"
    "\"totalTokenCount\": 61},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": "
    "\"mYc1aPqZ\"}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": "
    "\"get_weather\",\"args\": {\"city\": \"Paris\"}},\"thoughtSignature\": \"CiQB0e2Kb3xyz\"},"
    "{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Lyon\"}}}],\"role\": "
    "\"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": "
    "{\"promptTokenCount\": 61,\"candidatesTokenCount\": 30,\"totalTokenCount\": 150,"
    "\"thoughtsTokenCount\": 59,\"cachedContentTokenCount\": 32},\"modelVersion\": "
    "\"gemini-2.5-flash\",\"responseId\": \"mYc1aPqZ\"}\r\n\r\n";

/* Text then the signature alone on an empty part, as thinking models end a turn. */
static const char stream2[] =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],\"role\": "
    "\"model\"},\"index\": 0}],\"modelVersion\": \"gemini-2.5-pro\"}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\",\"thoughtSignature\": "
    "\"c2lnLTI=\"}],\"role\": \"model\"},\"finishReason\": \"MAX_TOKENS\",\"index\": 0}],"
    "\"usageMetadata\": {\"promptTokenCount\": 5,\"candidatesTokenCount\": 1,"
    "\"totalTokenCount\": 6}}\r\n\r\n";

struct run {
    struct rota_jbuf log;
    struct rota_xl_usage usage;
};

static void log_val(struct run *run, const char *tag, struct rota_xl_val v)
{
    if (!v.len)
        return;
    rota_jbuf_raw(&run->log, " ", 1);
    rota_jbuf_rawz(&run->log, tag);
    rota_jbuf_raw(&run->log, v.p, v.len);
}

/* An event as a line of text, usage aside (Gemini says it on every event). */
static void log_ev(struct run *run, const struct rota_xl_ev *e)
{
    static const char *const names[] = {"START", "TEXT", "THINKING", "SIG", "TOOL", "ARGS",
                                        "FINISH", "USAGE", "END", "ERROR"};
    if (e->usage.seen)
        run->usage = e->usage;
    if (e->type == ROTA_XL_EV_USAGE)
        return;
    char head[40];
    snprintf(head, sizeof(head), "%s", names[e->type]);
    rota_jbuf_rawz(&run->log, head);
    if (e->type == ROTA_XL_EV_TOOL || e->type == ROTA_XL_EV_ARGS) {
        snprintf(head, sizeof(head), " #%u", e->index);
        rota_jbuf_rawz(&run->log, head);
    }
    if (e->type == ROTA_XL_EV_FINISH) {
        snprintf(head, sizeof(head), " %d", (int)e->finish);
        rota_jbuf_rawz(&run->log, head);
    }
    log_val(run, "model=", e->model);
    log_val(run, "id=", e->id);
    log_val(run, "name=", e->name);
    log_val(run, "args=", e->args);
    log_val(run, "text=", e->text);
    log_val(run, "sig=", e->sig);
    rota_jbuf_raw(&run->log, "\n", 1);
}

/* Read SSE "s" with "in"'s ev_in, logging each event, and write each with "outf"'s ev_out
 * (when given) into "out". */
static int feed(struct ctx *c, const struct rota_xl_format *in, const char *s, size_t n,
                const struct rota_xl_format *outf, struct rota_xl_sout *so,
                struct rota_jbuf *out, struct run *run)
{
    struct rota_xl_sin si = {0};
    static struct rota_xl_evs evs;
    rota_jbuf_init(&run->log, 0);
    memset(&run->usage, 0, sizeof(run->usage));
    for (size_t at = 0, len; (len = rota_fmt_sse_event(s + at, n - at)) > 0; at += len) {
        const char *d;
        size_t dl;
        if (!rota_fmt_sse_data(s + at, len, &d, &dl))
            continue;
        evs.n = 0;
        int rc = in->ev_in(&c->x, &si, NULL, 0, d, dl, &evs);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < evs.n; i++) {
            log_ev(run, &evs.ev[i]);
            if (outf && (rc = outf->ev_out(&c->x, so, &evs.ev[i], out)))
                return rc;
        }
    }
    return 0;
}

static void new_sout(struct rota_xl_sout *so)
{
    memset(so, 0, sizeof(*so));
    so->open = -1;
    rota_jbuf_init(&so->held, 1u << 20);
}

/* Through ev_in, ev_out and ev_in again: the same events, the same final usage. */
static void round_trip(const struct rota_xl_format *f, const char *s, const char *want_log)
{
    struct ctx c;
    setup(&c, f == &rota_xl_gemini ? ROTA_XL_GEMINI : ROTA_XL_CODE_ASSIST,
          f == &rota_xl_gemini ? ROTA_XL_GEMINI : ROTA_XL_CODE_ASSIST);
    struct rota_xl_sout so;
    new_sout(&so);
    struct run a, b;
    assert_int_equal(feed(&c, f, s, strlen(s), f, &so, &c.out, &a), 0);
    if (strncmp(a.log.p, want_log, a.log.len) != 0 || a.log.len != strlen(want_log))
        fail_msg("events:\n%.*s", (int)a.log.len, a.log.p);
    assert_int_equal(feed(&c, f, c.out.p, c.out.len, NULL, NULL, NULL, &b), 0);
    if (a.log.len != b.log.len || memcmp(a.log.p, b.log.p, a.log.len) != 0)
        fail_msg("read back:\n%.*s\nwritten:\n%.*s", (int)b.log.len, b.log.p, (int)c.out.len,
                 c.out.p);
    assert_memory_equal(&a.usage, &b.usage, sizeof(a.usage));
    /* nothing after the end */
    size_t len = c.out.len;
    struct rota_xl_ev text = {.type = ROTA_XL_EV_TEXT, .text = V("\"late\"")};
    assert_int_equal(f->ev_out(&c.x, &so, &text, &c.out), 0);
    f->ev_fail(&c.x, &so, "late", &c.out);
    assert_int_equal(c.out.len, len);
    rota_jbuf_free(&a.log);
    rota_jbuf_free(&b.log);
    rota_jbuf_free(&so.held);
    teardown(&c);
}

static void test_xl_gemini_stream_round_trip(void **state)
{
    (void)state;
    round_trip(&rota_xl_gemini, stream1,
               "START model=\"gemini-2.5-flash\" id=\"mYc1aPqZ\"\n"
               "THINKING text=\"**Planning**\\n\\nI need two cities.\"\n"
               "TEXT text=\"Checking \\u00e9 both.\"\n"
               "TOOL #0 id=\"call_475d1782327d1f444e30adb1__ts_Q2lRQjBlMktiM3h5eg\" "
               "name=\"get_weather\" args={\"city\": \"Paris\"} sig=\"CiQB0e2Kb3xyz\"\n"
               "TOOL #1 id=\"call_26a9f472a2524a68d48aad4d\" name=\"get_weather\" "
               "args={\"city\": \"Lyon\"}\n"
               "FINISH 3\nEND\n");
    round_trip(&rota_xl_gemini, stream2,
               "START model=\"gemini-2.5-pro\"\nTEXT text=\"Hello\"\nSIG sig=\"c2lnLTI=\"\n"
               "FINISH 2\nEND\n");
}

/* Code Assist: each event of stream1 inside {"response": ...}, with its traceId. */
static void test_xl_gemini_stream_code_assist(void **state)
{
    (void)state;
    struct rota_jbuf w;
    rota_jbuf_init(&w, 0);
    for (size_t at = 0, len, n = strlen(stream1);
         (len = rota_fmt_sse_event(stream1 + at, n - at)) > 0; at += len) {
        const char *d;
        size_t dl;
        assert_true(rota_fmt_sse_data(stream1 + at, len, &d, &dl));
        rota_jbuf_rawz(&w, "data: {\"response\": ");
        rota_jbuf_raw(&w, d, dl);
        rota_jbuf_rawz(&w, ", \"traceId\": \"4a1f\"}\r\n\r\n");
    }
    rota_jbuf_rawz(&w, "data: {\"traceId\": \"4a1f\"}\r\n\r\n"); /* after the end: nothing */
    round_trip(&rota_xl_code_assist, w.p,
               "START model=\"gemini-2.5-flash\" id=\"mYc1aPqZ\"\n"
               "THINKING text=\"**Planning**\\n\\nI need two cities.\"\n"
               "TEXT text=\"Checking \\u00e9 both.\"\n"
               "TOOL #0 id=\"call_475d1782327d1f444e30adb1__ts_Q2lRQjBlMktiM3h5eg\" "
               "name=\"get_weather\" args={\"city\": \"Paris\"} "
               "sig=\"CiQB0e2Kb3xyz\"\n"
               "TOOL #1 id=\"call_26a9f472a2524a68d48aad4d\" name=\"get_weather\" "
               "args={\"city\": \"Lyon\"}\n"
               "FINISH 3\nEND\n");
    struct ctx c;
    setup(&c, ROTA_XL_CODE_ASSIST, ROTA_XL_CODE_ASSIST);
    struct rota_xl_sout so;
    new_sout(&so);
    struct rota_xl_ev ev[] = {{.type = ROTA_XL_EV_TEXT, .text = V("\"hi\"")},
                              {.type = ROTA_XL_EV_END}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(rota_xl_code_assist.ev_out(&c.x, &so, &ev[i], &c.out), 0);
    assert_out(&c, "data: {\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\","
                   "\"parts\":[{\"text\":\"hi\"}]}}],\"modelVersion\":\"gemini-2.5-pro\"}}"
                   "\r\n\r\ndata: {\"response\":{\"candidates\":[{\"finishReason\":\"STOP\","
                   "\"index\":0}],\"modelVersion\":\"gemini-2.5-pro\"}}\r\n\r\n");
    rota_jbuf_free(&so.held);
    rota_jbuf_free(&w);
    teardown(&c);
}

/* A call whose arguments come in pieces (OpenAI's, Anthropic's) goes out whole. */
static void test_xl_gemini_stream_held_args(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_GEMINI, ROTA_XL_OPENAI);
    struct rota_xl_sout so;
    new_sout(&so);
    const struct rota_xl_ev ev[] = {
        {.type = ROTA_XL_EV_START, .id = V("\"chatcmpl-1\""), .model = V("\"gpt-4.1\"")},
        {.type = ROTA_XL_EV_TEXT, .text = V("\"Sure.\"")},
        {.type = ROTA_XL_EV_TOOL, .index = 0, .id = V("\"call_x\""),
         .name = V("\"get_weather\"")},
        {.type = ROTA_XL_EV_ARGS, .index = 0, .text = V("\"{\\\"city\\\"\"")},
        {.type = ROTA_XL_EV_ARGS, .index = 0, .text = V("\":\\\"Par\\u00eds\\\",\\\"days\\\":2}\"")},
        {.type = ROTA_XL_EV_TOOL, .index = 1,
         .id = V("\"call_0123456789abcdef01234567__ts_c2lnLWdlbWluaS0x\""), .name = V("\"now\"")},
        {.type = ROTA_XL_EV_FINISH, .finish = ROTA_XL_FINISH_TOOLS},
        {.type = ROTA_XL_EV_USAGE, .usage = {.in = 9, .out = 6, .reasoning = 2, .seen = true}},
        {.type = ROTA_XL_EV_END},
    };
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
        assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &ev[i], &c.out), 0);
    assert_out(&c,
               "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":"
               "\"Sure.\"}]}}],\"modelVersion\":\"gpt-4.1\",\"responseId\":\"chatcmpl-1\"}\r\n\r\n"
               "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
               "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Par\xc3\xads\","
               "\"days\":2}}}]}}],\"modelVersion\":\"gpt-4.1\",\"responseId\":\"chatcmpl-1\"}"
               "\r\n\r\n"
               "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
               "{\"functionCall\":{\"name\":\"now\",\"args\":{}},\"thoughtSignature\":"
               "\"sig-gemini-1\"}]}}],\"modelVersion\":\"gpt-4.1\",\"responseId\":\"chatcmpl-1\"}"
               "\r\n\r\n"
               "data: {\"candidates\":[{\"finishReason\":\"STOP\",\"index\":0}],"
               "\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":4,"
               "\"thoughtsTokenCount\":2,\"totalTokenCount\":15},\"modelVersion\":\"gpt-4.1\","
               "\"responseId\":\"chatcmpl-1\"}\r\n\r\n");
    /* read back by Gemini's own reader: the calls whole, the usage as it was */
    struct run run;
    assert_int_equal(feed(&c, &rota_xl_gemini, c.out.p, c.out.len, NULL, NULL, NULL, &run), 0);
    assert_non_null(memmem(run.log.p, run.log.len, "TOOL #1", 7));
    assert_non_null(memmem(run.log.p, run.log.len, "FINISH 3\nEND\n", 13));
    assert_int_equal(run.usage.out, 6);
    assert_int_equal(run.usage.reasoning, 2);
    rota_jbuf_free(&run.log);
    rota_jbuf_free(&so.held);

    /* arguments past the bound, not an object, or for a call not open */
    struct rota_xl_ev tool = {.type = ROTA_XL_EV_TOOL, .name = V("\"f\"")},
                      args = {.type = ROTA_XL_EV_ARGS, .text = V("\"[1,2,3,4,5,6,7,8,9]\"")},
                      end = {.type = ROTA_XL_EV_END};
    memset(&so, 0, sizeof(so));
    rota_jbuf_init(&so.held, 8);
    assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &tool, &c.out), 0);
    assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &args, &c.out), -EFBIG);
    assert_string_equal(c.x.err, "tool call 0's arguments are larger than 8 bytes");
    rota_jbuf_free(&so.held);
    new_sout(&so);
    assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &tool, &c.out), 0);
    assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &args, &c.out), 0);
    assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &end, &c.out), -EINVAL);
    assert_string_equal(c.x.err, "tool call 0's arguments are not a JSON object");
    args.index = 3;
    assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &args, &c.out), -EINVAL);
    assert_string_equal(c.x.err, "arguments for tool call 3, which is not open");
    rota_jbuf_free(&so.held);
    teardown(&c);
}

static void test_xl_gemini_stream_failures(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_OPENAI, ROTA_XL_GEMINI);
    struct rota_xl_sin si = {0};
    static struct rota_xl_evs evs;
    const char *err = "{\"error\": {\"code\": 429, \"message\": \"Resource exhausted\", "
                      "\"status\": \"RESOURCE_EXHAUSTED\"}}";
    assert_int_equal(rota_xl_gemini.ev_in(&c.x, &si, NULL, 0, err, strlen(err), &evs), 0);
    assert_int_equal(evs.n, 1);
    assert_int_equal(evs.ev[0].type, ROTA_XL_EV_ERROR);
    assert_val(evs.ev[0].text, "\"Resource exhausted\"");
    evs.n = 0;
    assert_int_equal(rota_xl_code_assist.ev_in(&c.x, &si, NULL, 0, err, strlen(err), &evs), 0);
    assert_int_equal(evs.ev[0].type, ROTA_XL_EV_ERROR);
    static const struct bad_case bad[] = {
        {"nope", -EINVAL, "a stream event is not JSON"},
        {"[]", -EINVAL, "a stream event is not a JSON object"},
        {"{\"candidates\":[1]}", -EINVAL, "a stream event's candidates[0] is not an object"},
        {"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},{\"executableCode\":{}}]}}]}",
         -ENOTSUP, "a stream event's parts[1].executableCode cannot be translated"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&si, 0, sizeof(si));
        evs.n = 0;
        int rc = rota_xl_gemini.ev_in(&c.x, &si, NULL, 0, bad[i].body, strlen(bad[i].body), &evs);
        if (rc != bad[i].rc || strncmp(c.x.err, bad[i].err, strlen(bad[i].err)) != 0)
            fail_msg("case %zu: %d \"%s\"", i, rc, c.x.err);
    }
    /* more parts in one event than events fit: refused, not cut */
    struct rota_jbuf big;
    rota_jbuf_init(&big, 0);
    rota_jbuf_rawz(&big, "{\"candidates\":[{\"content\":{\"parts\":[");
    for (int i = 0; i < 40; i++)
        rota_jbuf_rawz(&big, i ? ",{\"text\":\"a\",\"thoughtSignature\":\"s\"}"
                               : "{\"text\":\"a\",\"thoughtSignature\":\"s\"}");
    rota_jbuf_rawz(&big, "]}}]}");
    memset(&si, 0, sizeof(si));
    evs.n = 0;
    assert_int_equal(rota_xl_gemini.ev_in(&c.x, &si, NULL, 0, big.p, big.len, &evs), -EFBIG);
    rota_jbuf_free(&big);
    /* the client's error end: once, and a call cut short is not written */
    struct rota_xl_sout so;
    new_sout(&so);
    struct rota_xl_ev tool = {.type = ROTA_XL_EV_TOOL, .name = V("\"f\"")},
                      args = {.type = ROTA_XL_EV_ARGS, .text = V("\"{\\\"a\\\":\"")};
    assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &tool, &c.out), 0);
    assert_int_equal(rota_xl_gemini.ev_out(&c.x, &so, &args, &c.out), 0);
    rota_xl_gemini.ev_fail(&c.x, &so, "upstream broke \"x\"", &c.out);
    rota_xl_gemini.ev_fail(&c.x, &so, "again", &c.out);
    assert_out(&c, "data: {\"error\":{\"code\":500,\"message\":\"upstream broke \\\"x\\\"\","
                   "\"status\":\"INTERNAL\"}}\r\n\r\n");
    rota_jbuf_free(&so.held);
    teardown(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xl_gemini_stream_round_trip),
        cmocka_unit_test(test_xl_gemini_stream_code_assist),
        cmocka_unit_test(test_xl_gemini_stream_held_args),
        cmocka_unit_test(test_xl_gemini_stream_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
