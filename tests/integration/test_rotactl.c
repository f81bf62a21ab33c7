/* test_rotactl: every rotactl command against a real rotad, in words and in JSON, and
 * again with rotad stopped: read-only views still work, the rest say rotad is down; each
 * command's --help, usage errors and argument checks, --version, names a terminal would
 * act on printed escaped, and what a route's tiers' models take. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "rota.h"
#include "rotad_harness.h"
#include "table.h"

#define OUT_MAX (64 * 1024)

static char out[OUT_MAX];

/* Run rotactl; assert its exit status; return its output. */
static const char *ctl(struct it *t, int want, const char *args)
{
    int rc = it_rotactl(t, args, out, sizeof(out));
    if (rc != want)
        fail_msg("rotactl %s: exit %d, wanted %d; output:\n%s", args, rc, want, out);
    assert_null(strstr(out, "sk-it-secret")); /* never a credential */
    return out;
}

/* Run rotactl --json; the output must parse; returns it (caller frees). */
static json_t *ctl_json(struct it *t, int want, const char *args)
{
    char full[512];
    snprintf(full, sizeof(full), "--json %s", args);
    ctl(t, want, full);
    json_error_t e;
    json_t *v = json_loads(out, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("rotactl --json %s: not JSON (%s at %d):\n%s", args, e.text, e.position, out);
    return v;
}

/* Run "rotactl ARGS" (a shell fragment: no -i unless ARGS has one) without ROTA_INSTANCE,
 * or with the variables "env" sets ("NAME=value ..."); its stdout in "o", its stderr in
 * "e"; returns its exit status. */
static int ctl_env(const char *env, const char *args, char *o, size_t on, char *e, size_t en)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "env -u ROTA_INSTANCE %s %s/tools/rotactl/rotactl %s", env,
             it_bin(), args);
    int st = it_sh(cmd, o, on, e, en);
    assert_true(st >= 0);
    return st;
}

static int ctl_raw(const char *args, char *o, size_t on, char *e, size_t en)
{
    return ctl_env("", args, o, on, e, en);
}

/* Lines in "s". */
static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The code point at "*p" (advanced past it), or -1 when "*p" starts no valid UTF-8. */
static long next_cp(const unsigned char **p)
{
    const unsigned char *s = *p;
    int n = s[0] < 0x80                   ? 1
            : s[0] >= 0xc2 && s[0] < 0xe0 ? 2
            : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
            : s[0] >= 0xf0 && s[0] < 0xf5 ? 4
                                          : 0;
    if (n == 0)
        return -1;
    long c = n == 1 ? s[0] : s[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        c = c << 6 | (s[i] & 0x3f);
    }
    *p += n;
    return c;
}

/* Nothing in "s" a terminal acts on: valid UTF-8, no C0 control but newline, no DEL, no
 * C1 control. */
static void assert_clean(const char *s, const char *what)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *at = p;
        long c = next_cp(&p);
        if (c < 0 || (c < 0x20 && c != '\n') || (c >= 0x7f && c <= 0x9f))
            fail_msg("%s: byte 0x%02x at offset %td reaches the terminal raw:\n%s", what, *at,
                     at - (const unsigned char *)s, s);
    }
}

/* Columns "s" (up to "end", or its NUL) takes: CJK 2, the rest 1. */
static size_t columns(const char *s, const char *end)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p && *p != '\n' && (!end || (const char *)p < end)) {
        long c = next_cp(&p);
        if (c < 0)
            p++;
        w += c >= 0x3000 && c <= 0x9fff ? 2 : 1;
    }
    return w;
}

/* The code point at column "col" of the line at "s" (' ' past its end). */
static long at_column(const char *s, size_t col)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p && *p != '\n') {
        long c = next_cp(&p);
        if (c < 0)
            return -1;
        if (w == col)
            return c;
        w += c >= 0x3000 && c <= 0x9fff ? 2 : 1;
        if (w > col)
            return -1; /* "col" falls inside a wide character */
    }
    return ' ';
}

/* In every accounts table of "s", each row's cells start at the columns of their heads and
 * end where the header ends. */
