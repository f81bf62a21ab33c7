/*
 * xl_gemini_out.c - the representation (xlate.h) written as a Gemini generateContent
 * request, and JSON Schema to and from Gemini's OpenAPI subset.
 *
 * DESIGN
 * One pass over the request, writing as it goes. No model in the body (it is in the
 * URL). Consecutive messages of one role become one content (Gemini wants a model
 * turn's function responses in one user turn); a message left with nothing to send is
 * not written (Gemini refuses a content without parts).
 *
 * Reasoning: THINKING parts and Anthropic's redacted thinking are not sent. Gemini does
 * not take reasoning as input (its answer is the same without it), and a signature on
 * one may be another provider's (Anthropic's, when the conversation crossed tiers),
 * which Gemini refuses as corrupted. What Gemini does need back, the thought signature
 * of a function call, is its part's, or the one carried in its id (rota_xl_id_sig).
 *
 * Schemas: Gemini takes a subset of OpenAPI 3 (the "keep" list below); every other
 * keyword is dropped and named in x->dropped. One walk over the parsed schema both
 * drops and rewrites what JSON Schema says differently: a type array
 * ["string","null"] becomes "type":"string","nullable":true (several types: anyOf),
 * an empty "properties" goes (Gemini refuses it), a "format" Gemini does not know goes
 * (it takes enum, date-time and the number formats). The walk is this module's, not
 * rota_xl_schema, for the rewrites it needs on the way. A tool whose schema has no
 * properties is sent without parameters. The other way (a Gemini client's
 * "parameters" and "responseSchema"), upper-case OpenAPI types are made JSON Schema's
 * and "nullable" a type array, when the schema's text shows one of them.
 *
 * Refused: image URLs (http/https; Gemini's own file URIs go as fileData), a tool result
 * without its function's name, parallel tool calls turned off (Gemini cannot), an
 * effort Gemini has no budget for.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "xl_gemini_int.h"

#define KW(s) {s, sizeof(s) - 1}
static const struct { const char *k; size_t n; } keep[] = {
    KW("type"),      KW("format"),   KW("description"), KW("nullable"), KW("enum"),
    KW("items"),     KW("properties"), KW("required"),  KW("minItems"), KW("maxItems"),
    KW("minimum"),   KW("maximum"),  KW("minLength"),   KW("maxLength"), KW("pattern"),
    KW("anyOf"),     KW("propertyOrdering"), KW("title"), KW("default")};

void rota_xlg_dropped(struct rota_xl *x, const char *k, size_t n)
{
    size_t have = strlen(x->dropped);
    for (const char *p = x->dropped; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && memcmp(p, k, n) == 0)
            return;
        p += l + (p[l] == ',');
    }
    if (have + n + 2 > sizeof(x->dropped) || memchr(k, ',', n))
        return;
    if (have)
        x->dropped[have++] = ',';
    memcpy(x->dropped + have, k, n);
    x->dropped[have + n] = 0;
}

/* ---- schemas ---- */

/* The value after each key "key" in JSON text "s" (its first byte), for a cheap look
 * before any parse; NULL when no more. */
