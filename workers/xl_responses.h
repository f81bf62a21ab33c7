/*
 * xl_responses.h - what the files of the Responses module share (xl_responses.c:
 * requests read; xl_responses_write.c: requests written, answers; xl_responses_stream.c:
 * stream events). Private to those files.
 */
#ifndef ROTA_XL_RESPONSES_H
#define ROTA_XL_RESPONSES_H

#include "xl_openai.h"

/* Places beyond "input[i].content[j]": "instructions", "input" (a string), and within an
 * item (XL_AT_MSG: the item, XL_AT_CONTENT: its content, XL_AT_TOOLS | k: output[k]). */
#define XL_RS_INSTRUCTIONS 0xffffu
#define XL_RS_INPUT 0xfffeu

int rota_xl_responses_req_out(struct rota_xl *x, const struct rota_xl_req *r,
                              struct rota_jbuf *b);
int rota_xl_responses_resp_in(struct rota_xl *x, const char *body, size_t len,
                              struct rota_xl_resp *r);
int rota_xl_responses_resp_out(struct rota_xl *x, const struct rota_xl_resp *r,
                               struct rota_jbuf *b);
int rota_xl_responses_ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *name,
                            size_t nlen, const char *data, size_t dlen,
                            struct rota_xl_evs *out);
int rota_xl_responses_ev_out(struct rota_xl *x, struct rota_xl_sout *st,
                             const struct rota_xl_ev *ev, struct rota_jbuf *out);
void rota_xl_responses_ev_fail(struct rota_xl *x, struct rota_xl_sout *st,
                               const char *message, struct rota_jbuf *out);

/* Usage as the Responses API says it (input_tokens includes the cached ones,
 * output_tokens the reasoning ones: the representation's own convention). */
void rota_xl_responses_usage_in(const struct rota_json *u, struct rota_xl_usage *out);
void rota_xl_responses_usage_out(struct rota_jbuf *b, const struct rota_xl_usage *u);
/* An answer's finish from a response's status and incomplete_details; "tools": it
 * called tools. */
enum rota_xl_finish rota_xl_responses_finish_in(const struct rota_json *resp, bool tools);
/* A reasoning item's summary texts joined (or its content's, when it has no summary). */
struct rota_xl_val rota_xl_responses_summary(struct rota_xl *x, const struct rota_json *item);
/* The id of an answer as plain text in "out": "resp_" and the provider's id, or a hash of
 * "seed" when it gave none. */
void rota_xl_responses_id(struct rota_xl *x, struct rota_xl_val id, struct rota_xl_val seed,
                          char *out, size_t cap);

#endif
