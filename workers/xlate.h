/*
 * xlate.h - translation between the wire formats the pool speaks, through one internal
 * representation: a request, a whole answer, and the events of a streamed answer.
 *
 * Private to the dispatch pool. Pure functions on bytes (no sockets, no table); any
 * thread, one struct rota_xl per request.
 *
 * DESIGN
 * Each format is one module (xl_openai.c: chat completions; xl_responses.c: OpenAI's
 * Responses; xl_anthropic.c: messages; xl_gemini.c: generateContent, and Google's Code
 * Assist envelope around it) with the same six functions (struct rota_xl_format):
 *
 *   request  in  client body ─▶ struct rota_xl_req       out  rota_xl_req ─▶ provider body
 *   answer   in  provider body ─▶ struct rota_xl_resp    out  rota_xl_resp ─▶ client body
 *   stream   in  one SSE event ─▶ rota_xl_ev[]           out  one rota_xl_ev ─▶ SSE bytes
 *
 * so N formats need N modules, not N×N converters. The representation holds values as
 * JSON text (struct rota_xl_val: a string with its quotes and escapes as written, an
 * object whole), so text crosses by copying and is never decoded and encoded again.
 * Everything a request or answer holds lives in the request's arena or in the body it
 * was read from; nothing is freed piecemeal.
 *
 * What a module cannot carry to the other side is refused, never dropped: an in
 * function refuses a field it does not know or cannot represent (rota_xl_refuse, with
 * the field's path in the client's format), an out function one the target cannot take
 * (an image URL to Gemini), and the pool answers 400 in the client's format naming the
 * field and the target. Fields that change nothing in the answer (OpenAI's "store",
 * "metadata", Anthropic's "metadata", ...) are listed in each module as ignored.
 *
 * Tool calls: Gemini's carry no id. The Gemini module makes stable ids
 * (rota_xl_tool_id: the same call gets the same id) and finds a result's function name
 * from the call of the same id earlier in the history (rota_xl_link, run on every
 * request). Gemini's thought signature rides in the id it makes (rota_xl_id_sig), so a
 * client of any format that sends the id back sends the signature back. Anthropic's
 * thinking blocks cross as THINKING parts with their signature.
 *
 * Streams are translated event by event with bounded memory: an in function turns one
 * upstream event into a few rota_xl_ev; an out function turns each into zero or more
 * client events, keeping in struct rota_xl_sout what the client's framing needs (its
 * message started, the block open, tool arguments held for Gemini, which wants a call
 * whole). Usage is sent once, at the end, in the client's format.
 */
#ifndef ROTA_XLATE_H
#define ROTA_XLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

enum rota_xl_fmt {
    ROTA_XL_OPENAI,      /* chat completions */
    ROTA_XL_RESPONSES,   /* OpenAI's Responses */
    ROTA_XL_ANTHROPIC,   /* messages */
    ROTA_XL_GEMINI,      /* generateContent */
    ROTA_XL_CODE_ASSIST, /* Gemini inside {"project","model","request"} / {"response"} */
    ROTA_XL_FORMATS
};

/* A value as JSON text: a string with its quotes, a number, an object or array whole.
 * len 0 = absent. */
struct rota_xl_val {
    const char *p;
    size_t len;
};

/* ---- requests and answers ---- */

enum rota_xl_part_type {
    ROTA_XL_TEXT,
    ROTA_XL_IMAGE,
    ROTA_XL_THINKING,          /* reasoning text, with Anthropic's signature */
    ROTA_XL_REDACTED_THINKING, /* Anthropic's: "text" is its opaque data */
    ROTA_XL_TOOL_CALL,
    ROTA_XL_TOOL_RESULT,
};

