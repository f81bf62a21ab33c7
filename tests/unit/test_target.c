/* test_target: rota_target_of tells a worker where the call of a choice goes: the
 * provider's format, URL, endpoint, auth header and extra headers, the model the choice's
 * tier sends for the client's model, what that model takes and whether the route lets the
 * pool translate; from the choice's own generation across a reload until the handle lets
 * that generation go; never a key. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "clock.h"
#include "fixture.h"
#include "hash.h"
#include "rota.h"

#define KEY "sk-test-target-secret-0b7e"

/* One account per provider, one tier per account, so each tier is chosen in turn as the
 * ones before it are disabled. */
enum { CLAUDE, COPILOT, LOCAL, GEMINI, NPROV };

static const struct rota_desc_provider providers[NPROV] = {
    {.name = "claude",
     .kind = "anthropic",
     .base_url = "https://api.anthropic.com",
     .auth_header = "x-api-key",
     .auth_scheme = "",
     .headers = "anthropic-version: 2023-06-01\r\n"},
    {.name = "copilot",
     .kind = "github-copilot",
     .base_url = "https://api.githubcopilot.com",
     .auth_header = "Authorization",
     .auth_scheme = "token ",
     .headers = "Editor-Version: vscode/1.99.0\r\nCopilot-Integration-Id: vscode-chat\r\n"},
    {.name = "local",
     .kind = "llamacpp",
     .base_url = "http://127.0.0.1:8080",
     .auth_header = "",
     .auth_scheme = ""},
    {.name = "g", .kind = "gemini", .auth_header = "x-goog-api-key", .auth_scheme = ""},
};

/* Publish route "chat" (models gpt-4o, gpt-4o-mini): tier 0 claude maps gpt-4o, tier 1
 * copilot passes models through, tier 2 local sends "local_model" for all but gpt-4o-mini,
 * tier 3 gemini maps gpt-4o. */
static void publish(struct fx *f, const char *local_model)
{
    static struct rota_desc_account a[NPROV];
    static uint32_t members[NPROV];
    static const char *const claude_map[] = {"gpt-4o", "claude-sonnet-4", "chat",
                                             "claude-haiku", NULL};
    static const char *const local_map[] = {"gpt-4o-mini", "qwen2.5-1.5b", NULL};
    static const char *const gemini_map[] = {"gpt-4o", "gemini-2.5-pro", NULL};
    static const char *const models[] = {"gpt-4o", "gpt-4o-mini", NULL};
    struct rota_desc_tier t[NPROV];
    for (uint32_t i = 0; i < NPROV; i++) {
        a[i] = (struct rota_desc_account){
            .id = 100 + i, .name = providers[i].name, .provider = i, .credential = KEY};
        members[i] = i;
        t[i] = (struct rota_desc_tier){.strategy = ROTA_STRAT_HYBRID,
                                       .provider = i,
                                       .nmembers = 1,
                                       .members = &members[i]};
    }
    t[CLAUDE].models = claude_map;
    t[LOCAL].model = local_model;
    t[LOCAL].models = local_map;
    t[GEMINI].models = gemini_map;
    struct rota_desc_route r = {.name = "chat", .models = models, .ntiers = NPROV, .tiers = t};
    struct rota_desc d = {.nproviders = NPROV,
                          .naccounts = NPROV,
                          .nroutes = 1,
                          .providers = providers,
                          .accounts = a,
                          .routes = &r,
                          .config_hash = rota_hash_str(local_model)};
    assert_int_equal(fx_publish(f, "tgt", &d), 0);
}

/* A choice on the tier of provider "p": the tiers before it disabled. */
static void choose(struct fx *f, rota_t *h, uint32_t p, rota_choice *c)
{
    for (uint32_t i = 0; i < NPROV; i++)
        fx_flags(f, i, i < p ? ROTA_SNAP_DISABLED | ROTA_SNAP_HAS_DATA : ROTA_SNAP_HAS_DATA);
    rota_route_t rt;
    assert_int_equal(rota_route(h, "gpt-4o", &rt), 0);
    assert_int_equal(rota_select(h, &rt, NULL, 0, 10, c), 0);
    assert_int_equal(c->tier, p);
}

