/*
 * front_error.c - error answers in the shape each client SDK parses, JSON string
 * escaping, and the reason phrases of status lines.
 *
 * DESIGN
 * An SDK shows the user the message it finds where its API puts it; a body in another
 * API's shape reaches the user as "unknown error". The shape follows the path:
 *   /v1/messages...       Anthropic  {"type":"error","error":{"type":T,"message":M}}
 *   /v1beta/..., and any  Gemini     {"error":{"code":N,"message":M,"status":S}}
 *   path with ":generateContent" or ":streamGenerateContent"
 *   anything else         OpenAI     {"error":{"message":M,"type":T,"param":null,
 *                                     "code":null}}
 * where T defaults from the status to each API's own type names and S is Google's
 * canonical status for the HTTP status. Pure functions; any thread.
 */
#include <stdio.h>
#include <string.h>

#include "front_int.h"

const char *rota_front_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 529:
        return "Overloaded";
    default:
        return status < 300   ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

/* Length of the valid UTF-8 sequence at "s" (1..4), or 0 if it is not one. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80,
                 hi = c == 0xed ? 0x9f : 0xbf; /* overlong, surrogates */
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf; /* > U+10FFFF */
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4
                                                                                          : 0;
    }
    return 0;
}

size_t rota_json_escape(char *buf, size_t n, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0;
    while (*s) {
        char tmp[8];
        const char *out = tmp;
        size_t k;
        int ul = utf8_len(s); /* a NUL ends a sequence early, so never reads past it */
        if (*s == '"' || *s == '\\') {
            tmp[0] = '\\', tmp[1] = (char)*s, k = 2;
        } else if (*s == '\n' || *s == '\r' || *s == '\t' || *s == '\b' || *s == '\f') {
            tmp[0] = '\\';
            tmp[1] = *s == '\n'   ? 'n'
                     : *s == '\r' ? 'r'
                     : *s == '\t' ? 't'
                     : *s == '\b' ? 'b'
                                  : 'f';
            k = 2;
        } else if (*s < 0x20) {
            memcpy(tmp, "\\u00", 4);
            tmp[4] = hex[*s >> 4], tmp[5] = hex[*s & 15], k = 6;
        } else if (ul == 0) {
            out = "\xef\xbf\xbd", k = 3, ul = 1; /* U+FFFD for one invalid byte */
        } else {
            out = (const char *)s, k = (size_t)ul;
        }
        if (o + k > n)
            break;
        memcpy(buf + o, out, k);
        o += k;
        s += ul ? ul : 1;
    }
    return o;
}

enum shape { OPENAI, ANTHROPIC, GEMINI };

static enum shape shape_of(const char *path)
{
    if (!path)
        return OPENAI;
    if (!strncmp(path, "/v1/messages", 12) &&
        (path[12] == '\0' || path[12] == '/' || path[12] == '?'))
        return ANTHROPIC;
    if (!strncmp(path, "/v1beta/", 8) || strstr(path, ":generateContent") ||
        strstr(path, ":streamGenerateContent"))
        return GEMINI;
    return OPENAI;
}

static const char *openai_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static const char *anthropic_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static const char *google_status(int status)
{
    switch (status) {
    case 400:
    case 411:
    case 413:
    case 414:
    case 417:
    case 431:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 405:
    case 501:
    case 505:
        return "UNIMPLEMENTED";
    case 408:
    case 504:
        return "DEADLINE_EXCEEDED";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 503:
    case 529:
        return "UNAVAILABLE";
    default:
        return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

size_t rota_front_error_json(char *buf, size_t n, const char *path, int status,
                             const char *type, const char *message)
{
    enum shape sh = shape_of(path);
    char t[128], m[1024];
    size_t tl = rota_json_escape(t, sizeof(t) - 1,
                                 type              ? type
                                 : sh == ANTHROPIC ? anthropic_type(status)
                                                   : openai_type(status));
    t[tl] = '\0';
    size_t room = n > 160 + tl ? n - 160 - tl : 0; /* the frame around the message */
    size_t ml = rota_json_escape(m, room < sizeof(m) - 1 ? room : sizeof(m) - 1,
                                 message ? message : rota_front_reason(status));
    m[ml] = '\0';
    int k;
    if (sh == ANTHROPIC)
        k = snprintf(buf, n,
                     "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}", t,
                     m);
    else if (sh == GEMINI)
        k = snprintf(buf, n, "{\"error\":{\"code\":%d,\"message\":\"%s\",\"status\":\"%s\"}}",
                     status, m, google_status(status));
    else
        k = snprintf(buf, n,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                     "\"code\":null}}",
                     m, t);
    return k < 0 ? 0 : (size_t)k < n ? (size_t)k : n ? n - 1 : 0;
}