struct rota_xl_part {
    enum rota_xl_part_type type;
    uint16_t at_msg, at_part; /* where the client put it (its format's numbering), for
                                 refusals: rota_xl_format.where */
    struct rota_xl_val text;  /* TEXT, THINKING, REDACTED_THINKING: a string */
    struct rota_xl_val sig;   /* THINKING: Anthropic's signature; TEXT, TOOL_CALL:
                                 Gemini's thoughtSignature. A string. */
    bool thought;             /* TEXT: Gemini's "thought": true (as THINKING, for Gemini) */
    /* IMAGE: base64 "data" with "mime", or a "url" (http(s) or data:) */
    struct rota_xl_val mime, data, url;
    /* TOOL_CALL: "id", "name" (strings), "args" (an object, never a string).
     * TOOL_RESULT: "id" of the call it answers, "name" of that call (rota_xl_link),
     * "result": a string, or JSON (an object or array) as the client gave it. */
    struct rota_xl_val id, name, args, result;
    bool is_error; /* TOOL_RESULT */
};

enum rota_xl_role {
    ROTA_XL_USER,      /* also carries TOOL_RESULT parts (OpenAI's role "tool") */
    ROTA_XL_ASSISTANT, /* Gemini's "model" */
};

struct rota_xl_msg {
    enum rota_xl_role role;
    struct rota_xl_part *part;
    uint32_t n;
};

struct rota_xl_tool {
    struct rota_xl_val name, desc, params; /* params: a JSON Schema object, or absent */
};

enum rota_xl_choice { ROTA_XL_CHOICE_UNSET, ROTA_XL_AUTO, ROTA_XL_NONE, ROTA_XL_ANY,
                      ROTA_XL_NAMED };
enum rota_xl_rformat { ROTA_XL_RF_TEXT, ROTA_XL_RF_JSON, ROTA_XL_RF_SCHEMA };

struct rota_xl_req {
    struct rota_xl_val model;
    struct rota_xl_part *system; /* TEXT parts: system and developer instructions */
    uint32_t nsystem;
    struct rota_xl_msg *msg;
    uint32_t nmsg;
    struct rota_xl_tool *tool;
    uint32_t ntool;
    enum rota_xl_choice choice;
    struct rota_xl_val choice_name; /* ROTA_XL_NAMED */
    int parallel_tools;             /* -1 unset, 0 no, 1 yes */
    /* generation: numbers as written; absent when len 0 */
    struct rota_xl_val max_tokens, temperature, top_p, top_k, seed;
    struct rota_xl_val stop; /* a string, or an array of strings */
    enum rota_xl_rformat rformat;
    struct rota_xl_val schema, schema_name; /* ROTA_XL_RF_SCHEMA */
    /* reasoning: asked (-1 unset, 0 off, 1 on), its budget in tokens (0 unset) or
     * OpenAI's effort ("low", "medium", "high": a string) */
    int thinking;
    uint64_t thinking_budget;
    struct rota_xl_val effort;
    bool include_thoughts; /* the client wants the reasoning text back */
    bool stream, include_usage;
    struct rota_xl_val user; /* who asks (OpenAI "user", Anthropic metadata.user_id) */
    struct rota_xl_val project; /* Code Assist's project */
    bool has_images;            /* set by rota_xl_link */
};

enum rota_xl_finish {
    ROTA_XL_FINISH_NONE,
    ROTA_XL_FINISH_STOP,       /* ended by itself, or at a stop sequence */
    ROTA_XL_FINISH_LENGTH,     /* max tokens */
    ROTA_XL_FINISH_TOOLS,      /* wants tool results */
    ROTA_XL_FINISH_FILTER,     /* content filter, safety, recitation */
    ROTA_XL_FINISH_REFUSAL,    /* Anthropic's "refusal" */
    ROTA_XL_FINISH_OTHER,
};

struct rota_xl_usage {
    uint64_t in, out, cached, reasoning; /* in includes cached; out includes reasoning */
    bool seen;
};

struct rota_xl_resp {
    struct rota_xl_val id, model;
    struct rota_xl_part *part;
    uint32_t n;
    enum rota_xl_finish finish;
    struct rota_xl_val stop_seq; /* the stop sequence met, when said */
    struct rota_xl_usage usage;
};

/* ---- stream events ---- */

