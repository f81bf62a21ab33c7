/*
 * xl_anthropic_stream.c - Anthropic's messages SSE stream read into the representation's
 * events and written from them (xlate.h).
 *
 * DESIGN
 * Anthropic's stream: message_start (id, model, the input's usage), then for each
 * content block content_block_start (its index and type), its deltas (text_delta,
 * thinking_delta, signature_delta, input_json_delta), content_block_stop; message_delta
 * (stop_reason, stop_sequence, output_tokens so far), message_stop. ping events keep the
 * connection alive; "error" ends a failed stream.
 *
 * Reading: each block's type is kept by its index (st->kind) and a tool_use block's
 * tool number (st->tool_of), so an input_json_delta becomes ARGS of the right call, its
 * partial_json passed as written (a string whose text is a piece of JSON). A
 * redacted_thinking block has no event in the representation: it is read and left out
 * (its data is opaque; a client replays the turn without it, which Anthropic takes).
 * Event types this module does not know are skipped, as Anthropic's documentation asks
 * of its clients.
 *
 * Writing: message_start always first (made when the upstream gave no START); each
 * piece of content goes into the open block when of its kind, else the open block is
 * stopped and a new one started at the next index, so every block has one start and one
 * stop. Each tool call is its own block; a call that comes whole (Gemini) is started
 * with input {}, given its arguments as one input_json_delta and stopped. A signature
 * goes into the open thinking block (a thinking block with empty thinking is opened when
 * none is). The finish and usage are held and written at END as message_delta, then
 * message_stop; input_tokens go there too only when message_start could not say them
 * (clients add message_delta's usage to message_start's). Nothing is written after END.
 * What outlives an event (the stop sequence) is copied into rota_xl_keep(x).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xl_anthropic_int.h"

enum { K_NONE, K_TEXT, K_THINKING, K_TOOL, K_REDACTED };

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

static int index_of(struct rota_xl *x, const struct rota_json *o, const char *what,
                    uint32_t *i)
{
    uint64_t v;
    if (!rota_json_uint(rota_json_get(o, "index"), &v))
        return rota_xl_fail(x, -EINVAL, "a %s event has no index", what);
    if (v >= ROTA_XL_BLOCKS)
        return rota_xl_fail(x, -EFBIG, "a stream holds more than %d content blocks",
                            ROTA_XL_BLOCKS);
    *i = (uint32_t)v;
    return 0;
}

static int str_of(struct rota_xl *x, const struct rota_json *o, const char *k,
                  const char *what, struct rota_xl_val *v)
{
    const struct rota_json *s = rota_json_get(o, k);
    if (!s || s->type != ROTA_JSON_STRING)
        return rota_xl_fail(x, -EINVAL, "a %s event's %s is not a string", what, k);
    *v = rota_xl_v(s);
    return 0;
}

static int block_start_in(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *o,
                          struct rota_xl_evs *out)
{
    uint32_t i = 0;
    int rc = index_of(x, o, "content_block_start", &i);
    if (rc)
        return rc;
    const struct rota_json *b = rota_json_get(o, "content_block"),
                           *type = rota_json_get(b, "type");
    struct rota_xl_ev *e;
    struct rota_xl_val v = {0};
    if (XA_IS(type, "text") || XA_IS(type, "thinking")) {
        bool text = XA_IS(type, "text");
        st->kind[i] = text ? K_TEXT : K_THINKING;
        if ((rc = str_of(x, b, text ? "text" : "thinking", "content_block_start", &v)))
            return rc;
        if (v.len > 2) {
            if (!(e = push(out, text ? ROTA_XL_EV_TEXT : ROTA_XL_EV_THINKING)))
                return -EFBIG;
            e->text = v;
        }
        const struct rota_json *sig = text ? NULL : rota_json_get(b, "signature");
        if (sig && sig->type == ROTA_JSON_STRING && sig->len > 2) {
            if (!(e = push(out, ROTA_XL_EV_SIGNATURE)))
                return -EFBIG;
            e->sig = rota_xl_v(sig);
        }
        return 0;
    }
    if (XA_IS(type, "tool_use")) {
        st->kind[i] = K_TOOL;
        st->tool_of[i] = (uint16_t)st->ntools;
        if (!(e = push(out, ROTA_XL_EV_TOOL)))
            return -EFBIG;
        e->index = st->ntools++;
        if ((rc = str_of(x, b, "id", "content_block_start", &e->id)) ||
            (rc = str_of(x, b, "name", "content_block_start", &e->name)))
            return rc;
        if (e->name.len <= 2)
            return rota_xl_fail(x, -EINVAL, "a tool_use block without a name");
        return 0;
    }
    if (XA_IS(type, "redacted_thinking")) { /* no event carries it (DESIGN) */
        st->kind[i] = K_REDACTED;
        return 0;
    }
    if (type && type->type == ROTA_JSON_STRING)
        return rota_xl_fail(x, -ENOTSUP, "a content block of type %.*s cannot be translated",
                            (int)(type->len > 42 ? 40 : type->len - 2), type->p + 1);
    return rota_xl_fail(x, -EINVAL, "a content_block_start event has no content_block type");
}

