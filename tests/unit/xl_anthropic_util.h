/* xl_anthropic_util.h - what test_xl_anthropic and test_xl_anthropic_stream share: a
 * translation's context, and checks of its output. */
#ifndef XL_ANTHROPIC_UTIL_H
#define XL_ANTHROPIC_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xlate.h"

struct ctx {
    struct rota_arena a;
    struct rota_xl x;
    struct rota_jbuf out;
};

static inline const struct rota_xl_format *fmt(enum rota_xl_fmt f)
{
    return f == ROTA_XL_ANTHROPIC ? &rota_xl_anthropic
           : f == ROTA_XL_CODE_ASSIST ? &rota_xl_code_assist
                                      : &rota_xl_gemini;
}

static inline void setup(struct ctx *c, enum rota_xl_fmt from, enum rota_xl_fmt to)
{
    memset(c, 0, sizeof(*c));
    rota_arena_init(&c->a, 64u << 20);
    c->x = (struct rota_xl){.a = &c->a, .from = from, .to = to, .now_s = 1700000000};
    c->x.where = fmt(from)->where;
    rota_jbuf_init(&c->out, 0);
}

static inline void teardown(struct ctx *c)
{
    rota_jbuf_free(&c->out);
    rota_arena_free(&c->a);
}

/* As the driver reads: req_in, then each result tied to its call. */
static inline int read_req(struct ctx *c, const char *body, size_t n, struct rota_xl_req *r)
{
    memset(r, 0, sizeof(*r));
    r->parallel_tools = -1;
    r->thinking = -1;
    c->x.err[0] = 0;
    int rc = fmt(c->x.from)->req_in(&c->x, body, n, r);
    if (!rc)
        rc = rota_xl_link(&c->x, r, false);
    if (!rc)
        c->x.req = r;
    return rc;
}

/* As the driver writes (names required for Gemini), then req_out. */
static inline int write_req(struct ctx *c, const struct rota_xl_req *r)
{
    c->x.dropped[0] = 0;
    rota_jbuf_reset(&c->out);
    int rc = c->x.to == ROTA_XL_ANTHROPIC ? 0 : rota_xl_link(&c->x, (struct rota_xl_req *)r, true);
    return rc ? rc : fmt(c->x.to)->req_out(&c->x, r, &c->out);
}

static inline void assert_out(struct ctx *c, const char *want)
{
    if (c->out.len != strlen(want) || memcmp(c->out.p, want, c->out.len) != 0)
        fail_msg("output differs:\n got %.*s\nwant %s", (int)c->out.len, c->out.p, want);
}

static inline bool val_is(struct rota_xl_val v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}
#define assert_val(v, s)                                                                  \
    do {                                                                                  \
        if (!val_is((v), (s)))                                                            \
            fail_msg("%s is %.*s, not %s", #v, (int)(v).len, (v).p ? (v).p : "", (s));    \
    } while (0)

#define V(s) ((struct rota_xl_val){s, sizeof(s) - 1})

#endif
