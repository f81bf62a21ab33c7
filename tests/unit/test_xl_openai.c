/* test_xl_openai: OpenAI's chat completions as a translation module (workers/xl_openai*.c):
 * a request read and written back gives the same request, every field either carried,
 * ignored as listed, or refused naming it; malformed bodies are refused saying where;
 * answers read and written back are the same; the representation holds what the other
 * formats rely on (system text in order, tool results in one user message, arguments
 * as objects, signed reasoning). Streams are in test_xl_openai_stream.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xlate.h"

struct ctx {
    struct rota_arena a;
    struct rota_xl x;
    struct rota_xl_req r;
    struct rota_jbuf out;
};

static void ctx_init(struct ctx *c, enum rota_xl_fmt to)
{
    memset(c, 0, sizeof(*c));
    rota_arena_init(&c->a, 64u << 20);
    c->x.a = &c->a;
    c->x.from = ROTA_XL_OPENAI;
    c->x.to = to;
    c->x.where = rota_xl_openai.where;
    c->x.now_s = 1700000000;
    c->r.parallel_tools = -1;
    c->r.thinking = -1;
    rota_jbuf_init(&c->out, 0);
}

static void ctx_free(struct ctx *c)
{
    rota_jbuf_free(&c->out);
    rota_arena_free(&c->a);
}

/* Read "body" as rota_xl_read does: req_in, then the results tied to their calls. */
static int read_req(struct ctx *c, const char *body)
{
    int rc = rota_xl_openai.req_in(&c->x, body, strlen(body), &c->r);
    if (!rc)
        rc = rota_xl_link(&c->x, &c->r, false);
    c->x.req = &c->r;
    return rc;
}

