/* test_pool: the dispatch pool end to end: rota-worker between the curl CLI and
 * rota-mockprovider, with a real rotad keeping the table: models spliced per tier,
 * the client's credentials kept from the provider, retries on other accounts and
 * tiers, exhaustion, streams passed through, cut, and left by their client, with the
 * tokens counted in the table. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "pool_it.h"
#include "rota.h"
#include "seqlock.h"
#include "table.h"

static const struct pool_account accounts[] = {
    {"oa-1", "openai", "sk-it-oa1-secret"}, {"oa-2", "openai", "sk-it-oa2-secret"},
    {"ob-1", "openai", "sk-it-ob1-secret"}, {"an-1", "anthropic", "sk-it-an1-secret"},
    {"gm-1", "gemini", "sk-it-gm1-secret"},
};
#define NACCOUNTS (sizeof(accounts) / sizeof(accounts[0]))

/* Everything a test needs: a mock, rotad over its accounts (pool_routes), a worker. */
static void up(struct it *t, const char *tag, const char *attempts)
{
    it_init(t, tag);
    pool_mock_start(t->dir, 50, accounts, NACCOUNTS, false);
    pool_rotad_start(t, "ROTA_IT_", accounts, NACCOUNTS, pool_routes);
    pool_worker_start(t, "--attempts", attempts, "--drain-ms", "5000", NULL);
}

/* Tokens (reported) and neutral outcomes of account "name" in the table. */
static void table_counts(struct it *t, const char *name, uint64_t *tokens, uint64_t *neutral)
{
    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(t->instance, &m, NULL, 0), 0);
    *tokens = *neutral = UINT64_MAX;
    for (uint32_t a = 0; a < m.naccounts; a++)
        if (strcmp(rota_shm_str(&m, m.accounts[a].name), name) == 0) {
            *tokens = rota_load(&m.hot[a].use0[1]);
            *neutral = rota_load(&m.hot[a].neutral);
        }
    rota_shm_detach(&m);
}

/* ---- a client of the test's own, on a socket ---- */

/* Connect to the worker with a small receive buffer (the pool soon gets ahead of a
 * client that does not read) and POST "body" to "path". */
static int raw_post(const char *path, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int rb = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)pool_it.worker_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: it\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    assert_int_equal(write(fd, req, (size_t)n), n);
    return fd;
}

/* Read from "fd" into "buf" ("len" bytes there already, a string) until it holds "want",
 * the end, or 20 s pass without a byte. Returns the length. */
static size_t read_until(int fd, char *buf, size_t cap, size_t len, const char *want)
{
    while (len + 1 < cap && !strstr(buf, want)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20000) <= 0)
            break;
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = 0;
    }
    return len;
}

/* Close "fd" with a reset, as a client that is killed does. */
static void reset_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

/* Does "text" ("n" bytes) hold a run of 8 bytes (what redaction takes out) of a key? */
static bool key_run(const char *text, size_t n)
{
    return pool_key_run(text, n, accounts, NACCOUNTS, NULL);
}

