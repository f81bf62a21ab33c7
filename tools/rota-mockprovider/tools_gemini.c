/*
 * tools_gemini.c - the scripted tool-using model (tools.c) in Gemini's generateContent,
 * as the Gemini API serves it and as Code Assist serves it inside its envelope.
 *
 * A request is the scripted model's when it declares functionDeclarations, its contents
 * hold functionCall or functionResponse parts, or it asks
 * generationConfig.thinkingConfig.includeThoughts; it is then checked as Gemini checks
 * it, and refused with 400 INVALID_ARGUMENT naming what is wrong:
 *   - a declaration's name starts with a letter or "_" and has at most 64 of
 *     [a-zA-Z0-9_.:-]; its "parameters" use only the keywords of Gemini's Schema (an
 *     OpenAPI subset: type, format, title, description, nullable, enum, items,
 *     properties, required, anyOf, propertyOrdering, min/max Items, Length,
 *     Properties, minimum, maximum, pattern, example, default), each "type" one of its
 *     Type names: additionalProperties, $schema, $ref, $defs, oneOf, allOf, const,
 *     exclusiveMinimum, patternProperties, if / then / else... are refused by name
 *     ("parametersJsonSchema", which takes JSON Schema, is taken as it is);
 *   - every content's role is "user" or "model";
 *   - a model turn with functionCall parts follows a user turn; a turn of
 *     functionResponse parts follows a model turn of functionCall parts, answers as
 *     many calls as it made, each by the name of one of them;
 *   - functionResponse.response is an object;
 *   - with includeThoughts, in the turn under way (the contents after the user's last
 *     text), the first functionCall of each model content carries the thoughtSignature
 *     the mock issued for a call of that function: missing, "Function call is missing
 *     a thought_signature"; not one issued, "Corrupted thought signature.".
 * The answer's parts: [{"text": "mock thought", "thought": true}], then functionCall
 * parts (the first with "thoughtSignature": "sig-gemini-N" when thinking) or the text;
 * finishReason "STOP"; usageMetadata with thoughtsTokenCount when thinking. Streamed: one
 * event per part (the text in c->chunks pieces, a call whole), the last with the
 * finishReason and the usageMetadata.
 *
 * DESIGN
 * Called with mock.lock held, from google.c, with the Gemini request (the body, or the
 * envelope's "request"). The framing (whole, SSE, JSON array) and Code Assist's
 * envelope are applied to the events once made (stream.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock.h"

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

/* ---- the schema of a declaration's parameters ---- */

static bool known_keyword(const char *k)
{
    static const char *const words[] = {"type",        "format",        "title",
                                        "description", "nullable",      "enum",
                                        "maxItems",    "minItems",      "properties",
                                        "required",    "minProperties", "maxProperties",
                                        "minLength",   "maxLength",     "pattern",
                                        "example",     "anyOf",         "propertyOrdering",
                                        "default",     "items",         "minimum",
                                        "maximum"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(k, words[i]) == 0)
            return true;
    return false;
}

static bool known_type(const char *t)
{
    static const char *const types[] = {"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER",
                                        "BOOLEAN",          "ARRAY",  "OBJECT", "NULL"};
    for (size_t i = 0; t && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(t, types[i]) == 0)
            return true;
    return false;
}

