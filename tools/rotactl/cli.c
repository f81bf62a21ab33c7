/*
 * cli.c - rotactl's command line: what each command takes, its --help, the checks on
 * what was typed, and the one-line usage errors.
 *
 * DESIGN
 * One table describes every command: its positional arguments and options, each with a
 * kind (an account, a route, a duration, a count, a note...), a line for `rotactl --help`
 * and a few for `rotactl CMD --help`. rotactl_cli_parse reads a command's words against
 * it and checks every value before main.c attaches a table or connects to rotad: names as
 * the config loader allows them, durations, counts, lengths. A mistake is thus exit
 * status 2 with one line saying which argument is wrong and why, whether rotad runs or
 * not, and rotad receives only what it would accept, always in one order: the positional
 * arguments, then "--option value" pairs. "--help" or "-h" anywhere before "--" prints
 * the command's usage on stdout and nothing else happens; "--" ends the options, for a
 * name that starts with '-'. Called once, from main.c, on the only thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "parse.h"
#include "quota.h"
#include "rotactl.h"

#define NAME_MAX_LEN  (ROTA_MAX_NAME - 1) /* provider, account, pool and route names */
#define MODEL_MAX_LEN 255                 /* a model name, which a route argument may be */
#define REASON_MAX    159                 /* rotad keeps an operator's note in 160 bytes */
#define KEY_MAX       1024
#define ESC(n)        ROTACTL_ESC_SIZE(n)

enum kind {
    K_ACCOUNT,  /* provider/name, a name, or 0x<id> */
    K_TARGET,   /* an account or a provider */
    K_ROUTE,    /* a route or a model */
    K_POOL,     /* a pool name or '*' */
    K_COMMAND,  /* one of rotactl's commands */
    K_DURATION, /* a duration, 0s allowed */
    K_PERIOD,   /* a duration above zero */
    K_INTERVAL, /* a duration of at least 1ms */
    K_COUNT,    /* a whole number from 1 */
    K_NUMBER,   /* a whole number from 0 */
    K_REASON,   /* a note: printable, at most REASON_MAX bytes */
    K_KEY,      /* a sticky key: printable, 1 to KEY_MAX bytes */
    K_KIND,     /* a provider kind that has a parser */
    K_STATUS,   /* an HTTP status, or 0 */
    K_FILE,     /* a path */
};

struct argdef {
    const char *name; /* "--for" for an option; "ACCOUNT" for a positional argument */
    const char *meta; /* an option's value: "DURATION" */
    enum kind kind;
    const char *help;
};

enum group { G_TABLE, G_REMOTE, G_OFFLINE };

struct command {
    const char *name;
    enum group group;
    const char *summary; /* one line for `rotactl --help` */
    const char *about;   /* a few lines for `rotactl CMD --help` */
    int min, max;        /* positional arguments */
    struct argdef pos[ROTACTL_MAX_POS];
    struct argdef opt[ROTACTL_MAX_OPT]; /* options, each taking a value */
    bool required_first;                /* opt[0] must be given */
    bool text_only;                     /* refuses --json */
};

/* Positional arguments several commands share (macros: a const object is no constant
 * expression in C11, so it cannot initialise the table below). */
#define A_ACCOUNT                                                                              \
    {                                                                                          \
        "ACCOUNT", NULL, K_ACCOUNT, "provider/name, a name unique across providers, or 0x<id>" \
    }
#define A_TARGET                                                                               \
    {                                                                                          \
        "ACCOUNT|PROVIDER", NULL, K_TARGET,                                                    \
            "an account (provider/name, name or 0x<id>), or a provider"                        \
    }
#define A_ROUTE                                                                                \
    {                                                                                          \
        "ROUTE", NULL, K_ROUTE, "a route, or one of its models"                                \
    }

