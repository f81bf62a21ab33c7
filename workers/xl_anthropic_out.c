/*
 * xl_anthropic_out.c - Anthropic's messages requests written from the representation,
 * and whole answers read and written (xlate.h).
 *
 * DESIGN
 * A request is written in one walk over a flat list of its parts ("items"), made first so
 * that what Anthropic cannot take back is left out before roles are counted:
 *  - consecutive THINKING parts of one role (Gemini gives a thought's text and its
 *    signature as separate parts) become one thinking block, their texts joined, the
 *    last signature seen its signature. A thinking block without a signature cannot be
 *    replayed: Anthropic checks every signature it is given and rejects the request, so
 *    such reasoning (another provider's, or cut short) is left out; the answer it led to
 *    stays.
 *  - an empty TEXT part (Gemini's signature-only part) is left out.
 * Then messages of one role in a row are merged into one (Anthropic wants the roles to
 * alternate), and in a user message the tool results come first (Anthropic rejects text
 * before the tool_result blocks that answer the turn before).
 *
 * max_tokens is required by Anthropic: 4096 when the request had none. With thinking on,
 * the budget is the request's, else 1024 (OpenAI's effort: low 1024, medium 4096, high
 * 16384), at least 1024 (Anthropic's minimum), and max_tokens is raised above it.
 *
 * Refused: a response format other than text (JSON mode, a schema), a seed, an image
 * whose base64 data has no media type.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xl_anthropic_int.h"

/* ---- requests ---- */

struct item {
    const struct rota_xl_part *p; /* its first part */
    uint32_t n;                   /* THINKING: parts joined (consecutive in "flat") */
    struct rota_xl_val sig;       /* THINKING: the last signature seen */
    uint32_t at;                  /* its place in the flat list */
    uint8_t role;
};

static bool thinking_part(const struct rota_xl_part *p)
{
    return p->type == ROTA_XL_THINKING || (p->type == ROTA_XL_TEXT && p->thought);
}

/* The parts in order, their roles, then the items written. */
static int items_of(struct rota_xl *x, const struct rota_xl_req *r, struct item **out,
                    uint32_t *nout, const struct rota_xl_part ***flatp)
{
    size_t total = 0;
    for (uint32_t i = 0; i < r->nmsg; i++)
        total += r->msg[i].n;
    const struct rota_xl_part **flat = total ? rota_xl_alloc(x, total * sizeof(*flat)) : NULL;
    uint8_t *role = total ? rota_xl_alloc(x, total) : NULL;
    struct item *it = total ? rota_xl_alloc(x, total * sizeof(*it)) : NULL;
    if (total && (!flat || !role || !it))
        return rota_xl_fail(x, -ENOMEM, "out of memory writing the request");
    size_t k = 0;
    for (uint32_t i = 0; i < r->nmsg; i++)
        for (uint32_t j = 0; j < r->msg[i].n; j++) {
            flat[k] = &r->msg[i].part[j];
            role[k++] = (uint8_t)r->msg[i].role;
        }
    uint32_t n = 0;
    for (size_t i = 0; i < total;) {
        const struct rota_xl_part *p = flat[i];
        if (thinking_part(p)) {
            size_t j = i;
            struct rota_xl_val sig = {0};
            while (j < total && role[j] == role[i] && thinking_part(flat[j])) {
                if (flat[j]->sig.len > 2)
                    sig = flat[j]->sig;
                j++;
            }
            if (sig.len) /* unsigned reasoning is left out (DESIGN) */
                it[n++] = (struct item){p, (uint32_t)(j - i), sig, (uint32_t)i, role[i]};
            i = j;
            continue;
        }
        if (!(p->type == ROTA_XL_TEXT && p->text.len <= 2))
            it[n++] = (struct item){p, 1, {0}, (uint32_t)i, role[i]};
        i++;
    }
    *out = it;
    *nout = n;
    *flatp = flat;
    return 0;
}

