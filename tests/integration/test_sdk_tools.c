/* test_sdk_tools: tool-use conversations of the official SDKs (openai's chat completions
 * and Responses, @anthropic-ai/sdk, @google/genai, pinned in tests/sdk/package-lock.json)
 * through the pool to rota-mockprovider's scripted tool-using model, with a real rotad
 * keeping the table.
 * Each row of the table below is one client.mjs case (a conversation of three turns and
 * four requests: a call, its result and a text, two parallel calls, their results and a
 * text; plain or streamed; with thinking or without) sent to one route, whose one tier
 * is one account of the mock. Judged: the calls the SDK saw per request are exactly the
 * mock's (names and arguments), the texts quote the tool results the SDK sent back
 * (they reached the mock intact), each request's usage is what the mock counted for
 * it, and the mock answered the account four times, all 200. Thinking rows also want
 * the thought back each turn, and Gemini's signature on each answer's first call.
 *
 * Rows that cross formats (a client of one format, a tier of another) go through the
 * pool's translation (workers/xlate.h) both ways.
 *
 * DESIGN
 * The mock, rotad and the worker are started once for the group (routes via-PROVIDER,
 * one per account); each row resets the mock's counts and runs one node process. The
 * client's key goes to node in the environment; each case's output is kept in the
 * group's directory. With no node on the host every row skips.
 */
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

#ifndef ROTA_SDK_DIR
#error "ROTA_SDK_DIR: the directory of client.mjs and its package-lock.json"
#endif

static const char client_key[] = "sk-xt-client-own-secret";
static const struct pool_account accounts[] = {
    {"oa-1", "openai", "sk-xt-oa1-secret"},         {"an-1", "anthropic", "sk-xt-an1-secret"},
    {"gm-1", "gemini", "sk-xt-gm1-secret"},         {"ag-1", "antigravity", "sk-xt-ag1-secret"},
    {"cp-1", "github-copilot", "sk-xt-cp1-secret"}, {"or-1", "openrouter", "sk-xt-or1-secret"},
    {"ll-1", "llamacpp", "sk-xt-ll1-secret"},       {"gh-1", "github", "sk-xt-gh1-secret"},
};
#define NKEYS (sizeof(accounts) / sizeof(accounts[0]))

/* Route via-PROVIDER, asked for as model tools-PROVIDER: its one tier, that provider's
 * one account, and the model it sends. */
static const char routes[] = "routes:\n"
                             "  - {name: via-oa, models: [tools-oa], tiers: [{provider: oa, "
                             "model: gpt-tools}]}\n"
                             "  - {name: via-an, models: [tools-an], tiers: [{provider: an, "
                             "model: claude-tools}]}\n"
                             "  - {name: via-gm, models: [tools-gm], tiers: [{provider: gm, "
                             "model: gem-tools}]}\n"
                             "  - {name: via-ag, models: [tools-ag], tiers: [{provider: ag, "
                             "model: gemini-2.5-pro}]}\n"
                             "  - {name: via-cp, models: [tools-cp], tiers: [{provider: cp, "
                             "model: gpt-copilot}]}\n"
                             "  - {name: via-or, models: [tools-or], tiers: [{provider: or, "
                             "model: openai/gpt-tools}]}\n"
                             "  - {name: via-ll, models: [tools-ll], tiers: [{provider: ll}]}\n"
                             "  - {name: via-gh, models: [tools-gh], tiers: [{provider: gh, "
                             "model: openai/gpt-4.1}]}\n";

/* Wire formats: OpenAI's chat completions, its Responses, Anthropic's messages, Gemini's
 * generateContent, Code Assist's envelope around it. */
enum fmt { OPENAI, RESPONSES, ANTHROPIC, GEMINI, CODE_ASSIST };

/* One conversation: a client.mjs case through the route of model "model", whose tier is
 * the mock's account "account" speaking "tier". */
struct row {
    const char *client; /* client.mjs case */
    const char *model;  /* the client's model: the route */
    const char *account;
    enum fmt tier;
};

