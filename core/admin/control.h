/*
 * control.h - the control protocol between rotad and its clients (private to rota).
 *
 * DESIGN
 * A Unix stream socket carries frames: a 4-byte big-endian length, then that many bytes
 * of one msgpack value. A request is a map {"cmd": STRING, "args": [STRING...]}: the
 * command line after the command's name, so every client speaks it the way rotactl does.
 * A reply is a map {"ok": BOOL, "error": STRING (when not ok), "data": VALUE}. In
 * memory both sides hold values as jansson trees; msgpack is only the wire form.
 * Requests over ROTA_CTL_MAX_REQUEST bytes, nested deeper than ROTA_CTL_MAX_DEPTH, or not
 * shaped as above are refused with an error reply, after which rotad closes the
 * connection. Any thread; no shared state.
 */
#ifndef ROTA_CORE_CONTROL_H
#define ROTA_CORE_CONTROL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ROTA_CTL_MAX_REQUEST (64u * 1024)
#define ROTA_CTL_MAX_REPLY   (64u * 1024 * 1024)
#define ROTA_CTL_MAX_DEPTH   16
#define ROTA_CTL_MAX_ARGS    32

/* Encode "v" as one frame (length prefix included) in a malloc'd buffer. 0 or -errno. */
int rota_ctl_encode(const json_t *v, char **frame, size_t *len);

/* Decode one msgpack value of "len" bytes (the frame's body). 0, or -EINVAL with "err"
 * saying what was wrong (trailing bytes, too deep, not a string key, ...). */
int rota_ctl_decode(const void *body, size_t len, json_t **out, char *err, size_t errlen);

/* The length a frame header announces. */
static inline uint32_t rota_ctl_frame_len(const unsigned char h[4])
{
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* Make "s" safe to echo in a reply or a log line, in place: an invalid or cut UTF-8
 * sequence and any control character become '?'. Returns "s". */
char *rota_ctl_clean(char *s);

/* An error reply {"ok": false, "error": msg}, "msg" cleaned first; never NULL. */
json_t *rota_ctl_error(const char *msg);

/* Check that "req" is a request; on success *cmd and *args point into it. */
int rota_ctl_request(const json_t *req, const char **cmd, const json_t **args, char *err,
                     size_t errlen);

/* Whom a client accepts as the listener on a control socket, besides root and its own
 * euid (always accepted). */
struct rota_ctl_peer {
    uid_t uid; /* one more uid accepted (rotad's service user); (uid_t)-1 = none */
    pid_t pid; /* the listener must be this process (rotad, as recorded); 0 = any */
};

/* Connect to "path", check who listens there (SO_PEERCRED: root, the caller's euid, or
 * as "want" says; NULL = root or the caller's euid, any pid), send {"cmd": cmd, "args":
 * argv}, wait for the reply (at most "timeout_ms"). Returns 0 with *reply, -EPERM when
 * the listener is not one to trust (nothing sent; "err" names the socket, the listener's
 * uid and pid, and what was expected), -ECONNREFUSED / -ENOENT when nobody listens,
 * -ETIMEDOUT, or another -errno; "err" says which. */
int rota_ctl_call_peer(const char *path, const struct rota_ctl_peer *want, const char *cmd,
                       int argc, char *const *argv, int timeout_ms, json_t **reply, char *err,
                       size_t errlen);

/* rota_ctl_call_peer with "want" NULL. */
int rota_ctl_call(const char *path, const char *cmd, int argc, char *const *argv,
                  int timeout_ms, json_t **reply, char *err, size_t errlen);

#endif
