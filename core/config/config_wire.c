/*
 * config_wire.c - where a provider's calls go: its base_url checked, its wire format,
 * endpoint path, auth header and extra headers resolved into the desc.
 *
 * DESIGN
 * A base_url is read by libcurl's URL parser, the one the probes' requests go through:
 * it must have a scheme, http or https, and a host; no user or password (keys belong in
 * credentials, and print shows the URL), no query or fragment (probe paths are appended).
 *
 * Extra headers are checked as names and one-line values, and refused when they carry a
 * key (a key belongs in an account's credential, not in every worker's target) or frame
 * the connection (the sending client's own). They are kept as one "Name: value\r\n"
 * block, which rota_target.headers hands to the workers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "config_int.h"

/* ---- base_url ---- */

static bool has_part(CURLU *u, CURLUPart part)
{
    char *v = NULL;
    CURLUcode rc = curl_url_get(u, part, &v, 0);
    bool set = rc == CURLUE_OK && v && *v;
    curl_free(v);
    return set;
}

static bool port_zero(CURLU *u)
{
    char *v = NULL;
    bool zero =
        curl_url_get(u, CURLUPART_PORT, &v, 0) == CURLUE_OK && v && strspn(v, "0") == strlen(v);
    curl_free(v);
    return zero;
}

/* Check "url" at "path". The value is never repeated: a URL may hold a password. */
int cfg_check_base_url(struct cfg *x, const char *url, const char *path)
{
    if (strlen(url) > BASE_URL_MAX)
        return cfg_bad(x, path, "is %zu bytes long; expected at most %d", strlen(url),
                       BASE_URL_MAX);
    /* neither may appear unencoded in a path, and libcurl takes an empty one for none */
    if (strchr(url, '?'))
        return cfg_bad(x, path,
                       "has a query (?...); expected none (probe paths are appended to it)");
    if (strchr(url, '#'))
        return cfg_bad(x, path,
                       "has a fragment (#...); expected none (probe paths are appended to it)");
    static const char expect[] = "expected http:// or https:// and a host, such as "
                                 "https://api.openai.com or http://127.0.0.1:8080/v1";
    CURLU *u = curl_url();
    if (!u)
        return cfg_nomem(x);
    /* No CURLU_DEFAULT_SCHEME or CURLU_GUESS_SCHEME: a scheme must be written; no
     * CURLU_ALLOW_SPACE: a space is refused. */
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
    char *scheme = NULL;
    int bad = 0;
    if (rc == CURLUE_OUT_OF_MEMORY)
        bad = cfg_nomem(x);
    else if (rc == CURLUE_BAD_SCHEME && !strstr(url, "://"))
        bad = cfg_bad(x, path, "has no scheme; %s", expect);
    else if (rc != CURLUE_OK)
        bad = cfg_bad(x, path, "is not a URL (%s); %s", curl_url_strerror(rc), expect);
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !scheme)
        bad = cfg_bad(x, path, "has no scheme; %s", expect);
    else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        char q[64];
        bad = cfg_bad(x, path, "has scheme '%s'; expected http or https",
                      cfg_quote(q, sizeof(q), scheme));
    } else if (!has_part(u, CURLUPART_HOST))
        bad = cfg_bad(x, path, "has no host; %s", expect);
    else if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD))
        bad = cfg_bad(x, path,
                      "holds a user or password; expected none (a key goes in an account's "
                      "credential)");
    else if (port_zero(u))
        bad = cfg_bad(x, path, "has port 0; expected a port from 1 to 65535");
    curl_free(scheme);
    curl_url_cleanup(u);
    return bad;
}

/* ---- where calls go ---- */

#define HEADERS_MAX 2047 /* the block of extra headers: what rota_target.headers holds */

/* The header and the scheme before the key, per auth style (cfg_auths order). */
static const char *const auth_header[][2] = {
    {"Authorization", "Bearer "}, {"x-api-key", ""}, {"x-goog-api-key", ""},
    {"Authorization", "token "},  {"api-key", ""},   {"", ""},
};

/* Headers that carry a key: a key belongs in an account's credential, not here, where
 * rota_target_of would hand it to every worker and rotad --check would print it. */
static const char *const key_headers[] = {
    "authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"};

/* Headers that say how the request is framed or the connection kept, or that the pool
 * sets itself: the client that sends the call writes them, and a second one would
 * desynchronise the upstream (a Content-Length beside a Transfer-Encoding), make it
 * refuse the request, or (Accept-Encoding) bring an answer the pool cannot read. Host
 * may be given: it replaces the one taken from base_url. */
