/*
 * tools_anthropic.c - the scripted tool-using model (tools.c) in Anthropic's messages.
 *
 * A request is the scripted model's when it declares tools, enables thinking, or its
 * messages hold tool_use or tool_result blocks; it is then checked as Anthropic checks
 * it, and refused with 400 (invalid_request_error) naming what is wrong:
 *   - every custom tool has a name of [a-zA-Z0-9_-]{1,128} and an input_schema object;
 *     a request holding tool_use or tool_result blocks declares tools;
 *   - thinking {"type": "enabled"} has budget_tokens >= 1024 and below max_tokens;
 *   - the first message is the user's and roles alternate user / assistant;
 *   - a tool_use block has an id, a name and an input object; every tool_result's
 *     tool_use_id names a tool_use of the message just before, and every tool_use of an
 *     assistant message is answered by a tool_result in the next one;
 *   - with thinking enabled, each assistant message since the user last wrote (the tool
 *     loop under way) that holds a tool_use starts with a thinking block;
 *   - a thinking block carries the signature the mock issued with it and its text
 *     unchanged.
 * The answer: [a thinking block {"thinking": "mock thought", "signature":
 * "sig-anthropic-N"}], then tool_use blocks (stop_reason "tool_use") or a text block
 * ("end_turn"). Streamed: message_start (input usage), ping, per block
 * content_block_start, its deltas (thinking_delta then signature_delta; input_json_delta
 * a few bytes each; text_delta in c->chunks pieces), content_block_stop; message_delta
 * with the stop_reason and the output usage; message_stop.
 *
 * DESIGN
 * Called with mock.lock held, from anthropic.c; the signatures it checks are those
 * tools.c remembers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define ARG_PIECE 4 /* bytes of arguments an input_json_delta carries */

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

/* Block "k" of a message's content (a string content has one text block: NULL here). */
static const json_t *block(const json_t *msg, size_t k)
{
    return json_array_get(json_object_get(msg, "content"), k);
}

static size_t nblocks(const json_t *msg)
{
    return json_array_size(json_object_get(msg, "content"));
}

/* Does the message hold a block of "type"? */
static bool holds(const json_t *msg, const char *type)
{
    for (size_t k = 0; k < nblocks(msg); k++)
        if (is(str(block(msg, k), "type"), type))
            return true;
    return false;
}

/* Does the user write in this message (text, not only tool results)? */
static bool user_writes(const json_t *msg)
{
    if (json_is_string(json_object_get(msg, "content")))
        return true;
    for (size_t k = 0; k < nblocks(msg); k++)
        if (!is(str(block(msg, k), "type"), "tool_result"))
            return true;
    return false;
}

/* The first custom tool's name, after checking every declaration. */
static const char *tools_check(const json_t *tools, struct mock_turn *t)
{
    const char *first = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(tools, i, v)
    {
        const char *type = str(v, "type"), *name = str(v, "name");
        if (type && !is(type, "custom"))
            continue; /* a server tool: not the model's to call here */
        size_t n = name ? strlen(name) : 0;
        if (!n || n > 128 ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                n)
            mock_turn_refuse(t,
                             "tools.%zu.custom.name: String should match pattern "
                             "'^[a-zA-Z0-9_-]{1,128}$'",
                             i);
        else if (!json_is_object(json_object_get(v, "input_schema")))
            mock_turn_refuse(t, "tools.%zu.custom.input_schema: Field required", i);
        else if (!first)
            first = name;
    }
    return first;
}

static void thinking_check(const json_t *body, struct mock_turn *t)
{
    const json_t *th = json_object_get(body, "thinking");
    if (!is(str(th, "type"), "enabled"))
        return;
    t->thinking = true;
    json_int_t budget = json_integer_value(json_object_get(th, "budget_tokens"));
    json_int_t max = json_integer_value(json_object_get(body, "max_tokens"));
    if (budget < 1024)
        mock_turn_refuse(t, "thinking.enabled.budget_tokens: Input should be greater than or "
                            "equal to 1024");
    else if (budget >= max)
        mock_turn_refuse(t, "`max_tokens` must be greater than `thinking.budget_tokens`. "
                            "Please consult our documentation at "
                            "https://docs.claude.com/en/docs/build-with-claude/"
                            "extended-thinking#max-tokens-and-context-window-size");
}

