/*
 * remote.c - rotactl's commands that go through rotad's control socket.
 *
 * DESIGN
 * Each command sends its arguments as cli.c read and checked them, in one order (the
 * positional arguments, then "--option value" pairs), and prints the reply: a line or a
 * few for a person, every string from rotad escaped (escape.c), or the reply's data as
 * JSON with --json. rotad down is exit status 3 with a message that says so; a refused
 * command is 1 with rotad's reason.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "remote.h"
#include "rotactl.h"
#include "table.h"

#define TIMEOUT_MS 10000

/* The control socket's path, given or recorded by rotad in the instance's directory, and
 * whom to trust there ("want"): root, our euid, the user ROTA_SUPERVISOR_USER names (rotad's
 * service user), and, for a path from the directory, only the rotad it records. */
static int socket_path(const struct rotactl_opts *o, char *buf, size_t n,
                       struct rota_ctl_peer *want, char *err, size_t errlen)
{
    *want = (struct rota_ctl_peer){.uid = (uid_t)-1, .pid = 0};
    int trc = rota_shm_trusted_uid(&want->uid, err, errlen);
    if (trc)
        return trc;
    if (o->socket) {
        snprintf(buf, n, "%s", o->socket);
        return 0;
    }
    if (!o->instance)
        return snprintf(err, errlen, "no instance: give -i INSTANCE or set ROTA_INSTANCE"),
               -EINVAL;
    struct rota_shm_dir_info info;
    int rc = rota_shm_dir_read(o->instance, &info, err, errlen);
    if (rc)
        return rc;
    if (!info.control[0])
        return snprintf(err, errlen, "rotad is not running for instance '%s'", o->instance),
               -ENOENT;
    snprintf(buf, n, "%s", info.control);
    want->pid = info.sup_pid;
    return 0;
}

static int call(const struct rotactl_opts *o, const char *cmd, int argc, char *const *argv,
                json_t **reply, char *err, size_t n)
{
    char path[128];
    struct rota_ctl_peer want;
    int rc = socket_path(o, path, sizeof(path), &want, err, n);
    if (rc)
        return rc;
    char cerr[384];
    rc =
        rota_ctl_call_peer(path, &want, cmd, argc, argv, TIMEOUT_MS, reply, cerr, sizeof(cerr));
    if (rc == -ECONNREFUSED || rc == -ENOENT) /* cerr is then a short connect error */
        snprintf(err, n, "rotad is not running for instance '%s' (%.160s)",
                 o->instance ? o->instance : "?", cerr);
    else if (rc)
        snprintf(err, n, "%s", cerr);
    return rc;
}

json_t *rotactl_remote_status(const struct rotactl_opts *o, char *err, size_t n)
{
    json_t *reply = NULL;
    if (call(o, "status", 0, NULL, &reply, err, n) != 0)
        return NULL;
    json_t *data = json_object_get(reply, "data");
    if (!json_is_true(json_object_get(reply, "ok")) || !json_is_object(data)) {
        snprintf(err, n, "rotad answered status with an error");
        json_decref(reply);
        return NULL;
    }
    json_incref(data);
    json_decref(reply);
    return data;
}

char *rotactl_remote_note(const struct rotactl_opts *o, uint64_t id)
{
    char hex[24], err[256];
    snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)id);
    char *argv[] = {hex};
    json_t *reply = NULL;
    if (call(o, "show", 1, argv, &reply, err, sizeof(err)) != 0)
        return NULL;
    const char *note =
        json_string_value(json_object_get(json_object_get(reply, "data"), "note"));
    char *copy = note && *note ? strdup(note) : NULL;
    json_decref(reply);
    return copy;
}

/* String field "key" of a reply, escaped, in "buf" of ROTACTL_ESC_NAME bytes; "" when
 * absent or not a string (an older rotad). */
static const char *str(const json_t *o, const char *key, char *buf)
{
    return rotactl_esc(json_string_value(json_object_get(o, key)), buf, ROTACTL_ESC_NAME);
}

