/*
 * shape.c - how rota-load makes a call to each kind of provider: the path on the
 * upstream, the header that carries the key, a small request body, and how many tokens
 * the answer says it used.
 *
 * A provider kind listed here is called the way that provider expects (the shapes
 * rota-mockprovider answers, see PROVIDERS.md); any other kind, and every call under
 * --plain, gets the plain shape: POST /v1/chat/completions with a bearer token.
 *
 * DESIGN
 * Constant tables, read by every calling thread; nothing here allocates except the JSON
 * tree of one answer while its tokens are read.
 */
#include <jansson.h>
#include <string.h>

#include "load.h"

#define CHAT     "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]"
#define CONTENTS "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hello\"}]}]"

static const struct load_shape plain = {"", "/v1/chat/completions", "Authorization: Bearer ",
                                        "{\"model\":\"" LOAD_MODEL "\"," CHAT "}"};

static const struct load_shape shapes[] = {
    {"openai", "/v1/chat/completions", "Authorization: Bearer ",
     "{\"model\":\"" LOAD_MODEL "\"," CHAT "}"},
    {"anthropic", "/v1/messages",
     "x-api-key: ", "{\"model\":\"" LOAD_MODEL "\",\"max_tokens\":16," CHAT "}"},
    {"antigravity", "/v1internal:generateContent", "Authorization: Bearer ",
     "{\"model\":\"" LOAD_MODEL "\",\"request\":{" CONTENTS "}}"},
    {"github-copilot", "/chat/completions", "Authorization: Bearer ",
     "{\"model\":\"" LOAD_MODEL "\"," CHAT "}"},
    {"openrouter", "/api/v1/chat/completions", "Authorization: Bearer ",
     "{\"model\":\"" LOAD_MODEL "\"," CHAT "}"},
    {"llamacpp", "/completion", NULL, "{\"prompt\":\"hello\",\"n_predict\":16}"},
    {"gemini", "/v1beta/models/" LOAD_MODEL ":generateContent",
     "x-goog-api-key: ", "{" CONTENTS "}"},
};

const struct load_shape *load_shape_find(const char *kind, bool use_plain)
{
    for (size_t i = 0; kind && !use_plain && i < sizeof(shapes) / sizeof(shapes[0]); i++)
        if (strcmp(shapes[i].kind, kind) == 0)
            return &shapes[i];
    return &plain;
}

/* The integer at "key" of "o", or 0. */
static json_int_t num(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

uint64_t load_answer_tokens(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *usage = json_object_get(root, "usage");
    json_t *meta = json_object_get(root, "usageMetadata");
    if (!meta) /* Antigravity wraps Gemini's answer in "response" */
        meta = json_object_get(json_object_get(root, "response"), "usageMetadata");
    json_int_t t = num(usage, "total_tokens");
    if (!t) /* Anthropic */
        t = num(usage, "input_tokens") + num(usage, "output_tokens");
    if (!t) /* Gemini, Antigravity */
        t = num(meta, "totalTokenCount");
    if (!t) /* llama.cpp */
        t = num(root, "tokens_evaluated") + num(root, "tokens_predicted");
    json_decref(root);
    return t > 0 ? (uint64_t)t : 0;
}
