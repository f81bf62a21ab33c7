/*
 * report.c - rota-load's reports: the line each interval and the totals at the end of a
 * run, the --json file of one run, and the table --summary prints over several runs.
 *
 * DESIGN
 * Called by the main thread once the calling threads are done (or left behind at the hard
 * stop: their counters are read relaxed, a call or two may be missing). The JSON file:
 *   {"label", "instance", "route", "seconds", "threads", "rate",
 *    "calls", "ok", "429", "5xx", "other", "failed", "exhausted", "select_errors",
 *    "status": {"200": n, ...}, "failures": {"timeout": n, "connect": n},
 *    "tiers": [{"tier", "name", "calls", "ok", "429", "5xx", "other", "failed"}, ...],
 *    "accounts": {"provider/name": {"calls", "ok", "429", "5xx", "other", "failed"}, ...},
 *    "latency_ms": {"p50", "p99", "max"}}
 * The summary reads only what it prints and sums tiers by name, so runs of different
 * routes add up by provider.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "load.h"

static json_t *tally_json(struct tally *t)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "calls",
                     (json_int_t)tally_get(&t->calls), "ok", (json_int_t)tally_get(&t->ok),
                     "429", (json_int_t)tally_get(&t->r429), "5xx",
                     (json_int_t)tally_get(&t->r5xx), "other", (json_int_t)tally_get(&t->other),
                     "failed", (json_int_t)tally_get(&t->failed));
}

static double at(const uint32_t *v, size_t n, double q)
{
    return n ? (double)v[(size_t)(q * (double)(n - 1))] / 1000.0 : 0.0;
}

int load_write_json(struct load *l, const char *path, const uint32_t *lat_us, size_t n)
{
    json_t *root = tally_json(&l->total);
    json_t *status = json_object(), *tiers = json_array(), *accounts = json_object();
    json_object_set_new(root, "label", json_string(l->label ? l->label : l->route));
    json_object_set_new(root, "instance", json_string(l->instance));
    json_object_set_new(root, "route", json_string(l->route));
    json_object_set_new(root, "seconds", json_real(l->seconds));
    json_object_set_new(root, "threads", json_integer(l->threads));
    json_object_set_new(root, "rate", json_real(l->rate));
    json_object_set_new(root, "exhausted", json_integer((json_int_t)tally_get(&l->exhausted)));
    json_object_set_new(root, "select_errors",
                        json_integer((json_int_t)tally_get(&l->select_errors)));
    for (int s = 0; s < 600; s++)
        if (tally_get(&l->status[s])) {
            char code[8];
            snprintf(code, sizeof(code), "%d", s);
            json_object_set_new(status, code,
                                json_integer((json_int_t)tally_get(&l->status[s])));
        }
    json_object_set_new(root, "status", status);
    json_object_set_new(root, "failures",
                        json_pack("{s:I, s:I}", "timeout", (json_int_t)tally_get(&l->timeouts),
                                  "connect", (json_int_t)tally_get(&l->connects)));
    for (uint32_t t = 0; t < l->names.ntiers; t++) {
        json_t *o = tally_json(&l->tier[t]);
        json_object_set_new(o, "tier", json_integer(t));
        json_object_set_new(o, "name", json_string(l->names.tiers[t]));
        json_array_append_new(tiers, o);
    }
    json_object_set_new(root, "tiers", tiers);
    for (uint32_t a = 0; a <= l->names.naccounts; a++)
        if (a < l->names.naccounts || tally_get(&l->account[a].calls))
            json_object_set_new(accounts, l->names.labels[a], tally_json(&l->account[a]));
    json_object_set_new(root, "accounts", accounts);
    json_object_set_new(root, "latency_ms",
                        json_pack("{s:f, s:f, s:f}", "p50", at(lat_us, n, 0.50), "p99",
                                  at(lat_us, n, 0.99), "max", at(lat_us, n, 1.0)));
    int rc = json_dump_file(root, path, JSON_INDENT(2));
    json_decref(root);
    if (rc)
        fprintf(stderr, "rota-load: cannot write %s\n", path);
    return rc ? -1 : 0;
}

/* ---- --summary ---- */

#define SUM_RUNS  16
#define SUM_TIERS 16

