/*
 * xl_gemini.c - Gemini's generateContent requests read into the representation
 * (xlate.h), and the module's table; xl_gemini_out.c writes requests, xl_gemini_resp.c
 * answers, xl_gemini_stream.c the SSE stream, xl_code_assist.c the envelope.
 *
 * DESIGN
 * One walk over the parsed body. The model is in the URL, not the body: the driver
 * knows it ("model" in a body is ignored). Keys are read as Google's APIs read them,
 * lowerCamelCase or snake_case ("inline_data", as the REST examples write it).
 *
 * Gemini's function calls carry no id, so ids are made as the answer side makes them
 * (rota_xl_tool_id over name, arguments, the call's place in its model turn and its
 * thought signature): a conversation's ids are the same whichever side made them. A
 * functionResponse answers the call of its name in the model turn before it: the n-th
 * response named N the n-th call named N. An id a client gives (functionCall.id,
 * functionResponse.id, which only some Google APIs use) is ignored for that reason.
 *
 * Thought parts ("thought": true) are THINKING parts with their thoughtSignature in
 * "sig" and "thought" set (the reasoning is Gemini's). A signature on a text or
 * functionCall part stays on that part.
 *
 * Ignored, as they change nothing another provider could honour: safetySettings (each
 * provider applies its own policy; Gemini clients, Gemini CLI among them, send
 * thresholds with every request, so refusing them would close every other tier to
 * them), labels (billing tags), model (the URL's is used), functionCall.id and
 * functionResponse.id (above), Code Assist's session_id. Refused, as they change the
 * answer and nothing carries them: cachedContent (a prompt stored at Google), tools
 * other than functionDeclarations (googleSearch, codeExecution, urlContext, ...),
 * candidateCount above 1, penalties, logprobs, non-text response modalities, media
 * other than images, and any field this module does not know.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "xl_gemini_int.h"

/* ---- shared small readers ---- */

struct rota_json *rota_xlg_parse(struct rota_xl *x, const char *body, size_t len,
                                 const char *what)
{
    struct rota_json_err e;
    struct rota_json *j = rota_json_parse(x->a, body, len, &e);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "%s is not JSON: %s at byte %zu", what, e.what, e.at),
               NULL;
    if (j->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "%s is not a JSON object", what), NULL;
    return j;
}

static bool camel_eq(const char *k, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++, name++) {
        char c = k[i];
        if (c == '_' && i + 1 < n && k[i + 1] >= 'a' && k[i + 1] <= 'z')
            c = (char)(k[++i] - 'a' + 'A');
        if (c != *name)
            return false;
    }
    return *name == 0;
}

static const char *key_text(struct rota_xl *x, const struct rota_json *m, size_t *n)
{
    if (!m->key)
        return NULL;
    if (!m->kescaped) {
        *n = m->klen - 2;
        return m->key + 1;
    }
    return rota_json_key(x->a, m, n);
}

bool rota_xlg_key(struct rota_xl *x, const struct rota_json *m, const char *name)
{
    size_t n;
    const char *k = key_text(x, m, &n);
    return k && camel_eq(k, n, name);
}

int rota_xlg_key_of(struct rota_xl *x, const struct rota_json *m, const char *const *names)
{
    size_t n;
    const char *k = key_text(x, m, &n);
    if (!k)
        return -1;
    for (int i = 0; names[i]; i++)
        if (camel_eq(k, n, names[i]))
            return i;
    return -1;
}

/* ---- the reader's state ---- */

struct rd {
    struct rota_xl *x;
    struct rota_xl_req *r;
    const char *pre; /* "" or Code Assist's "request." */
    /* the latest model turn: its calls answered so far */
    const struct rota_xl_msg *turn;
    bool *answered;
};

static int bad(struct rd *d, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct rd *d, int err, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (err == -ENOTSUP) {
        char path[240];
        snprintf(path, sizeof(path), "%s%s", d->pre, what);
        return rota_xl_refuse(d->x, path);
    }
    if (err == -ENOMEM)
        return rota_xl_fail(d->x, err, "out of memory reading %s%s", d->pre, what);
    return rota_xl_fail(d->x, err, "%s%s", d->pre, what);
}