static bool vis(struct rota_xl_val v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

#define assert_val(v, s)                                                                   \
    do {                                                                                   \
        if (!vis((v), (s)))                                                                \
            fail_msg("%s is %.*s, not %s", #v, (int)(v).len, (v).p ? (v).p : "", (s));     \
    } while (0)

/* Read "in", write it, and compare with "want"; then the output read and written again
 * gives the same bytes (the writer is canonical). */
static void round_trip(const char *in, const char *want)
{
    struct ctx c;
    ctx_init(&c, ROTA_XL_OPENAI);
    if (read_req(&c, in))
        fail_msg("refused: %s", c.x.err);
    if (rota_xl_openai.req_out(&c.x, &c.r, &c.out))
        fail_msg("not written: %s", c.x.err);
    if (strlen(want) != c.out.len || memcmp(want, c.out.p, c.out.len) != 0)
        fail_msg("written:\n%.*s\nwanted:\n%s", (int)c.out.len, c.out.p, want);
    struct ctx d;
    ctx_init(&d, ROTA_XL_OPENAI);
    if (read_req(&d, c.out.p))
        fail_msg("its own output refused: %s", d.x.err);
    assert_int_equal(rota_xl_openai.req_out(&d.x, &d.r, &d.out), 0);
    if (d.out.len != c.out.len || memcmp(d.out.p, c.out.p, c.out.len) != 0)
        fail_msg("written again:\n%.*s", (int)d.out.len, d.out.p);
    ctx_free(&d);
    ctx_free(&c);
}

static const char full_req[] =
    "{\"model\":\"gpt-4.1\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use tools.\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in \\\"Paris\\\"? "
    "\\u00e9\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,"
    "iVBORw0KGgo=\",\"detail\":\"low\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":"
    "\"https://example.com/a.png\"}}]},"
    "{\"role\":\"assistant\",\"content\":\"Checking.\",\"reasoning_details\":[{\"type\":"
    "\"reasoning.text\",\"text\":\"Need the tool.\",\"signature\":\"sig-1\",\"format\":"
    "\"anthropic-claude-v1\",\"index\":0},{\"type\":\"reasoning.encrypted\",\"data\":"
    "\"opaque==\"}],\"tool_calls\":[{\"id\":\"call_a\",\"type\":\"function\",\"function\":"
    "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":"
    "\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_a\",\"content\":\"sunny\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_b\",\"content\":[{\"type\":\"text\",\"text\":"
    "\"rain\"},{\"type\":\"text\",\"text\":\" later\"}]},"
    "{\"role\":\"system\",\"content\":\"Answer in French.\"},"
    "{\"role\":\"user\",\"content\":\"Thanks\",\"name\":\"bob\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
    "\"string\"}},\"required\":[\"city\"]},\"strict\":true}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
    "\"parallel_tool_calls\":true,\"max_completion_tokens\":300,\"temperature\":0.2,"
    "\"top_p\":0.9,\"stop\":[\"END\"],\"seed\":7,\"stream\":true,\"stream_options\":"
    "{\"include_usage\":true},\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
    "{\"name\":\"w\",\"schema\":{\"type\":\"object\"},\"strict\":true}},"
    "\"reasoning_effort\":\"high\",\"user\":\"u-1\",\"n\":1,\"logprobs\":false,"
    "\"presence_penalty\":0,\"frequency_penalty\":0.0,\"store\":false,\"metadata\":{\"a\":"
    "\"b\"},\"service_tier\":\"auto\",\"temperature\":null}";

static const char full_out[] =
    "{\"model\":\"gpt-4.1\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are terse.\\n\\nUse tools.\\n\\nAnswer in French.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in \\\"Paris\\\"? "
    "\\u00e9\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,"
    "iVBORw0KGgo=\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":"
    "\"https://example.com/a.png\"}}]},"
    "{\"role\":\"assistant\",\"content\":\"Checking.\",\"reasoning_content\":\"Need the tool.\","
    "\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"Need the tool.\","
    "\"signature\":\"sig-1\",\"index\":0},{\"type\":\"reasoning.encrypted\",\"data\":"
    "\"opaque==\",\"index\":1}],\"tool_calls\":[{\"id\":\"call_a\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
    "{\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_a\",\"content\":\"sunny\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_b\",\"content\":\"rain later\"},"
    "{\"role\":\"user\",\"content\":\"Thanks\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
    "\"string\"}},\"required\":[\"city\"]}}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
    "\"parallel_tool_calls\":true,\"max_tokens\":300,\"temperature\":0.2,\"top_p\":0.9,"
    "\"seed\":7,\"stop\":[\"END\"],\"response_format\":{\"type\":\"json_schema\","
    "\"json_schema\":{\"name\":\"w\",\"schema\":{\"type\":\"object\"}}},"
    "\"reasoning_effort\":\"high\",\"user\":\"u-1\",\"stream\":true,\"stream_options\":"
    "{\"include_usage\":true}}";

static void test_request_round_trip(void **state)
{
    (void)state;
    round_trip(full_req, full_out);
    /* the simplest request, and JSON mode, tool_choice strings, a budget of reasoning */
    round_trip("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    round_trip("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
               "\"response_format\":{\"type\":\"json_object\"},\"tools\":[{\"type\":"
               "\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"required\","
               "\"reasoning\":{\"max_tokens\":20000},\"stop\":\"x\",\"top_k\":40}",
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
               "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
               "\"tool_choice\":\"required\",\"top_k\":40,\"stop\":\"x\","
               "\"response_format\":{\"type\":\"json_object\"},\"reasoning_effort\":\"high\"}");
}

/* What the other formats' modules read from the representation. */
static void test_request_representation(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, ROTA_XL_ANTHROPIC);
    if (read_req(&c, full_req))
        fail_msg("refused: %s", c.x.err);
    struct rota_xl_req *r = &c.r;
    assert_val(r->model, "\"gpt-4.1\"");
    assert_int_equal(r->nsystem, 3); /* the late system message too, in order */
    assert_val(r->system[0].text, "\"You are terse.\"");
    assert_val(r->system[1].text, "\"Use tools.\"");
    assert_val(r->system[2].text, "\"Answer in French.\"");
    assert_int_equal(r->nmsg, 4);
    const struct rota_xl_msg *u = &r->msg[0], *as = &r->msg[1], *t = &r->msg[2];
    assert_int_equal(u->role, ROTA_XL_USER);
    assert_int_equal(u->n, 3);
    assert_int_equal(u->part[1].type, ROTA_XL_IMAGE);
    assert_val(u->part[1].mime, "\"image/png\"");
    assert_val(u->part[1].data, "\"iVBORw0KGgo=\"");
    assert_int_equal(u->part[1].url.len, 0);
    assert_val(u->part[2].url, "\"https://example.com/a.png\"");
    assert_true(r->has_images);
    assert_int_equal(as->role, ROTA_XL_ASSISTANT);
    assert_int_equal(as->n, 5); /* thinking, redacted, text, two calls */
    assert_int_equal(as->part[0].type, ROTA_XL_THINKING);
    assert_val(as->part[0].sig, "\"sig-1\"");
    assert_int_equal(as->part[1].type, ROTA_XL_REDACTED_THINKING);
    assert_val(as->part[1].text, "\"opaque==\"");
    assert_int_equal(as->part[2].type, ROTA_XL_TEXT);
    assert_int_equal(as->part[3].type, ROTA_XL_TOOL_CALL);
    assert_val(as->part[3].args, "{\"city\":\"Paris\"}"); /* an object, not a string */
    assert_val(as->part[4].id, "\"call_b\"");
    assert_int_equal(t->role, ROTA_XL_USER); /* two tool messages, one user message */
    assert_int_equal(t->n, 2);
    assert_int_equal(t->part[0].type, ROTA_XL_TOOL_RESULT);
    assert_val(t->part[0].name, "\"get_weather\""); /* tied to its call */
    assert_val(t->part[1].result, "\"rain later\"");
    assert_int_equal(r->msg[3].role, ROTA_XL_USER);
    assert_int_equal(r->ntool, 1);
    assert_int_equal(r->choice, ROTA_XL_NAMED);
    assert_val(r->choice_name, "\"get_weather\"");
    assert_int_equal(r->parallel_tools, 1);
    assert_val(r->max_tokens, "300");
    assert_int_equal(r->temperature.len, strlen("0.2")); /* the later null is absent */
    assert_int_equal(r->rformat, ROTA_XL_RF_SCHEMA);
    assert_val(r->schema_name, "\"w\"");
    assert_int_equal(r->thinking, 1);
    assert_true(r->include_thoughts);
    assert_val(r->effort, "\"high\"");
    assert_true(r->stream);
    assert_true(r->include_usage);
    assert_val(r->user, "\"u-1\"");
    /* the parts' places in the client's request */
    char at[96];
    rota_xl_openai.where(at, sizeof(at), as->part[4].at_msg, as->part[4].at_part);
    assert_string_equal(at, "messages[3].tool_calls[1]");
    rota_xl_openai.where(at, sizeof(at), as->part[1].at_msg, as->part[1].at_part);
    assert_string_equal(at, "messages[3].reasoning_details[1]");
    rota_xl_openai.where(at, sizeof(at), u->part[1].at_msg, u->part[1].at_part);
    assert_string_equal(at, "messages[2].content[1]");
    rota_xl_openai.where(at, sizeof(at), t->part[1].at_msg, t->part[1].at_part);
    assert_string_equal(at, "messages[5]");
    rota_xl_openai.where(at, sizeof(at), r->msg[3].part[0].at_msg, r->msg[3].part[0].at_part);
    assert_string_equal(at, "messages[7].content");
    ctx_free(&c);
}

/* "body" is refused with "err" and the message "want" (a part of it). */
static void refused(const char *body, int err, const char *want)
{
    struct ctx c;
    ctx_init(&c, ROTA_XL_GEMINI);
    int rc = read_req(&c, body);
    if (rc != err)
        fail_msg("%s: %d (%s), not %d", body, rc, c.x.err, err);
    if (!strstr(c.x.err, want))
        fail_msg("%s: said \"%s\", not \"%s\"", body, c.x.err, want);
    ctx_free(&c);
}

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void test_request_refusals(void **state)
{
    (void)state;
    refused("{" MSGS ",\"n\":2}", -ENOTSUP, "n (more than one choice) cannot be sent to gemini");
    refused("{" MSGS ",\"logprobs\":true}", -ENOTSUP, "logprobs cannot be sent to gemini");
    refused("{" MSGS ",\"top_logprobs\":3}", -ENOTSUP, "top_logprobs cannot");
    refused("{" MSGS ",\"logit_bias\":{\"50256\":-100}}", -ENOTSUP, "logit_bias cannot");
    refused("{" MSGS ",\"presence_penalty\":0.5}", -ENOTSUP, "presence_penalty cannot");
    refused("{" MSGS ",\"frequency_penalty\":-1}", -ENOTSUP, "frequency_penalty cannot");
    refused("{" MSGS ",\"modalities\":[\"text\",\"audio\"]}", -ENOTSUP, "modalities");
    refused("{" MSGS ",\"audio\":{\"voice\":\"x\"}}", -ENOTSUP, "audio cannot be sent");
    refused("{" MSGS ",\"functions\":[]}", -ENOTSUP, "functions cannot be sent");
    refused("{" MSGS ",\"verbosity\":\"low\"}", -ENOTSUP, "verbosity cannot be sent");
    refused("{" MSGS ",\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"x\"}}]}",
            -ENOTSUP, "tools[0] cannot be sent");
    refused("{" MSGS ",\"tool_choice\":{\"type\":\"allowed_tools\"}}", -ENOTSUP,
            "tool_choice cannot");
    refused("{" MSGS ",\"response_format\":{\"type\":\"grammar\"}}", -ENOTSUP,
            "response_format cannot");
    refused("{" MSGS ",\"stream_options\":{\"chunk\":1}}", -ENOTSUP,
            "stream_options.chunk cannot");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
            "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AA==\",\"format\":\"wav\"}}]}]}",
            -ENOTSUP, "messages[0].content[1]: a part of type \"input_audio\" cannot be sent to gemini");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{}}]}]}",
            -ENOTSUP, "messages[0].content[0]: a part of type \"file\"");
    refused("{\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}",
            -ENOTSUP, "a message of role \"function\" cannot be sent");
    refused("{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"function_call\":"
            "{\"name\":\"f\",\"arguments\":\"{}\"}}]}",
            -ENOTSUP, "messages[0].function_call cannot be sent");
    refused("{\"messages\":[{\"role\":\"assistant\",\"content\":\"a\",\"audio\":{\"id\":\"x\"}}]}",
            -ENOTSUP, "messages[0].audio cannot be sent");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\","
            "\"extra\":1}]}]}",
            -ENOTSUP, "messages[0].content[0].extra cannot be sent");
    refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
            "\"custom\",\"custom\":{\"name\":\"x\",\"input\":\"y\"}}]}]}",
            -ENOTSUP, "messages[0].tool_calls[0] cannot be sent");
    refused("{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\","
            "\"image_url\":{\"url\":\"https://a/b.png\"}}]}]}",
            -ENOTSUP, "messages[0].content cannot be sent");
    refused("{\"messages\":[{\"role\":\"assistant\",\"reasoning_details\":[{\"type\":"
            "\"reasoning.other\"}]}]}",
            -ENOTSUP, "messages[0].reasoning_details[0] cannot be sent");
    refused("{" MSGS ",\"whatever\":1}", -ENOTSUP, "whatever cannot be sent to gemini");
}