static void assert_aligned(const char *s)
{
    static const char *const heads[] = {"STATUS", "QUOTA", "RESETS", "COOLDOWN", "BREAKER"};
    int tables = 0;
    for (const char *h = strstr(s, "NAME  "); h; h = strstr(h + 1, "\nNAME  ")) {
        if (*h == '\n')
            h++;
        tables++;
        const char *eol = strchr(h, '\n');
        size_t width = columns(h, NULL), col[5];
        for (int k = 0; k < 5; k++) {
            const char *at = strstr(h, heads[k]);
            assert_true(at && at < eol);
            col[k] = columns(h, at);
        }
        for (const char *r = eol + 1; *r && *r != '\n' && *r != '~' && strncmp(r, "tier ", 5);
             r = strchr(r, '\n') + 1) {
            for (int k = 0; k < 5; k++)
                if (at_column(r, col[k]) == ' ' || at_column(r, col[k] - 1) != ' ')
                    fail_msg("column %s out of line in row:\n%.*s\nunder:\n%.*s", heads[k],
                             (int)(strchr(r, '\n') - r), r, (int)(eol - h), h);
            if (columns(r, NULL) != width)
                fail_msg("row of %zu columns under a header of %zu:\n%s", columns(r, NULL),
                         width, s);
        }
    }
    assert_true(tables > 0);
}

/* Make some traffic so the views have something to show. */
static void traffic(struct it *t, int n)
{
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(t->instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "chat", &rt), 0);
    for (int i = 0; i < n; i++) {
        rota_choice c;
        if (rota_select(h, &rt, NULL, 0, 0, &c) == 0) {
            rota_outcome o = {.status = 200};
            rota_report(h, &c, &o);
        }
    }
    rota_detach(h);
}

