/*
 * xl_responses_stream.c - a streamed response of the Responses API read event by
 * event from a provider, and written event by event for a client (xl_responses.c says
 * what the module does).
 *
 * DESIGN
 * In: each event's "type" (its name when it has none) says what it is: response.created
 * starts the answer; a function_call item added starts a tool call (the provider's
 * output_index mapped to our call's number, sin.tool_of; sin.kind says whether its
 * arguments came), and its argument deltas cross as the strings they are; text,
 * refusal and reasoning deltas are text and reasoning; a reasoning item done gives its
 * encrypted_content as the signature; response.completed and response.incomplete give
 * the usage, the finish and the end; response.failed and error are the provider's
 * failure.
 *
 * Out: named events, each with its "type" and a sequence_number (sout.seq):
 * response.created and response.in_progress first, then one output item at a time,
 * opened when its first event comes and closed (its .done events, then
 * output_item.done) before the next opens: a message (content_part and output_text
 * events), a reasoning item (reasoning_summary events; its signature, which comes
 * after its text, in output_item.done as encrypted_content), a function call
 * (function_call_arguments events). The open item's text or arguments are held
 * (sout.held) for its .done events, and each item done is kept whole (sout.held2) for
 * response.completed, which ends the stream with the whole response and its usage
 * (response.incomplete when the answer was cut). Both are bounded by their max; a
 * stream beyond it fails. A failure closes the open item and ends with an error event
 * carrying an "error" object, which both official SDKs raise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xl_responses.h"

#define LIT(b, s) rota_jbuf_raw(b, s, sizeof(s) - 1)

/* ---- in ---- */

static struct rota_xl_ev *push(struct rota_xl_evs *out, enum rota_xl_ev_type t)
{
    if (out->n >= ROTA_XL_EVS_MAX)
        return NULL;
    struct rota_xl_ev *ev = &out->ev[out->n++];
    memset(ev, 0, sizeof(*ev));
    ev->type = t;
    return ev;
}

static bool text_of(const struct rota_json *v)
{
    return v && v->type == ROTA_JSON_STRING && v->len > 2;
}

static int nomem(struct rota_xl *x)
{
    return rota_xl_fail(x, -ENOMEM, "out of memory");
}

/* Our call of output_index "oi", begun now when "item" (a function_call) says so. */
static int call_of(struct rota_xl *x, struct rota_xl_sin *st, uint64_t oi,
                   const struct rota_json *item, struct rota_xl_evs *out)
{
    if (st->tool_of[oi])
        return st->tool_of[oi] - 1;
    if (!item)
        return rota_xl_fail(x, -EINVAL, "function call arguments before the call began");
    const struct rota_json *id = rota_json_get(item, "call_id"), *name = rota_json_get(item, "name");
    if (!text_of(id) || !text_of(name))
        return rota_xl_fail(x, -EINVAL, "a function call item without call_id or name");
    if (st->ntools >= ROTA_XL_BLOCKS)
        return rota_xl_fail(x, -EFBIG, "more than %d tool calls", ROTA_XL_BLOCKS);
    struct rota_xl_ev *ev = push(out, ROTA_XL_EV_TOOL);
    if (!ev)
        return nomem(x);
    ev->index = st->ntools++;
    ev->id = rota_xl_v(id);
    ev->name = rota_xl_v(name);
    st->tool_of[oi] = (uint16_t)st->ntools;
    return (int)ev->index;
}

/* A function call's whole arguments, when no delta gave them. */
static int whole_args(struct rota_xl *x, struct rota_xl_sin *st, uint64_t oi, int call,
                      const struct rota_json *item, struct rota_xl_evs *out)
{
    const struct rota_json *args = rota_json_get(item, "arguments");
    if (st->kind[oi] || !text_of(args))
        return 0;
    struct rota_xl_ev *ev = push(out, ROTA_XL_EV_ARGS);
    if (!ev)
        return nomem(x);
    ev->index = (uint32_t)call;
    ev->text = rota_xl_v(args);
    st->kind[oi] = 1;
    return 0;
}

