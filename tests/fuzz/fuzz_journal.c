/* fuzz_journal: journal records and files as a damaged disk or a newer rota may leave
 * them. Every input is (a) a record: it decodes to one whose encoding is canonical (it
 * encodes, decodes and encodes to the same bytes, never longer than the input), or is
 * refused with a message; (b) the body of a journal file after a valid header: reading
 * it never fails, passes on what it counts, and its counts of bad and torn bytes stay
 * within the file, a problem reported exactly when there was one; (c) records cut at 0xc1 (a
 * byte msgpack never uses), each framed with a good checksum: every frame is read, and passed
 * on exactly when it decodes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jfile.h"
#include "jrecord.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)

/* (a) */
static void record(const uint8_t *data, size_t size)
{
    struct rota_jrec r, back;
    char err[200] = "";
    int rc = rota_jrec_decode(data, size, &r, err, sizeof(err));
    if (rc != rota_jrec_decode(data, size, &back, NULL, 0))
        abort(); /* the answer does not depend on wanting a message */
    if (rc) {
        if ((rc != -EINVAL && rc != -ENOTSUP) || !err[0])
            abort(); /* a refusal always says why */
        return;
    }
    uint8_t one[ROTA_JREC_MAX], two[ROTA_JREC_MAX];
    size_t n1 = rota_jrec_encode(&r, one, sizeof(one));
    if (n1 == 0 || n1 > size)
        abort();
    if (rota_jrec_decode(one, n1, &back, err, sizeof(err)) != 0)
        abort();
    size_t n2 = rota_jrec_encode(&back, two, sizeof(two));
    if (n2 != n1 || memcmp(one, two, n1) != 0)
        abort();
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
    int rc = rota_jfile_read_fd(journal_fd, journal_path, count, c, sc, err, sizeof(err));
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

/* (c) */
static void framed(const uint8_t *data, size_t size)
{
    /* a frame costs 12 bytes more than its piece: at most 13 bytes per input byte */
    static uint8_t buf[ROTA_JFILE_HEADER + (ROTA_JFILE_FRAME + 1) * MAX_INPUT];
    memcpy(buf, header, sizeof(header));
    size_t len = sizeof(header);
    uint64_t frames = 0, good = 0, snapshots = 0;
    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        const uint8_t *cut = memchr(p, 0xc1, (size_t)(end - p));
        size_t n = (size_t)((cut ? cut : end) - p);
        if (n > 0 && n <= ROTA_JREC_MAX) {
            struct rota_jrec r;
            rota_jfile_frame(buf + len, p, (uint32_t)n);
            len += ROTA_JFILE_FRAME + n;
            frames++;
            if (rota_jrec_decode(p, n, &r, NULL, 0) == 0) {
                good++;
                snapshots += r.type == ROTA_JREC_SNAPSHOT;
            }
        }
        p += n + 1;
    }
    file_body(buf, len);
    struct rota_jfile_scan sc;
    struct counts c;
    read_back(len, &sc, &c);
    if (sc.records != good || sc.corrupt != frames - good || sc.torn_bytes != 0 ||
        sc.snapshots != snapshots)
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
