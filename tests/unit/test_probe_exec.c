/* test_probe_exec: the probe thread's exec targets with real child processes: a command's
 * JSON output read by the kind's parser, the credential reaching it in ROTA_CREDENTIAL
 * only (with nothing else of this process's environment), and hung, failing, chatty and
 * garbled commands each costing one failed probe, leaving no process behind, stalling no
 * other target and quoting no key in what the result says (nor an HTTP probe's, when the
 * provider echoes it). */
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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

#include "probe.h"

#define S      1000000000ull
#define NOV_1  (INT64_C(1761955200) * (int64_t)S) /* 2025-11-01T00:00:00Z */
#define CRED   "sk-test-cred"
#define WAIT_S 25 /* how long a result may take, at most: far beyond any test's needs */

/* A paid plan's copilot_internal/user, as `gh api /copilot_internal/user` prints it. */
static const char user_json[] =
    "{\"login\":\"octocat\",\"copilot_plan\":\"individual_pro\",\"chat_enabled\":true,\n"
    " \"quota_reset_date\":\"2025-11-01\",\n"
    " \"quota_snapshots\":{\n"
    "  \"chat\":{\"entitlement\":0,\"overage_count\":0,\"overage_permitted\":false,\n"
    "   \"percent_remaining\":100.0,\"quota_id\":\"chat\",\"quota_remaining\":0.0,\n"
    "   \"remaining\":0,\"unlimited\":true},\n"
    "  \"completions\":{\"entitlement\":0,\"overage_count\":0,\"overage_permitted\":false,\n"
    "   \"percent_remaining\":100.0,\"quota_id\":\"completions\",\"quota_remaining\":0.0,\n"
    "   \"remaining\":0,\"unlimited\":true},\n"
    "  \"premium_interactions\":{\"entitlement\":1500,\"overage_count\":0,\n"
    "   \"overage_permitted\":false,\"percent_remaining\":31.3,\n"
    "   \"quota_id\":\"premium_interactions\",\"quota_remaining\":469.5,\"remaining\":469,\n"
    "   \"unlimited\":false}},\n"
    " \"quota_reset_date_utc\":\"2025-11-01T00:00:00.000Z\"}\n";

