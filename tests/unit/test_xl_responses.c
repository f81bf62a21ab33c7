/* test_xl_responses: OpenAI's Responses API as a translation module
 * (workers/xl_responses*.c): a request read and written back gives the same request
 * (the items of one turn one message, tool outputs one user message, instructions and
 * system messages in order); every field carried, ignored as listed, or refused naming
 * it; malformed bodies refused saying where; what other formats give written for a
 * Responses provider (reasoning only when it is OpenAI's own state); answers read and
 * written back the same. Streams are in test_xl_responses_stream.c. */
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
    c->x.from = ROTA_XL_RESPONSES;
    c->x.to = to;
    c->x.where = rota_xl_responses.where;
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

static int read_req(struct ctx *c, const char *body)
{
    int rc = rota_xl_responses.req_in(&c->x, body, strlen(body), &c->r);
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

static void round_trip(const char *in, const char *want)
{
    struct ctx c;
    ctx_init(&c, ROTA_XL_RESPONSES);
    if (read_req(&c, in))
        fail_msg("refused: %s", c.x.err);
    if (rota_xl_responses.req_out(&c.x, &c.r, &c.out))
        fail_msg("not written: %s", c.x.err);
    if (strlen(want) != c.out.len || memcmp(want, c.out.p, c.out.len) != 0)
        fail_msg("written:\n%.*s\nwanted:\n%s", (int)c.out.len, c.out.p, want);
    struct ctx d;
    ctx_init(&d, ROTA_XL_RESPONSES);
    if (read_req(&d, c.out.p))
        fail_msg("its own output refused: %s", d.x.err);
    assert_int_equal(rota_xl_responses.req_out(&d.x, &d.r, &d.out), 0);
    if (d.out.len != c.out.len || memcmp(d.out.p, c.out.p, c.out.len) != 0)
        fail_msg("written again:\n%.*s", (int)d.out.len, d.out.p);
    ctx_free(&d);
    ctx_free(&c);
}

static const char full_req[] =
    "{\"model\":\"gpt-5\",\"input\":["
    "{\"role\":\"developer\",\"content\":\"Use tools.\"},"
    "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
    "\"Weather in \\\"Paris\\\"?\"},{\"type\":\"input_image\",\"image_url\":"
    "\"data:image/png;base64,iVBORw0KGgo=\",\"detail\":\"auto\"},{\"type\":\"input_image\","
    "\"image_url\":\"https://example.com/a.png\"}]},"
    "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":\"summary_text\",\"text\":"
    "\"Need\"},{\"type\":\"summary_text\",\"text\":\"tools.\"}],\"encrypted_content\":"
    "\"gAAAAABenc\"},"
    "{\"type\":\"message\",\"id\":\"msg_1\",\"status\":\"completed\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"output_text\",\"text\":\"Checking.\",\"annotations\":[]}]},"
    "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_a\",\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\",\"status\":\"completed\"},"
    "{\"type\":\"function_call\",\"call_id\":\"call_b\",\"name\":\"get_weather\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Rome\\\"}\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_a\",\"output\":\"sunny\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_b\",\"output\":[{\"type\":"
    "\"input_text\",\"text\":\"rain\"},{\"type\":\"input_text\",\"text\":\" later\"}]},"
    "{\"role\":\"system\",\"content\":[{\"type\":\"input_text\",\"text\":\"Answer in French.\"}]},"
    "{\"role\":\"user\",\"content\":\"Thanks\"}],"
    "\"instructions\":\"Be terse.\","
    "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"required\":[\"city\"]},\"strict\":true}],"
    "\"tool_choice\":{\"type\":\"function\",\"name\":\"get_weather\"},\"parallel_tool_calls\":"
    "false,\"max_output_tokens\":300,\"temperature\":0.2,\"top_p\":0.9,\"text\":{\"format\":"
    "{\"type\":\"json_schema\",\"name\":\"w\",\"schema\":{\"type\":\"object\"},\"strict\":"
    "true}},\"reasoning\":{\"effort\":\"high\",\"summary\":\"auto\"},\"include\":"
    "[\"reasoning.encrypted_content\"],\"store\":false,\"metadata\":{\"a\":\"b\"},\"user\":"
    "\"u-1\",\"stream\":true,\"truncation\":\"disabled\",\"previous_response_id\":null}";

static const char full_out[] =
    "{\"model\":\"gpt-5\",\"instructions\":\"Be terse.\\n\\nUse tools.\\n\\nAnswer in French.\","
    "\"input\":["
    "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
    "\"Weather in \\\"Paris\\\"?\"},{\"type\":\"input_image\",\"image_url\":"
    "\"data:image/png;base64,iVBORw0KGgo=\"},{\"type\":\"input_image\",\"image_url\":"
    "\"https://example.com/a.png\"}]},"
    "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":"
    "\"Need\\n\\ntools.\"}],\"encrypted_content\":\"gAAAAABenc\"},"
    "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"Checking.\"},"
    "{\"type\":\"function_call\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\",\"call_id\":"
    "\"call_a\",\"name\":\"get_weather\"},"
    "{\"type\":\"function_call\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\",\"call_id\":"
    "\"call_b\",\"name\":\"get_weather\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_a\",\"output\":\"sunny\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_b\",\"output\":\"rain later\"},"
    "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
    "\"Thanks\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"required\":[\"city\"]}}],"
    "\"tool_choice\":{\"type\":\"function\",\"name\":\"get_weather\"},\"parallel_tool_calls\":"
    "false,\"max_output_tokens\":300,\"temperature\":0.2,\"top_p\":0.9,\"text\":{\"format\":"
    "{\"type\":\"json_schema\",\"name\":\"w\",\"schema\":{\"type\":\"object\"}}},\"reasoning\":"
    "{\"effort\":\"high\",\"summary\":\"auto\"},\"include\":[\"reasoning.encrypted_content\"],"
    "\"user\":\"u-1\",\"store\":false,\"stream\":true}";

static void test_request_round_trip(void **state)
{
    (void)state;
    round_trip(full_req, full_out);
    /* an item with an empty content array still takes its part */
    round_trip("{\"input\":[{\"type\":\"reasoning\",\"summary\":[],\"content\":[],"
               "\"encrypted_content\":\"gAAAAAz\"},{\"type\":\"reasoning\",\"summary\":[],"
               "\"content\":[],\"encrypted_content\":\"gAAAAAy\"}]}",
               "{\"model\":\"\",\"input\":[{\"type\":\"reasoning\",\"summary\":[],"
               "\"encrypted_content\":\"gAAAAAz\"},{\"type\":\"reasoning\",\"summary\":[],"
               "\"encrypted_content\":\"gAAAAAy\"}],\"store\":false}");
    round_trip("{\"model\":\"m\",\"input\":\"hi\"}",
               "{\"model\":\"m\",\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":"
               "[{\"type\":\"input_text\",\"text\":\"hi\"}]}],\"store\":false}");
    round_trip("{\"model\":\"m\",\"instructions\":\"x\",\"input\":[{\"role\":\"user\",\"content\":"
               "\"a\"}],\"text\":{\"format\":{\"type\":\"json_object\"}},\"tools\":[{\"type\":"
               "\"function\",\"name\":\"f\"}],\"tool_choice\":\"required\"}",
               "{\"model\":\"m\",\"instructions\":\"x\",\"input\":[{\"type\":\"message\",\"role\":"
               "\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"a\"}]}],\"tools\":"
               "[{\"type\":\"function\",\"name\":\"f\"}],\"tool_choice\":\"required\",\"text\":"
               "{\"format\":{\"type\":\"json_object\"}},\"store\":false}");
}

static void test_request_representation(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, ROTA_XL_ANTHROPIC);
    if (read_req(&c, full_req))
        fail_msg("refused: %s", c.x.err);
    struct rota_xl_req *r = &c.r;
    assert_int_equal(r->nsystem, 3); /* the instructions first, though written last */
    assert_val(r->system[0].text, "\"Be terse.\"");
    assert_val(r->system[2].text, "\"Answer in French.\"");
    assert_int_equal(r->nmsg, 4);
    const struct rota_xl_msg *u = &r->msg[0], *as = &r->msg[1], *t = &r->msg[2];
    assert_int_equal(u->n, 3);
    assert_val(u->part[1].mime, "\"image/png\"");
    assert_val(u->part[1].data, "\"iVBORw0KGgo=\"");
    assert_val(u->part[2].url, "\"https://example.com/a.png\"");
    assert_int_equal(as->role, ROTA_XL_ASSISTANT); /* reasoning, message, calls: one turn */
    assert_int_equal(as->n, 4);
    assert_int_equal(as->part[0].type, ROTA_XL_THINKING);
    assert_val(as->part[0].text, "\"Need\\n\\ntools.\"");
    assert_val(as->part[0].sig, "\"gAAAAABenc\"");
    assert_int_equal(as->part[1].type, ROTA_XL_TEXT);
    assert_val(as->part[2].args, "{\"city\":\"Paris\"}");
    assert_val(as->part[3].id, "\"call_b\"");
    assert_int_equal(t->role, ROTA_XL_USER); /* the two outputs, one user message */
    assert_int_equal(t->n, 2);
    assert_val(t->part[0].name, "\"get_weather\"");
    assert_val(t->part[1].result, "\"rain later\"");
    assert_int_equal(r->msg[3].role, ROTA_XL_USER);
    assert_int_equal(r->choice, ROTA_XL_NAMED);
    assert_int_equal(r->parallel_tools, 0);
    assert_val(r->max_tokens, "300");
    assert_int_equal(r->rformat, ROTA_XL_RF_SCHEMA);
    assert_int_equal(r->thinking, 1);
    assert_true(r->include_thoughts);
    assert_true(r->stream);
    assert_true(r->include_usage);
    char at[96];
    rota_xl_responses.where(at, sizeof(at), u->part[1].at_msg, u->part[1].at_part);
    assert_string_equal(at, "input[1].content[1]");
    rota_xl_responses.where(at, sizeof(at), as->part[3].at_msg, as->part[3].at_part);
    assert_string_equal(at, "input[5]");
    rota_xl_responses.where(at, sizeof(at), r->system[0].at_msg, r->system[0].at_part);
    assert_string_equal(at, "instructions");
    rota_xl_responses.where(at, sizeof(at), r->msg[3].part[0].at_msg, r->msg[3].part[0].at_part);
    assert_string_equal(at, "input[9].content");
    ctx_free(&c);
}