enum rota_xl_ev_type {
    ROTA_XL_EV_START,     /* the answer begins: id, model; usage.in when known */
    ROTA_XL_EV_TEXT,      /* text: a piece of answer text (a string) */
    ROTA_XL_EV_THINKING,  /* text: a piece of reasoning */
    ROTA_XL_EV_SIGNATURE, /* sig: the signature of the reasoning just streamed */
    ROTA_XL_EV_TOOL,      /* tool call "index" begins: id, name; args when it comes whole
                             (Gemini), sig its thought signature */
    ROTA_XL_EV_ARGS,      /* text: a piece of tool call "index"'s arguments: a string
                             whose content is partial JSON text */
    ROTA_XL_EV_FINISH,    /* finish (and stop_seq) */
    ROTA_XL_EV_USAGE,     /* usage so far (readings only grow) */
    ROTA_XL_EV_END,       /* the answer is complete: the format's own end came */
    ROTA_XL_EV_ERROR,     /* the upstream said the stream failed: text, a string */
};

struct rota_xl_ev {
    enum rota_xl_ev_type type;
    uint32_t index; /* TOOL, ARGS: the tool call's number in this answer, from 0 */
    struct rota_xl_val text, sig, id, name, args, model, stop_seq;
    enum rota_xl_finish finish;
    struct rota_xl_usage usage;
};

#define ROTA_XL_EVS_MAX 64
struct rota_xl_evs {
    struct rota_xl_ev ev[ROTA_XL_EVS_MAX];
    uint32_t n;
};

#define ROTA_XL_BLOCKS 128 /* content blocks (or tool calls) one answer may hold */

/* What a stream's in function remembers between events. */
struct rota_xl_sin {
    bool started, ended;
    uint32_t ntools;                    /* tool calls begun */
    uint8_t kind[ROTA_XL_BLOCKS];       /* Anthropic: each content block's type */
    uint16_t tool_of[ROTA_XL_BLOCKS];   /* Anthropic: block → tool index; OpenAI: the
                                           provider's tool index → ours */
    struct rota_xl_usage usage;
    uint64_t seq;                       /* events read */
    /* OpenAI chat: a hash of each tool call's id (a provider that repeats a tool index
     * for the next call is seen by the new id), and reasoning text streamed since the
     * last signature (so reasoning_details repeating it is not read twice). */
    uint32_t tool_idh[ROTA_XL_BLOCKS];
    bool thought;
};

/* What a stream's out function keeps between events. */
struct rota_xl_sout {
    bool started, ended, finished;
    enum rota_xl_finish finish;
    struct rota_xl_val stop_seq;
    struct rota_xl_usage usage;
    int open;                 /* the client block open (-1 none): Anthropic's index, the
                                 Responses API's output index */
    uint8_t open_kind;        /* its rota_xl_ev_type (TEXT, THINKING, TOOL) */
    uint32_t blocks;          /* client blocks begun */
    uint32_t tools;           /* tool calls begun on the client's side */
    uint32_t open_tool;       /* the tool call open */
    char id[96], model[256];  /* the answer's, as the client sees them (plain text) */
    uint64_t created;         /* seconds since the epoch: OpenAI's "created" */
    struct rota_jbuf held;    /* what waits for more: a tool call's arguments (Gemini),
                                 a text (the Responses API's output_text.done) */
    struct rota_jbuf held2;
    struct rota_xl_val tool_id, tool_name, tool_sig; /* the open call's (in the arena) */
    uint64_t seq;             /* events written (Responses' sequence_number) */
    uint64_t said_in;         /* Anthropic: the input tokens message_start said (the end
                                 says them only when it said none) */
};

/* ---- the translation of one request ---- */

struct rota_xl {
    struct rota_arena *a; /* while a stream's event is translated: that event's, emptied
                             after it (so a stream's memory stays bounded) */
    struct rota_arena *keep; /* the request's (NULL: "a"): what a stream's out function
                                keeps from one event to the next is copied here */
    enum rota_xl_fmt from, to;   /* the client's format, the provider's */
    const struct rota_xl_req *req; /* the request read (for out functions' choices) */
    const char *model;           /* the model the provider is asked for (plain text) */
    /* the client format's "where" (set by the driver; refusals name parts with it) */
    void (*where)(char *buf, size_t n, unsigned msg, unsigned part);
    uint64_t now_s;              /* wall clock seconds, for "created" fields */
    char err[256];               /* why it failed: a field and what is wrong with it */
    int status;                  /* the status to answer with: 400, or 502 (upstream) */
    /* JSON Schema keywords dropped for the target, comma-separated (a response header) */
    char dropped[256];
    struct rota_xl_usage usage; /* what the last answer translated says it used */
};

