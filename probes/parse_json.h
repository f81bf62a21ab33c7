/*
 * parse_json.h - reading a provider's JSON body: what the parsers that parse one share
 * (private to the parsers; defined in parse_util.c).
 *
 * DESIGN
 * Apart from parse.h so that only the parsers see jansson: parse.h is also included by
 * the probe thread, observe.c, librota's report path and rotactl. The same rules as
 * parse_util.c hold: pure functions, safe from any thread, input untrusted. A tree
 * returned here belongs to the caller, who json_decref()s it before returning: nothing
 * JSON outlives a parser's call. The helpers say how a value is read (a count, an
 * instant, the status an error stands for), never what a provider's field means: that
 * stays in the parser's own file.
 */
#ifndef ROTA_PROBES_PARSE_JSON_H
#define ROTA_PROBES_PARSE_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "parse.h"

/* How much a body must be JSON (rota_json_body). A body starts like JSON when its first
 * byte after blanks is '{', '[' or NUL (binary, so no proxy's error page either). */
enum rota_json_want {
    ROTA_JSON_WANT_NONE,    /* never: a body that is not JSON is no problem */
    ROTA_JSON_WANT_IF_LIKE, /* only when it starts like JSON */
    ROTA_JSON_WANT_ALWAYS,  /* always: an empty or broken body is a problem */
};

/* The first byte of the body that is not a blank (space, tab, CR, LF) within its first
 * ROTA_PARSE_MAX_BODY bytes; NULL when there is none. A NUL byte is not a blank. */
const char *rota_json_body_start(const struct rota_http_in *in);

/* The body, cut at ROTA_PARSE_MAX_BODY, as JSON into *root (NULL when it is not JSON, or
 * is empty or blank). Returns -EINVAL, with a problem counted, when "want" says it should
 * have been JSON and is not; else 0. Integers too big for jansson are read again as
 * reals, so a huge figure costs one field, not the whole answer. */
int rota_json_body(const struct rota_http_in *in, enum rota_json_want want,
                   struct rota_obs *out, json_t **root);

/* The whole body as JSON, or NULL: when it is empty, longer than ROTA_PARSE_MAX_BODY
 * (refused, not cut) or not JSON, each counted as a problem unless "quiet". Huge integers
 * are read as reals, as by rota_json_body. */
json_t *rota_json_body_or_null(const struct rota_http_in *in, bool quiet, struct rota_obs *out);

/* Does the body open with '{' after blanks (space, tab, CR, LF)? The whole body is
 * looked at, not only its first ROTA_PARSE_MAX_BODY bytes. */
bool rota_json_looks_like_object(const struct rota_http_in *in);

/* "an object", "an array", "a string", "a number", "a boolean" or "null", for problem
 * texts ("where: a string, not a number"). */
const char *rota_json_type_name(const json_t *v);

/* The "error" object of a body, also inside a one-element array (how streamed answers
 * wrap it); NULL when there is none or it is not an object. */
json_t *rota_json_error_of(json_t *root);

/* A non-negative integer given as a JSON integer, an integral real or a string of digits
 * (how Google writes int64) into *x. 0 or -EINVAL. */
int rota_json_u64(const json_t *v, uint64_t *x);

/* A non-negative time of "unit" ns each (a multiple of 1000), given as a JSON integer, a
 * real or a string of decimal digits with an optional fraction ("1764003600.25"), into
 * *ns, rounded up, never down: a string to the ns (rota_parse_decimal_ns), a real to the
 * thousandth of "unit" (a double holds about 16 digits: within two units of its last
 * place a real is taken as the whole thousandth it stands for, so 1764003600.3 s is
 * exactly its ms). "unit" is a multiple of 1000 ns. 0 or -EINVAL: negative, not a number,
 * past UINT64_MAX ns, or a "unit" that is not such a multiple. */
int rota_json_ns(const json_t *v, uint64_t unit, uint64_t *ns);

/* A string holding an RFC 3339 instant after 1970 (rota_parse_rfc3339) into *ns; *ns is
 * untouched unless it is one. 0 or -EINVAL. */
int rota_json_instant(const json_t *v, int64_t *ns);

/* The status an answer stands for when it or its error object "err" (NULL when the body
 * has none) says so: the status line, except that an error inside a 2xx or an exec
 * probe's output (status 0) speaks with err.code when that is an HTTP status
 * (rota_json_u64, 100..599). -1 when err.code is not one: the caller reads the error's
 * other fields. */
int rota_json_status(const struct rota_http_in *in, json_t *err);

#endif
