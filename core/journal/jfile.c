/*
 * jfile.c - the journal file: reading with tear and corruption detection, writing
 * through io_uring. The format is described in jfile.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "jfile.h"

static const char file_magic[8] = {'R', 'O', 'T', 'A', 'J', 'N', 'L', '1'};
#define FORMAT_VERSION 1u
#define SYNC_WORD      0x4a544f52u /* "ROTJ" little-endian */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void rota_jfile_frame(void *buf, const void *rec, uint32_t len)
{
    uint8_t *b = buf;
    put32(b, SYNC_WORD);
    put32(b + 4, len);
    memcpy(b + ROTA_JFILE_FRAME, rec, len);
    put32(b + 8, rota_crc32c(rota_crc32c(0, b + 4, 4), rec, len));
}

/* ---- reading ---- */

/* Does a whole, checksummed frame start at "off"? Its payload length in *len. */
static bool frame_ok(const uint8_t *p, size_t size, size_t off, uint32_t *len)
{
    if (size - off < ROTA_JFILE_FRAME || get32(p + off) != SYNC_WORD)
        return false;
    *len = get32(p + off + 4);
    if (*len == 0 || *len > ROTA_JREC_MAX || *len > size - off - ROTA_JFILE_FRAME)
        return false;
    uint32_t crc =
        rota_crc32c(rota_crc32c(0, p + off + 4, 4), p + off + ROTA_JFILE_FRAME, *len);
    return crc == get32(p + off + 8);
}

/* The next offset after "off" where a good frame starts, or "size". */
static size_t resync(const uint8_t *p, size_t size, size_t off)
{
    static const uint8_t sync[4] = {'R', 'O', 'T', 'J'};
    uint32_t len;
    for (size_t at = off + 1; at + ROTA_JFILE_FRAME <= size; at++) {
        const uint8_t *hit = memmem(p + at, size - at, sync, 4);
        if (!hit)
            break;
        at = (size_t)(hit - p);
        if (frame_ok(p, size, at, &len))
            return at;
    }
    return size;
}

/* Why the frame at "off" is bad, for the report. */
static const char *frame_problem(const uint8_t *p, size_t size, size_t off)
{
    if (size - off < ROTA_JFILE_FRAME)
        return "a frame header cut short";
    if (get32(p + off) != SYNC_WORD)
        return "no frame starts here";
    uint32_t len = get32(p + off + 4);
    if (len == 0 || len > ROTA_JREC_MAX)
        return "a frame length out of bounds";
    if (len > size - off - ROTA_JFILE_FRAME)
        return "a frame cut short";
    return "a checksum mismatch";
}

static int walk(const uint8_t *p, size_t size, const struct rota_jkey *k,
                int (*fn)(void *, const struct rota_jrec *), void *arg,
                struct rota_jfile_scan *out)
{
    size_t off = ROTA_JFILE_HEADER;
    while (off < size) {
        uint32_t len;
        if (frame_ok(p, size, off, &len)) {
            struct rota_jrec r;
            char why[120];
            int rc = rota_jrec_decode(p + off + ROTA_JFILE_FRAME, len, k, ROTA_JREC_FROM_FILE,
                                      &r, why, sizeof(why));
            if (rc == -EXDEV) {
                /* whole, but not this instance's: refused, and the caller says so */
                if (!out->foreign++)
                    memcpy(out->foreign_id, r.id, ROTA_JID_LEN);
            } else if (rc == -EBADMSG) {
                out->forged++;
            } else if (rc) {
                /* checksummed but not understood: a record from a newer rota, or a bug */
                out->corrupt++;
                out->corrupt_bytes += ROTA_JFILE_FRAME + len;
                if (!out->first_problem[0])
                    snprintf(out->first_problem, sizeof(out->first_problem),
                             "offset %zu: a record that does not decode (%s)", off, why);
            } else {
                out->records++;
                out->v1 += r.version == 1;
                out->snapshots += r.type == ROTA_JREC_SNAPSHOT;
                if (r.at > out->newest_at)
                    out->newest_at = r.at;
                if ((rc = fn(arg, &r)))
                    return rc;
            }
            off += ROTA_JFILE_FRAME + len;
            continue;
        }
        size_t next = resync(p, size, off);
        if (!out->first_problem[0])
            snprintf(out->first_problem, sizeof(out->first_problem), "offset %zu: %s%s", off,
                     frame_problem(p, size, off),
                     next == size ? " with nothing whole after it (a torn tail)" : "");
        if (next == size) {
            out->torn_bytes = size - off;
            break;
        }
        out->corrupt++;
        out->corrupt_bytes += next - off;
        off = next;
    }
    return 0;
}

