/*
 * tools_openai.c - the scripted tool-using model (tools.c) in OpenAI's chat completions,
 * as OpenAI, Azure OpenAI, Copilot, OpenRouter and llama.cpp serve them.
 *
 * A request is the scripted model's when it declares tools or its history holds tool
 * calls or results; it is then checked as OpenAI checks it, and refused with 400 naming
 * what is wrong:
 *   - every tools[] entry is {"type": "function", "function": {"name"}} with a name of
 *     [a-zA-Z0-9_-]{1,64};
 *   - an assistant message's tool_calls have an id, type "function", a name, and
 *     arguments that are a string (not an object);
 *   - every role "tool" message answers, by tool_call_id, a call of the assistant
 *     message before the run of tool messages it is in;
 *   - every call of an assistant message is answered before any other message.
 * The answer: tool calls (finish_reason "tool_calls") or a text ("stop"). Streamed: a
 * role chunk, per call a chunk with its index, id, type, name and "arguments": "" then
 * its arguments a few bytes a chunk, or the text in c->chunks pieces; a finish chunk;
 * the usage chunk when stream_options.include_usage; "data: [DONE]".
 *
 * DESIGN
 * Called with mock.lock held, from each OpenAI-format provider through mock_openai_chat,
 * which also answers the plain "ok" of requests that are not the scripted model's. The
 * provider's own refusals (limits, slots, credits) stay its own: it passes them in as
 * the charge callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define ARG_PIECE 4 /* bytes of arguments a streamed chunk carries */

static const char *role_of(const json_t *msg)
{
    const char *r = json_string_value(json_object_get(msg, "role"));
    return r ? r : "";
}

/* The text of message content: a string, or the text parts of an array joined; other
 * values as their JSON (malloc'd). */
static char *content_text(const json_t *content)
{
    if (json_is_string(content))
        return strdup(json_string_value(content));
    if (!json_is_array(content))
        return content && !json_is_null(content) ? mock_json_text(content) : strdup("");
    size_t i, len = 0;
    json_t *p;
    char *s = strdup("");
    json_array_foreach(content, i, p)
    {
        const char *t = json_string_value(json_object_get(p, "text"));
        size_t n = t ? strlen(t) : 0;
        char *g = s ? realloc(s, len + n + 1) : NULL;
        if (!g) {
            free(s);
            return NULL;
        }
        s = g;
        memcpy(s + len, t ? t : "", n);
        len += n;
        s[len] = 0;
    }
    return s;
}

static bool name_ok(const char *name, size_t max)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > max)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
           n;
}

/* The first tool's name, after checking every declaration; NULL when none or refused. */
static const char *tools_check(const json_t *tools, struct mock_turn *t)
{
    size_t i;
    json_t *v;
    if (tools && !json_is_array(tools)) {
        mock_turn_refuse(t, "Invalid type for 'tools': expected an array, but got %s instead.",
                         json_is_object(tools) ? "an object" : "a value");
        return NULL;
    }
    json_array_foreach(tools, i, v)
    {
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *name =
            json_string_value(json_object_get(json_object_get(v, "function"), "name"));
        if (!type || strcmp(type, "function") != 0)
            mock_turn_refuse(t,
                             "Invalid value: '%s'. Supported values are: 'function' and "
                             "'custom'. (tools[%zu].type)",
                             type ? type : "", i);
        else if (!name)
            mock_turn_refuse(t, "Missing required parameter: 'tools[%zu].function.name'.", i);
        else if (!name_ok(name, 64))
            mock_turn_refuse(t,
                             "Invalid 'tools[%zu].function.name': string does not match "
                             "pattern. Expected a string that matches the pattern "
                             "'^[a-zA-Z0-9_-]+$'.",
                             i);
    }
    json_t *f = json_object_get(json_array_get(tools, 0), "function");
    return t->error[0] ? NULL : json_string_value(json_object_get(f, "name"));
}

