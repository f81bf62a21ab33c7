/*
 * stranger.c - see stranger.h.
 */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stranger.h"

bool stranger_ids(uid_t *uid, gid_t *gid, char *why, size_t n)
{
    if (geteuid() != 0) {
        snprintf(why, n, "not running as root: cannot act as a second user");
        return false;
    }
    struct passwd *pw = getpwnam(STRANGER_NAME);
    if (!pw) {
        snprintf(why, n, "no user %s (tools/test creates it)", STRANGER_NAME);
        return false;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return true;
}

int as_stranger(int (*fn)(void *arg), void *arg)
{
    uid_t uid;
    gid_t gid;
    char why[128];
    if (!stranger_ids(&uid, &gid, why, sizeof(why)))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (setgroups(0, NULL) || setgid(gid) || setuid(uid) || getuid() != uid ||
            setuid(0) == 0)
            _exit(255);
        _exit(fn(arg) & 0xff);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 255)
        return -1;
    return WEXITSTATUS(st);
}