static bool is_str(const struct rota_json *v)
{
    return v && v->type == ROTA_JSON_STRING;
}

static bool is_num(const struct rota_json *v)
{
    return v && v->type == ROTA_JSON_NUMBER;
}

static bool same(struct rota_xl *x, struct rota_xl_val a, struct rota_xl_val b)
{
    if (a.len == b.len && memcmp(a.p, b.p, a.len) == 0)
        return true;
    size_t na, nb;
    const char *ta = rota_xl_text(x, a, &na), *tb = rota_xl_text(x, b, &nb);
    return ta && tb && na == nb && memcmp(ta, tb, na) == 0;
}

static uint16_t at16(unsigned i)
{
    return i < ROTA_XLG_SYSTEM ? (uint16_t)i : (uint16_t)(ROTA_XLG_SYSTEM - 1);
}

/* ---- parts ---- */

enum { P_TEXT, P_THOUGHT, P_SIG, P_INLINE, P_FILE, P_CALL, P_RESP };
static const char *const part_keys[] = {"text", "thought", "thoughtSignature", "inlineData",
                                        "fileData", "functionCall", "functionResponse", NULL};

/* inlineData {mimeType, data} or fileData {mimeType, fileUri}: an image. */
static int media_in(struct rd *d, const struct rota_json *v, bool file, unsigned ci,
                    unsigned pi, struct rota_xl_part *p)
{
    const char *kind = file ? "fileData" : "inlineData";
    if (!v || v->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "contents[%u].parts[%u].%s is not an object", ci, pi, kind);
    const struct rota_json *mime = NULL, *data = NULL;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        if (rota_xlg_key(d->x, m, "mimeType"))
            mime = m;
        else if (rota_xlg_key(d->x, m, file ? "fileUri" : "data"))
            data = m;
        else if (!rota_xlg_key(d->x, m, "displayName"))
            return bad(d, -ENOTSUP, "contents[%u].parts[%u].%s.%.*s", ci, pi, kind,
                       (int)m->klen - 2, m->key + 1);
    }
    if (!is_str(data) || (mime && !is_str(mime)) || (!file && !mime))
        return bad(d, -EINVAL, "contents[%u].parts[%u].%s needs a mimeType and %s strings",
                   ci, pi, kind, file ? "a fileUri" : "data");
    size_t ml = 0;
    const char *mt = mime ? rota_xl_text(d->x, rota_xl_v(mime), &ml) : "image/";
    if (!mt)
        return bad(d, -ENOMEM, "contents[%u].parts[%u]", ci, pi);
    if (mime && (ml < 6 || memcmp(mt, "image/", 6) != 0))
        return bad(d, -ENOTSUP, "contents[%u].parts[%u].%s of type %.*s", ci, pi, kind,
                   (int)(ml > 60 ? 60 : ml), mt);
    p->type = ROTA_XL_IMAGE;
    p->mime = rota_xl_v(mime);
    if (file)
        p->url = rota_xl_v(data);
    else
        p->data = rota_xl_v(data);
    return 0;
}

static int call_in(struct rd *d, const struct rota_json *v, unsigned ci, unsigned pi,
                   uint32_t index, struct rota_xl_part *p)
{
    if (!v || v->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "contents[%u].parts[%u].functionCall is not an object", ci, pi);
    const struct rota_json *name = NULL, *args = NULL;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        if (rota_xlg_key(d->x, m, "name"))
            name = m;
        else if (rota_xlg_key(d->x, m, "args"))
            args = m;
        else if (!rota_xlg_key(d->x, m, "id"))
            return bad(d, -ENOTSUP, "contents[%u].parts[%u].functionCall.%.*s", ci, pi,
                       (int)m->klen - 2, m->key + 1);
    }
    if (!is_str(name))
        return bad(d, -EINVAL, "contents[%u].parts[%u].functionCall has no name", ci, pi);
    if (args && args->type != ROTA_JSON_OBJECT && args->type != ROTA_JSON_NULL)
        return bad(d, -EINVAL, "contents[%u].parts[%u].functionCall.args is not an object",
                   ci, pi);
    p->type = ROTA_XL_TOOL_CALL;
    p->name = rota_xl_v(name);
    p->args = args && args->type == ROTA_JSON_OBJECT ? rota_xl_v(args)
                                                      : (struct rota_xl_val){"{}", 2};
    p->id = rota_xl_tool_id(d->x, "call_", p->name, p->args, index, p->sig);
    return p->id.len ? 0 : bad(d, -ENOMEM, "contents[%u].parts[%u]", ci, pi);
}