static int item_event(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *j,
                      bool done, struct rota_xl_evs *out)
{
    uint64_t oi;
    const struct rota_json *item = rota_json_get(j, "item");
    if (!rota_json_uint(rota_json_get(j, "output_index"), &oi) || oi >= ROTA_XL_BLOCKS)
        return rota_xl_fail(x, -EINVAL, "an output item without an output_index below %d",
                            ROTA_XL_BLOCKS);
    const struct rota_json *type = rota_json_get(item, "type");
    if (rota_json_is(type, "function_call")) {
        int call = call_of(x, st, oi, item, out);
        return call < 0 ? call : whole_args(x, st, oi, call, item, out);
    }
    const struct rota_json *enc = rota_json_get(item, "encrypted_content");
    if (done && rota_json_is(type, "reasoning") && text_of(enc)) {
        struct rota_xl_ev *ev = push(out, ROTA_XL_EV_SIGNATURE);
        if (!ev)
            return nomem(x);
        ev->sig = rota_xl_v(enc);
    }
    return 0;
}

/* The end: usage, finish, end. */
static int completed(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *resp,
                     struct rota_xl_evs *out)
{
    struct rota_xl_ev *ev;
    const struct rota_json *u = rota_json_get(resp, "usage");
    if (u && u->type == ROTA_JSON_OBJECT) {
        if (!(ev = push(out, ROTA_XL_EV_USAGE)))
            return nomem(x);
        rota_xl_responses_usage_in(u, &ev->usage);
        st->usage = ev->usage;
    }
    if (!(ev = push(out, ROTA_XL_EV_FINISH)))
        return nomem(x);
    ev->finish = rota_xl_responses_finish_in(resp, st->ntools > 0);
    if (!(ev = push(out, ROTA_XL_EV_END)))
        return nomem(x);
    st->ended = true;
    return 0;
}

static int error_event(struct rota_xl *x, const struct rota_json *j, struct rota_xl_evs *out)
{
    struct rota_xl_ev *ev = push(out, ROTA_XL_EV_ERROR);
    if (!ev)
        return nomem(x);
    const struct rota_json *m = rota_json_path(j, "response.error.message");
    if (!text_of(m))
        m = rota_json_get(j, "message");
    if (!text_of(m))
        m = rota_json_path(j, "error.message");
    ev->text = text_of(m) ? rota_xl_v(m) : rota_xl_vstr(x, j->p, j->len);
    return 0;
}

/* A delta of text ("t"): text or reasoning. */
static int piece(struct rota_xl *x, const struct rota_json *j, enum rota_xl_ev_type t,
                 struct rota_xl_evs *out)
{
    const struct rota_json *d = rota_json_get(j, "delta");
    if (!text_of(d))
        return 0;
    struct rota_xl_ev *ev = push(out, t);
    if (!ev)
        return nomem(x);
    ev->text = rota_xl_v(d);
    return 0;
}

