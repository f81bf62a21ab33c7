/* test_hot_path_pure: rota_select, rota_target_of and rota_report keep rota.h's promise (no
 * lock, no allocation, no system call) on a thread that calls them while the table is
 * reloaded.
 *
 * DESIGN
 * The armed thread installs a seccomp filter on itself alone (no TSYNC) whose default
 * action is SECCOMP_RET_TRAP for every system call but rt_sigreturn (to come back from
 * the trap) and exit (to end the thread when the loop is over). The SIGSYS handler
 * records the call's number and makes it fail with ENOSYS, so the thread carries on and
 * every distinct violation is collected, not just the first. The test executable also
 * interposes malloc and its family and the pthread mutex and rwlock lock calls: they
 * forward to glibc, but record a violation when the calling thread is armed. librota's
 * own calls reach them whether it is linked in statically or dlopen()ed, since the
 * executable's definitions come first in the global symbol scope.
 *
 * Warm-up: the main thread attaches and makes one select and one report with headers
 * and an error body before the armed thread starts. That maps the first generation and
 * runs the process's one-time set-up (lazy binding, the parser's first use). The armed
 * thread gets no warm-up of its own: a binding's thread pool calls select first thing,
 * and that first call is held to the promise like every other.
 *
 * While the armed thread loops select + target_of + report (reports without headers, with
 * rate-limit headers, and a 429 with headers and an OpenAI error body), the main thread
 * publishes RELOADS new generations through the writer API, alternately the same
 * description and one with other weights. The armed thread must keep selecting (0 or
 * ROTA_EEXHAUSTED) and end up on the last generation. The main thread then prints every
 * violation, with the call it happened in, and fails.
 *
 * Sanitizer builds skip the check: their runtimes replace malloc and make system calls
 * of their own. The plain builds are where it runs.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <cmocka.h>

#include "clock.h"
#include "fixture.h"
#include "rota.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                     \
    __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#if defined(__x86_64__)
#define FILTER_ARCH       AUDIT_ARCH_X86_64
#define SET_RESULT(uc, v) ((uc)->uc_mcontext.gregs[REG_RAX] = (v))
#elif defined(__aarch64__)
#define FILTER_ARCH       AUDIT_ARCH_AARCH64
#define SET_RESULT(uc, v) ((uc)->uc_mcontext.regs[0] = (uint64_t)(v))
#endif

#define RELOADS     6    /* generations published while the armed thread runs */
#define CALLS_APART 2000 /* armed calls between two reloads, and after the last */
#define DEADLINE_NS (10 * ROTA_NS_PER_S)
#define MAX_RECORDS 32

/* ---- what the armed thread did that it should not have ---- */

enum kind { V_SYSCALL, V_ALLOC, V_LOCK };

struct violation {
    enum kind kind;
    long nr;           /* V_SYSCALL: the system call's number */
    const char *fn;    /* V_ALLOC, V_LOCK: the function called */
    size_t size;       /* V_ALLOC: bytes asked for */
    const char *phase; /* which call of the armed thread */
    void *caller;      /* return address into the caller, or the syscall's address */
    uint64_t call;     /* the armed thread's call number */
    unsigned reloads;  /* generations published by then */
};

static struct violation records[MAX_RECORDS];
static _Atomic unsigned nrecords;
static _Atomic uint64_t nviolations;
static _Atomic unsigned reloads_published; /* stored as each publish begins */

/* The armed thread's state, read by the interposers and the SIGSYS handler. Static TLS
 * of the executable: reading it allocates nothing, even in a signal handler. */
static _Thread_local int tl_armed;
static _Thread_local const char *tl_phase;
static _Thread_local uint64_t tl_call;

