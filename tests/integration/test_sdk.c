/* test_sdk: the official SDKs (openai, @anthropic-ai/sdk, @google/genai, pinned in
 * tests/sdk/package-lock.json) as the pool's clients: rota-worker between node running
 * tests/sdk/client.mjs and rota-mockprovider, with a real rotad keeping the table. The
 * SDKs never retry (maxRetries 0): what they see is what the pool answered. Chat,
 * messages and Gemini's generateContent, plain and streamed; embeddings; a 429 and 5xx
 * retried without the client knowing; errors the SDKs raise as their own typed errors
 * with the right status; a stream cut mid-way raised, never ended cleanly.
 *
 * DESIGN
 * client.mjs runs one case per node process and prints what the SDK gave its caller as
 * one JSON line; the judging is here, beside the mock's own count of what reached it.
 * The client's key goes to node in the environment; each case's output is kept in the
 * test's directory, which tools/test sweeps for keys. node_modules comes from `npm ci`
 * in tests/sdk (tools/test runs it); with no node on the host the tests skip, saying so.
 */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "pool_it.h"

#ifndef ROTA_SDK_DIR
#error "ROTA_SDK_DIR: the directory of client.mjs and its package-lock.json"
#endif

static const char client_key[] = "sk-sdk-client-own-secret";
static const struct pool_account accounts[] = {
    {"oa-1", "openai", "sk-sdk-oa1-secret"}, {"oa-2", "openai", "sk-sdk-oa2-secret"},
    {"ob-1", "openai", "sk-sdk-ob1-secret"}, {"an-1", "anthropic", "sk-sdk-an1-secret"},
    {"gm-1", "gemini", "sk-sdk-gm1-secret"},
};
#define NKEYS (sizeof(accounts) / sizeof(accounts[0]))

/* rotad over the mock's accounts: pool_routes, and "embed" over oa. */
static void rotad_start(struct it *t)
{
    char rest[2048];
    snprintf(rest, sizeof(rest),
             "%s  - name: embed\n    models: [embed-model]\n    tiers:\n"
             "      - {provider: oa, model: text-embed-up}\n",
             pool_routes);
    pool_rotad_start(t, "ROTA_SDK_", accounts, NKEYS, rest);
    /* rotad has read them; node, which the test starts next, has no need of them */
    pool_keys_unset("ROTA_SDK_", accounts, NKEYS);
}

/* Is node there to run the SDKs? Skips the test, saying why, when it is not; fails when
 * node is there but the SDKs were never installed. */
static void need_node(void)
{
    char out[256];
    if (it_sh("command -v node", out, sizeof(out), NULL, 0) != 0) {
        print_message("[  SKIPPED ] no node on this host: the SDK clients cannot run "
                      "(tools/test installs nodejs and npm)\n");
        skip();
    }
    struct stat st;
    if (stat(ROTA_SDK_DIR "/node_modules/openai/package.json", &st) != 0)
        fail_msg("the SDKs are not installed: run `npm ci` in %s (tools/test does)",
                 ROTA_SDK_DIR);
}

/* Everything a test needs: node, a mock, rotad, a worker, and node told where it is. */
static void up(struct it *t, const char *tag, const char *attempts)
{
    need_node();
    it_init(t, tag);
    pool_mock_start(t->dir, 50, accounts, NKEYS, false);
    rotad_start(t);
    pool_worker_start(t, "--attempts", attempts, NULL);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", pool_it.worker_port);
    setenv("ROTA_SDK_BASE", base, 1);
    setenv("ROTA_SDK_KEY", client_key, 1);
}

/* ---- the SDK's side ---- */

/* Does "text" hold a run of 8 bytes of any key the test gave? */
static bool key_run(const char *text)
{
    return pool_key_run(text, strlen(text), accounts, NKEYS, client_key);
}

/* Run client.mjs case "name" against the worker; what the SDK gave back (caller frees).
 * Its output is kept as <dir>/sdk-<name>-<n>.out. */
static json_t *sdk(struct it *t, const char *name)
{
    static int seq;
    char cmd[1024], out[65536], err[8192], path[256];
    snprintf(cmd, sizeof(cmd), "cd '%s' && node client.mjs %s", ROTA_SDK_DIR, name);
    int rc = it_sh(cmd, out, sizeof(out), err, sizeof(err));
    snprintf(path, sizeof(path), "%s/sdk-%s-%d.out", t->dir, name, seq++);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n--- stderr\n%s", out, err);
        fclose(f);
    }
    if (rc != 0)
        fail_msg("node client.mjs %s: exit %d\n%s\n%s", name, rc, out, err);
    size_t len = strlen(out); /* the one line is the last; warnings go to stderr */
    while (len && out[len - 1] == '\n')
        out[--len] = 0;
    char *last = strrchr(out, '\n');
    json_t *j = json_loads(last ? last + 1 : out, 0, NULL);
    if (!j)
        fail_msg("node client.mjs %s printed no JSON:\n%s\n%s", name, out, err);
    if (key_run(out))
        fail_msg("node client.mjs %s: a key reached the client:\n%s", name, out);
    return j;
}