int rota_xl_responses_ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *name,
                            size_t nlen, const char *data, size_t dlen, struct rota_xl_evs *out)
{
    if (st->ended || dlen == 0)
        return 0;
    struct rota_xl_ev *ev;
    if (dlen == 6 && memcmp(data, "[DONE]", 6) == 0)
        return 0; /* (some proxies add it; response.completed is the end) */
    struct rota_json_err e;
    struct rota_json *j = rota_json_parse(x->a, data, dlen, &e);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "a stream event is not JSON: %s at byte %zu", e.what, e.at);
    if (j->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "a stream event is not a JSON object");
    const struct rota_json *type = rota_json_get(j, "type");
    struct rota_json named = {.type = ROTA_JSON_STRING};
    if (!type && name) { /* the event's name, as a string token to compare */
        char *q = rota_arena_alloc(x->a, nlen + 2);
        if (!q)
            return nomem(x);
        q[0] = '"';
        memcpy(q + 1, name, nlen);
        q[nlen + 1] = '"';
        named.p = q, named.len = nlen + 2;
        type = &named;
    }
    st->seq++;
    if (rota_json_is(type, "error"))
        return error_event(x, j, out);
    if (rota_json_is(type, "response.failed"))
        return error_event(x, j, out);
    if (!st->started) {
        if (!(ev = push(out, ROTA_XL_EV_START)))
            return nomem(x);
        const struct rota_json *r = rota_json_get(j, "response");
        const struct rota_json *id = rota_json_get(r, "id"), *model = rota_json_get(r, "model");
        ev->id = text_of(id) ? rota_xl_v(id) : (struct rota_xl_val){0};
        ev->model = text_of(model) ? rota_xl_v(model) : (struct rota_xl_val){0};
        st->started = true;
    }
    if (rota_json_is(type, "response.output_text.delta") ||
        rota_json_is(type, "response.refusal.delta"))
        return piece(x, j, ROTA_XL_EV_TEXT, out);
    if (rota_json_is(type, "response.reasoning_summary_text.delta") ||
        rota_json_is(type, "response.reasoning_text.delta"))
        return piece(x, j, ROTA_XL_EV_THINKING, out);
    if (rota_json_is(type, "response.function_call_arguments.delta")) {
        uint64_t oi;
        if (!rota_json_uint(rota_json_get(j, "output_index"), &oi) || oi >= ROTA_XL_BLOCKS)
            return rota_xl_fail(x, -EINVAL, "function call arguments without an output_index");
        int call = call_of(x, st, oi, NULL, out);
        const struct rota_json *d = rota_json_get(j, "delta");
        if (call < 0 || !text_of(d))
            return call < 0 ? call : 0;
        if (!(ev = push(out, ROTA_XL_EV_ARGS)))
            return nomem(x);
        ev->index = (uint32_t)call;
        ev->text = rota_xl_v(d);
        st->kind[oi] = 1;
        return 0;
    }
    if (rota_json_is(type, "response.output_item.added"))
        return item_event(x, st, j, false, out);
    if (rota_json_is(type, "response.output_item.done"))
        return item_event(x, st, j, true, out);
    if (rota_json_is(type, "response.reasoning_summary_part.added")) {
        uint64_t si = 0; /* summary parts are paragraphs */
        if (!rota_json_uint(rota_json_get(j, "summary_index"), &si) || si == 0)
            return 0;
        if (!(ev = push(out, ROTA_XL_EV_THINKING)))
            return nomem(x);
        ev->text = (struct rota_xl_val){"\"\\n\\n\"", 6};
        return 0;
    }
    if (rota_json_is(type, "response.completed") || rota_json_is(type, "response.incomplete"))
        return completed(x, st, rota_json_get(j, "response"), out);
    return 0; /* created, in_progress, the .done and .added of parts, annotations */
}

/* ---- out ---- */

/* An event's start: its name, its type and sequence number; its members follow, each
 * with its comma, then ev_end. */
static void ev_begin(struct rota_xl_sout *st, struct rota_jbuf *out, const char *name)
{
    LIT(out, "event: ");
    rota_jbuf_rawz(out, name);
    LIT(out, "\ndata: {\"type\":\"");
    rota_jbuf_rawz(out, name);
    LIT(out, "\",\"sequence_number\":");
    rota_jbuf_u64(out, st->seq++);
}

static void ev_end(struct rota_jbuf *out)
{
    LIT(out, "}\n\n");
}