/* functionResponse.response: {"output"|"result": "text"} is that text, {"error": v} an
 * error result v, anything else the object itself. */
static void result_in(const struct rota_json *resp, struct rota_xl_part *p)
{
    p->result = rota_xl_v(resp);
    if (resp->type != ROTA_JSON_OBJECT || resp->n != 1)
        return;
    const struct rota_json *m = resp->kid;
    if (rota_json_key_is(m, "error")) {
        p->is_error = true;
        p->result = rota_xl_v(m);
    } else if (m->type == ROTA_JSON_STRING &&
               (rota_json_key_is(m, "output") || rota_json_key_is(m, "result"))) {
        p->result = rota_xl_v(m);
    }
}

static int response_in(struct rd *d, const struct rota_json *v, unsigned ci, unsigned pi,
                       struct rota_xl_part *p)
{
    if (!v || v->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "contents[%u].parts[%u].functionResponse is not an object", ci,
                   pi);
    const struct rota_json *name = NULL, *resp = NULL;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        if (rota_xlg_key(d->x, m, "name"))
            name = m;
        else if (rota_xlg_key(d->x, m, "response"))
            resp = m;
        else if (!rota_xlg_key(d->x, m, "id"))
            return bad(d, -ENOTSUP, "contents[%u].parts[%u].functionResponse.%.*s", ci, pi,
                       (int)m->klen - 2, m->key + 1);
    }
    if (!is_str(name))
        return bad(d, -EINVAL, "contents[%u].parts[%u].functionResponse has no name", ci, pi);
    p->type = ROTA_XL_TOOL_RESULT;
    p->name = rota_xl_v(name);
    if (resp)
        result_in(resp, p);
    else
        p->result = (struct rota_xl_val){"{}", 2};
    /* the first call of this name in the model turn before, not answered yet */
    const struct rota_xl_msg *t = d->turn;
    for (uint32_t k = 0; t && k < t->n; k++)
        if (!d->answered[k] && t->part[k].type == ROTA_XL_TOOL_CALL &&
            same(d->x, t->part[k].name, p->name)) {
            d->answered[k] = true;
            p->id = t->part[k].id;
            return 0;
        }
    size_t nl = 0;
    const char *nt = rota_xl_text(d->x, p->name, &nl);
    return bad(d, -EINVAL,
               "contents[%u].parts[%u].functionResponse answers no functionCall named "
               "\"%.*s\" in the model turn before it",
               ci, pi, nt ? (int)(nl > 64 ? 64 : nl) : 0, nt ? nt : "");
}

