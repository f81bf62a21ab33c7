/*
 * json.h - JSON for the translation between wire formats: a value tree parsed once into
 * an arena, and a writer.
 *
 * Private to the dispatch pool. No locks, no globals; any thread, one arena per request.
 *
 * DESIGN
 * Translation reads a body once and writes another, and most of a body is text that
 * crosses unchanged (prompts, answers, tool arguments). So a value keeps the bytes it
 * was written as: a string is its token, quotes and escapes included, and is written
 * back by copying those bytes, never decoded and encoded again. A string is decoded
 * only where its meaning is needed (a role, a type, a key), and keys are compared
 * decoded ("typ\u0065" is "type"). Containers are linked lists of their members in
 * order (kid, next), so a walk costs what the body costs; rota_json_get is a linear
 * scan of one object, which is short in every format we read.
 *
 * The parser is strict RFC 8259 (no comments, no trailing commas, control characters
 * refused in strings, one value and only white space after it), bounded in depth
 * (ROTA_JSON_DEPTH) and in memory (the arena's limit). It says what is wrong and at
 * which byte. Strings are scanned many bytes at a time (formats_scan.c's run of plain
 * bytes). Escapes are checked for form, not decoded; invalid UTF-8 passes as bytes (the
 * provider is its judge, as in pass-through).
 *
 * The writer (struct rota_jbuf) appends to a growing buffer and puts the commas itself:
 * open an object or array, then write keys and values in order, then end it. Errors
 * are sticky: the first one (out of memory, over the buffer's limit) stays in "err"
 * and every later write does nothing, so a caller checks once at the end.
 */
#ifndef ROTA_JSON_H
#define ROTA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROTA_JSON_DEPTH 128 /* containers inside containers, at most */

/* ---- arena ---- */

/* A bump allocator: chunks freed all at once. "limit" bounds the bytes it hands out. */
struct rota_arena {
    struct rota_arena_chunk *chunk;
    char *p, *end;
    size_t used, limit;
};

void rota_arena_init(struct rota_arena *a, size_t limit);
/* "n" bytes, 8-aligned, or NULL (out of memory, or over the limit). */
void *rota_arena_alloc(struct rota_arena *a, size_t n);
/* A NUL-ended copy of "n" bytes at "p", or NULL. */
char *rota_arena_dup(struct rota_arena *a, const char *p, size_t n);
/* Forget everything handed out; the first chunk is kept for the next use. */
void rota_arena_reset(struct rota_arena *a);
void rota_arena_free(struct rota_arena *a);

/* ---- values ---- */

enum rota_json_type {
    ROTA_JSON_NULL,
    ROTA_JSON_FALSE,
    ROTA_JSON_TRUE,
    ROTA_JSON_NUMBER,
    ROTA_JSON_STRING,
    ROTA_JSON_ARRAY,
    ROTA_JSON_OBJECT,
};

struct rota_json {
    enum rota_json_type type;
    uint32_t n;       /* an array's elements, an object's members */
    const char *p;    /* the value as written: a string with its quotes, a container whole */
    size_t len;
    const char *key;  /* a member's key as written, quotes included; NULL in an array */
    uint32_t klen;
    bool escaped;     /* a string (the value) holds an escape: its bytes are not its text */
    bool kescaped;    /* the key holds one */
    struct rota_json *kid, *next; /* a container's first element or member; the next one */
};

/* Where and why a parse failed. */
struct rota_json_err {
    size_t at;        /* byte offset in the input */
    char what[96];    /* "expected ':' after a key", ... */
};

/* The value in "len" bytes at "buf", its nodes in "a" (the input must outlive them).
 * NULL on error, with "e" said (and "e->what" "out of memory" when the arena's limit
 * was reached). */
struct rota_json *rota_json_parse(struct rota_arena *a, const char *buf, size_t len,
                                  struct rota_json_err *e);

/* The member "key" of object "o" (the first when it appears twice), or NULL (absent, or
 * "o" NULL or not an object). */
const struct rota_json *rota_json_get(const struct rota_json *o, const char *key);
/* The member at the end of "path", keys separated by '.' ("usage.input_tokens"). */
const struct rota_json *rota_json_path(const struct rota_json *o, const char *path);

