/* test_pool_keys: the dispatch pool's client keys end to end: rotad publishing the
 * workers.keys of its config (SHA-256 only), rota-worker answering 401, 403 and 429 with
 * Retry-After in each endpoint's shape, letting the right key through, naming the key in
 * its access log and never showing it, and a pool without keys open to all. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "rota_int.h"
#include "pool_it.h"
#include "seqlock.h"
#include "table.h"

#define KEY_A "sk-pool-team-a-secret"
#define KEY_B "sk-pool-team-b-secret"

static const struct pool_account accounts[] = {
    {"oa-1", "openai", "sk-it-oa1-secret"},
    {"an-1", "anthropic", "sk-it-an1-secret"},
    {"gm-1", "gemini", "sk-it-gm1-secret"},
};

/* The key's SHA-256 as the config holds it: 64 hex digits. */
static void hex_sha(const char *key, char out[65])
{
    uint8_t h[32];
    assert_int_equal(rota_client_key_hash(key, strlen(key), h), 0);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* rotad over the mock: route "chat" (model chat-model) on an OpenAI account, "claude"
 * (claude-model) on an Anthropic one, "gem" (gem-model) on a Gemini one. With "keys":
 * team-a may use chat (named by its model) and gem, team-b claude alone, 2 a minute. */
static void rotad_start(struct it *t, bool keys)
{
    char a[65], b[65], ks[1024] = "", rest[2048];
    hex_sha(KEY_A, a);
    hex_sha(KEY_B, b);
    if (keys)
        snprintf(ks, sizeof(ks),
                 "  keys:\n"
                 "    - {name: team-a, sha256: %s, routes: [chat-model, gem]}\n"
                 "    - {name: team-b, sha256: %s, routes: [claude], rpm: 2}\n",
                 a, b);
    snprintf(rest, sizeof(rest),
             "routes:\n"
             "  - name: chat\n    models: [chat-model]\n    tiers:\n"
             "      - {provider: oa, model: gpt-a}\n"
             "  - name: claude\n    models: [claude-model]\n    tiers:\n"
             "      - {provider: an, model: claude-up}\n"
             "  - name: gem\n    models: [gem-model]\n    tiers:\n"
             "      - {provider: gm, model: gem-up}\n"
             "workers:\n  listen: [{unix: %s/pool.sock}]\n%s",
             t->dir, ks);
    pool_rotad_start(t, "ROTA_IT_", accounts, 3, rest);
}

static void up(struct it *t, const char *tag, bool keys)
{
    it_init(t, tag);
    pool_mock_start(t->dir, 50, accounts, 3, false);
    rotad_start(t, keys);
    pool_worker_start(t, NULL);
}

/* curl (the CLI) with "args" against the worker, headers included: the output. */
static void pool_i(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pool_i(char *out, size_t n, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    assert_int_equal(pool(out, n, "-i %s", args), 0);
}

static int status_of(const char *out)
{
    int st = 0;
    return sscanf(out, "HTTP/1.1 %d", &st) == 1 ? st : -1;
}

#define CHAT_BODY                                                                              \
    "-d '{\"model\":\"chat-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
#define CLAUDE_BODY                                                                            \
    "-H 'anthropic-version: 2023-06-01' -d '{\"model\":\"claude-model\",\"max_tokens\":16,"    \
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
#define GEM_BODY "-d '{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}'"

static void test_pool_keys_who_may_call(void **state)
{
    struct it *t = *state;
    up(t, "pkeys", true);
    char out[8192];
    /* no key, a wrong one: 401, in OpenAI's shape on its endpoint */
    pool_i(out, sizeof(out), "%s %s", at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 401);
    assert_non_null(strstr(out, "\"type\":\"authentication_error\""));
    assert_non_null(strstr(out, "{\"error\":{\"message\":"));
    pool_i(out, sizeof(out), "-H 'Authorization: Bearer sk-wrong' %s %s",
           at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 401);
    assert_non_null(strstr(out, "authentication_error"));
    /* ... and in Anthropic's on /v1/messages */
    pool_i(out, sizeof(out), "-H 'x-api-key: sk-wrong' %s %s", at("/v1/messages"), CLAUDE_BODY);
    assert_int_equal(status_of(out), 401);
    assert_non_null(
        strstr(out, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\""));
    /* a key that is the right one but for its last byte */
    pool_i(out, sizeof(out), "-H 'Authorization: Bearer sk-pool-team-a-secreT' %s %s",
           at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 401);
    /* the right key: 200, through each way of sending it */
    pool_i(out, sizeof(out), "-H 'Authorization: Bearer " KEY_A "' %s %s",
           at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 200);
    assert_non_null(strstr(out, "chat.completion"));
    pool_i(out, sizeof(out), "-H 'x-goog-api-key: " KEY_A "' %s %s",
           at("/v1beta/models/gem-model:generateContent"), GEM_BODY);
    assert_int_equal(status_of(out), 200);
    pool_i(out, sizeof(out), "%s %s", at("/v1beta/models/gem-model:generateContent?key=" KEY_A),
           GEM_BODY);
    assert_int_equal(status_of(out), 200);
    pool_i(out, sizeof(out), "-H 'x-api-key: " KEY_B "' %s %s", at("/v1/messages"),
           CLAUDE_BODY);
    assert_int_equal(status_of(out), 200);
    /* a route the key may not use: 403, each in its endpoint's shape */
    pool_i(out, sizeof(out), "-H 'x-api-key: " KEY_A "' %s %s", at("/v1/messages"),
           CLAUDE_BODY);
    assert_int_equal(status_of(out), 403);
    assert_non_null(strstr(out, "\"type\":\"permission_error\""));
    pool_i(out, sizeof(out), "-H 'Authorization: Bearer " KEY_B "' %s %s",
           at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 403);
    assert_non_null(strstr(out, "{\"error\":{\"message\":"));
    /* /v1/models wants a key too */
    pool_i(out, sizeof(out), "%s", at("/v1/models"));
    assert_int_equal(status_of(out), 401);
    pool_i(out, sizeof(out), "-H 'Authorization: Bearer " KEY_B "' %s", at("/v1/models"));
    assert_int_equal(status_of(out), 200);
    assert_non_null(strstr(out, "claude-model"));
    /* no key is refused on the head: no "100 Continue", none of the body asked for */
    char big[256];
    snprintf(big, sizeof(big), "%s/big.json", t->dir);
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    for (int i = 0; i < 4 << 20; i++)
        fputc('x', f);
    fclose(f);
    pool_i(out, sizeof(out), "-H 'Expect: 100-continue' --data-binary @%s %s", big,
           at("/v1/chat/completions"));
    assert_int_equal(status_of(out), 401);
    assert_null(strstr(out, "100 Continue"));
    assert_non_null(strstr(out, "authentication_error"));
    /* the client's key never reached the provider; the log names keys, never shows one */
    mock_ctl(false, "GET", "/_mock/stats", out, sizeof(out));
    assert_non_null(strstr(out, "\"foreign_credentials\":0"));
    assert_true(logged("\"key\":\"team-a\"", NULL));
    assert_true(logged("\"key\":\"team-b\"", NULL));
    assert_true(logged("\"key\":null", NULL));
    assert_false(logged("sk-pool-team", NULL));
    assert_false(logged("sk-wrong", NULL));
}

static void test_pool_keys_rpm_gives_429_with_retry_after(void **state)
{
    struct it *t = *state;
    up(t, "pkrpm", true);
    char out[8192];
    for (int i = 0; i < 2; i++) {
        pool_i(out, sizeof(out), "-H 'x-api-key: " KEY_B "' %s %s", at("/v1/messages"),
               CLAUDE_BODY);
        assert_int_equal(status_of(out), 200);
    }
    pool_i(out, sizeof(out), "-H 'x-api-key: " KEY_B "' %s %s", at("/v1/messages"),
           CLAUDE_BODY);
    assert_int_equal(status_of(out), 429);
    assert_non_null(strstr(out, "\"type\":\"rate_limit_error\""));
    int ra = 0;
    const char *h = strcasestr(out, "\r\nretry-after:");
    assert_non_null(h);
    assert_int_equal(sscanf(h + 14, " %d", &ra), 1);
    assert_true(ra >= 1 && ra <= 30); /* RPM 2: a request every 30 s */
    /* the limit is the key's, not the route's: team-a still gets through elsewhere */
    pool_i(out, sizeof(out), "-H 'Authorization: Bearer " KEY_A "' %s %s",
           at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 200);
    /* the table counts what the key did */
    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(t->instance, &m, NULL, 0), 0);
    assert_int_equal(m.nckeys, 2);
    uint8_t hb[32];
    assert_int_equal(rota_client_key_hash(KEY_B, strlen(KEY_B), hb), 0);
    uint32_t k = rota_shm_ckey_find(&m, hb);
    assert_int_not_equal(k, ROTA_NONE);
    assert_int_equal(rota_load(&m.khot[k].admitted), 2);
    assert_int_equal(rota_load(&m.khot[k].limited), 1);
    rota_shm_detach(&m);
    /* a reload keeps the key's minute: still 429 */
    assert_int_equal(it_rotactl(t, "reload", out, sizeof(out)), 0);
    for (int i = 0; i < 100; i++) {
        struct rota_shm_map n;
        uint64_t g = 0;
        if (rota_shm_attach(t->instance, &n, NULL, 0) == 0) {
            g = n.hdr->generation;
            rota_shm_detach(&n);
        }
        if (g > 1)
            break;
        sleep_ms(50);
    }
    pool_i(out, sizeof(out), "-H 'x-api-key: " KEY_B "' %s %s", at("/v1/messages"),
           CLAUDE_BODY);
    assert_int_equal(status_of(out), 429);
}

static void test_pool_keys_none_configured_is_open(void **state)
{
    struct it *t = *state;
    up(t, "pkopen", false);
    char out[8192];
    pool_i(out, sizeof(out), "%s %s", at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 200);
    pool_i(out, sizeof(out), "-H 'x-api-key: anything' %s %s", at("/v1/messages"), CLAUDE_BODY);
    assert_int_equal(status_of(out), 200);
    pool_i(out, sizeof(out), "%s", at("/v1/models"));
    assert_int_equal(status_of(out), 200);
    assert_true(logged("\"key\":null", NULL));
    assert_false(logged("\"key\":\"", NULL));
}

static int setup(void **state)
{
    static struct it t;
    memset(&t, 0, sizeof(t));
    *state = &t;
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_keys_who_may_call, setup, pool_teardown),
        cmocka_unit_test_setup_teardown(test_pool_keys_rpm_gives_429_with_retry_after, setup,
                                        pool_teardown),
        cmocka_unit_test_setup_teardown(test_pool_keys_none_configured_is_open, setup,
                                        pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
