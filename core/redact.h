/*
 * redact.h - every credential of an instance taken out of a text before it is logged or
 * kept (private to rota).
 *
 * DESIGN
 * A set is built once per config generation (rotad's start and each reload) from every
 * resolved credential of every account, and is then immutable: any thread may redact
 * with it. It is shared by reference count between rotad's main thread and the probe
 * thread, so a reload can hand the thread a new set while it still works with the old.
 * The rule and the index are described in redact.c.
 */
#ifndef ROTA_CORE_REDACT_H
#define ROTA_CORE_REDACT_H

#include <stddef.h>
#include <stdint.h>

#define ROTA_REDACT_MIN 8 /* a run of this many bytes of a credential is redacted */

struct rota_redact;

/* Build a set from "n" credentials ("secrets"; NULL and "" entries are skipped), and the
 * own credentials of "prev" (the last generation's set; NULL for none). The set keeps
 * what it needs of them in memory of its own (wiped when freed), never the caller's
 * pointers. 0 and *out with one reference, or -ENOMEM. */
int rota_redact_new(const char *const *secrets, uint32_t n, const struct rota_redact *prev,
                    struct rota_redact **out);

/* Take a reference to "r" (NULL is fine); returns "r". */
struct rota_redact *rota_redact_ref(struct rota_redact *r);

/* Drop a reference; the last one wipes and frees the set. NULL is fine. */
void rota_redact_unref(struct rota_redact *r);

/* Replace in "text" (a string in a buffer of "cap" bytes) every run of ROTA_REDACT_MIN
 * bytes or more that appears anywhere in a credential of "r", and every whole credential
 * shorter than that, with "[redacted]"; what follows moves and is cut at "cap". A NULL
 * set changes nothing. */
void rota_redact_text(const struct rota_redact *r, char *text, size_t cap);

#endif