static void refused(const char *body, int err, const char *want)
{
    struct ctx c;
    ctx_init(&c, ROTA_XL_ANTHROPIC);
    int rc = read_req(&c, body);
    if (rc != err)
        fail_msg("%s: %d (%s), not %d", body, rc, c.x.err, err);
    if (!strstr(c.x.err, want))
        fail_msg("%s: said \"%s\", not \"%s\"", body, c.x.err, want);
    ctx_free(&c);
}

#define IN "\"input\":\"hi\""

static void test_request_refusals(void **state)
{
    (void)state;
    refused("{" IN ",\"previous_response_id\":\"resp_1\"}", -ENOTSUP,
            "previous_response_id cannot be sent to anthropic");
    refused("{" IN ",\"conversation\":\"conv_1\"}", -ENOTSUP, "conversation cannot");
    refused("{" IN ",\"background\":true}", -ENOTSUP, "background cannot");
    refused("{" IN ",\"prompt\":{\"id\":\"p\"}}", -ENOTSUP, "prompt cannot");
    refused("{" IN ",\"max_tool_calls\":3}", -ENOTSUP, "max_tool_calls cannot");
    refused("{" IN ",\"top_logprobs\":2}", -ENOTSUP, "top_logprobs cannot");
    refused("{" IN ",\"include\":[\"message.output_text.logprobs\"]}", -ENOTSUP,
            "include (message.output_text.logprobs) cannot");
    refused("{" IN ",\"text\":{\"verbosity\":\"low\"}}", -ENOTSUP, "text.verbosity cannot");
    refused("{" IN ",\"text\":{\"format\":{\"type\":\"grammar\"}}}", -ENOTSUP, "text.format");
    refused("{" IN ",\"tools\":[{\"type\":\"web_search\"}]}", -ENOTSUP, "tools[0] cannot");
    refused("{" IN ",\"tool_choice\":{\"type\":\"allowed_tools\"}}", -ENOTSUP, "tool_choice");
    refused("{" IN ",\"reasoning\":{\"effort\":\"low\",\"budget\":5}}", -ENOTSUP,
            "reasoning.budget cannot");
    refused("{\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}", -ENOTSUP,
            "input[0] cannot be sent to anthropic");
    refused("{\"input\":[{\"type\":\"custom_tool_call\",\"call_id\":\"c\"}]}", -ENOTSUP,
            "input[0] cannot");
    refused("{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\","
            "\"file_id\":\"f\"}]}]}",
            -ENOTSUP, "input[0].content[0]: a part of type \"input_file\" cannot be sent");
    refused("{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
            "\"file_id\":\"f\"}]}]}",
            -ENOTSUP, "input[0].content[0].file_id cannot");
    refused("{\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":"
            "[{\"type\":\"input_text\",\"text\":\"a\"},{\"type\":\"input_image\",\"image_url\":"
            "\"https://a\"}]}]}",
            -ENOTSUP, "input[0].output[1]: a function output part other than text");
    refused("{\"input\":[{\"role\":\"user\",\"content\":\"a\",\"phase\":1}]}", -ENOTSUP,
            "input[0].phase cannot");
    refused("{\"instructions\":[{\"role\":\"system\",\"content\":\"x\"}]}", -ENOTSUP,
            "instructions (other than a string)");
    refused("{" IN ",\"whatever\":1}", -ENOTSUP, "whatever cannot be sent to anthropic");
}

