/*
 * statedir.c - rotad's state directory: the place it keeps its files (the instance's
 * identity, the journal, and the control socket by default), and the rule that decides
 * whether rotad trusts it.
 *
 * DESIGN
 * The rule. When the state directory is absent, rotad creates it (one level) with mode
 * 0700, or 0750 owned by the configured group. Whether made or found, it is then opened
 * with O_DIRECTORY|O_NOFOLLOW and what was opened is checked (fstat: nothing can be
 * swapped between the check and the use): a real directory, not a symlink; owned by
 * rotad's effective uid; not writable by others, nor by its group unless a group is
 * configured and the directory belongs to it. Each directory above it must be owned by
 * root or rotad's uid and, when others may write it, sticky (as /tmp is): otherwise whoever
 * may write there could put another directory in its place. A directory failing the
 * rule stops rotad at start with the path and the problem named ("state dir /tmp/x is
 * owned by uid 999, not 0: refusing"): one that someone else controls could hold a
 * symlink where rotad writes, a forged journal, or a listener of theirs.
 *
 * The journal's directory, when journal.file.path puts it outside the state directory,
 * is held to the same rule (it is not created). Inside, core/journal/jfile.c opens files
 * relative to the directory's descriptor with O_NOFOLLOW, creates new ones with O_EXCL
 * and renames them into place, and restores a journal only from a regular file owned by
 * rotad's uid that no one else may write. A journal failing that check stops rotad at
 * start, saying why: rotad neither starts from a state someone else wrote nor silently
 * drops the state it was asked to keep (moving the file away is the operator's call).
 *
 * The identity. Once the directory passed, rotad reads "identity" in it, or makes it when
 * there is none (core/journal/jident.h): a random id that every journal record carries,
 * and a secret that keys each record's MAC. So a record is restored only when this
 * instance wrote it: whoever can write Redis (or copies another instance's journal in)
 * cannot make one rotad takes, and two instances sharing a Redis prefix by mistake refuse
 * each other's records. The file must be rotad's alone (owned by its uid, mode 0600 or
 * stricter): one that someone else owns or could read stops rotad at start, with its path.
 * It is read or made by rotad_identity_open once the instance's lock is held.
 *
 * rotad_state_open is called once, from main() on the main thread, before the lock, the
 * table and the journal; the directory's descriptor stays open in rotad.state_fd until rotad exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jident.h"
#include "log.h"
#include "rotad.h"

/* Why "st" (the directory "path") fails the rule, or NULL. "gid" is the configured
 * group's, or (gid_t)-1. */
static const char *dir_problem(const struct stat *st, gid_t gid, char *buf, size_t n)
{
    if (!S_ISDIR(st->st_mode))
        return "is not a directory";
    if (st->st_uid != geteuid()) {
        snprintf(buf, n, "is owned by uid %u, not %u", (unsigned)st->st_uid,
                 (unsigned)geteuid());
        return buf;
    }
    if (st->st_mode & S_IWOTH)
        return "is writable by others";
    if ((st->st_mode & S_IWGRP) && (gid == (gid_t)-1 || st->st_gid != gid))
        return gid == (gid_t)-1 ? "is writable by its group (no group is configured)"
                                : "is writable by a group other than the configured one";
    return NULL;
}

/* Does every directory above "path" keep strangers from replacing what is below it? */
static int check_parents(const char *what, const char *path, char *err, size_t n)
{
    char p[4096];
    if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
        return snprintf(err, n, "%s %s: path too long", what, path), -ENAMETOOLONG;
    for (char *s = strrchr(p, '/'); s; s = strrchr(p, '/')) {
        if (s == p)
            s[1] = 0; /* "/" itself, last */
        else
            *s = 0;
        struct stat st;
        if (stat(p, &st) < 0)
            return snprintf(err, n, "%s %s: %s: %s", what, path, p, strerror(errno)), -errno;
        char why[64] = "";
        if (st.st_uid != 0 && st.st_uid != geteuid())
            snprintf(why, sizeof(why), "is owned by uid %u", (unsigned)st.st_uid);
        else if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
            snprintf(why, sizeof(why), "is writable by others and not sticky");
        if (why[0])
            return snprintf(err, n,
                            "%s %s: the directory %s above it %s, so it could be replaced: "
                            "refusing",
                            what, path, p, why),
                   -EPERM;
        if (s == p)
            break;
    }
    return 0;
}

