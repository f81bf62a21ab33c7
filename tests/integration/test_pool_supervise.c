/*
 * test_pool_supervise: rotad running the dispatch pool (the workers: section) under
 * load from real HTTP clients (libcurl, keep-alive, four threads), against a real
 * rota-mockprovider that is made slow, so calls are in flight at every moment:
 *   - kill -9 of one worker: the other goes on answering, rotad starts a new one in its
 *     slot, the killed one's leases are reclaimed (nothing stays in flight), and no more
 *     requests fail than the killed process held (libcurl, like most clients, sends a
 *     request again on a new connection when a reused one dies before any answer);
 *   - a reload that changes the pool (a listener added, a timeout changed; then a
 *     process more) rolls it over under load with no failed request, and the new
 *     listener answers;
 *   - `rotactl workers` and the access log say what happened.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool_it.h"
#include "select.h"
#include "table.h"

#define LOAD_THREADS 4

static int pool_port;
static const struct pool_account accounts[] = {
    {"oa-1", "openai", "sk-sup-oa1-secret"},
    {"oa-2", "openai", "sk-sup-oa2-secret"},
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A port nobody listens on now (bound, then let go). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The config: the mock's two accounts on route "chat"; the pool with "workers" (the
 * YAML of the workers: section's body, indented by four). */
static void write_config(struct it *t, const char *workers)
{
    char rest[2048];
    snprintf(rest, sizeof(rest),
             "routes:\n  - name: chat\n    models: [chat-model]\n    tiers:\n"
             "      - {provider: oa, strategy: round-robin, model: gpt-a}\n"
             "workers:\n  threads: 1\n%s%s%s%s",
             strstr(workers, "access_log") ? "" : "  access_log: ",
             strstr(workers, "access_log") ? "" : t->dir,
             strstr(workers, "access_log") ? "" : "/access.log\n", workers);
    pool_config(t, "ROTA_SUP_", accounts, 2, rest);
}

static void start(struct it *t, const char *tag)
{
    pool_keys_export("ROTA_SUP_", accounts, 2);
    it_init(t, tag);
    pool_mock_start(t->dir, 20, accounts, 2, false);
    pool_port = free_port();
    char w[256];
    snprintf(w, sizeof(w), "  processes: 2\n  listen:\n    - tcp: 127.0.0.1:%d\n", pool_port);
    write_config(t, w);
    assert_int_equal(it_start(t), 0);
    char cmd[128], out[64];
    snprintf(cmd, sizeof(cmd), "curl -s -m 1 http://127.0.0.1:%d/healthz", pool_port);
    for (int i = 0; i < 200 && it_sh(cmd, out, sizeof(out), NULL, 0) != 0; i++)
        sleep_ms(25);
    assert_non_null(strstr(out, "\"ok\":true"));
}

/* ---- the load: LOAD_THREADS keep-alive clients, each a request after another ---- */

struct load {
    pthread_t tid[LOAD_THREADS];
    _Atomic int stop;
    _Atomic uint64_t ok, failed;
    char last_failure[256];
    pthread_mutex_t mu;
};

static size_t keep(char *p, size_t size, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), len = size * n;
    if (have + len < 4096) {
        memcpy(buf + have, p, len);
        buf[have + len] = 0;
    }
    return len;
}

