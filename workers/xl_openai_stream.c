/*
 * xl_openai_stream.c - a streamed chat completion read event by event from a provider,
 * and written event by event for a client (xl_openai.c says what the module does).
 *
 * DESIGN
 * In: each "data:" event is a chunk; its first choice's delta gives reasoning
 * (reasoning_content, OpenRouter's reasoning, or its reasoning_details, whose
 * signatures become SIGNATURE events), text, and tool call pieces; then its
 * finish_reason, then its usage, in that order within one chunk, so a provider that
 * sends usage on every chunk loses no argument piece. A tool call begins with a piece
 * that has an id or a name; the provider's tool index is mapped to ours (sin.tool_of),
 * and a piece with a new id at an index already used begins the next call (providers
 * that give every call index 0); a piece without an index continues the last call.
 * Argument pieces cross as the string tokens they are. {"error": ...} is the provider's
 * failure, [DONE] its end. OpenRouter's encrypted reasoning has no stream event and is
 * not carried.
 *
 * Out: a chunk per event, the first with the role; the id, created and model of every
 * chunk are kept written once in sout.held2 and copied. Reasoning goes as
 * reasoning_content, and its text is held (sout.held) until a signature comes, which is
 * written as one whole reasoning_details entry (text and signature), so a client that
 * sends reasoning_details back sends the pair Anthropic checks. A tool call's start
 * carries its id, name and empty arguments (or its whole arguments, quoted, when they
 * came whole); its pieces follow. Finish and usage are held and written at the end: the
 * finish chunk, the usage chunk when the client asked for it, then [DONE]. A failure
 * ends with an error object and no [DONE], so SDKs raise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xl_openai.h"

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

static int full(struct rota_xl *x)
{
    return rota_xl_fail(x, -EFBIG, "a stream event holds more than %d parts", ROTA_XL_EVS_MAX);
}

static bool text_of(const struct rota_json *v)
{
    return v && v->type == ROTA_JSON_STRING && v->len > 2;
}

static uint32_t hash(const struct rota_json *v)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < v->len; i++)
        h = (h ^ (unsigned char)v->p[i]) * 16777619u;
    return h | 1;
}

static int reasoning_in(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *d,
                        struct rota_xl_evs *out)
{
    const struct rota_json *r = rota_json_get(d, "reasoning_content");
    if (!text_of(r))
        r = rota_json_get(d, "reasoning");
    struct rota_xl_ev *ev;
    if (text_of(r)) {
        if (!(ev = push(out, ROTA_XL_EV_THINKING)))
            return full(x);
        ev->text = rota_xl_v(r);
        st->thought = true;
    }
    const struct rota_json *det = rota_json_get(d, "reasoning_details");
    for (const struct rota_json *e = det && det->type == ROTA_JSON_ARRAY ? det->kid : NULL; e;
         e = e->next) {
        const struct rota_json *type = rota_json_get(e, "type");
        const struct rota_json *t = rota_json_get(e, rota_json_is(type, "reasoning.summary")
                                                         ? "summary" : "text");
        const struct rota_json *s = rota_json_get(e, "signature");
        if (rota_json_is(type, "reasoning.encrypted"))
            continue; /* no stream event carries it */
        if (text_of(t) && !text_of(r) && !st->thought) {
            if (!(ev = push(out, ROTA_XL_EV_THINKING)))
                return full(x);
            ev->text = rota_xl_v(t);
        }
        if (text_of(s)) {
            if (!(ev = push(out, ROTA_XL_EV_SIGNATURE)))
                return full(x);
            ev->sig = rota_xl_v(s);
            st->thought = false;
        }
    }
    return 0;
}