static int delta_in(struct rota_xl *x, struct rota_xl_sin *st, const struct rota_json *o,
                    struct rota_xl_evs *out)
{
    uint32_t i = 0;
    int rc = index_of(x, o, "content_block_delta", &i);
    if (rc)
        return rc;
    const struct rota_json *d = rota_json_get(o, "delta"), *type = rota_json_get(d, "type");
    struct rota_xl_ev *e;
    const char *what = "content_block_delta";
    if (XA_IS(type, "text_delta")) {
        if (!(e = push(out, ROTA_XL_EV_TEXT)))
            return -EFBIG;
        return str_of(x, d, "text", what, &e->text);
    }
    if (XA_IS(type, "thinking_delta")) {
        if (!(e = push(out, ROTA_XL_EV_THINKING)))
            return -EFBIG;
        return str_of(x, d, "thinking", what, &e->text);
    }
    if (XA_IS(type, "signature_delta")) {
        if (!(e = push(out, ROTA_XL_EV_SIGNATURE)))
            return -EFBIG;
        return str_of(x, d, "signature", what, &e->sig);
    }
    if (XA_IS(type, "input_json_delta")) {
        if (st->kind[i] != K_TOOL)
            return rota_xl_fail(x, -EINVAL, "an input_json_delta for block %u, not a tool_use",
                                i);
        struct rota_xl_val v;
        if ((rc = str_of(x, d, "partial_json", what, &v)) || v.len <= 2)
            return rc; /* the first piece is "": nothing to pass on */
        if (!(e = push(out, ROTA_XL_EV_ARGS)))
            return -EFBIG;
        e->index = st->tool_of[i];
        e->text = v;
        return 0;
    }
    if (!type || type->type != ROTA_JSON_STRING)
        return rota_xl_fail(x, -EINVAL, "a content_block_delta event has no delta type");
    return 0; /* citations_delta, and what comes later: nothing to carry */
}

static int message_delta_in(struct rota_xl *x, struct rota_xl_sin *st,
                            const struct rota_json *o, struct rota_xl_evs *out)
{
    const struct rota_json *d = rota_json_get(o, "delta"),
                           *reason = rota_json_get(d, "stop_reason"),
                           *seq = rota_json_get(d, "stop_sequence");
    struct rota_xl_ev *e;
    if (reason && reason->type == ROTA_JSON_STRING) {
        if (!(e = push(out, ROTA_XL_EV_FINISH)))
            return -EFBIG;
        e->finish = rota_xla_finish_in(reason);
        if (seq && seq->type == ROTA_JSON_STRING)
            e->stop_seq = rota_xl_v(seq);
    }
    const struct rota_json *u = rota_json_get(o, "usage");
    if (u) {
        rota_xla_usage_in(u, &st->usage);
        if (!(e = push(out, ROTA_XL_EV_USAGE)))
            return -EFBIG;
        e->usage = st->usage;
    }
    (void)x;
    return 0;
}