static void test_request_malformed(void **state)
{
    (void)state;
    refused("{\"input\":", -EINVAL, "the request is not JSON");
    refused("{\"model\":\"m\"}", -EINVAL, "the request has no input");
    refused("{\"input\":5}", -EINVAL, "input is neither a string nor an array");
    refused("{\"input\":[7]}", -EINVAL, "input[0]: not an object");
    refused("{\"input\":[{\"role\":\"robot\",\"content\":\"a\"}]}", -EINVAL,
            "input[0]: an unknown role");
    refused("{\"input\":[{\"role\":\"user\"}]}", -EINVAL, "input[0]: a message without content");
    refused("{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\"}]}]}",
            -EINVAL, "input[0].content[0]: its text is not a string");
    refused("{\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\","
            "\"arguments\":\"{x\"}]}",
            -EINVAL, "input[0].arguments: tool arguments are not JSON");
    refused("{\"input\":[{\"type\":\"function_call\",\"name\":\"f\"}]}", -EINVAL,
            "input[0]: a function call needs a call_id and a name");
    refused("{\"input\":[{\"type\":\"function_call_output\",\"output\":\"x\"}]}", -EINVAL,
            "input[0]: a function call output needs a call_id");
    refused("{\"input\":[{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\"}]}]}",
            -EINVAL, "input[0]: its summary is not an array of summary_text");
    refused("{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
            "\"image_url\":\"data:text/plain;base64,aGk=\"}]}]}",
            -EINVAL, "input[0].content[0]: image_url is a data: URL of no image type");
    refused("{" IN ",\"max_output_tokens\":\"many\"}", -EINVAL,
            "max_output_tokens is not a number");
    refused("{" IN ",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\"}}}", -EINVAL,
            "text.format.schema is not an object");
}

