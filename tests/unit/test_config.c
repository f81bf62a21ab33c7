/* test_config: the YAML loader on real files: the example loads into the desc it
 * describes (and publishes), credentials resolve from env and files or say what is
 * missing, base_url is a URL, and every file of tests/config/broken is refused at the
 * line and column its first line names, with no credential in any message. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "config_int.h"
#include "fixture.h"
#include "stranger.h"
#include "hash.h"

#ifndef ROTA_TEST_SRC
#error "ROTA_TEST_SRC must name the tests directory"
#endif

#define SECRET_AG1     "sk-ENV-SECRET-AG1-5d2c"
#define SECRET_AG2     "sk-ENV-SECRET-AG2-9e0f"
#define SECRET_FILE    "ghp-FILE-SECRET-7b1e"
#define SECRET_LITERAL "sk-LITERAL-SECRET-c4a8"

/* Every value a message must never hold, the corpus's own fakes included. */
static const char *const secrets[] = {SECRET_AG1,
                                      SECRET_AG2,
                                      SECRET_FILE,
                                      SECRET_LITERAL,
                                      "sk-LITERAL-CORPUS-SECRET",
                                      "hunter2-CORPUS-SECRET"};

struct env {
    char dir[64];
    char example[128]; /* the example, its token path pointing into dir */
    char token[128];
};

struct warns {
    int n;
    char last[512];
    char all[2048]; /* every one, a line each, as room allows */
};

static void on_warn(void *arg, const char *msg)
{
    struct warns *w = arg;
    w->n++;
    snprintf(w->last, sizeof(w->last), "%s", msg);
    size_t used = strlen(w->all);
    snprintf(w->all + used, sizeof(w->all) - used, "%s\n", msg);
}

static void assert_clean(const char *msg)
{
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(msg, secrets[i]))
            fail_msg("a credential leaked into: %s", msg);
    assert_null(strchr(msg, '\n'));
}

/* Write "text" to "path", readable by its owner only (as a key file should be). */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/rota-test-config-XXXXXX");
    if (!e || !mkdtemp(e->dir))
        return -1;
    snprintf(e->token, sizeof(e->token), "%s/gh-1.token", e->dir);
    snprintf(e->example, sizeof(e->example), "%s/rota.yaml", e->dir);
    write_file(e->token, SECRET_FILE "\n");
    char *text = read_all(ROTA_TEST_SRC "/../examples/rota.yaml");
    const char *old = "file:/etc/rota/example/gh-1.token"; /* the credential, not a comment */
    char *at = strstr(text, old);
    assert_non_null(at);
    FILE *f = fopen(e->example, "w");
    fprintf(f, "%.*sfile:%s%s", (int)(at - text), text, e->token, at + strlen(old));
    fclose(f);
    free(text);
    setenv("ROTA_EXAMPLE_AG1", SECRET_AG1, 1);
    setenv("ROTA_EXAMPLE_AG2", SECRET_AG2, 1);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    char path[160];
    const char *files[] = {"gh-1.token",  "rota.yaml",  "other.yaml",
                           "empty.token", "crlf.token", "link.token"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", e->dir, files[i]);
        unlink(path);
    }
    rmdir(e->dir);
    free(e);
    return 0;
}

static struct rota_config *load_ok(const char *path, struct warns *w)
{
    char err[512];
    struct rota_config *c = NULL;
    int rc = rota_config_load(path, on_warn, w, &c, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    return c;
}

/* Parse "text" and expect failure; returns the message in "err". */
static int parse_err(const char *text, char *err, size_t n, struct warns *w)
{
    struct rota_config *c = NULL;
    int rc = rota_config_parse("inline.yaml", text, strlen(text), on_warn, w, &c, err, n);
    assert_null(c);
    assert_clean(err);
    return rc;
}

static void test_config_example_desc(void **state)
{
    struct env *e = *state;
    struct warns w = {0};
    struct rota_config *c = load_ok(e->example, &w);
    const struct rota_desc *d = &c->desc;
    assert_int_equal(w.n, 0);
    assert_string_equal(c->instance, "example");
    /* No state_dir in the example: the default (root's, or the user's under HOME). */
    assert_non_null(strstr(c->socket, "/rota/example/rotad.sock"));
    assert_true(c->state_dir_default);
    assert_int_equal(c->heartbeat_ns, 1000000000ull);
    assert_int_equal(d->stale_after_ns, 30000000000ull);

    assert_int_equal(d->nproviders, 3);
    assert_string_equal(d->providers[0].name, "antigravity");
    assert_string_equal(d->providers[1].kind, "github-copilot");
    assert_string_equal(c->providers[1].auth, "token");
    assert_string_equal(c->providers[2].auth, "none");
    assert_float_equal(d->providers[0].pessimistic, 0.85, 1e-9);
    assert_float_equal(c->providers[0].fail_rate, 0.5, 1e-9);
    assert_int_equal(d->providers[0].open_cap_ms, 600000);
    assert_int_equal(c->providers[2].probe_interval_ns, 30000000000ull);

    assert_int_equal(d->naccounts, 4);
    const struct rota_desc_account *a = d->accounts;
    assert_string_equal(a[0].name, "ag-1");
    assert_int_equal(a[0].id, rota_hash_str("antigravity/ag-1"));
    assert_int_equal(a[3].id, rota_hash_str("local/gguf"));
    assert_int_equal(a[0].rpm, 60);
    assert_int_equal(a[0].tpm, 200000);
    assert_int_equal(a[0].nwin, 2);
    assert_string_equal(a[0].pools[0], "*");
    assert_string_equal(a[0].pools[1], "gemini-pro");
    assert_null(a[0].pools[2]);
    assert_int_equal(a[0].win[0].pool, 0);
    assert_int_equal(a[0].win[0].limit, 500);
    assert_int_equal(a[0].win[0].reset.kind, ROTA_RESET_WEEK);
    assert_int_equal(a[0].win[0].reset.wday, 0);
    assert_string_equal(a[0].win[0].tz, "America/Los_Angeles");
    assert_int_equal(a[0].win[1].pool, 1);
    assert_int_equal(a[0].win[1].reset.kind, ROTA_RESET_DAY);
    assert_string_equal(a[0].win[1].tz, "UTC");
    assert_int_equal(a[2].win[0].reset.kind, ROTA_RESET_MONTH);
    assert_string_equal(a[0].credential, SECRET_AG1);
    assert_string_equal(a[1].credential, SECRET_AG2);
    assert_string_equal(a[2].credential, SECRET_FILE);
    assert_null(a[3].credential);
    assert_string_equal(c->accounts[0].cred_source, "env:ROTA_EXAMPLE_AG1");
    assert_string_equal(c->accounts[3].cred_source, "none");
    assert_string_equal(c->accounts[0].reset[0], "weekly sun 00:00");

    assert_int_equal(d->nroutes, 1);
    const struct rota_desc_route *r = &d->routes[0];
    assert_string_equal(r->name, "chat");
    assert_string_equal(r->models[0], "gemini-2.5-pro");
    assert_string_equal(r->models[1], "claude-sonnet-4");
    assert_null(r->models[2]);
    assert_int_equal(r->ntiers, 3);
    assert_int_equal(r->tiers[0].provider, 0);
    assert_int_equal(r->tiers[0].nmembers, 2);
    assert_int_equal(r->tiers[0].members[0], 0);
    assert_int_equal(r->tiers[0].members[1], 1);
    assert_int_equal(r->tiers[0].strategy, ROTA_STRAT_HYBRID);
    assert_float_equal(r->tiers[0].ceiling, 0.80, 1e-9);
    assert_int_equal(r->tiers[1].strategy, ROTA_STRAT_ROUND_ROBIN);
    assert_float_equal(r->tiers[1].ceiling, 0, 0); /* the provider's critical */
    assert_int_equal(r->tiers[2].provider, 2);     /* [gguf]: one provider's account */
    assert_int_equal(r->tiers[2].nmembers, 1);
    assert_int_equal(r->tiers[2].members[0], 3);
    assert_int_equal(r->tiers[2].strategy, ROTA_STRAT_FILL_FIRST);
    assert_float_equal(r->tiers[2].ceiling, 1.0, 1e-9);

    assert_non_null(strstr(c->journal.file_path, "/rota/example/journal"));
    assert_int_equal(c->journal.max_bytes, 64ull << 20);
    assert_int_equal(c->journal.fsync, ROTA_FSYNC_INTERVAL);
    assert_int_equal(c->journal.fsync_interval_ns, 100000000ull);
    assert_false(c->journal.redis_enabled);
    assert_string_equal(c->journal.redis_prefix, "rota:example");
    assert_int_equal(c->journal.redis_ttl_ns, 7 * 86400000000000ull);

    /* what rotad does with it: publish a table */
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "cfg", d), 0);
    assert_int_equal(f.m->naccounts, 4);
    assert_int_equal(f.m->hdr->config_hash, d->config_hash);
    assert_int_equal(f.m->accounts[0].id, a[0].id);
    fx_close(&f);
    rota_config_free(c);
}

