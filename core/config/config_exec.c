/*
 * config_exec.c - does an exec probe's command put the credential on a command line?
 *
 * DESIGN
 * An exec probe gets its account's key in ROTA_CREDENTIAL. A command that hands it to a
 * program as an argument (curl -H "Authorization: token $ROTA_CREDENTIAL" ...) shows the
 * key to every local user in /proc/PID/cmdline. The safe forms keep it off argv: the
 * program reads the variable itself, an assignment hands it on in the environment
 * (GH_TOKEN=$ROTA_CREDENTIAL gh ...), a shell builtin writes it to a pipe or a here-string
 * feeds it on stdin (printf 'x: %s\n' "$ROTA_CREDENTIAL" | curl -H @- ...), or a process
 * substitution hands over a file name (curl -H @<(printf ...)).
 *
 * cfg_exec_exposes_credential reads the command as sh would split it, closely enough for
 * this: simple commands end at an unquoted ; & | ( ) or newline, words at unquoted blanks,
 * and an unquoted '#' that begins a word comments out the rest of its line (quotes in it
 * included); leading NAME=value words are assignments, reserved words (if, then, do, !, {,
 * exec ...) are skipped, the first other word names the command, and a redirection's
 * target is no argument. A wrapper that runs the command its arguments name (busybox,
 * env, command, nice, nohup, setsid, stdbuf, timeout) gives way to the first of them that
 * is a shell, xargs or parallel: busybox sh -c '...' is read as sh -c '...'. A word is
 * "hot" when it expands the key: $NAME or ${NAME...} of a tainted name (ROTA_CREDENTIAL,
 * and every name given a hot value: K=$ROTA_CREDENTIAL, export K=..., for K in <words
 * with a hot one>, printf -v K ... with a hot argument, read or mapfile K fed the key), or
 * a command substitution ($(...) or `...`) that names a tainted variable or prints the
 * environment (env, printenv, environ, set, export, declare). It reports:
 *
 *   - a hot word as the argument of any command but a builtin that runs nothing (echo,
 *     printf, test, read, export ...), or as the command's name;
 *   - what a shell would run: the text of every argument of sh/bash/dash/zsh/ksh (sh -c
 *     '...') and of eval is read again the same way, whatever its length, as is the
 *     inside of every substitution;
 *   - xargs (or parallel) at the end of a pipe fed by a stage that holds the key, or fed
 *     it by a here-string: it puts its input on a command line; and a shell so fed that
 *     reads its script from stdin (sh, bash -s, busybox sh; not sh -c '...' nor sh FILE):
 *     the key is in the commands it runs.
 *
 * A word's text has room for 3 bytes a byte of what is read (<() reads as /dev/fd/N), so
 * none is cut short, whatever the command's length; a word that did not fit, or a command
 * there is no memory to read, is reported rather than passed unread.
 *
 * What it cannot see: a script or program that puts the key on a command line itself, nor
 * what a shell given its script (sh -c '...', sh FILE) does with the key fed on its stdin;
 * the key copied by means it does not follow (positional parameters after set --, ${!name},
 * arrays, files, functions and aliases, names built at run time by eval, a copy made after
 * its use, as in while read K ... done <<< "$ROTA_CREDENTIAL"); wrappers other than those
 * above (sudo, ionice ...); here-documents (their lines are read as commands). A command
 * it reports may be safe (a hot word given to a program that keeps it to itself is still
 * reported: the rule is about argv).
 * Called on the loading thread; pure but for the memory it takes and gives back: a buffer
 * for each level of reading under way, DEPTH_MAX + 1 at most.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

#define TAINT_MAX 16 /* names holding the key that are followed */
#define NAME_MAX_ 48 /* bytes of a followed name */
#define DEPTH_MAX 4  /* sh -c, eval and substitutions read within each other */

struct taint {
    char name[TAINT_MAX][NAME_MAX_];
    unsigned n;
};

struct word {
    size_t len;        /* bytes seen; 0 = none yet */
    int assign;        /* 0 = still NAME, 1 = NAME=..., -1 = neither */
    bool hot;          /* expands the key */
    bool cut;          /* its text did not fit: it is reported, not read */
    char *text;        /* its text, quotes removed, expansions as written */
    size_t ntext, cap; /* cap: 3 bytes a byte of the text read, room for any word */
};

enum sep { SEP_LIST, SEP_PIPE };