static const char *str(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

static json_int_t num(json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

/* Fail, showing what the SDK gave, unless "cond". */
#define EXPECT(j, cond)                                                                        \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            char *d_ = json_dumps((j), JSON_COMPACT);                                          \
            fail_msg("%s: not so: %s", #cond, d_ ? d_ : "?");                                  \
        }                                                                                      \
    } while (0)

/* The SDK class (openai's and anthropic's share the names) for an error "status". */
static const char *class_for(json_int_t status)
{
    switch (status) {
    case 400:
        return "BadRequestError";
    case 401:
        return "AuthenticationError";
    case 404:
        return "NotFoundError";
    case 429:
        return "RateLimitError";
    default:
        return status >= 500 ? "InternalServerError" : "?";
    }
}

/* Is "v" (a JSON array) the mock's embedding [0.5, -0.25, 1.0]? */
static bool the_embedding(json_t *v)
{
    static const double want[] = {0.5, -0.25, 1.0};
    if (json_array_size(v) != 3)
        return false;
    for (size_t i = 0; i < 3; i++)
        if (fabs(json_number_value(json_array_get(v, i)) - want[i]) > 1e-9)
            return false;
    return true;
}

/* ---- the tests ---- */

static void test_sdk_openai(void **state)
{
    struct it t;
    up(&t, "sdk-openai", "3");
    json_t *r = sdk(&t, "openai_chat");
    json_t *u = json_object_get(r, "usage");
    EXPECT(r, strcmp(str(r, "content"), "ok") == 0);
    EXPECT(r, strcmp(str(r, "model"), "gpt-a") == 0); /* the tier's model answered */
    EXPECT(r, num(u, "prompt_tokens") == 25 && num(u, "completion_tokens") == 25 &&
                  num(u, "total_tokens") == 50);
    EXPECT(r, num(r, "status") == 200 && str(r, "request_id")[0]); /* X-Request-Id came */
    WAIT_FOR(logged(str(r, "request_id"), "\"status\":200", NULL));
    assert_true(logged(str(r, "request_id"), "\"status\":200", "\"tokens_in\":25", NULL));
    json_decref(r);
    json_t *s = mock_stats();
    assert_int_equal(json_integer_value(json_object_get(s, "foreign_credentials")), 0);
    assert_int_equal(json_integer_value(json_object_get(s, "unknown_key")), 0);
    json_decref(s);

    /* streamed: role, three pieces, finish; the usage chunk only when asked for */
    r = sdk(&t, "openai_stream");
    EXPECT(r, json_is_true(json_object_get(r, "ended")));
    EXPECT(r, strcmp(str(r, "text"), "ok0 ok1 ok2 ") == 0 && num(r, "chunks") == 5);
    EXPECT(r, num(r, "usage_chunks") == 0);
    json_decref(r);
    r = sdk(&t, "openai_stream_usage");
    u = json_object_get(r, "usage");
    EXPECT(r, json_is_true(json_object_get(r, "ended")));
    EXPECT(r, strcmp(str(r, "text"), "ok0 ok1 ok2 ") == 0 && num(r, "chunks") == 6);
    EXPECT(r, num(r, "usage_chunks") == 1 && num(u, "prompt_tokens") == 25 &&
                  num(u, "completion_tokens") == 25);
    json_decref(r);

    /* embeddings: as base64 (the SDK's default, decoded by it) and as floats */
    r = sdk(&t, "openai_embed");
    json_t *b = json_object_get(r, "base64"), *f = json_object_get(r, "float");
    EXPECT(r, json_array_size(b) == 2 && the_embedding(json_array_get(b, 0)) &&
                  the_embedding(json_array_get(b, 1)));
    EXPECT(r, json_array_size(f) == 1 && the_embedding(json_array_get(f, 0)));
    EXPECT(r, strcmp(str(r, "model"), "text-embed-up") == 0);
    EXPECT(r, num(json_object_get(r, "usage"), "prompt_tokens") == 50);
    json_decref(r);
    it_cleanup(&t);
}

/* Each refusal below cools its account down in the table for the test's remaining
 * calls: a test's steps are ordered so none finds another's cooldown in its way. */

static void test_sdk_429_invisible(void **state)
{
    struct it t;
    up(&t, "sdk-429", "3");
    /* a 429 on the first account the pool picks: the SDK sees only the 200 */
    mock_fault("match=oa-&kind=429&count=1&retry_after=30");
    json_t *r = sdk(&t, "openai_chat");
    EXPECT(r, num(r, "status") == 200 && strcmp(str(r, "content"), "ok") == 0);
    json_decref(r);
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "429") + calls_of(s, "oa-2", "429"), 1);
    assert_int_equal(calls_of(s, "oa-1", "200") + calls_of(s, "oa-2", "200"), 1);
    json_decref(s);
    mock_post("reset");

    /* a stream whose first call is refused: retried before its first byte */
    mock_fault("match=o&kind=429&count=1&retry_after=30");
    r = sdk(&t, "openai_stream");
    EXPECT(r, json_is_true(json_object_get(r, "ended")));
    EXPECT(r, strcmp(str(r, "text"), "ok0 ok1 ok2 ") == 0);
    json_decref(r);
    s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "429") + calls_of(s, "oa-2", "429") +
                         calls_of(s, "ob-1", "429"),
                     1);
    assert_int_equal(calls_of(s, "oa-1", "200") + calls_of(s, "oa-2", "200") +
                         calls_of(s, "ob-1", "200"),
                     1);
    json_decref(s);
    it_cleanup(&t);
}

