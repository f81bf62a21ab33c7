/* test_xl_anthropic_stream: Anthropic's SSE stream (workers/xl_anthropic_stream.c) through
 * the representation's events and back: recorded streams read, written and read again to
 * the same events; each block started and stopped once; Gemini's whole calls, lone
 * signatures and missing starts written as Anthropic's clients want them; the upstream's
 * error, the client's error end, malformed events. */
#include <errno.h>

#include "formats.h"
#include "xl_anthropic_util.h"

/* As the API sends it: thinking with its signature, text, two parallel tool calls whose
 * arguments come in pieces (the first piece empty), pings, usage at the start and the
 * output's at the end. */
static const char stream1[] =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
    "\"msg_01ABC\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
    "\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":100,"
    "\"cache_read_input_tokens\":2000,\"output_tokens\":2}}}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
    "{\"type\":\"thinking_delta\",\"thinking\":\"Two \\\"cities\\\".\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
    "{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3h\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
    "{\"type\":\"text_delta\",\"text\":\"Checking \\u00e9\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
    "{\"type\":\"text_delta\",\"text\":\" both.\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\","
    "\"input\":{}}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
    "{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
    "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
    "{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":3,"
    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01B\",\"name\":\"get_weather\","
    "\"input\":{}}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":"
    "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Lyon\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char want_log1[] =
    "START model=\"claude-sonnet-4-5-20250929\" id=\"msg_01ABC\"\n"
    "THINKING text=\"Two \\\"cities\\\".\"\n"
    "SIG sig=\"EqQBCgIYAhIM1gbcDa9GJwZA2b3h\"\n"
    "TEXT text=\"Checking \\u00e9\"\n"
    "TEXT text=\" both.\"\n"
    "TOOL #0 id=\"toolu_01A\" name=\"get_weather\"\n"
    "ARGS #0 text=\"{\\\"city\\\": \\\"Pa\"\n"
    "ARGS #0 text=\"ris\\\"}\"\n"
    "TOOL #1 id=\"toolu_01B\" name=\"get_weather\"\n"
    "ARGS #1 text=\"{\\\"city\\\": \\\"Lyon\\\"}\"\n"
    "FINISH 3\n"
    "END\n";

/* A stop sequence, redacted thinking (read and left out), a stream with usage only at
 * the end. */
static const char stream2[] =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\","
    "\"model\":\"claude-x\",\"usage\":{\"output_tokens\":1}}}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgB\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"stop_sequence\",\"stop_sequence\":\"END\"},\"usage\":{\"input_tokens\":30,"
    "\"output_tokens\":7}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char want_log2[] = "START model=\"claude-x\" id=\"msg_2\"\n"
                           "TEXT text=\"Hi\"\n"
                           "FINISH 1 seq=\"END\"\n"
                           "END\n";

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
    log_val(run, "seq=", e->stop_seq);
    rota_jbuf_raw(&run->log, "\n", 1);
}

/* Read SSE "s" with "in"'s ev_in (each event's name given), logging each event, and write
 * each with "outf"'s ev_out (when given) into "out". */
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

/* Each content_block_start's index is the next; each block stopped once, before the next
 * starts; message_start first, message_stop last. */
static void check_blocks(const char *s, size_t n)
{
    long open = -1, next = 0;
    const char *p = s, *e = s + n;
    assert_true(n > 0 && strncmp(s, "event: message_start\n", 21) == 0);
    while ((p = memmem(p, (size_t)(e - p), "event: content_block_", 21)) != NULL) {
        p += 21;
        const char *ix = strstr(p, "\"index\":");
        assert_non_null(ix);
        long i = strtol(ix + 8, NULL, 10);
        if (strncmp(p, "start", 5) == 0) {
            assert_int_equal(open, -1);
            assert_int_equal(i, next);
            open = i, next++;
        } else if (strncmp(p, "delta", 5) == 0) {
            assert_int_equal(i, open);
        } else {
            assert_int_equal(i, open);
            open = -1;
        }
    }
    assert_int_equal(open, -1);
}