/* Check schema "s" at "path" (as Google names it); the first refusal stands. */
static void schema_check(const json_t *s, const char *path, struct mock_turn *t)
{
    const char *k;
    json_t *v;
    char sub[400];
    if (!json_is_object(s)) {
        mock_turn_refuse(t,
                         "Invalid value at '%s' (type.googleapis.com/"
                         "google.ai.generativelanguage.v1beta.Schema): not an object",
                         path);
        return;
    }
    json_object_foreach((json_t *)s, k, v)
    {
        if (!known_keyword(k)) {
            mock_turn_refuse(t,
                             "Invalid JSON payload received. Unknown name \"%s\" at '%s': "
                             "Cannot find field.",
                             k, path);
            return;
        }
        if (strcmp(k, "type") == 0 && !known_type(json_string_value(v))) {
            char *text = mock_json_text(v);
            mock_turn_refuse(t,
                             "Invalid value at '%s.type' (type.googleapis.com/"
                             "google.ai.generativelanguage.v1beta.Type), %s",
                             path, text ? text : "?");
            free(text);
            return;
        }
        if (strcmp(k, "items") == 0) {
            snprintf(sub, sizeof(sub), "%s.items", path);
            schema_check(v, sub, t);
        } else if (strcmp(k, "properties") == 0) {
            const char *name;
            json_t *p;
            json_object_foreach(v, name, p)
            {
                snprintf(sub, sizeof(sub), "%s.properties[%s].value", path, name);
                schema_check(p, sub, t);
            }
        } else if (strcmp(k, "anyOf") == 0) {
            size_t i;
            json_t *p;
            json_array_foreach(v, i, p)
            {
                snprintf(sub, sizeof(sub), "%s.any_of[%zu]", path, i);
                schema_check(p, sub, t);
            }
        }
    }
}

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    const char *first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    return n && n <= 64 && strchr(first, name[0]) &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") ==
               n;
}

/* The first declared function's name, after checking every declaration. */
static const char *tools_check(const json_t *tools, struct mock_turn *t)
{
    const char *first = NULL;
    size_t i, k;
    json_t *tool, *d;
    char path[160];
    json_array_foreach(tools, i, tool)
    {
        json_array_foreach(json_object_get(tool, "functionDeclarations"), k, d)
        {
            const char *name = str(d, "name");
            if (!name_ok(name)) {
                mock_turn_refuse(
                    t,
                    "* GenerateContentRequest.tools[%zu].function_declarations[%zu]"
                    ".name: Invalid function name. Must start with a letter or an "
                    "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores "
                    "(_), dots (.), colons (:) or dashes (-), with a maximum length "
                    "of 64.",
                    i, k);
                continue;
            }
            if (json_object_get(d, "parameters")) {
                snprintf(path, sizeof(path), "tools[%zu].function_declarations[%zu].parameters",
                         i, k);
                schema_check(json_object_get(d, "parameters"), path, t);
            }
            if (!first)
                first = name;
        }
    }
    return first;
}

/* ---- the history ---- */

static size_t nparts(const json_t *content)
{
    return json_array_size(json_object_get(content, "parts"));
}

static const json_t *part(const json_t *content, size_t k)
{
    return json_array_get(json_object_get(content, "parts"), k);
}

/* Parts of "content" holding "field" (functionCall, functionResponse). */
static size_t count(const json_t *content, const char *field)
{
    size_t n = 0;
    for (size_t k = 0; k < nparts(content); k++)
        n += json_object_get(part(content, k), field) != NULL;
    return n;
}

/* Does the user write text in this content (not only function responses)? */
static bool writes(const json_t *content)
{
    for (size_t k = 0; k < nparts(content); k++)
        if (json_is_string(json_object_get(part(content, k), "text")))
            return true;
    return false;
}

/* Is "name" the name of a functionCall of "content"? */
static bool called(const json_t *content, const char *name)
{
    for (size_t k = 0; k < nparts(content); k++)
        if (is(str(json_object_get(part(content, k), "functionCall"), "name"), name))
            return true;
    return false;
}

static const char *role_of(const json_t *content)
{
    const char *r = str(content, "role");
    return r ? r : "user";
}

/* Content "i", a user's turn of function responses, against the model turn before. */
static void responses_check(const json_t *contents, size_t i, struct mock_turn *t)
{
    const json_t *c = json_array_get(contents, i);
    const json_t *prev = i ? json_array_get(contents, i - 1) : NULL;
    if (!prev || !is(role_of(prev), "model") || !count(prev, "functionCall")) {
        mock_turn_refuse(t,
                         "Please ensure that function response turn comes immediately after "
                         "a function call turn. (contents[%zu])",
                         i);
        return;
    }
    if (count(c, "functionResponse") != count(prev, "functionCall")) {
        mock_turn_refuse(t,
                         "Please ensure that the number of function response parts is equal "
                         "to the number of function call parts of the function call turn. "
                         "(contents[%zu])",
                         i);
        return;
    }
    for (size_t k = 0; k < nparts(c); k++) {
        const json_t *fr = json_object_get(part(c, k), "functionResponse");
        if (!fr)
            continue;
        if (!json_is_object(json_object_get(fr, "response")))
            mock_turn_refuse(t,
                             "Invalid value at 'contents[%zu].parts[%zu].function_response."
                             "response' (type.googleapis.com/google.protobuf.Struct)",
                             i, k);
        else if (!called(prev, str(fr, "name")))
            mock_turn_refuse(t,
                             "contents[%zu].parts[%zu].function_response.name: `%s` names no "
                             "function call of the model turn before it",
                             i, k, str(fr, "name") ? str(fr, "name") : "");
    }
}