/* Open the directory holding "path" (its last component in *name). The directory must be
 * rotad's: a real directory owned by the effective uid and writable by no one else but
 * perhaps its group (rotad's state-dir rule, tools/rotad/statedir.c, says when a group
 * may write). The descriptor, or -errno with "err" saying why. */
static int open_dir(const char *path, const char **name, char *err, size_t n)
{
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        return snprintf(err, n, "%s: path too long", path), -ENAMETOOLONG;
    if (!**name)
        return snprintf(err, n, "%s: names a directory, not a file", path), -EISDIR;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e == ELOOP || e == ENOTDIR)
            return snprintf(err, n,
                            "directory %s of journal %s is not a directory (a "
                            "symlink?): refusing",
                            dir, path),
                   -ELOOP;
        return snprintf(err, n, "directory %s of journal %s: %s", dir, path, strerror(e)), -e;
    }
    const char *why = NULL;
    char buf[64];
    if (st.st_uid != geteuid()) {
        snprintf(buf, sizeof(buf), "is owned by uid %u, not %u", (unsigned)st.st_uid,
                 (unsigned)geteuid());
        why = buf;
    } else if (st.st_mode & S_IWOTH) {
        why = "is writable by others";
    }
    if (why) {
        close(fd);
        snprintf(err, n, "directory %s of journal %s %s: refusing", dir, path, why);
        return -EPERM;
    }
    return fd;
}

/* Is the open file "fd" one rotad wrote: a regular file owned by the effective uid that
 * no one else may write? 0, or -EPERM with "err" saying why. */
static int check_own(int fd, const char *path, char *err, size_t n)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return snprintf(err, n, "%s: %s", path, strerror(errno)), -errno;
    char why[64] = "";
    if (!S_ISREG(st.st_mode))
        snprintf(why, sizeof(why), "is not a regular file");
    else if (st.st_uid != geteuid())
        snprintf(why, sizeof(why), "is owned by uid %u, not %u", (unsigned)st.st_uid,
                 (unsigned)geteuid());
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        snprintf(why, sizeof(why), "is writable by %s",
                 st.st_mode & S_IWOTH ? "others" : "its group");
    if (!why[0])
        return 0;
    snprintf(err, n,
             "journal %s %s: refusing to restore from a file rotad did not write; move it "
             "away (rotad then starts without it) or fix its owner and mode if it is rotad's",
             path, why);
    return -EPERM;
}

int rota_jfile_read(const char *path, const struct rota_jkey *k,
                    int (*fn)(void *arg, const struct rota_jrec *r), void *arg,
                    struct rota_jfile_scan *out, char *err, size_t n)
{
    memset(out, 0, sizeof(*out));
    const char *name;
    int dfd = open_dir(path, &name, err, n);
    if (dfd < 0)
        return dfd == -ENOENT ? (err[0] = 0, -ENOENT) : dfd;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int e = errno;
    close(dfd);
    if (fd < 0) {
        if (e == ELOOP)
            return snprintf(err, n, "journal %s is a symlink: refusing to follow it", path),
                   -ELOOP;
        if (e != ENOENT)
            snprintf(err, n, "%s: %s", path, strerror(e));
        return -e;
    }
    int rc = check_own(fd, path, err, n);
    if (rc == 0)
        rc = rota_jfile_read_fd(fd, path, k, fn, arg, out, err, n);
    close(fd);
    return rc;
}

