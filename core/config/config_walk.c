/*
 * config_walk.c - check a libyaml document against the cyaml schema, with positions.
 *
 * DESIGN
 * libcyaml 1.3 stops at the first key or value it rejects without saying where. So before
 * libcyaml sees the file, cfg_walk visits the libyaml document (which keeps a line and
 * column for every node) along the same schema tables and reports the first unknown or
 * repeated key, missing required key, wrong type, unparsable number or bad list length,
 * at its position, and any top-level section of a feature still to come (cfg_unavailable),
 * whatever it holds. It accepts a scalar only where libcyaml reads the same value from it
 * (integers in decimal or 0x hex, numbers strtod reads whole and finite, true/false/yes/
 * no/on/off), so that a document the walk passes loads.
 *
 * The same file turns paths into positions and words: cfg_at finds the node at
 * "providers[2].accounts[1].credential", and the messages describe it as "'credential' in
 * account 'ag-2' of provider 'antigravity'", names taken from the document. Names are
 * quoted printable and short; values of strings (credentials among them) never appear.
 *
 * Aliases let a small document expand to a huge one (and libyaml lets an alias point
 * into its own anchor); the walk follows the schema, which is a finite tree, and counts
 * the values it visits, refusing a document that expands past ALIAS_RATIO times its
 * nodes or MAX_VISITS values: libcyaml allocates for every value it loads.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

#define MAX_VISITS   (1u << 21) /* values a document may have, aliases expanded */
#define MIN_VISITS   (1u << 16) /* ... whatever its aliases, when that is below ... */
#define ALIAS_RATIO  64         /* ... this many times its nodes */
#define PATH_MAX_LEN 256

/* ---- messages ---- */

static void emit(struct cfg *x, yaml_mark_t m, const char *fmt, va_list ap, char *out, size_t n)
    __attribute__((format(printf, 3, 0)));

static void emit(struct cfg *x, yaml_mark_t m, const char *fmt, va_list ap, char *out, size_t n)
{
    int k = snprintf(out, n, "%s:%zu:%zu: ", x->name, m.line + 1, m.column + 1);
    if (k >= 0 && (size_t)k < n)
        vsnprintf(out + k, n - (size_t)k, fmt, ap);
    for (char *p = out; *p; p++) /* one line, whatever a name held */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int cfg_fail(struct cfg *x, yaml_mark_t m, const char *fmt, ...)
{
    if (x->failed || !x->err || !x->errlen)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    emit(x, m, fmt, ap, x->err, x->errlen);
    va_end(ap);
    x->failed = true;
    return -EINVAL;
}

void cfg_warn(struct cfg *x, yaml_mark_t m, const char *fmt, ...)
{
    if (!x->warn)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    emit(x, m, fmt, ap, msg, sizeof(msg));
    va_end(ap);
    x->warn(x->warn_arg, msg);
}

int cfg_nomem(struct cfg *x)
{
    yaml_mark_t m = {0, 0, 0};
    cfg_fail(x, m, "out of memory; expected a smaller config");
    return -ENOMEM;
}

const char *cfg_quote(char *out, size_t n, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i < 48 && i + 4 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c >= 0x20 && c < 0x7f && c != '\'' ? (char)c : '?';
    }
    if (s && s[i] && i + 4 < n) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = 0;
    return out;
}

/* ---- paths ---- */

struct seg {
    const char *key;
    size_t klen;
    long index; /* -1: a key, no index */
};

/* Split "a[1].b.c[0]" into at most "max" segments; returns how many, or -1. */
static int split(const char *path, struct seg *s, int max)
{
    int k = 0;
    const char *p = path;
    while (*p && k < max) {
        s[k].key = p;
        while (*p && *p != '.' && *p != '[')
            p++;
        s[k].klen = (size_t)(p - s[k].key);
        s[k].index = -1;
        if (*p == '[') {
            s[k].index = strtol(p + 1, (char **)&p, 10);
            if (*p++ != ']')
                return -1;
        }
        if (*p == '.')
            p++;
        k++;
    }
    return *p ? -1 : k;
}

static bool key_is(const yaml_node_t *k, const char *s, size_t n)
{
    return k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == n &&
           memcmp(k->data.scalar.value, s, n) == 0;
}

static yaml_node_t *get(struct cfg *x, int id)
{
    return yaml_document_get_node(&x->doc, id);
}

