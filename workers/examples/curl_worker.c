/*
 * curl_worker.c - a worker as users write one: select an account, call the provider
 * with its key, report what happened.
 *
 *   rota-example-worker INSTANCE ROUTE URL [CALLS]
 *
 * Each call: rota_select on ROUTE, the account's key as a bearer token, a POST of a
 * small JSON body to URL with libcurl, then rota_report with the HTTP status, the
 * measured latency and any Retry-After. When every account is exhausted it waits until
 * the time rota says something frees up (at most a second) and tries again.
 */
#define _POSIX_C_SOURCE 200809L
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

/* One call with the chosen account's key; fills the outcome. */
static void call(CURL *curl, const char *url, const char *key, rota_outcome *o)
{
    char auth[600];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "{\"model\":\"demo\",\"messages\":[]}");
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
    curl_slist_free_all(h);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s INSTANCE ROUTE URL [CALLS]\n", argv[0]);
        return 2;
    }
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
        char key[512], name[64];
        rota_credential(h, &c, key, sizeof(key));
        rota_account_name(h, &c, name, sizeof(name));
        rota_outcome o = {0};
        call(curl, argv[3], key, &o);
        rota_report(h, &c, &o);
        printf("call %ld: account %s (tier %u) -> %d in %.1f ms\n", i, name, c.tier, o.status,
               (double)o.latency_ns / 1e6);
    }
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    rota_detach(h);
    return 0;
}