/* An assistant message's blocks: tool_use well formed, thinking signed by the mock. */
static void assistant_check(struct mock *m, const json_t *msg, size_t i, struct mock_turn *t)
{
    for (size_t k = 0; k < nblocks(msg); k++) {
        const json_t *b = block(msg, k);
        const char *type = str(b, "type");
        if (is(type, "tool_use") && (!str(b, "id") || !str(b, "name")))
            mock_turn_refuse(t, "messages.%zu.content.%zu.tool_use: id and name are required",
                             i, k);
        else if (is(type, "tool_use") && !json_is_object(json_object_get(b, "input")))
            mock_turn_refuse(t,
                             "messages.%zu.content.%zu.tool_use.input: Input should be a "
                             "valid dictionary",
                             i, k);
        else if (is(type, "thinking") &&
                 (!is(str(b, "thinking"), mock_thought()) ||
                  !mock_sig_known(m, str(b, "signature"), MOCK_FMT_ANTHROPIC, NULL)))
            mock_turn_refuse(t,
                             "messages.%zu.content.%zu: Invalid `signature` in `thinking` "
                             "block",
                             i, k);
    }
}

/* Is "id" the id of a tool_use of "msg"? */
static bool used(const json_t *msg, const char *id)
{
    for (size_t k = 0; k < nblocks(msg); k++) {
        const json_t *b = block(msg, k);
        if (is(str(b, "type"), "tool_use") && is(str(b, "id"), id))
            return true;
    }
    return false;
}

/* Is "id" answered by a tool_result of "msg"? */
static bool answered(const json_t *msg, const char *id)
{
    for (size_t k = 0; k < nblocks(msg); k++) {
        const json_t *b = block(msg, k);
        if (is(str(b, "type"), "tool_result") && is(str(b, "tool_use_id"), id))
            return true;
    }
    return false;
}

/* Tool results of user message "i" against the tool uses of message "i - 1". */
static void results_check(const json_t *msgs, size_t i, struct mock_turn *t)
{
    const json_t *msg = json_array_get(msgs, i), *prev = i ? json_array_get(msgs, i - 1) : NULL;
    for (size_t k = 0; k < nblocks(msg); k++) {
        const json_t *b = block(msg, k);
        if (is(str(b, "type"), "tool_result") && !used(prev, str(b, "tool_use_id")))
            mock_turn_refuse(t,
                             "messages.%zu.content.%zu: unexpected `tool_use_id` found in "
                             "`tool_result` blocks: %s. Each `tool_result` block must have a "
                             "corresponding `tool_use` block in the previous message.",
                             i, k, str(b, "tool_use_id") ? str(b, "tool_use_id") : "(none)");
    }
    for (size_t k = 0; prev && k < nblocks(prev); k++) {
        const json_t *b = block(prev, k);
        if (is(str(b, "type"), "tool_use") && !answered(msg, str(b, "id")))
            mock_turn_refuse(t,
                             "messages.%zu: `tool_use` ids were found without `tool_result` "
                             "blocks immediately after: %s. Each `tool_use` block must have a "
                             "corresponding `tool_result` block in the next message.",
                             i - 1, str(b, "id"));
    }
}

static void history_check(struct mock *m, const json_t *msgs, struct mock_turn *t)
{
    size_t i, loop = 0; /* the tool loop under way starts after the user last wrote */
    json_t *msg;
    json_array_foreach(msgs, i, msg)
    {
        const char *role = str(msg, "role");
        bool user = is(role, "user");
        if (!user && !is(role, "assistant")) {
            mock_turn_refuse(t, "messages.%zu.role: Input should be 'user' or 'assistant'", i);
            return;
        }
        if (i == 0 && !user)
            mock_turn_refuse(t, "messages: first message must use the \"user\" role");
        else if (i > 0 && is(str(json_array_get(msgs, i - 1), "role"), role))
            mock_turn_refuse(t,
                             "messages: roles must alternate between \"user\" and "
                             "\"assistant\", but found multiple \"%s\" roles in a row",
                             role);
        if (user && user_writes(msg) && !holds(msg, "tool_result"))
            loop = i + 1;
        if (user && i > 0)
            results_check(msgs, i, t);
        else if (!user)
            assistant_check(m, msg, i, t);
    }
    for (i = loop; t->thinking && i < json_array_size(msgs); i++) {
        msg = json_array_get(msgs, i);
        const char *first = str(block(msg, 0), "type");
        if (is(str(msg, "role"), "assistant") && holds(msg, "tool_use") &&
            !is(first, "thinking") && !is(first, "redacted_thinking"))
            mock_turn_refuse(t,
                             "messages.%zu.content.0.type: Expected `thinking` or "
                             "`redacted_thinking`, but found `%s`. When `thinking` is enabled, "
                             "a final `assistant` message must start with a thinking block "
                             "(preceeding the lastmost set of `tool_use` and `tool_result` "
                             "blocks).",
                             i, first ? first : "text");
    }
}

