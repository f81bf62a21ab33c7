/* test_trust_files: rotad as a real process against files another local user controls:
 * a config that user owns, or that every user may write, keeps rotad from starting and
 * says why; key files that user owns or links to /etc/shadow leave their accounts without
 * a credential, and nothing of either file reaches the log. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "rotad_harness.h"
#include "stranger.h"

#define STRANGER_KEY "sk-STRANGER-PLANTED-KEY"

static void test_trust_files_config_refused(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "trustcfg");
    setenv("ROTA_IT_KEY", "sk-it-trust-secret", 1);
    it_config(&t, 1, 0, NULL);
    assert_int_equal(chmod(t.config, 0666), 0);
    assert_true(it_start(&t) > 0); /* exits before it touches anything */
    assert_true(it_log_has(&t, "is writable by every user (mode 0666); refused"));
    assert_int_equal(chmod(t.config, 0644), 0);
    uid_t uid;
    gid_t gid;
    char why[160];
    if (stranger_ids(&uid, &gid, why, sizeof(why))) {
        assert_int_equal(chown(t.config, uid, gid), 0);
        assert_true(it_start(&t) > 0);
        assert_true(it_log_has(&t, "neither root nor rotad's user"));
        assert_int_equal(chown(t.config, 0, 0), 0);
    } else {
        print_message("skipped the second user's part: %s\n", why);
    }
    assert_int_equal(it_start(&t), 0); /* its own file, writable by it alone: runs */
    assert_int_equal(it_stop(&t, 15), 0);
    it_cleanup(&t);
}

struct planted {
    char key[256], link[256];
};

/* As the stranger: a key file of her own, and a link to /etc/shadow. */
static int plant(void *arg)
{
    const struct planted *p = arg;
    FILE *f = fopen(p->key, "w");
    if (!f || fputs(STRANGER_KEY "\n", f) < 0 || fclose(f) != 0)
        return 1;
    if (chmod(p->key, 0600) != 0)
        return 2;
    return symlink("/etc/shadow", p->link) == 0 ? 0 : 3;
}

static void test_trust_files_stranger_key_files(void **state)
{
    (void)state;
    uid_t uid;
    gid_t gid;
    char why[160];
    if (!stranger_ids(&uid, &gid, why, sizeof(why))) {
        print_message("skipped: %s\n", why);
        skip();
    }
    struct it t;
    it_init(&t, "trustkey");
    char drop[192], shadow[512] = "", cfg[2048];
    snprintf(drop, sizeof(drop), "%s/drop", t.dir);
    assert_int_equal(mkdir(drop, 0700), 0);
    assert_int_equal(chown(drop, uid, gid), 0);
    assert_int_equal(chmod(t.dir, 0711), 0);
    struct planted p;
    snprintf(p.key, sizeof(p.key), "%s/key", drop);
    snprintf(p.link, sizeof(p.link), "%s/shadow", drop);
    assert_int_equal(as_stranger(plant, &p), 0);
    FILE *f = fopen("/etc/shadow", "r");
    if (f) {
        if (!fgets(shadow, sizeof(shadow), f))
            shadow[0] = 0;
        shadow[strcspn(shadow, "\n")] = 0;
        fclose(f);
    }
    setenv("ROTA_IT_KEY", "sk-it-trust-secret", 1);
    snprintf(cfg, sizeof(cfg),
             "instance: %s\nstate_dir: %s/state\nproviders:\n"
             "  - name: alpha\n    kind: openai\n    accounts:\n"
             "      - {name: own, credential: 'env:ROTA_IT_KEY'}\n"
             "      - {name: theirs, credential: 'file:%s'}\n"
             "      - {name: shadow, credential: 'file:%s'}\n"
             "routes:\n  - name: chat\n    tiers:\n      - {provider: alpha}\n",
             t.instance, t.dir, p.key, p.link);
    it_config_text(&t, cfg);
    assert_int_equal(it_start(&t), 0); /* the others' matter: the rest of the table runs */
    char out[8192];
    assert_int_equal(it_rotactl(&t, "accounts chat", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "credential"));
    assert_int_equal(it_stop(&t, 15), 0);
    assert_true(it_log_has(&t, "is owned by uid"));
    assert_true(it_log_has(&t, "is a symbolic link; refused"));
    assert_false(it_log_has(&t, STRANGER_KEY));
    assert_false(it_log_has(&t, "root:"));
    if (shadow[0])
        assert_false(it_log_has(&t, shadow));
    unlink(p.key);
    unlink(p.link);
    rmdir(drop);
    it_cleanup(&t);
}

