/*
 * xl_gemini_stream.c - Gemini's SSE stream (streamGenerateContent?alt=sse) read into
 * the representation's events and written from them (xlate.h).
 *
 * DESIGN
 * Gemini's stream is a run of `data: {GenerateContentResponse}` events, each with the
 * next parts of the answer; the one carrying finishReason (and the full usageMetadata)
 * is the last, and it is the stream's end: there is no closing event. A failure is an
 * element {"error": {...}}.
 *
 * Reading: the first event begins the answer (START: modelVersion, responseId), each
 * text part is a TEXT or THINKING piece (a thoughtSignature on it follows as SIGNATURE),
 * each functionCall comes whole (TOOL with its arguments, its signature and the id
 * xl_gemini.c makes for it, numbered in the answer), usage is passed on when it
 * changed, finishReason gives FINISH then END.
 *
 * Writing: one event per piece of content, as Gemini sends them, framed as Google frames
 * them ("\r\n\r\n"). A function call goes whole, so a call that arrives as pieces of
 * arguments (OpenAI's, Anthropic's) is held: its name, id and signature in the arena,
 * its arguments' text in st->held (bounded by its max), and it is written when the call
 * ends (the next content, FINISH or END). Usage and the finish are held for the last
 * event, written at END. Nothing is written after END. Code Assist's events are the
 * same inside {"response": ...} ("ca").
 *
 * The stream's memory: what ev_in parses lives in x->a, the event's own (emptied after
 * it); what waits for a later event (the open call's name, id, signature) is copied
 * into rota_xl_keep(x).
 */
#include <errno.h>
#include <string.h>

#include "xl_gemini_int.h"

/* ---- reading ---- */

static struct rota_xl_ev *push(struct rota_xl_evs *out, enum rota_xl_ev_type t)
{
    if (out->n >= ROTA_XL_EVS_MAX)
        return NULL;
    struct rota_xl_ev *e = &out->ev[out->n++];
    memset(e, 0, sizeof(*e));
    e->type = t;
    return e;
}

static int too_many(struct rota_xl *x)
{
    return rota_xl_fail(x, -EFBIG, "a stream event holds more than %d parts",
                        ROTA_XL_EVS_MAX / 2 - 4);
}

static int error_in(struct rota_xl *x, const struct rota_json *err, struct rota_xl_evs *out)
{
    struct rota_xl_ev *e = push(out, ROTA_XL_EV_ERROR);
    if (!e)
        return too_many(x);
    const struct rota_json *msg = rota_json_get(err, "message");
    if (msg && msg->type == ROTA_JSON_STRING)
        e->text = rota_xl_v(msg);
    else
        e->text = rota_xl_vstr(x, err->p, err->len > 300 ? 300 : err->len);
    return 0;
}

static int parts_in(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *parts,
                    struct rota_xl_evs *out)
{
    unsigned pi = 0;
    for (const struct rota_json *p = parts->kid; p; p = p->next, pi++) {
        if (p->type != ROTA_JSON_OBJECT)
            return rota_xl_fail(x, -EINVAL, "a stream event's parts[%u] is not an object", pi);
        const struct rota_json *text = NULL, *call = NULL, *sig = NULL, *thought = NULL;
        for (const struct rota_json *m = p->kid; m; m = m->next) {
            if (rota_xlg_key(x, m, "text"))
                text = m;
            else if (rota_xlg_key(x, m, "functionCall"))
                call = m;
            else if (rota_xlg_key(x, m, "thoughtSignature"))
                sig = m;
            else if (rota_xlg_key(x, m, "thought"))
                thought = m;
            else
                return rota_xl_fail(x, -ENOTSUP,
                                    "a stream event's parts[%u].%.*s cannot be translated", pi,
                                    (int)m->klen - 2, m->key + 1);
        }
        if ((text && text->type != ROTA_JSON_STRING) || (sig && sig->type != ROTA_JSON_STRING))
            return rota_xl_fail(x, -EINVAL, "a stream event's parts[%u] is malformed", pi);
        struct rota_xl_ev *e;
        if (call) {
            const struct rota_json *name = rota_json_get(call, "name"),
                                   *args = rota_json_get(call, "args");
            if (!name || name->type != ROTA_JSON_STRING ||
                (args && args->type != ROTA_JSON_OBJECT && args->type != ROTA_JSON_NULL))
                return rota_xl_fail(x, -EINVAL,
                                    "a stream event's parts[%u].functionCall is malformed", pi);
            if (!(e = push(out, ROTA_XL_EV_TOOL)))
                return too_many(x);
            e->index = st->ntools++;
            e->name = rota_xl_v(name);
            e->args = args && args->type == ROTA_JSON_OBJECT ? rota_xl_v(args)
                                                              : (struct rota_xl_val){"{}", 2};
            e->sig = rota_xl_v(sig);
            e->id = rota_xl_tool_id(x, "call_", e->name, e->args, e->index, e->sig);
            if (!e->id.len)
                return rota_xl_fail(x, -ENOMEM, "out of memory");
            continue;
        }
        if (text && text->len > 2) {
            if (!(e = push(out, rota_json_true(thought) ? ROTA_XL_EV_THINKING
                                                        : ROTA_XL_EV_TEXT)))
                return too_many(x);
            e->text = rota_xl_v(text);
        }
        if (sig) {
            if (!(e = push(out, ROTA_XL_EV_SIGNATURE)))
                return too_many(x);
            e->sig = rota_xl_v(sig);
        }
    }
    return 0;
}

