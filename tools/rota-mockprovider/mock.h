/*
 * mock.h - private to rota-mockprovider: the state every module of the fake providers
 * shares, the reply a module fills in, and the table of provider modules.
 *
 * Every field of struct mock_account and of the fault table is read and written only
 * with mock.lock held; configured values are set once before the server starts and never
 * change after.
 */
#ifndef ROTA_MOCK_H
#define ROTA_MOCK_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOCK_STATUS_MAX  600
#define MOCK_HEADERS_MAX 24
#define MOCK_FAULTS_MAX  64
#define MOCK_DETAILS_MAX 3
#define MOCK_RECENT      16   /* calls whose usage /_mock/stats lists, per account */
#define MOCK_SIGS        1024 /* thought signatures remembered (tools.c) */

enum mock_provider {
    MOCK_OPENAI,
    MOCK_AZURE,
    MOCK_ANTHROPIC,
    MOCK_GEMINI,
    MOCK_COPILOT,
    MOCK_GITHUB,
    MOCK_ANTIGRAVITY,
    MOCK_OPENROUTER,
    MOCK_LLAMACPP,
    MOCK_PROVIDERS
};

/* Gemini 429 detail entries, in the order an account's "details_order" lists them. */
enum mock_detail { MOCK_QUOTA_FAILURE, MOCK_RETRY_INFO, MOCK_HELP };

/* A request limit and a token limit over fixed windows: window k spans
 * [anchor + k * window, anchor + (k + 1) * window). Counts belong to window "index". */
struct mock_bucket {
    uint64_t requests, tokens; /* limits; 0 = none */
    int64_t window_ms, anchor_ms;
    int64_t index;
    uint64_t used_requests, used_tokens;
};

struct mock_model {
    char *name;
    struct mock_bucket b;
};

/* The usage one answer reported: input, output (thoughts included) and thought tokens. */
struct mock_usage {
    unsigned in, out, thoughts;
};

struct mock_account {
    /* configured */
    char *key; /* never printed, never echoed */
    char *name;
    enum mock_provider provider;
    struct mock_bucket limits;
    struct mock_model *models;
    size_t nmodels;
    bool has_credit_limit; /* openrouter: false = unlimited (limit null) */
    double credit_limit, credit_usage0, credit_per_call;
    bool free_plan; /* copilot "plan":"free"; openrouter/gemini "tier":"free" */
    char *project;  /* antigravity */
    enum mock_detail details[MOCK_DETAILS_MAX];
    size_t ndetails;
    unsigned slots_total, slots_busy; /* llamacpp */
    bool slots_hidden, loading;       /* llamacpp */
    int limit_status;                 /* github: 403 or 429 */
    /* counted, under mock.lock */
    double credit_usage;
    unsigned inflight; /* POST calls being answered */
    uint64_t calls, dropped;
    uint64_t status[MOCK_STATUS_MAX];
    uint64_t tokens_in, tokens_out;        /* the usage its answers reported */
    struct mock_usage recent[MOCK_RECENT]; /* the latest answers' usage, a ring */
    uint64_t nrecent;                      /* answers put in "recent", ever */
};

enum mock_fault_kind {
    MOCK_FAULT_5XX,
    MOCK_FAULT_LATENCY,
    MOCK_FAULT_HANG,
    MOCK_FAULT_MALFORMED,
    MOCK_FAULT_OVERSIZED,
    MOCK_FAULT_429,
    MOCK_FAULT_DRIP,     /* stream events "ms" apart, "chunks" of content (stream.c) */
    MOCK_FAULT_CUT,      /* a stream dropped after "after" events (stream.c) */
    MOCK_FAULT_HOLD,     /* a stream held after "after" events until the fault ends */
    MOCK_FAULT_ECHO_KEY, /* "status" with the credential received in the error message */
    MOCK_FAULT_BADSSE    /* a streamed answer whose events turn malformed (stream.c) */
};

