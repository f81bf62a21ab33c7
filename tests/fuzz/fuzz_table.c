/* fuzz_table: a shared-memory segment is input: any bytes are refused or validated, and a
 * validated table keeps every stored index in range: selections and reports on it (the
 * paths that trust a validated table) stay in bounds, whatever the hot state holds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "select.h"
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
        for (uint32_t i = 0; i < m.naccounts; i++) {
            double f;
            (void)strlen(rota_shm_str(&m, m.accounts[i].name));
            (void)rota_account_fraction(&m, i, 0, &f, NULL);
        }
        struct rota_rng rng = {size};
        for (uint32_t r = 0; r < m.nroutes && r < 4; r++) {
            for (int k = 0; k < 3; k++) {
                struct rota_sel_req q = {.route = r,
                                         .key_hash = k == 1 ? 0x1234567 : 0,
                                         .est_tokens = (uint64_t)k * 1000,
                                         .now = 1000000000ull * (uint64_t)(k + 1)};
                struct rota_sel_res res;
                if (rota_select_route(&m, &q, &rng, &res) == 0) {
                    struct rota_outcome_in o = {.status = k == 2 ? 503 : 200,
                                                .pool = res.pool,
                                                .trial = res.trial,
                                                .tokens = 7,
                                                .est_tokens = q.est_tokens};
                    rota_report_apply(&m, res.account, &o, q.now, 99);
                }
            }
        }
    }
    free(p);
    return 0;
}