static const char *next_value(const char *p, const char *e, const char *key, size_t kl,
                              const char **at)
{
    while (p < e) {
        const char *k = memmem(p, (size_t)(e - p), key, kl);
        if (!k)
            return NULL;
        const char *v = k + kl;
        while (v < e && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
            v++;
        p = v;
        if (v < e && *v == ':') {
            v++;
            while (v < e && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
                v++;
            if (v < e) {
                *at = v + 1;
                return v;
            }
        }
    }
    return NULL;
}

static bool lower_word(const char *p, size_t n, char *out, size_t cap)
{
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
    return true;
}

struct walk {
    struct rota_xl *x;
    struct rota_jbuf *b;
    bool in;   /* OpenAPI to JSON Schema; else JSON Schema to Gemini's */
};

static bool format_ok(const struct rota_json *v)
{
    static const char *const ok[] = {"enum", "date-time", "float", "double", "int32",
                                     "int64", NULL};
    for (int i = 0; ok[i]; i++)
        if (rota_json_is(v, ok[i]))
            return true;
    return false;
}

static int walk(struct walk *w, const struct rota_json *s, int depth);

static void key_as_written(struct rota_jbuf *b, const struct rota_json *m)
{
    rota_jbuf_json(b, m->key, m->klen);
    rota_jbuf_raw(b, ":", 1);
    b->after_key = true;
}

static bool kept(const char *k, size_t n)
{
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (keep[i].n == n && memcmp(keep[i].k, k, n) == 0)
            return true;
    return false;
}

/* "type" of schema "s": "nullable" said beside it, "anyof" there is an anyOf too. */
static void type_of(struct walk *w, const struct rota_json *t, bool nullable, bool anyof,
                    bool has_nullable)
{
    struct rota_jbuf *b = w->b;
    char low[24];
    size_t n;
    if (w->in) { /* "OBJECT" is "object"; nullable: ["object","null"] */
        const char *s = rota_xl_text(w->x, rota_xl_v(t), &n);
        if (!s || !lower_word(s, n, low, sizeof(low))) {
            key_as_written(b, t);
            rota_jbuf_val(b, t);
            return;
        }
        XK(b, "type");
        if (nullable && !(n == 4 && memcmp(low, "null", 4) == 0)) {
            rota_jbuf_arr(b);
            rota_jbuf_str(b, low, n);
            rota_jbuf_strz(b, "null");
            rota_jbuf_end(b);
        } else {
            rota_jbuf_str(b, low, n);
        }
        return;
    }
    /* ["string","null"]: "string" and nullable; several: anyOf of each */
    const struct rota_json *one = NULL;
    int types = 0;
    bool null = false;
    for (const struct rota_json *e = t->kid; e; e = e->next) {
        if (rota_json_is(e, "null"))
            null = true;
        else if (types++ == 0)
            one = e;
    }
    if (types == 1 || (types > 1 && anyof)) {
        XK(b, "type");
        rota_jbuf_val(b, one);
    } else if (types > 1) {
        XK(b, "anyOf");
        rota_jbuf_arr(b);
        for (const struct rota_json *e = t->kid; e; e = e->next)
            if (!rota_json_is(e, "null")) {
                rota_jbuf_obj(b);
                XK(b, "type");
                rota_jbuf_val(b, e);
                rota_jbuf_end(b);
            }
        rota_jbuf_end(b);
    }
    if (null && !has_nullable) {
        XK(b, "nullable");
        rota_jbuf_bool(b, true);
    }
}

/* Member "m"'s key, decoded (a pointer into the schema unless it holds an escape). */
static const char *mkey(struct walk *w, const struct rota_json *m, size_t *n)
{
    if (!m->kescaped) {
        *n = m->klen - 2;
        return m->key + 1;
    }
    const char *k = rota_json_key(w->x->a, m, n);
    if (!k)
        *n = 0;
    return k ? k : "";
}

#define IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), lit, sizeof(lit) - 1) == 0)

/* Member "m" (key "k", "n" bytes) of a schema object. */
static int walk_member(struct walk *w, const struct rota_json *m, const char *k, size_t n,
                       int depth)
{
    struct rota_jbuf *b = w->b;
    if (!w->in && !kept(k, n)) { /* only the keywords Gemini knows */
        rota_xlg_dropped(w->x, k, n);
        return 0;
    }
    if (IS(k, n, "properties") && m->type == ROTA_JSON_OBJECT) {
        if (!w->in && m->n == 0)
            return 0; /* Gemini refuses an empty one; it says nothing */
        key_as_written(b, m);
        rota_jbuf_obj(b);
        for (const struct rota_json *p = m->kid; p; p = p->next) {
            key_as_written(b, p); /* a property's name */
            int rc = walk(w, p, depth + 1);
            if (rc)
                return rc;
        }
        rota_jbuf_end(b);
        return 0;
    }
    if (IS(k, n, "items") || IS(k, n, "additionalProperties")) {
        key_as_written(b, m);
        return walk(w, m, depth + 1);
    }
    if ((IS(k, n, "anyOf") || IS(k, n, "oneOf") || IS(k, n, "allOf")) &&
        m->type == ROTA_JSON_ARRAY) {
        key_as_written(b, m);
        rota_jbuf_arr(b);
        for (const struct rota_json *e = m->kid; e; e = e->next) {
            int rc = walk(w, e, depth + 1);
            if (rc)
                return rc;
        }
        rota_jbuf_end(b);
        return 0;
    }
    if (!w->in && IS(k, n, "format") && !format_ok(m)) {
        rota_xlg_dropped(w->x, "format", 6);
        return 0;
    }
    key_as_written(b, m);
    rota_jbuf_val(b, m);
    return 0;
}

static int walk(struct walk *w, const struct rota_json *s, int depth)
{
    if (depth > ROTA_JSON_DEPTH)
        return rota_xl_fail(w->x, -EINVAL, "a schema is nested too deep");
    if (s->type != ROTA_JSON_OBJECT) {
        rota_jbuf_val(w->b, s);
        return 0;
    }
    const struct rota_json *type = NULL;
    bool nullable = false, has_nullable = false, anyof = false;
    size_t n;
    for (const struct rota_json *m = s->kid; m; m = m->next) {
        const char *k = mkey(w, m, &n);
        if (IS(k, n, "type"))
            type = m;
        else if (IS(k, n, "nullable"))
            has_nullable = true, nullable = rota_json_true(m);
        else if (IS(k, n, "anyOf"))
            anyof = true;
    }
    rota_jbuf_obj(w->b);
    for (const struct rota_json *m = s->kid; m; m = m->next) {
        int rc = 0;
        const char *k = mkey(w, m, &n);
        if (m == type && ((w->in && m->type == ROTA_JSON_STRING) ||
                          (!w->in && m->type == ROTA_JSON_ARRAY)))
            type_of(w, m, nullable, anyof, has_nullable);
        else if (w->in && IS(k, n, "nullable"))
            ; /* said by the type array, or nothing without a type */
        else
            rc = walk_member(w, m, k, n, depth);
        if (rc)
            return rc;
    }
    rota_jbuf_end(w->b);
    return 0;
}

/* Rewrite schema "s" (in or out), the result in the arena. */
static int rewrite(struct walk *w, struct rota_xl_val s, struct rota_xl_val *out)
{
    struct rota_json *j = rota_xl_parse(w->x, s);
    if (!j)
        return rota_xl_fail(w->x, -EINVAL, "a schema is not JSON");
    struct rota_jbuf b;
    rota_jbuf_init(&b, 0);
    w->b = &b;
    int rc = walk(w, j, 0);
    if (!rc && b.err)
        rc = rota_xl_fail(w->x, b.err, "a schema is too large");
    if (!rc) {
        char *p = rota_arena_dup(w->x->a, b.p, b.len);
        if (p)
            *out = (struct rota_xl_val){p, b.len};
        else
            rc = rota_xl_fail(w->x, -ENOMEM, "out of memory rewriting a schema");
    }
    rota_jbuf_free(&b);
    return rc;
}

int rota_xlg_schema_in(struct rota_xl *x, struct rota_xl_val s, struct rota_xl_val *out)
{
    const char *e = s.p + s.len, *at = s.p, *v;
    bool need = memmem(s.p, s.len, "\"nullable\"", 10) != NULL;
    while (!need && (v = next_value(at, e, "\"type\"", 6, &at)))
        need = *v == '"' && v + 1 < e && v[1] >= 'A' && v[1] <= 'Z';
    *out = s;
    if (!need)
        return 0;
    struct walk w = {.x = x, .in = true};
    return rewrite(&w, s, out);
}

/* Does schema "j" (parsed) take arguments: has it properties? */
static bool has_props(const struct rota_json *j)
{
    const struct rota_json *p = rota_json_get(j, "properties");
    return p && p->type == ROTA_JSON_OBJECT && p->n;
}

/* Schema "j" reduced to what Gemini takes, at the place of a value in "out". */
static int schema_out(struct rota_xl *x, const struct rota_json *j, struct rota_jbuf *out)
{
    struct walk w = {.x = x, .b = out};
    return walk(&w, j, 0);
}

static struct rota_json *schema_tree(struct rota_xl *x, struct rota_xl_val s)
{
    struct rota_json *j = rota_xl_parse(x, s);
    if (!j || j->type != ROTA_JSON_OBJECT)
        rota_xl_fail(x, -EINVAL, "a schema is not a JSON object");
    return j && j->type == ROTA_JSON_OBJECT ? j : NULL;
}

/* ---- parts ---- */

static bool written(const struct rota_xl_part *p)
{
    switch (p->type) {
    case ROTA_XL_TEXT:
        return p->text.len > 2 || p->sig.len;
    case ROTA_XL_THINKING:
    case ROTA_XL_REDACTED_THINKING:
        return false; /* (xl_gemini_out.c's DESIGN) */
    default:
        return true;
    }
}

static bool has_prefix(const char *s, size_t n, const char *pre)
{
    size_t l = strlen(pre);
    return n >= l && strncasecmp(s, pre, l) == 0;
}

static int image_out(struct rota_xl *x, const struct rota_xl_part *p, struct rota_jbuf *out)
{
    if (p->data.len) {
        if (!p->mime.len)
            return rota_xl_refuse_part(x, p, "an image without its media type");
        XK(out, "inlineData");
        rota_jbuf_obj(out);
        XK(out, "mimeType");
        rota_jbuf_json(out, p->mime.p, p->mime.len);
        XK(out, "data");
        rota_jbuf_json(out, p->data.p, p->data.len);
        rota_jbuf_end(out);
        return 0;
    }
    size_t n;
    const char *u = rota_xl_text(x, p->url, &n);
    if (!u)
        return rota_xl_refuse_part(x, p, "an image without data");
    if (has_prefix(u, n, "data:")) { /* data:image/png;base64,.... */
        const char *c = memchr(u, ',', n), *semi = memchr(u, ';', n);
        if (!c || !semi || semi > c || c - semi != 7 || memcmp(semi, ";base64", 7) != 0)
            return rota_xl_refuse_part(x, p, "a data: URL that is not base64");
        if (!has_prefix(u + 5, (size_t)(semi - u - 5), "image/"))
            return rota_xl_refuse_part(x, p, "a data: URL that is not an image");
        XK(out, "inlineData");
        rota_jbuf_obj(out);
        XK(out, "mimeType");
        rota_jbuf_str(out, u + 5, (size_t)(semi - u - 5));
        XK(out, "data");
        rota_jbuf_str(out, c + 1, (size_t)(u + n - c - 1));
        rota_jbuf_end(out);
        return 0;
    }
    /* Gemini's own file URIs (its Files API, Cloud Storage) are fileData */
    if (!has_prefix(u, n, "https://generativelanguage.googleapis.com/") &&
        !has_prefix(u, n, "gs://"))
        return rota_xl_refuse_part(x, p, "image URLs");
    XK(out, "fileData");
    rota_jbuf_obj(out);
    if (p->mime.len) {
        XK(out, "mimeType");
        rota_jbuf_json(out, p->mime.p, p->mime.len);
    }
    XK(out, "fileUri");
    rota_jbuf_json(out, p->url.p, p->url.len);
    rota_jbuf_end(out);
    return 0;
}

/* A tool result as functionResponse.response, which is an object. */
static void response_out(const struct rota_xl_part *p, struct rota_jbuf *out)
{
    struct rota_xl_val v = p->result.len ? p->result : (struct rota_xl_val){"\"\"", 2};
    if (p->is_error || v.p[0] != '{') {
        rota_jbuf_obj(out);
        rota_jbuf_key(out, p->is_error ? "error" : "result");
        rota_jbuf_json(out, v.p, v.len);
        rota_jbuf_end(out);
    } else {
        rota_jbuf_json(out, v.p, v.len);
    }
}

static int part_out(struct rota_xl *x, const struct rota_xl_part *p, struct rota_jbuf *out)
{
    struct rota_xl_val sig = p->sig;
    rota_jbuf_obj(out);
    switch (p->type) {
    case ROTA_XL_TEXT:
    case ROTA_XL_THINKING:
        XK(out, "text");
        rota_jbuf_json(out, p->text.p, p->text.len);
        if (p->type == ROTA_XL_THINKING || p->thought) {
            XK(out, "thought");
            rota_jbuf_bool(out, true);
        }
        break;
    case ROTA_XL_IMAGE: {
        int rc = image_out(x, p, out);
        if (rc)
            return rc;
        break;
    }
    case ROTA_XL_TOOL_CALL:
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
        break;
    case ROTA_XL_TOOL_RESULT:
        if (!p->name.len)
            return rota_xl_refuse_part(x, p, "a tool result without its function's name");
        XK(out, "functionResponse");
        rota_jbuf_obj(out);
        XK(out, "name");
        rota_jbuf_json(out, p->name.p, p->name.len);
        XK(out, "response");
        response_out(p, out);
        rota_jbuf_end(out);
        sig = (struct rota_xl_val){0};
        break;
    default:
        break;
    }
    if (sig.len) {
        XK(out, "thoughtSignature");
        rota_jbuf_json(out, sig.p, sig.len);
    }
    rota_jbuf_end(out);
    return 0;
}

static int contents_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    XK(out, "contents");
    rota_jbuf_arr(out);
    int open = -1; /* the role of the content open */
    for (uint32_t i = 0; i < r->nmsg; i++) {
        const struct rota_xl_msg *m = &r->msg[i];
        for (uint32_t j = 0; j < m->n; j++) {
            const struct rota_xl_part *p = &m->part[j];
            if (!written(p))
                continue;
            if (open != (int)m->role) {
                if (open >= 0)
                    rota_jbuf_end(out), rota_jbuf_end(out);
                rota_jbuf_obj(out);
                XK(out, "role");
                if (m->role == ROTA_XL_ASSISTANT)
                    XS(out, "model");
                else
                    XS(out, "user");
                XK(out, "parts");
                rota_jbuf_arr(out);
                open = (int)m->role;
            }
            int rc = part_out(x, p, out);
            if (rc)
                return rc;
        }
    }
    if (open >= 0)
        rota_jbuf_end(out), rota_jbuf_end(out);
    rota_jbuf_end(out);
    return 0;
}

static int system_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    XK(out, "systemInstruction");
    rota_jbuf_obj(out);
    XK(out, "parts");
    rota_jbuf_arr(out);
    for (uint32_t i = 0; i < r->nsystem; i++) {
        const struct rota_xl_part *p = &r->system[i];
        if (p->type != ROTA_XL_TEXT)
            return rota_xl_refuse_part(x, p, "a system instruction that is not text");
        rota_jbuf_obj(out);
        XK(out, "text");
        rota_jbuf_json(out, p->text.p, p->text.len);
        rota_jbuf_end(out);
    }
    rota_jbuf_end(out);
    rota_jbuf_end(out);
    return 0;
}

