/* test_jfile: the journal's file: records written and read back, a read stopped by its
 * callback, torn tails cut, a corrupt record skipped alone, files that are no journal
 * refused, every fsync policy, a snapshot replacing the file, and only the instance's own
 * records taken (version 1 ones too, from the file). Real files in a
 * temporary directory; nothing mocked. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "journal_util.h"

#define AT0 INT64_C(1750000000000000000) /* 2025-06-15 15:06:40 UTC: file records' times */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A file test's account record "i". */
static struct rota_jrec file_rec(uint32_t i, uint64_t id0)
{
    struct rota_jrec r;
    memset(&r, 0, sizeof(r));
    r.type = ROTA_JREC_ACCOUNT;
    r.seq = id0 + i;
    r.at = AT0 + (int64_t)i * (int64_t)MS;
    r.u.acc.id = id0 + i;
    r.u.acc.what = ROTA_JCHG_USAGE;
    r.u.acc.requests = r.u.acc.done = i * 7;
    r.u.acc.nwin = 1;
    r.u.acc.win[0] = (struct rota_jwin){0, 0, i * 3, 1000, AT0 + DAY_NS, ROTA_RESET_DAY, 0};
    return r;
}

/* Write "n" account records (ids 1000..) to the journal: a snapshot of the first "nsnap"
 * after its SNAPSHOT record, the rest appended in writes of 3. off[k] is where frame k
 * starts (frame 0 the SNAPSHOT record, frame k > 0 account record k - 1); off[n + 1] is
 * the end of the file. */
static void write_journal(struct ju_ctx *c, enum rota_fsync policy, uint32_t nsnap, uint32_t n,
                          uint64_t *off)
{
    char err[256] = "";
    assert_int_equal(rota_jfile_open(c->path, policy, 10 * MS, &c->jf, err, sizeof(err)), 0);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    struct rota_jrec r = ju_rec_snapshot(nsnap);
    r.at = AT0 - 1;
    size_t len;
    ju_put(c->jf, &r, &len);
    off[0] = ROTA_JFILE_HEADER;
    off[1] = off[0] + ROTA_JFILE_FRAME + len;
    for (uint32_t i = 0; i < n; i++) {
        if (i == nsnap)
            assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
        else if (i > nsnap && (i - nsnap) % 3 == 0)
            assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);
        r = file_rec(i, 1000);
        ju_put(c->jf, &r, &len);
        off[i + 2] = off[i + 1] + ROTA_JFILE_FRAME + len;
    }
    if (nsnap >= n)
        assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
    else
        assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);
    struct rota_jfile_stats st;
    rota_jfile_stats(c->jf, &st);
    assert_int_equal(st.bytes, off[n + 1]);
    assert_int_equal(st.records, n + 1);
    assert_int_equal(st.errors, 0);
    assert_int_equal(rota_jfile_pending(c->jf), 0);
    rota_jfile_close(c->jf);
    c->jf = NULL;
}

static void assert_offset(const struct rota_jfile_scan *sc, uint64_t off)
{
    char want[32];
    snprintf(want, sizeof(want), "offset %" PRIu64 ":", off);
    if (strncmp(sc->first_problem, want, strlen(want)) != 0)
        fail_msg("first_problem \"%s\", want it at %s", sc->first_problem, want);
}

/* Records 0..n-1 of write_journal read back, in order, without "skip" (-1 = none). */
static void assert_got(uint32_t n, int skip)
{
    uint64_t k = 0;
    assert_int_equal(ju_got.type[k++], ROTA_JREC_SNAPSHOT);
    for (uint32_t i = 0; i < n; i++) {
        if ((int)i == skip)
            continue;
        assert_int_equal(ju_got.type[k], ROTA_JREC_ACCOUNT);
        assert_int_equal(ju_got.id[k], 1000 + i);
        k++;
    }
    assert_int_equal(ju_got.n, k);
}

static void test_journal_file_reads_back_what_was_written(void **state)
{
    struct ju_ctx *c = *state;
    enum { N = 50, NSNAP = 10 };
    uint64_t off[N + 2];
    write_journal(c, ROTA_FSYNC_INTERVAL, NSNAP, N, off);
    struct rota_jfile_scan sc;
    char err[256];
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, N + 1);
    assert_int_equal(sc.snapshots, 1);
    assert_int_equal(sc.corrupt, 0);
    assert_int_equal(sc.corrupt_bytes, 0);
    assert_int_equal(sc.torn_bytes, 0);
    assert_int_equal(sc.size, off[N + 1]);
    assert_int_equal(sc.newest_at, AT0 + (N - 1) * (int64_t)MS);
    assert_string_equal(sc.first_problem, "");
    assert_got(N, -1);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
    assert_false(ju_exists(tmp));
}