static void test_config_example_hash_and_ids_stable(void **state)
{
    struct env *e = *state;
    struct warns w = {0};
    struct rota_config *a = load_ok(e->example, &w), *b = load_ok(e->example, &w);
    assert_int_equal(a->desc.config_hash, b->desc.config_hash);
    for (uint32_t i = 0; i < a->desc.naccounts; i++)
        assert_int_equal(a->desc.accounts[i].id, b->desc.accounts[i].id);
    for (uint32_t i = 1; i < a->desc.naccounts; i++)
        assert_int_not_equal(a->desc.accounts[i].id, a->desc.accounts[i - 1].id);
    /* the same file with one more comment is a changed config */
    char other[160], *text = read_all(e->example);
    snprintf(other, sizeof(other), "%s/other.yaml", e->dir);
    FILE *f = fopen(other, "w");
    fprintf(f, "%s# changed\n", text);
    fclose(f);
    free(text);
    struct rota_config *x = load_ok(other, &w);
    assert_int_not_equal(x->desc.config_hash, a->desc.config_hash);
    assert_int_equal(x->desc.accounts[0].id, a->desc.accounts[0].id);
    rota_config_free(a);
    rota_config_free(b);
    rota_config_free(x);
}

static void test_config_print_names_sources_not_secrets(void **state)
{
    struct env *e = *state;
    struct warns w = {0};
    struct rota_config *c = load_ok(e->example, &w);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    rota_config_print(c, f);
    fclose(f);
    assert_non_null(strstr(out, "env:ROTA_EXAMPLE_AG1"));
    assert_non_null(strstr(out, "file:"));
    assert_non_null(strstr(out, e->token));
    assert_non_null(strstr(out, "weekly sun 00:00"));
    assert_non_null(strstr(out, "America/Los_Angeles"));
    assert_non_null(strstr(out, "fill-first"));
    assert_non_null(strstr(out, "antigravity/ag-1, antigravity/ag-2"));
    /* tiers numbered from 0, as rotactl and rota_choice.tier number them */
    assert_non_null(strstr(out, "\n  tier 0 "));
    assert_non_null(strstr(out, "\n  tier 2 "));
    assert_null(strstr(out, "\n  tier 3 "));
    char id[32];
    snprintf(id, sizeof(id), "0x%016llx", (unsigned long long)c->desc.accounts[0].id);
    assert_non_null(strstr(out, id));
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        assert_null(strstr(out, secrets[i]));
    free(out);
    rota_config_free(c);
}

#define CRED_YAML                                                                              \
    "instance: t\n"                                                                            \
    "state_dir: /tmp/rota-t\n"                                                                 \
    "providers:\n"                                                                             \
    "  - name: p\n"                                                                            \
    "    kind: generic\n"                                                                      \
    "    accounts:\n"                                                                          \
    "      - {name: env, credential: env:ROTA_TEST_CRED}\n"                                    \
    "      - {name: file, credential: 'file:%s'}\n"                                            \
    "      - {name: lit, credential: " SECRET_LITERAL "}\n"                                    \
    "      - {name: none, credential: none}\n"

