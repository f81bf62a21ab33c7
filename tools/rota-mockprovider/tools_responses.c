/*
 * tools_responses.c - OpenAI's Responses API (POST /v1/responses) as rota-mockprovider's
 * OpenAI serves it: the scripted tool-using model (tools.c) when the request declares
 * function tools or its input holds function calls or their outputs, else the text
 * "ok" (usage "tokens_per_call", as the chat's).
 *
 * Checked as OpenAI checks it, refused with 400 naming what is wrong:
 *   - every tools[] entry of type "function" has a name of [a-zA-Z0-9_-]{1,64};
 *   - an input item is a message (role user, assistant, system or developer), a
 *     function_call (call_id, name, arguments a string), a function_call_output
 *     (call_id, output) or a reasoning item;
 *   - every function_call_output's call_id names a function_call earlier in the input,
 *     and every function_call has its output in the input.
 * The answer: a "response" whose output is function_call items (call_id "call_mock_N",
 * arguments as a string) or one assistant message of output_text, with usage
 * {input_tokens, output_tokens, total_tokens} and their details. Streamed: named events
 * response.created, response.in_progress, then per item response.output_item.added,
 * its deltas (function_call_arguments.delta a few bytes each, then .done; or
 * content_part.added, output_text.delta in c->chunks pieces, output_text.done,
 * content_part.done), response.output_item.done; then response.completed with the
 * whole response. Every event carries its sequence_number.
 *
 * DESIGN
 * Called with mock.lock held from openai.c; the provider's refusal for its limits comes
 * in as the charge callback, as for the chat (tools_openai.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define ARG_PIECE 4

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

/* An item's type: "message" for those that give only a role. */
static const char *type_of(const json_t *item)
{
    const char *t = str(item, "type");
    return t ? t : json_object_get(item, "role") ? "message" : "";
}

/* The text of a message's content: a string, or its parts' texts joined (malloc'd). */
static char *text_of(const json_t *content)
{
    if (json_is_string(content))
        return strdup(json_string_value(content));
    char *s = strdup("");
    size_t i, len = 0;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        const char *t = str(p, "text");
        size_t n = t ? strlen(t) : 0;
        char *g = s ? realloc(s, len + n + 1) : NULL;
        if (!g)
            break;
        s = g;
        memcpy(s + len, t ? t : "", n);
        s[len += n] = 0;
    }
    return s;
}