static int stop_at_third(void *arg, const struct rota_jrec *r)
{
    int *n = arg;
    return ++*n == 3 ? 42 : 0;
}

static void test_journal_file_callback_stops_the_walk(void **state)
{
    struct ju_ctx *c = *state;
    uint64_t off[12];
    write_journal(c, ROTA_FSYNC_NEVER, 4, 10, off);
    struct rota_jfile_scan sc;
    char err[256] = "";
    int n = 0;
    assert_int_equal(
        rota_jfile_read(c->path, &ju_key, stop_at_third, &n, &sc, err, sizeof(err)), 42);
    assert_int_equal(n, 3);
    assert_int_equal(sc.records, 3);
}

static void test_journal_file_torn_tail_is_cut(void **state)
{
    struct ju_ctx *c = *state;
    enum { N = 12 };
    uint64_t off[N + 2];
    write_journal(c, ROTA_FSYNC_ALWAYS, 4, N, off);
    size_t size;
    uint8_t *orig = ju_slurp(c->path, &size);
    assert_int_equal(size, off[N + 1]);
    uint64_t last = off[N]; /* the last frame: account record N - 1 */
    struct rota_jfile_scan sc;
    char err[256];

    /* cut anywhere inside the last frame, its header included */
    for (uint64_t cut = 1; cut < size - last; cut++) {
        ju_spit(c->path, orig, last + cut);
        assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
        assert_int_equal(sc.records, N);
        assert_got(N - 1, -1);
        assert_int_equal(sc.torn_bytes, cut);
        assert_int_equal(sc.corrupt, 0);
        assert_int_equal(sc.newest_at, AT0 + (N - 2) * (int64_t)MS);
        assert_non_null(strstr(sc.first_problem, "torn"));
        assert_offset(&sc, last);
    }
    /* cut at a frame's boundary: nothing torn */
    ju_spit(c->path, orig, last);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, N);
    assert_int_equal(sc.torn_bytes, 0);
    assert_string_equal(sc.first_problem, "");

    /* garbage after the last frame: random bytes, then zeros (a preallocated tail) */
    uint8_t *buf = malloc(size + 4096);
    assert_non_null(buf);
    memcpy(buf, orig, size);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int trial = 0; trial < 40; trial++) {
        size_t glen = 1 + xorshift(&rng) % 300;
        for (size_t i = 0; i < glen; i++)
            buf[size + i] = (uint8_t)xorshift(&rng);
        ju_spit(c->path, buf, size + glen);
        assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
        assert_int_equal(sc.records, N + 1);
        assert_got(N, -1);
        assert_int_equal(sc.torn_bytes, glen);
        assert_int_equal(sc.corrupt, 0);
        assert_non_null(strstr(sc.first_problem, "torn"));
        assert_offset(&sc, size);
    }
    memset(buf + size, 0, 4096);
    ju_spit(c->path, buf, size + 4096);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, N + 1);
    assert_int_equal(sc.torn_bytes, 4096);
    assert_int_equal(sc.corrupt, 0);
    assert_non_null(strstr(sc.first_problem, "torn"));
    free(buf);
    free(orig);
}

static void test_journal_file_corrupt_record_is_skipped_alone(void **state)
{
    struct ju_ctx *c = *state;
    enum { N = 20, K = 10 }; /* frame K: account record K - 1 */
    uint64_t off[N + 2];
    write_journal(c, ROTA_FSYNC_INTERVAL, 5, N, off);
    size_t size;
    uint8_t *orig = ju_slurp(c->path, &size);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    struct rota_jfile_scan sc;
    char err[256];
    /* every byte of the frame: sync word, length, checksum, payload */
    for (uint64_t b = off[K]; b < off[K + 1]; b++) {
        memcpy(buf, orig, size);
        buf[b] ^= 0x5a;
        ju_spit(c->path, buf, size);
        assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
        if (sc.records != N || sc.corrupt != 1)
            fail_msg("byte %" PRIu64 " of frame %d flipped: records %" PRIu64
                     ", corrupt %" PRIu64 " (%s)",
                     b - off[K], K, sc.records, sc.corrupt, sc.first_problem);
        assert_got(N, K - 1);
        assert_int_equal(sc.corrupt_bytes, off[K + 1] - off[K]);
        assert_int_equal(sc.torn_bytes, 0);
        assert_int_equal(sc.newest_at, AT0 + (N - 1) * (int64_t)MS);
        assert_offset(&sc, off[K]);
        if (b < off[K] + 4)
            assert_non_null(strstr(sc.first_problem, "no frame starts here"));
        else if (b >= off[K] + ROTA_JFILE_FRAME)
            assert_non_null(strstr(sc.first_problem, "checksum"));
        assert_null(strstr(sc.first_problem, "torn"));
    }
    /* two bad frames: both skipped, the first reported */
    memcpy(buf, orig, size);
    buf[off[3] + 20] ^= 1;
    buf[off[15] + 20] ^= 1;
    ju_spit(c->path, buf, size);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, N - 1);
    assert_int_equal(sc.corrupt, 2);
    assert_offset(&sc, off[3]);
    free(buf);
    free(orig);
}