/* Is "v" the string "s" (decoded)? False for NULL or a non-string. */
bool rota_json_is(const struct rota_json *v, const char *s);
/* Is member "m"'s key "key" (decoded)? */
bool rota_json_key_is(const struct rota_json *m, const char *key);
/* The decoded text of string "v": a pointer into the input when it holds no escape,
 * else a copy in "a" (NUL-ended), with its length in "*len". NULL when "v" is not a
 * string or out of memory. Invalid \u escapes (lone surrogates) become U+FFFD. */
const char *rota_json_text(struct rota_arena *a, const struct rota_json *v, size_t *len);
/* The decoded key of member "m" (as rota_json_text). */
const char *rota_json_key(struct rota_arena *a, const struct rota_json *m, size_t *len);
/* A number that is a non-negative integer (no fraction, no exponent) below 2^63 into
 * "*out"; false otherwise. */
bool rota_json_uint(const struct rota_json *v, uint64_t *out);
/* Any number into "*out"; false for a non-number. */
bool rota_json_double(const struct rota_json *v, double *out);
/* true for JSON true, false for anything else. */
bool rota_json_true(const struct rota_json *v);

/* ---- writer ---- */

struct rota_jbuf {
    char *p;
    size_t len, cap, max; /* max: the most it may hold; 0 = no limit */
    int err;              /* 0, -ENOMEM or -EFBIG: the first failure, sticky */
    uint8_t depth;
    bool after_key;       /* a key was written: its value needs no comma */
    uint64_t first;       /* bit d: the container at depth d has nothing in it yet */
    uint64_t is_obj;      /* bit d: the container at depth d is an object */
};

void rota_jbuf_init(struct rota_jbuf *b, size_t max);
/* Empty it for reuse (keeps its memory). */
void rota_jbuf_reset(struct rota_jbuf *b);
void rota_jbuf_free(struct rota_jbuf *b);
/* Take its bytes: the caller frees them; "b" is empty after. */
char *rota_jbuf_take(struct rota_jbuf *b, size_t *len);

/* Bytes as they are, with no comma (framing: "data: ", "\n\n", a whole event). */
void rota_jbuf_raw(struct rota_jbuf *b, const char *p, size_t n);
void rota_jbuf_rawz(struct rota_jbuf *b, const char *s);

/* Structure: "{" or "[" (with the comma before it where one is due), and its end. */
void rota_jbuf_obj(struct rota_jbuf *b);
void rota_jbuf_arr(struct rota_jbuf *b);
void rota_jbuf_end(struct rota_jbuf *b);
/* A member's key ("key" is plain text: quoted and escaped here). */
void rota_jbuf_key(struct rota_jbuf *b, const char *key);

/* Values (with the comma before them where one is due). */
void rota_jbuf_val(struct rota_jbuf *b, const struct rota_json *v); /* as written */
void rota_jbuf_json(struct rota_jbuf *b, const char *p, size_t n);  /* JSON text as is */
void rota_jbuf_str(struct rota_jbuf *b, const char *s, size_t n);   /* text, quoted */
void rota_jbuf_strz(struct rota_jbuf *b, const char *s);
/* JSON text "p" as the content of a string: quoted and escaped ({"a":1} becomes
 * "{\"a\":1}"), as OpenAI carries tool arguments. */
void rota_jbuf_quote(struct rota_jbuf *b, const char *p, size_t n);
void rota_jbuf_u64(struct rota_jbuf *b, uint64_t v);
void rota_jbuf_bool(struct rota_jbuf *b, bool v);
void rota_jbuf_null(struct rota_jbuf *b);

/* The escaped text of "s" (no quotes, no comma), to build a string piece by piece
 * between rota_jbuf_raw(b, "\"", 1) calls. */
void rota_jbuf_esc(struct rota_jbuf *b, const char *s, size_t n);

/* Shorthands: a key and its value. */
void rota_jbuf_kstr(struct rota_jbuf *b, const char *key, const char *s);
void rota_jbuf_ku64(struct rota_jbuf *b, const char *key, uint64_t v);
void rota_jbuf_kval(struct rota_jbuf *b, const char *key, const struct rota_json *v);

#endif