/* The value of key "s" in mapping "m", or NULL. */
static yaml_node_t *lookup(struct cfg *x, const yaml_node_t *m, const char *s, size_t n)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
        if (key_is(get(x, p->key), s, n))
            return get(x, p->value);
    return NULL;
}

static yaml_node_t *item(struct cfg *x, const yaml_node_t *q, long i)
{
    if (!q || q->type != YAML_SEQUENCE_NODE || i < 0 ||
        i >= q->data.sequence.items.top - q->data.sequence.items.start)
        return NULL;
    return get(x, q->data.sequence.items.start[i]);
}

/* Follow "path" from the root: node[i] after segment i (NULL past the document). */
static int follow(struct cfg *x, const char *path, struct seg *s, yaml_node_t **node, int max)
{
    int k = split(path, s, max);
    yaml_node_t *n = yaml_document_get_root_node(&x->doc);
    for (int i = 0; i < k; i++) {
        n = lookup(x, n, s[i].key, s[i].klen);
        if (s[i].index >= 0)
            n = item(x, n, s[i].index);
        node[i] = n;
    }
    return k;
}

yaml_mark_t cfg_at(struct cfg *x, const char *fmt, ...)
{
    char path[PATH_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    struct seg s[16];
    yaml_node_t *node[16];
    yaml_node_t *root = yaml_document_get_root_node(&x->doc);
    yaml_mark_t m = root ? root->start_mark : (yaml_mark_t){0, 0, 0};
    int k = follow(x, path, s, node, 16);
    for (int i = 0; i < k && node[i]; i++)
        m = node[i]->start_mark;
    return m;
}

size_t cfg_map(struct cfg *x, const char *path, const yaml_node_pair_t **pairs)
{
    struct seg s[16];
    yaml_node_t *node[16] = {0};
    int k = follow(x, path, s, node, 16);
    yaml_node_t *m = k > 0 ? node[k - 1] : NULL;
    if (!m || m->type != YAML_MAPPING_NODE)
        return 0;
    *pairs = m->data.mapping.pairs.start;
    return (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
}

yaml_node_t *cfg_node(struct cfg *x, int id)
{
    return get(x, id);
}

/* Words for the node at "path": as a value ("'open_for' in breaker of provider 'x'") or
 * as a container ("breaker of provider 'x'"). An entry without a name is numbered from 0,
 * as rotactl and rota_choice.tier number tiers: "tier 0 of route 'chat'". */
static const char *describe(struct cfg *x, const char *path, bool container, char *out,
                            size_t n)
{
    struct seg s[16];
    yaml_node_t *node[16] = {0};
    int k = follow(x, path, s, node, 16);
    size_t len = 0;
    out[0] = 0;
    if (k <= 0) {
        snprintf(out, n, "%s", container ? "the top-level mapping" : "the document");
        return out;
    }
    const char *join = "";
    for (int i = k - 1; i >= 0 && len < n; i--) {
        char q[64];
        int w;
        size_t kl = s[i].klen < 40 ? s[i].klen : 40;
        if (s[i].index < 0 && i == k - 1 && !container) {
            w = snprintf(out + len, n - len, "'%.*s'", (int)kl, s[i].key);
            join = " in ";
        } else if (s[i].index < 0) {
            w = snprintf(out + len, n - len, "%s%.*s", join, (int)kl, s[i].key);
            join = " of ";
        } else if (node[i] && node[i]->type != YAML_MAPPING_NODE) {
            w = snprintf(out + len, n - len, "%sentry %ld of '%.*s'", join, s[i].index, (int)kl,
                         s[i].key);
            join = " in ";
        } else {
            size_t nl = kl && s[i].key[kl - 1] == 's' ? kl - 1 : kl;
            yaml_node_t *nm = lookup(x, node[i], "name", 4);
            if (nm && nm->type == YAML_SCALAR_NODE && nm->data.scalar.length)
                w = snprintf(out + len, n - len, "%s%.*s '%s'", join, (int)nl, s[i].key,
                             cfg_quote(q, sizeof(q), (const char *)nm->data.scalar.value));
            else
                w = snprintf(out + len, n - len, "%s%.*s %ld", join, (int)nl, s[i].key,
                             s[i].index);
            join = " of ";
        }
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return out;
}

const char *cfg_what(struct cfg *x, const char *path, char *out, size_t n)
{
    return describe(x, path, false, out, n);
}

int cfg_bad(struct cfg *x, const char *path, const char *fmt, ...)
{
    char what[320], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cfg_fail(x, cfg_at(x, "%s", path), "%s %s", cfg_what(x, path, what, sizeof(what)),
                    msg);
}

/* ---- the walk ---- */

struct walker {
    struct cfg *x;
    size_t visits, max_visits;
    char path[PATH_MAX_LEN];
    size_t plen;
};

static size_t push(struct walker *w, const char *key, long index)
{
    size_t old = w->plen;
    int k = index < 0
                ? snprintf(w->path + old, sizeof(w->path) - old, "%s%s", old ? "." : "", key)
                : snprintf(w->path + old, sizeof(w->path) - old, "[%ld]", index);
    if (k > 0 && old + (size_t)k < sizeof(w->path))
        w->plen = old + (size_t)k;
    w->path[w->plen] = 0;
    return old;
}

static void pop(struct walker *w, size_t old)
{
    w->plen = old;
    w->path[old] = 0;
}

static uint64_t uint_max(const cyaml_schema_value_t *s)
{
    return s->data_size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * s->data_size)) - 1;
}

/* What a value of schema "s" should look like, for messages. */
static const char *expect(const cyaml_schema_value_t *s, char *out, size_t n)
{
    size_t len = 0;
    switch (s->type) {
    case CYAML_MAPPING:
        return "a mapping (key: value lines or {key: value, ...})";
    case CYAML_SEQUENCE:
        return "a list (- item lines or [item, ...])";
    case CYAML_UINT:
        snprintf(out, n, "an integer from 0 to %" PRIu64, uint_max(s));
        return out;
    case CYAML_FLOAT:
        return "a number such as 0.8";
    case CYAML_BOOL:
        return "true or false";
    case CYAML_ENUM:
        len = (size_t)snprintf(out, n, "one of:");
        for (uint32_t i = 0; i < s->enumeration.count && len < n; i++)
            len += (size_t)snprintf(out + len, n - len, "%s %s", i ? "," : "",
                                    s->enumeration.strings[i].str);
        return out;
    case CYAML_IGNORE: /* the keys the schema leaves to the resolve steps */
        return "a mapping of names to strings (name: value lines or {name: value, ...})";
    case CYAML_STRING:
        if (s->string.max != CYAML_UNLIMITED)
            snprintf(out, n, "a string of %u to %u bytes", s->string.min, s->string.max);
        else
            snprintf(out, n, "a non-empty string");
        return out;
    default:
        return "something else"; /* the schema uses no other type */
    }
}

static const char *node_kind(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    return n->data.scalar.length ? "a string" : "empty";
}

static int wrong(struct walker *w, const cyaml_schema_value_t *s, const yaml_node_t *n,
                 const char *what_is)
{
    char e[256];
    return cfg_bad(w->x, w->path, "is %s; expected %s", what_is ? what_is : node_kind(n),
                   expect(s, e, sizeof(e)));
}

/* Decimal without leading zeros, or 0x hex; what strtoull(.., 0) reads the same way. */
static bool parse_uint(const char *v, size_t len, uint64_t *out)
{
    uint64_t r = 0;
    size_t i = 0;
    unsigned base = 10;
    if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        base = 16;
        i = 2;
    } else if (len == 0 || (len > 1 && v[0] == '0')) {
        return false;
    }
    for (; i < len; i++) {
        unsigned d;
        char c = v[i];
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return false;
        if (r > (UINT64_MAX - d) / base)
            return false;
        r = r * base + d;
    }
    *out = r;
    return true;
}