static void test_journal_file_refuses_what_is_not_a_journal(void **state)
{
    struct ju_ctx *c = *state;
    struct rota_jfile_scan sc;
    char err[256];

    static const char text[] = "this is a text file, certainly not a rota journal\n";
    ju_spit(c->path, text, sizeof(text) - 1);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, c->path));
    assert_non_null(strstr(err, "not a rota journal"));
    assert_int_equal(ju_got.n, 0);

    /* a newer format */
    uint8_t hdr[ROTA_JFILE_HEADER + 4] = "ROTAJNL1\x02";
    ju_spit(c->path, hdr, sizeof(hdr));
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, c->path));
    assert_non_null(strstr(err, "newer"));

    /* empty: created, never written */
    ju_spit(c->path, "", 0);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 0);
    assert_int_equal(sc.torn_bytes, 0);
    assert_string_equal(sc.first_problem, "");

    /* the header itself torn */
    ju_spit(c->path, "ROTAJN", 6);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 0);
    assert_int_equal(sc.torn_bytes, 6);
    assert_non_null(strstr(sc.first_problem, "torn"));

    /* only the header */
    ju_spit(c->path, "ROTAJNL1\x01\0\0\0\0\0\0\0", ROTA_JFILE_HEADER);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 0);
    assert_string_equal(sc.first_problem, "");

    unlink(c->path);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), -ENOENT);

    /* a directory in its place */
    assert_int_equal(mkdir(c->path, 0700), 0);
    assert_true(ju_read_journal(c->path, &sc, err, sizeof(err)) < 0);
    rmdir(c->path);
}

/* journal.h: "-errno with err when the file cannot be used (not a journal, unreadable):
 * rotad refuses to start rather than overwrite it". A file shorter than the header whose
 * bytes are not a prefix of it is no torn journal either. */
static void test_journal_file_short_foreign_file_is_not_a_journal(void **state)
{
    struct ju_ctx *c = *state;
    struct rota_jfile_scan sc;
    char err[256];
    ju_spit(c->path, "hello\n", 6);
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, c->path));
}

static void test_journal_file_every_fsync_policy_writes_a_readable_file(void **state)
{
    struct ju_ctx *c = *state;
    static const enum rota_fsync policies[] = {ROTA_FSYNC_ALWAYS, ROTA_FSYNC_INTERVAL,
                                               ROTA_FSYNC_NEVER};
    for (size_t p = 0; p < 3; p++) {
        enum rota_fsync pol = policies[p];
        char err[256] = "";
        unlink(c->path);
        assert_int_equal(rota_jfile_open(c->path, pol, 3600 * S, &c->jf, err, sizeof(err)), 0);
        assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
        struct rota_jrec r = ju_rec_snapshot(2);
        ju_put(c->jf, &r, NULL);
        for (uint32_t i = 0; i < 2; i++) {
            r = file_rec(i, 1000);
            ju_put(c->jf, &r, NULL);
        }
        assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
        struct rota_jfile_stats st;
        rota_jfile_stats(c->jf, &st);
        assert_int_equal(st.syncs, 1); /* a snapshot is synced whatever the policy */
        assert_int_equal(st.snapshots, 1);

        /* an append now: synced only by "always" (the interval is an hour) */
        uint64_t now = rota_clock_mono();
        r = file_rec(2, 1000);
        ju_put(c->jf, &r, NULL);
        assert_int_equal(rota_jfile_write(c->jf, now, false), 0);
        rota_jfile_stats(c->jf, &st);
        assert_int_equal(st.syncs, pol == ROTA_FSYNC_ALWAYS ? 2 : 1);
        assert_int_equal(st.writes, 1);

        /* two hours on: "interval" syncs too, even with nothing new to write */
        assert_int_equal(rota_jfile_write(c->jf, now + 7200 * S, false), 0);
        rota_jfile_stats(c->jf, &st);
        assert_int_equal(st.syncs, pol == ROTA_FSYNC_NEVER ? 1 : 2);

        /* a forced sync: all but "never" */
        r = file_rec(3, 1000);
        ju_put(c->jf, &r, NULL);
        assert_int_equal(rota_jfile_write(c->jf, now + 7200 * S, true), 0);
        rota_jfile_stats(c->jf, &st);
        assert_int_equal(st.syncs, pol == ROTA_FSYNC_NEVER ? 1 : 3);
        assert_int_equal(st.writes, 2);
        assert_int_equal(st.errors, 0);
        rota_jfile_close(c->jf);
        c->jf = NULL;

        struct rota_jfile_scan sc;
        assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
        assert_int_equal(sc.records, 5);
        assert_got(4, -1);
        assert_int_equal(sc.torn_bytes + sc.corrupt, 0);
    }
}