static void test_request_malformed(void **state)
{
    (void)state;
    refused("{\"messages\":[", -EINVAL, "the request is not JSON");
    refused("[1]", -EINVAL, "not a JSON object");
    refused("{\"model\":\"m\"}", -EINVAL, "no messages");
    refused("{\"messages\":{}}", -EINVAL, "messages is not an array");
    refused("{\"messages\":[1]}", -EINVAL, "messages[0]: not an object");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":5}]}", -EINVAL,
            "messages[0].content: neither a string nor an array of parts");
    refused("{\"messages\":[{\"role\":\"user\"}]}", -EINVAL,
            "messages[0]: a user message without content");
    refused("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", -EINVAL,
            "messages[0]: an unknown role");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":5}]}]}",
            -EINVAL, "messages[0].content[0]: text is not a string");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
            "\"image_url\":{}}]}]}",
            -EINVAL, "messages[0].content[0]: image_url.url is not a string");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
            "\"image_url\":{\"url\":\"data:application/pdf;base64,JVBE\"}}]}]}",
            -EINVAL, "messages[0].content[0]: image_url.url is a data: URL of no image type");
    refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
            "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}]}",
            -EINVAL, "messages[0].tool_calls[0].function.arguments: tool arguments are not JSON");
    refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
            "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
            -EINVAL, "tool arguments are not a JSON object");
    refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"function\","
            "\"function\":{\"name\":\"f\"}}]}]}",
            -EINVAL, "messages[0].tool_calls[0]: a tool call needs an id");
    refused("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", -EINVAL,
            "messages[0]: a tool message needs a tool_call_id");
    refused("{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":[{\"type\":"
            "\"image_url\",\"image_url\":{\"url\":\"https://a\"}}]}]}",
            -ENOTSUP, "messages[0].content[0]: a tool result part other than text");
    refused("{" MSGS ",\"temperature\":\"hot\"}", -EINVAL, "temperature is not a number");
    refused("{" MSGS ",\"stop\":[1]}", -EINVAL, "stop holds a value that is not a string");
    refused("{" MSGS ",\"tools\":[{\"type\":\"function\",\"function\":{}}]}", -EINVAL,
            "tools[0].function: a function needs a name");
    refused("{" MSGS ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}}}",
            -EINVAL, "response_format.json_schema.schema is not an object");
}

