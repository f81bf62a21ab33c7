/*
 * reason.c - names of the out-of-rotation and pessimism codes (see reason.h).
 *
 * DESIGN
 * Pure functions over constant tables; any thread.
 */
#include "reason.h"

const char *rota_off_name(unsigned off)
{
    static const char *const names[ROTA_OFF_COUNT] = {"",         "auth",  "billing",
                                                      "operator", "drain", "credential"};
    return off < sizeof(names) / sizeof(names[0]) ? names[off] : "?";
}

const char *rota_pess_name(unsigned why)
{
    static const char *const names[] = {"", "probe failed", "probe stale"};
    return why < sizeof(names) / sizeof(names[0]) ? names[why] : "?";
}
