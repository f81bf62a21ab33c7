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
#include "rotad_harness.h"
#include "seqlock.h"
#include "table.h"

static pid_t mock_pid, worker_pid;
static int mock_port, worker_port;
static char worker_log[256];

#define KEY_A "sk-pool-team-a-secret"
#define KEY_B "sk-pool-team-b-secret"

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
    fputs("{\"tokens_per_call\": 50, \"accounts\": ["
          "{\"key\": \"sk-it-oa1-secret\", \"provider\": \"openai\", \"name\": \"oa-1\"},"
          "{\"key\": \"sk-it-an1-secret\", \"provider\": \"anthropic\", \"name\": \"an-1\"},"
          "{\"key\": \"sk-it-gm1-secret\", \"provider\": \"gemini\", \"name\": \"gm-1\"}]}",
          f);
    fclose(f);
    snprintf(bin, sizeof(bin), "%s/tools/rota-mockprovider/rota-mockprovider", it_bin());
    char *argv[] = {bin, "--config", conf, "--port", "0", NULL};
    mock_pid = spawn(argv, NULL, &mock_port);
}

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
    setenv("ROTA_IT_OA1", "sk-it-oa1-secret", 1);
    setenv("ROTA_IT_AN1", "sk-it-an1-secret", 1);
    setenv("ROTA_IT_GM1", "sk-it-gm1-secret", 1);
    char a[65], b[65], ks[1024] = "", cfg[4096];
    hex_sha(KEY_A, a);
    hex_sha(KEY_B, b);
    if (keys)
        snprintf(ks, sizeof(ks),
                 "  keys:\n"
                 "    - {name: team-a, sha256: %s, routes: [chat-model, gem]}\n"
                 "    - {name: team-b, sha256: %s, routes: [claude], rpm: 2}\n",
                 a, b);
    snprintf(cfg, sizeof(cfg),
             "instance: %s\nstate_dir: %s/state\nproviders:\n"
             "  - name: oa\n    kind: openai\n    base_url: http://127.0.0.1:%d\n"
             "    probe: {enabled: false}\n"
             "    accounts:\n      - {name: oa-1, credential: env:ROTA_IT_OA1}\n"
             "  - name: an\n    kind: anthropic\n    auth: x-api-key\n"
             "    probe: {enabled: false}\n    base_url: http://127.0.0.1:%d\n"
             "    accounts:\n      - {name: an-1, credential: env:ROTA_IT_AN1}\n"
             "  - name: gm\n    kind: gemini\n    auth: x-goog-api-key\n"
             "    probe: {enabled: false}\n    base_url: http://127.0.0.1:%d\n"
             "    accounts:\n      - {name: gm-1, credential: env:ROTA_IT_GM1}\n"
             "routes:\n"
             "  - name: chat\n    models: [chat-model]\n    tiers:\n"
             "      - {provider: oa, model: gpt-a}\n"
             "  - name: claude\n    models: [claude-model]\n    tiers:\n"
             "      - {provider: an, model: claude-up}\n"
             "  - name: gem\n    models: [gem-model]\n    tiers:\n"
             "      - {provider: gm, model: gem-up}\n"
             "workers:\n  listen: [{unix: %s/pool.sock}]\n%s",
             t->instance, t->dir, mock_port, mock_port, mock_port, t->dir, ks);
    it_config_text(t, cfg);
    assert_int_equal(it_start(t), 0);
}

static void worker_start(struct it *t)
{
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/tools/rota-worker/rota-worker", it_bin());
    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", t->dir);
    char *argv[] = {bin, "-i", t->instance, "--listen", "127.0.0.1:0", "--threads", "2", NULL};
    worker_pid = spawn(argv, worker_log, &worker_port);
}

static void up(struct it *t, const char *tag, bool keys)
{
    it_init(t, tag);
    mock_start(t->dir);
    rotad_start(t, keys);
    worker_start(t);
}

static void stop_child(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    int st;
    for (int i = 0; i < 400 && waitpid(*pid, &st, WNOHANG) != *pid; i++) {
        sleep_ms(25);
        if (i == 399) {
            kill(*pid, SIGKILL);
            waitpid(*pid, &st, 0);
        }
    }
    *pid = 0;
}

static int teardown(void **state)
{
    stop_child(&worker_pid);
    stop_child(&mock_pid);
    return it_teardown(state);
}