struct mock_fault {
    uint64_t id;
    char prefix[128];
    enum mock_fault_kind kind;
    int status;           /* 5xx: the status answered */
    unsigned ms;          /* latency: the delay; hang: the longest hold (0 = none) */
    int64_t until_ms;     /* wall clock; 0 = no time limit */
    long remaining;       /* calls left to catch; -1 = no count limit */
    unsigned retry_after; /* 429: seconds of the retry hint */
    size_t size;          /* oversized: body bytes */
    char reason[40];      /* 429: antigravity ErrorInfo reason ("" = QUOTA_EXHAUSTED) */
    unsigned chunks;      /* drip: content events of a stream (0 = the usual 3) */
    unsigned after;       /* cut, hold: events sent before the drop, the hold */
    size_t pad;           /* drip, hold: bytes added to each content event */
    bool bare;            /* 429: without retry-after and retry-after-ms */
};

struct mock {
    pthread_mutex_t lock;
    atomic_bool stopping;     /* set once, by main, before the server stops */
    int64_t start_ms;         /* wall clock at start */
    unsigned latency_ms;      /* configured; every provider call waits this long */
    unsigned tokens_per_call; /* configured */
    struct mock_account *accounts;
    size_t naccounts;
    /* under lock */
    struct mock_fault faults[MOCK_FAULTS_MAX];
    size_t nfaults;
    uint64_t next_fault_id;
    uint64_t unknown_key;
    uint64_t foreign_credentials; /* calls that carried a credential besides their account's */
    char last_model[128];         /* what the latest provider call asked for */
    char last_request_id[128];    /* its X-Request-Id */
    bool last_usage_asked;        /* its stream_options.include_usage */
    uint64_t status[MOCK_STATUS_MAX];
    uint64_t holding; /* streams held by a hold fault right now */
    /* the scripted tool-using model (tools.c); never reset */
    uint64_t next_tool_id; /* call_mock_N, toolu_mock_N */
    uint64_t next_sig;     /* sig-anthropic-N, sig-gemini-N */
    struct mock_sig {
        uint64_t n;    /* 0: none */
        char name[64]; /* Gemini: the function whose call carried it */
    } sigs[MOCK_SIGS]; /* issued, at n % MOCK_SIGS */
};

/* One provider call, as the provider modules see it. */
struct mock_call {
    struct mock *m;
    const char *method, *path;
    json_t *body;    /* the parsed request body; NULL when absent or not JSON */
    size_t body_len; /* its bytes as received */
    int64_t now_ms;
    void *conn;      /* for mock_call_query */
    unsigned chunks; /* content events of a streamed answer */
    size_t pad;      /* bytes added to each content event */
};

struct mock_header {
    char name[48];
    char value[192];
};

/* A streamed answer: whole events, malloc'd each; main sends them one by one. */
#define MOCK_EVENTS_MAX 64
struct mock_stream {
    char *ev[MOCK_EVENTS_MAX];
    size_t n;
    unsigned gap_ms;  /* between events */
    long cut_after;   /* events before the connection drops; -1 = none */
    long hold_after;  /* events before the hold; -1 = none */
    uint64_t hold_id; /* the fault whose end releases the hold */
};

/* What a module answers; main turns it into an HTTP response. "body" is malloc'd. */
struct mock_reply {
    struct mock_stream stream; /* n > 0: a stream, and "body" is unused */
    int status;
    const char *type;
    char *body;
    size_t len;
    struct mock_header headers[MOCK_HEADERS_MAX];
    size_t nheaders;
};

/* Why a call was refused: the limit it reached and when that limit frees up. */
struct mock_hit {
    const char *what;   /* "requests" or "tokens" */
    const char *model;  /* the per-model quota reached, or NULL for the account's */
    const char *reason; /* antigravity ErrorInfo reason */
    uint64_t limit, used;
    int64_t window_ms;
    int64_t reset_ms; /* wall clock */
    int64_t retry_ms; /* from now */
};