static bool log_key_run(void)
{
    static char buf[1 << 20];
    FILE *f = fopen(pool_it.worker_log, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return key_run(buf, n);
}

static void test_pool_plain_chat(void **state)
{
    struct it t;
    up(&t, "pool-plain", "3");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out),
                          "-i -H 'Authorization: Bearer sk-client-own-secret' "
                          "-H 'X-Request-Id: it-req-0001' -H 'Content-Type: application/json' "
                          "%s %s",
                          chat, at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "X-Request-Id: it-req-0001"));
    assert_non_null(strstr(out, "\"model\":\"gpt-a\"")); /* the tier's model was sent */
    json_t *s = mock_stats();
    assert_string_equal(json_string_value(json_object_get(s, "last_model")), "gpt-a");
    assert_string_equal(json_string_value(json_object_get(s, "last_request_id")),
                        "it-req-0001");
    assert_int_equal(json_integer_value(json_object_get(s, "foreign_credentials")), 0);
    assert_int_equal(json_integer_value(json_object_get(s, "unknown_key")), 0);
    json_decref(s);
    WAIT_FOR(logged("it-req-0001", "\"status\":200", "\"tokens_in\":25", NULL));
    assert_true(logged("it-req-0001", "\"status\":200", "\"tokens_in\":25", NULL));
    assert_false(logged("sk-it-", NULL)); /* no key in the access log */

    /* an unknown model and an unknown endpoint, in the endpoint's error shape */
    assert_int_equal(
        pool(out, sizeof(out), "-i -d '{\"model\":\"nope\"}' %s", at("/v1/messages")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 404"));
    assert_non_null(strstr(out, "\"type\":\"error\""));
    assert_int_equal(pool(out, sizeof(out), "%s", at("/v1/models")), 0);
    assert_non_null(strstr(out, "\"id\":\"chat-model\""));
    assert_int_equal(pool(out, sizeof(out), "-i %s", at("/readyz")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    /* SIGTERM: drains and exits 0 */
    int st = pool_stop(&pool_it.worker);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    it_cleanup(&t);
}

static void test_pool_429_retried_invisibly(void **state)
{
    struct it t;
    up(&t, "pool-429", "3");
    mock_fault("match=oa-&kind=429&count=1&retry_after=30");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", chat, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "429") + calls_of(s, "oa-2", "429"), 1);
    assert_int_equal(calls_of(s, "oa-1", "200") + calls_of(s, "oa-2", "200"), 1);
    json_decref(s);
    WAIT_FOR(logged("\"status\":429", "\"status\":200", NULL));
    assert_true(logged("\"status\":429", "\"status\":200", NULL));
    it_cleanup(&t);
}

/* A body of 200 KB (past the size the pool sends from one buffer: it is read from the
 * client's bytes and the pool's edits as curl asks), plain and streamed, the first one
 * after a 429 so that it is sent twice: it reaches the provider whole, with the tier's
 * model, and the stream asks for the usage. */
static void test_pool_large_body(void **state)
{
    (void)state;
    struct it t;
    up(&t, "pool-big", "3");
    char path[256];
    snprintf(path, sizeof(path), "%s/big.json", t.dir);
    for (int stream = 0; stream < 2; stream++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f,
                "{\"model\":\"chat-model\",%s\"messages\":[{\"role\":\"user\","
                "\"content\":\"",
                stream ? "\"stream\":true," : "");
        for (int i = 0; i < 200 * 1024; i++)
            fputc('a' + i % 26, f);
        fprintf(f, "\"}]}");
        fclose(f);
        if (!stream)
            mock_fault("match=oa-&kind=429&count=1&retry_after=30");
        static char out[65536];
        assert_int_equal(pool(out, sizeof(out),
                              "-i -H 'Content-Type: application/json' --data-binary @%s %s",
                              path, at("/v1/chat/completions")),
                         0);
        assert_non_null(strstr(out, "HTTP/1.1 200"));
        assert_non_null(strstr(out, stream ? "data: [DONE]" : "\"chat.completion\""));
        json_t *st = mock_stats();
        assert_string_equal(json_string_value(json_object_get(st, "last_model")), "gpt-a");
        assert_true(json_is_true(json_object_get(st, "last_usage_asked")) == (stream == 1));
        if (!stream)
            assert_int_equal(calls_of(st, "oa-1", "429") + calls_of(st, "oa-2", "429"), 1);
        json_decref(st);
    }
    it_cleanup(&t);
}

/* A route none of whose tiers speaks the endpoint's format, and which forbids
 * translation (cross_format: false): 400 in the endpoint's shape (waiting would not
 * help), naming the format; nothing is sent. */
static void test_pool_no_tier_speaks_the_format(void **state)
{
    (void)state;
    struct it t;
    up(&t, "pool-fmt", "3");
    char out[8192];
    assert_int_equal(pool(out, sizeof(out),
                          "-i -d '{\"contents\":[{\"parts\":[{\"text\":"
                          "\"hi\"}]}]}' %s",
                          at("/v1beta/models/strict-model:generateContent")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    assert_non_null(strstr(out, "INVALID_ARGUMENT"));
    assert_non_null(strstr(out, "no tier of its route speaks the gemini API"));
    assert_non_null(strstr(out, "cross_format: false"));
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "200") + calls_of(s, "an-1", "200"), 0);
    json_decref(s);
    WAIT_FOR(logged("\"status\":400", "\"note\":\"format\"", NULL));
    assert_true(logged("\"status\":400", "\"note\":\"format\"", NULL));
    it_cleanup(&t);
}

/* The same Gemini request to a route that lets the pool translate: its OpenAI tier
 * answers, and the client gets Gemini's answer. */
static void test_pool_gemini_client_served_by_openai(void **state)
{
    (void)state;
    struct it t;
    up(&t, "pool-xg", "3");
    char out[8192];
    assert_int_equal(pool(out, sizeof(out),
                          "-i -d '{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
                          "\"hi\"}]}]}' %s",
                          at("/v1beta/models/chat-model:generateContent")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"candidates\""));
    assert_non_null(strstr(out, "\"usageMetadata\""));
    assert_null(strstr(out, "chat.completion"));
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "200") + calls_of(s, "oa-2", "200"), 1);
    json_decref(s);
    it_cleanup(&t);
}

