/* fuzz_xl_responses: arbitrary bytes as a client's Responses API request, a provider's
 * response and its stream of named events (workers/xl_responses*.c), each accepted one
 * written by every translation module built here (fuzz_xl.h says what must hold). */
#include "fuzz_xl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_xl(&rota_xl_responses, ROTA_XL_RESPONSES, data, size);
}