static void test_rotactl_every_command_with_rotad(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "ctl");
    it_config(&t, 3, 100, NULL);
    assert_int_equal(it_start(&t), 0);
    traffic(&t, 30);

    const char *s = ctl(&t, 0, "status");
    assert_non_null(strstr(s, t.instance));
    assert_null(strstr(s, "not running"));
    json_t *j = ctl_json(&t, 0, "status");
    assert_true(json_is_object(json_object_get(j, "daemon")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "table"), "accounts")), 6);
    json_decref(j);

    s = ctl(&t, 0, "accounts");
    assert_non_null(strstr(s, "alpha/a0"));
    assert_non_null(strstr(s, "local/l0"));
    s = ctl(&t, 0, "accounts chat");
    assert_non_null(strstr(s, "tier 0"));
    j = ctl_json(&t, 0, "accounts chat-model");
    assert_int_equal(json_array_size(j), 6);
    uint64_t selected = 0;
    size_t i;
    json_t *a;
    json_array_foreach(j, i, a) selected +=
        (uint64_t)json_integer_value(json_object_get(a, "selections"));
    assert_int_equal(selected, 30);
    json_decref(j);
    ctl(&t, 1, "accounts no-such-route");

    s = ctl(&t, 0, "show alpha/a1");
    assert_non_null(strstr(s, "a1"));
    j = ctl_json(&t, 0, "show a1");
    assert_string_equal(json_string_value(json_object_get(j, "provider")), "alpha");
    char byid[64];
    snprintf(byid, sizeof(byid), "show %s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    ctl(&t, 0, byid);
    ctl(&t, 1, "show nobody");

    s = ctl(&t, 0, "watch --count 2 --interval 100ms");
    assert_non_null(strstr(s, "alpha/a0"));

    /* Operator actions: each visible in the views. */
    ctl(&t, 0, "disable alpha/a0 --for 10m --reason 'key rotation'");
    j = ctl_json(&t, 0, "show alpha/a0");
    assert_string_equal(json_string_value(json_object_get(j, "off")), "operator");
    assert_true(json_integer_value(json_object_get(j, "off_left_ms")) > 500000);
    assert_string_equal(json_string_value(json_object_get(j, "note")), "key rotation");
    json_decref(j);
    s = ctl(&t, 0, "show alpha/a0");
    assert_non_null(strstr(s, "key rotation"));
    ctl(&t, 0, "enable alpha/a0");
    j = ctl_json(&t, 0, "show alpha/a0");
    assert_string_equal(json_string_value(json_object_get(j, "off")), "");
    json_decref(j);

    ctl(&t, 0, "cooldown alpha/a2 5m");
    j = ctl_json(&t, 0, "show alpha/a2");
    assert_true(json_integer_value(json_object_get(j, "cooldown_left_ms")) > 200000);
    json_decref(j);
    ctl(&t, 0, "cooldown alpha/a2 0s");
    ctl(&t, 2, "cooldown alpha/a2 soon");

    ctl(&t, 0, "reset alpha/a1");
    j = ctl_json(&t, 0, "show alpha/a1");
    json_t *w0 = json_array_get(json_object_get(j, "windows"), 0);
    assert_int_equal(json_integer_value(json_object_get(w0, "used")), 0);
    json_decref(j);
    ctl(&t, 0, "reset alpha/a1 '*'");
    ctl(&t, 1, "reset alpha/a1 no-such-pool");

    /* Dry run: the choice and the reasons, and nothing counted. */
    j = ctl_json(&t, 0, "accounts chat");
    uint64_t before = 0;
    json_array_foreach(j, i, a) before +=
        (uint64_t)json_integer_value(json_object_get(a, "selections"));
    json_decref(j);
    s = ctl(&t, 0, "select chat --key user-42");
    assert_non_null(strstr(s, "chat -> alpha/"));
    j = ctl_json(&t, 0, "select chat-model");
    assert_false(json_is_true(json_object_get(j, "exhausted")));
    json_decref(j);
    j = ctl_json(&t, 0, "accounts chat");
    uint64_t after = 0;
    json_array_foreach(j, i, a) after +=
        (uint64_t)json_integer_value(json_object_get(a, "selections"));
    json_decref(j);
    assert_int_equal(after, before);

    /* Drain a provider: the dry run now falls to the next tier and says why. */
    s = ctl(&t, 0, "drain alpha");
    assert_non_null(strstr(s, "draining 3 accounts"));
    j = ctl_json(&t, 0, "select chat");
    assert_int_equal(json_integer_value(json_object_get(j, "tier")), 1);
    json_t *skipped =
        json_object_get(json_array_get(json_object_get(j, "tiers"), 0), "skipped");
    assert_string_equal(json_string_value(json_array_get(skipped, 0)), "disabled");
    json_decref(j);
    s = ctl(&t, 0, "drain beta/b0");
    assert_non_null(strstr(s, "beta/b0"));
    for (int k = 0; k < 3; k++) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "enable alpha/a%d", k);
        ctl(&t, 0, cmd);
    }

    s = ctl(&t, 0, "reload");
    assert_non_null(strstr(s, "unchanged"));

    /* Usage errors. */
    ctl(&t, 2, "");
    ctl(&t, 2, "frobnicate");
    ctl(&t, 2, "show");
    ctl(&t, 1, "enable nobody");
    ctl(&t, 2, "disable alpha/a0 --for");

    /* rotad stops: views still work from the table; actions say rotad is down. */
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    s = ctl(&t, 0, "status");
    assert_non_null(strstr(s, "not running"));
    j = ctl_json(&t, 0, "status");
    assert_true(json_is_null(json_object_get(j, "daemon")));
    json_decref(j);
    s = ctl(&t, 0, "accounts chat");
    assert_non_null(strstr(s, "alpha/a0"));
    ctl(&t, 0, "show alpha/a0");
    ctl(&t, 0, "watch --count 1");
    const char *remote[] = {"enable alpha/a0",      "disable alpha/a0", "reset alpha/a0",
                            "cooldown alpha/a0 1m", "select chat",      "reload",
                            "drain alpha"};
    for (size_t k = 0; k < sizeof(remote) / sizeof(remote[0]); k++) {
        s = ctl(&t, 3, remote[k]);
        assert_non_null(strstr(s, "not running"));
    }
    it_cleanup(&t);
    /* No such instance at all. */
    ctl(&t, 3, "status");
    ctl(&t, 3, "accounts");
}

static const char *const all_commands[] = {
    "status", "accounts", "show",  "watch", "enable",  "disable", "reset", "cooldown",
    "select", "reload",   "drain", "probe", "journal", "parse",   "help"};

/* The table's generation, read through rotad. */
static long long generation(struct it *t)
{
    json_t *r = it_ctl(t, "status", NULL, NULL);
    assert_non_null(r);
    long long g = json_integer_value(json_object_get(json_object_get(r, "data"), "generation"));
    json_decref(r);
    return g;
}

