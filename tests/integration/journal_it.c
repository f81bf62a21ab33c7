/*
 * journal_it.c - see journal_it.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "jident.h"
#include "journal_it.h"
#include "rota.h"

void jit_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

uint64_t jit_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void jit_config(struct it *t, int nalpha, const char *journal)
{
    size_t cap = 64 * 1024;
    char *s = malloc(cap);
    assert_non_null(s);
    int n = snprintf(s, cap,
                     "instance: %s\nstate_dir: %s/state\n%s\nproviders:\n"
                     "  - name: alpha\n    kind: openai\n"
                     "    breaker: {failures: 3, half_open: 1, open_for: 10m, open_max: 1h}\n"
                     "    probe: {enabled: false}\n"
                     "    accounts:\n",
                     t->instance, t->dir, journal ? journal : "");
    for (int i = 0; i < nalpha; i++)
        n += snprintf(s + n, cap - (size_t)n,
                      "      - name: a%d\n        credential: env:ROTA_IT_KEY\n"
                      "        windows: [{metric: requests, limit: 100000, reset: daily "
                      "%s}]\n",
                      i, it_reset_hhmm());
    snprintf(
        s + n, cap - (size_t)n,
        "  - name: beta\n    kind: anthropic\n    probe: {enabled: false}\n"
        "    accounts:\n"
        "      - {name: b0, credential: env:ROTA_IT_KEY}\n"
        "      - {name: b1, credential: env:ROTA_IT_KEY}\n"
        "  - name: local\n    kind: llamacpp\n    auth: none\n"
        "    probe: {enabled: false}\n"
        "    accounts:\n      - {name: l0, credential: none}\n"
        "routes:\n  - name: chat\n    models: [chat-model]\n    tiers:\n"
        "      - {provider: alpha, strategy: hybrid}\n"
        "      - {provider: beta, strategy: round-robin}\n"
        "      - {provider: local, strategy: fill-first, ceiling: 1.0}\n"
        "  - name: pin0\n    tiers:\n      - {accounts: [alpha/a0], strategy: fill-first}\n"
        "  - name: pin3\n    tiers:\n      - {accounts: [alpha/a3], strategy: fill-first}\n");
    it_config_text(t, s);
    free(s);
}

void jit_journal_path(const struct it *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s/state/journal", t->dir);
}

void jit_identity(const struct it *t, struct rota_jkey *k)
{
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/state/%s", t->dir, ROTA_JIDENT_NAME);
    if (rota_jident_read(path, k, err, sizeof(err)) != 0)
        fail_msg("%s", err);
}

static char out[256 * 1024]; /* rotactl's output */

json_t *jit_ctl_json(struct it *t, const char *args)
{
    char full[512];
    snprintf(full, sizeof(full), "--json %s", args);
    int rc = it_rotactl(t, full, out, sizeof(out));
    if (rc != 0)
        fail_msg("rotactl %s: exit %d; output:\n%s", full, rc, out);
    json_error_t e;
    json_t *v = json_loads(out, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("rotactl %s: not JSON (%s):\n%s", full, e.text, out);
    return v;
}

void jit_ctl(struct it *t, const char *args)
{
    int rc = it_rotactl(t, args, out, sizeof(out));
    if (rc != 0)
        fail_msg("rotactl %s: exit %d; output:\n%s", args, rc, out);
}

json_t *jit_at(json_t *o, const char *path)
{
    char key[64];
    while (o && *path) {
        size_t k = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)k, path);
        o = json_object_get(o, key);
        path += k + (path[k] == '.');
    }
    return o;
}

double jit_num(json_t *o, const char *path)
{
    return json_number_value(jit_at(o, path));
}

const char *jit_str(json_t *o, const char *path)
{
    const char *s = json_string_value(jit_at(o, path));
    return s ? s : "";
}

json_t *jit_account(json_t *arr, const char *name)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (strcmp(jit_str(json_array_get(arr, i), "name"), name) == 0)
            return json_array_get(arr, i);
    fail_msg("no account %s", name);
    return NULL;
}

uint64_t jit_account_id(json_t *a)
{
    return strtoull(jit_str(a, "id"), NULL, 16);
}

void jit_calls(struct it *t, const char *route, int n, int status)
{
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(t->instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, route, &rt), 0);
    for (int i = 0; i < n; i++) {
        rota_choice c;
        assert_int_equal(rota_select(h, &rt, NULL, 0, 10, &c), 0);
        rota_outcome o = {.status = status, .tokens = 7};
        assert_int_equal(rota_report(h, &c, &o), 0);
    }
    rota_detach(h);
}

double jit_journal_num(struct it *t, const char *path)
{
    json_t *j = jit_ctl_json(t, "journal");
    double v = jit_num(j, path);
    json_decref(j);
    return v;
}

void jit_wait_passes(struct it *t, int n)
{
    double p0 = jit_journal_num(t, "passes");
    JIT_WAIT_FOR(jit_journal_num(t, "passes") >= p0 + n);
    assert_true(jit_journal_num(t, "passes") >= p0 + n);
}