static int walk_scalar(struct walker *w, const cyaml_schema_value_t *s, const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (memchr(v, 0, len))
        return wrong(w, s, n, "text with a NUL character");
    switch (s->type) {
    case CYAML_UINT: {
        uint64_t u;
        if (!parse_uint(v, len, &u))
            return wrong(w, s, n, len ? "not an integer" : NULL);
        if (u > uint_max(s))
            return wrong(w, s, n, "too large");
        return 0;
    }
    case CYAML_FLOAT: {
        char *end;
        if (!len ||
            !(v[0] == '-' || v[0] == '+' || v[0] == '.' || (v[0] >= '0' && v[0] <= '9')))
            return wrong(w, s, n, len ? "not a number" : NULL);
        double d = strtod(v, &end);
        if (end != v + len || !isfinite(d))
            return wrong(w, s, n, "not a number");
        return 0;
    }
    case CYAML_BOOL: {
        static const char *const words[] = {"true", "false", "yes", "no", "on", "off"};
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strcasecmp(v, words[i]) == 0)
                return 0;
        return wrong(w, s, n, len ? "not true or false" : NULL);
    }
    case CYAML_ENUM: {
        char q[64];
        for (uint32_t i = 0; i < s->enumeration.count; i++)
            if (strcmp(v, s->enumeration.strings[i].str) == 0)
                return 0;
        char what[80];
        snprintf(what, sizeof(what), "'%s', unknown", cfg_quote(q, sizeof(q), v));
        return wrong(w, s, n, len ? what : NULL);
    }
    case CYAML_STRING:
        if (len < s->string.min || len > s->string.max) {
            char what[64];
            snprintf(what, sizeof(what), "%zu bytes long", len);
            return wrong(w, s, n, len ? what : NULL);
        }
        return 0;
    default:
        return wrong(w, s, n, NULL);
    }
}