/* Does any message hold tool_use or tool_result blocks? */
static bool tool_history(const json_t *msgs)
{
    size_t i;
    json_t *msg;
    json_array_foreach(msgs, i, msg)
    {
        if (holds(msg, "tool_use") || holds(msg, "tool_result"))
            return true;
    }
    return false;
}

/* The text of a tool_result's content: a string, or its text blocks joined. */
static int quote_result(struct mock_turn *t, const json_t *content)
{
    if (json_is_string(content))
        return mock_turn_result(t, json_string_value(content), json_string_length(content));
    char *s = strdup("");
    size_t k, len = 0;
    json_t *b;
    json_array_foreach(content, k, b)
    {
        const char *text = str(b, "text");
        size_t n = text ? strlen(text) : 0;
        char *g = s ? realloc(s, len + n + 1) : NULL;
        if (!g)
            break;
        s = g;
        memcpy(s + len, text ? text : "", n);
        s[len += n] = 0;
    }
    int rc = s ? mock_turn_result(t, s, len) : -1;
    free(s);
    return rc;
}

/* The user's text in message "msg", for the word "parallel" (malloc'd). */
static char *user_text(const json_t *msg)
{
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content))
        return strdup(json_string_value(content));
    char *s = strdup("");
    for (size_t k = 0; s && k < nblocks(msg); k++) {
        const char *text = str(block(msg, k), "text");
        char *g = NULL;
        if (text && asprintf(&g, "%s %s", s, text) < 0)
            g = NULL;
        if (g) {
            free(s);
            s = g;
        }
    }
    return s;
}

bool mock_anthropic_turn(struct mock_call *c, struct mock_turn *t)
{
    memset(t, 0, sizeof(*t));
    const json_t *tools = json_object_get(c->body, "tools");
    const json_t *msgs = json_object_get(c->body, "messages");
    bool thinking = is(str(json_object_get(c->body, "thinking"), "type"), "enabled");
    if (!json_array_size(tools) && !tool_history(msgs) && !thinking)
        return false;
    t->scripted = true;
    const char *tool = tools_check(tools, t);
    thinking_check(c->body, t);
    size_t n = json_array_size(msgs);
    if (n == 0)
        mock_turn_refuse(t, "messages: at least one message is required");
    else if (!json_array_size(tools) && tool_history(msgs))
        mock_turn_refuse(t, "Requests which include `tool_use` or `tool_result` blocks must "
                            "define tools.");
    if (!t->error[0])
        history_check(c->m, msgs, t);
    if (t->error[0])
        return true;
    const json_t *last = json_array_get(msgs, n - 1);
    if (is(str(last, "role"), "user") && holds(last, "tool_result")) {
        for (size_t k = 0; k < nblocks(last); k++) {
            const json_t *b = block(last, k);
            if (is(str(b, "type"), "tool_result") &&
                quote_result(t, json_object_get(b, "content")))
                mock_turn_refuse(t, "out of memory");
        }
    } else if (is(str(last, "role"), "user") && tool) {
        char *s = user_text(last);
        mock_turn_ask(c->m, t, MOCK_FMT_ANTHROPIC, tool, s ? s : "");
        free(s);
    }
    mock_turn_done(c->m, c, t, MOCK_FMT_ANTHROPIC);
    return true;
}

/* ---- the answer ---- */