int rota_xla_ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *name, size_t nlen,
                   const char *data, size_t dlen, struct rota_xl_evs *out)
{
    (void)name, (void)nlen; /* the data's "type" says the same */
    const struct rota_json *o = rota_xla_parse(x, data, dlen, "a stream event");
    if (!o)
        return -EINVAL;
    const struct rota_json *type = rota_json_get(o, "type");
    struct rota_xl_ev *e;
    int rc = 0;
    if (XA_IS(type, "content_block_delta"))
        rc = delta_in(x, st, o, out);
    else if (XA_IS(type, "content_block_start"))
        rc = block_start_in(x, st, o, out);
    else if (XA_IS(type, "content_block_stop") || XA_IS(type, "ping"))
        rc = 0;
    else if (XA_IS(type, "message_start")) {
        const struct rota_json *m = rota_json_get(o, "message");
        if (!m || m->type != ROTA_JSON_OBJECT)
            return rota_xl_fail(x, -EINVAL, "a message_start event has no message");
        if (!(e = push(out, ROTA_XL_EV_START)))
            return -EFBIG;
        const struct rota_json *id = rota_json_get(m, "id"), *model = rota_json_get(m, "model");
        if (id && id->type == ROTA_JSON_STRING)
            e->id = rota_xl_v(id);
        if (model && model->type == ROTA_JSON_STRING)
            e->model = rota_xl_v(model);
        rota_xla_usage_in(rota_json_get(m, "usage"), &st->usage);
        e->usage = st->usage;
        st->started = true;
    } else if (XA_IS(type, "message_delta"))
        rc = message_delta_in(x, st, o, out);
    else if (XA_IS(type, "message_stop")) {
        if (!(e = push(out, ROTA_XL_EV_END)))
            return -EFBIG;
        st->ended = true;
    } else if (XA_IS(type, "error")) {
        if (!(e = push(out, ROTA_XL_EV_ERROR)))
            return -EFBIG;
        const struct rota_json *msg = rota_json_path(o, "error.message");
        e->text = msg && msg->type == ROTA_JSON_STRING
                      ? rota_xl_v(msg)
                      : rota_xl_vstr(x, o->p, o->len > 300 ? 300 : o->len);
    } else if (!type || type->type != ROTA_JSON_STRING)
        rc = rota_xl_fail(x, -EINVAL, "a stream event has no type");
    if (rc == -EFBIG && !x->err[0])
        rc = rota_xl_fail(x, rc, "a stream event gives too many events");
    return rc;
}

/* ---- writing ---- */

/* "event: NAME\ndata: {"type":"NAME"", the object left open for its members. */
#define EV_BEGIN(out, s)                                                                   \
    do {                                                                                   \
        rota_jbuf_raw((out), "event: " s "\ndata: ", sizeof("event: " s "\ndata: ") - 1);  \
        rota_jbuf_obj(out);                                                                \
        XAK((out), "type"), XAS((out), s);                                                 \
    } while (0)

static void ev_end(struct rota_jbuf *out)
{
    rota_jbuf_end(out);
    rota_jbuf_raw(out, "\n\n", 2);
}

static void start(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                  struct rota_jbuf *out)
{
    st->started = true;
    if (ev && ev->usage.seen)
        st->usage = ev->usage;
    struct rota_xl_val model = ev ? ev->model : (struct rota_xl_val){0};
    if (!model.len && x->req)
        model = x->req->model;
    EV_BEGIN(out, "message_start");
    XAK(out, "message");
    rota_jbuf_obj(out);
    XAK(out, "id");
    if (ev && ev->id.len) {
        rota_jbuf_json(out, ev->id.p, ev->id.len);
    } else {
        struct rota_xl_val id = rota_xl_tool_id(x, "msg_", model, (struct rota_xl_val){0},
                                                (uint32_t)x->now_s, (struct rota_xl_val){0});
        if (id.len)
            rota_jbuf_json(out, id.p, id.len);
        else
            XAS(out, "msg_0");
    }
    XAK(out, "type"), XAS(out, "message");
    XAK(out, "role"), XAS(out, "assistant");
    XAK(out, "model");
    if (model.len)
        rota_jbuf_json(out, model.p, model.len);
    else
        rota_jbuf_strz(out, x->model ? x->model : "");
    XAK(out, "content"), XAJ(out, "[]");
    XAK(out, "stop_reason"), rota_jbuf_null(out);
    XAK(out, "stop_sequence"), rota_jbuf_null(out);
    struct rota_xl_usage u = st->usage;
    u.out = 0; /* said at the end */
    rota_xla_usage_out(out, &u);
    st->said_in = st->usage.in;
    rota_jbuf_end(out);
    ev_end(out);
}

