/* m2mguard console: the body of a POST (body.h). */
#include "body.h"

#include <stdio.h>
#include <string.h>

#define JSON_FIELD_MAX 512

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* A JSON string at p (after the quote) into out (UTF-8; \u escapes of the
 * BMP; surrogate pairs refused); NULL if malformed or longer than cap - 1. */
static const char *jparse_str(const char *p, char *out, size_t cap)
{
    size_t o = 0;
    for (;;) {
        unsigned char ch = (unsigned char)*p++;
        if (ch == '"')
            break;
        if (ch < 0x20)
            return NULL;
        if (ch == '\\') {
            uint32_t cp;
            char e = *p++;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                cp = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *p++;
                    int v = h >= '0' && h <= '9'   ? h - '0'
                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                   : -1;
                    if (v < 0)
                        return NULL;
                    cp = cp * 16 + (uint32_t)v;
                }
                if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                    return NULL;
                break;
            }
            default: return NULL;
            }
            unsigned char u[3];
            size_t n;
            if (cp < 0x80) {
                u[0] = (unsigned char)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (unsigned char)(0xc0 | (cp >> 6));
                u[1] = (unsigned char)(0x80 | (cp & 0x3f));
                n = 2;
            } else {
                u[0] = (unsigned char)(0xe0 | (cp >> 12));
                u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (unsigned char)(0x80 | (cp & 0x3f));
                n = 3;
            }
            if (o + n >= cap)
                return NULL;
            memcpy(out + o, u, n);
            o += n;
            continue;
        }
        if (o + 1 >= cap)
            return NULL;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return p;
}

bool mg_con_parse_body(const char *s, size_t len, body *b)
{
    memset(b, 0, sizeof(*b));
    if (s == NULL || len == 0 || strlen(s) != len)
        return false;
    const char *p = ws(s);
    if (*p++ != '{')
        return false;
    p = ws(p);
    if (*p == '}')
        return *ws(p + 1) == '\0';
    for (;;) {
        char key[32], val[JSON_FIELD_MAX];
        if (*p++ != '"' || (p = jparse_str(p, key, sizeof(key))) == NULL)
            return false;
        p = ws(p);
        if (*p++ != ':')
            return false;
        p = ws(p);
        bool is_str = false, is_num = false;
        int64_t num = 0;
        if (*p == '"') {
            if ((p = jparse_str(p + 1, val, sizeof(val))) == NULL)
                return false;
            is_str = true;
        } else if (*p >= '0' && *p <= '9') {
            while (*p >= '0' && *p <= '9') {
                if (num > (INT64_MAX - 9) / 10)
                    return false;
                num = num * 10 + (*p++ - '0');
            }
            is_num = true;
        } else if (strncmp(p, "null", 4) == 0) {
            p += 4;
        } else
            return false;
        if (strcmp(key, "name") == 0 && is_str) {
            if (strlen(val) >= sizeof(b->name))
                return false;
            (void)snprintf(b->name, sizeof(b->name), "%s", val);
            b->have_name = true;
        } else if (strcmp(key, "id") == 0 && is_num) {
            b->id = num;
            b->have_id = true;
        } else if (strcmp(key, "alert") == 0 && is_num) {
            b->alert = num;
            b->have_alert = true;
        } else if (strcmp(key, "note") == 0 && is_str) {
            if (strlen(val) >= sizeof(b->note))
                return false;
            (void)snprintf(b->note, sizeof(b->note), "%s", val);
            b->have_note = true;
        }
        /* other keys are ignored */
        p = ws(p);
        if (*p == '}')
            return *ws(p + 1) == '\0';
        if (*p++ != ',')
            return false;
        p = ws(p);
    }
}

