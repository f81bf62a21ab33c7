/*
 * plan.c - what to ask each kind of provider for its quota (PROVIDERS.md).
 *
 * DESIGN
 * A table of the usual probe request per provider kind: the cheapest call whose answer
 * carries the account's quota or rate-limit state. The config may override the path,
 * the method and the body, or replace the request by a command whose output the kind's
 * parser reads (an exec target). Pure; any thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "probe.h"

static const struct plan {
    const char *kind, *method, *path, *body, *extra;
} plans[] = {
    {"openai", "GET", "/v1/models", "", ""},
    {"azure-openai", "GET", "/openai/models?api-version=2024-10-21", "", ""},
    {"anthropic", "GET", "/v1/models", "", "anthropic-version: 2023-06-01"},
    {"github-copilot", "GET", "/copilot_internal/user", "", ""},
    {"github", "GET", "/rate_limit", "", ""},
    {"antigravity", "POST", "/v1internal:retrieveUserQuota", "{}", ""},
    {"openrouter", "GET", "/api/v1/key", "", ""},
    {"llamacpp", "GET", "/health", "", ""},
    {"generic", "GET", "", "", ""},
};

static const struct {
    const char *style, *prefix;
} auths[] = {
    {"bearer", "Authorization: Bearer "},
    {"x-api-key", "x-api-key: "},
    {"x-goog-api-key", "x-goog-api-key: "},
    {"token", "Authorization: token "},
    {"api-key", "api-key: "},
};

int rota_probe_plan(struct rota_probe_target *t, const char *kind, const char *base_url,
                    const char *auth_style, const char *credential, const char *path,
                    const char *method, const char *body)
{
    const struct plan *pl = NULL;
    for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++)
        if (strcmp(plans[i].kind, kind) == 0)
            pl = &plans[i];
    if (!pl || !base_url || !*base_url)
        return -ENOENT;
    size_t bl = strlen(base_url);
    while (bl > 0 && base_url[bl - 1] == '/')
        bl--;
    const char *p = path ? path : pl->path;
    if ((size_t)snprintf(t->url, sizeof(t->url), "%.*s%s", (int)bl, base_url, p) >=
        sizeof(t->url))
        return -ENAMETOOLONG;
    snprintf(t->kind, sizeof(t->kind), "%s", kind);
    snprintf(t->method, sizeof(t->method), "%s", method ? method : pl->method);
    snprintf(t->body, sizeof(t->body), "%s", body ? body : pl->body);
    snprintf(t->extra, sizeof(t->extra), "%s", pl->extra);
    t->command[0] = 0;
    t->auth[0] = 0;
    for (size_t i = 0; credential && *credential && i < sizeof(auths) / sizeof(auths[0]); i++)
        if (strcmp(auths[i].style, auth_style ? auth_style : "bearer") == 0)
            snprintf(t->auth, sizeof(t->auth), "%s%s", auths[i].prefix, credential);
    return 0;
}

int rota_probe_plan_exec(struct rota_probe_target *t, const char *kind, const char *command,
                         const char *credential)
{
    if (!rota_parser_find(kind) || !command || !*command)
        return -ENOENT;
    const char *cred = credential ? credential : "";
    if (strlen(command) >= sizeof(t->command) || strlen(cred) >= sizeof(t->auth))
        return -ENAMETOOLONG;
    snprintf(t->kind, sizeof(t->kind), "%s", kind);
    snprintf(t->command, sizeof(t->command), "%s", command);
    snprintf(t->auth, sizeof(t->auth), "%s", cred);
    t->url[0] = t->method[0] = t->body[0] = t->extra[0] = 0;
    return 0;
}

const char *rota_probe_secret(const struct rota_probe_target *t)
{
    if (t->command[0]) /* exec: the credential alone */
        return t->auth;
    const char *sp = strrchr(t->auth, ' '); /* "Name: [Scheme ]credential" */
    return sp ? sp + 1 : t->auth;
}
