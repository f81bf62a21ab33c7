/* test_xl_anthropic: Anthropic's messages requests and answers (workers/xl_anthropic*.c)
 * through the representation and back: every field read and written again, thinking
 * merged and unsigned thinking left out, roles made to alternate, refusals and malformed
 * input named by their path, Gemini's requests and answers written for Anthropic. */
#include <errno.h>

#include "xl_anthropic_util.h"

/* A request with every field Anthropic's clients send (Claude Code's shapes). */
static const char req1[] =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":32000,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You are a CLI.\","
    "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"Be \\u00e9 brief.\"}],"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris and Lyon?\"},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Two calls.\","
    "\"signature\":\"EqQBCkYIBxgC\"},{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgBEgy\"},"
    "{\"type\":\"text\",\"text\":\"Checking.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01B\",\"name\":\"get_weather\",\"input\":{\"city\":\"Lyon\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A\","
    "\"content\":\"18C\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01B\",\"is_error\":true,"
    "\"content\":[{\"type\":\"text\",\"text\":\"no \\\"data\\\"\"},{\"type\":\"text\",\"text\":\"retry\"}],"
    "\"cache_control\":{\"type\":\"ephemeral\"}},"
    "{\"type\":\"text\",\"text\":\"And this?\"},"
    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
    "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/a.jpg\"}}]}],"
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"input_schema\":"
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}},"
    "{\"type\":\"custom\",\"name\":\"noop\"}],"
    "\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true},"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":10000},"
    "\"temperature\":1,\"top_p\":0.95,\"top_k\":40,\"stop_sequences\":[\"END\"],\"stream\":true,"
    "\"metadata\":{\"user_id\":\"user_abc\"},\"service_tier\":\"auto\"}";

static const char req1_out[] =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":32000,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You are a CLI.\"},{\"type\":\"text\",\"text\":\"Be \\u00e9 brief.\"}],"
    "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris and Lyon?\"}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Two calls.\","
    "\"signature\":\"EqQBCkYIBxgC\"},{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgBEgy\"},"
    "{\"type\":\"text\",\"text\":\"Checking.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01B\",\"name\":\"get_weather\",\"input\":{\"city\":\"Lyon\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A\","
    "\"content\":\"18C\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01B\","
    "\"content\":\"no \\\"data\\\"\\nretry\",\"is_error\":true},"
    "{\"type\":\"text\",\"text\":\"And this?\"},"
    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
    "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/a.jpg\"}}]}],"
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"input_schema\":"
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}},"
    "{\"name\":\"noop\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
    "\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true},"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":10000},"
    "\"temperature\":1,\"top_p\":0.95,\"top_k\":40,\"stop_sequences\":[\"END\"],"
    "\"metadata\":{\"user_id\":\"user_abc\"},\"stream\":true}";

static void test_xl_anthropic_request_round_trip(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_ANTHROPIC);
    struct rota_xl_req r;
    assert_int_equal(read_req(&c, req1, strlen(req1), &r), 0);
    assert_val(r.model, "\"claude-sonnet-4-5\"");
    assert_int_equal(r.nsystem, 2);
    assert_int_equal(r.nmsg, 3);
    assert_int_equal(r.msg[0].part[0].at_part, 0xffff);
    assert_int_equal(r.msg[1].n, 5);
    assert_int_equal(r.msg[1].part[0].type, ROTA_XL_THINKING);
    assert_val(r.msg[1].part[0].sig, "\"EqQBCkYIBxgC\"");
    assert_int_equal(r.msg[1].part[1].type, ROTA_XL_REDACTED_THINKING);
    assert_int_equal(r.msg[2].part[1].type, ROTA_XL_TOOL_RESULT);
    assert_true(r.msg[2].part[1].is_error);
    assert_val(r.msg[2].part[1].name, "\"get_weather\""); /* linked to its call */
    assert_val(r.msg[2].part[1].result, "\"no \\\"data\\\"\\nretry\"");
    assert_int_equal(r.ntool, 2);
    assert_int_equal(r.choice, ROTA_XL_AUTO);
    assert_int_equal(r.parallel_tools, 0);
    assert_int_equal(r.thinking, 1);
    assert_int_equal(r.thinking_budget, 10000);
    assert_true(r.stream && r.has_images);
    assert_val(r.user, "\"user_abc\"");
    assert_val(r.stop, "[\"END\"]");
    assert_int_equal(write_req(&c, &r), 0);
    assert_out(&c, req1_out);
    /* what is written reads back to the same request */
    struct rota_xl_req r2;
    char *again = strndup(c.out.p, c.out.len);
    assert_int_equal(read_req(&c, again, strlen(again), &r2), 0);
    assert_int_equal(write_req(&c, &r2), 0);
    assert_out(&c, req1_out);
    free(again);
    /* the provider's model replaces the client's */
    c.x.model = "claude-opus-4-1";
    assert_int_equal(write_req(&c, &r), 0);
    assert_true(strncmp(c.out.p, "{\"model\":\"claude-opus-4-1\",", 27) == 0);
    teardown(&c);
}