/* Record one violation, once per (kind, what, phase). Only the armed thread writes. */
static void note(enum kind k, long nr, const char *fn, size_t size, void *caller)
{
    const char *phase = tl_phase ? tl_phase : "the test's loop, between calls";
    atomic_fetch_add_explicit(&nviolations, 1, memory_order_relaxed);
    unsigned n = atomic_load_explicit(&nrecords, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
        if (records[i].kind == k && records[i].nr == nr && records[i].fn == fn &&
            records[i].phase == phase)
            return;
    if (n == MAX_RECORDS)
        return;
    records[n] = (struct violation){
        .kind = k,
        .nr = nr,
        .fn = fn,
        .size = size,
        .phase = phase,
        .caller = caller,
        .call = tl_call,
        .reloads = atomic_load_explicit(&reloads_published, memory_order_relaxed),
    };
    atomic_store_explicit(&nrecords, n + 1, memory_order_release);
}

static void reset_records(void)
{
    atomic_store(&nrecords, 0);
    atomic_store(&nviolations, 0);
    atomic_store(&reloads_published, 0);
}

/* ---- the allocation and lock traps (plain builds only) ---- */

#if !SANITIZED
#define EXPORT __attribute__((visibility("default")))
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

#define ALLOC_TRAP(fn, size)                                                                   \
    do {                                                                                       \
        if (tl_armed)                                                                          \
            note(V_ALLOC, 0, fn, size, __builtin_return_address(0));                           \
    } while (0)

EXPORT void *malloc(size_t n)
{
    ALLOC_TRAP("malloc", n);
    return __libc_malloc(n);
}

EXPORT void *calloc(size_t k, size_t n)
{
    ALLOC_TRAP("calloc", k * n);
    return __libc_calloc(k, n);
}

EXPORT void *realloc(void *p, size_t n)
{
    ALLOC_TRAP("realloc", n);
    return __libc_realloc(p, n);
}

EXPORT void free(void *p)
{
    if (p)
        ALLOC_TRAP("free", 0);
    __libc_free(p);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    ALLOC_TRAP("aligned_alloc", n);
    return __libc_memalign(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
    ALLOC_TRAP("memalign", n);
    return __libc_memalign(align, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    ALLOC_TRAP("posix_memalign", n);
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* The lock functions forward to the next definition (glibc's), found once. */
typedef int (*mutex_fn)(pthread_mutex_t *);
typedef int (*rwlock_fn)(pthread_rwlock_t *);
static mutex_fn real_mutex_lock, real_mutex_trylock;
static rwlock_fn real_rdlock, real_wrlock;

static void resolve_locks(void)
{
    real_mutex_lock = (mutex_fn)dlsym(RTLD_NEXT, "pthread_mutex_lock");
    real_mutex_trylock = (mutex_fn)dlsym(RTLD_NEXT, "pthread_mutex_trylock");
    real_rdlock = (rwlock_fn)dlsym(RTLD_NEXT, "pthread_rwlock_rdlock");
    real_wrlock = (rwlock_fn)dlsym(RTLD_NEXT, "pthread_rwlock_wrlock");
}

__attribute__((constructor)) static void resolve_at_start(void)
{
    resolve_locks();
}

#define LOCK_TRAP(fn, real, arg)                                                               \
    do {                                                                                       \
        if (tl_armed)                                                                          \
            note(V_LOCK, 0, fn, 0, __builtin_return_address(0));                               \
        if (!real)                                                                             \
            resolve_locks();                                                                   \
        return real(arg);                                                                      \
    } while (0)

EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    LOCK_TRAP("pthread_mutex_lock", real_mutex_lock, m);
}

EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
    LOCK_TRAP("pthread_mutex_trylock", real_mutex_trylock, m);
}

EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
    LOCK_TRAP("pthread_rwlock_rdlock", real_rdlock, l);
}

EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
    LOCK_TRAP("pthread_rwlock_wrlock", real_wrlock, l);
}
#endif

/* ---- the system call trap ---- */

static const char *syscall_name(long nr)
{
    static const struct {
        long nr;
        const char *name;
    } names[] = {
#define N(x) {SYS_##x, #x}
        N(read),      N(write),       N(close),           N(fstat),
        N(mmap),      N(mprotect),    N(munmap),          N(brk),
        N(madvise),   N(mremap),      N(openat),          N(newfstatat),
        N(ftruncate), N(fcntl),       N(flock),           N(futex),
        N(getpid),    N(gettid),      N(getrandom),       N(clock_gettime),
        N(nanosleep), N(sched_yield), N(rt_sigprocmask),  N(tgkill),
        N(statx),     N(lseek),       N(writev),          N(exit_group),
        N(pread64),   N(getdents64),  N(clock_nanosleep), N(membarrier),
#ifdef SYS_open
        N(open),      N(stat),
#endif
#undef N
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].nr == nr)
            return names[i].name;
    return "?";
}

/* SIGSYS from the filter: record, and fail the call with ENOSYS. No system call here. */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    note(V_SYSCALL, si->si_syscall, NULL, 0, si->si_call_addr);
#ifdef SET_RESULT
    SET_RESULT((ucontext_t *)ctx, -ENOSYS);
#endif
}

/* Trap every system call of the calling thread but rt_sigreturn and exit, and, when
 * "allow_clock", clock_gettime (a host whose clock source the vDSO cannot read). */