/* A model content's first functionCall must carry the signature issued for it. */
static void signature_check(struct mock *m, const json_t *c, size_t i, struct mock_turn *t)
{
    for (size_t k = 0; k < nparts(c); k++) {
        const json_t *p = part(c, k);
        const char *name = str(json_object_get(p, "functionCall"), "name");
        if (!json_object_get(p, "functionCall"))
            continue;
        const char *sig = str(p, "thoughtSignature");
        if (!sig)
            mock_turn_refuse(t,
                             "Function call is missing a thought_signature in functionCall "
                             "parts. This is required for tools to work correctly, and missing "
                             "thought_signature may lead to degraded model performance. "
                             "Additional data, function call `%s` , position %zu. Please refer "
                             "to https://ai.google.dev/gemini-api/docs/thought-signatures for "
                             "more details. (contents[%zu].parts[%zu])",
                             name ? name : "", k + 1, i, k);
        else if (!mock_sig_known(m, sig, MOCK_FMT_GEMINI, name))
            mock_turn_refuse(t, "Corrupted thought signature. (contents[%zu].parts[%zu])", i,
                             k);
        return; /* only the first call of a content carries one */
    }
}

static void history_check(struct mock *m, const json_t *contents, struct mock_turn *t)
{
    size_t i, turn = 0; /* the turn under way starts after the user's last text */
    json_t *c;
    json_array_foreach(contents, i, c)
    {
        const char *role = role_of(c);
        if (!is(role, "user") && !is(role, "model")) {
            mock_turn_refuse(t,
                             "Please use a valid role: user, model. (contents[%zu].role "
                             "\"%s\")",
                             i, role);
            return;
        }
        if (is(role, "user") && writes(c) && !count(c, "functionResponse"))
            turn = i + 1;
        if (count(c, "functionResponse"))
            responses_check(contents, i, t);
        if (is(role, "model") && count(c, "functionCall") &&
            (i == 0 || !is(role_of(json_array_get(contents, i - 1)), "user")))
            mock_turn_refuse(t,
                             "Please ensure that function call turn comes immediately after "
                             "a user turn or after a function response turn. "
                             "(contents[%zu])",
                             i);
    }
    for (i = turn; t->thinking && i < json_array_size(contents); i++) {
        c = json_array_get(contents, i);
        if (is(role_of(c), "model"))
            signature_check(m, c, i, t);
    }
}

static bool tool_history(const json_t *contents)
{
    size_t i;
    json_t *c;
    json_array_foreach(contents, i, c)
    {
        if (count(c, "functionCall") || count(c, "functionResponse"))
            return true;
    }
    return false;
}

static bool declares(const json_t *tools)
{
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool)
    {
        if (json_array_size(json_object_get(tool, "functionDeclarations")))
            return true;
    }
    return false;
}