struct env {
    char dir[64];
    struct rota_prober *p;
    int fd;
    struct rota_probe_result got[64];
    uint32_t ngot;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void write_file(const struct env *e, const char *name, const char *text, mode_t mode)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", e->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* Write script "name" (run in the test's directory) and return the command running it. */
static const char *script(const struct env *e, const char *name, const char *body)
{
    static char cmd[256];
    char text[1024];
    snprintf(text, sizeof(text), "#!/bin/sh\ncd \"$(dirname \"$0\")\" || exit 99\n%s\n", body);
    write_file(e, name, text, 0755);
    snprintf(cmd, sizeof(cmd), "%s/%s", e->dir, name);
    return cmd;
}

/* An exec target of "kind" for account "id"; probed once unless it fails (then again
 * after 10 s, later than any test looks). */
static struct rota_probe_target exec_target(uint64_t id, const char *kind, const char *cmd,
                                            const char *cred, uint64_t timeout_ms,
                                            uint32_t max_bytes)
{
    struct rota_probe_target t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(rota_probe_plan_exec(&t, kind, cmd, cred), 0);
    t.account_id = id;
    t.interval_ns = 600 * S;
    t.timeout_ns = timeout_ms * 1000000ull;
    t.max_bytes = max_bytes;
    return t;
}

/* Probe "t" now. */
static void run_targets(struct env *e, const struct rota_probe_target *t, uint32_t n)
{
    assert_int_equal(rota_prober_set(e->p, t, n, NULL), 0);
    assert_int_equal(rota_prober_now(e->p, 0), 1);
}

/* Take what is queued into e->got. */
static void take(struct env *e)
{
    struct rota_probe_result r[8];
    uint32_t n;
    while ((n = rota_prober_take(e->p, r, 8)) > 0)
        for (uint32_t i = 0; i < n && e->ngot < 64; i++)
            e->got[e->ngot++] = r[i];
}

static const struct rota_probe_result *find(const struct env *e, uint64_t id)
{
    for (uint32_t i = 0; i < e->ngot; i++)
        if (e->got[i].account_id == id)
            return &e->got[i];
    return NULL;
}

/* The first result of account "id", waiting for it up to WAIT_S. */
static const struct rota_probe_result *wait_result(struct env *e, uint64_t id)
{
    uint64_t end = mono_ns() + WAIT_S * S;
    const struct rota_probe_result *r;
    while (!(r = find(e, id)) && mono_ns() < end) {
        struct pollfd pfd = {e->fd, POLLIN, 0};
        poll(&pfd, 1, 100);
        take(e);
    }
    if (!r)
        fail_msg("no result for account %llu within %d s", (unsigned long long)id, WAIT_S);
    return r;
}

static void expect_error(const struct rota_probe_result *r, const char *part)
{
    assert_false(r->ok);
    if (!strstr(r->error, part))
        fail_msg("error \"%s\" lacks \"%s\"", r->error, part);
}

/* Nothing a result says shows the credential. */
static void expect_no_secret(const struct env *e)
{
    for (uint32_t i = 0; i < e->ngot; i++) {
        assert_null(strstr(e->got[i].error, CRED));
        assert_null(strstr(e->got[i].obs.detail, CRED));
        assert_null(strstr(e->got[i].obs.problem, CRED));
    }
}

/* Stop the thread: afterwards this process has no child left, running or zombie. */
static void stop_and_expect_no_children(struct env *e)
{
    rota_prober_stop(e->p);
    e->p = NULL;
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* The state letter of process "pid" in /proc ('R', 'S', 'Z', ...), 0 when it is gone. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' ? close_paren[2] : '?';
}

static pid_t read_pid(const struct env *e, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", e->dir, name);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    snprintf(e->dir, sizeof(e->dir), "/tmp/rota-probe-exec-XXXXXX");
    if (!mkdtemp(e->dir) || rota_prober_start(&e->p, &e->fd) != 0) {
        free(e);
        return -1;
    }
    write_file(e, "user.json", user_json, 0644);
    *state = e;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct env *e = *state;
    rota_prober_stop(e->p);
    nftw(e->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(e);
    return 0;
}

/* ---- tests ---- */

static void test_probe_exec_copilot_output_read(void **state)
{
    struct env *e = *state;
    struct rota_probe_target t =
        exec_target(1, "github-copilot", script(e, "gh", "cat user.json"), CRED, 10000, 0);
    run_targets(e, &t, 1);
    const struct rota_probe_result *r = wait_result(e, 1);
    if (!r->ok)
        fail_msg("failed: %s", r->error);
    assert_int_equal(r->status, 0); /* no HTTP answer: the output was the body */
    assert_int_equal(r->parsed, 1);
    assert_int_equal(r->obs.nwin, 3);
    const struct rota_obs_window *w = &r->obs.win[2];
    assert_string_equal(w->pool, "premium_interactions");
    assert_true(w->has_limit && w->has_remaining);
    assert_int_equal(w->limit, 1500);
    assert_int_equal(w->remaining, 469);
    assert_int_equal(w->reset_at, NOV_1);
    assert_string_equal(r->obs.win[0].pool, "chat");
    assert_false(r->obs.win[0].has_limit); /* unlimited */
    assert_true(r->obs.reachable);
    stop_and_expect_no_children(e);
}

static void test_probe_exec_credential_in_env_only(void **state)
{
    struct env *e = *state;
    char cmd[256], none_cmd[256];
    /* rotad's own environment may hold the name: the account's credential replaces it,
     * and an account without one gets none */
    setenv("ROTA_CREDENTIAL", "inherited", 1);
    snprintf(cmd, sizeof(cmd), "test \"$ROTA_CREDENTIAL\" = " CRED " && cat %s/user.json",
             e->dir);
    snprintf(none_cmd, sizeof(none_cmd),
             "test -z \"${ROTA_CREDENTIAL+set}\" && cat %s/user.json", e->dir);
    struct rota_probe_target t[3] = {
        exec_target(1, "github-copilot", cmd, CRED, 10000, 0),
        exec_target(2, "github-copilot", cmd, "sk-other", 10000, 0),
        exec_target(3, "github-copilot", none_cmd, NULL, 10000, 0),
    };
    run_targets(e, t, 3);
    const struct rota_probe_result *r = wait_result(e, 1);
    if (!r->ok)
        fail_msg("failed: %s", r->error);
    assert_int_equal(r->obs.nwin, 3);
    expect_error(wait_result(e, 2), "command exited with status 1");
    r = wait_result(e, 3);
    if (!r->ok)
        fail_msg("failed: %s", r->error);
    unsetenv("ROTA_CREDENTIAL");
    expect_no_secret(e);
    stop_and_expect_no_children(e);
}

static void test_probe_exec_signals_restored(void **state)
{
    struct env *e = *state;
    /* main() blocked SIGTERM, SIGINT and SIGHUP and ignored SIGPIPE, as rotad does */
    struct rota_probe_target t = exec_target(
        1, "github-copilot",
        script(e, "sig", "grep -E '^Sig(Blk|Ign):' /proc/self/status > sig.txt; cat user.json"),
        CRED, 10000, 0);
    run_targets(e, &t, 1);
    assert_true(wait_result(e, 1)->ok);
    char path[128], line[128];
    unsigned long long blk = ~0ull, ign = ~0ull, v;
    snprintf(path, sizeof(path), "%s/sig.txt", e->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "SigBlk: %llx", &v) == 1)
            blk = v;
        if (sscanf(line, "SigIgn: %llx", &v) == 1)
            ign = v;
    }
    fclose(f);
    assert_int_equal(blk, 0); /* (dash clears its mask itself; other shells may not) */
    assert_int_equal(ign & (1ull << (SIGPIPE - 1)), 0); /* SIGPIPE kills, as usual */
    stop_and_expect_no_children(e);
}

