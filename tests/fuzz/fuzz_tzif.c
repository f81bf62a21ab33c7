/* fuzz_tzif: time zone files are input too: any bytes load or are refused, and a loaded
 * zone answers conversions without going out of bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rota_tz *tz;
    if (rota_tz_parse(data, size, "fuzz", &tz) != 0)
        return 0;
    static const int64_t probes[] = {-2000000000, 0, 1795000000, 4102444800, INT64_MAX / 4};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        struct rota_civil c;
        rota_tz_to_civil(tz, probes[i], &c);
        (void)rota_tz_from_civil(tz, &c);
        (void)rota_tz_offset(tz, probes[i]);
    }
    rota_tz_free(tz);
    return 0;
}