struct scan {
    struct taint *t;
    int depth;
    bool exposed;
    /* the simple command being read */
    bool have_cmd;
    char name[64];            /* cut: no name of interest is that long */
    bool holds;               /* some word of it expands the key: it may print it */
    bool fed;                 /* its stdin is a pipe from a stage that may print the key */
    bool redirect;            /* the next word is a redirection's target */
    bool herestring;          /* ... of <<<, */
    bool here_hot;            /* ... which fed it the key */
    char reads[4][NAME_MAX_]; /* read's names, tainted at the end when it was fed the key */
    unsigned nreads;
    unsigned nargs;      /* its arguments so far */
    char var[NAME_MAX_]; /* the name of for NAME in ... and of printf -v NAME */
    bool var_next;       /* the next word is printf -v's name */
    bool sh_script;      /* a shell given its script: -c, or a file operand */
    bool sh_stdin;       /* ... told to read it from stdin all the same: -s */
    bool sh_operands;    /* ... past its options */
    bool sh_optarg;      /* ... and the next word is an option's argument (-o NAME) */
};

static bool scan_text(struct taint *t, const char *p, size_t len, int depth);

static bool ident(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static bool in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

/* Builtins of every sh that run no program: an argument of theirs stays in the shell. */
static bool harmless(const char *name)
{
    static const char *const b[] = {
        "echo",   "printf", "export", "local",   "readonly",  "declare", "typeset",
        "test",   "[",      "[[",     ":",       "read",      "set",     "unset",
        "true",   "false",  "for",    "case",    "cd",        "let",     "shift",
        "return", "exit",   "select", "mapfile", "readarray", NULL};
    return in_list(name, b);
}

/* Words before a command's name that are not its name. */
static bool reserved(const char *w)
{
    static const char *const r[] = {"if",   "then",  "else",  "elif", "fi", "do",
                                    "done", "while", "until", "esac", "!",  "{",
                                    "}",    "time",  "exec",  NULL};
    return in_list(w, r);
}

static bool shell(const char *name)
{
    static const char *const s[] = {"sh",  "bash", "dash", "zsh", "ksh",
                                    "ash", "mksh", "eval", NULL};
    const char *base = strrchr(name, '/');
    return in_list(base ? base + 1 : name, s);
}

/* Programs that run the command their arguments name (busybox sh, env sh, timeout 5 sh). */
static bool wrapper(const char *name)
{
    static const char *const w[] = {"busybox", "env",    "command", "builtin", "nice",
                                    "nohup",   "setsid", "stdbuf",  "timeout", NULL};
    const char *base = strrchr(name, '/');
    return in_list(base ? base + 1 : name, w);
}

static bool tainted(const struct taint *t, const char *name, size_t n)
{
    for (unsigned i = 0; i < t->n; i++)
        if (strlen(t->name[i]) == n && strncmp(t->name[i], name, n) == 0)
            return true;
    return false;
}

static void taint_add(struct taint *t, const char *name, size_t n)
{
    if (n && n < NAME_MAX_ && t->n < TAINT_MAX && !tainted(t, name, n)) {
        memcpy(t->name[t->n], name, n);
        t->name[t->n++][n] = 0;
    }
}

/* Does text "p" (of "len") name a tainted variable, or a way to print the environment,
 * as a whole word? What a substitution of it prints may then hold the key. */
static bool prints_key(const struct taint *t, const char *p, size_t len)
{
    static const char *const env[] = {"env",    "printenv", "environ", "set",
                                      "export", "declare",  "typeset", NULL};
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && ident(p[j]))
            j++;
        if (j > i) {
            char w[NAME_MAX_];
            size_t n = j - i < sizeof(w) - 1 ? j - i : sizeof(w) - 1;
            memcpy(w, p + i, n);
            w[n] = 0;
            if (tainted(t, p + i, j - i) || in_list(w, env))
                return true;
        }
        i = j > i ? j : i + 1;
    }
    return false;
}

/* Add "c" to the word: "quoting" when quoted or escaped (no '=' of an assignment then). */
static void word_char(struct word *w, char c, bool quoting)
{
    if (w->len == 0)
        w->assign = (isalpha((unsigned char)c) || c == '_') && !quoting ? 0 : -1;
    else if (w->assign == 0)
        w->assign = c == '=' && !quoting ? 1 : ident(c) && !quoting ? 0 : -1;
    if (w->ntext + 1 < w->cap)
        w->text[w->ntext++] = c;
    else
        w->cut = true;
    w->len++;
}