static void test_sdk_5xx_through_tiers(void **state)
{
    struct it t;
    up(&t, "sdk-5xx", "3");
    /* 503 on both of tier 0's accounts: tier 1 answers, in its model */
    mock_fault("match=oa-&kind=5xx&status=503&count=2");
    json_t *r = sdk(&t, "openai_chat");
    EXPECT(r, num(r, "status") == 200 && strcmp(str(r, "model"), "gpt-b") == 0);
    json_decref(r);
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "503"), 1);
    assert_int_equal(calls_of(s, "oa-2", "503"), 1);
    assert_int_equal(calls_of(s, "ob-1", "200"), 1);
    json_decref(s);
    it_cleanup(&t);
}

static void test_sdk_errors_typed(void **state)
{
    struct it t;
    up(&t, "sdk-errors", "5");
    /* a 400 from upstream is the request's fault: passed through, not retried; the key
     * the upstream echoed never reaches the client (sdk() looks) */
    mock_fault("match=oa-&kind=echo_key&status=400&count=1");
    json_t *r = sdk(&t, "openai_chat");
    EXPECT(r,
           strcmp(str(r, "openai_class"), "BadRequestError") == 0 && num(r, "status") == 400);
    EXPECT(r, strstr(str(r, "message"), "Incorrect API key provided") != NULL);
    json_decref(r);
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "400") + calls_of(s, "oa-2", "400"), 1);
    assert_int_equal(calls_of(s, "oa-1", "200") + calls_of(s, "oa-2", "200") +
                         calls_of(s, "ob-1", "200"),
                     0);
    json_decref(s);

    /* a model no route serves: whatever the pool answers, the SDK's class for it */
    r = sdk(&t, "openai_unknown_model");
    EXPECT(r, num(r, "status") >= 400 && num(r, "status") < 500);
    EXPECT(r, strcmp(str(r, "openai_class"), class_for(num(r, "status"))) == 0);
    json_decref(r);

    /* every account refuses, the OpenAI ones and the Anthropic one the pool would
     * translate for: the pool's 429, the SDK's RateLimitError */
    mock_fault("match=o&kind=429&retry_after=60");
    mock_fault("match=an-&kind=429&retry_after=60");
    r = sdk(&t, "openai_chat");
    EXPECT(r, strcmp(str(r, "openai_class"), "RateLimitError") == 0 && num(r, "status") == 429);
    EXPECT(r, json_is_true(json_object_get(r, "openai_api_error")));
    /* when the accounts it tried may be asked again: their cooldown, at most the 60 s
     * they asked for, not the 1 s of "nothing known" */
    long ra = strtol(str(r, "retry_after"), NULL, 10);
    EXPECT(r, ra > 1 && ra <= 60);
    EXPECT(r, strstr(str(r, "message"), "tier 1: tried") != NULL); /* what was tried */
    json_decref(r);

    /* Anthropic's shape: the only tier refuses (its account still cooling down from the
     * 60 s the case above asked), the SDK's RateLimitError */
    mock_fault("match=an&kind=429&retry_after=30");
    r = sdk(&t, "anthropic_message");
    EXPECT(r,
           strcmp(str(r, "anthropic_class"), "RateLimitError") == 0 && num(r, "status") == 429);
    ra = strtol(str(r, "retry_after"), NULL, 10);
    EXPECT(r, ra > 1 && ra <= 60);
    EXPECT(r, strcmp(str(json_object_get(r, "body"), "type"), "error") == 0);
    json_decref(r);

    /* Gemini's: the SDK's ClientError, saying 429 */
    mock_fault("match=gm&kind=429&retry_after=30");
    r = sdk(&t, "gemini_generate");
    EXPECT(r, strcmp(str(r, "error"), "ClientError") == 0 && num(r, "status") == 429);
    json_decref(r);
    it_cleanup(&t);
}