/* What other formats give, written for a Responses provider. */
static void test_request_from_others(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, ROTA_XL_RESPONSES);
    c.x.from = ROTA_XL_ANTHROPIC;
    c.x.model = "gpt-5";
    struct rota_xl_part asst[] = {
        {.type = ROTA_XL_THINKING, .text = {"\"anthropic's\"", 13}, .sig = {"\"EqQB\"", 6}},
        {.type = ROTA_XL_THINKING, .text = {"\"ours\"", 6}, .sig = {"\"gAAAAAx\"", 9}},
        {.type = ROTA_XL_REDACTED_THINKING, .text = {"\"gAAAAAy\"", 9}},
        {.type = ROTA_XL_TEXT, .thought = true, .text = {"\"gemini's\"", 10}},
        {.type = ROTA_XL_TEXT, .text = {"\"a\"", 3}},
        {.type = ROTA_XL_TEXT, .text = {"\"b\"", 3}},
        {.type = ROTA_XL_TOOL_CALL, .id = {"\"toolu_1\"", 9}, .name = {"\"f\"", 3},
         .args = {"{\"x\":1}", 7}},
    };
    struct rota_xl_part user[] = {
        {.type = ROTA_XL_TOOL_RESULT, .id = {"\"toolu_1\"", 9}, .result = {"{\"t\":21}", 8}},
        {.type = ROTA_XL_IMAGE, .mime = {"\"image/jpeg\"", 12}, .data = {"\"/9j/\"", 6}},
    };
    struct rota_xl_msg msgs[] = {{ROTA_XL_ASSISTANT, asst, 7}, {ROTA_XL_USER, user, 2}};
    c.r.msg = msgs;
    c.r.nmsg = 2;
    c.r.thinking = 1;
    c.r.thinking_budget = 30000;
    c.r.include_thoughts = true;
    assert_int_equal(rota_xl_responses.req_out(&c.x, &c.r, &c.out), 0);
    const char *want =
        "{\"model\":\"gpt-5\",\"input\":[{\"type\":\"reasoning\",\"summary\":[{\"type\":"
        "\"summary_text\",\"text\":\"ours\"}],\"encrypted_content\":\"gAAAAAx\"},{\"type\":"
        "\"reasoning\",\"summary\":[],\"encrypted_content\":\"gAAAAAy\"},{\"type\":\"message\","
        "\"role\":\"assistant\",\"content\":\"ab\"},{\"type\":\"function_call\",\"arguments\":"
        "\"{\\\"x\\\":1}\",\"call_id\":\"toolu_1\",\"name\":\"f\"},{\"type\":"
        "\"function_call_output\",\"call_id\":\"toolu_1\",\"output\":\"{\\\"t\\\":21}\"},"
        "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
        "\"image_url\":\"data:image/jpeg;base64,/9j/\"}]}],\"reasoning\":{\"effort\":\"high\","
        "\"summary\":\"auto\"},\"include\":[\"reasoning.encrypted_content\"],\"store\":false}";
    if (strcmp(c.out.p, want) != 0)
        fail_msg("written:\n%s\nwanted:\n%s", c.out.p, want);
    /* what a Responses request has no place for is refused */
    struct { struct rota_xl_val *v; const char *name; } no[] = {
        {&c.r.stop, "stop sequences cannot be sent to responses"},
        {&c.r.top_k, "top_k cannot be sent to responses"},
        {&c.r.seed, "seed cannot be sent to responses"},
    };
    for (size_t i = 0; i < 3; i++) {
        *no[i].v = (struct rota_xl_val){"1", 1};
        rota_jbuf_reset(&c.out);
        assert_int_equal(rota_xl_responses.req_out(&c.x, &c.r, &c.out), -ENOTSUP);
        assert_string_equal(c.x.err, no[i].name);
        *no[i].v = (struct rota_xl_val){0};
    }
    ctx_free(&c);
}