static const struct command commands[] = {
    {.name = "status",
     .group = G_TABLE,
     .summary = "the instance, its supervisor, a summary of its accounts",
     .about = "The table (generation, supervisor and heartbeat, accounts per status,\n"
              "selections, fairness) and, when rotad answers, rotad's own figures (uptime,\n"
              "reloads, where the state came from, leases reclaimed). Reads the table\n"
              "directly: works with rotad down."},
    {.name = "accounts",
     .group = G_TABLE,
     .summary = "one row per account; with ROUTE (or a model), by tier",
     .about = "One row per account: status, quota used per window and the time to its reset,\n"
              "cooldown, breaker, calls in flight, last use, selections. With ROUTE, its\n"
              "accounts grouped by tier. Reads the table directly: works with rotad down.",
     .max = 1,
     .pos = {A_ROUTE}},
    {.name = "show",
     .group = G_TABLE,
     .summary = "all about one account (provider/name, name or 0xID)",
     .about =
         "Everything about one account: status, windows, cooldown, breaker, counters and,\n"
         "when rotad answers, the reason it was disabled. Reads the table directly.",
     .min = 1,
     .max = 1,
     .pos = {A_ACCOUNT}},
    {.name = "watch",
     .group = G_TABLE,
     .summary = "`accounts`, redrawn every DURATION (1s)",
     .about = "The accounts table, redrawn every DURATION until interrupted or N frames are\n"
              "drawn; follows the instance to each new generation. Reads the table directly.",
     .max = 1,
     .pos = {A_ROUTE},
     .opt = {{"--interval", "DURATION", K_INTERVAL,
              "between frames, at least 1ms (default 1s)"},
             {"--count", "N", K_COUNT,
              "draw N frames, then stop (default: until interrupted)"}},
     .text_only = true},
    {.name = "enable",
     .group = G_REMOTE,
     .summary = "put an account back into rotation",
     .about = "Put an account back into rotation, also after a worker's 401/402 disable.",
     .min = 1,
     .max = 1,
     .pos = {A_ACCOUNT}},
    {.name = "disable",
     .group = G_REMOTE,
     .summary = "take an account out of rotation (until enabled)",
     .about =
         "Take an account out of rotation: no new calls go to it, calls in flight finish.\n"
         "For good (until `rotactl enable`) or, with --for, for a while.",
     .min = 1,
     .max = 1,
     .pos = {A_ACCOUNT},
     .opt = {{"--for", "DURATION", K_PERIOD, "for this long only (90s, 10m, 2h)"},
             {"--reason", "TEXT", K_REASON,
              "a note `rotactl show` prints (at most 159 bytes)"}}},
    {.name = "reset",
     .group = G_REMOTE,
     .summary = "quota windows start from zero",
     .about =
         "The account's quota windows start from zero: every one of them, or only POOL's.\n"
         "Without POOL, the cooldown and the breaker clear too.",
     .min = 1,
     .max = 2,
     .pos = {A_ACCOUNT,
             {"POOL", NULL, K_POOL, "one of the account's pools ('*': the account-wide one)"}}},
    {.name = "cooldown",
     .group = G_REMOTE,
     .summary = "rest an account for DURATION (30s, 5m, 2h)",
     .about = "Rest an account for DURATION from now: selection passes it over until then.",
     .min = 2,
     .max = 2,
     .pos = {A_ACCOUNT, {"DURATION", NULL, K_DURATION, "30s, 5m, 2h; 0s ends a cooldown"}}},
    {.name = "select",
     .group = G_REMOTE,
     .summary = "a dry run: the account ROUTE would pick, and why",
     .about =
         "A dry run: the account ROUTE would choose now, from which tier and why, and why\n"
         "each earlier tier was passed over. Nothing is counted.",
     .min = 1,
     .max = 1,
     .pos = {A_ROUTE},
     .opt = {{"--key", "K", K_KEY, "the sticky key a worker would pass"},
             {"--tokens", "N", K_NUMBER, "the tokens the call is expected to use"}}},
    {.name = "reload",
     .group = G_REMOTE,
     .summary = "re-read the configuration, publish a new generation",
     .about = "Re-read the configuration file, as SIGHUP does, and print the outcome: a new\n"
              "generation, no change, or why the file was refused (the running table stays)."},
    {.name = "drain",
     .group = G_REMOTE,
     .summary = "no new calls; calls in flight finish",
     .about = "No new calls go to the account, or to every account of the provider; calls in\n"
              "flight finish. Prints how many there are. `rotactl enable` ends it.",
     .min = 1,
     .max = 1,
     .pos = {A_TARGET}},
    {.name = "probe",
     .group = G_REMOTE,
     .summary = "ask the provider for the quota now",
     .about = "Ask the provider for the account's quota now (each account's, for a provider);\n"
              "`rotactl show` has the outcome once it is in.",
     .min = 1,
     .max = 1,
     .pos = {A_TARGET}},
    {.name = "journal",
     .group = G_REMOTE,
     .summary = "the journal's backends: lag, queue, drops, last write",
     .about =
         "Per backend of the journal (file, Redis): lag, what is queued, what was dropped,\n"
         "the last write, sync and snapshot, errors."},
    {.name = "workers",
     .group = G_REMOTE,
     .summary = "the dispatch pool's processes: load, errors, added latency",
     .about =
         "Per rota-worker process rotad runs (the workers: section): pid, slot, state\n"
         "(starting, serving, draining), uptime, threads, client connections, requests\n"
         "answered, in flight, errors (5xx or a stream ended by an error), exhausted\n"
         "(429: no account could take it), and the time the pool added to requests over\n"
         "the last minute (p50, p99, microseconds, upstream time excluded). Figures are\n"
         "each process's last report, at most a second old."},
    {.name = "parse",
     .group = G_OFFLINE,
     .summary = "what the provider's parser reads in an answer",
     .about =
         "What the parser of provider kind KIND reads in an answer saved to files (curl -D\n"
         "headers.txt -o body.json ...): windows, limits, resets, retry hints, verdicts,\n"
         "and the fields it had to skip. Needs no instance.",
     .opt = {{"--provider", "KIND", K_KIND, "the provider kind whose parser reads the answer"},
             {"--status", "N", K_STATUS,
              "the HTTP status (default 200; 0: an exec probe's output)"},
             {"--headers", "FILE", K_FILE, "the answer's headers, as curl -D saves them"},
             {"--body", "FILE", K_FILE, "the answer's body"}},
     .required_first = true},
    {.name = "help",
     .group = G_OFFLINE,
     .summary = "this text, or COMMAND's",
     .about = "The list of commands, or the usage of one.",
     .max = 1,
     .pos = {{"COMMAND", NULL, K_COMMAND, "one of rotactl's commands"}}},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* ---- usage ---- */

int rotactl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rotactl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'rotactl %s%s--help'\n", cmd ? cmd : "", cmd ? " " : "");
    return ROTACTL_USAGE;
}