/* Requests rotad has answered so far. */
static long long requests(struct it *t)
{
    json_t *r = it_ctl(t, "status", NULL, NULL);
    assert_non_null(r);
    long long n = json_integer_value(json_object_get(json_object_get(r, "data"), "requests"));
    json_decref(r);
    return n;
}

static void test_rotactl_help_answers_and_does_nothing_else(void **state)
{
    (void)state;
    static char o[OUT_MAX], e[OUT_MAX];
    /* No instance at all: --help needs none, attaches nothing, connects nowhere. */
    for (size_t i = 0; i < sizeof(all_commands) / sizeof(all_commands[0]); i++) {
        for (int h = 0; h < 2; h++) {
            char args[64], want[64];
            snprintf(args, sizeof(args), "%s %s", all_commands[i], h ? "-h" : "--help");
            int rc = ctl_raw(args, o, sizeof(o), e, sizeof(e));
            if (rc != 0 || e[0])
                fail_msg("rotactl %s: exit %d, stderr:\n%s", args, rc, e);
            snprintf(want, sizeof(want), " %s", all_commands[i]);
            assert_int_equal(strncmp(o, "usage: rotactl ", 15), 0);
            assert_non_null(strstr(strtok(o, "\n"), want)); /* its own synopsis */
        }
    }
    /* `help CMD` is `CMD --help`. */
    static char o2[OUT_MAX];
    assert_int_equal(ctl_raw("help disable", o, sizeof(o), e, sizeof(e)), 0);
    assert_int_equal(ctl_raw("disable --help", o2, sizeof(o2), e, sizeof(e)), 0);
    assert_string_equal(o, o2);
    assert_non_null(strstr(o, "--reason TEXT"));
    assert_int_equal(ctl_raw("--help", o, sizeof(o), e, sizeof(e)), 0);
    assert_non_null(strstr(o, "disable ACCOUNT [--for DURATION] [--reason TEXT]"));

    /* With rotad running: a changed config stays unloaded, an account stays enabled. */
    struct it t;
    it_init(&t, "help");
    it_config(&t, 3, 100, NULL);
    assert_int_equal(it_start(&t), 0);
    long long gen = generation(&t);
    it_config(&t, 4, 100, NULL);
    const char *s = ctl(&t, 0, "reload --help");
    assert_non_null(strstr(s, "usage: rotactl [-i INSTANCE] reload"));
    ctl(&t, 0, "reload -h");
    ctl(&t, 0, "reload --json --help");
    assert_int_equal(generation(&t), gen);
    ctl(&t, 0, "disable alpha/a0 --help");
    ctl(&t, 0, "disable alpha/a0 --for 5m -h");
    ctl(&t, 0, "drain alpha --help");
    ctl(&t, 0, "cooldown alpha/a0 5m --help");
    ctl(&t, 0, "reset alpha/a0 --help");
    json_t *j = ctl_json(&t, 0, "show alpha/a0");
    assert_string_equal(json_string_value(json_object_get(j, "off")), "");
    assert_int_equal(json_integer_value(json_object_get(j, "cooldown_left_ms")), 0);
    json_decref(j);
    /* show --help is help, not an account called --help; after "--" it is a name. */
    s = ctl(&t, 0, "show --help");
    assert_non_null(strstr(s, "usage: rotactl [-i INSTANCE] show ACCOUNT"));
    s = ctl(&t, 1, "show -- --help");
    assert_non_null(strstr(s, "no account '--help'"));
    /* A value that looks like -h is the option's value. */
    ctl(&t, 0, "disable alpha/a0 --reason -h");
    j = ctl_json(&t, 0, "show alpha/a0");
    assert_string_equal(json_string_value(json_object_get(j, "note")), "-h");
    json_decref(j);
    ctl(&t, 0, "enable alpha/a0");
    /* The changed config was there to be loaded all along. */
    assert_non_null(strstr(ctl(&t, 0, "reload"), "reloaded"));
    assert_true(generation(&t) > gen);
    it_cleanup(&t);
}