static void test_journal_file_snapshot_replaces_the_file(void **state)
{
    struct ju_ctx *c = *state;
    char err[256] = "", tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
    assert_int_equal(rota_jfile_open(c->path, ROTA_FSYNC_ALWAYS, 0, &c->jf, err, sizeof(err)),
                     0);
    /* nothing to append to before the first snapshot */
    struct rota_jrec r = file_rec(0, 1000);
    ju_put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), -EBADF);
    assert_false(ju_exists(c->path));

    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    r = ju_rec_snapshot(10);
    ju_put(c->jf, &r, NULL);
    for (uint32_t i = 0; i < 30; i++) {
        if (i == 10)
            assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
        r = file_rec(i, 1000);
        ju_put(c->jf, &r, NULL);
        if (i >= 10 && i % 4 == 0)
            assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);
    }
    assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);
    assert_false(ju_exists(tmp));
    struct stat big;
    assert_int_equal(stat(c->path, &big), 0);

    /* pending records when a snapshot begins belong to the file it replaces */
    r = file_rec(99, 1000);
    ju_put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    assert_true(ju_exists(tmp));
    /* the old file is whole meanwhile */
    struct rota_jfile_scan sc;
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 31);
    r = ju_rec_snapshot(5);
    ju_put(c->jf, &r, NULL);
    for (uint32_t i = 0; i < 5; i++) {
        r = file_rec(i, 2000);
        ju_put(c->jf, &r, NULL);
    }
    assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
    assert_false(ju_exists(tmp));
    for (uint32_t i = 5; i < 8; i++) {
        r = file_rec(i, 2000);
        ju_put(c->jf, &r, NULL);
    }
    assert_int_equal(rota_jfile_write(c->jf, rota_clock_mono(), false), 0);

    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 1 + 5 + 3);
    assert_int_equal(sc.snapshots, 1);
    assert_int_equal(ju_got.type[0], ROTA_JREC_SNAPSHOT);
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(ju_got.id[1 + i], 2000 + i);
    struct rota_jfile_stats st;
    rota_jfile_stats(c->jf, &st);
    assert_int_equal(st.snapshots, 2);
    assert_int_equal(st.bytes, sc.size);
    assert_true(sc.size < (uint64_t)big.st_size);

    /* closed in the middle of a snapshot: the new file goes, the old one stays */
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    r = ju_rec_snapshot(0);
    ju_put(c->jf, &r, NULL);
    rota_jfile_close(c->jf);
    c->jf = NULL;
    assert_false(ju_exists(tmp));
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 9);
}

/* A snapshot that cannot be written (its .tmp path is taken by a directory) leaves the
 * journal as it was and appends go on to it; the next snapshot, once it can, replaces it.
 * A failed append leaves nothing of itself in the file. */
