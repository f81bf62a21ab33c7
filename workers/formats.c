/*
 * formats.c - per wire format: the model spliced into a request, the usage read from an
 * answer or a stream event, SSE framing, and a failed stream's closing error event
 * (formats.h says what and why).
 *
 * DESIGN
 * Pure functions on bytes, built on the bounded scan of formats_scan.c; any thread.
 * Usage is read from wherever each format puts it: "usage" (OpenAI chat, completions,
 * embeddings and Responses; Anthropic's message_delta), "message.usage" (Anthropic's
 * message_start), "response.usage" (the Responses API's events) and "usageMetadata"
 * (Gemini). Counts only grow: an Anthropic stream says its input in message_start and
 * its output in message_delta, Gemini repeats running totals in every chunk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"
#include "front.h"

static const char *const names[] = {[ROTA_FMT_OPENAI] = "openai",
                                    [ROTA_FMT_ANTHROPIC] = "anthropic",
                                    [ROTA_FMT_GEMINI] = "gemini"};

const char *rota_fmt_name(enum rota_fmt f)
{
    return f < ROTA_FMT_NONE ? names[f] : "none";
}

enum rota_fmt rota_fmt_parse(const char *name)
{
    for (int f = 0; f < ROTA_FMT_NONE; f++)
        if (strcmp(name, names[f]) == 0)
            return (enum rota_fmt)f;
    return ROTA_FMT_NONE;
}

/* ---- the request ---- */

/* Where an object's first member goes: right after its "{" (and its whitespace), with
 * a comma after the inserted member unless the object is empty. */
static size_t first_slot(const char *buf, size_t off, size_t len, bool *empty)
{
    while (off < len && buf[off] != '{') /* the whitespace before a body's object */
        off++;
    size_t at = off + 1;
    while (at < off + len && strchr(" \t\r\n", buf[at]))
        at++;
    *empty = at < off + len && buf[at] == '}';
    return off + 1;
}

void rota_fmt_splice_pieces(enum rota_fmt f, const char *buf, size_t len,
                            const struct rota_fmt_req *r, const char *model, bool ask_usage,
                            struct rota_fmt_body *out)
{
    struct rota_fmt_edit e[2];
    size_t n = 0;
    char esc[520];
    char *m = out->model, *tail = out->usage;
    esc[rota_json_escape(esc, sizeof(esc) - 1, model)] = 0;
    bool empty;
    if (f != ROTA_FMT_GEMINI && r->model.len) {
        snprintf(m, sizeof(out->model), "\"%s\"", esc);
        e[n++] = (struct rota_fmt_edit){r->model.off, r->model.len, m, strlen(m)};
    } else if (f != ROTA_FMT_GEMINI) {
        size_t at = first_slot(buf, 0, len, &empty);
        snprintf(m, sizeof(out->model), "\"model\":\"%s\"%s", esc, empty ? "" : ",");
        e[n++] = (struct rota_fmt_edit){at, 0, m, strlen(m)};
    }
    static const char opts[] = "\"stream_options\":{\"include_usage\":true}";
    static const char inc[] = "\"include_usage\":true";
    _Static_assert(sizeof(opts) + 1 <= sizeof(out->usage), "room for the usage text");
    struct rota_fmt_edit u = {0};
    bool want = ask_usage && !r->usage_asked;
    if (want && r->include_usage.len) {
        u = (struct rota_fmt_edit){r->include_usage.off, r->include_usage.len, "true", 4};
    } else if (want && r->stream_options.len && buf[r->stream_options.off] != '{') {
        u = (struct rota_fmt_edit){r->stream_options.off, r->stream_options.len,
                                   "{\"include_usage\":true}", 22};
    } else if (want && r->stream_options.len) {
        size_t at = first_slot(buf, r->stream_options.off, r->stream_options.len, &empty);
        snprintf(tail, sizeof(out->usage), "%s%s", inc, empty ? "" : ",");
        u = (struct rota_fmt_edit){at, 0, tail, strlen(tail)};
    } else if (want) { /* a new member, before the object's closing brace */
        size_t at = len;
        while (at > 0 && buf[at - 1] != '}')
            at--;
        first_slot(buf, 0, len, &empty);
        bool lone = empty && !(f != ROTA_FMT_GEMINI && !r->model.len); /* nothing before */
        snprintf(tail, sizeof(out->usage), "%s%s", lone ? "" : ",", opts);
        u = (struct rota_fmt_edit){at ? at - 1 : 0, 0, tail, strlen(tail)};
    }
    if (u.text) { /* keep the edits in order */
        if (n && u.off < e[0].off) {
            e[1] = e[0];
            e[0] = u;
        } else {
            e[n] = u;
        }
        n++;
    }
    size_t from = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        out->piece[k++] = (struct rota_fmt_piece){buf + from, e[i].off - from};
        out->piece[k++] = (struct rota_fmt_piece){e[i].text, e[i].tlen};
        from = e[i].off + e[i].len;
    }
    out->piece[k++] = (struct rota_fmt_piece){buf + from, len - from};
    out->npieces = k;
    out->len = 0;
    for (size_t i = 0; i < k; i++)
        out->len += out->piece[i].len;
}

char *rota_fmt_splice(enum rota_fmt f, const char *buf, size_t len,
                      const struct rota_fmt_req *r, const char *model, bool ask_usage,
                      size_t *out_len)
{
    struct rota_fmt_body *b = malloc(sizeof(*b));
    char *out = b ? malloc(len + sizeof(b->model) + sizeof(b->usage) + 1) : NULL;
    if (out) {
        rota_fmt_splice_pieces(f, buf, len, r, model, ask_usage, b);
        size_t at = 0;
        for (size_t i = 0; i < b->npieces; i++) {
            memcpy(out + at, b->piece[i].p, b->piece[i].len);
            at += b->piece[i].len;
        }
        out[at] = 0;
        *out_len = at;
    }
    free(b);
    return out;
}