/* One piece of a tool call. */
static int tool_in(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *t,
                   struct rota_xl_evs *out)
{
    uint64_t idx = 0;
    bool have_idx = rota_json_uint(rota_json_get(t, "index"), &idx);
    if (have_idx && idx >= ROTA_XL_BLOCKS)
        return rota_xl_fail(x, -EFBIG, "a tool call index above %d", ROTA_XL_BLOCKS - 1);
    const struct rota_json *fn = rota_json_get(t, "function");
    const struct rota_json *id = rota_json_get(t, "id"), *name = rota_json_get(fn, "name");
    const struct rota_json *args = rota_json_get(fn, "arguments");
    bool has_id = text_of(id), has_name = text_of(name);
    int ours = -1;
    if (have_idx && st->tool_of[idx])
        ours = st->tool_of[idx] - 1;
    else if (!have_idx && st->ntools)
        ours = (int)st->ntools - 1;
    uint32_t h = has_id ? hash(id) : 0;
    if ((has_id || has_name) && (ours < 0 || (has_id && st->tool_idh[ours] != h))) {
        if (st->ntools >= ROTA_XL_BLOCKS)
            return rota_xl_fail(x, -EFBIG, "more than %d tool calls", ROTA_XL_BLOCKS);
        ours = (int)st->ntools++;
        if (have_idx)
            st->tool_of[idx] = (uint16_t)(ours + 1);
        st->tool_idh[ours] = h;
        struct rota_xl_ev *ev = push(out, ROTA_XL_EV_TOOL);
        if (!ev)
            return full(x);
        ev->index = (uint32_t)ours;
        ev->id = has_id ? rota_xl_v(id) : (struct rota_xl_val){0};
        ev->name = has_name ? rota_xl_v(name) : (struct rota_xl_val){0};
    }
    bool piece = text_of(args) || (args && args->type == ROTA_JSON_OBJECT);
    if (!piece)
        return 0;
    if (ours < 0)
        return rota_xl_fail(x, -EINVAL, "tool call arguments before the call began");
    struct rota_xl_ev *ev = push(out, ROTA_XL_EV_ARGS);
    if (!ev)
        return full(x);
    ev->index = (uint32_t)ours;
    /* a string of JSON as given; an object (some local servers) as one */
    ev->text = args->type == ROTA_JSON_STRING ? rota_xl_v(args) : rota_xl_vstr(x, args->p, args->len);
    return ev->text.len ? 0 : rota_xl_fail(x, -ENOMEM, "out of memory");
}

static int choice_in(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *c,
                     struct rota_xl_evs *out)
{
    const struct rota_json *d = rota_json_get(c, "delta");
    struct rota_xl_ev *ev;
    if (d && d->type == ROTA_JSON_OBJECT) {
        int rc = reasoning_in(x, st, d, out);
        if (rc)
            return rc;
        const struct rota_json *t = rota_json_get(d, "content");
        if (!text_of(t))
            t = rota_json_get(d, "refusal");
        if (text_of(t)) {
            if (!(ev = push(out, ROTA_XL_EV_TEXT)))
                return full(x);
            ev->text = rota_xl_v(t);
        }
        const struct rota_json *tc = rota_json_get(d, "tool_calls");
        for (const struct rota_json *p = tc && tc->type == ROTA_JSON_ARRAY ? tc->kid : NULL; p;
             p = p->next)
            if ((rc = tool_in(x, st, p, out)))
                return rc;
    }
    enum rota_xl_finish f = rota_xl_openai_finish_in(rota_json_get(c, "finish_reason"));
    if (f != ROTA_XL_FINISH_NONE) {
        if (!(ev = push(out, ROTA_XL_EV_FINISH)))
            return full(x);
        ev->finish = f;
    }
    return 0;
}

int rota_xl_openai_ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *name,
                         size_t nlen, const char *data, size_t dlen, struct rota_xl_evs *out)
{
    if (st->ended || dlen == 0)
        return 0;
    struct rota_xl_ev *ev;
    if (dlen == 6 && memcmp(data, "[DONE]", 6) == 0) {
        if (!(ev = push(out, ROTA_XL_EV_END)))
            return full(x);
        st->ended = true;
        return 0;
    }
    struct rota_json_err e;
    struct rota_json *j = rota_json_parse(x->a, data, dlen, &e);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "a stream event is not JSON: %s at byte %zu", e.what, e.at);
    if (j->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "a stream event is not a JSON object");
    const struct rota_json *err = rota_json_get(j, "error");
    if ((err && err->type != ROTA_JSON_NULL) || (nlen == 5 && memcmp(name, "error", 5) == 0)) {
        if (!(ev = push(out, ROTA_XL_EV_ERROR)))
            return full(x);
        const struct rota_json *m = rota_json_get(err, "message");
        ev->text = m && m->type == ROTA_JSON_STRING ? rota_xl_v(m)
                   : err && err->type == ROTA_JSON_STRING ? rota_xl_v(err)
                   : rota_xl_vstr(x, err ? err->p : j->p, err ? err->len : j->len);
        return 0;
    }
    if (!st->started) {
        if (!(ev = push(out, ROTA_XL_EV_START)))
            return full(x);
        const struct rota_json *id = rota_json_get(j, "id"), *model = rota_json_get(j, "model");
        ev->id = text_of(id) ? rota_xl_v(id) : (struct rota_xl_val){0};
        ev->model = text_of(model) ? rota_xl_v(model) : (struct rota_xl_val){0};
        st->started = true;
    }
    const struct rota_json *choices = rota_json_get(j, "choices");
    for (const struct rota_json *c = choices && choices->type == ROTA_JSON_ARRAY ? choices->kid
                                                                                : NULL;
         c; c = c->next) {
        uint64_t i = 0;
        const struct rota_json *ci = rota_json_get(c, "index");
        if (c->type != ROTA_JSON_OBJECT || (ci && (!rota_json_uint(ci, &i) || i != 0)))
            continue; /* the one choice asked for is index 0 */
        int rc = choice_in(x, st, c, out);
        if (rc)
            return rc;
        break;
    }
    const struct rota_json *u = rota_json_get(j, "usage");
    if (u && u->type == ROTA_JSON_OBJECT) {
        struct rota_xl_usage now = {0};
        rota_xl_openai_usage_in(u, &now);
        st->usage = now;
        if (!(ev = push(out, ROTA_XL_EV_USAGE)))
            return full(x);
        ev->usage = now;
    }
    st->seq++;
    return 0;
}