static bool usage_differs(const struct rota_xl_usage *a, const struct rota_xl_usage *b)
{
    return a->in != b->in || a->out != b->out || a->cached != b->cached ||
           a->reasoning != b->reasoning || a->seen != b->seen;
}

static int answer_in(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *o,
                     struct rota_xl_evs *out)
{
    const struct rota_json *cands = rota_json_get(o, "candidates");
    const struct rota_json *c = cands && cands->type == ROTA_JSON_ARRAY ? cands->kid : NULL;
    struct rota_xl_usage u = {0};
    bool has_usage = rota_xlg_usage_in(rota_json_get(o, "usageMetadata"), &u);
    struct rota_xl_ev *e;
    if (!st->started) {
        st->started = true;
        if (!(e = push(out, ROTA_XL_EV_START)))
            return too_many(x);
        const struct rota_json *model = rota_json_get(o, "modelVersion"),
                               *id = rota_json_get(o, "responseId");
        if (model && model->type == ROTA_JSON_STRING)
            e->model = rota_xl_v(model);
        if (id && id->type == ROTA_JSON_STRING)
            e->id = rota_xl_v(id);
        if (has_usage) {
            e->usage = u;
            st->usage = u;
        }
    }
    if (c && c->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "a stream event's candidates[0] is not an object");
    const struct rota_json *parts = rota_json_path(c, "content.parts");
    if (parts && parts->type != ROTA_JSON_ARRAY)
        return rota_xl_fail(x, -EINVAL, "a stream event's parts is not an array");
    int rc = parts ? parts_in(x, st, parts, out) : 0;
    if (rc)
        return rc;
    if (has_usage && usage_differs(&u, &st->usage)) {
        if (!(e = push(out, ROTA_XL_EV_USAGE)))
            return too_many(x);
        e->usage = st->usage = u;
    }
    const struct rota_json *fr = rota_json_get(c, "finishReason");
    bool blocked = !c && rota_json_path(o, "promptFeedback.blockReason");
    if ((!fr || fr->type == ROTA_JSON_NULL) && !blocked)
        return 0;
    if (!(e = push(out, ROTA_XL_EV_FINISH)))
        return too_many(x);
    e->finish = blocked ? ROTA_XL_FINISH_FILTER : rota_xlg_finish_in(fr);
    if (st->ntools && e->finish == ROTA_XL_FINISH_STOP)
        e->finish = ROTA_XL_FINISH_TOOLS;
    if (!push(out, ROTA_XL_EV_END))
        return too_many(x);
    st->ended = true;
    return 0;
}