/* A string value whose text is the texts of "n" string values joined (bytes as written). */
static void joined(struct rota_jbuf *b, const struct rota_xl_part *const *ps, uint32_t n)
{
    if (n == 1 && ps[0]->text.len >= 2) {
        rota_jbuf_json(b, ps[0]->text.p, ps[0]->text.len);
        return;
    }
    rota_jbuf_json(b, "\"", 1);
    for (uint32_t i = 0; i < n; i++)
        if (ps[i]->text.len >= 2)
            rota_jbuf_raw(b, ps[i]->text.p + 1, ps[i]->text.len - 2);
    rota_jbuf_raw(b, "\"", 1);
}

static int image_out(struct rota_xl *x, const struct rota_xl_part *p, struct rota_jbuf *b)
{
    XAK(b, "type"), XAS(b, "image");
    XAK(b, "source");
    rota_jbuf_obj(b);
    if (p->data.len) {
        if (!p->mime.len)
            return rota_xl_refuse_part(x, p, "an image without a media type");
        XAK(b, "type"), XAS(b, "base64");
        XAK(b, "media_type"), rota_jbuf_json(b, p->mime.p, p->mime.len);
        XAK(b, "data"), rota_jbuf_json(b, p->data.p, p->data.len);
    } else {
        size_t n;
        const char *u = rota_xl_text(x, p->url, &n);
        if (!u)
            return rota_xl_fail(x, -EINVAL, "an image's url is not a string");
        const char *comma = n > 5 && memcmp(u, "data:", 5) == 0 ? memchr(u, ',', n) : NULL;
        if (comma) {
            size_t hl = (size_t)(comma - u);
            if (hl < 12 || memcmp(comma - 7, ";base64", 7) != 0)
                return rota_xl_refuse_part(x, p, "an image data URL not in base64");
            XAK(b, "type"), XAS(b, "base64");
            XAK(b, "media_type"), rota_jbuf_str(b, u + 5, hl - 12);
            XAK(b, "data"), rota_jbuf_str(b, comma + 1, n - hl - 1);
        } else {
            XAK(b, "type"), XAS(b, "url");
            XAK(b, "url"), rota_jbuf_json(b, p->url.p, p->url.len);
        }
    }
    rota_jbuf_end(b);
    return 0;
}

static int item_out(struct rota_xl *x, const struct item *it,
                    const struct rota_xl_part *const *flat, uint32_t index,
                    struct rota_jbuf *b)
{
    const struct rota_xl_part *p = it->p;
    rota_jbuf_obj(b);
    switch (p->type) {
    case ROTA_XL_TEXT:
        if (p->thought)
            goto thinking;
        XAK(b, "type"), XAS(b, "text");
        XAK(b, "text"), rota_jbuf_json(b, p->text.p, p->text.len);
        break;
    case ROTA_XL_THINKING:
    thinking:
        XAK(b, "type"), XAS(b, "thinking");
        XAK(b, "thinking"), joined(b, flat, it->n);
        XAK(b, "signature"), rota_jbuf_json(b, it->sig.p, it->sig.len);
        break;
    case ROTA_XL_REDACTED_THINKING:
        XAK(b, "type"), XAS(b, "redacted_thinking");
        XAK(b, "data"), rota_jbuf_json(b, p->text.p, p->text.len);
        break;
    case ROTA_XL_IMAGE: {
        int rc = image_out(x, p, b);
        if (rc)
            return rc;
        break;
    }
    case ROTA_XL_TOOL_CALL: {
        struct rota_xl_val id = p->id;
        if (!id.len && !(id = rota_xl_tool_id(x, "toolu_", p->name, p->args, index,
                                              (struct rota_xl_val){0}))
                             .len)
            return rota_xl_fail(x, -ENOMEM, "out of memory writing the request");
        XAK(b, "type"), XAS(b, "tool_use");
        XAK(b, "id"), rota_jbuf_json(b, id.p, id.len);
        XAK(b, "name"), rota_jbuf_json(b, p->name.p, p->name.len);
        XAK(b, "input");
        if (p->args.len)
            rota_jbuf_json(b, p->args.p, p->args.len);
        else
            XAJ(b, "{}");
        break;
    }
    case ROTA_XL_TOOL_RESULT:
        if (!p->id.len)
            return rota_xl_refuse_part(x, p, "a tool result without the id of its call");
        XAK(b, "type"), XAS(b, "tool_result");
        XAK(b, "tool_use_id"), rota_jbuf_json(b, p->id.p, p->id.len);
        XAK(b, "content");
        if (p->result.len && p->result.p[0] == '"')
            rota_jbuf_json(b, p->result.p, p->result.len);
        else if (p->result.len)
            rota_jbuf_quote(b, p->result.p, p->result.len);
        else
            XAJ(b, "\"\"");
        if (p->is_error)
            XAK(b, "is_error"), rota_jbuf_bool(b, true);
        break;
    }
    rota_jbuf_end(b);
    return 0;
}