static int walk(struct walker *w, const cyaml_schema_value_t *s, const yaml_node_t *n);

static int walk_mapping(struct walker *w, const cyaml_schema_value_t *s, const yaml_node_t *n)
{
    const cyaml_schema_field_t *f = s->mapping.fields;
    uint64_t seen = 0;
    char where[320], q[64];
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = get(w->x, p->key), *v = get(w->x, p->value);
        if (!k || !v)
            return cfg_bad(w->x, w->path, "is damaged; expected a mapping");
        if (k->type != YAML_SCALAR_NODE)
            return cfg_fail(w->x, k->start_mark, "a key in %s is %s; expected a plain key",
                            describe(w->x, w->path, true, where, sizeof(where)), node_kind(k));
        unsigned i = 0;
        while (f[i].key && !key_is(k, f[i].key, strlen(f[i].key)))
            i++;
        if (!f[i].key && w->plen == 0)
            for (const struct cfg_unavailable *u = cfg_unavailable; u->key; u++)
                if (key_is(k, u->key, strlen(u->key)))
                    return cfg_fail(w->x, k->start_mark,
                                    "'%s' is not available in this version of rota (%s); "
                                    "expected no %s section: remove it",
                                    u->key, u->why, u->key);
        if (!f[i].key) {
            char keys[400];
            size_t len = 0;
            keys[0] = 0;
            for (unsigned j = 0; f[j].key && len < sizeof(keys); j++)
                len += (size_t)snprintf(keys + len, sizeof(keys) - len, "%s%s", j ? ", " : "",
                                        f[j].key);
            return cfg_fail(w->x, k->start_mark, "unknown key '%s' in %s; expected one of: %s",
                            cfg_quote(q, sizeof(q), (const char *)k->data.scalar.value),
                            describe(w->x, w->path, true, where, sizeof(where)), keys);
        }
        if (seen & (UINT64_C(1) << i))
            return cfg_fail(w->x, k->start_mark, "key '%s' repeated in %s; expected it once",
                            f[i].key, describe(w->x, w->path, true, where, sizeof(where)));
        seen |= UINT64_C(1) << i;
        size_t old = push(w, f[i].key, -1);
        int rc = walk(w, &f[i].value, v);
        pop(w, old);
        if (rc)
            return rc;
    }
    for (unsigned i = 0; f[i].key; i++)
        if (!(f[i].value.flags & CYAML_FLAG_OPTIONAL) && !(seen & (UINT64_C(1) << i))) {
            char e[256];
            return cfg_fail(w->x, n->start_mark, "missing key '%s' in %s; expected %s: %s",
                            f[i].key, describe(w->x, w->path, true, where, sizeof(where)),
                            f[i].key, expect(&f[i].value, e, sizeof(e)));
        }
    return 0;
}

