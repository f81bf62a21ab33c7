/* test_front: the dispatch pool's HTTP front as clients meet it: a real rota-front-echo
 * process (two loop threads) on loopback, driven by raw sockets and by curl. Keep-alive,
 * pipelining in order, chunked bodies, 100-continue, HTTP/1.0, every refusal with its
 * status (400 408 413 417 431 503), a client leaving mid-stream, the Unix socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include <jansson.h>

#include "front_it.h"

static struct server srv;

static int group_setup(void **state)
{
    static const char *const args[] = {"--threads",  "2",    "--header-ms",   "2500",
                                       "--body-ms",  "2500", "--max-body",    "100000",
                                       "--max-head", "4096", "--max-headers", "40",
                                       NULL};
    server_start(&srv, args);
    return 0;
}

static int group_teardown(void **state)
{
    server_stop(&srv);
    return 0;
}

/* Run "cmd" in a shell; its output into "out". Returns its exit status. */
static int run(const char *cmd, char *out, size_t n)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t k = fread(out, 1, n - 1, p);
    out[k] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_front_keepalive(void **state)
{
    struct reader r = {.fd = dial(srv.port)};
    struct resp p;
    for (int i = 0; i < 3; i++) { /* three requests, one connection */
        send_str(r.fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
        assert_true(read_resp(&r, &p));
        assert_int_equal(p.status, 200);
        assert_string_equal(p.body, "hi");
        assert_null(strcasestr(p.head, "connection: close"));
    }
    close(r.fd);
    /* curl reuses the connection for its second transfer */
    char out[4096], cmd[512];
    snprintf(cmd, sizeof(cmd),
             "curl -sS -o /dev/null -w '%%{http_code} %%{num_connects}\\n' "
             "http://127.0.0.1:%d/healthz http://127.0.0.1:%d/echo",
             srv.port, srv.port);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "200 1\n200 0\n");
}

static void test_front_healthz(void **state)
{
    struct resp p;
    assert_int_equal(request(srv.port, "GET /healthz HTTP/1.1\r\n\r\n", &p), 200);
    assert_string_equal(p.body, "{\"ok\":true}");
    char id[64];
    assert_true(resp_header(&p, "x-request-id", id, sizeof(id)));
    assert_int_equal(strncmp(id, "req_", 4), 0);
    /* a client's own request id comes back */
    assert_int_equal(
        request(srv.port, "GET /healthz HTTP/1.1\r\nX-Request-Id: abc-1\r\n\r\n", &p), 200);
    assert_true(resp_header(&p, "x-request-id", id, sizeof(id)));
    assert_string_equal(id, "abc-1");
}

static void test_front_pipelined(void **state)
{
    struct reader r = {.fd = dial(srv.port)};
    /* three requests in one write; the first is answered late, from a timer */
    send_str(r.fd, "GET /slow?ms=300 HTTP/1.1\r\n\r\n"
                   "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\ntwo"
                   "GET /hdr?name=x-third HTTP/1.1\r\nX-Third: three\r\n\r\n");
    struct resp p;
    const char *want[] = {"slow", "two", "three"};
    for (int i = 0; i < 3; i++) {
        assert_true(read_resp(&r, &p));
        assert_int_equal(p.status, 200);
        assert_string_equal(p.body, want[i]);
    }
    close(r.fd);
}

static void test_front_chunked_body(void **state)
{
    struct reader r = {.fd = dial(srv.port)};
    send_str(r.fd, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    usleep(50000);
    send_str(r.fd, "lo\r\n6\r\n worl");
    usleep(50000);
    send_str(r.fd, "d\r\n0\r\n\r\n");
    struct resp p;
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 200);
    assert_string_equal(p.body, "hello world");
    char v[32];
    assert_true(resp_header(&p, "x-body-len", v, sizeof(v)));
    assert_string_equal(v, "11");
    close(r.fd);
    /* curl, chunked from stdin */
    char out[4096], cmd[512];
    snprintf(cmd, sizeof(cmd),
             "printf 'chunked by curl' | curl -sS -H 'Transfer-Encoding: chunked' "
             "--data-binary @- http://127.0.0.1:%d/echo",
             srv.port);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "chunked by curl");
}