int rota_xlg_ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *data, size_t dlen,
                   struct rota_xl_evs *out, bool ca)
{
    if (st->ended)
        return 0;
    struct rota_json *o = rota_xlg_parse(x, data, dlen, "a stream event");
    if (!o)
        return -EINVAL;
    const struct rota_json *err = rota_json_get(o, "error");
    if (err)
        return error_in(x, err, out);
    if (ca) {
        o = (struct rota_json *)rota_json_get(o, "response");
        if (!o)
            return 0; /* Code Assist's events without an answer (its trace, metadata) */
        if (o->type != ROTA_JSON_OBJECT)
            return rota_xl_fail(x, -EINVAL, "a stream event's response is not an object");
    }
    return answer_in(x, st, o, out);
}

/* ---- writing ---- */

static void meta(struct rota_xl *x, const struct rota_xl_sout *st, struct rota_jbuf *out)
{
    const char *model = st->model[0] ? st->model : x->model;
    if (model && *model)
        rota_jbuf_kstr(out, "modelVersion", model);
    if (st->id[0])
        rota_jbuf_kstr(out, "responseId", st->id);
}

/* An event with one part: opened here up to the part's object, closed by part_end. */
static void part_begin(struct rota_jbuf *out, bool ca)
{
    rota_jbuf_raw(out, "data: ", 6);
    if (ca) {
        rota_jbuf_obj(out);
        XK(out, "response");
    }
    rota_jbuf_obj(out);
    XK(out, "candidates");
    rota_jbuf_arr(out);
    rota_jbuf_obj(out);
    XK(out, "content");
    rota_jbuf_obj(out);
    XK(out, "role"), XS(out, "model");
    XK(out, "parts");
    rota_jbuf_arr(out);
    rota_jbuf_obj(out);
}

static void part_end(struct rota_xl *x, const struct rota_xl_sout *st, struct rota_jbuf *out,
                     bool ca)
{
    rota_jbuf_end(out); /* the part */
    rota_jbuf_end(out); /* parts */
    rota_jbuf_end(out); /* content */
    rota_jbuf_end(out); /* the candidate */
    rota_jbuf_end(out); /* candidates */
    meta(x, st, out);
    rota_jbuf_end(out);
    if (ca)
        rota_jbuf_end(out);
    rota_jbuf_raw(out, "\r\n\r\n", 4);
}

static void call_out(struct rota_xl *x, struct rota_xl_sout *st, struct rota_xl_val name,
                     const char *args, size_t alen, struct rota_xl_val sig,
                     struct rota_jbuf *out, bool ca)
{
    part_begin(out, ca);
    XK(out, "functionCall");
    rota_jbuf_obj(out);
    XK(out, "name");
    rota_jbuf_json(out, name.p, name.len);
    XK(out, "args");
    rota_jbuf_json(out, args, alen);
    rota_jbuf_end(out);
    if (sig.len) {
        XK(out, "thoughtSignature");
        rota_jbuf_json(out, sig.p, sig.len);
    }
    part_end(x, st, out, ca);
}

static struct rota_xl_val keep_val(struct rota_xl *x, struct rota_xl_val v)
{
    char *p = v.len ? rota_arena_dup(rota_xl_keep(x), v.p, v.len) : NULL;
    return p ? (struct rota_xl_val){p, v.len} : (struct rota_xl_val){0};
}

/* The call held, written whole. */
static int flush_call(struct rota_xl *x, struct rota_xl_sout *st, struct rota_jbuf *out,
                      bool ca)
{
    if (!st->tool_name.len)
        return 0;
    struct rota_jbuf *h = &st->held;
    if (h->err)
        return rota_xl_fail(x, -EFBIG, "tool call %u's arguments are larger than %zu bytes",
                            st->open_tool, h->max);
    size_t i = 0;
    while (i < h->len && (h->p[i] == ' ' || h->p[i] == '\n' || h->p[i] == '\r' ||
                          h->p[i] == '\t'))
        i++;
    const char *args = "{}";
    size_t alen = 2;
    if (i < h->len) {
        struct rota_json_err e;
        struct rota_json *j = rota_json_parse(x->a, h->p, h->len, &e);
        if (!j || j->type != ROTA_JSON_OBJECT)
            return rota_xl_fail(x, -EINVAL, "tool call %u's arguments are not a JSON object",
                                st->open_tool);
        args = j->p, alen = j->len;
    }
    struct rota_xl_val sig = st->tool_sig.len ? st->tool_sig : rota_xl_id_sig(x, st->tool_id);
    call_out(x, st, st->tool_name, args, alen, sig, out, ca);
    st->tool_name = st->tool_id = st->tool_sig = (struct rota_xl_val){0};
    rota_jbuf_reset(h);
    return 0;
}