static void test_probe_exec_timeout_kills_group(void **state)
{
    struct env *e = *state;
    struct rota_probe_target t = exec_target(
        1, "github-copilot",
        script(e, "hang", "echo $$ > leader.pid; sleep 60 & echo $! > sleep.pid; wait"), CRED,
        500, 0);
    run_targets(e, &t, 1);
    const struct rota_probe_result *r = wait_result(e, 1); /* long before the 60 s */
    expect_error(r, "timed out");
    assert_int_equal(r->status, 0);
    pid_t leader = read_pid(e, "leader.pid"), sleeper = read_pid(e, "sleep.pid");
    assert_true(leader > 0 && sleeper > 0);
    /* the leader is reaped while the thread runs on: no zombie accumulates */
    for (int i = 0; i < WAIT_S * 20 && proc_state(leader); i++)
        sleep_ms(50);
    assert_int_equal(proc_state(leader), 0);
    /* what it started died with it (init reaps it, or it lingers as a zombie) */
    for (int i = 0; i < WAIT_S * 20 && proc_state(sleeper) && proc_state(sleeper) != 'Z'; i++)
        sleep_ms(50);
    char st = proc_state(sleeper);
    assert_true(st == 0 || st == 'Z');
    stop_and_expect_no_children(e);
}

static void test_probe_exec_exit_status_fails(void **state)
{
    struct env *e = *state;
    struct rota_probe_target t[2] = {
        exec_target(1, "github-copilot", script(e, "three", "cat user.json; exit 3"), CRED,
                    10000, 0),
        exec_target(2, "github-copilot", "kill -9 $$", CRED, 10000, 0), /* sh itself */
    };
    run_targets(e, t, 2);
    const struct rota_probe_result *r = wait_result(e, 1);
    expect_error(r, "status 3"); /* its output is not trusted */
    assert_int_equal(r->obs.nwin, 0);
    expect_error(wait_result(e, 2), "signal 9");
    stop_and_expect_no_children(e);
}

static void test_probe_exec_output_capped(void **state)
{
    struct env *e = *state;
    struct rota_probe_target t =
        exec_target(1, "github-copilot", script(e, "chatty", "head -c 5000000 /dev/zero"), CRED,
                    20000, 1u << 20);
    run_targets(e, &t, 1);
    expect_error(wait_result(e, 1), "output over 1048576 bytes");
    stop_and_expect_no_children(e);
}

static void test_probe_exec_garbage_fails(void **state)
{
    struct env *e = *state;
    struct rota_probe_target t = exec_target(
        1, "github-copilot", script(e, "garbage", "echo 'not json {'"), CRED, 10000, 0);
    run_targets(e, &t, 1);
    const struct rota_probe_result *r = wait_result(e, 1);
    assert_int_equal(r->parsed, -EINVAL);
    expect_error(r, "command output");
    stop_and_expect_no_children(e);
}

