/*
 * xlate.c - the helpers every format module shares (xlate.h says what and why).
 *
 * DESIGN
 * The driver is xlate_drive.c; this file knows no format module, so a module's own
 * test links it alone.
 *
 * Tool ids made for Gemini are a hash of the call (name, arguments, position), so an
 * answer read twice gives the same ids; a thought signature rides after "__ts_" in
 * base64url, the alphabet every format allows in an id.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xlate.h"

static const char *const names[ROTA_XL_FORMATS] = {"openai", "responses", "anthropic",
                                                    "gemini", "code-assist"};

static const char *name_of(enum rota_xl_fmt f)
{
    return f < ROTA_XL_FORMATS ? names[f] : "the target";
}

/* ---- errors ---- */

int rota_xl_fail(struct rota_xl *x, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
    if (!x->status)
        x->status = 400;
    return err;
}

int rota_xl_refuse(struct rota_xl *x, const char *path)
{
    return rota_xl_fail(x, -ENOTSUP, "%s cannot be sent to %s", path, name_of(x->to));
}

int rota_xl_refuse_key(struct rota_xl *x, const char *at, const struct rota_json *m)
{
    size_t n = 0;
    const char *k = rota_json_key(x->a, m, &n);
    char p[160];
    snprintf(p, sizeof(p), "%s%s%.*s", at ? at : "", at ? "." : "", (int)(k ? n : 0), k ? k : "");
    return rota_xl_refuse(x, p);
}

int rota_xl_refuse_part(struct rota_xl *x, const struct rota_xl_part *p, const char *what)
{
    char at[96] = "a part";
    if (x->where)
        x->where(at, sizeof(at), p->at_msg, p->at_part);
    return rota_xl_fail(x, -ENOTSUP, "%s: %s cannot be sent to %s", at, what, name_of(x->to));
}

/* ---- values ---- */