static const struct row rows[] = {
    /* the same format end to end */
    {"openai_tools", "tools-oa", "oa-1", OPENAI},
    {"openai_tools_stream", "tools-oa", "oa-1", OPENAI},
    {"openai_tools", "tools-cp", "cp-1", OPENAI},
    {"openai_tools_stream", "tools-cp", "cp-1", OPENAI},
    {"openai_tools", "tools-or", "or-1", OPENAI},
    {"openai_tools_stream", "tools-or", "or-1", OPENAI},
    {"openai_tools", "tools-ll", "ll-1", OPENAI},
    {"openai_tools_stream", "tools-ll", "ll-1", OPENAI},
    {"openai_tools_stream", "tools-gh", "gh-1", OPENAI},
    {"responses_tools", "tools-oa", "oa-1", RESPONSES}, /* OpenAI serves both */
    {"responses_tools_stream", "tools-oa", "oa-1", RESPONSES},
    {"anthropic_tools", "tools-an", "an-1", ANTHROPIC},
    {"anthropic_tools_stream", "tools-an", "an-1", ANTHROPIC},
    {"anthropic_tools_thinking", "tools-an", "an-1", ANTHROPIC},
    {"anthropic_tools_thinking_stream", "tools-an", "an-1", ANTHROPIC},
    {"gemini_tools", "tools-gm", "gm-1", GEMINI},
    {"gemini_tools_stream", "tools-gm", "gm-1", GEMINI},
    {"gemini_tools_thinking", "tools-gm", "gm-1", GEMINI},
    {"gemini_tools_thinking_stream", "tools-gm", "gm-1", GEMINI},
    /* across formats: translated by the pool */
    {"openai_tools", "tools-ag", "ag-1", CODE_ASSIST},
    {"openai_tools_stream", "tools-ag", "ag-1", CODE_ASSIST},
    {"openai_tools", "tools-an", "an-1", ANTHROPIC},
    {"openai_tools_stream", "tools-an", "an-1", ANTHROPIC},
    {"openai_tools", "tools-gm", "gm-1", GEMINI},
    {"openai_tools_stream", "tools-gm", "gm-1", GEMINI},
    {"anthropic_tools", "tools-oa", "oa-1", OPENAI},
    {"anthropic_tools_stream", "tools-oa", "oa-1", OPENAI},
    {"anthropic_tools_stream", "tools-ll", "ll-1", OPENAI},
    {"anthropic_tools", "tools-ag", "ag-1", CODE_ASSIST},
    {"anthropic_tools_thinking", "tools-gm", "gm-1", GEMINI},
    {"anthropic_tools_thinking_stream", "tools-ag", "ag-1", CODE_ASSIST},
    {"gemini_tools", "tools-oa", "oa-1", OPENAI},
    {"gemini_tools_stream", "tools-cp", "cp-1", OPENAI},
    {"gemini_tools", "tools-an", "an-1", ANTHROPIC},
    {"gemini_tools_thinking_stream", "tools-an", "an-1", ANTHROPIC},
    {"gemini_tools_thinking", "tools-ag", "ag-1", CODE_ASSIST},
    {"responses_tools", "tools-an", "an-1", ANTHROPIC},
    {"responses_tools_stream", "tools-gm", "gm-1", GEMINI},
    {"responses_tools_stream", "tools-ll", "ll-1", OPENAI},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static enum fmt client_fmt(const struct row *w)
{
    static const struct {
        const char *prefix;
        enum fmt f;
    } f[] = {{"openai", OPENAI}, {"responses", RESPONSES}, {"anthropic", ANTHROPIC}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (strncmp(w->client, f[i].prefix, strlen(f[i].prefix)) == 0)
            return f[i].f;
    return GEMINI;
}

/* ---- the group: one mock, one rotad, one worker ---- */

static struct it group;
static bool have_node;

static int group_setup(void **state)
{
    (void)state;
    char out[256];
    struct stat st;
    have_node = it_sh("command -v node", out, sizeof(out), NULL, 0) == 0;
    if (!have_node)
        return 0;
    if (stat(ROTA_SDK_DIR "/node_modules/openai/package.json", &st) != 0) {
        fprintf(stderr,
                "test_sdk_tools: the SDKs are not installed: run `npm ci` in %s "
                "(tools/test does)\n",
                ROTA_SDK_DIR);
        return -1;
    }
    it_init(&group, "sdk-tools");
    pool_mock_start(group.dir, 50, accounts, NKEYS, false);
    pool_rotad_start(&group, "ROTA_TOOLS_", accounts, NKEYS, routes);
    pool_keys_unset("ROTA_TOOLS_", accounts, NKEYS); /* node has no need of them */
    pool_worker_start(&group, "--attempts", "2", NULL);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", pool_it.worker_port);
    setenv("ROTA_SDK_BASE", base, 1);
    setenv("ROTA_SDK_KEY", client_key, 1);
    return 0;
}

static int group_teardown(void **state)
{
    return have_node ? pool_teardown(state) : 0;
}

/* ---- the SDK's side ---- */

/* Run client.mjs case "name" against the worker: what the SDK gave back (caller frees),
 * kept as <dir>/tools-<name>-<n>.out. */
static json_t *sdk(const char *name)
{
    static int seq;
    char cmd[1024], out[65536], err[8192], path[256];
    snprintf(cmd, sizeof(cmd), "cd '%s' && node client.mjs %s", ROTA_SDK_DIR, name);
    int rc = it_sh(cmd, out, sizeof(out), err, sizeof(err));
    snprintf(path, sizeof(path), "%s/tools-%s-%d.out", group.dir, name, seq++);
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
    if (pool_key_run(out, strlen(out), accounts, NKEYS, client_key))
        fail_msg("node client.mjs %s: a key reached the client:\n%s", name, out);
    return j;
}

/* Fail, showing what the SDK gave, unless "cond". */
#define EXPECT(j, cond)                                                                        \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            char *d_ = json_dumps((j), JSON_COMPACT);                                          \
            fail_msg("%s: not so: %s", #cond, d_ ? d_ : "?");                                  \
        }                                                                                      \
    } while (0)

static json_int_t num(const json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

static const char *str(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

/* Are "calls" ([{name, args}]) the mock's calls of request "turn" (0..3)? */
static bool the_calls(const json_t *calls, int turn)
{
#define PARIS "{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\",\"days\":2}}"
#define ROME  "{\"name\":\"get_weather\",\"args\":{\"city\":\"Rome\",\"days\":1}}"
    static const char *const want[4] = {"[" PARIS "]", "[]", "[" PARIS "," ROME "]", "[]"};
    json_t *w = json_loads(want[turn], 0, NULL);
    bool same = json_equal(w, (json_t *)calls);
    json_decref(w);
    return same;
}

/* ---- a row ---- */

static void conversation(void **state)
{
    const struct row *w = *state;
    if (!have_node) {
        print_message("[  SKIPPED ] no node on this host: the SDK clients cannot run "
                      "(tools/test installs nodejs and npm)\n");
        skip();
    }
    mock_post("reset");
    setenv("ROTA_SDK_MODEL", w->model, 1);
    json_t *r = sdk(w->client);
    json_t *turns = json_object_get(r, "turns");
    EXPECT(r, json_is_true(json_object_get(r, "ended")) && !json_object_get(r, "error"));
    EXPECT(r, json_array_size(turns) == 4);

    /* the calls are the mock's; the texts quote the results the SDK sent back */
    for (int i = 0; i < 4; i++)
        EXPECT(r, the_calls(json_object_get(json_array_get(turns, (size_t)i), "calls"), i));
    const char *t1 = str(json_array_get(turns, 1), "text");
    const char *t3 = str(json_array_get(turns, 3), "text");
    EXPECT(r, strncmp(t1, "weather: ", 9) == 0 && strstr(t1, "sunny in Paris for 2 days"));
    EXPECT(r, strncmp(t3, "weather: ", 9) == 0 && strstr(t3, "sunny in Paris for 2 days") &&
                  strstr(t3, "sunny in Rome for 1 days"));

    /* each request's usage is what the mock counted for it, and nothing else came */
    json_t *s = mock_stats();
    json_t *acct = json_object_get(json_object_get(s, "accounts"), w->account);
    json_t *counted = json_object_get(acct, "usage");
    EXPECT(s, calls_of(s, w->account, "200") == 4 && num(acct, "calls") == 4);
    EXPECT(s, json_array_size(counted) == 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *u = json_object_get(json_array_get(turns, i), "usage");
        json_t *m = json_array_get(counted, i);
        EXPECT(r, num(u, "in") == num(m, "in") && num(u, "out") == num(m, "out"));
        if (client_fmt(w) == GEMINI && (w->tier == GEMINI || w->tier == CODE_ASSIST))
            EXPECT(r, num(u, "thoughts") == num(m, "thoughts"));
    }
    json_decref(s);

    /* thinking, end to end in one format: the thought each time, signed calls */
    if (strstr(w->client, "thinking") && client_fmt(w) == w->tier)
        for (size_t i = 0; i < 4; i++) {
            json_t *turn = json_array_get(turns, i);
            EXPECT(r, num(turn, "thoughts") == 1);
            if (w->tier == GEMINI)
                EXPECT(r, num(turn, "signatures") == (i % 2 == 0));
        }
    json_decref(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    static char names[NROWS][96];
    static struct CMUnitTest tests[NROWS];
    for (size_t i = 0; i < NROWS; i++) {
        snprintf(names[i], sizeof(names[i]), "%s via %s", rows[i].client, rows[i].model);
        tests[i] = (struct CMUnitTest){
            .name = names[i], .test_func = conversation, .initial_state = (void *)&rows[i]};
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