static void word_text(struct word *w, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        word_char(w, p[i], true);
}

/* Length of the substitution whose text starts at "p" after its opening "(" (nested
 * parentheses, quotes and comments skipped) up to and including its ")"; 0 when it does
 * not close. */
static size_t paren_end(const char *p, const char *end)
{
    int open = 1;
    char quote = 0;
    bool start = true; /* at the start of a word, where '#' begins a comment */
    for (const char *q = p; q < end; q++) {
        bool next = false;
        if (quote != '\'' && *q == '\\' && q + 1 < end) {
            q++;
        } else if (quote) {
            quote = *q == quote ? 0 : quote;
        } else if (*q == '\'' || *q == '"') {
            quote = *q;
        } else if (*q == '#' && start) {
            while (q + 1 < end && q[1] != '\n')
                q++;
        } else if (*q == '(') {
            open++;
            next = true;
        } else if (*q == ')' && --open == 0) {
            return (size_t)(q - p) + 1;
        } else {
            next = *q == ')' || (*q && strchr(" \t\n;&|<>", *q));
        }
        start = next;
    }
    return 0;
}

/* A substitution's inside "p" (of "n"): what it runs is read too; its output is hot
 * when "output" and it may print the key. */
static void substitution(struct scan *s, struct word *w, const char *p, size_t n, bool output)
{
    if (s->depth < DEPTH_MAX && scan_text(s->t, p, n, s->depth + 1))
        s->exposed = true;
    if (output && prints_key(s->t, p, n))
        w->hot = true;
}

/* An expansion at "p" ('$' or '`'): its length, 0 when "p" starts none (a '$' alone). */
static size_t expansion(struct scan *s, struct word *w, const char *p, const char *end)
{
    size_t n = 0;
    if (*p == '`') {
        const char *q = p + 1;
        while (q < end && *q != '`')
            q += *q == '\\' && q + 1 < end ? 2 : 1;
        if (q >= end)
            return 0;
        substitution(s, w, p + 1, (size_t)(q - p - 1), true);
        n = (size_t)(q - p) + 1;
    } else if (p + 1 < end && p[1] == '(') {
        size_t k = paren_end(p + 2, end);
        if (!k)
            return 0;
        substitution(s, w, p + 2, k - 1, true);
        n = 2 + k;
    } else if (p + 1 < end && p[1] == '{') {
        const char *q = memchr(p + 2, '}', (size_t)(end - p - 2));
        if (!q)
            return 0;
        if (p[2] != '#' && p[2] != '!' && prints_key(s->t, p + 2, (size_t)(q - p - 2)))
            w->hot = true; /* ${NAME}, ${NAME:-...}, ${X:-$NAME}; not ${#NAME}, its length */
        n = (size_t)(q - p) + 1;
    } else {
        const char *q = p + 1;
        while (q < end && ident(*q))
            q++;
        if (q == p + 1)
            return 0;
        w->hot |= tainted(s->t, p + 1, (size_t)(q - p - 1));
        n = (size_t)(q - p);
    }
    word_text(w, p, n); /* as written: read again under sh -c, eval, assignments */
    return n;
}

static void word_reset(struct word *w)
{
    w->len = w->ntext = 0;
    w->assign = 0;
    w->hot = w->cut = false;
}

/* Copy "name" into "to" (of NAME_MAX_), "" when it does not fit. */
static void name_copy(char *to, const char *name)
{
    size_t n = strlen(name);
    n = n < NAME_MAX_ ? n : 0;
    memcpy(to, name, n);
    to[n] = 0;
}

/* A shell's argument "a" ahead of its operands: does it give the script (-c, a file), ask
 * for it on stdin (-s) or take the next word (-o NAME)? eval has none. */
static void shell_option(struct scan *s, const char *a)
{
    if (s->sh_operands || strcmp(s->name, "eval") == 0) {
        /* its script's arguments */
    } else if (s->sh_optarg) {
        s->sh_optarg = false;
    } else if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0) {
        s->sh_operands = true;
    } else if (a[0] == '-' && a[1] == '-') { /* bash's long options */
        s->sh_optarg = strcmp(a, "--rcfile") == 0 || strcmp(a, "--init-file") == 0;
    } else if (a[0] == '-' || a[0] == '+') {
        s->sh_script |= a[0] == '-' && strchr(a, 'c');
        s->sh_stdin |= a[0] == '-' && strchr(a, 's');
        s->sh_optarg = strpbrk(a + 1, "oO") != NULL;
    } else {
        s->sh_operands = true;
        s->sh_script |= !s->sh_stdin; /* sh FILE: its script; sh -s ARG: an argument */
    }
}