static int messages_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *b)
{
    struct item *it = NULL;
    uint32_t n = 0;
    const struct rota_xl_part **flat = NULL;
    int rc = items_of(x, r, &it, &n, &flat);
    if (rc)
        return rc;
    XAK(b, "messages");
    rota_jbuf_arr(b);
    uint32_t calls = 0;
    for (uint32_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && it[j].role == it[i].role; j++)
            ;
        rota_jbuf_obj(b);
        XAK(b, "role");
        if (it[i].role == ROTA_XL_USER)
            XAS(b, "user");
        else
            XAS(b, "assistant");
        XAK(b, "content");
        rota_jbuf_arr(b);
        /* a user message's tool results first; then the rest in order */
        for (int pass = it[i].role == ROTA_XL_USER ? 0 : 1; pass < 2; pass++)
            for (uint32_t k = i; k < j; k++) {
                bool res = it[k].p->type == ROTA_XL_TOOL_RESULT;
                if (it[i].role == ROTA_XL_USER && res != (pass == 0))
                    continue;
                if ((rc = item_out(x, &it[k], flat + it[k].at, calls, b)))
                    return rc;
                calls += it[k].p->type == ROTA_XL_TOOL_CALL;
            }
        rota_jbuf_end(b);
        rota_jbuf_end(b);
    }
    rota_jbuf_end(b);
    return 0;
}

/* The thinking budget to ask for, 0 for none. */
static uint64_t budget_of(struct rota_xl *x, const struct rota_xl_req *r)
{
    size_t n = 0;
    const char *e = r->effort.len ? rota_xl_text(x, r->effort, &n) : NULL;
    bool none = e && n == 4 && memcmp(e, "none", 4) == 0;
    if (r->thinking == 0 || (r->thinking != 1 && (!e || none)))
        return 0;
    uint64_t b = r->thinking_budget;
    if (!b)
        b = e && n == 6 && memcmp(e, "medium", 6) == 0 ? 4096
            : e && n == 4 && memcmp(e, "high", 4) == 0 ? 16384
                                                        : 1024;
    return b < 1024 ? 1024 : b;
}

static void val_or(struct rota_jbuf *b, struct rota_xl_val v, const char *dflt)
{
    if (v.len)
        rota_jbuf_json(b, v.p, v.len);
    else
        rota_jbuf_strz(b, dflt);
}

static void tools_out(const struct rota_xl_req *r, struct rota_jbuf *b)
{
    XAK(b, "tools");
    rota_jbuf_arr(b);
    for (uint32_t i = 0; i < r->ntool; i++) {
        const struct rota_xl_tool *t = &r->tool[i];
        rota_jbuf_obj(b);
        XAK(b, "name"), rota_jbuf_json(b, t->name.p, t->name.len);
        if (t->desc.len)
            XAK(b, "description"), rota_jbuf_json(b, t->desc.p, t->desc.len);
        XAK(b, "input_schema");
        if (t->params.len)
            rota_jbuf_json(b, t->params.p, t->params.len);
        else
            XAJ(b, "{\"type\":\"object\",\"properties\":{}}");
        rota_jbuf_end(b);
    }
    rota_jbuf_end(b);
    if (r->choice == ROTA_XL_CHOICE_UNSET && r->parallel_tools != 0)
        return;
    XAK(b, "tool_choice");
    rota_jbuf_obj(b);
    XAK(b, "type");
    switch (r->choice) {
    case ROTA_XL_NONE:
        XAS(b, "none");
        break;
    case ROTA_XL_ANY:
        XAS(b, "any");
        break;
    case ROTA_XL_NAMED:
        XAS(b, "tool");
        XAK(b, "name"), rota_jbuf_json(b, r->choice_name.p, r->choice_name.len);
        break;
    default:
        XAS(b, "auto");
    }
    if (r->parallel_tools == 0 && r->choice != ROTA_XL_NONE)
        XAK(b, "disable_parallel_tool_use"), rota_jbuf_bool(b, true);
    rota_jbuf_end(b);
}