/* Part "pi" of content "ci"; "calls" counts the turn's function calls so far. */
static int part_in(struct rd *d, const struct rota_json *v, unsigned ci, unsigned pi,
                   bool model, uint32_t *calls, struct rota_xl_part *p)
{
    if (v->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "contents[%u].parts[%u] is not an object", ci, pi);
    const struct rota_json *k[7] = {0};
    int kinds = 0;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        int i = rota_xlg_key_of(d->x, m, part_keys);
        if (i < 0)
            return bad(d, -ENOTSUP, "contents[%u].parts[%u].%.*s", ci, pi, (int)m->klen - 2,
                       m->key + 1);
        k[i] = m;
        kinds += i != P_THOUGHT && i != P_SIG;
    }
    if (kinds > 1)
        return bad(d, -EINVAL, "contents[%u].parts[%u] holds more than one kind of data", ci,
                   pi);
    p->at_msg = at16(ci);
    p->at_part = at16(pi);
    if (k[P_SIG]) {
        if (!is_str(k[P_SIG]))
            return bad(d, -EINVAL, "contents[%u].parts[%u].thoughtSignature is not a string",
                       ci, pi);
        p->sig = rota_xl_v(k[P_SIG]);
    }
    if (k[P_INLINE] || k[P_FILE]) {
        if (model)
            return bad(d, -ENOTSUP, "contents[%u].parts[%u].%s in a model turn", ci, pi,
                       k[P_INLINE] ? "inlineData" : "fileData");
        return media_in(d, k[P_INLINE] ? k[P_INLINE] : k[P_FILE], !k[P_INLINE], ci, pi, p);
    }
    if (k[P_CALL]) {
        if (!model)
            return bad(d, -EINVAL, "contents[%u].parts[%u]: a functionCall in a user turn", ci,
                       pi);
        return call_in(d, k[P_CALL], ci, pi, (*calls)++, p);
    }
    if (k[P_RESP]) {
        if (model)
            return bad(d, -EINVAL, "contents[%u].parts[%u]: a functionResponse in a model turn",
                       ci, pi);
        return response_in(d, k[P_RESP], ci, pi, p);
    }
    /* text, or a signature alone (Gemini ends some turns so): a text part */
    if (k[P_TEXT] && !is_str(k[P_TEXT]))
        return bad(d, -EINVAL, "contents[%u].parts[%u].text is not a string", ci, pi);
    if (!k[P_TEXT] && !k[P_SIG])
        return bad(d, -EINVAL, "contents[%u].parts[%u] holds no data", ci, pi);
    p->type = rota_json_true(k[P_THOUGHT]) ? ROTA_XL_THINKING : ROTA_XL_TEXT;
    p->thought = p->type == ROTA_XL_THINKING;
    p->text = k[P_TEXT] ? rota_xl_v(k[P_TEXT]) : (struct rota_xl_val){"\"\"", 2};
    return 0;
}

/* ---- contents ---- */

static int content_in(struct rd *d, const struct rota_json *c, unsigned ci,
                      struct rota_xl_msg *msg)
{
    if (c->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "contents[%u] is not an object", ci);
    const struct rota_json *role = NULL, *parts = NULL;
    for (const struct rota_json *m = c->kid; m; m = m->next) {
        if (rota_xlg_key(d->x, m, "role"))
            role = m;
        else if (rota_xlg_key(d->x, m, "parts"))
            parts = m;
        else
            return bad(d, -ENOTSUP, "contents[%u].%.*s", ci, (int)m->klen - 2, m->key + 1);
    }
    bool model = rota_json_is(role, "model");
    if (role && role->type != ROTA_JSON_NULL && !model && !rota_json_is(role, "user") &&
        !rota_json_is(role, "function"))
        return bad(d, -EINVAL, "contents[%u].role is not \"user\" or \"model\"", ci);
    if (!parts || parts->type != ROTA_JSON_ARRAY)
        return bad(d, -EINVAL, "contents[%u].parts is not an array", ci);
    msg->role = model ? ROTA_XL_ASSISTANT : ROTA_XL_USER;
    msg->part = rota_xl_alloc(d->x, parts->n * sizeof(*msg->part));
    if (parts->n && !msg->part)
        return bad(d, -ENOMEM, "contents[%u]", ci);
    uint32_t calls = 0;
    unsigned pi = 0;
    for (const struct rota_json *p = parts->kid; p; p = p->next, pi++) {
        int rc = part_in(d, p, ci, pi, model, &calls, &msg->part[pi]);
        if (rc)
            return rc;
    }
    msg->n = pi;
    if (model) { /* the turn the next responses answer */
        d->turn = msg;
        d->answered = rota_xl_alloc(d->x, msg->n + 1);
        if (!d->answered)
            return bad(d, -ENOMEM, "contents[%u]", ci);
    }
    return 0;
}

static int contents_in(struct rd *d, const struct rota_json *v)
{
    if (v->type != ROTA_JSON_ARRAY)
        return bad(d, -EINVAL, "contents is not an array");
    d->r->msg = rota_xl_alloc(d->x, v->n * sizeof(*d->r->msg));
    if (v->n && !d->r->msg)
        return bad(d, -ENOMEM, "contents");
    unsigned ci = 0;
    for (const struct rota_json *c = v->kid; c; c = c->next, ci++) {
        int rc = content_in(d, c, ci, &d->r->msg[ci]);
        if (rc)
            return rc;
    }
    d->r->nmsg = ci;
    return 0;
}