/* Written with defaults: max_tokens 4096, effort as a budget, max_tokens above it. */
static void test_xl_anthropic_request_defaults(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_ANTHROPIC);
    struct rota_xl_req r;
    static const char body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                               "\"thinking\":{\"type\":\"disabled\"},\"tool_choice\":{\"type\":\"none\"}}";
    assert_int_equal(read_req(&c, body, strlen(body), &r), 0);
    assert_int_equal(r.thinking, 0);
    assert_int_equal(r.choice, ROTA_XL_NONE);
    assert_int_equal(write_req(&c, &r), 0);
    assert_out(&c, "{\"model\":\"m\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":"
                   "[{\"type\":\"text\",\"text\":\"hi\"}]}],\"thinking\":{\"type\":\"disabled\"}}");
    r.thinking = 1;
    assert_int_equal(write_req(&c, &r), 0);
    assert_non_null(strstr(c.out.p, "\"max_tokens\":4096,"));
    assert_non_null(strstr(c.out.p, "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}"));
    r.effort = V("\"high\"");
    r.max_tokens = V("20000");
    assert_int_equal(write_req(&c, &r), 0);
    assert_non_null(strstr(c.out.p, "\"max_tokens\":20000,"));
    assert_non_null(strstr(c.out.p, "\"budget_tokens\":16384}"));
    r.effort = V("\"medium\"");
    r.max_tokens = V("100");
    assert_int_equal(write_req(&c, &r), 0);
    assert_non_null(strstr(c.out.p, "\"max_tokens\":4196,"));
    assert_non_null(strstr(c.out.p, "\"budget_tokens\":4096}"));
    r.rformat = ROTA_XL_RF_JSON;
    assert_int_equal(write_req(&c, &r), -ENOTSUP);
    assert_string_equal(c.x.err, "response_format cannot be sent to anthropic");
    teardown(&c);
}

/* Thinking from Gemini: a thought's text and its signature-only part merged into one
 * block; an unsigned thought left out; an empty text left out; roles alternate; tool
 * results before text in a user message. */
