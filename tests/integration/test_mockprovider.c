/* test_mockprovider: a real rota-mockprovider process over real HTTP on loopback: each
 * provider's probe shape, counting to the limit and that provider's 429, 401 for unknown
 * keys, every fault kind, stats, clear and reset, and exit status 0 on SIGTERM. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>

static const char config[] =
    "{\"latency_ms\": 0, \"accounts\": ["
    "{\"key\":\"sk-test-oa1\",\"provider\":\"openai\",\"name\":\"oa1\","
    " \"limits\":{\"requests\":3,\"tokens\":1000,\"window\":\"1m\"}},"
    "{\"key\":\"sk-test-oa2\",\"provider\":\"openai\",\"name\":\"oa2\"},"
    "{\"key\":\"az-test-1\",\"provider\":\"azure-openai\",\"name\":\"az1\","
    " \"limits\":{\"requests\":2}},"
    "{\"key\":\"sk-ant-test-1\",\"provider\":\"anthropic\",\"name\":\"an1\","
    " \"limits\":{\"requests\":2,\"tokens\":100000}},"
    "{\"key\":\"AIza-test-1\",\"provider\":\"gemini\",\"name\":\"ge1\",\"tier\":\"free\","
    " \"models\":{\"gemini-2.0-flash\":{\"requests\":2,\"window\":\"1d\"}},"
    " \"details_order\":[\"RetryInfo\",\"QuotaFailure\"]},"
    "{\"key\":\"gho_test_paid\",\"provider\":\"github-copilot\",\"name\":\"cp1\","
    " \"limits\":{\"requests\":3}},"
    "{\"key\":\"gho_test_free\",\"provider\":\"github-copilot\",\"name\":\"cpf\","
    " \"plan\":\"free\",\"limits\":{\"requests\":50}},"
    "{\"key\":\"ghp_test_1\",\"provider\":\"github\",\"name\":\"gh1\",\"limits\":{\"requests\":"
    "2}},"
    "{\"key\":\"ya29.test-ag\",\"provider\":\"antigravity\",\"name\":\"ag1\",\"models\":{"
    " \"gemini-2.5-pro\":{\"requests\":2,\"window\":\"5h\"},"
    " \"claude-sonnet-4-5\":{\"requests\":10}}},"
    "{\"key\":\"sk-or-test-1\",\"provider\":\"openrouter\",\"name\":\"or1\","
    " \"credits\":{\"limit\":0.03,\"usage\":0,\"per_call\":0.01}},"
    "{\"key\":\"sk-or-test-2\",\"provider\":\"openrouter\",\"name\":\"or2\","
    " \"credits\":{\"limit\":null},\"limits\":{\"requests\":1}},"
    "{\"provider\":\"llamacpp\",\"name\":\"local\",\"slots\":{\"total\":2,\"busy\":1}},"
    "{\"key\":\"sk-llama-full\",\"provider\":\"llamacpp\",\"name\":\"full\","
    " \"slots\":{\"total\":1,\"busy\":1}}"
    "]}";

/* Every credential above: none may ever appear in the tool's output. */
static const char *const keys[] = {"sk-test-oa1",   "sk-test-oa2",  "az-test-1",
                                   "sk-ant-test-1", "AIza-test-1",  "gho_test_paid",
                                   "gho_test_free", "ghp_test_1",   "ya29.test-ag",
                                   "sk-or-test-1",  "sk-or-test-2", "sk-llama-full"};

static pid_t mock_pid;
static int mock_port;
static FILE *mock_out;
static char conf_path[64] = "/tmp/rota-mock-conf-XXXXXX";
static char err_path[64] = "/tmp/rota-mock-err-XXXXXX";

/* ---- HTTP ---- */

