/* fuzz_schedule: reset schedules and durations as a config would give them: any bytes
 * parse or are refused with a message, and a parsed schedule always yields a next reset
 * after "now". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[256], err[256];
    if (size >= sizeof(text))
        size = sizeof(text) - 1;
    memcpy(text, data, size);
    text[size] = 0;
    struct rota_shm_reset r;
    if (rota_quota_parse_reset(text, &r, err, sizeof(err)) == 0) {
        int64_t now = 1795000000; /* late 2026 */
        int64_t next = rota_quota_next_reset(&r, NULL, now);
        if (next <= now)
            abort();
    } else if (!strstr(err, "expected")) {
        abort();
    }
    uint64_t ns;
    (void)rota_parse_duration(text, &ns);
    return 0;
}
