/* test_journal_file: rotad's file journal end to end, with no Redis: the state written
 * to the file and restored from it after a stop, a kill -9, a torn tail or a damaged
 * record; the file kept within max_bytes under load; a path holding something that is not
 * a journal refused and left as it was. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <glob.h>

#include "jfile.h"
#include "journal_it.h"
#include "jrecord.h"
#include "rotad_harness.h"

/* ---- reading the file ---- */

static size_t slurp(const char *path, unsigned char **p)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *p = malloc((size_t)n + 1);
    assert_non_null(*p);
    assert_int_equal(fread(*p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return (size_t)n;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The whole frames of a journal file, in order: their offsets and payload lengths. */
struct frame {
    size_t off;
    uint32_t len;
};
static int frames(const unsigned char *p, size_t n, struct frame *f, int max)
{
    int k = 0;
    assert_true(n >= ROTA_JFILE_HEADER && memcmp(p, "ROTAJNL1", 8) == 0);
    for (size_t off = ROTA_JFILE_HEADER; off + ROTA_JFILE_FRAME <= n && k < max;) {
        assert_memory_equal(p + off, "ROTJ", 4);
        uint32_t len = le32(p + off + 4);
        assert_true(off + ROTA_JFILE_FRAME + len <= n);
        f[k++] = (struct frame){off, len};
        off += ROTA_JFILE_FRAME + len;
    }
    return k;
}

static int count_rec(void *arg, const struct rota_jrec *r)
{
    (void)r;
    ++*(int *)arg;
    return 0;
}

/* The file reads whole: no torn tail, no damage, some records. */
static void assert_file_clean(const struct it *t, const char *path)
{
    struct rota_jfile_scan s;
    char err[256] = "";
    int n = 0;
    struct rota_jkey key;
    jit_identity(t, &key);
    assert_int_equal(rota_jfile_read(path, &key, count_rec, &n, &s, err, sizeof(err)), 0);
    if (s.torn_bytes || s.corrupt || s.first_problem[0])
        fail_msg("%s: %s", path, s.first_problem);
    assert_int_equal(s.foreign + s.forged + s.v1, 0);
    assert_true(n > 0);
}

/* ---- the cases ---- */

/* The file alone, the default journal: a stop, the table gone, everything back. */
static void test_journal_file_restores_after_stop(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jfile");
    jit_config(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    json_t *d = jit_status(&t);
    assert_string_equal(jit_str(d, "state_origin"),
                        "cold start: nothing journaled yet; quotas come from the probes");
    json_decref(d);
    time_t since = jit_make_state(&t);
    jit_wait_journaled(&t, JIT_FILE_ONLY);
    json_t *j = jit_ctl_json(&t, "journal");
    assert_true(jit_written_since(j, "file.last_write", since));
    assert_false(json_is_true(jit_at(j, "redis.enabled")));
    char path[256];
    jit_journal_path(&t, path, sizeof(path));
    assert_string_equal(jit_str(j, "file.path"), path);
    assert_true(jit_num(j, "changes") > 0 && jit_num(j, "file.records") > 0);
    json_decref(j);
    json_t *before = jit_ctl_json(&t, "accounts");
    uint64_t t0 = jit_mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "file");
    assert_true(it_log_has(&t, "journal: restored from the journal file"));
    json_t *after = jit_ctl_json(&t, "accounts");
    jit_assert_restored(before, after, jit_mono_ms() - t0, NULL);
    assert_true(jit_num(jit_account(after, "a0"), "selections") >
                0); /* not a trivial equality */
    json_decref(before);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* Kill -9: no last pass, what the journal had written comes back. */
static void test_journal_survives_kill9(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jkill");
    jit_config(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    time_t since = jit_make_state(&t);
    jit_wait_journaled(&t, JIT_FILE_ONLY);
    json_t *j = jit_ctl_json(&t, "journal");
    assert_true(jit_written_since(j, "file.last_write", since));
    json_decref(j);
    json_t *before = jit_ctl_json(&t, "accounts");
    uint64_t t0 = jit_mono_ms();
    assert_int_equal(it_stop(&t, SIGKILL), 128 + SIGKILL);
    assert_false(it_log_has(&t, "stopped;")); /* it really had no chance to finish */
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "file");
    json_t *after = jit_ctl_json(&t, "accounts");
    jit_assert_restored(before, after, jit_mono_ms() - t0, NULL);
    json_decref(before);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* A torn tail (a write cut by a crash) is cut, the rest restored, and the next file
 * is whole. */
static void test_journal_torn_tail_is_cut(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jtear"); /* not "torn": the log names the instance */
    jit_config(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    jit_make_state(&t);
    jit_wait_journaled(&t, JIT_FILE_ONLY);
    json_t *before = jit_ctl_json(&t, "accounts");
    uint64_t t0 = jit_mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    char path[256];
    jit_journal_path(&t, path, sizeof(path));
    unsigned char *p;
    size_t n = slurp(path, &p);
    struct frame f[4096];
    int k = frames(p, n, f, 4096);
    assert_true(k > 10);
    assert_true(f[k - 1].len > 8);
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fwrite(p + f[k - 1].off, 1, 20, fp), 20); /* its first 20 bytes */
    fclose(fp);
    free(p);
    assert_false(it_log_has(&t, "torn"));
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    assert_true(it_log_has(&t, "torn tail"));
    jit_assert_restored_from(&t, "file");
    json_t *after = jit_ctl_json(&t, "accounts");
    jit_assert_restored(before, after, jit_mono_ms() - t0, NULL);
    json_decref(after);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_file_clean(&t, path);
    /* Again, with a log of its own: nothing torn any more. */
    snprintf(t.log, sizeof(t.log), "%s/rotad-2.log", t.dir);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "file");
    assert_false(it_log_has(&t, "torn"));
    after = jit_ctl_json(&t, "accounts");
    jit_assert_restored(before, after, jit_mono_ms() - t0, NULL);
    json_decref(after);
    json_decref(before);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* A damaged record in the middle is skipped and reported with its offset, never
 * half replayed; the rest is restored and the damaged file is kept. */
static void test_journal_damaged_record_is_skipped(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jdamage");
    jit_config(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    jit_make_state(&t);
    jit_wait_journaled(&t, JIT_FILE_ONLY);
    json_t *before = jit_ctl_json(&t, "accounts");
    uint64_t a1 = jit_account_id(jit_account(before, "a1"));
    uint64_t t0 = jit_mono_ms();
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    /* The damage: a1's last record, the one with its cooldown (a2's disable follows). */
    char path[256], damaged[300];
    jit_journal_path(&t, path, sizeof(path));
    unsigned char *p;
    size_t n = slurp(path, &p);
    struct frame f[4096];
    int k = frames(p, n, f, 4096), hit = -1;
    struct rota_jkey key;
    jit_identity(&t, &key);
    for (int i = 0; i < k; i++) {
        struct rota_jrec r;
        assert_int_equal(
            rota_jrec_decode(p + f[i].off + ROTA_JFILE_FRAME, f[i].len, &key, 0, &r, NULL, 0),
            0);
        if (r.type == ROTA_JREC_ACCOUNT && r.u.acc.id == a1)
            hit = i;
    }
    assert_true(hit >= 0 && hit < k - 1);
    struct rota_jrec r;
    rota_jrec_decode(p + f[hit].off + ROTA_JFILE_FRAME, f[hit].len, &key, 0, &r, NULL, 0);
    assert_true(r.u.acc.cooldown_until != 0);
    size_t flip = f[hit].off + ROTA_JFILE_FRAME + f[hit].len / 2;
    p[flip] ^= 0x5a;
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, (long)flip, SEEK_SET);
    assert_int_equal(fwrite(p + flip, 1, 1, fp), 1);
    fclose(fp);

    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    char msg[96];
    snprintf(msg, sizeof(msg), "offset %zu: a checksum mismatch", f[hit].off);
    assert_true(it_log_has(&t, msg));
    assert_true(it_log_has(&t, "1 damaged regions"));
    assert_true(it_log_has(&t, "the damaged file is kept as"));
    jit_assert_restored_from(&t, "file");
    json_t *after = jit_ctl_json(&t, "accounts");
    jit_assert_restored(before, after, jit_mono_ms() - t0, "a1");
    /* a1: its record before the damaged one stands, so no cooldown, the same usage. */
    assert_int_equal(jit_num(jit_account(after, "a1"), "cooldown_left_ms"), 0);
    assert_int_equal(jit_num(jit_account(after, "a1"), "selections"),
                     jit_num(jit_account(before, "a1"), "selections"));
    json_decref(after);
    json_decref(before);
    /* The damaged file is kept as it was, as <journal>.damaged.<time>. */
    char pat[300];
    snprintf(pat, sizeof(pat), "%s.damaged.*", path);
    glob_t g;
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, 1);
    snprintf(damaged, sizeof(damaged), "%s", g.gl_pathv[0]);
    globfree(&g);
    unsigned char *q;
    assert_int_equal(slurp(damaged, &q), n);
    assert_memory_equal(p, q, n);
    free(q);
    free(p);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_file_clean(&t, path);
    it_cleanup(&t);
}

/* The file stays within max_bytes under load: snapshots rewrite it. */
static void test_journal_file_stays_bounded(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jbound");
    jit_config(&t, 64, "journal:\n  file: {max_bytes: 64KiB, snapshot_every: 1h}\n");
    assert_int_equal(it_start(&t), 0);
    char path[256];
    jit_journal_path(&t, path, sizeof(path));
    struct it_load l;
    it_load_start(&l, t.instance, 2);
    off_t biggest = 0;
    for (uint64_t t0 = jit_mono_ms(); jit_mono_ms() - t0 < 8000;) {
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > biggest)
            biggest = st.st_size;
        jit_sleep_ms(100);
    }
    it_load_stop(&l);
    json_t *j = jit_ctl_json(&t, "journal");
    if (biggest > 64 * 1024)
        fail_msg("the journal reached %lld bytes, max_bytes is 65536", (long long)biggest);
    assert_true(biggest > 0);
    assert_int_equal(jit_num(j, "file.max_bytes"), 64 * 1024);
    assert_true(jit_num(j, "file.bytes") <= 64 * 1024);
    if (jit_num(j, "file.snapshots") <= 1)
        fail_msg("no snapshot kept the file bounded: %s", json_dumps(j, JSON_COMPACT));
    assert_int_equal(jit_num(j, "file.errors"), 0);
    json_decref(j);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    assert_file_clean(&t, path);
    it_cleanup(&t);
}

/* A file that is not a journal at the configured path: rotad refuses to start, names
 * the path, and leaves the file as it was. */
static void test_journal_refuses_a_file_that_is_not_a_journal(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "jnot");
    char path[256], journal[512];
    snprintf(path, sizeof(path), "%s/notes.txt", t.dir);
    const char text[] = "Not a journal: somebody's notes, which must survive.\n";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct stat st0, st1;
    assert_int_equal(stat(path, &st0), 0);
    snprintf(journal, sizeof(journal), "journal:\n  file: {path: %s}\n", path);
    jit_config(&t, 4, journal);
    jit_sleep_ms(20); /* a write would move the mtime */
    assert_int_equal(it_start(&t), 1);
    char msg[300];
    snprintf(msg, sizeof(msg), "%s: not a rota journal", path);
    assert_true(it_log_has(&t, msg));
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(st1.st_size, sizeof(text) - 1);
    assert_true(st1.st_mtim.tv_sec == st0.st_mtim.tv_sec &&
                st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec);
    unsigned char *p;
    assert_int_equal(slurp(path, &p), sizeof(text) - 1);
    assert_memory_equal(p, text, sizeof(text) - 1);
    free(p);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);
    it_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_journal_file_restores_after_stop, it_teardown),
        cmocka_unit_test_teardown(test_journal_survives_kill9, it_teardown),
        cmocka_unit_test_teardown(test_journal_torn_tail_is_cut, it_teardown),
        cmocka_unit_test_teardown(test_journal_damaged_record_is_skipped, it_teardown),
        cmocka_unit_test_teardown(test_journal_file_stays_bounded, it_teardown),
        cmocka_unit_test_teardown(test_journal_refuses_a_file_that_is_not_a_journal,
                                  it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