int rota_jfile_read_fd(int fd, const char *path, const struct rota_jkey *k,
                       int (*fn)(void *arg, const struct rota_jrec *r), void *arg,
                       struct rota_jfile_scan *out, char *err, size_t n)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        return snprintf(err, n, "%s: %s", path, strerror(e)), -e;
    }
    out->size = (uint64_t)st.st_size;
    if (st.st_size == 0) /* created, never written: a crash before the header */
        return 0;
    if ((size_t)st.st_size < ROTA_JFILE_HEADER) {
        /* a header cut short by a crash, or a small file that is something else */
        char head[ROTA_JFILE_HEADER];
        ssize_t got = pread(fd, head, sizeof(head), 0);
        size_t cmp = got > 8 ? 8 : got > 0 ? (size_t)got : 0;
        if (got != st.st_size || memcmp(head, file_magic, cmp) != 0) {
            snprintf(err, n,
                     "%s: not a rota journal (no ROTAJNL1 header); move it away or set "
                     "journal.file.path",
                     path);
            return -EINVAL;
        }
        out->torn_bytes = (uint64_t)st.st_size;
        snprintf(out->first_problem, sizeof(out->first_problem),
                 "offset 0: a file header cut short (a torn tail)");
        return 0;
    }
    uint8_t *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        return snprintf(err, n, "%s: mmap: %s", path, strerror(e)), -e;
    }
    int rc = 0;
    if (memcmp(p, file_magic, 8) != 0) {
        snprintf(err, n,
                 "%s: not a rota journal (no ROTAJNL1 header); move it away or set "
                 "journal.file.path",
                 path);
        rc = -EINVAL;
    } else if (get32(p + 8) > FORMAT_VERSION) {
        snprintf(err, n, "%s: journal format %u is newer than this rota reads (%u)", path,
                 get32(p + 8), FORMAT_VERSION);
        rc = -EINVAL;
    } else {
        rc = walk(p, (size_t)st.st_size, k, fn, arg, out);
    }
    munmap(p, (size_t)st.st_size);
    return rc;
}

/* ---- writing ---- */

struct rota_jfile {
    char *path, *tmp; /* for messages */
    int dfd;          /* the directory: every file is opened and renamed relative to it */
    const char *name; /* the journal's name in it (inside "path") */
    char *tmp_name;   /* <name>.tmp */
    enum rota_fsync policy;
    uint64_t interval_ns;
    int fd;           /* the journal, appended to; -1 before the first snapshot */
    int tfd;          /* <path>.tmp while a snapshot is written; -1 otherwise */
    bool in_snapshot; /* between snapshot_begin and snapshot_end */
    uint64_t off;     /* end of the journal */
    uint8_t *buf;     /* framed records waiting */
    size_t len, cap;
    uint64_t dirty; /* bytes written since the last sync */
    uint64_t last_sync_mono;
    struct io_uring ring;
    bool ring_ok; /* false when a reset could not make a new ring */
    struct rota_jfile_stats st;
};

/* Create <name>.tmp afresh in the directory (removing a stale one of rotad's first,
 * never following it): a new file there is never anything but rotad's own. */