static void test_sdk_anthropic(void **state)
{
    struct it t;
    up(&t, "sdk-anthropic", "3");
    json_t *r = sdk(&t, "anthropic_message");
    json_t *u = json_object_get(r, "usage");
    EXPECT(r, strcmp(str(r, "content"), "ok") == 0 && strcmp(str(r, "type"), "message") == 0);
    EXPECT(r, strcmp(str(r, "model"), "claude-up") == 0);
    EXPECT(r, num(u, "input_tokens") == 25 && num(u, "output_tokens") == 25);
    json_decref(r);

    r = sdk(&t, "anthropic_stream");
    json_t *ev = json_object_get(r, "events"), *fin = json_object_get(r, "final");
    u = json_object_get(fin, "usage");
    EXPECT(r, json_is_true(json_object_get(r, "ended")));
    EXPECT(r, num(ev, "message_start") == 1 && num(ev, "content_block_delta") == 3 &&
                  num(ev, "message_delta") == 1 && num(ev, "message_stop") == 1);
    EXPECT(r, strcmp(str(r, "text"), "ok0 ok1 ok2 ") == 0);
    EXPECT(r, strcmp(str(fin, "text"), "ok0 ok1 ok2 ") == 0 &&
                  strcmp(str(fin, "stop_reason"), "end_turn") == 0);
    EXPECT(r, num(u, "input_tokens") == 25 && num(u, "output_tokens") == 25);
    json_decref(r);
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "an-1", "200"), 2);
    assert_int_equal(json_integer_value(json_object_get(s, "foreign_credentials")), 0);
    json_decref(s);
    it_cleanup(&t);
}

static void test_sdk_stream_cut(void **state)
{
    struct it t;
    up(&t, "sdk-cut", "3");
    /* OpenAI: what came, came; then the SDK raises, and nobody retried */
    mock_fault("match=o&kind=cut&after=3");
    json_t *r = sdk(&t, "openai_stream");
    EXPECT(r, json_is_false(json_object_get(r, "ended")));
    EXPECT(r, json_is_true(json_object_get(r, "openai_api_error")));
    EXPECT(r, strncmp(str(r, "text"), "ok0 ok1", 7) == 0);
    json_decref(r);
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "200") + calls_of(s, "oa-2", "200") +
                         calls_of(s, "ob-1", "200"),
                     1);
    json_decref(s);
    /* Anthropic: the error event raises; no message_stop came */
    mock_fault("match=an&kind=cut&after=3");
    r = sdk(&t, "anthropic_stream");
    EXPECT(r, json_is_false(json_object_get(r, "ended")));
    EXPECT(r, json_is_true(json_object_get(r, "anthropic_api_error")));
    EXPECT(r, num(json_object_get(r, "events"), "message_start") == 1 &&
                  num(json_object_get(r, "events"), "message_stop") == 0);
    json_decref(r);
    it_cleanup(&t);
}

static void test_sdk_gemini(void **state)
{
    struct it t;
    up(&t, "sdk-gemini", "3");
    json_t *r = sdk(&t, "gemini_generate");
    json_t *u = json_object_get(r, "usage");
    EXPECT(r, strcmp(str(r, "text"), "ok") == 0 && strcmp(str(r, "model"), "gem-up") == 0);
    EXPECT(r, num(u, "promptTokenCount") == 25 && num(u, "candidatesTokenCount") == 25);
    json_decref(r);
    r = sdk(&t, "gemini_stream");
    u = json_object_get(r, "usage");
    EXPECT(r, json_is_true(json_object_get(r, "ended")) && num(r, "chunks") == 3);
    EXPECT(r, strcmp(str(r, "text"), "ok0 ok1 ok2 ") == 0);
    EXPECT(r, num(u, "totalTokenCount") == 50);
    json_decref(r);
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "gm-1", "200"), 2);
    json_decref(s);
    /* the stream's usage, read from its SSE events, is what the pool counted */
    WAIT_FOR(logged("streamGenerateContent", "\"tokens_out\":25", NULL));
    assert_true(logged("streamGenerateContent", "\"tokens_in\":25", "\"tokens_out\":25", NULL));
    it_cleanup(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sdk_openai, pool_teardown),
        cmocka_unit_test_teardown(test_sdk_429_invisible, pool_teardown),
        cmocka_unit_test_teardown(test_sdk_5xx_through_tiers, pool_teardown),
        cmocka_unit_test_teardown(test_sdk_errors_typed, pool_teardown),
        cmocka_unit_test_teardown(test_sdk_anthropic, pool_teardown),
        cmocka_unit_test_teardown(test_sdk_stream_cut, pool_teardown),
        cmocka_unit_test_teardown(test_sdk_gemini, pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