/* An OpenAI request with a tool whose JSON Schema holds keywords Gemini refuses (the
 * mock refuses them as Gemini does), to route gem's Gemini tier: they are dropped and
 * named in X-Rota-Schema-Dropped, and the answer comes back as a chat completion. */
static void test_pool_schema_reduced_for_gemini(void **state)
{
    (void)state;
    struct it t;
    up(&t, "pool-xs", "3");
    char out[16384];
    assert_int_equal(
        pool(out, sizeof(out),
             "-i -d '{\"model\":\"gem-model\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"weather?\"}],\"tools\":[{\"type\":\"function\",\"function\":{"
             "\"name\":\"get_weather\",\"parameters\":{\"$schema\":\"x\",\"type\":"
             "\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
             "\"additionalProperties\":false}}}]}' %s",
             at("/v1/chat/completions")),
        0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "X-Rota-Schema-Dropped: $schema,additionalProperties"));
    assert_non_null(strstr(out, "\"tool_calls\""));
    assert_non_null(strstr(out, "\"finish_reason\":\"tool_calls\""));
    it_cleanup(&t);
}

/* A tier whose model takes no tools or images is passed by for a request with them, a
 * tier with too small a context for a large one: the reasons in the 400. */
static void test_pool_tier_capabilities(void **state)
{
    (void)state;
    struct it t;
    up(&t, "pool-cap", "3");
    char out[16384];
    static const char tools[] =
        "-d '{\"model\":\"textonly-model\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}'";
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", tools, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"model\":\"gpt-b\"")); /* tier 1 took it */
    /* a plain request: tier 0 serves it */
    assert_int_equal(pool(out, sizeof(out), "-i -d '{\"model\":\"textonly-model\","
                                            "\"messages\":[{\"role\":\"user\",\"content\":"
                                            "\"hi\"}]}' %s",
                          at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "\"model\":\"gpt-a\""));
    /* tools and more than tier 1's 50 tokens of context: nobody */
    char big[1200];
    snprintf(big, sizeof(big),
             "-i -d '{\"model\":\"textonly-model\",\"max_tokens\":100,\"messages\":[{"
             "\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\","
             "\"function\":{\"name\":\"f\"}}]}' %s",
             at("/v1/chat/completions"));
    assert_int_equal(pool(out, sizeof(out), "%s", big), 0);
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    assert_non_null(strstr(out, "tier 0: tools"));
    assert_non_null(strstr(out, "tier 1: context"));
    it_cleanup(&t);
}

static void test_pool_5xx_through_tiers(void **state)
{
    struct it t;
    up(&t, "pool-5xx", "3");
    mock_fault("match=oa-&kind=5xx&status=503&count=2");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", chat, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"model\":\"gpt-b\"")); /* tier 1 answered, its model */
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "503"), 1);
    assert_int_equal(calls_of(s, "oa-2", "503"), 1);
    assert_int_equal(calls_of(s, "ob-1", "200"), 1);
    json_decref(s);
    it_cleanup(&t);
}

static void test_pool_exhausted_429(void **state)
{
    struct it t;
    up(&t, "pool-exh", "5");
    mock_fault("match=o&kind=429&retry_after=60");
    char out[16384];
    static const char strict[] =
        "-d '{\"model\":\"strict-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'";
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", strict, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 429"));
    assert_non_null(strstr(out, "Retry-After: "));
    assert_non_null(strstr(out, "tier 0: tried"));  /* each account tried once */
    assert_non_null(strstr(out, "tier 1: format")); /* the anthropic tier, passed over */
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "an-1", "200"), 0); /* never sent another format */
    json_decref(s);
    it_cleanup(&t);
}