/* "prefix_<response>_<n>", as a string: an item's id. */
static void item_id(struct rota_xl_sout *st, struct rota_jbuf *out, const char *prefix, int n)
{
    rota_jbuf_raw(out, "\"", 1);
    rota_jbuf_rawz(out, prefix);
    rota_jbuf_raw(out, "_", 1);
    rota_jbuf_rawz(out, st->id + 5); /* plain characters: see rota_xl_responses_id */
    rota_jbuf_raw(out, "_", 1);
    rota_jbuf_u64(out, (uint64_t)n);
    rota_jbuf_raw(out, "\"", 1);
}

/* ,"item_id":..,"output_index":n */
static void where_item(struct rota_xl_sout *st, struct rota_jbuf *out, const char *prefix)
{
    LIT(out, ",\"item_id\":");
    item_id(st, out, prefix, st->open);
    LIT(out, ",\"output_index\":");
    rota_jbuf_u64(out, (uint64_t)st->open);
}

/* The response object: "output" its items done (held2) when "whole". */
static void response(struct rota_xl_sout *st, struct rota_jbuf *out, const char *status,
                     bool whole)
{
    LIT(out, ",\"response\":{\"id\":\"");
    rota_jbuf_rawz(out, st->id);
    LIT(out, "\",\"object\":\"response\",\"created_at\":");
    rota_jbuf_u64(out, st->created);
    LIT(out, ",\"status\":\"");
    rota_jbuf_rawz(out, status);
    LIT(out, "\",\"error\":null,\"incomplete_details\":");
    bool cut = st->finish == ROTA_XL_FINISH_LENGTH, filtered = st->finish == ROTA_XL_FINISH_FILTER;
    if (whole && (cut || filtered)) {
        LIT(out, "{\"reason\":\"");
        rota_jbuf_rawz(out, cut ? "max_output_tokens" : "content_filter");
        LIT(out, "\"}");
    } else {
        LIT(out, "null");
    }
    LIT(out, ",\"model\":");
    rota_jbuf_str(out, st->model, strlen(st->model));
    LIT(out, ",\"output\":[");
    if (whole)
        rota_jbuf_raw(out, st->held2.p, st->held2.len);
    LIT(out, "],\"usage\":");
    if (whole)
        rota_xl_responses_usage_out(out, &st->usage);
    else
        LIT(out, "null");
    LIT(out, "}");
}

static void plain(struct rota_xl *x, struct rota_xl_val v, char *dst, size_t cap)
{
    size_t n = 0;
    const char *t = v.len ? rota_xl_text(x, v, &n) : NULL;
    if (!t)
        n = 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, t ? t : "", n);
    dst[n] = 0;
}

/* response.created and response.in_progress. */
static void begin(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                  struct rota_jbuf *out)
{
    if (st->started)
        return;
    st->started = true;
    struct rota_xl_val model = ev && ev->model.len ? ev->model : (struct rota_xl_val){0};
    rota_xl_responses_id(x, ev ? ev->id : (struct rota_xl_val){0}, model, st->id,
                         sizeof(st->id));
    if (model.len)
        plain(x, model, st->model, sizeof(st->model));
    else if (x->req && x->req->model.len)
        plain(x, x->req->model, st->model, sizeof(st->model));
    else
        snprintf(st->model, sizeof(st->model), "%s", x->model ? x->model : "");
    st->created = x->now_s;
    st->open = -1;
    rota_jbuf_reset(&st->held);
    rota_jbuf_reset(&st->held2);
    ev_begin(st, out, "response.created");
    response(st, out, "in_progress", false);
    ev_end(out);
    ev_begin(st, out, "response.in_progress");
    response(st, out, "in_progress", false);
    ev_end(out);
}