bool mock_gemini_turn(struct mock_call *c, const json_t *request, struct mock_turn *t)
{
    memset(t, 0, sizeof(*t));
    const json_t *tools = json_object_get(request, "tools");
    const json_t *contents = json_object_get(request, "contents");
    const json_t *tc =
        json_object_get(json_object_get(request, "generationConfig"), "thinkingConfig");
    t->thinking = json_is_true(json_object_get(tc, "includeThoughts"));
    if (!declares(tools) && !tool_history(contents) && !t->thinking)
        return false;
    t->scripted = true;
    const char *tool = tools_check(tools, t);
    size_t n = json_array_size(contents);
    if (n == 0)
        mock_turn_refuse(t, "* GenerateContentRequest.contents: contents is not specified");
    if (!t->error[0])
        history_check(c->m, contents, t);
    if (t->error[0])
        return true;
    const json_t *last = json_array_get(contents, n - 1);
    if (is(role_of(last), "user") && count(last, "functionResponse")) {
        for (size_t k = 0; k < nparts(last); k++) {
            const json_t *resp =
                json_object_get(json_object_get(part(last, k), "functionResponse"), "response");
            char *s = resp ? mock_json_text(resp) : NULL;
            if (resp && (!s || mock_turn_result(t, s, strlen(s))))
                mock_turn_refuse(t, "out of memory");
            free(s);
        }
    } else if (is(role_of(last), "user") && tool) {
        char *text = mock_json_text(json_object_get(last, "parts"));
        mock_turn_ask(c->m, t, MOCK_FMT_GEMINI, tool, text ? text : "");
        free(text);
    }
    mock_turn_done(c->m, c, t, MOCK_FMT_GEMINI);
    return true;
}

/* ---- the answer ---- */

static json_t *usage(const struct mock_turn *t)
{
    json_t *u = json_pack("{s:i, s:i, s:i}", "promptTokenCount", (int)t->use.in,
                          "candidatesTokenCount", (int)(t->use.out - t->use.thoughts),
                          "totalTokenCount", (int)(t->use.in + t->use.out));
    if (t->thinking)
        json_object_set_new(u, "thoughtsTokenCount", json_integer(t->use.thoughts));
    return u;
}

/* The parts of the answer, a stream's text cut in "pieces". */
static json_t *parts(const struct mock_turn *t, unsigned pieces)
{
    json_t *list = json_array();
    if (t->thinking)
        json_array_append_new(list,
                              json_pack("{s:s, s:b}", "text", mock_thought(), "thought", 1));
    for (unsigned i = 0; i < t->ncalls; i++) {
        json_t *p = json_pack("{s:{s:s, s:o}}", "functionCall", "name", t->tool, "args",
                              mock_turn_args_json(i));
        if (i == 0 && t->sig[0])
            json_object_set_new(p, "thoughtSignature", json_string(t->sig));
        json_array_append_new(list, p);
    }
    for (unsigned i = 0; !t->ncalls && i < pieces; i++) {
        size_t at, len;
        mock_piece(t->text, pieces, i, &at, &len);
        json_array_append_new(list, json_pack("{s:s%}", "text", t->text + at, len));
    }
    return list;
}

/* An answer holding "ps" (taken); "last" adds the finishReason and the usage. */
static json_t *answer(const struct mock_turn *t, json_t *ps, bool last, const char *model,
                      const char *id)
{
    json_t *cand = json_pack("{s:{s:o, s:s}}", "content", "parts", ps, "role", "model");
    if (last)
        json_object_set_new(cand, "finishReason", json_string("STOP"));
    json_object_set_new(cand, "index", json_integer(0));
    json_t *v = json_pack("{s:[o]}", "candidates", cand);
    if (last)
        json_object_set_new(v, "usageMetadata", usage(t));
    json_object_set_new(v, "modelVersion", json_string(model));
    json_object_set_new(v, "responseId", json_string(id));
    return v;
}

void mock_gemini_answer(struct mock_call *c, const struct mock_turn *t, const char *model,
                        uint64_t serial, enum mock_framing framing, bool envelope,
                        struct mock_reply *r)
{
    char id[48];
    snprintf(id, sizeof(id), "mock-%llu", (unsigned long long)serial);
    if (framing == MOCK_WHOLE) {
        json_t *v = answer(t, parts(t, 1), true, model, id);
        mock_reply_json(
            r, 200, envelope ? json_pack("{s:o, s:s}", "response", v, "traceId", "mock") : v);
        return;
    }
    r->status = 200;
    r->type = "text/event-stream";
    json_t *ps = parts(t, mock_pieces(c));
    size_t i, n = json_array_size(ps);
    json_t *p;
    json_array_foreach(ps, i, p)
    {
        mock_stream_json(r, NULL, answer(t, json_pack("[O]", p), i + 1 == n, model, id),
                         "\r\n\r\n");
    }
    json_decref(ps);
    if (envelope)
        mock_stream_envelope(r);
    if (framing == MOCK_ARRAY)
        mock_stream_whole(r);
}
