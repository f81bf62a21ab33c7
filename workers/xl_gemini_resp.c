/*
 * xl_gemini_resp.c - Gemini's whole answers (GenerateContentResponse) read into and
 * written from the representation (xlate.h), with the finish reasons and usage the
 * stream shares.
 *
 * DESIGN
 * An answer is read from its first candidate (the pool never asks for more). Function
 * calls get the ids requests make (rota_xl_tool_id over name, arguments, place among
 * the answer's calls, thought signature: xl_gemini.c), so the id a client of another
 * format sends back carries Gemini's signature back. Usage is converted at this edge:
 * promptTokenCount already holds cachedContentTokenCount; candidatesTokenCount does not
 * hold thoughtsTokenCount, which the representation counts in the output.
 *
 * An answer's fields that change nothing for a client of another format are ignored
 * (safetyRatings, citationMetadata, avgLogprobs, createTime, ...); a part the
 * representation cannot carry (an image Gemini drew, executed code) fails the answer.
 */
#include <errno.h>
#include <string.h>

#include "xl_gemini_int.h"

enum rota_xl_finish rota_xlg_finish_in(const struct rota_json *v)
{
    static const struct { const char *s; enum rota_xl_finish f; } map[] = {
        {"STOP", ROTA_XL_FINISH_STOP},
        {"MAX_TOKENS", ROTA_XL_FINISH_LENGTH},
        {"SAFETY", ROTA_XL_FINISH_FILTER},
        {"RECITATION", ROTA_XL_FINISH_FILTER},
        {"BLOCKLIST", ROTA_XL_FINISH_FILTER},
        {"PROHIBITED_CONTENT", ROTA_XL_FINISH_FILTER},
        {"SPII", ROTA_XL_FINISH_FILTER},
        {"IMAGE_SAFETY", ROTA_XL_FINISH_FILTER},
        {"LANGUAGE", ROTA_XL_FINISH_FILTER},
    };
    if (!v || v->type != ROTA_JSON_STRING)
        return ROTA_XL_FINISH_NONE;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (rota_json_is(v, map[i].s))
            return map[i].f;
    return ROTA_XL_FINISH_OTHER; /* MALFORMED_FUNCTION_CALL, OTHER, ... */
}

const char *rota_xlg_finish_out(enum rota_xl_finish f)
{
    switch (f) {
    case ROTA_XL_FINISH_LENGTH: return "MAX_TOKENS";
    case ROTA_XL_FINISH_FILTER:
    case ROTA_XL_FINISH_REFUSAL: return "SAFETY";
    case ROTA_XL_FINISH_OTHER: return "OTHER";
    default: return "STOP"; /* tool calls end with STOP in Gemini */
    }
}

bool rota_xlg_usage_in(const struct rota_json *u, struct rota_xl_usage *out)
{
    if (!u || u->type != ROTA_JSON_OBJECT)
        return false;
    uint64_t prompt = 0, cand = 0, thoughts = 0, cached = 0;
    rota_json_uint(rota_json_get(u, "promptTokenCount"), &prompt);
    rota_json_uint(rota_json_get(u, "candidatesTokenCount"), &cand);
    rota_json_uint(rota_json_get(u, "thoughtsTokenCount"), &thoughts);
    rota_json_uint(rota_json_get(u, "cachedContentTokenCount"), &cached);
    *out = (struct rota_xl_usage){.in = prompt, .out = cand + thoughts, .cached = cached,
                                  .reasoning = thoughts, .seen = true};
    return true;
}

void rota_xlg_usage_out(const struct rota_xl_usage *u, struct rota_jbuf *out)
{
    uint64_t reasoning = u->reasoning < u->out ? u->reasoning : u->out;
    XK(out, "usageMetadata");
    rota_jbuf_obj(out);
    XK(out, "promptTokenCount"), rota_jbuf_u64(out, u->in);
    XK(out, "candidatesTokenCount"), rota_jbuf_u64(out, u->out - reasoning);
    if (reasoning)
        XK(out, "thoughtsTokenCount"), rota_jbuf_u64(out, reasoning);
    if (u->cached)
        XK(out, "cachedContentTokenCount"), rota_jbuf_u64(out, u->cached);
    XK(out, "totalTokenCount"), rota_jbuf_u64(out, u->in + u->out);
    rota_jbuf_end(out);
}