static int arm_filter(bool allow_clock)
{
#ifdef FILTER_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigreturn, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, allow_clock ? SYS_clock_gettime : SYS_exit, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
        return -errno;
    return 0;
#else
    (void)allow_clock;
    return -ENOSYS;
#endif
}

/* End the calling (filtered) thread: exit is one of the two calls it may make.
 * pthread_join still works: the kernel clears the thread's id when it goes. */
static void end_armed_thread(void)
{
    tl_armed = 0;
    tl_phase = NULL;
    syscall(SYS_exit, 0);
    __builtin_unreachable();
}

struct probe {
    _Atomic int rc;
};

static void *clock_probe_main(void *arg)
{
    struct probe *p = arg;
    int rc = arm_filter(false);
    if (rc == 0) {
        tl_phase = "clock probe";
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        clock_gettime(CLOCK_REALTIME, &ts);
    }
    atomic_store_explicit(&p->rc, rc, memory_order_release);
    if (rc == 0)
        end_armed_thread();
    return NULL;
}

/* Can the filter be installed, and do the clocks need the kernel on this host? Returns
 * 0 (and sets "*clock_syscalls"), or the negative errno seccomp gave. */
static int probe_host(bool *clock_syscalls)
{
    struct probe p = {0};
    pthread_t t;
    reset_records();
    assert_int_equal(pthread_create(&t, NULL, clock_probe_main, &p), 0);
    pthread_join(t, NULL);
    *clock_syscalls = atomic_load(&nrecords) > 0;
    reset_records();
    return atomic_load(&p.rc);
}

/* ---- the armed thread ---- */

/* librota's entry points: linked in, or found with dlsym in a dlopen()ed librota.so. */
struct api {
    int (*attach)(const char *, rota_t **, char *, size_t);
    int (*route)(rota_t *, const char *, rota_route_t *);
    int (*select)(rota_t *, const rota_route_t *, const char *, size_t, uint64_t,
                  rota_choice *);
    int (*report)(rota_t *, const rota_choice *, const rota_outcome *);
    void (*detach)(rota_t *);
    const char *(*strerror)(int);
    int (*target_of)(rota_t *, const rota_choice *, const char *, size_t, rota_target *);
};

struct run {
    const struct api *api;
    rota_t *h;
    rota_route_t rt;
    bool allow_clock;
    _Atomic int armed;          /* 1 armed, < 0 the filter was refused, 0 not yet */
    _Atomic uint64_t calls;     /* selections made */
    _Atomic uint64_t final_gen; /* set by the main thread after its last reload */
    _Atomic uint64_t on_final;  /* selections made on final_gen */
    _Atomic int stop;
    _Atomic int done;
    uint64_t ok, exhausted, errors, report_errors, target_errors, last_gen;
    int first_error, first_report_error, first_target_error;
};

static const char headers_ok[] = "HTTP/1.1 200 OK\r\n"
                                 "x-ratelimit-limit-requests: 1000000\r\n"
                                 "x-ratelimit-remaining-requests: 999000\r\n"
                                 "x-ratelimit-reset-requests: 1s\r\n"
                                 "x-ratelimit-limit-tokens: 4000000\r\n"
                                 "x-ratelimit-remaining-tokens: 3990000\r\n"
                                 "x-ratelimit-reset-tokens: 20ms\r\n"
                                 "content-type: application/json\r\n";
static const char headers_429[] = "HTTP/1.1 429 Too Many Requests\r\n"
                                  "x-ratelimit-limit-requests: 1000000\r\n"
                                  "x-ratelimit-remaining-requests: 998000\r\n"
                                  "x-ratelimit-reset-requests: 1ms\r\n"
                                  "content-type: application/json\r\n";
static const char body_429[] =
    "{\"error\":{\"message\":\"Rate limit reached for requests. Please try again in 1ms.\","
    "\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}";

/* The outcome of call "i": a bare 200, or (every other one) with rate-limit headers, or
 * (one in 256) a 429 with headers and an error body asking for a 1 ms wait. */
static const char *outcome_for(uint64_t i, rota_outcome *o)
{
    *o = (rota_outcome){.status = 200, .tokens = 90};
    if (i % 256 == 1) {
        *o = (rota_outcome){.status = 429,
                            .retry_after_ms = 1,
                            .headers = headers_429,
                            .headers_len = sizeof(headers_429) - 1,
                            .body = body_429,
                            .body_len = sizeof(body_429) - 1};
        return "report (429, headers and body)";
    }
    if (i % 2) {
        o->headers = headers_ok;
        o->headers_len = sizeof(headers_ok) - 1;
        return "report (200, headers)";
    }
    return "report (200, no headers)";
}

