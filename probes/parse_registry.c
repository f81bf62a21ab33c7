/*
 * parse_registry.c - which parser reads which provider kind.
 */
#include <string.h>

#include "parse.h"

static const struct rota_parser p_openai = {"openai", rota_parse_openai};
static const struct rota_parser p_azure = {"azure-openai", rota_parse_azure};
static const struct rota_parser p_anthropic = {"anthropic", rota_parse_anthropic};
static const struct rota_parser p_gemini = {"gemini", rota_parse_gemini};
static const struct rota_parser p_copilot = {"github-copilot", rota_parse_copilot};
static const struct rota_parser p_github = {"github", rota_parse_github};
static const struct rota_parser p_antigravity = {"antigravity", rota_parse_antigravity};
static const struct rota_parser p_openrouter = {"openrouter", rota_parse_openrouter};
static const struct rota_parser p_llamacpp = {"llamacpp", rota_parse_llamacpp};
static const struct rota_parser p_generic = {"generic", rota_parse_generic};

const struct rota_parser *const rota_parsers[] = {
    &p_openai,      &p_azure,      &p_anthropic, &p_gemini,  &p_copilot, &p_github,
    &p_antigravity, &p_openrouter, &p_llamacpp,  &p_generic, NULL};

const struct rota_parser *rota_parser_find(const char *kind)
{
    for (int i = 0; kind && rota_parsers[i]; i++)
        if (strcmp(rota_parsers[i]->kind, kind) == 0)
            return rota_parsers[i];
    return NULL;
}