/* ---- usage ---- */

static uint64_t num(const char *buf, struct rota_fmt_span s)
{
    uint64_t v = 0;
    for (size_t i = 0; i < s.len && i < 19 && buf[s.off + i] >= '0' && buf[s.off + i] <= '9';
         i++)
        v = v * 10 + (uint64_t)(buf[s.off + i] - '0');
    return v;
}

/* Read the counts of usage object "s" into "u". */
static void counts(const char *buf, struct rota_fmt_span s, struct rota_fmt_usage *u)
{
    enum { PT, CT, IT, OT, PTC, CTC, TTC, CCI, CRI, N };
    static const char *const keys[N] = {"prompt_tokens",          "completion_tokens",
                                        "input_tokens",           "output_tokens",
                                        "promptTokenCount",       "candidatesTokenCount",
                                        "thoughtsTokenCount",     "cache_creation_input_tokens",
                                        "cache_read_input_tokens"};
    struct rota_fmt_span v[N];
    if (rota_fmt_members(buf + s.off, s.len, keys, N, v))
        return;
    for (int i = 0; i < N; i++)
        v[i].off += s.off;
    uint64_t in = num(buf, v[PT]) + num(buf, v[IT]) + num(buf, v[PTC]) + num(buf, v[CCI]) +
                  num(buf, v[CRI]);
    uint64_t out = num(buf, v[CT]) + num(buf, v[OT]) + num(buf, v[CTC]) + num(buf, v[TTC]);
    u->in = in > u->in ? in : u->in;
    u->out = out > u->out ? out : u->out;
}

static bool object(const char *buf, struct rota_fmt_span s)
{
    return s.len >= 2 && buf[s.off] == '{';
}

void rota_fmt_usage(const char *buf, size_t len, struct rota_fmt_usage *u)
{
    enum { USAGE, META, MESSAGE, RESPONSE, TYPE, N };
    static const char *const keys[N] = {"usage", "usageMetadata", "message", "response",
                                        "type"};
    static const char *const inner[1] = {"usage"};
    struct rota_fmt_span v[N], w;
    if (rota_fmt_members(buf, len, keys, N, v))
        return;
    if (object(buf, v[USAGE])) {
        counts(buf, v[USAGE], u);
        u->final = true; /* OpenAI's usage chunk, Anthropic's message_delta, an answer */
    }
    if (object(buf, v[META]))
        counts(buf, v[META], u);
    for (int k = MESSAGE; k <= RESPONSE; k++) {
        if (!object(buf, v[k]) || rota_fmt_members(buf + v[k].off, v[k].len, inner, 1, &w) ||
            !object(buf + v[k].off, w))
            continue;
        w.off += v[k].off;
        counts(buf, w, u);
        u->final |= k == RESPONSE; /* response.completed (earlier ones carry null) */
    }
}

bool rota_fmt_usage_chunk(const char *buf, size_t len)
{
    static const char *const keys[2] = {"choices", "usage"};
    struct rota_fmt_span v[2];
    if (rota_fmt_members(buf, len, keys, 2, v) || !object(buf, v[1]) || v[0].len < 2 ||
        buf[v[0].off] != '[')
        return false;
    for (size_t i = v[0].off + 1; i < v[0].off + v[0].len; i++)
        if (!strchr(" \t\r\n]", buf[i]))
            return false;
    return true;
}

/* ---- SSE ---- */

size_t rota_fmt_sse_event(const char *buf, size_t len)
{
    return rota_fmt_sse_event_from(buf, len, 0);
}

size_t rota_fmt_sse_event_from(const char *buf, size_t len, size_t from)
{
    for (size_t i = from > 2 ? from - 2 : 0; i + 1 < len; i++) {
        const char *nl = memchr(buf + i, '\n', len - 1 - i);
        if (!nl)
            break;
        i = (size_t)(nl - buf);
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

bool rota_fmt_sse_data(const char *ev, size_t len, const char **data, size_t *dlen)
{
    for (size_t i = 0; i < len;) {
        size_t k = i;
        while (k < len && ev[k] != '\n')
            k++;
        size_t end = k > i && ev[k - 1] == '\r' ? k - 1 : k;
        if (end - i >= 5 && memcmp(ev + i, "data:", 5) == 0) {
            size_t s = i + 5 + (end > i + 5 && ev[i + 5] == ' ');
            *data = ev + s;
            *dlen = end - s;
            return true;
        }
        i = k + 1;
    }
    return false;
}

size_t rota_fmt_stream_error(enum rota_fmt f, char *buf, size_t n, const char *message)
{
    char esc[512];
    esc[rota_json_escape(esc, sizeof(esc) - 1, message)] = 0;
    int k;
    if (f == ROTA_FMT_ANTHROPIC)
        k = snprintf(
            buf, n,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
            "\"message\":\"%s\"}}\n\n",
            esc);
    else if (f == ROTA_FMT_GEMINI)
        k = snprintf(buf, n,
                     "data: {\"error\":{\"code\":502,\"message\":\"%s\",\"status\":"
                     "\"UNAVAILABLE\"}}\n\n",
                     esc);
    else
        k = snprintf(buf, n,
                     "data: {\"error\":{\"message\":\"%s\",\"type\":\"upstream_error\","
                     "\"param\":null,\"code\":\"stream_interrupted\"}}\n\n",
                     esc);
    return k < 0 ? 0 : (size_t)k < n ? (size_t)k : n - 1;
}
