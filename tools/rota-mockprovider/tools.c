/*
 * tools.c - rota-mockprovider's scripted tool-using model: what it answers, whatever the
 * wire format (tools_openai.c, tools_anthropic.c and tools_gemini.c read each format's
 * request, refuse what its provider refuses, and write its answer).
 *
 *   the user's text last, tools declared   a call to the first tool declared, arguments
 *                                          {"city":"Paris","days":2}; two calls when the
 *                                          text holds the word "parallel", the second
 *                                          {"city":"Rome","days":1}
 *   tool results last                      the text "weather: " then the results, "; "
 *                                          between them, each as it came (OpenAI and
 *                                          Anthropic: its text; Gemini: the compact JSON
 *                                          of functionResponse.response)
 *   anything else                          the text "ok"
 *   thinking asked for                     first a thought, "mock thought", signed
 *
 * Call ids: "call_mock_N" (OpenAI), "toolu_mock_N" (Anthropic), none for Gemini, N from
 * one counter. Usage is counted from bytes: input ceil(request body bytes / 4), output
 * ceil(the answer's bytes / 4) (its text, each call's name and arguments) plus the
 * thought's ceil(bytes / 4), which is said apart as thoughts; each at least 1.
 *
 * Signatures: "sig-anthropic-N" (a thinking block's) and "sig-gemini-N" (the first
 * function call's of an answer that thought), N from one counter. Each is remembered
 * (the latest MOCK_SIGS) with the function its Gemini call named, so a signature brought
 * back is checked against what was issued and for what, not against its shape alone.
 *
 * DESIGN
 * Called with mock.lock held: the counters and the signatures live in struct mock and
 * are never reset (a conversation may outlive a /_mock/reset). A turn borrows names from
 * the request body, which outlives it; its text is its own (mock_turn_free).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock.h"

static const char *const args_text[MOCK_CALLS_MAX] = {
    "{\"city\":\"Paris\",\"days\":2}",
    "{\"city\":\"Rome\",\"days\":1}",
};

static const char thought[] = "mock thought";

const char *mock_thought(void)
{
    return thought;
}

/* The arguments of call "i" of an answer, as JSON text. */
const char *mock_turn_args(unsigned i)
{
    return args_text[i < MOCK_CALLS_MAX ? i : 0];
}

/* The same as a JSON object (caller decrefs); the order of its members kept. */
json_t *mock_turn_args_json(unsigned i)
{
    return json_loads(mock_turn_args(i), 0, NULL);
}

/* Refuse the turn with a message (the first refusal stands). */
void mock_turn_refuse(struct mock_turn *t, const char *fmt, ...)
{
    if (t->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error, sizeof(t->error), fmt, ap);
    va_end(ap);
}

/* Does "text" hold "word" (ASCII case-insensitive) as a word of its own? */
static bool has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; p && *p; p++) {
        if (strncasecmp(p, word, n) != 0)
            continue;
        bool before = p == text || !isalnum((unsigned char)p[-1]);
        bool after = !isalnum((unsigned char)p[n]);
        if (before && after)
            return true;
    }
    return false;
}

/* The user asked, with "tool" the first declared: call it, twice if the user's text
 * "user_text" says "parallel"; ids from the counter in the format's own shape. */
void mock_turn_ask(struct mock *m, struct mock_turn *t, enum mock_format f, const char *tool,
                   const char *user_text)
{
    t->tool = tool;
    t->ncalls = has_word(user_text, "parallel") ? 2 : 1;
    for (unsigned i = 0; i < t->ncalls; i++) {
        unsigned long long n = (unsigned long long)++m->next_tool_id;
        if (f == MOCK_FMT_OPENAI)
            snprintf(t->ids[i], sizeof(t->ids[i]), "call_mock_%llu", n);
        else if (f == MOCK_FMT_ANTHROPIC)
            snprintf(t->ids[i], sizeof(t->ids[i]), "toolu_mock_%llu", n);
    }
}