static json_t *content(const struct mock_turn *t)
{
    json_t *list = json_array();
    if (t->thinking)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "type", "thinking", "thinking",
                                              mock_thought(), "signature", t->sig));
    for (unsigned i = 0; i < t->ncalls; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id",
                                              t->ids[i], "name", t->tool, "input",
                                              mock_turn_args_json(i)));
    if (!t->ncalls)
        json_array_append_new(list, json_pack("{s:s, s:s}", "type", "text", "text", t->text));
    return list;
}

/* Event "type" with the members of "v" (taken) after its "type". */
static void event(struct mock_reply *r, const char *type, json_t *v)
{
    json_t *e = json_pack("{s:s}", "type", type);
    json_object_update(e, v);
    json_decref(v);
    mock_stream_json(r, type, e, "\n\n");
}

static void delta(struct mock_reply *r, int index, json_t *d)
{
    event(r, "content_block_delta", json_pack("{s:i, s:o}", "index", index, "delta", d));
}

static void stream(struct mock_call *c, const struct mock_turn *t, const char *model,
                   const char *id, struct mock_reply *r)
{
    r->status = 200;
    r->type = "text/event-stream";
    event(r, "message_start",
          json_pack("{s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}", "message", "id",
                    id, "type", "message", "role", "assistant", "model", model, "content",
                    "stop_reason", "stop_sequence", "usage", "input_tokens", (int)t->use.in,
                    "output_tokens", 1));
    event(r, "ping", json_object());
    json_t *blocks = content(t);
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b)
    {
        const char *type = str(b, "type");
        json_t *start = json_pack("{s:s}", "type", type);
        if (is(type, "thinking")) {
            json_object_set_new(start, "thinking", json_string(""));
            json_object_set_new(start, "signature", json_string(""));
        } else if (is(type, "tool_use")) {
            json_object_set(start, "id", json_object_get(b, "id"));
            json_object_set(start, "name", json_object_get(b, "name"));
            json_object_set_new(start, "input", json_object());
        } else {
            json_object_set_new(start, "text", json_string(""));
        }
        event(r, "content_block_start",
              json_pack("{s:i, s:o}", "index", (int)i, "content_block", start));
        if (is(type, "thinking")) {
            delta(
                r, (int)i,
                json_pack("{s:s, s:s}", "type", "thinking_delta", "thinking", mock_thought()));
            delta(r, (int)i,
                  json_pack("{s:s, s:s}", "type", "signature_delta", "signature", t->sig));
        } else if (is(type, "tool_use")) {
            const char *args = mock_turn_args((unsigned)(i - t->thinking));
            for (size_t off = 0; off < strlen(args); off += ARG_PIECE)
                delta(r, (int)i,
                      json_pack("{s:s, s:s#}", "type", "input_json_delta", "partial_json",
                                args + off,
                                (int)(strlen(args) - off < ARG_PIECE ? strlen(args) - off
                                                                     : ARG_PIECE)));
        } else {
            unsigned pieces = mock_pieces(c);
            for (unsigned p = 0; p < pieces; p++) {
                size_t at, len;
                mock_piece(t->text, pieces, p, &at, &len);
                delta(r, (int)i,
                      json_pack("{s:s, s:s#}", "type", "text_delta", "text", t->text + at,
                                (int)len));
            }
        }
        event(r, "content_block_stop", json_pack("{s:i}", "index", (int)i));
    }
    json_decref(blocks);
    event(r, "message_delta",
          json_pack("{s:{s:s, s:n}, s:{s:i}}", "delta", "stop_reason",
                    t->ncalls ? "tool_use" : "end_turn", "stop_sequence", "usage",
                    "output_tokens", (int)t->use.out));
    event(r, "message_stop", json_object());
}

void mock_anthropic_answer(struct mock_call *c, const struct mock_turn *t, const char *model,
                           uint64_t serial, struct mock_reply *r)
{
    char id[48];
    snprintf(id, sizeof(id), "msg_mock_%llu", (unsigned long long)serial);
    if (json_is_true(json_object_get(c->body, "stream"))) {
        stream(c, t, model, id, r);
        return;
    }
    mock_reply_json(r, 200,
                    json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:{s:i, s:i}}", "id", id,
                              "type", "message", "role", "assistant", "model", model, "content",
                              content(t), "stop_reason", t->ncalls ? "tool_use" : "end_turn",
                              "stop_sequence", "usage", "input_tokens", (int)t->use.in,
                              "output_tokens", (int)t->use.out));
}