static void test_probe_exec_env_minimal(void **state)
{
    struct env *e = *state;
    /* rotad's environment holds other accounts' keys: the command sees none of them */
    setenv("ROTA_TEST_OTHER_KEY", "sk-other-account-key", 1);
    setenv("HOME", "/nonexistent-home", 1);
    struct rota_probe_target t =
        exec_target(1, "github-copilot", script(e, "envdump", "env > env.txt; cat user.json"),
                    CRED, 10000, 0);
    run_targets(e, &t, 1);
    const struct rota_probe_result *r = wait_result(e, 1);
    unsetenv("ROTA_TEST_OTHER_KEY");
    if (!r->ok)
        fail_msg("failed: %s", r->error);
    char path[128], line[4096];
    snprintf(path, sizeof(path), "%s/env.txt", e->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool cred = false, home = false, path_set = false;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (strstr(line, "sk-other-account-key"))
            fail_msg("the command saw another account's key: %s", line);
        cred |= strcmp(line, "ROTA_CREDENTIAL=" CRED) == 0;
        home |= strcmp(line, "HOME=/nonexistent-home") == 0;
        path_set |= strncmp(line, "PATH=", 5) == 0;
        /* the shell adds PWD (and some SHLVL, OLDPWD, _): nothing else of rotad's */
        static const char *ok[] = {
            "ROTA_CREDENTIAL=", "PATH=", "HOME=", "LANG=", "PWD=", "SHLVL=", "OLDPWD=", "_="};
        bool known = false;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
            known |= strncmp(line, ok[i], strlen(ok[i])) == 0;
        if (!known)
            fail_msg("the command's environment holds \"%s\"", line);
    }
    fclose(f);
    assert_true(cred && home && path_set);
    stop_and_expect_no_children(e);
}

/* A key of letters only: a JSON parser quotes it whole as the token it choked on. */
#define ALPHA_KEY "tokenABCDEFsecretXYZ"

static void test_probe_exec_output_never_quoted(void **state)
{
    struct env *e = *state;
    /* a command that prints its key, then garbage; another account's key likewise */
    struct rota_probe_target t[2] = {
        exec_target(1, "github-copilot", "printf '%s garbage {' \"$ROTA_CREDENTIAL\"",
                    ALPHA_KEY, 10000, 0),
        exec_target(2, "github-copilot", "printf '%s' \"$ROTA_CREDENTIAL\"", "sk-short", 10000,
                    0),
    };
    run_targets(e, t, 2);
    const struct rota_probe_result *r = wait_result(e, 1);
    assert_false(r->ok);
    expect_error(r, "command output");
    if (strstr(r->error, "tokenABCD") || strstr(r->obs.problem, "tokenABCD"))
        fail_msg("the key is quoted: \"%s\"", r->error);
    (void)wait_result(e, 2);
    for (uint32_t i = 0; i < e->ngot; i++)
        if (strstr(e->got[i].error, "sk-short") || strstr(e->got[i].obs.problem, "sk-short"))
            fail_msg("the key is quoted: \"%s\"", e->got[i].error);
    stop_and_expect_no_children(e);
}

/* Another account's key, not probed by this thread, echoed in part by a command (as a
 * provider's error body would): with the instance's set, no run of 8 bytes of it is in
 * what the result says, the excerpt of a failed answer included. */
#define OTHER_KEY "ghp_9xQz2Lm7Tt4Vv8Ww1Yy5Zz0Aa3Bb6Cc"

static void test_probe_exec_other_accounts_key_redacted(void **state)
{
    struct env *e = *state;
    const char *keys[] = {CRED, OTHER_KEY};
    struct rota_redact *set = NULL;
    assert_int_equal(rota_redact_new(keys, 2, NULL, &set), 0);
    /* the message read as the parser's verdict; the same output of a command that fails,
     * kept as the answer's excerpt */
    const char *echo = "printf '{\"message\":\"Bad credentials: ...%s, not %s\"}' "
                       "Tt4Vv8Ww1Yy5Zz0Aa3Bb6Cc ghp_9xQz2Lm7T";
    char failing[256];
    snprintf(failing, sizeof(failing), "%s; exit 1", echo);
    struct rota_probe_target t[2] = {
        exec_target(1, "github-copilot", echo, CRED, 10000, 0),
        exec_target(2, "github-copilot", failing, CRED, 10000, 0),
    };
    assert_int_equal(rota_prober_set(e->p, t, 2, set), 0);
    rota_redact_unref(set); /* the thread holds its own reference */
    assert_int_equal(rota_prober_now(e->p, 0), 1);
    const struct rota_probe_result *r1 = wait_result(e, 1), *r2 = wait_result(e, 2);
    if (!strstr(r1->obs.detail, "token refused: Bad credentials: ...[redacted], not "
                                "[redacted]"))
        fail_msg("detail \"%s\"", r1->obs.detail);
    expect_error(r2, "command exited with status 1");
    if (!strstr(r2->excerpt, "Bad credentials: ...[redacted], not [redacted]"))
        fail_msg("excerpt \"%s\"", r2->excerpt);
    const char *said[] = {r1->error, r1->obs.detail, r1->obs.problem, r1->excerpt,
                          r2->error, r2->obs.detail, r2->obs.problem, r2->excerpt};
    for (size_t k = 0; k < sizeof(said) / sizeof(said[0]); k++)
        for (size_t i = 0; i + 8 <= strlen(OTHER_KEY); i++)
            if (memmem(said[k], strlen(said[k]), &OTHER_KEY[i], 8))
                fail_msg("8 bytes of the other key in \"%s\"", said[k]);
    stop_and_expect_no_children(e);
}

