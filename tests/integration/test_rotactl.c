/* test_rotactl: every rotactl command against a real rotad, in words and in JSON, and
 * again with rotad stopped: read-only views still work, the rest say rotad is down. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "rota.h"
#include "rotad_harness.h"

#define OUT_MAX (64 * 1024)

static char out[OUT_MAX];

/* Run rotactl; assert its exit status; return its output. */
static const char *ctl(struct it *t, int want, const char *args)
{
    int rc = it_rotactl(t, args, out, sizeof(out));
    if (rc != want)
        fail_msg("rotactl %s: exit %d, wanted %d; output:\n%s", args, rc, want, out);
    assert_null(strstr(out, "sk-it-secret")); /* never a credential */
    return out;
}

/* Run rotactl --json; the output must parse; returns it (caller frees). */
static json_t *ctl_json(struct it *t, int want, const char *args)
{
    char full[512];
    snprintf(full, sizeof(full), "--json %s", args);
    ctl(t, want, full);
    json_error_t e;
    json_t *v = json_loads(out, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("rotactl --json %s: not JSON (%s at %d):\n%s", args, e.text, e.position, out);
    return v;
}

/* Make some traffic so the views have something to show. */
static void traffic(struct it *t, int n)
{
    rota_t *h;
    rota_route_t rt;
    assert_int_equal(rota_attach(t->instance, &h, NULL, 0), 0);
    assert_int_equal(rota_route(h, "chat", &rt), 0);
    for (int i = 0; i < n; i++) {
        rota_choice c;
        if (rota_select(h, &rt, NULL, 0, 0, &c) == 0) {
            rota_outcome o = {.status = 200};
            rota_report(h, &c, &o);
        }
    }
    rota_detach(h);
}

static void test_rotactl_every_command_with_rotad(void **state)
{
    (void)state;
    struct it t;
    it_init(&t, "ctl");
    it_config(&t, 3, 100, NULL);
    assert_int_equal(it_start(&t), 0);
    traffic(&t, 30);

    const char *s = ctl(&t, 0, "status");
    assert_non_null(strstr(s, t.instance));
    assert_null(strstr(s, "not running"));
    json_t *j = ctl_json(&t, 0, "status");
    assert_true(json_is_object(json_object_get(j, "daemon")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "table"), "accounts")), 6);
    json_decref(j);

    s = ctl(&t, 0, "accounts");
    assert_non_null(strstr(s, "alpha/a0"));
    assert_non_null(strstr(s, "local/l0"));
    s = ctl(&t, 0, "accounts chat");
    assert_non_null(strstr(s, "tier 0"));
    j = ctl_json(&t, 0, "accounts chat-model");
    assert_int_equal(json_array_size(j), 6);
    uint64_t selected = 0;
    size_t i;
    json_t *a;
    json_array_foreach(j, i, a) selected +=
        (uint64_t)json_integer_value(json_object_get(a, "selections"));
    assert_int_equal(selected, 30);
    json_decref(j);
    ctl(&t, 1, "accounts no-such-route");

    s = ctl(&t, 0, "show alpha/a1");
    assert_non_null(strstr(s, "a1"));
    j = ctl_json(&t, 0, "show a1");
    assert_string_equal(json_string_value(json_object_get(j, "provider")), "alpha");
    char byid[64];
    snprintf(byid, sizeof(byid), "show %s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    ctl(&t, 0, byid);
    ctl(&t, 1, "show nobody");

    s = ctl(&t, 0, "watch --count 2 --interval 100ms");
    assert_non_null(strstr(s, "alpha/a0"));

    /* Operator actions: each visible in the views. */
    ctl(&t, 0, "disable alpha/a0 --for 10m --reason 'key rotation'");
    j = ctl_json(&t, 0, "show alpha/a0");
    assert_string_equal(json_string_value(json_object_get(j, "off")), "operator");
    assert_true(json_integer_value(json_object_get(j, "off_left_ms")) > 500000);
    assert_string_equal(json_string_value(json_object_get(j, "note")), "key rotation");
    json_decref(j);
    s = ctl(&t, 0, "show alpha/a0");
    assert_non_null(strstr(s, "key rotation"));
    ctl(&t, 0, "enable alpha/a0");
    j = ctl_json(&t, 0, "show alpha/a0");
    assert_string_equal(json_string_value(json_object_get(j, "off")), "");
    json_decref(j);

    ctl(&t, 0, "cooldown alpha/a2 5m");
    j = ctl_json(&t, 0, "show alpha/a2");
    assert_true(json_integer_value(json_object_get(j, "cooldown_left_ms")) > 200000);
    json_decref(j);
    ctl(&t, 0, "cooldown alpha/a2 0s");
    ctl(&t, 2, "cooldown alpha/a2 soon");

    ctl(&t, 0, "reset alpha/a1");
    j = ctl_json(&t, 0, "show alpha/a1");
    json_t *w0 = json_array_get(json_object_get(j, "windows"), 0);
    assert_int_equal(json_integer_value(json_object_get(w0, "used")), 0);
    json_decref(j);
    ctl(&t, 0, "reset alpha/a1 '*'");
    ctl(&t, 1, "reset alpha/a1 no-such-pool");

    /* Dry run: the choice and the reasons, and nothing counted. */
    j = ctl_json(&t, 0, "accounts chat");
    uint64_t before = 0;
    json_array_foreach(j, i, a) before +=
        (uint64_t)json_integer_value(json_object_get(a, "selections"));
    json_decref(j);
    s = ctl(&t, 0, "select chat --key user-42");
    assert_non_null(strstr(s, "chat -> alpha/"));
    j = ctl_json(&t, 0, "select chat-model");
    assert_false(json_is_true(json_object_get(j, "exhausted")));
    json_decref(j);
    j = ctl_json(&t, 0, "accounts chat");
    uint64_t after = 0;
    json_array_foreach(j, i, a) after +=
        (uint64_t)json_integer_value(json_object_get(a, "selections"));
    json_decref(j);
    assert_int_equal(after, before);

    /* Drain a provider: the dry run now falls to the next tier and says why. */
    s = ctl(&t, 0, "drain alpha");
    assert_non_null(strstr(s, "draining 3 accounts"));
    j = ctl_json(&t, 0, "select chat");
    assert_int_equal(json_integer_value(json_object_get(j, "tier")), 1);
    json_t *skipped =
        json_object_get(json_array_get(json_object_get(j, "tiers"), 0), "skipped");
    assert_string_equal(json_string_value(json_array_get(skipped, 0)), "disabled");
    json_decref(j);
    s = ctl(&t, 0, "drain beta/b0");
    assert_non_null(strstr(s, "beta/b0"));
    for (int k = 0; k < 3; k++) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "enable alpha/a%d", k);
        ctl(&t, 0, cmd);
    }

    s = ctl(&t, 0, "reload");
    assert_non_null(strstr(s, "unchanged"));

    /* Usage errors. */
    ctl(&t, 2, "");
    ctl(&t, 2, "frobnicate");
    ctl(&t, 2, "show");
    ctl(&t, 1, "enable nobody");
    ctl(&t, 2, "disable alpha/a0 --for");

    /* rotad stops: views still work from the table; actions say rotad is down. */
    assert_int_equal(it_stop(&t, SIGTERM), 0);
    s = ctl(&t, 0, "status");
    assert_non_null(strstr(s, "not running"));
    j = ctl_json(&t, 0, "status");
    assert_true(json_is_null(json_object_get(j, "daemon")));
    json_decref(j);
    s = ctl(&t, 0, "accounts chat");
    assert_non_null(strstr(s, "alpha/a0"));
    ctl(&t, 0, "show alpha/a0");
    ctl(&t, 0, "watch --count 1");
    const char *remote[] = {"enable alpha/a0",      "disable alpha/a0", "reset alpha/a0",
                            "cooldown alpha/a0 1m", "select chat",      "reload",
                            "drain alpha"};
    for (size_t k = 0; k < sizeof(remote) / sizeof(remote[0]); k++) {
        s = ctl(&t, 3, remote[k]);
        assert_non_null(strstr(s, "not running"));
    }
    it_cleanup(&t);
    /* No such instance at all. */
    ctl(&t, 3, "status");
    ctl(&t, 3, "accounts");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rotactl_every_command_with_rotad, it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
