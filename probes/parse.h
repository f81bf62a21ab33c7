/*
 * parse.h - one parser per provider: from an HTTP answer to quota observations (private
 * to rota).
 *
 * DESIGN
 * A parser is a pure function of (status, headers, body, the time it arrived): no I/O, no
 * globals, no allocation that outlives the call, safe from any thread. The probe threads
 * call it on their probes' answers; librota's report path calls it on the headers and
 * error body a worker passes in (passive tracking); `rotactl parse` calls it on files.
 * Providers change their formats without notice: every field may be missing, reordered,
 * of the wrong type, huge, negative or not UTF-8. A parser takes what it can, counts and
 * names what it had to skip (struct rota_obs.problems / .problem), and never crashes or
 * reads past "len". Units and instants are converted once, here: windows in the metric's
 * own unit (fractions in millionths), instants as wall-clock ns.
 */
#ifndef ROTA_PROBES_PARSE_H
#define ROTA_PROBES_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h" /* enum rota_metric */

#define ROTA_OBS_WINDOWS    16
#define ROTA_PARSE_MAX_BODY (1u << 20) /* bodies are cut here before parsing */

/* Why an account must wait or stop. */
enum rota_cause {
    ROTA_CAUSE_NONE = 0,
    ROTA_CAUSE_RATE = 1,     /* a short-term rate limit (per minute, per second) */
    ROTA_CAUSE_QUOTA = 2,    /* a longer quota is used up (per day, week, month) */
    ROTA_CAUSE_CAPACITY = 3, /* the provider is overloaded: not the account's fault */
    ROTA_CAUSE_BILLING = 4,  /* out of credit, spend limit reached */
    ROTA_CAUSE_AUTH = 5,     /* the key is refused */
};

/* One bucket the provider reported. */
struct rota_obs_window {
    char pool[64];  /* "" = the account as a whole; else the provider's model or quota id */
    char what[32];  /* the provider's name for the bucket: "requests", "input-tokens", ... */
    uint8_t metric; /* enum rota_metric */
    bool has_limit, has_remaining, has_used;
    uint64_t limit, remaining, used; /* ROTA_METRIC_FRACTION: millionths (limit 1000000) */
    int64_t reset_at; /* wall-clock ns when the bucket is full again; 0 = not said */
};

/* What one answer says about one account. */
struct rota_obs {
    uint32_t nwin;
    struct rota_obs_window win[ROTA_OBS_WINDOWS];
    int64_t retry_at;      /* wall-clock ns before which the account should not be called
                              (Retry-After and its relatives); 0 = not said */
    uint8_t cause;         /* enum rota_cause of a 429/403/402/5xx; NONE for a plain answer */
    bool disable;          /* take the account out of rotation (auth, billing) */
    int64_t disable_until; /* with "disable": wall ns it may come back; 0 = until enabled */
    bool reachable;        /* the answer proves the account (or server) works: 2xx, health ok */
    char detail[160];      /* one line for operators: what the parser understood; never a key */
    uint32_t problems;     /* fields that were malformed or unexpected and were skipped */
    char problem[160];     /* the first of them: "where: what was wrong" */
};

/* The answer to parse. Headers are raw "Name: value" lines (CRLF or LF), as received. */
struct rota_http_in {
    int status; /* 0 = no HTTP answer (an exec probe's output is the body) */
    const char *headers;
    size_t headers_len;
    const char *body;
    size_t body_len;
    int64_t now; /* wall-clock ns when it arrived: relative resets count from here */
};

/* Per-account settings a parser may need (the generic JSON probe's pointers). */
struct rota_parse_opts {
    const char *used_ptr, *limit_ptr, *remaining_ptr, *reset_ptr; /* RFC 6901 pointers */
    uint8_t metric; /* what the generic probe's figures count */
};

/* Returns 1 when the answer said something about quota, limits, cooldown or health,
 * 0 when it said nothing relevant (e.g. a 200 without rate-limit headers), or -EINVAL
 * when what should have been there was malformed (out->problem says what). "out" is
 * always initialised, and holds whatever could be read even on -EINVAL. */
typedef int (*rota_parse_fn)(const struct rota_http_in *in, const struct rota_parse_opts *o,
                             struct rota_obs *out);

struct rota_parser {
    const char *kind; /* the config's provider kind */
    rota_parse_fn parse;
};

/* The parser of a provider kind ("openai", "azure-openai", "anthropic", "gemini",
 * "github-copilot", "github", "antigravity", "openrouter", "llamacpp", "generic"); NULL
 * when there is none. "exec" probes parse their command's output with the kind they
 * stand in for. */
const struct rota_parser *rota_parser_find(const char *kind);

/* Every parser, NULL-terminated (for tests, fuzzing and `rotactl parse`). */
extern const struct rota_parser *const rota_parsers[];

