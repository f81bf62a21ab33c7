/*
 * journal_util.h - what the journal's tests (test_jrecord, test_jfile, test_journal)
 * share: a temporary directory per test and the tables and journal a test leaves open,
 * torn down after it; the record codec run on exact allocations; records put to a file,
 * a file's records read back; whole files read and written. Real files, real shared
 * memory; nothing mocked.
 */
#ifndef ROTA_TEST_JOURNAL_UTIL_H
#define ROTA_TEST_JOURNAL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "fixture.h"
#include "jfile.h"
#include "journal.h"
#include "jrecord.h"

#define MS     ROTA_NS_PER_MS
#define S      ROTA_NS_PER_S
#define DAY_NS (86400 * (int64_t)ROTA_NS_PER_S)

/* A test's state, "*state" of a test run with ju_setup and ju_teardown. */
struct ju_ctx {
    char dir[64];
    char path[128];    /* <dir>/journal */
    struct fx f, g, h; /* the table, and fresh ones to restore into */
    struct rota_journal *j;
    struct rota_jfile *jf;
};

/* A fresh temporary directory: a zeroed ju_ctx with "dir" and "path" set. */
int ju_setup(void **state);

/* Stop the journal, close the file and the tables (removing their segments), and remove
 * the directory with everything in it. */
int ju_teardown(void **state);

/* Assert that two breakers, or two account records, hold the same values. */
void ju_assert_breaker_eq(const struct rota_jbreaker *a, const struct rota_jbreaker *b);
void ju_assert_account_eq(const struct rota_jaccount *a, const struct rota_jaccount *b);

/* A SNAPSHOT record announcing "count" records (at INT64_MIN, or 0 when "count" is 0). */
struct rota_jrec ju_rec_snapshot(uint32_t count);

/* The tests' instance: a fixed identity and secret (and another instance's). */
extern const struct rota_jkey ju_key, ju_other_key;

/* Encode "r" as ju_key's into "buf" (ROTA_JREC_MAX bytes), asserting that it fits;
 * returns its length. */
size_t ju_enc(const struct rota_jrec *r, uint8_t *buf);

/* Decode, as ju_key's and with "flags", from an allocation of exactly "len" bytes, so a
 * read past the end is caught by the address sanitizer. Returns what rota_jrec_decode
 * does, "err" emptied first. ju_dec passes no flags (a record from Redis). */
int ju_dec_flags(const void *bytes, size_t len, unsigned flags, struct rota_jrec *r, char *err,
                 size_t n);
int ju_dec(const void *bytes, size_t len, struct rota_jrec *r, char *err, size_t n);

/* The version 1 record (as rota wrote before records carried an identity) holding what
 * the version 2 record "v2" of "len" bytes holds, into "out" (ROTA_JREC_MAX bytes); its
 * length. */
size_t ju_v1_of(const uint8_t *v2, size_t len, uint8_t *out);

/* Encode "r" and put it to "f", asserting success; its length in "*len" unless NULL. */
void ju_put(struct rota_jfile *f, const struct rota_jrec *r, size_t *len);

/* What a read passed on, in order. */
struct ju_read {
    uint64_t n;
    uint32_t type[1024];
    uint64_t id[1024]; /* account id, or the SNAPSHOT's count */
};
extern struct ju_read ju_got;

/* rota_jfile_read of "path" into ju_got (emptied first), "err" emptied first. */
int ju_read_journal(const char *path, struct rota_jfile_scan *sc, char *err, size_t n);

/* The whole of file "path", malloc'd (free it), its size in "*size". */
uint8_t *ju_slurp(const char *path, size_t *size);

/* Replace file "path" with the "size" bytes at "p". */
void ju_spit(const char *path, const void *p, size_t size);

bool ju_exists(const char *path);

#endif