static void one_call(struct run *r, uint64_t i)
{
    rota_choice c;
    rota_outcome o;
    bool keyed = i % 8 == 3;
    tl_call = i;
    tl_phase = keyed ? "select (with a key)" : "select";
    int rc = r->api->select(r->h, &r->rt, keyed ? "user-17" : NULL, keyed ? 7 : 0, 100, &c);
    if (rc == 0) {
        rota_target t;
        tl_phase = "target_of";
        int tr = r->api->target_of(r->h, &c, "gpt-4o", 6, &t);
        if (tr && !r->target_errors++)
            r->first_target_error = tr;
        tl_phase = outcome_for(i, &o);
        int rr = r->api->report(r->h, &c, &o);
        tl_phase = NULL;
        r->ok++;
        r->last_gen = c.generation;
        if (rr && !r->report_errors++)
            r->first_report_error = rr;
        uint64_t fin = atomic_load_explicit(&r->final_gen, memory_order_relaxed);
        if (fin && c.generation == fin)
            atomic_fetch_add_explicit(&r->on_final, 1, memory_order_relaxed);
    } else if (rc == ROTA_EEXHAUSTED) {
        tl_phase = NULL;
        r->exhausted++;
    } else {
        tl_phase = NULL;
        if (!r->errors++)
            r->first_error = rc;
    }
}

static void *armed_main(void *arg)
{
    struct run *r = arg;
    /* The thread's malloc arena, made now: an allocation while armed is still caught, but
     * then succeeds without the system calls of a first allocation, so the thread lives
     * on to show what else the path does. */
    void *volatile first = malloc(1);
    free(first);
    int rc = arm_filter(r->allow_clock);
    atomic_store_explicit(&r->armed, rc ? rc : 1, memory_order_release);
    if (rc)
        return NULL;
    tl_armed = 1;
    for (uint64_t i = 0; !atomic_load_explicit(&r->stop, memory_order_acquire); i++) {
        one_call(r, i);
        atomic_store_explicit(&r->calls, i + 1, memory_order_release);
    }
    atomic_store_explicit(&r->done, 1, memory_order_release);
    end_armed_thread();
    return NULL;
}

/* ---- the main thread: table, warm-up, reloads, verdict ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait until the armed thread has made "n" calls; false at "deadline". */
static bool wait_calls(struct run *r, uint64_t n, uint64_t deadline)
{
    while (atomic_load_explicit(&r->calls, memory_order_acquire) < n)
        if (rota_clock_mono() > deadline)
            return false;
        else
            sleep_ms(1);
    return true;
}

/* "addr" as "function (file:line)" through addr2line, when it knows; false otherwise. */
static bool symbolize(const char *file, uintptr_t off, char *buf, size_t n)
{
    char cmd[600], fn[160] = "", line[256] = "";
    if (strchr(file, '\''))
        return false;
    snprintf(cmd, sizeof(cmd), "addr2line -f -s -e '%s' 0x%lx 2>/dev/null", file,
             (unsigned long)off);
    FILE *p = popen(cmd, "r");
    if (!p)
        return false;
    bool ok = fgets(fn, sizeof(fn), p) && fgets(line, sizeof(line), p);
    pclose(p);
    fn[strcspn(fn, "\n")] = 0;
    line[strcspn(line, "\n")] = 0;
    if (!ok || !strcmp(fn, "??"))
        return false;
    snprintf(buf, n, "%s (%s)", fn, line);
    return true;
}