/* When every OpenAI account is rate limited, route chat's last tier, Anthropic, answers
 * the OpenAI request: translated there and back, the client sees a chat completion. */
static void test_pool_falls_to_another_format(void **state)
{
    struct it t;
    up(&t, "pool-xa", "5");
    mock_fault("match=o&kind=429&retry_after=60");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", chat, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"object\":\"chat.completion\""));
    assert_non_null(strstr(out, "\"prompt_tokens\""));
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "an-1", "200"), 1);
    json_decref(s);
    it_cleanup(&t);
}

static void test_pool_stream_usage(void **state)
{
    struct it t;
    up(&t, "pool-stream", "3");
    /* the mock sends the role and the first content event, then holds the rest until
     * the fault is cleared: the client reads the first while the rest is unsent */
    mock_fault("match=o&kind=hold&after=2&chunks=2&count=1");
    int fd = raw_post("/v1/chat/completions",
                      "{\"model\":\"chat-model\",\"stream\":true,\"messages\":[]}");
    static char out[32768];
    out[0] = 0;
    size_t len = read_until(fd, out, sizeof(out), 0, "ok0");
    assert_non_null(strstr(out, "ok0"));
    assert_null(strstr(out, "ok1"));
    /* passed on while upstream still held the rest */
    assert_int_equal(mock_stat("holding"), 1);
    mock_post("clear");
    read_until(fd, out, sizeof(out), len, "data: [DONE]");
    close(fd);
    assert_non_null(strstr(out, "ok1"));
    assert_non_null(strstr(out, "data: [DONE]"));
    assert_null(strstr(out, "\"usage\":{")); /* not asked for: stripped */
    json_t *s = mock_stats();
    assert_true(json_is_true(json_object_get(s, "last_usage_asked"))); /* the pool asked */
    json_decref(s);
    /* the usage reached the table: 50 tokens on the account that answered */
    uint64_t a1, a2, n;
    table_counts(&t, "oa-1", &a1, &n);
    table_counts(&t, "oa-2", &a2, &n);
    assert_int_equal(a1 + a2, 50);
    /* asked for: it passes */
    assert_int_equal(pool(out, sizeof(out),
                          "-d '{\"model\":\"chat-model\",\"stream\":true,\"stream_options\":"
                          "{\"include_usage\":true},\"messages\":[]}' %s",
                          at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "\"usage\":{\"prompt_tokens\":25"));
    assert_non_null(strstr(out, "data: [DONE]"));
    it_cleanup(&t);
}

static void test_pool_stream_cut_midway(void **state)
{
    struct it t;
    up(&t, "pool-cut", "3");
    mock_fault("match=o&kind=cut&after=3");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out), "%s %s", chat_stream, at("/v1/chat/completions")),
                     0);
    assert_non_null(strstr(out, "ok1"));                /* what came, came */
    assert_non_null(strstr(out, "data: {\"error\":{")); /* then the error event */
    assert_null(strstr(out, "[DONE]"));                 /* never a clean end */
    json_t *s = mock_stats();
    assert_int_equal(calls_of(s, "oa-1", "200") + calls_of(s, "oa-2", "200") +
                         calls_of(s, "ob-1", "200"),
                     1); /* no retry after the first byte */
    json_decref(s);
    /* Anthropic's shape */
    mock_fault("match=an&kind=cut&after=3");
    assert_int_equal(pool(out, sizeof(out), "%s %s", claude_stream, at("/v1/messages")), 0);
    assert_non_null(strstr(out, "event: error"));
    assert_null(strstr(out, "message_stop"));
    it_cleanup(&t);
}

