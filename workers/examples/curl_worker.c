/*
 * curl_worker.c - a worker as users write one: select an account, call the provider
 * with its key, report what happened.
 *
 *   rota-example-worker INSTANCE ROUTE [URL [CALLS]]
 *
 * Each call: rota_select on ROUTE, rota_target_of for where it goes (the provider's URL
 * and endpoint, the header its key goes in, its extra headers, the model the chosen tier
 * sends for ROUTE), a POST of a small JSON body in the provider's wire format with
 * libcurl, then rota_report with the HTTP status, the measured latency and any
 * Retry-After. URL, when given and not "-", replaces the provider's URL and endpoint
 * (every call goes there). When every account is exhausted it waits until the time rota
 * says something frees up (at most a second) and tries again.
 */
#define _DEFAULT_SOURCE
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rota.h"

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p, (void)user;
    return size * n;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A small request for "t"'s wire format into "buf". */
static void body_for(const rota_target *t, char *buf, size_t n)
{
    static const char chat[] = "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]";
    static const char contents[] = "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
                                   "\"hello\"}]}]";
    if (strcmp(t->format, "anthropic") == 0)
        snprintf(buf, n, "{\"model\":\"%s\",\"max_tokens\":16,%s}", t->model, chat);
    else if (strcmp(t->format, "gemini") == 0) /* the model is in the path */
        snprintf(buf, n, "{%s}", contents);
    else if (strcmp(t->format, "code-assist") == 0)
        snprintf(buf, n, "{\"model\":\"%s\",\"request\":{%s}}", t->model, contents);
    else
        snprintf(buf, n, "{\"model\":\"%s\",%s}", t->model, chat);
}

/* One call to "url" as target "t" says, with the chosen account's key; fills the
 * outcome. */
static void call(CURL *curl, const char *url, const rota_target *t, const char *key,
                 rota_outcome *o)
{
    char auth[700], body[512];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (t->auth_header[0] && key[0]) {
        snprintf(auth, sizeof(auth), "%s: %s%s", t->auth_header, t->auth_scheme, key);
        h = curl_slist_append(h, auth);
    }
    for (const char *p = t->headers; *p;) { /* "Name: value\r\n" each */
        char line[512];
        size_t len = strcspn(p, "\r");
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        h = curl_slist_append(h, line);
        p += len + (p[len] ? 2 : 0);
    }
    body_for(t, body, sizeof(body));
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    uint64_t t0 = mono_ns();
    CURLcode rc = curl_easy_perform(curl);
    o->latency_ns = mono_ns() - t0;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        o->result = ROTA_RESULT_TIMEOUT;
    } else if (rc != CURLE_OK) {
        o->result = ROTA_RESULT_CONNECT;
    } else {
        long status = 0;
        curl_off_t retry = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry);
        o->status = (int)status;
        o->retry_after_ms = (uint64_t)retry * 1000;
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    explicit_bzero(auth, sizeof(auth));
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s INSTANCE ROUTE [URL [CALLS]]\n", argv[0]);
        return 2;
    }
    const char *fixed = argc > 3 && strcmp(argv[3], "-") != 0 ? argv[3] : NULL;
    long calls = argc > 4 ? strtol(argv[4], NULL, 10) : 10;
    char err[256];
    rota_t *h;
    rota_route_t route;
    int rc = rota_attach(argv[1], &h, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "attach: %s\n", err);
        return 1;
    }
    if ((rc = rota_route(h, argv[2], &route))) {
        fprintf(stderr, "route %s: %s\n", argv[2], rota_strerror(rc));
        rota_detach(h);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    for (long i = 0; i < calls; i++) {
        rota_choice c;
        rc = rota_select(h, &route, NULL, 0, 500, &c);
        if (rc == ROTA_EEXHAUSTED) {
            uint64_t wait = c.retry_at > mono_ns() ? c.retry_at - mono_ns() : 1000000;
            struct timespec ts = {0, (long)(wait < 999999999 ? wait : 999999999)};
            nanosleep(&ts, NULL);
            continue;
        }
        if (rc) {
            fprintf(stderr, "select: %s\n", rota_strerror(rc));
            break;
        }
        char key[512], name[64], url[1100];
        rota_target t;
        rota_outcome o = {0};
        /* ROUTE as the client's model: a tier may send its provider another */
        rc = rota_target_of(h, &c, argv[2], strlen(argv[2]), &t);
        if (rc == 0)
            rc = rota_credential(h, &c, key, sizeof(key)) < 0;
        if (rc) {
            o.result = ROTA_RESULT_CANCELLED; /* no call made: say so, choose again */
            rota_report(h, &c, &o);
            continue;
        }
        rota_account_name(h, &c, name, sizeof(name));
        snprintf(url, sizeof(url), "%s%s", fixed ? fixed : t.base_url, fixed ? "" : t.path);
        call(curl, url, &t, key, &o);
        explicit_bzero(key, sizeof(key));
        rota_report(h, &c, &o);
        printf("call %ld: account %s (tier %u, %s, model %s) -> %d in %.1f ms\n", i, name,
               c.tier, t.provider, t.model, o.status, (double)o.latency_ns / 1e6);
    }
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    rota_detach(h);
    return 0;
}
