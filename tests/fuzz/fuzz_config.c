/* fuzz_config: any bytes as a config file: rota_config_parse loads them (and prints the
 * result) or refuses them with one line "fuzz.yaml:LINE:COL: ...; expected ...". A
 * document the schema walk passes must also load with libcyaml: a refusal from libcyaml
 * means the walk and libcyaml disagree, which is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    char err[1024];
    struct rota_config *c = NULL;
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        abort();
    int rc = rota_config_parse("fuzz.yaml", (const char *)data, size, NULL, NULL, &c, err,
                               sizeof(err));
    if (rc == 0) {
        if (!c)
            abort();
        rota_config_print(c, devnull);
        rota_config_free(c);
        return 0;
    }
    /* "fuzz.yaml:LINE:COL: " and then our words, never libcyaml's refusal */
    unsigned line, col;
    int at = 0;
    if (c || sscanf(err, "fuzz.yaml:%u:%u: %n", &line, &col, &at) != 2 || !at || !line ||
        !col || !strstr(err, "; expected") || strchr(err, '\n') ||
        strncmp(err + at, "libcyaml", 8) == 0)
        abort();
    return 0;
}