static void stop_block(struct rota_xl_sout *st, struct rota_jbuf *out)
{
    if (st->open < 0)
        return;
    EV_BEGIN(out, "content_block_stop");
    XAK(out, "index"), rota_jbuf_u64(out, (uint64_t)st->open);
    ev_end(out);
    st->open = -1;
}

/* Stop the open block, start one of "kind": its content_block_start left open after
 * "content_block":{"type":..., for the caller to finish with its members and two ends. */
static void begin_block(struct rota_xl_sout *st, uint8_t kind, struct rota_jbuf *out)
{
    stop_block(st, out);
    st->open = (int)st->blocks++;
    st->open_kind = kind;
    EV_BEGIN(out, "content_block_start");
    XAK(out, "index"), rota_jbuf_u64(out, (uint64_t)st->open);
    XAK(out, "content_block");
    rota_jbuf_obj(out);
}

static void delta_begin(struct rota_xl_sout *st, struct rota_jbuf *out)
{
    EV_BEGIN(out, "content_block_delta");
    XAK(out, "index"), rota_jbuf_u64(out, (uint64_t)st->open);
    XAK(out, "delta");
    rota_jbuf_obj(out);
}

static void text_out(struct rota_xl_sout *st, const struct rota_xl_ev *ev, struct rota_jbuf *out)
{
    bool think = ev->type == ROTA_XL_EV_THINKING;
    uint8_t kind = think ? K_THINKING : K_TEXT;
    if (ev->text.len <= 2)
        return; /* nothing to say */
    if (st->open < 0 || st->open_kind != kind) {
        begin_block(st, kind, out);
        if (think) {
            XAK(out, "type"), XAS(out, "thinking");
            XAK(out, "thinking"), XAJ(out, "\"\"");
            XAK(out, "signature"), XAJ(out, "\"\"");
        } else {
            XAK(out, "type"), XAS(out, "text");
            XAK(out, "text"), XAJ(out, "\"\"");
        }
        rota_jbuf_end(out);
        ev_end(out);
    }
    delta_begin(st, out);
    if (think)
        XAK(out, "type"), XAS(out, "thinking_delta"), XAK(out, "thinking");
    else
        XAK(out, "type"), XAS(out, "text_delta"), XAK(out, "text");
    rota_jbuf_json(out, ev->text.p, ev->text.len);
    rota_jbuf_end(out);
    ev_end(out);
}

static void sig_out(struct rota_xl_sout *st, const struct rota_xl_ev *ev, struct rota_jbuf *out)
{
    if (ev->sig.len <= 2)
        return;
    if (st->open < 0 || st->open_kind != K_THINKING) {
        begin_block(st, K_THINKING, out);
        XAK(out, "type"), XAS(out, "thinking");
        XAK(out, "thinking"), XAJ(out, "\"\"");
        XAK(out, "signature"), XAJ(out, "\"\"");
        rota_jbuf_end(out);
        ev_end(out);
    }
    delta_begin(st, out);
    XAK(out, "type"), XAS(out, "signature_delta");
    XAK(out, "signature"), rota_jbuf_json(out, ev->sig.p, ev->sig.len);
    rota_jbuf_end(out);
    ev_end(out);
}

static void args_delta(struct rota_xl_sout *st, struct rota_xl_val v, bool quote,
                       struct rota_jbuf *out)
{
    delta_begin(st, out);
    XAK(out, "type"), XAS(out, "input_json_delta");
    XAK(out, "partial_json");
    if (quote)
        rota_jbuf_quote(out, v.p, v.len);
    else
        rota_jbuf_json(out, v.p, v.len);
    rota_jbuf_end(out);
    ev_end(out);
}

static int tool_out(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                    struct rota_jbuf *out)
{
    struct rota_xl_val id = ev->id;
    if (!id.len && !(id = rota_xl_tool_id(x, "toolu_", ev->name, ev->args, ev->index, ev->sig))
                         .len)
        return rota_xl_fail(x, -ENOMEM, "out of memory writing the stream");
    begin_block(st, K_TOOL, out);
    XAK(out, "type"), XAS(out, "tool_use");
    XAK(out, "id"), rota_jbuf_json(out, id.p, id.len);
    XAK(out, "name");
    if (ev->name.len)
        rota_jbuf_json(out, ev->name.p, ev->name.len);
    else
        XAJ(out, "\"\"");
    XAK(out, "input"), XAJ(out, "{}");
    rota_jbuf_end(out);
    ev_end(out);
    st->open_tool = ev->index;
    st->tools++;
    if (ev->args.len) { /* whole: one piece, and the block ends */
        args_delta(st, ev->args, true, out);
        stop_block(st, out);
    }
    return 0;
}