static int system_in(struct rd *d, const struct rota_json *v)
{
    if (v->type == ROTA_JSON_STRING) { /* some clients send the text alone */
        d->r->system = rota_xl_alloc(d->x, sizeof(*d->r->system));
        if (!d->r->system)
            return bad(d, -ENOMEM, "systemInstruction");
        d->r->system[0] = (struct rota_xl_part){.type = ROTA_XL_TEXT, .text = rota_xl_v(v),
                                                .at_msg = ROTA_XLG_SYSTEM};
        d->r->nsystem = 1;
        return 0;
    }
    const struct rota_json *parts = NULL;
    if (v->type == ROTA_JSON_OBJECT)
        for (const struct rota_json *m = v->kid; m; m = m->next) {
            if (rota_xlg_key(d->x, m, "parts"))
                parts = m;
            else if (!rota_xlg_key(d->x, m, "role"))
                return bad(d, -ENOTSUP, "systemInstruction.%.*s", (int)m->klen - 2, m->key + 1);
        }
    if (!parts || parts->type != ROTA_JSON_ARRAY)
        return bad(d, -EINVAL, "systemInstruction.parts is not an array");
    d->r->system = rota_xl_alloc(d->x, parts->n * sizeof(*d->r->system));
    if (parts->n && !d->r->system)
        return bad(d, -ENOMEM, "systemInstruction");
    unsigned pi = 0;
    for (const struct rota_json *p = parts->kid; p; p = p->next, pi++) {
        const struct rota_json *text = NULL;
        for (const struct rota_json *m = p->type == ROTA_JSON_OBJECT ? p->kid : NULL; m;
             m = m->next) {
            if (!rota_xlg_key(d->x, m, "text"))
                return bad(d, -ENOTSUP, "systemInstruction.parts[%u].%.*s", pi,
                           (int)m->klen - 2, m->key + 1);
            text = m;
        }
        if (!is_str(text))
            return bad(d, -EINVAL, "systemInstruction.parts[%u] has no text", pi);
        d->r->system[pi] = (struct rota_xl_part){.type = ROTA_XL_TEXT, .text = rota_xl_v(text),
                                                 .at_msg = ROTA_XLG_SYSTEM, .at_part = at16(pi)};
    }
    d->r->nsystem = pi;
    return 0;
}

/* ---- tools ---- */

static int decl_in(struct rd *d, const struct rota_json *f, unsigned ti, unsigned fi,
                   struct rota_xl_tool *t)
{
    static const char *const keys[] = {"name", "description", "parameters",
                                       "parametersJsonSchema", NULL};
    if (f->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "tools[%u].functionDeclarations[%u] is not an object", ti, fi);
    const struct rota_json *k[4] = {0};
    for (const struct rota_json *m = f->kid; m; m = m->next) {
        int i = rota_xlg_key_of(d->x, m, keys);
        if (i < 0)
            return bad(d, -ENOTSUP, "tools[%u].functionDeclarations[%u].%.*s", ti, fi,
                       (int)m->klen - 2, m->key + 1);
        k[i] = m;
    }
    if (!is_str(k[0]) || (k[1] && !is_str(k[1])))
        return bad(d, -EINVAL, "tools[%u].functionDeclarations[%u] needs a name string", ti,
                   fi);
    for (int i = 2; i < 4; i++)
        if (k[i] && k[i]->type != ROTA_JSON_OBJECT)
            return bad(d, -EINVAL, "tools[%u].functionDeclarations[%u].%s is not an object",
                       ti, fi, keys[i]);
    t->name = rota_xl_v(k[0]);
    t->desc = rota_xl_v(k[1]);
    if (k[3])
        t->params = rota_xl_v(k[3]);
    else if (k[2] && rota_xlg_schema_in(d->x, rota_xl_v(k[2]), &t->params))
        return bad(d, -ENOMEM, "tools[%u].functionDeclarations[%u].parameters", ti, fi);
    return 0;
}