static void test_config_credentials_resolve(void **state)
{
    struct env *e = *state;
    char text[1024], err[512], crlf[160];
    snprintf(crlf, sizeof(crlf), "%s/crlf.token", e->dir);
    write_file(crlf, SECRET_FILE "\r\nsecond line\n");
    setenv("ROTA_TEST_CRED", SECRET_AG1, 1);
    snprintf(text, sizeof(text), CRED_YAML, crlf);
    struct warns w = {0};
    struct rota_config *c = NULL;
    int rc =
        rota_config_parse("creds.yaml", text, strlen(text), on_warn, &w, &c, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    const struct rota_desc_account *a = c->desc.accounts;
    assert_string_equal(a[0].credential, SECRET_AG1);
    assert_string_equal(a[1].credential, SECRET_FILE); /* first line, CR LF stripped */
    assert_string_equal(a[2].credential, SECRET_LITERAL);
    assert_null(a[3].credential);
    assert_string_equal(c->accounts[0].cred_source, "env:ROTA_TEST_CRED");
    assert_string_equal(c->accounts[2].cred_source, "literal");
    assert_string_equal(c->accounts[3].cred_source, "none");
    /* the literal is accepted with exactly one warning, which does not repeat it */
    assert_int_equal(w.n, 1);
    assert_string_equal(w.last, "creds.yaml:9:33: account p/lit: literal credential; use "
                                "env:NAME or file:PATH");
    assert_clean(w.last);
    rota_config_free(c);
    unsetenv("ROTA_TEST_CRED");
}

/* Load CRED_YAML with "file" as the file account's path; fails the test on an error. */
static struct rota_config *load_creds(const char *file, struct warns *w)
{
    char text[1024], err[512];
    snprintf(text, sizeof(text), CRED_YAML, file);
    struct rota_config *c = NULL;
    if (rota_config_parse("inline.yaml", text, strlen(text), on_warn, w, &c, err, sizeof(err)))
        fail_msg("%s", err);
    return c;
}

/* A credential that does not resolve is the environment's matter, not the file's: the
 * config loads, the account has no credential, and what is missing is named (never a
 * value) with the credential's position. */
static void test_config_credentials_unresolved(void **state)
{
    struct env *e = *state;
    char empty[160];
    struct warns w = {0};
    /* unset variable */
    unsetenv("ROTA_TEST_CRED");
    struct rota_config *c = load_creds(e->token, &w);
    assert_null(c->desc.accounts[0].credential);
    assert_string_equal(c->accounts[0].cred_source, "env:ROTA_TEST_CRED");
    assert_string_equal(c->accounts[0].cred_problem, "is not set");
    assert_string_equal(c->accounts[0].cred_where, "inline.yaml:7:33");
    assert_null(c->accounts[1].cred_problem); /* the others resolve */
    assert_string_equal(c->desc.accounts[1].credential, SECRET_FILE);
    assert_null(c->accounts[2].cred_problem);
    assert_null(c->accounts[3].cred_problem);
    assert_int_equal(w.n, 1); /* the literal's warning only */
    rota_config_free(c);
    /* empty variable */
    setenv("ROTA_TEST_CRED", "", 1);
    c = load_creds(e->token, &w);
    assert_null(c->desc.accounts[0].credential);
    assert_string_equal(c->accounts[0].cred_problem, "is empty");
    rota_config_free(c);
    /* missing file */
    setenv("ROTA_TEST_CRED", SECRET_AG2, 1);
    c = load_creds("/nonexistent/rota.token", &w);
    assert_string_equal(c->desc.accounts[0].credential, SECRET_AG2);
    assert_null(c->accounts[0].cred_problem);
    assert_null(c->desc.accounts[1].credential);
    assert_string_equal(c->accounts[1].cred_source, "file:/nonexistent/rota.token");
    assert_string_equal(c->accounts[1].cred_problem,
                        "cannot be read (No such file or directory)");
    assert_string_equal(c->accounts[1].cred_where, "inline.yaml:8:34");
    rota_config_free(c);
    /* empty first line */
    snprintf(empty, sizeof(empty), "%s/empty.token", e->dir);
    write_file(empty, "\n" SECRET_FILE "\n");
    c = load_creds(empty, &w);
    assert_null(c->desc.accounts[1].credential);
    assert_string_equal(c->accounts[1].cred_problem, "has an empty first line");
    rota_config_free(c);
    /* a directory is no credential file */
    c = load_creds(e->dir, &w);
    assert_null(c->desc.accounts[1].credential);
    assert_string_equal(c->accounts[1].cred_problem, "is not a regular file");
    rota_config_free(c);
    unsetenv("ROTA_TEST_CRED");
    /* what is wrong in the file itself stays an error */
    char err[512];
    static const char bad_env[] = "instance: t\nstate_dir: /tmp/rota-t\nproviders:\n"
                                  "  - name: p\n    kind: generic\n"
                                  "    accounts: [{name: a, credential: 'env:1BAD-NAME'}]\n";
    assert_int_equal(parse_err(bad_env, err, sizeof(err), &w), -EINVAL);
    assert_non_null(strstr(err, "inline.yaml:6:38: 'credential' in account 'a' of provider "
                                "'p' names no valid variable after env:"));
}

/* The shipped examples are valid files whatever the environment holds: with none of
 * their credentials set they load, and every unresolved one is named. */
/* A key file readable by others loads, with a warning that names the file, not the key;
 * a symbolic link is refused, not followed, even to a good key file. */
static void test_config_credentials_file_modes(void **state)
{
    struct env *e = *state;
    char sym[160];
    struct warns w = {0};
    assert_int_equal(chmod(e->token, 0644), 0);
    setenv("ROTA_TEST_CRED", SECRET_AG2, 1);
    struct rota_config *c = load_creds(e->token, &w);
    assert_string_equal(c->desc.accounts[1].credential, SECRET_FILE);
    assert_int_equal(w.n, 2); /* the file's and the literal's */
    const char *file_warn = strstr(w.all, "inline.yaml:8:34: account p/file: key file");
    assert_non_null(file_warn);
    assert_non_null(strstr(file_warn, "readable by every user (mode 0644); chmod 600 it"));
    assert_clean(w.last);
    assert_null(strstr(w.all, SECRET_FILE));
    rota_config_free(c);
    assert_int_equal(chmod(e->token, 0600), 0);
    snprintf(sym, sizeof(sym), "%s/link.token", e->dir); /* removed by teardown */
    assert_int_equal(symlink(e->token, sym), 0);
    c = load_creds(sym, &w);
    assert_null(c->desc.accounts[1].credential);
    assert_non_null(strstr(c->accounts[1].cred_problem, "symbolic link"));
    rota_config_free(c);
    /* a second name for it (a hard link): its owner proves nothing, refused */
    char hard[160];
    snprintf(hard, sizeof(hard), "%s/hard.token", e->dir);
    assert_int_equal(link(e->token, hard), 0);
    c = load_creds(e->token, &w);
    unlink(hard);
    assert_null(c->desc.accounts[1].credential);
    assert_non_null(strstr(c->accounts[1].cred_problem, "hard links"));
    assert_null(strstr(c->accounts[1].cred_problem, SECRET_FILE));
    rota_config_free(c);
    unsetenv("ROTA_TEST_CRED");
}

/* Two accounts sharing a key file others may read, and a third with another such file:
 * one warning per file, naming it and its mode, however many accounts name it. */
static void test_config_readable_key_file_warned_once(void **state)
{
    struct env *e = *state;
    char other[160], text[1024];
    snprintf(other, sizeof(other), "%s/crlf.token", e->dir); /* removed by teardown */
    write_file(other, SECRET_AG2 "\n");
    assert_int_equal(chmod(e->token, 0644), 0);
    assert_int_equal(chmod(other, 0640), 0);
    snprintf(text, sizeof(text),
             "instance: t\nstate_dir: /tmp/rota-t\nproviders:\n"
             "  - name: p\n    kind: openai\n    accounts:\n"
             "      - {name: a, credential: 'file:%s'}\n"
             "      - {name: b, credential: 'file:%s'}\n"
             "  - name: q\n    kind: openai\n    accounts:\n"
             "      - {name: c, credential: 'file:%s'}\n"
             "      - {name: d, credential: 'file:%s'}\n",
             e->token, e->token, other, e->token);
    struct warns w = {0};
    struct rota_config *c = NULL;
    char err[512];
    if (rota_config_parse("once.yaml", text, strlen(text), on_warn, &w, &c, err, sizeof(err)))
        fail_msg("%s", err);
    assert_string_equal(c->desc.accounts[1].credential, SECRET_FILE);
    assert_string_equal(c->desc.accounts[2].credential, SECRET_AG2);
    rota_config_free(c);
    if (w.n != 2)
        fail_msg("%d warnings, expected one per file:\n%s", w.n, w.all);
    assert_non_null(strstr(w.all, "account p/a: key file"));
    assert_non_null(strstr(w.all, "readable by every user (mode 0644)"));
    assert_non_null(strstr(w.all, "account q/c: key file"));
    assert_non_null(strstr(w.all, "readable by its group (mode 0640)"));
    assert_null(strstr(w.all, SECRET_FILE));
    assert_null(strstr(w.all, SECRET_AG2));
    assert_int_equal(chmod(e->token, 0600), 0);
}

/* strict: true makes a key file its group or others may read an error that refuses the
 * config, naming the file and its mode; once only its owner can read it, it loads. */
static void test_config_strict_refuses_readable_key_file(void **state)
{
    struct env *e = *state;
    char text[1024], err[512];
    snprintf(text, sizeof(text),
             "instance: t\nstate_dir: /tmp/rota-t\nstrict: true\nproviders:\n"
             "  - name: p\n    kind: openai\n    accounts:\n"
             "      - {name: a, credential: 'file:%s'}\n",
             e->token);
    struct warns w = {0};
    struct rota_config *c = NULL;
    assert_int_equal(chmod(e->token, 0640), 0);
    assert_int_equal(
        rota_config_parse("strict.yaml", text, strlen(text), on_warn, &w, &c, err, sizeof(err)),
        -EINVAL);
    assert_null(c);
    assert_clean(err);
    char want[256];
    snprintf(want, sizeof(want), "strict.yaml:8:31: ");
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("not at the credential: %s", err);
    snprintf(want, sizeof(want),
             "names key file %s, readable by its group (mode 0640); refused with strict: true",
             e->token);
    if (!strstr(err, want))
        fail_msg("\"%s\" lacks \"%s\"", err, want);
    assert_int_equal(chmod(e->token, 0600), 0);
    if (rota_config_parse("strict.yaml", text, strlen(text), on_warn, &w, &c, err, sizeof(err)))
        fail_msg("%s", err);
    assert_true(c->strict);
    assert_string_equal(c->desc.accounts[0].credential, SECRET_FILE);
    rota_config_free(c);
    assert_int_equal(w.n, 0);
}

/* strict: true refuses a literal key in a config file its group or others may read (a
 * literal in a file only its owner reads keeps its warning), and an exec probe that puts
 * the key on a command line. */
static void test_config_strict_literal_and_command_line(void **state)
{
    struct env *e = *state;
    char path[160], err[512];
    snprintf(path, sizeof(path), "%s/other.yaml", e->dir); /* removed by teardown */
    write_file(path, "instance: t\nstate_dir: /tmp/rota-t\nstrict: true\nproviders:\n"
                     "  - name: p\n    kind: openai\n    accounts:\n"
                     "      - {name: lit, credential: " SECRET_LITERAL "}\n");
    assert_int_equal(chmod(path, 0644), 0);
    struct warns w = {0};
    struct rota_config *c = NULL;
    assert_int_equal(rota_config_load(path, on_warn, &w, &c, err, sizeof(err)), -EINVAL);
    assert_null(c);
    assert_clean(err);
    if (!strstr(err, "is a literal key in a file readable by every user (mode 0644); "
                     "refused with strict: true"))
        fail_msg("%s", err);
    assert_int_equal(chmod(path, 0600), 0);
    c = load_ok(path, &w);
    rota_config_free(c);
    assert_int_equal(w.n, 1); /* the literal's warning */
    const char *text = "instance: t\nstate_dir: /tmp/rota-t\nstrict: true\nproviders:\n"
                       "  - name: copilot\n    kind: github-copilot\n"
                       "    probe: {command: 'sh -c \"gh api -H x:$ROTA_CREDENTIAL /u\"'}\n"
                       "    accounts: [{name: a, credential: 'env:ROTA_TEST_CRED'}]\n";
    assert_int_equal(
        rota_config_parse("inline.yaml", text, strlen(text), on_warn, &w, &c, err, sizeof(err)),
        -EINVAL);
    assert_null(c);
    if (!strstr(err, "inline.yaml:7:22: ") ||
        !strstr(err, "puts the key on a command line, readable by every user in /proc; "
                     "refused with strict: true"))
        fail_msg("%s", err);
}

struct planted {
    char key[200], link[200];
};

/* As the stranger: a key file of her own, and a link to /etc/shadow. */
static int plant(void *arg)
{
    const struct planted *p = arg;
    FILE *f = fopen(p->key, "w");
    if (!f || fputs("sk-STRANGER-KEY\n", f) < 0 || fclose(f) != 0)
        return 1;
    if (chmod(p->key, 0600) != 0)
        return 2;
    return symlink("/etc/shadow", p->link) == 0 ? 0 : 3;
}

/* A real second user owns a key file, or plants a link to /etc/shadow: both refused,
 * with an error that quotes nothing of either file. */
static void test_config_credentials_stranger_refused(void **state)
{
    struct env *e = *state;
    uid_t uid;
    gid_t gid;
    char why[160], drop[128], shadow[512] = "";
    if (!stranger_ids(&uid, &gid, why, sizeof(why))) {
        print_message("skipped: %s\n", why);
        skip();
    }
    struct planted p;
    snprintf(drop, sizeof(drop), "%s/drop", e->dir);
    assert_int_equal(mkdir(drop, 0700), 0);
    assert_int_equal(chown(drop, uid, gid), 0);
    assert_int_equal(chmod(e->dir, 0711), 0);
    snprintf(p.key, sizeof(p.key), "%s/key", drop);
    snprintf(p.link, sizeof(p.link), "%s/shadow", drop);
    assert_int_equal(as_stranger(plant, &p), 0);
    FILE *f = fopen("/etc/shadow", "r");
    if (f) {
        if (!fgets(shadow, sizeof(shadow), f))
            shadow[0] = 0;
        shadow[strcspn(shadow, "\n")] = 0;
        fclose(f);
    }
    setenv("ROTA_TEST_CRED", SECRET_AG2, 1);
    const char *paths[] = {p.key, p.link};
    const char *want[] = {"is owned by uid", "symbolic link"};
    for (int i = 0; i < 2; i++) {
        struct warns w = {0};
        struct rota_config *c = load_creds(paths[i], &w);
        const struct rota_config_account *ca = &c->accounts[1];
        assert_null(c->desc.accounts[1].credential);
        assert_non_null(ca->cred_problem);
        if (!strstr(ca->cred_problem, want[i]))
            fail_msg("problem \"%s\" lacks \"%s\"", ca->cred_problem, want[i]);
        assert_null(strstr(ca->cred_problem, "STRANGER"));
        assert_null(strstr(w.all, "STRANGER"));
        if (shadow[0]) { /* not one line of shadow, nor its first name */
            assert_null(strstr(ca->cred_problem, shadow));
            assert_null(strstr(ca->cred_problem, "root:"));
        }
        assert_string_equal(c->desc.accounts[0].credential, SECRET_AG2); /* the rest loads */
        rota_config_free(c);
    }
    unsetenv("ROTA_TEST_CRED");
    unlink(p.key);
    unlink(p.link);
    rmdir(drop);
    chmod(e->dir, 0700);
}

/* 120 process substitutions, 360 bytes that read as 1080 (each one /dev/fd/N): within a
 * probe command's 1023 bytes, a word longer than 1 KiB. */
#define PSUB10 "<()<()<()<()<()<()<()<()<()<()"
#define PSUB120                                                                                \
    PSUB10 PSUB10 PSUB10 PSUB10 PSUB10 PSUB10 PSUB10 PSUB10 PSUB10 PSUB10 PSUB10 PSUB10

/* An exec probe command that expands the key into a program's argument draws a warning
 * naming the provider and the safe forms, also through the common evasions (braces,
 * quotes, comments, sh -c however long, eval, command substitution, a copy in another
 * variable, for, printf -v, xargs or a shell fed by a pipe); the safe forms themselves
 * draw none. */
static void test_config_exec_probe_key_on_command_line(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        bool warn;
    } cases[] = {
        {"curl -sf -H \"Authorization: token $ROTA_CREDENTIAL\" https://api.github.com/x", 1},
        {"tool --key=${ROTA_CREDENTIAL} quota", 1},
        {"true; curl -u \"u:${ROTA_CREDENTIAL:-}\" https://x", 1},
        {"GH_TOKEN=$ROTA_CREDENTIAL gh api /copilot_internal/user", 0},
        {"GH_TOKEN=\"$ROTA_CREDENTIAL\" X=1 gh api /copilot_internal/user", 0},
        {"export GH_TOKEN=\"$ROTA_CREDENTIAL\"; gh api /copilot_internal/user", 0},
        {"printf '%s' \"$ROTA_CREDENTIAL\" | tool --token-stdin", 0},
        {"echo '$ROTA_CREDENTIAL' >/dev/null; gh api /copilot_internal/user", 0},
        {"tool --key $ROTA_CREDENTIALS", 0}, /* another variable */
        {"gh api /copilot_internal/user", 0},
        /* the common evasions */
        {"curl -H \"x: ${ROTA_CREDENTIAL}\" https://x", 1},
        {"curl -H \"$ROTA_CREDENTIAL\" https://x", 1},
        {"sh -c 'curl -H \"x: $ROTA_CREDENTIAL\" https://x'", 1},
        {"bash -c 'exec curl -H \"x: $ROTA_CREDENTIAL\" https://x'", 1},
        {"sh -c 'curl \"$1\"' _ \"$ROTA_CREDENTIAL\"", 1},
        {"curl -H \"x: $(printenv ROTA_CREDENTIAL)\" https://x", 1},
        {"curl -H \"x: `printenv ROTA_CREDENTIAL`\" https://x", 1},
        {"curl -H x:`env | grep ROTA_CRED | cut -d= -f2` https://x", 1},
        {"X=$(cat /proc/self/environ); curl \"$X\"", 1},
        {"K=$ROTA_CREDENTIAL; curl -H \"x: $K\" https://x", 1},
        {"K=\"$ROTA_CREDENTIAL\"\ncurl -H \"x: ${K}\" https://x", 1},
        {"export K=$ROTA_CREDENTIAL; curl -H \"x: $K\" https://x", 1},
        {"K=$(printenv ROTA_CREDENTIAL) && curl -u \"u:$K\" https://x", 1},
        {"read -r K <<< \"$ROTA_CREDENTIAL\"; curl -H \"x: $K\" https://x", 1},
        {"printenv ROTA_CREDENTIAL | xargs -I{} curl -H \"x: {}\" https://x", 1},
        {"env | grep ROTA_CREDENTIAL | cut -d= -f2 | xargs curl -u", 1},
        {"eval \"curl -H x:\\$ROTA_CREDENTIAL https://x\"", 1},
        /* a comment ends at its line, whatever quotes it holds */
        {"# don't log the body\ncurl -sS -H \"Authorization: Bearer $ROTA_CREDENTIAL\" "
         "https://api.example/v1/usage",
         1},
        {"true # it's\ncurl -H \"x: $ROTA_CREDENTIAL\" https://x", 1},
        {"curl -H \"x: $(# it's\nprintenv ROTA_CREDENTIAL)\" https://x", 1},
        {"gh api /u # not $ROTA_CREDENTIAL: a comment", 0},
        {"curl -H x:a#$ROTA_CREDENTIAL https://x", 1}, /* no comment within a word */
        /* a word past 1 KiB is read to its end */
        {"sh -c " PSUB120 "';curl -H \"x: $ROTA_CREDENTIAL\" https://x'", 1},
        {"sh -c " PSUB120 "';gh api /u'", 0},
        /* a shell fed the key on stdin runs it as a command, as a wrapper runs a shell */
        {"printf 'curl -H \"x: %s\" https://x' \"$ROTA_CREDENTIAL\" | sh", 1},
        {"printf 'curl -H \"x: %s\" https://x' \"$ROTA_CREDENTIAL\" | bash -s", 1},
        {"printf 'curl -H \"x: %s\" https://x' \"$ROTA_CREDENTIAL\" | /bin/dash -e", 1},
        {"printf 'curl -u u:%s https://x' \"$ROTA_CREDENTIAL\" | busybox sh", 1},
        {"printenv ROTA_CREDENTIAL | sed 's/^/curl -u u:/' | zsh -o errexit", 1},
        {"bash <<< \"curl -H 'x: $ROTA_CREDENTIAL' https://x\"", 1},
        {"busybox sh -c 'curl -H \"x: $ROTA_CREDENTIAL\" https://x'", 1},
        {"timeout 5 sh -c 'curl -H \"x: $ROTA_CREDENTIAL\" https://x'", 1},
        {"printf '%s' \"$ROTA_CREDENTIAL\" | sh -c 'tool --token-stdin'", 0},
        {"printf '%s' \"$ROTA_CREDENTIAL\" | bash -o pipefail -ec 'tool --token-stdin'", 0},
        {"printf 'gh api /u' | sh", 0},
        /* copies by for, printf -v and mapfile */
        {"for k in \"$ROTA_CREDENTIAL\"; do curl -H \"x: $k\" https://x; done", 1},
        {"for k in a $(printenv ROTA_CREDENTIAL)\ndo curl -u \"u:$k\" https://x\ndone", 1},
        {"printf -v K '%s' \"$ROTA_CREDENTIAL\"; curl -H \"x: $K\" https://x", 1},
        {"printf -vK 'x: %s' \"$ROTA_CREDENTIAL\" && curl -H \"$K\" https://x", 1},
        {"mapfile -t K <<< \"$ROTA_CREDENTIAL\"; curl -H \"x: $K\" https://x", 1},
        {"for k in a b; do curl -H \"x: $k\" https://x; done", 0},
        {"printf -v K '%s' x; curl -H \"x: $K\" https://x", 0},
        /* safe forms: stdin, a here-string, a file name, tests in the shell */
        {"printf 'x: %s\\n' \"$ROTA_CREDENTIAL\" | curl -H @- https://x", 0},
        {"curl --config - <<< \"header = \\\"x: $ROTA_CREDENTIAL\\\"\"", 0},
        {"curl -H @<(printf 'x: %s' \"$ROTA_CREDENTIAL\") https://x", 0},
        {"if [ -n \"$ROTA_CREDENTIAL\" ]; then gh api /u; fi", 0},
        {"[ -z \"$ROTA_CREDENTIAL\" ] || gh api /u 2>&1", 0},
        {"sh -c 'printf \"%s\" \"$ROTA_CREDENTIAL\" | tool --token-stdin'", 0},
        {"K=1; curl -H \"x: $K $(date)\" https://x", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[4096], yaml[3072], err[512];
        size_t y = 0; /* a YAML double-quoted scalar: \\, \" and \n escaped */
        for (const char *c = cases[i].cmd; *c && y < sizeof(yaml) - 3; c++) {
            if (*c == '"' || *c == '\\' || *c == '\n')
                yaml[y++] = '\\';
            yaml[y++] = *c == '\n' ? 'n' : *c;
        }
        yaml[y] = 0;
        snprintf(text, sizeof(text),
                 "instance: t\nstate_dir: /tmp/rota-t\nproviders:\n"
                 "  - name: copilot\n    kind: github-copilot\n"
                 "    probe: {command: \"%s\"}\n"
                 "    accounts: [{name: a, credential: 'env:ROTA_TEST_CRED'}]\n",
                 yaml);
        struct warns w = {0};
        struct rota_config *c = NULL;
        if (rota_config_parse("inline.yaml", text, strlen(text), on_warn, &w, &c, err,
                              sizeof(err)))
            fail_msg("%.40s: %s", cases[i].cmd, err);
        rota_config_free(c);
        if (cases[i].warn != (w.n == 1))
            fail_msg("%.40s: %d warnings (%s)", cases[i].cmd, w.n, w.last);
        if (cases[i].warn)
            assert_string_equal(w.last,
                                "inline.yaml:6:22: exec probe for the accounts of provider "
                                "copilot puts the key on a command line, readable by every "
                                "user in /proc: read ROTA_CREDENTIAL inside the program or "
                                "pass it on stdin");
    }
    /* The check reads any command to its end, past the 1023 bytes of a probe's: a script of
     * 8 KiB given to sh -c, its last command the one that shows the key. */
    static const char noop[] = "true 0123456789;";
    char big[8192 + 64];
    size_t b = (size_t)snprintf(big, sizeof(big), "sh -c '");
    for (; b + sizeof(noop) < 8192; b += sizeof(noop) - 1)
        memcpy(big + b, noop, sizeof(noop) - 1);
    snprintf(big + b, sizeof(big) - b, "curl -H \"x: $ROTA_CREDENTIAL\" https://x'");
    assert_true(cfg_exec_exposes_credential(big));
    snprintf(big + b, sizeof(big) - b, "gh api /u'");
    assert_false(cfg_exec_exposes_credential(big));
}

/* Redis without a password on an address others can reach draws one warning naming the
 * address and the key prefix; loopback, a Unix socket or a password draw none. */
static void test_config_redis_without_password_off_loopback(void **state)
{
    (void)state;
    static const struct {
        const char *redis;
        const char *addr; /* NULL: no warning */
    } cases[] = {
        {"host: 10.1.2.3", "10.1.2.3:6379"},
        {"host: redis.internal, port: 6380", "redis.internal:6380"},
        {"host: '::ffff:10.0.0.1'", "::ffff:10.0.0.1:6379"},
        {"host: 127.0.0.1", "127.0.0.1:6379"},
        {"host: 127.9.8.7", "127.9.8.7:6379"},
        {"host: localhost", "localhost:6379"},
        {"host: '::1'", "::1:6379"},
        {"host: '::ffff:127.0.0.1'", "::ffff:127.0.0.1:6379"},
        {"port: 6379", "127.0.0.1:6379"}, /* the default host */
        {"socket: /run/redis/redis.sock", NULL},
        {"host: 10.1.2.3, password: 'env:ROTA_TEST_REDIS_PW'", NULL},
        {"host: 10.1.2.3, enabled: false", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024], err[512];
        snprintf(text, sizeof(text),
                 "instance: t\nstate_dir: /tmp/rota-t\nproviders:\n"
                 "  - name: p\n    kind: openai\n"
                 "    accounts: [{name: a, credential: 'env:ROTA_TEST_CRED'}]\n"
                 "journal:\n  redis: {enabled: true, %s}\n",
                 cases[i].redis);
        if (strstr(cases[i].redis, "enabled: false"))
            snprintf(text, sizeof(text),
                     "instance: t\nstate_dir: /tmp/rota-t\nproviders:\n"
                     "  - name: p\n    kind: openai\n"
                     "    accounts: [{name: a, credential: 'env:ROTA_TEST_CRED'}]\n"
                     "journal:\n  redis: {%s}\n",
                     cases[i].redis);
        struct warns w = {0};
        struct rota_config *c = NULL;
        if (rota_config_parse("inline.yaml", text, strlen(text), on_warn, &w, &c, err,
                              sizeof(err)))
            fail_msg("%s: %s", cases[i].redis, err);
        rota_config_free(c);
        if ((cases[i].addr != NULL) != (w.n == 1) || w.n > 1)
            fail_msg("%s: %d warnings (%s)", cases[i].redis, w.n, w.last);
        if (!cases[i].addr)
            continue;
        char want[160];
        bool local = strstr(cases[i].addr, "127.") || strstr(cases[i].addr, "localhost") ||
                     strstr(cases[i].addr, "::1:");
        snprintf(want, sizeof(want), "journal.redis at %s has no password and is %s",
                 cases[i].addr,
                 local ? "on loopback: every local user" : "not on loopback: whoever");
        if (!strstr(w.last, want) || !strstr(w.last, "(rota:t:*)") ||
            !strstr(w.last, "inline.yaml:8:"))
            fail_msg("%s: \"%s\"", cases[i].redis, w.last);
    }
    /* An ACL user: only with a password, and a name without spaces. */
    static const char *const users[][2] = {
        {"user: rota", "is set without a password"},
        {"user: 'ro ta', password: 'env:ROTA_TEST_REDIS_PW'", "holds a space"},
    };
    for (size_t i = 0; i < 2; i++) {
        char text[512], err[512];
        snprintf(text, sizeof(text),
                 "instance: t\nstate_dir: /tmp/rota-t\nproviders:\n"
                 "  - name: p\n    kind: openai\n"
                 "    accounts: [{name: a, credential: 'env:ROTA_TEST_CRED'}]\n"
                 "journal:\n  redis: {enabled: true, %s}\n",
                 users[i][0]);
        assert_int_equal(parse_err(text, err, sizeof(err), NULL), -EINVAL);
        if (!strstr(err, "inline.yaml:8:") || !strstr(err, users[i][1]))
            fail_msg("%s: %s", users[i][0], err);
    }
}

/* A config another user owns, or one its group or every user may write, is refused with
 * the reason; its own user's, writable by that user only, loads. */
static void test_config_load_refuses_untrusted_file(void **state)
{
    struct env *e = *state;
    char err[512];
    struct rota_config *c = NULL;
    struct warns w = {0};
    assert_int_equal(chmod(e->example, 0666), 0);
    assert_int_equal(rota_config_load(e->example, on_warn, &w, &c, err, sizeof(err)), -EPERM);
    assert_null(c);
    assert_non_null(strstr(err, "is writable by every user (mode 0666); refused"));
    assert_int_equal(chmod(e->example, 0620), 0);
    assert_int_equal(rota_config_load(e->example, on_warn, &w, &c, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "is writable by its group (mode 0620)"));
    assert_int_equal(chmod(e->example, 0644), 0);
    c = load_ok(e->example, &w);
    rota_config_free(c);
    uid_t uid;
    gid_t gid;
    char why[160];
    if (!stranger_ids(&uid, &gid, why, sizeof(why))) {
        print_message("skipped the second user's part: %s\n", why);
        return;
    }
    assert_int_equal(chown(e->example, uid, gid), 0);
    int rc = rota_config_load(e->example, on_warn, &w, &c, err, sizeof(err));
    assert_int_equal(chown(e->example, 0, 0), 0);
    assert_int_equal(rc, -EPERM);
    assert_null(c);
    char want[96];
    snprintf(want, sizeof(want), "is owned by uid %u, neither root nor", (unsigned)uid);
    if (!strstr(err, want))
        fail_msg("\"%s\" lacks \"%s\"", err, want);
}

static void test_config_shipped_examples_load_unset(void **state)
{
    (void)state;
    static const char *const files[] = {"rota.yaml", "demo.yaml"};
    unsetenv("ROTA_EXAMPLE_AG1");
    unsetenv("ROTA_EXAMPLE_AG2");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/../examples/%s", ROTA_TEST_SRC, files[i]);
        struct warns w = {0};
        struct rota_config *c = load_ok(path, &w);
        uint32_t unresolved = 0;
        for (uint32_t k = 0; k < c->desc.naccounts; k++)
            if (c->accounts[k].cred_problem) {
                unresolved++;
                assert_null(c->desc.accounts[k].credential);
                assert_true(strncmp(c->accounts[k].cred_source, "env:", 4) == 0 ||
                            strncmp(c->accounts[k].cred_source, "file:", 5) == 0);
            }
        assert_true(unresolved >= 2);
        assert_int_equal(w.n, 0);
        rota_config_free(c);
    }
    setenv("ROTA_EXAMPLE_AG1", SECRET_AG1, 1);
    setenv("ROTA_EXAMPLE_AG2", SECRET_AG2, 1);
}