/* An argument "w" of the command s->name. */
static void argument(struct scan *s, struct word *w)
{
    w->text[w->ntext] = 0;
    s->holds |= w->hot || strstr(w->text, "environ"); /* cat /proc/self/environ | ... */
    unsigned n = s->nargs++;
    if (wrapper(s->name) && !w->hot &&
        (shell(w->text) || strcmp(w->text, "xargs") == 0 || strcmp(w->text, "parallel") == 0)) {
        size_t k = w->ntext < sizeof(s->name) - 1 ? w->ntext : sizeof(s->name) - 1;
        memcpy(s->name, w->text, k); /* busybox sh, env sh -c '...': the shell is the command */
        s->name[k] = 0;
        s->nargs = 0;
        return;
    }
    if (strcmp(s->name, "export") == 0 || strcmp(s->name, "local") == 0 ||
        strcmp(s->name, "readonly") == 0 || strcmp(s->name, "declare") == 0 ||
        strcmp(s->name, "typeset") == 0) {
        if (w->assign == 1 && w->hot)
            taint_add(s->t, w->text, strcspn(w->text, "="));
    } else if (strcmp(s->name, "read") == 0 || strcmp(s->name, "mapfile") == 0 ||
               strcmp(s->name, "readarray") == 0) {
        if (w->text[0] != '-' && s->nreads < 4 && w->ntext < NAME_MAX_)
            memcpy(s->reads[s->nreads++], w->text, w->ntext + 1);
    } else if (strcmp(s->name, "for") == 0 || strcmp(s->name, "select") == 0) {
        if (n == 0)
            name_copy(s->var, w->text);
        else if (w->hot) /* for K in "$ROTA_CREDENTIAL": K holds the key in the loop */
            taint_add(s->t, s->var, strlen(s->var));
    } else if (strcmp(s->name, "printf") == 0) { /* printf -v K ...: K, at the end */
        if (s->var_next)
            name_copy(s->var, w->text);
        else if (n == 0 && strncmp(w->text, "-v", 2) == 0)
            name_copy(s->var, w->text + 2);
        s->var_next = !s->var_next && n == 0 && strcmp(w->text, "-v") == 0;
    } else if (shell(s->name)) {
        shell_option(s, w->text);
        if (w->hot && strcmp(s->name, "eval") != 0)
            s->exposed = true; /* sh -c "... $KEY": on sh's own command line */
        if (s->depth < DEPTH_MAX && scan_text(s->t, w->text, w->ntext, s->depth + 1))
            s->exposed = true;
    } else if (w->hot && !harmless(s->name)) {
        s->exposed = true;
    }
}

static void word_end(struct scan *s, struct word *w)
{
    w->text[w->ntext] = 0;
    s->exposed |= w->cut; /* never so, with room for 3 bytes a byte: not read, reported */
    if (!w->len) {
        /* nothing */
    } else if (s->redirect) {
        s->here_hot |= s->herestring && w->hot;
        s->redirect = s->herestring = false;
    } else if (!s->have_cmd && w->assign == 1) {
        if (w->hot) /* K=$ROTA_CREDENTIAL: K holds the key from here on */
            taint_add(s->t, w->text, strcspn(w->text, "="));
    } else if (!s->have_cmd && reserved(w->text)) {
        /* the command's name is still to come */
    } else if (!s->have_cmd) {
        s->have_cmd = true;
        size_t n = w->ntext < sizeof(s->name) - 1 ? w->ntext : sizeof(s->name) - 1;
        memcpy(s->name, w->text, n);
        s->name[n] = 0;
        s->exposed |= w->hot;
        s->holds |= w->hot;
    } else {
        argument(s, w);
    }
    word_reset(w);
}

