/* test_shm_owner: shared-memory objects another local user made first are refused, never
 * written to nor mapped; readers take only what the supervisor's uid owns and what names
 * their instance, whatever the owner and instance fields are changed to. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "clients.h"
#include "fixture.h"
#include "stranger.h"

/* What the stranger plants: "len" bytes of "data" as the object "name", mode 0666. */
struct plant {
    const char *name;
    const void *data;
    size_t len;
};

static int plant_fn(void *arg)
{
    const struct plant *p = arg;
    int fd = shm_open(p->name, O_RDWR | O_CREAT | O_EXCL, 0666);
    if (fd < 0)
        return 1;
    int bad = fchmod(fd, 0666) < 0 || ftruncate(fd, (off_t)(p->len ? p->len : 4096)) < 0;
    if (!bad && p->len)
        bad = write(fd, p->data, p->len) != (ssize_t)p->len;
    close(fd);
    return bad ? 2 : 0;
}

static uid_t stranger_uid;
static gid_t stranger_gid;

/* Skip the test, saying why, when it cannot act as a second user. */
#define NEED_STRANGER()                                                                        \
    do {                                                                                       \
        char why_[160];                                                                        \
        if (!stranger_ids(&stranger_uid, &stranger_gid, why_, sizeof(why_))) {                 \
            printf("skipped: %s\n", why_);                                                     \
            skip();                                                                            \
        }                                                                                      \
    } while (0)

static void plant(const char *name, const void *data, size_t len)
{
    struct plant p = {name, data, len};
    assert_int_equal(as_stranger(plant_fn, &p), 0);
}

/* The object "name" exists and is owned by "uid". */
static bool owned_by(const char *name, uid_t uid)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm%s", name);
    return lstat(path, &st) == 0 && st.st_uid == uid;
}

static bool exists(const char *name)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm%s", name);
    return lstat(path, &st) == 0;
}

static void expect_says(const char *err, const char *words)
{
    if (!strstr(err, words))
        fail_msg("message \"%s\" does not say \"%s\"", err, words);
}

static void test_shm_owner_precreated_directory_is_refused(void **state)
{
    (void)state;
    NEED_STRANGER();
    char inst[64], name[128], err[256] = "", who[32];
    fx_name(inst, sizeof(inst), "own");
    rota_shm_name(name, sizeof(name), inst, 0);
    /* Her directory looks like rota's own, names her as its supervisor and a generation
     * that does not exist (workers: "no such table"). */
    struct rota_shm_dir d;
    memset(&d, 0, sizeof(d));
    d.magic = ROTA_SHM_DIR_MAGIC;
    d.abi = ROTA_SHM_ABI;
    d.size = sizeof(d);
    d.sup_uid = (uint32_t)stranger_uid;
    snprintf(d.instance, sizeof(d.instance), "%s", inst);
    atomic_store(&d.generation, 999);
    plant(name, &d, sizeof(d));

    struct rota_shm_writer *w = NULL;
    assert_int_equal(rota_shm_writer_open(inst, 0600, &w, err, sizeof(err)), -EPERM);
    assert_null(w);
    char path[160];
    snprintf(path, sizeof(path), "/dev/shm%s is owned by uid %u", name, (unsigned)stranger_uid);
    expect_says(err, path);
    snprintf(who, sizeof(who), "(uid %u)", (unsigned)geteuid());
    expect_says(err, who);
    expect_says(err, "remove it");
    /* Nothing written into hers, nothing else made. */
    int fd = shm_open(name, O_RDONLY, 0);
    assert_true(fd >= 0);
    struct rota_shm_dir after;
    assert_int_equal(read(fd, &after, sizeof(after)), (ssize_t)sizeof(after));
    close(fd);
    assert_memory_equal(&after, &d, sizeof(d));
    char cname[128];
    snprintf(cname, sizeof(cname), "/rota.%s.clients", inst);
    assert_false(exists(cname));
    shm_unlink(name);
}

