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

#include "rotad_harness.h"

#ifndef ROTA_SDK_DIR
#error "ROTA_SDK_DIR: the directory of client.mjs and its package-lock.json"
#endif

static const char client_key[] = "sk-sdk-client-own-secret";
static const char *const provider_keys[][2] = {
    {"ROTA_SDK_OA1", "sk-sdk-oa1-secret"}, {"ROTA_SDK_OA2", "sk-sdk-oa2-secret"},
    {"ROTA_SDK_OB1", "sk-sdk-ob1-secret"}, {"ROTA_SDK_AN1", "sk-sdk-an1-secret"},
    {"ROTA_SDK_GM1", "sk-sdk-gm1-secret"},
};
#define NKEYS (sizeof(provider_keys) / sizeof(provider_keys[0]))

static pid_t mock_pid, worker_pid;
static int mock_port, worker_port;
static char worker_log[256];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Run "argv", its first stdout line parsed for the port; stderr to "log". */
static pid_t spawn(char *const argv[], const char *log, int *port)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    FILE *r = fdopen(out[0], "r");
    char line[160] = "";
    assert_non_null(fgets(line, sizeof(line), r));
    assert_int_equal(sscanf(line, "listening on 127.0.0.1:%d", port), 1);
    fclose(r);
    return pid;
}