struct resp {
    long status;
    CURLcode rc;
    char *body;
    size_t len, cap;
    char head[16384];
    size_t head_len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    if (r->len + size * n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + size * n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, size * n);
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t on_head(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    if (strncmp(p, "HTTP/", 5) == 0)
        r->head_len = 0; /* a new response head (after 100 Continue) */
    size_t k = size * n < sizeof(r->head) - r->head_len - 1 ? size * n : 0;
    memcpy(r->head + r->head_len, p, k);
    r->head_len += k;
    r->head[r->head_len] = '\0';
    return size * n;
}

/* METHOD path with the given header lines (NULL-terminated list, may be NULL) and body
 * (NULL: none); "timeout_ms" 0 = 5 s. Fills "r"; free r->body. */
static void http(const char *method, const char *path, const char *const *headers,
                 const char *body, long timeout_ms, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", mock_port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *list = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
}

/* The value of response header "name" into "buf" ("" when absent); returns buf. */
static const char *header(const struct resp *r, const char *name, char *buf, size_t n)
{
    buf[0] = '\0';
    size_t len = strlen(name);
    for (const char *line = r->head; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncasecmp(line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            snprintf(buf, n, "%.*s", (int)(k < n ? k : n - 1), v);
            return buf;
        }
    }
    return buf;
}

/* The body as JSON; fails the test if it does not parse. Caller decrefs. */
static json_t *parsed(const struct resp *r)
{
    json_error_t e;
    json_t *v = r->body ? json_loadb(r->body, r->len, 0, &e) : NULL;
    if (!v)
        fail_msg("not JSON (%s): %.300s", r->body ? e.text : "no body", r->body ? r->body : "");
    return v;
}

/* The member at dotted "path" ("error.details.0.@type"; numbers index arrays). */
static json_t *at(json_t *v, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *seg = strtok_r(buf, ".", &save); v && seg; seg = strtok_r(NULL, ".", &save))
        v = json_is_array(v) ? json_array_get(v, strtoul(seg, NULL, 10))
                             : json_object_get(v, seg);
    return v;
}

static const char *str_at(json_t *v, const char *path)
{
    const char *s = json_string_value(at(v, path));
    if (!s)
        fail_msg("%s: not a string", path);
    return s;
}

static json_int_t int_at(json_t *v, const char *path)
{
    json_t *x = at(v, path);
    if (!json_is_integer(x))
        fail_msg("%s: not an integer", path);
    return json_integer_value(x);
}

/* A call that must answer "status"; returns its parsed body (caller decrefs). */
static json_t *call(const char *method, const char *path, const char *auth, const char *body,
                    int status, struct resp *r)
{
    const char *h[] = {auth, NULL};
    http(method, path, auth ? h : NULL, body, 0, r);
    if (r->rc != CURLE_OK || r->status != status)
        fail_msg("%s %s: curl %d, status %ld, wanted %d: %.300s", method, path, (int)r->rc,
                 r->status, status, r->body ? r->body : "");
    return parsed(r);
}

static void post_ok(const char *path)
{
    struct resp r;
    json_decref(call("POST", path, NULL, NULL, 200, &r));
    free(r.body);
}

/* ---- the process ---- */