/* The parsers, one file each (parse_<kind>.c); the registry is parse_registry.c. */
int rota_parse_openai(const struct rota_http_in *in, const struct rota_parse_opts *o,
                      struct rota_obs *out);
int rota_parse_azure(const struct rota_http_in *in, const struct rota_parse_opts *o,
                     struct rota_obs *out);
int rota_parse_anthropic(const struct rota_http_in *in, const struct rota_parse_opts *o,
                         struct rota_obs *out);
int rota_parse_gemini(const struct rota_http_in *in, const struct rota_parse_opts *o,
                      struct rota_obs *out);
int rota_parse_copilot(const struct rota_http_in *in, const struct rota_parse_opts *o,
                       struct rota_obs *out);
int rota_parse_github(const struct rota_http_in *in, const struct rota_parse_opts *o,
                      struct rota_obs *out);
int rota_parse_antigravity(const struct rota_http_in *in, const struct rota_parse_opts *o,
                           struct rota_obs *out);
int rota_parse_openrouter(const struct rota_http_in *in, const struct rota_parse_opts *o,
                          struct rota_obs *out);
int rota_parse_llamacpp(const struct rota_http_in *in, const struct rota_parse_opts *o,
                        struct rota_obs *out);
int rota_parse_generic(const struct rota_http_in *in, const struct rota_parse_opts *o,
                       struct rota_obs *out);

/* ---- helpers every parser uses (parse_util.c) ---- */

/* Start "out" empty. */
void rota_obs_init(struct rota_obs *out);

/* Add a window; NULL when all ROTA_OBS_WINDOWS are taken (counted as a problem). */
struct rota_obs_window *rota_obs_window_add(struct rota_obs *out, const char *pool,
                                            const char *what, uint8_t metric);

/* Count a problem; the first one's text is kept ("where: what"). */
void rota_obs_problem(struct rota_obs *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append to out->detail ("; "-separated), cut at its size. */
void rota_obs_detail(struct rota_obs *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value of header "name" (case-insensitive), trimmed, copied NUL-terminated into
 * "buf". Returns its length, or -1 when absent (or longer than "cap" - 1). The first of
 * repeated headers wins. */
int rota_http_header(const struct rota_http_in *in, const char *name, char *buf, size_t cap);

/* Go-style duration ("1s", "6m0s", "20ms", "1h2m3.5s", "150us"), or a bare number of
 * seconds when "bare_seconds"; into ns, a fraction of a ns rounded up (never a wait
 * shorter than said). 0 or -EINVAL. Negative durations are refused. */
int rota_parse_go_duration(const char *s, bool bare_seconds, uint64_t *ns);

/* RFC 3339 / ISO 8601 instant ("2025-08-21T12:40:59Z", "...59.123+02:00", and a bare
 * date "2026-04-01" as its midnight UTC) into wall-clock ns, second fractions finer than
 * a ns rounded up. 0 or -EINVAL. */
int rota_parse_rfc3339(const char *s, int64_t *ns);

/* An HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT") into wall-clock ns. 0 or -EINVAL. */
int rota_parse_http_date(const char *s, int64_t *ns);

/* A non-negative integer, decimal, fully consumed, no overflow; also accepts a JSON-ish
 * string of digits. 0 or -EINVAL. */
int rota_parse_u64(const char *s, uint64_t *v);

/* A non-negative decimal with an optional fraction ("12", "1.78", ".5", "3."), fully
 * consumed, of "unit" ns each (at most UINT64_MAX / 10), into ns rounded up: a time
 * ("1764003600.5" s) is never made earlier. 0 or -EINVAL, also past UINT64_MAX ns. */
int rota_parse_decimal_ns(const char *s, uint64_t unit, uint64_t *ns);

/* Retry hints of an answer: "retry-after-ms" first, then "retry-after" (seconds, maybe
 * fractional, or an HTTP-date), as an instant from in->now, a fraction of a ns rounded
 * up. 0 when there is none. */
int64_t rota_http_retry_at(const struct rota_http_in *in, struct rota_obs *out);

/* "now" + "d" ns; 0 ("not said") when that does not fit an int64. */
int64_t rota_ns_after(int64_t now, uint64_t d);

/* "now" + "d" ns, held at INT64_MAX when that does not fit: a wait that is always said. */
int64_t rota_ns_later(int64_t now, int64_t d);

/* "d" ns in whole seconds, rounded up (toward +inf): how a wait is told to an operator,
 * never shorter than it is. */
int64_t rota_ns_secs_up(int64_t d);

/* Does "s" end with "tail"? */
bool rota_str_ends_with(const char *s, const char *tail);

/* The JSON helpers the parsers share are in parse_json.h, apart from this header so that
 * only the parsers see jansson. */

#endif
