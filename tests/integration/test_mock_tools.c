/* test_mock_tools: rota-mockprovider's scripted tool-using model over real HTTP on
 * loopback, each wire format spoken to directly: the calls and texts it answers, plain
 * and streamed, the usage it reports and counts, and each history, schema and signature
 * it refuses with 400 in the provider's own shape, as the provider would.
 *
 * DESIGN
 * One mock for the group (pool_it.h starts it); requests go out with the curl CLI, their
 * bodies and credential header written to files in the test's directory (the
 * credential's a *.key, which is an input, never on a command line). Bodies are written here
 * with ' for " (none holds an apostrophe), which body() turns back.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "pool_it.h"

static const struct pool_account accounts[] = {
    {"oa-1", "openai", "sk-mt-oa1-secret"},
    {"an-1", "anthropic", "sk-mt-an1-secret"},
    {"gm-1", "gemini", "sk-mt-gm1-secret"},
    {"ag-1", "antigravity", "sk-mt-ag1-secret"},
};

static struct it group;

static int group_setup(void **state)
{
    (void)state;
    it_init(&group, "mock-tools");
    pool_mock_start(group.dir, 50, accounts, 4, false);
    return 0;
}

static int group_teardown(void **state)
{
    return pool_teardown(state);
}

static char answer[65536];

/* POST "text" (with ' for ") to the mock's "path" as account "who" ("oa", "an", "gm",
 * "ag"): the status, the body in "answer". Also the body's length in "*len". */
