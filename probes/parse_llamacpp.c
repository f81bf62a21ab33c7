/*
 * parse_llamacpp.c - the local llama.cpp server: GET /health and GET
 * /slots?fail_on_no_slot=1. It has no quota; its capacity is its free slots.
 *
 * DESIGN
 * A pure function of its input like every parser (parse.h): no I/O, no globals, the JSON
 * document freed before returning. Which endpoint answered is read from the body: an
 * array is /slots (one object per slot, busy when "is_processing" is true or, in older
 * servers, "state" is not 0), an object with "status" is /health ("ok" when ready; older
 * servers add slots_idle and slots_processing), an object with "error" is an error of
 * either. A ready server is reachable, and the detail says how many slots are free. 503
 * (loading the model, or no free slot) and other 5xx are the server's capacity, never the
 * account's: a short retry, longer while loading. 404 or 501 "not supported" means the
 * slots endpoint is not exposed: nothing to say, 0. 401 means an API key is set and ours
 * is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "parse_json.h"

#define NS_PER_SEC   INT64_C(1000000000)
#define LOADING_WAIT (5 * NS_PER_SEC) /* a server loading its model */
#define BUSY_WAIT    (1 * NS_PER_SEC) /* every slot busy: one may free up soon */
#define DOWN_WAIT    (5 * NS_PER_SEC) /* any other 5xx */

/* The text that says what the server is doing: "status", else error.message. */
static const char *state_text(json_t *root)
{
    const char *s = json_string_value(json_object_get(root, "status"));
    if (!s)
        s = json_string_value(json_object_get(json_object_get(root, "error"), "message"));
    return s;
}

/* A busy or loading server: capacity, retry after Retry-After or "wait". */
static void unavailable(const struct rota_http_in *in, int64_t wait, const char *what,
                        struct rota_obs *out)
{
    int64_t hint = rota_http_retry_at(in, out);
    out->cause = ROTA_CAUSE_CAPACITY;
    out->retry_at = hint ? hint : rota_ns_later(in->now, wait);
    rota_obs_detail(out, "%s", what);
}

/* Is slot "s" (element "i" of /slots) free? Unreadable slots count as busy. */
static bool slot_free(json_t *s, size_t i, struct rota_obs *out)
{
    json_t *busy = json_object_get(s, "is_processing"), *state = json_object_get(s, "state");
    if (json_is_boolean(busy))
        return !json_is_true(busy);
    if (json_is_number(state)) /* a real when huge integers made every number one */
        return json_number_value(state) == 0;
    if (busy)
        rota_obs_problem(out, "slots[%zu].is_processing: %s, not a boolean", i,
                         rota_json_type_name(busy));
    else if (state)
        rota_obs_problem(out, "slots[%zu].state: %s, not a number", i,
                         rota_json_type_name(state));
    else
        rota_obs_problem(out, "slots[%zu]: neither is_processing nor state", i);
    return false;
}

/* A /slots answer: reachable, with its free and total slots. */
static void slots(const struct rota_http_in *in, json_t *arr, struct rota_obs *out)
{
    size_t i, total = 0, nfree = 0;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        if (!json_is_object(s)) {
            rota_obs_problem(out, "slots[%zu]: %s, not an object", i, rota_json_type_name(s));
            continue;
        }
        total++;
        nfree += slot_free(s, i, out);
    }
    out->reachable = true;
    rota_obs_detail(out, "%zu/%zu slots free", nfree, total);
}

/* A /health answer of a 2xx (or of an exec probe). */
static void health(const struct rota_http_in *in, const char *status, json_t *root,
                   struct rota_obs *out)
{
    json_t *idle = json_object_get(root, "slots_idle");
    json_t *busy = json_object_get(root, "slots_processing");
    if (strcasecmp(status, "ok") == 0) {
        double i = json_number_value(idle), b = json_number_value(busy);
        out->reachable = true;
        rota_obs_detail(out, "ready");
        if (json_is_number(idle) && json_is_number(busy) && i >= 0 && b >= 0 && i < 1e9 &&
            b < 1e9) /* older servers count their slots here */
            rota_obs_detail(out, "%.0f/%.0f slots free", i, i + b);
    } else if (strcasestr(status, "loading")) {
        unavailable(in, LOADING_WAIT, "loading the model", out);
    } else if (strcasestr(status, "no slot")) {
        unavailable(in, BUSY_WAIT, "no free slot", out);
    } else {
        rota_obs_problem(out, "status: \"%.40s\" is not a state /health reports", status);
    }
}

/* A 5xx: loading, no free slot, or down for another reason. */
static void server_error(const struct rota_http_in *in, json_t *root, struct rota_obs *out)
{
    const char *text = state_text(root);
    if (text && strcasestr(text, "loading")) {
        unavailable(in, LOADING_WAIT, "loading the model", out);
    } else if (text && strcasestr(text, "no slot")) {
        unavailable(in, BUSY_WAIT, "no free slot", out);
    } else {
        char what[96];
        snprintf(what, sizeof(what), "unavailable (%d%s%.60s)", in->status, text ? ": " : "",
                 text ? text : "");
        unavailable(in, DOWN_WAIT, what, out);
    }
}

/* A 2xx (or an exec probe's output): /slots, /health, or neither. */
static void answer(const struct rota_http_in *in, json_t *root, struct rota_obs *out)
{
    const char *status = json_string_value(json_object_get(root, "status"));
    if (json_is_array(root))
        slots(in, root, out);
    else if (status)
        health(in, status, root, out);
    else if (root)
        rota_obs_problem(out, "body: %s that is neither /health nor /slots",
                         rota_json_type_name(root));
}

int rota_parse_llamacpp(const struct rota_http_in *in, const struct rota_parse_opts *o,
                        struct rota_obs *out)
{
    rota_obs_init(out);
    int s = in->status;
    bool ok = s == 0 || (s >= 200 && s <= 299);
    json_t *root = rota_json_body_or_null(in, !ok, out);
    if (s == 404 || s == 501) {
        rota_obs_detail(out, "slots not exposed (%d)", s);
    } else if (s == 401 || s == 403) {
        const char *text = state_text(root);
        out->cause = ROTA_CAUSE_AUTH;
        out->disable = true;
        rota_obs_detail(out, "API key refused (%d%s%.60s)", s, text ? ": " : "",
                        text ? text : "");
    } else if (s >= 500 && s <= 599) {
        server_error(in, root, out);
    } else if (ok) {
        answer(in, root, out);
    } else {
        rota_obs_problem(out, "status: %d is not an answer llama.cpp gives here", s);
    }
    json_decref(root);
    if (out->reachable || out->cause || out->disable)
        return 1;
    return out->problems ? -EINVAL : 0;
}