int rota_xla_req_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    if (r->rformat != ROTA_XL_RF_TEXT)
        return rota_xl_refuse(x, "response_format");
    if (r->seed.len)
        return rota_xl_refuse(x, "seed");
    rota_jbuf_obj(out);
    XAK(out, "model");
    if (x->model)
        rota_jbuf_strz(out, x->model);
    else
        val_or(out, r->model, "");
    uint64_t budget = budget_of(x, r), max = 0;
    XAK(out, "max_tokens");
    if (budget) {
        struct rota_json *mt = rota_xl_parse(x, r->max_tokens);
        if (!mt || !rota_json_uint(mt, &max))
            max = 4096;
        rota_jbuf_u64(out, max > budget ? max : budget + max);
    } else {
        if (r->max_tokens.len)
            rota_jbuf_json(out, r->max_tokens.p, r->max_tokens.len);
        else
            rota_jbuf_u64(out, 4096);
    }
    if (r->nsystem) {
        XAK(out, "system");
        rota_jbuf_arr(out);
        for (uint32_t i = 0; i < r->nsystem; i++) {
            if (r->system[i].text.len <= 2)
                continue; /* Anthropic rejects an empty text block */
            rota_jbuf_obj(out);
            XAK(out, "type"), XAS(out, "text");
            XAK(out, "text"), rota_jbuf_json(out, r->system[i].text.p, r->system[i].text.len);
            rota_jbuf_end(out);
        }
        rota_jbuf_end(out);
    }
    int rc = messages_out(x, r, out);
    if (rc)
        return rc;
    if (r->ntool)
        tools_out(r, out);
    if (budget) {
        XAK(out, "thinking");
        rota_jbuf_obj(out);
        XAK(out, "type"), XAS(out, "enabled");
        XAK(out, "budget_tokens"), rota_jbuf_u64(out, budget);
        rota_jbuf_end(out);
    } else if (r->thinking == 0) {
        XAK(out, "thinking"), XAJ(out, "{\"type\":\"disabled\"}");
    }
    if (r->temperature.len)
        XAK(out, "temperature"), rota_jbuf_json(out, r->temperature.p, r->temperature.len);
    if (r->top_p.len)
        XAK(out, "top_p"), rota_jbuf_json(out, r->top_p.p, r->top_p.len);
    if (r->top_k.len)
        XAK(out, "top_k"), rota_jbuf_json(out, r->top_k.p, r->top_k.len);
    if (r->stop.len) {
        XAK(out, "stop_sequences");
        if (r->stop.p[0] == '"') {
            rota_jbuf_arr(out);
            rota_jbuf_json(out, r->stop.p, r->stop.len);
            rota_jbuf_end(out);
        } else {
            rota_jbuf_json(out, r->stop.p, r->stop.len);
        }
    }
    if (r->user.len) {
        XAK(out, "metadata");
        rota_jbuf_obj(out);
        XAK(out, "user_id"), rota_jbuf_json(out, r->user.p, r->user.len);
        rota_jbuf_end(out);
    }
    if (r->stream)
        XAK(out, "stream"), rota_jbuf_bool(out, true);
    rota_jbuf_end(out);
    return out->err;
}

/* ---- answers ---- */

