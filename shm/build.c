/*
 * build.c - the table's writer: build a generation from a plain C description, publish
 * it, carry hot state across, supersede the old one.
 *
 * DESIGN
 * One writer per instance (the supervisor; tests and rota-bench stand in for it). All
 * functions here run on the writer's own thread and may allocate and make system calls.
 *
 * Publishing generation N+1:
 *   1. validate the description (ids unique and non-zero, every index in range);
 *   2. create /rota.<instance>.g<N+1> (O_EXCL, the configured mode), size and map it;
 *      a name another user took first is left to her and the next number taken (whom
 *      shared memory trusts, and how: shm/attach.c);
 *   3. write the header (state INITIALIZING) and the immutable sections with plain
 *      stores, each account's lease tag kept by id from generation N (new accounts get
 *      a tag no other account of N or N+1 has: shm/clients.h); initialise snapshots
 *      from the configured limits;
 *   4. copy each surviving account's hot block and matching snapshot windows from
 *      generation N, by account id (and each client key's rate words, by its hash);
 *   5. store state READY (release), then the directory's generation (release), then
 *      generation N's time of supersession and its state SUPERSEDED (release), and wake
 *      the movers sleeping on that state word (every attached handle has one, a thread
 *      that maps the new generation off the select path): a reader that sees READY sees
 *      all of step 3 and 4; a worker that sees SUPERSEDED finds N+1 in the directory;
 *   6. add to N+1 what workers counted on N since step 4 (monotonic counters only) and
 *      unlink N's name. Processes that map N keep their mapping, and a worker that was
 *      inside a selection on N may still count there for a moment: the writer keeps N
 *      as "retired" for SETTLE_GRACE_NS, adding whatever appears on it to the current
 *      generation at every publish and rota_shm_settle, and lets it go after the grace
 *      (or when RETIRED_MAX are kept, or on close).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "breaker_word.h"
#include "carry.h"
#include "fill.h"
#include "clients.h"
#include "hash.h"
#include "table.h"

#define RETIRED_MAX     32 /* 16 reloads a second within the grace */
#define SETTLE_GRACE_NS ROTA_SHM_SETTLE_NS

/* A superseded generation still watched for late counts. */
struct retired {
    struct rota_shm_map map;
    struct rota_shm_hot *seen; /* rota_shm_seen_size: what was carried on so far */
    uint64_t at;               /* monotonic ns it was superseded */
};

struct rota_shm_writer {
    char instance[ROTA_MAX_NAME];
    mode_t mode;
    gid_t gid; /* group of every segment; (gid_t)-1 = the process's */
    struct rota_shm_dir *dir;
    struct rota_shm_clients *clients; /* leases of attached handles */
    struct rota_shm_map cur;
    bool have_cur;
    struct retired ret[RETIRED_MAX]; /* superseded generations, oldest first */
    unsigned nret;
    uint64_t *refunds;   /* per current account: its TPM refund counters at the last look */
    uint64_t refunds_at; /* monotonic ns of that look */
};

static void settle(struct rota_shm_writer *w, bool all);
static void release_expired(struct rota_shm_writer *w);

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static void release_oldest(struct rota_shm_writer *w);

#define fail rota_shm_fail

/* At most this many generation names taken by objects of other owners are passed over
 * before a publish gives up. */
#define FOREIGN_SKIP_MAX 16

/* Create the segment of generation "*gen" (O_EXCL): a stale one of this uid under that
 * name (a writer died mid-build) is removed; one of another owner is left alone, and the
 * next generation number taken instead ("*gen" says which). */