/* What the representation holds from other formats, written for a chat target. */
static void test_request_from_others(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, ROTA_XL_OPENAI);
    c.x.from = ROTA_XL_ANTHROPIC;
    c.x.model = "gpt-4.1";
    struct rota_xl_part sys = {.type = ROTA_XL_TEXT, .text = {"\"Be brief.\"", 11}};
    struct rota_xl_part asst[] = {
        {.type = ROTA_XL_TEXT, .thought = true, .text = {"\"gemini thought\"", 16}},
        {.type = ROTA_XL_THINKING, .text = {"\" signed\"", 9}, .sig = {"\"s1\"", 4}},
        {.type = ROTA_XL_TEXT, .text = {"\"a\"", 3}},
        {.type = ROTA_XL_TEXT, .text = {"\"b\"", 3}},
        {.type = ROTA_XL_TOOL_CALL, .name = {"\"f\"", 3}, .args = {"{\"x\":1}", 7},
         .sig = {"\"sig-g\"", 7}}, /* Gemini's: no id, one made with the signature in it */
    };
    struct rota_xl_part user[] = {
        {.type = ROTA_XL_TEXT, .text = {"\"see\"", 5}},
        {.type = ROTA_XL_TOOL_RESULT, .id = {"\"c1\"", 4}, .result = {"{\"temp\":21}", 11}},
        {.type = ROTA_XL_IMAGE, .mime = {"\"image/jpeg\"", 12}, .data = {"\"/9j/\"", 6}},
    };
    struct rota_xl_msg msgs[] = {{ROTA_XL_ASSISTANT, asst, 5}, {ROTA_XL_USER, user, 3}};
    c.r.system = &sys;
    c.r.nsystem = 1;
    c.r.msg = msgs;
    c.r.nmsg = 2;
    c.r.thinking = 1;
    c.r.thinking_budget = 1024;
    c.r.choice = ROTA_XL_ANY; /* no tools: not written */
    assert_int_equal(rota_xl_openai.req_out(&c.x, &c.r, &c.out), 0);
    struct rota_xl_val id = rota_xl_tool_id(&c.x, "call_", asst[4].name, asst[4].args, 0,
                                            asst[4].sig);
    char want[2048];
    snprintf(want, sizeof(want),
             "{\"model\":\"gpt-4.1\",\"messages\":[{\"role\":\"system\",\"content\":"
             "\"Be brief.\"},{\"role\":\"assistant\",\"content\":\"ab\",\"reasoning_content\":"
             "\"gemini thought signed\",\"reasoning_details\":[{\"type\":\"reasoning.text\","
             "\"text\":\" signed\",\"signature\":\"s1\",\"index\":0}],\"tool_calls\":[{\"id\":"
             "%.*s,\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
             "\"{\\\"x\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":"
             "\"{\\\"temp\\\":21}\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
             "\"text\":\"see\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
             "\"data:image/jpeg;base64,/9j/\"}}]}],\"reasoning_effort\":\"low\"}",
             (int)id.len, id.p);
    if (strcmp(want, c.out.p) != 0)
        fail_msg("written:\n%s\nwanted:\n%s", c.out.p, want);
    /* the made id gives Gemini's signature back */
    assert_val(rota_xl_id_sig(&c.x, id), "\"sig-g\"");
    /* OpenAI's encrypted reasoning (from a Responses tier) is not sent to a chat target,
     * but an answer gives it to the client, who sends it back for that tier */
    struct rota_xl_part oai[] = {
        {.type = ROTA_XL_THINKING, .text = {"\"r\"", 3}, .sig = {"\"gAAAAAs\"", 9}},
        {.type = ROTA_XL_REDACTED_THINKING, .text = {"\"gAAAAAd\"", 9}},
        {.type = ROTA_XL_TEXT, .text = {"\"t\"", 3}},
    };
    struct rota_xl_msg sm = {ROTA_XL_ASSISTANT, oai, 3};
    c.r.msg = &sm;
    c.r.nmsg = 1;
    c.r.nsystem = 0;
    c.r.thinking = -1;
    rota_jbuf_reset(&c.out);
    assert_int_equal(rota_xl_openai.req_out(&c.x, &c.r, &c.out), 0);
    assert_string_equal(c.out.p, "{\"model\":\"gpt-4.1\",\"messages\":[{\"role\":\"assistant\","
                                 "\"content\":\"t\",\"reasoning_content\":\"r\"}]}");
    struct rota_xl_resp sr = {.part = oai, .n = 3, .finish = ROTA_XL_FINISH_STOP};
    rota_jbuf_reset(&c.out);
    assert_int_equal(rota_xl_openai.resp_out(&c.x, &sr, &c.out), 0);
    assert_non_null(strstr(c.out.p, "\"reasoning_details\":[{\"type\":\"reasoning.text\","
                                    "\"text\":\"r\",\"signature\":\"gAAAAAs\",\"index\":0},"
                                    "{\"type\":\"reasoning.encrypted\",\"data\":\"gAAAAAd\","
                                    "\"index\":1}]"));
    /* a part a chat target cannot take is refused naming the client's field */
    struct rota_xl_part bad = {.type = ROTA_XL_IMAGE, .at_msg = 2, .at_part = 1,
                               .url = {"\"https://a\"", 11}};
    struct rota_xl_msg m = {ROTA_XL_ASSISTANT, &bad, 1};
    c.r.msg = &m;
    c.r.nmsg = 1;
    c.x.to = ROTA_XL_OPENAI;
    c.x.where = rota_xl_openai.where;
    rota_jbuf_reset(&c.out);
    assert_int_equal(rota_xl_openai.req_out(&c.x, &c.r, &c.out), -ENOTSUP);
    assert_string_equal(c.x.err, "messages[2].content[1]: this part in an assistant message "
                                 "cannot be sent to openai");
    ctx_free(&c);
}

