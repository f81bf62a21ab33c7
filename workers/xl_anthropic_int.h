/*
 * xl_anthropic_int.h - what the Anthropic messages module's files share. Private to
 * them; the module itself is rota_xl_anthropic (xlate.h).
 *
 * DESIGN
 * xl_anthropic.c reads requests and has the module's table; xl_anthropic_out.c writes
 * requests and reads and writes whole answers; xl_anthropic_stream.c reads and writes
 * the SSE stream. Constant keys and strings are written in one copy (XAK, XAS).
 */
#ifndef ROTA_XL_ANTHROPIC_INT_H
#define ROTA_XL_ANTHROPIC_INT_H

#include <string.h>

#include "xlate.h"

static inline void rota_xla_lit_key(struct rota_jbuf *b, const char *lit, size_t n)
{
    rota_jbuf_json(b, lit, n);
    b->after_key = true;
}
/* XAK(b, "text") writes "text": with the comma due; XAS(b, "user") a constant string;
 * XAJ(b, "{}") constant JSON text. */
#define XAK(b, s) rota_xla_lit_key((b), "\"" s "\":", sizeof("\"" s "\":") - 1)
#define XAS(b, s) rota_jbuf_json((b), "\"" s "\"", sizeof("\"" s "\"") - 1)
#define XAJ(b, s) rota_jbuf_json((b), s, sizeof(s) - 1)

/* at_msg of a system part; at_part of a content given as one string. */
#define ROTA_XLA_SYSTEM 0xffffu
#define ROTA_XLA_WHOLE 0xffffu

/* Is member "m"'s key "k" ("n" bytes), compared as written (decoded only when the key
 * holds an escape)? */
static inline bool rota_xla_key(const struct rota_json *m, const char *k, size_t n)
{
    if (!m->kescaped)
        return m->klen == n + 2 && memcmp(m->key + 1, k, n) == 0;
    return rota_json_key_is(m, k);
}
#define XA_KEY(m, k) rota_xla_key((m), (k), sizeof(k) - 1)

/* Is string value "v" the constant "s" (compared as written, decoded when escaped)? */
static inline bool rota_xla_is(const struct rota_json *v, const char *s, size_t n)
{
    if (!v || v->type != ROTA_JSON_STRING)
        return false;
    if (!v->escaped)
        return v->len == n + 2 && memcmp(v->p + 1, s, n) == 0;
    return rota_json_is(v, s);
}
#define XA_IS(v, s) rota_xla_is((v), (s), sizeof(s) - 1)

/* Parse "body" as a JSON object ("what" names it in the error). */
struct rota_json *rota_xla_parse(struct rota_xl *x, const char *body, size_t len,
                                 const char *what);
/* Anthropic's stop_reason (a string, or null/absent: NONE) as a finish. */
enum rota_xl_finish rota_xla_finish_in(const struct rota_json *v);
/* The stop_reason of finish "f", for an answer with tool calls or not, a stop sequence
 * met or not. */
const char *rota_xla_finish_name(enum rota_xl_finish f, bool tools, bool stop_seq);
/* Anthropic's usage object "o" into "u" (members absent leave "u"'s as they were):
 * in = input + cache reads + cache writes, cached = cache reads. */
void rota_xla_usage_in(const struct rota_json *o, struct rota_xl_usage *u);
/* "usage":{...} of "u" in Anthropic's convention. */
void rota_xla_usage_out(struct rota_jbuf *b, const struct rota_xl_usage *u);

int rota_xla_req_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out);
int rota_xla_resp_in(struct rota_xl *x, const char *body, size_t len,
                     struct rota_xl_resp *r);
int rota_xla_resp_out(struct rota_xl *x, const struct rota_xl_resp *r,
                      struct rota_jbuf *out);
int rota_xla_ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *name, size_t nlen,
                   const char *data, size_t dlen, struct rota_xl_evs *out);
int rota_xla_ev_out(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                    struct rota_jbuf *out);
void rota_xla_ev_fail(struct rota_xl *x, struct rota_xl_sout *st, const char *message,
                      struct rota_jbuf *out);

#endif