/* How many lines of rotad's log hold "text" (no quote in it). */
static int log_count(struct it *t, const char *text)
{
    char cmd[768], out[64];
    snprintf(cmd, sizeof(cmd), "grep -c -F '%s' %s", text, t->log);
    it_sh(cmd, out, sizeof(out), NULL, 0); /* grep exits 1 on none: 0 printed */
    return atoi(out);
}

/* Does rotad's log hold "key" or any run of 8 bytes of it? */
static bool log_has_piece(struct it *t, const char *key)
{
    char piece[9];
    for (size_t i = 0; i + 8 <= strlen(key); i++) {
        memcpy(piece, key + i, 8);
        piece[8] = 0;
        if (it_log_has(t, piece))
            return true;
    }
    return false;
}

static void write_key(const char *path, const char *key, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fprintf(f, "%s\n", key) > 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

#define KEY_B1 "ghp_B1xQz2Lm7Tt4Vv8Ww1Yy5Zz0Aa3Bb6Cc"
#define KEY_B2 "ghp_B2kq7Xw9Zr4Tp2Mn8Lc5Vb3Hj6Gf1Ds"

/* Account a's probe answers with the end of account b's key (a provider echoing another
 * account's key in its error body): rotad logs the verdict, and neither the key nor 8
 * bytes of it; after b's key changes and rotad reloads, the new key likewise. A key file
 * readable by others is warned about at start and at each reload, once per file. */
static void test_trust_files_echoed_key_redacted(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "trustecho");
    char keyb[256], echo[256], cfg[4096];
    snprintf(keyb, sizeof(keyb), "%s/b.key", t.dir);
    snprintf(echo, sizeof(echo), "%s/echo.txt", t.dir); /* what the "provider" echoes */
    write_key(keyb, KEY_B1, 0644);
    write_key(echo, KEY_B1, 0600);
    setenv("ROTA_IT_ECHO_A", "tokenEchoAlphaSecret", 1);
    snprintf(cfg, sizeof(cfg),
             "instance: %s\nstate_dir: %s/state\nproviders:\n"
             "  - name: copilot\n    kind: github-copilot\n"
             "    probe: {interval: 1s, jitter: 0s, timeout: 2s, command: \"printf "
             "'{\\\"message\\\":\\\"Bad credentials: token ...%%s\\\"}' \\\"$(cut -c 5- "
             "%s)\\\"\"}\n"
             "    accounts:\n      - {name: a, credential: 'env:ROTA_IT_ECHO_A'}\n"
             "  - name: other\n    kind: openai\n    probe: {enabled: false}\n"
             "    accounts:\n      - {name: b, credential: 'file:%s'}\n"
             "      - {name: b2, credential: 'file:%s'}\n"
             "routes:\n  - name: chat\n    tiers:\n      - {provider: other}\n",
             t.instance, t.dir, echo, keyb, keyb);
    it_config_text(&t, cfg);
    assert_int_equal(it_start(&t), 0);
    for (int i = 0; i < 200 && !it_log_has(&t, "token refused: Bad credentials"); i++)
        usleep(50000);
    assert_true(it_log_has(&t, "token refused: Bad credentials: token ...[redacted]"));
    assert_false(log_has_piece(&t, KEY_B1));
    /* a new key for b, read at a reload, then echoed: redacted as well */
    write_key(keyb, KEY_B2, 0644);
    char out[4096];
    assert_int_equal(it_rotactl(&t, "reload", out, sizeof(out)), 0);
    for (int i = 0; i < 200 && !it_log_has(&t, "reloaded"); i++)
        usleep(50000);
    assert_true(it_log_has(&t, "reloaded"));
    write_key(echo, KEY_B2, 0600);
    int before = log_count(&t, "token refused");
    for (int i = 0; i < 200 && log_count(&t, "token refused") < before + 2; i++)
        usleep(50000); /* probes answered with the new key's end */
    assert_true(log_count(&t, "token refused") >= before + 2);
    assert_int_equal(it_stop(&t, 15), 0);
    assert_false(log_has_piece(&t, KEY_B1));
    assert_false(log_has_piece(&t, KEY_B2));
    assert_false(log_has_piece(&t, "tokenEchoAlphaSecret"));
    /* the readable key file: one warning at start, one at the reload */
    char warn[320];
    snprintf(warn, sizeof(warn), "key file %s is readable by every user", keyb);
    assert_int_equal(log_count(&t, warn), 2);
    unsetenv("ROTA_IT_ECHO_A");
    unlink(keyb);
    unlink(echo);
    it_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_trust_files_config_refused, it_teardown),
        cmocka_unit_test_teardown(test_trust_files_stranger_key_files, it_teardown),
        cmocka_unit_test_teardown(test_trust_files_echoed_key_redacted, it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
