/*
 * main.c - rotactl: the operator's command line for a rota instance.
 *
 * DESIGN
 * One process, one thread, one command. The read-only commands (status, accounts, show,
 * watch) map the instance's table themselves (rota_shm_attach) and read it through
 * core/view, so they work whether rotad is running or not and change nothing: no
 * selection is made, no hot word written. Commands that change the instance (enable,
 * disable, reset, cooldown, select, reload, drain) go to rotad's control socket through
 * remote.c. "status" does both: the table's half always, rotad's half when it answers.
 *
 * Exit status: 0 ok, 1 refused or not found, 2 usage, 3 the instance (or rotad) cannot
 * be reached. Errors are one line on stderr starting "rotactl: ".
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "rotactl.h"
#include "supervise.h"
#include "view_json.h"

static const char *const usage_text =
    "usage: rotactl [-i INSTANCE] [--socket PATH] [--json] COMMAND [ARGS]\n"
    "\n"
    "Read the table directly (work with rotad down):\n"
    "  status                      the instance, its supervisor, a summary of its accounts\n"
    "  accounts [ROUTE]            one row per account; with ROUTE (or a model), by tier\n"
    "  show ACCOUNT                all about one account (provider/name, name or 0xID)\n"
    "  watch [ROUTE] [--interval DURATION] [--count N]\n"
    "                              redraw the accounts table every DURATION (1s)\n"
    "Ask rotad, through its control socket:\n"
    "  enable ACCOUNT              put an account back into rotation\n"
    "  disable ACCOUNT [--for DURATION] [--reason TEXT]\n"
    "                              take an account out of rotation (until enabled)\n"
    "  reset ACCOUNT [POOL]        start quota windows from zero (all pools: also clear the\n"
    "                              cooldown and the breaker)\n"
    "  cooldown ACCOUNT DURATION   rest an account for DURATION (30s, 5m, 2h)\n"
    "  select ROUTE [--key K]      a dry run: the account the route would choose and why;\n"
    "                              nothing is counted\n"
    "  reload                      re-read the configuration, publish a new generation\n"
    "  drain ACCOUNT|PROVIDER      no new calls; calls in flight finish\n"
    "  probe ACCOUNT|PROVIDER      ask the provider for the quota now\n"
    "  journal                     the journal's backends: lag, queue, drops, last write\n"
    "Offline:\n"
    "  parse --provider KIND [--status N] [--headers FILE] [--body FILE]\n"
    "                              what the provider's parser reads in an answer\n"
    "  help                        this text\n"
    "\n"
    "Options:\n"
    "  -i, --instance NAME         the instance (default: $ROTA_INSTANCE)\n"
    "  --socket PATH               rotad's control socket (default: from the instance)\n"
    "  --json                      print JSON instead of text\n"
    "  -h, --help                  this text\n"
    "\n"
    "Exit status: 0 ok, 1 refused or not found, 2 usage, 3 instance or rotad unreachable.\n";

int rotactl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rotactl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    fputs(usage_text, stderr);
    return ROTACTL_USAGE;
}

int rotactl_attach(const struct rotactl_opts *o, struct rota_shm_map *m)
{
    char err[256];
    if (!o->instance || !*o->instance) {
        fprintf(stderr, "rotactl: no instance: use -i INSTANCE or set ROTA_INSTANCE\n");
        return ROTACTL_UNREACHABLE;
    }
    int rc = rota_shm_attach(o->instance, m, err, sizeof(err));
    if (rc == 0)
        return ROTACTL_OK;
    if (rc == -ENOENT) {
        /* The directory or the generation it names is missing: say which, plainly. */
        struct rota_shm_dir_info info;
        bool dir = rota_shm_dir_read(o->instance, &info, NULL, 0) == 0;
        fprintf(stderr, "rotactl: instance '%s': %s (is rotad running?)\n", o->instance,
                dir ? "no such table" : "no such instance");
    } else if (rc == -EINVAL) {
        fprintf(stderr,
                "rotactl: instance '%s': bad instance name (letters, digits, '_' and '-')\n",
                o->instance);
    } else {
        fprintf(stderr, "rotactl: instance '%s': %s\n", o->instance, err);
    }
    return ROTACTL_UNREACHABLE;
}