/* A one-connection HTTP server on loopback: answers 200 with a body that starts with
 * the bearer token the request carried, then garbage (a provider echoing the key). */
struct echo_server {
    int fd;
    pthread_t thread;
};

static void *echo_serve(void *arg)
{
    struct echo_server *es = arg;
    int c = accept(es->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char req[4096], key[256] = "", reply[1024];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof(req) - 1 && (k = read(c, req + n, sizeof(req) - 1 - n)) > 0) {
        n += (size_t)k;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    const char *auth = strstr(req, "Bearer ");
    if (auth)
        sscanf(auth + 7, "%255[^\r\n]", key);
    char body[512];
    int bl = snprintf(body, sizeof(body), "{\"message\": %s is not a key we know", key);
    int rl = snprintf(reply, sizeof(reply),
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                      bl, body);
    ssize_t w = write(c, reply, (size_t)rl);
    (void)w;
    close(c);
    return NULL;
}

static void test_probe_http_echoed_key_redacted(void **state)
{
    struct env *e = *state;
    struct echo_server es;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    es.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(es.fd >= 0);
    assert_int_equal(bind(es.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(es.fd, 4), 0);
    assert_int_equal(getsockname(es.fd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(pthread_create(&es.thread, NULL, echo_serve, &es), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    struct rota_probe_target t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(
        rota_probe_plan(&t, "github-copilot", url, "bearer", ALPHA_KEY, NULL, NULL, NULL), 0);
    t.account_id = 1;
    t.interval_ns = 600 * S;
    t.timeout_ns = 10 * S;
    run_targets(e, &t, 1);
    const struct rota_probe_result *r = wait_result(e, 1);
    pthread_join(es.thread, NULL);
    close(es.fd);
    assert_false(r->ok);
    if (strstr(r->error, "tokenABCD") || strstr(r->obs.problem, "tokenABCD") ||
        strstr(r->obs.detail, "tokenABCD"))
        fail_msg("the key is quoted: \"%s\"", r->error);
    assert_non_null(strstr(r->error, "[redacted]")); /* the verdict stays, the key goes */
    stop_and_expect_no_children(e);
}

/* A port on loopback where nothing listens. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void test_probe_exec_hang_stalls_nothing(void **state)
{
    struct env *e = *state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
    struct rota_probe_target t[3] = {
        exec_target(1, "github-copilot", script(e, "hang", "sleep 60"), CRED, 20000, 0),
        exec_target(2, "github-copilot", script(e, "gh", "sleep 1; cat user.json"), CRED, 10000,
                    0),
    };
    memset(&t[2], 0, sizeof(t[2]));
    assert_int_equal(rota_probe_plan(&t[2], "openai", url, "bearer", CRED, NULL, NULL, NULL),
                     0);
    t[2].account_id = 3;
    t[2].interval_ns = 600 * S;
    t[2].timeout_ns = 10 * S;
    run_targets(e, t, 3);
    /* both others answer while the first command still hangs */
    const struct rota_probe_result *r = wait_result(e, 2);
    if (!r->ok)
        fail_msg("failed: %s", r->error);
    assert_int_equal(r->obs.nwin, 3);
    assert_false(wait_result(e, 3)->ok); /* connection refused */
    assert_null(find(e, 1));
    expect_no_secret(e);
    stop_and_expect_no_children(e); /* the hanging one is killed and reaped */
}

int main(void)
{
    /* As rotad: these wait for a signalfd in every thread; SIGPIPE is ignored. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_exec_copilot_output_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_credential_in_env_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_signals_restored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_exit_status_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_output_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_garbage_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_hang_stalls_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_env_minimal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_output_never_quoted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_http_echoed_key_redacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_exec_other_accounts_key_redacted, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