static void test_rotactl_usage_error_is_one_line_and_a_hint(void **state)
{
    (void)state;
    static char o[OUT_MAX], e[OUT_MAX];
    static const struct {
        const char *args, *first, *hint;
    } cases[] = {
        {"-i x show", "rotactl: show: ACCOUNT is missing", "try 'rotactl show --help'\n"},
        {"-i x status now", "rotactl: status: takes no arguments, got 'now'",
         "try 'rotactl status --help'\n"},
        {"-i x accounts --frob", "rotactl: accounts: unknown option '--frob'",
         "try 'rotactl accounts --help'\n"},
        {"-i x frobnicate", "rotactl: unknown command 'frobnicate'", "try 'rotactl --help'\n"},
        {"-i x", "rotactl: no command", "try 'rotactl --help'\n"},
        {"--frob status", "rotactl: unknown option --frob", "try 'rotactl --help'\n"},
        {"-i", "rotactl: option -i needs a value", "try 'rotactl --help'\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = ctl_raw(cases[i].args, o, sizeof(o), e, sizeof(e));
        if (rc != 2 || o[0] || lines(e) != 2)
            fail_msg("rotactl %s: exit %d, stdout:\n%s\nstderr:\n%s", cases[i].args, rc, o, e);
        assert_int_equal(strncmp(e, cases[i].first, strlen(cases[i].first)), 0);
        assert_string_equal(strchr(e, '\n') + 1, cases[i].hint);
    }
}

static void test_rotactl_instance_missing_or_malformed_is_usage(void **state)
{
    (void)state;
    static char o[OUT_MAX], e[OUT_MAX];
    static const char *const cases[] = {
        "-i 'bad name' status",
        "-i a.b accounts",
        "-i '' show a0",
        "-i ../x reload",
        "status",
        "accounts",
        "watch --count 1",
        "reload",
        "disable alpha/a0",
        "-i aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa status"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = ctl_raw(cases[i], o, sizeof(o), e, sizeof(e));
        if (rc != 2 || lines(e) != 2 || !strstr(e, "instance"))
            fail_msg("rotactl %s: exit %d, stderr:\n%s", cases[i], rc, e);
    }
    assert_int_equal(ctl_raw("status", o, sizeof(o), e, sizeof(e)), 2);
    assert_non_null(strstr(e, "give -i INSTANCE or set ROTA_INSTANCE"));
    /* From the environment too, saying so. */
    assert_int_equal(ctl_env("ROTA_INSTANCE=no/such", "accounts", o, sizeof(o), e, sizeof(e)),
                     2);
    assert_non_null(strstr(e, "(from ROTA_INSTANCE)"));
    /* Well-formed but not running stays unreachable. */
    assert_int_equal(ctl_raw("-i it-no-such-instance status", o, sizeof(o), e, sizeof(e)), 3);
    assert_int_equal(ctl_raw("-i it-no-such-instance reload", o, sizeof(o), e, sizeof(e)), 3);
}

static void test_rotactl_checks_arguments_itself(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "args");
    it_config(&t, 3, 100, NULL);
    assert_int_equal(it_start(&t), 0);
    /* Each is refused by rotactl, exit 2, with the argument at fault named; rotad never
     * hears of it. */
    static const struct {
        const char *args, *says;
    } cases[] = {
        {"disable alpha/a0 --for banana", "disable: --for 'banana' is not a duration"},
        {"disable alpha/a0 --for 0s", "--for '0s'"},
        {"disable alpha/a0 --for", "--for needs a value"},
        {"disable alpha/a0 --for 5m --for 6m", "--for is given twice"},
        {"disable alpha/a0 --reason "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaa",
         "--reason is 176 bytes long"},
        {"disable alpha/a0 --reason \"$(printf 'a\\033[2Jb')\"",
         "--reason 'a\\x1b[2Jb' has a control character"},
        {"disable alpha/a0 alpha/a1", "takes at most 1 argument"},
        {"disable", "ACCOUNT is missing"},
        {"enable a/b/c", "ACCOUNT 'a/b/c' has more than one '/'"},
        {"enable alpha/", "lacks a name"},
        {"enable 'alpha/a 0'", "has a space"},
        {"show 0x12345678901234567", "at most 16 hex digits"},
        {"cooldown alpha/a2 soon", "cooldown: DURATION 'soon' is not a duration"},
        {"cooldown alpha/a2", "DURATION is missing"},
        {"reset alpha/a1 'a pool'", "POOL 'a pool' has a space"},
        {"reset alpha/a1 p q", "takes at most 2 arguments"},
        {"select", "ROUTE is missing"},
        {"select chat --tokens lots", "--tokens 'lots' is not a whole number"},
        {"select chat --key ''", "--key is empty"},
        {"select chat --frob 1", "unknown option '--frob'"},
        {"drain alpha beta", "takes at most 1 argument"},
        {"probe ''", "is empty"},
        {"reload now", "reload: takes no arguments"},
        {"journal all", "journal: takes no arguments"},
        {"accounts 'a route'", "ROUTE 'a route' has a space"},
        {"watch --interval banana", "--interval 'banana' is not a duration"},
        {"watch --interval 0ms", "--interval '0ms' is too short"},
        {"watch --count 0", "--count '0' is not a whole number"},
        {"watch --count=x", "--count 'x'"},
        {"--json watch --count 1", "watch: draws text only"},
        {"parse --provider openai --status banana", "--status 'banana'"},
        {"parse --provider openai --status 42", "--status '42' is no HTTP status"},
        {"parse --provider nosuch", "--provider 'nosuch' is no provider kind"},
        {"parse --status 200", "--provider KIND is missing"},
        {"parse --provider openai stray", "parse: takes no arguments"},
        {"help nosuch", "COMMAND 'nosuch' is no command"},
    };
    long long gen = generation(&t), before = requests(&t), idle = requests(&t) - before;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *s = ctl(&t, 2, cases[i].args);
        if (!strstr(s, cases[i].says) || lines(s) != 2)
            fail_msg("rotactl %s: wanted '%s' in:\n%s", cases[i].args, cases[i].says, s);
        assert_clean(s, cases[i].args);
    }
    before += idle;
    assert_int_equal(requests(&t) - before, idle);
    before += idle;
    assert_false(it_log_has(&t, "control: disabled"));
    assert_int_equal(generation(&t), gen);
    /* What passes the checks still works, whatever order it was typed in. */
    ctl(&t, 0, "disable --reason 'key rotation' alpha/a0 --for=10m");
    json_t *j = ctl_json(&t, 0, "show alpha/a0");
    assert_string_equal(json_string_value(json_object_get(j, "note")), "key rotation");
    assert_true(json_integer_value(json_object_get(j, "off_left_ms")) > 500000);
    json_decref(j);
    ctl(&t, 0, "enable alpha/a0");
    ctl(&t, 0, "select chat --tokens 100 --key k");
    assert_non_null(strstr(ctl(&t, 1, "enable 0x1"), "no account")); /* rotad's answer */
    assert_true(requests(&t) - before > idle + 4);                   /* these did reach rotad */
    it_cleanup(&t);
}

