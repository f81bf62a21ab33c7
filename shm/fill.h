/*
 * fill.h - a generation's contents from a plain C description (private to shm/): the
 * checks on the description, the section plan, and filling each section. build.c creates
 * the segment and publishes it.
 */
#ifndef ROTA_SHM_FILL_H
#define ROTA_SHM_FILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h"

#define ROTA_FILL_API __attribute__((visibility("hidden")))

/* A growing string section (names, credentials). */
struct blob {
    char *p;
    size_t len, cap;
};

/* Where each section goes in a generation of a description. */
struct layout {
    uint64_t off[ROTA_SEC_COUNT], size[ROTA_SEC_COUNT];
    uint32_t count[ROTA_SEC_COUNT];
    uint64_t total;
};

ROTA_FILL_API uint32_t rota_fill_blob_str(struct blob *b, const char *s);

ROTA_FILL_API int rota_fill_check(const struct rota_desc *d, char *err, size_t n);

ROTA_FILL_API uint64_t rota_fill_nonce_byte(const struct rota_shm_map *m, uint32_t i);

ROTA_FILL_API void rota_fill_plan(struct layout *L, const struct rota_desc *d, uint32_t ntiers,
                                  uint32_t nmembers, uint32_t nbuckets, uint32_t slots,
                                  uint32_t nckroutes, size_t nstr, size_t ncred);

/* Put "key" of "kind" in the index: 0, or -EEXIST when it is there with another value. */
ROTA_FILL_API int rota_fill_index_put(struct rota_shm_index *ix, uint32_t mask, uint32_t kind,
                                      uint64_t key, uint32_t value);

ROTA_FILL_API void rota_fill_fill_provider(struct rota_shm_provider *p,
                                           const struct rota_desc_provider *s,
                                           struct blob *str);

ROTA_FILL_API void rota_fill_fill_account(struct rota_shm_account *a,
                                          const struct rota_desc_account *s, struct blob *str,
                                          struct blob *cred);

ROTA_FILL_API void rota_fill_tier_strings(struct rota_shm_tier *t,
                                          const struct rota_desc_tier *s, struct blob *str);

ROTA_FILL_API uint32_t rota_fill_bucket_words(const struct rota_desc_tier *t);

ROTA_FILL_API int rota_fill_fill_routes(struct rota_shm_map *m, const struct rota_desc *d,
                                        struct blob *str, char *err, size_t n);

ROTA_FILL_API void rota_fill_write_header(struct rota_shm_header *h, const struct layout *L,
                                          const char *instance, uint64_t gen,
                                          const struct rota_desc *d);

ROTA_FILL_API int rota_fill_assign_tags(struct rota_shm_account *acct, uint32_t n,
                                        const struct rota_shm_map *old);

/* Client keys (ckeys.c): the description's checks, the words of the ckroutes section,
 * their names for the string blob's dry run, and filling ckeys, ckroutes and the index. */
ROTA_FILL_API int rota_fill_check_keys(const struct rota_desc *d, char *err, size_t n);
ROTA_FILL_API uint32_t rota_fill_ckroute_words(const struct rota_desc *d);
ROTA_FILL_API void rota_fill_ckey_strings(const struct rota_desc *d, struct blob *str);
ROTA_FILL_API int rota_fill_fill_ckeys(struct rota_shm_map *m, struct rota_shm_ckey *keys,
                                       uint32_t *ckroutes, const struct rota_desc *d,
                                       struct blob *str, char *err, size_t n);

/* A mapped generation's client keys, checked as rota_shm_validate checks the rest. */
ROTA_FILL_API int rota_shm_ckeys_check(const struct rota_shm_map *m, char *err, size_t n);

#endif