static int post(const char *who, const char *path, const char *text, size_t *len)
{
    char file[256], cmd[1024], code[16];
    snprintf(file, sizeof(file), "%s/request.json", group.dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    size_t n = 0;
    for (const char *p = text; *p; p++, n++)
        fputc(*p == '\'' ? '"' : *p, f);
    fclose(f);
    if (len)
        *len = n;
    const char *auth = !strcmp(who, "an")   ? "x-api-key: sk-mt-an1-secret"
                       : !strcmp(who, "gm") ? "x-goog-api-key: sk-mt-gm1-secret"
                       : !strcmp(who, "ag") ? "Authorization: Bearer sk-mt-ag1-secret"
                                            : "Authorization: Bearer sk-mt-oa1-secret";
    char keyfile[256]; /* the credential goes to curl in a file, not on its command line */
    snprintf(keyfile, sizeof(keyfile), "%s/auth.key", group.dir);
    unlink(keyfile); /* made anew, ours alone from its first byte */
    int kfd = open(keyfile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    assert_true(kfd >= 0);
    assert_true(dprintf(kfd, "%s\n", auth) > 0);
    close(kfd);
    snprintf(cmd, sizeof(cmd),
             "curl -s -N -o '%s/answer.out' -w '%%{http_code}' -H 'Content-Type: "
             "application/json' -H @'%s' --data-binary @'%s' 'http://127.0.0.1:%d%s'",
             group.dir, keyfile, file, pool_it.mock_port, path);
    assert_int_equal(it_sh(cmd, code, sizeof(code), NULL, 0), 0);
    snprintf(file, sizeof(file), "%s/answer.out", group.dir);
    f = fopen(file, "r");
    assert_non_null(f);
    size_t k = fread(answer, 1, sizeof(answer) - 1, f);
    answer[k] = 0;
    fclose(f);
    return atoi(code);
}

/* The answer must be "status" and hold every one of the (NULL-ended) texts. */
static void expect(int got, int status, ...)
{
    if (got != status)
        fail_msg("status %d, not %d: %s", got, status, answer);
    va_list ap;
    va_start(ap, status);
    for (const char *s; (s = va_arg(ap, const char *));)
        if (!strstr(answer, s))
            fail_msg("no \"%s\" in: %s", s, answer);
    va_end(ap);
}

static json_t *parsed(void)
{
    json_t *j = json_loads(answer, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", answer);
    return j;
}

/* ---- OpenAI ---- */

#define OA_TOOLS                                                                               \
    "'tools':[{'type':'function','function':{'name':'get_weather','parameters':{'type':"       \
    "'object','properties':{'city':{'type':'string'}},'additionalProperties':false}}}]"
#define OA_CALL(id)                                                                            \
    "{'role':'assistant','content':null,'tool_calls':[{'id':'" id "','type':'function',"       \
    "'function':{'name':'get_weather','arguments':'{}'}}]}"

static void test_openai(void **state)
{
    (void)state;
    const char *path = "/v1/chat/completions";
    size_t len;
    mock_post("reset");
    /* the user asks: a call, and usage from the body's bytes */
    int st = post(
        "oa", path,
        "{'model':'m','messages':[{'role':'user','content':'weather?'}]," OA_TOOLS "}", &len);
    expect(st, 200, "\"finish_reason\":\"tool_calls\"", "\"name\":\"get_weather\"",
           "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":2}\"",
           "\"id\":\"call_mock_", NULL);
    json_t *j = parsed();
    json_t *u = json_object_get(j, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), (len + 3) / 4);
    json_int_t out = json_integer_value(json_object_get(u, "completion_tokens"));
    assert_int_equal(out, (strlen("get_weather{\"city\":\"Paris\",\"days\":2}") + 3) / 4);
    json_decref(j);
    json_t *s = mock_stats();
    json_t *a = json_object_get(json_object_get(s, "accounts"), "oa-1");
    assert_int_equal(json_integer_value(json_object_get(a, "tokens_in")), (len + 3) / 4);
    assert_int_equal(json_integer_value(json_object_get(a, "tokens_out")), out);
    assert_int_equal(json_array_size(json_object_get(a, "usage")), 1);
    json_decref(s);

    /* "parallel", streamed: two calls, their arguments in pieces, the usage chunk */
    st = post("oa", path,
              "{'model':'m','stream':true,'stream_options':{'include_usage':true},'messages':"
              "[{'role':'user','content':'both, in parallel'}]," OA_TOOLS "}",
              NULL);
    expect(st, 200, "\"index\":1", "\"arguments\":\"{\\\"ci\"", "Rom",
           "\"finish_reason\":\"tool_calls\"", "\"choices\":[],\"usage\":{\"prompt_tokens\"",
           "data: [DONE]", NULL);

    /* results: quoted; all of the run of tool messages */
    st = post(
        "oa", path,
        "{'model':'m','messages':[{'role':'user','content':'w'}," OA_CALL(
            "call_a") ","
                      "{'role':'tool','tool_call_id':'call_a','content':'sunny'}]," OA_TOOLS
                      "}",
        NULL);
    expect(st, 200, "\"content\":\"weather: sunny\"", "\"finish_reason\":\"stop\"", NULL);

    /* refused: a result for no call, a call left unanswered, arguments not a string */
    st = post("oa", path,
              "{'model':'m','messages':[{'role':'user','content':'w'},"
              "{'role':'tool','tool_call_id':'call_x','content':'sunny'}]," OA_TOOLS "}",
              NULL);
    expect(st, 400, "must be a response to a preceeding message with 'tool_calls'", "call_x",
           "invalid_request_error", NULL);
    st = post("oa", path,
              "{'model':'m','messages':[{'role':'user','content':'w'}," OA_CALL(
                  "call_b") ","
                            "{'role':'user','content':'and?'}]," OA_TOOLS "}",
              NULL);
    expect(st, 400, "did not have response messages: call_b", NULL);
    st = post(
        "oa", path,
        "{'model':'m','messages':[{'role':'user','content':'w'},{'role':'assistant',"
        "'tool_calls':[{'id':'call_c','type':'function','function':{'name':'get_weather',"
        "'arguments':{}}}]},{'role':'tool','tool_call_id':'call_c','content':'x'}]," OA_TOOLS
        "}",
        NULL);
    expect(st, 400, "function.arguments': expected a string", NULL);
    /* no tools, no tool history: the plain "ok" still */
    st = post("oa", path, "{'model':'m','messages':[{'role':'user','content':'hi'}]}", NULL);
    expect(st, 200, "\"content\":\"ok\"", "\"total_tokens\":50", NULL);
}

/* ---- OpenAI's Responses ---- */

#define RS_TOOLS                                                                               \
    "'tools':[{'type':'function','name':'get_weather','parameters':{'type':'object'}}]"
#define RS_CALL(id)                                                                            \
    "{'type':'function_call','call_id':'" id "','name':'get_weather','arguments':'{}'}"

static void test_responses(void **state)
{
    (void)state;
    const char *path = "/v1/responses";
    int st = post("oa", path, "{'model':'m','input':'weather?'," RS_TOOLS "}", NULL);
    expect(st, 200, "\"object\":\"response\"", "\"type\":\"function_call\"",
           "\"call_id\":\"call_mock_", "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"",
           "\"input_tokens\":", NULL);
    st = post(
        "oa", path,
        "{'model':'m','stream':true,'input':[{'role':'user','content':'w'}," RS_CALL(
            "c1") ",{'type':'function_call_output','call_id':'c1','output':'sunny'}]," RS_TOOLS
                  "}",
        NULL);
    expect(st, 200, "event: response.created", "event: response.output_text.delta",
           "\"text\":\"weather: sunny\"", "event: response.completed", NULL);
    st = post("oa", path,
              "{'model':'m','input':[{'role':'user','content':'w'},{'type':"
              "'function_call_output','call_id':'c9','output':'sunny'}]," RS_TOOLS "}",
              NULL);
    expect(st, 400, "No tool call found for function call output with call_id c9", NULL);
    st = post("oa", path,
              "{'model':'m','input':[{'role':'user','content':'w'}," RS_CALL(
                  "c2") ","
                        "{'role':'user','content':'and?'}]," RS_TOOLS "}",
              NULL);
    expect(st, 400, "No tool output found for function call c2", NULL);
    st = post("oa", path, "{'model':'m','input':'hi'}", NULL);
    expect(st, 200, "\"text\":\"ok\"", NULL);
}

/* ---- Anthropic ---- */

#define AN_TOOLS                                                                               \
    "'tools':[{'name':'get_weather','input_schema':{'type':'object','properties':{}}}]"
#define AN_THINK      "'max_tokens':2048,'thinking':{'type':'enabled','budget_tokens':1024}"
#define AN_USE(id)    "{'type':'tool_use','id':'" id "','name':'get_weather','input':{}}"
#define AN_RESULT(id) "{'type':'tool_result','tool_use_id':'" id "','content':'sunny'}"

static void test_anthropic(void **state)
{
    (void)state;
    const char *path = "/v1/messages";
    /* thinking: a signed thought first, then the call */
    int st = post("an", path,
                  "{'model':'c'," AN_THINK
                  ",'messages':[{'role':'user','content':'w'}]," AN_TOOLS "}",
                  NULL);
    expect(st, 200, "{\"type\":\"thinking\",\"thinking\":\"mock thought\",\"signature\":",
           "\"type\":\"tool_use\",\"id\":\"toolu_mock_", "\"stop_reason\":\"tool_use\"", NULL);
    json_t *j = parsed();
    char sig[64], id[64], body[2048];
    snprintf(sig, sizeof(sig), "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(j, "content"), 0),
                                               "signature")));
    snprintf(id, sizeof(id), "%s",
             json_string_value(
                 json_object_get(json_array_get(json_object_get(j, "content"), 1), "id")));
    json_decref(j);
    /* the history as it came back: the result quoted, the thought again */
    snprintf(body, sizeof(body),
             "{'model':'c'," AN_THINK ",'messages':[{'role':'user','content':'w'},"
             "{'role':'assistant','content':[{'type':'thinking','thinking':'mock thought',"
             "'signature':'%s'}," AN_USE("%s") "]},{'role':'user','content':[" AN_RESULT(
                 "%s") "]}]," AN_TOOLS "}",
             sig, id, id);
    expect(post("an", path, body, NULL), 200, "\"text\":\"weather: sunny\"",
           "\"stop_reason\":\"end_turn\"", "\"type\":\"thinking\"", NULL);
    /* the same without the thought, or with one the mock never signed */
    snprintf(body, sizeof(body),
             "{'model':'c'," AN_THINK ",'messages':[{'role':'user','content':'w'},"
             "{'role':'assistant','content':[" AN_USE(
                 "%s") "]},{'role':'user','content':[" AN_RESULT("%s") "]}]," AN_TOOLS "}",
             id, id);
    expect(post("an", path, body, NULL), 400, "Expected `thinking` or `redacted_thinking`",
           "invalid_request_error", NULL);
    snprintf(body, sizeof(body),
             "{'model':'c'," AN_THINK ",'messages':[{'role':'user','content':'w'},"
             "{'role':'assistant','content':[{'type':'thinking','thinking':'mock thought',"
             "'signature':'sig-anthropic-999999'}," AN_USE("%s") "]},{'role':'user',"
                                                                 "'content':[" AN_RESULT(
                                                                     "%s") "]}]," AN_TOOLS "}",
             id, id);
    expect(post("an", path, body, NULL), 400, "Invalid `signature` in `thinking` block", NULL);

    /* streamed, "parallel": blocks in order, arguments as input_json_delta */
    st = post("an", path,
              "{'model':'c','max_tokens':64,'stream':true,'messages':[{'role':'user','content':"
              "'both in parallel'}]," AN_TOOLS "}",
              NULL);
    expect(st, 200, "event: message_start",
           "\"index\":1,\"content_block\":{\"type\":\"tool_use\"",
           "\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"ci\"",
           "\"stop_reason\":\"tool_use\"", "event: message_stop", NULL);

    /* refused: a result for no use, a use left unanswered, roles, no tools */
    st = post(
        "an", path,
        "{'model':'c','max_tokens':64,'messages':[{'role':'user','content':'w'},"
        "{'role':'assistant','content':[" AN_USE(
            "toolu_a") "]},{'role':'user','content':[" AN_RESULT("toolu_z") "]}]," AN_TOOLS "}",
        NULL);
    expect(st, 400, "unexpected `tool_use_id` found in `tool_result` blocks: toolu_z", NULL);
    st = post("an", path,
              "{'model':'c','max_tokens':64,'messages':[{'role':'user','content':'w'},"
              "{'role':'assistant','content':[" AN_USE("toolu_a") "]},{'role':'user','content':"
                                                                  "'and?'}]," AN_TOOLS "}",
              NULL);
    expect(st, 400,
           "`tool_use` ids were found without `tool_result` blocks immediately after: "
           "toolu_a",
           NULL);
    st = post("an", path,
              "{'model':'c','max_tokens':64,'messages':[{'role':'user','content':'w'},"
              "{'role':'user','content':'w'}]," AN_TOOLS "}",
              NULL);
    expect(st, 400, "roles must alternate", NULL);
    st = post(
        "an", path,
        "{'model':'c','max_tokens':64,'messages':[{'role':'assistant','content':'w'}]," AN_TOOLS
        "}",
        NULL);
    expect(st, 400, "first message must use the \\\"user\\\" role", NULL);
    st = post("an", path,
              "{'model':'c','max_tokens':64,'messages':[{'role':'user','content':'w'},"
              "{'role':'assistant','content':[" AN_USE(
                  "toolu_a") "]},{'role':'user','content':[" AN_RESULT("toolu_a") "]}]}",
              NULL);
    expect(st, 400, "must define tools", NULL);
}