static void test_rotactl_version(void **state)
{
    (void)state;
    static char o[OUT_MAX], e[OUT_MAX], cmd[1024];
    const char *bin = getenv("ROTA_TEST_BIN");
    snprintf(cmd, sizeof(cmd), "%s/tools/rotad/rotad --version", bin ? bin : ".");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char rotad[256] = "";
    assert_non_null(fgets(rotad, sizeof(rotad), p));
    pclose(p);
    assert_int_equal(strncmp(rotad, "rotad ", 6), 0);
    assert_int_equal(ctl_raw("--version", o, sizeof(o), e, sizeof(e)), 0);
    assert_string_equal(e, "");
    assert_int_equal(strncmp(o, "rotactl ", 8), 0);
    assert_string_equal(o + 8, rotad + 6); /* one version, from rota_version.h */
    assert_true(strlen(o) > 9);
}

/* A name the config accepts (YAML "\x9b" is U+009B, the C1 CSI) in a pool and a route:
 * every text view prints it escaped, JSON in ASCII, and it can still be named. */
static void test_rotactl_escapes_c1_names_from_a_config(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "c1");
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "instance: %s\nstate_dir: %s/state\nproviders:\n"
             "  - name: alpha\n    kind: openai\n    accounts:\n"
             "      - name: a0\n        credential: env:ROTA_IT_KEY\n"
             "        windows: [{metric: requests, limit: 100, reset: daily 00:00, "
             "pool: \"p\\x9b[2J\"}]\n"
             "      - {name: a1, credential: env:ROTA_IT_KEY}\n"
             "routes:\n  - name: \"r\\x9b[31m\"\n    models: [m1]\n    tiers:\n"
             "      - {provider: alpha, strategy: fill-first}\n",
             t.instance, t.dir);
    it_config_text(&t, cfg);
    assert_int_equal(it_start(&t), 0);
    const char *views[] = {"accounts",  "accounts m1",     "show alpha/a0",
                           "select m1", "watch --count 1", "status"};
    for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
        assert_clean(ctl(&t, 0, views[i]), views[i]);
    const char *s = ctl(&t, 0, "accounts");
    assert_non_null(strstr(s, "p\\xc2\\x9b[2J"));
    assert_aligned(s);
    assert_non_null(strstr(ctl(&t, 0, "show alpha/a0"), "pool p\\xc2\\x9b[2J"));
    assert_non_null(strstr(ctl(&t, 0, "select m1"), "r\\xc2\\x9b[31m -> alpha/a"));
    /* The route by its own name, C1 and all: names the config allows stay reachable. */
    assert_clean(ctl(&t, 0, "select \"$(printf 'r\\302\\233[31m')\""), "select by name");
    assert_clean(ctl(&t, 0, "accounts \"$(printf 'r\\302\\233[31m')\""), "accounts by name");
    json_t *j = ctl_json(&t, 0, "accounts");
    assert_clean(out, "--json accounts");
    json_t *w0 = json_array_get(json_object_get(json_array_get(j, 0), "windows"), 0);
    assert_string_equal(json_string_value(json_object_get(w0, "pool")), "p\xc2\x9b[2J");
    json_decref(j);
    it_cleanup(&t);
}

