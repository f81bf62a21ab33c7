/* fuzz_journal: journal records and files as a damaged disk, a newer rota or a writer of
 * Redis may leave them. Every input is (a) a record, read as from Redis and as from the
 * file, and again "sealed": taken as a record of the target's instance without its MAC,
 * which the target appends, so the body reader is fuzzed behind a good MAC. Each decodes
 * to one whose encoding is canonical (it encodes, decodes and encodes to the same bytes,
 * never longer than the input but for a version 1 record's id and MAC), or is refused
 * with a message and one of the documented codes; (b) the body of a journal file after
 * a valid header: reading it never fails, passes on what it counts, and its counts of bad
 * and torn bytes stay within the file, a problem reported exactly when there was one; (c)
 * records cut at 0xc1 (a byte msgpack never uses), each framed with a good checksum as
 * it is and sealed: every frame is read, and passed on exactly when it decodes, counted
 * as another instance's or forged exactly when the decoder says so. Seeds: version 2
 * records of the instance below without their MAC, and version 1 records (tests/fuzz/run). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jfile.h"
#include "jrecord.h"
#include "siphash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)
#define SEAL      (2 + ROTA_JMAC_LEN) /* c4 10 and the MAC */

static const struct rota_jkey key = {.id = "fuzz-instance-id", .secret = "fuzz-secret-key"};

/* "p" of "n" bytes with this instance's MAC appended, into "out" (n + SEAL bytes). */
static void seal(const uint8_t *p, size_t n, uint8_t *out)
{
    memcpy(out, p, n);
    out[n] = 0xc4;
    out[n + 1] = ROTA_JMAC_LEN;
    rota_siphash(key.secret, p, n, out + n + 2, ROTA_JMAC_LEN);
}

/* (a), one way of reading */
static void record_as(const uint8_t *data, size_t size, unsigned flags)
{
    struct rota_jrec r, back;
    char err[200] = "";
    int rc = rota_jrec_decode(data, size, &key, flags, &r, err, sizeof(err));
    if (rc != rota_jrec_decode(data, size, &key, flags, &back, NULL, 0))
        abort(); /* the answer does not depend on wanting a message */
    if (rc) {
        if ((rc != -EINVAL && rc != -ENOTSUP && rc != -EXDEV && rc != -EBADMSG &&
             rc != -EPERM) ||
            !err[0])
            abort(); /* a refusal always says why, with a documented code */
        if (rc == -EPERM && (flags & ROTA_JREC_FROM_FILE))
            abort(); /* the file may hold version 1 */
        return;
    }
    if (r.version == 1 && !(flags & ROTA_JREC_FROM_FILE))
        abort();
    uint8_t one[ROTA_JREC_MAX], two[ROTA_JREC_MAX];
    size_t n1 = rota_jrec_encode(&r, &key, one, sizeof(one));
    if (n1 == 0 || n1 > size + (r.version == 1 ? 2 + ROTA_JID_LEN + SEAL : 0))
        abort();
    if (rota_jrec_decode(one, n1, &key, 0, &back, err, sizeof(err)) != 0)
        abort();
    size_t n2 = rota_jrec_encode(&back, &key, two, sizeof(two));
    if (n2 != n1 || memcmp(one, two, n1) != 0)
        abort();
}

/* (a) */
static void record(const uint8_t *data, size_t size)
{
    static uint8_t sealed[MAX_INPUT + SEAL];
    record_as(data, size, 0);
    record_as(data, size, ROTA_JREC_FROM_FILE);
    seal(data, size, sealed);
    record_as(sealed, size + SEAL, 0);
}

static int journal_fd = -1;
static char journal_path[64];

static void file_body(const uint8_t *hdr_body, size_t len)
{
    if (ftruncate(journal_fd, 0) != 0 || pwrite(journal_fd, hdr_body, len, 0) != (ssize_t)len)
        abort();
}

struct counts {
    uint64_t records;
};

static int count(void *arg, const struct rota_jrec *r)
{
    struct counts *c = arg;
    if (r->type < ROTA_JREC_ACCOUNT || r->type > ROTA_JREC_SNAPSHOT)
        abort();
    c->records++;
    return 0;
}