static void test_pool_client_leaves_stream(void **state)
{
    struct it t;
    up(&t, "pool-leave", "3");
    mock_fault("match=o&kind=drip&ms=300&chunks=6&count=1");
    char out[8192], cmd[1024];
    /* the client reads the first event and goes */
    snprintf(cmd, sizeof(cmd),
             "curl -s -N --max-time 30 -d '{\"model\":\"chat-model\",\"stream\":true,"
             "\"messages\":[]}' %s | head -c 100 >/dev/null",
             at("/v1/chat/completions"));
    it_sh(cmd, out, sizeof(out), NULL, 0);
    WAIT_FOR(logged("client gone", "\"tokens_in\":25", NULL));
    assert_true(logged("client gone", "\"tokens_in\":25", "\"tokens_out\":25", NULL));
    uint64_t a1, a2, n1, n2;
    table_counts(&t, "oa-1", &a1, &n1);
    table_counts(&t, "oa-2", &a2, &n2);
    assert_int_equal(a1 + a2, 50); /* the tokens were counted */
    assert_int_equal(n1 + n2, 1);  /* reported as cancelled: not the account's fault */
    it_cleanup(&t);
}

static void test_pool_anthropic(void **state)
{
    struct it t;
    up(&t, "pool-an", "3");
    char out[16384];
    assert_int_equal(
        pool(out, sizeof(out),
             "-i -H 'x-api-key: sk-client-own-secret' -H 'anthropic-version: 2023-06-01' "
             "-d '{\"model\":\"claude-model\",\"max_tokens\":5,\"messages\":[]}' %s",
             at("/v1/messages")),
        0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"model\":\"claude-up\""));
    assert_non_null(strstr(out, "\"type\":\"message\""));
    assert_int_equal(
        pool(out, sizeof(out),
             "-H 'x-api-key: sk-client-own-secret' -d '{\"model\":\"claude-model\","
             "\"max_tokens\":5,\"stream\":true,\"messages\":[]}' %s",
             at("/v1/messages")),
        0);
    assert_non_null(strstr(out, "event: message_start"));
    assert_non_null(strstr(out, "event: message_stop"));
    json_t *s = mock_stats();
    assert_int_equal(json_integer_value(json_object_get(s, "foreign_credentials")), 0);
    assert_int_equal(calls_of(s, "an-1", "200"), 2);
    json_decref(s);
    uint64_t tok, n;
    WAIT_FOR((table_counts(&t, "an-1", &tok, &n), tok == 100));
    assert_int_equal(tok, 100);
    it_cleanup(&t);
}

/* The client stops reading, the pool falls behind it and refuses upstream's next piece
 * (libcurl holds it), then the client resets: the drain resumes the transfer, and the
 * held piece, handed over inside the resume, ends the drain (--drain-bytes 1). */