static void test_config_print_unresolved(void **state)
{
    struct env *e = *state;
    struct warns w = {0};
    unsetenv("ROTA_TEST_CRED");
    struct rota_config *c = load_creds(e->token, &w);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    rota_config_print(c, f);
    fclose(f);
    assert_non_null(strstr(out, "credential  env:ROTA_TEST_CRED, which is not set: out of "
                                "rotation until it resolves\n"));
    free(out);
    rota_config_free(c);
}

static void test_config_defaults(void **state)
{
    (void)state;
    static const char text[] = "instance: d\n"
                               "state_dir: /var/lib/rota\n"
                               "providers:\n"
                               "  - name: p\n"
                               "    kind: openai\n"
                               "    accounts: [{name: a, credential: none}]\n";
    char err[512];
    struct rota_config *c = NULL;
    int rc = rota_config_parse("d.yaml", text, strlen(text), NULL, NULL, &c, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    const struct rota_desc_provider *p = &c->desc.providers[0];
    const struct rota_config_provider *cp = &c->providers[0];
    assert_string_equal(c->socket, "/var/lib/rota/rotad.sock");
    assert_null(c->group);
    assert_string_equal(cp->auth, "bearer");
    assert_null(cp->base_url);
    assert_float_equal(p->warn, 0.70, 1e-9);
    assert_float_equal(p->crit, 0.80, 1e-9);
    assert_int_equal(p->fail_threshold, 5);
    assert_int_equal(p->halfopen_permits, 1);
    assert_int_equal(p->open_base_ms, 30000);
    assert_int_equal(p->trial_timeout_ms, 120000);
    assert_int_equal(p->cooldown_base_ms, 1000);
    assert_int_equal(p->cooldown_cap_ms, 300000);
    assert_int_equal(p->disable_for_s, 0);
    assert_float_equal(cp->fail_rate, 0, 0);
    assert_int_equal(cp->fail_min_calls, 20);
    assert_int_equal(cp->rate_window_ns, 10000000000ull);
    assert_true(cp->probe_enabled);
    assert_int_equal(cp->probe_interval_ns, 300000000000ull);
    assert_int_equal(cp->probe_jitter_ns, 300000000000ull);
    assert_int_equal(cp->probe_timeout_ns, 5000000000ull);
    assert_int_equal(cp->probe_max_bytes, 1u << 20);
    assert_int_equal(c->desc.accounts[0].weight, 1);
    assert_int_equal(c->desc.accounts[0].nwin, 0);
    assert_int_equal(c->desc.nroutes, 0);
    assert_true(c->journal.file_enabled);
    assert_int_equal(c->journal.snapshot_every_ns, 300000000000ull);
    assert_string_equal(c->journal.redis_host, "127.0.0.1");
    assert_int_equal(c->journal.redis_port, 6379);
    assert_int_equal(c->journal.redis_stream_max, 100000);
    assert_int_equal(c->journal.redis_buffer, 10000);
    assert_null(c->journal.redis_password_source);
    assert_false(c->workers.enabled);
    rota_config_free(c);
}

static void test_config_workers(void **state)
{
    (void)state;
    static const char text[] =
        "instance: w\n"
        "state_dir: /var/lib/rota\n"
        "providers:\n"
        "  - name: p\n"
        "    kind: openai\n"
        "    accounts: [{name: a, credential: none}]\n"
        "routes:\n"
        "  - {name: chat, models: [gpt-4o], tiers: [{provider: p}]}\n"
        "workers:\n"
        "  processes: 3\n"
        "  listen:\n"
        "    - tcp: \"[::]:9000\"\n"
        "    - unix: /run/rota/pool.sock\n"
        "      mode: \"0600\"\n"
        "  timeouts: {drain: 2s, request: 90s}\n"
        "  limits: {body_bytes: 1MiB}\n"
        "  keys:\n"
        "    - name: team-a\n"
        "      sha256: 2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824\n"
        "      routes: [gpt-4o]\n"
        "      rpm: 60\n"
        "    - {name: team-b, sha256: "
        "0000000000000000000000000000000000000000000000000000000000000001}\n";
    char err[512];
    struct rota_config *c = NULL;
    if (rota_config_parse("w.yaml", text, strlen(text), NULL, NULL, &c, err, sizeof(err)))
        fail_msg("%s", err);
    const struct rota_config_workers *w = &c->workers;
    assert_true(w->enabled);
    assert_int_equal(w->processes, 3);
    assert_int_equal(w->threads, 1);
    assert_int_equal(w->nlisteners, 2);
    assert_string_equal(w->listeners[0].tcp, "[::]:9000");
    assert_false(w->listeners[0].loopback); /* allowed: there are keys */
    assert_string_equal(w->listeners[1].unix_path, "/run/rota/pool.sock");
    assert_int_equal(w->listeners[1].unix_mode, 0600);
    assert_int_equal(w->drain_timeout_ms, 2000);
    assert_int_equal(w->request_timeout_ms, 90000);
    assert_int_equal(w->connect_timeout_ms, 10000);
    assert_int_equal(w->max_body_bytes, 1u << 20);
    assert_int_equal(w->max_header_bytes, 16384);
    assert_int_equal(w->attempts, 3);
    assert_string_equal(w->access_log, "stderr");
    assert_int_equal(w->nkeys, 2);
    assert_string_equal(w->keys[0].name, "team-a");
    assert_int_equal(w->keys[0].sha256[0], 0x2c);
    assert_int_equal(w->keys[0].sha256[31], 0x24);
    assert_int_equal(w->keys[0].nroutes, 1);
    assert_int_equal(w->keys[0].rpm, 60);
    assert_int_equal(w->keys[1].nroutes, 0);
    assert_int_equal(w->keys[1].sha256[31], 1);
    /* printed with no more of a hash than its first bytes */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    rota_config_print(c, f);
    fclose(f);
    assert_non_null(strstr(out, "key         team-a  sha256 2cf24dba..."));
    assert_null(strstr(out, "2cf24dba5fb0"));
    free(out);
    rota_config_free(c);

    static const char bare[] = "instance: w\nstate_dir: /var/lib/rota\n"
                               "providers: [{name: p, kind: openai, accounts: [{name: a, "
                               "credential: none}]}]\nworkers: {}\n";
    if (rota_config_parse("b.yaml", bare, strlen(bare), NULL, NULL, &c, err, sizeof(err)))
        fail_msg("%s", err);
    assert_int_equal(c->workers.nlisteners, 1);
    assert_string_equal(c->workers.listeners[0].tcp, "127.0.0.1:8080");
    assert_true(c->workers.processes >= 1);
    rota_config_free(c);
}

static void test_config_tiers_of_accounts(void **state)
{
    (void)state;
    static const char text[] =
        "instance: t\n"
        "state_dir: /tmp/rota-t\n"
        "providers:\n"
        "  - name: a\n"
        "    kind: anthropic\n"
        "    thresholds: {critical: 0.9}\n"
        "    accounts:\n"
        "      - {name: one, id: 0x10, credential: none, weight: 3, windows: [{pool: opus, "
        "metric: tokens, reset: rolling 5h}, {metric: fraction}]}\n"
        "  - name: b\n"
        "    kind: gemini\n"
        "    accounts:\n"
        "      - {name: two, id: 17, credential: none, windows: [{pool: opus, metric: "
        "requests}]}\n"
        "routes:\n"
        "  - name: r\n"
        "    tiers:\n"
        "      - {accounts: [one, b/two], pool: opus, strategy: sticky, lru_share: 0, "
        "top_k: 5, recency: 1h}\n"
        "      - {provider: a, w_quota: 0.9}\n";
    char err[512];
    struct rota_config *c = NULL;
    int rc = rota_config_parse("t.yaml", text, strlen(text), NULL, NULL, &c, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    const struct rota_desc_account *a = c->desc.accounts;
    assert_int_equal(a[0].id, 0x10);
    assert_int_equal(a[1].id, 17);
    assert_int_equal(a[0].weight, 3);
    assert_int_equal(a[0].win[0].reset.kind, ROTA_RESET_ROLLING);
    assert_int_equal(a[0].win[0].reset.period_s, 5 * 3600);
    assert_int_equal(a[0].win[1].limit, 1000000); /* fractions count millionths */
    const struct rota_desc_tier *t = c->desc.routes[0].tiers;
    assert_int_equal(t[0].provider, ROTA_NONE); /* two providers' accounts */
    assert_int_equal(t[0].nmembers, 2);
    assert_int_equal(t[0].members[1], 1);
    assert_non_null(t[0].pools);
    assert_int_equal(t[0].pools[0], 1);
    assert_int_equal(t[0].pools[1], 1);
    assert_int_equal(t[0].strategy, ROTA_STRAT_STICKY);
    assert_true(t[0].lru_share < 0); /* an explicit 0: none */
    assert_int_equal(t[0].top_k, 5);
    assert_int_equal(t[0].recency_s, 3600);
    assert_int_equal(t[1].provider, 0);
    assert_null(t[1].pools);
    assert_float_equal(t[1].w_quota, 0.9, 1e-6);
    assert_float_equal(c->desc.providers[0].crit, 0.9, 1e-9);
    /* the table takes it */
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "cfgt", &c->desc), 0);
    assert_int_equal(f.m->tiers[0].ceiling > 0.79 && f.m->tiers[0].ceiling < 0.81, 1);
    assert_int_equal(f.m->tiers[1].ceiling > 0.89 && f.m->tiers[1].ceiling < 0.91, 1);
    fx_close(&f);
    rota_config_free(c);
}