static int start(void **state)
{
    int fd = mkstemp(conf_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, config, strlen(config)), (ssize_t)strlen(config));
    close(fd);
    int efd = mkstemp(err_path);
    assert_true(efd >= 0);
    int out[2];
    assert_int_equal(pipe(out), 0);
    char bin[1024];
    const char *dir = getenv("ROTA_TEST_BIN");
    snprintf(bin, sizeof(bin), "%s/tools/rota-mockprovider/rota-mockprovider",
             dir ? dir : "..");
    mock_pid = fork();
    assert_true(mock_pid >= 0);
    if (mock_pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        close(out[0]);
        execl(bin, bin, "--config", conf_path, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(efd);
    mock_out = fdopen(out[0], "r");
    char line[128] = "";
    if (!fgets(line, sizeof(line), mock_out) ||
        sscanf(line, "listening on 127.0.0.1:%d", &mock_port) != 1)
        fail_msg("%s did not say where it listens: \"%s\"", bin, line);
    curl_global_init(CURL_GLOBAL_ALL);
    return 0;
}

static int stop(void **state)
{
    if (mock_pid > 0) {
        kill(mock_pid, SIGKILL);
        waitpid(mock_pid, NULL, 0);
    }
    if (mock_out)
        fclose(mock_out);
    unlink(conf_path);
    unlink(err_path);
    curl_global_cleanup();
    return 0;
}

/* Each test starts from zero counters and no faults. */
static int fresh(void **state)
{
    post_ok("/_mock/clear");
    post_ok("/_mock/reset");
    return 0;
}

/* ---- providers ---- */

static void test_mockprovider_openai(void **state)
{
    struct resp r;
    char h[128];
    const char *auth = "Authorization: Bearer sk-test-oa1";
    for (int i = 0; i < 3; i++) {
        json_t *v =
            call("POST", "/v1/chat/completions", auth, "{\"model\":\"gpt-4o\"}", 200, &r);
        assert_string_equal(str_at(v, "object"), "chat.completion");
        assert_int_equal(int_at(v, "usage.total_tokens"), 50);
        assert_int_equal(atoi(header(&r, "x-ratelimit-remaining-requests", h, sizeof(h))),
                         2 - i);
        assert_int_equal(atoi(header(&r, "x-ratelimit-limit-tokens", h, sizeof(h))), 1000);
        header(&r, "x-ratelimit-reset-requests", h, sizeof(h));
        assert_true(h[0] && h[strlen(h) - 1] == 's'); /* a Go duration */
        json_decref(v);
        free(r.body);
    }
    json_t *v = call("POST", "/v1/chat/completions", auth, "{\"model\":\"gpt-4o\"}", 429, &r);
    assert_string_equal(str_at(v, "error.code"), "rate_limit_exceeded");
    assert_string_equal(str_at(v, "error.type"), "requests");
    assert_non_null(strstr(str_at(v, "error.message"), "Please try again in "));
    assert_true(atoi(header(&r, "retry-after-ms", h, sizeof(h))) > 0);
    assert_string_equal(header(&r, "x-ratelimit-remaining-requests", h, sizeof(h)), "0");
    json_decref(v);
    free(r.body);
    v = call("POST", "/v1/chat/completions", "Authorization: Bearer sk-test-nope", "{}", 401,
             &r);
    assert_string_equal(str_at(v, "error.code"), "invalid_api_key");
    assert_null(strstr(r.body, "sk-test-nope"));
    json_decref(v);
    free(r.body);
}

static void test_mockprovider_azure(void **state)
{
    struct resp r;
    char h[64];
    const char *path = "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21";
    for (int i = 0; i < 2; i++) {
        json_t *v = call("POST", path, "api-key: az-test-1", "{}", 200, &r);
        assert_string_equal(str_at(v, "model"), "gpt4o");
        header(&r, "x-ratelimit-reset-requests", h, sizeof(h));
        assert_true(h[0] && strspn(h, "0123456789") == strlen(h)); /* integer seconds */
        json_decref(v);
        free(r.body);
    }
    json_t *v = call("POST", path, "api-key: az-test-1", "{}", 429, &r);
    assert_string_equal(str_at(v, "error.code"), "429");
    assert_non_null(strstr(str_at(v, "error.message"), "Please retry after"));
    assert_true(atoi(header(&r, "retry-after", h, sizeof(h))) > 0);
    json_decref(v);
    free(r.body);
    v = call("POST", path, "api-key: az-wrong", "{}", 401, &r);
    assert_string_equal(str_at(v, "error.code"), "401");
    json_decref(v);
    free(r.body);
}

static void test_mockprovider_anthropic(void **state)
{
    struct resp r;
    char h[64];
    const char *auth = "x-api-key: sk-ant-test-1";
    for (int i = 0; i < 2; i++) {
        json_t *v = call("POST", "/v1/messages", auth, "{\"model\":\"claude-x\"}", 200, &r);
        assert_string_equal(str_at(v, "type"), "message");
        assert_int_equal(
            atoi(header(&r, "anthropic-ratelimit-requests-remaining", h, sizeof(h))), 1 - i);
        assert_string_equal(header(&r, "anthropic-ratelimit-tokens-remaining", h, sizeof(h)),
                            "99000"); /* rounded down to thousands */
        header(&r, "anthropic-ratelimit-requests-reset", h, sizeof(h));
        assert_int_equal(strlen(h), 20); /* 2025-08-21T12:40:59Z */
        assert_int_equal(h[19], 'Z');
        json_decref(v);
        free(r.body);
    }
    json_t *v = call("POST", "/v1/messages", auth, "{}", 429, &r);
    assert_string_equal(str_at(v, "type"), "error");
    assert_string_equal(str_at(v, "error.type"), "rate_limit_error");
    assert_true(atoi(header(&r, "retry-after", h, sizeof(h))) > 0);
    json_decref(v);
    free(r.body);
    v = call("POST", "/v1/messages", "x-api-key: sk-ant-nope", "{}", 401, &r);
    assert_string_equal(str_at(v, "error.type"), "authentication_error");
    json_decref(v);
    free(r.body);
}

static void test_mockprovider_gemini(void **state)
{
    struct resp r;
    const char *path = "/v1beta/models/gemini-2.0-flash:generateContent";
    json_t *v = call("POST", "/v1beta/models/gemini-2.0-flash:generateContent?key=AIza-test-1",
                     NULL, "{}", 200, &r);
    assert_string_equal(str_at(v, "candidates.0.content.parts.0.text"), "ok");
    json_decref(v);
    free(r.body);
    json_decref(call("POST", path, "x-goog-api-key: AIza-test-1", "{}", 200, &r));
    free(r.body);
    v = call("POST", path, "x-goog-api-key: AIza-test-1", "{}", 429, &r);
    assert_string_equal(str_at(v, "error.status"), "RESOURCE_EXHAUSTED");
    /* the configured order, Help left out */
    assert_int_equal(json_array_size(at(v, "error.details")), 2);
    assert_string_equal(str_at(v, "error.details.0.@type"),
                        "type.googleapis.com/google.rpc.RetryInfo");
    assert_string_equal(str_at(v, "error.details.1.@type"),
                        "type.googleapis.com/google.rpc.QuotaFailure");
    assert_string_equal(str_at(v, "error.details.1.violations.0.quotaId"),
                        "GenerateRequestsPerDayPerProjectPerModel-FreeTier");
    assert_string_equal(str_at(v, "error.details.1.violations.0.quotaValue"), "2");
    assert_string_equal(str_at(v, "error.details.1.violations.0.quotaDimensions.model"),
                        "gemini-2.0-flash");
    const char *delay = str_at(v, "error.details.0.retryDelay");
    assert_int_equal(delay[strlen(delay) - 1], 's');
    json_decref(v);
    free(r.body);
    v = call("POST", path, "x-goog-api-key: AIza-nope", "{}", 401, &r);
    assert_string_equal(str_at(v, "error.status"), "UNAUTHENTICATED");
    json_decref(v);
    free(r.body);
}

static void test_mockprovider_copilot(void **state)
{
    struct resp r;
    char h[192];
    json_t *v = call("GET", "/copilot_internal/user", "Authorization: token gho_test_paid",
                     NULL, 200, &r);
    assert_int_equal(int_at(v, "quota_snapshots.premium_interactions.entitlement"), 3);
    assert_int_equal(int_at(v, "quota_snapshots.premium_interactions.remaining"), 3);
    assert_true(json_is_true(at(v, "quota_snapshots.chat.unlimited")));
    assert_int_equal(strlen(str_at(v, "quota_reset_date")), 10);
    json_decref(v);
    free(r.body);
    for (int i = 0; i < 3; i++) {
        json_decref(call("POST", "/chat/completions", "Authorization: Bearer gho_test_paid",
                         "{}", 200, &r));
        header(&r, "x-quota-snapshot-premium_interactions", h, sizeof(h));
        assert_non_null(strstr(h, "ent=3&"));
        assert_non_null(strstr(h, "rst="));
        free(r.body);
    }
    assert_non_null(strstr(h, "rem=0.0&"));
    json_decref(call("POST", "/chat/completions", "Authorization: Bearer gho_test_paid", "{}",
                     429, &r));
    free(r.body);
    v = call("GET", "/copilot_internal/user", "Authorization: token gho_test_paid", NULL, 200,
             &r);
    assert_int_equal(int_at(v, "quota_snapshots.premium_interactions.remaining"), 0);
    json_decref(v);
    free(r.body);
    v = call("GET", "/copilot_internal/user", "Authorization: token gho_test_free", NULL, 200,
             &r);
    assert_string_equal(str_at(v, "copilot_plan"), "free");
    assert_int_equal(int_at(v, "monthly_quotas.chat"), 50);
    assert_int_equal(int_at(v, "limited_user_quotas.chat"), 50);
    assert_non_null(at(v, "limited_user_reset_date"));
    json_decref(v);
    free(r.body);
}

static void test_mockprovider_github(void **state)
{
    struct resp r;
    char h[32];
    const char *auth = "Authorization: token ghp_test_1";
    json_t *v = call("GET", "/rate_limit", auth, NULL, 200, &r);
    assert_int_equal(int_at(v, "resources.core.limit"), 2);
    assert_int_equal(int_at(v, "resources.core.remaining"), 2);
    json_decref(v);
    free(r.body);
    for (int i = 0; i < 2; i++) {
        json_decref(call("GET", "/user", auth, NULL, 200, &r));
        assert_int_equal(atoi(header(&r, "x-ratelimit-used", h, sizeof(h))), i + 1);
        free(r.body);
    }
    json_decref(call("GET", "/user", auth, NULL, 403, &r));
    assert_string_equal(header(&r, "x-ratelimit-remaining", h, sizeof(h)), "0");
    assert_true(atol(header(&r, "x-ratelimit-reset", h, sizeof(h))) > 1000000000L);
    free(r.body);
    v = call("GET", "/rate_limit", auth, NULL, 200, &r);
    assert_int_equal(int_at(v, "resources.core.used"), 2);
    assert_int_equal(int_at(v, "resources.core.remaining"), 0);
    json_decref(v);
    free(r.body);
    v = call("GET", "/rate_limit", "Authorization: token ghp_nope", NULL, 401, &r);
    assert_string_equal(str_at(v, "message"), "Bad credentials");
    json_decref(v);
    free(r.body);
}

/* models["gemini-2.5-pro"].quotaInfo (a name with a dot, out of reach of at()) */
static json_t *quota_info(json_t *v)
{
    json_t *model = json_object_get(json_object_get(v, "models"), "gemini-2.5-pro");
    return json_object_get(model, "quotaInfo");
}

static void test_mockprovider_antigravity(void **state)
{
    struct resp r;
    const char *auth = "Authorization: Bearer ya29.test-ag";
    const char *gen = "{\"model\":\"gemini-2.5-pro\",\"project\":\"p\",\"request\":{}}";
    json_t *v = call("POST", "/v1internal:loadCodeAssist", auth,
                     "{\"metadata\":{\"ideType\":\"ANTIGRAVITY\"}}", 200, &r);
    assert_string_equal(str_at(v, "cloudaicompanionProject"), "mock-project-ag1");
    json_decref(v);
    free(r.body);
    v = call("POST", "/v1internal:fetchAvailableModels", auth, "{\"project\":\"p\"}", 200, &r);
    assert_true(json_real_value(at(quota_info(v), "remainingFraction")) == 1.0);
    json_decref(v);
    free(r.body);
    for (int i = 0; i < 2; i++) {
        json_decref(call("POST", "/v1internal:generateContent", auth, gen, 200, &r));
        free(r.body);
    }
    v = call("POST", "/v1internal:generateContent", auth, gen, 429, &r);
    assert_string_equal(str_at(v, "error.details.0.reason"), "QUOTA_EXHAUSTED");
    assert_non_null(at(v, "error.details.0.metadata.quotaResetDelay"));
    assert_non_null(at(v, "error.details.0.metadata.quotaResetTimeStamp"));
    assert_string_equal(str_at(v, "error.details.1.@type"),
                        "type.googleapis.com/google.rpc.RetryInfo");
    json_decref(v);
    free(r.body);
    v = call("POST", "/v1internal:fetchAvailableModels", auth, "{\"project\":\"p\"}", 200, &r);
    assert_non_null(quota_info(v));
    assert_null(at(quota_info(v), "remainingFraction")); /* spent */
    assert_non_null(at(quota_info(v), "resetTime"));
    json_decref(v);
    free(r.body);
    v = call("POST", "/v1internal:retrieveUserQuota", auth, "{\"project\":\"p\"}", 200, &r);
    assert_string_equal(str_at(v, "buckets.0.modelId"), "gemini-2.5-pro");
    assert_string_equal(str_at(v, "buckets.0.remainingAmount"), "0");
    json_decref(v);
    free(r.body);
    v = call("POST", "/v1internal:loadCodeAssist", "Authorization: Bearer ya29.nope", "{}", 401,
             &r);
    assert_string_equal(str_at(v, "error.status"), "UNAUTHENTICATED");
    json_decref(v);
    free(r.body);
}

static void test_mockprovider_openrouter(void **state)
{
    struct resp r;
    const char *auth = "Authorization: Bearer sk-or-test-1";
    json_t *v = call("GET", "/api/v1/key", auth, NULL, 200, &r);
    assert_true(json_number_value(at(v, "data.limit")) == 0.03);
    assert_true(json_number_value(at(v, "data.usage")) == 0.0);
    json_decref(v);
    free(r.body);
    for (int i = 0; i < 3; i++) {
        json_decref(call("POST", "/api/v1/chat/completions", auth, "{}", 200, &r));
        free(r.body);
    }
    json_decref(call("POST", "/api/v1/chat/completions", auth, "{}", 402, &r));
    free(r.body);
    v = call("GET", "/api/v1/key", auth, NULL, 200, &r);
    assert_true(json_number_value(at(v, "data.limit_remaining")) < 1e-9);
    json_decref(v);
    free(r.body);
    auth = "Authorization: Bearer sk-or-test-2";
    v = call("GET", "/api/v1/key", auth, NULL, 200, &r);
    assert_true(json_is_null(at(v, "data.limit")));
    json_decref(v);
    free(r.body);
    json_decref(call("POST", "/api/v1/chat/completions", auth, "{}", 200, &r));
    free(r.body);
    v = call("POST", "/api/v1/chat/completions", auth, "{}", 429, &r);
    assert_string_equal(str_at(v, "error.metadata.headers.X-RateLimit-Remaining"), "0");
    long long reset = atoll(str_at(v, "error.metadata.headers.X-RateLimit-Reset"));
    assert_true(reset > (long long)time(NULL) * 1000 - 1000); /* epoch milliseconds */
    json_decref(v);
    free(r.body);
    json_decref(call("GET", "/api/v1/key", "Authorization: Bearer sk-or-nope", NULL, 401, &r));
    free(r.body);
}

static void test_mockprovider_llamacpp(void **state)
{
    struct resp r;
    json_t *v = call("GET", "/health", NULL, NULL, 200, &r);
    assert_string_equal(str_at(v, "status"), "ok");
    json_decref(v);
    free(r.body);
    v = call("GET", "/slots?fail_on_no_slot=1", NULL, NULL, 200, &r);
    assert_int_equal(json_array_size(v), 2);
    assert_true(json_is_true(at(v, "0.is_processing")));
    assert_true(json_is_false(at(v, "1.is_processing")));
    json_decref(v);
    free(r.body);
    v = call("POST", "/completion", NULL, "{\"prompt\":\"hi\"}", 200, &r);
    assert_string_equal(str_at(v, "content"), "ok");
    json_decref(v);
    free(r.body);
    const char *full = "Authorization: Bearer sk-llama-full";
    json_decref(call("GET", "/slots?fail_on_no_slot=1", full, NULL, 503, &r));
    free(r.body);
    json_decref(call("POST", "/completion", full, "{}", 503, &r));
    free(r.body);
    v = call("POST", "/completion", "Authorization: Bearer sk-llama-nope", "{}", 401, &r);
    assert_string_equal(str_at(v, "error.type"), "authentication_error");
    json_decref(v);
    free(r.body);
}

/* ---- faults ---- */

static void fault(const char *query)
{
    char path[256];
    snprintf(path, sizeof(path), "/_mock/fault?%s", query);
    post_ok(path);
}

static json_t *stats(void)
{
    struct resp r;
    json_t *v = call("GET", "/_mock/stats", NULL, NULL, 200, &r);
    free(r.body);
    return v;
}

static void test_mockprovider_fault_status(void **state)
{
    struct resp r;
    const char *oa = "Authorization: Bearer sk-test-oa2";
    fault("match=oa2&kind=5xx&status=503&count=2");
    for (int i = 0; i < 2; i++) {
        json_t *v = call("POST", "/v1/chat/completions", oa, "{}", 503, &r);
        assert_string_equal(str_at(v, "error.type"), "server_error");
        json_decref(v);
        free(r.body);
    }
    json_decref(call("POST", "/v1/chat/completions", oa, "{}", 200, &r)); /* count spent */
    free(r.body);
    /* matched by key prefix; Anthropic's 529 is overloaded_error */
    fault("match=sk-ant-&kind=5xx&status=529&count=1");
    json_t *v = call("POST", "/v1/messages", "x-api-key: sk-ant-test-1", "{}", 529, &r);
    assert_string_equal(str_at(v, "error.type"), "overloaded_error");
    json_decref(v);
    free(r.body);
    fault("match=oa2&kind=429&retry_after=7&count=1");
    char h[32];
    v = call("POST", "/v1/chat/completions", oa, "{}", 429, &r);
    assert_string_equal(str_at(v, "error.code"), "rate_limit_exceeded");
    assert_string_equal(header(&r, "retry-after", h, sizeof(h)), "7");
    json_decref(v);
    free(r.body);
    fault("match=ag1&kind=429&reason=MODEL_CAPACITY_EXHAUSTED&count=1");
    v = call("POST", "/v1internal:generateContent", "Authorization: Bearer ya29.test-ag",
             "{\"model\":\"claude-sonnet-4-5\"}", 429, &r);
    assert_string_equal(str_at(v, "error.details.0.reason"), "MODEL_CAPACITY_EXHAUSTED");
    json_decref(v);
    free(r.body);
    /* a fault that does not parse is refused */
    http("POST", "/_mock/fault?match=oa2&kind=sideways", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    free(r.body);
}

static void test_mockprovider_fault_bodies(void **state)
{
    struct resp r;
    const char *h[] = {"Authorization: Bearer sk-test-oa2", NULL};
    char type[64];
    fault("match=oa2&kind=malformed&count=1");
    http("POST", "/v1/chat/completions", h, "{}", 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type", type, sizeof(type)), "application/json");
    assert_true(r.len > 0);
    assert_null(json_loadb(r.body, r.len, 0, NULL));
    free(r.body);
    fault("match=oa2&kind=oversized&count=1");
    http("POST", "/v1/chat/completions", h, "{}", 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 4u << 20);
    json_t *v = parsed(&r); /* only the size is at fault */
    assert_string_equal(str_at(v, "object"), "chat.completion");
    json_decref(v);
    free(r.body);
    fault("match=oa2&kind=oversized&count=1&size=3000000");
    http("POST", "/v1/chat/completions", h, "{}", 0, &r);
    assert_int_equal(r.len, 3000000);
    free(r.body);
}

static void test_mockprovider_fault_latency(void **state)
{
    struct resp r;
    const char *h[] = {"Authorization: Bearer sk-test-oa2", NULL};
    fault("match=oa2&kind=latency&ms=2000&count=1");
    http("POST", "/v1/chat/completions", h, "{}", 200, &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT); /* the answer is late */
    free(r.body);
    fault("match=oa2&kind=latency&ms=50&count=1");
    http("POST", "/v1/chat/completions", h, "{}", 0, &r);
    assert_int_equal(r.status, 200); /* late, then answered */
    free(r.body);
}

struct pending {
    pthread_t thread;
    struct resp r;
};

static void *pending_call(void *arg)
{
    struct pending *p = arg;
    const char *h[] = {"Authorization: Bearer sk-test-oa2", NULL};
    http("POST", "/v1/chat/completions", h, "{}", 8000, &p->r);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void test_mockprovider_fault_hang(void **state)
{
    struct resp r;
    const char *h[] = {"Authorization: Bearer sk-test-oa2", NULL};
    fault("match=oa2&kind=hang");
    http("POST", "/v1/chat/completions", h, "{}", 300, &r);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.status, 0); /* nothing was answered */
    free(r.body);
    /* the server notices the client left */
    json_int_t dropped = 0;
    for (int i = 0; i < 100 && dropped == 0; i++, sleep_ms(20)) {
        json_t *s = stats();
        dropped = int_at(s, "accounts.oa2.dropped");
        json_decref(s);
    }
    assert_int_equal(dropped, 1);
    /* a held call is answered once the fault is cleared */
    struct pending p;
    assert_int_equal(pthread_create(&p.thread, NULL, pending_call, &p), 0);
    sleep_ms(200);
    post_ok("/_mock/clear");
    pthread_join(p.thread, NULL);
    assert_int_equal(p.r.rc, CURLE_OK);
    assert_int_equal(p.r.status, 200);
    free(p.r.body);
}

/* ---- control ---- */

static void test_mockprovider_stats_clear_reset(void **state)
{
    struct resp r;
    const char *oa = "Authorization: Bearer sk-test-oa1";
    for (int i = 0; i < 4; i++) {
        json_decref(call("POST", "/v1/chat/completions", oa, "{}", i < 3 ? 200 : 429, &r));
        free(r.body);
    }
    json_decref(call("POST", "/v1/chat/completions", "Authorization: Bearer x", "{}", 401, &r));
    free(r.body);
    fault("match=oa2&kind=5xx&seconds=60");
    json_t *s = stats();
    assert_int_equal(int_at(s, "accounts.oa1.calls"), 4);
    assert_int_equal(int_at(s, "accounts.oa1.status.200"), 3);
    assert_int_equal(int_at(s, "accounts.oa1.status.429"), 1);
    assert_int_equal(int_at(s, "accounts.oa1.requests_used"), 3);
    assert_int_equal(int_at(s, "unknown_key"), 1);
    assert_int_equal(int_at(s, "status.401"), 1);
    assert_int_equal(int_at(s, "faults"), 1);
    assert_string_equal(str_at(s, "accounts.oa1.provider"), "openai");
    json_decref(s);
    post_ok("/_mock/clear");
    s = stats();
    assert_int_equal(int_at(s, "faults"), 0);
    json_decref(s);
    json_decref(call("POST", "/v1/chat/completions", "Authorization: Bearer sk-test-oa2", "{}",
                     200, &r));
    free(r.body);
    post_ok("/_mock/reset");
    s = stats();
    assert_int_equal(int_at(s, "accounts.oa1.calls"), 0);
    assert_null(at(s, "accounts.oa1.status.200"));
    assert_int_equal(int_at(s, "unknown_key"), 0);
    json_decref(s);
    json_decref(
        call("POST", "/v1/chat/completions", oa, "{}", 200, &r)); /* the window is new */
    free(r.body);
}

/* SIGTERM ends it with status 0, even with a connection held; it never printed a key. */
static void test_mockprovider_sigterm(void **state)
{
    fault("match=oa2&kind=hang");
    struct pending p;
    assert_int_equal(pthread_create(&p.thread, NULL, pending_call, &p), 0);
    sleep_ms(200);
    assert_int_equal(kill(mock_pid, SIGTERM), 0);
    int status = -1;
    assert_int_equal(waitpid(mock_pid, &status, 0), mock_pid);
    mock_pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    pthread_join(p.thread, NULL);
    assert_int_not_equal(p.r.status, 200);
    free(p.r.body);
    char out[65536];
    size_t n = fread(out, 1, sizeof(out) - 1, mock_out);
    out[n] = '\0';
    FILE *e = fopen(err_path, "r");
    assert_non_null(e);
    char err[65536];
    size_t m = fread(err, 1, sizeof(err) - 1, e);
    err[m] = '\0';
    fclose(e);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_null(strstr(out, keys[i]));
        assert_null(strstr(err, keys[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mockprovider_openai, fresh),
        cmocka_unit_test_setup(test_mockprovider_azure, fresh),
        cmocka_unit_test_setup(test_mockprovider_anthropic, fresh),
        cmocka_unit_test_setup(test_mockprovider_gemini, fresh),
        cmocka_unit_test_setup(test_mockprovider_copilot, fresh),
        cmocka_unit_test_setup(test_mockprovider_github, fresh),
        cmocka_unit_test_setup(test_mockprovider_antigravity, fresh),
        cmocka_unit_test_setup(test_mockprovider_openrouter, fresh),
        cmocka_unit_test_setup(test_mockprovider_llamacpp, fresh),
        cmocka_unit_test_setup(test_mockprovider_fault_status, fresh),
        cmocka_unit_test_setup(test_mockprovider_fault_bodies, fresh),
        cmocka_unit_test_setup(test_mockprovider_fault_latency, fresh),
        cmocka_unit_test_setup(test_mockprovider_fault_hang, fresh),
        cmocka_unit_test_setup(test_mockprovider_stats_clear_reset, fresh),
        cmocka_unit_test_setup(test_mockprovider_sigterm, fresh),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