void *rota_xl_alloc(struct rota_xl *x, size_t n)
{
    void *p = rota_arena_alloc(x->a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

struct rota_xl_val rota_xl_vstr(struct rota_xl *x, const char *s, size_t n)
{
    struct rota_jbuf b;
    rota_jbuf_init(&b, 0);
    rota_jbuf_str(&b, s, n);
    struct rota_xl_val v = {0};
    if (!b.err) {
        char *p = rota_arena_dup(x->a, b.p, b.len);
        if (p)
            v = (struct rota_xl_val){p, b.len};
    }
    rota_jbuf_free(&b);
    return v;
}

struct rota_xl_val rota_xl_kept(struct rota_xl *x, struct rota_xl_val v)
{
    char *p = v.len ? rota_arena_dup(rota_xl_keep(x), v.p, v.len) : NULL;
    return p ? (struct rota_xl_val){p, v.len} : (struct rota_xl_val){0};
}

const char *rota_xl_text(struct rota_xl *x, struct rota_xl_val v, size_t *len)
{
    if (v.len < 2 || v.p[0] != '"')
        return NULL;
    if (!memchr(v.p + 1, '\\', v.len - 2)) {
        *len = v.len - 2;
        return v.p + 1;
    }
    struct rota_json *j = rota_xl_parse(x, v);
    return j ? rota_json_text(x->a, j, len) : NULL;
}

struct rota_json *rota_xl_parse(struct rota_xl *x, struct rota_xl_val v)
{
    return v.len ? rota_json_parse(x->a, v.p, v.len, NULL) : NULL;
}

int rota_xl_args_obj(struct rota_xl *x, struct rota_xl_val s, struct rota_xl_val *obj)
{
    size_t n;
    const char *t = rota_xl_text(x, s, &n);
    if (!t)
        return rota_xl_fail(x, -EINVAL, "tool arguments are not a string");
    size_t i = 0;
    while (i < n && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t'))
        i++;
    if (i == n) {
        *obj = (struct rota_xl_val){"{}", 2};
        return 0;
    }
    struct rota_json_err e;
    struct rota_json *j = rota_json_parse(x->a, t, n, &e);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "tool arguments are not JSON: %s at byte %zu", e.what,
                            e.at);
    if (j->type != ROTA_JSON_OBJECT)
        return rota_xl_fail(x, -EINVAL, "tool arguments are not a JSON object");
    *obj = (struct rota_xl_val){j->p, j->len};
    return 0;
}

/* ---- tool ids ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct rota_xl_val rota_xl_tool_id(struct rota_xl *x, const char *prefix,
                                   struct rota_xl_val name, struct rota_xl_val args,
                                   uint32_t index, struct rota_xl_val sig)
{
    uint64_t h1 = fnv(0xcbf29ce484222325ull, name.p, name.len);
    h1 = fnv(h1, args.p, args.len);
    h1 = fnv(h1, &index, sizeof(index));
    uint64_t h2 = fnv(h1 ^ 0x9e3779b97f4a7c15ull, name.p, name.len);
    size_t slen = 0;
    const char *s = sig.len ? rota_xl_text(x, sig, &slen) : NULL;
    size_t plen = strlen(prefix), cap = plen + 24 + (s ? 5 + (slen + 2) / 3 * 4 : 0) + 3;
    char *out = rota_arena_alloc(x->a, cap);
    if (!out)
        return (struct rota_xl_val){0};
    size_t k = 0;
    out[k++] = '"';
    memcpy(out + k, prefix, plen);
    k += plen;
    k += (size_t)snprintf(out + k, cap - k, "%016llx%08llx", (unsigned long long)h1,
                          (unsigned long long)(h2 >> 32));
    if (s) {
        memcpy(out + k, "__ts_", 5);
        k += 5;
        const unsigned char *u = (const unsigned char *)s;
        for (size_t i = 0; i < slen; i += 3) {
            uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < slen ? (uint32_t)u[i + 1] << 8 : 0) |
                         (i + 2 < slen ? u[i + 2] : 0);
            out[k++] = b64url[v >> 18 & 63];
            out[k++] = b64url[v >> 12 & 63];
            if (i + 1 < slen)
                out[k++] = b64url[v >> 6 & 63];
            if (i + 2 < slen)
                out[k++] = b64url[v & 63];
        }
    }
    out[k++] = '"';
    return (struct rota_xl_val){out, k};
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

struct rota_xl_val rota_xl_id_sig(struct rota_xl *x, struct rota_xl_val id)
{
    size_t n;
    const char *t = id.len ? rota_xl_text(x, id, &n) : NULL;
    const char *m = t ? memmem(t, n, "__ts_", 5) : NULL;
    if (!m)
        return (struct rota_xl_val){0};
    const char *s = m + 5, *e = t + n;
    char *raw = rota_arena_alloc(x->a, (size_t)(e - s) + 1);
    if (!raw)
        return (struct rota_xl_val){0};
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = s; p < e; p++) {
        int v = b64val(*p);
        if (v < 0)
            return (struct rota_xl_val){0};
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[k++] = (char)(acc >> bits & 0xff);
        }
    }
    return rota_xl_vstr(x, raw, k);
}

/* ---- the request's own links ---- */

static bool same_text(struct rota_xl *x, struct rota_xl_val a, struct rota_xl_val b)
{
    if (a.len == b.len && memcmp(a.p, b.p, a.len) == 0)
        return true;
    size_t na, nb;
    const char *ta = rota_xl_text(x, a, &na), *tb = rota_xl_text(x, b, &nb);
    return ta && tb && na == nb && memcmp(ta, tb, na) == 0;
}

int rota_xl_link(struct rota_xl *x, struct rota_xl_req *r, bool need_names)
{
    for (uint32_t i = 0; i < r->nmsg; i++) {
        const struct rota_xl_msg *m = &r->msg[i];
        for (uint32_t j = 0; j < m->n; j++) {
            struct rota_xl_part *p = &m->part[j];
            if (p->type == ROTA_XL_IMAGE)
                r->has_images = true;
            if (p->type != ROTA_XL_TOOL_RESULT || p->name.len)
                continue;
            /* the latest call of that id before this message */
            for (uint32_t k = i; k-- > 0 && !p->name.len;) {
                const struct rota_xl_msg *q = &r->msg[k];
                for (uint32_t l = 0; l < q->n; l++)
                    if (q->part[l].type == ROTA_XL_TOOL_CALL && p->id.len &&
                        same_text(x, q->part[l].id, p->id)) {
                        p->name = q->part[l].name;
                        break;
                    }
            }
            if (!p->name.len && need_names) {
                char at[96] = "a tool result";
                if (x->where)
                    x->where(at, sizeof(at), p->at_msg, p->at_part);
                return rota_xl_fail(x, -EINVAL,
                                    "%s: a tool result answers no tool call earlier in the "
                                    "conversation",
                                    at);
            }
        }
    }
    return 0;
}

/* ---- JSON Schema ---- */

static void note_dropped(struct rota_xl *x, const char *k, size_t n)
{
    size_t have = strlen(x->dropped);
    for (const char *p = x->dropped; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && memcmp(p, k, n) == 0)
            return;
        p += l + (p[l] == ',');
    }
    if (have + n + 2 > sizeof(x->dropped))
        return;
    if (have)
        x->dropped[have++] = ',';
    memcpy(x->dropped + have, k, n);
    x->dropped[have + n] = 0;
}

static bool kept(const char *k, size_t n, const char *const *keep)
{
    for (; *keep; keep++)
        if (strlen(*keep) == n && memcmp(*keep, k, n) == 0)
            return true;
    return false;
}

static int schema(struct rota_xl *x, const struct rota_json *s, const char *const *keep,
                  struct rota_jbuf *out, int depth)
{
    if (depth > ROTA_JSON_DEPTH)
        return rota_xl_fail(x, -EINVAL, "a tool's schema is nested too deep");
    if (s->type != ROTA_JSON_OBJECT) {
        rota_jbuf_val(out, s);
        return 0;
    }
    rota_jbuf_obj(out);
    for (const struct rota_json *m = s->kid; m; m = m->next) {
        size_t n;
        const char *k = rota_json_key(x->a, m, &n);
        if (!k)
            return -ENOMEM;
        if (!kept(k, n, keep)) {
            note_dropped(x, k, n);
            continue;
        }
        rota_jbuf_json(out, m->key, m->klen);
        rota_jbuf_raw(out, ":", 1);
        out->after_key = true;
        if (n == 10 && memcmp(k, "properties", 10) == 0 && m->type == ROTA_JSON_OBJECT) {
            rota_jbuf_obj(out);
            for (const struct rota_json *p = m->kid; p; p = p->next) {
                rota_jbuf_json(out, p->key, p->klen); /* a property's name, not a keyword */
                rota_jbuf_raw(out, ":", 1);
                out->after_key = true;
                int rc = schema(x, p, keep, out, depth + 1);
                if (rc)
                    return rc;
            }
            rota_jbuf_end(out);
        } else if ((n == 5 && memcmp(k, "items", 5) == 0) ||
                   (n == 20 && memcmp(k, "additionalProperties", 20) == 0)) {
            int rc = schema(x, m, keep, out, depth + 1);
            if (rc)
                return rc;
        } else if (((n == 5 && (memcmp(k, "anyOf", 5) == 0 || memcmp(k, "oneOf", 5) == 0 ||
                                memcmp(k, "allOf", 5) == 0)) ||
                    (n == 11 && memcmp(k, "prefixItems", 11) == 0)) &&
                   m->type == ROTA_JSON_ARRAY) {
            rota_jbuf_arr(out);
            for (const struct rota_json *e = m->kid; e; e = e->next) {
                int rc = schema(x, e, keep, out, depth + 1);
                if (rc)
                    return rc;
            }
            rota_jbuf_end(out);
        } else {
            rota_jbuf_val(out, m);
        }
    }
    rota_jbuf_end(out);
    return 0;
}

int rota_xl_schema(struct rota_xl *x, struct rota_xl_val s, const char *const *keep,
                   struct rota_jbuf *out)
{
    struct rota_json *j = rota_xl_parse(x, s);
    if (!j)
        return rota_xl_fail(x, -EINVAL, "a tool's schema is not JSON");
    int rc = schema(x, j, keep, out, 0);
    return rc ? rc : out->err;
}

/* ---- SSE ---- */

void rota_xl_sse(struct rota_jbuf *out, const char *name, const char *json, size_t n)
{
    if (name) {
        rota_jbuf_raw(out, "event: ", 7);
        rota_jbuf_rawz(out, name);
        rota_jbuf_raw(out, "\n", 1);
    }
    rota_jbuf_raw(out, "data: ", 6);
    rota_jbuf_raw(out, json, n);
    rota_jbuf_raw(out, "\n\n", 2);
}

