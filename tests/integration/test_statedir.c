/* test_statedir: a hostile local user (the real unprivileged user rota-stranger) against
 * root's rotad through its state directory: a directory she made first, with a symlink
 * where rotad writes its snapshot; a directory others may write; a symlink in place of the
 * directory; a journal she wrote, put in root's directory. rotad refuses each at start,
 * naming the path and the problem, and writes nothing through her links. Below that
 * check, the journal file never follows a symlink, to read or to write. The instance's
 * identity file is made 0600, and one she owns or others may read is refused. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "jfile.h"
#include "journal_it.h"
#include "rotad_harness.h"
#include "stranger.h"

static const char victim_text[] = "root's file: must stay as it is\n";

/* The stranger's ids, or skip the test saying why. */
#define NEED_STRANGER(uid)                                                                     \
    do {                                                                                       \
        gid_t g_;                                                                              \
        char why_[160];                                                                        \
        if (!stranger_ids(&(uid), &g_, why_, sizeof(why_))) {                                  \
            print_message("skipped: %s\n", why_);                                              \
            skip();                                                                            \
        }                                                                                      \
    } while (0)

/* An instance whose directory is shared like /tmp (world-writable, sticky), with a
 * root-owned file "victim" in it (its path in "victim"). */
static void shared_dir(struct it *t, const char *tag, char *victim, size_t n)
{
    it_init(t, tag);
    assert_int_equal(chmod(t->dir, 01777), 0);
    snprintf(victim, n, "%s/victim", t->dir);
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fputs(victim_text, f);
    fclose(f);
    assert_int_equal(chmod(victim, 0644), 0);
}

