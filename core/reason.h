/*
 * reason.h - why an account is out of rotation, and why it is pessimistic: the codes a
 * snapshot stores (private to rota; views, journal records and the probes use them).
 *
 * DESIGN
 * Values are stable: they are written into the table and into journal records, so a
 * code keeps its number for ever and new ones are appended.
 */
#ifndef ROTA_CORE_REASON_H
#define ROTA_CORE_REASON_H

/* Why an account is out of rotation (enum, stable: rotactl and journal records use it). */
enum rota_off {
    ROTA_OFF_NONE = 0,
    ROTA_OFF_AUTH = 1,     /* a worker saw 401/403: key refused */
    ROTA_OFF_BILLING = 2,  /* a worker saw 402 or a billing error */
    ROTA_OFF_OPERATOR = 3, /* rotactl disable */
    ROTA_OFF_DRAIN = 4,    /* rotactl drain: no new calls, in-flight ones finish */
    /* rotad: the credential's variable is unset or its file unreadable. Derived from the
     * config at every publish, never a decision: it ends when the credential resolves
     * at a reload, and rotactl enable cannot end it. */
    ROTA_OFF_CREDENTIAL = 5,
    ROTA_OFF_COUNT /* not a code: one past the last */
};
const char *rota_off_name(unsigned off);

/* Why an account is pessimistic (the snapshot's reason when ROTA_SNAP_PESSIMISTIC). */
enum rota_pess {
    ROTA_PESS_NONE = 0,
    ROTA_PESS_PROBE_FAILED = 1, /* the last probe failed (rotad logs why) */
    ROTA_PESS_PROBE_STALE = 2,  /* no good probe answer for two intervals */
};
const char *rota_pess_name(unsigned why);

#endif
