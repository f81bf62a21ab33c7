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
 * The command line is read and checked whole (cli.c) before any of that: a mistake is
 * exit status 2 and nothing attached or sent, --help prints and does nothing else. Every
 * string a table, rotad or a provider supplies is escaped (escape.c) before it is printed
 * as text.
 *
 * Exit status: 0 ok, 1 refused or not found, 2 usage, 3 the instance (or rotad) cannot
 * be reached. Errors are one line on stderr starting "rotactl: "; a usage error adds a
 * second, the hint "try 'rotactl CMD --help'".
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "rota_version.h"
#include "rotactl.h"
#include "supervise.h"
#include "view_json.h"

int rotactl_attach(const struct rotactl_opts *o, struct rota_shm_map *m)
{
    char err[256], e[ROTACTL_ESC_SIZE(256)];
    int rc = rota_shm_attach(o->instance, m, err, sizeof(err));
    if (rc == 0)
        return ROTACTL_OK;
    if (rc == -ENOENT) {
        /* The directory or the generation it names is missing: say which, plainly. */
        struct rota_shm_dir_info info;
        bool dir = rota_shm_dir_read(o->instance, &info, NULL, 0) == 0;
        fprintf(stderr, "rotactl: instance '%s': %s (is rotad running?)\n", o->instance,
                dir ? "no such table" : "no such instance");
    } else {
        fprintf(stderr, "rotactl: instance '%s': %s\n", o->instance,
                rotactl_esc(err, e, sizeof(e)));
    }
    return ROTACTL_UNREACHABLE;
}

/* ---- status ---- */

/* A daemon field's value as text: strings as they are, anything else as compact JSON. */
static void print_field(const char *key, json_t *v)
{
    char *s = json_is_string(v) ? strdup(json_string_value(v))
                                : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                                                    JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    char *e = rotactl_esc_dup(s ? s : "?");
    printf("  %s: %s\n", key, e);
    free(e);
    free(s);
}

static int cmd_status(const struct rotactl_opts *o, const struct rotactl_line *l)
{
    (void)l;
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
            char e[ROTACTL_ESC_SIZE(sizeof(err))];
            printf("rotad: not running (%s)\n", rotactl_esc(err, e, sizeof(e)));
        }
    }
    rota_shm_detach(&m);
    return ROTACTL_OK;
}

/* ---- accounts ---- */