static const char *tools_check(const json_t *tools, struct mock_turn *t)
{
    const char *first = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(tools, i, v)
    {
        if (!is(str(v, "type"), "function"))
            continue; /* a built-in tool: not the model's to call here */
        const char *name = str(v, "name");
        size_t n = name ? strlen(name) : 0;
        if (!n || n > 64 ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                n)
            mock_turn_refuse(t,
                             "Invalid 'tools[%zu].name': string does not match pattern. "
                             "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                             i);
        else if (!first)
            first = name;
    }
    return first;
}

/* Is there a function_call of "call_id" among items [from, to) of "input"? */
static bool has_item(const json_t *input, size_t from, size_t to, const char *type,
                     const char *call_id)
{
    for (size_t i = from; i < to; i++) {
        const json_t *item = json_array_get(input, i);
        if (is(type_of(item), type) && is(str(item, "call_id"), call_id))
            return true;
    }
    return false;
}

static void input_check(const json_t *input, struct mock_turn *t)
{
    static const char *const roles[] = {"user", "assistant", "system", "developer"};
    size_t i, n = json_array_size(input);
    json_t *item;
    json_array_foreach(input, i, item)
    {
        const char *type = type_of(item), *id = str(item, "call_id");
        if (is(type, "message")) {
            size_t r = 0;
            while (r < 4 && !is(str(item, "role"), roles[r]))
                r++;
            if (r == 4)
                mock_turn_refuse(t,
                                 "Invalid value: '%s'. Supported values are: 'assistant', "
                                 "'system', 'developer', and 'user'. (input[%zu].role)",
                                 str(item, "role") ? str(item, "role") : "", i);
        } else if (is(type, "function_call")) {
            if (!id || !str(item, "name"))
                mock_turn_refuse(t,
                                 "Missing required parameter: 'input[%zu].call_id' or "
                                 "'input[%zu].name'.",
                                 i, i);
            else if (!json_is_string(json_object_get(item, "arguments")))
                mock_turn_refuse(t,
                                 "Invalid type for 'input[%zu].arguments': expected a "
                                 "string.",
                                 i);
            else if (!has_item(input, i + 1, n, "function_call_output", id))
                mock_turn_refuse(t, "No tool output found for function call %s.", id);
        } else if (is(type, "function_call_output")) {
            if (!id || !has_item(input, 0, i, "function_call", id))
                mock_turn_refuse(t,
                                 "No tool call found for function call output with call_id "
                                 "%s. (input[%zu])",
                                 id ? id : "(none)", i);
            else if (!json_object_get(item, "output"))
                mock_turn_refuse(t, "Missing required parameter: 'input[%zu].output'.", i);
        } else if (!is(type, "reasoning")) {
            mock_turn_refuse(t, "Invalid value: '%s'. (input[%zu].type)", type, i);
        }
    }
}

/* The scripted model's turn, or false for the plain "ok". */
static bool turn(struct mock_call *c, struct mock_turn *t)
{
    memset(t, 0, sizeof(*t));
    const json_t *tools = json_object_get(c->body, "tools");
    const json_t *input = json_object_get(c->body, "input");
    size_t n = json_array_size(input);
    const char *tool = tools_check(tools, t);
    bool tooly = tool || t->error[0];
    for (size_t i = 0; i < n && !tooly; i++)
        tooly = !strncmp(type_of(json_array_get(input, i)), "function_call", 13);
    if (!tooly)
        return false;
    t->scripted = true;
    if (!json_is_string(input) && n == 0)
        mock_turn_refuse(t, "Missing required parameter: 'input'.");
    input_check(input, t);
    if (t->error[0])
        return true;
    const json_t *last = json_array_get(input, n - 1);
    if (json_is_string(input) ||
        (is(type_of(last), "message") && is(str(last, "role"), "user"))) {
        char *s = json_is_string(input) ? strdup(json_string_value(input))
                                        : text_of(json_object_get(last, "content"));
        if (tool)
            mock_turn_ask(c->m, t, MOCK_FMT_OPENAI, tool, s ? s : "");
        free(s);
    } else if (is(type_of(last), "function_call_output")) {
        size_t first = n - 1;
        while (first > 0 &&
               is(type_of(json_array_get(input, first - 1)), "function_call_output"))
            first--;
        for (size_t i = first; i < n; i++) {
            const json_t *out = json_object_get(json_array_get(input, i), "output");
            char *s = json_is_string(out) ? strdup(json_string_value(out)) : text_of(out);
            if (!s || mock_turn_result(t, s, strlen(s)))
                mock_turn_refuse(t, "out of memory");
            free(s);
        }
    }
    mock_turn_done(c->m, c, t, MOCK_FMT_OPENAI);
    return true;
}

/* ---- the answer ---- */

static json_t *call_item(const struct mock_turn *t, unsigned i, uint64_t serial, bool done)
{
    char id[48];
    snprintf(id, sizeof(id), "fc_mock_%llu_%u", (unsigned long long)serial, i);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "function_call", "id", id,
                     "call_id", t->ids[i], "name", t->tool, "arguments",
                     done ? mock_turn_args(i) : "", "status",
                     done ? "completed" : "in_progress");
}

static json_t *text_part(const char *text)
{
    return json_pack("{s:s, s:s, s:[]}", "type", "output_text", "text", text, "annotations");
}

static json_t *message_item(const struct mock_turn *t, uint64_t serial, bool done)
{
    char id[48];
    snprintf(id, sizeof(id), "msg_mock_%llu", (unsigned long long)serial);
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", "message", "id", id, "status",
                     done ? "completed" : "in_progress", "role", "assistant", "content",
                     done ? json_pack("[o]", text_part(t->text)) : json_array());
}

static json_t *response(const struct mock_call *c, const struct mock_turn *t, const char *model,
                        uint64_t serial, bool done)
{
    char id[48];
    snprintf(id, sizeof(id), "resp_mock_%llu", (unsigned long long)serial);
    json_t *output = json_array();
    for (unsigned i = 0; done && i < t->ncalls; i++)
        json_array_append_new(output, call_item(t, i, serial, true));
    if (done && !t->ncalls)
        json_array_append_new(output, message_item(t, serial, true));
    json_t *usage =
        done ? json_pack("{s:i, s:{s:i}, s:i, s:{s:i}, s:i}", "input_tokens", (int)t->use.in,
                         "input_tokens_details", "cached_tokens", 0, "output_tokens",
                         (int)t->use.out, "output_tokens_details", "reasoning_tokens", 0,
                         "total_tokens", (int)(t->use.in + t->use.out))
             : json_null();
    return json_pack("{s:s, s:s, s:I, s:s, s:n, s:n, s:s, s:o, s:b, s:n, s:o}", "id", id,
                     "object", "response", "created_at", (json_int_t)(c->now_ms / 1000),
                     "status", done ? "completed" : "in_progress", "error",
                     "incomplete_details", "model", model, "output", output,
                     "parallel_tool_calls", 1, "previous_response_id", "usage", usage);
}