static void round_trip(const char *s, const char *want_log, const char *want_end)
{
    struct ctx c;
    setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_ANTHROPIC);
    struct rota_xl_sout so;
    new_sout(&so);
    struct run a, b;
    assert_int_equal(feed(&c, &rota_xl_anthropic, s, strlen(s), &rota_xl_anthropic, &so,
                          &c.out, &a),
                     0);
    if (a.log.len != strlen(want_log) || strncmp(a.log.p, want_log, a.log.len) != 0)
        fail_msg("events:\n%.*s", (int)a.log.len, a.log.p);
    check_blocks(c.out.p, c.out.len);
    if (c.out.len < strlen(want_end) ||
        strcmp(c.out.p + c.out.len - strlen(want_end), want_end) != 0)
        fail_msg("the end:\n%.*s", (int)c.out.len, c.out.p);
    assert_int_equal(feed(&c, &rota_xl_anthropic, c.out.p, c.out.len, NULL, NULL, NULL, &b), 0);
    if (a.log.len != b.log.len || memcmp(a.log.p, b.log.p, a.log.len) != 0)
        fail_msg("read back:\n%.*s\nwritten:\n%.*s", (int)b.log.len, b.log.p, (int)c.out.len,
                 c.out.p);
    assert_memory_equal(&a.usage, &b.usage, sizeof(a.usage));
    /* nothing after the end */
    size_t len = c.out.len;
    struct rota_xl_ev text = {.type = ROTA_XL_EV_TEXT, .text = V("\"late\"")};
    assert_int_equal(rota_xl_anthropic.ev_out(&c.x, &so, &text, &c.out), 0);
    rota_xl_anthropic.ev_fail(&c.x, &so, "late", &c.out);
    assert_int_equal(c.out.len, len);
    rota_jbuf_free(&a.log);
    rota_jbuf_free(&b.log);
    rota_jbuf_free(&so.held);
    teardown(&c);
}