/* curl (the CLI) with "args" against the worker, headers included: the output. */
static void pool(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pool(char *out, size_t n, const char *fmt, ...)
{
    char args[2048], cmd[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "curl -s -i --max-time 30 %s", args);
    assert_int_equal(it_sh(cmd, out, n, NULL, 0), 0);
}

static int status_of(const char *out)
{
    int st = 0;
    return sscanf(out, "HTTP/1.1 %d", &st) == 1 ? st : -1;
}

static char url[160];
static const char *at(const char *path)
{
    snprintf(url, sizeof(url), "'http://127.0.0.1:%d%s'", worker_port, path);
    return url;
}

#define CHAT_BODY                                                                              \
    "-d '{\"model\":\"chat-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
#define CLAUDE_BODY                                                                            \
    "-H 'anthropic-version: 2023-06-01' -d '{\"model\":\"claude-model\",\"max_tokens\":16,"    \
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
#define GEM_BODY "-d '{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}'"

/* The worker's log: does a line hold "text"? */
static bool log_has(const char *text)
{
    FILE *f = fopen(worker_log, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static void test_pool_keys_who_may_call(void **state)
{
    struct it *t = *state;
    up(t, "pkeys", true);
    char out[8192];
    /* no key, a wrong one: 401, in OpenAI's shape on its endpoint */
    pool(out, sizeof(out), "%s %s", at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 401);
    assert_non_null(strstr(out, "\"type\":\"authentication_error\""));
    assert_non_null(strstr(out, "{\"error\":{\"message\":"));
    pool(out, sizeof(out), "-H 'Authorization: Bearer sk-wrong' %s %s",
         at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 401);
    assert_non_null(strstr(out, "authentication_error"));
    /* ... and in Anthropic's on /v1/messages */
    pool(out, sizeof(out), "-H 'x-api-key: sk-wrong' %s %s", at("/v1/messages"), CLAUDE_BODY);
    assert_int_equal(status_of(out), 401);
    assert_non_null(
        strstr(out, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\""));
    /* a key that is the right one but for its last byte */
    pool(out, sizeof(out), "-H 'Authorization: Bearer sk-pool-team-a-secreT' %s %s",
         at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 401);
    /* the right key: 200, through each way of sending it */
    pool(out, sizeof(out), "-H 'Authorization: Bearer " KEY_A "' %s %s",
         at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 200);
    assert_non_null(strstr(out, "chat.completion"));
    pool(out, sizeof(out), "-H 'x-goog-api-key: " KEY_A "' %s %s",
         at("/v1beta/models/gem-model:generateContent"), GEM_BODY);
    assert_int_equal(status_of(out), 200);
    pool(out, sizeof(out), "%s %s", at("/v1beta/models/gem-model:generateContent?key=" KEY_A),
         GEM_BODY);
    assert_int_equal(status_of(out), 200);
    pool(out, sizeof(out), "-H 'x-api-key: " KEY_B "' %s %s", at("/v1/messages"), CLAUDE_BODY);
    assert_int_equal(status_of(out), 200);
    /* a route the key may not use: 403, each in its endpoint's shape */
    pool(out, sizeof(out), "-H 'x-api-key: " KEY_A "' %s %s", at("/v1/messages"), CLAUDE_BODY);
    assert_int_equal(status_of(out), 403);
    assert_non_null(strstr(out, "\"type\":\"permission_error\""));
    pool(out, sizeof(out), "-H 'Authorization: Bearer " KEY_B "' %s %s",
         at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 403);
    assert_non_null(strstr(out, "{\"error\":{\"message\":"));
    /* /v1/models wants a key too */
    pool(out, sizeof(out), "%s", at("/v1/models"));
    assert_int_equal(status_of(out), 401);
    pool(out, sizeof(out), "-H 'Authorization: Bearer " KEY_B "' %s", at("/v1/models"));
    assert_int_equal(status_of(out), 200);
    assert_non_null(strstr(out, "claude-model"));
    /* the client's key never reached the provider; the log names keys, never shows one */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "curl -s http://127.0.0.1:%d/_mock/stats", mock_port);
    assert_int_equal(it_sh(cmd, out, sizeof(out), NULL, 0), 0);
    assert_non_null(strstr(out, "\"foreign_credentials\":0"));
    assert_true(log_has("\"key\":\"team-a\""));
    assert_true(log_has("\"key\":\"team-b\""));
    assert_true(log_has("\"key\":null"));
    assert_false(log_has("sk-pool-team"));
    assert_false(log_has("sk-wrong"));
}

static void test_pool_keys_rpm_gives_429_with_retry_after(void **state)
{
    struct it *t = *state;
    up(t, "pkrpm", true);
    char out[8192];
    for (int i = 0; i < 2; i++) {
        pool(out, sizeof(out), "-H 'x-api-key: " KEY_B "' %s %s", at("/v1/messages"),
             CLAUDE_BODY);
        assert_int_equal(status_of(out), 200);
    }
    pool(out, sizeof(out), "-H 'x-api-key: " KEY_B "' %s %s", at("/v1/messages"), CLAUDE_BODY);
    assert_int_equal(status_of(out), 429);
    assert_non_null(strstr(out, "\"type\":\"rate_limit_error\""));
    int ra = 0;
    const char *h = strcasestr(out, "\r\nretry-after:");
    assert_non_null(h);
    assert_int_equal(sscanf(h + 14, " %d", &ra), 1);
    assert_true(ra >= 1 && ra <= 30); /* RPM 2: a request every 30 s */
    /* the limit is the key's, not the route's: team-a still gets through elsewhere */
    pool(out, sizeof(out), "-H 'Authorization: Bearer " KEY_A "' %s %s",
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
    pool(out, sizeof(out), "-H 'x-api-key: " KEY_B "' %s %s", at("/v1/messages"), CLAUDE_BODY);
    assert_int_equal(status_of(out), 429);
}

static void test_pool_keys_none_configured_is_open(void **state)
{
    struct it *t = *state;
    up(t, "pkopen", false);
    char out[8192];
    pool(out, sizeof(out), "%s %s", at("/v1/chat/completions"), CHAT_BODY);
    assert_int_equal(status_of(out), 200);
    pool(out, sizeof(out), "-H 'x-api-key: anything' %s %s", at("/v1/messages"), CLAUDE_BODY);
    assert_int_equal(status_of(out), 200);
    pool(out, sizeof(out), "%s", at("/v1/models"));
    assert_int_equal(status_of(out), 200);
    assert_true(log_has("\"key\":null"));
    assert_false(log_has("\"key\":\""));
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
        cmocka_unit_test_setup_teardown(test_pool_keys_who_may_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_keys_rpm_gives_429_with_retry_after, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_keys_none_configured_is_open, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