/* One line describing "v", for the failure report. */
static void describe(const struct violation *v, char *buf, size_t n)
{
    char where[480] = "", sym[240];
    Dl_info di;
    if (v->caller && dladdr(v->caller, &di) && di.dli_fname) {
        const char *file = strrchr(di.dli_fname, '/');
        file = file ? file + 1 : di.dli_fname;
        uintptr_t off = (uintptr_t)v->caller - (uintptr_t)di.dli_fbase;
        /* the executable's own functions are hidden from dladdr: ask its symbol table */
        char exe[512];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[len > 0 ? len : 0] = 0;
        const char *path = strstr(file, ".so") ? di.dli_fname : exe;
        if (symbolize(path, off - 1, sym, sizeof(sym)) && !strstr(sym, "(??"))
            snprintf(where, sizeof(where), ", in %s", sym);
        else if (di.dli_sname)
            snprintf(where, sizeof(where), ", in %s+0x%lx (after %s)", file, (unsigned long)off,
                     di.dli_sname);
        else
            snprintf(where, sizeof(where), ", in %s+0x%lx", file, (unsigned long)off);
        if (!strncmp(file, "ld-linux", 8) || !strncmp(file, "ld.so", 5))
            snprintf(where + strlen(where), sizeof(where) - strlen(where),
                     " (the dynamic linker: a dlopen()ed library's thread-local block is "
                     "made on the thread's first use)");
    }
    char when[96];
    if (v->reloads)
        snprintf(when, sizeof(when), "on the armed thread's call %llu, reload %u begun",
                 (unsigned long long)v->call, v->reloads);
    else
        snprintf(when, sizeof(when), "on the armed thread's call %llu, before any reload",
                 (unsigned long long)v->call);
    switch (v->kind) {
    case V_SYSCALL:
        snprintf(buf, n, "%s made system call %ld (%s) %s%s", v->phase, v->nr,
                 syscall_name(v->nr), when, where);
        break;
    case V_ALLOC:
        if (strcmp(v->fn, "free"))
            snprintf(buf, n, "%s allocated: %s(%zu) %s%s", v->phase, v->fn, v->size, when,
                     where);
        else
            snprintf(buf, n, "%s freed memory %s%s", v->phase, when, where);
        break;
    case V_LOCK:
        snprintf(buf, n, "%s took a lock: %s %s%s", v->phase, v->fn, when, where);
        break;
    }
}

/* Build a table, attach through "api", warm up on this thread, then run the armed
 * thread across RELOADS reloads and fail with every violation it recorded. */
static void check_hot_path(const struct api *api, const char *tag)
{
    if (SANITIZED) {
        printf("skipped: the sanitizer's runtime replaces malloc and makes system calls of "
               "its own; the check runs in the plain builds\n");
        skip();
    }
    bool clock_syscalls = false;
    int prc = probe_host(&clock_syscalls);
    if (prc) {
        printf("skipped: this kernel refuses a seccomp filter (%s)\n", strerror(-prc));
        skip();
    }
    if (clock_syscalls)
        printf("note: clock_gettime is a system call on this host (its clock source is not "
               "read through the vDSO); it is allowed\n");
    struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
    struct sigaction old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGSYS, &sa, &old), 0);

    struct fx f = {0};
    static const uint32_t weights[16] = {1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1};
    struct fx_pool_opts same = {.n = 16, .strategy = ROTA_STRAT_HYBRID, .limit = 1000000};
    struct fx_pool_opts changed = same;
    changed.weights = weights;
    assert_int_equal(fx_pool_with(&f, tag, &same), 0);

    struct run r = {.api = api, .allow_clock = clock_syscalls};
    char err[256] = "";
    int rc = api->attach(f.instance, &r.h, err, sizeof(err));
    if (rc)
        fail_msg("attach: %s", err);
    assert_int_equal(api->route(r.h, "pool", &r.rt), 0);
    /* The warm-up: one select and one report with headers and a body, on this thread. */
    rota_choice c;
    rota_outcome o;
    assert_int_equal(api->select(r.h, &r.rt, NULL, 0, 100, &c), 0);
    outcome_for(1, &o);
    assert_int_equal(api->report(r.h, &c, &o), 0);

    reset_records();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, armed_main, &r), 0);
    while (!atomic_load_explicit(&r.armed, memory_order_acquire))
        sleep_ms(1);
    if (atomic_load(&r.armed) < 0) {
        pthread_join(t, NULL);
        fail_msg("seccomp refused on the armed thread: %s", strerror(-atomic_load(&r.armed)));
    }
    uint64_t deadline = rota_clock_mono() + DEADLINE_NS;
    for (unsigned k = 1; k <= RELOADS; k++) {
        wait_calls(&r, k * CALLS_APART, deadline);
        atomic_store(&reloads_published, k);
        if (fx_pool_with(&f, tag, k % 2 ? &same : &changed)) {
            atomic_store_explicit(&r.stop, 1, memory_order_release);
            pthread_join(t, NULL);
            fail_msg("reload %u could not be published", k);
        }
    }
    uint64_t final_gen = f.m->hdr->generation;
    uint64_t mark = atomic_load(&r.calls);
    atomic_store_explicit(&r.final_gen, final_gen, memory_order_relaxed);
    /* Enough calls after the last reload; on the last generation unless the thread has
     * already shown it breaks the promise (then it may never move: its system calls fail). */
    while (rota_clock_mono() < deadline &&
           !(atomic_load(&r.on_final) >= CALLS_APART ||
             (atomic_load(&nviolations) && atomic_load(&r.calls) >= mark + CALLS_APART)))
        sleep_ms(1);
    atomic_store_explicit(&r.stop, 1, memory_order_release);
    pthread_join(t, NULL);
    sigaction(SIGSYS, &old, NULL);

    unsigned n = atomic_load_explicit(&nrecords, memory_order_acquire);
    uint64_t total = atomic_load(&nviolations);
    char line[768], first[768] = "";
    for (unsigned i = 0; i < n; i++) {
        describe(&records[i], line, sizeof(line));
        fprintf(stderr, "hot path violation: %s\n", line);
        if (i == 0)
            snprintf(first, sizeof(first), "%s", line);
    }
    printf("armed thread: %llu calls, %llu selected, %llu exhausted, %llu errors, last on "
           "generation %llu of %llu; %llu violation(s) (%u distinct)\n",
           (unsigned long long)atomic_load(&r.calls), (unsigned long long)r.ok,
           (unsigned long long)r.exhausted, (unsigned long long)r.errors,
           (unsigned long long)r.last_gen, (unsigned long long)final_gen,
           (unsigned long long)total, n);
    api->detach(r.h);
    fx_close(&f);
    if (total)
        fail_msg("rota.h promises no lock, allocation or system call in select, target_of "
                 "and report; "
                 "%llu violation(s) (%u distinct, listed above), the first: %s",
                 (unsigned long long)total, n, first);
    if (r.errors)
        fail_msg("select failed %llu times across the reloads, first with %d (%s)",
                 (unsigned long long)r.errors, r.first_error, api->strerror(r.first_error));
    if (r.target_errors) /* ROTA_ESTALE would mean the choice's generation went early */
        fail_msg("target_of failed %llu times across the reloads, first with %d (%s)",
                 (unsigned long long)r.target_errors, r.first_target_error,
                 api->strerror(r.first_target_error));
    if (r.report_errors)
        fail_msg("report failed %llu times across the reloads, first with %d (%s)",
                 (unsigned long long)r.report_errors, r.first_report_error,
                 api->strerror(r.first_report_error));
    if (atomic_load(&r.on_final) < CALLS_APART)
        fail_msg("the armed thread still selected on generation %llu, %.0f s after generation "
                 "%llu was published",
                 (unsigned long long)r.last_gen, (double)DEADLINE_NS / 1e9,
                 (unsigned long long)final_gen);
}