/* Open the directory "path" and check it by the rule; its descriptor, or -errno with
 * "err" naming the path and the problem. */
static int open_checked(const char *what, const char *path, gid_t gid, char *err, size_t n)
{
    int rc = check_parents(what, path, err, n);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP || e == ENOTDIR)
            return snprintf(err, n, "%s %s is not a directory (a symlink?): refusing", what,
                            path),
                   -ELOOP;
        return snprintf(err, n, "%s %s: %s", what, path, strerror(e)), -e;
    }
    struct stat st;
    char buf[64];
    const char *why =
        fstat(fd, &st) < 0 ? strerror(errno) : dir_problem(&st, gid, buf, sizeof(buf));
    if (why) {
        close(fd);
        return snprintf(err, n, "%s %s %s: refusing", what, path, why), -EPERM;
    }
    return fd;
}

/* The default state directory (not named in the config: /var/lib/rota/<instance>, or
 * under ~/.local/state) may lack its parents on a new host: make those missing, 0755 for
 * root's /var/lib/rota (it holds only directories of 0700), 0700 for a user's. A named
 * one is created one level only: a typo must not grow a tree. */
static int make_default_parents(const char *path, char *err, size_t n)
{
    char p[4096];
    if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
        return snprintf(err, n, "state dir %s: path too long", path), -ENAMETOOLONG;
    mode_t mode = geteuid() == 0 ? 0755 : 0700;
    char *last = strrchr(p, '/');
    for (char *s = strchr(p + 1, '/'); s && s <= last; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdir(p, mode) == 0 && chmod(p, mode) == 0) /* whatever the umask */
            rota_info("made %s (mode %04o) for the default state dir", p, (unsigned)mode);
        else if (errno != EEXIST)
            return snprintf(err, n, "state dir %s: making %s: %s", path, p, strerror(errno)),
                   -errno;
        *s = '/';
    }
    return 0;
}

int rotad_identity_open(struct rotad *d, char *err, size_t n)
{
    const char *path = d->cfg->state_dir;
    bool created;
    int rc = rota_jident_open(d->state_fd, path, &d->jkey, &created, err, n);
    if (rc)
        return rc;
    char hex[2 * ROTA_JID_LEN + 1];
    rota_jid_hex(d->jkey.id, hex, sizeof(hex));
    if (created)
        rota_info("instance identity %s created in %s/%s (mode 0600): journal records carry "
                  "it and a MAC keyed with its secret",
                  hex, path, ROTA_JIDENT_NAME);
    else
        rota_debug("instance identity %s (%s/%s)", hex, path, ROTA_JIDENT_NAME);
    return 0;
}

int rotad_state_open(struct rotad *d, char *err, size_t n)
{
    const char *path = d->cfg->state_dir;
    gid_t gid = (gid_t)-1;
    if (d->cfg->group) {
        struct group *g = getgrnam(d->cfg->group);
        if (!g)
            return snprintf(err, n, "group '%s': no such group", d->cfg->group), -ENOENT;
        gid = g->gr_gid;
    }
    mode_t mode = gid != (gid_t)-1 ? 0750 : 0700;
    int rc = d->cfg->state_dir_default ? make_default_parents(path, err, n) : 0;
    if (rc)
        return rc;
    bool made = mkdir(path, mode) == 0;
    if (!made && errno != EEXIST)
        return snprintf(err, n, "state dir %s: %s", path, strerror(errno)), -errno;
    int fd = open_checked("state dir", path, gid, err, n);
    if (fd < 0)
        return fd;
    if (made && ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) || fchmod(fd, mode) < 0))
        rota_warn("state dir %s: setting group %s and mode %04o: %s", path,
                  d->cfg->group ? d->cfg->group : "-", (unsigned)mode, strerror(errno));
    d->state_fd = fd;
    if (made)
        rota_info("state dir %s created (mode %04o)", path, (unsigned)mode);

    /* A journal kept elsewhere: its directory is held to the same rule. */
    const struct rota_config_journal *j = &d->cfg->journal;
    if (!j->file_enabled || !j->file_path)
        return 0;
    char dir[4096];
    const char *slash = strrchr(j->file_path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s",
                 slash == j->file_path ? 1 : (int)(slash - j->file_path), j->file_path);
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        return 0;
    int jfd = open_checked("journal directory", dir, gid, err, n);
    if (jfd < 0)
        return jfd;
    close(jfd);
    return 0;
}