static void test_front_expect_continue(void **state)
{
    struct reader r = {.fd = dial(srv.port)};
    send_str(r.fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    struct resp p;
    assert_true(read_resp(&r, &p)); /* before any body byte is sent */
    assert_int_equal(p.status, 100);
    send_str(r.fd, "body");
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 200);
    assert_string_equal(p.body, "body");
    close(r.fd);
    /* refused bodies: no 100, the refusal at once */
    assert_int_equal(request(srv.port,
                             "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                             "Content-Length: 200000\r\n\r\n",
                             &p),
                     413);
    assert_int_equal(
        request(srv.port, "POST /echo HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\n",
                &p),
        417);
    /* curl waits for the 100 (it would wait 1 s without one, and still succeed: so the
     * time it took says whether the 100 came) */
    char out[4096], cmd[512];
    snprintf(cmd, sizeof(cmd),
             "curl -sS -H 'Expect: 100-continue' --expect100-timeout 5 -d 'waited' "
             "-w ' %%{http_code}' http://127.0.0.1:%d/echo",
             srv.port);
    uint64_t t0 = now_ms();
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "waited 200");
    assert_true(now_ms() - t0 < 4000);
}

static void test_front_http10(void **state)
{
    struct reader r = {.fd = dial(srv.port)};
    send_str(r.fd, "POST /echo HTTP/1.0\r\nContent-Length: 3\r\n\r\nold");
    struct resp p;
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 200);
    assert_string_equal(p.body, "old");
    assert_non_null(strcasestr(p.head, "connection: close"));
    assert_true(closed_by_peer(r.fd)); /* no keep-alive for HTTP/1.0 by default */
    close(r.fd);
    /* asked for: kept alive, and said so */
    r = (struct reader){.fd = dial(srv.port)};
    for (int i = 0; i < 2; i++) {
        send_str(r.fd, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_true(read_resp(&r, &p));
        assert_int_equal(p.status, 200);
        assert_non_null(strcasestr(p.head, "connection: keep-alive"));
    }
    close(r.fd);
    /* a stream to an HTTP/1.0 client: not chunked, ended by the close */
    assert_int_equal(request(srv.port, "GET /stream?n=3&ms=1 HTTP/1.0\r\n\r\n", &p), 200);
    assert_null(strcasestr(p.head, "transfer-encoding"));
    assert_string_equal(p.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

/* "req" on a new connection gets "status", then the connection is closed. */
static void refused(const char *req, int status)
{
    struct reader r = {.fd = dial(srv.port)};
    send_str(r.fd, req);
    struct resp p;
    if (!read_resp(&r, &p) || p.status != status)
        fail_msg("%.60s...: status %d, wanted %d", req, p.status, status);
    assert_non_null(strcasestr(p.head, "connection: close"));
    json_t *v = json_loads(p.body, 0, NULL);
    assert_non_null(json_object_get(v, "error")); /* a JSON error an SDK can read */
    json_decref(v);
    assert_true(closed_by_peer(r.fd));
    close(r.fd);
}

static void test_front_malformed(void **state)
{
    refused("GARBAGE\r\n\r\n", 400);
    refused("GET / FOO/1.1\r\n\r\n", 400);
    refused("G@T / HTTP/1.1\r\n\r\n", 400);
    refused("POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    refused("POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400);
    refused("POST /echo HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400);
    refused("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400);
}

static void test_front_header_limits(void **state)
{
    char big[8192];
    snprintf(big, sizeof(big), "GET /echo HTTP/1.1\r\nX-Big: %05000d\r\n\r\n", 0);
    refused(big, 431);
    char many[4096] = "GET /echo HTTP/1.1\r\n";
    for (int i = 0; i < 41; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "X-H%d: v\r\n", i);
    strcat(many, "\r\n");
    refused(many, 431);
    /* just under both limits: answered */
    many[0] = '\0';
    strcat(many, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 40; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "X-H%d: v\r\n", i);
    strcat(many, "\r\n");
    struct resp p;
    assert_int_equal(request(srv.port, many, &p), 200);
}

static void test_front_body_limits(void **state)
{
    refused("POST /echo HTTP/1.1\r\nContent-Length: 100001\r\n\r\n", 413);
    /* chunked past the limit: refused as soon as it is passed */
    struct reader r = {.fd = dial(srv.port)};
    send_str(r.fd, "POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[8200];
    memset(chunk, 'x', sizeof(chunk));
    memcpy(chunk, "2000\r\n", 6);
    memcpy(chunk + 6 + 0x2000, "\r\n", 2);
    struct resp p;
    for (int i = 0; i < 13; i++) /* 106,496 bytes */
        send(r.fd, chunk, 6 + 0x2000 + 2, MSG_NOSIGNAL);
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 413);
    json_t *v = json_loads(p.body, 0, NULL); /* /v1/messages: Anthropic's shape */
    assert_string_equal(json_string_value(json_object_get(v, "type")), "error");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "type")),
                        "request_too_large");
    json_decref(v);
    close(r.fd);
    /* curl sees the 413 too, not a reset, though it sends the whole body */
    char out[4096], cmd[512];
    snprintf(cmd, sizeof(cmd),
             "head -c 300000 /dev/zero | curl -sS -o /dev/null -w '%%{http_code}' "
             "-H 'Expect:' --data-binary @- http://127.0.0.1:%d/echo",
             srv.port);
    run(cmd, out, sizeof(out));
    assert_string_equal(out, "413");
}

static void test_front_not_json(void **state)
{
    /* the front does not judge bodies: the handler does */
    struct resp p;
    assert_int_equal(request(srv.port,
                             "POST /echo HTTP/1.1\r\nContent-Type: application/json\r\n"
                             "Content-Length: 9\r\n\r\n{not json",
                             &p),
                     200);
    assert_string_equal(p.body, "{not json");
}

static void test_front_error_shape(void **state)
{
    char out[4096], cmd[512];
    snprintf(cmd, sizeof(cmd),
             "printf 'a \"quote\"\\tand\\001 caf\\303\\251 bad\\377' | curl -sS "
             "--data-binary @- -w '\\n%%{http_code}' "
             "'http://127.0.0.1:%d/v1beta/error?status=429'",
             srv.port);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    char *nl = strrchr(out, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, "429");
    *nl = '\0';
    json_error_t e;
    json_t *v = json_loads(out, 0, &e);
    if (!v)
        fail_msg("not JSON: %s: %s", e.text, out);
    json_t *err = json_object_get(v, "error");
    assert_string_equal(json_string_value(json_object_get(err, "status")),
                        "RESOURCE_EXHAUSTED");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "a \"quote\"\tand\x01 caf\xc3\xa9 bad\xef\xbf\xbd");
    json_decref(v);
}