static int create_segment(const char *instance, uint64_t *gen, mode_t mode, gid_t gid,
                          uint64_t size, struct rota_shm_map *out, char *err, size_t n)
{
    char name[ROTA_MAX_NAME + 32];
    int fd = -1;
    for (int skipped = 0, tries = 0; fd < 0; tries++) {
        if (tries > FOREIGN_SKIP_MAX + 8)
            return fail(err, n, -EAGAIN, "%s: keeps appearing and vanishing", name);
        rota_shm_name(name, sizeof(name), instance, *gen);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0)
            break;
        if (errno != EEXIST)
            return fail(err, n, -errno, "%s: create: %s", name, strerror(errno));
        struct stat st;
        int old = rota_shm_open_owned_by(name, O_RDONLY, geteuid(), "this rotad", &st, err, n);
        if (old >= 0) { /* ours, left by a writer that died mid-build */
            close(old);
            shm_unlink(name);
        } else if (old == -EPERM && ++skipped <= FOREIGN_SKIP_MAX) {
            ++*gen;
        } else if (old != -ENOENT) {
            return old;
        }
    }
    if ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) || fchmod(fd, mode) < 0 ||
        ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        shm_unlink(name);
        return fail(err, n, -e, "%s: size %llu: %s", name, (unsigned long long)size,
                    strerror(e));
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        shm_unlink(name);
        return fail(err, n, -e, "%s: mmap: %s", name, strerror(e));
    }
    memset(out, 0, sizeof(*out));
    out->base = p;
    out->size = size;
    out->hdr = p;
    return 0;
}

/* Unmap and remove a generation that was never published. */
static void drop_segment(struct rota_shm_writer *w, struct rota_shm_map *m)
{
    char name[ROTA_MAX_NAME + 32];
    rota_shm_name(name, sizeof(name), w->instance, m->hdr->generation);
    munmap(m->base, m->size);
    shm_unlink(name);
    memset(m, 0, sizeof(*m));
}

/* ---- lease tags ---- */