/* The ids still unanswered in "pending" (an object), listed into "buf". */
static const char *pending_list(json_t *pending, char *buf, size_t n)
{
    const char *id;
    json_t *v;
    size_t k = 0;
    buf[0] = 0;
    json_object_foreach(pending, id, v)
    {
        if (k < n)
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", id);
    }
    return buf;
}

/* An assistant message's tool_calls: checked, their ids put in "pending". */
static void calls_check(const json_t *msg, size_t i, json_t *pending, struct mock_turn *t)
{
    const json_t *calls = json_object_get(msg, "tool_calls");
    size_t k;
    json_t *call;
    if (calls && !json_is_array(calls) && !json_is_null(calls)) {
        mock_turn_refuse(t, "Invalid type for 'messages[%zu].tool_calls': expected an array.",
                         i);
        return;
    }
    json_array_foreach(calls, k, call)
    {
        const char *id = json_string_value(json_object_get(call, "id"));
        const char *type = json_string_value(json_object_get(call, "type"));
        json_t *fn = json_object_get(call, "function");
        json_t *args = json_object_get(fn, "arguments");
        if (!id || !id[0])
            mock_turn_refuse(
                t, "Missing required parameter: 'messages[%zu].tool_calls[%zu].id'.", i, k);
        else if (!type || strcmp(type, "function") != 0)
            mock_turn_refuse(t,
                             "Invalid value for 'messages[%zu].tool_calls[%zu].type': expected "
                             "'function'.",
                             i, k);
        else if (!json_string_value(json_object_get(fn, "name")))
            mock_turn_refuse(
                t, "Missing required parameter: 'messages[%zu].tool_calls[%zu].function.name'.",
                i, k);
        else if (!json_is_string(args))
            mock_turn_refuse(t,
                             "Invalid type for 'messages[%zu].tool_calls[%zu].function."
                             "arguments': expected a string, but got %s instead.",
                             i, k, args ? "another type" : "nothing");
        else
            json_object_set_new(pending, id, json_true());
    }
}

/* Walk the history: every tool message answers a call of the assistant message before
 * its run, every call is answered before anything else. */
static void history_check(const json_t *msgs, struct mock_turn *t)
{
    static const char *const roles[] = {"system",    "developer", "user",
                                        "assistant", "tool",      "function"};
    json_t *pending = json_object();
    char list[256];
    size_t i;
    json_t *msg;
    json_array_foreach(msgs, i, msg)
    {
        const char *role = role_of(msg);
        size_t r = 0;
        while (r < sizeof(roles) / sizeof(roles[0]) && strcmp(role, roles[r]) != 0)
            r++;
        if (r == sizeof(roles) / sizeof(roles[0])) {
            mock_turn_refuse(t,
                             "Invalid value: '%s'. Supported values are: 'system', "
                             "'assistant', 'user', 'function', 'tool', and 'developer'. "
                             "(messages[%zu].role)",
                             role, i);
            break;
        }
        if (strcmp(role, "tool") == 0) {
            const char *id = json_string_value(json_object_get(msg, "tool_call_id"));
            if (!id)
                mock_turn_refuse(t, "Missing required parameter: 'messages[%zu].tool_call_id'.",
                                 i);
            else if (!json_object_get(pending, id))
                mock_turn_refuse(t,
                                 "Invalid parameter: messages with role 'tool' must be a "
                                 "response to a preceeding message with 'tool_calls'. "
                                 "(messages[%zu].tool_call_id '%s' answers no call of the "
                                 "assistant message before it)",
                                 i, id);
            else
                json_object_del(pending, id);
            continue;
        }
        if (json_object_size(pending)) {
            mock_turn_refuse(t,
                             "An assistant message with 'tool_calls' must be followed by tool "
                             "messages responding to each 'tool_call_id'. The following "
                             "tool_call_ids did not have response messages: %s "
                             "(messages[%zu])",
                             pending_list(pending, list, sizeof(list)), i);
            break;
        }
        if (strcmp(role, "assistant") == 0)
            calls_check(msg, i, pending, t);
    }
    json_decref(pending);
}