/* A table built without a config (as any writer of an instance may) whose names hold
 * ESC, BEL, DEL, bytes that are not UTF-8, and characters wider and narrower than their
 * bytes: nothing of them reaches the terminal raw and the tables stay in line. */
static void test_rotactl_escapes_names_in_a_table(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "esc");
    static const char *const accts[] = {"a\x1b[2J",
                                        "del\x7f",
                                        "raw\x9b\x33\x31m", /* CSI 3 1 m */
                                        "\xc3\xbcn\xc3\xaf",
                                        "\xe6\x97\xa5\xe6\x9c\xac",
                                        "b0"};
    struct rota_desc_provider p[2] = {{.name = "ev\x1b]0;pwned\x07il", .kind = "openai"},
                                      {.name = "ok", .kind = "openai"}};
    struct rota_desc_account a[6];
    memset(a, 0, sizeof(a));
    uint32_t members[6];
    for (uint32_t i = 0; i < 6; i++) {
        a[i] = (struct rota_desc_account){.id = 0x100 + i, .name = accts[i], .provider = i / 3};
        a[i].pools[1] = "p\x1b[5m";
        a[i].nwin = 1;
        a[i].win[0] = (struct rota_desc_window){.metric = ROTA_METRIC_REQUESTS,
                                                .pool = 1,
                                                .limit = 50,
                                                .reset = {.kind = ROTA_RESET_DAY}};
        members[i] = i;
    }
    struct rota_desc_tier tiers[2] = {
        {.strategy = ROTA_STRAT_HYBRID, .provider = 0, .nmembers = 3, .members = members},
        {.strategy = ROTA_STRAT_HYBRID, .provider = 1, .nmembers = 3, .members = members + 3}};
    struct rota_desc_route r = {.name = "chat", .ntiers = 2, .tiers = tiers};
    struct rota_desc d = {.nproviders = 2,
                          .naccounts = 6,
                          .nroutes = 1,
                          .providers = p,
                          .accounts = a,
                          .routes = &r};
    struct rota_shm_writer *w;
    char err[256];
    assert_int_equal(rota_shm_writer_open(t.instance, 0600, &w, err, sizeof(err)), 0);
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), 0);

    const char *s = ctl(&t, 0, "accounts");
    assert_clean(s, "accounts");
    assert_aligned(s);
    assert_non_null(strstr(s, "ev\\x1b]0;pwned\\x07il/a\\x1b[2J"));
    assert_non_null(strstr(s, "ev\\x1b]0;pwned\\x07il/del\\x7f"));
    assert_non_null(strstr(s, "ev\\x1b]0;pwned\\x07il/raw\\x9b31m"));
    assert_non_null(strstr(s, "ok/\xc3\xbcn\xc3\xaf")); /* valid UTF-8 as it is */
    assert_non_null(strstr(s, "ok/\xe6\x97\xa5\xe6\x9c\xac"));
    assert_non_null(strstr(s, "p\\x1b[5m"));
    s = ctl(&t, 0, "accounts chat");
    assert_clean(s, "accounts chat");
    assert_aligned(s);
    assert_non_null(strstr(s, "tier 0: ev\\x1b]0;pwned\\x07il, hybrid"));
    s = ctl(&t, 0, "watch --count 1");
    assert_clean(s, "watch");
    assert_aligned(s);
    assert_clean(ctl(&t, 0, "status"), "status");
    for (uint32_t i = 0; i < 6; i++) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "show 0x%x", 0x100 + i);
        s = ctl(&t, 0, cmd);
        assert_clean(s, cmd);
        assert_non_null(strstr(s, "pool p\\x1b[5m"));
    }
    /* JSON is ASCII; what jansson cannot hold (bytes that are not UTF-8) does not crash. */
    json_t *j = ctl_json(&t, 0, "accounts");
    assert_clean(out, "--json accounts");
    assert_true(json_is_array(j));
    json_decref(j);
    /* A name typed with a control character is refused before it is looked up. */
    assert_clean(ctl(&t, 2, "show \"$(printf 'a\\033[2J')\""), "show ESC");
    rota_shm_writer_close(w, true);
    it_cleanup(&t);
}