/* "cmd ARGS [OPTIONS]", as in a synopsis. */
static void synopsis(FILE *out, const struct command *c)
{
    fputs(c->name, out);
    for (int i = 0; i < c->max; i++)
        fprintf(out, i < c->min ? " %s" : " [%s]", c->pos[i].name);
    for (int i = 0; i < ROTACTL_MAX_OPT && c->opt[i].name; i++)
        fprintf(out, i == 0 && c->required_first ? " %s %s" : " [%s %s]", c->opt[i].name,
                c->opt[i].meta);
}

/* The provider kinds that have a parser, from column "col", lines wrapped before column
 * 80 and continued at column "indent" (0: on one line). */
static void parser_kinds(FILE *out, size_t col, size_t indent)
{
    for (int i = 0; rota_parsers[i]; i++) {
        size_t len = strlen(rota_parsers[i]->kind) + (rota_parsers[i + 1] ? 1 : 0);
        if (i && indent && col + 1 + len >= 80) {
            fprintf(out, "\n%*s", (int)indent, "");
            col = indent;
        } else if (i) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%s%s", rota_parsers[i]->kind, rota_parsers[i + 1] ? "," : "");
        col += len;
    }
}

static void command_help(FILE *out, const struct command *c)
{
    fprintf(out, "usage: rotactl %s", c->group != G_OFFLINE ? "[-i INSTANCE] " : "");
    synopsis(out, c);
    fprintf(out, "\n\n%s\n\n", c->about);
    for (int i = 0; i < c->max; i++)
        fprintf(out, "  %-20s %s\n", c->pos[i].name, c->pos[i].help);
    for (int i = 0; i < ROTACTL_MAX_OPT && c->opt[i].name; i++) {
        char head[40];
        snprintf(head, sizeof(head), "%s %s", c->opt[i].name, c->opt[i].meta);
        fprintf(out, "  %-20s %s", head, c->opt[i].help);
        if (c->opt[i].kind == K_KIND) {
            fprintf(out, ":\n%*s", 23, "");
            parser_kinds(out, 23, 23);
        }
        fputc('\n', out);
    }
    if (!c->text_only && strcmp(c->name, "help"))
        fprintf(out, "  %-20s %s\n", "--json", "print JSON instead of text");
    fprintf(out, "  %-20s %s\n", "-h, --help", "this text");
    if (c->group != G_OFFLINE)
        fprintf(out, "\nThe instance: -i INSTANCE or $ROTA_INSTANCE%s.\n",
                c->group == G_REMOTE ? "; or rotad's socket: --socket PATH" : "");
}

