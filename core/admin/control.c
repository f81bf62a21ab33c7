/*
 * control.c - control frames: jansson values to msgpack and back, and the client call.
 *
 * DESIGN
 * The decoder trusts nothing. A first pass walks the bytes and checks every length and
 * element count against what is left of the frame, and the nesting depth (msgpack-c
 * allocates what a container claims before reading it). Then msgpack-c parses the body
 * into a zone, and the converter refuses what JSON cannot hold (non-string map keys,
 * binary and extension types, non-finite numbers, strings that are not UTF-8) with a
 * message that says which. Integers beyond int64 become reals. Used by rotad's main
 * thread and by clients; no globals.
 *
 * Whom a client talks to. A request can disable accounts or reload the config, and a
 * reply is believed, so a client sends nothing until it knows who listens: it connects,
 * then asks the kernel (SO_PEERCRED: who called listen on the socket it reached) and
 * goes on only when that uid is root, its own euid, or one the caller names (rotad's
 * service user), and, when the caller knows rotad's pid (rotactl reads it from the
 * instance's directory), that pid. Checking the path first (lstat) would race a stranger
 * who swaps the file; the connected socket cannot be swapped. rotad checks the other
 * direction (tools/rotad/loop.c).
 */
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"

static int pack(msgpack_packer *pk, const json_t *v, int depth)
{
    if (!v)
        return -EINVAL;
    if (depth > ROTA_CTL_MAX_DEPTH)
        return -E2BIG;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach((json_t *)v, k, x)
        {
            size_t kl = strlen(k);
            msgpack_pack_str(pk, kl);
            msgpack_pack_str_body(pk, k, kl);
            int rc = pack(pk, x, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, x)
        {
            int rc = pack(pk, x, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -EINVAL;
}

int rota_ctl_encode(const json_t *v, char **frame, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    static const char zero[4];
    msgpack_sbuffer_write(&sb, zero, 4);
    int rc = pack(&pk, v, 0);
    if (rc || !sb.data) {
        msgpack_sbuffer_destroy(&sb);
        return rc ? rc : -ENOMEM;
    }
    size_t body = sb.size - 4;
    if (body > ROTA_CTL_MAX_REPLY) {
        msgpack_sbuffer_destroy(&sb);
        return -EMSGSIZE;
    }
    unsigned char *p = (unsigned char *)sb.data;
    p[0] = (unsigned char)(body >> 24);
    p[1] = (unsigned char)(body >> 16);
    p[2] = (unsigned char)(body >> 8);
    p[3] = (unsigned char)body;
    *frame = msgpack_sbuffer_release(&sb);
    *len = body + 4;
    return 0;
}

static json_t *unpack(const msgpack_object *o, int depth, char *err, size_t n)
{
    if (depth > ROTA_CTL_MAX_DEPTH) {
        snprintf(err, n, "nested deeper than %d levels", ROTA_CTL_MAX_DEPTH);
        return NULL;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) {
            snprintf(err, n, "a number that is not finite");
            return NULL;
        }
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        json_t *s =
            o->via.str.size ? json_stringn(o->via.str.ptr, o->via.str.size) : json_string("");
        if (!s)
            snprintf(err, n, "a string that is not UTF-8");
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *x = unpack(&o->via.array.ptr[i], depth + 1, err, n);
            if (!x || json_array_append_new(a, x)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                snprintf(err, n, "a map key that is not a string");
                json_decref(m);
                return NULL;
            }
            char key[256];
            if (kv->key.via.str.size >= sizeof(key) ||
                (kv->key.via.str.size &&
                 memchr(kv->key.via.str.ptr, 0, kv->key.via.str.size))) {
                snprintf(err, n, "a map key longer than %zu bytes or holding NUL",
                         sizeof(key) - 1);
                json_decref(m);
                return NULL;
            }
            if (kv->key.via.str.size)
                memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = 0;
            json_t *x = unpack(&kv->val, depth + 1, err, n);
            if (!x || json_object_set_new(m, key, x)) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    case MSGPACK_OBJECT_BIN:
        snprintf(err, n, "binary data (only strings are accepted)");
        return NULL;
    default:
        snprintf(err, n, "a msgpack extension type");
        return NULL;
    }
}

/* Big-endian unsigned of "k" bytes at "p". */
static uint64_t be(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

/* Walk one msgpack value at p[*off] without building it: every length must fit in what
 * is left, every container claim no more elements than bytes left (each takes one at
 * least), nesting stays within the bound. msgpack-c allocates what a container claims
 * before reading it; this keeps a 20-byte frame from asking for gigabytes. */
static int scan(const uint8_t *p, size_t len, size_t *off, int depth, char *err, size_t n)
{
    if (depth > ROTA_CTL_MAX_DEPTH + 1)
        return snprintf(err, n, "nested deeper than %d levels", ROTA_CTL_MAX_DEPTH), -EINVAL;
    if (*off >= len)
        return snprintf(err, n, "truncated msgpack value (%zu bytes)", len), -EINVAL;
    uint8_t t = p[(*off)++];
    uint64_t count = 0, skip = 0;
    int hdr = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 0;
    if ((t & 0xe0) == 0xa0) {
        skip = t & 0x1f;
    } else if ((t & 0xf0) == 0x90 || (t & 0xf0) == 0x80) {
        count = (uint64_t)(t & 0x0f) * ((t & 0xf0) == 0x80 ? 2 : 1);
    } else {
        switch (t) {
        case 0xc4:
        case 0xc5:
        case 0xc6: /* bin */
        case 0xd9:
        case 0xda:
        case 0xdb: /* str */
            hdr = t >= 0xd9 ? 1 << (t - 0xd9) : 1 << (t - 0xc4);
            break;
        case 0xc7:
        case 0xc8:
        case 0xc9: /* ext: length, then a type byte */
            hdr = 1 << (t - 0xc7);
            skip = 1;
            break;
        case 0xca:
            skip = 4;
            break;
        case 0xcb:
            skip = 8;
            break;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
            skip = 1u << (t - 0xcc);
            break;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3:
            skip = 1u << (t - 0xd0);
            break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            skip = 1 + (1u << (t - 0xd4));
            break;
        case 0xdc:
        case 0xdd: /* array16/32 */
        case 0xde:
        case 0xdf: /* map16/32 */
            if (len - *off < (t & 1 ? 4u : 2u))
                return snprintf(err, n, "truncated msgpack value (%zu bytes)", len), -EINVAL;
            count = be(p + *off, t & 1 ? 4 : 2) * (t >= 0xde ? 2 : 1);
            *off += t & 1 ? 4 : 2;
            break;
        default:
            return snprintf(err, n, "not msgpack (byte 0x%02x at %zu)", t, *off - 1), -EINVAL;
        }
    }
    if (hdr) {
        if (len - *off < (size_t)hdr)
            return snprintf(err, n, "truncated msgpack value (%zu bytes)", len), -EINVAL;
        skip += be(p + *off, hdr);
        *off += (size_t)hdr;
    }
    if (skip > len - *off || count > len - *off)
        return snprintf(err, n, "a length of %llu at byte %zu runs past the frame's %zu bytes",
                        (unsigned long long)(skip ? skip : count), *off, len),
               -EINVAL;
    *off += (size_t)skip;
    for (uint64_t i = 0; i < count; i++) {
        int rc = scan(p, len, off, depth + 1, err, n);
        if (rc)
            return rc;
    }
    return 0;
}

int rota_ctl_decode(const void *body, size_t len, json_t **out, char *err, size_t n)
{
    char tmp[8];
    if (!err) {
        err = tmp;
        n = sizeof(tmp);
    }
    size_t off = 0;
    int rc = scan(body, len, &off, 0, err, n);
    if (rc)
        return rc;
    if (off != len)
        return snprintf(err, n, "%zu bytes after the value", len - off), -EINVAL;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, body, len, &off);
    if (r == MSGPACK_UNPACK_CONTINUE) {
        rc = -EINVAL;
        snprintf(err, n, "truncated msgpack value (%zu bytes)", len);
    } else if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) {
        rc = -EINVAL;
        snprintf(err, n, "not msgpack (byte %zu)", off);
    } else if (off != len) {
        rc = -EINVAL;
        snprintf(err, n, "%zu bytes after the value", len - off);
    } else if (!(*out = unpack(&u.data, 0, err, n))) {
        rc = -EINVAL;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* Length of the valid UTF-8 sequence at "p" (1 to 4), or 0 when there is none. */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || p[0] >= 0xf8)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
        (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return n;
}

char *rota_ctl_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
    return s;
}

json_t *rota_ctl_error(const char *msg)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", msg ? msg : "error");
    json_t *r = json_pack("{s:b, s:s}", "ok", 0, "error", rota_ctl_clean(buf));
    return r ? r : json_pack("{s:b, s:s}", "ok", 0, "error", "error");
}