/* Does the history hold tool calls or tool results? */
static bool tool_history(const json_t *msgs)
{
    size_t i;
    json_t *msg;
    json_array_foreach(msgs, i, msg)
    {
        if (strcmp(role_of(msg), "tool") == 0 ||
            json_array_size(json_object_get(msg, "tool_calls")))
            return true;
    }
    return false;
}

bool mock_openai_turn(struct mock_call *c, struct mock_turn *t)
{
    memset(t, 0, sizeof(*t));
    const json_t *tools = json_object_get(c->body, "tools");
    const json_t *msgs = json_object_get(c->body, "messages");
    if (!json_array_size(tools) && !tool_history(msgs) && (!tools || json_is_array(tools)))
        return false;
    t->scripted = true;
    const char *tool = tools_check(tools, t);
    size_t n = json_array_size(msgs);
    if (!json_is_array(msgs) || n == 0)
        mock_turn_refuse(t, "Invalid 'messages': empty array. Expected an array with minimum "
                            "length 1, but got an empty array instead.");
    if (!t->error[0])
        history_check(msgs, t);
    if (t->error[0])
        return true;
    const json_t *last = json_array_get(msgs, n - 1);
    if (strcmp(role_of(last), "tool") == 0) {
        size_t first = n - 1;
        while (first > 0 && strcmp(role_of(json_array_get(msgs, first - 1)), "tool") == 0)
            first--;
        for (size_t i = first; i < n; i++) {
            char *s = content_text(json_object_get(json_array_get(msgs, i), "content"));
            if (!s || mock_turn_result(t, s, strlen(s)))
                mock_turn_refuse(t, "out of memory");
            free(s);
        }
    } else if (strcmp(role_of(last), "user") == 0 && tool) {
        char *s = content_text(json_object_get(last, "content"));
        mock_turn_ask(c->m, t, MOCK_FMT_OPENAI, tool, s ? s : "");
        free(s);
    }
    mock_turn_done(c->m, c, t, MOCK_FMT_OPENAI);
    return true;
}

/* ---- the answer ---- */

static json_t *usage(const struct mock_turn *t)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", (int)t->use.in, "completion_tokens",
                     (int)t->use.out, "total_tokens", (int)(t->use.in + t->use.out));
}

static json_t *tool_calls(const struct mock_turn *t, bool indexed)
{
    json_t *list = json_array();
    for (unsigned i = 0; i < t->ncalls; i++) {
        json_t *call = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", t->ids[i], "type",
                                 "function", "function", "name", t->tool, "arguments",
                                 indexed ? "" : mock_turn_args(i));
        if (indexed)
            json_object_set_new(call, "index", json_integer(i));
        json_array_append_new(list, call);
    }
    return list;
}

static json_t *completion(const struct mock_call *c, const struct mock_turn *t,
                          const char *model, uint64_t serial)
{
    char id[48];
    snprintf(id, sizeof(id), "chatcmpl-mock-%llu", (unsigned long long)serial);
    json_t *msg = json_pack("{s:s, s:o, s:n}", "role", "assistant", "content",
                            t->ncalls ? json_null() : json_string(t->text), "refusal");
    if (t->ncalls)
        json_object_set_new(msg, "tool_calls", tool_calls(t, false));
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}], s:o}", "id", id, "object",
                     "chat.completion", "created", (json_int_t)(c->now_ms / 1000), "model",
                     model, "choices", "index", 0, "message", msg, "logprobs", "finish_reason",
                     t->ncalls ? "tool_calls" : "stop", "usage", usage(t));
}

/* One chunk: the head, a choice with "delta" (taken) and "finish" (NULL: null). */
static void chunk(struct mock_reply *r, const json_t *head, json_t *delta, const char *finish,
                  bool usage_asked)
{
    json_t *v = json_copy((json_t *)head);
    json_object_set_new(v, "choices",
                        json_pack("[{s:i, s:o, s:n, s:o}]", "index", 0, "delta", delta,
                                  "logprobs", "finish_reason",
                                  finish ? json_string(finish) : json_null()));
    if (usage_asked)
        json_object_set_new(v, "usage", json_null());
    mock_stream_json(r, NULL, v, "\n\n");
}