static void test_xl_anthropic_request_merge(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_GEMINI, ROTA_XL_ANTHROPIC);
    struct rota_xl_part u1[] = {{.type = ROTA_XL_TEXT, .text = V("\"a\"")}};
    struct rota_xl_part u2[] = {{.type = ROTA_XL_TEXT, .text = V("\"b\"")}};
    struct rota_xl_part a1[] = {
        {.type = ROTA_XL_THINKING, .thought = true, .text = V("\"Plan \\\"x\\\". \"")},
        {.type = ROTA_XL_THINKING, .thought = true, .text = V("\"Then y.\""), .sig = V("\"c2ln\"")},
        {.type = ROTA_XL_TEXT, .text = V("\"\""), .sig = V("\"c2lnMg==\"")},
        {.type = ROTA_XL_TOOL_CALL, .id = V("\"call_1\""), .name = V("\"f\""), .args = V("{}")},
    };
    struct rota_xl_part a2[] = {{.type = ROTA_XL_THINKING, .text = V("\"unsigned\"")}};
    struct rota_xl_part u3[] = {
        {.type = ROTA_XL_TEXT, .text = V("\"after\"")},
        {.type = ROTA_XL_TOOL_RESULT, .id = V("\"call_1\""), .name = V("\"f\""),
         .result = V("{\"ok\":true}")},
    };
    struct rota_xl_part u4[] = {{.type = ROTA_XL_IMAGE, .url = V("\"data:image/png;base64,AAAA\"")}};
    struct rota_xl_msg msgs[] = {{ROTA_XL_USER, u1, 1},      {ROTA_XL_USER, u2, 1},
                                 {ROTA_XL_ASSISTANT, a1, 4}, {ROTA_XL_ASSISTANT, a2, 1},
                                 {ROTA_XL_USER, u3, 2},      {ROTA_XL_USER, u4, 1}};
    struct rota_xl_req r = {.msg = msgs, .nmsg = 6, .parallel_tools = -1, .thinking = -1};
    c.x.model = "claude-x";
    assert_int_equal(write_req(&c, &r), 0);
    assert_out(&c, "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":["
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                   "{\"type\":\"text\",\"text\":\"b\"}]},"
                   "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":"
                   "\"Plan \\\"x\\\". Then y.\",\"signature\":\"c2ln\"},{\"type\":\"tool_use\","
                   "\"id\":\"call_1\",\"name\":\"f\",\"input\":{}}]},"
                   "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
                   "\"call_1\",\"content\":\"{\\\"ok\\\":true}\"},{\"type\":\"text\",\"text\":"
                   "\"after\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
                   "\"image/png\",\"data\":\"AAAA\"}}]}]}");
    teardown(&c);
}

struct bad_case {
    const char *body;
    int rc;
    const char *err;
};

static void test_xl_anthropic_request_refused(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"{\"messages\":[],\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}",
         -ENOTSUP, "tools[0] of type web_search_20250305 cannot be sent to anthropic"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
         "\"t\",\"content\":[{\"type\":\"image\",\"source\":{}}]}]}]}",
         -ENOTSUP, "messages[0].content[0].content[0] of type image cannot be sent to anthropic"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":{}}]}]}",
         -ENOTSUP, "messages[0].content[0] of type document cannot be sent to anthropic"},
        {"{\"messages\":[],\"mcp_servers\":[]}", -ENOTSUP, "mcp_servers cannot be sent to anthropic"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":"
         "\"file\",\"file_id\":\"f\"}}]}]}",
         -ENOTSUP, "messages[0].content[0].source.file_id cannot be sent to anthropic"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":\"n\"}]}", -ENOTSUP,
         "messages[0].name cannot be sent to anthropic"},
        {"{\"messages\":[],\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2000,\"x\":1}}",
         -ENOTSUP, "thinking.x cannot be sent to anthropic"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctx c;
        setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_ANTHROPIC);
        struct rota_xl_req r;
        int rc = read_req(&c, cases[i].body, strlen(cases[i].body), &r);
        if (rc != cases[i].rc || strcmp(c.x.err, cases[i].err) != 0)
            fail_msg("case %zu: %d %s", i, rc, c.x.err);
        teardown(&c);
    }
}

