/*
 * clients.c - the leases segment: claim, leave, reap.
 *
 * DESIGN
 * Claiming is one CAS of the slot's word from FREE to CLAIMING with the claimer's pid,
 * after which it fills its start time and stores LIVE (release): a slot claiming always
 * names its owner, so one whose owner died mid-claim is reaped like any other. The
 * supervisor reaps a slot only after a CAS to REAPING from the word it judged (LIVE or
 * CLAIMING with a dead owner, or GONE), so an owner and the reaper never both think they
 * own it; a slot is reaped only when its process is gone (or it left), so nobody is
 * holding or dropping on it meanwhile. An entry names its account by the tag the table
 * gave it (unique in the table, kept across generations); the reaper maps tags to the
 * current generation's accounts exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clients.h"

struct rota_shm_clients {
    struct rota_shm_clients_seg *seg;
};

static int seg_name(char *buf, size_t n, const char *instance)
{
    if (!rota_shm_instance_ok(instance))
        return -EINVAL;
    snprintf(buf, n, "/rota.%s.clients", instance);
    return 0;
}

int rota_shm_clients_open(const char *instance, bool create, mode_t mode,
                          struct rota_shm_clients **out)
{
    char name[ROTA_MAX_NAME + 32];
    if (seg_name(name, sizeof(name), instance))
        return -EINVAL;
    /* The writer creates it (O_EXCL) or takes its own; a worker maps it only if the
     * supervisor its instance's directory names owns it (shm/attach.c). */
    struct stat st;
    bool created = false;
    int fd;
    if (create) {
        fd = rota_shm_open_own(name, mode ? mode : 0600, &created, &st, NULL, 0);
    } else {
        struct rota_shm_dir_info info;
        fd = rota_shm_dir_read(instance, &info, NULL, 0);
        if (fd == 0)
            fd = rota_shm_open_owned_by(name, O_RDWR, info.sup_uid, "the supervisor", &st, NULL,
                                        0);
    }
    if (fd < 0)
        return fd;
    int rc = create && fchmod(fd, mode ? mode : 0600) < 0 ? -errno : 0;
    size_t size = sizeof(struct rota_shm_clients_seg);
    if (!rc && (size_t)st.st_size != size) {
        if (!create)
            rc = -EPROTO;
        else if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
            rc = -errno;
    }
    void *p = MAP_FAILED;
    if (!rc) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            rc = -errno;
    }
    close(fd);
    if (rc)
        return rc;
    struct rota_shm_clients_seg *s = p;
    if (s->magic != ROTA_CLIENTS_MAGIC || s->abi != ROTA_SHM_ABI ||
        s->nslots != ROTA_CLIENTS_SLOTS) {
        if (!create) {
            munmap(p, size);
            return -EPROTO;
        }
        memset(s, 0, size);
        s->abi = ROTA_SHM_ABI;
        s->nslots = ROTA_CLIENTS_SLOTS;
        atomic_thread_fence(memory_order_release);
        s->magic = ROTA_CLIENTS_MAGIC;
    }
    struct rota_shm_clients *c = malloc(sizeof(*c));
    if (!c) {
        munmap(p, size);
        return -ENOMEM;
    }
    c->seg = s;
    *out = c;
    return 0;
}

void rota_shm_clients_close(struct rota_shm_clients *c)
{
    if (!c)
        return;
    munmap(c->seg, sizeof(*c->seg));
    free(c);
}

/* Read process "pid"'s state letter and start time from /proc. False if it is gone. */
static bool proc_stat(int32_t pid, char *state, uint64_t *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    /* Fields after the command name's closing parenthesis: 3 state, ..., 22 start time. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return false;
    *state = p[2];
    p++;
    for (int field = 2; field < 21 && p; field++)
        p = strchr(p + 1, ' ');
    *start = p ? strtoull(p + 1, NULL, 10) : 0;
    return true;
}

uint64_t rota_client_start_time(int32_t pid)
{
    char state;
    uint64_t start = 0;
    return proc_stat(pid, &state, &start) ? start : 0;
}

bool rota_client_alive(int32_t pid, uint64_t start)
{
    if (pid <= 0)
        return false;
    char state = 0;
    uint64_t now = 0;
    if (!proc_stat(pid, &state, &now))
        return kill(pid, 0) == 0 || errno == EPERM; /* no /proc: the pid alone */
    if (state == 'Z' || state == 'X')               /* exited; its parent has not waited yet */
        return false;
    return start == 0 || now == start; /* 0: still being claimed */
}

int rota_shm_client_claim(struct rota_shm_clients *c)
{
    int32_t pid = (int32_t)getpid();
    uint64_t start = rota_client_start_time(pid);
    for (int i = 0; i < ROTA_CLIENTS_SLOTS; i++) {
        struct rota_shm_client *s = &c->seg->slot[i];
        uint64_t own = rota_client_own(ROTA_CLIENT_FREE, 0);
        if (!atomic_compare_exchange_strong_explicit(
                &s->own, &own, rota_client_own(ROTA_CLIENT_CLAIMING, pid), memory_order_acquire,
                memory_order_relaxed))
            continue;
        rota_store(&s->start, start);
        atomic_store_explicit(&s->own, rota_client_own(ROTA_CLIENT_LIVE, pid),
                              memory_order_release);
        return i;
    }
    return -ENOSPC;
}