static void test_front_slow_client(void **state)
{
    /* one byte a second: 408 once the head has taken longer than 2.5 s */
    struct reader r = {.fd = dial(srv.port)};
    const char *req = "GET /echo HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    uint64_t t0 = now_ms();
    int sent = 0;
    for (; req[sent]; sent++) {
        if (send(r.fd, req + sent, 1, MSG_NOSIGNAL) != 1)
            break;
        struct pollfd pf = {.fd = r.fd, .events = POLLIN};
        if (poll(&pf, 1, 1000) == 1)
            break; /* an answer */
    }
    struct resp p;
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 408);
    uint64_t took = now_ms() - t0;
    if (took < 2000 || sent < 2)
        fail_msg("408 after %llu ms and %d bytes", (unsigned long long)took, sent);
    assert_true(closed_by_peer(r.fd));
    close(r.fd);
}

/* A large body is received straight into its buffer once the parser is in it: every
 * byte must arrive in place, however the client cuts it. */
static void test_front_large_body(void **state)
{
    enum { LEN = 95000 };
    char dir[] = "/tmp/rota-front-body-XXXXXX", in[64], out[64], cmd[512], res[64];
    assert_non_null(mkdtemp(dir)); /* our own directory: no name a stranger chose */
    snprintf(in, sizeof(in), "%s/in", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    static char body[LEN], back[LEN + 1];
    for (size_t i = 0; i < LEN; i++)
        body[i] = (char)('a' + (i * 7 + i / 251) % 26);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(body, 1, LEN, f), LEN);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "curl -sS -H 'Expect:' --data-binary @%s -o %s -w '%%{http_code}' "
             "http://127.0.0.1:%d/echo",
             in, out, srv.port);
    assert_int_equal(run(cmd, res, sizeof(res)), 0);
    assert_string_equal(res, "200");
    f = fopen(out, "r");
    assert_non_null(f);
    size_t got = fread(back, 1, sizeof(back), f);
    fclose(f);
    unlink(in);
    unlink(out);
    rmdir(dir);
    assert_int_equal(got, LEN);
    assert_memory_equal(back, body, LEN);
    /* by hand, in uneven pieces with pauses: the answer says how much came */
    struct reader r = {.fd = dial(srv.port)};
    char head[128];
    snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n", LEN);
    send_str(r.fd, head);
    for (size_t at = 0, k = 1000; at < LEN; at += k, k = k * 3 % 17011 + 1) {
        size_t n = k < LEN - at ? k : LEN - at;
        assert_int_equal(send(r.fd, body + at, n, MSG_NOSIGNAL), (ssize_t)n);
        if (at % 3 == 0)
            usleep(2000);
    }
    static struct resp p; /* the head only: the echoed body is larger than a reader */
    char *end;
    while (!(end = memmem(r.buf, r.len, "\r\n\r\n", 4)))
        assert_true(more(&r));
    memcpy(p.head, r.buf, (size_t)(end - r.buf));
    assert_int_equal(strncmp(p.head, "HTTP/1.1 200", 12), 0);
    assert_true(resp_header(&p, "x-body-len", res, sizeof(res)));
    assert_string_equal(res, "95000");
    close(r.fd);
}