/* Strings and credentials first (their sizes fix the layout), then everything else. */
static int build(struct rota_shm_writer *w, const struct rota_desc *d, uint64_t *genp,
                 struct rota_shm_map *m, char *err, size_t n)
{
    struct blob str = {0}, cred = {0};
    uint32_t ntiers = 0, nmembers = 0, nbuckets = 0;
    rota_fill_blob_str(&str, "");
    for (uint32_t r = 0; r < d->nroutes; r++)
        for (uint32_t t = 0; t < d->routes[r].ntiers; t++, ntiers++)
            nmembers += d->routes[r].tiers[t].nmembers;
    for (uint32_t r = 0; r < d->nroutes; r++)
        for (uint32_t t = 0; t < d->routes[r].ntiers; t++)
            nbuckets += rota_fill_bucket_words(&d->routes[r].tiers[t]);
    uint32_t keys = d->naccounts + d->nroutes + d->nkeys, slots = 16;
    for (uint32_t r = 0; r < d->nroutes; r++)
        for (const char *const *mo = d->routes[r].models; mo && *mo; mo++)
            keys++;
    while (slots < 2 * keys)
        slots *= 2;
    /* A dry run of the string blob to learn its size. */
    struct rota_shm_provider ptmp;
    struct rota_shm_account atmp;
    for (uint32_t i = 0; i < d->nproviders; i++)
        rota_fill_fill_provider(&ptmp, &d->providers[i], &str);
    for (uint32_t i = 0; i < d->naccounts; i++)
        rota_fill_fill_account(&atmp, &d->accounts[i], &str, &cred);
    for (uint32_t r = 0; r < d->nroutes; r++) {
        rota_fill_blob_str(&str, d->routes[r].name);
        for (const char *const *mo = d->routes[r].models; mo && *mo; mo++)
            rota_fill_blob_str(&str, *mo);
        rota_fill_blob_str(&str, "");
        struct rota_shm_tier ttmp;
        for (uint32_t t = 0; t < d->routes[r].ntiers; t++)
            rota_fill_tier_strings(&ttmp, &d->routes[r].tiers[t], &str);
    }
    rota_fill_ckey_strings(d, &str);
    if (!str.p || (d->naccounts && str.len == 0)) {
        free(str.p);
        free(cred.p);
        return fail(err, n, -ENOMEM, "out of memory building strings");
    }
    struct layout L;
    rota_fill_plan(&L, d, ntiers, nmembers, nbuckets ? nbuckets : 1, slots,
                   rota_fill_ckroute_words(d), str.len, cred.len ? cred.len : 1);
    str.len = cred.len = 0;
    int rc = create_segment(w->instance, genp, w->mode, w->gid, L.total, m, err, n);
    if (rc) {
        free(str.p);
        free(cred.p);
        return rc;
    }
    rota_fill_write_header(m->hdr, &L, w->instance, *genp, d);
    char *b = m->base;
    struct rota_shm_provider *prov = (void *)(b + L.off[ROTA_SEC_PROVIDERS]);
    struct rota_shm_account *acct = (void *)(b + L.off[ROTA_SEC_ACCOUNTS]);
    rota_fill_blob_str(&str, "");
    for (uint32_t i = 0; i < d->nproviders; i++)
        rota_fill_fill_provider(&prov[i], &d->providers[i], &str);
    for (uint32_t i = 0; i < d->naccounts; i++)
        rota_fill_fill_account(&acct[i], &d->accounts[i], &str, &cred);
    /* Routes go through a provisional map so fill_routes can use the section pointers. */
    m->routes = (void *)(b + L.off[ROTA_SEC_ROUTES]);
    m->tiers = (void *)(b + L.off[ROTA_SEC_TIERS]);
    m->members = (void *)(b + L.off[ROTA_SEC_MEMBERS]);
    m->buckets = (void *)(b + L.off[ROTA_SEC_BUCKETS]);
    m->index = (void *)(b + L.off[ROTA_SEC_INDEX]);
    rc = rota_fill_fill_routes(m, d, &str, err, n);
    if (!rc)
        rc = rota_fill_fill_ckeys(m, (void *)(b + L.off[ROTA_SEC_CKEYS]),
                                  (void *)(b + L.off[ROTA_SEC_CKROUTES]), d, &str, err, n);
    if (!rc && rota_fill_assign_tags(acct, d->naccounts, w->have_cur ? &w->cur : NULL))
        rc = fail(err, n, -ENOMEM, "out of memory assigning lease tags");
    if (!rc) {
        memcpy(b + L.off[ROTA_SEC_STRINGS], str.p, str.len);
        if (cred.len)
            memcpy(b + L.off[ROTA_SEC_CREDS], cred.p, cred.len);
        char why[200];
        rc = rota_shm_validate(m->base, m->size, m, why, sizeof(why));
        if (rc)
            fail(err, n, rc, "built table does not validate: %s", why);
    }
    free(str.p);
    free(cred.p);
    if (rc) {
        drop_segment(w, m);
        return rc;
    }
    for (uint32_t i = 0; i < m->naccounts; i++) {
        const struct rota_shm_account *a = &m->accounts[i];
        uint32_t flags = a->nwin ? ROTA_SNAP_HAS_DATA : 0;
        for (uint32_t k = 0; k < a->nwin; k++)
            rota_shm_snap_window(&m->snaps[i], k, 0, a->win[k].limit, 0);
        rota_store(&m->snaps[i].flags, flags);
    }
    /* Breakers start closed in a random half-open period: a worker's late trial outcome
     * from an earlier table (a restart, a journal restore) then almost never matches the
     * period of this one's first trials. Carried breakers keep theirs. */
    for (uint32_t i = 0; i < m->naccounts; i++)
        rota_store(&m->hot[i].breaker,
                   rota_breaker_word(ROTA_BREAKER_CLOSED, 0, 0, 0,
                                     (unsigned)(rota_fill_nonce_byte(m, i)), 0));
    for (uint32_t i = 0; i < m->nproviders; i++)
        rota_store(&m->phot[i].breaker,
                   rota_breaker_word(ROTA_BREAKER_CLOSED, 0, 0, 0,
                                     (unsigned)(rota_fill_nonce_byte(m, m->naccounts + i)), 0));
    return 0;
}

/* Map the instance's directory "name" for the writer: created afresh (O_EXCL), or one an
 * earlier supervisor of this uid left, kept when it is a directory of this rota (so
 * workers on its table go on reading it) and replaced otherwise. "*created" says which. */