static const char *const framing_headers[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
    "te", "trailer", "upgrade", "expect", "accept-encoding", "x-request-id"};

static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* One header "k: v" of the provider at "base", checked, appended to "out" ("len" so far). */
static int header(struct cfg *x, const char *base, const yaml_node_t *k, const yaml_node_t *v,
                  char *out, size_t *len)
{
    const char *name = (const char *)k->data.scalar.value;
    const char *value = (const char *)v->data.scalar.value;
    size_t nl = k->data.scalar.length, vl = v->data.scalar.length;
    char what[320], q[64];
    cfg_what(x, base, what, sizeof(what)); /* "provider 'p'" */
    if (nl == 0)
        return cfg_fail(x, k->start_mark,
                        "a header of %s has an empty name; expected a name such as "
                        "anthropic-version",
                        what);
    for (size_t i = 0; i < nl; i++)
        if (!token_char((unsigned char)name[i]))
            return cfg_fail(x, k->start_mark,
                            "header '%s' of %s has a character not allowed in a header name; "
                            "expected letters, digits and !#$%%&'*+-.^_`|~, such as "
                            "anthropic-version",
                            cfg_quote(q, sizeof(q), name), what);
    for (size_t i = 0; i < sizeof(key_headers) / sizeof(key_headers[0]); i++)
        if (strcasecmp(name, key_headers[i]) == 0)
            return cfg_fail(x, k->start_mark,
                            "header '%s' of %s carries a key; expected keys in accounts' "
                            "credentials, sent in the header auth: names",
                            cfg_quote(q, sizeof(q), name), what);
    for (size_t i = 0; i < sizeof(framing_headers) / sizeof(framing_headers[0]); i++)
        if (strcasecmp(name, framing_headers[i]) == 0)
            return cfg_fail(x, k->start_mark,
                            "header '%s' of %s is one the pool sets itself (the request's "
                            "framing and encoding, the connection, the request id); expected "
                            "headers of the API, such as anthropic-version",
                            cfg_quote(q, sizeof(q), name), what);
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < ' ' && c != '\t') || c == 0x7f)
            return cfg_fail(x, v->start_mark,
                            "header '%s' of %s has a %s in its value; expected one line of "
                            "text",
                            cfg_quote(q, sizeof(q), name), what,
                            c == '\r' || c == '\n' ? "line break" : "control character");
    }
    if (*len + nl + vl + 4 > HEADERS_MAX)
        return cfg_fail(x, k->start_mark,
                        "header '%s' of %s brings its headers over %d bytes; expected fewer "
                        "or shorter headers",
                        cfg_quote(q, sizeof(q), name), what, HEADERS_MAX);
    *len += (size_t)snprintf(out + *len, HEADERS_MAX + 1 - *len, "%s: %s\r\n", name, value);
    return 0;
}

/* Format, endpoint, auth header and extra headers of provider "i" at "base". */
int cfg_resolve_wire(struct cfg *x, uint32_t i, const char *base)
{
    const struct raw_provider *r = &x->raw->providers[i];
    struct rota_desc_provider *d = &x->dp[i];
    char path[96];
    d->format = r->format ? cfg_formats[*r->format].str : rota_shm_wire_format(d->kind);
    d->base_url = r->base_url;
    if (r->path) {
        snprintf(path, sizeof(path), "%s.path", base);
        if (r->path[0] != '/')
            return cfg_bad(x, path,
                           "does not start with '/'; expected a path such as "
                           "/v1/chat/completions");
        for (const char *c = r->path; *c; c++)
            if ((unsigned char)*c <= ' ' || *c == 0x7f)
                return cfg_bad(x, path,
                               "has a space or control character; expected a path such as "
                               "/v1/chat/completions");
    }
    d->path = r->path ? r->path : rota_shm_wire_path(d->kind, d->format);
    int style = r->auth ? *r->auth : 0;
    d->auth_header = auth_header[style][0];
    d->auth_scheme = auth_header[style][1];
    const yaml_node_pair_t *pairs = NULL;
    snprintf(path, sizeof(path), "%s.headers", base);
    size_t n = cfg_map(x, path, &pairs), len = 0;
    char *block = cfg_alloc(x, HEADERS_MAX + 1);
    if (!block)
        return cfg_nomem(x);
    for (size_t k = 0; k < n; k++)
        if (header(x, base, cfg_node(x, pairs[k].key), cfg_node(x, pairs[k].value), block,
                   &len))
            return -EINVAL;
    d->headers = block;
    return 0;
}