static int tools_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    XK(out, "tools");
    rota_jbuf_arr(out);
    rota_jbuf_obj(out);
    XK(out, "functionDeclarations");
    rota_jbuf_arr(out);
    for (uint32_t i = 0; i < r->ntool; i++) {
        const struct rota_xl_tool *t = &r->tool[i];
        rota_jbuf_obj(out);
        XK(out, "name");
        rota_jbuf_json(out, t->name.p, t->name.len);
        if (t->desc.len) {
            XK(out, "description");
            rota_jbuf_json(out, t->desc.p, t->desc.len);
        }
        if (t->params.len) { /* none when it takes no arguments: Gemini refuses an
                                 object without properties */
            struct rota_json *j = schema_tree(x, t->params);
            if (!j)
                return -EINVAL;
            if (has_props(j)) {
                XK(out, "parameters");
                int rc = schema_out(x, j, out);
                if (rc)
                    return rc;
            }
        }
        rota_jbuf_end(out);
    }
    rota_jbuf_end(out);
    rota_jbuf_end(out);
    rota_jbuf_end(out);
    if (r->choice == ROTA_XL_CHOICE_UNSET)
        return 0;
    static const char *const modes[] = {"", "AUTO", "NONE", "ANY", "ANY"};
    XK(out, "toolConfig");
    rota_jbuf_obj(out);
    XK(out, "functionCallingConfig");
    rota_jbuf_obj(out);
    rota_jbuf_kstr(out, "mode", modes[r->choice]);
    if (r->choice == ROTA_XL_NAMED) {
        XK(out, "allowedFunctionNames");
        rota_jbuf_arr(out);
        rota_jbuf_json(out, r->choice_name.p, r->choice_name.len);
        rota_jbuf_end(out);
    }
    rota_jbuf_end(out);
    rota_jbuf_end(out);
    return 0;
}