/* ---- out ---- */

/* A plain-text copy of string value "v" into "dst" (cut to fit). */
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

/* The client's stream begins: its id, created and model kept written in held2, and the
 * first chunk, with the role. */
static void begin(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                  struct rota_jbuf *out)
{
    if (st->started)
        return;
    st->started = true;
    if (ev && ev->id.len) {
        plain(x, ev->id, st->id, sizeof(st->id));
    } else {
        struct rota_xl_val m = ev ? ev->model : (struct rota_xl_val){0};
        struct rota_xl_val id = rota_xl_tool_id(x, "chatcmpl-", m, m, (uint32_t)x->now_s,
                                                (struct rota_xl_val){0});
        plain(x, id, st->id, sizeof(st->id));
    }
    if (ev && ev->model.len)
        plain(x, ev->model, st->model, sizeof(st->model));
    else if (x->req && x->req->model.len)
        plain(x, x->req->model, st->model, sizeof(st->model));
    else
        plain(x, rota_xl_vstr(x, x->model ? x->model : "", x->model ? strlen(x->model) : 0),
              st->model, sizeof(st->model));
    st->created = x->now_s;
    struct rota_jbuf *h = &st->held2;
    rota_jbuf_reset(h);
    LIT(h, "{\"id\":\"");
    rota_jbuf_esc(h, st->id, strlen(st->id));
    LIT(h, "\",\"object\":\"chat.completion.chunk\",\"created\":");
    rota_jbuf_u64(h, st->created);
    LIT(h, ",\"model\":\"");
    rota_jbuf_esc(h, st->model, strlen(st->model));
    LIT(h, "\"");
    LIT(out, "data: ");
    rota_jbuf_raw(out, h->p, h->len);
    LIT(out, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
             "\"finish_reason\":null}]}\n\n");
}

/* A chunk's start, up to its delta's value. */
static void chunk(struct rota_xl_sout *st, struct rota_jbuf *out)
{
    LIT(out, "data: ");
    rota_jbuf_raw(out, st->held2.p, st->held2.len);
    LIT(out, ",\"choices\":[{\"index\":0,\"delta\":");
}

static void chunk_end(struct rota_jbuf *out)
{
    LIT(out, ",\"finish_reason\":null}]}\n\n");
}

/* A delta of one member "key": "v". */
static void delta(struct rota_xl_sout *st, const char *key, struct rota_xl_val v,
                  struct rota_jbuf *out)
{
    chunk(st, out);
    rota_jbuf_obj(out);
    rota_jbuf_key(out, key);
    rota_jbuf_json(out, v.p, v.len);
    rota_jbuf_end(out);
    chunk_end(out);
}

