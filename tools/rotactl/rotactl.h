/*
 * rotactl.h - what rotactl's files share (private to rotactl).
 *
 * main.c wires the parts and runs the one-shot commands, cli.c reads and checks the
 * command line, render.c turns views of a table into text and JSON, escape.c makes the
 * names in them safe for a terminal, watch.c redraws them. Exit codes, for every command:
 * ROTACTL_OK, ROTACTL_REFUSED (refused or not found), ROTACTL_USAGE, ROTACTL_UNREACHABLE
 * (the instance or its table cannot be reached).
 */
#ifndef ROTACTL_H
#define ROTACTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "remote.h"
#include "table.h"
#include "view.h"

enum {
    ROTACTL_OK = 0,
    ROTACTL_REFUSED = 1,
    ROTACTL_USAGE = 2,
    ROTACTL_UNREACHABLE = 3,
};

/* Not an exit status: the command line asked for help, which is printed; exit 0. */
#define ROTACTL_DONE (-1)

/* ---- cli.c ---- */

#define ROTACTL_MAX_POS 2 /* positional arguments of a command */
#define ROTACTL_MAX_OPT 4 /* options of a command */

/* A command's line, read and checked against the command's table. Options are kept in
 * the command's own order, whatever the order typed. */
struct rotactl_line {
    const char *cmd;     /* the command's name */
    bool remote;         /* it goes through rotad's control socket */
    bool needs_instance; /* it reads an instance's table or asks its rotad */
    bool json;           /* --json was given */
    int npos;
    const char *pos[ROTACTL_MAX_POS];
    const char *opt[ROTACTL_MAX_OPT]; /* an option's name when it was given, else NULL */
    const char *val[ROTACTL_MAX_OPT]; /* ... its value as typed */
    uint64_t num[ROTACTL_MAX_OPT];    /* ... as a number: ns for a duration */
};

/* Read "argv" ("argv[0]" is the command) into "l", checking every argument and option
 * value ("json": --json came before the command). Returns ROTACTL_OK; ROTACTL_DONE when
 * --help or -h asked for the command's usage, printed on stdout; or ROTACTL_USAGE, the
 * mistake printed on stderr. */
int rotactl_cli_parse(int argc, char **argv, bool json, struct rotactl_line *l);

/* The value given to option "name" ("--for"), or NULL; its number, or "dflt". */
const char *rotactl_line_opt(const struct rotactl_line *l, const char *name);
uint64_t rotactl_line_num(const struct rotactl_line *l, const char *name, uint64_t dflt);

/* Every command, one line each, with the global options; or command "cmd"'s usage. */
void rotactl_cli_help(FILE *out, const char *cmd);

/* Print "rotactl: <message>" and "try 'rotactl CMD --help'" ("cmd" NULL: 'rotactl
 * --help') on stderr; returns ROTACTL_USAGE. */
int rotactl_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- escape.c ---- */

/* Room for "n" bytes of text once escaped (each byte may become \xNN), and the NUL. */
#define ROTACTL_ESC_SIZE(n) (4 * (n) + 1)
/* Room for a "provider/name" of a table's names. */
#define ROTACTL_ESC_NAME ROTACTL_ESC_SIZE(2 * ROTA_MAX_NAME)

/* "s" with every byte a terminal would act on written as \xNN (see escape.c for which),
 * in "buf" of "n" bytes, ending in "..." when cut short; returns "buf". NULL is "". */
const char *rotactl_esc(const char *s, char *buf, size_t n);
/* The same, malloc'd (the caller frees); exits on no memory. */
char *rotactl_esc_dup(const char *s);
/* Would rotactl_esc change "s"? Is "s" valid UTF-8? */
bool rotactl_esc_needed(const char *s);
bool rotactl_utf8_ok(const char *s);
/* Columns escaped text "s" takes on a terminal. */
size_t rotactl_width(const char *s);
/* Write escaped text "s" on "out", padded with spaces to "width" columns: after it, or
 * before it when "right". */
void rotactl_pad(FILE *out, const char *s, size_t width, bool right);

/* ---- main.c ---- */

/* Map the instance's current generation, or print why not (one line) and return
 * ROTACTL_UNREACHABLE. */
int rotactl_attach(const struct rotactl_opts *o, struct rota_shm_map *m);

/* ---- answer.c ---- */

/* `rotactl parse`: run a provider's parser on files and print what it understood. */
int rotactl_parse(const struct rotactl_opts *o, const struct rotactl_line *l);

/* ---- render.c ---- */

/* "850ms", "12s", "3m4s", "2h5m", "2d3h". */
const char *rotactl_dur(uint64_t ns, char *buf, size_t n);
/* "3s ago", or "never" for UINT64_MAX. */
const char *rotactl_ago(uint64_t ns, char *buf, size_t n);
/* "2024-05-01T00:00:00Z" from wall-clock ns. */
const char *rotactl_iso(int64_t wall_ns, char *buf, size_t n);

/* The accounts table (of route "route", grouped by tier, or of every account with
 * ROTA_NONE) as aligned text on "out". */
void rotactl_accounts_text(FILE *out, const struct rota_shm_map *m, uint32_t route,
                           uint64_t now, int64_t wall);
/* ... as a JSON array of account objects. */
json_t *rotactl_accounts_json(const struct rota_shm_map *m, uint32_t route, uint64_t now,
                              int64_t wall);

/* One account as JSON: core/view_json's shape, with the index and pessimism reason. */
json_t *rotactl_account_json(const struct rota_view_account *v);
void rotactl_account_text(FILE *out, const struct rota_view_account *v, int64_t wall);

/* The table's half of "status" (as JSON: core/view_json's rota_view_instance_json). */
void rotactl_instance_text(FILE *out, const struct rota_view_instance *vi);
/* One line: instance, generation, supervisor, heartbeat, counts. */
void rotactl_instance_line(FILE *out, const struct rota_view_instance *vi);

/* Print "j" on stdout, indented; returns ROTACTL_OK. */
int rotactl_print_json(json_t *j);

/* ---- watch.c ---- */

int rotactl_watch(const struct rotactl_opts *o, const struct rotactl_line *l);

#endif
/* workers.c: `rotactl workers` in words. */
void rotactl_print_workers(const json_t *d);
