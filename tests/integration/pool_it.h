/*
 * pool_it.h - for the dispatch pool's fault and hostile-client tests: a real rotad, a
 * rota-mockprovider (and one serving HTTPS with a certificate made by openssl), a
 * rota-worker between them and the test; what the client received, what the mock saw,
 * what the table says (rotactl --json show), what the access log says. Header-only
 * (static functions), included by test_pool_faults.c and test_pool_hostile.c.
 *
 * The config: routes "chat" over oa (oa-1, oa-2, round-robin, model gpt-a) then ob
 * (ob-1, gpt-b); "claude" over an (an-1, an-2, round-robin); "refuse" over gone (a port
 * that refuses connections) then ob; "secure" over tls (the HTTPS mock, ts-1) then ob.
 */
#ifndef ROTA_POOL_IT_H
#define ROTA_POOL_IT_H

#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "front_it.h"
#include "rotad_harness.h"

static pid_t mock_pid, tls_pid, worker_pid;
static int mock_port, tls_port, worker_port, closed_port, closed_fd = -1;
static char worker_log[256], ca_dir[] = "/tmp/rota-faults-ca-XXXXXX";
static const char *worker_extra[6]; /* more rota-worker arguments, for the next up() */
static bool want_tls;               /* the next up() starts the HTTPS mock too */

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

#define WAIT_FOR(cond)                                                                         \
    do {                                                                                       \
        for (int w_ = 0; w_ < 400 && !(cond); w_++)                                            \
            sleep_ms(50);                                                                      \
    } while (0)

/* ---- the processes ---- */

/* Run "argv", its first stdout line parsed for the port; stderr to "log". */
static inline pid_t spawn(char *const argv[], const char *log, int *port)
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

static inline void mock_start(const char *dir, bool tls)
{
    char conf[256], bin[512], cert[160], key[160];
    snprintf(conf, sizeof(conf), "%s/mock.json", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fchmod(fileno(f), 0600);
    fputs("{\"tokens_per_call\": 50, \"accounts\": ["
          "{\"key\": \"sk-it-oa1-secret\", \"provider\": \"openai\", \"name\": \"oa-1\"},"
          "{\"key\": \"sk-it-oa2-secret\", \"provider\": \"openai\", \"name\": \"oa-2\"},"
          "{\"key\": \"sk-it-ob1-secret\", \"provider\": \"openai\", \"name\": \"ob-1\"},"
          "{\"key\": \"sk-it-an1-secret\", \"provider\": \"anthropic\", \"name\": \"an-1\"},"
          "{\"key\": \"sk-it-an2-secret\", \"provider\": \"anthropic\", \"name\": \"an-2\"},"
          "{\"key\": \"sk-it-ts1-secret\", \"provider\": \"openai\", \"name\": \"ts-1\"}]}",
          f);
    fclose(f);
    snprintf(bin, sizeof(bin), "%s/tools/rota-mockprovider/rota-mockprovider", it_bin());
    snprintf(cert, sizeof(cert), "%s/server.pem", ca_dir);
    snprintf(key, sizeof(key), "%s/server.key", ca_dir);
    char *argv[] = {bin,          "--config", conf,        "--port", "0",
                    "--tls-cert", cert,       "--tls-key", key,      NULL};
    if (!tls)
        argv[5] = NULL;
    if (tls)
        tls_pid = spawn(argv, NULL, &tls_port);
    else
        mock_pid = spawn(argv, NULL, &mock_port);
}

/* rotad over the mock's accounts. Routes: "chat" over oa (two accounts, gpt-a) then ob
 * (gpt-b); "claude" over an (two accounts); "refuse" over gone (a port that refuses
 * connections) then ob; "secure" over tls (the HTTPS mock) then ob. */
static inline void rotad_start(struct it *t)
{
    static const char *const names[] = {"OA1", "OA2", "OB1", "AN1", "AN2", "TS1"};
    for (size_t i = 0; i < 6; i++) {
        char env[32], key[32];
        snprintf(env, sizeof(env), "ROTA_IT_%s", names[i]);
        snprintf(key, sizeof(key), "sk-it-%c%c%c-secret", names[i][0] + 32, names[i][1] + 32,
                 names[i][2]);
        setenv(env, key, 1);
    }
    char cfg[4096];
    snprintf(
        cfg, sizeof(cfg),
        "instance: %s\nstate_dir: %s/state\nproviders:\n"
        "  - name: oa\n    kind: openai\n    base_url: http://127.0.0.1:%d\n"
        "    probe: {enabled: false}\n"
        "    accounts:\n      - {name: oa-1, credential: env:ROTA_IT_OA1}\n"
        "      - {name: oa-2, credential: env:ROTA_IT_OA2}\n"
        "  - name: ob\n    kind: openai\n    base_url: http://127.0.0.1:%d\n"
        "    probe: {enabled: false}\n"
        "    accounts:\n      - {name: ob-1, credential: env:ROTA_IT_OB1}\n"
        "  - name: an\n    kind: anthropic\n    auth: x-api-key\n    probe: {enabled: false}\n"
        "    base_url: http://127.0.0.1:%d\n"
        "    accounts:\n      - {name: an-1, credential: env:ROTA_IT_AN1}\n"
        "      - {name: an-2, credential: env:ROTA_IT_AN2}\n"
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
        t->instance, t->dir, mock_port, mock_port, mock_port, closed_port,
        tls_port ? tls_port : closed_port);
    it_config_text(t, cfg);
    assert_int_equal(it_start(t), 0);
}

static inline void worker_start(struct it *t)
{
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/tools/rota-worker/rota-worker", it_bin());
    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", t->dir);
    char *argv[20] = {bin, "-i", t->instance, "--listen", "127.0.0.1:0", "--threads", "2"};
    size_t n = 7;
    for (size_t i = 0; worker_extra[i] && n < 19; i++)
        argv[n++] = (char *)worker_extra[i];
    argv[n] = NULL;
    memset(worker_extra, 0, sizeof(worker_extra));
    worker_pid = spawn(argv, worker_log, &worker_port);
}

/* A mock (and the HTTPS one if asked), rotad, a worker with worker_extra. */
static inline void up(struct it *t, const char *tag)
{
    it_init(t, tag);
    mock_start(t->dir, false);
    tls_port = 0;
    if (want_tls)
        mock_start(t->dir, true);
    want_tls = false;
    rotad_start(t);
    worker_start(t);
}

static inline int stop_child(pid_t *pid)
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

static inline int teardown(void **state)
{
    stop_child(&worker_pid);
    stop_child(&mock_pid);
    stop_child(&tls_pid);
    return it_teardown(state);
}

/* For a group of tests: a port nothing listens on (a socket bound to it, never
 * listening, keeps it so: a connect there is refused) and, with "certs", a throwaway CA
 * and a certificate for 127.0.0.1 it signed, made with openssl in ca_dir. */
static inline int pool_setup(bool certs)
{
    assert_non_null(mkdtemp(ca_dir));
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
        ca_dir);
    if (certs && it_sh(cmd, out, sizeof(out), NULL, 0) != 0)
        fail_msg("openssl could not make the test's certificates: %s", out);
    closed_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(closed_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(closed_fd, (struct sockaddr *)&a, &al), 0);
    closed_port = ntohs(a.sin_port);
    return 0;
}

