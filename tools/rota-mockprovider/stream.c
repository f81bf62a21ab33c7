/*
 * stream.c - rota-mockprovider's streamed answers: OpenAI chat completions and
 * Anthropic messages asked for with "stream": true come as server-sent events, each
 * provider's own, and two faults shape them:
 *   drip  events "ms" milliseconds apart, with "chunks" content events (default 3)
 *   cut   the connection dropped after "after" events (default 2), mid-answer
 *   hold  the first "after" events (default 2), then nothing until the fault ends
 *   badsse  the first two events, then malformed ones (mock_stream_garble)
 * and drip and hold pad each content event with c->pad bytes of "x".
 *
 * OpenAI: a role chunk, the content chunks, a finish chunk, then, when the request's
 * stream_options.include_usage is true, the usage chunk ("choices": [] and the usage;
 * every chunk before it carries "usage": null), then "data: [DONE]". Anthropic:
 * message_start (input usage), content_block_start, the content_block_deltas,
 * content_block_stop, message_delta (output usage), message_stop. Gemini (a
 * :streamGenerateContent asked with alt=sse): one GenerateContentResponse per content
 * event, each with the running usageMetadata, the last with finishReason STOP, framed
 * with CRLF as Google frames them; no closing event. Code Assist wraps each event in
 * {"response": ...} (mock_stream_envelope); a :streamGenerateContent without alt=sse
 * answers the events' data as one JSON array (mock_stream_whole). The scripted
 * tool-using model's answers (tools_*.c) are made of the same events, pushed one JSON
 * value at a time (mock_stream_json).
 *
 * DESIGN
 * The events are made whole, under mock.lock, by the provider module (mock_stream_*),
 * into the reply; main hands them to libmicrohttpd's content reader (mock_stream_read),
 * which runs on the connection's own thread and may sleep between events without the
 * lock.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

void mock_stream_push(struct mock_reply *r, const char *fmt, ...)
{
    struct mock_stream *s = &r->stream;
    if (s->n == MOCK_EVENTS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s->ev[s->n], fmt, ap) >= 0)
        s->n++;
    va_end(ap);
}

/* c->pad bytes of "x" (malloc'd; "" when none or out of memory, never freed then). */
static char *padding(const struct mock_call *c)
{
    char *p = c->pad ? malloc(c->pad + 1) : NULL;
    if (!p)
        return (char *)"";
    memset(p, 'x', c->pad);
    p[c->pad] = 0;
    return p;
}

static void padding_free(const struct mock_call *c, char *p)
{
    if (c->pad && *p)
        free(p);
}

static bool usage_asked(const json_t *body)
{
    return json_is_true(
        json_object_get(json_object_get(body, "stream_options"), "include_usage"));
}

void mock_stream_openai(struct mock_call *c, const char *model, unsigned tokens,
                        uint64_t serial, unsigned chunks, struct mock_reply *r)
{
    bool usage = usage_asked(c->body);
    const char *u = usage ? ",\"usage\":null" : "";
    char head[256];
    snprintf(
        head, sizeof(head),
        "\"id\":\"chatcmpl-mock-%llu\",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
        "\"model\":\"%s\"",
        (unsigned long long)serial, (long long)(c->now_ms / 1000), model);
    r->status = 200;
    r->type = "text/event-stream";
    mock_stream_push(
        r,
        "data: "
        "{%s,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null}]%s}\n\n",
        head, u);
    char *pad = padding(c);
    for (unsigned i = 0; i < chunks; i++)
        mock_stream_push(
            r,
            "data: {%s,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok%u %s\"},"
            "\"finish_reason\":null}]%s}\n\n",
            head, i, pad, u);
    padding_free(c, pad);
    mock_stream_push(
        r,
        "data: {%s,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]%s}\n\n",
        head, u);
    unsigned out = tokens / 2, in = tokens - out;
    if (usage)
        mock_stream_push(
            r,
            "data: {%s,\"choices\":[],\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u,"
            "\"total_tokens\":%u}}\n\n",
            head, in, out, tokens);
    mock_stream_push(r, "data: [DONE]\n\n");
}

/* Keep the first two events of "r"'s stream and put malformed ones after them: data
 * that is not JSON, a usage whose numbers are not numbers, a comment with bytes that are
 * not UTF-8, lines ended by a lone CR, a field with no value, and last an event that
 * never ends (no blank line) before the stream itself ends cleanly. No end event
 * ([DONE], message_stop) and no usage a reader could count. */
void mock_stream_garble(struct mock_reply *r)
{
    struct mock_stream *s = &r->stream;
    while (s->n > 2)
        free(s->ev[--s->n]);
    mock_stream_push(r, "data: {not json at all\n\n");
    mock_stream_push(r, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"many\","
                        "\"completion_tokens\":-5,\"total_tokens\":null}}\n\n");
    mock_stream_push(r, ": bytes that are not UTF-8: \xff\xfe\n\n");
    mock_stream_push(r, "data: line ended by a lone CR\rdata: another\r\r");
    mock_stream_push(r, "event\ndata\n\n");
    mock_stream_push(r, "data: {\"choices\":[{\"delta\":{\"content\":\"never ends");
}

