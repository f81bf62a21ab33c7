/*
 * journal_util.c - see journal_util.h.
 */
#include <dirent.h>
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
#include <unistd.h>
#include <cmocka.h>

#include "journal_util.h"

int ju_setup(void **state)
{
    static struct ju_ctx c;
    memset(&c, 0, sizeof(c));
    snprintf(c.dir, sizeof(c.dir), "/tmp/rota-tj%d-XXXXXX", (int)getpid());
    if (!mkdtemp(c.dir))
        return -1;
    snprintf(c.path, sizeof(c.path), "%s/journal", c.dir);
    *state = &c;
    return 0;
}

/* Remove /dev/shm/rota.<instance> and every rota.<instance>.* a test may have left. */
static void unlink_segments(const char *instance)
{
    if (!instance[0])
        return;
    char base[96];
    int blen = snprintf(base, sizeof(base), "rota.%s", instance);
    DIR *d = opendir("/dev/shm");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, (size_t)blen) != 0 ||
            (e->d_name[blen] != 0 && e->d_name[blen] != '.'))
            continue;
        char name[320];
        snprintf(name, sizeof(name), "/%s", e->d_name);
        shm_unlink(name);
    }
    closedir(d);
}

static void close_fx(struct fx *f)
{
    char instance[sizeof(f->instance)];
    memcpy(instance, f->instance, sizeof(instance));
    fx_close(f);
    unlink_segments(instance);
}

int ju_teardown(void **state)
{
    struct ju_ctx *c = *state;
    rota_journal_stop(c->j);
    c->j = NULL;
    rota_jfile_close(c->jf);
    c->jf = NULL;
    close_fx(&c->f);
    close_fx(&c->g);
    close_fx(&c->h);
    DIR *d = opendir(c->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[400];
            snprintf(p, sizeof(p), "%s/%s", c->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(c->dir);
    return 0;
}

/* ---- records ---- */

void ju_assert_breaker_eq(const struct rota_jbreaker *a, const struct rota_jbreaker *b)
{
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->trips, b->trips);
    assert_int_equal(a->until, b->until);
    assert_int_equal(a->consec, b->consec);
}

void ju_assert_account_eq(const struct rota_jaccount *a, const struct rota_jaccount *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->what, b->what);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->reason, b->reason);
    assert_int_equal(a->disabled_until, b->disabled_until);
    assert_int_equal(a->wdisable, b->wdisable);
    assert_int_equal(a->wdisable_until, b->wdisable_until);
    assert_int_equal(a->cooldown_until, b->cooldown_until);
    assert_int_equal(a->consec_429, b->consec_429);
    ju_assert_breaker_eq(&a->breaker, &b->breaker);
    assert_int_equal(a->requests, b->requests);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->tokens, b->tokens);
    assert_int_equal(a->failures, b->failures);
    assert_int_equal(a->rate_limited, b->rate_limited);
    assert_int_equal(a->auth_failures, b->auth_failures);
    assert_int_equal(a->probe_at, b->probe_at);
    assert_int_equal(a->last_used, b->last_used);
    assert_int_equal(a->nwin, b->nwin);
    for (uint32_t w = 0; w < a->nwin; w++) {
        assert_int_equal(a->win[w].metric, b->win[w].metric);
        assert_int_equal(a->win[w].pool, b->win[w].pool);
        assert_int_equal(a->win[w].used, b->win[w].used);
        assert_int_equal(a->win[w].limit, b->win[w].limit);
        assert_int_equal(a->win[w].reset_at, b->win[w].reset_at);
        assert_int_equal(a->win[w].reset_kind, b->win[w].reset_kind);
        assert_int_equal(a->win[w].period_s, b->win[w].period_s);
    }
}

struct rota_jrec ju_rec_snapshot(uint32_t count)
{
    struct rota_jrec r;
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_SNAPSHOT;
    r.seq = count;
    r.at = count ? INT64_MIN : 0;
    r.u.count = count;
    return r;
}

const struct rota_jkey ju_key = {.id = "test-instance-01", .secret = "0123456789abcdef"};
const struct rota_jkey ju_other_key = {.id = "other-instance-2", .secret = "fedcba9876543210"};

size_t ju_enc(const struct rota_jrec *r, uint8_t *buf)
{
    size_t n = rota_jrec_encode(r, &ju_key, buf, ROTA_JREC_MAX);
    assert_true(n > 0 && n <= ROTA_JREC_MAX);
    return n;
}

int ju_dec_flags(const void *bytes, size_t len, unsigned flags, struct rota_jrec *r, char *err,
                 size_t n)
{
    void *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, bytes, len);
    err[0] = 0;
    int rc = rota_jrec_decode(p, len, &ju_key, flags, r, err, n);
    free(p);
    return rc;
}

int ju_dec(const void *bytes, size_t len, struct rota_jrec *r, char *err, size_t n)
{
    return ju_dec_flags(bytes, len, 0, r, err, n);
}

size_t ju_v1_of(const uint8_t *v2, size_t len, uint8_t *out)
{
    /* [count, 2, c4 10 id, rest..., c4 10 mac] -> [count - 2, 1, rest...] */
    size_t hlen = (v2[0] & 0xf0) == 0x90 ? 1 : 3;
    uint32_t count = hlen == 1 ? v2[0] & 0x0f : (uint32_t)v2[1] << 8 | v2[2];
    assert_int_equal(v2[hlen], ROTA_JREC_VERSION);
    assert_true(len > hlen + 1 + 18 + 18);
    size_t o = 0;
    if (count - 2 <= 15) {
        out[o++] = (uint8_t)(0x90 | (count - 2));
    } else {
        out[o++] = 0xdc;
        out[o++] = (uint8_t)((count - 2) >> 8);
        out[o++] = (uint8_t)(count - 2);
    }
    out[o++] = 1;
    size_t body = hlen + 1 + 18, end = len - 18;
    memcpy(out + o, v2 + body, end - body);
    return o + end - body;
}

/* ---- files ---- */

void ju_put(struct rota_jfile *f, const struct rota_jrec *r, size_t *len)
{
    uint8_t buf[ROTA_JREC_MAX];
    size_t n = ju_enc(r, buf);
    assert_int_equal(rota_jfile_put(f, buf, n), 0);
    if (len)
        *len = n;
}

struct ju_read ju_got;

static int collect(void *arg, const struct rota_jrec *r)
{
    (void)arg;
    if (ju_got.n < 1024) {
        ju_got.type[ju_got.n] = r->type;
        ju_got.id[ju_got.n] = r->type == ROTA_JREC_ACCOUNT ? r->u.acc.id : r->u.count;
    }
    ju_got.n++;
    return 0;
}

int ju_read_journal(const char *path, struct rota_jfile_scan *sc, char *err, size_t n)
{
    memset(&ju_got, 0, sizeof(ju_got));
    err[0] = 0;
    return rota_jfile_read(path, &ju_key, collect, NULL, sc, err, n);
}

uint8_t *ju_slurp(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    assert_non_null(p);
    assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
    close(fd);
    *size = (size_t)st.st_size;
    return p;
}

void ju_spit(const char *path, const void *p, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, size), (ssize_t)size);
    close(fd);
}

bool ju_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}