/* The state of a bucket at some instant. */
struct mock_view {
    uint64_t limit, used, remaining;
    int64_t reset_ms; /* end of the current window, wall clock */
};

struct mock_provider_ops {
    const char *name;
    const char *type; /* Content-Type of its answers */
    int default_window_s;
    /* Answer "c" for "a" (lock held); counts the call against "a"'s limits. */
    void (*serve)(struct mock_call *c, struct mock_account *a, struct mock_reply *r);
    /* An error in the provider's own shape: 401, 404, 5xx and the like. */
    void (*error)(struct mock_reply *r, int status, const char *message);
    /* A refusal for a reached limit (or an injected 429) in the provider's shape. */
    void (*limited)(struct mock_call *c, struct mock_account *a, const struct mock_hit *h,
                    struct mock_reply *r);
};

extern const struct mock_provider_ops mock_openai_ops, mock_azure_ops, mock_anthropic_ops,
    mock_gemini_ops, mock_copilot_ops, mock_github_ops, mock_antigravity_ops,
    mock_openrouter_ops, mock_llamacpp_ops;
extern const struct mock_provider_ops *const mock_providers[MOCK_PROVIDERS];

/* What the scripted tool-using model answers one call (tools.c): tool calls, or a text
 * that quotes the tool results it was sent, after a thought when thinking is asked for;
 * or a refusal (400) naming what is wrong with the request's history or tools. */
#define MOCK_CALLS_MAX 2
struct mock_turn {
    bool scripted;    /* false: the plain "ok" answer, which none of the rest concerns */
    bool thinking;    /* a thought comes first */
    const char *tool; /* the tool called (borrowed from the request) */
    unsigned ncalls;  /* 0: a text answer */
    char ids[MOCK_CALLS_MAX][32]; /* call_mock_N or toolu_mock_N; "" for Gemini */
    char sig[32];   /* Anthropic: the thought's signature; Gemini: the first call's */
    char *text;     /* a text answer (malloc'd) */
    size_t results; /* tool results quoted in "text" */
    struct mock_usage use;
    char error[512]; /* not empty: refused with 400 and this message */
};

enum mock_format { MOCK_FMT_OPENAI, MOCK_FMT_ANTHROPIC, MOCK_FMT_GEMINI };

/* How a Gemini answer is framed: whole, as server-sent events, or as a JSON array of
 * the events (:streamGenerateContent without alt=sse). */
enum mock_framing { MOCK_WHOLE, MOCK_SSE, MOCK_ARRAY };