static void target(rota_t *h, const rota_choice *c, const char *model, rota_target *t)
{
    memset(t, 0x5a, sizeof(*t));
    int rc = rota_target_of(h, c, model, model ? strlen(model) : 0, t);
    if (rc)
        fail_msg("rota_target_of: %s", rota_strerror(rc));
    /* the key is the credential's business alone */
    assert_null(memmem(t, sizeof(*t), KEY, strlen(KEY)));
}

static void end(rota_t *h, const rota_choice *c)
{
    rota_outcome o = {.status = 200};
    rota_report(h, c, &o);
}

static void test_target_each_provider_and_model(void **state)
{
    (void)state;
    struct fx f = {0};
    rota_t *h;
    rota_choice c;
    rota_target t;
    publish(&f, "qwen2.5-7b");
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);

    choose(&f, h, CLAUDE, &c);
    target(h, &c, "gpt-4o", &t);
    assert_string_equal(t.provider, "claude");
    assert_string_equal(t.kind, "anthropic");
    assert_string_equal(t.format, "anthropic");
    assert_string_equal(t.base_url, "https://api.anthropic.com");
    assert_string_equal(t.path, "/v1/messages");
    assert_string_equal(t.auth_header, "x-api-key");
    assert_string_equal(t.auth_scheme, "");
    assert_string_equal(t.headers, "anthropic-version: 2023-06-01\r\n");
    assert_string_equal(t.model, "claude-sonnet-4");
    assert_int_equal(t.context, 0); /* what the config says when it says nothing */
    assert_int_equal(t.tools, 1);
    assert_int_equal(t.images, 1);
    assert_int_equal(t.cross_format, 1);
    target(h, &c, "chat", &t); /* the route's name, mapped too */
    assert_string_equal(t.model, "claude-haiku");
    target(h, &c, "gpt-4o-mini", &t); /* not in the map: as sent */
    assert_string_equal(t.model, "gpt-4o-mini");
    /* the client's model need not be NUL-terminated */
    assert_int_equal(rota_target_of(h, &c, "gpt-4o-and-more", 6, &t), 0);
    assert_string_equal(t.model, "claude-sonnet-4");
    end(h, &c);

    choose(&f, h, COPILOT, &c);
    target(h, &c, "gpt-4o", &t);
    assert_string_equal(t.format, "openai");
    assert_string_equal(t.path, "/chat/completions");
    assert_string_equal(t.auth_header, "Authorization");
    assert_string_equal(t.auth_scheme, "token ");
    assert_string_equal(
        t.headers, "Editor-Version: vscode/1.99.0\r\nCopilot-Integration-Id: vscode-chat\r\n");
    assert_string_equal(t.model, "gpt-4o"); /* passed through */
    target(h, &c, NULL, &t);
    assert_string_equal(t.model, "");
    end(h, &c);

    choose(&f, h, LOCAL, &c);
    target(h, &c, "gpt-4o", &t);
    assert_string_equal(t.format, "openai");
    assert_string_equal(t.base_url, "http://127.0.0.1:8080");
    assert_string_equal(t.path, "/v1/chat/completions");
    assert_string_equal(t.auth_header, ""); /* no key is sent */
    assert_string_equal(t.headers, "");
    assert_string_equal(t.model, "qwen2.5-7b"); /* the tier's own for every model ... */
    target(h, &c, "gpt-4o-mini", &t);
    assert_string_equal(t.model, "qwen2.5-1.5b"); /* ... but the ones its map names */
    end(h, &c);

    choose(&f, h, GEMINI, &c);
    target(h, &c, "gpt-4o", &t);
    assert_string_equal(t.format, "gemini");
    assert_string_equal(t.base_url, "");
    assert_string_equal(t.path, "/v1beta/models/gemini-2.5-pro:generateContent");
    assert_string_equal(t.auth_header, "x-goog-api-key");
    assert_string_equal(t.model, "gemini-2.5-pro");
    end(h, &c);

    rota_detach(h);
    fx_close(&f);
}