/* ---- answers ---- */

static const char answer_in[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4.1\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Checking both.\",\"reasoning_content\":\"Two cities.\",\"tool_calls\":[{\"id\":"
    "\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"call_b\",\"type\":\"function\",\"function\":"
    "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}],\"refusal\":"
    "null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
    "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":20,\"total_tokens\":120,"
    "\"prompt_tokens_details\":{\"cached_tokens\":40,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":5}},\"system_fingerprint\":\"fp\"}";

static const char answer_out[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":"
    "\"gpt-4.1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Checking both.\",\"reasoning_content\":\"Two cities.\",\"tool_calls\":[{\"id\":"
    "\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"call_b\",\"type\":\"function\",\"function\":"
    "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":100,"
    "\"completion_tokens\":20,\"total_tokens\":120,\"prompt_tokens_details\":"
    "{\"cached_tokens\":40},\"completion_tokens_details\":{\"reasoning_tokens\":5}}}";

static void answer_trip(const char *in, const char *want, struct rota_xl_resp *keep)
{
    struct ctx c;
    ctx_init(&c, ROTA_XL_OPENAI);
    struct rota_xl_resp r = {0};
    if (rota_xl_openai.resp_in(&c.x, in, strlen(in), &r))
        fail_msg("refused: %s", c.x.err);
    if (keep) { /* its parts' values point into "in" and the arena: compare now */
        assert_int_equal(r.n, keep->n);
        assert_int_equal(r.finish, keep->finish);
        assert_int_equal(r.usage.in, keep->usage.in);
        assert_int_equal(r.usage.out, keep->usage.out);
        assert_int_equal(r.usage.cached, keep->usage.cached);
        assert_int_equal(r.usage.reasoning, keep->usage.reasoning);
        for (uint32_t i = 0; i < r.n; i++)
            assert_int_equal(r.part[i].type, keep->part[i].type);
    }
    assert_int_equal(rota_xl_openai.resp_out(&c.x, &r, &c.out), 0);
    if (strlen(want) != c.out.len || memcmp(want, c.out.p, c.out.len) != 0)
        fail_msg("written:\n%.*s\nwanted:\n%s", (int)c.out.len, c.out.p, want);
    struct ctx d; /* read back: the same answer */
    ctx_init(&d, ROTA_XL_OPENAI);
    struct rota_xl_resp r2 = {0};
    assert_int_equal(rota_xl_openai.resp_in(&d.x, c.out.p, c.out.len, &r2), 0);
    assert_int_equal(rota_xl_openai.resp_out(&d.x, &r2, &d.out), 0);
    if (d.out.len != c.out.len || memcmp(d.out.p, c.out.p, c.out.len) != 0)
        fail_msg("written again:\n%.*s", (int)d.out.len, d.out.p);
    ctx_free(&d);
    ctx_free(&c);
}

static void test_answer_round_trip(void **state)
{
    (void)state;
    struct rota_xl_part parts[4] = {{.type = ROTA_XL_THINKING}, {.type = ROTA_XL_TEXT},
                                    {.type = ROTA_XL_TOOL_CALL}, {.type = ROTA_XL_TOOL_CALL}};
    struct rota_xl_resp want = {.part = parts, .n = 4, .finish = ROTA_XL_FINISH_TOOLS,
                                .usage = {100, 20, 40, 5, true}};
    answer_trip(answer_in, answer_out, &want);
    /* OpenRouter's: signed and redacted reasoning come back as reasoning_details */
    answer_trip("{\"id\":\"gen-1\",\"model\":\"anthropic/claude\",\"choices\":[{\"message\":"
                "{\"role\":\"assistant\",\"content\":\"Hi\",\"reasoning\":\"r\","
                "\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"r\","
                "\"signature\":\"s\"},{\"type\":\"reasoning.encrypted\",\"data\":\"d\"}]},"
                "\"finish_reason\":\"length\"}]}",
                "{\"id\":\"gen-1\",\"object\":\"chat.completion\",\"created\":1700000000,"
                "\"model\":\"anthropic/claude\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"Hi\",\"reasoning_content\":\"r\","
                "\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"r\","
                "\"signature\":\"s\",\"index\":0},{\"type\":\"reasoning.encrypted\",\"data\":"
                "\"d\",\"index\":1}]},\"finish_reason\":\"length\"}]}",
                NULL);
    /* a refusal is the model's text, finished by the filter */
    answer_trip("{\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"message\":{\"role\":\"assistant\","
                "\"content\":null,\"refusal\":\"No.\"},\"finish_reason\":\"stop\"}]}",
                "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":"
                "\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                "\"No.\"},\"finish_reason\":\"content_filter\"}]}",
                NULL);
}

/* An answer from another format: a made id, tools finish as tool_calls. */
static void test_answer_from_others(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, ROTA_XL_GEMINI);
    struct rota_xl_part parts[] = {
        {.type = ROTA_XL_TEXT, .text = {"\"ok\"", 4}},
        {.type = ROTA_XL_TOOL_CALL, .id = {"\"call_1\"", 8}, .name = {"\"f\"", 3},
         .args = {"{}", 2}},
    };
    struct rota_xl_resp r = {.part = parts, .n = 2, .finish = ROTA_XL_FINISH_STOP,
                             .usage = {.in = 3, .out = 2, .seen = true}};
    struct rota_xl_req req = {.model = {"\"alias\"", 7}};
    c.x.req = &req;
    assert_int_equal(rota_xl_openai.resp_out(&c.x, &r, &c.out), 0);
    assert_non_null(strstr(c.out.p, "{\"id\":\"chatcmpl-"));
    assert_non_null(strstr(c.out.p, "\"model\":\"alias\""));
    assert_non_null(strstr(c.out.p, "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\""));
    assert_non_null(strstr(c.out.p, "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
                                    "\"total_tokens\":5,"));
    struct rota_jbuf again; /* the same answer, the same id */
    rota_jbuf_init(&again, 0);
    assert_int_equal(rota_xl_openai.resp_out(&c.x, &r, &again), 0);
    assert_string_equal(again.p, c.out.p);
    rota_jbuf_free(&again);
    /* malformed answers say so */
    struct rota_xl_resp z = {0};
    const char *err = "{\"error\":{\"message\":\"boom\"}}";
    assert_int_equal(rota_xl_openai.resp_in(&c.x, err, strlen(err), &z), -EINVAL);
    assert_string_equal(c.x.err, "the answer is an error: boom");
    const char *badargs = "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"c\",\"function\":"
                          "{\"name\":\"f\",\"arguments\":\"{oops\"}}]}}]}";
    assert_int_equal(rota_xl_openai.resp_in(&c.x, badargs, strlen(badargs), &z), -EINVAL);
    assert_non_null(strstr(c.x.err, "tool arguments are not JSON"));
    assert_int_equal(rota_xl_openai.resp_in(&c.x, "{", 1, &z), -EINVAL);
    assert_non_null(strstr(c.x.err, "the answer is not JSON"));
    ctx_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_representation),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_request_malformed),
        cmocka_unit_test(test_request_from_others),
        cmocka_unit_test(test_answer_round_trip),
        cmocka_unit_test(test_answer_from_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
