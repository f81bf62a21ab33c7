/*
 * pool_it.c - the dispatch pool's integration tests' harness: rota-mockprovider, rotad
 * and rota-worker as real child processes, and the curl CLI, the mock's control
 * endpoints, rotactl and the access log to see what they did.
 *
 * DESIGN
 * Called from the test's thread only, one test at a time (struct pool_it is the running
 * test's). A child says its port on the first line of its stdout; the harness reads that
 * line and closes the pipe. Failures are cmocka's: a harness call that cannot do its
 * part fails the test there, naming what.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
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

#include "pool_it.h"

struct pool_it pool_it;
static int closed_fd = -1; /* pool_setup's socket, bound and never listening */

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- the processes ---- */

pid_t pool_spawn(char *const argv[], const char *log, int *port)
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

int pool_stop(pid_t *pid)
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

void pool_mock_start(const char *dir, int tokens, const struct pool_account *a, size_t n,
                     bool tls)
{
    char conf[256], bin[512], cert[160], key[160];
    snprintf(conf, sizeof(conf), "%s/mock.json", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fchmod(fileno(f), 0600);
    fprintf(f, "{\"tokens_per_call\": %d, \"accounts\": [", tokens);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s{\"key\": \"%s\", \"provider\": \"%s\", \"name\": \"%s\"}", i ? "," : "",
                a[i].key, a[i].kind, a[i].name);
    fputs("]}", f);
    fclose(f);
    snprintf(bin, sizeof(bin), "%s/tools/rota-mockprovider/rota-mockprovider", it_bin());
    snprintf(cert, sizeof(cert), "%s/server.pem", pool_it.ca_dir);
    snprintf(key, sizeof(key), "%s/server.key", pool_it.ca_dir);
    char *argv[] = {bin,          "--config", conf,        "--port", "0",
                    "--tls-cert", cert,       "--tls-key", key,      NULL};
    if (tls)
        pool_it.tls = pool_spawn(argv, NULL, &pool_it.tls_port);
    else {
        argv[5] = NULL;
        pool_it.mock = pool_spawn(argv, NULL, &pool_it.mock_port);
    }
}

/* PREFIX and account "name" in capitals, its dashes left out: ROTA_IT_ and oa-1 make
 * ROTA_IT_OA1. */
static void env_name(char *out, size_t n, const char *prefix, const char *name)
{
    size_t k = (size_t)snprintf(out, n, "%s", prefix);
    for (; *name && k + 1 < n; name++)
        if (*name != '-')
            out[k++] = (char)(*name >= 'a' && *name <= 'z' ? *name - 32 : *name);
    out[k] = 0;
}

void pool_keys_export(const char *prefix, const struct pool_account *a, size_t n)
{
    char env[64];
    for (size_t i = 0; i < n; i++) {
        env_name(env, sizeof(env), prefix, a[i].name);
        setenv(env, a[i].key, 1);
    }
}

void pool_keys_unset(const char *prefix, const struct pool_account *a, size_t n)
{
    char env[64];
    for (size_t i = 0; i < n; i++) {
        env_name(env, sizeof(env), prefix, a[i].name);
        unsetenv(env);
    }
}

/* The providers: section of accounts "a", at the plain mock, into "s" (of "cap"). */
static size_t providers(char *s, size_t cap, const char *prefix, const struct pool_account *a,
                        size_t n)
{
    size_t k = (size_t)snprintf(s, cap, "providers:\n");
    for (size_t i = 0; i < n && k < cap; i++) {
        int plen = (int)strcspn(a[i].name, "-");
        if (i == 0 || strncmp(a[i].name, a[i - 1].name, (size_t)plen + 1) != 0) {
            const char *auth = strcmp(a[i].kind, "anthropic") == 0 ? "    auth: x-api-key\n"
                               : strcmp(a[i].kind, "gemini") == 0 ? "    auth: x-goog-api-key\n"
                                                                  : "";
            k += (size_t)snprintf(s + k, cap - k,
                                  "  - name: %.*s\n    kind: %s\n%s"
                                  "    base_url: http://127.0.0.1:%d\n"
                                  "    probe: {enabled: false}\n    accounts:\n",
                                  plen, a[i].name, a[i].kind, auth, pool_it.mock_port);
        }
        char env[64];
        env_name(env, sizeof(env), prefix, a[i].name);
        if (k < cap)
            k += (size_t)snprintf(s + k, cap - k, "      - {name: %s, credential: env:%s}\n",
                                  a[i].name, env);
    }
    return k;
}

void pool_config(struct it *t, const char *prefix, const struct pool_account *a, size_t n,
                 const char *rest)
{
    char cfg[8192];
    size_t k = (size_t)snprintf(cfg, sizeof(cfg), "instance: %s\nstate_dir: %s/state\n",
                                t->instance, t->dir);
    k += providers(cfg + k, sizeof(cfg) - k, prefix, a, n);
    assert_true(k + strlen(rest) < sizeof(cfg));
    strcat(cfg, rest);
    it_config_text(t, cfg);
}

void pool_rotad_start(struct it *t, const char *prefix, const struct pool_account *a, size_t n,
                      const char *rest)
{
    pool_keys_export(prefix, a, n);
    pool_config(t, prefix, a, n, rest);
    assert_int_equal(it_start(t), 0);
}

void pool_worker_start(struct it *t, ...)
{
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/tools/rota-worker/rota-worker", it_bin());
    snprintf(pool_it.worker_log, sizeof(pool_it.worker_log), "%s/worker.log", t->dir);
    char *argv[24] = {bin, "-i", t->instance, "--listen", "127.0.0.1:0", "--threads", "2"};
    size_t n = 7;
    va_list ap;
    va_start(ap, t);
    for (char *s; (s = va_arg(ap, char *)) && n < 15;)
        argv[n++] = s;
    va_end(ap);
    for (size_t i = 0; i < 8 && pool_it.worker_extra[i] && n < 23; i++)
        argv[n++] = (char *)pool_it.worker_extra[i];
    argv[n] = NULL;
    memset(pool_it.worker_extra, 0, sizeof(pool_it.worker_extra));
    pool_it.worker = pool_spawn(argv, pool_it.worker_log, &pool_it.worker_port);
}

int pool_teardown(void **state)
{
    pool_stop(&pool_it.worker);
    pool_stop(&pool_it.mock);
    pool_stop(&pool_it.tls);
    return it_teardown(state);
}

int pool_setup(bool certs)
{
    snprintf(pool_it.ca_dir, sizeof(pool_it.ca_dir), "/tmp/rota-faults-ca-XXXXXX");
    assert_non_null(mkdtemp(pool_it.ca_dir));
    char cmd[2048], out[4096];
    snprintf(
        cmd, sizeof(cmd),
        "cd %s && printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n"
        "basicConstraints=CA:FALSE\\n' > ext.cnf && "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
        "-out ca.pem -days 2 -subj /CN=rota-test-ca -addext basicConstraints=critical,CA:TRUE "
        "-addext keyUsage=critical,keyCertSign 2>&1 && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key "
        "-out server.csr -subj /CN=127.0.0.1 2>&1 && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile ext.cnf 2>&1",
        pool_it.ca_dir);
    if (certs && it_sh(cmd, out, sizeof(out), NULL, 0) != 0)
        fail_msg("openssl could not make the test's certificates: %s", out);
    closed_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(closed_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(closed_fd, (struct sockaddr *)&a, &al), 0);
    pool_it.closed_port = ntohs(a.sin_port);
    return 0;
}

int pool_group_teardown(void **state)
{
    (void)state;
    char cmd[256], out[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pool_it.ca_dir);
    it_sh(cmd, out, sizeof(out), NULL, 0);
    close(closed_fd);
    return 0;
}

/* ---- talking to them ---- */

int pool(char *out, size_t n, const char *fmt, ...)
{
    char args[2048], cmd[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "curl -s -N --max-time 30 %s", args);
    return it_sh(cmd, out, n, NULL, 0);
}

const char *at(const char *path)
{
    static char url[160];
    snprintf(url, sizeof(url), "'http://127.0.0.1:%d%s'", pool_it.worker_port, path);
    return url;
}

void mock_ctl(bool tls, const char *method, const char *path, char *out, size_t n)
{
    char cmd[768];
    snprintf(cmd, sizeof(cmd), "curl -s -X %s %s%s%s '%s://127.0.0.1:%d%s'", method,
             tls ? "--cacert " : "", tls ? pool_it.ca_dir : "", tls ? "/ca.pem" : "",
             tls ? "https" : "http", tls ? pool_it.tls_port : pool_it.mock_port, path);
    assert_int_equal(it_sh(cmd, out, n, NULL, 0), 0);
}

void mock_post(const char *what)
{
    char path[512], out[256];
    snprintf(path, sizeof(path), "/_mock/%s", what);
    mock_ctl(false, "POST", path, out, sizeof(out));
    assert_non_null(strstr(out, "\"ok\":true"));
}

void mock_fault(const char *query)
{
    char what[480];
    snprintf(what, sizeof(what), "fault?%s", query);
    mock_post(what);
}

static json_t *stats_of(bool tls)
{
    char out[16384];
    mock_ctl(tls, "GET", "/_mock/stats", out, sizeof(out));
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    return j;
}

json_t *mock_stats(void)
{
    return stats_of(false);
}

int64_t mock_stat(const char *field)
{
    json_t *s = stats_of(false);
    int64_t n = json_integer_value(json_object_get(s, field));
    json_decref(s);
    return n;
}

int64_t calls_of(json_t *stats, const char *account, const char *status)
{
    json_t *a = json_object_get(json_object_get(stats, "accounts"), account);
    return json_integer_value(json_object_get(json_object_get(a, "status"), status));
}

int64_t mock_calls(bool tls, const char *name, const char *status)
{
    json_t *s = stats_of(tls);
    int64_t n = strcmp(status, "dropped") == 0
                    ? json_integer_value(json_object_get(
                          json_object_get(json_object_get(s, "accounts"), name), "dropped"))
                    : calls_of(s, name, status);
    json_decref(s);
    return n;
}

int64_t table(struct it *t, const char *name, const char *field)
{
    char args[128], out[16384];
    snprintf(args, sizeof(args), "--json show %s", name);
    assert_int_equal(it_rotactl(t, args, out, sizeof(out)), 0);
    json_t *j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("rotactl show %s: %s", name, out);
    json_t *v = json_object_get(j, field);
    if (!v)
        fail_msg("rotactl show %s has no %s: %s", name, field, out);
    int64_t n = json_is_real(v) ? (int64_t)json_real_value(v) : json_integer_value(v);
    json_decref(j);
    return n;
}

bool logged(const char *first, ...)
{
    FILE *f = fopen(pool_it.worker_log, "r");
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

bool worker_alive(void)
{
    int st;
    return pool_it.worker > 0 && waitpid(pool_it.worker, &st, WNOHANG) == 0;
}

bool pool_key_run(const char *text, size_t n, const struct pool_account *a, size_t na,
                  const char *more)
{
    for (size_t k = 0; k <= na; k++) {
        const char *key = k < na ? a[k].key : more;
        for (size_t i = 0; key && i + 8 <= strlen(key); i++)
            if (memmem(text, n, key + i, 8))
                return true;
    }
    return false;
}

void healthy(void)
{
    char out[16384];
    assert_true(worker_alive());
    assert_int_equal(pool(out, sizeof(out), "-i %s", at("/readyz")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_int_equal(pool(out, sizeof(out),
                          "-i -d '{\"model\":\"chat-model\",\"messages\":[]}' %s",
                          at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
}

const char chat[] = "-d '{\"model\":\"chat-model\",\"messages\":[{\"role\":\"user\","
                    "\"content\":\"hi\"}]}'";
const char chat_stream[] = "-d '{\"model\":\"chat-model\",\"stream\":true,\"messages\":[]}'";
const char claude[] = "-d '{\"model\":\"claude-model\",\"max_tokens\":5,\"messages\":[]}'";
const char claude_stream[] = "-d '{\"model\":\"claude-model\",\"max_tokens\":5,\"stream\":true,"
                             "\"messages\":[]}'";

const char pool_routes[] = "routes:\n  - name: chat\n    models: [chat-model]\n    tiers:\n"
                           "      - {provider: oa, strategy: round-robin, model: gpt-a}\n"
                           "      - {provider: ob, model: gpt-b}\n"
                           "      - {provider: an, model: claude-a}\n"
                           "  - name: claude\n    models: [claude-model]\n    tiers:\n"
                           "      - {provider: an, model: claude-up}\n"
                           "  - name: gem\n    models: [gem-model]\n    tiers:\n"
                           "      - {provider: gm, model: gem-up}\n"
                           "  - name: textonly\n    models: [textonly-model]\n    tiers:\n"
                           "      - {provider: oa, model: gpt-a, tools: false, images: false}\n"
                           "      - {provider: ob, model: gpt-b, context: 50}\n"
                           "  - name: strict\n    models: [strict-model]\n    cross_format: false\n"
                           "    tiers:\n"
                           "      - {provider: oa, strategy: round-robin, model: gpt-a}\n"
                           "      - {provider: an, model: claude-a}\n";

/* ---- the set test_pool_faults and test_pool_hostile share ---- */

static const struct pool_account faults_accounts[] = {
    {"oa-1", "openai", "sk-it-oa1-secret"},    {"oa-2", "openai", "sk-it-oa2-secret"},
    {"ob-1", "openai", "sk-it-ob1-secret"},    {"an-1", "anthropic", "sk-it-an1-secret"},
    {"an-2", "anthropic", "sk-it-an2-secret"}, {"ts-1", "openai", "sk-it-ts1-secret"},
};

void pool_faults_up(struct it *t, const char *tag)
{
    it_init(t, tag);
    pool_mock_start(t->dir, 50, faults_accounts, 6, false);
    pool_it.tls_port = 0;
    if (pool_it.want_tls)
        pool_mock_start(t->dir, 50, faults_accounts, 6, true);
    pool_it.want_tls = false;
    int closed = pool_it.closed_port, tls = pool_it.tls_port ? pool_it.tls_port : closed;
    char rest[2048];
    snprintf(rest, sizeof(rest),
             "  - name: gone\n    kind: openai\n    base_url: http://127.0.0.1:%d\n"
             "    probe: {enabled: false}\n"
             "    accounts:\n      - {name: gone-1, credential: env:ROTA_IT_OB1}\n"
             "  - name: tls\n    kind: openai\n    base_url: https://127.0.0.1:%d\n"
             "    probe: {enabled: false}\n"
             "    accounts:\n      - {name: ts-1, credential: env:ROTA_IT_TS1}\n"
             "routes:\n"
             "  - name: chat\n    models: [chat-model]\n    tiers:\n"
             "      - {provider: oa, strategy: round-robin, model: gpt-a}\n"
             "      - {provider: ob, model: gpt-b}\n"
             "  - name: claude\n    models: [claude-model]\n    tiers:\n"
             "      - {provider: an, strategy: round-robin, model: claude-up}\n"
             "  - name: refuse\n    models: [refuse-model]\n    tiers:\n"
             "      - {provider: gone, model: gpt-g}\n      - {provider: ob, model: gpt-b}\n"
             "  - name: secure\n    models: [secure-model]\n    tiers:\n"
             "      - {provider: tls, model: gpt-t}\n      - {provider: ob, model: gpt-b}\n",
             closed, tls);
    pool_keys_export("ROTA_IT_", faults_accounts, 6);
    pool_config(t, "ROTA_IT_", faults_accounts, 5, rest);
    assert_int_equal(it_start(t), 0);
    pool_worker_start(t, NULL);
}
