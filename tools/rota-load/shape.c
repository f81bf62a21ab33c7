/*
 * shape.c - what rota-load sends in each wire format, and how many tokens the answer
 * says it used. Where a call goes (URL, endpoint, key header, extra headers, model) is
 * rota_target_of's answer (main.c).
 *
 * DESIGN
 * Pure, for every calling thread; nothing here allocates except the JSON
 * tree of one answer while its tokens are read.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "load.h"

#define CHAT     "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]"
#define CONTENTS "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hello\"}]}]"

void load_body(const char *format, const char *model, char *buf, size_t n)
{
    if (strcmp(format, "anthropic") == 0)
        snprintf(buf, n, "{\"model\":\"%s\",\"max_tokens\":16," CHAT "}", model);
    else if (strcmp(format, "gemini") == 0) /* the model is in the path */
        snprintf(buf, n, "{" CONTENTS "}");
    else if (strcmp(format, "code-assist") == 0)
        snprintf(buf, n, "{\"model\":\"%s\",\"request\":{" CONTENTS "}}", model);
    else
        snprintf(buf, n, "{\"model\":\"%s\"," CHAT "}", model);
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
