/*
 * formats.h - what the dispatch pool knows of the wire formats it passes through
 * (OpenAI, Anthropic, Gemini): a bounded scan of a JSON body's top-level keys, splices
 * into it, token usage from answers and stream events, SSE framing, and the error event
 * each format ends a failed stream with.
 *
 * Private to the dispatch pool. Pure functions on bytes: no sockets, no table, no
 * allocation but rota_fmt_apply's result; any thread.
 *
 * DESIGN
 * Pass-through never builds a JSON tree (DESIGN.md section 7). rota_fmt_members walks
 * one object once, skipping values it is not asked for without copying them, and gives
 * back where the asked-for values are (spans into the body). The walk is bounded: it
 * refuses nesting deeper than ROTA_FMT_DEPTH, and it validates only what it must to
 * find its way (strings, brackets), so the provider remains the judge of the rest.
 * Keys are compared after their escapes are decoded ("mod\u0065l" is "model"), and a key
 * asked for that appears twice is an error: the pool and the provider must never read
 * different values for the same key.
 *
 * Errors: 0 or -EINVAL (not an object, malformed, too deep, a duplicate).
 */
#ifndef ROTA_FORMATS_H
#define ROTA_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROTA_FMT_DEPTH 128

enum rota_fmt { ROTA_FMT_OPENAI, ROTA_FMT_ANTHROPIC, ROTA_FMT_GEMINI, ROTA_FMT_NONE };

/* The rota_target.format string of "f", and back (ROTA_FMT_NONE when unknown). */
const char *rota_fmt_name(enum rota_fmt f);
enum rota_fmt rota_fmt_parse(const char *name);

/* A value in a body: "len" bytes at "off"; len 0 = absent. */
struct rota_fmt_span {
    size_t off, len;
};

/* Find the top-level members "keys" (n of them) of the JSON object at "buf": the span
 * of each one's value into "out" (len 0 when absent). 0 or -EINVAL. */
int rota_fmt_members(const char *buf, size_t len, const char *const *keys, size_t n,
                     struct rota_fmt_span *out);

/* The plain bytes at "p" (before "end"): none is a quote, a backslash or a control
 * character. It stops at the first that is, or within a block (at most 31 bytes) of
 * the end: the caller steps over the rest byte by byte. */
size_t rota_fmt_plain_run(const char *p, const char *end);

/* What the pool reads of a request body. */
struct rota_fmt_req {
    struct rota_fmt_span model;          /* the value, quotes included */
    struct rota_fmt_span stream_options; /* its value (an object, or not), or absent */
    struct rota_fmt_span include_usage;  /* inside stream_options */
    struct rota_fmt_span sticky;         /* "user", else metadata.user_id: inside quotes */
    bool stream;                         /* "stream": true */
    bool usage_asked;                    /* stream_options.include_usage: true */
    uint64_t max_tokens; /* max_tokens, max_completion_tokens, max_output_tokens or
                            generationConfig.maxOutputTokens; 0 = not said */
};

/* Scan request body "buf" (a JSON object). 0 or -EINVAL. */
int rota_fmt_scan_request(const char *buf, size_t len, struct rota_fmt_req *r);

/* The unescaped string value at "s" (quotes included) into "out" (n bytes, NUL-ended).
 * Returns its length, or -EINVAL (not a string, or it does not fit). */
int rota_fmt_string(const char *buf, struct rota_fmt_span s, char *out, size_t n);

/* Replace "len" bytes at "off" with "text" ("tlen" bytes). */
struct rota_fmt_edit {
    size_t off, len;
    const char *text;
    size_t tlen;
};
/* "buf" with edits "e" (n, in ascending order, not overlapping) applied: a malloc'd copy
 * (NUL-terminated) and its length in "*out_len", or NULL when out of memory. */
char *rota_fmt_apply(const char *buf, size_t len, const struct rota_fmt_edit *e, size_t n,
                     size_t *out_len);

/* The body to send upstream: "buf" with the model set to "model" (for formats that
 * carry it in the body: replaced where it is, else added), and, when "ask_usage",
 * stream_options.include_usage made true. A malloc'd copy, or NULL (out of memory). */
char *rota_fmt_splice(enum rota_fmt f, const char *buf, size_t len,
                      const struct rota_fmt_req *r, const char *model, bool ask_usage,
                      size_t *out_len);

/* The same body as pieces, nothing copied: pieces of "buf" and the edits' texts, which
 * live in "*out" (so "*out" and "buf" must outlive the pieces). */
struct rota_fmt_body {
    struct rota_fmt_piece {
        const char *p;
        size_t len;
    } piece[5];
    size_t npieces, len; /* len: all the pieces' bytes */
    char model[600], usage[48];
};
void rota_fmt_splice_pieces(enum rota_fmt f, const char *buf, size_t len,
                            const struct rota_fmt_req *r, const char *model, bool ask_usage,
                            struct rota_fmt_body *out);

/* Tokens an answer says it used. Readings only grow (streams repeat or add to them). */
struct rota_fmt_usage {
    uint64_t in, out;
    bool final; /* the event that closes the count came: OpenAI's usage chunk, Anthropic's
                   message_delta, the Responses API's response.completed */
};
/* Read the usage of the JSON object at "buf" (a whole answer or one event's data) into
 * "u", keeping the larger of what it held and what this says. */
void rota_fmt_usage(const char *buf, size_t len, struct rota_fmt_usage *u);

/* Is the JSON at "buf" OpenAI's usage-only stream chunk ("choices" empty, "usage" an
 * object)? */
bool rota_fmt_usage_chunk(const char *buf, size_t len);

/* SSE: the length of the first complete event at "buf" (its blank line included), or 0
 * when it is not complete yet. */
size_t rota_fmt_sse_event(const char *buf, size_t len);
/* The same, when the first "from" bytes are known to hold no complete event: the scan
 * starts just before them (an event's end may straddle "from"). */
size_t rota_fmt_sse_event_from(const char *buf, size_t len, size_t from);
/* The payload of the first "data:" line of event "ev" (its leading space dropped) into
 * "*data" and "*dlen"; false if it has none. */
bool rota_fmt_sse_data(const char *ev, size_t len, const char **data, size_t *dlen);

/* The event that ends a failed stream in format "f", with "message", into "buf" (n
 * bytes). Returns its length. OpenAI: a data event holding {"error":...} (no [DONE]
 * follows); Anthropic: "event: error"; Gemini: a data event holding Google's error. */
size_t rota_fmt_stream_error(enum rota_fmt f, char *buf, size_t n, const char *message);

#endif