/* Each format's module. Every function returns 0, or a negative errno with x->err
 * said: -EINVAL the input is not what the format allows, -ENOTSUP it cannot be carried
 * to the other format, -ENOMEM, -EFBIG (a limit). */
struct rota_xl_format {
    const char *name; /* "openai", "responses", "anthropic", "gemini", "code-assist" */
    int (*req_in)(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r);
    int (*req_out)(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out);
    int (*resp_in)(struct rota_xl *x, const char *body, size_t len, struct rota_xl_resp *r);
    int (*resp_out)(struct rota_xl *x, const struct rota_xl_resp *r, struct rota_jbuf *out);
    /* One upstream SSE event: its "event:" name (nlen 0 when none) and its data. Events
     * appended to "out" (which the caller empties). */
    int (*ev_in)(struct rota_xl *x, struct rota_xl_sin *st, const char *name, size_t nlen,
                 const char *data, size_t dlen, struct rota_xl_evs *out);
    /* One event, as the client's SSE bytes appended to "out" (maybe none). */
    int (*ev_out)(struct rota_xl *x, struct rota_xl_sout *st, const struct rota_xl_ev *ev,
                  struct rota_jbuf *out);
    /* The end of a failed stream in this format, with "message" (plain text): what
     * closes the client's blocks, then the format's error event. */
    void (*ev_fail)(struct rota_xl *x, struct rota_xl_sout *st, const char *message,
                    struct rota_jbuf *out);
    /* The path of a part in this format's request ("messages[2].content[1]"). */
    void (*where)(char *buf, size_t n, unsigned msg, unsigned part);
};

extern const struct rota_xl_format rota_xl_openai, rota_xl_responses, rota_xl_anthropic,
    rota_xl_gemini, rota_xl_code_assist;

/* The module of format "f". */
const struct rota_xl_format *rota_xl_of(enum rota_xl_fmt f);

/* ---- helpers the modules share (xlate.c) ---- */