static int answer_block(struct rota_xl *x, const struct rota_json *b, unsigned i,
                        struct rota_xl_part *p)
{
    if (b->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "the answer's content[%u] is not an object", i);
    const struct rota_json *type = rota_json_get(b, "type");
    const struct rota_json *v;
    p->at_part = (uint16_t)(i < 0xfffe ? i : 0xfffe);
    if (XA_IS(type, "text")) {
        p->type = ROTA_XL_TEXT;
        v = rota_json_get(b, "text");
    } else if (XA_IS(type, "thinking")) {
        p->type = ROTA_XL_THINKING;
        v = rota_json_get(b, "thinking");
        const struct rota_json *sig = rota_json_get(b, "signature");
        if (sig && sig->type != ROTA_JSON_STRING)
            return rota_xl_fail(x, -EINVAL, "the answer's content[%u].signature is malformed", i);
        p->sig = rota_xl_v(sig);
    } else if (XA_IS(type, "redacted_thinking")) {
        p->type = ROTA_XL_REDACTED_THINKING;
        v = rota_json_get(b, "data");
    } else if (XA_IS(type, "tool_use")) {
        const struct rota_json *id = rota_json_get(b, "id"), *name = rota_json_get(b, "name"),
                               *input = rota_json_get(b, "input");
        if (!id || id->type != ROTA_JSON_STRING || !name || name->type != ROTA_JSON_STRING ||
            name->len <= 2 || !input || input->type != ROTA_JSON_OBJECT)
            return rota_xl_fail(x, -EINVAL, "the answer's content[%u] is a malformed tool_use", i);
        p->type = ROTA_XL_TOOL_CALL;
        p->id = rota_xl_v(id);
        p->name = rota_xl_v(name);
        p->args = rota_xl_v(input);
        return 0;
    } else if (type && type->type == ROTA_JSON_STRING) {
        return rota_xl_fail(x, -ENOTSUP, "the answer's content[%u] of type %.*s cannot be "
                            "translated", i, (int)(type->len > 42 ? 40 : type->len - 2), type->p + 1);
    } else {
        return rota_xl_fail(x, -EINVAL, "the answer's content[%u].type is not a string", i);
    }
    if (!v || v->type != ROTA_JSON_STRING)
        return rota_xl_fail(x, -EINVAL, "the answer's content[%u] has no text", i);
    p->text = rota_xl_v(v);
    return 0;
}

int rota_xla_resp_in(struct rota_xl *x, const char *body, size_t len, struct rota_xl_resp *r)
{
    const struct rota_json *o = rota_xla_parse(x, body, len, "the answer");
    if (!o)
        return -EINVAL;
    const struct rota_json *id = rota_json_get(o, "id"), *model = rota_json_get(o, "model"),
                           *content = rota_json_get(o, "content"),
                           *seq = rota_json_get(o, "stop_sequence");
    if (!content || content->type != ROTA_JSON_ARRAY)
        return rota_xl_fail(x, -EINVAL, "the answer has no content array");
    if (id && id->type == ROTA_JSON_STRING)
        r->id = rota_xl_v(id);
    if (model && model->type == ROTA_JSON_STRING)
        r->model = rota_xl_v(model);
    if (seq && seq->type == ROTA_JSON_STRING)
        r->stop_seq = rota_xl_v(seq);
    r->finish = rota_xla_finish_in(rota_json_get(o, "stop_reason"));
    rota_xla_usage_in(rota_json_get(o, "usage"), &r->usage);
    r->part = content->n ? rota_xl_alloc(x, content->n * sizeof(*r->part)) : NULL;
    if (content->n && !r->part)
        return rota_xl_fail(x, -ENOMEM, "out of memory reading the answer");
    unsigned i = 0;
    for (const struct rota_json *b = content->kid; b; b = b->next, i++) {
        int rc = answer_block(x, b, i, &r->part[i]);
        if (rc)
            return rc;
    }
    r->n = content->n;
    return 0;
}