static int walk_sequence(struct walker *w, const cyaml_schema_value_t *s, const yaml_node_t *n)
{
    long count = n->data.sequence.items.top - n->data.sequence.items.start;
    if ((uint64_t)count < s->sequence.min)
        return cfg_bad(w->x, w->path, "has %ld entries; expected at least %u", count,
                       s->sequence.min);
    if (s->sequence.max != CYAML_UNLIMITED && (uint64_t)count > s->sequence.max) {
        char what[320];
        yaml_node_t *extra = item(w->x, n, (long)s->sequence.max);
        return cfg_fail(w->x, extra ? extra->start_mark : n->start_mark,
                        "%s has %ld entries; expected at most %u",
                        cfg_what(w->x, w->path, what, sizeof(what)), count, s->sequence.max);
    }
    for (long i = 0; i < count; i++) {
        size_t old = push(w, "", i);
        int rc = walk(w, s->sequence.entry, item(w->x, n, i));
        pop(w, old);
        if (rc)
            return rc;
    }
    return 0;
}

/* A mapping of names to strings, each name once (a provider's headers, a tier's models). */
static int walk_names(struct walker *w, const cyaml_schema_value_t *s, const yaml_node_t *n)
{
    char where[320], q[64];
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = get(w->x, p->key), *v = get(w->x, p->value);
        if (!k || !v)
            return cfg_bad(w->x, w->path, "is damaged; expected a mapping");
        if (++w->visits > w->max_visits)
            return cfg_fail(w->x, k->start_mark,
                            "the document expands to more than %zu values (aliases?); "
                            "expected a smaller document",
                            w->max_visits);
        if (k->type != YAML_SCALAR_NODE || !k->data.scalar.length ||
            memchr(k->data.scalar.value, 0, k->data.scalar.length))
            return cfg_fail(w->x, k->start_mark, "a key in %s is %s; expected %s",
                            describe(w->x, w->path, true, where, sizeof(where)),
                            k->type == YAML_SCALAR_NODE && k->data.scalar.length
                                ? "text with a NUL character"
                                : node_kind(k),
                            expect(s, q, sizeof(q)));
        if (v->type != YAML_SCALAR_NODE || !v->data.scalar.length ||
            memchr(v->data.scalar.value, 0, v->data.scalar.length))
            return cfg_fail(w->x, v->start_mark,
                            "'%s' in %s is %s; expected a non-empty string",
                            cfg_quote(q, sizeof(q), (const char *)k->data.scalar.value),
                            describe(w->x, w->path, true, where, sizeof(where)),
                            v->type == YAML_SCALAR_NODE && v->data.scalar.length
                                ? "text with a NUL character"
                                : node_kind(v));
        for (yaml_node_pair_t *o = n->data.mapping.pairs.start; o < p; o++)
            if (key_is(get(w->x, o->key), (const char *)k->data.scalar.value,
                       k->data.scalar.length))
                return cfg_fail(w->x, k->start_mark,
                                "key '%s' repeated in %s; expected it once",
                                cfg_quote(q, sizeof(q), (const char *)k->data.scalar.value),
                                describe(w->x, w->path, true, where, sizeof(where)));
    }
    return 0;
}

static int walk(struct walker *w, const cyaml_schema_value_t *s, const yaml_node_t *n)
{
    if (!n)
        return cfg_bad(w->x, w->path, "is damaged; expected a value");
    if (++w->visits > w->max_visits)
        return cfg_fail(w->x, n->start_mark,
                        "the document expands to more than %zu values (aliases?); expected a "
                        "smaller document",
                        w->max_visits);
    switch (s->type) {
    case CYAML_MAPPING:
        return n->type == YAML_MAPPING_NODE ? walk_mapping(w, s, n) : wrong(w, s, n, NULL);
    case CYAML_SEQUENCE:
        return n->type == YAML_SEQUENCE_NODE ? walk_sequence(w, s, n) : wrong(w, s, n, NULL);
    case CYAML_IGNORE:
        return n->type == YAML_MAPPING_NODE ? walk_names(w, s, n) : wrong(w, s, n, NULL);
    default:
        return n->type == YAML_SCALAR_NODE ? walk_scalar(w, s, n) : wrong(w, s, n, NULL);
    }
}

int cfg_walk(struct cfg *x)
{
    size_t nodes = (size_t)(x->doc.nodes.top - x->doc.nodes.start);
    struct walker w = {.x = x, .max_visits = nodes * ALIAS_RATIO};
    if (w.max_visits < MIN_VISITS)
        w.max_visits = MIN_VISITS;
    if (w.max_visits > MAX_VISITS)
        w.max_visits = MAX_VISITS;
    return walk(&w, &cfg_schema, yaml_document_get_root_node(&x->doc));
}