static int tools_in(struct rd *d, const struct rota_json *v)
{
    if (v->type != ROTA_JSON_ARRAY)
        return bad(d, -EINVAL, "tools is not an array");
    uint32_t n = 0;
    unsigned ti = 0;
    for (const struct rota_json *t = v->kid; t; t = t->next, ti++) {
        if (t->type != ROTA_JSON_OBJECT)
            return bad(d, -EINVAL, "tools[%u] is not an object", ti);
        for (const struct rota_json *m = t->kid; m; m = m->next) {
            if (!rota_xlg_key(d->x, m, "functionDeclarations"))
                return bad(d, -ENOTSUP, "tools[%u].%.*s", ti, (int)m->klen - 2, m->key + 1);
            if (m->type != ROTA_JSON_ARRAY)
                return bad(d, -EINVAL, "tools[%u].functionDeclarations is not an array", ti);
            n += m->n;
        }
    }
    d->r->tool = rota_xl_alloc(d->x, n * sizeof(*d->r->tool));
    if (n && !d->r->tool)
        return bad(d, -ENOMEM, "tools");
    ti = 0;
    for (const struct rota_json *t = v->kid; t; t = t->next, ti++)
        for (const struct rota_json *m = t->kid; m; m = m->next) {
            unsigned fi = 0;
            for (const struct rota_json *f = m->kid; f; f = f->next, fi++) {
                int rc = decl_in(d, f, ti, fi, &d->r->tool[d->r->ntool]);
                if (rc)
                    return rc;
                d->r->ntool++;
            }
        }
    return 0;
}

static int tool_config_in(struct rd *d, const struct rota_json *v)
{
    const struct rota_json *fc = NULL;
    for (const struct rota_json *m = v->type == ROTA_JSON_OBJECT ? v->kid : NULL; m;
         m = m->next) {
        if (!rota_xlg_key(d->x, m, "functionCallingConfig"))
            return bad(d, -ENOTSUP, "toolConfig.%.*s", (int)m->klen - 2, m->key + 1);
        fc = m;
    }
    if (!fc || fc->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "toolConfig.functionCallingConfig is not an object");
    const struct rota_json *mode = NULL, *names = NULL;
    for (const struct rota_json *m = fc->kid; m; m = m->next) {
        if (rota_xlg_key(d->x, m, "mode"))
            mode = m;
        else if (rota_xlg_key(d->x, m, "allowedFunctionNames"))
            names = m;
        else
            return bad(d, -ENOTSUP, "toolConfig.functionCallingConfig.%.*s", (int)m->klen - 2,
                       m->key + 1);
    }
    if (names && (names->type != ROTA_JSON_ARRAY || (names->n && !is_str(names->kid))))
        return bad(d, -EINVAL, "toolConfig.functionCallingConfig.allowedFunctionNames is not "
                               "an array of strings");
    if (!mode || rota_json_is(mode, "MODE_UNSPECIFIED") || rota_json_is(mode, "AUTO"))
        d->r->choice = mode ? ROTA_XL_AUTO : ROTA_XL_CHOICE_UNSET;
    else if (rota_json_is(mode, "NONE"))
        d->r->choice = ROTA_XL_NONE;
    else if (rota_json_is(mode, "ANY"))
        d->r->choice = ROTA_XL_ANY;
    else if (is_str(mode))
        return bad(d, -ENOTSUP, "toolConfig.functionCallingConfig.mode %.*s",
                   (int)(mode->len > 40 ? 40 : mode->len), mode->p);
    else
        return bad(d, -EINVAL, "toolConfig.functionCallingConfig.mode is not a string");
    if (names && names->n) {
        /* one name: that function; several: a choice the representation cannot hold */
        if (d->r->choice != ROTA_XL_ANY || names->n > 1)
            return bad(d, -ENOTSUP, "toolConfig.functionCallingConfig.allowedFunctionNames");
        d->r->choice = ROTA_XL_NAMED;
        d->r->choice_name = rota_xl_v(names->kid);
    }
    return 0;
}

/* ---- generationConfig ---- */