static long long num(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void print_select(const json_t *d)
{
    char a[ROTACTL_ESC_NAME], b[ROTACTL_ESC_NAME], c[ROTACTL_ESC_NAME];
    const char *route = str(d, "route", a);
    if (json_is_true(json_object_get(d, "exhausted"))) {
        json_t *in = json_object_get(d, "retry_in_ms");
        printf("%s: every tier exhausted", route);
        if (json_is_integer(in))
            printf("; something may free up in %lld ms", (long long)json_integer_value(in));
        printf("\n");
    } else {
        printf("%s -> %s (tier %lld, %s%s)\n", route, str(d, "account", b), num(d, "tier"),
               str(d, "why", c),
               json_is_true(json_object_get(d, "trial")) ? ", a half-open trial" : "");
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(d, "tiers"), i, t)
    {
        printf("  tier %lld  ", num(t, "tier"));
        rotactl_pad(stdout, str(t, "provider", a), 14, false);
        fputc(' ', stdout);
        rotactl_pad(stdout, str(t, "strategy", b), 12, false);
        printf(" ceiling %.2f  ", json_real_value(json_object_get(t, "ceiling")));
        json_t *sk = json_object_get(t, "skipped");
        if (json_is_true(json_object_get(t, "chosen"))) {
            printf("chosen\n");
        } else if (sk) {
            printf("skipped:");
            size_t k;
            json_t *s;
            json_array_foreach(sk, k, s) printf(
                " %s",
                json_is_string(s) ? rotactl_esc(json_string_value(s), c, sizeof(c)) : "?");
            printf("%s\n", json_array_size(sk) ? "" : " (not reached)");
        } else {
            printf("not reached\n");
        }
    }
}

static void print_drain(const json_t *d)
{
    char a[ROTACTL_ESC_NAME];
    json_t *what = json_object_get(d, "draining");
    if (json_is_array(what)) {
        printf("draining %zu accounts:", json_array_size(what));
        size_t i;
        json_t *x;
        json_array_foreach(what, i, x) printf(
            " %s", json_is_string(x) ? rotactl_esc(json_string_value(x), a, sizeof(a)) : "?");
        printf("\n");
    } else {
        printf("draining %s\n",
               json_is_string(what) ? rotactl_esc(json_string_value(what), a, sizeof(a)) : "?");
    }
    printf("calls in flight: %lld (they finish; no new ones start)\n", num(d, "in_flight"));
}

/* One line per successful command, in words. */
static void print_human(const char *cmd, const json_t *d)
{
    char a[ROTACTL_ESC_NAME], b[ROTACTL_ESC_NAME];
    if (strcmp(cmd, "select") == 0) {
        print_select(d);
    } else if (strcmp(cmd, "journal") == 0) {
        rotactl_print_journal(d);
    } else if (strcmp(cmd, "workers") == 0) {
        rotactl_print_workers(d);
    } else if (strcmp(cmd, "reload") == 0) {
        if (json_is_true(json_object_get(d, "changed")))
            printf("reloaded: generation %lld, %lld accounts\n", num(d, "generation"),
                   num(d, "accounts"));
        else
            printf("config unchanged: generation %lld stays\n", num(d, "generation"));
    } else if (strcmp(cmd, "enable") == 0) {
        printf("enabled %s\n", str(d, "enabled", a));
    } else if (strcmp(cmd, "disable") == 0) {
        str(d, "for", b);
        printf("disabled %s %s%s (in flight: %lld)\n", str(d, "disabled", a),
               strcmp(b, "until enabled") ? "for " : "", b, num(d, "in_flight"));
    } else if (strcmp(cmd, "drain") == 0) {
        print_drain(d);
    } else if (strcmp(cmd, "reset") == 0) {
        printf("reset %s: %lld windows start from zero\n", str(d, "reset", a),
               num(d, "windows"));
    } else if (strcmp(cmd, "probe") == 0) {
        printf("probing %s now (%lld accounts); `rotactl show` has the outcome\n",
               str(d, "probing", a), num(d, "accounts"));
    } else if (strcmp(cmd, "cooldown") == 0) {
        printf("%s cools down for %s\n", str(d, "cooldown", a), str(d, "for", b));
    }
}

int rotactl_remote(const struct rotactl_opts *o, const struct rotactl_line *l)
{
    /* The positional arguments, then each option given, in the command's order. */
    char *argv[ROTACTL_MAX_POS + 2 * ROTACTL_MAX_OPT];
    int argc = 0;
    for (int i = 0; i < l->npos; i++)
        argv[argc++] = (char *)l->pos[i];
    for (int i = 0; i < ROTACTL_MAX_OPT; i++)
        if (l->opt[i]) {
            argv[argc++] = (char *)l->opt[i];
            argv[argc++] = (char *)l->val[i];
        }
    json_t *reply = NULL;
    char err[512];
    int rc = call(o, l->cmd, argc, argv, &reply, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "rotactl: %s: %s\n", l->cmd, err);
        return ROTACTL_UNREACHABLE;
    }
    if (!json_is_true(json_object_get(reply, "ok"))) {
        const char *e = json_string_value(json_object_get(reply, "error"));
        char *esc = rotactl_esc_dup(e ? e : "refused");
        fprintf(stderr, "rotactl: %s: %s\n", l->cmd, esc);
        free(esc);
        int usage = e && strncmp(e, "usage:", 6) == 0;
        json_decref(reply);
        return usage ? ROTACTL_USAGE : ROTACTL_REFUSED;
    }
    json_t *d = json_object_get(reply, "data");
    if (o->json) {
        json_incref(d);
        json_decref(reply);
        return rotactl_print_json(d);
    }
    print_human(l->cmd, d);
    json_decref(reply);
    return ROTACTL_OK;
}
