/*
 * answer.c - `rotactl parse`: what a provider's parser reads in an answer.
 *
 * DESIGN
 * For users whose provider changed its format: save the answer's headers and body to
 * files (curl -D headers.txt -o body.json ...), then see which windows, limits, resets,
 * retry hints and verdicts rota takes from them, and which fields it had to skip. Runs
 * the same parser the probes and librota's passive tracking use; needs no instance. What
 * the answer says (pools, details, problems) is the provider's text: printed escaped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "parse.h"
#include "rotactl.h"

static const char *const cause_name[] = {
    "", "rate limit", "quota used up", "provider capacity", "billing", "auth"};
static const char *const metric_name[] = {"requests", "tokens", "credits", "fraction"};

/* Read a whole file (at most ROTA_PARSE_MAX_BODY bytes) into a malloc'd buffer. */
static int slurp(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0 || n >= ROTA_PARSE_MAX_BODY)
            break;
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    fclose(f);
    if (!buf)
        return -ENOMEM;
    *out = buf;
    *len = n < ROTA_PARSE_MAX_BODY ? n : ROTA_PARSE_MAX_BODY;
    return 0;
}

static json_t *obs_json(const struct rota_obs *ob, int rc)
{
    json_t *wins = json_array();
    for (uint32_t i = 0; i < ob->nwin; i++) {
        const struct rota_obs_window *w = &ob->win[i];
        char at[40];
        rotactl_iso(w->reset_at, at, sizeof(at));
        json_t *o = json_pack("{s:s, s:s, s:s}", "pool", w->pool, "what", w->what, "metric",
                              w->metric < 4 ? metric_name[w->metric] : "?");
        json_object_set_new(o, "limit",
                            w->has_limit ? json_integer((json_int_t)w->limit) : json_null());
        json_object_set_new(o, "remaining",
                            w->has_remaining ? json_integer((json_int_t)w->remaining)
                                             : json_null());
        json_object_set_new(o, "used",
                            w->has_used ? json_integer((json_int_t)w->used) : json_null());
        json_object_set_new(o, "reset_at", w->reset_at ? json_string(at) : json_null());
        json_array_append_new(wins, o);
    }
    char retry[40], until[40];
    rotactl_iso(ob->retry_at, retry, sizeof(retry));
    rotactl_iso(ob->disable_until, until, sizeof(until));
    json_t *o = json_pack("{s:s, s:o}", "result",
                          rc > 0    ? "understood"
                          : rc == 0 ? "nothing relevant"
                                    : "malformed",
                          "windows", wins);
    json_object_set_new(o, "retry_at", ob->retry_at ? json_string(retry) : json_null());
    json_object_set_new(o, "cause", json_string(ob->cause < 6 ? cause_name[ob->cause] : "?"));
    json_object_set_new(o, "disable", json_boolean(ob->disable));
    json_object_set_new(o, "disable_until",
                        ob->disable && ob->disable_until ? json_string(until) : json_null());
    json_object_set_new(o, "reachable", json_boolean(ob->reachable));
    json_object_set_new(o, "detail", json_string(ob->detail));
    json_object_set_new(o, "problems", json_integer(ob->problems));
    json_object_set_new(o, "first_problem", json_string(ob->problem));
    return o;
}

static void obs_text(const struct rota_obs *ob, int rc, int64_t now)
{
    char b[64], e1[ROTACTL_ESC_SIZE(sizeof(ob->win[0].pool))],
        e2[ROTACTL_ESC_SIZE(sizeof(ob->win[0].what))], e3[ROTACTL_ESC_SIZE(sizeof(ob->detail))];
    printf("result:      %s\n", rc > 0    ? "understood"
                                : rc == 0 ? "nothing relevant"
                                          : "malformed");
    for (uint32_t i = 0; i < ob->nwin; i++) {
        const struct rota_obs_window *w = &ob->win[i];
        printf("window:      pool %s  %s (%s)",
               rotactl_esc(*w->pool ? w->pool : "*", e1, sizeof(e1)),
               rotactl_esc(w->what, e2, sizeof(e2)),
               w->metric < 4 ? metric_name[w->metric] : "?");
        if (w->has_limit)
            printf("  limit %llu", (unsigned long long)w->limit);
        if (w->has_remaining)
            printf("  remaining %llu", (unsigned long long)w->remaining);
        if (w->has_used)
            printf("  used %llu", (unsigned long long)w->used);
        if (w->reset_at)
            printf("  resets %s (in %s)", rotactl_iso(w->reset_at, b, sizeof(b)),
                   w->reset_at > now ? rotactl_dur((uint64_t)(w->reset_at - now), b + 32, 32)
                                     : "the past");
        printf("\n");
    }
    if (ob->retry_at)
        printf("retry at:    %s\n", rotactl_iso(ob->retry_at, b, sizeof(b)));
    if (ob->cause)
        printf("cause:       %s\n", ob->cause < 6 ? cause_name[ob->cause] : "?");
    if (ob->disable)
        printf("disable:     yes, %s\n", ob->disable_until
                                             ? rotactl_iso(ob->disable_until, b, sizeof(b))
                                             : "until enabled");
    printf("reachable:   %s\n", ob->reachable ? "yes" : "no");
    if (ob->detail[0])
        printf("detail:      %s\n", rotactl_esc(ob->detail, e3, sizeof(e3)));
    if (ob->problems)
        printf("problems:    %u, first: %s\n", ob->problems,
               rotactl_esc(ob->problem, e3, sizeof(e3)));
}

int rotactl_parse(const struct rotactl_opts *o, const struct rotactl_line *l)
{
    const char *hpath = rotactl_line_opt(l, "--headers"),
               *bpath = rotactl_line_opt(l, "--body");
    const struct rota_parser *p = rota_parser_find(rotactl_line_opt(l, "--provider"));
    int status = (int)rotactl_line_num(l, "--status", 200);
    char *headers = NULL, *body = NULL;
    size_t hlen = 0, blen = 0;
    const char *failed = NULL;
    int rc = 0;
    if (hpath && (rc = slurp(hpath, &headers, &hlen)))
        failed = hpath;
    else if (bpath && (rc = slurp(bpath, &body, &blen)))
        failed = bpath;
    if (failed) {
        char e[ROTACTL_ESC_SIZE(256)];
        fprintf(stderr, "rotactl: parse: %s: %s\n", rotactl_esc(failed, e, sizeof(e)),
                strerror(-rc));
        free(headers);
        return ROTACTL_REFUSED;
    }
    int64_t now = rota_clock_wall();
    struct rota_http_in in = {status, headers ? headers : "", hlen, body ? body : "", blen,
                              now};
    struct rota_parse_opts po = {0};
    struct rota_obs ob;
    rc = p->parse(&in, &po, &ob);
    if (o->json)
        rotactl_print_json(obs_json(&ob, rc));
    else
        obs_text(&ob, rc, now);
    free(headers);
    free(body);
    return rc < 0 ? ROTACTL_REFUSED : ROTACTL_OK;
}
