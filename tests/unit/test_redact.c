/* test_redact: every credential of an instance, whole or any run of 8 bytes of it (a
 * provider's "sk-proj-Ab12...", "ending in ...9xQz2Lm7", a verdict cut short), is taken
 * out of a text, for one key or among 10,000; shorter fragments and other text stay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "redact.h"

#define KEY_A "sk-proj-Ab12Cd34Ef56Gh78Ij90KlMnOpQr"
#define KEY_B "ghp_9xQz2Lm7Tt4Vv8Ww1Yy5Zz0Aa3Bb6Cc"

static struct rota_redact *set_of(const char *const *keys, uint32_t n)
{
    struct rota_redact *r = NULL;
    assert_int_equal(rota_redact_new(keys, n, NULL, &r), 0);
    assert_non_null(r);
    return r;
}

/* Redact "in" with "r" in a buffer of "cap" bytes and compare with "want". */
static void expect(const struct rota_redact *r, size_t cap, const char *in, const char *want)
{
    char buf[512];
    assert_true(cap <= sizeof(buf));
    snprintf(buf, cap, "%s", in);
    rota_redact_text(r, buf, cap);
    if (strcmp(buf, want) != 0)
        fail_msg("\"%s\" became \"%s\", expected \"%s\"", in, buf, want);
}

static void test_redact_whole_and_in_part(void **state)
{
    (void)state;
    const char *keys[] = {KEY_A, KEY_B};
    struct rota_redact *r = set_of(keys, 2);
    expect(r, 200, "near '" KEY_A "' and " KEY_A "!", "near '[redacted]' and [redacted]!");
    /* a verdict cut short: the key's start */
    expect(r, 200, "expected near 'sk-proj-Ab12", "expected near '[redacted]");
    /* a provider's mask: the start and the end, 8 bytes or more each */
    expect(r, 200, "Incorrect API key provided: sk-proj-Ab12********************OpQr.",
           "Incorrect API key provided: [redacted]********************OpQr.");
    expect(r, 200, "token ending in ...Aa3Bb6Cc refused",
           "token ending in ...[redacted] refused");
    /* a run from the middle of another key, glued to text */
    expect(r, 200, "x=Tt4Vv8Ww1Yy;", "x=[redacted];");
    /* fewer than 8 bytes of a key stay: ordinary text cannot be told from them */
    expect(r, 200, "sk-proj sk-abc...OpQr 9xQz2Lm", "sk-proj sk-abc...OpQr 9xQz2Lm");
    /* two keys back to back merge into one */
    expect(r, 200, "[" KEY_A KEY_B "]", "[[redacted]]");
    /* the replacement, longer than what it replaces, is cut at the buffer's end */
    expect(r, 16, "abc Aa3Bb6Cc xyz", "abc [redacted] ");
    rota_redact_unref(r);
}

static void test_redact_short_keys_and_none(void **state)
{
    (void)state;
    const char *keys[] = {"abc", NULL, "", KEY_A};
    struct rota_redact *r = set_of(keys, 4);
    expect(r, 16, "x abc yyyyyyyy", "x [redacted] yy");
    rota_redact_unref(r);
    char buf[32] = "nothing here";
    rota_redact_text(NULL, buf, sizeof(buf));
    assert_string_equal(buf, "nothing here");
    struct rota_redact *empty = set_of(NULL, 0);
    rota_redact_text(empty, buf, sizeof(buf));
    assert_string_equal(buf, "nothing here");
    rota_redact_unref(empty);
}

/* No byte of a redacted key stays in the buffer past the string's end either. */
static void test_redact_leaves_nothing_behind(void **state)
{
    (void)state;
    const char *keys[] = {KEY_B};
    struct rota_redact *r = set_of(keys, 1);
    char buf[96];
    memset(buf, 0, sizeof(buf));
    snprintf(buf, sizeof(buf), "401: %s", KEY_B);
    rota_redact_text(r, buf, sizeof(buf));
    assert_string_equal(buf, "401: [redacted]");
    for (size_t i = 0; i + 8 <= sizeof(buf); i++)
        if (memcmp(buf + i, &KEY_B[20], 8) == 0)
            fail_msg("a piece of the key is left at byte %zu", i);
    rota_redact_unref(r);
}

/* Among 10,000 accounts' keys, a piece of any one is found; one set per generation: the
 * next one's keys are its own. */
static void test_redact_among_many_and_per_generation(void **state)
{
    (void)state;
    enum { N = 10000 };
    static char keys[N][48];
    const char *ptr[N];
    for (uint32_t i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "sk-live-%08x%08x%08x", i * 2654435761u,
                 i ^ 0x5bd1e995u, (i + 7) * 40503u);
        ptr[i] = keys[i];
    }
    struct rota_redact *r = set_of(ptr, N);
    char text[160], want[160];
    for (uint32_t i = 0; i < N; i += 997) {
        snprintf(text, sizeof(text), "account %u echoes ...%s!", i, keys[i] + 14);
        snprintf(want, sizeof(want), "account %u echoes ...[redacted]!", i);
        expect(r, sizeof(text), text, want);
    }
    expect(r, 160, "an answer with no key in it", "an answer with no key in it");
    const char *next[] = {"sk-next-generation-key-0001"};
    struct rota_redact *r2 = set_of(next, 1);
    snprintf(text, sizeof(text), "%s / %s", keys[1], next[0]);
    snprintf(want, sizeof(want), "%s / [redacted]", keys[1]);
    expect(r2, sizeof(text), text, want);
    snprintf(want, sizeof(want), "[redacted] / %s", next[0]);
    expect(r, sizeof(text), text, want);
    struct rota_redact *held = rota_redact_ref(r); /* a thread still using the old one */
    rota_redact_unref(r);
    snprintf(want, sizeof(want), "[redacted] / %s", next[0]);
    expect(held, sizeof(text), text, want);
    rota_redact_unref(held);
    rota_redact_unref(r2);
}

/* A key rotated out at a reload may still be valid and be echoed: the set of the next
 * generation, built with the last one's, redacts both generations' keys (short ones too),
 * and the one after that lets the oldest go. */
static void test_redact_keeps_the_last_generation(void **state)
{
    (void)state;
    const char *g1[] = {KEY_A, "tiny"}, *g2[] = {KEY_B}, *g3[] = {"sk-third-generation-key"};
    struct rota_redact *r1 = set_of(g1, 2), *r2 = NULL, *r3 = NULL;
    assert_int_equal(rota_redact_new(g2, 1, r1, &r2), 0);
    rota_redact_unref(r1); /* the last generation's set may be gone: r2 holds its own */
    expect(r2, 200, "old " KEY_A " new " KEY_B " tiny",
           "old [redacted] new [redacted] [redacted]");
    expect(r2, 200, "...Gh78Ij90KlMn...", "...[redacted]...");
    assert_int_equal(rota_redact_new(g3, 1, r2, &r3), 0);
    expect(r3, 200, "1 " KEY_A " 2 " KEY_B " 3 sk-third-generation-key",
           "1 " KEY_A " 2 [redacted] 3 [redacted]");
    rota_redact_unref(r2);
    rota_redact_unref(r3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_whole_and_in_part),
        cmocka_unit_test(test_redact_short_keys_and_none),
        cmocka_unit_test(test_redact_leaves_nothing_behind),
        cmocka_unit_test(test_redact_among_many_and_per_generation),
        cmocka_unit_test(test_redact_keeps_the_last_generation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