/* ---- status ---- */

/* A daemon field's value as text: strings as they are, anything else as compact JSON. */
static void print_field(const char *key, json_t *v)
{
    if (json_is_string(v)) {
        printf("  %s: %s\n", key, json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
    printf("  %s: %s\n", key, s ? s : "?");
    free(s);
}

static int cmd_status(const struct rotactl_opts *o, int argc, char **argv)
{
    if (argc > 1)
        return rotactl_usage_error("status takes no arguments");
    struct rota_shm_map m;
    int rc = rotactl_attach(o, &m);
    if (rc)
        return rc;
    struct rota_view_instance vi;
    rota_view_instance(&m, rota_clock_mono(), rota_clock_wall(), &vi);
    char err[256] = "";
    json_t *d = rotactl_remote_status(o, err, sizeof(err));
    if (d && !json_is_object(d)) {
        json_decref(d);
        d = NULL;
        snprintf(err, sizeof(err), "rotad answered something that is not an object");
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "table", rota_view_instance_json(&vi));
        json_object_set_new(j, "daemon", d ? d : json_null());
        json_object_set_new(j, "daemon_error", d ? json_null() : json_string(err));
        rotactl_print_json(j);
    } else {
        rotactl_instance_text(stdout, &vi);
        if (d) {
            /* The table's own figures are printed above; these are rotad's. */
            static const char *const keys[] = {"pid",
                                               "config",
                                               "socket",
                                               "state_origin",
                                               "state_age_s",
                                               "started_at",
                                               "uptime_s",
                                               "reloads",
                                               "reload_failures",
                                               "last_reload_error",
                                               "quota_resets",
                                               "rate_trips",
                                               "leases_reclaimed",
                                               "workers_attached",
                                               "calls_held",
                                               "requests",
                                               "frames_refused"};
            printf("rotad:\n");
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
                json_t *v = json_object_get(d, keys[k]);
                if (v && !(json_is_string(v) && !*json_string_value(v)))
                    print_field(keys[k], v);
            }
            json_decref(d);
        } else {
            printf("rotad: not running (%s)\n", err);
        }
    }
    rota_shm_detach(&m);
    return ROTACTL_OK;
}

/* ---- accounts ---- */

static int cmd_accounts(const struct rotactl_opts *o, int argc, char **argv)
{
    if (argc > 2)
        return rotactl_usage_error("accounts takes at most one route");
    struct rota_shm_map m;
    int rc = rotactl_attach(o, &m);
    if (rc)
        return rc;
    uint32_t route = ROTA_NONE;
    if (argc == 2) {
        route = rota_sup_find_route(&m, argv[1]);
        if (route == ROTA_NONE) {
            fprintf(stderr, "rotactl: no route or model '%s' in instance '%s'\n", argv[1],
                    o->instance);
            rota_shm_detach(&m);
            return ROTACTL_REFUSED;
        }
    }
    uint64_t now = rota_clock_mono();
    int64_t wall = rota_clock_wall();
    if (o->json)
        rotactl_print_json(rotactl_accounts_json(&m, route, now, wall));
    else
        rotactl_accounts_text(stdout, &m, route, now, wall);
    rota_shm_detach(&m);
    return ROTACTL_OK;
}

/* ---- show ---- */

/* Account "spec" (provider/name, a name unique across providers, or 0xID): its index, or
 * ROTA_NONE having said why on stderr. */
static uint32_t find_account(const struct rota_shm_map *m, const struct rotactl_opts *o,
                             const char *spec)
{
    uint32_t found = rota_sup_find_account(m, spec);
    if (found < ROTA_NONE - 1)
        return found;
    if (found == ROTA_NONE) {
        fprintf(stderr, "rotactl: no account '%s' in instance '%s'\n", spec, o->instance);
        return ROTA_NONE;
    }
    fprintf(stderr, "rotactl: account name '%s' is ambiguous; name one of:", spec);
    for (uint32_t a = 0; a < m->naccounts; a++)
        if (strcmp(rota_shm_str(m, m->accounts[a].name), spec) == 0)
            fprintf(stderr, " %s/%s",
                    rota_shm_str(m, m->providers[m->accounts[a].provider].name), spec);
    fputc('\n', stderr);
    return ROTA_NONE;
}

