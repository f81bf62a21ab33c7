/*
 * config_exec.c - does an exec probe's command put the credential on a command line?
 *
 * DESIGN
 * An exec probe gets its account's key in ROTA_CREDENTIAL. A command that expands it into
 * a program's argument (curl -H "Authorization: token $ROTA_CREDENTIAL" ...) shows the key
 * to every local user in /proc/PID/cmdline. The safe forms keep it off argv: the program
 * reads the variable itself, an assignment hands it on in the environment
 * (GH_TOKEN=$ROTA_CREDENTIAL gh ...), or a shell builtin writes it to a pipe
 * (printf '%s' "$ROTA_CREDENTIAL" | tool --token-stdin). cfg_exec_exposes_credential
 * reads the command as sh would split it, closely enough for this: simple commands end at
 * an unquoted ; & | ( ) ` or newline, words at unquoted blanks; leading NAME=value words are
 * assignments; the first other word names the command. An expansion outside single
 * quotes in any word but an assignment, of a command that is not a builtin that execs
 * nothing, is reported. Called on the loading thread; pure.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "config_int.h"

#define VAR "ROTA_CREDENTIAL"

/* Builtins of every sh that run no program: an argument of theirs stays in the shell. */
static bool harmless(const char *name)
{
    static const char *const b[] = {"echo",     "printf", "export", "local",
                                    "readonly", "test",   "[",      ":"};
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
        if (strcmp(name, b[i]) == 0)
            return true;
    return false;
}

static bool ident(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Length of an expansion of VAR at "p" ($VAR or ${VAR...}), 0 when none. */
static size_t expansion(const char *p)
{
    size_t n = sizeof(VAR) - 1;
    if (p[0] != '$')
        return 0;
    if (strncmp(p + 1, VAR, n) == 0 && !ident(p[1 + n]))
        return 1 + n;
    if (p[1] == '{' && strncmp(p + 2, VAR, n) == 0 && !ident(p[2 + n]))
        return 2 + n;
    return 0;
}

struct word {
    size_t len;    /* bytes seen; 0 = none yet */
    int assign;    /* 0 = still NAME, 1 = NAME=..., -1 = neither */
    bool has_ref;  /* holds an expansion of VAR */
    char text[16]; /* its first bytes, quotes removed (a command's name) */
    size_t ntext;
};

struct scan {
    bool have_cmd; /* the simple command's name was read */
    char name[16]; /* ... and is this */
    bool exposed;
};

static void word_end(struct scan *s, struct word *w)
{
    if (w->len && !s->have_cmd && w->assign == 1) {
        /* an assignment: the value goes in the environment */
    } else if (w->len && !s->have_cmd) {
        s->have_cmd = true;
        memcpy(s->name, w->text, sizeof(s->name));
        s->exposed |= w->has_ref;
    } else if (w->len && w->has_ref && !harmless(s->name)) {
        s->exposed = true;
    }
    memset(w, 0, sizeof(*w));
}

/* Add "c" to the word: "quoting" when quoted or escaped (no '=' of an assignment then),
 * "text" when it is part of the word's text (a quote character is not). */
static void word_char(struct word *w, char c, bool quoting, bool text)
{
    if (w->len == 0)
        w->assign = (isalpha((unsigned char)c) || c == '_') && !quoting ? 0 : -1;
    else if (w->assign == 0)
        w->assign = c == '=' && !quoting ? 1 : ident(c) && !quoting ? 0 : -1;
    if (text && w->ntext < sizeof(w->text) - 1)
        w->text[w->ntext++] = c;
    w->len++;
}

bool cfg_exec_exposes_credential(const char *cmd)
{
    struct scan s = {0};
    struct word w = {0};
    char quote = 0;
    for (const char *p = cmd; *p; p++) {
        char c = *p;
        if (quote != '\'' && c == '\\' && p[1]) { /* an escaped byte: part of the word */
            word_char(&w, p[1], true, true);
            p++;
            continue;
        }
        size_t n = quote != '\'' ? expansion(p) : 0;
        if (n) {
            w.has_ref = true;
            word_char(&w, '$', true, true);
            p += n - 1;
            continue;
        }
        if (quote) {
            bool closing = c == quote;
            if (closing)
                quote = 0;
            word_char(&w, c, true, !closing);
        } else if (c == '\'' || c == '"') {
            quote = c;
            word_char(&w, c, true, false);
        } else if (c == ' ' || c == '\t') {
            word_end(&s, &w);
        } else if (strchr(";&|()`\n", c)) {
            word_end(&s, &w);
            s.have_cmd = false;
        } else {
            word_char(&w, c, false, true);
        }
    }
    word_end(&s, &w);
    return s.exposed;
}
