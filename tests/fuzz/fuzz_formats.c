/* fuzz_formats: a client's body through the pool's bounded JSON scan and splice
 * (workers/formats*.c): whatever the bytes, the scan stays inside them, and a body it
 * accepts, once the model (and OpenAI's include_usage) is spliced in, scans again with
 * the new model read back and the usage asked for; usage and SSE framing read any bytes
 * without reading past them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(struct rota_fmt_span s, size_t len)
{
    if (s.len && (s.off > len || s.len > len - s.off))
        abort();
}

static void splice_and_rescan(enum rota_fmt f, const char *in, size_t len,
                              const struct rota_fmt_req *r, bool ask)
{
    static const char model[] = "up\"stream\\model\x01\xc3\xa9";
    size_t n;
    char *out = rota_fmt_splice(f, in, len, r, model, ask, &n);
    if (!out)
        return;
    struct rota_fmt_req again;
    if (rota_fmt_scan_request(out, n, &again) != 0)
        abort(); /* the pool made a body it cannot read itself */
    char back[64];
    if (f != ROTA_FMT_GEMINI &&
        (rota_fmt_string(out, again.model, back, sizeof(back)) < 0 || strcmp(back, model) != 0))
        abort();
    if (ask && !again.usage_asked)
        abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1); /* exactly the bytes: a read past them is caught */
    if (!in)
        return 0;
    memcpy(in, data, size);
    struct rota_fmt_req r;
    if (rota_fmt_scan_request(in, size, &r) == 0) {
        check_span(r.model, size);
        check_span(r.stream_options, size);
        check_span(r.include_usage, size);
        check_span(r.sticky, size);
        splice_and_rescan(ROTA_FMT_OPENAI, in, size, &r, true);
        splice_and_rescan(ROTA_FMT_ANTHROPIC, in, size, &r, false);
        splice_and_rescan(ROTA_FMT_GEMINI, in, size, &r, false);
    }
    struct rota_fmt_usage u = {0};
    rota_fmt_usage(in, size, &u);
    rota_fmt_usage_chunk(in, size);
    for (size_t at = 0, ev; at < size && (ev = rota_fmt_sse_event(in + at, size - at));
         at += ev) {
        const char *d;
        size_t dl;
        if (ev > size - at)
            abort();
        if (rota_fmt_sse_data(in + at, ev, &d, &dl) && (d < in + at || d + dl > in + at + ev))
            abort();
    }
    free(in);
    return 0;
}