/* ---- generationConfig ---- */

struct gen {
    struct rota_jbuf *out;
    bool open;
};

static void gkey(struct gen *g, const char *k)
{
    if (!g->open) {
        XK(g->out, "generationConfig");
        rota_jbuf_obj(g->out);
        g->open = true;
    }
    rota_jbuf_key(g->out, k);
}

static void gval(struct gen *g, const char *k, struct rota_xl_val v)
{
    if (v.len) {
        gkey(g, k);
        rota_jbuf_json(g->out, v.p, v.len);
    }
}

/* The thinking budget for OpenAI's effort (the mapping Gemini's own OpenAI-compatible
 * endpoint documents), -1 when it has none. */
static int64_t effort_budget(struct rota_xl *x, struct rota_xl_val e)
{
    static const struct { const char *name; int64_t budget; } map[] = {
        {"none", 0}, {"minimal", 1024}, {"low", 1024}, {"medium", 8192}, {"high", 24576}};
    size_t n;
    const char *t = rota_xl_text(x, e, &n);
    for (size_t i = 0; t && i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].name) == n && memcmp(map[i].name, t, n) == 0)
            return map[i].budget;
    return -2;
}

static int thinking_out(struct rota_xl *x, const struct rota_xl_req *r, struct gen *g)
{
    if (r->thinking < 0 && !r->include_thoughts && !r->effort.len)
        return 0;
    int64_t budget = -1; /* -1: Gemini's dynamic budget */
    if (r->thinking == 0)
        budget = 0;
    else if (r->thinking_budget)
        budget = (int64_t)r->thinking_budget;
    else if (r->effort.len && (budget = effort_budget(x, r->effort)) < -1) {
        char what[64];
        snprintf(what, sizeof(what), "reasoning effort %.*s",
                 (int)(r->effort.len > 24 ? 24 : r->effort.len), r->effort.p);
        return rota_xl_refuse(x, what);
    }
    gkey(g, "thinkingConfig");
    rota_jbuf_obj(g->out);
    if (r->thinking >= 0 || r->effort.len) {
        XK(g->out, "thinkingBudget");
        if (budget < 0)
            rota_jbuf_json(g->out, "-1", 2);
        else
            rota_jbuf_u64(g->out, (uint64_t)budget);
    }
    if (r->include_thoughts) {
        XK(g->out, "includeThoughts");
        rota_jbuf_bool(g->out, true);
    }
    rota_jbuf_end(g->out);
    return 0;
}