/* Read the file and check what the scan says against what was passed on. */
static void read_back(size_t size, struct rota_jfile_scan *sc, struct counts *c)
{
    char err[256] = "";
    memset(c, 0, sizeof(*c));
    int rc = rota_jfile_read_fd(journal_fd, journal_path, &key, count, c, sc, err, sizeof(err));
    if (rc != 0 || sc->records != c->records || sc->size != size)
        abort();
    uint64_t body = size - ROTA_JFILE_HEADER;
    if (sc->torn_bytes > body || sc->corrupt_bytes > body - sc->torn_bytes ||
        sc->records * (ROTA_JFILE_FRAME + 1) > body || sc->snapshots > sc->records)
        abort();
    if (!sc->first_problem[0] != !(sc->corrupt || sc->torn_bytes))
        abort(); /* a problem is reported exactly when there was one */
    if (sc->corrupt > sc->corrupt_bytes)
        abort();
}

static const uint8_t header[ROTA_JFILE_HEADER] = {'R', 'O', 'T', 'A', 'J', 'N', 'L', '1', 1};

/* (b) */
static void raw_body(const uint8_t *data, size_t size)
{
    static uint8_t buf[ROTA_JFILE_HEADER + MAX_INPUT];
    memcpy(buf, header, sizeof(header));
    memcpy(buf + sizeof(header), data, size);
    file_body(buf, sizeof(header) + size);
    struct rota_jfile_scan sc;
    struct counts c;
    read_back(sizeof(header) + size, &sc, &c);
}

/* What reading frames as from the file gives, frame by frame. */
struct tally {
    uint64_t frames, good, foreign, forged, snapshots;
};

/* Frame "p" of "n" bytes at "buf" + *len, and tally it. */
static void frame_one(uint8_t *buf, size_t *len, const uint8_t *p, size_t n, struct tally *t)
{
    if (n == 0 || n > ROTA_JREC_MAX)
        return;
    struct rota_jrec r;
    rota_jfile_frame(buf + *len, p, (uint32_t)n);
    *len += ROTA_JFILE_FRAME + n;
    t->frames++;
    int rc = rota_jrec_decode(p, n, &key, ROTA_JREC_FROM_FILE, &r, NULL, 0);
    t->good += rc == 0;
    t->snapshots += rc == 0 && r.type == ROTA_JREC_SNAPSHOT;
    t->foreign += rc == -EXDEV;
    t->forged += rc == -EBADMSG;
}

/* (c) */
static void framed(const uint8_t *data, size_t size)
{
    /* a piece of n >= 1 bytes takes n + 1 of the input and makes two frames of at most
     * 2n + 2 * 12 + 18 bytes: at most 22 bytes per input byte */
    static uint8_t buf[ROTA_JFILE_HEADER + 22 * MAX_INPUT];
    static uint8_t sealed[ROTA_JREC_MAX + SEAL];
    memcpy(buf, header, sizeof(header));
    size_t len = sizeof(header);
    struct tally t = {0};
    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        const uint8_t *cut = memchr(p, 0xc1, (size_t)(end - p));
        size_t n = (size_t)((cut ? cut : end) - p);
        frame_one(buf, &len, p, n, &t);
        if (n > 0 && n + SEAL <= ROTA_JREC_MAX) {
            seal(p, n, sealed);
            frame_one(buf, &len, sealed, n + SEAL, &t);
        }
        p += n + 1;
    }
    file_body(buf, len);
    struct rota_jfile_scan sc;
    struct counts c;
    read_back(len, &sc, &c);
    if (sc.records != t.good || sc.foreign != t.foreign || sc.forged != t.forged ||
        sc.corrupt != t.frames - t.good - t.foreign - t.forged || sc.torn_bytes != 0 ||
        sc.snapshots != t.snapshots)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    if (journal_fd < 0) {
        journal_fd = memfd_create("fuzz_journal", MFD_CLOEXEC);
        if (journal_fd < 0)
            abort();
        snprintf(journal_path, sizeof(journal_path), "/proc/self/fd/%d", journal_fd);
    }
    record(data, size);
    raw_body(data, size);
    framed(data, size);
    return 0;
}
