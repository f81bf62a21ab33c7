/* test_probes: rotad's probe thread against rota-mockprovider on loopback: quotas appear
 * in the table from each provider's own endpoint, a provider that fails makes its
 * accounts pessimistic, one that hangs stalls nobody else, and all recover; and quotas
 * read by workers in the answers they report reach the table with no probe at all. */
#include <curl/curl.h>
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

#include "rota.h"
#include "rotad_harness.h"
#include "seqlock.h"
#include "table.h"

static pid_t mock_pid;
static int mock_port;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

#define WAIT_FOR(cond)                                                                         \
    do {                                                                                       \
        for (int w_ = 0; w_ < 300 && !(cond); w_++)                                            \
            sleep_ms(50);                                                                      \
    } while (0)

static void mock_start(const char *dir)
{
    char conf[256], bin[512];
    snprintf(conf, sizeof(conf), "%s/mock.json", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs("{\"accounts\": ["
          "{\"key\": \"sk-it-or-secret\", \"provider\": \"openrouter\", \"name\": \"or-1\","
          " \"credits\": {\"limit\": 10.0, \"usage\": 2.5}},"
          "{\"key\": \"sk-it-ant-secret\", \"provider\": \"anthropic\", \"name\": \"an-1\","
          " \"limits\": {\"requests\": 50, \"tokens\": 100000, \"window\": \"1m\"}},"
          "{\"provider\": \"llamacpp\", \"name\": \"local\", \"slots\": 2}]}",
          f);
    fclose(f);
    snprintf(bin, sizeof(bin), "%s/tools/rota-mockprovider/rota-mockprovider",
             getenv("ROTA_TEST_BIN") ? getenv("ROTA_TEST_BIN") : ".");
    int out[2];
    assert_int_equal(pipe(out), 0);
    mock_pid = fork();
    if (mock_pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(bin, "rota-mockprovider", "--config", conf, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *r = fdopen(out[0], "r");
    char line[128] = "";
    assert_non_null(fgets(line, sizeof(line), r));
    assert_int_equal(sscanf(line, "listening on 127.0.0.1:%d", &mock_port), 1);
    fclose(r);
}

static void mock_stop(void)
{
    if (mock_pid > 0) {
        kill(mock_pid, SIGTERM);
        waitpid(mock_pid, NULL, 0);
    }
    mock_pid = 0;
}

static int teardown(void **state)
{
    mock_stop();
    return it_teardown(state);
}

static void mock_post(const char *path)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", mock_port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    long status = 0;
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    curl_easy_cleanup(c);
    fclose(sink);
}

/* Snapshot fields of account "name": window 0's limit and used, and the flags. */
struct seen {
    uint64_t limit, used;
    uint32_t flags;
    int64_t probe_at;
};

static bool look(struct it *t, const char *name, struct seen *s)
{
    struct rota_shm_map m;
    if (rota_shm_attach(t->instance, &m, NULL, 0) != 0)
        return false;
    bool found = false;
    for (uint32_t a = 0; a < m.naccounts; a++) {
        if (strcmp(rota_shm_str(&m, m.accounts[a].name), name) != 0)
            continue;
        struct rota_shm_snap *sn = &m.snaps[a];
        s->limit = rota_load(&sn->win[0].limit);
        s->used = rota_load(&sn->win[0].used);
        s->flags = rota_load(&sn->flags);
        s->probe_at = rota_load(&sn->probe_at);
        found = true;
    }
    rota_shm_detach(&m);
    return found;
}

static uint64_t probes_ok(struct it *t)
{
    json_t *r = it_ctl(t, "status", NULL, NULL);
    uint64_t n =
        (uint64_t)json_integer_value(json_object_get(json_object_get(r, "data"), "probes_ok"));
    json_decref(r);
    return n;
}

/* Does rotad report a failed probe for "account"? */
static bool probe_failed(struct it *t, const char *account)
{
    json_t *x = it_ctl(t, "show", account, NULL);
    bool bad = json_object_get(json_object_get(x, "data"), "probe_error") != NULL;
    json_decref(x);
    return bad;
}

static void test_probes_fill_fail_and_recover(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "probe");
    mock_start(t.dir);
    setenv("ROTA_IT_OR", "sk-it-or-secret", 1);
    setenv("ROTA_IT_ANT", "sk-it-ant-secret", 1);
    char cfg[4096];
    snprintf(cfg, sizeof(cfg),
             "instance: %s\nstate_dir: %s/state\nproviders:\n"
             "  - name: openrouter\n    kind: openrouter\n    base_url: http://127.0.0.1:%d\n"
             "    probe: {interval: 1s, jitter: 0s, timeout: 1s}\n"
             "    accounts:\n      - name: or-1\n        credential: env:ROTA_IT_OR\n"
             "        windows: [{metric: credits, limit: 0}]\n"
             "  - name: anthropic\n    kind: anthropic\n    auth: x-api-key\n"
             "    base_url: http://127.0.0.1:%d\n"
             "    probe: {interval: 1s, jitter: 0s, timeout: 1s}\n"
             "    accounts:\n      - name: an-1\n        credential: env:ROTA_IT_ANT\n"
             "        windows: [{metric: requests, limit: 0}]\n"
             "  - name: local\n    kind: llamacpp\n    auth: none\n"
             "    base_url: http://127.0.0.1:%d\n"
             "    probe: {interval: 1s, jitter: 0s, timeout: 1s}\n"
             "    accounts: [{name: local, credential: none}]\n"
             "routes:\n  - name: chat\n    tiers:\n      - {provider: openrouter}\n"
             "      - {provider: anthropic}\n      - {provider: local, ceiling: 1.0}\n",
             t.instance, t.dir, mock_port, mock_port, mock_port);
    it_config_text(&t, cfg);
    assert_int_equal(it_start(&t), 0);

    /* Within a probe interval or two: the credits and the request limit, learnt. */
    struct seen s = {0};
    WAIT_FOR(look(&t, "or-1", &s) && s.limit == 10000000);
    assert_int_equal(s.limit, 10000000); /* $10 in micro-dollars */
    assert_int_equal(s.used, 2500000);
    assert_true(s.flags & ROTA_SNAP_HAS_DATA);
    assert_true(s.probe_at > 0);
    WAIT_FOR(look(&t, "an-1", &s) && s.limit == 50);
    assert_int_equal(s.limit, 50);

    /* anthropic answers 500: its account turns pessimistic, the reason visible. */
    mock_post("/_mock/fault?match=an-1&kind=5xx&status=500&seconds=30");
    WAIT_FOR(look(&t, "an-1", &s) && (s.flags & ROTA_SNAP_PESSIMISTIC));
    assert_true(s.flags & ROTA_SNAP_PESSIMISTIC);
    json_t *r = it_ctl(&t, "show", "anthropic/an-1", NULL);
    json_t *data = json_object_get(r, "data");
    assert_string_equal(json_string_value(json_object_get(data, "pessimistic_why")),
                        "probe failed");
    assert_non_null(json_object_get(data, "probe_error"));
    json_decref(r);

    /* llama.cpp answers garbage: it too is a failed probe (pessimism needs quota data, so
     * what shows is the failure rotad keeps for `show`). */
    mock_post("/_mock/fault?match=local&kind=malformed&seconds=30");
    WAIT_FOR(probe_failed(&t, "local/local"));
    r = it_ctl(&t, "show", "local/local", NULL);
    assert_non_null(json_object_get(json_object_get(r, "data"), "probe_error"));
    json_decref(r);
    mock_post("/_mock/clear");

    /* openrouter hangs: the other probes go on meanwhile. */
    mock_post("/_mock/fault?match=or-1&kind=hang&seconds=30");
    uint64_t before = probes_ok(&t);
    WAIT_FOR(probes_ok(&t) >= before + 4);
    assert_true(probes_ok(&t) >= before + 4); /* local keeps answering every second */
    WAIT_FOR(look(&t, "or-1", &s) && (s.flags & ROTA_SNAP_PESSIMISTIC));
    assert_true(s.flags & ROTA_SNAP_PESSIMISTIC); /* timed out: pessimistic too */

    /* Faults cleared, `rotactl probe` asks at once: both recover. */
    mock_post("/_mock/clear");
    char out[4096];
    assert_int_equal(it_rotactl(&t, "probe anthropic", out, sizeof(out)), 0);
    assert_int_equal(it_rotactl(&t, "probe openrouter/or-1", out, sizeof(out)), 0);
    WAIT_FOR(look(&t, "an-1", &s) && !(s.flags & ROTA_SNAP_PESSIMISTIC));
    assert_false(s.flags & ROTA_SNAP_PESSIMISTIC);
    WAIT_FOR(look(&t, "or-1", &s) && !(s.flags & ROTA_SNAP_PESSIMISTIC));
    assert_false(s.flags & ROTA_SNAP_PESSIMISTIC);
    assert_int_equal(it_rotactl(&t, "probe nobody", out, sizeof(out)), 1);

    /* No key in the log. */
    assert_false(it_log_has(&t, "sk-it-or-secret"));
    assert_false(it_log_has(&t, "sk-it-ant-secret"));
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    mock_stop();
    it_cleanup(&t);
}

/* An exec probe whose command prints its key, then garbage, and dumps its environment:
 * the failure is logged and shown without the key, and the command never sees the other
 * account's key variable. */
static void test_probes_exec_output_redacted(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "pexec");
    setenv("ROTA_IT_EXEC_A", "tokenExecAlphaSecret", 1);
    setenv("ROTA_IT_EXEC_B", "tokenExecBetaSecret", 1);
    char cfg[4096];
    snprintf(
        cfg, sizeof(cfg),
        "instance: %s\nstate_dir: %s/state\nproviders:\n"
        "  - name: copilot\n    kind: github-copilot\n"
        "    probe: {interval: 1s, jitter: 0s, timeout: 2s, command: \"env > %s/env-$$.txt;"
        " printf '%%s garbage {' \\\"$ROTA_CREDENTIAL\\\"\"}\n"
        "    accounts:\n      - name: a\n        credential: env:ROTA_IT_EXEC_A\n"
        "        windows: [{metric: requests, limit: 100}]\n"
        "      - name: b\n        credential: env:ROTA_IT_EXEC_B\n"
        "        windows: [{metric: requests, limit: 100}]\n"
        "routes:\n  - name: chat\n    tiers:\n      - {provider: copilot}\n",
        t.instance, t.dir, t.dir);
    it_config_text(&t, cfg);
    assert_int_equal(it_start(&t), 0);
    WAIT_FOR(probe_failed(&t, "copilot/a") && probe_failed(&t, "copilot/b"));
    assert_true(probe_failed(&t, "copilot/a"));
    json_t *r = it_ctl(&t, "show", "copilot/a", NULL);
    char *text = json_dumps(r, 0);
    assert_non_null(text);
    assert_null(strstr(text, "tokenExec"));
    assert_non_null(strstr(text, "command output"));
    free(text);
    json_decref(r);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_true(it_log_has(&t, "command output"));
    assert_false(it_log_has(&t, "tokenExec"));
    /* what each command saw: its own key only */
    char cmd[512], out[8192];
    snprintf(cmd, sizeof(cmd), "cat %s/env-*.txt", t.dir);
    assert_int_equal(it_sh(cmd, out, sizeof(out), NULL, 0), 0);
    assert_non_null(strstr(out, "ROTA_CREDENTIAL=tokenExec"));
    assert_null(strstr(out, "ROTA_IT_EXEC"));
    unsetenv("ROTA_IT_EXEC_A");
    unsetenv("ROTA_IT_EXEC_B");
    it_cleanup(&t);
}