static void test_shm_owner_precreated_clients_segment_is_refused(void **state)
{
    (void)state;
    NEED_STRANGER();
    char inst[64], name[128], cname[128], err[256] = "", words[160];
    fx_name(inst, sizeof(inst), "own");
    rota_shm_name(name, sizeof(name), inst, 0);
    snprintf(cname, sizeof(cname), "/rota.%s.clients", inst);
    plant(cname, NULL, 0);

    struct rota_shm_writer *w = NULL;
    assert_int_equal(rota_shm_writer_open(inst, 0600, &w, err, sizeof(err)), -EPERM);
    snprintf(words, sizeof(words), "/dev/shm%s is owned by uid %u", cname,
             (unsigned)stranger_uid);
    expect_says(err, words);
    /* The directory it had made goes again: no half-opened instance is left. */
    assert_false(exists(name));
    assert_true(owned_by(cname, stranger_uid));
    /* A worker never maps her leases segment under a real supervisor's instance. */
    shm_unlink(cname);
    struct fx f = {0};
    assert_int_equal(fx_pool(&f, "own", 2, ROTA_STRAT_HYBRID, NULL), 0);
    snprintf(cname, sizeof(cname), "/rota.%s.clients", f.instance);
    shm_unlink(cname);     /* as if rotad had never made it ... */
    plant(cname, NULL, 0); /* ... and she had */
    struct rota_shm_clients *c = NULL;
    assert_int_equal(rota_shm_clients_open(f.instance, false, 0, &c), -EPERM);
    assert_null(c);
    shm_unlink(cname);
    fx_close(&f);
}

/* The stranger as the writer, against an object root made first (mode 0600: she cannot
 * even open it). */
struct writer_arg {
    const char *instance;
    char err[256];
};

static int writer_fn(void *arg)
{
    struct writer_arg *a = arg;
    struct rota_shm_writer *w = NULL;
    int rc = rota_shm_writer_open(a->instance, 0600, &w, a->err, sizeof(a->err));
    if (rc == 0)
        rota_shm_writer_close(w, true);
    char want[160];
    snprintf(want, sizeof(want), "is owned by uid 0, not by this rotad (uid %u)",
             (unsigned)getuid());
    return rc == -EPERM && strstr(a->err, want) ? 0 : 1;
}

static void test_shm_owner_unprivileged_writer_names_an_unreadable_owner(void **state)
{
    (void)state;
    NEED_STRANGER();
    char inst[64], name[128];
    fx_name(inst, sizeof(inst), "own");
    rota_shm_name(name, sizeof(name), inst, 0);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct writer_arg a = {.instance = inst};
    assert_int_equal(as_stranger(writer_fn, &a), 0);
    shm_unlink(name);
}

static void test_shm_owner_precreated_first_generation_is_passed_over(void **state)
{
    (void)state;
    NEED_STRANGER();
    struct fx f = {0};
    char g1[128], err[256] = "";
    fx_name(f.instance, sizeof(f.instance), "own");
    rota_shm_name(g1, sizeof(g1), f.instance, 1);
    plant(g1, NULL, 0);
    assert_int_equal(rota_shm_writer_open(f.instance, 0600, &f.w, err, sizeof(err)), 0);
    assert_int_equal(fx_pool(&f, "own", 2, ROTA_STRAT_HYBRID, NULL), 0);
    assert_int_equal(f.m->hdr->generation, 2);
    assert_true(owned_by(g1, stranger_uid));
    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(f.instance, &m, err, sizeof(err)), 0);
    assert_int_equal(m.hdr->generation, 2);
    rota_shm_detach(&m);
    shm_unlink(g1);
    fx_close(&f);
}

/* A table just like a real one of "f", but of the stranger's: another instance name and
 * another key. */
static void *forged_table(const struct fx *f, size_t *size)
{
    *size = f->m->size;
    char *p = malloc(*size);
    assert_non_null(p);
    memcpy(p, f->m->base, *size);
    struct rota_shm_map m;
    assert_int_equal(rota_shm_validate(p, *size, &m, NULL, 0), 0);
    for (uint32_t i = 0; i < m.naccounts; i++)
        memset((char *)m.creds + m.accounts[i].cred, 'X', m.accounts[i].cred_len);
    snprintf(m.hdr->instance, sizeof(m.hdr->instance), "evil");
    return p;
}

