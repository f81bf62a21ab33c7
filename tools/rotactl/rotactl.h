/*
 * rotactl.h - what rotactl's files share (private to rotactl).
 *
 * main.c parses the command line and runs the one-shot commands, render.c turns views of
 * a table into text and JSON, watch.c redraws them. Exit codes, for every command:
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

/* ---- main.c ---- */

/* Print "rotactl: <message>" and the usage on stderr; returns ROTACTL_USAGE. */
int rotactl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Map the instance's current generation, or print why not (one line) and return
 * ROTACTL_UNREACHABLE. */
int rotactl_attach(const struct rotactl_opts *o, struct rota_shm_map *m);

/* ---- answer.c ---- */

/* `rotactl parse`: run a provider's parser on files and print what it understood. */
int rotactl_parse(const struct rotactl_opts *o, int argc, char **argv);

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

int rotactl_watch(const struct rotactl_opts *o, int argc, char **argv);

#endif