/* The open item, whole, appended to held2 (and its bytes returned by offset). */
static size_t keep_item(struct rota_xl_sout *st, const char *status)
{
    struct rota_jbuf *h = &st->held2;
    if (h->len)
        LIT(h, ",");
    size_t at = h->len;
    const char *text = st->held.err ? "" : st->held.p ? st->held.p : "";
    size_t tn = st->held.err ? 0 : st->held.len;
    LIT(h, "{\"id\":");
    if (st->open_kind == ROTA_XL_EV_TEXT) {
        item_id(st, h, "msg", st->open);
        LIT(h, ",\"type\":\"message\",\"status\":\"");
        rota_jbuf_rawz(h, status);
        LIT(h, "\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"");
        rota_jbuf_raw(h, text, tn);
        LIT(h, "\",\"annotations\":[]}]}");
    } else if (st->open_kind == ROTA_XL_EV_THINKING) {
        item_id(st, h, "rs", st->open);
        LIT(h, ",\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"");
        rota_jbuf_raw(h, text, tn);
        LIT(h, "\"}]");
        if (st->tool_sig.len) {
            LIT(h, ",\"encrypted_content\":");
            rota_jbuf_raw(h, st->tool_sig.p, st->tool_sig.len);
        }
        LIT(h, "}");
    } else {
        item_id(st, h, "fc", st->open);
        LIT(h, ",\"type\":\"function_call\",\"status\":\"");
        rota_jbuf_rawz(h, status);
        LIT(h, "\",\"arguments\":\"");
        rota_jbuf_raw(h, text, tn);
        LIT(h, "\",\"call_id\":");
        rota_jbuf_raw(h, st->tool_id.p, st->tool_id.len);
        LIT(h, ",\"name\":");
        rota_jbuf_raw(h, st->tool_name.p, st->tool_name.len);
        LIT(h, "}");
    }
    return at;
}

/* The open item's .done events and output_item.done. */
static void close_item(struct rota_xl_sout *st, struct rota_jbuf *out, const char *status)
{
    if (st->open < 0)
        return;
    const char *text = st->held.err || !st->held.p ? "" : st->held.p;
    size_t tn = st->held.err ? 0 : st->held.len;
    if (st->open_kind == ROTA_XL_EV_TEXT) {
        ev_begin(st, out, "response.output_text.done");
        where_item(st, out, "msg");
        LIT(out, ",\"content_index\":0,\"text\":\"");
        rota_jbuf_raw(out, text, tn);
        LIT(out, "\",\"logprobs\":[]");
        ev_end(out);
        ev_begin(st, out, "response.content_part.done");
        where_item(st, out, "msg");
        LIT(out, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"");
        rota_jbuf_raw(out, text, tn);
        LIT(out, "\",\"annotations\":[]}");
        ev_end(out);
    } else if (st->open_kind == ROTA_XL_EV_THINKING) {
        ev_begin(st, out, "response.reasoning_summary_text.done");
        where_item(st, out, "rs");
        LIT(out, ",\"summary_index\":0,\"text\":\"");
        rota_jbuf_raw(out, text, tn);
        LIT(out, "\"");
        ev_end(out);
        ev_begin(st, out, "response.reasoning_summary_part.done");
        where_item(st, out, "rs");
        LIT(out, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"");
        rota_jbuf_raw(out, text, tn);
        LIT(out, "\"}");
        ev_end(out);
    } else {
        ev_begin(st, out, "response.function_call_arguments.done");
        where_item(st, out, "fc");
        LIT(out, ",\"arguments\":\"");
        rota_jbuf_raw(out, text, tn);
        LIT(out, "\"");
        ev_end(out);
    }
    size_t at = keep_item(st, status);
    ev_begin(st, out, "response.output_item.done");
    LIT(out, ",\"output_index\":");
    rota_jbuf_u64(out, (uint64_t)st->open);
    LIT(out, ",\"item\":");
    if (!st->held2.err)
        rota_jbuf_raw(out, st->held2.p + at, st->held2.len - at);
    else
        LIT(out, "null");
    ev_end(out);
    st->open = -1;
    st->tool_sig = (struct rota_xl_val){0};
    rota_jbuf_reset(&st->held);
}

/* A new item of "kind" opened: output_item.added (and its part's .added). */
static void open_item(struct rota_xl_sout *st, struct rota_jbuf *out, uint8_t kind)
{
    close_item(st, out, "completed");
    st->open = (int)st->blocks++;
    st->open_kind = kind;
    ev_begin(st, out, "response.output_item.added");
    LIT(out, ",\"output_index\":");
    rota_jbuf_u64(out, (uint64_t)st->open);
    LIT(out, ",\"item\":{\"id\":");
    if (kind == ROTA_XL_EV_TEXT) {
        item_id(st, out, "msg", st->open);
        LIT(out, ",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\","
                 "\"content\":[]}");
        ev_end(out);
        ev_begin(st, out, "response.content_part.added");
        where_item(st, out, "msg");
        LIT(out, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\","
                 "\"annotations\":[]}");
    } else if (kind == ROTA_XL_EV_THINKING) {
        item_id(st, out, "rs", st->open);
        LIT(out, ",\"type\":\"reasoning\",\"summary\":[]}");
        ev_end(out);
        ev_begin(st, out, "response.reasoning_summary_part.added");
        where_item(st, out, "rs");
        LIT(out, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}");
    } else {
        item_id(st, out, "fc", st->open);
        LIT(out, ",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\","
                 "\"call_id\":");
        rota_jbuf_raw(out, st->tool_id.p, st->tool_id.len);
        LIT(out, ",\"name\":");
        rota_jbuf_raw(out, st->tool_name.p, st->tool_name.len);
        LIT(out, "}");
    }
    ev_end(out);
}

/* A value kept past its event (the event's bytes and arena are gone after it). */
static struct rota_xl_val keep(struct rota_xl *x, struct rota_xl_val v)
{
    char *p = v.len ? rota_arena_dup(rota_xl_keep(x), v.p, v.len) : NULL;
    return p ? (struct rota_xl_val){p, v.len} : (struct rota_xl_val){"\"\"", 2};
}

/* A delta event of the open item: "delta" the string value "v" (or, "quote", JSON text
 * written as a string); "index" and "tail", members before and after it. */
static void delta(struct rota_xl_sout *st, struct rota_jbuf *out, const char *name,
                  const char *prefix, const char *index, struct rota_xl_val v, bool quote,
                  const char *tail)
{
    ev_begin(st, out, name);
    where_item(st, out, prefix);
    rota_jbuf_rawz(out, index);
    LIT(out, ",\"delta\":");
    if (quote) {
        rota_jbuf_quote(out, v.p, v.len);
        rota_jbuf_esc(&st->held, v.p, v.len);
    } else {
        rota_jbuf_raw(out, v.p, v.len);
        rota_xl_openai_inner(&st->held, v);
    }
    rota_jbuf_rawz(out, tail);
    ev_end(out);
}

static int tool_start(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                      struct rota_jbuf *out)
{
    if (ev->index < st->tools)
        return 0; /* begun already: one item per call */
    close_item(st, out, "completed");
    struct rota_xl_val id = ev->id;
    if (!id.len)
        id = rota_xl_tool_id(x, "call_", ev->name, ev->args, ev->index, ev->sig);
    st->tool_id = keep(x, id);
    st->tool_name = keep(x, ev->name);
    st->open_tool = ev->index;
    st->tools = ev->index + 1;
    open_item(st, out, ROTA_XL_EV_TOOL);
    if (ev->args.len) /* it came whole */
        delta(st, out, "response.function_call_arguments.delta", "fc", "", ev->args, true, "");
    return 0;
}

static int end(struct rota_xl *x, struct rota_xl_sout *st, struct rota_jbuf *out)
{
    close_item(st, out, "completed");
    if (st->held2.err)
        return rota_xl_fail(x, -EFBIG, "the answer is too large to be held for "
                                       "response.completed");
    bool incomplete = st->finish == ROTA_XL_FINISH_LENGTH || st->finish == ROTA_XL_FINISH_FILTER;
    ev_begin(st, out, incomplete ? "response.incomplete" : "response.completed");
    response(st, out, incomplete ? "incomplete" : "completed", true);
    ev_end(out);
    st->ended = true;
    return 0;
}

int rota_xl_responses_ev_out(struct rota_xl *x, struct rota_xl_sout *st,
                             const struct rota_xl_ev *ev, struct rota_jbuf *out)
{
    if (st->ended)
        return 0;
    if (ev->type == ROTA_XL_EV_ERROR) {
        size_t n = 0;
        const char *t = ev->text.len ? rota_xl_text(x, ev->text, &n) : NULL;
        char msg[512];
        snprintf(msg, sizeof(msg), "%.*s", (int)n, t ? t : "the upstream stream failed");
        rota_xl_responses_ev_fail(x, st, msg, out);
        return 0;
    }
    begin(x, st, ev->type == ROTA_XL_EV_START ? ev : NULL, out);
    switch (ev->type) {
    case ROTA_XL_EV_START:
        if (ev->usage.seen)
            rota_xl_openai_usage_add(&st->usage, &ev->usage);
        break;
    case ROTA_XL_EV_TEXT:
        if (ev->text.len <= 2)
            break;
        if (st->open < 0 || st->open_kind != ROTA_XL_EV_TEXT)
            open_item(st, out, ROTA_XL_EV_TEXT);
        delta(st, out, "response.output_text.delta", "msg", ",\"content_index\":0", ev->text,
              false, ",\"logprobs\":[]");
        break;
    case ROTA_XL_EV_THINKING:
        if (ev->text.len <= 2)
            break;
        if (st->open < 0 || st->open_kind != ROTA_XL_EV_THINKING || st->tool_sig.len)
            open_item(st, out, ROTA_XL_EV_THINKING);
        delta(st, out, "response.reasoning_summary_text.delta", "rs", ",\"summary_index\":0",
              ev->text, false, "");
        break;
    case ROTA_XL_EV_SIGNATURE:
        if (ev->sig.len <= 2)
            break;
        if (st->open < 0 || st->open_kind != ROTA_XL_EV_THINKING || st->tool_sig.len)
            open_item(st, out, ROTA_XL_EV_THINKING);
        st->tool_sig = keep(x, ev->sig);
        break;
    case ROTA_XL_EV_TOOL:
        return tool_start(x, st, ev, out) ? -EINVAL : out->err;
    case ROTA_XL_EV_ARGS:
        if (ev->text.len <= 2)
            break;
        if (st->open < 0 || st->open_kind != ROTA_XL_EV_TOOL || st->open_tool != ev->index)
            return rota_xl_fail(x, -EINVAL, "arguments of tool call %u, which is not open",
                                ev->index);
        delta(st, out, "response.function_call_arguments.delta", "fc", "", ev->text, false, "");
        break;
    case ROTA_XL_EV_FINISH:
        st->finish = ev->finish;
        st->stop_seq = rota_xl_kept(x, ev->stop_seq);
        st->finished = true;
        break;
    case ROTA_XL_EV_USAGE:
        rota_xl_openai_usage_add(&st->usage, &ev->usage);
        break;
    case ROTA_XL_EV_END:
        return end(x, st, out) ? -EFBIG : out->err;
    default:
        break;
    }
    return out->err;
}

void rota_xl_responses_ev_fail(struct rota_xl *x, struct rota_xl_sout *st, const char *message,
                               struct rota_jbuf *out)
{
    (void)x;
    if (st->ended)
        return;
    if (st->started)
        close_item(st, out, "incomplete");
    ev_begin(st, out, "error");
    LIT(out, ",\"code\":\"server_error\",\"message\":");
    rota_jbuf_strz(out, message);
    LIT(out, ",\"param\":null,\"error\":{\"type\":\"server_error\",\"code\":\"server_error\","
             "\"message\":");
    rota_jbuf_strz(out, message);
    LIT(out, "}");
    ev_end(out);
    st->ended = true;
}