/* Event "type" with the members of "v" (taken) after its type and sequence number. */
static void event(struct mock_reply *r, const char *type, json_t *v)
{
    json_t *e =
        json_pack("{s:s, s:I}", "type", type, "sequence_number", (json_int_t)r->stream.n);
    json_object_update(e, v);
    json_decref(v);
    mock_stream_json(r, type, e, "\n\n");
}

static void stream_call(struct mock_reply *r, const struct mock_turn *t, unsigned i,
                        uint64_t serial)
{
    json_t *item = call_item(t, i, serial, false);
    json_t *id = json_incref(json_object_get(item, "id"));
    event(r, "response.output_item.added",
          json_pack("{s:i, s:o}", "output_index", i, "item", item));
    const char *args = mock_turn_args(i);
    for (size_t off = 0; off < strlen(args); off += ARG_PIECE) {
        int len = (int)(strlen(args) - off < ARG_PIECE ? strlen(args) - off : ARG_PIECE);
        event(r, "response.function_call_arguments.delta",
              json_pack("{s:O, s:i, s:s#}", "item_id", id, "output_index", i, "delta",
                        args + off, len));
    }
    event(r, "response.function_call_arguments.done",
          json_pack("{s:O, s:i, s:s}", "item_id", id, "output_index", i, "arguments", args));
    event(r, "response.output_item.done",
          json_pack("{s:i, s:o}", "output_index", i, "item", call_item(t, i, serial, true)));
    json_decref(id);
}

static void stream_text(struct mock_call *c, struct mock_reply *r, const struct mock_turn *t,
                        uint64_t serial)
{
    json_t *item = message_item(t, serial, false);
    json_t *id = json_incref(json_object_get(item, "id"));
    event(r, "response.output_item.added",
          json_pack("{s:i, s:o}", "output_index", 0, "item", item));
    event(r, "response.content_part.added",
          json_pack("{s:O, s:i, s:i, s:o}", "item_id", id, "output_index", 0, "content_index",
                    0, "part", text_part("")));
    unsigned pieces = mock_pieces(c);
    for (unsigned p = 0; p < pieces; p++) {
        size_t at, len;
        mock_piece(t->text, pieces, p, &at, &len);
        event(r, "response.output_text.delta",
              json_pack("{s:O, s:i, s:i, s:s%}", "item_id", id, "output_index", 0,
                        "content_index", 0, "delta", t->text + at, len));
    }
    event(r, "response.output_text.done",
          json_pack("{s:O, s:i, s:i, s:s}", "item_id", id, "output_index", 0, "content_index",
                    0, "text", t->text));
    event(r, "response.content_part.done",
          json_pack("{s:O, s:i, s:i, s:o}", "item_id", id, "output_index", 0, "content_index",
                    0, "part", text_part(t->text)));
    event(r, "response.output_item.done",
          json_pack("{s:i, s:o}", "output_index", 0, "item", message_item(t, serial, true)));
    json_decref(id);
}

static void answer(struct mock_call *c, const struct mock_turn *t, const char *model,
                   uint64_t serial, struct mock_reply *r)
{
    if (!json_is_true(json_object_get(c->body, "stream"))) {
        mock_reply_json(r, 200, response(c, t, model, serial, true));
        return;
    }
    r->status = 200;
    r->type = "text/event-stream";
    event(r, "response.created",
          json_pack("{s:o}", "response", response(c, t, model, serial, false)));
    event(r, "response.in_progress",
          json_pack("{s:o}", "response", response(c, t, model, serial, false)));
    for (unsigned i = 0; i < t->ncalls; i++)
        stream_call(r, t, i, serial);
    if (!t->ncalls)
        stream_text(c, r, t, serial);
    event(r, "response.completed",
          json_pack("{s:o}", "response", response(c, t, model, serial, true)));
}

/* POST /v1/responses for "a" as "model": refused (400), refused by "charge", or
 * answered. True when answered. */
bool mock_responses(struct mock_call *c, struct mock_account *a, const char *model,
                    mock_charge_fn *charge, struct mock_reply *r)
{
    struct mock_turn t;
    bool scripted = turn(c, &t);
    if (scripted && t.error[0]) {
        mock_providers[a->provider]->error(r, 400, t.error);
        mock_turn_free(&t);
        return false;
    }
    if (!scripted) { /* the plain answer: "ok", the configured tokens */
        unsigned tokens = c->m->tokens_per_call;
        t.text = strdup("ok");
        t.use = (struct mock_usage){.in = tokens - tokens / 2, .out = tokens / 2};
    }
    if (!t.text && !t.ncalls) {
        mock_providers[a->provider]->error(r, 500, "out of memory");
        return false;
    }
    if (!charge(c, a, t.use.in + t.use.out, r)) {
        mock_turn_free(&t);
        return false;
    }
    answer(c, &t, model, a->calls + 1, r);
    mock_usage_count(a, &t.use);
    mock_turn_free(&t);
    return true;
}
