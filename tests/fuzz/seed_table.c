/* seed_table: write valid table images for fuzz_table's corpus: the fallback chain, a
 * small pool and a large one, as the writer lays them out. Usage: seed_table DIR */
#include <stdio.h>

#include "fixture.h"

static int dump(struct fx *f, const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    if (!out)
        return 1;
    size_t size = f->m->size, n = fwrite(f->m->base, 1, size, out);
    fclose(out);
    fx_close(f);
    return n == size ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seed_table DIR\n");
        return 2;
    }
    struct fx f = {0};
    if (fx_chain(&f, "seed", ROTA_STRAT_HYBRID, 100) || dump(&f, argv[1], "chain"))
        return 1;
    if (fx_pool(&f, "seed", 5, ROTA_STRAT_STICKY, NULL) || dump(&f, argv[1], "pool"))
        return 1;
    /* A tier large enough to be sampled rather than scanned. */
    if (fx_pool(&f, "seed", 100, ROTA_STRAT_HYBRID, NULL) || dump(&f, argv[1], "large"))
        return 1;
    if (fx_pool(&f, "seed", 100, ROTA_STRAT_STICKY, NULL) || dump(&f, argv[1], "buckets"))
        return 1;
    return 0;
}