void rotactl_cli_help(FILE *out, const char *cmd)
{
    const struct command *one = cmd ? find_command(cmd) : NULL;
    if (one) {
        command_help(out, one);
        return;
    }
    static const char *const heads[] = {[G_TABLE] =
                                            "Read the table directly (work with rotad down):\n",
                                        [G_REMOTE] = "Ask rotad, through its control socket:\n",
                                        [G_OFFLINE] = "Offline:\n"};
    fputs("usage: rotactl [-i INSTANCE] [--socket PATH] [--json] COMMAND [ARGS]\n", out);
    for (int g = G_TABLE; g <= G_OFFLINE; g++) {
        fprintf(out, "\n%s", heads[g]);
        for (size_t i = 0; i < NCOMMANDS; i++) {
            if (commands[i].group != (enum group)g)
                continue;
            char *line = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&line, &len);
            if (!mem)
                continue;
            synopsis(mem, &commands[i]);
            fclose(mem);
            if (len < 28)
                fprintf(out, "  %-28s%s\n", line, commands[i].summary);
            else
                fprintf(out, "  %s\n  %-28s%s\n", line, "", commands[i].summary);
            free(line);
        }
    }
    fputs("\nOptions:\n"
          "  -i, --instance NAME         the instance (default: $ROTA_INSTANCE)\n"
          "  --socket PATH               rotad's control socket (default: from the instance)\n"
          "                              served by root, you or $ROTA_SUPERVISOR_USER\n"
          "  --json                      print JSON instead of text\n"
          "  -h, --help                  this text; `rotactl COMMAND --help`: one command's\n"
          "  --version                   rotactl's version\n"
          "\n"
          "Exit status: 0 ok, 1 refused or not found, 2 usage, 3 instance or rotad "
          "unreachable.\n",
          out);
}

/* ---- checks ---- */

/* The value a usage error quotes, escaped: what was typed may hold anything. */
static const char *quote(const char *s, char *buf, size_t n)
{
    return rotactl_esc(s, buf, n);
}

/* A name as the config loader allows it: 1 to "max" bytes of UTF-8, no space, no C0
 * control, no DEL (a route's name may hold other code points, C1 controls included, and
 * must remain reachable). "what" says where it was typed. */
