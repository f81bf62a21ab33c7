/*
 * sys_redis_missing.c - the Redis peer when rota was built without hiredis: it says so.
 */
#include <errno.h>
#include <stdio.h>

#include "bench.h"

static int setup(const struct bench_cfg *c, void **state, char *err, size_t n)
{
    (void)c, (void)state;
    snprintf(err, n, "built without hiredis (install libhiredis-dev and rebuild)");
    return -ENOTSUP;
}

const struct bench_sys bench_redis = {.name = "redis", .setup = setup};