struct answer {
    char head[8192];
    size_t len;
};

static size_t keep_head(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t k = size * n;
    if (k >= 5 && strncmp(p, "HTTP/", 5) == 0)
        a->len = 0;
    if (a->len + k < sizeof(a->head)) {
        memcpy(a->head + a->len, p, k);
        a->len += k;
        a->head[a->len] = 0;
    }
    return size * n;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* A worker calls the provider itself and reports with the answer's headers: rotad learns
 * the account's limit and use from them, with no probe at all. */
static void test_probes_passive_reports_move_quota(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "passive");
    mock_start(t.dir);
    setenv("ROTA_IT_ANT", "sk-it-ant-secret", 1);
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "instance: %s\nstate_dir: %s/state\nproviders:\n"
             "  - name: anthropic\n    kind: anthropic\n    auth: x-api-key\n"
             "    base_url: http://127.0.0.1:%d\n    probe: {enabled: false}\n"
             "    accounts:\n      - name: an-1\n        credential: env:ROTA_IT_ANT\n"
             "        windows: [{metric: requests, limit: 0}]\n"
             "routes:\n  - name: chat\n    tiers: [{provider: anthropic, ceiling: 0.5}]\n",
             t.instance, t.dir, mock_port);
    it_config_text(&t, cfg);
    assert_int_equal(it_start(&t), 0);
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(t.instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "chat", &rt), 0);
    char url[128], key[128], auth[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/messages", mock_port);
    struct seen s = {0};
    int calls = 0, exhausted = 0;
    /* Each call's answer says how many of the 50 requests a minute are left; past half,
     * the tier's ceiling (0.5) stops selection: the account is skipped, not the mock's
     * 429 reached. */
    for (int i = 0; i < 60 && !exhausted; i++) {
        rota_choice c;
        int rc = rota_select(h, &rt, NULL, 0, 10, &c);
        if (rc == ROTA_EEXHAUSTED) {
            exhausted = 1;
            break;
        }
        assert_int_equal(rc, 0);
        assert_true(rota_credential(h, &c, key, sizeof(key)) > 0);
        snprintf(auth, sizeof(auth), "x-api-key: %s", key);
        struct answer a = {0};
        CURL *e = curl_easy_init();
        struct curl_slist *hd = curl_slist_append(NULL, auth);
        hd = curl_slist_append(hd, "content-type: application/json");
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{\"model\":\"claude\",\"max_tokens\":8}");
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, keep_head);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, &a);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
        long status = 0;
        assert_int_equal(curl_easy_perform(e), CURLE_OK);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hd);
        curl_easy_cleanup(e);
        rota_outcome o = {.status = (int)status, .headers = a.head, .headers_len = a.len};
        assert_int_equal(rota_report(h, &c, &o), 0);
        assert_int_equal(status, 200);
        calls++;
        sleep_ms(150); /* rotad folds every 100 ms */
    }
    assert_true(exhausted);
    assert_true(calls >= 20 && calls <= 30); /* about half of the 50 */
    WAIT_FOR(look(&t, "an-1", &s) && s.limit == 50);
    assert_int_equal(s.limit, 50); /* learnt from the headers alone */
    assert_true(s.used >= 20);
    rota_detach(h);
    json_t *r = it_ctl(&t, "status", NULL, NULL);
    assert_true(json_integer_value(
                    json_object_get(json_object_get(r, "data"), "passive_folded")) >= 20);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r, "data"), "probes_ok")), 0);
    json_decref(r);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    mock_stop();
    it_cleanup(&t);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_probes_fill_fail_and_recover, teardown),
        cmocka_unit_test_teardown(test_probes_passive_reports_move_quota, teardown),
        cmocka_unit_test_teardown(test_probes_exec_output_redacted, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