/* A request pipelined right behind a large body, in the same segment as its end: the
 * body's last byte goes through the parser, which then reads the next request. */
static void test_front_large_body_pipelined(void **state)
{
    enum { LEN = 40000 };
    static char buf[LEN + 256];
    int n = snprintf(buf, sizeof(buf), "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n", LEN);
    memset(buf + n, 'y', LEN);
    n += LEN;
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "GET /healthz HTTP/1.1\r\n\r\n");
    struct reader r = {.fd = dial(srv.port)};
    size_t first = 20000; /* the parser enters the body; the rest comes in one piece */
    assert_int_equal(send(r.fd, buf, first, MSG_NOSIGNAL), (ssize_t)first);
    usleep(20000);
    assert_int_equal(send(r.fd, buf + first, (size_t)n - first, MSG_NOSIGNAL),
                     (ssize_t)((size_t)n - first));
    static struct resp p;
    char v[32];
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 200);
    assert_true(resp_header(&p, "x-body-len", v, sizeof(v)));
    assert_string_equal(v, "40000");
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 200);
    close(r.fd);
}

/* A client that stops inside a large body gets 408, while a receive into that body is
 * in flight: the body stays until the receive is over (the ASan build checks). */
static void test_front_large_body_stalls(void **state)
{
    struct reader r = {.fd = dial(srv.port)};
    send_str(r.fd, "POST /echo HTTP/1.1\r\nContent-Length: 90000\r\n\r\n");
    static char part[20000];
    memset(part, 'x', sizeof(part));
    assert_int_equal(send(r.fd, part, sizeof(part), MSG_NOSIGNAL), (ssize_t)sizeof(part));
    struct resp p;
    assert_true(read_resp(&r, &p));
    assert_int_equal(p.status, 408);
    assert_int_equal(send(r.fd, part, 1000, MSG_NOSIGNAL), 1000); /* read and dropped */
    assert_true(closed_by_peer(r.fd));
    close(r.fd);
    assert_int_equal(request(srv.port, "GET /healthz HTTP/1.1\r\n\r\n", &p), 200);
}