static int thinking_in(struct rd *d, const struct rota_json *v)
{
    if (v->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "generationConfig.thinkingConfig is not an object");
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        double b;
        if (rota_xlg_key(d->x, m, "thinkingBudget")) {
            if (!rota_json_double(m, &b) || b < -1 || b > 1e9 || b != (double)(int64_t)b)
                return bad(d, -EINVAL, "generationConfig.thinkingConfig.thinkingBudget is not "
                                       "-1, 0 or a number of tokens");
            d->r->thinking = b != 0;
            d->r->thinking_budget = b > 0 ? (uint64_t)b : 0;
        } else if (rota_xlg_key(d->x, m, "includeThoughts")) {
            d->r->include_thoughts = rota_json_true(m);
        } else if (rota_xlg_key(d->x, m, "thinkingLevel")) {
            size_t n;
            const char *t = is_str(m) ? rota_xl_text(d->x, rota_xl_v(m), &n) : NULL;
            char low[16];
            if (!t || n == 0 || n >= sizeof(low))
                return bad(d, -EINVAL, "generationConfig.thinkingConfig.thinkingLevel is not "
                                       "a level");
            for (size_t i = 0; i < n; i++)
                low[i] = (char)(t[i] >= 'A' && t[i] <= 'Z' ? t[i] - 'A' + 'a' : t[i]);
            d->r->effort = rota_xl_vstr(d->x, low, n);
            d->r->thinking = 1;
            if (!d->r->effort.len)
                return bad(d, -ENOMEM, "generationConfig.thinkingConfig");
        } else {
            return bad(d, -ENOTSUP, "generationConfig.thinkingConfig.%.*s", (int)m->klen - 2,
                       m->key + 1);
        }
    }
    return 0;
}

enum { G_MAX, G_TEMP, G_TOPP, G_TOPK, G_SEED, G_STOP, G_CAND, G_MIME, G_SCHEMA, G_JSCHEMA,
       G_JSCHEMA2, G_THINK, G_MODAL };
static const char *const gen_keys[] = {
    "maxOutputTokens", "temperature", "topP", "topK", "seed", "stopSequences",
    "candidateCount", "responseMimeType", "responseSchema", "responseJsonSchema",
    "_responseJsonSchema", "thinkingConfig", "responseModalities", NULL};

static int gen_in(struct rd *d, const struct rota_json *v)
{
    struct rota_xl_req *r = d->r;
    if (v->type != ROTA_JSON_OBJECT)
        return bad(d, -EINVAL, "generationConfig is not an object");
    const struct rota_json *mime = NULL;
    for (const struct rota_json *m = v->kid; m; m = m->next) {
        int i = rota_xlg_key_of(d->x, m, gen_keys);
        if (i < 0)
            return bad(d, -ENOTSUP, "generationConfig.%.*s", (int)m->klen - 2, m->key + 1);
        if (i <= G_SEED && !is_num(m))
            return bad(d, -EINVAL, "generationConfig.%s is not a number", gen_keys[i]);
        uint64_t n;
        switch (i) {
        case G_MAX: r->max_tokens = rota_xl_v(m); break;
        case G_TEMP: r->temperature = rota_xl_v(m); break;
        case G_TOPP: r->top_p = rota_xl_v(m); break;
        case G_TOPK: r->top_k = rota_xl_v(m); break;
        case G_SEED: r->seed = rota_xl_v(m); break;
        case G_STOP:
            if (m->type != ROTA_JSON_ARRAY)
                return bad(d, -EINVAL, "generationConfig.stopSequences is not an array");
            if (m->n)
                r->stop = rota_xl_v(m);
            break;
        case G_CAND:
            if (!rota_json_uint(m, &n))
                return bad(d, -EINVAL, "generationConfig.candidateCount is not a count");
            if (n > 1)
                return bad(d, -ENOTSUP, "generationConfig.candidateCount above 1");
            break;
        case G_MIME: mime = m; break;
        case G_SCHEMA:
            if (m->type != ROTA_JSON_OBJECT ||
                rota_xlg_schema_in(d->x, rota_xl_v(m), &r->schema))
                return bad(d, -EINVAL, "generationConfig.responseSchema is not a schema");
            r->rformat = ROTA_XL_RF_SCHEMA;
            break;
        case G_JSCHEMA:
        case G_JSCHEMA2:
            if (m->type != ROTA_JSON_OBJECT)
                return bad(d, -EINVAL, "generationConfig.responseJsonSchema is not an object");
            r->schema = rota_xl_v(m);
            r->rformat = ROTA_XL_RF_SCHEMA;
            break;
        case G_THINK: {
            int rc = thinking_in(d, m);
            if (rc)
                return rc;
            break;
        }
        case G_MODAL: /* text only */
            for (const struct rota_json *e = m->type == ROTA_JSON_ARRAY ? m->kid : NULL; e;
                 e = e->next)
                if (!rota_json_is(e, "TEXT") && !rota_json_is(e, "text"))
                    return bad(d, -ENOTSUP, "generationConfig.responseModalities %.*s",
                               (int)(e->len > 20 ? 20 : e->len), e->p);
            break;
        }
    }
    if (mime && rota_json_is(mime, "application/json")) {
        if (r->rformat != ROTA_XL_RF_SCHEMA)
            r->rformat = ROTA_XL_RF_JSON;
    } else if (mime && !rota_json_is(mime, "text/plain")) {
        return bad(d, -ENOTSUP, "generationConfig.responseMimeType %.*s",
                   (int)(mime->len > 40 ? 40 : mime->len), mime->p);
    }
    return 0;
}