static void assert_victim_intact(const char *victim)
{
    struct stat st;
    assert_int_equal(lstat(victim, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_uid, geteuid());
    char buf[256] = "";
    FILE *f = fopen(victim, "r");
    assert_non_null(f);
    size_t k = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[k] = 0;
    assert_string_equal(buf, victim_text);
}

/* What the stranger does: paths she works on. */
struct plant {
    char dir[256];    /* a directory to make (mode 0755), "" = none */
    char link[256];   /* a symlink to make, "" = none */
    char target[256]; /* ... pointing here */
    char file[256];   /* a file to write, "" = none */
    const void *bytes;
    size_t len;
};

static int plant(void *arg)
{
    const struct plant *p = arg;
    if (p->dir[0] && mkdir(p->dir, 0755) != 0)
        return 1;
    if (p->dir[0] && chmod(p->dir, 0755) != 0)
        return 2;
    if (p->link[0] && symlink(p->target, p->link) != 0)
        return 3;
    if (p->file[0]) {
        FILE *f = fopen(p->file, "w");
        if (!f || fwrite(p->bytes, 1, p->len, f) != p->len || fclose(f) != 0)
            return 4;
    }
    return 0;
}

/* Start rotad on "t" (4 accounts): it must refuse to start, saying "msg". */
static void expect_refused(struct it *t, const char *msg)
{
    jit_config(t, 4, NULL);
    int rc = it_start(t);
    if (rc == 0)
        it_stop(t, SIGTERM); /* the old behaviour: let its snapshot run to the end */
    assert_int_equal(rc, 1);
    assert_true(it_log_has(t, msg));
}

/* Attack 2: she makes the state directory before root's rotad first starts, with
 * journal.tmp a symlink to root's file. */
static void test_statedir_precreated_by_a_stranger_is_refused(void **state)
{
    (void)state;
    uid_t su;
    NEED_STRANGER(su);
    struct it t;
    char victim[256];
    shared_dir(&t, "sdpre", victim, sizeof(victim));
    struct plant p = {0};
    snprintf(p.dir, sizeof(p.dir), "%s/state", t.dir);
    snprintf(p.link, sizeof(p.link), "%s/state/journal.tmp", t.dir);
    snprintf(p.target, sizeof(p.target), "%s", victim);
    assert_int_equal(as_stranger(plant, &p), 0);
    char msg[512];
    snprintf(msg, sizeof(msg), "state dir %s/state is owned by uid %u, not 0: refusing", t.dir,
             (unsigned)su);
    expect_refused(&t, msg);
    assert_victim_intact(victim);
    struct stat st;
    assert_int_equal(lstat(p.link, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* left alone: nothing in her directory is touched */
    it_cleanup(&t);
}

/* A state directory of root's that others may write: she plants the same symlink. */
static void test_statedir_writable_by_others_is_refused(void **state)
{
    (void)state;
    uid_t su;
    NEED_STRANGER(su);
    struct it t;
    char victim[256], dir[200];
    shared_dir(&t, "sdww", victim, sizeof(victim));
    snprintf(dir, sizeof(dir), "%s/state", t.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    struct plant p = {0};
    snprintf(p.link, sizeof(p.link), "%s/journal.tmp", dir);
    snprintf(p.target, sizeof(p.target), "%s", victim);
    assert_int_equal(as_stranger(plant, &p), 0);
    char msg[512];
    snprintf(msg, sizeof(msg), "state dir %s is writable by others: refusing", dir);
    expect_refused(&t, msg);
    assert_victim_intact(victim);
    it_cleanup(&t);
}

/* She puts a symlink where the state directory should be, to a directory of hers. */
static void test_statedir_symlink_is_refused(void **state)
{
    (void)state;
    uid_t su;
    NEED_STRANGER(su);
    struct it t;
    char victim[256];
    shared_dir(&t, "sdln", victim, sizeof(victim));
    struct plant p = {0};
    snprintf(p.dir, sizeof(p.dir), "%s/hers", t.dir);
    snprintf(p.link, sizeof(p.link), "%s/state", t.dir);
    snprintf(p.target, sizeof(p.target), "%s", p.dir);
    assert_int_equal(as_stranger(plant, &p), 0);
    char msg[512];
    snprintf(msg, sizeof(msg), "state dir %s/state is not a directory (a symlink?): refusing",
             t.dir);
    expect_refused(&t, msg);
    char journal[300];
    snprintf(journal, sizeof(journal), "%s/journal", p.dir);
    assert_int_equal(access(journal, F_OK), -1); /* nothing written into her directory */
    it_cleanup(&t);
}

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

/* Attack 3: a journal she wrote (a valid one, a2 disabled) is moved into root's state
 * directory by an admin "restoring a backup": rotad refuses to restore from a file it
 * does not own, and says so. Owned by root, the same bytes restore: the refusal is the
 * owner's, not the content's. */
static void test_statedir_journal_of_another_user_is_not_restored(void **state)
{
    (void)state;
    uid_t su;
    NEED_STRANGER(su);
    struct it t;
    char victim[256];
    shared_dir(&t, "sdjf", victim, sizeof(victim));
    jit_config(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/state", t.dir);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0); /* made by rotad: root's, 0700 */
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    jit_make_state(&t);
    jit_wait_journaled(&t, JIT_FILE_ONLY);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_drop_table(&t);

    char path[256];
    jit_journal_path(&t, path, sizeof(path));
    unsigned char *bytes;
    size_t len = slurp(path, &bytes);
    assert_int_equal(unlink(path), 0);
    struct plant p = {.bytes = bytes, .len = len};
    snprintf(p.file, sizeof(p.file), "%s/journal.backup", t.dir);
    assert_int_equal(as_stranger(plant, &p), 0);
    free(bytes);
    assert_int_equal(rename(p.file, path), 0); /* the admin's mistake: still hers */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, su);

    int rc = it_start(&t);
    if (rc == 0)
        it_stop(&t, SIGTERM);
    assert_int_equal(rc, 1);
    char msg[512];
    snprintf(msg, sizeof(msg), "journal %s is owned by uid %u, not 0: refusing to restore",
             path, (unsigned)su);
    assert_true(it_log_has(&t, msg));
    assert_false(it_log_has(&t, "restored from the journal file"));

    /* the same file, rotad's own: restored */
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "file");
    json_t *acc = jit_ctl_json(&t, "accounts");
    assert_string_equal(jit_str(jit_account(acc, "a2"), "off"), "operator");
    json_decref(acc);
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    it_cleanup(&t);
}

/* A key for files that hold no records: which one does not matter. */
static const struct rota_jkey any_key = {.id = "statedir-test-id", .secret = "not-a-real-key!"};

static int count_rec(void *arg, const struct rota_jrec *r)
{
    (void)r;
    (*(int *)arg)++;
    return 0;
}

/* Below rotad's directory check, the journal file's own: a journal.tmp symlink left in
 * rotad's directory is removed, never written through, by a snapshot; a journal that is a
 * symlink is not read. (No second user needed: the links are the test user's own, as a
 * restored backup or a careless admin would leave them.) */
static void test_statedir_journal_never_follows_links(void **state)
{
    (void)state;
    struct it t;
    char victim[256], path[256], tmp[300];
    shared_dir(&t, "sdlnk", victim, sizeof(victim));
    snprintf(path, sizeof(path), "%s/own", t.dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/own/journal", t.dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(symlink(victim, tmp), 0);
    char err[512] = "";
    struct rota_jfile *f = NULL;
    assert_int_equal(rota_jfile_open(path, ROTA_FSYNC_ALWAYS, 0, &f, err, sizeof(err)), 0);
    unlink(tmp);                               /* (the open removed it) */
    assert_int_equal(symlink(victim, tmp), 0); /* again, after the open's own check */
    assert_int_equal(rota_jfile_snapshot_begin(f), 0);
    assert_int_equal(rota_jfile_snapshot_end(f), 0);
    rota_jfile_close(f);
    assert_victim_intact(victim);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    int n = 0;
    struct rota_jfile_scan sc;
    assert_int_equal(rota_jfile_read(path, &any_key, count_rec, &n, &sc, err, sizeof(err)), 0);

    /* the journal itself a symlink (to a journal, even): refused, with the reason */
    char link[300];
    snprintf(link, sizeof(link), "%s/own/linked", t.dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(rota_jfile_read(link, &any_key, count_rec, &n, &sc, err, sizeof(err)),
                     -ELOOP);
    assert_non_null(strstr(err, "is a symlink"));
    it_cleanup(&t);
}

/* The instance's identity: made by rotad with its state directory, mode 0600, 44 bytes,
 * and the same on the next start. One she owns (planted in a directory of root's by an
 * admin restoring a backup), or one its group or others may read, stops rotad naming the
 * path; the same file, root's and 0600, is taken again. */
static void test_statedir_identity_file_is_rotads_alone(void **state)
{
    (void)state;
    uid_t su;
    NEED_STRANGER(su);
    struct it t;
    char victim[256], path[256];
    shared_dir(&t, "sdid", victim, sizeof(victim));
    jit_config(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    assert_true(it_log_has(&t, "identity"));
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    snprintf(path, sizeof(path), "%s/state/identity", t.dir);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 44);
    unsigned char *before;
    size_t len = slurp(path, &before);
    char id[33], secret[33];
    for (int i = 0; i < 16; i++) {
        snprintf(id + 2 * i, 3, "%02x", before[8 + i]);
        snprintf(secret + 2 * i, 3, "%02x", before[24 + i]);
    }
    assert_true(it_log_has(&t, id)); /* the identity is no secret: logged when made */
    assert_false(it_log_has(&t, secret));
    assert_int_equal(it_start(&t), 0); /* kept, not made again */
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    unsigned char *again;
    assert_int_equal(slurp(path, &again), len);
    assert_memory_equal(before, again, len);
    free(again);

    /* group-readable, then readable by every user: refused, named */
    static const mode_t loose[] = {0640, 0604};
    char msg[512];
    for (size_t i = 0; i < 2; i++) {
        it_drop_table(&t);
        assert_int_equal(chmod(path, loose[i]), 0);
        snprintf(msg, sizeof(msg),
                 "identity file %s may be read or written by %s (mode %04o): refusing", path,
                 i == 0 ? "its group" : "others", (unsigned)loose[i]);
        expect_refused(&t, msg);
    }
    assert_int_equal(chmod(path, 0600), 0);

    /* hers, with root's bytes in it: refused, named */
    assert_int_equal(unlink(path), 0);
    struct plant p = {.bytes = before, .len = len};
    snprintf(p.file, sizeof(p.file), "%s/identity.hers", t.dir);
    assert_int_equal(as_stranger(plant, &p), 0);
    assert_int_equal(rename(p.file, path), 0);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(msg, sizeof(msg), "identity file %s is owned by uid %u, not 0: refusing", path,
             (unsigned)su);
    it_drop_table(&t);
    expect_refused(&t, msg);

    /* root's again: the journal it signed is restored */
    assert_int_equal(chown(path, 0, 0), 0);
    it_drop_table(&t);
    assert_int_equal(it_start(&t), 0);
    jit_assert_restored_from(&t, "file");
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    free(before);
    it_cleanup(&t);
}

/* Attack 4's lock: she makes a lock file where rotad once kept it, /dev/shm, before
 * root's rotad starts, with a message of hers in it where rotad would read a pid. The
 * lock is now in the state directory, where she cannot write: rotad starts, takes it
 * there (0600, its own), and neither reads nor quotes hers. */
static void test_statedir_strangers_lock_is_ignored(void **state)
{
    (void)state;
    uid_t su;
    NEED_STRANGER(su);
    (void)su;
    struct it t;
    it_init(&t, "sdlk");
    static const char hers[] = "4242 -- rotad moved: run rotactl against /tmp/evil.sock\n";
    struct plant p = {.bytes = hers, .len = sizeof(hers) - 1};
    snprintf(p.file, sizeof(p.file), "/dev/shm/rota.%s.lock", t.instance);
    assert_int_equal(as_stranger(plant, &p), 0);
    jit_config(&t, 4, NULL);
    assert_int_equal(it_start(&t), 0);
    char lock[256];
    snprintf(lock, sizeof(lock), "%s/state/rotad.lock", t.dir);
    struct stat st;
    assert_int_equal(lstat(lock, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A second rotad on the same config meets that lock. */
    struct it t2 = t;
    snprintf(t2.log, sizeof(t2.log), "%s/second.log", t.dir);
    pid_t pid = it_spawn(&t2);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 1);
    char msg[512];
    snprintf(msg, sizeof(msg), "already supervised by rotad pid %d (lock %s)", (int)t.rotad,
             lock);
    assert_true(it_log_has(&t2, msg));
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    unlink(p.file);
    assert_false(it_log_has(&t, "evil.sock"));
    assert_false(it_log_has(&t2, "evil.sock"));
    it_cleanup(&t);
}

/* A user's rotad with no state_dir in its config. */
struct user_rotad {
    char home[160], config[256], log[256], sock[512], rotad[512];
};

/* As the stranger: start rotad, wait for its socket under ~/.local/state, stop it. 0 when
 * it came up there. */
static int run_user_rotad(void *arg)
{
    const struct user_rotad *u = arg;
    setenv("HOME", u->home, 1);
    unsetenv("XDG_STATE_HOME");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(u->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, 2);
        execl(u->rotad, "rotad", "-c", u->config, (char *)NULL);
        _exit(127);
    }
    struct stat st;
    bool up = false;
    for (int i = 0; i < 200 && !up; i++) {
        up = lstat(u->sock, &st) == 0 && S_ISSOCK(st.st_mode);
        if (!up)
            usleep(50000);
    }
    kill(pid, SIGTERM);
    int ws;
    waitpid(pid, &ws, 0);
    return up && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 0 : 1;
}

/* No state_dir: a user's rotad makes ~/.local/state/rota/<instance> and its missing
 * parents, each 0700, and keeps its socket, lock and journal there. */
static void test_statedir_default_for_a_user(void **state)
{
    (void)state;
    uid_t su;
    gid_t sg;
    char why[160];
    if (!stranger_ids(&su, &sg, why, sizeof(why))) {
        print_message("skipped: %s\n", why);
        skip();
    }
    struct it t;
    it_init(&t, "sddef");
    struct user_rotad u;
    snprintf(u.home, sizeof(u.home), "%s/home", t.dir);
    assert_int_equal(chmod(t.dir, 0711), 0);
    assert_int_equal(mkdir(u.home, 0700), 0);
    assert_int_equal(chown(u.home, su, sg), 0);
    snprintf(u.config, sizeof(u.config), "%s/rota.yaml", u.home);
    snprintf(u.log, sizeof(u.log), "%s/rotad.log", u.home);
    snprintf(u.rotad, sizeof(u.rotad), "%s/tools/rotad/rotad", it_bin());
    char base[400];
    snprintf(base, sizeof(base), "%s/.local/state/rota/%s", u.home, t.instance);
    snprintf(u.sock, sizeof(u.sock), "%s/rotad.sock", base);
    FILE *f = fopen(u.config, "w");
    assert_non_null(f);
    fprintf(f,
            "instance: %s\nproviders:\n  - name: p\n    kind: openai\n    accounts:\n"
            "      - {name: a, credential: none}\nroutes:\n  - name: r\n"
            "    tiers: [{provider: p}]\n",
            t.instance);
    fclose(f);
    assert_int_equal(chmod(u.config, 0644), 0);
    int rc = as_stranger(run_user_rotad, &u);
    if (rc != 0) {
        char out[4096] = "";
        FILE *l = fopen(u.log, "r");
        if (l) {
            out[fread(out, 1, sizeof(out) - 1, l)] = 0;
            fclose(l);
        }
        fail_msg("the user's rotad did not come up under %s; its log:\n%s", base, out);
    }
    const char *made[] = {"/.local", "/.local/state", "/.local/state/rota", ""};
    for (int i = 0; i < 4; i++) {
        char p[420];
        struct stat st;
        if (i < 3)
            snprintf(p, sizeof(p), "%s%s", u.home, made[i]);
        else
            snprintf(p, sizeof(p), "%s", base);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_uid, su);
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    char lock[420];
    snprintf(lock, sizeof(lock), "%s/rotad.lock", base);
    struct stat st;
    assert_int_equal(lstat(lock, &st), 0);
    it_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_statedir_precreated_by_a_stranger_is_refused,
                                  it_teardown),
        cmocka_unit_test_teardown(test_statedir_writable_by_others_is_refused, it_teardown),
        cmocka_unit_test_teardown(test_statedir_symlink_is_refused, it_teardown),
        cmocka_unit_test_teardown(test_statedir_journal_of_another_user_is_not_restored,
                                  it_teardown),
        cmocka_unit_test_teardown(test_statedir_journal_never_follows_links, it_teardown),
        cmocka_unit_test_teardown(test_statedir_strangers_lock_is_ignored, it_teardown),
        cmocka_unit_test_teardown(test_statedir_default_for_a_user, it_teardown),
        cmocka_unit_test_teardown(test_statedir_identity_file_is_rotads_alone, it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
