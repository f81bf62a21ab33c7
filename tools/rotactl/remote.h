/*
 * remote.h - rotactl's commands that go through rotad's control socket (private).
 *
 * The socket's path comes from "socket", or else from the instance's directory in
 * shared memory (rotad records it there). Replies are printed as tables, or as JSON with
 * "json".
 */
#ifndef ROTACTL_REMOTE_H
#define ROTACTL_REMOTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct rotactl_opts {
    const char *instance;
    const char *socket; /* NULL = from the directory */
    bool json;
};

struct rotactl_line;

/* Run a command that needs rotad (enable, disable, reset, cooldown, select, reload, drain,
 * probe, journal), read and checked by cli.c. Returns the process exit status (0 ok, 1
 * refused, 2 usage, 3 rotad unreachable), having printed the outcome or the error. */
int rotactl_remote(const struct rotactl_opts *o, const struct rotactl_line *l);

/* rotad's own status (pid, uptime, config path, reloads, last error, ...) as a JSON
 * object, or NULL with "err" saying why (not running, no answer). */
json_t *rotactl_remote_status(const struct rotactl_opts *o, char *err, size_t errlen);

/* The operator's note on account "id" (the reason given to disable or drain it), as a
 * malloc'd string, or NULL when there is none or rotad cannot be reached. */
char *rotactl_remote_note(const struct rotactl_opts *o, uint64_t id);

/* journal.c: print a `journal` reply as text. */
void rotactl_print_journal(const json_t *d);

#endif