/* ---- answers ---- */

static const char answer_in[] =
    "{\"id\":\"resp_68a\",\"object\":\"response\",\"created_at\":1,\"status\":\"completed\","
    "\"error\":null,\"incomplete_details\":null,\"model\":\"gpt-5-2025-08-07\",\"output\":["
    "{\"id\":\"rs_1\",\"type\":\"reasoning\",\"encrypted_content\":\"gAAAAABo\",\"summary\":"
    "[{\"type\":\"summary_text\",\"text\":\"**Plan**\"}]},"
    "{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":"
    "\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"Checking \\\"both\\\".\"}],"
    "\"role\":\"assistant\"},"
    "{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Paris\\\"}\",\"call_id\":\"call_P\",\"name\":\"get_weather\"}],"
    "\"parallel_tool_calls\":true,\"tool_choice\":\"auto\",\"tools\":[],\"usage\":"
    "{\"input_tokens\":120,\"input_tokens_details\":{\"cached_tokens\":100},\"output_tokens\":"
    "60,\"output_tokens_details\":{\"reasoning_tokens\":30},\"total_tokens\":180}}";

static const char answer_out[] =
    "{\"id\":\"resp_68a\",\"object\":\"response\",\"created_at\":1700000000,\"status\":"
    "\"completed\",\"error\":null,\"incomplete_details\":null,\"model\":\"gpt-5-2025-08-07\","
    "\"output\":[{\"id\":\"rs_68a_0\",\"type\":\"reasoning\",\"summary\":[{\"type\":"
    "\"summary_text\",\"text\":\"**Plan**\"}],\"encrypted_content\":\"gAAAAABo\"},"
    "{\"id\":\"msg_68a_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"output_text\",\"text\":\"Checking \\\"both\\\".\",\"annotations\":"
    "[]}]},{\"id\":\"fc_68a_2\",\"type\":\"function_call\",\"status\":\"completed\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\",\"call_id\":\"call_P\",\"name\":"
    "\"get_weather\"}],\"usage\":{\"input_tokens\":120,\"input_tokens_details\":"
    "{\"cached_tokens\":100},\"output_tokens\":60,\"output_tokens_details\":"
    "{\"reasoning_tokens\":30},\"total_tokens\":180}}";