/* Quote a tool result ("len" bytes of "result") in the turn's text. 0 or -ENOMEM. */
int mock_turn_result(struct mock_turn *t, const char *result, size_t len)
{
    const char *sep = t->text ? "; " : "weather: ";
    size_t have = t->text ? strlen(t->text) : 0, add = strlen(sep);
    char *s = realloc(t->text, have + add + len + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s + have, sep, add);
    memcpy(s + have + add, result, len);
    s[have + add + len] = 0;
    t->text = s;
    t->results++;
    return 0;
}

static unsigned tokens(size_t bytes)
{
    size_t n = (bytes + 3) / 4;
    return n ? (unsigned)n : 1;
}

/* Finish the turn: its text when it has none, its usage, its signature. */
void mock_turn_done(struct mock *m, const struct mock_call *c, struct mock_turn *t,
                    enum mock_format f)
{
    if (t->error[0])
        return;
    if (!t->ncalls && !t->text)
        t->text = strdup("ok");
    size_t out = t->text ? strlen(t->text) : 0;
    for (unsigned i = 0; i < t->ncalls; i++)
        out += strlen(t->tool) + strlen(mock_turn_args(i));
    t->use.in = tokens(c->body_len);
    t->use.thoughts = t->thinking ? tokens(strlen(thought)) : 0;
    t->use.out = tokens(out) + t->use.thoughts;
    if (!t->thinking || f == MOCK_FMT_OPENAI || (f == MOCK_FMT_GEMINI && !t->ncalls))
        return;
    uint64_t n = ++m->next_sig;
    struct mock_sig *s = &m->sigs[n % MOCK_SIGS];
    s->n = n;
    snprintf(s->name, sizeof(s->name), "%s", f == MOCK_FMT_GEMINI ? t->tool : "");
    snprintf(t->sig, sizeof(t->sig), "sig-%s-%llu",
             f == MOCK_FMT_GEMINI ? "gemini" : "anthropic", (unsigned long long)n);
}

void mock_turn_free(struct mock_turn *t)
{
    free(t->text);
    t->text = NULL;
}

/* Was "sig" issued by this mock, for format "f" and (Gemini) a call of function
 * "name"? */
bool mock_sig_known(struct mock *m, const char *sig, enum mock_format f, const char *name)
{
    const char *prefix = f == MOCK_FMT_GEMINI ? "sig-gemini-" : "sig-anthropic-";
    size_t k = strlen(prefix);
    if (!sig || strncmp(sig, prefix, k) != 0 || !isdigit((unsigned char)sig[k]))
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(sig + k, &end, 10);
    if (errno || *end || n == 0)
        return false;
    const struct mock_sig *s = &m->sigs[n % MOCK_SIGS];
    return s->n == n && (f != MOCK_FMT_GEMINI || (name && strcmp(s->name, name) == 0));
}

/* "v" as compact JSON text, members in their order (malloc'd; NULL: out of memory). */
char *mock_json_text(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

/* How many pieces a streamed text comes in: the call's content events (a drip fault's
 * "chunks"), as many as leave room in a stream for the events around them. */
unsigned mock_pieces(const struct mock_call *c)
{
    unsigned n = c->chunks ? c->chunks : 1;
    return n < MOCK_EVENTS_MAX - 16 ? n : MOCK_EVENTS_MAX - 16;
}

/* Piece "i" of "n" of the text "s", cut between UTF-8 characters: its start and
 * length. */
void mock_piece(const char *s, unsigned n, unsigned i, size_t *start, size_t *len)
{
    size_t total = strlen(s), a = total * i / n, b = total * (i + 1) / n;
    while (a < total && ((unsigned char)s[a] & 0xC0) == 0x80)
        a++;
    while (b < total && ((unsigned char)s[b] & 0xC0) == 0x80)
        b++;
    *start = a;
    *len = b > a ? b - a : 0;
}