static int cmd_accounts(const struct rotactl_opts *o, const struct rotactl_line *l)
{
    struct rota_shm_map m;
    int rc = rotactl_attach(o, &m);
    if (rc)
        return rc;
    uint32_t route = ROTA_NONE;
    if (l->npos == 1) {
        route = rota_sup_find_route(&m, l->pos[0]);
        if (route == ROTA_NONE) {
            char e[ROTACTL_ESC_NAME];
            fprintf(stderr, "rotactl: no route or model '%s' in instance '%s'\n",
                    rotactl_esc(l->pos[0], e, sizeof(e)), o->instance);
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
    char e[ROTACTL_ESC_NAME], p[ROTACTL_ESC_NAME];
    rotactl_esc(spec, e, sizeof(e));
    if (found == ROTA_NONE) {
        fprintf(stderr, "rotactl: no account '%s' in instance '%s'\n", e, o->instance);
        return ROTA_NONE;
    }
    fprintf(stderr, "rotactl: account name '%s' is ambiguous; name one of:", e);
    for (uint32_t a = 0; a < m->naccounts; a++)
        if (strcmp(rota_shm_str(m, m->accounts[a].name), spec) == 0)
            fprintf(stderr, " %s/%s",
                    rotactl_esc(rota_shm_str(m, m->providers[m->accounts[a].provider].name), p,
                                sizeof(p)),
                    e);
    fputc('\n', stderr);
    return ROTA_NONE;
}

static int cmd_show(const struct rotactl_opts *o, const struct rotactl_line *l)
{
    struct rota_shm_map m;
    int rc = rotactl_attach(o, &m);
    if (rc)
        return rc;
    uint32_t a = find_account(&m, o, l->pos[0]);
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
        char e[ROTACTL_ESC_NAME];
        fprintf(stderr, "rotactl: account '%s': its snapshot stayed under rewrite\n",
                rotactl_esc(l->pos[0], e, sizeof(e)));
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
        if (note) {
            char *e = rotactl_esc_dup(note);
            printf("%-22s %s\n", "note:", e);
            free(e);
        }
    }
    free(note);
    rota_shm_detach(&m);
    return ROTACTL_OK;
}

/* ---- the command line ---- */

/* A command that reads a table or asks rotad needs a well-formed instance name (or, to
 * ask rotad, its socket): without one, that is a usage error. */
static int check_instance(const struct rotactl_opts *o, bool from_env,
                          const struct rotactl_line *l)
{
    if (!o->instance || !*o->instance) {
        if (l->remote && o->socket)
            return ROTACTL_OK;
        return rotactl_usage_error(l->cmd,
                                   "no instance: give -i INSTANCE or set ROTA_INSTANCE%s",
                                   l->remote ? " (or give --socket PATH)" : "");
    }
    if (!rota_shm_instance_ok(o->instance)) {
        char e[ROTACTL_ESC_SIZE(80)];
        return rotactl_usage_error(l->cmd,
                                   "instance '%s'%s is not an instance name: 1 to %d letters, "
                                   "digits, '_' and '-'",
                                   rotactl_esc(o->instance, e, sizeof(e)),
                                   from_env ? " (from ROTA_INSTANCE)" : "", ROTA_MAX_NAME - 1);
    }
    return ROTACTL_OK;
}

/* The option getopt refused, for a message: a long one is its word ("word"); a short one
 * is getopt's optopt, as "word" may be a group ("-zq") or, after it, the program name. */
static const char *bad_option(const char *word, char *buf, size_t n)
{
    if (strncmp(word, "--", 2) == 0)
        return rotactl_esc(word, buf, n);
    char opt[3] = {'-', (char)optopt, 0};
    return rotactl_esc(opt, buf, n);
}

int main(int argc, char **argv)
{
    struct rotactl_opts o = {.instance = getenv("ROTA_INSTANCE")};
    bool from_env = true;
    enum { OPT_SOCKET = 256, OPT_JSON, OPT_VERSION };
    static const struct option longopts[] = {{"instance", required_argument, NULL, 'i'},
                                             {"socket", required_argument, NULL, OPT_SOCKET},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, OPT_VERSION},
                                             {NULL, 0, NULL, 0}};
    char e[ROTACTL_ESC_SIZE(80)];
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            o.instance = optarg;
            from_env = false;
            break;
        case OPT_SOCKET:
            o.socket = optarg;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case 'h':
            rotactl_cli_help(stdout, NULL);
            return ROTACTL_OK;
        case OPT_VERSION:
            printf("rotactl %s\n", ROTA_VERSION);
            return ROTACTL_OK;
        case ':':
            return rotactl_usage_error(NULL, "option %s needs a value",
                                       bad_option(argv[optind - 1], e, sizeof(e)));
        default:
            return rotactl_usage_error(NULL, "unknown option %s",
                                       bad_option(argv[optind - 1], e, sizeof(e)));
        }
    }
    if (optind >= argc)
        return rotactl_usage_error(NULL, "no command");
    struct rotactl_line l;
    int rc = rotactl_cli_parse(argc - optind, argv + optind, o.json, &l);
    if (rc)
        return rc == ROTACTL_DONE ? ROTACTL_OK : rc;
    o.json = l.json;
    if (l.needs_instance && (rc = check_instance(&o, from_env, &l)))
        return rc;
    if (strcmp(l.cmd, "help") == 0) {
        rotactl_cli_help(stdout, l.npos ? l.pos[0] : NULL);
        return ROTACTL_OK;
    }
    if (l.remote)
        return rotactl_remote(&o, &l);
    static const struct {
        const char *name;
        int (*fn)(const struct rotactl_opts *, const struct rotactl_line *);
    } cmds[] = {{"status", cmd_status},
                {"accounts", cmd_accounts},
                {"show", cmd_show},
                {"watch", rotactl_watch},
                {"parse", rotactl_parse}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(l.cmd, cmds[i].name) == 0)
            return cmds[i].fn(&o, &l);
    return rotactl_usage_error(NULL, "unknown command '%s'", l.cmd); /* not in the table */
}