static void stream(struct mock_call *c, const struct mock_turn *t, const char *model,
                   uint64_t serial, struct mock_reply *r)
{
    bool asked = json_is_true(
        json_object_get(json_object_get(c->body, "stream_options"), "include_usage"));
    char id[48];
    snprintf(id, sizeof(id), "chatcmpl-mock-%llu", (unsigned long long)serial);
    json_t *head =
        json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "chat.completion.chunk",
                  "created", (json_int_t)(c->now_ms / 1000), "model", model);
    r->status = 200;
    r->type = "text/event-stream";
    chunk(r, head,
          json_pack("{s:s, s:o}", "role", "assistant", "content",
                    t->ncalls ? json_null() : json_string("")),
          NULL, asked);
    json_t *calls = tool_calls(t, true);
    for (unsigned i = 0; i < t->ncalls; i++) {
        json_t *call = json_array_get(calls, i);
        chunk(r, head, json_pack("{s:[O]}", "tool_calls", call), NULL, asked);
        const char *args = mock_turn_args(i);
        for (size_t off = 0; off < strlen(args); off += ARG_PIECE) {
            char piece[ARG_PIECE + 1];
            snprintf(piece, sizeof(piece), "%s", args + off);
            chunk(r, head,
                  json_pack("{s:[{s:i, s:{s:s}}]}", "tool_calls", "index", (int)i, "function",
                            "arguments", piece),
                  NULL, asked);
        }
    }
    json_decref(calls);
    unsigned pieces = mock_pieces(c);
    for (unsigned i = 0; !t->ncalls && i < pieces; i++) {
        size_t start, len;
        mock_piece(t->text, pieces, i, &start, &len);
        chunk(r, head, json_pack("{s:s%}", "content", t->text + start, len), NULL, asked);
    }
    chunk(r, head, json_object(), t->ncalls ? "tool_calls" : "stop", asked);
    if (asked) {
        json_t *v = json_copy(head);
        json_object_set_new(v, "choices", json_array());
        json_object_set_new(v, "usage", usage(t));
        mock_stream_json(r, NULL, v, "\n\n");
    }
    json_decref(head);
    mock_stream_push(r, "data: [DONE]\n\n");
}

void mock_openai_answer(struct mock_call *c, const struct mock_turn *t, const char *model,
                        uint64_t serial, struct mock_reply *r)
{
    if (json_is_true(json_object_get(c->body, "stream")))
        stream(c, t, model, serial, r);
    else
        mock_reply_json(r, 200, completion(c, t, model, serial));
}

/* A chat completion for "a", as "model": refused (400) when the scripted model refuses
 * the request, refused by "charge", or answered, scripted or "ok", plain or streamed.
 * True when answered. */
bool mock_openai_chat(struct mock_call *c, struct mock_account *a, const char *model,
                      mock_charge_fn *charge, struct mock_reply *r)
{
    struct mock_turn t;
    bool scripted = mock_openai_turn(c, &t);
    if (scripted && t.error[0]) {
        mock_providers[a->provider]->error(r, 400, t.error);
        mock_turn_free(&t);
        return false;
    }
    unsigned tokens = scripted ? t.use.in + t.use.out : c->m->tokens_per_call;
    if (!charge(c, a, tokens, r)) {
        mock_turn_free(&t);
        return false;
    }
    struct mock_usage u = {tokens - tokens / 2, tokens / 2, 0};
    if (scripted)
        mock_openai_answer(c, &t, model, a->calls + 1, r);
    else if (json_is_true(json_object_get(c->body, "stream")))
        mock_stream_openai(c, model, tokens, a->calls + 1, c->chunks, r);
    else
        mock_reply_json(r, 200, mock_openai_completion(model, tokens, a->calls + 1, c->now_ms));
    mock_usage_count(a, scripted ? &t.use : &u);
    mock_turn_free(&t);
    return true;
}
