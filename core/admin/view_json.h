/*
 * view_json.h - operator views as JSON values (private to rota): what rotad's control
 * socket answers and what `rotactl --json` prints, in one shape. Times are milliseconds
 * ("_ms"), wall-clock instants ISO-8601 UTC strings. No credential is ever included.
 */
#ifndef ROTA_CORE_VIEW_JSON_H
#define ROTA_CORE_VIEW_JSON_H

#include <jansson.h>

#include "view.h"

json_t *rota_view_account_json(const struct rota_view_account *v);
json_t *rota_view_instance_json(const struct rota_view_instance *v);

/* "2026-11-28T17:33:54Z" for wall-clock ns "t" (0 = ""). */
void rota_iso_time(int64_t t, char *buf, size_t n);

/* A JSON string of the NUL-terminated "s": as it is when it is UTF-8, else with each byte
 * that is not part of a valid character written as the text \\xNN. NULL without memory. */
json_t *rota_json_text(const char *s);

#endif