/* The simple command ends at "sep": what it was fed decides xargs and read. */
static void command_end(struct scan *s, struct word *w, enum sep sep)
{
    word_end(s, w);
    bool fed_key = s->fed || s->here_hot;
    if (fed_key && (strcmp(s->name, "xargs") == 0 || strcmp(s->name, "parallel") == 0))
        s->exposed = true;
    if (fed_key && shell(s->name) && strcmp(s->name, "eval") != 0 && !s->sh_script)
        s->exposed = true; /* printf ... | sh: its input is its script, the key in it */
    if (fed_key && (strcmp(s->name, "read") == 0 || strcmp(s->name, "mapfile") == 0 ||
                    strcmp(s->name, "readarray") == 0))
        for (unsigned i = 0; i < s->nreads; i++)
            taint_add(s->t, s->reads[i], strlen(s->reads[i]));
    if (s->holds && strcmp(s->name, "printf") == 0) /* printf -v K '%s' "$ROTA_CREDENTIAL" */
        taint_add(s->t, s->var, strlen(s->var));
    bool feeds = s->have_cmd && (s->holds || s->fed || strcmp(s->name, "env") == 0 ||
                                 strcmp(s->name, "printenv") == 0);
    s->have_cmd = s->holds = s->redirect = s->herestring = s->here_hot = false;
    s->nreads = s->nargs = 0;
    s->name[0] = s->var[0] = 0;
    s->var_next = s->sh_script = s->sh_stdin = s->sh_operands = s->sh_optarg = false;
    s->fed = sep == SEP_PIPE && feeds;
}

/* A redirection at "p" ('<' or '>'): its operator's length; the next word is its target.
 * A word of digits before it is the descriptor, no argument. */
static size_t redirection(struct scan *s, struct word *w, const char *p, const char *end)
{
    bool digits = w->len > 0 && w->ntext == w->len;
    for (size_t i = 0; digits && i < w->ntext; i++)
        digits = isdigit((unsigned char)w->text[i]);
    if (digits)
        word_reset(w);
    else
        word_end(s, w);
    size_t n = 0;
    while (p + n < end && strchr("<>&|-", p[n]))
        n++;
    s->redirect = true;
    s->herestring = n >= 3 && strncmp(p, "<<<", 3) == 0;
    return n;
}

static bool scan_text(struct taint *t, const char *cmd, size_t len, int depth)
{
    struct scan s = {.t = t, .depth = depth};
    /* A word's text is at most 3 bytes a byte of "cmd" (<() becomes /dev/fd/N): no word is
     * cut, however long. Without the room, the command is reported, not passed unread. */
    struct word word = {.cap = len < SIZE_MAX / 4 ? 3 * len + 1 : 0}, *w = &word;
    if (!(word.text = word.cap ? malloc(word.cap) : NULL))
        return true;
    word_reset(w);
    const char *end = cmd + len;
    char quote = 0;
    for (const char *p = cmd; p < end; p++) {
        char c = *p;
        size_t n;
        if (quote != '\'' && c == '\\' && p + 1 < end) { /* an escaped byte */
            word_char(w, *++p, true);
        } else if (quote != '\'' && (c == '$' || c == '`') && (n = expansion(&s, w, p, end))) {
            p += n - 1;
        } else if (quote) {
            if (c == quote)
                quote = 0;
            else
                word_char(w, c, true);
        } else if (c == '#' && !w->len) { /* a comment, to the end of the line */
            while (p + 1 < end && p[1] != '\n')
                p++;
        } else if (c == '\'' || c == '"') {
            quote = c;
            if (!w->len)
                w->assign = -1, w->len = 1; /* '' is a word, and no assignment */
        } else if ((c == '<' || c == '>') && p + 1 < end && p[1] == '(' &&
                   (n = paren_end(p + 2, end))) {
            substitution(&s, w, p + 2, n - 1, false); /* <(...): a file name */
            word_text(w, "/dev/fd/N", 9);
            p += 1 + n;
        } else if (c == '<' || c == '>') {
            p += redirection(&s, w, p, end) - 1;
        } else if (c == ' ' || c == '\t') {
            word_end(&s, w);
        } else if (c == '|' && p + 1 < end && p[1] == '|') {
            command_end(&s, w, SEP_LIST);
            p++;
        } else if (c == '|') {
            command_end(&s, w, SEP_PIPE);
        } else if (strchr(";&()\n", c)) {
            command_end(&s, w, SEP_LIST);
        } else {
            word_char(w, c, false);
        }
    }
    command_end(&s, w, SEP_LIST);
    free(word.text);
    return s.exposed;
}

bool cfg_exec_exposes_credential(const char *cmd)
{
    struct taint t = {.n = 1, .name = {"ROTA_CREDENTIAL"}};
    return scan_text(&t, cmd, strlen(cmd), 0);
}