struct sum_tier {
    char name[128];
    json_int_t calls, ok, r429, r5xx, other, failed;
    json_int_t per_run[SUM_RUNS];
};

static json_int_t num(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Add run "r"'s tiers to "t" (by name); false when there are too many tiers. */
static bool add_tiers(json_t *run, size_t r, struct sum_tier *t, size_t *nt)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(run, "tiers"), i, x)
    {
        const char *name = json_string_value(json_object_get(x, "name"));
        size_t k = 0;
        while (k < *nt && strcmp(t[k].name, name ? name : "?") != 0)
            k++;
        if (k == *nt) {
            if (*nt == SUM_TIERS)
                return false;
            snprintf(t[k].name, sizeof(t[k].name), "%s", name ? name : "?");
            (*nt)++;
        }
        t[k].calls += num(x, "calls");
        t[k].ok += num(x, "ok");
        t[k].r429 += num(x, "429");
        t[k].r5xx += num(x, "5xx");
        t[k].other += num(x, "other");
        t[k].failed += num(x, "failed");
        t[k].per_run[r] += num(x, "calls");
    }
    return true;
}

static void row(const char *name, json_int_t calls, json_int_t ok, json_int_t r429,
                json_int_t r5xx, json_int_t other)
{
    printf("%-14s %7lld %7lld %6lld %6lld %6lld  |", name, (long long)calls, (long long)ok,
           (long long)r429, (long long)r5xx, (long long)other);
}

/* The runs being summed, and each one's column width. */
struct runs {
    int n;
    json_t *run[SUM_RUNS];
    const char *label[SUM_RUNS];
    int width[SUM_RUNS];
};

/* Each run's figure for "key" (a number of the run, or "tier" k's calls), in its column. */
static void cells(const struct runs *rs, const char *key, const struct sum_tier *tier)
{
    for (int r = 0; r < rs->n; r++)
        printf(" %*lld", rs->width[r],
               (long long)(tier ? tier->per_run[r] : num(rs->run[r], key)));
    printf("\n");
}

static void print_table(const struct runs *rs, const struct sum_tier *t, size_t nt)
{
    printf("%-14s %7s %7s %6s %6s %6s  |", "tier", "calls", "2xx", "429", "5xx", "other");
    for (int r = 0; r < rs->n; r++)
        printf(" %*s", rs->width[r], rs->label[r]);
    printf("\n");
    struct sum_tier all = {.calls = 0};
    for (size_t k = 0; k < nt; k++) {
        row(t[k].name, t[k].calls, t[k].ok, t[k].r429, t[k].r5xx, t[k].other + t[k].failed);
        cells(rs, NULL, &t[k]);
        all.calls += t[k].calls;
        all.ok += t[k].ok;
        all.r429 += t[k].r429;
        all.r5xx += t[k].r5xx;
        all.other += t[k].other + t[k].failed;
    }
    row("all tiers", all.calls, all.ok, all.r429, all.r5xx, all.other);
    cells(rs, "calls", NULL);
    json_int_t exhausted = 0;
    for (int r = 0; r < rs->n; r++)
        exhausted += num(rs->run[r], "exhausted");
    printf("%-14s %7lld %30s|", "exhausted", (long long)exhausted, "");
    cells(rs, "exhausted", NULL);
    printf("%-14s %38s|", "p50 / p99 ms", "");
    for (int r = 0; r < rs->n; r++) {
        json_t *lat = json_object_get(rs->run[r], "latency_ms");
        char cell[48];
        snprintf(cell, sizeof(cell), "%.1f/%.1f",
                 json_number_value(json_object_get(lat, "p50")),
                 json_number_value(json_object_get(lat, "p99")));
        printf(" %*s", rs->width[r], cell);
    }
    printf("\n");
}