/* ---- the request ---- */

enum { R_CONTENTS, R_SYSTEM, R_TOOLS, R_TOOLCFG, R_GEN, R_SAFETY, R_LABELS, R_MODEL,
       R_SESSION };
static const char *const root_keys[] = {"contents",       "systemInstruction",
                                        "tools",          "toolConfig",
                                        "generationConfig", "safetySettings",
                                        "labels",         "model",
                                        "sessionId",      NULL};

int rota_xlg_req_in(struct rota_xl *x, const struct rota_json *o, struct rota_xl_req *r,
                    bool ca)
{
    struct rd d = {.x = x, .r = r, .pre = ca ? "request." : ""};
    const struct rota_json *contents = NULL;
    for (const struct rota_json *m = o->kid; m; m = m->next) {
        int i = rota_xlg_key_of(x, m, root_keys), rc = 0;
        switch (i) {
        case R_CONTENTS: contents = m; break;
        case R_SYSTEM: rc = system_in(&d, m); break;
        case R_TOOLS: rc = tools_in(&d, m); break;
        case R_TOOLCFG: rc = tool_config_in(&d, m); break;
        case R_GEN: rc = gen_in(&d, m); break;
        case R_SAFETY: case R_LABELS: case R_MODEL: break; /* ignored (above) */
        case R_SESSION:
            if (!ca)
                rc = bad(&d, -ENOTSUP, "session_id");
            break;
        default:
            rc = bad(&d, -ENOTSUP, "%.*s", (int)m->klen - 2, m->key + 1);
        }
        if (rc)
            return rc;
    }
    if (!contents)
        return bad(&d, -EINVAL, "contents is missing");
    return contents_in(&d, contents);
}

static int req_in(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r)
{
    struct rota_json *o = rota_xlg_parse(x, body, len, "the request");
    return o ? rota_xlg_req_in(x, o, r, false) : -EINVAL;
}

static int req_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    return rota_xlg_req_out(x, r, out);
}

static int resp_in(struct rota_xl *x, const char *body, size_t len, struct rota_xl_resp *r)
{
    struct rota_json *o = rota_xlg_parse(x, body, len, "the answer");
    return o ? rota_xlg_resp_in(x, o, r, false) : -EINVAL;
}

static int resp_out(struct rota_xl *x, const struct rota_xl_resp *r, struct rota_jbuf *out)
{
    rota_xlg_resp_out(x, r, out);
    return out->err;
}

static int ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *name, size_t nlen,
                 const char *data, size_t dlen, struct rota_xl_evs *out)
{
    (void)name, (void)nlen; /* Gemini's events have no names */
    return rota_xlg_ev_in(x, st, data, dlen, out, false);
}

static int ev_out(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                  struct rota_jbuf *out)
{
    return rota_xlg_ev_out(x, st, ev, out, false);
}

static void where(char *buf, size_t n, unsigned msg, unsigned part)
{
    if (msg == ROTA_XLG_SYSTEM)
        snprintf(buf, n, "systemInstruction.parts[%u]", part);
    else
        snprintf(buf, n, "contents[%u].parts[%u]", msg, part);
}

const struct rota_xl_format rota_xl_gemini = {
    .name = "gemini",
    .req_in = req_in,
    .req_out = req_out,
    .resp_in = resp_in,
    .resp_out = resp_out,
    .ev_in = ev_in,
    .ev_out = ev_out,
    .ev_fail = rota_xlg_ev_fail,
    .where = where,
};