static bool starts(const char *s, const char *with)
{
    return s && strncmp(s, with, strlen(with)) == 0;
}

/* What a tier's model takes and whether a route's requests may change format: absent,
 * tools and images yes, context not said, translation allowed; said, each reaches the desc,
 * the table and rotad --check, which prints them only where they are not the default. */
static void test_config_tier_capabilities(void **state)
{
    (void)state;
    static const char text[] = "instance: t\n"
                               "state_dir: /tmp/rota-t\n"
                               "providers:\n"
                               "  - {name: p, kind: openai, accounts: [{name: a, "
                               "credential: none}]}\n"
                               "  - {name: q, kind: llamacpp, accounts: [{name: b, "
                               "credential: none}]}\n"
                               "routes:\n"
                               "  - name: open\n"
                               "    tiers:\n"
                               "      - provider: p\n"
                               "      - {provider: q, tools: false, images: no, "
                               "context: 8192}\n"
                               "      - {provider: q, tools: true, images: yes, "
                               "context: 4294967295}\n"
                               "  - name: same\n"
                               "    cross_format: false\n"
                               "    tiers: [{provider: p, images: off}]\n"
                               "  - name: said\n"
                               "    cross_format: true\n"
                               "    tiers: [{provider: q, context: 0x20000}]\n";
    char err[512];
    struct rota_config *c = NULL;
    int rc = rota_config_parse("t.yaml", text, strlen(text), NULL, NULL, &c, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    const struct rota_desc_route *r = c->desc.routes;
    const struct rota_desc_tier *t = r[0].tiers;
    assert_false(r[0].no_cross_format); /* the defaults */
    assert_false(t[0].no_tools);
    assert_false(t[0].no_images);
    assert_int_equal(t[0].context, 0);
    assert_true(t[1].no_tools);
    assert_true(t[1].no_images);
    assert_int_equal(t[1].context, 8192);
    assert_false(t[2].no_tools);
    assert_false(t[2].no_images);
    assert_int_equal(t[2].context, UINT32_MAX);
    assert_true(r[1].no_cross_format);
    assert_false(r[1].tiers[0].no_tools);
    assert_true(r[1].tiers[0].no_images);
    assert_false(r[2].no_cross_format);
    assert_int_equal(r[2].tiers[0].context, 0x20000);

    /* the table holds them (rota_target_of reads them there: test_target) */
    struct fx f = {0};
    assert_int_equal(fx_publish(&f, "cfgcap", &c->desc), 0);
    assert_int_equal(f.m->routes[0].flags, 0);
    assert_int_equal(f.m->routes[1].flags, ROTA_ROUTE_NO_XLATE);
    assert_int_equal(f.m->routes[2].flags, 0);
    assert_int_equal(f.m->tiers[0].caps, 0);
    assert_int_equal(f.m->tiers[0].context, 0);
    assert_int_equal(f.m->tiers[1].caps, ROTA_TIER_NO_TOOLS | ROTA_TIER_NO_IMAGES);
    assert_int_equal(f.m->tiers[1].context, 8192);
    assert_int_equal(f.m->tiers[2].caps, 0);
    assert_int_equal(f.m->tiers[2].context, UINT32_MAX);
    assert_int_equal(f.m->tiers[3].caps, ROTA_TIER_NO_IMAGES);
    assert_int_equal(f.m->tiers[4].context, 0x20000);
    fx_close(&f);

    char *out = NULL;
    size_t n = 0;
    FILE *pr = open_memstream(&out, &n);
    rota_config_print(c, pr);
    fclose(pr);
    const char *open = strstr(out, "route open\n"), *same = strstr(out, "route same\n"),
               *said = strstr(out, "route said\n");
    assert_non_null(open);
    assert_non_null(same);
    assert_non_null(said);
    const char *t1 = strstr(open, "  tier 1 "), *t2 = strstr(open, "  tier 2 ");
    assert_non_null(t1);
    assert_non_null(t2);
    /* tier 0 says nothing of them, tier 1 all, tier 2 its context alone */
    const char *takes = strstr(open, "    takes    ");
    assert_true(takes > t1 && takes < t2);
    assert_true(starts(takes, "    takes    no tools, no images, context 8192 tokens\n"));
    takes = strstr(t2, "    takes    ");
    assert_true(takes && takes < same);
    assert_true(starts(takes, "    takes    tools, images, context 4294967295 tokens\n"));
    const char *formats =
        strstr(out, "  formats     the client's own only (cross_format: false)\n");
    assert_true(formats > same && formats < said);
    assert_null(strstr(formats + 1, "  formats     ")); /* route open's and said's: defaults */
    takes = strstr(same, "    takes    ");
    assert_true(takes && takes < said);
    assert_true(starts(takes, "    takes    tools, no images, context not said\n"));
    free(out);
    rota_config_free(c);
}

/* A provider with "base_url" (a YAML flow scalar, quoted as given) and one account. */
static int parse_base_url(const char *url, char *err, size_t n)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "instance: u\n"
             "state_dir: /tmp/rota-u\n"
             "providers:\n"
             "  - name: p\n"
             "    base_url: %s\n"
             "    kind: openai\n"
             "    accounts: [{name: a, credential: none}]\n",
             url);
    struct rota_config *c = NULL;
    int rc = rota_config_parse("url.yaml", text, strlen(text), NULL, NULL, &c, err, n);
    rota_config_free(c);
    return rc;
}

