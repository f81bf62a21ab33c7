/* fuzz_control: control frames from anyone who can reach the socket. Every body either
 * decodes to a value that re-encodes and decodes to the same value, or is refused with
 * a message; a decoded request is checked as rotad checks it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > ROTA_CTL_MAX_REQUEST)
        return 0;
    json_t *v = NULL;
    char err[256];
    if (rota_ctl_decode(data, size, &v, err, sizeof(err)) != 0) {
        if (!err[0] || strlen(err) >= sizeof(err))
            abort(); /* a refusal always says why */
        return 0;
    }
    const char *cmd;
    const json_t *args;
    (void)rota_ctl_request(v, &cmd, &args, err, sizeof(err));
    char *frame = NULL;
    size_t len = 0;
    if (rota_ctl_encode(v, &frame, &len) == 0) {
        json_t *back = NULL;
        if (len < 4 || rota_ctl_frame_len((unsigned char *)frame) != len - 4 ||
            rota_ctl_decode(frame + 4, len - 4, &back, err, sizeof(err)) != 0 ||
            !json_equal(v, back))
            abort();
        json_decref(back);
        free(frame);
    }
    json_decref(v);
    return 0;
}