/* A signature: the reasoning held and it, as one reasoning_details entry. */
static void signature(struct rota_xl_sout *st, struct rota_xl_val sig, struct rota_jbuf *out)
{
    chunk(st, out);
    LIT(out, "{\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"");
    if (!st->held.err)
        rota_jbuf_raw(out, st->held.p, st->held.len);
    LIT(out, "\",\"signature\":");
    rota_jbuf_raw(out, sig.p, sig.len);
    LIT(out, ",\"index\":");
    rota_jbuf_u64(out, st->blocks++);
    LIT(out, "}]}");
    chunk_end(out);
    rota_jbuf_reset(&st->held);
}

static int tool_start(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                      struct rota_jbuf *out)
{
    if (ev->index < st->tools)
        return 0; /* begun already: one start per call */
    struct rota_xl_val id = ev->id;
    if (!id.len)
        id = rota_xl_tool_id(x, "call_", ev->name, ev->args, ev->index, ev->sig);
    if (!id.len)
        return rota_xl_fail(x, -ENOMEM, "out of memory");
    st->tools = ev->index + 1;
    chunk(st, out);
    LIT(out, "{\"tool_calls\":[{\"index\":");
    rota_jbuf_u64(out, ev->index);
    LIT(out, ",\"id\":");
    rota_jbuf_raw(out, id.p, id.len);
    LIT(out, ",\"type\":\"function\",\"function\":{\"name\":");
    if (ev->name.len)
        rota_jbuf_raw(out, ev->name.p, ev->name.len);
    else
        LIT(out, "\"\"");
    LIT(out, ",\"arguments\":"); /* (the writer puts no comma at depth 0) */
    if (ev->args.len)
        rota_jbuf_quote(out, ev->args.p, ev->args.len);
    else
        LIT(out, "\"\"");
    LIT(out, "}}]}");
    chunk_end(out);
    return 0;
}

static int tool_args(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                     struct rota_jbuf *out)
{
    if (ev->index >= st->tools)
        return rota_xl_fail(x, -EINVAL, "arguments of tool call %u, which never began",
                            ev->index);
    chunk(st, out);
    LIT(out, "{\"tool_calls\":[{\"index\":");
    rota_jbuf_u64(out, ev->index);
    LIT(out, ",\"function\":{\"arguments\":");
    rota_jbuf_raw(out, ev->text.p, ev->text.len);
    LIT(out, "}}]}");
    chunk_end(out);
    return 0;
}

/* The end: the finish chunk, the usage chunk when asked for, [DONE]. */
static void end(struct rota_xl *x, struct rota_xl_sout *st, struct rota_jbuf *out)
{
    chunk(st, out);
    LIT(out, "{},\"finish_reason\":");
    rota_jbuf_strz(out, rota_xl_openai_finish_name(st->finish, st->tools > 0));
    LIT(out, "}]}\n\n");
    if (x->req && x->req->include_usage) {
        LIT(out, "data: ");
        rota_jbuf_raw(out, st->held2.p, st->held2.len);
        LIT(out, ",\"choices\":[],\"usage\":");
        rota_xl_openai_usage_out(out, &st->usage);
        LIT(out, "}\n\n");
    }
    LIT(out, "data: [DONE]\n\n");
    st->ended = true;
}

int rota_xl_openai_ev_out(struct rota_xl *x, struct rota_xl_sout *st,
                          const struct rota_xl_ev *ev, struct rota_jbuf *out)
{
    if (st->ended)
        return 0;
    if (ev->type == ROTA_XL_EV_ERROR) {
        size_t n = 0;
        const char *t = ev->text.len ? rota_xl_text(x, ev->text, &n) : NULL;
        char msg[512];
        snprintf(msg, sizeof(msg), "%.*s", (int)n, t ? t : "the upstream stream failed");
        rota_xl_openai_ev_fail(x, st, msg, out);
        return 0;
    }
    begin(x, st, ev->type == ROTA_XL_EV_START ? ev : NULL, out);
    switch (ev->type) {
    case ROTA_XL_EV_START:
        if (ev->usage.seen)
            rota_xl_openai_usage_add(&st->usage, &ev->usage);
        break;
    case ROTA_XL_EV_TEXT:
        rota_jbuf_reset(&st->held); /* reasoning that came unsigned */
        if (ev->text.len > 2)
            delta(st, "content", ev->text, out);
        break;
    case ROTA_XL_EV_THINKING:
        if (ev->text.len > 2) {
            delta(st, "reasoning_content", ev->text, out);
            rota_xl_openai_inner(&st->held, ev->text);
        }
        break;
    case ROTA_XL_EV_SIGNATURE:
        if (ev->sig.len > 2)
            signature(st, ev->sig, out);
        break;
    case ROTA_XL_EV_TOOL:
        rota_jbuf_reset(&st->held);
        return tool_start(x, st, ev, out);
    case ROTA_XL_EV_ARGS:
        return ev->text.len > 2 ? tool_args(x, st, ev, out) : 0;
    case ROTA_XL_EV_FINISH:
        st->finish = ev->finish;
        st->stop_seq = rota_xl_kept(x, ev->stop_seq);
        st->finished = true;
        break;
    case ROTA_XL_EV_USAGE:
        rota_xl_openai_usage_add(&st->usage, &ev->usage);
        break;
    case ROTA_XL_EV_END:
        end(x, st, out);
        break;
    default:
        break;
    }
    return out->err;
}

void rota_xl_openai_ev_fail(struct rota_xl *x, struct rota_xl_sout *st, const char *message,
                            struct rota_jbuf *out)
{
    (void)x;
    if (st->ended)
        return;
    LIT(out, "data: {\"error\":{\"message\":");
    rota_jbuf_strz(out, message);
    LIT(out, ",\"type\":\"server_error\"}}\n\n");
    st->ended = true;
}