int rota_ctl_request(const json_t *req, const char **cmd, const json_t **args, char *err,
                     size_t n)
{
    if (!json_is_object(req))
        return snprintf(err, n, "a request is a map with \"cmd\" and \"args\""), -EINVAL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)req, k, v)
    {
        if (strcmp(k, "cmd") && strcmp(k, "args"))
            return snprintf(err, n, "unknown request field \"%.32s\"", k), -EINVAL;
    }
    const json_t *c = json_object_get(req, "cmd");
    if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > 32)
        return snprintf(err, n, "\"cmd\" must be a command name"), -EINVAL;
    const json_t *a = json_object_get(req, "args");
    if (a && !json_is_array(a))
        return snprintf(err, n, "\"args\" must be an array of strings"), -EINVAL;
    if (a && json_array_size(a) > ROTA_CTL_MAX_ARGS)
        return snprintf(err, n, "more than %d arguments", ROTA_CTL_MAX_ARGS), -EINVAL;
    size_t i;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v))
            return snprintf(err, n, "argument %zu is not a string", i + 1), -EINVAL;
    }
    *cmd = json_string_value(c);
    *args = a;
    return 0;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Move "len" bytes in the direction "out" says, waiting at most until "deadline". */
static int io_all(int fd, void *buf, size_t len, bool out, uint64_t deadline)
{
    char *p = buf;
    while (len > 0) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pfd = {fd, out ? POLLOUT : POLLIN, 0};
        int pr = poll(&pfd, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return pr == 0 ? -ETIMEDOUT : -errno;
        ssize_t k = out ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return -ECONNRESET;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Whether the listener on the connected "fd" is one "want" trusts; "err" says why not. */
static int check_peer(int fd, const char *path, const struct rota_ctl_peer *want, char *err,
                      size_t n)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return snprintf(err, n, "%s: cannot tell who listens (SO_PEERCRED: %s); nothing sent",
                        path, strerror(errno)),
               -EPERM;
    uid_t me = geteuid(), also = want ? want->uid : (uid_t)-1;
    pid_t pid = want ? want->pid : 0;
    bool uid_ok = cr.uid == 0 || cr.uid == me || (also != (uid_t)-1 && cr.uid == also);
    if (uid_ok && (pid <= 0 || cr.pid == pid))
        return 0;
    char exp[96];
    int k = me ? snprintf(exp, sizeof(exp), "uid 0 or %ld", (long)me)
               : snprintf(exp, sizeof(exp), "uid 0");
    if (also != (uid_t)-1 && also != 0 && also != me)
        snprintf(exp + k, sizeof(exp) - (size_t)k, " or %ld", (long)also);
    if (!uid_ok)
        snprintf(err, n,
                 "%s: refusing to talk to this socket: its listener is uid %ld (pid %ld), "
                 "expected %s; nothing sent",
                 path, (long)cr.uid, (long)cr.pid, exp);
    else
        snprintf(err, n,
                 "%s: refusing to talk to this socket: its listener is pid %ld (uid %ld), "
                 "but the instance's rotad is pid %ld; nothing sent",
                 path, (long)cr.pid, (long)cr.uid, (long)pid);
    return -EPERM;
}

int rota_ctl_call(const char *path, const char *cmd, int argc, char *const *argv,
                  int timeout_ms, json_t **reply, char *err, size_t n)
{
    return rota_ctl_call_peer(path, NULL, cmd, argc, argv, timeout_ms, reply, err, n);
}

int rota_ctl_call_peer(const char *path, const struct rota_ctl_peer *want, const char *cmd,
                       int argc, char *const *argv, int timeout_ms, json_t **reply, char *err,
                       size_t n)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof(sa.sun_path))
        return snprintf(err, n, "no usable control socket path"), -EINVAL;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    json_t *args = json_array(), *req = NULL;
    for (int i = 0; args && i < argc; i++) {
        json_t *a = json_string(argv[i]);
        if (!a || json_array_append_new(args, a)) {
            json_decref(args);
            return snprintf(err, n, "argument %d is not valid UTF-8", i + 1), -EINVAL;
        }
    }
    req = json_pack("{s:s, s:o}", "cmd", cmd, "args", args);
    char *frame = NULL;
    size_t len = 0;
    int rc = req ? rota_ctl_encode(req, &frame, &len) : -EINVAL;
    json_decref(req);
    if (rc)
        return snprintf(err, n, "cannot encode the request: %s", strerror(-rc)), rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        free(frame);
        return snprintf(err, n, "socket: %s", strerror(errno)), -errno;
    }
    uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 5000);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        rc = -errno;
        snprintf(err, n, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((rc = check_peer(fd, path, want, err, n)) != 0)
        goto out;
    rc = io_all(fd, frame, len, true, deadline);
    unsigned char h[4];
    /* A refusal may come before the request is read, and the socket close after it:
     * the reply is read even when sending failed. */
    int sent = rc;
    if (!rc || rc == -EPIPE || rc == -ECONNRESET)
        rc = io_all(fd, h, 4, false, deadline);
    if (rc) {
        snprintf(err, n, "%s: %s", path, strerror(sent ? -sent : -rc));
        rc = sent ? sent : rc;
        goto out;
    }
    uint32_t blen = rota_ctl_frame_len(h);
    if (blen > ROTA_CTL_MAX_REPLY) {
        rc = -EMSGSIZE;
        snprintf(err, n, "%s: reply of %u bytes is too large", path, blen);
        goto out;
    }
    char *body = malloc(blen ? blen : 1);
    rc = body ? io_all(fd, body, blen, false, deadline) : -ENOMEM;
    if (rc)
        snprintf(err, n, "%s: reading the reply: %s", path, strerror(-rc));
    else
        rc = rota_ctl_decode(body, blen, reply, err, n);
    free(body);
out:
    free(frame);
    close(fd);
    return rc;
}