static void test_shm_owner_planted_next_generation_is_passed_over(void **state)
{
    (void)state;
    NEED_STRANGER();
    struct fx f = {0};
    assert_int_equal(fx_chain(&f, "plant", ROTA_STRAT_HYBRID, 100), 0);
    uint64_t gen = f.m->hdr->generation;
    size_t size;
    void *forged = forged_table(&f, &size);
    char hers[128], err[256] = "", words[160];
    rota_shm_name(hers, sizeof(hers), f.instance, gen + 1);
    ((struct rota_shm_header *)forged)->generation = gen + 1;
    plant(hers, forged, size);

    /* The reload takes the next free name; hers stays hers, untouched. */
    assert_int_equal(fx_chain(&f, "plant", ROTA_STRAT_HYBRID, 100), 0);
    assert_int_equal(f.m->hdr->generation, gen + 2);
    assert_true(owned_by(hers, stranger_uid));
    int fd = shm_open(hers, O_RDONLY, 0);
    assert_true(fd >= 0);
    void *now = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(now != MAP_FAILED);
    assert_memory_equal(now, forged, size);
    munmap(now, size);

    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(f.instance, &m, err, sizeof(err)), 0);
    assert_int_equal(m.hdr->generation, gen + 2);
    assert_memory_equal(m.creds + m.accounts[0].cred, "sk-test-secret", 14);
    rota_shm_detach(&m);

    /* Asked for by number, hers is refused for her ownership. */
    assert_int_equal(rota_shm_attach_gen(f.instance, gen + 1, &m, err, sizeof(err)), -EPERM);
    snprintf(words, sizeof(words), "owned by uid %u", (unsigned)stranger_uid);
    expect_says(err, words);
    assert_null(m.base);

    /* Even with the directory pointing at hers (as it would were she faster at a name the
     * writer had already chosen), no reader maps it and a restarted writer adopts
     * nothing of hers nor writes to it. */
    char dname[128];
    rota_shm_name(dname, sizeof(dname), f.instance, 0);
    fd = shm_open(dname, O_RDWR, 0);
    struct rota_shm_dir *dir =
        mmap(NULL, sizeof(*dir), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(dir != MAP_FAILED);
    atomic_store(&dir->generation, gen + 1);
    assert_int_equal(rota_shm_attach(f.instance, &m, err, sizeof(err)), -EPERM);
    expect_says(err, hers);
    assert_null(m.base);
    struct rota_shm_writer *w2;
    assert_int_equal(rota_shm_writer_open(f.instance, 0600, &w2, err, sizeof(err)), 0);
    assert_int_equal(rota_shm_adopt(w2, err, sizeof(err)), -EPERM);
    rota_shm_abandon(w2);
    assert_true(owned_by(hers, stranger_uid));
    fd = shm_open(hers, O_RDONLY, 0);
    now = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    assert_memory_equal(now, forged, size);
    munmap(now, size);
    rota_shm_writer_close(w2, false);
    atomic_store(&dir->generation, f.m->hdr->generation);
    munmap(dir, sizeof(*dir));
    shm_unlink(hers);
    free(forged);
    fx_close(&f);
}

static void test_shm_owner_generation_of_another_instance_is_refused(void **state)
{
    (void)state;
    struct fx a = {0}, b = {0};
    assert_int_equal(fx_chain(&a, "insta", ROTA_STRAT_HYBRID, 100), 0);
    assert_int_equal(fx_chain(&b, "instb", ROTA_STRAT_HYBRID, 100), 0);
    /* b's table, the supervisor's own, laid down as a's next generation. */
    uint64_t next = a.m->hdr->generation + 1;
    char name[128], dname[128], err[256] = "";
    rota_shm_name(name, sizeof(name), a.instance, next);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b.m->base, b.m->size), (ssize_t)b.m->size);
    close(fd);
    rota_shm_name(dname, sizeof(dname), a.instance, 0);
    fd = shm_open(dname, O_RDWR, 0);
    struct rota_shm_dir *dir =
        mmap(NULL, sizeof(*dir), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(dir != MAP_FAILED);
    uint64_t cur = atomic_load(&dir->generation);
    atomic_store(&dir->generation, next);
    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(a.instance, &m, err, sizeof(err)), ROTA_ELAYOUT);
    expect_says(err, "another instance");
    expect_says(err, name);
    assert_null(m.base);
    atomic_store(&dir->generation, cur);
    assert_int_equal(rota_shm_attach(a.instance, &m, err, sizeof(err)), 0);
    rota_shm_detach(&m);
    munmap(dir, sizeof(*dir));
    shm_unlink(name);
    fx_close(&a);
    fx_close(&b);
}

/* A worker of another user, in the supervisor's group (group mode), attaches. */
struct worker_arg {
    const char *instance;
};

static int worker_fn(void *arg)
{
    const struct worker_arg *a = arg;
    struct rota_shm_map m;
    if (rota_shm_attach(a->instance, &m, NULL, 0) != 0)
        return 1;
    rota_shm_detach(&m);
    struct rota_shm_clients *c;
    if (rota_shm_clients_open(a->instance, false, 0, &c) != 0)
        return 2;
    rota_shm_clients_close(c);
    return 0;
}