static int check_name(const char *cmd, const char *what, const char *s, size_t max)
{
    char q[ESC(80)];
    size_t len = strlen(s);
    if (len == 0)
        return rotactl_usage_error(cmd, "%s is empty", what);
    if (len > max)
        return rotactl_usage_error(cmd, "%s '%s' is %zu bytes long; names are at most %zu",
                                   what, quote(s, q, sizeof(q)), len, max);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return rotactl_usage_error(cmd, "%s '%s' has a %s; names have none", what,
                                       quote(s, q, sizeof(q)),
                                       *p == ' ' ? "space" : "control character");
    if (!rotactl_utf8_ok(s))
        return rotactl_usage_error(cmd, "%s '%s' is not valid UTF-8", what,
                                   quote(s, q, sizeof(q)));
    return ROTACTL_OK;
}

/* provider/name, a name, or 0x<id> with 1 to 16 hex digits. */
static int check_account(const char *cmd, const char *what, const char *s)
{
    char q[ESC(80)];
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && s[2]) {
        size_t hex = strspn(s + 2, "0123456789abcdefABCDEF");
        if (s[2 + hex] == 0 && hex > 16)
            return rotactl_usage_error(cmd,
                                       "%s '%s' is no account id: ids have at most 16 "
                                       "hex digits",
                                       what, quote(s, q, sizeof(q)));
        if (s[2 + hex] == 0)
            return ROTACTL_OK;
    }
    const char *slash = strchr(s, '/');
    if (!slash)
        return check_name(cmd, what, s, NAME_MAX_LEN);
    if (strchr(slash + 1, '/'))
        return rotactl_usage_error(cmd,
                                   "%s '%s' has more than one '/'; expected "
                                   "provider/name",
                                   what, quote(s, q, sizeof(q)));
    if (slash == s || !slash[1])
        return rotactl_usage_error(cmd, "%s '%s' lacks a %s; expected provider/name", what,
                                   quote(s, q, sizeof(q)), slash == s ? "provider" : "name");
    char provider[NAME_MAX_LEN + 2];
    snprintf(provider, sizeof(provider), "%.*s", (int)(slash - s), s);
    if ((size_t)(slash - s) > NAME_MAX_LEN)
        return rotactl_usage_error(cmd,
                                   "%s '%s': the provider's name is %zu bytes long; "
                                   "names are at most %d",
                                   what, quote(s, q, sizeof(q)), (size_t)(slash - s),
                                   NAME_MAX_LEN);
    int rc = check_name(cmd, what, provider, NAME_MAX_LEN);
    return rc ? rc : check_name(cmd, what, slash + 1, NAME_MAX_LEN);
}

/* A duration of at least "min" ns; its value in "*ns". */
static int check_duration(const char *cmd, const char *what, const char *s, uint64_t min,
                          uint64_t *ns)
{
    char q[ESC(80)];
    if (rota_parse_duration(s, ns) != 0)
        return rotactl_usage_error(cmd,
                                   "%s '%s' is not a duration; expected one such as "
                                   "500ms, 90s, 10m, 2h, 1d",
                                   what, quote(s, q, sizeof(q)));
    if (*ns < min)
        return rotactl_usage_error(cmd, "%s '%s' is too short; expected %s", what,
                                   quote(s, q, sizeof(q)),
                                   min == 1 ? "more than zero" : "at least 1ms");
    return ROTACTL_OK;
}

/* A whole number from "min" to "max", in decimal digits only. */
static int check_number(const char *cmd, const char *what, const char *s, uint64_t min,
                        uint64_t max, uint64_t *v)
{
    char q[ESC(80)];
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (!*s || strspn(s, "0123456789") != strlen(s) || errno || x < min || x > max)
        return rotactl_usage_error(cmd, "%s '%s' is not a whole number from %llu to %llu", what,
                                   quote(s, q, sizeof(q)), (unsigned long long)min,
                                   (unsigned long long)max);
    *v = x;
    return ROTACTL_OK;
}

