/*
 * attach.c - map a generation of the table and prove it is one before anyone reads it.
 *
 * DESIGN
 * Called by workers (librota), rotactl and tests, from any thread, never on the select
 * path. A segment may be anything: a file some other program left in /dev/shm, a table
 * written by another rota version, a segment truncated by a full tmpfs. Validation
 * therefore checks, in order: the file is large enough for a header, the magic, the ABI,
 * the header size, the segment size against the file, then every section's element size,
 * count, alignment and bounds, and finally every stored index and string offset (client
 * keys: shm/ckeys.c, each also found where the index says). After rota_shm_validate
 * succeeds, readers index sections without further checks. Each refusal carries a
 * message naming the segment and the field at fault.
 *
 * Whom shared memory trusts. /dev/shm is writable by every local user, so a name there
 * proves nothing: anyone may create /rota.<instance> or a generation's name before the
 * supervisor does. Trust goes by owner, checked with fstat on the opened descriptor (never
 * on the name, which may change between a check and an open). The supervisor creates
 * every object (directory, generations, leases) with O_EXCL; an object already there is
 * taken only if its own uid owns it (a stale object of an earlier supervisor: adopted or
 * replaced), and refused, untouched, naming it and its owner otherwise. The directory
 * records the supervisor's uid. A reader (librota, rotactl, the journal) trusts the
 * directory only if the object's owner is the uid it records, and a generation or the
 * leases segment only if its owner is that same uid and its header names the instance
 * and generation asked for. The recorded uid is itself only a claim (whoever creates the
 * directory first writes it): a reader follows a supervisor only of root, of its own user,
 * or of the user ROTA_SUPERVISOR_USER names (rotad's service user, for workers of other
 * users in group mode). Every check is made once, when mapping, off the select path.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fill.h"
#include "hash.h"
#include "table.h"

int rota_shm_fail(char *err, size_t n, int code, const char *fmt, ...)
{
    if (err && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return code;
}

#define fail rota_shm_fail

int rota_shm_open_owned_by(const char *name, int flags, uid_t uid, const char *whose,
                           struct stat *st, char *err, size_t n)
{
    int fd = shm_open(name, flags | O_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        char path[ROTA_MAX_NAME + 48];
        snprintf(path, sizeof(path), "/dev/shm%s", name);
        struct stat ps;
        /* Refused entry: the owner, if it is not "uid", says why better than EACCES. */
        if (e == EACCES && lstat(path, &ps) == 0 && ps.st_uid != uid)
            return fail(err, n, -EPERM,
                        "/dev/shm%s is owned by uid %u, not by %s (uid %u): refusing to use "
                        "it",
                        name, (unsigned)ps.st_uid, whose, (unsigned)uid);
        return fail(err, n, -e, "%s: %s", name,
                    e == ENOENT ? "no such table (is rotad running?)" : strerror(e));
    }
    int rc = 0;
    if (fstat(fd, st) < 0)
        rc = fail(err, n, -errno, "%s: fstat: %s", name, strerror(errno));
    else if (st->st_uid != uid)
        rc = fail(err, n, -EPERM,
                  "/dev/shm%s is owned by uid %u, not by %s (uid %u): refusing to use it", name,
                  (unsigned)st->st_uid, whose, (unsigned)uid);
    else if (!S_ISREG(st->st_mode))
        rc = fail(err, n, -EPERM, "/dev/shm%s is not a regular file: refusing to use it", name);
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

int rota_shm_open_own(const char *name, mode_t mode, bool *created, struct stat *st, char *err,
                      size_t n)
{
    for (int tries = 0; tries < 8; tries++) {
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0) {
            *created = true;
            if (fstat(fd, st) == 0)
                return fd;
            int e = errno;
            close(fd);
            shm_unlink(name);
            return fail(err, n, -e, "%s: fstat: %s", name, strerror(e));
        }
        if (errno != EEXIST)
            return fail(err, n, -errno, "%s: create: %s", name, strerror(errno));
        *created = false;
        fd = rota_shm_open_owned_by(name, O_RDWR, geteuid(), "this rotad", st, err, n);
        size_t len = err && n ? strlen(err) : 0;
        if (fd == -EPERM && len + 1 < n)
            snprintf(err + len, n - len, "; remove it");
        if (fd != -ENOENT) /* gone meanwhile: create it again */
            return fd;
    }
    return fail(err, n, -EAGAIN, "%s: keeps appearing and vanishing", name);
}