static void test_shm_owner_group_worker_of_another_user_attaches(void **state)
{
    (void)state;
    NEED_STRANGER();
    char inst[64], err[256] = "";
    fx_name(inst, sizeof(inst), "grp");
    struct rota_shm_writer *w;
    assert_int_equal(rota_shm_writer_open(inst, 0660, &w, err, sizeof(err)), 0);
    assert_int_equal(rota_shm_writer_group(w, stranger_gid, err, sizeof(err)), 0);
    struct fx f = {.w = w};
    snprintf(f.instance, sizeof(f.instance), "%s", inst);
    assert_int_equal(fx_chain(&f, "grp", ROTA_STRAT_HYBRID, 100), 0);
    struct worker_arg a = {inst};
    assert_int_equal(as_stranger(worker_fn, &a), 0);
    fx_close(&f);
}

/* She publishes a whole instance of her own, under a name root's workers use, before
 * root's rotad ever runs: every object hers, her uid recorded as the supervisor's.
 * Consistent as it is, root's readers do not follow a supervisor they do not trust; a
 * worker told that rotad runs as her user (ROTA_SUPERVISOR_USER) does. */
struct fake_arg {
    char instance[64];
};

static int fake_instance_fn(void *arg)
{
    struct fake_arg *a = arg;
    struct fx f = {0};
    snprintf(f.instance, sizeof(f.instance), "%s", a->instance);
    char err[256];
    if (rota_shm_writer_open(a->instance, 0644, &f.w, err, sizeof(err)) != 0)
        return 1;
    if (fx_pool(&f, "fake", 2, ROTA_STRAT_ROUND_ROBIN, NULL) != 0)
        return 2;
    rota_shm_writer_close(f.w, false); /* her objects stay */
    return 0;
}

static void test_shm_owner_strangers_whole_instance_is_not_followed(void **state)
{
    (void)state;
    NEED_STRANGER();
    struct fake_arg a;
    fx_name(a.instance, sizeof(a.instance), "fak");
    assert_int_equal(as_stranger(fake_instance_fn, &a), 0);
    struct rota_shm_map m;
    char err[512] = "";
    int rc = rota_shm_attach(a.instance, &m, err, sizeof(err));
    char want[160];
    snprintf(want, sizeof(want), "was made by uid %u, neither root nor",
             (unsigned)stranger_uid);
    if (rc == 0)
        rota_shm_detach(&m);
    char uid[16];
    snprintf(uid, sizeof(uid), "%u", (unsigned)stranger_uid);
    setenv("ROTA_SUPERVISOR_USER", uid, 1);
    int trusted = rota_shm_attach(a.instance, &m, NULL, 0);
    unsetenv("ROTA_SUPERVISOR_USER");
    if (trusted == 0)
        rota_shm_detach(&m);
    char name[128];
    for (uint64_t g = 0; g < 4; g++) {
        rota_shm_name(name, sizeof(name), a.instance, g);
        shm_unlink(name);
    }
    snprintf(name, sizeof(name), "/rota.%s.clients", a.instance);
    shm_unlink(name);
    assert_int_equal(rc, -EPERM);
    expect_says(err, want);
    assert_int_equal(trusted, 0);
}

/* ---- property: owner and instance fields, changed at random ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Change one byte of the name field "field" (ROTA_MAX_NAME bytes) at random. */
static void mangle_name(char *field)
{
    size_t at = (size_t)(rng() % ROTA_MAX_NAME);
    char was = field[at];
    do
        field[at] = (char)rng();
    while (field[at] == was);
}

static bool still_names(const char *field, const char *instance)
{
    return memchr(field, 0, ROTA_MAX_NAME) && strcmp(field, instance) == 0;
}