int rota_xla_resp_out(struct rota_xl *x, const struct rota_xl_resp *r, struct rota_jbuf *out)
{
    bool tools = false;
    for (uint32_t i = 0; i < r->n; i++)
        tools |= r->part[i].type == ROTA_XL_TOOL_CALL;
    rota_jbuf_obj(out);
    XAK(out, "id");
    if (r->id.len) {
        rota_jbuf_json(out, r->id.p, r->id.len);
    } else { /* made of the answer, so the same answer gets the same id */
        struct rota_xl_val first = r->n ? (r->part[0].text.len ? r->part[0].text : r->part[0].args)
                                         : (struct rota_xl_val){0};
        struct rota_xl_val id =
            rota_xl_tool_id(x, "msg_", r->model, first, r->n, (struct rota_xl_val){0});
        if (!id.len)
            return rota_xl_fail(x, -ENOMEM, "out of memory writing the answer");
        rota_jbuf_json(out, id.p, id.len);
    }
    XAK(out, "type"), XAS(out, "message");
    XAK(out, "role"), XAS(out, "assistant");
    XAK(out, "model");
    if (r->model.len)
        rota_jbuf_json(out, r->model.p, r->model.len);
    else if (x->req && x->req->model.len)
        rota_jbuf_json(out, x->req->model.p, x->req->model.len);
    else
        rota_jbuf_strz(out, x->model ? x->model : "");
    XAK(out, "content");
    rota_jbuf_arr(out);
    for (uint32_t i = 0; i < r->n; i++) {
        const struct rota_xl_part *p = &r->part[i];
        if (p->type == ROTA_XL_TEXT && !p->thought && p->text.len <= 2)
            continue; /* Gemini's signature-only part */
        rota_jbuf_obj(out);
        if (p->type == ROTA_XL_THINKING || (p->type == ROTA_XL_TEXT && p->thought)) {
            uint32_t j = i;
            struct rota_xl_val sig = {0};
            while (j < r->n && thinking_part(&r->part[j])) {
                if (r->part[j].sig.len)
                    sig = r->part[j].sig;
                j++;
            }
            XAK(out, "type"), XAS(out, "thinking");
            XAK(out, "thinking");
            rota_jbuf_json(out, "\"", 1);
            for (uint32_t k = i; k < j; k++)
                if (r->part[k].text.len >= 2)
                    rota_jbuf_raw(out, r->part[k].text.p + 1, r->part[k].text.len - 2);
            rota_jbuf_raw(out, "\"", 1);
            XAK(out, "signature");
            val_or(out, sig, "");
            i = j - 1;
        } else if (p->type == ROTA_XL_TEXT) {
            XAK(out, "type"), XAS(out, "text");
            XAK(out, "text"), rota_jbuf_json(out, p->text.p, p->text.len);
        } else if (p->type == ROTA_XL_REDACTED_THINKING) {
            XAK(out, "type"), XAS(out, "redacted_thinking");
            XAK(out, "data"), rota_jbuf_json(out, p->text.p, p->text.len);
        } else if (p->type == ROTA_XL_TOOL_CALL) {
            struct rota_xl_val id = p->id;
            if (!id.len && !(id = rota_xl_tool_id(x, "toolu_", p->name, p->args, i, p->sig)).len)
                return rota_xl_fail(x, -ENOMEM, "out of memory writing the answer");
            XAK(out, "type"), XAS(out, "tool_use");
            XAK(out, "id"), rota_jbuf_json(out, id.p, id.len);
            XAK(out, "name"), rota_jbuf_json(out, p->name.p, p->name.len);
            XAK(out, "input");
            if (p->args.len)
                rota_jbuf_json(out, p->args.p, p->args.len);
            else
                XAJ(out, "{}");
        } else {
            return rota_xl_fail(x, -ENOTSUP, "the answer's part %u (an image or a tool result) "
                                "cannot be sent to anthropic", i);
        }
        rota_jbuf_end(out);
    }
    rota_jbuf_end(out);
    XAK(out, "stop_reason");
    rota_jbuf_strz(out, rota_xla_finish_name(r->finish, tools, r->stop_seq.len > 0));
    XAK(out, "stop_sequence");
    if (r->stop_seq.len)
        rota_jbuf_json(out, r->stop_seq.p, r->stop_seq.len);
    else
        rota_jbuf_null(out);
    rota_xla_usage_out(out, &r->usage);
    rota_jbuf_end(out);
    return out->err;
}