/* The other auth styles as the config turns them into headers, and the defaults of a
 * description that names none: a bearer token, the kind's format and endpoint. */
static void test_target_auth_styles_and_defaults(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *header, *scheme, *format, *path;
    } cases[] = {
        {"openai", NULL, NULL, "openai", "/v1/chat/completions"},
        {"openrouter", "Authorization", "Bearer ", "openai", "/api/v1/chat/completions"},
        {"azure-openai", "api-key", "", "openai",
         "/openai/deployments/m-1/chat/completions?api-version=2024-10-21"},
        {"antigravity", "Authorization", "Bearer ", "code-assist",
         "/v1internal:generateContent"},
        {"generic", "x-api-key", "", "openai", "/v1/chat/completions"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fx f = {0};
        struct rota_desc_provider p = {.name = "p",
                                       .kind = cases[i].kind,
                                       .auth_header = cases[i].header,
                                       .auth_scheme = cases[i].scheme};
        struct rota_desc_account a = {.id = 7, .name = "a", .credential = KEY};
        assert_int_equal(fx_one(&f, "tgs", &p, &a), 0);
        rota_t *h;
        rota_route_t rt;
        rota_choice c;
        rota_target t;
        assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
        assert_int_equal(rota_route(h, "r", &rt), 0);
        assert_int_equal(rota_select(h, &rt, NULL, 0, 0, &c), 0);
        target(h, &c, "m-1", &t);
        assert_string_equal(t.kind, cases[i].kind);
        assert_string_equal(t.format, cases[i].format);
        assert_string_equal(t.path, cases[i].path);
        assert_string_equal(t.auth_header, cases[i].header ? cases[i].header : "Authorization");
        assert_string_equal(t.auth_scheme, cases[i].header ? cases[i].scheme : "Bearer ");
        end(h, &c);
        rota_detach(h);
        fx_close(&f);
    }
}

/* What the chosen tier's model takes and whether its route lets the pool translate,
 * as the description said: route "open" has a tier of every default then one of a model
 * without tools or images and with a context window; route "same" (model "same-model")
 * forbids translation, on a tier of its own context. */
static void test_target_model_capabilities(void **state)
{
    (void)state;
    static const char *const open_models[] = {"gpt-4o", NULL};
    static const char *const same_models[] = {"same-model", NULL};
    struct rota_desc_account a[3];
    uint32_t members[3];
    for (uint32_t i = 0; i < 3; i++) {
        a[i] = (struct rota_desc_account){
            .id = 200 + i, .name = providers[i].name, .provider = i, .credential = KEY};
        members[i] = i;
    }
    struct rota_desc_tier open_tiers[2] = {
        {.provider = CLAUDE, .nmembers = 1, .members = &members[CLAUDE]},
        {.provider = LOCAL,
         .nmembers = 1,
         .members = &members[LOCAL],
         .no_tools = true,
         .no_images = true,
         .context = 8192},
    };
    struct rota_desc_tier same_tier = {.provider = COPILOT,
                                       .nmembers = 1,
                                       .members = &members[COPILOT],
                                       .context = UINT32_MAX};
    struct rota_desc_route r[2] = {
        {.name = "open", .models = open_models, .ntiers = 2, .tiers = open_tiers},
        {.name = "same",
         .models = same_models,
         .ntiers = 1,
         .tiers = &same_tier,
         .no_cross_format = true},
    };
    struct rota_desc d = {.nproviders = 3,
                          .naccounts = 3,
                          .nroutes = 2,
                          .providers = providers,
                          .accounts = a,
                          .routes = r,
                          .config_hash = 0xca95};
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "tgc", &d), 0);
    rota_t *h;
    rota_route_t rt;
    rota_choice c;
    rota_target t;
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);

    fx_flags(&f, CLAUDE, ROTA_SNAP_DISABLED | ROTA_SNAP_HAS_DATA); /* tier 1 of "open" */
    assert_int_equal(rota_route(h, "gpt-4o", &rt), 0);
    assert_int_equal(rota_select(h, &rt, NULL, 0, 10, &c), 0);
    assert_int_equal(c.tier, 1);
    target(h, &c, "gpt-4o", &t);
    assert_string_equal(t.provider, "local");
    assert_int_equal(t.context, 8192);
    assert_int_equal(t.tools, 0);
    assert_int_equal(t.images, 0);
    assert_int_equal(t.cross_format, 1);
    end(h, &c);

    assert_int_equal(rota_route(h, "same-model", &rt), 0);
    assert_int_equal(rota_select(h, &rt, NULL, 0, 10, &c), 0);
    target(h, &c, "same-model", &t);
    assert_string_equal(t.provider, "copilot");
    assert_int_equal(t.context, UINT32_MAX);
    assert_int_equal(t.tools, 1);
    assert_int_equal(t.images, 1);
    assert_int_equal(t.cross_format, 0);
    end(h, &c);

    rota_detach(h);
    fx_close(&f);
}

