/*
 * main.c - rotad, the supervisor: start, adopt or publish the table, reload, stop.
 *
 * DESIGN
 * Start: load and check the config (a bad one stops rotad before it touches anything),
 * create or check the state directory (statedir.c: one that someone else controls stops
 * rotad), take the instance's lock (<state_dir>/rotad.lock, flock: a second rotad is
 * refused, and the lock dies with its holder, so kill -9 never leaves it stale), open
 * the table's directory (held with flock: refused while another rotad holds it), then adopt the
 * live generation if there is one (workers keep their counters: nothing is copied) and publish
 * a new generation only when the config differs from the one that built it. Then the control
 * socket, and the loop (loop.c).
 *
 * Reload (SIGHUP or `rotactl reload`): a config that fails to load, or names another
 * instance, is refused and the running table stays as it is; an unchanged one does
 * nothing; otherwise a new generation is published with hot state carried over by
 * account id (shm/build.c). An account whose credential does not resolve is no reason to
 * refuse a config: every publish keeps it out of rotation (credentials.c).
 *
 * Stop (SIGTERM, SIGINT): the socket goes away, the lock is released, and the table
 * stays mapped for workers at its last state: they go on selecting, and turn
 * pessimistic when the heartbeat goes stale.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "rotad.h"
#include "rota_version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rotad [-c FILE] [--check] [--log-level debug|info|warn|error]\n"
               "  -c, --config FILE   the instance's config (default /etc/rota/rota.yaml)\n"
               "      --check         validate FILE, print the resolved table (no secrets)\n"
               "                      and a warning per credential not set here, and exit:\n"
               "                      0 when valid, 1 otherwise\n"
               "      --log-level L   lowest level logged (info)\n"
               "      --version       print the version and exit\n");
}

static void warn_cb(void *arg, const char *msg)
{
    bool *quiet = arg;
    if (quiet && *quiet)
        fprintf(stderr, "warning: %s\n", msg);
    else
        rota_warn("%s", msg);
}

int64_t rotad_wall(const struct rotad *d)
{
    return rota_clock_wall() + d->clock_shift_ns;
}

struct rota_shm_map *rotad_map(struct rotad *d)
{
    return rota_shm_writer_map(d->w);
}

/* Per-provider failure-rate settings for rota_sup_new. */
static int make_sup(struct rotad *d)
{
    const struct rota_config *c = d->cfg;
    struct rota_sup_rate *r = calloc(c->desc.nproviders + 1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    for (uint32_t p = 0; p < c->desc.nproviders; p++)
        r[p] = (struct rota_sup_rate){c->providers[p].fail_rate, c->providers[p].fail_min_calls,
                                      c->providers[p].rate_window_ns};
    struct rota_sup *s = NULL;
    int rc = rota_sup_new(rotad_map(d), r, &s);
    free(r);
    if (rc)
        return rc;
    rota_sup_free(d->sup);
    d->sup = s;
    rota_sup_resets(d->sup, rotad_map(d), rotad_wall(d)); /* first reset times */
    return 0;
}

/* Take the instance's lock, <state_dir>/rotad.lock, or say who holds it. In the state
 * directory, which passed the rule (statedir.c), no one else can have made it, put a
 * link in its place or written what it says; in /dev/shm anyone could, and keep rotad
 * from starting. A rotad of the same instance name on another state directory is
 * stopped by the table's directory instead (rota_shm_writer_open). */
static int lock_instance(struct rotad *d, char *err, size_t n)
{
    static const char name[] = "rotad.lock";
    int fd = openat(d->state_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return snprintf(err, n, "%s/%s: %s", d->cfg->state_dir, name, strerror(errno)), -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        close(fd);
        return snprintf(err, n, "%s/%s is not a file of this rotad (uid %u): refusing it",
                        d->cfg->state_dir, name, (unsigned)geteuid()),
               -EPERM;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t k = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[k > 0 ? k : 0] = 0;
        pid[strspn(pid, "0123456789")] = 0;
        close(fd);
        if (e == EWOULDBLOCK)
            return snprintf(err, n,
                            "instance '%s' is already supervised by rotad pid %s "
                            "(lock %s/%s); stop it first",
                            d->cfg->instance, *pid ? pid : "?", d->cfg->state_dir, name),
                   -EBUSY;
        return snprintf(err, n, "%s/%s: flock: %s", d->cfg->state_dir, name, strerror(e)), -e;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        rota_warn("cannot record the pid in %s/%s: %s", d->cfg->state_dir, name,
                  strerror(errno));
    d->lock_fd = fd;
    return 0;
}

/* Each rotad's lock is in its own state directory: two configs naming one instance with
 * different state directories meet only at the table's directory object in /dev/shm.
 * rotad holds flock on it for its life; another rotad finding it held is refused, naming
 * the pid the directory records. The object is rotad's own, 0600 (0660 with group:), so
 * no stranger can open it to hold the lock, and the kernel drops the lock with its holder
 * (kill -9 leaves nothing behind, a reused pid means nothing). Taken before the writer
 * opens the directory when it exists, and again after, which takes the one the writer
 * made or put in place of a stale one. An object of someone else's is left to the
 * writer, which refuses it in its own words. */
static int hold_table_dir(struct rotad *d, char *err, size_t n)
{
    char name[ROTA_MAX_NAME + 32];
    rota_shm_name(name, sizeof(name), d->cfg->instance, 0);
    int fd = shm_open(name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    struct stat st, held;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    if (d->table_fd >= 0 && fstat(d->table_fd, &held) == 0 && held.st_dev == st.st_dev &&
        held.st_ino == st.st_ino) {
        close(fd); /* holding this one already */
        return 0;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e != EWOULDBLOCK)
            return snprintf(err, n, "/dev/shm%s: flock: %s", name, strerror(e)), -e;
        struct rota_shm_dir_info info;
        char ignored[256];
        int pid = rota_shm_dir_read(d->cfg->instance, &info, ignored, sizeof(ignored)) == 0
                      ? (int)info.sup_pid
                      : 0;
        return snprintf(err, n,
                        "instance '%s' is already supervised by rotad pid %d (a config with "
                        "this instance name and another state_dir?); stop it first",
                        d->cfg->instance, pid),
               -EBUSY;
    }
    if (d->table_fd >= 0)
        close(d->table_fd);
    d->table_fd = fd;
    return 0;
}

/* What a publish does to the new generation before it is READY. */
struct publishing {
    struct rotad *d;
    const struct rota_config *c;
    bool recover; /* restore the journal first (no live table was adopted) */
};

static int prepare(void *arg, struct rota_shm_map *m, char *err, size_t n)
{
    struct publishing *p = arg;
    if (p->recover) {
        int rc = rotad_journal_recover(p->d, m, err, n);
        if (rc)
            return rc;
    }
    rotad_credentials_apply(p->d, p->c, m);
    return 0;
}

/* Publish "c" as a new generation: the table carries state over by account id, then,
 * before any worker sees it, the journal is restored ("recover") and the accounts whose
 * credential does not resolve are taken out of rotation. */
static int publish(struct rotad *d, struct rota_config *c, bool recover, char *err, size_t n)
{
    struct publishing p = {.d = d, .c = c, .recover = recover};
    c->desc.prepare = prepare;
    c->desc.prepare_arg = &p;
    int rc = rota_shm_publish(d->w, &c->desc, err, n);
    c->desc.prepare = NULL;
    c->desc.prepare_arg = NULL;
    return rc;
}

/* Adopt the live table when there is one; publish when the config differs. */
static int open_table(struct rotad *d, char *err, size_t n)
{
    mode_t mode = d->cfg->group ? 0660 : 0600;
    int rc = hold_table_dir(d, err, n);
    if (rc == 0)
        rc = rota_shm_writer_open(d->cfg->instance, mode, &d->w, err, n);
    if (rc == 0)
        rc = hold_table_dir(d, err, n);
    if (rc)
        return rc;
    if (d->cfg->group) {
        struct group *g = getgrnam(d->cfg->group);
        if (!g)
            return snprintf(err, n, "group '%s': no such group", d->cfg->group), -ENOENT;
        if ((rc = rota_shm_writer_group(d->w, g->gr_gid, err, n)))
            return rc;
    }
    char aerr[256] = "";
    rc = rota_shm_adopt(d->w, aerr, sizeof(aerr));
    struct rota_shm_map *m = rotad_map(d);
    if (rc == 0) {
        rota_info("adopted the live table: generation %llu, %u accounts",
                  (unsigned long long)m->hdr->generation, m->naccounts);
        d->origin = "adopted the live table";
        d->adopted = true;
        if (m->hdr->config_hash == d->cfg->desc.config_hash) {
            rotad_credentials_apply(d, d->cfg, m); /* as the last rotad left them; logged */
            return 0;
        }
        rota_info("the config changed since generation %llu was built: publishing",
                  (unsigned long long)m->hdr->generation);
        d->origin = "adopted the live table, then published the changed config";
    } else if (rc != -ENOENT) {
        rota_warn("cannot adopt the live table (%s): starting a new one", aerr);
        rota_shm_abandon(d->w); /* workers on it move to the new one */
        d->origin = "new table (the live one could not be adopted)";
    } else {
        d->origin = "new table (none was live)";
    }
    /* Without a live table, the journal's state goes into the new one before it is
     * READY: no worker selects from a cold table meanwhile, and a rotad that dies or
     * fails here leaves nothing a later one would adopt in place of the journal. */
    rc = publish(d, d->cfg, !d->adopted, err, n);
    if (rc)
        return rc;
    m = rotad_map(d);
    rota_info("published generation %llu: %u providers, %u accounts, %u routes",
              (unsigned long long)m->hdr->generation, m->nproviders, m->naccounts, m->nroutes);
    return 0;
}

int rotad_reload(struct rotad *d, char *err, size_t n)
{
    struct rota_config *c = NULL;
    int rc = rota_config_load(d->config_path, warn_cb, NULL, &c, err, n);
    if (rc == 0 && strcmp(c->instance, d->cfg->instance) != 0) {
        snprintf(err, n,
                 "%s: the instance cannot change on reload ('%s' is running, the "
                 "file says '%s')",
                 d->config_path, d->cfg->instance, c->instance);
        rc = -EINVAL;
    }
    /* Where rotad listens and what it owns are fixed at start. */
    if (rc == 0 && (strcmp(c->socket, d->socket_path ? d->socket_path : c->socket) ||
                    strcmp(c->state_dir, d->cfg->state_dir) ||
                    (c->group ? 1 : 0) != (d->cfg->group ? 1 : 0) ||
                    (c->group && strcmp(c->group, d->cfg->group)))) {
        snprintf(err, n,
                 "%s: socket, state_dir and group take effect only at start; restart "
                 "rotad to change them",
                 d->config_path);
        rc = -EINVAL;
    }
    /* A listener off loopback never serves a table without client keys: they go only
     * once the pool has moved (a reload before). */
    if (rc == 0 && c->workers.nkeys == 0 && rotad_pool_off_loopback(d)) {
        snprintf(err, n,
                 "%s: workers.keys is empty while the running pool listens off loopback, "
                 "where clients need keys; first move the listeners and reload, then remove "
                 "the keys",
                 d->config_path);
        rc = -EPERM;
    }
    /* The pool's new set, made ready before anything changes (pool.c). */
    if (rc == 0)
        rc = rotad_pool_prepare(d, c, err, n);
    if (rc == 0)
        rotad_journal_reload(d, c);
    if (rc == 0 && c->desc.config_hash == rotad_map(d)->hdr->config_hash) {
        rota_info("reload: %s is unchanged", d->config_path);
        rota_config_free(d->cfg);
        d->cfg = c;
        rotad_pool_commit(d);
        return 0;
    }
    if (rc == 0)
        rc = publish(d, c, false, err, n);
    if (rc) {
        rotad_pool_abort(d);
        rota_config_free(c);
        d->reload_failures++;
        snprintf(d->last_reload_error, sizeof(d->last_reload_error), "%s", err);
        rota_error("reload refused, the running table stays: %s", err);
        return rc;
    }
    rota_config_free(d->cfg);
    d->cfg = c;
    d->reloads++;
    if (rotad_probes_configure(d))
        rota_error("reload: the probes keep their old targets (out of memory)");
    d->last_reload_error[0] = 0;
    struct rota_shm_map *m = rotad_map(d);
    rota_info("reloaded: generation %llu, %u accounts", (unsigned long long)m->hdr->generation,
              m->naccounts);
    if (make_sup(d)) {
        /* the old state indexes the old table: never use it with the new one */
        rota_sup_free(d->sup);
        d->sup = NULL;
        rota_error("reload: out of memory for the supervisor's state; quota resets and the "
                   "failure-rate breaker pause until the next reload");
    }
    rotad_pool_commit(d);
    return 0;
}

static int check_only(const char *path)
{
    bool quiet = true;
    struct rota_config *c = NULL;
    char err[1024];
    int rc = rota_config_load(path, warn_cb, &quiet, &c, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rota_config_print(c, stdout);
    /* A credential that does not resolve here is the environment's matter, not the
     * file's: the file is valid, and rotad would run with the account out of rotation. */
    for (uint32_t k = 0; k < c->desc.naccounts; k++) {
        const struct rota_config_account *ca = &c->accounts[k];
        const struct rota_desc_account *a = &c->desc.accounts[k];
        if (ca->cred_problem)
            fprintf(stderr,
                    "warning: %s: account '%s' of provider '%s': credential %s %s; until it "
                    "resolves, the account stays out of rotation\n",
                    ca->cred_where, a->name, c->desc.providers[a->provider].name,
                    ca->cred_source, ca->cred_problem);
    }
    rota_config_free(c);
    return 0;
}

static int64_t clock_shift(void)
{
    const char *s = getenv("ROTA_CLOCK_SHIFT"); /* seconds; tests move the calendar */
    return s && *s ? strtoll(s, NULL, 10) * 1000000000ll : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"check", no_argument, NULL, 'k'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0}};
    struct rotad d = {.config_path = "/etc/rota/rota.yaml",
                      .lock_fd = -1,
                      .table_fd = -1,
                      .state_fd = -1,
                      .sig_fd = -1,
                      .listen_fd = -1};
    bool check = false;
    int level = ROTA_LOG_INFO, o;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            d.config_path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'l':
            if ((level = rota_log_parse_level(optarg)) < 0) {
                fprintf(stderr, "rotad: --log-level: expected debug, info, warn or error\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("rotad %s\n", ROTA_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    /* What rotad creates is private unless it says otherwise (each file gets its mode
     * explicitly); the umask is never changed while threads run (pool_listen.c). */
    umask(077);
    if (optind < argc) {
        fprintf(stderr, "rotad: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check)
        return check_only(d.config_path);

    /* Signals wait for the loop's signalfd from the start: a SIGHUP while loading must
     * not kill rotad. */
    sigset_t set;
    rotad_block_signals(&set);
    rota_log_init("rotad", (enum rota_log_level)level);
    d.clock_shift_ns = clock_shift();
    d.started_mono = rota_clock_mono();
    d.started_wall = rota_clock_wall();
    char err[1024];
    int rc = rota_config_load(d.config_path, warn_cb, NULL, &d.cfg, err, sizeof(err));
    if (rc) {
        rota_error("%s", err);
        return 1;
    }
    err[0] = 0;
    if ((rc = rotad_state_open(&d, err, sizeof(err))) ||
        (rc = lock_instance(&d, err, sizeof(err))) ||
        (rc = rotad_identity_open(&d, err, sizeof(err))) ||
        (rc = open_table(&d, err, sizeof(err))) || (rc = make_sup(&d)) ||
        (rc = rotad_listen(&d, err, sizeof(err))) || (rc = rotad_probes_configure(&d)) ||
        (rc = rotad_journal_start(&d, err, sizeof(err))) ||
        (rc = rotad_pool_prepare(&d, d.cfg, err, sizeof(err)))) {
        if (rc == -ENOMEM || (rc < 0 && !err[0]))
            snprintf(err, sizeof(err), "cannot start: %s", strerror(-rc));
        rota_error("%s", err);
        rotad_pool_stop(&d);
        rotad_journal_stop(&d);
        rota_prober_stop(d.prober);
        if (d.socket_path)
            unlink(d.socket_path);
        rota_shm_writer_close(d.w, false);
        return 1;
    }
    rotad_pool_commit(&d);
    rota_shm_set_control(d.w, d.socket_path);
    rota_info("ready: instance %s, control socket %s", d.cfg->instance, d.socket_path);
    rc = rotad_run(&d);
    rotad_pool_stop(&d); /* their last calls are reported before the last journal pass */
    rota_prober_stop(d.prober);
    rota_redact_unref(d.redact);
    rotad_journal_stop(&d); /* a last pass: the table's final state is journaled */
    free(d.probed);
    free(d.seen_odd);
    unlink(d.socket_path);
    free(d.socket_path);
    rota_shm_set_control(d.w, "");
    rota_shm_heartbeat(d.w, rota_clock_mono());
    rota_shm_writer_close(d.w, false);
    rota_sup_free(d.sup);
    rotad_notes_free(&d);
    free(d.cred_off);
    rota_info("stopped; the table stays readable at its last state");
    rota_config_free(d.cfg);
    if (d.table_fd >= 0)
        close(d.table_fd);
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    if (d.state_fd >= 0)
        close(d.state_fd);
    return rc ? 1 : 0;
}
