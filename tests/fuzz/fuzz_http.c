/* fuzz_http: bytes from anyone who can connect, through the parser as the front drives
 * it: fed in pieces whose sizes the input's first byte chooses, requests taken one after
 * another (pipelining), the body fed on after the head. Every request either completes
 * with a consistent result or is refused with a status and a reason; nothing crashes,
 * leaks, or reads past what it was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct rota_http_limits lim = {
    .max_head = 2048, .max_headers = 16, .max_body = 4096};

static void check_done(const struct rota_http *h)
{
    if (!h->method || !h->path || !h->query || !h->body || h->body[h->body_len] != '\0')
        abort();
    if (h->content_length != UINT64_MAX && h->content_length != h->body_len)
        abort(); /* a declared length is the length delivered */
    if (h->body_len > lim.max_body || h->nheaders > lim.max_headers)
        abort();
    for (uint32_t i = 0; i < h->nheaders; i++)
        if (rota_http_get(h->headers, h->nheaders, h->headers[i].name) == NULL)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (data[0] % 64) + 1; /* the pieces the bytes arrive in */
    const char *in = (const char *)data + 1;
    size_t len = size - 1, used = 0;
    struct rota_http *h = calloc(1, rota_http_size(&lim));
    if (!h)
        return 0;
    rota_http_begin(h, &lim);
    while (used < len) {
        size_t n = len - used < step ? len - used : step;
        size_t k = rota_http_feed(h, in + used, n);
        if (k > n)
            abort();
        used += k;
        if (h->state == ROTA_HTTP_ERROR) {
            if (h->status < 400 || h->status > 599 || !h->why)
                abort();
            break; /* the front answers and closes */
        }
        if (h->state == ROTA_HTTP_DONE) {
            check_done(h);
            rota_http_begin(h, &lim); /* the next pipelined request */
        } else if (h->state == ROTA_HTTP_MORE && k != n) {
            abort(); /* it stops short only to hand something over */
        }
    }
    rota_http_end(h);
    free(h);
    return 0;
}