static int gen_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    struct gen g = {.out = out};
    gval(&g, "maxOutputTokens", r->max_tokens);
    gval(&g, "temperature", r->temperature);
    gval(&g, "topP", r->top_p);
    gval(&g, "topK", r->top_k);
    gval(&g, "seed", r->seed);
    if (r->stop.len && r->stop.p[0] == '"') {
        gkey(&g, "stopSequences");
        rota_jbuf_arr(out);
        rota_jbuf_json(out, r->stop.p, r->stop.len);
        rota_jbuf_end(out);
    } else {
        gval(&g, "stopSequences", r->stop);
    }
    if (r->rformat != ROTA_XL_RF_TEXT) {
        gkey(&g, "responseMimeType");
        rota_jbuf_strz(out, "application/json");
    }
    if (r->rformat == ROTA_XL_RF_SCHEMA && r->schema.len) {
        struct rota_json *j = schema_tree(x, r->schema);
        if (!j)
            return -EINVAL;
        gkey(&g, "responseSchema");
        int rc = schema_out(x, j, out);
        if (rc)
            return rc;
    }
    int rc = thinking_out(x, r, &g);
    if (g.open)
        rota_jbuf_end(out);
    return rc;
}

int rota_xlg_req_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out)
{
    if (r->ntool && r->parallel_tools == 0 && r->choice != ROTA_XL_NONE)
        return rota_xl_refuse(x, "parallel tool calls turned off");
    rota_jbuf_obj(out);
    int rc = contents_out(x, r, out);
    if (!rc && r->nsystem)
        rc = system_out(x, r, out);
    if (!rc && r->ntool)
        rc = tools_out(x, r, out);
    if (!rc)
        rc = gen_out(x, r, out);
    rota_jbuf_end(out);
    return rc ? rc : out->err;
}