static inline int pool_group_teardown(void **state)
{
    char cmd[256], out[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", ca_dir);
    it_sh(cmd, out, sizeof(out), NULL, 0);
    close(closed_fd);
    return 0;
}

/* ---- talking to them ---- */

/* curl (the CLI) with "args" against the worker: the output (headers with -i). */
static inline int pool(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int pool(char *out, size_t n, const char *fmt, ...)
{
    char args[2048], cmd[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "curl -s -N --max-time 30 %s", args);
    return it_sh(cmd, out, n, NULL, 0);
}

static char url[128];
static inline const char *at(const char *path)
{
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", worker_port, path);
    return url;
}

/* A control request to the plain mock (or the HTTPS one, "tls"). */
static inline void mock_ctl(bool tls, const char *method, const char *path, char *out, size_t n)
{
    char cmd[768];
    snprintf(cmd, sizeof(cmd), "curl -s -X %s %s%s/ca.pem '%s://127.0.0.1:%d%s'", method,
             tls ? "--cacert " : "", tls ? ca_dir : "", tls ? "https" : "http",
             tls ? tls_port : mock_port, path);
    assert_int_equal(it_sh(cmd, out, n, NULL, 0), 0);
}

static inline void mock_fault(const char *query)
{
    char path[512], out[256];
    snprintf(path, sizeof(path), "/_mock/fault?%s", query);
    mock_ctl(false, "POST", path, out, sizeof(out));
    assert_non_null(strstr(out, "\"ok\":true"));
}

/* Calls account "name" of a mock answered with "status" ("dropped": calls it dropped). */
static inline int64_t mock_calls(bool tls, const char *name, const char *status)
{
    char out[16384];
    mock_ctl(tls, "GET", "/_mock/stats", out, sizeof(out));
    json_t *s = json_loads(out, 0, NULL), *a;
    assert_non_null(s);
    a = json_object_get(json_object_get(s, "accounts"), name);
    json_t *v = strcmp(status, "dropped") == 0
                    ? json_object_get(a, "dropped")
                    : json_object_get(json_object_get(a, "status"), status);
    int64_t n = json_integer_value(v);
    json_decref(s);
    return n;
}

/* Field "field" of account "name" as rotactl shows it (--json), from the table. */
static inline int64_t table(struct it *t, const char *name, const char *field)
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

/* Does the worker's access log hold a line with every one of the (NULL-ended) texts? */
static inline bool logged(const char *first, ...)
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

static inline bool worker_alive(void)
{
    int st;
    return worker_pid > 0 && waitpid(worker_pid, &st, WNOHANG) == 0;
}

/* The worker still serves: alive, ready, and a chat answered. */
static inline void healthy(void)
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

static const char chat[] = "-d '{\"model\":\"chat-model\",\"messages\":[{\"role\":\"user\","
                           "\"content\":\"hi\"}]}'";
static const char chat_stream[] = "-d '{\"model\":\"chat-model\",\"stream\":true,"
                                  "\"messages\":[]}'";
static const char claude[] = "-d '{\"model\":\"claude-model\",\"max_tokens\":5,"
                             "\"messages\":[]}'";

#endif
