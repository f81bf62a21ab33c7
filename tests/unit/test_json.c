/* test_json: the translation's JSON (workers/json.h): the parser's strictness and its
 * messages, values kept as written, decoding, and the writer's commas and escapes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"

static struct rota_json *parse(struct rota_arena *a, const char *s, struct rota_json_err *e)
{
    return rota_json_parse(a, s, strlen(s), e);
}

static void test_values_keep_their_bytes(void **state)
{
    (void)state;
    struct rota_arena a;
    rota_arena_init(&a, 0);
    const char *s = " {\"a\\u0062\": \"x\\n\\u00e9\", \"n\": -1.5e3, \"l\": [1, {\"k\": null}],"
                    " \"t\": true, \"u\": 42} ";
    struct rota_json_err e;
    struct rota_json *v = parse(&a, s, &e);
    assert_non_null(v);
    assert_int_equal(v->type, ROTA_JSON_OBJECT);
    assert_int_equal(v->n, 5);
    const struct rota_json *ab = rota_json_get(v, "ab"); /* the key is decoded to compare */
    assert_non_null(ab);
    assert_int_equal(ab->len, strlen("\"x\\n\\u00e9\""));
    assert_memory_equal(ab->p, "\"x\\n\\u00e9\"", ab->len); /* as written */
    size_t n;
    const char *t = rota_json_text(&a, ab, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(t, "x\n\xc3\xa9", 4);
    const struct rota_json *l = rota_json_get(v, "l");
    assert_int_equal(l->type, ROTA_JSON_ARRAY);
    assert_int_equal(l->n, 2);
    assert_memory_equal(l->p, "[1, {\"k\": null}]", l->len);
    assert_non_null(rota_json_path(v, "l") );
    uint64_t u;
    assert_true(rota_json_uint(rota_json_get(v, "u"), &u));
    assert_int_equal(u, 42);
    assert_false(rota_json_uint(rota_json_get(v, "n"), &u));
    double d;
    assert_true(rota_json_double(rota_json_get(v, "n"), &d));
    assert_true(d == -1500.0);
    assert_true(rota_json_true(rota_json_get(v, "t")));
    assert_null(rota_json_get(v, "missing"));
    rota_arena_free(&a);
}

static void test_surrogates(void **state)
{
    (void)state;
    struct rota_arena a;
    rota_arena_init(&a, 0);
    struct rota_json *v = parse(&a, "\"\\ud83d\\ude00 \\ud800\"", NULL);
    size_t n;
    const char *t = rota_json_text(&a, v, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(t, "\xf0\x9f\x98\x80 \xef\xbf\xbd", 8);
    rota_arena_free(&a);
}

/* Each malformed text is refused with where and what. */
static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t at;
        const char *what;
    } bad[] = {
        {"{\"a\":1,}", 7, "expected a key in quotes"},
        {"[1,2", 4, "expected ',' or ']' in an array"},
        {"{\"a\" 1}", 5, "expected ':' after a key"},
        {"\"a\tb\"", 2, "a control character inside a string"},
        {"\"\\x\"", 2, "an unknown escape in a string"},
        {"\"\\u12g4\"", 2, "a \\u escape needs four hex digits"},
        {"01", 1, "more after the value"},
        {"1.", 2, "a number's fraction has no digit"},
        {"nul", 0, "an unexpected character"},
        {"{} x", 3, "more after the value"},
        {"", 0, "the text ends where a value is expected"},
        {"\"abc", 4, "a string is not closed"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rota_arena a;
        rota_arena_init(&a, 0);
        struct rota_json_err e = {0};
        assert_null(parse(&a, bad[i].s, &e));
        if (e.at != bad[i].at || strcmp(e.what, bad[i].what) != 0)
            fail_msg("%s: at %zu \"%s\"", bad[i].s, e.at, e.what);
        rota_arena_free(&a);
    }
    /* depth is bounded */
    char deep[2 * ROTA_JSON_DEPTH + 8];
    size_t k = 0;
    for (int i = 0; i <= ROTA_JSON_DEPTH; i++)
        deep[k++] = '[';
    for (int i = 0; i <= ROTA_JSON_DEPTH; i++)
        deep[k++] = ']';
    deep[k] = 0;
    struct rota_arena a;
    rota_arena_init(&a, 0);
    struct rota_json_err e;
    assert_null(parse(&a, deep, &e));
    assert_string_equal(e.what, "nested too deep");
    rota_arena_free(&a);
}

/* The arena's limit ends a parse as out of memory, never past it. */
static void test_arena_limit(void **state)
{
    (void)state;
    struct rota_arena a;
    rota_arena_init(&a, 4096);
    char big[8192];
    size_t k = 0;
    big[k++] = '[';
    while (k < sizeof(big) - 4) {
        big[k++] = '1';
        big[k++] = ',';
    }
    big[k++] = '1';
    big[k++] = ']';
    struct rota_json_err e;
    assert_null(rota_json_parse(&a, big, k, &e));
    assert_string_equal(e.what, "out of memory");
    assert_true(a.used <= 4096);
    rota_arena_free(&a);
}

static void test_writer(void **state)
{
    (void)state;
    struct rota_jbuf b;
    rota_jbuf_init(&b, 0);
    rota_jbuf_obj(&b);
    rota_jbuf_kstr(&b, "a\"b", "q\"\\\n\x01");
    rota_jbuf_key(&b, "list");
    rota_jbuf_arr(&b);
    rota_jbuf_u64(&b, 7);
    rota_jbuf_obj(&b);
    rota_jbuf_end(&b);
    rota_jbuf_null(&b);
    rota_jbuf_quote(&b, "{\"x\":1}", 7);
    rota_jbuf_end(&b);
    rota_jbuf_key(&b, "t");
    rota_jbuf_bool(&b, true);
    rota_jbuf_end(&b);
    assert_int_equal(b.err, 0);
    assert_string_equal(b.p, "{\"a\\\"b\":\"q\\\"\\\\\\n\\u0001\",\"list\":[7,{},null,"
                             "\"{\\\"x\\\":1}\"],\"t\":true}");
    /* and it parses back */
    struct rota_arena a;
    rota_arena_init(&a, 0);
    assert_non_null(rota_json_parse(&a, b.p, b.len, NULL));
    rota_arena_free(&a);
    /* a limit is sticky */
    rota_jbuf_reset(&b);
    b.max = 8;
    rota_jbuf_strz(&b, "0123456789");
    rota_jbuf_raw(&b, "x", 1);
    assert_int_equal(b.err, -EFBIG);
    rota_jbuf_free(&b);
}

/* A long text with escapes here and there is written back byte for byte. */
static void test_escape_round_trip(void **state)
{
    (void)state;
    char text[3000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)(i % 97 == 0 ? '"' : i % 89 == 0 ? '\n' : 'a' + i % 26);
    struct rota_jbuf b;
    rota_jbuf_init(&b, 0);
    rota_jbuf_str(&b, text, sizeof(text));
    struct rota_arena a;
    rota_arena_init(&a, 0);
    struct rota_json *v = rota_json_parse(&a, b.p, b.len, NULL);
    assert_non_null(v);
    size_t n;
    const char *t = rota_json_text(&a, v, &n);
    assert_int_equal(n, sizeof(text));
    assert_memory_equal(t, text, n);
    rota_arena_free(&a);
    rota_jbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_keep_their_bytes),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_arena_limit),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_escape_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