static void test_front_client_leaves_mid_stream(void **state)
{
    long closes = stat_of(srv.port, "closes");
    struct reader r = {.fd = dial(srv.port)};
    send_str(r.fd, "GET /stream?n=0&ms=5 HTTP/1.1\r\n\r\n");
    while (!memmem(r.buf, r.len, "data: 3", 7)) /* a few events in */
        assert_true(more(&r));
    assert_non_null(memmem(r.buf, r.len, "text/event-stream", 17));
    struct linger lg = {1, 0}; /* leave with a reset, as a killed client does */
    setsockopt(r.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(r.fd);
    long now = closes;
    for (int i = 0; i < 100 && now == closes; i++) {
        usleep(20000);
        now = stat_of(srv.port, "closes");
    }
    /* /stats may be answered by the other thread: the count is the process's */
    assert_int_equal(now, closes + 1);
    /* and the worker goes on serving */
    struct resp p;
    assert_int_equal(request(srv.port, "POST /echo HTTP/1.1\r\nContent-Length: 1\r\n\r\nk", &p),
                     200);
    assert_int_equal(request(srv.port, "GET /stream?n=2&ms=1 HTTP/1.1\r\n\r\n", &p), 200);
    assert_string_equal(p.body, "data: 0\n\ndata: 1\n\n");
}

static void test_front_conn_cap(void **state)
{
    struct server s;
    static const char *const args[] = {"--threads", "1", "--max-conns", "4", NULL};
    server_start(&s, args);
    int held[4];
    struct resp p;
    for (int i = 0; i < 4; i++) { /* four connections, each seen to be served */
        struct reader r = {.fd = dial(s.port)};
        send_str(r.fd, "GET /healthz HTTP/1.1\r\n\r\n");
        assert_true(read_resp(&r, &p));
        assert_int_equal(p.status, 200);
        held[i] = r.fd;
    }
    assert_int_equal(request(s.port, "GET /healthz HTTP/1.1\r\n\r\n", &p), 503);
    char v[32];
    assert_true(resp_header(&p, "retry-after", v, sizeof(v)));
    assert_string_equal(v, "1");
    close(held[0]); /* room again, once the worker has seen it go */
    int status = 0;
    for (int i = 0; i < 50 && status != 200; i++) {
        usleep(20000);
        status = request(s.port, "GET /healthz HTTP/1.1\r\n\r\n", &p);
    }
    assert_int_equal(status, 200);
    for (int i = 1; i < 4; i++)
        close(held[i]);
    server_stop(&s);
}

static void test_front_unix_socket(void **state)
{
    char dir[] = "/tmp/rota-front-XXXXXX", path[128], out[4096], cmd[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/front.sock", dir);
    /* a symlink there is neither followed nor replaced */
    char target[160];
    snprintf(target, sizeof(target), "%s/target", dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(cmd, sizeof(cmd), "%s/tests/rota-front-echo --unix %s 2>&1",
             getenv("ROTA_TEST_BIN") ? getenv("ROTA_TEST_BIN") : ".", path);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "symlink"));
    assert_int_equal(access(target, F_OK), -1);
    unlink(path);
    /* a stale socket of ours is replaced; the new one has the mode asked for */
    int st = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(st, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(st);
    struct server s;
    const char *const args[] = {"--unix", path, NULL};
    server_start(&s, args);
    struct stat sb;
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(cmd, sizeof(cmd), "curl -sS --unix-socket %s http://x/healthz", path);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "{\"ok\":true}");
    /* a live one is not */
    snprintf(cmd, sizeof(cmd), "%s/tests/rota-front-echo --unix %s 2>&1",
             getenv("ROTA_TEST_BIN") ? getenv("ROTA_TEST_BIN") : ".", path);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "in use"));
    server_stop(&s);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_front_keepalive),
        cmocka_unit_test(test_front_healthz),
        cmocka_unit_test(test_front_pipelined),
        cmocka_unit_test(test_front_chunked_body),
        cmocka_unit_test(test_front_expect_continue),
        cmocka_unit_test(test_front_http10),
        cmocka_unit_test(test_front_malformed),
        cmocka_unit_test(test_front_header_limits),
        cmocka_unit_test(test_front_body_limits),
        cmocka_unit_test(test_front_not_json),
        cmocka_unit_test(test_front_error_shape),
        cmocka_unit_test(test_front_slow_client),
        cmocka_unit_test(test_front_large_body),
        cmocka_unit_test(test_front_large_body_pipelined),
        cmocka_unit_test(test_front_large_body_stalls),
        cmocka_unit_test(test_front_client_leaves_mid_stream),
        cmocka_unit_test(test_front_conn_cap),
        cmocka_unit_test(test_front_unix_socket),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