/* Say why: "x->err" formatted, and the error returned. */
int rota_xl_fail(struct rota_xl *x, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A field of the client's request the target cannot take: "<path> cannot be sent to
 * <target>" (-ENOTSUP). */
int rota_xl_refuse(struct rota_xl *x, const char *path);
/* Member "m" of the object at path "at" (NULL: the body) is not one the format knows or
 * can carry: refused, "at.key" named. */
int rota_xl_refuse_key(struct rota_xl *x, const char *at, const struct rota_json *m);
/* A part the target cannot take, named in the client's numbering. */
int rota_xl_refuse_part(struct rota_xl *x, const struct rota_xl_part *p, const char *what);

/* A value of node "v" (its bytes as written). */
static inline struct rota_xl_val rota_xl_v(const struct rota_json *v)
{
    return v ? (struct rota_xl_val){v->p, v->len} : (struct rota_xl_val){0};
}
/* Value "v" copied into rota_xl_keep(x), for a stream's out function to keep past the
 * event (absent when "v" is, or out of memory). */
struct rota_xl_val rota_xl_kept(struct rota_xl *x, struct rota_xl_val v);
/* A string value made from plain text "s" (quoted, escaped, in the arena); absent on
 * out of memory. */
struct rota_xl_val rota_xl_vstr(struct rota_xl *x, const char *s, size_t n);
/* The text of string value "v" (decoded; a pointer into the input when it needs no
 * decoding), NULL when "v" is not a string. */
const char *rota_xl_text(struct rota_xl *x, struct rota_xl_val v, size_t *len);
/* Parse value "v" (for the rare reads into an object held as text). */
struct rota_json *rota_xl_parse(struct rota_xl *x, struct rota_xl_val v);
/* Arena arrays. */
void *rota_xl_alloc(struct rota_xl *x, size_t n);
/* The arena for what outlives one stream event (x->keep, else x->a). */
static inline struct rota_arena *rota_xl_keep(struct rota_xl *x)
{
    return x->keep ? x->keep : x->a;
}

/* Tool arguments: an object from OpenAI's string of JSON (the string decoded and checked
 * to be an object; "" is {}), and back (rota_jbuf_quote). -EINVAL when not an object. */
int rota_xl_args_obj(struct rota_xl *x, struct rota_xl_val s, struct rota_xl_val *obj);

/* A stable id for tool call "index" of an answer made of "name" and "args", for formats
 * that give none ("call_" + 24 hex digits); with "sig" (a thought signature, a string)
 * carried in it, base64url after "__ts_". */
struct rota_xl_val rota_xl_tool_id(struct rota_xl *x, const char *prefix,
                                   struct rota_xl_val name, struct rota_xl_val args,
                                   uint32_t index, struct rota_xl_val sig);
/* The thought signature carried in tool call id "id" (a string value), absent if none. */
struct rota_xl_val rota_xl_id_sig(struct rota_xl *x, struct rota_xl_val id);

/* After req_in: give each TOOL_RESULT without a name the name of the TOOL_CALL with its
 * id earlier in the history, and set r->has_images. -EINVAL for a result whose call is
 * nowhere (a name is then required, e.g. for Gemini). */
int rota_xl_link(struct rota_xl *x, struct rota_xl_req *r, bool need_names);

/* JSON Schema "schema" (an object) written to "out" with only the keywords "keep"
 * (NULL-ended) kept, recursively through properties, items, anyOf; the dropped ones
 * added to x->dropped. */
int rota_xl_schema(struct rota_xl *x, struct rota_xl_val schema, const char *const *keep,
                   struct rota_jbuf *out);

/* SSE framing into "out": "event: NAME\n" (when name) "data: " JSON "\n\n". */
void rota_xl_sse(struct rota_jbuf *out, const char *name, const char *json, size_t n);

/* ---- the driver (xlate.c) ---- */

/* Read request "body" of format x->from into "*r" (tool results tied to their calls),
 * and write "*r" in format x->to into "out": a request read once can be written for
 * each tier it is tried on. */
int rota_xl_read(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r);
int rota_xl_write(struct rota_xl *x, const struct rota_xl_req *r, struct rota_jbuf *out);
/* Both: translate request "body" from x->from to x->to into "out" (the provider's body),
 * with x->model as the model. The request read stays in "*r" (for the answer). */
int rota_xl_request(struct rota_xl *x, const char *body, size_t len, struct rota_xl_req *r,
                    struct rota_jbuf *out);
/* Translate a whole (2xx) answer from x->to back to x->from. */
int rota_xl_answer(struct rota_xl *x, const char *body, size_t len, struct rota_jbuf *out);

/* A stream being translated: upstream SSE bytes in, client SSE bytes out. */
struct rota_xl_stream {
    struct rota_xl *x;
    struct rota_xl_sin in;
    struct rota_xl_sout out;
    struct rota_xl_evs evs;
    struct rota_jbuf carry; /* an upstream event's start */
    size_t scanned;         /* bytes of "carry" known to hold no event's end */
    struct rota_arena scratch; /* one event's: emptied after each */
    bool failed;  /* the upstream's bytes could not be read: nothing more is */
    bool errored; /* the client's stream was ended with its format's error */
};
void rota_xl_stream_init(struct rota_xl_stream *s, struct rota_xl *x);
/* "n" upstream bytes: the client's bytes for every complete event appended to "out".
 * A negative errno when the upstream's stream is not the format's (then end the client's
 * stream with rota_xl_stream_fail). */
int rota_xl_stream_data(struct rota_xl_stream *s, const char *p, size_t n,
                        struct rota_jbuf *out);
/* Is the client's stream complete: the upstream's own end came (ROTA_XL_EV_END), or its
 * error, which was passed on in the client's format? */
bool rota_xl_stream_ended(const struct rota_xl_stream *s);
/* The upstream stream ended or broke before its end: the client's error end. */
void rota_xl_stream_fail(struct rota_xl_stream *s, const char *message, struct rota_jbuf *out);
void rota_xl_stream_free(struct rota_xl_stream *s);

#endif