bool rota_shm_instance_ok(const char *instance)
{
    if (!instance || !*instance || strlen(instance) >= ROTA_MAX_NAME)
        return false;
    for (const char *p = instance; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int rota_shm_name(char *buf, size_t n, const char *instance, uint64_t gen)
{
    if (!rota_shm_instance_ok(instance))
        return -EINVAL;
    int len = gen ? snprintf(buf, n, "/rota.%s.g%llu", instance, (unsigned long long)gen)
                  : snprintf(buf, n, "/rota.%s", instance);
    return len > 0 && (size_t)len < n ? 0 : -ENAMETOOLONG;
}

const uint32_t rota_shm_elem_size[ROTA_SEC_COUNT] = {
    [ROTA_SEC_PROVIDERS] = sizeof(struct rota_shm_provider),
    [ROTA_SEC_ACCOUNTS] = sizeof(struct rota_shm_account),
    [ROTA_SEC_ROUTES] = sizeof(struct rota_shm_route),
    [ROTA_SEC_TIERS] = sizeof(struct rota_shm_tier),
    [ROTA_SEC_MEMBERS] = sizeof(struct rota_shm_member),
    [ROTA_SEC_BUCKETS] = sizeof(uint32_t),
    [ROTA_SEC_INDEX] = sizeof(struct rota_shm_index),
    [ROTA_SEC_CKEYS] = sizeof(struct rota_shm_ckey),
    [ROTA_SEC_CKROUTES] = sizeof(uint32_t),
    [ROTA_SEC_STRINGS] = 1,
    [ROTA_SEC_CREDS] = 1,
    [ROTA_SEC_SNAPS] = sizeof(struct rota_shm_snap),
    [ROTA_SEC_HOT] = sizeof(struct rota_shm_hot),
    [ROTA_SEC_PHOT] = sizeof(struct rota_shm_phot),
    [ROTA_SEC_THOT] = sizeof(struct rota_shm_thot),
    [ROTA_SEC_KHOT] = sizeof(struct rota_shm_khot),
};

static const char *const sec_name[ROTA_SEC_COUNT] = {
    "providers", "accounts", "routes", "tiers", "members", "buckets", "index", "ckeys",
    "ckroutes",  "strings",  "creds",  "snaps", "hot",     "phot",    "thot",  "khot",
};

/* A used fraction the policy compares with: a number in [0, 100] (NaN is not). */
static bool fraction_ok(double v)
{
    return v >= 0 && v <= 100;
}

/* A weight, share or jitter: a number in [0, 1000]. */
static bool weight_ok(float v)
{
    return v >= 0 && v <= 1000;
}

/* A large sticky tier's buckets: offsets rising to the member count, positions in range. */
static bool buckets_ok(const struct rota_shm_map *m, const struct rota_shm_tier *t)
{
    uint64_t words = m->hdr->sec[ROTA_SEC_BUCKETS].count, nb = t->nbuckets;
    if ((nb & (nb - 1)) || (uint64_t)t->bucket0 + nb + 1 + t->nmembers > words)
        return false;
    const uint32_t *off = m->buckets + t->bucket0, *perm = off + nb + 1;
    if (off[0] != 0 || off[nb] != t->nmembers)
        return false;
    for (uint64_t b = 0; b < nb; b++)
        if (off[b] > off[b + 1])
            return false;
    for (uint32_t k = 0; k < t->nmembers; k++)
        if (perm[k] >= t->nmembers)
            return false;
    return true;
}

static bool str_ok(const struct rota_shm_map *m, uint32_t off)
{
    uint32_t n = m->hdr->sec[ROTA_SEC_STRINGS].count;
    return off < n && memchr(m->strings + off, 0, n - off) != NULL;
}

/* A list of strings at "off" ended by an empty one, all inside the strings section: what
 * route models and tier model maps are. With "pairs", an even number of them. */
static bool list_ok(const struct rota_shm_map *m, uint32_t off, bool pairs)
{
    uint32_t n = m->hdr->sec[ROTA_SEC_STRINGS].count, k = 0;
    for (;; k++) {
        if (!str_ok(m, off))
            return false;
        size_t len = strlen(m->strings + off);
        if (len == 0)
            return !pairs || k % 2 == 0;
        if (len + 1 > n - off)
            return false;
        off += (uint32_t)len + 1;
    }
}

/* Sections: sizes, alignment, bounds, element sizes. */
static int check_sections(const struct rota_shm_header *h, size_t size, char *err, size_t n)
{
    for (int i = 0; i < ROTA_SEC_COUNT; i++) {
        const struct rota_shm_section_desc *s = &h->sec[i];
        if (s->elem != rota_shm_elem_size[i])
            return fail(err, n, ROTA_EABI, "section %s: element size %u, this rota expects %u",
                        sec_name[i], s->elem, rota_shm_elem_size[i]);
        if (s->off % ROTA_SHM_ALIGN || s->off < h->header_size)
            return fail(err, n, ROTA_ELAYOUT, "section %s: offset %llu is misaligned",
                        sec_name[i], (unsigned long long)s->off);
        if ((uint64_t)s->count * s->elem > s->size)
            return fail(err, n, ROTA_ELAYOUT,
                        "section %s: %u elements do not fit in %llu bytes", sec_name[i],
                        s->count, (unsigned long long)s->size);
        if (s->size > h->total_size || s->off > h->total_size - s->size)
            return fail(err, n, ROTA_ELAYOUT,
                        "section %s: [%llu, +%llu) runs past the segment end %llu", sec_name[i],
                        (unsigned long long)s->off, (unsigned long long)s->size,
                        (unsigned long long)h->total_size);
        /* Sections lie in order and apart: what workers write never overlaps what the
         * select path trusts. */
        if (i > 0 && s->off < h->sec[i - 1].off + h->sec[i - 1].size)
            return fail(err, n, ROTA_ELAYOUT, "section %s: [%llu, +%llu) overlaps section %s",
                        sec_name[i], (unsigned long long)s->off, (unsigned long long)s->size,
                        sec_name[i - 1]);
    }
    (void)size;
    if (h->stale_after_ns > (1ull << 62))
        return fail(err, n, ROTA_ELAYOUT, "stale_after %llu ns is out of range",
                    (unsigned long long)h->stale_after_ns);
    if (h->sec[ROTA_SEC_SNAPS].count != h->sec[ROTA_SEC_ACCOUNTS].count ||
        h->sec[ROTA_SEC_HOT].count != h->sec[ROTA_SEC_ACCOUNTS].count ||
        h->sec[ROTA_SEC_PHOT].count != h->sec[ROTA_SEC_PROVIDERS].count ||
        h->sec[ROTA_SEC_THOT].count != h->sec[ROTA_SEC_TIERS].count ||
        h->sec[ROTA_SEC_KHOT].count != h->sec[ROTA_SEC_CKEYS].count)
        return fail(err, n, ROTA_ELAYOUT,
                    "per-account, per-tier or per-key sections disagree in count");
    uint32_t slots = h->sec[ROTA_SEC_INDEX].count;
    if (slots == 0 || (slots & (slots - 1)) || h->index_mask != slots - 1)
        return fail(err, n, ROTA_ELAYOUT, "index: %u slots is not a power of two", slots);
    uint32_t ns = h->sec[ROTA_SEC_STRINGS].count;
    if (ns == 0)
        return fail(err, n, ROTA_ELAYOUT, "strings: empty");
    return 0;
}

/* Every index and string offset stored in the immutable sections. */
static int check_contents(const struct rota_shm_map *m, char *err, size_t n)
{
    uint32_t ncreds = m->hdr->sec[ROTA_SEC_CREDS].count;
    if (m->strings[m->hdr->sec[ROTA_SEC_STRINGS].count - 1] != 0)
        return fail(err, n, ROTA_ELAYOUT, "strings: not NUL-terminated");
    for (uint32_t i = 0; i < m->nproviders; i++) {
        const struct rota_shm_provider *p = &m->providers[i];
        if (!str_ok(m, p->name) || !str_ok(m, p->kind))
            return fail(err, n, ROTA_ELAYOUT, "provider %u: bad name offset", i);
        if (!str_ok(m, p->format) || !str_ok(m, p->base_url) || !str_ok(m, p->path) ||
            !str_ok(m, p->auth_header) || !str_ok(m, p->auth_scheme) || !str_ok(m, p->headers))
            return fail(err, n, ROTA_ELAYOUT, "provider %u: bad target string offset", i);
        if (!fraction_ok(p->warn) || !fraction_ok(p->crit) || !fraction_ok(p->pessimistic))
            return fail(err, n, ROTA_ELAYOUT, "provider %u: thresholds out of range", i);
    }
    for (uint32_t i = 0; i < m->naccounts; i++) {
        const struct rota_shm_account *a = &m->accounts[i];
        if (a->provider >= m->nproviders)
            return fail(err, n, ROTA_ELAYOUT, "account %u: provider %u out of range", i,
                        a->provider);
        if (!str_ok(m, a->name))
            return fail(err, n, ROTA_ELAYOUT, "account %u: bad name offset", i);
        if (a->nwin > ROTA_MAX_WINDOWS || a->npools == 0 || a->npools > ROTA_MAX_POOLS)
            return fail(err, n, ROTA_ELAYOUT, "account %u: %u windows, %u pools", i, a->nwin,
                        a->npools);
        for (uint32_t p = 0; p < a->npools; p++)
            if (!str_ok(m, a->pool_name[p]))
                return fail(err, n, ROTA_ELAYOUT, "account %u: bad pool name offset", i);
        if (a->cred > ncreds || a->cred_len > ncreds - a->cred)
            return fail(err, n, ROTA_ELAYOUT, "account %u: credential out of range", i);
        for (uint32_t w = 0; w < a->nwin; w++)
            if (a->win[w].pool >= a->npools || a->win[w].metric > ROTA_METRIC_FRACTION ||
                a->win_mp[w] != (a->win[w].pool | a->win[w].metric << 4) ||
                !str_ok(m, a->win[w].reset.tz))
                return fail(err, n, ROTA_ELAYOUT, "account %u window %u: bad pool or metric", i,
                            w);
    }
    for (uint32_t i = 0; i < m->nroutes; i++) {
        const struct rota_shm_route *r = &m->routes[i];
        if (!str_ok(m, r->name) || !list_ok(m, r->models, false) ||
            r->ntiers > ROTA_MAX_TIERS || r->tier0 > m->ntiers ||
            r->ntiers > m->ntiers - r->tier0)
            return fail(err, n, ROTA_ELAYOUT, "route %u: bad name or tier range", i);
        if (r->flags & ~ROTA_ROUTE_FLAGS)
            return fail(err, n, ROTA_ELAYOUT, "route %u: unknown flags 0x%x", i, r->flags);
    }
    for (uint32_t i = 0; i < m->ntiers; i++) {
        const struct rota_shm_tier *t = &m->tiers[i];
        if ((t->provider != ROTA_NONE && t->provider >= m->nproviders) ||
            t->strategy >= ROTA_STRAT_COUNT || t->member0 > m->nmembers ||
            t->nmembers > m->nmembers - t->member0 || t->top_k == 0 || t->sample == 0 ||
            t->sample > ROTA_SAMPLE_MAX || !fraction_ok(t->ceiling) || t->recency_s == 0 ||
            !weight_ok(t->w_quota) || !weight_ok(t->w_recency) || !weight_ok(t->jitter) ||
            t->jitter >= 1 || !weight_ok(t->lru_share) || t->lru_share > 1)
            return fail(err, n, ROTA_ELAYOUT, "tier %u: bad provider, strategy or members", i);
        if (t->caps & ~ROTA_TIER_CAPS)
            return fail(err, n, ROTA_ELAYOUT, "tier %u: unknown model capability bits 0x%x", i,
                        (unsigned)t->caps);
        if (!str_ok(m, t->model) || !list_ok(m, t->models, true))
            return fail(err, n, ROTA_ELAYOUT, "tier %u: bad model or model map offset", i);
    }
    for (uint32_t i = 0; i < m->ntiers; i++)
        if ((m->tiers[i].nbuckets && !buckets_ok(m, &m->tiers[i])) ||
            (m->tiers[i].strategy == ROTA_STRAT_STICKY &&
             m->tiers[i].nmembers > ROTA_SAMPLE_MAX && !m->tiers[i].nbuckets))
            return fail(err, n, ROTA_ELAYOUT, "tier %u: bad buckets", i);
    for (uint32_t i = 0; i < m->nmembers; i++) {
        const struct rota_shm_member *mb = &m->members[i];
        if (mb->account >= m->naccounts || mb->pool >= m->accounts[mb->account].npools)
            return fail(err, n, ROTA_ELAYOUT, "member %u: account or pool out of range", i);
    }
    for (uint32_t i = 0; i <= m->hdr->index_mask; i++) {
        const struct rota_shm_index *x = &m->index[i];
        uint32_t lim = x->kind == ROTA_IDX_ACCOUNT ? m->naccounts
                       : x->kind == ROTA_IDX_ROUTE ? m->nroutes
                                                   : m->nckeys;
        if (x->kind > ROTA_IDX_CKEY || (x->kind != ROTA_IDX_EMPTY && x->value >= lim))
            return fail(err, n, ROTA_ELAYOUT, "index slot %u: bad entry", i);
    }
    return rota_shm_ckeys_check(m, err, n);
}

int rota_shm_validate(void *base, size_t size, struct rota_shm_map *out, char *err, size_t n)
{
    if (!base || !out)
        return fail(err, n, -EINVAL, "no segment");
    struct rota_shm_header *h = base;
    if (size < sizeof(*h))
        return fail(err, n, ROTA_ETRUNC, "segment is %zu bytes, smaller than a header (%zu)",
                    size, sizeof(*h));
    if (h->magic != ROTA_SHM_MAGIC)
        return fail(err, n, ROTA_EMAGIC, "bad magic %#llx: not a rota table",
                    (unsigned long long)h->magic);
    if (h->abi != ROTA_SHM_ABI)
        return fail(err, n, ROTA_EABI, "table ABI %u, this rota speaks ABI %u", h->abi,
                    ROTA_SHM_ABI);
    if (h->header_size != sizeof(*h))
        return fail(err, n, ROTA_EABI, "header is %u bytes, this rota expects %zu",
                    h->header_size, sizeof(*h));
    if (h->total_size > size)
        return fail(err, n, ROTA_ETRUNC, "segment is %zu bytes, its header says %llu", size,
                    (unsigned long long)h->total_size);
    int rc = check_sections(h, size, err, n);
    if (rc)
        return rc;
    char *b = base;
    memset(out, 0, sizeof(*out));
    out->base = base;
    out->size = size;
    out->hdr = h;
    out->providers = (const void *)(b + h->sec[ROTA_SEC_PROVIDERS].off);
    out->accounts = (const void *)(b + h->sec[ROTA_SEC_ACCOUNTS].off);
    out->routes = (const void *)(b + h->sec[ROTA_SEC_ROUTES].off);
    out->tiers = (const void *)(b + h->sec[ROTA_SEC_TIERS].off);
    out->members = (const void *)(b + h->sec[ROTA_SEC_MEMBERS].off);
    out->buckets = (const void *)(b + h->sec[ROTA_SEC_BUCKETS].off);
    out->index = (const void *)(b + h->sec[ROTA_SEC_INDEX].off);
    out->strings = b + h->sec[ROTA_SEC_STRINGS].off;
    out->creds = b + h->sec[ROTA_SEC_CREDS].off;
    out->snaps = (void *)(b + h->sec[ROTA_SEC_SNAPS].off);
    out->hot = (void *)(b + h->sec[ROTA_SEC_HOT].off);
    out->phot = (void *)(b + h->sec[ROTA_SEC_PHOT].off);
    out->thot = (void *)(b + h->sec[ROTA_SEC_THOT].off);
    out->ckeys = (const void *)(b + h->sec[ROTA_SEC_CKEYS].off);
    out->ckroutes = (const void *)(b + h->sec[ROTA_SEC_CKROUTES].off);
    out->khot = (void *)(b + h->sec[ROTA_SEC_KHOT].off);
    out->nproviders = h->sec[ROTA_SEC_PROVIDERS].count;
    out->naccounts = h->sec[ROTA_SEC_ACCOUNTS].count;
    out->nroutes = h->sec[ROTA_SEC_ROUTES].count;
    out->ntiers = h->sec[ROTA_SEC_TIERS].count;
    out->nmembers = h->sec[ROTA_SEC_MEMBERS].count;
    out->nckeys = h->sec[ROTA_SEC_CKEYS].count;
    rc = check_contents(out, err, n);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int rota_shm_trusted_uid(uid_t *extra, char *err, size_t n)
{
    *extra = (uid_t)-1;
    const char *user = getenv("ROTA_SUPERVISOR_USER");
    if (!user || !*user)
        return 0;
    char *end;
    unsigned long u = strtoul(user, &end, 10);
    if (!*end) {
        *extra = (uid_t)u;
        return 0;
    }
    struct passwd pw, *hit = NULL;
    char buf[1024];
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &hit) != 0 || !hit)
        return fail(err, n, -EINVAL, "ROTA_SUPERVISOR_USER: no user '%.64s'", user);
    *extra = hit->pw_uid;
    return 0;
}

/* May this process follow a supervisor running as "uid"? */
static int trust_supervisor(uid_t uid, const char *name, char *err, size_t n)
{
    uid_t extra;
    int rc = rota_shm_trusted_uid(&extra, err, n);
    if (rc)
        return rc;
    if (uid == 0 || uid == geteuid() || uid == extra)
        return 0;
    return fail(err, n, -EPERM,
                "/dev/shm%s was made by uid %u, neither root nor this process's user (uid %u): "
                "refusing to follow it (set ROTA_SUPERVISOR_USER to rotad's user if that is "
                "rotad)",
                name, (unsigned)uid, (unsigned)geteuid());
}

/* "field" (a char array of ROTA_MAX_NAME) holds exactly "instance". */
static bool names(const char *field, const char *instance)
{
    return memchr(field, 0, ROTA_MAX_NAME) && strcmp(field, instance) == 0;
}

/* Map generation "gen" of "instance", which the supervisor "uid" owns, and validate it. */
static int map_gen(const char *instance, uint64_t gen, uid_t uid, struct rota_shm_map *out,
                   char *err, size_t n)
{
    char name[ROTA_MAX_NAME + 32];
    if (!out || !gen || rota_shm_name(name, sizeof(name), instance, gen))
        return fail(err, n, -EINVAL, "bad instance name or generation");
    struct stat st;
    int fd = rota_shm_open_owned_by(name, O_RDWR, uid, "the supervisor its directory names",
                                    &st, err, n);
    if (fd < 0)
        return fd;
    size_t size = (size_t)st.st_size;
    if (size < sizeof(struct rota_shm_header)) {
        close(fd);
        return fail(err, n, ROTA_ETRUNC, "%s: %zu bytes, smaller than a table header (%zu)",
                    name, size, sizeof(struct rota_shm_header));
    }
    /* Populated: the page tables are filled here, off any selection, and no selection
     * on this generation ever takes a page fault (which, while another thread of the
     * process unmaps an old generation, waits for it). */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return fail(err, n, -e, "%s: mmap: %s", name, strerror(e));
    char why[200];
    int rc = rota_shm_validate(p, size, out, why, sizeof(why));
    if (rc == 0 && !names(out->hdr->instance, instance))
        rc = fail(why, sizeof(why), ROTA_ELAYOUT, "its header names another instance");
    else if (rc == 0 && out->hdr->generation != gen)
        rc = fail(why, sizeof(why), ROTA_ELAYOUT, "its header names generation %llu",
                  (unsigned long long)out->hdr->generation);
    if (rc) {
        memset(out, 0, sizeof(*out));
        munmap(p, size);
        return fail(err, n, rc, "%s: %s", name, why);
    }
    return 0;
}

int rota_shm_dir_read(const char *instance, struct rota_shm_dir_info *out, char *err, size_t n)
{
    char name[ROTA_MAX_NAME + 32];
    if (!out || rota_shm_name(name, sizeof(name), instance, 0))
        return fail(err, n, -EINVAL,
                    "bad instance name (letters, digits, '_' and '-', at most %d)",
                    ROTA_MAX_NAME - 1);
    int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return fail(err, n, -errno, "%s: %s", name,
                    errno == ENOENT ? "no such instance (is rotad running?)" : strerror(errno));
    struct stat st;
    int rc =
        fstat(fd, &st) < 0 ? fail(err, n, -errno, "%s: fstat: %s", name, strerror(errno)) : 0;
    if (!rc && !S_ISREG(st.st_mode))
        rc = fail(err, n, -EPERM, "/dev/shm%s is not a regular file: refusing to use it", name);
    if (!rc && (size_t)st.st_size < sizeof(struct rota_shm_dir))
        rc = fail(err, n, ROTA_ETRUNC, "%s: %lld bytes, smaller than a directory (%zu)", name,
                  (long long)st.st_size, sizeof(struct rota_shm_dir));
    struct rota_shm_dir *d = NULL;
    if (!rc) {
        d = mmap(NULL, sizeof(*d), PROT_READ, MAP_SHARED, fd, 0);
        if (d == MAP_FAILED)
            rc = fail(err, n, -errno, "%s: mmap: %s", name, strerror(errno));
    }
    close(fd);
    if (rc)
        return rc;
    if (d->magic != ROTA_SHM_DIR_MAGIC) {
        rc = fail(err, n, ROTA_EMAGIC, "%s: bad magic: not a rota directory", name);
    } else if (d->abi != ROTA_SHM_ABI || d->size != sizeof(*d)) {
        rc = fail(err, n, ROTA_EABI, "%s: directory ABI %u, this rota speaks ABI %u", name,
                  d->abi, ROTA_SHM_ABI);
    } else if (st.st_uid != d->sup_uid) {
        rc = fail(err, n, -EPERM,
                  "/dev/shm%s is owned by uid %u, not by the supervisor it names (uid %u): "
                  "refusing to use it",
                  name, (unsigned)st.st_uid, (unsigned)d->sup_uid);
    } else if (!names(d->instance, instance)) {
        rc = fail(err, n, ROTA_ELAYOUT, "%s: the directory names another instance", name);
    } else if ((rc = trust_supervisor((uid_t)d->sup_uid, name, err, n)) != 0) {
        /* said why */
    } else {
        out->generation = atomic_load_explicit(&d->generation, memory_order_acquire);
        out->sup_pid = atomic_load_explicit(&d->sup_pid, memory_order_relaxed);
        out->sup_uid = (uid_t)d->sup_uid;
        memcpy(out->control, d->control, sizeof(out->control));
        out->control[sizeof(out->control) - 1] = 0;
    }
    munmap(d, sizeof(*d));
    return rc;
}

int rota_shm_current(const char *instance, uint64_t *gen, char *err, size_t n)
{
    struct rota_shm_dir_info info = {0};
    if (!gen)
        return fail(err, n, -EINVAL, "no generation to fill");
    int rc = rota_shm_dir_read(instance, &info, err, n);
    if (!rc)
        *gen = info.generation;
    return rc;
}

int rota_shm_attach_gen(const char *instance, uint64_t gen, struct rota_shm_map *out, char *err,
                        size_t n)
{
    struct rota_shm_dir_info info;
    if (!out || !gen || !rota_shm_instance_ok(instance))
        return fail(err, n, -EINVAL, "bad instance name or generation");
    memset(out, 0, sizeof(*out));
    int rc = rota_shm_dir_read(instance, &info, err, n);
    return rc ? rc : map_gen(instance, gen, info.sup_uid, out, err, n);
}

int rota_shm_attach(const char *instance, struct rota_shm_map *out, char *err, size_t n)
{
    if (!out)
        return fail(err, n, -EINVAL, "no map to fill");
    memset(out, 0, sizeof(*out)); /* left so on failure: nothing to use by mistake */
    /* The directory may move on between reading it and opening the generation (which is
     * then unlinked): try again a few times. */
    int rc = 0;
    for (int tries = 0; tries < 8; tries++) {
        struct rota_shm_dir_info info;
        rc = rota_shm_dir_read(instance, &info, err, n);
        if (rc)
            return rc;
        if (info.generation == 0)
            return fail(err, n, ROTA_ENOTREADY, "instance %s has no table yet", instance);
        uint64_t gen = info.generation;
        rc = map_gen(instance, gen, info.sup_uid, out, err, n);
        if (rc == -ENOENT)
            continue;
        if (rc)
            return rc;
        uint32_t st = atomic_load_explicit(&out->hdr->state, memory_order_acquire);
        if (st == ROTA_GEN_READY)
            return 0;
        rota_shm_detach(out);
        rc = fail(err, n, ROTA_ENOTREADY, "instance %s generation %llu is %s", instance,
                  (unsigned long long)gen,
                  st == ROTA_GEN_SUPERSEDED ? "superseded" : "not ready");
        if (st != ROTA_GEN_SUPERSEDED)
            return rc;
    }
    return rc;
}

void rota_shm_detach(struct rota_shm_map *m)
{
    if (m && m->base)
        munmap(m->base, m->size);
    if (m)
        memset(m, 0, sizeof(*m));
}

uint32_t rota_shm_find(const struct rota_shm_map *m, uint32_t kind, uint64_t key)
{
    uint32_t mask = m->hdr->index_mask;
    for (uint32_t i = rota_index_home(key, mask), n = 0; n <= mask; i = (i + 1) & mask, n++) {
        const struct rota_shm_index *x = &m->index[i];
        if (x->kind == ROTA_IDX_EMPTY)
            return ROTA_NONE;
        if (x->kind == kind && x->key == key)
            return x->value;
    }
    return ROTA_NONE;
}
