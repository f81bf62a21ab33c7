/*
 * xl_openai.h - what the files of the chat completions module share (xl_openai.c:
 * requests and answers; xl_openai_stream.c: stream events), and what the Responses
 * module borrows from it. Private to those files.
 */
#ifndef ROTA_XL_OPENAI_H
#define ROTA_XL_OPENAI_H

#include "xlate.h"

/* Where a part was in the client's request, beyond "messages[i].content[j]" (j below
 * XL_AT_DETAILS): the whole content string, the message itself, its reasoning_content,
 * its tool_calls[k] and reasoning_details[k]. */
#define XL_AT_CONTENT 0xfffeu
#define XL_AT_MSG 0xffffu
#define XL_AT_REASONING 0xfffdu
#define XL_AT_TOOLS 0x8000u
#define XL_AT_DETAILS 0x4000u
#define XL_AT_INDEX 0x3fffu

/* Is "sig" (a string value) reasoning state OpenAI made (a Fernet token, "gAAAAA...")?
 * Only a Responses provider takes it back; no chat completions target can. */
static inline bool rota_xl_openai_state(struct rota_xl_val sig)
{
    return sig.len >= 8 && __builtin_memcmp(sig.p, "\"gAAAAA", 7) == 0;
}

/* A finish reason's value ("stop", "length", "tool_calls", "content_filter", ...). */
enum rota_xl_finish rota_xl_openai_finish_in(const struct rota_json *v);
/* The name of "f" for a client; "tools": the answer holds tool calls (Gemini says STOP
 * after a function call, an OpenAI client expects "tool_calls"). */
const char *rota_xl_openai_finish_name(enum rota_xl_finish f, bool tools);
/* Usage: prompt_tokens, completion_tokens and their details, in and out. */
void rota_xl_openai_usage_in(const struct rota_json *u, struct rota_xl_usage *out);
void rota_xl_openai_usage_out(struct rota_jbuf *b, const struct rota_xl_usage *u);
/* Usage read "u" into what a stream's out function holds "to": readings only grow, so
 * each count is the larger of the two (a reading that leaves one out keeps it). */
static inline void rota_xl_openai_usage_add(struct rota_xl_usage *to, const struct rota_xl_usage *u)
{
    to->in = u->in > to->in ? u->in : to->in;
    to->out = u->out > to->out ? u->out : to->out;
    to->cached = u->cached > to->cached ? u->cached : to->cached;
    to->reasoning = u->reasoning > to->reasoning ? u->reasoning : to->reasoning;
    to->seen |= u->seen;
}
/* The inner bytes of string value "v" (between its quotes), written as they are. */
void rota_xl_openai_inner(struct rota_jbuf *b, struct rota_xl_val v);

/* An assistant message's members, read into "msg" (parts in the arena): message "i" of
 * a request, or an answer's ("answer": names not known in a tool call are passed over). */
struct rota_xl_openai_amsg {
    const struct rota_json *content, *tool_calls, *reasoning, *details, *refusal;
};
int rota_xl_openai_assistant_in(struct rota_xl *x, const struct rota_xl_openai_amsg *a,
                                unsigned i, bool answer, struct rota_xl_msg *msg);

/* An image's URL "u" (a string) into "p": a data: URL with base64 becomes mime and
 * data (so a target that takes only base64 gets it), any other stays a url. -EINVAL for
 * a data: URL whose type is not an image's, -ENOMEM. */
int rota_xl_openai_image_url(struct rota_xl *x, const struct rota_json *u,
                             struct rota_xl_part *p);

/* The module's functions, by file: xl_openai_write.c, xl_openai_answer.c,
 * xl_openai_stream.c. */
int rota_xl_openai_req_out(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *b);
/* An assistant's text, reasoning (reasoning_content, and reasoning_details when a
 * signature or redacted thinking must come back) and tool calls as one message object;
 * requests and answers write it alike, but a request ("request") leaves out the state
 * only OpenAI's Responses can take. */
int rota_xl_openai_assistant(struct rota_xl *x, const struct rota_xl_part *part, uint32_t n,
                             bool request, struct rota_jbuf *b);
int rota_xl_openai_resp_in(struct rota_xl *x, const char *body, size_t len,
                           struct rota_xl_resp *r);
int rota_xl_openai_resp_out(struct rota_xl *x, const struct rota_xl_resp *r,
                            struct rota_jbuf *b);
int rota_xl_openai_ev_in(struct rota_xl *x, struct rota_xl_sin *st, const char *name,
                         size_t nlen, const char *data, size_t dlen, struct rota_xl_evs *out);
int rota_xl_openai_ev_out(struct rota_xl *x, struct rota_xl_sout *st,
                          const struct rota_xl_ev *ev, struct rota_jbuf *out);
void rota_xl_openai_ev_fail(struct rota_xl *x, struct rota_xl_sout *st, const char *message,
                            struct rota_jbuf *out);

#endif
