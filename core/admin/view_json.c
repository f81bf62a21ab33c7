/*
 * view_json.c - operator views as JSON values.
 *
 * DESIGN
 * Names come from the table, where whoever built it put them: JSON strings must be UTF-8,
 * so a name that is not is written with each stray byte as the text \xNN rather than
 * dropped (jansson refuses it, and the account would vanish from the view).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "breaker.h"
#include "quota.h"
#include "utf8.h"
#include "view_json.h"

static const char *const metric_name[] = {"requests", "tokens", "credits", "fraction"};
static const char *const breaker_name[] = {"closed", "open", "half-open", "?"};

void rota_iso_time(int64_t t, char *buf, size_t n)
{
    if (t <= 0) {
        snprintf(buf, n, "%s", "");
        return;
    }
    time_t s = (time_t)(t / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *rota_json_text(const char *s)
{
    size_t n = strlen(s), k = 0;
    char *buf = malloc(4 * n + 1);
    if (!buf)
        return NULL;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = rota_utf8_next((const unsigned char *)s + i, &cp);
        if (len) {
            memcpy(buf + k, s + i, len);
            k += len;
            i += len;
        } else {
            k += (size_t)snprintf(buf + k, 5, "\\x%02x", (unsigned char)s[i++]);
        }
    }
    json_t *v = json_stringn(buf, k);
    free(buf);
    return v;
}

static json_t *ms(uint64_t ns)
{
    return json_integer((json_int_t)(ns / 1000000));
}

json_t *rota_view_account_json(const struct rota_view_account *v)
{
    json_t *wins = json_array();
    for (uint32_t w = 0; w < v->nwin; w++) {
        const struct rota_view_window *x = &v->win[w];
        char at[32];
        rota_iso_time(x->reset_at, at, sizeof(at));
        json_array_append_new(
            wins,
            json_pack("{s:o, s:s, s:I, s:I, s:o, s:s}", "pool", rota_json_text(x->pool),
                      "metric", x->metric < 4 ? metric_name[x->metric] : "?", "used",
                      (json_int_t)x->used, "limit", (json_int_t)x->limit, "fraction",
                      x->fraction < 0 ? json_null() : json_real(x->fraction), "reset_at", at));
    }
    char id[24], probe[32];
    snprintf(id, sizeof(id), "0x%016llx", (unsigned long long)v->id);
    rota_iso_time(v->probe_at, probe, sizeof(probe));
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:s, s:o, s:b, s:b, s:s}", "id", id, "name",
                          rota_json_text(v->name), "provider", rota_json_text(v->provider),
                          "kind", rota_json_text(v->kind), "status",
                          rota_quota_status_name(v->status), "fraction",
                          v->fraction < 0 ? json_null() : json_real(v->fraction), "pessimistic",
                          v->pessimistic, "stale", v->stale, "off", rota_off_name(v->off));
    json_object_set_new(o, "off_left_ms", ms(v->off_left_ns));
    json_object_set_new(o, "cooldown_left_ms", ms(v->cooldown_left_ns));
    json_object_set_new(o, "breaker", json_string(breaker_name[v->breaker & 3]));
    json_object_set_new(o, "breaker_trips", json_integer(v->breaker_trips));
    json_object_set_new(o, "breaker_left_ms", ms(v->breaker_left_ns));
    json_object_set_new(o, "provider_breaker_open", json_boolean(v->provider_breaker_open));
    json_object_set_new(o, "in_flight", json_integer(v->in_flight));
    json_object_set_new(o, "last_used_ago_ms",
                        v->last_used_ago_ns == UINT64_MAX ? json_null()
                                                          : ms(v->last_used_ago_ns));
    json_object_set_new(o, "selections", json_integer((json_int_t)v->selections));
    json_object_set_new(o, "done", json_integer((json_int_t)v->done));
    json_object_set_new(o, "failures", json_integer((json_int_t)v->failures));
    json_object_set_new(o, "rate_limited", json_integer((json_int_t)v->rate_limited));
    json_object_set_new(o, "auth_failures", json_integer((json_int_t)v->auth_failures));
    json_object_set_new(o, "tokens", json_integer((json_int_t)v->tokens));
    json_object_set_new(o, "latency_ms", json_real((double)v->latency_ns / 1e6));
    json_object_set_new(o, "weight", json_integer(v->weight));
    json_object_set_new(o, "rpm", json_integer(v->rpm));
    json_object_set_new(o, "tpm", json_integer(v->tpm));
    json_object_set_new(o, "probe_at", json_string(probe));
    json_object_set_new(o, "windows", wins);
    return o;
}

json_t *rota_view_instance_json(const struct rota_view_instance *v)
{
    char hash[24], start[32], created[32];
    snprintf(hash, sizeof(hash), "0x%016llx", (unsigned long long)v->config_hash);
    rota_iso_time(v->sup_start, start, sizeof(start));
    rota_iso_time(v->created_at, created, sizeof(created));
    json_t *o = json_pack("{s:o, s:I, s:s, s:i, s:b, s:s, s:b, s:s}", "instance",
                          rota_json_text(v->instance), "generation", (json_int_t)v->generation,
                          "config_hash", hash, "supervisor_pid", (int)v->sup_pid,
                          "supervisor_alive", v->sup_alive, "supervisor_start", start, "stale",
                          v->stale, "created_at", created);
    json_object_set_new(o, "heartbeat_age_ms", ms(v->heartbeat_age_ns));
    json_object_set_new(o, "providers", json_integer(v->nproviders));
    json_object_set_new(o, "accounts", json_integer(v->naccounts));
    json_object_set_new(o, "routes", json_integer(v->nroutes));
    json_object_set_new(o, "status",
                        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "healthy",
                                  v->healthy, "warning", v->warning, "critical", v->critical,
                                  "exhausted", v->exhausted, "unknown", v->unknown, "off",
                                  v->off, "cooling", v->cooling, "breaker_open", v->open));
    json_object_set_new(o, "selections", json_integer((json_int_t)v->selections));
    json_object_set_new(o, "in_flight", json_integer((json_int_t)v->in_flight));
    json_object_set_new(o, "gini", json_real(v->gini));
    json_object_set_new(o, "table_bytes", json_integer((json_int_t)v->table_bytes));
    return o;
}
