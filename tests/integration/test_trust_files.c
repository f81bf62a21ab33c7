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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_trust_files_config_refused, it_teardown),
        cmocka_unit_test_teardown(test_trust_files_stranger_key_files, it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