static int cmd_show(const struct rotactl_opts *o, int argc, char **argv)
{
    if (argc != 2)
        return rotactl_usage_error("show takes one account (provider/name, name or 0xID)");
    struct rota_shm_map m;
    int rc = rotactl_attach(o, &m);
    if (rc)
        return rc;
    uint32_t a = find_account(&m, o, argv[1]);
    if (a == ROTA_NONE) {
        rota_shm_detach(&m);
        return ROTACTL_REFUSED;
    }
    struct rota_view_account v;
    uint64_t now = rota_clock_mono();
    int64_t wall = rota_clock_wall();
    for (int tries = 0; tries < 100 && (rc = rota_view_account(&m, a, now, wall, &v)); tries++)
        now = rota_clock_mono(); /* the supervisor is rewriting it: look again */
    if (rc) {
        fprintf(stderr, "rotactl: account '%s': its snapshot stayed under rewrite\n", argv[1]);
        rota_shm_detach(&m);
        return ROTACTL_UNREACHABLE;
    }
    /* The operator's reason for a disable lives with rotad, not in the table. */
    char *note = v.off == ROTA_OFF_OPERATOR || v.off == ROTA_OFF_DRAIN
                     ? rotactl_remote_note(o, v.id)
                     : NULL;
    if (o->json) {
        json_t *j = rotactl_account_json(&v);
        if (note)
            json_object_set_new(j, "note", json_string(note));
        rotactl_print_json(j);
    } else {
        rotactl_account_text(stdout, &v, wall);
        if (note)
            printf("%-16s %s\n", "note:", note);
    }
    free(note);
    rota_shm_detach(&m);
    return ROTACTL_OK;
}

/* ---- the command line ---- */

/* Take "--json" out of a command's arguments (it may come before or after the command). */
static int strip_json(int argc, char **argv, struct rotactl_opts *o)
{
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--json") == 0)
            o->json = true;
        else
            argv[n++] = argv[i];
    }
    argv[n] = NULL;
    return n;
}

int main(int argc, char **argv)
{
    struct rotactl_opts o = {.instance = getenv("ROTA_INSTANCE")};
    static const struct option longopts[] = {{"instance", required_argument, NULL, 'i'},
                                             {"socket", required_argument, NULL, 's'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            o.instance = optarg;
            break;
        case 's':
            o.socket = optarg;
            break;
        case 'j':
            o.json = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return ROTACTL_OK;
        case ':':
            return rotactl_usage_error("option %s needs an argument", argv[optind - 1]);
        default:
            return rotactl_usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return rotactl_usage_error("no command");
    int cargc = strip_json(argc - optind, argv + optind, &o);
    char **cargv = argv + optind;
    const char *cmd = cargv[0];
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return ROTACTL_OK;
    }
    if (strcmp(cmd, "parse") == 0)
        return rotactl_parse(&o, cargc, cargv);
    if (rotactl_is_remote(cmd)) {
        if ((!o.instance || !*o.instance) && !o.socket) {
            fprintf(stderr, "rotactl: no instance: use -i INSTANCE, set ROTA_INSTANCE or "
                            "give --socket PATH\n");
            return ROTACTL_UNREACHABLE;
        }
        return rotactl_remote(&o, cargc, cargv);
    }
    static const struct {
        const char *name;
        int (*fn)(const struct rotactl_opts *, int, char **);
    } cmds[] = {{"status", cmd_status},
                {"accounts", cmd_accounts},
                {"show", cmd_show},
                {"watch", rotactl_watch}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(&o, cargc, cargv);
    return rotactl_usage_error("unknown command '%s'", cmd);
}