/* ---- reading ---- */

static int part_in(struct rota_xl *x, const struct rota_json *v, const char *pre, unsigned pi,
                   uint32_t *calls, struct rota_xl_part *p)
{
    if (v->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "%scandidates[0].content.parts[%u] is not an object",
                            pre, pi);
    const struct rota_json *text = NULL, *call = NULL, *sig = NULL, *thought = NULL;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
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
                                "%scandidates[0].content.parts[%u].%.*s cannot be "
                                "translated",
                                pre, pi, (int)m->klen - 2, m->key + 1);
    }
    if ((text && text->type != ROTA_JSON_STRING) || (sig && sig->type != ROTA_JSON_STRING))
        return rota_xl_fail(x, -EINVAL, "%scandidates[0].content.parts[%u] is malformed", pre,
                            pi);
    p->at_part = (uint16_t)(pi < 0xfffe ? pi : 0xfffe);
    p->sig = rota_xl_v(sig);
    if (call) {
        const struct rota_json *name = rota_json_get(call, "name"),
                               *args = rota_json_get(call, "args");
        if (!name || name->type != ROTA_JSON_STRING ||
            (args && args->type != ROTA_JSON_OBJECT && args->type != ROTA_JSON_NULL))
            return rota_xl_fail(x, -EINVAL,
                                "%scandidates[0].content.parts[%u].functionCall is malformed",
                                pre, pi);
        p->type = ROTA_XL_TOOL_CALL;
        p->name = rota_xl_v(name);
        p->args = args && args->type == ROTA_JSON_OBJECT ? rota_xl_v(args)
                                                          : (struct rota_xl_val){"{}", 2};
        p->id = rota_xl_tool_id(x, "call_", p->name, p->args, (*calls)++, p->sig);
        return p->id.len ? 0 : rota_xl_fail(x, -ENOMEM, "out of memory");
    }
    p->type = rota_json_true(thought) ? ROTA_XL_THINKING : ROTA_XL_TEXT;
    p->thought = p->type == ROTA_XL_THINKING;
    p->text = text ? rota_xl_v(text) : (struct rota_xl_val){"\"\"", 2};
    return 0;
}

int rota_xlg_resp_in(struct rota_xl *x, const struct rota_json *o, struct rota_xl_resp *r,
                     bool ca)
{
    const char *pre = ca ? "response." : "";
    const struct rota_json *cands = NULL, *usage = NULL, *fb = NULL;
    for (const struct rota_json *m = o->kid; m; m = m->next) {
        if (rota_xlg_key(x, m, "candidates"))
            cands = m;
        else if (rota_xlg_key(x, m, "usageMetadata"))
            usage = m;
        else if (rota_xlg_key(x, m, "modelVersion") && m->type == ROTA_JSON_STRING)
            r->model = rota_xl_v(m);
        else if (rota_xlg_key(x, m, "responseId") && m->type == ROTA_JSON_STRING)
            r->id = rota_xl_v(m);
        else if (rota_xlg_key(x, m, "promptFeedback"))
            fb = m;
    }
    r->usage.seen = rota_xlg_usage_in(usage, &r->usage);
    if (cands && cands->type != ROTA_JSON_ARRAY)
        return rota_xl_fail(x, -EINVAL, "%scandidates is not an array", pre);
    const struct rota_json *c = cands ? cands->kid : NULL;
    if (!c) { /* the prompt was blocked */
        r->finish = rota_json_get(fb, "blockReason") ? ROTA_XL_FINISH_FILTER
                                                     : ROTA_XL_FINISH_OTHER;
        return 0;
    }
    if (c->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "%scandidates[0] is not an object", pre);
    const struct rota_json *parts = rota_json_path(c, "content.parts");
    if (parts && parts->type != ROTA_JSON_ARRAY)
        return rota_xl_fail(x, -EINVAL, "%scandidates[0].content.parts is not an array", pre);
    uint32_t n = parts ? parts->n : 0, calls = 0;
    r->part = rota_xl_alloc(x, n * sizeof(*r->part));
    if (n && !r->part)
        return rota_xl_fail(x, -ENOMEM, "out of memory reading the answer");
    unsigned pi = 0;
    for (const struct rota_json *p = parts ? parts->kid : NULL; p; p = p->next, pi++) {
        int rc = part_in(x, p, pre, pi, &calls, &r->part[r->n]);
        if (rc)
            return rc;
        const struct rota_xl_part *q = &r->part[r->n];
        if (q->type == ROTA_XL_TOOL_CALL || q->text.len > 2 || q->sig.len)
            r->n++; /* an empty text without a signature says nothing */
    }
    r->finish = rota_xlg_finish_in(rota_json_get(c, "finishReason"));
    if (calls && (r->finish == ROTA_XL_FINISH_STOP || r->finish == ROTA_XL_FINISH_NONE))
        r->finish = ROTA_XL_FINISH_TOOLS;
    return 0;
}