static const struct api linked = {rota_attach, rota_route,    rota_select,   rota_report,
                                  rota_detach, rota_strerror, rota_target_of};

static void test_hot_path_pure_across_reloads(void **state)
{
    (void)state;
    check_hot_path(&linked, "pure");
}

/* The same through a dlopen()ed librota.so, as a language binding loads it: its
 * thread-local block is dynamic TLS, which glibc sets up on a thread's first use. */
static void test_hot_path_pure_when_dlopened(void **state)
{
    (void)state;
    if (SANITIZED) {
        check_hot_path(&linked, "pured"); /* says why it skips */
        return;
    }
    void *lib = dlopen(ROTA_LIB, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        fail_msg("dlopen %s: %s", ROTA_LIB, dlerror());
    struct api api;
    void *sym[7];
    static const char *const names[7] = {"rota_attach",   "rota_route",  "rota_select",
                                         "rota_report",   "rota_detach", "rota_strerror",
                                         "rota_target_of"};
    for (int i = 0; i < 7; i++)
        if (!(sym[i] = dlsym(lib, names[i])))
            fail_msg("dlsym %s: %s", names[i], dlerror());
    /* POSIX: a data pointer from dlsym converts to a function pointer. */
    memcpy(&api.attach, &sym[0], sizeof(void *));
    memcpy(&api.route, &sym[1], sizeof(void *));
    memcpy(&api.select, &sym[2], sizeof(void *));
    memcpy(&api.report, &sym[3], sizeof(void *));
    memcpy(&api.detach, &sym[4], sizeof(void *));
    memcpy(&api.strerror, &sym[5], sizeof(void *));
    memcpy(&api.target_of, &sym[6], sizeof(void *));
    check_hot_path(&api, "pured");
    dlclose(lib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_path_pure_across_reloads),
        cmocka_unit_test(test_hot_path_pure_when_dlopened),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