#define LONG_URL                                                                               \
    "\"https://api.example.com/"                                                               \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa\""

static void test_config_base_url(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *why;
    } bad[] = {
        {"\"not a url at all\"", "no scheme"},
        {"api.openai.com", "no scheme"},
        {"ftp://files.example.com", "scheme 'ftp'"},
        {"file:///etc/hosts", "scheme 'file'"},
        {"\"http://\"", "No host part"},
        {"https://", "No host part"},
        {"\"http://api example.com/v1\"", "Bad hostname"},
        {"\"http://api.example.com/v 1\"", "Bad path"},
        {"\"http://127.0.0.1:99999\"", "Port number"},
        {"\"https://user:pw@api.example.com\"", "user or password"},
        {"\"https://api.example.com/v1?key=1\"", "query"},
        {"\"https://api.example.com/v1#top\"", "fragment"},
        {"\"https://api.example.com/v1?\"", "query"}, /* empty: libcurl sees none */
        {"\"https://api.example.com/v1#\"", "fragment"},
        {"\"http://127.0.0.1:0\"", "port 0"},
        {LONG_URL, "bytes long"}, /* would not fit the probe's URL */
    };
    char err[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        if (parse_base_url(bad[i].yaml, err, sizeof(err)) != -EINVAL)
            fail_msg("base_url %s: accepted, expected a refusal", bad[i].yaml);
        if (strncmp(err, "url.yaml:5:15: 'base_url' in provider 'p' ", 42) != 0 ||
            !strstr(err, bad[i].why) || !strstr(err, "expected"))
            fail_msg("base_url %s: got '%s', expected url.yaml:5:15 and '%s'", bad[i].yaml, err,
                     bad[i].why);
        assert_null(strstr(err, "pw@")); /* a password in a URL is not repeated */
    }
    static const char *const good[] = {"http://127.0.0.1:8080/v1", "https://api.openai.com",
                                       "HTTPS://API.example.com/v1/", "http://[::1]:8080"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (parse_base_url(good[i], err, sizeof(err)) != 0)
            fail_msg("base_url %s: refused: %s", good[i], err);
}