/* ---- Gemini and Code Assist ---- */

#define GM_PARAMS(extra)                                                                       \
    "'tools':[{'functionDeclarations':[{'name':'get_weather','parameters':{'type':'OBJECT',"   \
    "'properties':{'city':{'type':'STRING'" extra "}}}}]}]"
#define GM_TOOLS GM_PARAMS("")
#define GM_THINK "'generationConfig':{'thinkingConfig':{'includeThoughts':true}}"
#define GM_ASK   "{'role':'user','parts':[{'text':'w'}]}"
#define GM_RESULT(name)                                                                        \
    "{'role':'user','parts':[{'functionResponse':{'name':'" name "',"                          \
    "'response':{'forecast':'sunny'}}}]}"

static void test_gemini(void **state)
{
    (void)state;
    const char *path = "/v1beta/models/gem:generateContent";
    char body[2048], sig[64];
    /* every keyword Gemini's Schema has not is refused by name, however deep */
    static const char *const refused[] = {"additionalProperties",
                                          "$schema",
                                          "$ref",
                                          "$defs",
                                          "exclusiveMinimum",
                                          "exclusiveMaximum",
                                          "patternProperties",
                                          "if",
                                          "then",
                                          "else",
                                          "oneOf",
                                          "allOf",
                                          "const",
                                          "not"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(body, sizeof(body), "{'contents':[" GM_ASK "]," GM_PARAMS(",'%s':0") "}",
                 refused[i]);
        char want[96];
        snprintf(want, sizeof(want), "Unknown name \\\"%s\\\"", refused[i]);
        expect(post("gm", path, body, NULL), 400, want, "properties[city]", "INVALID_ARGUMENT",
               NULL);
    }
    expect(
        post("gm", path, "{'contents':[" GM_ASK "]," GM_PARAMS(",'nullable':true") "}", NULL),
        200, NULL);

    /* thinking: a thought, then the call with its signature */
    int st = post("gm", path, "{'contents':[" GM_ASK "]," GM_TOOLS "," GM_THINK "}", NULL);
    expect(
        st, 200, "{\"text\":\"mock thought\",\"thought\":true}",
        "\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\",\"days\":2}},"
        "\"thoughtSignature\":\"sig-gemini-",
        "\"thoughtsTokenCount\":3", NULL);
    snprintf(sig, sizeof(sig), "%.40s", strstr(answer, "sig-gemini-"));
    *strchr(sig, '"') = 0;
    snprintf(body, sizeof(body),
             "{'contents':[" GM_ASK ",{'role':'model','parts':[{'functionCall':{'name':"
             "'get_weather','args':{}},'thoughtSignature':'%s'}]}," GM_RESULT(
                 "get_weather") "]," GM_TOOLS "," GM_THINK "}",
             sig);
    expect(post("gm", path, body, NULL), 200,
           "\"text\":\"weather: {\\\"forecast\\\":\\\"sunny\\\"}\"", NULL);
    /* without it: refused when thinking, taken when not */
    snprintf(body, sizeof(body),
             "{'contents':[" GM_ASK ",{'role':'model','parts':[{'functionCall':{'name':"
             "'get_weather','args':{}}}]}," GM_RESULT("get_weather") "]," GM_TOOLS "%s}",
             "," GM_THINK);
    expect(post("gm", path, body, NULL), 400, "Function call is missing a thought_signature",
           NULL);
    *strstr(body, ",'generationConfig'") = 0;
    strcat(body, "}");
    expect(post("gm", path, body, NULL), 200, "weather: ", NULL);
    /* a signature issued for another function */
    snprintf(body, sizeof(body),
             "{'contents':[" GM_ASK ",{'role':'model','parts':[{'functionCall':{'name':"
             "'get_time','args':{}},'thoughtSignature':'%s'}]}," GM_RESULT(
                 "get_time") "]," GM_TOOLS "," GM_THINK "}",
             sig);
    expect(post("gm", path, body, NULL), 400, "Corrupted thought signature", NULL);

    /* the history's shape */
    expect(post("gm", path,
                "{'contents':[" GM_ASK ",{'role':'model','parts':[{'functionCall':{'name':"
                "'get_weather','args':{}}}]}," GM_RESULT("get_time") "]," GM_TOOLS "}",
                NULL),
           400, "names no function call", NULL);
    expect(post("gm", path,
                "{'contents':[" GM_ASK ",{'role':'model','parts':[{'functionCall':{'name':"
                "'get_weather','args':{}}},{'functionCall':{'name':'get_weather','args':{}}}]}"
                "," GM_RESULT("get_weather") "]," GM_TOOLS "}",
                NULL),
           400, "number of function response parts is equal", NULL);
    expect(post("gm", path,
                "{'contents':[" GM_ASK ",{'role':'model','parts':[{'functionCall':{'name':"
                "'get_weather','args':{}}}]},{'role':'function','parts':[{'functionResponse':"
                "{'name':'get_weather','response':{}}}]}]," GM_TOOLS "}",
                NULL),
           400, "Please use a valid role: user, model.", NULL);

    /* streamed, "parallel": one event a part, the last with the finish and the usage */
    st = post("gm", "/v1beta/models/gem:streamGenerateContent?alt=sse",
              "{'contents':[{'role':'user','parts':[{'text':'in parallel'}]}]," GM_TOOLS "}",
              NULL);
    expect(st, 200,
           "\"args\":{\"city\":\"Rome\",\"days\":1}}}],\"role\":\"model\"},"
           "\"finishReason\":\"STOP\"",
           "\"usageMetadata\":{\"promptTokenCount\":", "\r\n\r\n", NULL);
    int events = 0;
    for (const char *p = answer; (p = strstr(p, "data: ")); p++)
        events++;
    assert_int_equal(events, 2); /* one a call */

    /* Code Assist: the model from the body, each event in {"response": ...} */
    st = post("ag", "/v1internal:streamGenerateContent?alt=sse",
              "{'model':'gemini-2.5-pro','project':'p','request':{'contents':[" GM_ASK
              "]," GM_TOOLS "}}",
              NULL);
    expect(st, 200,
           "data: {\"response\":{\"candidates\":", "\"modelVersion\":\"gemini-2.5-pro\"",
           "\"functionCall\"", NULL);
    st = post("ag", "/v1internal:streamGenerateContent",
              "{'model':'gemini-2.5-pro','project':'p','request':{'contents':[" GM_ASK "]}}",
              NULL);
    expect(st, 200, "[{\"response\":{\"candidates\":", NULL);
    st = post("ag", "/v1internal:generateContent",
              "{'model':'gemini-2.5-pro','project':'p','request':{'contents':[" GM_ASK
              "]," GM_PARAMS(",'$ref':'#/x'") "}}",
              NULL);
    expect(st, 400, "Unknown name \\\"$ref\\\"", NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_anthropic),
        cmocka_unit_test(test_gemini),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