int load_summary(int n, char **paths)
{
    static struct runs rs;
    static struct sum_tier t[SUM_TIERS];
    size_t nt = 0;
    int rc = 0;
    if (n > SUM_RUNS) {
        fprintf(stderr, "rota-load: at most %d runs in a summary\n", SUM_RUNS);
        return 1;
    }
    for (rs.n = 0; rs.n < n && !rc; rs.n++) {
        int r = rs.n;
        json_error_t e;
        rs.run[r] = json_load_file(paths[r], 0, &e);
        if (!rs.run[r]) {
            fprintf(stderr, "rota-load: %s:%d: %s\n", paths[r], e.line, e.text);
            rc = 1;
        } else if (!add_tiers(rs.run[r], (size_t)r, t, &nt)) {
            fprintf(stderr, "rota-load: %s: more than %d tiers in all\n", paths[r], SUM_TIERS);
            rc = 1;
        }
        rs.label[r] = json_string_value(json_object_get(rs.run[r], "label"));
        if (!rs.label[r])
            rs.label[r] = paths[r];
        rs.width[r] = strlen(rs.label[r]) > 9 ? (int)strlen(rs.label[r]) : 9;
    }
    if (!rc)
        print_table(&rs, t, nt);
    for (int r = 0; r < rs.n; r++)
        json_decref(rs.run[r]);
    return rc;
}

/* ---- what the main thread prints as the run goes, and at its end ---- */

void load_take(struct load *l, struct load_snap *s)
{
    s->calls = tally_get(&l->total.calls);
    s->ok = tally_get(&l->total.ok);
    s->r429 = tally_get(&l->total.r429);
    s->r5xx = tally_get(&l->total.r5xx);
    s->other = tally_get(&l->total.other);
    s->failed = tally_get(&l->total.failed);
    s->exhausted = tally_get(&l->exhausted);
    for (uint32_t t = 0; t < ROTA_MAX_TIERS; t++)
        s->tier[t] = tally_get(&l->tier[t].calls);
}

void load_print_interval(const struct load *l, const struct load_snap *a,
                         const struct load_snap *b, double at)
{
    uint64_t calls = b->calls - a->calls;
    printf("%5.1fs  calls %4llu  ok %4llu  429 %3llu  5xx %3llu", at, (unsigned long long)calls,
           (unsigned long long)(b->ok - a->ok), (unsigned long long)(b->r429 - a->r429),
           (unsigned long long)(b->r5xx - a->r5xx));
    if (b->other - a->other || b->failed - a->failed)
        printf("  other %llu  failed %llu", (unsigned long long)(b->other - a->other),
               (unsigned long long)(b->failed - a->failed));
    printf("  exhausted %3llu  |", (unsigned long long)(b->exhausted - a->exhausted));
    for (uint32_t t = 0; t < l->names.ntiers; t++) {
        uint64_t n = b->tier[t] - a->tier[t];
        printf("  %s %3.0f%%", l->names.tiers[t],
               calls ? 100.0 * (double)n / (double)calls : 0.0);
    }
    printf("\n");
    fflush(stdout);
}

static double percentile_ms(const uint32_t *v, size_t n, double q)
{
    return n ? (double)v[(size_t)(q * (double)(n - 1))] / 1000.0 : 0.0;
}

void load_print_totals(struct load *l, const uint32_t *lat, size_t nlat, double secs)
{
    struct load_snap s;
    load_take(l, &s);
    printf("total %.1fs  calls %llu  ok %llu  429 %llu  5xx %llu  other %llu  failed %llu  "
           "exhausted %llu  latency p50 %.2f ms  p99 %.2f ms\n",
           secs, (unsigned long long)s.calls, (unsigned long long)s.ok,
           (unsigned long long)s.r429, (unsigned long long)s.r5xx, (unsigned long long)s.other,
           (unsigned long long)s.failed, (unsigned long long)s.exhausted,
           percentile_ms(lat, nlat, 0.50), percentile_ms(lat, nlat, 0.99));
    int col = printf("calls per account:");
    const char *sep = " ";
    for (uint32_t k = 0; k <= l->names.naccounts; k++) {
        uint32_t i = l->names.order[k];
        uint64_t n = tally_get(&l->account[i].calls);
        if (!n && i == l->names.naccounts)
            continue;
        char item[160];
        int len =
            snprintf(item, sizeof(item), "%s %llu", l->names.labels[i], (unsigned long long)n);
        if (col + (int)strlen(sep) + len > 96) {
            printf(",\n");
            col = printf("  ");
            sep = "";
        }
        col += printf("%s%s", sep, item);
        sep = ", ";
    }
    printf("\n");
    fflush(stdout);
}
