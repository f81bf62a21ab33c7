/*
 * jredis_int.h - what the Redis backend's two files share (private to core/journal/jredis*.c).
 */
#ifndef ROTA_CORE_JREDIS_INT_H
#define ROTA_CORE_JREDIS_INT_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/time.h>

#include "jredis.h"

/* hiredis' error on "c" as "what: reason" into "msg"; -errno ("saved" is errno right
 * after the failed call). */
int rota_jr_ctx_error(const redisContext *c, int saved, const char *what, char *msg, size_t n);

/* Block SIGPIPE in this thread; *pending says whether one was pending already. */
void rota_jr_pipe_block(sigset_t *old, bool *pending);
/* Take back a SIGPIPE raised since rota_jr_pipe_block, then restore the mask. */
void rota_jr_pipe_restore(const sigset_t *old, bool pending);

/* "<prefix>:<suffix>", malloc'd; NULL when out of memory. */
char *rota_jr_key(const char *prefix, const char *suffix);

/* "host:port" or "unix:path", never the password. */
void rota_jr_fmt_target(const struct rota_jredis_opts *o, char *buf, size_t n);

/* Run one command whose answer is a status or an integer. 0; "refused" with "what
 * refused: <Redis' error>" in "msg" when Redis answers with an error; or -errno. */
int rota_jr_call(redisContext *c, int argc, const char **argv, const char *what, int refused,
                 char *msg, size_t n);

/* Connect as "o" says with timeout "tv" for the connection and every command, then AUTH
 * and SELECT when configured (else PING, so a connection means Redis answered). 0 with
 * *out, or -errno with the reason in "msg" (never the password). */
int rota_jr_dial(const struct rota_jredis_opts *o, struct timeval tv, redisContext **out,
                 char *msg, size_t n);

#endif