static void end_out(struct rota_xl_sout *st, struct rota_jbuf *out)
{
    stop_block(st, out);
    EV_BEGIN(out, "message_delta");
    XAK(out, "delta");
    rota_jbuf_obj(out);
    XAK(out, "stop_reason");
    rota_jbuf_strz(out, rota_xla_finish_name(st->finish, st->tools > 0, st->stop_seq.len > 0));
    XAK(out, "stop_sequence");
    if (st->stop_seq.len)
        rota_jbuf_json(out, st->stop_seq.p, st->stop_seq.len);
    else
        rota_jbuf_null(out);
    rota_jbuf_end(out);
    if (!st->said_in && st->usage.in) {
        rota_xla_usage_out(out, &st->usage);
    } else {
        XAK(out, "usage");
        rota_jbuf_obj(out);
        XAK(out, "output_tokens"), rota_jbuf_u64(out, st->usage.out);
        rota_jbuf_end(out);
    }
    ev_end(out);
    EV_BEGIN(out, "message_stop");
    ev_end(out);
    st->ended = true;
}

int rota_xla_ev_out(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                    struct rota_jbuf *out)
{
    if (st->ended)
        return 0;
    if (ev->type == ROTA_XL_EV_ERROR) {
        size_t n = 0;
        const char *m = ev->text.len ? rota_xl_text(x, ev->text, &n) : NULL;
        char msg[512];
        snprintf(msg, sizeof(msg), "%.*s", (int)(n < 500 ? n : 500), m ? m : "");
        rota_xla_ev_fail(x, st, msg, out);
        return out->err;
    }
    if (!st->started && ev->type != ROTA_XL_EV_FINISH && ev->type != ROTA_XL_EV_USAGE)
        start(x, st, ev->type == ROTA_XL_EV_START ? ev : NULL, out);
    switch (ev->type) {
    case ROTA_XL_EV_START:
        if (ev->usage.seen && !st->usage.seen)
            st->usage = ev->usage;
        break;
    case ROTA_XL_EV_TEXT:
    case ROTA_XL_EV_THINKING:
        text_out(st, ev, out);
        break;
    case ROTA_XL_EV_SIGNATURE:
        sig_out(st, ev, out);
        break;
    case ROTA_XL_EV_TOOL: {
        int rc = tool_out(x, st, ev, out);
        if (rc)
            return rc;
        break;
    }
    case ROTA_XL_EV_ARGS:
        if (ev->text.len <= 2)
            break;
        if (st->open < 0 || st->open_kind != K_TOOL || st->open_tool != ev->index)
            return rota_xl_fail(x, -EINVAL, "tool call %u's arguments came when it was not "
                                "the call being written", ev->index);
        args_delta(st, ev->text, false, out);
        break;
    case ROTA_XL_EV_FINISH:
        st->finished = true;
        st->finish = ev->finish;
        st->stop_seq = (struct rota_xl_val){0};
        if (ev->stop_seq.len) {
            char *p = rota_arena_dup(rota_xl_keep(x), ev->stop_seq.p, ev->stop_seq.len);
            if (!p)
                return rota_xl_fail(x, -ENOMEM, "out of memory writing the stream");
            st->stop_seq = (struct rota_xl_val){p, ev->stop_seq.len};
        }
        break;
    case ROTA_XL_EV_USAGE:
        if (ev->usage.seen)
            st->usage = ev->usage;
        break;
    case ROTA_XL_EV_END:
        end_out(st, out);
        break;
    default:
        break;
    }
    return out->err;
}

void rota_xla_ev_fail(struct rota_xl *x, struct rota_xl_sout *st, const char *message,
                      struct rota_jbuf *out)
{
    (void)x;
    if (st->ended)
        return;
    stop_block(st, out);
    EV_BEGIN(out, "error");
    XAK(out, "error");
    rota_jbuf_obj(out);
    XAK(out, "type"), XAS(out, "api_error");
    XAK(out, "message"), rota_jbuf_strz(out, message ? message : "");
    rota_jbuf_end(out);
    ev_end(out);
    st->ended = true;
}