static void test_xl_anthropic_request_malformed(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"[]", -EINVAL, "the request is not a JSON object"},
        {"{\"messages\":", -EINVAL, NULL},
        {"{}", -EINVAL, "messages is missing"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", -EINVAL,
         "messages[0].role is neither \"user\" nor \"assistant\""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]}",
         -EINVAL, "messages[0].content[0].text is not a string"},
        {"{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"a\","
         "\"name\":\"f\",\"input\":\"{}\"}]}]}",
         -EINVAL, "messages[0].content[0] needs id and name strings and an input object"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\","
         "\"tool_use_id\":\"x\"}]}]}",
         -EINVAL, "messages[0].content[0] has a member its type does not take"},
        {"{\"messages\":[],\"max_tokens\":\"5\"}", -EINVAL, "max_tokens is not a number"},
        {"{\"messages\":[],\"tool_choice\":{\"type\":\"tool\"}}", -EINVAL,
         "tool_choice.name is not a string"},
        {"{\"messages\":[],\"system\":[{\"type\":\"image\"}]}", -EINVAL,
         "system[0] is not a text block"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctx c;
        setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_ANTHROPIC);
        struct rota_xl_req r;
        int rc = read_req(&c, cases[i].body, strlen(cases[i].body), &r);
        if (rc != cases[i].rc || (cases[i].err && strcmp(c.x.err, cases[i].err) != 0))
            fail_msg("case %zu: %d %s", i, rc, c.x.err);
        teardown(&c);
    }
}

/* Refusals on the way out name the client's part (here Gemini's numbering). */
static void test_xl_anthropic_request_from_gemini(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_GEMINI, ROTA_XL_ANTHROPIC);
    static const char body[] =
        "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]},"
        "{\"role\":\"model\",\"parts\":[{\"text\":\"think\",\"thought\":true},"
        "{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}},\"thoughtSignature\":\"c2ln\"}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":"
        "{\"r\":2}}}]}],\"generationConfig\":{\"maxOutputTokens\":100,"
        "\"thinkingConfig\":{\"thinkingBudget\":2048,\"includeThoughts\":true}}}";
    struct rota_xl_req r;
    assert_int_equal(read_req(&c, body, strlen(body), &r), 0);
    c.x.model = "claude-sonnet-4-5";
    assert_int_equal(write_req(&c, &r), 0);
    /* the unsigned thought is left out; the call keeps its id with the signature in it */
    assert_null(strstr(c.out.p, "think\""));
    assert_non_null(strstr(c.out.p, "\"budget_tokens\":2048"));
    assert_non_null(strstr(c.out.p, "\"max_tokens\":2148"));
    assert_non_null(strstr(c.out.p, "\"content\":\"{\\\"r\\\":2}\""));
    assert_non_null(strstr(c.out.p, "\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\"}]"));
    r.msg[0].part[0].type = ROTA_XL_IMAGE;
    r.msg[0].part[0].data = V("\"AAAA\"");
    assert_int_equal(write_req(&c, &r), -ENOTSUP);
    assert_string_equal(c.x.err, "contents[0].parts[0]: an image without a media type cannot be "
                                 "sent to anthropic");
    teardown(&c);
}

/* ---- answers ---- */

static const char resp1[] =
    "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"thinking\",\"thinking\":"
    "\"Paris first.\",\"signature\":\"EqQBCkYI\"},{\"type\":\"redacted_thinking\",\"data\":\"EmwK\"},"
    "{\"type\":\"text\",\"text\":\"Checking \\u00e9.\"},{\"type\":\"tool_use\",\"id\":\"toolu_01A\","
    "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}],\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":2000,\"output_tokens\":90,\"service_tier\":\"standard\"}}";