static void mock_start(const char *dir)
{
    char conf[256], bin[512];
    snprintf(conf, sizeof(conf), "%s/mock.json", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    static const char *const acct[NKEYS][2] = {{"openai", "oa-1"},
                                               {"openai", "oa-2"},
                                               {"openai", "ob-1"},
                                               {"anthropic", "an-1"},
                                               {"gemini", "gm-1"}};
    fputs("{\"tokens_per_call\": 50, \"accounts\": [", f);
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(f, "%s{\"key\": \"%s\", \"provider\": \"%s\", \"name\": \"%s\"}", i ? "," : "",
                provider_keys[i][1], acct[i][0], acct[i][1]);
    fputs("]}", f);
    fclose(f);
    snprintf(bin, sizeof(bin), "%s/tools/rota-mockprovider/rota-mockprovider", it_bin());
    char *argv[] = {bin, "--config", conf, "--port", "0", NULL};
    mock_pid = spawn(argv, NULL, &mock_port);
}

/* rotad over the mock's accounts: route "chat" over oa (two accounts, model gpt-a), ob
 * (gpt-b) and an (anthropic); "claude" over an; "gem" over gm; "embed" over oa. */
static void rotad_start(struct it *t)
{
    for (size_t i = 0; i < NKEYS; i++)
        setenv(provider_keys[i][0], provider_keys[i][1], 1);
    char cfg[4096];
    int p = mock_port;
    snprintf(cfg, sizeof(cfg),
             "instance: %s\nstate_dir: %s/state\nproviders:\n"
             "  - name: oa\n    kind: openai\n    base_url: http://127.0.0.1:%d\n"
             "    probe: {enabled: false}\n"
             "    accounts:\n      - {name: oa-1, credential: env:ROTA_SDK_OA1}\n"
             "      - {name: oa-2, credential: env:ROTA_SDK_OA2}\n"
             "  - name: ob\n    kind: openai\n    base_url: http://127.0.0.1:%d\n"
             "    probe: {enabled: false}\n"
             "    accounts:\n      - {name: ob-1, credential: env:ROTA_SDK_OB1}\n"
             "  - name: an\n    kind: anthropic\n    auth: x-api-key\n"
             "    probe: {enabled: false}\n    base_url: http://127.0.0.1:%d\n"
             "    accounts:\n      - {name: an-1, credential: env:ROTA_SDK_AN1}\n"
             "  - name: gm\n    kind: gemini\n    auth: x-goog-api-key\n"
             "    probe: {enabled: false}\n    base_url: http://127.0.0.1:%d\n"
             "    accounts:\n      - {name: gm-1, credential: env:ROTA_SDK_GM1}\n"
             "routes:\n  - name: chat\n    models: [chat-model]\n    tiers:\n"
             "      - {provider: oa, strategy: round-robin, model: gpt-a}\n"
             "      - {provider: ob, model: gpt-b}\n"
             "      - {provider: an, model: claude-a}\n"
             "  - name: claude\n    models: [claude-model]\n    tiers:\n"
             "      - {provider: an, model: claude-up}\n"
             "  - name: gem\n    models: [gem-model]\n    tiers:\n"
             "      - {provider: gm, model: gem-up}\n"
             "  - name: embed\n    models: [embed-model]\n    tiers:\n"
             "      - {provider: oa, model: text-embed-up}\n",
             t->instance, t->dir, p, p, p, p);
    it_config_text(t, cfg);
    assert_int_equal(it_start(t), 0);
    /* rotad has read them; node, which the test starts next, has no need of them */
    for (size_t i = 0; i < NKEYS; i++)
        unsetenv(provider_keys[i][0]);
}

static void worker_start(struct it *t, const char *attempts)
{
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/tools/rota-worker/rota-worker", it_bin());
    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", t->dir);
    char *argv[] = {bin,         "-i", t->instance,  "--listen",       "127.0.0.1:0",
                    "--threads", "2",  "--attempts", (char *)attempts, NULL};
    worker_pid = spawn(argv, worker_log, &worker_port);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", worker_port);
    setenv("ROTA_SDK_BASE", base, 1);
    setenv("ROTA_SDK_KEY", client_key, 1);
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

/* Everything a test needs: node, a mock, rotad, a worker. */
static void up(struct it *t, const char *tag, const char *attempts)
{
    need_node();
    it_init(t, tag);
    mock_start(t->dir);
    rotad_start(t);
    worker_start(t, attempts);
}

static int stop_child(pid_t *pid)
{
    int st = -1;
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        for (int i = 0; i < 400; i++) {
            if (waitpid(*pid, &st, WNOHANG) == *pid)
                break;
            sleep_ms(25);
            if (i == 399) {
                kill(*pid, SIGKILL);
                waitpid(*pid, &st, 0);
            }
        }
    }
    *pid = 0;
    return st;
}

static int teardown(void **state)
{
    stop_child(&worker_pid);
    stop_child(&mock_pid);
    return it_teardown(state);
}

/* ---- the mock's side ---- */

static json_t *mock_stats(void)
{
    char cmd[256], out[16384];
    snprintf(cmd, sizeof(cmd), "curl -s http://127.0.0.1:%d/_mock/stats", mock_port);
    assert_int_equal(it_sh(cmd, out, sizeof(out), NULL, 0), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    return j;
}

static void mock_post(const char *what)
{
    char cmd[512], out[256];
    snprintf(cmd, sizeof(cmd), "curl -s -X POST 'http://127.0.0.1:%d/_mock/%s'", mock_port,
             what);
    assert_int_equal(it_sh(cmd, out, sizeof(out), NULL, 0), 0);
    assert_non_null(strstr(out, "\"ok\":true"));
}

static void mock_fault(const char *query)
{
    char what[400];
    snprintf(what, sizeof(what), "fault?%s", query);
    mock_post(what);
}

static int64_t calls_of(json_t *stats, const char *account, const char *status)
{
    json_t *a = json_object_get(json_object_get(stats, "accounts"), account);
    return json_integer_value(json_object_get(json_object_get(a, "status"), status));
}

/* Does the worker's access log hold a line with every one of the (NULL-ended) texts? */
static bool logged(const char *first, ...)
{
    FILE *f = fopen(worker_log, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        va_list ap;
        va_start(ap, first);
        found = true;
        for (const char *s = first; s; s = va_arg(ap, const char *))
            found &= strstr(line, s) != NULL;
        va_end(ap);
    }
    fclose(f);
    return found;
}

#define WAIT_FOR(cond)                                                                         \
    do {                                                                                       \
        for (int w_ = 0; w_ < 400 && !(cond); w_++)                                            \
            sleep_ms(50);                                                                      \
    } while (0)

/* ---- the SDK's side ---- */

/* Does "text" hold a run of 8 bytes of any key the test gave? */
static bool key_run(const char *text)
{
    size_t n = strlen(text);
    for (size_t k = 0; k <= NKEYS; k++) {
        const char *key = k < NKEYS ? provider_keys[k][1] : client_key;
        for (size_t i = 0; i + 8 <= strlen(key); i++)
            if (memmem(text, n, key + i, 8))
                return true;
    }
    return false;
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

    /* every OpenAI account refuses: the pool's 429, the SDK's RateLimitError */
    mock_fault("match=o&kind=429&retry_after=60");
    r = sdk(&t, "openai_chat");
    EXPECT(r, strcmp(str(r, "openai_class"), "RateLimitError") == 0 && num(r, "status") == 429);
    EXPECT(r, json_is_true(json_object_get(r, "openai_api_error")));
    /* when the accounts it tried may be asked again: their cooldown, at most the 60 s
     * they asked for, not the 1 s of "nothing known" */
    long ra = strtol(str(r, "retry_after"), NULL, 10);
    EXPECT(r, ra > 1 && ra <= 60);
    EXPECT(r, strstr(str(r, "message"), "tier 1: tried") != NULL); /* what was tried */
    json_decref(r);

    /* Anthropic's shape: the only tier refuses, the SDK's RateLimitError */
    mock_fault("match=an&kind=429&retry_after=30");
    r = sdk(&t, "anthropic_message");
    EXPECT(r,
           strcmp(str(r, "anthropic_class"), "RateLimitError") == 0 && num(r, "status") == 429);
    ra = strtol(str(r, "retry_after"), NULL, 10);
    EXPECT(r, ra > 1 && ra <= 30);
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
        cmocka_unit_test_teardown(test_sdk_openai, teardown),
        cmocka_unit_test_teardown(test_sdk_429_invisible, teardown),
        cmocka_unit_test_teardown(test_sdk_5xx_through_tiers, teardown),
        cmocka_unit_test_teardown(test_sdk_errors_typed, teardown),
        cmocka_unit_test_teardown(test_sdk_anthropic, teardown),
        cmocka_unit_test_teardown(test_sdk_stream_cut, teardown),
        cmocka_unit_test_teardown(test_sdk_gemini, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
