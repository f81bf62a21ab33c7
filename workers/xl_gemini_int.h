/*
 * xl_gemini_int.h - what Gemini's generateContent module (xl_gemini*.c) and Google's
 * Code Assist envelope around it (xl_code_assist.c) share. Private to the two.
 *
 * DESIGN
 * Code Assist carries a Gemini request inside {"model","project","request": {...}} and
 * each answer or stream event inside {"response": {...}}. So every Gemini function here
 * works on the inner object (a parsed node to read, a jbuf to write at the place of a
 * value) and the envelope only opens and closes what is around it. "ca" says the body
 * is Code Assist's: paths in messages start with "request." or "response.", and stream
 * events are wrapped.
 */
#ifndef ROTA_XL_GEMINI_INT_H
#define ROTA_XL_GEMINI_INT_H

#include "xlate.h"

/* A constant key written as one copy (rota_jbuf_key escapes and copies in four steps):
 * XK(b, "text") writes "text": with its comma; XS(b, "model") a constant string. */
static inline void rota_xlg_lit_key(struct rota_jbuf *b, const char *lit, size_t n)
{
    rota_jbuf_json(b, lit, n);
    b->after_key = true;
}
#define XK(b, s) rota_xlg_lit_key((b), "\"" s "\":", sizeof("\"" s "\":") - 1)
#define XS(b, s) rota_jbuf_json((b), "\"" s "\"", sizeof("\"" s "\"") - 1)

/* at_msg of a systemInstruction part (where() names it so) */
#define ROTA_XLG_SYSTEM 0xffffu

/* Parse "body" as a JSON object ("what" names it in the error). */
struct rota_json *rota_xlg_parse(struct rota_xl *x, const char *body, size_t len,
                                 const char *what);
/* Is member "m"'s key "name" (lowerCamelCase), written so or in snake_case as the
 * protobuf JSON mapping Google's APIs read also accepts ("system_instruction")? */
bool rota_xlg_key(struct rota_xl *x, const struct rota_json *m, const char *name);
/* The index of "m"'s key in "names" (NULL-ended), or -1. */
int rota_xlg_key_of(struct rota_xl *x, const struct rota_json *m, const char *const *names);

/* The request object "o" (Code Assist's inner "request" when "ca") into "r". */
int rota_xlg_req_in(struct rota_xl *x, const struct rota_json *o, struct rota_xl_req *r,
                    bool ca);
/* "r" as a Gemini request object, written at the place of a value in "out". */
int rota_xlg_req_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out);

/* An answer object (Code Assist's inner "response") into "r". */
int rota_xlg_resp_in(struct rota_xl *x, const struct rota_json *o, struct rota_xl_resp *r,
                     bool ca);
/* "r" as a Gemini answer object, at the place of a value in "out". */
void rota_xlg_resp_out(struct rota_xl *x, const struct rota_xl_resp *r,
                       struct rota_jbuf *out);

/* One stream event's data (Code Assist's unwrapped by the caller when "ca"). */
int rota_xlg_ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *data, size_t dlen,
                   struct rota_xl_evs *out, bool ca);
int rota_xlg_ev_out(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                    struct rota_jbuf *out, bool ca);
void rota_xlg_ev_fail(struct rota_xl *x, struct rota_xl_sout *st, const char *message,
                      struct rota_jbuf *out);

/* Gemini's finishReason and usageMetadata, both ways. */
enum rota_xl_finish rota_xlg_finish_in(const struct rota_json *v);
const char *rota_xlg_finish_out(enum rota_xl_finish f);
bool rota_xlg_usage_in(const struct rota_json *u, struct rota_xl_usage *out);
void rota_xlg_usage_out(const struct rota_xl_usage *u, struct rota_jbuf *out);

/* A JSON Schema (the representation's) from Gemini's OpenAPI subset: upper-case types
 * made lower-case, "nullable" made a type array. The schema itself when nothing needs
 * it. */
int rota_xlg_schema_in(struct rota_xl *x, struct rota_xl_val s, struct rota_xl_val *out);
/* Add keyword "k" ("n" bytes) to x->dropped (once). */
void rota_xlg_dropped(struct rota_xl *x, const char *k, size_t n);

#endif