static int create_tmp(struct rota_jfile *f)
{
    if (unlinkat(f->dfd, f->tmp_name, 0) < 0 && errno != ENOENT)
        return -errno;
    int fd =
        openat(f->dfd, f->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

/* Can rotad create files in the directory? Found at start rather than at the first
 * snapshot. */
static int try_create(struct rota_jfile *f, char *err, size_t n)
{
    int fd = create_tmp(f);
    if (fd < 0)
        return snprintf(err, n, "journal file %s: cannot create %s: %s", f->path, f->tmp,
                        strerror(-fd)),
               fd;
    close(fd);
    unlinkat(f->dfd, f->tmp_name, 0);
    return 0;
}

int rota_jfile_open(const char *path, enum rota_fsync policy, uint64_t interval_ns,
                    struct rota_jfile **out, char *err, size_t n)
{
    struct rota_jfile *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->fd = f->tfd = f->dfd = -1;
    f->policy = policy;
    f->interval_ns = interval_ns;
    f->path = strdup(path);
    f->cap = 64 * 1024;
    f->buf = malloc(f->cap);
    if (f->path && asprintf(&f->tmp, "%s.tmp", path) < 0)
        f->tmp = NULL;
    int rc = !f->path || !f->tmp || !f->buf ? -ENOMEM : 0;
    if (rc == 0 && (f->dfd = open_dir(f->path, &f->name, err, n)) < 0)
        rc = f->dfd;
    if (rc == 0 && asprintf(&f->tmp_name, "%s.tmp", f->name) < 0) {
        f->tmp_name = NULL;
        rc = -ENOMEM;
    }
    if (rc == 0)
        rc = try_create(f, err, n);
    if (rc == 0 && (rc = io_uring_queue_init(8, &f->ring, 0)))
        snprintf(err, n,
                 "journal %s: io_uring_queue_init: %s (io_uring disabled by a seccomp "
                 "profile or kernel.io_uring_disabled?)",
                 path, strerror(-rc));
    if (rc) {
        if (rc == -ENOMEM)
            snprintf(err, n, "journal %s: out of memory", path);
        if (f->dfd >= 0)
            close(f->dfd);
        free(f->path);
        free(f->tmp);
        free(f->tmp_name);
        free(f->buf);
        free(f);
        return rc;
    }
    f->ring_ok = true;
    *out = f;
    return 0;
}

int rota_jfile_put(struct rota_jfile *f, const void *rec, size_t len)
{
    size_t need = ROTA_JFILE_FRAME + len;
    if (f->cap - f->len < need) {
        size_t cap = f->cap * 2 > f->len + need ? f->cap * 2 : f->len + need;
        uint8_t *b = realloc(f->buf, cap);
        if (!b)
            return -ENOMEM;
        f->buf = b;
        f->cap = cap;
    }
    rota_jfile_frame(f->buf + f->len, rec, (uint32_t)len);
    f->len += need;
    f->st.records++;
    return 0;
}

static void set_error(struct rota_jfile *f, const char *what, int rc)
{
    f->st.errors++;
    snprintf(f->st.last_error, sizeof(f->st.last_error), "%s: %s: %s",
             f->in_snapshot ? f->tmp : f->path, what, strerror(-rc));
}

/* The ring failed in a way that may leave requests queued or unreaped: start a new one,
 * so no later call submits or reaps what belonged to this one. */
static int ring_reset(struct rota_jfile *f, int rc)
{
    io_uring_queue_exit(&f->ring);
    f->ring_ok = io_uring_queue_init(8, &f->ring, 0) == 0;
    return rc;
}

/* Submit what is queued and wait for "want" completions, through interruptions. */
static int ring_submit(struct rota_jfile *f, unsigned want)
{
    int rc;
    do
        rc = io_uring_submit_and_wait(&f->ring, want);
    while (rc == -EINTR);
    return rc < 0 ? rc : 0;
}

#define PIECE (1u << 30) /* at most this much per write request */

/* Write "len" bytes at "off" of "fd" through the ring, with an fdatasync linked after
 * the last piece when "sync". Short writes continue where they stopped. */
static int ring_write(struct rota_jfile *f, int fd, const uint8_t *p, size_t len, uint64_t off,
                      bool sync)
{
    if (!f->ring_ok && !(f->ring_ok = io_uring_queue_init(8, &f->ring, 0) == 0))
        return -EIO; /* tried again at the next write */
    size_t done = 0;
    while (done < len || sync) {
        size_t piece = len - done > PIECE ? PIECE : len - done;
        bool link = sync && done + piece == len; /* the sync follows the last piece */
        struct io_uring_sqe *s = io_uring_get_sqe(&f->ring);
        unsigned want = 0;
        if (piece) {
            io_uring_prep_write(s, fd, p + done, (unsigned)piece, off + done);
            io_uring_sqe_set_data64(s, 1);
            want++;
            if (link) {
                s->flags |= IOSQE_IO_LINK;
                s = io_uring_get_sqe(&f->ring);
            }
        }
        if (link) {
            io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(s, 2);
            want++;
        }
        int rc = ring_submit(f, want);
        if (rc < 0)
            return ring_reset(f, rc);
        int wrote = 0, synced = -1, werr = 0;
        for (unsigned i = 0; i < want; i++) {
            struct io_uring_cqe *cqe;
            do
                rc = io_uring_wait_cqe(&f->ring, &cqe);
            while (rc == -EINTR);
            if (rc < 0)
                return ring_reset(f, rc);
            if (io_uring_cqe_get_data64(cqe) == 1) {
                if (cqe->res < 0)
                    werr = cqe->res;
                else
                    wrote = cqe->res;
            } else {
                synced = cqe->res;
            }
            io_uring_cqe_seen(&f->ring, cqe);
        }
        if (werr)
            return werr;
        if (piece && wrote == 0)
            return -EIO; /* a write that writes nothing would loop forever */
        done += (size_t)wrote;
        if (link && synced == 0 && done == len) {
            f->st.syncs++;
            return 0;
        }
        if (link && synced < 0 && synced != -ECANCELED)
            return synced;
        /* more to write, or a short write cancelled the linked sync: go on from there */
    }
    return 0;
}

static int write_header(struct rota_jfile *f, int fd)
{
    uint8_t h[ROTA_JFILE_HEADER] = {0};
    memcpy(h, file_magic, 8);
    put32(h + 8, FORMAT_VERSION);
    return ring_write(f, fd, h, sizeof(h), 0, false);
}

/* A snapshot that cannot go on: its file goes, the journal stays as it was. */
static int snapshot_fail(struct rota_jfile *f, const char *what, int rc)
{
    set_error(f, what, rc);
    if (f->tfd >= 0)
        close(f->tfd);
    f->tfd = -1;
    unlinkat(f->dfd, f->tmp_name, 0);
    f->in_snapshot = false;
    f->len = 0; /* the snapshot's records: the caller still has every state */
    return rc;
}

void rota_jfile_snapshot_abort(struct rota_jfile *f, int rc)
{
    if (f->in_snapshot)
        snapshot_fail(f, "snapshot", rc);
}

int rota_jfile_snapshot_begin(struct rota_jfile *f)
{
    if (f->tfd >= 0) /* one left open: never two */
        snapshot_fail(f, "snapshot", -EALREADY);
    /* what was pending belongs to the old file (the caller wrote it first, or gave up) */
    f->len = 0;
    f->in_snapshot = true;
    f->tfd = create_tmp(f);
    if (f->tfd < 0) {
        int rc = f->tfd;
        f->tfd = -1;
        return snapshot_fail(f, "open", rc);
    }
    int rc = write_header(f, f->tfd);
    return rc ? snapshot_fail(f, "write", rc) : 0;
}

int rota_jfile_snapshot_end(struct rota_jfile *f)
{
    if (f->tfd < 0)
        return -EBADF;
    int rc = ring_write(f, f->tfd, f->buf, f->len, ROTA_JFILE_HEADER, true);
    if (rc)
        return snapshot_fail(f, "write", rc);
    if (renameat(f->dfd, f->tmp_name, f->dfd, f->name) < 0)
        return snapshot_fail(f, "rename", -errno);
    /* the new file is the journal now; the old one's descriptor goes */
    if (f->fd >= 0)
        close(f->fd);
    f->fd = f->tfd;
    f->tfd = -1;
    f->off = ROTA_JFILE_HEADER + f->len;
    f->len = 0;
    f->in_snapshot = false;
    if (fsync(f->dfd) < 0)
        set_error(f, "fsync of its directory", -errno);
    f->dirty = 0;
    f->last_sync_mono = rota_clock_mono();
    f->st.snapshots++;
    f->st.bytes = f->off;
    f->st.last_snapshot = f->st.last_write = f->st.last_sync = rota_clock_wall();
    return 0;
}

int rota_jfile_write(struct rota_jfile *f, uint64_t mono, bool force_sync)
{
    if (f->fd < 0) {
        f->len = 0; /* no file yet (its first snapshot failed): nothing to append to */
        return -EBADF;
    }
    if (f->len == 0 && f->dirty == 0)
        return 0;
    bool sync = false;
    if (f->policy == ROTA_FSYNC_ALWAYS)
        sync = true;
    else if (f->policy == ROTA_FSYNC_INTERVAL)
        sync = force_sync || mono - f->last_sync_mono >= f->interval_ns;
    int rc = ring_write(f, f->fd, f->buf, f->len, f->off, sync);
    if (rc) {
        set_error(f, sync ? "write and sync" : "write", rc);
        /* Bounded: the records go (the caller rewrites every state in a snapshot), and
         * whatever part of them reached the file is cut, so no stale frame can follow
         * newer ones later. */
        f->len = 0;
        if (ftruncate(f->fd, (off_t)f->off) < 0)
            set_error(f, "truncate after a failed write", -errno);
        return rc;
    }
    if (f->len) {
        f->off += f->len;
        f->dirty += f->len;
        f->st.writes++;
        f->st.last_write = rota_clock_wall();
    }
    f->len = 0;
    f->st.bytes = f->off;
    if (sync) {
        f->dirty = 0;
        f->last_sync_mono = mono;
        f->st.last_sync = rota_clock_wall();
    }
    return 0;
}

uint64_t rota_jfile_pending(const struct rota_jfile *f)
{
    return f->len;
}

void rota_jfile_stats(const struct rota_jfile *f, struct rota_jfile_stats *out)
{
    *out = f->st;
}

void rota_jfile_close(struct rota_jfile *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->tfd >= 0) {
        close(f->tfd);
        unlinkat(f->dfd, f->tmp_name, 0);
    }
    if (f->dfd >= 0)
        close(f->dfd);
    if (f->ring_ok)
        io_uring_queue_exit(&f->ring);
    free(f->buf);
    free(f->path);
    free(f->tmp);
    free(f->tmp_name);
    free(f);
}