static void *client(void *arg)
{
    struct load *l = arg;
    CURL *c = curl_easy_init();
    char url[96], body[4096];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", pool_port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                     "{\"model\":\"chat-model\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"hi\"}]}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    while (!atomic_load(&l->stop)) {
        body[0] = 0;
        long status = 0;
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK && status == 200 && strstr(body, "chat.completion")) {
            atomic_fetch_add(&l->ok, 1);
            continue;
        }
        atomic_fetch_add(&l->failed, 1);
        pthread_mutex_lock(&l->mu);
        snprintf(l->last_failure, sizeof(l->last_failure), "curl %d (%s), status %ld: %.120s",
                 (int)rc, curl_easy_strerror(rc), status, body);
        pthread_mutex_unlock(&l->mu);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static void load_start(struct load *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    for (int i = 0; i < LOAD_THREADS; i++)
        assert_int_equal(pthread_create(&l->tid[i], NULL, client, l), 0);
}

static void load_stop(struct load *l)
{
    atomic_store(&l->stop, 1);
    for (int i = 0; i < LOAD_THREADS; i++)
        pthread_join(l->tid[i], NULL);
    printf("# load: %llu answered, %llu failed%s%s\n", (unsigned long long)l->ok,
           (unsigned long long)l->failed, l->failed ? "; last: " : "", l->last_failure);
}

/* ---- what rotad says of its workers ---- */

struct proc {
    int pid, slot;
    char state[16];
    long long requests;
};

/* The processes `workers` lists (at most "max"); their count. */
static int workers(struct it *t, struct proc *p, int max)
{
    json_t *r = it_ctl(t, "workers", NULL, NULL);
    assert_non_null(r);
    json_t *ps = json_object_get(json_object_get(r, "data"), "processes");
    size_t i;
    json_t *v;
    int n = 0;
    json_array_foreach(ps, i, v)
    {
        if (n == max)
            break;
        p[n].pid = (int)json_integer_value(json_object_get(v, "pid"));
        p[n].slot = (int)json_integer_value(json_object_get(v, "slot"));
        snprintf(p[n].state, sizeof(p[n].state), "%s",
                 json_string_value(json_object_get(v, "state")));
        p[n].requests = (long long)json_integer_value(json_object_get(v, "requests"));
        n++;
    }
    json_decref(r);
    return n;
}

static int pid_in_slot(struct it *t, int slot, int not_pid)
{
    struct proc p[8];
    int n = workers(t, p, 8);
    for (int i = 0; i < n; i++)
        if (p[i].slot == slot && p[i].pid != not_pid && strcmp(p[i].state, "draining") != 0)
            return p[i].pid;
    return 0;
}

static long long requests_of(struct it *t, int pid)
{
    struct proc p[8];
    int n = workers(t, p, 8);
    for (int i = 0; i < n; i++)
        if (p[i].pid == pid)
            return p[i].requests;
    return -1;
}

static uint64_t in_flight_total(const char *instance)
{
    struct rota_shm_map m;
    char err[200];
    assert_int_equal(rota_shm_attach(instance, &m, err, sizeof(err)), 0);
    uint64_t s = 0;
    for (uint32_t a = 0; a < m.naccounts; a++)
        s += rota_in_flight(&m, a);
    rota_shm_detach(&m);
    return s;
}

static uint64_t generation(const char *instance)
{
    struct rota_shm_map m;
    char err[200];
    assert_int_equal(rota_shm_attach(instance, &m, err, sizeof(err)), 0);
    uint64_t g = m.hdr->generation;
    rota_shm_detach(&m);
    return g;
}

static void stop_all(struct it *t)
{
    assert_int_equal(it_stop(t, SIGTERM), 0);
    pool_stop(&pool_it.mock);
    /* the workers went with rotad: nothing answers on the pool's port */
    char cmd[128], out[64];
    snprintf(cmd, sizeof(cmd), "curl -s -m 1 http://127.0.0.1:%d/healthz", pool_port);
    assert_int_not_equal(it_sh(cmd, out, sizeof(out), NULL, 0), 0);
}

/* access_log: off: the workers start (with no log) and serve, and stay up. */
static void test_pool_supervise_access_log_off(void **state)
{
    (void)state;
    struct it t;
    pool_keys_export("ROTA_SUP_", accounts, 2);
    it_init(&t, "suplogoff");
    pool_mock_start(t.dir, 20, accounts, 2, false);
    pool_port = free_port();
    char w[256];
    snprintf(w, sizeof(w),
             "  processes: 1\n  access_log: \"off\"\n  listen:\n    - tcp: 127.0.0.1:%d\n",
             pool_port);
    write_config(&t, w);
    assert_int_equal(it_start(&t), 0);
    char cmd[256], out[4096];
    snprintf(cmd, sizeof(cmd),
             "curl -s -m 2 -d '{\"model\":\"chat-model\",\"messages\":[]}' "
             "http://127.0.0.1:%d/v1/chat/completions",
             pool_port);
    for (int i = 0; i < 200 && (it_sh(cmd, out, sizeof(out), NULL, 0) != 0 ||
                                !strstr(out, "chat.completion"));
         i++)
        sleep_ms(25);
    assert_non_null(strstr(out, "chat.completion"));
    int pid = pid_in_slot(&t, 0, 0);
    sleep_ms(1200);
    assert_int_equal(pid_in_slot(&t, 0, 0), pid); /* not restarted meanwhile */
    assert_false(it_log_has(&t, "exited with status"));
    stop_all(&t);
    it_cleanup(&t);
}

static void test_pool_supervise_kill9_one_worker(void **state)
{
    (void)state;
    struct it t;
    start(&t, "supkill");
    /* calls take 200 ms: a process that has a client has a call in flight */
    mock_fault("match=oa-&kind=latency&ms=200");
    struct load l;
    load_start(&l);
    sleep_ms(1500);
    int victim = pid_in_slot(&t, 0, 0), other = pid_in_slot(&t, 1, 0);
    assert_true(victim > 0 && other > 0);
    long long other_before = requests_of(&t, other), victim_served = requests_of(&t, victim);
    /* a worker reads keys from the table: the variables holding them are not passed on */
    char envf[64], env[8192];
    snprintf(envf, sizeof(envf), "/proc/%d/environ", victim);
    FILE *ef = fopen(envf, "r");
    assert_non_null(ef);
    size_t got = fread(env, 1, sizeof(env) - 1, ef);
    fclose(ef);
    assert_true(got > 0);
    assert_null(memmem(env, got, "ROTA_SUP_OA1", 12));
    assert_non_null(memmem(env, got, "PATH=", 5));
    uint64_t ok_before = atomic_load(&l.ok), t0 = now_ms();
    assert_int_equal(kill(victim, SIGKILL), 0);
    int successor = 0;
    WAIT_EVERY(25, (successor = pid_in_slot(&t, 0, victim)) > 0);
    printf("# slot 0: pid %d killed, pid %d in its place %llu ms later\n", victim, successor,
           (unsigned long long)(now_ms() - t0));
    assert_true(successor > 0);
    /* the other process went on answering, and so does the pool (its figures come once
     * a second) */
    WAIT_FOR(requests_of(&t, other) > other_before && atomic_load(&l.ok) > ok_before + 10);
    assert_true(requests_of(&t, other) > other_before);
    assert_true(atomic_load(&l.ok) > ok_before + 10);
    load_stop(&l);
    /* at most the calls the killed process held: one per client connection */
    assert_true(l.failed <= LOAD_THREADS);
    /* its leases came back: nothing stays in flight */
    WAIT_EVERY(25, in_flight_total(t.instance) == 0);
    assert_int_equal(in_flight_total(t.instance), 0);
    /* rotad said so and, when the process had clients (the kernel may have given
     * them all to the other), reported the calls it held done */
    assert_true(it_log_has(&t, "was killed by signal 9"));
    printf("# the killed process had answered %lld requests\n", victim_served);
    if (victim_served > 0)
        assert_true(it_log_has(&t, "calls held by exited workers reported done"));
    stop_all(&t);
    it_cleanup(&t);
}

static void test_pool_supervise_reload_under_load(void **state)
{
    (void)state;
    struct it t;
    start(&t, "supreload");
    mock_fault("match=oa-&kind=latency&ms=30");
    int a0 = pid_in_slot(&t, 0, 0), a1 = pid_in_slot(&t, 1, 0);
    struct load l;
    load_start(&l);
    sleep_ms(1000);
    /* 1. the same pool: a reload touches no process */
    char out[4096];
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    sleep_ms(500);
    assert_int_equal(pid_in_slot(&t, 0, 0), a0);
    assert_int_equal(pid_in_slot(&t, 1, 0), a1);
    /* 2. a listener added and the drain timeout changed: a new set, the old drains */
    char w[512], sock[192];
    snprintf(sock, sizeof(sock), "%s/pool.sock", t.dir);
    snprintf(w, sizeof(w),
             "  processes: 2\n  timeouts: {drain: 5s}\n  listen:\n    - tcp: 127.0.0.1:%d\n"
             "    - unix: %s\n      mode: \"0600\"\n",
             pool_port, sock);
    write_config(&t, w);
    uint64_t ok_before = atomic_load(&l.ok);
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    int b0 = 0;
    WAIT_EVERY(25, (b0 = pid_in_slot(&t, 0, a0)) > 0 && pid_in_slot(&t, 1, a1) > 0);
    assert_true(b0 > 0 && b0 != a0);
    /* the old processes finish what they hold and go */
    WAIT_EVERY(25, kill(a0, 0) != 0 && kill(a1, 0) != 0);
    assert_int_not_equal(kill(a0, 0), 0);
    assert_int_not_equal(kill(a1, 0), 0);
    WAIT_FOR(atomic_load(&l.ok) > ok_before + 20);
    assert_true(atomic_load(&l.ok) > ok_before + 20);
    /* the new listener answers */
    char cmd[384];
    snprintf(cmd, sizeof(cmd), "curl -s -m 2 --unix-socket %s http://pool/healthz", sock);
    assert_int_equal(it_sh(cmd, out, sizeof(out), NULL, 0), 0);
    assert_non_null(strstr(out, "\"ok\":true"));
    /* 3. a third process: the two sockets stay, a third is added */
    snprintf(w, sizeof(w),
             "  processes: 3\n  timeouts: {drain: 5s}\n  listen:\n    - tcp: 127.0.0.1:%d\n"
             "    - unix: %s\n      mode: \"0600\"\n",
             pool_port, sock);
    write_config(&t, w);
    ok_before = atomic_load(&l.ok);
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    WAIT_EVERY(25, pid_in_slot(&t, 2, 0) > 0 && kill(b0, 0) != 0);
    assert_true(pid_in_slot(&t, 2, 0) > 0);
    WAIT_FOR(atomic_load(&l.ok) > ok_before + 20);
    assert_true(atomic_load(&l.ok) > ok_before + 20);
    /* 4. a reload whose pool cannot be made (the access log's directory is missing)
     * is refused whole: the table's generation and the processes stay */
    char bad[256];
    snprintf(bad, sizeof(bad), "%s/no/such/dir", t.dir);
    uint64_t gen = generation(t.instance);
    int c0 = pid_in_slot(&t, 0, 0);
    char cfg_bad[1024];
    snprintf(cfg_bad, sizeof(cfg_bad),
             "  processes: 3\n  timeouts: {drain: 5s}\n  listen:\n    - tcp: 127.0.0.1:%d\n"
             "    - unix: %s\n      mode: \"0600\"\n  access_log: %s/access.log\n",
             pool_port, sock, bad);
    write_config(&t, cfg_bad);
    assert_int_not_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "no/such/dir"));
    assert_int_equal(generation(t.instance), gen);
    assert_int_equal(pid_in_slot(&t, 0, 0), c0);
    /* 5. the Unix socket's mode alone: the same socket, its file's mode changed */
    snprintf(w, sizeof(w),
             "  processes: 3\n  timeouts: {drain: 5s}\n  listen:\n    - tcp: 127.0.0.1:%d\n"
             "    - unix: %s\n      mode: \"0660\"\n",
             pool_port, sock);
    write_config(&t, w);
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    struct stat sst;
    assert_int_equal(lstat(sock, &sst), 0);
    assert_int_equal(sst.st_mode & 0777, 0660);
    load_stop(&l);
    assert_int_equal(l.failed, 0);
    assert_true(l.ok > 100);
    /* rotactl workers, in words, and the access log's lines */
    WAIT_EVERY(25, it_rotactl(&t, "workers", out, sizeof(out)) == 0 && strstr(out, "serving"));
    assert_non_null(strstr(out, "serving"));
    assert_non_null(strstr(out, "P99_US"));
    assert_non_null(strstr(out, "unix "));
    char log[256];
    snprintf(log, sizeof(log),
             "grep -c '\"attempts\":\\[{\"tier\":0,\"account\":\"oa-' %s/access.log", t.dir);
    assert_int_equal(it_sh(log, out, sizeof(out), NULL, 0), 0);
    assert_true(atoll(out) >= (long long)l.ok);
    stop_all(&t);
    /* rotad removed the Unix listener it made */
    assert_int_not_equal(access(sock, F_OK), 0);
    it_cleanup(&t);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pool_supervise_access_log_off, pool_teardown),
        cmocka_unit_test_teardown(test_pool_supervise_kill9_one_worker, pool_teardown),
        cmocka_unit_test_teardown(test_pool_supervise_reload_under_load, pool_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
