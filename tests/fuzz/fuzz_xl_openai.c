/* fuzz_xl_openai: arbitrary bytes as a client's chat completions request, a provider's
 * chat completion and its stream (workers/xl_openai*.c), each accepted one written by
 * every translation module built here (fuzz_xl.h says what must hold). */
#include "fuzz_xl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_xl(&rota_xl_openai, ROTA_XL_OPENAI, data, size);
}