/* A route's tier headings say what each tier's model takes, where the config said it,
 * and that the route sends a request only to tiers of its own format. */
static void test_rotactl_tier_headings_say_what_models_take(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "cap");
    struct rota_desc_provider p = {.name = "p", .kind = "openai"};
    struct rota_desc_account a[2] = {{.id = 0x200, .name = "a0"}, {.id = 0x201, .name = "a1"}};
    uint32_t members[2] = {0, 1};
    struct rota_desc_tier tiers[2] = {{.provider = 0, .nmembers = 1, .members = members},
                                      {.provider = 0,
                                       .nmembers = 1,
                                       .members = members + 1,
                                       .no_tools = true,
                                       .no_images = true,
                                       .context = 8192}};
    struct rota_desc_route r[2] = {
        {.name = "chat", .ntiers = 2, .tiers = tiers},
        {.name = "same", .ntiers = 1, .tiers = tiers + 1, .no_cross_format = true}};
    struct rota_desc d = {.nproviders = 1,
                          .naccounts = 2,
                          .nroutes = 2,
                          .providers = &p,
                          .accounts = a,
                          .routes = r};
    struct rota_shm_writer *w;
    char err[256];
    assert_int_equal(rota_shm_writer_open(t.instance, 0600, &w, err, sizeof(err)), 0);
    assert_int_equal(rota_shm_publish(w, &d, err, sizeof(err)), 0);
    const char *s = ctl(&t, 0, "accounts chat");
    assert_non_null(strstr(s, "tier 0: p, hybrid, ceiling 0.80\n"));
    assert_non_null(strstr(s, "tier 1: p, hybrid, ceiling 0.80, no tools, no images, "
                              "context 8192\n"));
    s = ctl(&t, 0, "accounts same");
    assert_non_null(strstr(s, "tier 0: p, hybrid, ceiling 0.80, no tools, no images, "
                              "context 8192, own format only\n"));
    rota_shm_writer_close(w, true);
    it_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rotactl_every_command_with_rotad, it_teardown),
        cmocka_unit_test_teardown(test_rotactl_help_answers_and_does_nothing_else, it_teardown),
        cmocka_unit_test(test_rotactl_usage_error_is_one_line_and_a_hint),
        cmocka_unit_test(test_rotactl_instance_missing_or_malformed_is_usage),
        cmocka_unit_test_teardown(test_rotactl_checks_arguments_itself, it_teardown),
        cmocka_unit_test(test_rotactl_version),
        cmocka_unit_test_teardown(test_rotactl_escapes_c1_names_from_a_config, it_teardown),
        cmocka_unit_test_teardown(test_rotactl_escapes_names_in_a_table, it_teardown),
        cmocka_unit_test_teardown(test_rotactl_tier_headings_say_what_models_take, it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