void mock_stream_anthropic(struct mock_call *c, const char *model, unsigned tokens,
                           uint64_t serial, unsigned chunks, struct mock_reply *r)
{
    unsigned out = tokens / 2, in = tokens - out;
    r->status = 200;
    r->type = "text/event-stream";
    mock_stream_push(
        r,
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
        "\"msg_mock_%llu\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"%s\","
        "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
        "\"input_tokens\":%u,\"output_tokens\":1}}}\n\n",
        (unsigned long long)serial, model, in);
    mock_stream_push(
        r, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
           "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    mock_stream_push(r, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    char *pad = padding(c);
    for (unsigned i = 0; i < chunks; i++)
        mock_stream_push(
            r,
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
            "\"delta\":{\"type\":\"text_delta\",\"text\":\"ok%u %s\"}}\n\n",
            i, pad);
    padding_free(c, pad);
    mock_stream_push(
        r,
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    mock_stream_push(
        r,
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%u}}\n\n",
        out);
    mock_stream_push(r, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

void mock_stream_gemini(struct mock_call *c, const char *model, unsigned tokens,
                        uint64_t serial, unsigned chunks, struct mock_reply *r)
{
    unsigned out = tokens / 2, in = tokens - out;
    r->status = 200;
    r->type = "text/event-stream";
    char *pad = padding(c);
    chunks = chunks ? chunks : 1;
    for (unsigned i = 0; i < chunks; i++) {
        bool last = i + 1 == chunks;
        unsigned done = out * (i + 1) / chunks;
        mock_stream_push(
            r,
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok%u %s\"}],"
            "\"role\":\"model\"}%s,\"index\":0}],\"usageMetadata\":{"
            "\"promptTokenCount\":%u,\"candidatesTokenCount\":%u,\"totalTokenCount\":%u},"
            "\"modelVersion\":\"%s\",\"responseId\":\"mock-%llu\"}\r\n\r\n",
            i, pad, last ? ",\"finishReason\":\"STOP\"" : "", in, done, in + done, model,
            (unsigned long long)serial);
    }
    padding_free(c, pad);
}

/* Push event "v" (taken) as "event: EVENT\ndata: JSON" (no event line when "event" is
 * NULL) ended by "end" ("\n\n", or "\r\n\r\n" as Google ends them). */
void mock_stream_json(struct mock_reply *r, const char *event, json_t *v, const char *end)
{
    char *text = mock_json_text(v);
    json_decref(v);
    if (!text)
        return;
    if (event)
        mock_stream_push(r, "event: %s\ndata: %s%s", event, text, end);
    else
        mock_stream_push(r, "data: %s%s", text, end);
    free(text);
}

/* The JSON of event "ev" ("data: JSON" and its blank line): its start and length. */
static const char *event_data(const char *ev, size_t *len)
{
    const char *p = strncmp(ev, "data: ", 6) == 0 ? ev + 6 : ev;
    size_t n = strlen(p);
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    *len = n;
    return p;
}

/* Wrap each Gemini event of "r" in Code Assist's envelope: data: {"response": EVENT}. */
void mock_stream_envelope(struct mock_reply *r)
{
    struct mock_stream *s = &r->stream;
    for (size_t i = 0; i < s->n; i++) {
        size_t n;
        const char *p = event_data(s->ev[i], &n);
        char *w;
        if (asprintf(&w, "data: {\"response\":%.*s}\r\n\r\n", (int)n, p) < 0)
            continue;
        free(s->ev[i]);
        s->ev[i] = w;
    }
}

/* Turn the events of "r" into one JSON array of their data, answered whole: what
 * :streamGenerateContent answers without alt=sse. */
void mock_stream_whole(struct mock_reply *r)
{
    struct mock_stream *s = &r->stream;
    size_t cap = 3;
    for (size_t i = 0; i < s->n; i++)
        cap += strlen(s->ev[i]) + 1;
    char *body = malloc(cap);
    size_t k = 0;
    if (body)
        body[k++] = '[';
    for (size_t i = 0; i < s->n; i++) {
        size_t n;
        const char *p = event_data(s->ev[i], &n);
        if (body) {
            if (i)
                body[k++] = ',';
            memcpy(body + k, p, n);
            k += n;
        }
        free(s->ev[i]);
    }
    s->n = 0;
    if (body) {
        body[k++] = ']';
        body[k] = 0;
    }
    free(r->body);
    r->body = body;
    r->len = body ? k : 0;
    r->type = NULL;
}