static void test_journal_file_failed_snapshot_keeps_the_journal(void **state)
{
    struct ju_ctx *c = *state;
    char err[256], tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
    assert_int_equal(rota_jfile_open(c->path, ROTA_FSYNC_ALWAYS, 0, &c->jf, err, sizeof(err)),
                     0);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    struct rota_jrec snap = ju_rec_snapshot(2);
    ju_put(c->jf, &snap, NULL);
    for (uint32_t i = 0; i < 2; i++) {
        struct rota_jrec r = file_rec(i, 1000);
        ju_put(c->jf, &r, NULL);
    }
    assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);

    assert_int_equal(mkdir(tmp, 0700), 0);
    struct rota_jrec r = file_rec(2, 1000);
    ju_put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_write(c->jf, 1, false), 0); /* record 2, appended */
    assert_true(rota_jfile_snapshot_begin(c->jf) < 0);
    assert_int_equal(rota_jfile_pending(c->jf), 0);
    r = file_rec(3, 1000);
    ju_put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_write(c->jf, 2, false), 0); /* still appended */
    struct rota_jfile_stats st;
    rota_jfile_stats(c->jf, &st);
    assert_int_equal(st.snapshots, 1);
    assert_true(st.errors >= 1);
    assert_non_null(strstr(st.last_error, ".tmp"));
    struct rota_jfile_scan sc;
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.corrupt + sc.torn_bytes, 0);
    assert_got(4, -1);

    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    snap = ju_rec_snapshot(1);
    ju_put(c->jf, &snap, NULL);
    r = file_rec(0, 1000);
    ju_put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
    assert_false(ju_exists(tmp));
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_got(1, -1);
}

/* A file rotad owns holding, between its own records, a version 1 record (what rota
 * wrote before records carried an identity), one of another instance and one with this
 * instance's id and a MAC made without its secret, each framed with a good checksum: the
 * version 1 record is read (the file vouches for it) and counted, the two others are
 * counted and never passed on, and nothing is taken for damage. */
static void test_journal_file_takes_only_its_instances_records(void **state)
{
    struct ju_ctx *c = *state;
    char err[256] = "";
    assert_int_equal(rota_jfile_open(c->path, ROTA_FSYNC_ALWAYS, 0, &c->jf, err, sizeof(err)),
                     0);
    assert_int_equal(rota_jfile_snapshot_begin(c->jf), 0);
    struct rota_jrec r = ju_rec_snapshot(0);
    ju_put(c->jf, &r, NULL);
    uint8_t v2[ROTA_JREC_MAX], v1[ROTA_JREC_MAX];
    r = file_rec(0, 1000);
    ju_put(c->jf, &r, NULL);
    r = file_rec(1, 1000);
    assert_int_equal(rota_jfile_put(c->jf, v1, ju_v1_of(v2, ju_enc(&r, v2), v1)), 0);
    r = file_rec(2, 1000);
    size_t len = rota_jrec_encode(&r, &ju_other_key, v2, sizeof(v2));
    assert_int_equal(rota_jfile_put(c->jf, v2, len), 0);
    struct rota_jkey forger = ju_other_key;
    memcpy(forger.id, ju_key.id, ROTA_JID_LEN);
    r = file_rec(3, 1000);
    len = rota_jrec_encode(&r, &forger, v2, sizeof(v2));
    assert_int_equal(rota_jfile_put(c->jf, v2, len), 0);
    r = file_rec(4, 1000);
    ju_put(c->jf, &r, NULL);
    assert_int_equal(rota_jfile_snapshot_end(c->jf), 0);
    rota_jfile_close(c->jf);
    c->jf = NULL;

    struct rota_jfile_scan sc;
    assert_int_equal(ju_read_journal(c->path, &sc, err, sizeof(err)), 0);
    assert_int_equal(sc.records, 4); /* SNAPSHOT, 1000, 1001 (version 1), 1004 */
    assert_int_equal(ju_got.n, 4);
    assert_int_equal(ju_got.id[1], 1000);
    assert_int_equal(ju_got.id[2], 1001);
    assert_int_equal(ju_got.id[3], 1004);
    assert_int_equal(sc.v1, 1);
    assert_int_equal(sc.foreign, 1);
    assert_memory_equal(sc.foreign_id, ju_other_key.id, ROTA_JID_LEN);
    assert_int_equal(sc.forged, 1);
    assert_int_equal(sc.corrupt, 0);
    assert_int_equal(sc.torn_bytes, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, ju_setup, ju_teardown)
    const struct CMUnitTest tests[] = {
        T(test_journal_file_reads_back_what_was_written),
        T(test_journal_file_callback_stops_the_walk),
        T(test_journal_file_torn_tail_is_cut),
        T(test_journal_file_corrupt_record_is_skipped_alone),
        T(test_journal_file_refuses_what_is_not_a_journal),
        T(test_journal_file_short_foreign_file_is_not_a_journal),
        T(test_journal_file_every_fsync_policy_writes_a_readable_file),
        T(test_journal_file_snapshot_replaces_the_file),
        T(test_journal_file_failed_snapshot_keeps_the_journal),
        T(test_journal_file_takes_only_its_instances_records),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