static void test_pool_client_resets_while_behind(void **state)
{
    struct it t;
    pool_it.worker_extra[0] = "--drain-bytes";
    pool_it.worker_extra[1] = "1";
    up(&t, "pool-reset", "3");
    /* content events far larger than the socket buffers between the pool and the client */
    mock_fault("match=o&kind=drip&pad=900000&chunks=12&count=1");
    int fd = raw_post("/v1/chat/completions",
                      "{\"model\":\"chat-model\",\"stream\":true,\"messages\":[]}");
    sleep_ms(1500); /* time to fall behind; a slow run only makes the case easier */
    reset_close(fd);
    WAIT_FOR(logged("client gone", NULL) || !worker_alive());
    assert_true(worker_alive());
    assert_true(logged("client gone", NULL));
    char out[4096];
    assert_int_equal(pool(out, sizeof(out), "-i %s", at("/readyz")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    it_cleanup(&t);
}

/* A client slower than upstream, events too long to hold (past 1 MiB): every byte comes,
 * in order, however often the client is behind. */
static void test_pool_stream_slow_client(void **state)
{
    struct it t;
    up(&t, "pool-slow", "3");
    mock_fault("match=o&kind=drip&pad=1200000&chunks=3&count=1");
    char out[256], cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "curl -s -N --max-time 60 --limit-rate 4M -d '{\"model\":\"chat-model\","
             "\"stream\":true,\"messages\":[]}' %s | tee %s/slow.out | tr -c x '\\n' | "
             "awk 'length($0) >= 1000 {n += length($0)} END {print n + 0}'",
             at("/v1/chat/completions"), t.dir);
    assert_int_equal(it_sh(cmd, out, sizeof(out), NULL, 0), 0);
    assert_int_equal(strtol(out, NULL, 10), 3 * 1200000);
    snprintf(cmd, sizeof(cmd), "tail -c 200 %s/slow.out", t.dir);
    assert_int_equal(it_sh(cmd, out, sizeof(out), NULL, 0), 0);
    assert_non_null(strstr(out, "data: [DONE]"));
    it_cleanup(&t);
}

/* An upstream that echoes the key it was sent in its error body: the client and the
 * access log never see a piece of it, whichever way the body reaches the client. */
static void test_pool_keys_kept_from_answers(void **state)
{
    struct it t;
    pool_it.worker_extra[0] = "--keepalive-ms";
    pool_it.worker_extra[1] = "100";
    up(&t, "pool-echo", "3");
    char out[16384];
    /* a 400, passed through as it came */
    mock_fault("match=an&kind=echo_key&status=400&count=1");
    assert_int_equal(pool(out, sizeof(out),
                          "-i -d '{\"model\":\"claude-model\",\"max_tokens\":5,"
                          "\"messages\":[]}' %s",
                          at("/v1/messages")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    assert_non_null(strstr(out, "Incorrect API key provided"));
    assert_false(key_run(out, strlen(out)));
    /* in the error event of a stream that keep-alive comments began */
    mock_fault("match=an&kind=echo_key&status=400&ms=800&count=1");
    assert_int_equal(pool(out, sizeof(out), "%s %s", claude_stream, at("/v1/messages")), 0);
    assert_non_null(strstr(out, ": keep-alive"));
    assert_non_null(strstr(out, "event: error"));
    assert_non_null(strstr(out, "Incorrect API key provided"));
    assert_false(key_run(out, strlen(out)));
    /* 503 from every account: the last answer passed once the attempts are spent, with
     * none of the three keys the request used */
    mock_fault("match=o&kind=echo_key&status=503&count=3");
    assert_int_equal(pool(out, sizeof(out), "-i %s %s", chat, at("/v1/chat/completions")), 0);
    assert_non_null(strstr(out, "HTTP/1.1 503"));
    assert_non_null(strstr(out, "Incorrect API key provided"));
    assert_false(key_run(out, strlen(out)));
    WAIT_FOR(logged("\"status\":503", NULL));
    assert_true(logged("\"status\":503", NULL));
    assert_false(log_key_run());
    it_cleanup(&t);
}

/* A streamed call whose answer is no event stream (Gemini's :streamGenerateContent
 * without alt=sse is a JSON array), slow to come: no keep-alive comment is sent ahead of
 * it, and it passes whole, as it came. */
static void test_pool_stream_answered_whole(void **state)
{
    struct it t;
    pool_it.worker_extra[0] = "--keepalive-ms";
    pool_it.worker_extra[1] = "100";
    up(&t, "pool-whole", "3");
    mock_fault("match=gm&kind=latency&ms=800&count=1");
    char out[16384];
    assert_int_equal(pool(out, sizeof(out),
                          "-i -d '{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}' %s",
                          at("/v1beta/models/gem-model:streamGenerateContent")),
                     0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "Content-Type: application/json"));
    assert_non_null(strstr(out, "\"candidates\""));
    assert_null(strstr(out, "keep-alive"));
    assert_null(strstr(out, "\"error\""));
    it_cleanup(&t);
}

/* SIGTERM and a call that outlasts --stop-ms: reported cancelled (not the account's
 * fault) and logged before the worker exits. */
static void test_pool_stop_cancels_late_calls(void **state)
{
    struct it t;
    pool_it.worker_extra[0] = "--stop-ms";
    pool_it.worker_extra[1] = "300";
    up(&t, "pool-stop-late", "3");
    mock_fault("match=o&kind=hang&count=1");
    int fd = raw_post("/v1/chat/completions", "{\"model\":\"chat-model\",\"messages\":[]}");
    WAIT_FOR(mock_stat("faults") == 0);
    int st = pool_stop(&pool_it.worker);
    close(fd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(logged("\"stopped\"", NULL));
    uint64_t a1, a2, n1, n2;
    table_counts(&t, "oa-1", &a1, &n1);
    table_counts(&t, "oa-2", &a2, &n2);
    assert_int_equal(n1 + n2, 1); /* reported cancelled */
    it_cleanup(&t);
}

/* SIGTERM while a call is in flight: the worker finishes it, sends the whole answer
 * (saying Connection: close) and only then exits 0. */
static void test_pool_stop_delivers_the_last_answer(void **state)
{
    struct it t;
    up(&t, "pool-stop-last", "3");
    mock_fault("match=o&kind=latency&ms=600&count=1");
    int fd = raw_post("/v1/chat/completions", "{\"model\":\"chat-model\",\"messages\":[]}");
    WAIT_FOR(mock_stat("faults") == 0); /* the call is at the mock */
    int st = pool_stop(&pool_it.worker);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char buf[8192] = "";
    size_t len = read_until(fd, buf, sizeof(buf), 0, "\"usage\"");
    close(fd);
    if (!strstr(buf, "HTTP/1.1 200") || !strcasestr(buf, "connection: close") ||
        !strstr(buf, "\"usage\""))
        fail_msg("the last answer (%zu bytes): %s", len, buf);
    it_cleanup(&t);
}

/* At SIGTERM, a connection whose request is still arriving is answered (then closed),
 * and an idle kept-alive one is closed at once: the process stops when both are done. */
static void test_pool_stop_answers_a_request_still_arriving(void **state)
{
    (void)state;
    struct it t;
    up(&t, "pool-stop-part", "3");
    int idle = raw_post("/v1/chat/completions", "{\"model\":\"chat-model\",\"messages\":[]}");
    char buf[8192] = "";
    read_until(idle, buf, sizeof(buf), 0, "\"usage\""); /* answered: now idle, kept alive */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)pool_it.worker_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    static const char body[] = "{\"model\":\"chat-model\",\"messages\":[]}";
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: it\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     strlen(body));
    assert_int_equal(write(fd, head, (size_t)n), n); /* the head, not yet the body */
    sleep_ms(300);
    assert_int_equal(kill(pool_it.worker, SIGTERM), 0);
    /* the idle connection is closed by the worker */
    char tmp[64];
    struct pollfd p = {.fd = idle, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(read(idle, tmp, sizeof(tmp)), 0);
    close(idle);
    sleep_ms(300);
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    buf[0] = 0;
    size_t len = read_until(fd, buf, sizeof(buf), 0, "\"usage\"");
    close(fd);
    if (!strstr(buf, "HTTP/1.1 200") || !strcasestr(buf, "connection: close"))
        fail_msg("the answer to the request still arriving (%zu bytes): %s", len, buf);
    int st = pool_stop(&pool_it.worker);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    it_cleanup(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pool_plain_chat, pool_teardown),
        cmocka_unit_test_teardown(test_pool_429_retried_invisibly, pool_teardown),
        cmocka_unit_test_teardown(test_pool_5xx_through_tiers, pool_teardown),
        cmocka_unit_test_teardown(test_pool_exhausted_429, pool_teardown),
        cmocka_unit_test_teardown(test_pool_falls_to_another_format, pool_teardown),
        cmocka_unit_test_teardown(test_pool_stream_usage, pool_teardown),
        cmocka_unit_test_teardown(test_pool_stream_cut_midway, pool_teardown),
        cmocka_unit_test_teardown(test_pool_client_leaves_stream, pool_teardown),
        cmocka_unit_test_teardown(test_pool_anthropic, pool_teardown),
        cmocka_unit_test_teardown(test_pool_client_resets_while_behind, pool_teardown),
        cmocka_unit_test_teardown(test_pool_stream_slow_client, pool_teardown),
        cmocka_unit_test_teardown(test_pool_keys_kept_from_answers, pool_teardown),
        cmocka_unit_test_teardown(test_pool_stream_answered_whole, pool_teardown),
        cmocka_unit_test_teardown(test_pool_stop_cancels_late_calls, pool_teardown),
        cmocka_unit_test_teardown(test_pool_stop_delivers_the_last_answer, pool_teardown),
        cmocka_unit_test_teardown(test_pool_large_body, pool_teardown),
        cmocka_unit_test_teardown(test_pool_no_tier_speaks_the_format, pool_teardown),
        cmocka_unit_test_teardown(test_pool_gemini_client_served_by_openai, pool_teardown),
        cmocka_unit_test_teardown(test_pool_schema_reduced_for_gemini, pool_teardown),
        cmocka_unit_test_teardown(test_pool_tier_capabilities, pool_teardown),
        cmocka_unit_test_teardown(test_pool_stop_answers_a_request_still_arriving,
                                  pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
