/* fuzz_parse: every provider parser on arbitrary answers. The first byte picks the parser
 * and the status; the rest is headers, a NUL byte, then the body. A parser must never
 * crash, read past its input, or leave its observation inconsistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {200, 429, 403, 402, 401, 500, 503, 529, 404, 0};
    if (size < 1)
        return 0;
    size_t nparsers = 0;
    while (rota_parsers[nparsers])
        nparsers++;
    const struct rota_parser *p = rota_parsers[data[0] % nparsers];
    int status = statuses[(data[0] / nparsers) % (sizeof(statuses) / sizeof(statuses[0]))];
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    const char *nul = memchr(rest, 0, len);
    size_t hlen = nul ? (size_t)(nul - rest) : len;
    /* Copies of exactly the right size, so reading past either is caught. */
    char *headers = malloc(hlen ? hlen : 1);
    size_t blen = nul ? len - hlen - 1 : 0;
    char *body = malloc(blen ? blen : 1);
    memcpy(headers, rest, hlen);
    if (blen)
        memcpy(body, nul + 1, blen);
    struct rota_http_in in = {status, headers, hlen, body, blen, 1764000000000000000ll};
    struct rota_parse_opts o = {"/data/used", "/data/limit", "/data/remaining", "/data/reset",
                                ROTA_METRIC_REQUESTS};
    struct rota_obs obs;
    int rc = p->parse(&in, &o, &obs);
    if (rc < -4095 || rc > 1 || obs.nwin > ROTA_OBS_WINDOWS ||
        memchr(obs.detail, 0, sizeof(obs.detail)) == NULL ||
        memchr(obs.problem, 0, sizeof(obs.problem)) == NULL || (rc == -22 && !obs.problems))
        abort();
    for (uint32_t i = 0; i < obs.nwin; i++)
        if (!memchr(obs.win[i].pool, 0, sizeof(obs.win[i].pool)) || obs.win[i].metric > 3)
            abort();
    free(headers);
    free(body);
    return 0;
}