static int hex4(const char *p, const char *e, uint32_t *v)
{
    if (e - p < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

/* The text of JSON string "v" (quotes and escapes) appended to "b": a piece of partial
 * arguments, decoded without the arena. */
static int unescape_into(struct rota_jbuf *b, struct rota_xl_val v)
{
    if (v.len < 2 || v.p[0] != '"')
        return -EINVAL;
    const char *p = v.p + 1, *e = v.p + v.len - 1;
    while (p < e) {
        const char *bs = memchr(p, '\\', (size_t)(e - p));
        rota_jbuf_raw(b, p, (size_t)((bs ? bs : e) - p));
        if (!bs)
            break;
        p = bs + 1;
        if (p >= e)
            return -EINVAL;
        char c = *p++, ch[4];
        uint32_t cp, lo;
        switch (c) {
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u':
            if (hex4(p, e, &cp))
                return -EINVAL;
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                !hex4(p + 2, e, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            if (cp < 0x80) {
                ch[0] = (char)cp;
                rota_jbuf_raw(b, ch, 1);
            } else if (cp < 0x800) {
                ch[0] = (char)(0xc0 | cp >> 6), ch[1] = (char)(0x80 | (cp & 63));
                rota_jbuf_raw(b, ch, 2);
            } else if (cp < 0x10000) {
                ch[0] = (char)(0xe0 | cp >> 12), ch[1] = (char)(0x80 | (cp >> 6 & 63));
                ch[2] = (char)(0x80 | (cp & 63));
                rota_jbuf_raw(b, ch, 3);
            } else {
                ch[0] = (char)(0xf0 | cp >> 18), ch[1] = (char)(0x80 | (cp >> 12 & 63));
                ch[2] = (char)(0x80 | (cp >> 6 & 63)), ch[3] = (char)(0x80 | (cp & 63));
                rota_jbuf_raw(b, ch, 4);
            }
            continue;
        default: break; /* \" \\ \/ */
        }
        rota_jbuf_raw(b, &c, 1);
    }
    return 0;
}

static void copy_text(struct rota_xl *x, struct rota_xl_val v, char *dst, size_t cap)
{
    size_t n;
    const char *t = v.len ? rota_xl_text(x, v, &n) : NULL;
    if (!t)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, t, n);
    dst[n] = 0;
}

static void text_out(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                     struct rota_jbuf *out, bool ca)
{
    bool thought = ev->type == ROTA_XL_EV_THINKING ||
                   (ev->type == ROTA_XL_EV_SIGNATURE && st->open_kind == ROTA_XL_EV_THINKING);
    part_begin(out, ca);
    XK(out, "text");
    if (ev->type == ROTA_XL_EV_SIGNATURE)
        rota_jbuf_json(out, "\"\"", 2);
    else
        rota_jbuf_json(out, ev->text.p, ev->text.len);
    if (thought) {
        XK(out, "thought");
        rota_jbuf_bool(out, true);
    }
    if (ev->type == ROTA_XL_EV_SIGNATURE) {
        XK(out, "thoughtSignature");
        rota_jbuf_json(out, ev->sig.p, ev->sig.len);
    }
    part_end(x, st, out, ca);
}

/* The last event: the finish and the usage held. */
static void end_out(struct rota_xl *x, struct rota_xl_sout *st, struct rota_jbuf *out, bool ca)
{
    rota_jbuf_raw(out, "data: ", 6);
    if (ca) {
        rota_jbuf_obj(out);
        XK(out, "response");
    }
    rota_jbuf_obj(out);
    XK(out, "candidates");
    rota_jbuf_arr(out);
    rota_jbuf_obj(out);
    rota_jbuf_kstr(out, "finishReason", rota_xlg_finish_out(st->finish));
    XK(out, "index"), rota_jbuf_u64(out, 0);
    rota_jbuf_end(out);
    rota_jbuf_end(out);
    if (st->usage.seen)
        rota_xlg_usage_out(&st->usage, out);
    meta(x, st, out);
    rota_jbuf_end(out);
    if (ca)
        rota_jbuf_end(out);
    rota_jbuf_raw(out, "\r\n\r\n", 4);
}

int rota_xlg_ev_out(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                    struct rota_jbuf *out, bool ca)
{
    if (st->ended)
        return 0;
    int rc = 0;
    switch (ev->type) {
    case ROTA_XL_EV_START:
        copy_text(x, ev->id, st->id, sizeof(st->id));
        copy_text(x, ev->model, st->model, sizeof(st->model));
        if (ev->usage.seen)
            st->usage = ev->usage;
        break;
    case ROTA_XL_EV_TEXT:
    case ROTA_XL_EV_THINKING:
    case ROTA_XL_EV_SIGNATURE:
        if ((rc = flush_call(x, st, out, ca)))
            break;
        if (ev->type == ROTA_XL_EV_SIGNATURE ? ev->sig.len > 0 : ev->text.len > 2)
            text_out(x, st, ev, out, ca);
        if (ev->type != ROTA_XL_EV_SIGNATURE)
            st->open_kind = (uint8_t)ev->type;
        break;
    case ROTA_XL_EV_TOOL:
        if ((rc = flush_call(x, st, out, ca)))
            break;
        st->open_kind = ROTA_XL_EV_TOOL;
        st->tools++;
        if (ev->args.len) {
            struct rota_xl_val sig = ev->sig.len ? ev->sig : rota_xl_id_sig(x, ev->id);
            call_out(x, st, ev->name, ev->args.p, ev->args.len, sig, out, ca);
            break;
        }
        st->open_tool = ev->index;
        st->tool_name = keep_val(x, ev->name);
        st->tool_id = keep_val(x, ev->id);
        st->tool_sig = keep_val(x, ev->sig);
        rota_jbuf_reset(&st->held);
        if (!st->tool_name.len)
            rc = rota_xl_fail(x, ev->name.len ? -ENOMEM : -EINVAL, "tool call %u has no name",
                              ev->index);
        break;
    case ROTA_XL_EV_ARGS:
        if (!st->tool_name.len || ev->index != st->open_tool)
            rc = rota_xl_fail(x, -EINVAL, "arguments for tool call %u, which is not open",
                              ev->index);
        else if (unescape_into(&st->held, ev->text))
            rc = rota_xl_fail(x, -EINVAL, "tool call %u's arguments are not a string",
                              ev->index);
        else if (st->held.err)
            rc = rota_xl_fail(x, -EFBIG, "tool call %u's arguments are larger than %zu bytes",
                              ev->index, st->held.max);
        break;
    case ROTA_XL_EV_FINISH:
        rc = flush_call(x, st, out, ca);
        st->finished = true;
        st->finish = ev->finish;
        st->stop_seq = rota_xl_kept(x, ev->stop_seq);
        break;
    case ROTA_XL_EV_USAGE:
        st->usage = ev->usage;
        break;
    case ROTA_XL_EV_END:
        if ((rc = flush_call(x, st, out, ca)))
            break;
        end_out(x, st, out, ca);
        st->ended = true;
        break;
    case ROTA_XL_EV_ERROR: /* the driver ends the stream with ev_fail */
        break;
    }
    st->started = true;
    return rc ? rc : out->err;
}

void rota_xlg_ev_fail(struct rota_xl *x, struct rota_xl_sout *st, const char *message,
                      struct rota_jbuf *out)
{
    (void)x;
    if (st->ended)
        return;
    /* a call still held has arguments cut short: it is not written */
    rota_jbuf_raw(out, "data: ", 6);
    rota_jbuf_obj(out);
    XK(out, "error");
    rota_jbuf_obj(out);
    XK(out, "code"), rota_jbuf_u64(out, 500);
    rota_jbuf_kstr(out, "message", message);
    XK(out, "status"), XS(out, "INTERNAL");
    rota_jbuf_end(out);
    rota_jbuf_end(out);
    rota_jbuf_raw(out, "\r\n\r\n", 4);
    st->ended = true;
    st->tool_name = (struct rota_xl_val){0};
}