static void test_xl_anthropic_stream_round_trip(void **state)
{
    (void)state;
    round_trip(stream1, want_log1,
               "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
               "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n"
               "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    /* input_tokens came only at the end: said at the end */
    round_trip(stream2, want_log2,
               "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
               "\"stop_sequence\",\"stop_sequence\":\"END\"},\"usage\":{\"input_tokens\":30,"
               "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
               "\"output_tokens\":7}}\n\n"
               "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

/* Usage read in Anthropic's convention. */
static void test_xl_anthropic_stream_usage(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_ANTHROPIC);
    struct run a;
    assert_int_equal(feed(&c, &rota_xl_anthropic, stream1, strlen(stream1), NULL, NULL, NULL,
                          &a),
                     0);
    assert_int_equal(a.usage.in, 2572);
    assert_int_equal(a.usage.cached, 2000);
    assert_int_equal(a.usage.out, 89);
    rota_jbuf_free(&a.log);
    /* written again: message_start says input without the cache's */
    struct rota_xl_sout so;
    new_sout(&so);
    assert_int_equal(feed(&c, &rota_xl_anthropic, stream1, strlen(stream1), &rota_xl_anthropic,
                          &so, &c.out, &a),
                     0);
    assert_non_null(strstr(c.out.p, "\"usage\":{\"input_tokens\":572,\"cache_creation_input_tokens"
                                    "\":0,\"cache_read_input_tokens\":2000,\"output_tokens\":0}"));
    rota_jbuf_free(&a.log);
    rota_jbuf_free(&so.held);
    teardown(&c);
}

/* What Gemini gives, written for an Anthropic client: no START before the text, a lone
 * signature, a whole call, another whole call (parallel), usage and the finish at the
 * end. */
static void test_xl_anthropic_stream_from_gemini(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_GEMINI);
    struct rota_xl_req req;
    static const char body[] = "{\"model\":\"claude-x\",\"messages\":[]}";
    assert_int_equal(read_req(&c, body, strlen(body), &req), 0);
    struct rota_xl_sout so;
    new_sout(&so);
    struct rota_xl_ev ev[] = {
        {.type = ROTA_XL_EV_THINKING, .text = V("\"hmm\"")},
        {.type = ROTA_XL_EV_TEXT, .text = V("\"Hi\"")},
        {.type = ROTA_XL_EV_SIGNATURE, .sig = V("\"c2ln\"")},
        {.type = ROTA_XL_EV_TOOL, .index = 0, .id = V("\"call_1\""), .name = V("\"f\""),
         .args = V("{\"a\": \"\\u00e9\"}")},
        {.type = ROTA_XL_EV_TOOL, .index = 1, .id = V("\"call_2\""), .name = V("\"g\""),
         .args = V("{}")},
        {.type = ROTA_XL_EV_FINISH, .finish = ROTA_XL_FINISH_STOP},
        {.type = ROTA_XL_EV_USAGE, .usage = {.in = 100, .cached = 40, .out = 15, .seen = true}},
        {.type = ROTA_XL_EV_END},
    };
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
        assert_int_equal(rota_xl_anthropic.ev_out(&c.x, &so, &ev[i], &c.out), 0);
    check_blocks(c.out.p, c.out.len);
    const char *o = c.out.p;
    assert_non_null(strstr(o, "\"id\":\"msg_"));
    assert_non_null(strstr(o, "\"model\":\"claude-x\""));
    assert_non_null(strstr(o, "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                              "\"index\":2,\"content_block\":{\"type\":\"thinking\",\"thinking\":"
                              "\"\",\"signature\":\"\"}}\n\nevent: content_block_delta\ndata: {\""
                              "type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\""
                              "signature_delta\",\"signature\":\"c2ln\"}}\n\n"));
    assert_non_null(strstr(o, "{\"type\":\"content_block_start\",\"index\":3,\"content_block\":{"
                              "\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"f\",\"input\":"
                              "{}}}\n\nevent: content_block_delta\ndata: {\"type\":\""
                              "content_block_delta\",\"index\":3,\"delta\":{\"type\":\""
                              "input_json_delta\",\"partial_json\":\"{\\\"a\\\": \\\"\\\\u00e9"
                              "\\\"}\"}}\n\nevent: content_block_stop\ndata: {\"type\":\""
                              "content_block_stop\",\"index\":3}\n\n"));
    assert_non_null(strstr(o, "\"index\":4,\"content_block\":{\"type\":\"tool_use\",\"id\":"
                              "\"call_2\""));
    assert_non_null(strstr(o, "\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
                              "\"usage\":{\"input_tokens\":60,\"cache_creation_input_tokens\":0,"
                              "\"cache_read_input_tokens\":40,\"output_tokens\":15}}"));
    /* read back: the same content */
    struct run a;
    assert_int_equal(feed(&c, &rota_xl_anthropic, c.out.p, c.out.len, NULL, NULL, NULL, &a), 0);
    const char *want = "THINKING text=\"hmm\"\nTEXT text=\"Hi\"\nSIG sig=\"c2ln\"\n"
                       "TOOL #0 id=\"call_1\" name=\"f\"\n"
                       "ARGS #0 text=\"{\\\"a\\\": \\\"\\\\u00e9\\\"}\"\n"
                       "TOOL #1 id=\"call_2\" name=\"g\"\nARGS #1 text=\"{}\"\nFINISH 3\nEND\n";
    const char *nl = memchr(a.log.p, '\n', a.log.len); /* after START */
    assert_non_null(nl);
    if (strlen(want) != a.log.len - (size_t)(nl + 1 - a.log.p) || strncmp(nl + 1, want, strlen(want)))
        fail_msg("events:\n%.*s", (int)a.log.len, a.log.p);
    assert_int_equal(a.usage.in, 100);
    rota_jbuf_free(&a.log);
    rota_jbuf_free(&so.held);
    teardown(&c);
}

/* The upstream's error event; the client's error end closes the open block first. */
static void test_xl_anthropic_stream_error(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_ANTHROPIC);
    struct rota_xl_sin si = {0};
    static struct rota_xl_evs evs;
    static const char err[] = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                              "\"message\":\"Overloaded\"}}";
    assert_int_equal(rota_xl_anthropic.ev_in(&c.x, &si, "error", 5, err, strlen(err), &evs), 0);
    assert_int_equal(evs.n, 1);
    assert_int_equal(evs.ev[0].type, ROTA_XL_EV_ERROR);
    assert_val(evs.ev[0].text, "\"Overloaded\"");
    struct rota_xl_sout so;
    new_sout(&so);
    struct rota_xl_ev t = {.type = ROTA_XL_EV_TEXT, .text = V("\"a\"")};
    assert_int_equal(rota_xl_anthropic.ev_out(&c.x, &so, &t, &c.out), 0);
    size_t at = c.out.len;
    rota_xl_anthropic.ev_fail(&c.x, &so, "upstream \"gone\"", &c.out);
    assert_string_equal(c.out.p + at,
                        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                        "\"index\":0}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{"
                        "\"type\":\"api_error\",\"message\":\"upstream \\\"gone\\\"\"}}\n\n");
    rota_jbuf_free(&so.held);
    /* malformed events are named */
    static const struct {
        const char *d;
        int rc;
        const char *err;
    } bad[] = {
        {"{", -EINVAL, NULL},
        {"{}", -EINVAL, "a stream event has no type"},
        {"{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
         "\"server_tool_use\"}}",
         -ENOTSUP, "a content block of type server_tool_use cannot be translated"},
        {"{\"type\":\"content_block_delta\",\"index\":999,\"delta\":{}}", -EFBIG, NULL},
        {"{\"type\":\"content_block_delta\",\"index\":5,\"delta\":{\"type\":\"input_json_delta\","
         "\"partial_json\":\"{\"}}",
         -EINVAL, "an input_json_delta for block 5, not a tool_use"},
        {"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\"}}",
         -EINVAL, "a content_block_delta event's text is not a string"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rota_xl_sin s2 = {0};
        evs.n = 0;
        c.x.err[0] = 0;
        int rc = rota_xl_anthropic.ev_in(&c.x, &s2, NULL, 0, bad[i].d, strlen(bad[i].d), &evs);
        if (rc != bad[i].rc || (bad[i].err && strcmp(c.x.err, bad[i].err) != 0))
            fail_msg("case %zu: %d %s", i, rc, c.x.err);
    }
    /* unknown event types are skipped */
    evs.n = 0;
    assert_int_equal(rota_xl_anthropic.ev_in(&c.x, &si, NULL, 0, "{\"type\":\"later\"}", 16, &evs), 0);
    assert_int_equal(evs.n, 0);
    teardown(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xl_anthropic_stream_round_trip),
        cmocka_unit_test(test_xl_anthropic_stream_usage),
        cmocka_unit_test(test_xl_anthropic_stream_from_gemini),
        cmocka_unit_test(test_xl_anthropic_stream_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