static void test_shm_owner_random_owner_and_instance_fields_are_refused(void **state)
{
    (void)state;
    struct fx f = {0};
    assert_int_equal(fx_chain(&f, "prop", ROTA_STRAT_HYBRID, 100), 0);
    const char *seed_env = getenv("ROTA_TEST_SEED");
    rng_state = seed_env ? strtoull(seed_env, NULL, 0)
                         : ((uint64_t)time(NULL) << 20 ^ (uint64_t)getpid()) * 2654435761u;
    rng_state |= 1;
    printf("seed %#llx (ROTA_TEST_SEED to replay)\n", (unsigned long long)rng_state);
    char dname[128], gname[128], err[256];
    rota_shm_name(dname, sizeof(dname), f.instance, 0);
    rota_shm_name(gname, sizeof(gname), f.instance, f.m->hdr->generation);
    int dfd = shm_open(dname, O_RDWR, 0), gfd = shm_open(gname, O_RDWR, 0);
    assert_true(dfd >= 0 && gfd >= 0);
    struct rota_shm_dir *dir =
        mmap(NULL, sizeof(*dir), PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
    assert_true(dir != MAP_FAILED);
    struct rota_shm_header *h = f.m->hdr;
    struct rota_shm_dir dir0 = *dir;
    char hinst[ROTA_MAX_NAME];
    memcpy(hinst, h->instance, sizeof(hinst));
    uint64_t gen = h->generation;
    uid_t me = geteuid();
    for (int round = 0; round < 400; round++) {
        uint32_t what = (uint32_t)rng() % 64 + 1; /* a non-empty set of changes */
        if (me != 0)                              /* only root gives objects away */
            what = (what & 15) ? what & 15 : 1;
        uid_t downer = me, gowner = me;
        if (what & 1)
            dir->sup_uid = (uint32_t)rng() % 4 == 0 ? (uint32_t)me + 1 : (uint32_t)rng();
        if (what & 2)
            mangle_name(dir->instance);
        if (what & 4)
            mangle_name(h->instance);
        if (what & 8)
            h->generation = rng() % 3 == 0 ? gen + 1 : rng();
        if (what & 16)
            downer = (uid_t)(rng() % 2 ? 1 + rng() % 65534 : me);
        if (what & 32)
            gowner = (uid_t)(rng() % 2 ? 1 + rng() % 65534 : me);
        if (what & 48) {
            assert_int_equal(fchown(dfd, downer, (gid_t)-1), 0);
            assert_int_equal(fchown(gfd, gowner, (gid_t)-1), 0);
        }
        bool dir_ok =
            dir->sup_uid == (uint32_t)downer && still_names(dir->instance, f.instance);
        bool ok = dir_ok && gowner == (uid_t)dir->sup_uid &&
                  still_names(h->instance, f.instance) && h->generation == gen;

        struct rota_shm_map m;
        memset(&m, 0xa5, sizeof(m));
        err[0] = 0;
        int rc = rota_shm_attach(f.instance, &m, err, sizeof(err));
        if (ok != (rc == 0))
            fail_msg("round %d, changes %#x: attach returned %d (%s)", round, what, rc, err);
        if (rc == 0) {
            rota_shm_detach(&m);
        } else {
            assert_null(m.base);
            assert_true(err[0] != 0);
            assert_true(rc == -EPERM || rc == ROTA_ELAYOUT);
        }
        struct rota_shm_dir_info info;
        rc = rota_shm_dir_read(f.instance, &info, NULL, 0);
        assert_int_equal(rc == 0, dir_ok);
        struct rota_shm_clients *c = NULL;
        rc = rota_shm_clients_open(f.instance, false, 0, &c);
        assert_int_equal(rc == 0, dir_ok && dir->sup_uid == (uint32_t)me);
        rota_shm_clients_close(c);

        *dir = dir0; /* put everything back: the next round starts from a good table */
        memcpy(h->instance, hinst, sizeof(hinst));
        h->generation = gen;
        if (what & 48) {
            assert_int_equal(fchown(dfd, me, (gid_t)-1), 0);
            assert_int_equal(fchown(gfd, me, (gid_t)-1), 0);
        }
    }
    struct rota_shm_map m;
    assert_int_equal(rota_shm_attach(f.instance, &m, err, sizeof(err)), 0);
    rota_shm_detach(&m);
    munmap(dir, sizeof(*dir));
    close(dfd);
    close(gfd);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shm_owner_precreated_directory_is_refused),
        cmocka_unit_test(test_shm_owner_precreated_clients_segment_is_refused),
        cmocka_unit_test(test_shm_owner_unprivileged_writer_names_an_unreadable_owner),
        cmocka_unit_test(test_shm_owner_precreated_first_generation_is_passed_over),
        cmocka_unit_test(test_shm_owner_planted_next_generation_is_passed_over),
        cmocka_unit_test(test_shm_owner_generation_of_another_instance_is_refused),
        cmocka_unit_test(test_shm_owner_group_worker_of_another_user_attaches),
        cmocka_unit_test(test_shm_owner_strangers_whole_instance_is_not_followed),
        cmocka_unit_test(test_shm_owner_random_owner_and_instance_fields_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
