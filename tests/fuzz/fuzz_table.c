/* fuzz_table: a shared-memory segment is input: any bytes are refused or validated, and a
 * validated table keeps every stored index in range (the select path trusts it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Validation reads the segment in place: give it an aligned private copy. */
    void *p = aligned_alloc(4096, (size + 4095) / 4096 * 4096 + 4096);
    if (!p)
        return 0;
    memcpy(p, data, size);
    struct rota_shm_map m;
    if (rota_shm_validate(p, size, &m, NULL, 0) == 0) {
        for (uint32_t i = 0; i < m.nmembers; i++)
            if (m.members[i].account >= m.naccounts)
                abort();
        for (uint32_t i = 0; i < m.ntiers; i++)
            if (m.tiers[i].member0 + (uint64_t)m.tiers[i].nmembers > m.nmembers)
                abort();
        for (uint32_t i = 0; i < m.naccounts; i++)
            (void)strlen(rota_shm_str(&m, m.accounts[i].name));
    }
    free(p);
    return 0;
}