/* ---- writing ---- */

static void part_out(struct rota_xl *x, const struct rota_xl_part *p, struct rota_jbuf *out)
{
    struct rota_xl_val sig = p->sig;
    rota_jbuf_obj(out);
    if (p->type == ROTA_XL_TOOL_CALL) {
        XK(out, "functionCall");
        rota_jbuf_obj(out);
        XK(out, "name");
        rota_jbuf_json(out, p->name.p, p->name.len);
        XK(out, "args");
        if (p->args.len)
            rota_jbuf_json(out, p->args.p, p->args.len);
        else
            rota_jbuf_json(out, "{}", 2);
        rota_jbuf_end(out);
        if (!sig.len)
            sig = rota_xl_id_sig(x, p->id);
    } else {
        XK(out, "text");
        rota_jbuf_json(out, p->text.p, p->text.len);
        if (p->type == ROTA_XL_THINKING || p->thought) {
            XK(out, "thought");
            rota_jbuf_bool(out, true);
        }
    }
    if (sig.len) {
        XK(out, "thoughtSignature");
        rota_jbuf_json(out, sig.p, sig.len);
    }
    rota_jbuf_end(out);
}

void rota_xlg_resp_out(struct rota_xl *x, const struct rota_xl_resp *r, struct rota_jbuf *out)
{
    rota_jbuf_obj(out);
    XK(out, "candidates");
    rota_jbuf_arr(out);
    rota_jbuf_obj(out);
    XK(out, "content");
    rota_jbuf_obj(out);
    XK(out, "role"), XS(out, "model");
    XK(out, "parts");
    rota_jbuf_arr(out);
    for (uint32_t i = 0; i < r->n; i++) {
        const struct rota_xl_part *p = &r->part[i];
        /* Anthropic's redacted thinking has no Gemini form; an image has no place in
         * an answer */
        if (p->type == ROTA_XL_TEXT || p->type == ROTA_XL_THINKING ||
            p->type == ROTA_XL_TOOL_CALL)
            part_out(x, p, out);
    }
    rota_jbuf_end(out);
    rota_jbuf_end(out);
    rota_jbuf_kstr(out, "finishReason", rota_xlg_finish_out(r->finish));
    XK(out, "index"), rota_jbuf_u64(out, 0);
    rota_jbuf_end(out);
    rota_jbuf_end(out);
    rota_xlg_usage_out(&r->usage, out);
    if (r->model.len || x->model) {
        XK(out, "modelVersion");
        if (r->model.len)
            rota_jbuf_json(out, r->model.p, r->model.len);
        else
            rota_jbuf_strz(out, x->model);
    }
    if (r->id.len) {
        XK(out, "responseId");
        rota_jbuf_json(out, r->id.p, r->id.len);
    }
    rota_jbuf_end(out);
}