/* Printable UTF-8 text of "min" to "max" bytes. */
static int check_text(const char *cmd, const char *what, const char *s, size_t min, size_t max)
{
    char q[ESC(80)];
    size_t len = strlen(s);
    if (len < min)
        return rotactl_usage_error(cmd, "%s is empty", what);
    if (len > max)
        return rotactl_usage_error(cmd, "%s is %zu bytes long; at most %zu", what, len, max);
    if (!rotactl_utf8_ok(s))
        return rotactl_usage_error(cmd, "%s '%s' is not valid UTF-8", what,
                                   quote(s, q, sizeof(q)));
    if (rotactl_esc_needed(s))
        return rotactl_usage_error(cmd, "%s '%s' has a control character", what,
                                   quote(s, q, sizeof(q)));
    return ROTACTL_OK;
}

/* Check "s", given as argument "d" of command "c" (where "what" names it); a number or a
 * duration goes to "*num". */
static int check(const struct command *c, const struct argdef *d, const char *what,
                 const char *s, uint64_t *num)
{
    const char *cmd = c->name;
    char q[ESC(80)];
    switch (d->kind) {
    case K_ACCOUNT:
    case K_TARGET:
        return check_account(cmd, what, s);
    case K_ROUTE:
        return check_name(cmd, what, s, MODEL_MAX_LEN);
    case K_POOL:
        return check_name(cmd, what, s, NAME_MAX_LEN);
    case K_COMMAND:
        if (!find_command(s))
            return rotactl_usage_error(cmd, "%s '%s' is no command of rotactl", what,
                                       quote(s, q, sizeof(q)));
        return ROTACTL_OK;
    case K_DURATION:
        return check_duration(cmd, what, s, 0, num);
    case K_PERIOD:
        return check_duration(cmd, what, s, 1, num);
    case K_INTERVAL:
        return check_duration(cmd, what, s, ROTA_NS_PER_MS, num);
    case K_COUNT:
        return check_number(cmd, what, s, 1, 1000000000, num);
    case K_NUMBER:
        return check_number(cmd, what, s, 0, UINT32_MAX, num);
    case K_REASON:
        return check_text(cmd, what, s, 0, REASON_MAX);
    case K_KEY:
        return check_text(cmd, what, s, 1, KEY_MAX);
    case K_KIND:
        if (!rota_parser_find(s)) {
            fprintf(stderr, "rotactl: %s: %s '%s' is no provider kind; one of: ", cmd, what,
                    quote(s, q, sizeof(q)));
            parser_kinds(stderr, 0, 0);
            fprintf(stderr, "\ntry 'rotactl %s --help'\n", cmd);
            return ROTACTL_USAGE;
        }
        return ROTACTL_OK;
    case K_STATUS:
        if (check_number(cmd, what, s, 0, 599, num))
            return ROTACTL_USAGE;
        if (*num != 0 && *num < 100)
            return rotactl_usage_error(cmd,
                                       "%s '%s' is no HTTP status; expected 100 to 599, "
                                       "or 0 for an exec probe's output",
                                       what, quote(s, q, sizeof(q)));
        return ROTACTL_OK;
    case K_FILE:
        return check_text(cmd, what, s, 1, 4096);
    }
    return ROTACTL_OK;
}

/* ---- parsing ---- */

/* An option of "c" named as "word" starts ("--for" or "--for=..."), or NULL. */
static const struct argdef *option_of(const struct command *c, const char *word, int *idx)
{
    size_t len = strcspn(word, "=");
    for (int i = 0; i < ROTACTL_MAX_OPT && c->opt[i].name; i++)
        if (strlen(c->opt[i].name) == len && strncmp(word, c->opt[i].name, len) == 0) {
            *idx = i;
            return &c->opt[i];
        }
    return NULL;
}