static const char targets_yaml[] =
    "instance: t\n"
    "state_dir: /tmp/rota-test\n"
    "providers:\n"
    "  - name: claude\n"
    "    kind: anthropic\n"
    "    base_url: https://api.anthropic.com\n"
    "    auth: x-api-key\n"
    "    headers: {anthropic-version: 2023-06-01}\n"
    "    accounts: [{name: a, credential: none}]\n"
    "  - name: copilot\n"
    "    kind: github-copilot\n"
    "    auth: token\n"
    "    headers:\n"
    "      Editor-Version: vscode/1.99.0\n"
    "      Copilot-Integration-Id: vscode-chat\n"
    "    accounts: [{name: b, credential: none}]\n"
    "  - name: local\n"
    "    kind: llamacpp\n"
    "    auth: none\n"
    "    format: anthropic\n"
    "    path: /messages\n"
    "    accounts: [{name: c, credential: none}]\n"
    "  - name: g\n"
    "    kind: gemini\n"
    "    auth: x-goog-api-key\n"
    "    accounts: [{name: d, credential: none}]\n"
    "routes:\n"
    "  - name: chat\n"
    "    models: [gpt-4o, gpt-4o-mini]\n"
    "    tiers:\n"
    "      - provider: claude\n"
    "        models: {gpt-4o: claude-sonnet-4, chat: claude-haiku}\n"
    "      - provider: copilot\n"
    "      - provider: local\n"
    "        model: qwen2.5-7b-instruct\n"
    "        models: {gpt-4o-mini: qwen2.5-1.5b}\n"
    "      - provider: g\n";

/* Where calls go: each kind's format and endpoint (or the config's), the auth style as a
 * header and scheme, extra headers as one block, and per tier the model it sends. */