static int open_dir(struct rota_shm_writer *w, const char *name, bool *created, char *err,
                    size_t n)
{
    for (int tries = 0; tries < 4; tries++) {
        struct stat st;
        int fd = rota_shm_open_own(name, w->mode, created, &st, err, n);
        if (fd < 0)
            return fd;
        int rc = 0;
        if (*created && ftruncate(fd, sizeof(struct rota_shm_dir)) < 0)
            rc = -errno;
        if (!rc && !*created && (size_t)st.st_size != sizeof(struct rota_shm_dir))
            rc = -EEXIST; /* not a directory of this rota: replaced below */
        if (!rc && fchmod(fd, w->mode) < 0)
            rc = -errno;
        if (!rc) {
            w->dir = mmap(NULL, sizeof(*w->dir), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            rc = w->dir == MAP_FAILED ? -errno : 0;
        }
        close(fd);
        struct rota_shm_dir *d = rc ? NULL : w->dir;
        if (d && !*created &&
            (d->magic != ROTA_SHM_DIR_MAGIC || d->abi != ROTA_SHM_ABI ||
             d->size != sizeof(*d))) {
            munmap(d, sizeof(*d));
            rc = -EEXIST;
        }
        if (rc == -EEXIST) {
            shm_unlink(name);
            continue;
        }
        if (rc) {
            if (*created)
                shm_unlink(name);
            return fail(err, n, rc, "%s: %s", name, strerror(-rc));
        }
        if (*created) {
            d->abi = ROTA_SHM_ABI;
            d->size = sizeof(*d);
            snprintf(d->instance, sizeof(d->instance), "%s", w->instance);
            atomic_store_explicit(&d->generation, 0, memory_order_relaxed);
        }
        /* Ours by the object's owner: readers check that owner against this. */
        d->sup_uid = (uint32_t)geteuid();
        atomic_thread_fence(memory_order_release);
        d->magic = ROTA_SHM_DIR_MAGIC;
        return 0;
    }
    return fail(err, n, -EAGAIN, "%s: cannot replace it", name);
}

int rota_shm_writer_open(const char *instance, mode_t mode, struct rota_shm_writer **out,
                         char *err, size_t n)
{
    char name[ROTA_MAX_NAME + 32], cname[ROTA_MAX_NAME + 32];
    if (!out || rota_shm_name(name, sizeof(name), instance, 0))
        return fail(err, n, -EINVAL,
                    "bad instance name (letters, digits, '_' and '-', at most %d)",
                    ROTA_MAX_NAME - 1);
    snprintf(cname, sizeof(cname), "/rota.%s.clients", instance);
    struct rota_shm_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    snprintf(w->instance, sizeof(w->instance), "%s", instance);
    w->mode = mode ? mode : 0600;
    w->gid = (gid_t)-1;
    bool created = false, ccreated = false;
    int rc = open_dir(w, name, &created, err, n);
    if (rc) {
        free(w);
        return rc;
    }
    atomic_store_explicit(&w->dir->sup_pid, (int32_t)getpid(), memory_order_relaxed);
    /* The leases segment: created here, or refused, by the same rule as the directory. */
    struct stat st;
    int fd = rota_shm_open_own(cname, w->mode, &ccreated, &st, err, n);
    if (fd >= 0) {
        close(fd);
        rc = rota_shm_clients_open(instance, true, w->mode, &w->clients);
        if (rc) {
            fail(err, n, rc, "%s: %s", cname, strerror(-rc));
            if (ccreated)
                shm_unlink(cname);
        }
    } else {
        rc = fd;
    }
    if (rc) {
        munmap(w->dir, sizeof(*w->dir));
        if (created)
            shm_unlink(name);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int rota_shm_writer_group(struct rota_shm_writer *w, gid_t gid, char *err, size_t n)
{
    w->gid = gid;
    char name[ROTA_MAX_NAME + 32];
    for (int k = 0; k < 2; k++) {
        if (k == 0)
            rota_shm_name(name, sizeof(name), w->instance, 0);
        else
            snprintf(name, sizeof(name), "/rota.%s.clients", w->instance);
        struct stat st;
        int fd = rota_shm_open_owned_by(name, O_RDWR, geteuid(), "this rotad", &st, err, n);
        if (fd < 0)
            return fd;
        int rc = fchown(fd, (uid_t)-1, gid) < 0 || fchmod(fd, w->mode) < 0 ? -errno : 0;
        close(fd);
        if (rc)
            return fail(err, n, rc, "%s: group %u: %s", name, (unsigned)gid, strerror(-rc));
    }
    return 0;
}

void rota_shm_abandon(struct rota_shm_writer *w)
{
    uint64_t gen = atomic_load_explicit(&w->dir->generation, memory_order_acquire);
    if (!gen || (w->have_cur && w->cur.hdr->generation == gen))
        return;
    char name[ROTA_MAX_NAME + 32];
    rota_shm_name(name, sizeof(name), w->instance, gen);
    struct stat st;
    int fd = rota_shm_open_owned_by(name, O_RDWR, geteuid(), "this rotad", &st, NULL, 0);
    if (fd == -EPERM)
        return; /* not ours: never written to, and never attached to by anyone */
    if (fd >= 0) {
        if ((size_t)st.st_size >= sizeof(struct rota_shm_header)) {
            struct rota_shm_header *h =
                mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (h != MAP_FAILED) {
                if (h->magic == ROTA_SHM_MAGIC)
                    atomic_store_explicit(&h->state, ROTA_GEN_SUPERSEDED, memory_order_release);
                munmap(h, sizeof(*h));
            }
        }
        close(fd);
    }
    shm_unlink(name);
}

struct rota_shm_clients *rota_shm_writer_clients(struct rota_shm_writer *w)
{
    return w ? w->clients : NULL;
}

void rota_shm_expire(struct rota_shm_map *m)
{
    atomic_store_explicit(&m->hdr->superseded_at, 0, memory_order_relaxed);
}

void rota_shm_supersede(struct rota_shm_map *m, uint64_t now)
{
    atomic_store_explicit(&m->hdr->superseded_at, now, memory_order_relaxed);
    atomic_store_explicit(&m->hdr->state, ROTA_GEN_SUPERSEDED, memory_order_release);
    /* Every process's mover sleeps on this word (a shared futex): wake them all. */
    syscall(SYS_futex, &m->hdr->state, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int rota_shm_publish(struct rota_shm_writer *w, const struct rota_desc *d, char *err, size_t n)
{
    if (!w)
        return fail(err, n, -EINVAL, "no writer");
    int rc = rota_fill_check(d, err, n);
    if (rc)
        return rc;
    uint64_t gen = atomic_load_explicit(&w->dir->generation, memory_order_relaxed);
    if (w->have_cur && w->cur.hdr->generation > gen)
        gen = w->cur.hdr->generation;
    gen++;
    struct rota_shm_map m;
    rc = build(w, d, &gen, &m, err, n);
    if (rc)
        return rc;
    struct rota_shm_hot *seen = NULL;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (w->have_cur) {
        size_t bytes = rota_shm_seen_size(&w->cur);
        seen = aligned_alloc(alignof(struct rota_shm_hot), bytes);
        if (!seen)
            rc = fail(err, n, -ENOMEM, "out of memory carrying state over");
        else
            rota_shm_carry_over(&m, &w->cur, memset(seen, 0, bytes));
    }
    if (rc == 0 && d->prepare)
        rc = d->prepare(d->prepare_arg, &m, err, n);
    if (rc) { /* nobody has seen the new generation: it goes */
        free(seen);
        drop_segment(w, &m);
        return rc;
    }
    rota_store(&m.hdr->heartbeat, now);
    atomic_store_explicit(&m.hdr->state, ROTA_GEN_READY, memory_order_release);
    atomic_store_explicit(&w->dir->generation, gen, memory_order_release);
    if (w->have_cur) {
        rota_shm_supersede(&w->cur, now);
        char name[ROTA_MAX_NAME + 32];
        rota_shm_name(name, sizeof(name), w->instance, w->cur.hdr->generation);
        shm_unlink(name);
        if (w->nret == RETIRED_MAX)
            release_oldest(w);
        w->ret[w->nret++] = (struct retired){.map = w->cur, .seen = seen, .at = now};
    }
    w->cur = m;
    w->have_cur = true;
    free(w->refunds); /* indexed by the current generation's accounts */
    w->refunds = NULL;
    release_expired(w);
    return 0;
}

static void release_oldest(struct rota_shm_writer *w)
{
    /* Released before its grace is over (too many reloads at once): workers still on it
     * must stop counting there now, not when the follow window would have ended. */
    rota_shm_expire(&w->ret[0].map);
    rota_shm_catch_up(&w->cur, &w->ret[0].map, w->ret[0].seen, w->ret[0].at);
    rota_shm_detach(&w->ret[0].map);
    free(w->ret[0].seen);
    memmove(&w->ret[0], &w->ret[1], (w->nret - 1) * sizeof(w->ret[0]));
    w->nret--;
}

/* Let go of the retired generations past their grace, adding their late counts first.
 * The others' counts wait for the next settle (every second): each is added relative to
 * what was seen of it, so how often does not matter, and a publish does not pay for
 * every retired generation's every account. */
static void release_expired(struct rota_shm_writer *w)
{
    uint64_t now = mono_ns();
    while (w->nret > 0 && now - w->ret[0].at >= SETTLE_GRACE_NS)
        release_oldest(w);
}

/* Carry late counts from every retired generation to the current one (oldest first, so
 * each is added once), releasing those past the grace period, or all of them. */
static void settle(struct rota_shm_writer *w, bool all)
{
    uint64_t now = mono_ns();
    for (unsigned k = 0; k < w->nret; k++)
        rota_shm_catch_up(&w->cur, &w->ret[k].map, w->ret[k].seen, w->ret[k].at);
    while (w->nret > 0 && (all || now - w->ret[0].at >= SETTLE_GRACE_NS))
        release_oldest(w);
}

/* A TPM refund raises "tok_giving", lowers the rate word, then raises "tok_back"; a
 * worker killed between the first and the last leaves them apart for ever, and every
 * later refund on the account is cut by the gap (core/gcra.h). Apart at two looks a
 * second or more apart with neither moving, no refund is in progress: the writer closes
 * the gap (by CAS, so a refund starting meanwhile keeps its own step). */
#define ROTA_NS_PER_S_BUILD 1000000000ull
/* One pair of refund words: close a gap seen twice, a second apart, unchanged. */
static void close_gap(_Atomic uint64_t *giving_w, _Atomic uint64_t *back_w, uint64_t *seen)
{
    uint64_t back = rota_load_acq(back_w), giving = rota_load_acq(giving_w);
    if (giving != back && seen[0] == giving && seen[1] == back) {
        if (giving > back)
            rota_cas(back_w, &back, giving);
        else
            rota_cas(giving_w, &giving, back);
        back = rota_load_acq(back_w);
        giving = rota_load_acq(giving_w);
    }
    seen[0] = giving;
    seen[1] = back;
}

static void close_refund_gaps(struct rota_shm_writer *w)
{
    const struct rota_shm_map *m = &w->cur;
    uint64_t now = mono_ns();
    size_t pairs = (size_t)m->naccounts + m->nckeys; /* accounts', then client keys' */
    if (w->refunds && now - w->refunds_at < ROTA_NS_PER_S_BUILD)
        return;
    if (!w->refunds)
        w->refunds = calloc((pairs ? pairs : 1) * 2, sizeof(uint64_t));
    w->refunds_at = now;
    for (uint32_t i = 0; w->refunds && i < m->naccounts; i++)
        close_gap(&m->hot[i].tok_giving, &m->hot[i].tok_back, &w->refunds[2 * (size_t)i]);
    for (uint32_t k = 0; w->refunds && k < m->nckeys; k++)
        close_gap(&m->khot[k].tok_giving, &m->khot[k].tok_back,
                  &w->refunds[2 * ((size_t)m->naccounts + k)]);
}

void rota_shm_settle(struct rota_shm_writer *w, bool all)
{
    if (w && w->have_cur) {
        settle(w, all);
        close_refund_gaps(w);
    }
}

/* Adoption of a snapshot a dead writer left mid-write (its sequence odd). Its fields may
 * mix old and new values, each word whole but not together: a new "used" with an old
 * "limit" and "scale" can read as almost nothing used. Closing the sequence alone would
 * make that mix readable until the next observation, so before closing it every window
 * is rewritten self-consistent and pessimistic, inside the section the dead writer left
 * open (readers keep skipping it until then): "scale" from "limit"; the use it showed
 * (its "used" plus the counter past its "base", the larger of the two readings a mix can
 * give) raised to at least the provider's pessimistic share of the limit, counted from
 * the counter now. A window whose limit is not known cannot be given a figure: the
 * account is flagged PESSIMISTIC, which selection turns into the pessimistic share and
 * the next probe answer clears. The next observation, a scheduled reset or rotactl reset
 * replaces the figures as for any other account, so nothing stays pessimistic for
 * longer than the supervisor takes to look again. Returns true if it had to. */
static bool settle_torn(struct rota_shm_map *m, uint32_t i)
{
    struct rota_shm_snap *sn = &m->snaps[i];
    if (!(rota_load(&sn->seq) & 1u))
        return false;
    const struct rota_shm_account *a = &m->accounts[i];
    double p = m->providers[a->provider].pessimistic;
    p = p > 1 ? 1 : p;
    uint32_t flags = rota_load(&sn->flags);
    for (uint32_t w = 0; w < a->nwin; w++) {
        const struct rota_shm_window *cw = &a->win[w];
        uint64_t limit = rota_load(&sn->win[w].limit), used = rota_load(&sn->win[w].used);
        uint64_t base = rota_load(&sn->win[w].base), counter = base;
        if (cw->metric <= ROTA_METRIC_TOKENS) {
            counter = rota_load(rota_shm_usage(&m->hot[i], cw->pool, cw->metric));
            used += counter > base ? counter - base : 0;
        }
        if (limit == 0) {
            flags |= ROTA_SNAP_PESSIMISTIC;
        } else {
            double share = p * (double)limit;
            uint64_t least = share >= (double)UINT64_MAX ? UINT64_MAX : (uint64_t)share;
            least += (double)least < share;
            used = used > least ? used : least;
        }
        rota_shm_snap_window(sn, w, used, limit, counter);
    }
    rota_store(&sn->flags, flags | (a->nwin ? ROTA_SNAP_HAS_DATA : 0));
    return rota_seq_repair(&sn->seq);
}

int rota_shm_adopt(struct rota_shm_writer *w, char *err, size_t n)
{
    if (!w)
        return fail(err, n, -EINVAL, "no writer");
    uint64_t gen = atomic_load_explicit(&w->dir->generation, memory_order_acquire);
    if (!gen)
        return fail(err, n, -ENOENT, "instance %s has no table to adopt", w->instance);
    struct rota_shm_map m;
    int rc = rota_shm_attach_gen(w->instance, gen, &m, err, n);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < m.naccounts; i++)
        settle_torn(&m, i);
    /* A writer that died between switching the directory and superseding the previous
     * generation left it READY: workers on it would never move. */
    for (uint64_t g = gen - 1; g > 0 && g + 4 > gen; g--) {
        struct rota_shm_map old;
        if (rota_shm_attach_gen(w->instance, g, &old, NULL, 0) != 0)
            continue;
        /* Nobody merges it from here on: workers on it stop counting there at once (a
         * time of supersession of 0 is a follow window long over). */
        if (atomic_load_explicit(&old.hdr->state, memory_order_acquire) != ROTA_GEN_SUPERSEDED)
            rota_shm_supersede(&old, 0);
        else
            rota_shm_expire(&old);
        char name[ROTA_MAX_NAME + 32];
        rota_shm_name(name, sizeof(name), w->instance, g);
        shm_unlink(name);
        rota_shm_detach(&old);
    }
    atomic_store_explicit(&m.hdr->sup_pid, (int32_t)getpid(), memory_order_relaxed);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    atomic_store_explicit(&m.hdr->sup_start,
                          (uint64_t)wall.tv_sec * 1000000000u + (uint64_t)wall.tv_nsec,
                          memory_order_relaxed);
    atomic_store_explicit(&m.hdr->state, ROTA_GEN_READY, memory_order_release);
    if (w->have_cur) {
        settle(w, true);
        rota_shm_detach(&w->cur);
    }
    free(w->refunds);
    w->refunds = NULL;
    w->cur = m;
    w->have_cur = true;
    return 0;
}

struct rota_shm_map *rota_shm_writer_map(struct rota_shm_writer *w)
{
    return w && w->have_cur ? &w->cur : NULL;
}

void rota_shm_set_control(struct rota_shm_writer *w, const char *path)
{
    if (w)
        snprintf(w->dir->control, sizeof(w->dir->control), "%s", path ? path : "");
}

void rota_shm_heartbeat(struct rota_shm_writer *w, uint64_t mono_ns)
{
    if (w && w->have_cur)
        rota_store(&w->cur.hdr->heartbeat, mono_ns);
}

void rota_shm_writer_close(struct rota_shm_writer *w, bool unlink)
{
    if (!w)
        return;
    rota_shm_settle(w, true);
    char name[ROTA_MAX_NAME + 32];
    if (unlink && w->have_cur) {
        rota_shm_name(name, sizeof(name), w->instance, w->cur.hdr->generation);
        shm_unlink(name);
    }
    if (w->have_cur)
        rota_shm_detach(&w->cur);
    if (unlink) {
        rota_shm_name(name, sizeof(name), w->instance, 0);
        shm_unlink(name);
        snprintf(name, sizeof(name), "/rota.%s.clients", w->instance);
        shm_unlink(name);
    }
    rota_shm_clients_close(w->clients);
    munmap(w->dir, sizeof(*w->dir));
    free(w->refunds);
    free(w);
}