/* Does a word before "--" ask for help? */
static bool wants_help(int argc, char **argv, const struct command *c)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        int k;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
        if (option_of(c, argv[i], &k) && !strchr(argv[i], '='))
            i++; /* its value may be anything, "-h" included */
    }
    return false;
}

int rotactl_cli_parse(int argc, char **argv, bool json, struct rotactl_line *l)
{
    char q[ESC(80)];
    memset(l, 0, sizeof(*l));
    l->json = json;
    const struct command *c = find_command(argv[0]);
    if (!c)
        return rotactl_usage_error(NULL, "unknown command '%s'", quote(argv[0], q, sizeof(q)));
    l->cmd = c->name;
    l->remote = c->group == G_REMOTE;
    l->needs_instance = c->group != G_OFFLINE;
    if (wants_help(argc, argv, c)) {
        command_help(stdout, c);
        return ROTACTL_DONE;
    }
    bool options = true;
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        int k;
        const struct argdef *d;
        if (options && strcmp(w, "--") == 0) {
            options = false;
        } else if (options && strcmp(w, "--json") == 0) {
            l->json = true;
        } else if (options && (d = option_of(c, w, &k))) {
            const char *eq = strchr(w, '=');
            const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!v)
                return rotactl_usage_error(c->name, "%s needs a value (%s)", d->name, d->meta);
            if (l->val[k])
                return rotactl_usage_error(c->name, "%s is given twice", d->name);
            int rc = check(c, d, d->name, v, &l->num[k]);
            if (rc)
                return rc;
            l->val[k] = v;
            l->opt[k] = d->name;
        } else if (options && w[0] == '-' && w[1]) {
            return rotactl_usage_error(c->name,
                                       "unknown option '%s' (a name that starts with '-' goes "
                                       "after '--')",
                                       quote(w, q, sizeof(q)));
        } else if (l->npos == c->max) {
            if (c->max == 0)
                return rotactl_usage_error(c->name, "takes no arguments, got '%s'",
                                           quote(w, q, sizeof(q)));
            return rotactl_usage_error(c->name, "takes at most %d argument%s, got '%s' too",
                                       c->max, c->max == 1 ? "" : "s", quote(w, q, sizeof(q)));
        } else {
            const struct argdef *d2 = &c->pos[l->npos];
            uint64_t unused;
            int rc = check(c, d2, d2->name, w, &unused);
            if (rc)
                return rc;
            l->pos[l->npos++] = w;
        }
    }
    if (l->npos < c->min)
        return rotactl_usage_error(c->name, "%s is missing", c->pos[l->npos].name);
    if (c->required_first && !l->val[0]) {
        fprintf(stderr, "rotactl: %s: %s %s is missing", c->name, c->opt[0].name,
                c->opt[0].meta);
        if (c->opt[0].kind == K_KIND) {
            fprintf(stderr, "; %s is one of: ", c->opt[0].meta);
            parser_kinds(stderr, 0, 0);
        }
        fprintf(stderr, "\ntry 'rotactl %s --help'\n", c->name);
        return ROTACTL_USAGE;
    }
    if (c->text_only && l->json)
        return rotactl_usage_error(c->name, "draws text only; for JSON, run 'rotactl --json "
                                            "accounts' in a loop");
    return ROTACTL_OK;
}

const char *rotactl_line_opt(const struct rotactl_line *l, const char *name)
{
    for (int i = 0; i < ROTACTL_MAX_OPT; i++)
        if (l->opt[i] && strcmp(l->opt[i], name) == 0)
            return l->val[i];
    return NULL;
}

uint64_t rotactl_line_num(const struct rotactl_line *l, const char *name, uint64_t dflt)
{
    for (int i = 0; i < ROTACTL_MAX_OPT; i++)
        if (l->opt[i] && strcmp(l->opt[i], name) == 0)
            return l->num[i];
    return dflt;
}
