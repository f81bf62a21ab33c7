/*
 * stress_journal_kill: rotad killed with SIGKILL at random moments while selectors load
 * its table and its journal writes and snapshots (fsync always, a 64 KiB bound, so a
 * snapshot every few hundred ms). After each kill:
 *   - the journal file holds no damage: at most a torn tail (a write cut short), never a
 *     bad frame followed by good ones, whether the kill hit an append or a snapshot;
 *   - with the table removed, a new rotad restores exactly what the file's latest record
 *     of each account says: its selections, calls done, and each window's use, as a
 *     checksum over all accounts.
 * Rounds: 6 times ROTA_STRESS_SCALE.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "jfile.h"
#include "jident.h"
#include "rotad_harness.h"
#include "table.h"

#define NACC 16

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The file's latest state per account id (ids of the table, looked up by the caller). */
struct latest {
    uint64_t id[64];
    struct rota_jaccount acc[64];
    int n;
};

static int keep(void *arg, const struct rota_jrec *r)
{
    struct latest *l = arg;
    if (r->type != ROTA_JREC_ACCOUNT)
        return 0;
    int i = 0;
    while (i < l->n && l->id[i] != r->u.acc.id)
        i++;
    if (i == l->n) {
        if (l->n == 64)
            return 0;
        l->id[l->n++] = r->u.acc.id;
    }
    l->acc[i] = r->u.acc;
    return 0;
}

/* Does rotad say its state came from "what"? */
static bool origin_is(struct it *t, const char *what)
{
    json_t *r = it_ctl(t, "status", NULL, NULL);
    const char *o =
        json_string_value(json_object_get(json_object_get(r, "data"), "state_origin"));
    bool yes = o && strncmp(o, what, strlen(what)) == 0;
    if (!yes)
        print_message("state_origin: %s (expected %s...)\n", o ? o : "(none)", what);
    json_decref(r);
    return yes;
}

/* Sum over the table of selections, done and window use, and the same over "l"; both
 * must match account by account. */
static void check_restored(struct it *t, const struct latest *l)
{
    struct rota_shm_map m;
    char err[256];
    assert_int_equal(rota_shm_attach(t->instance, &m, err, sizeof(err)), 0);
    uint32_t matched = 0;
    for (int i = 0; i < l->n; i++) {
        uint32_t a = rota_shm_find(&m, ROTA_IDX_ACCOUNT, l->id[i]);
        if (a == ROTA_NONE)
            continue;
        const struct rota_jaccount *s = &l->acc[i];
        struct rota_shm_hot *h = &m.hot[a];
        assert_int_equal(rota_load(&h->use0[0]), s->requests);
        assert_int_equal(rota_load(&h->done), s->requests); /* nothing left in flight */
        for (uint32_t w = 0; w < s->nwin && w < m.accounts[a].nwin; w++) {
            uint64_t used = rota_load(&m.snaps[a].win[w].used);
            uint64_t base = rota_load(&m.snaps[a].win[w].base);
            uint64_t counter = rota_load(&h->use0[0]);
            assert_int_equal(used + (counter - base), s->win[w].used);
        }
        matched++;
    }
    rota_shm_detach(&m);
    assert_true(matched >= NACC); /* every alpha account had a record */
}

static void test_kill_during_journal(void **state)
{
    (void)state;
    const char *sc = getenv("ROTA_STRESS_SCALE");
    int rounds = 6 * (sc && atoi(sc) > 0 ? atoi(sc) : 1);
    struct it t;
    it_init(&t, "jkill");
    it_config(&t, NACC, 1000000000,
              "journal:\n  file: {fsync: always, max_bytes: 64KiB, snapshot_every: 1h}\n");
    char path[256];
    snprintf(path, sizeof(path), "%s/state/journal", t.dir);
    srand((unsigned)getpid());
    uint64_t torn = 0;
    for (int r = 0; r < rounds; r++) {
        assert_int_equal(it_start(&t), 0);
        assert_true(origin_is(&t, r == 0 ? "cold start" : "restored from the journal file"));
        struct it_load load;
        it_load_start(&load, t.instance, 2);
        sleep_ms(150 + rand() % 600);
        assert_int_equal(it_stop(&t, SIGKILL), SIGKILL + 128);
        it_load_stop(&load);

        struct latest l = {.n = 0};
        struct rota_jfile_scan scan;
        char err[512];
        struct rota_jkey key;
        char ident[300];
        snprintf(ident, sizeof(ident), "%s/state/identity", t.dir);
        if (rota_jident_read(ident, &key, err, sizeof(err)) != 0)
            fail_msg("round %d: %s", r, err);
        assert_int_equal(rota_jfile_read(path, &key, keep, &l, &scan, err, sizeof(err)), 0);
        if (scan.corrupt)
            fail_msg("round %d: damage in the middle of the journal: %s", r,
                     scan.first_problem);
        torn += scan.torn_bytes;

        /* A reboot: no table. The next rotad must restore exactly the file's state. */
        it_drop_table(&t);
        assert_int_equal(it_start(&t), 0);
        assert_true(origin_is(&t, "restored from the journal file"));
        check_restored(&t, &l);
        assert_int_equal(it_stop(&t, SIGKILL), SIGKILL + 128);
        it_drop_table(&t);
    }
    print_message("%d kills; %llu bytes of torn tail cut in all\n", rounds,
                  (unsigned long long)torn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill_during_journal, it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