static void test_xl_anthropic_answer_round_trip(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_ANTHROPIC);
    struct rota_xl_resp r = {0};
    assert_int_equal(rota_xl_anthropic.resp_in(&c.x, resp1, strlen(resp1), &r), 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.finish, ROTA_XL_FINISH_TOOLS);
    assert_int_equal(r.usage.in, 2020);
    assert_int_equal(r.usage.cached, 2000);
    assert_int_equal(r.usage.out, 90);
    assert_int_equal(rota_xl_anthropic.resp_out(&c.x, &r, &c.out), 0);
    static const char want[] =
        "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
        "\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"thinking\",\"thinking\":"
        "\"Paris first.\",\"signature\":\"EqQBCkYI\"},{\"type\":\"redacted_thinking\",\"data\":\"EmwK\"},"
        "{\"type\":\"text\",\"text\":\"Checking \\u00e9.\"},{\"type\":\"tool_use\",\"id\":\"toolu_01A\","
        "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}],\"stop_reason\":\"tool_use\","
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":0,"
        "\"cache_read_input_tokens\":2000,\"output_tokens\":90}}";
    assert_out(&c, want);
    /* a stop sequence */
    static const char r2[] = "{\"content\":[{\"type\":\"text\",\"text\":\"a\"}],\"stop_reason\":"
                             "\"stop_sequence\",\"stop_sequence\":\"END\",\"usage\":{}}";
    struct rota_xl_resp s = {0};
    assert_int_equal(rota_xl_anthropic.resp_in(&c.x, r2, strlen(r2), &s), 0);
    assert_int_equal(s.finish, ROTA_XL_FINISH_STOP);
    rota_jbuf_reset(&c.out);
    assert_int_equal(rota_xl_anthropic.resp_out(&c.x, &s, &c.out), 0);
    assert_non_null(strstr(c.out.p, "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"END\""));
    /* malformed and untranslatable */
    assert_int_equal(rota_xl_anthropic.resp_in(&c.x, "{}", 2, &s), -EINVAL);
    static const char r3[] = "{\"content\":[{\"type\":\"server_tool_use\"}]}";
    assert_int_equal(rota_xl_anthropic.resp_in(&c.x, r3, strlen(r3), &s), -ENOTSUP);
    teardown(&c);
}

/* Gemini's answer for an Anthropic client: the thought and its signature-only part merged,
 * an id made, the request's model, STOP with calls is tool_use, usage converted. */
static void test_xl_anthropic_answer_from_gemini(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, ROTA_XL_ANTHROPIC, ROTA_XL_GEMINI);
    struct rota_xl_req req;
    static const char body[] = "{\"model\":\"claude-x\",\"messages\":[]}";
    assert_int_equal(read_req(&c, body, strlen(body), &req), 0);
    static const char g[] =
        "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"hmm\","
        "\"thought\":true},{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}},"
        "\"thoughtSignature\":\"c2ln\"},{\"text\":\"\",\"thoughtSignature\":\"eHl6\"}]},"
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":100,"
        "\"cachedContentTokenCount\":40,\"candidatesTokenCount\":10,\"thoughtsTokenCount\":5}}";
    struct rota_xl_resp r = {0};
    assert_int_equal(rota_xl_gemini.resp_in(&c.x, g, strlen(g), &r), 0);
    assert_int_equal(rota_xl_anthropic.resp_out(&c.x, &r, &c.out), 0);
    const char *o = c.out.p;
    assert_true(strncmp(o, "{\"id\":\"msg_", 11) == 0);
    assert_non_null(strstr(o, "\"model\":\"claude-x\""));
    assert_non_null(strstr(o, "{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"\"}"));
    assert_non_null(strstr(o, "\"name\":\"f\",\"input\":{\"a\":1}}]"));
    assert_non_null(strstr(o, "\"stop_reason\":\"tool_use\""));
    assert_non_null(strstr(o, "\"usage\":{\"input_tokens\":60,\"cache_creation_input_tokens\":0,"
                              "\"cache_read_input_tokens\":40,\"output_tokens\":15}"));
    /* the same answer, the same id */
    char first[64];
    snprintf(first, sizeof(first), "%.40s", o);
    rota_jbuf_reset(&c.out);
    assert_int_equal(rota_xl_anthropic.resp_out(&c.x, &r, &c.out), 0);
    assert_true(strncmp(c.out.p, first, strlen(first)) == 0);
    teardown(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xl_anthropic_request_round_trip),
        cmocka_unit_test(test_xl_anthropic_request_defaults),
        cmocka_unit_test(test_xl_anthropic_request_merge),
        cmocka_unit_test(test_xl_anthropic_request_refused),
        cmocka_unit_test(test_xl_anthropic_request_malformed),
        cmocka_unit_test(test_xl_anthropic_request_from_gemini),
        cmocka_unit_test(test_xl_anthropic_answer_round_trip),
        cmocka_unit_test(test_xl_anthropic_answer_from_gemini),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
