/*
 * jident.c - the instance's identity file: read and checked, or made. The format and the
 * rule are in jident.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jident.h"

static const char magic[8] = {'R', 'O', 'T', 'A', 'I', 'D', '0', '1'};
#define TMP_NAME ROTA_JIDENT_NAME ".tmp"

void rota_jkey_wipe(struct rota_jkey *k)
{
    explicit_bzero(k, sizeof(*k));
}

int rota_jident_random(struct rota_jkey *out)
{
    uint8_t *p = (uint8_t *)out;
    size_t got = 0;
    while (got < sizeof(*out)) {
        ssize_t k = getrandom(p + got, sizeof(*out) - got, 0);
        if (k < 0 && errno != EINTR)
            return -errno;
        got += k > 0 ? (size_t)k : 0;
    }
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Is the open file "fd" ("path") one only rotad can read and write? 0, or -EPERM with
 * "err" saying why. */
static int check_own(int fd, const char *path, char *err, size_t n)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return snprintf(err, n, "identity file %s: %s", path, strerror(errno)), -errno;
    char why[96] = "";
    if (!S_ISREG(st.st_mode))
        snprintf(why, sizeof(why), "is not a regular file");
    else if (st.st_uid != geteuid())
        snprintf(why, sizeof(why), "is owned by uid %u, not %u", (unsigned)st.st_uid,
                 (unsigned)geteuid());
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        snprintf(why, sizeof(why), "may be read or written by %s (mode %04o)",
                 st.st_mode & S_IRWXO ? "others" : "its group", (unsigned)(st.st_mode & 07777));
    if (!why[0])
        return 0;
    snprintf(err, n,
             "identity file %s %s: refusing (its secret signs the journal's records); if it "
             "is rotad's and no one else could read it, chown it and chmod 600 it, else "
             "remove it: rotad makes a new identity and refuses the records of the old one",
             path, why);
    return -EPERM;
}

/* Read and check the identity file open on "fd". */
static int read_fd(int fd, const char *path, struct rota_jkey *out, char *err, size_t n)
{
    int rc = check_own(fd, path, err, n);
    if (rc)
        return rc;
    uint8_t b[ROTA_JIDENT_SIZE + 1];
    size_t got = 0;
    for (;;) {
        ssize_t k = read(fd, b + got, sizeof(b) - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return snprintf(err, n, "identity file %s: %s", path, strerror(errno)), -errno;
        if (k == 0 || (got += (size_t)k) == sizeof(b))
            break;
    }
    rc = got != ROTA_JIDENT_SIZE || memcmp(b, magic, sizeof(magic)) != 0 ||
                 get32(b + 40) != rota_crc32c(0, b, 40)
             ? -EINVAL
             : 0;
    if (rc == 0) {
        memcpy(out->id, b + 8, ROTA_JID_LEN);
        memcpy(out->secret, b + 8 + ROTA_JID_LEN, ROTA_JKEY_LEN);
    } else {
        snprintf(err, n,
                 "identity file %s is not a rota identity (%zu bytes, expected %u with a "
                 "ROTAID01 header and a good checksum): refusing; move it away and rotad "
                 "makes a new one",
                 path, got, ROTA_JIDENT_SIZE);
    }
    explicit_bzero(b, sizeof(b));
    return rc;
}

/* Open "name" in "dfd" for reading, never following a symlink: the descriptor, or
 * -errno ("err" filled unless -ENOENT). */
static int open_ro(int dfd, const char *name, const char *path, char *err, size_t n)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    int e = errno;
    if (e == ELOOP)
        snprintf(err, n, "identity file %s is a symlink: refusing to follow it", path);
    else if (e != ENOENT)
        snprintf(err, n, "identity file %s: %s", path, strerror(e));
    return -e;
}

int rota_jident_read(const char *path, struct rota_jkey *out, char *err, size_t n)
{
    int fd = open_ro(AT_FDCWD, path, path, err, n);
    if (fd == -ENOENT)
        snprintf(err, n, "identity file %s: %s", path, strerror(ENOENT));
    if (fd < 0)
        return fd;
    int rc = read_fd(fd, path, out, err, n);
    close(fd);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Make a new identity as identity.tmp and rename it into place unless one appeared
 * meanwhile. 0 (made), -EEXIST (another was there first: read it), or -errno. */
static int make(int dfd, struct rota_jkey *k)
{
    if (unlinkat(dfd, TMP_NAME, 0) < 0 && errno != ENOENT)
        return -errno;
    int fd = openat(dfd, TMP_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    uint8_t b[ROTA_JIDENT_SIZE];
    int rc = rota_jident_random(k);
    if (rc == 0) {
        memcpy(b, magic, sizeof(magic));
        memcpy(b + 8, k->id, ROTA_JID_LEN);
        memcpy(b + 8 + ROTA_JID_LEN, k->secret, ROTA_JKEY_LEN);
        put32(b + 40, rota_crc32c(0, b, 40));
        /* the umask may have taken bits away, never added any: 0600 whatever it is */
        rc = fchmod(fd, 0600) < 0 ? -errno : write_all(fd, b, sizeof(b));
        if (rc == 0 && fsync(fd) < 0)
            rc = -errno;
        explicit_bzero(b, sizeof(b));
    }
    close(fd);
    if (rc == 0 && renameat2(dfd, TMP_NAME, dfd, ROTA_JIDENT_NAME, RENAME_NOREPLACE) < 0) {
        rc = -errno;
        /* a file system without RENAME_NOREPLACE: a hard link never replaces either */
        if (rc == -EINVAL || rc == -ENOSYS)
            rc = linkat(dfd, TMP_NAME, dfd, ROTA_JIDENT_NAME, 0) == 0 ? 0 : -errno;
    }
    unlinkat(dfd, TMP_NAME, 0);
    if (rc == 0)
        fsync(dfd);
    else
        rota_jkey_wipe(k);
    return rc;
}

int rota_jident_open(int dfd, const char *dir, struct rota_jkey *out, bool *created, char *err,
                     size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, ROTA_JIDENT_NAME);
    *created = false;
    for (int tries = 0; tries < 2; tries++) {
        int fd = open_ro(dfd, ROTA_JIDENT_NAME, path, err, n);
        if (fd >= 0) {
            int rc = read_fd(fd, path, out, err, n);
            close(fd);
            return rc;
        }
        if (fd != -ENOENT)
            return fd;
        int rc = make(dfd, out);
        if (rc == 0) {
            *created = true;
            return 0;
        }
        if (rc != -EEXIST)
            return snprintf(err, n, "identity file %s: cannot create it: %s", path,
                            strerror(-rc)),
                   rc;
    }
    return snprintf(err, n, "identity file %s: made and gone again: refusing", path), -EAGAIN;
}