static void test_answer_round_trip(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, ROTA_XL_RESPONSES);
    struct rota_xl_resp r = {0};
    if (rota_xl_responses.resp_in(&c.x, answer_in, strlen(answer_in), &r))
        fail_msg("refused: %s", c.x.err);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.part[0].type, ROTA_XL_THINKING);
    assert_val(r.part[0].sig, "\"gAAAAABo\"");
    assert_int_equal(r.part[2].type, ROTA_XL_TOOL_CALL);
    assert_val(r.part[2].args, "{\"city\":\"Paris\"}");
    assert_int_equal(r.finish, ROTA_XL_FINISH_TOOLS);
    assert_int_equal(r.usage.in, 120);
    assert_int_equal(r.usage.cached, 100);
    assert_int_equal(r.usage.reasoning, 30);
    assert_int_equal(rota_xl_responses.resp_out(&c.x, &r, &c.out), 0);
    if (strcmp(c.out.p, answer_out) != 0)
        fail_msg("written:\n%s\nwanted:\n%s", c.out.p, answer_out);
    struct ctx d; /* read back: the same */
    ctx_init(&d, ROTA_XL_RESPONSES);
    struct rota_xl_resp r2 = {0};
    assert_int_equal(rota_xl_responses.resp_in(&d.x, c.out.p, c.out.len, &r2), 0);
    assert_int_equal(rota_xl_responses.resp_out(&d.x, &r2, &d.out), 0);
    assert_string_equal(d.out.p, c.out.p);
    ctx_free(&d);
    ctx_free(&c);
}

static void test_answer_other_shapes(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, ROTA_XL_RESPONSES);
    struct rota_xl_resp r = {0};
    const char *cut = "{\"id\":\"resp_2\",\"status\":\"incomplete\",\"incomplete_details\":"
                      "{\"reason\":\"max_output_tokens\"},\"output\":[{\"type\":\"message\","
                      "\"content\":[{\"type\":\"output_text\",\"text\":\"Hal\"}]}]}";
    assert_int_equal(rota_xl_responses.resp_in(&c.x, cut, strlen(cut), &r), 0);
    assert_int_equal(r.finish, ROTA_XL_FINISH_LENGTH);
    assert_int_equal(rota_xl_responses.resp_out(&c.x, &r, &c.out), 0);
    assert_non_null(strstr(c.out.p, "\"status\":\"incomplete\",\"error\":null,"
                                    "\"incomplete_details\":{\"reason\":\"max_output_tokens\"}"));
    const char *refusal = "{\"id\":\"resp_3\",\"status\":\"completed\",\"output\":[{\"type\":"
                          "\"message\",\"content\":[{\"type\":\"refusal\",\"refusal\":\"No.\"}]}]}";
    memset(&r, 0, sizeof(r));
    assert_int_equal(rota_xl_responses.resp_in(&c.x, refusal, strlen(refusal), &r), 0);
    assert_int_equal(r.finish, ROTA_XL_FINISH_REFUSAL);
    assert_val(r.part[0].text, "\"No.\"");
    const char *failed = "{\"id\":\"resp_4\",\"status\":\"failed\",\"error\":{\"code\":"
                         "\"server_error\",\"message\":\"boom\"},\"output\":[]}";
    assert_int_equal(rota_xl_responses.resp_in(&c.x, failed, strlen(failed), &r), -EINVAL);
    assert_string_equal(c.x.err, "the answer is an error: boom");
    assert_int_equal(rota_xl_responses.resp_in(&c.x, "{}", 2, &r), -EINVAL);
    assert_string_equal(c.x.err, "the answer has no output");
    /* an answer from another format: an id made, Gemini's thought as reasoning */
    struct rota_xl_part parts[] = {
        {.type = ROTA_XL_TEXT, .thought = true, .text = {"\"hmm\"", 5}},
        {.type = ROTA_XL_TOOL_CALL, .name = {"\"f\"", 3}, .args = {"{}", 2}},
    };
    struct rota_xl_resp g = {.part = parts, .n = 2, .finish = ROTA_XL_FINISH_STOP};
    rota_jbuf_reset(&c.out);
    assert_int_equal(rota_xl_responses.resp_out(&c.x, &g, &c.out), 0);
    assert_non_null(strstr(c.out.p, "{\"id\":\"resp_"));
    assert_non_null(strstr(c.out.p, "\"type\":\"reasoning\",\"summary\":[{\"type\":"
                                    "\"summary_text\",\"text\":\"hmm\"}]}"));
    assert_non_null(strstr(c.out.p, "\"call_id\":\"call_"));
    assert_non_null(strstr(c.out.p, "\"usage\":null"));
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
        cmocka_unit_test(test_answer_other_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