void rota_shm_client_leave(struct rota_shm_clients *c, int slot)
{
    if (!c || slot < 0 || slot >= ROTA_CLIENTS_SLOTS)
        return;
    /* Only from LIVE and only our own: a slot reaped meanwhile (and perhaps claimed by
     * another process) is not ours to mark. */
    struct rota_shm_client *s = &c->seg->slot[slot];
    int32_t pid = (int32_t)getpid();
    uint64_t live = rota_client_own(ROTA_CLIENT_LIVE, pid);
    atomic_compare_exchange_strong_explicit(&s->own, &live,
                                            rota_client_own(ROTA_CLIENT_GONE, pid),
                                            memory_order_release, memory_order_relaxed);
}

struct rota_shm_client *rota_shm_client_at(struct rota_shm_clients *c, int slot)
{
    return &c->seg->slot[slot];
}

struct tagged {
    uint64_t tag;
    uint32_t account;
};

static int by_tag(const void *a, const void *b)
{
    uint64_t x = ((const struct tagged *)a)->tag, y = ((const struct tagged *)b)->tag;
    return x < y ? -1 : x > y;
}

/* The accounts of "m" sorted by their lease tags (unique in a table), to find a reaped
 * entry's account. */
static struct tagged *tag_index(const struct rota_shm_map *m)
{
    struct tagged *t = m ? malloc((m->naccounts ? m->naccounts : 1) * sizeof(*t)) : NULL;
    for (uint32_t a = 0; t && a < m->naccounts; a++)
        t[a] = (struct tagged){m->accounts[a].lease_tag, a};
    if (t)
        qsort(t, m->naccounts, sizeof(*t), by_tag);
    return t;
}

/* Report what a reaped slot held as done on its accounts; clear it. Calls it held
 * untracked cannot be placed and stay counted in flight. */
static uint64_t reclaim(struct rota_shm_client *s, const struct rota_shm_map *m,
                        const struct tagged *idx)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < ROTA_CLIENT_ENTRIES; i++) {
        uint64_t w = atomic_exchange_explicit(&s->ent[i], 0, memory_order_relaxed);
        uint64_t held = w & ROTA_CLIENT_COUNT_MASK;
        if (held == 0)
            continue;
        struct tagged key = {w & ~ROTA_CLIENT_COUNT_MASK, 0};
        const struct tagged *hit =
            idx ? bsearch(&key, idx, m->naccounts, sizeof(*idx), by_tag) : NULL;
        if (hit)
            rota_add(&m->hot[hit->account].done, held);
        total += held;
    }
    rota_store(&s->untracked, 0);
    return total;
}

uint64_t rota_shm_clients_reap(struct rota_shm_clients *c, const struct rota_shm_map *m,
                               bool (*alive)(int32_t pid, uint64_t start))
{
    if (!c)
        return 0;
    if (!alive)
        alive = rota_client_alive;
    uint64_t total = 0;
    struct tagged *idx = NULL;
    bool indexed = false;
    for (int i = 0; i < ROTA_CLIENTS_SLOTS; i++) {
        struct rota_shm_client *s = &c->seg->slot[i];
        uint64_t own = atomic_load_explicit(&s->own, memory_order_acquire);
        uint32_t st = rota_client_state(own);
        /* A claiming slot names its owner: reaped once the owner is gone, as a live one. */
        bool owned = st == ROTA_CLIENT_LIVE || st == ROTA_CLIENT_CLAIMING;
        if (st != ROTA_CLIENT_GONE &&
            (!owned || alive(rota_client_pid(own), rota_load(&s->start))))
            continue;
        if (!atomic_compare_exchange_strong_explicit(
                &s->own, &own, rota_client_own(ROTA_CLIENT_REAPING, rota_client_pid(own)),
                memory_order_acquire, memory_order_relaxed))
            continue;
        if (!indexed) {
            idx = tag_index(m);
            indexed = true;
        }
        uint64_t n = reclaim(s, m, idx);
        rota_add(&s->reaped, n);
        total += n;
        rota_store(&s->start, 0);
        atomic_store_explicit(&s->own, rota_client_own(ROTA_CLIENT_FREE, 0),
                              memory_order_release);
    }
    free(idx);
    return total;
}

void rota_shm_clients_count(struct rota_shm_clients *c, uint32_t *live, uint64_t *held)
{
    *live = 0;
    *held = 0;
    for (int i = 0; c && i < ROTA_CLIENTS_SLOTS; i++) {
        struct rota_shm_client *s = &c->seg->slot[i];
        if (rota_client_state(atomic_load_explicit(&s->own, memory_order_acquire)) !=
            ROTA_CLIENT_LIVE)
            continue;
        (*live)++;
        for (uint32_t k = 0; k < ROTA_CLIENT_ENTRIES; k++)
            *held += rota_load(&s->ent[k]) & ROTA_CLIENT_COUNT_MASK;
        *held += rota_load(&s->untracked);
    }
}
