/*
 * jfile.h - the journal file: framed, checksummed records in the state directory
 * (private to rota).
 *
 * DESIGN
 * A file is a 16-byte header ("ROTAJNL1", format version, reserved) and then frames:
 *
 *   u32 sync "ROTJ" | u32 length | u32 CRC-32C of length and payload | payload
 *
 * all little-endian, the payload one record (core/journal/jrecord.h) of at most ROTA_JREC_MAX
 * bytes. A reader trusts a frame only when its sync word, bound and checksum all hold.
 * A bad frame followed by a good one is corruption: it is skipped, counted and reported
 * with its offset; a bad frame with nothing good after it is a torn tail (a crash in the
 * middle of a write) and is cut. Neither is ever half replayed.
 *
 * The writer (one thread) frames records into a buffer and writes it with io_uring at
 * the file's end, then syncs by policy: "always" links an fdatasync to every write,
 * "interval" syncs when the interval has passed since the last sync, "never" leaves it
 * to the kernel. A snapshot writes a new file beside the old one (<path>.tmp), syncs it,
 * renames it over the old one and syncs the directory: the file is always either the
 * old journal or the new one, whole.
 *
 * Trust: a journal is read only from a regular file owned by rotad's effective uid that
 * no one else may write, in a directory owned by that uid that others may not write
 * (rotad's whole state-dir rule is in tools/rotad/statedir.c). Files are opened relative
 * to the directory's descriptor, never following a symlink; <path>.tmp is created with
 * O_EXCL after a stale one is removed (never followed), then renamed into place. A file
 * that fails the check is refused with -EPERM and a message saying why. Within a file
 * that passed, each record must still carry this instance's identity and a MAC made with
 * its secret (core/journal/jrecord.h): a record of another instance, or one whose MAC does
 * not match, is counted and skipped. Version 1 records, written before records carried
 * an identity, are taken from the file alone, on the strength of this check.
 */
#ifndef ROTA_CORE_JFILE_H
#define ROTA_CORE_JFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "jrecord.h"

#define ROTA_JFILE_HEADER 16u
#define ROTA_JFILE_FRAME  12u /* frame header bytes */

/* What reading a file found. */
struct rota_jfile_scan {
    uint64_t records;       /* decoded and passed on */
    uint64_t snapshots;     /* SNAPSHOT records among them */
    uint64_t corrupt;       /* bad regions skipped in the middle */
    uint64_t corrupt_bytes; /* ... their bytes */
    uint64_t torn_bytes;    /* cut from the tail */
    uint64_t size;          /* the file's size */
    uint64_t foreign;       /* whole records of another instance, refused */
    uint64_t forged;        /* whole records of this instance's id with a bad MAC, refused */
    uint64_t v1;            /* version 1 records (before records carried an identity) */
    uint8_t foreign_id[ROTA_JID_LEN]; /* the first foreign record's identity */
    int64_t newest_at;                /* largest "at" of a record; 0 = none */
    char first_problem[200];          /* "offset N: what" of the first corruption or the tear */
};

/* Read "path", calling "fn" for each good record of the instance "k" in order (a
 * non-zero return stops the walk and is returned). Records of another instance, or with
 * a MAC that does not match, are counted and skipped, never passed on; version 1 records
 * are passed on (the file passed the trust check) and counted. 0; -ENOENT when there is
 * no file; -EINVAL with "err" when it is not a rota journal (another file's bytes are
 * never treated as records); -EPERM or -ELOOP with "err" when the file or its directory
 * fails the trust check above. */
int rota_jfile_read(const char *path, const struct rota_jkey *k,
                    int (*fn)(void *arg, const struct rota_jrec *r), void *arg,
                    struct rota_jfile_scan *out, char *err, size_t n);

/* rota_jfile_read of a file the caller opened and vouches for (no owner or mode check);
 * "path" names it in messages. */
int rota_jfile_read_fd(int fd, const char *path, const struct rota_jkey *k,
                       int (*fn)(void *arg, const struct rota_jrec *r), void *arg,
                       struct rota_jfile_scan *out, char *err, size_t n);

/* Frame one encoded record into "buf" (ROTA_JFILE_FRAME + len bytes). */
void rota_jfile_frame(void *buf, const void *rec, uint32_t len);

struct rota_jfile;

struct rota_jfile_stats {
    uint64_t bytes;   /* size of the current file */
    uint64_t records; /* written since start */
    uint64_t writes, syncs, snapshots, errors;
    int64_t last_write; /* wall ns of the last completed write; 0 = none */
    int64_t last_sync;  /* wall ns of the last completed sync */
    int64_t last_snapshot;
    char last_error[200];
};

/* Prepare a writer for "path": its directory is opened (and checked as above) and a file
 * created in it once, to find out now that it can be; nothing is written until a
 * snapshot begins. */
int rota_jfile_open(const char *path, enum rota_fsync policy, uint64_t interval_ns,
                    struct rota_jfile **out, char *err, size_t n);

/* Add one encoded record to the pending buffer. 0, or -ENOMEM. */
int rota_jfile_put(struct rota_jfile *f, const void *rec, size_t len);

/* Start a new file at <path>.tmp (anything pending is dropped: write it first): what is
 * put until rota_jfile_snapshot_end goes there. */
int rota_jfile_snapshot_begin(struct rota_jfile *f);
/* Give up the snapshot begun (a record could not be put): its file goes, the journal
 * stays as it was; "rc" goes into the stats' error. */
void rota_jfile_snapshot_abort(struct rota_jfile *f, int rc);
/* Write, sync and rename the new file over the old one, and continue appending to it.
 * On failure (of either) the new file is removed and the journal stays as it was, still
 * appended to. */
int rota_jfile_snapshot_end(struct rota_jfile *f);

/* Write what is pending and sync by policy ("mono" is now, monotonic ns). With "sync",
 * sync whatever the policy (except "never"). 0, or -errno: the error is kept in the
 * stats, the pending records are dropped and any part of them written is cut from the
 * file (the caller rewrites every state with a snapshot). */
int rota_jfile_write(struct rota_jfile *f, uint64_t mono, bool sync);

uint64_t rota_jfile_pending(const struct rota_jfile *f); /* bytes waiting */
void rota_jfile_stats(const struct rota_jfile *f, struct rota_jfile_stats *out);
void rota_jfile_close(struct rota_jfile *f);

#endif