time_t jit_make_state(struct it *t)
{
    jit_calls(t, "chat", 300, 200);
    for (int k = 0; k < 3; k++) {
        jit_calls(t, "pin3", 1, 503);
        if (k < 2)
            jit_calls(t, "pin0", 1, 200);
    }
    jit_wait_passes(t, 2);
    jit_ctl(t, "cooldown a1 10m");
    time_t last = time(NULL);
    jit_ctl(t, "disable a2 --for 1h");
    json_t *j = jit_ctl_json(t, "accounts");
    assert_string_equal(jit_str(jit_account(j, "a3"), "breaker"), "open");
    assert_int_equal(jit_num(jit_account(j, "a3"), "breaker_trips"), 1);
    assert_false(json_is_true(jit_at(jit_account(j, "a0"), "provider_breaker_open")));
    assert_string_equal(jit_str(jit_account(j, "a2"), "off"), "operator");
    assert_true(jit_num(jit_account(j, "a1"), "cooldown_left_ms") > 590000);
    json_decref(j);
    return last;
}

bool jit_written_since(json_t *j, const char *path, time_t since)
{
    struct tm tm = {0};
    const char *s = jit_str(j, path);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return end && !*end && timegm(&tm) >= since;
}

void jit_wait_journaled(struct it *t, int redis)
{
    json_t *j = jit_ctl_json(t, "journal");
    assert_true(json_is_true(jit_at(j, "enabled")));
    double passes = jit_num(j, "passes");
    json_decref(j);
    bool done = false;
    for (int i = 0; i < 300 && !done; i++) {
        jit_sleep_ms(50);
        j = jit_ctl_json(t, "journal");
        bool file = json_is_true(jit_at(j, "file.enabled"));
        done =
            jit_num(j, "passes") >= passes + 2 &&
            (!file || (jit_num(j, "file.lag_ms") == 0 && jit_num(j, "file.queue_bytes") == 0 &&
                       json_is_string(jit_at(j, "file.last_write")) &&
                       jit_num(j, "file.errors") == 0)) &&
            (!redis || (json_is_true(jit_at(j, "redis.connected")) &&
                        jit_num(j, "redis.queue") == 0 && jit_num(j, "redis.written") > 0 &&
                        (redis == JIT_REDIS_DROPS_OK || jit_num(j, "redis.dropped") == 0) &&
                        json_is_string(jit_at(j, "redis.last_write"))));
        if (!done && i == 299)
            fail_msg("the journal did not catch up: %s", json_dumps(j, JSON_COMPACT));
        json_decref(j);
    }
}

void jit_assert_restored(json_t *before, json_t *after, uint64_t elapsed_ms, const char *skip)
{
    size_t i;
    json_t *b;
    assert_int_equal(json_array_size(before), json_array_size(after));
    json_array_foreach(before, i, b)
    {
        const char *name = jit_str(b, "name");
        char key[32];
        snprintf(key, sizeof(key), ",%s,", name);
        char list[256];
        snprintf(list, sizeof(list), ",%s,", skip ? skip : "");
        if (strstr(list, key))
            continue;
        json_t *a = jit_account(after, name);
        static const char *const same[] = {"selections",    "failures",      "rate_limited",
                                           "auth_failures", "tokens",        "breaker_trips",
                                           "in_flight",     "windows.0.used"};
        for (size_t k = 0; k < sizeof(same) / sizeof(same[0]); k++) {
            double x = 0, y = 0;
            if (strcmp(same[k], "windows.0.used") == 0) {
                json_t *wb = json_array_get(json_object_get(b, "windows"), 0);
                json_t *wa = json_array_get(json_object_get(a, "windows"), 0);
                if (!wb)
                    continue;
                x = jit_num(wb, "used");
                y = jit_num(wa, "used");
                if (strcmp(jit_str(wb, "reset_at"), jit_str(wa, "reset_at")) != 0)
                    fail_msg("%s: window reset_at %s, was %s", name, jit_str(wa, "reset_at"),
                             jit_str(wb, "reset_at"));
            } else {
                x = jit_num(b, same[k]);
                y = jit_num(a, same[k]);
            }
            if (x != y)
                fail_msg("%s: %s is %.0f after the restart, was %.0f", name, same[k], y, x);
        }
        if (strcmp(jit_str(b, "off"), jit_str(a, "off")) ||
            strcmp(jit_str(b, "breaker"), jit_str(a, "breaker")))
            fail_msg("%s: off '%s' breaker '%s' after the restart, was off '%s' breaker '%s'",
                     name, jit_str(a, "off"), jit_str(a, "breaker"), jit_str(b, "off"),
                     jit_str(b, "breaker"));
        static const char *const left[] = {"cooldown_left_ms", "off_left_ms",
                                           "breaker_left_ms"};
        for (size_t k = 0; k < 3; k++) {
            double x = jit_num(b, left[k]), y = jit_num(a, left[k]);
            if (x == 0 ? y != 0 : (y > x + 1000 || y < x - (double)elapsed_ms - 2000))
                fail_msg("%s: %s is %.0f after the restart, was %.0f %llu ms before", name,
                         left[k], y, x, (unsigned long long)elapsed_ms);
        }
    }
}

json_t *jit_status(struct it *t)
{
    json_t *s = jit_ctl_json(t, "status");
    json_t *d = json_incref(json_object_get(s, "daemon"));
    json_decref(s);
    assert_true(json_is_object(d));
    return d;
}

void jit_assert_restored_from(struct it *t, const char *from)
{
    json_t *d = jit_status(t);
    const char *origin = jit_str(d, "state_origin");
    const char *want =
        strcmp(from, "redis") ? "restored from the journal file " : "restored from Redis ";
    if (strncmp(origin, want, strlen(want)) != 0 ||
        strcmp(jit_str(d, "state_from"), from) != 0 || !*jit_str(d, "state_at"))
        fail_msg("wanted a state restored from %s; status says origin '%s', from '%s'", from,
                 origin, jit_str(d, "state_from"));
    json_decref(d);
}