/* A model that does not fit says so; a choice that chose nothing is refused. */
static void test_target_errors(void **state)
{
    (void)state;
    struct fx f = {0};
    rota_t *h;
    rota_choice c;
    rota_target t;
    publish(&f, "qwen2.5-7b");
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    choose(&f, h, COPILOT, &c);
    char big[300];
    memset(big, 'm', sizeof(big));
    assert_int_equal(rota_target_of(h, &c, big, 255, &t), 0);
    assert_int_equal(strlen(t.model), 255);
    assert_int_equal(rota_target_of(h, &c, big, 256, &t), -ERANGE);
    assert_int_equal(rota_target_of(h, &c, NULL, 3, &t), -EINVAL);
    end(h, &c);
    rota_choice none = c;
    none.account_id = 0;
    assert_int_equal(rota_target_of(h, &none, "gpt-4o", 6, &t), -EINVAL);
    rota_detach(h);
    fx_close(&f);
}

static bool follows(rota_t *h, uint64_t gen)
{
    for (int i = 0; i < 300 && rota_generation(h) != gen; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return rota_generation(h) == gen;
}

/* A choice made before a reload gives the target of its own generation (the tier's model
 * of then), a new choice the new one; once the handle lets the old generation go, the old
 * choice is stale. */
static void test_target_across_reload(void **state)
{
    (void)state;
    struct fx f = {0};
    rota_t *h;
    rota_choice old, now;
    rota_target t;
    publish(&f, "qwen2.5-7b");
    assert_int_equal(rota_attach(f.instance, &h, NULL, 0), 0);
    choose(&f, h, LOCAL, &old);
    publish(&f, "llama-3.1-8b");
    assert_true(follows(h, f.m->hdr->generation));
    uint64_t moved = rota_clock_mono();
    choose(&f, h, LOCAL, &now);
    assert_true(now.generation > old.generation);
    target(h, &now, "gpt-4o", &t);
    assert_string_equal(t.model, "llama-3.1-8b");
    target(h, &old, "gpt-4o", &t);
    assert_string_equal(t.model, "qwen2.5-7b");
    /* kept for ROTA_SHM_FOLLOW_NS after the move, then let go at a mover's poll */
    int rc = 0;
    while (rota_clock_mono() - moved < ROTA_SHM_FOLLOW_NS + 2 * ROTA_NS_PER_S &&
           (rc = rota_target_of(h, &old, "gpt-4o", 6, &t)) == 0) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rc, ROTA_ESTALE);
    assert_true(rota_clock_mono() - moved >= ROTA_SHM_FOLLOW_NS / 2);
    target(h, &now, "gpt-4o", &t); /* the current one is untouched */
    assert_string_equal(t.model, "llama-3.1-8b");
    end(h, &old);
    end(h, &now);
    rota_detach(h);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_each_provider_and_model),
        cmocka_unit_test(test_target_auth_styles_and_defaults),
        cmocka_unit_test(test_target_model_capabilities),
        cmocka_unit_test(test_target_errors),
        cmocka_unit_test(test_target_across_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