static void test_config_targets(void **state)
{
    (void)state;
    char err[512];
    struct rota_config *c = NULL;
    int rc = rota_config_parse("t.yaml", targets_yaml, strlen(targets_yaml), NULL, NULL, &c,
                               err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    const struct rota_desc_provider *p = c->desc.providers;
    assert_string_equal(p[0].format, "anthropic");
    assert_string_equal(p[0].path, "/v1/messages");
    assert_string_equal(p[0].base_url, "https://api.anthropic.com");
    assert_string_equal(p[0].auth_header, "x-api-key");
    assert_string_equal(p[0].auth_scheme, "");
    assert_string_equal(p[0].headers, "anthropic-version: 2023-06-01\r\n");
    assert_string_equal(p[1].format, "openai");
    assert_string_equal(p[1].path, "/chat/completions");
    assert_null(p[1].base_url);
    assert_string_equal(p[1].auth_header, "Authorization");
    assert_string_equal(p[1].auth_scheme, "token ");
    assert_string_equal(
        p[1].headers,
        "Editor-Version: vscode/1.99.0\r\nCopilot-Integration-Id: vscode-chat\r\n");
    assert_string_equal(p[2].format, "anthropic"); /* overridden */
    assert_string_equal(p[2].path, "/messages");
    assert_string_equal(p[2].auth_header, "");
    assert_string_equal(p[2].headers, "");
    assert_string_equal(p[3].format, "gemini");
    assert_string_equal(p[3].path, "/v1beta/models/{model}:generateContent");
    assert_string_equal(p[3].auth_header, "x-goog-api-key");
    const struct rota_desc_tier *t = c->desc.routes[0].tiers;
    assert_null(t[0].model);
    assert_string_equal(t[0].models[0], "gpt-4o");
    assert_string_equal(t[0].models[1], "claude-sonnet-4");
    assert_string_equal(t[0].models[2], "chat"); /* the route's name is a model too */
    assert_string_equal(t[0].models[3], "claude-haiku");
    assert_null(t[0].models[4]);
    assert_null(t[1].model);
    assert_null(t[1].models);
    assert_string_equal(t[2].model, "qwen2.5-7b-instruct");
    assert_string_equal(t[2].models[1], "qwen2.5-1.5b");
    uint64_t hash = c->desc.config_hash;
    FILE *pr = fopen("/dev/null", "w");
    rota_config_print(c, pr); /* the headers are printed: they hold no secret */
    fclose(pr);
    rota_config_free(c);

    /* Another header value or tier model is another table: a reload publishes it. */
    char *other = strdup(targets_yaml);
    memcpy(strstr(other, "2023-06-01"), "2024-06-01", 10);
    assert_int_equal(
        rota_config_parse("t.yaml", other, strlen(other), NULL, NULL, &c, err, sizeof(err)), 0);
    assert_true(c->desc.config_hash != hash);
    rota_config_free(c);
    memcpy(strstr(other, "2024-06-01"), "2023-06-01", 10);
    memcpy(strstr(other, "qwen2.5-7b"), "qwen2.5-8b", 10);
    assert_int_equal(
        rota_config_parse("t.yaml", other, strlen(other), NULL, NULL, &c, err, sizeof(err)), 0);
    assert_true(c->desc.config_hash != hash);
    rota_config_free(c);
    free(other);
}

static int yaml_name(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0;
}

static void test_config_broken_corpus(void **state)
{
    (void)state;
    const char *dir = ROTA_TEST_SRC "/config/broken";
    struct dirent **list;
    int n = scandir(dir, &list, yaml_name, alphasort);
    assert_true(n >= 30);
    for (int i = 0; i < n; i++) {
        char path[512], first[512], err[512], want[600];
        unsigned line, col;
        int off = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        if (!fgets(first, sizeof(first), f))
            first[0] = 0;
        fclose(f);
        first[strcspn(first, "\n")] = 0;
        if (sscanf(first, "# expect: %u:%u: %n", &line, &col, &off) != 2 || !off)
            fail_msg("%s: first line must be '# expect: LINE:COL: text'", path);
        struct warns w = {0};
        struct rota_config *c = NULL;
        err[0] = 0;
        int rc = rota_config_load(path, on_warn, &w, &c, err, sizeof(err));
        if (rc == 0 || c) {
            rota_config_free(c);
            fail_msg("%s: loaded, expected an error", path);
        }
        snprintf(want, sizeof(want), "%s:%u:%u: ", path, line, col);
        if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, first + off))
            fail_msg("%s:\n  got      %s\n  expected %s...%s", list[i]->d_name, err, want,
                     first + off);
        assert_non_null(strstr(err, "expected"));
        assert_clean(err);
        if (w.n)
            assert_clean(w.last);
        free(list[i]);
    }
    free(list);
}

static void test_config_load_missing_file(void **state)
{
    (void)state;
    char err[512];
    struct rota_config *c = (struct rota_config *)1;
    assert_int_equal(
        rota_config_load("/nonexistent/rota.yaml", NULL, NULL, &c, err, sizeof(err)), -ENOENT);
    assert_null(c);
    assert_non_null(strstr(err, "/nonexistent/rota.yaml:1:1: cannot read the file"));
    rota_config_free(NULL);
}

/* Without state_dir: root's state is in /var/lib/rota/<instance>, another user's under
 * $XDG_STATE_HOME or ~/.local/state; never /tmp. */
#define NO_STATE_DIR                                                                       \
    "instance: t\nproviders:\n  - name: p\n    kind: openai\n    accounts:\n"              \
    "      - {name: a, credential: none}\nroutes:\n  - name: r\n    tiers: [{provider: p}]\n"

/* As the stranger: 0 when each environment gives the default it should. */
static int user_defaults(void *arg)
{
    (void)arg;
    char err[512];
    struct rota_config *c = NULL;
    setenv("XDG_STATE_HOME", "/srv/xdg", 1);
    setenv("HOME", "/home/someone", 1);
    if (rota_config_parse("t.yaml", NO_STATE_DIR, strlen(NO_STATE_DIR), NULL, NULL, &c, err,
                          sizeof(err)) ||
        strcmp(c->state_dir, "/srv/xdg/rota/t") || !c->state_dir_default)
        return 1;
    rota_config_free(c);
    setenv("XDG_STATE_HOME", "relative/ignored", 1);
    if (rota_config_parse("t.yaml", NO_STATE_DIR, strlen(NO_STATE_DIR), NULL, NULL, &c, err,
                          sizeof(err)) ||
        strcmp(c->state_dir, "/home/someone/.local/state/rota/t") ||
        strcmp(c->socket, "/home/someone/.local/state/rota/t/rotad.sock"))
        return 2;
    rota_config_free(c);
    unsetenv("XDG_STATE_HOME");
    unsetenv("HOME");
    c = NULL;
    if (rota_config_parse("t.yaml", NO_STATE_DIR, strlen(NO_STATE_DIR), NULL, NULL, &c, err,
                          sizeof(err)) != -EINVAL ||
        c || !strstr(err, "state_dir") || !strstr(err, "HOME"))
        return 3;
    return 0;
}

static void test_config_default_state_dir_is_not_tmp(void **state)
{
    (void)state;
    char err[512];
    struct rota_config *c = NULL;
    assert_int_equal(rota_config_parse("t.yaml", NO_STATE_DIR, strlen(NO_STATE_DIR), NULL, NULL,
                                       &c, err, sizeof(err)),
                     0);
    if (geteuid() == 0) {
        assert_string_equal(c->state_dir, "/var/lib/rota/t");
        assert_string_equal(c->socket, "/var/lib/rota/t/rotad.sock");
        assert_string_equal(c->journal.file_path, "/var/lib/rota/t/journal");
    }
    assert_true(c->state_dir_default);
    rota_config_free(c);
    uid_t uid;
    gid_t gid;
    char why[160];
    if (!stranger_ids(&uid, &gid, why, sizeof(why))) {
        print_message("the other user's defaults skipped: %s\n", why);
        return;
    }
    assert_int_equal(as_stranger(user_defaults, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_example_desc),
        cmocka_unit_test(test_config_example_hash_and_ids_stable),
        cmocka_unit_test(test_config_print_names_sources_not_secrets),
        cmocka_unit_test(test_config_credentials_resolve),
        cmocka_unit_test(test_config_credentials_unresolved),
        cmocka_unit_test(test_config_credentials_file_modes),
        cmocka_unit_test(test_config_credentials_stranger_refused),
        cmocka_unit_test(test_config_exec_probe_key_on_command_line),
        cmocka_unit_test(test_config_readable_key_file_warned_once),
        cmocka_unit_test(test_config_strict_refuses_readable_key_file),
        cmocka_unit_test(test_config_strict_literal_and_command_line),
        cmocka_unit_test(test_config_shipped_examples_load_unset),
        cmocka_unit_test(test_config_print_unresolved),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_workers),
        cmocka_unit_test(test_config_tiers_of_accounts),
        cmocka_unit_test(test_config_tier_capabilities),
        cmocka_unit_test(test_config_base_url),
        cmocka_unit_test(test_config_targets),
        cmocka_unit_test(test_config_broken_corpus),
        cmocka_unit_test(test_config_load_missing_file),
        cmocka_unit_test(test_config_load_refuses_untrusted_file),
        cmocka_unit_test(test_config_default_state_dir_is_not_tmp),
        cmocka_unit_test(test_config_redis_without_password_off_loopback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