/* tools.c */
void mock_turn_refuse(struct mock_turn *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mock_turn_ask(struct mock *m, struct mock_turn *t, enum mock_format f, const char *tool,
                   const char *user_text);
int mock_turn_result(struct mock_turn *t, const char *result, size_t len);
void mock_turn_done(struct mock *m, const struct mock_call *c, struct mock_turn *t,
                    enum mock_format f);
void mock_turn_free(struct mock_turn *t);
const char *mock_turn_args(unsigned i);
json_t *mock_turn_args_json(unsigned i);
bool mock_sig_known(struct mock *m, const char *sig, enum mock_format f, const char *name);
char *mock_json_text(const json_t *v);
unsigned mock_pieces(const struct mock_call *c);
void mock_piece(const char *s, unsigned n, unsigned i, size_t *start, size_t *len);
const char *mock_thought(void);

/* tools_openai.c, tools_responses.c, tools_anthropic.c, tools_gemini.c: read a request as the
 * scripted model does (false: not a tool-use request, the plain answer), and answer */
bool mock_openai_turn(struct mock_call *c, struct mock_turn *t);
void mock_openai_answer(struct mock_call *c, const struct mock_turn *t, const char *model,
                        uint64_t serial, struct mock_reply *r);
/* Charge the call (false: refused, "r" filled with the refusal). */
typedef bool mock_charge_fn(struct mock_call *c, struct mock_account *a, unsigned tokens,
                            struct mock_reply *r);
bool mock_openai_chat(struct mock_call *c, struct mock_account *a, const char *model,
                      mock_charge_fn *charge, struct mock_reply *r);
bool mock_responses(struct mock_call *c, struct mock_account *a, const char *model,
                    mock_charge_fn *charge, struct mock_reply *r);
bool mock_anthropic_turn(struct mock_call *c, struct mock_turn *t);
void mock_anthropic_answer(struct mock_call *c, const struct mock_turn *t, const char *model,
                           uint64_t serial, struct mock_reply *r);
bool mock_gemini_turn(struct mock_call *c, const json_t *request, struct mock_turn *t);
void mock_gemini_answer(struct mock_call *c, const struct mock_turn *t, const char *model,
                        uint64_t serial, enum mock_framing framing, bool envelope,
                        struct mock_reply *r);

/* accounts.c */
int mock_config_load(struct mock *m, const char *path);
void mock_config_free(struct mock *m);
struct mock_account *mock_account_find(struct mock *m, const char *key);
void mock_bucket_view(struct mock_bucket *b, int64_t now_ms, bool tokens, struct mock_view *v);
int mock_charge(struct mock_account *a, struct mock_model *model, uint64_t tokens,
                int64_t now_ms, struct mock_hit *hit);
struct mock_model *mock_model_find(struct mock_account *a, const char *name);
void mock_counts_reset(struct mock *m);
json_t *mock_stats(struct mock *m);
void mock_usage_count(struct mock_account *a, const struct mock_usage *u);
int64_t mock_now_ms(void);

/* faults.c */
void mock_fault_add(struct mock_call *c, struct mock_reply *r);
void mock_fault_clear(struct mock *m);
bool mock_fault_take(struct mock *m, const struct mock_account *a, int64_t now_ms,
                     struct mock_fault *out);
bool mock_fault_alive(struct mock *m, uint64_t id, int64_t now_ms);
size_t mock_fault_count(struct mock *m, int64_t now_ms);
void mock_fault_garble(struct mock_reply *r);
void mock_fault_inflate(struct mock_reply *r, size_t size);

/* stream.c */
void mock_stream_openai(struct mock_call *c, const char *model, unsigned tokens,
                        uint64_t serial, unsigned chunks, struct mock_reply *r);
void mock_stream_anthropic(struct mock_call *c, const char *model, unsigned tokens,
                           uint64_t serial, unsigned chunks, struct mock_reply *r);
void mock_stream_garble(struct mock_reply *r);
void mock_stream_gemini(struct mock_call *c, const char *model, unsigned tokens,
                        uint64_t serial, unsigned chunks, struct mock_reply *r);
void mock_stream_push(struct mock_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mock_stream_json(struct mock_reply *r, const char *event, json_t *v, const char *end);
void mock_stream_envelope(struct mock_reply *r);
void mock_stream_whole(struct mock_reply *r);

/* reply.c */
void mock_reply_json(struct mock_reply *r, int status, json_t *v);
void mock_reply_header(struct mock_reply *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mock_reply_unheader(struct mock_reply *r, const char *name);
void mock_go_duration(char *buf, size_t n, int64_t ms);
void mock_seconds(char *buf, size_t n, int64_t ms);
void mock_rfc3339(char *buf, size_t n, int64_t ms, bool millis);
int mock_parse_rfc3339(const char *s, int64_t *ms);
int mock_parse_window(const char *s, int64_t *ms);
int64_t mock_ceil_s(int64_t ms);

/* openai.c, google.c: shapes other modules share */
json_t *mock_openai_completion(const char *model, unsigned tokens, uint64_t serial,
                               int64_t now_ms);
void mock_google_error(struct mock_reply *r, int status, const char *message);

/* main.c */
const char *mock_call_query(const struct mock_call *c, const char *name);
bool mock_path_is(const struct mock_call *c, const char *method, const char *path);

#endif
