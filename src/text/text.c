/* The text module of the host programs (include/m2mguard/text.h): JSON string
 * literals, the private-file reader, the clocks. */
#include "m2mguard/text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "m2mguard/common.h"

/* ---- JSON string literals ------------------------------------------------------ */

/* Where the literal goes: a stream, or a buffer that counts what would not fit. */
typedef struct sink {
    FILE *f;
    char *out;
    size_t cap, len;
} sink;

static void put(sink *k, const char *p, size_t n)
{
    if (k->f != NULL) {
        (void)fwrite(p, 1, n, k->f);
    } else if (k->len < k->cap) {
        size_t room = k->cap - k->len;
        memcpy(k->out + k->len, p, n < room ? n : room);
    }
    k->len += n;
}

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 when it is
 * ill-formed; *sub receives the length of its maximal ill-formed subpart
 * (at least 1). Ranges of the Unicode Standard, Table 3-7. */
static size_t utf8_seq(const uint8_t *s, size_t n, size_t *sub)
{
    uint8_t c = s[0];
    size_t want;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second octet */
    *sub = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        want = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        want = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        want = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlongs */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0; /* 80..C1 (continuation, overlong lead), F5..FF */
    }
    size_t i = 1;
    for (; i < want && i < n; i++) {
        uint8_t lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (s[i] < lo_i || s[i] > hi_i)
            break;
    }
    if (i == want)
        return want;
    *sub = i;
    return 0;
}

static void json_lit(sink *k, const char *str, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)str;
    put(k, "\"", 1);
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(k, e, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
                            : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (e != NULL) {
                put(k, e, 2);
            } else {
                char u[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
                put(k, u, 6);
            }
            i++;
        } else if (c < 0x80) {
            size_t j = i + 1; /* a run of printable ASCII: one put */
            while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\')
                j++;
            put(k, (const char *)s + i, j - i);
            i = j;
        } else {
            size_t sub = 1, m = utf8_seq(s + i, n - i, &sub);
            if (m > 0) {
                put(k, (const char *)s + i, m);
                i += m;
            } else {
                put(k, "\\ufffd", 6);
                i += sub;
            }
        }
    }
    put(k, "\"", 1);
}

void mg_json_strn(FILE *f, const char *s, size_t n)
{
    sink k = {f, NULL, 0, 0};
    json_lit(&k, s != NULL ? s : "", s != NULL ? n : 0);
}

void mg_json_str(FILE *f, const char *s)
{
    mg_json_strn(f, s, s != NULL ? strlen(s) : 0);
}

size_t mg_json_str_buf(char *out, size_t cap, const char *s, size_t n)
{
    sink k = {NULL, out, cap, 0};
    json_lit(&k, s != NULL ? s : "", s != NULL ? n : 0);
    if (cap > 0)
        out[k.len < cap ? k.len : 0] = '\0';
    return k.len;
}

/* ---- private files ------------------------------------------------------------- */

/* A message of mg_read_private_why(): into why, or a line on stderr. */
static void say(char *why, size_t wcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t wcap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why != NULL && wcap > 0) {
        (void)vsnprintf(why, wcap, fmt, ap);
    } else {
        (void)vfprintf(stderr, fmt, ap);
        (void)fputc('\n', stderr);
    }
    va_end(ap);
}

int mg_read_private_why(const char *what, const char *path, char *buf, size_t cap, size_t *len,
                        char *why, size_t wcap)
{
    struct stat st;
    size_t got = 0;
    if (len != NULL)
        *len = 0;
    if (cap < 2) {
        say(why, wcap, "%s: no room to read %s", what, path);
        return MG_EXIT_USAGE;
    }
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP)
            say(why, wcap, "%s: %s is a symbolic link; give the file itself", what, path);
        else
            say(why, wcap, "%s: cannot open %s: %s", what, path, strerror(errno));
        return MG_EXIT_INPUT;
    }
    bool bad = false;
    if (fstat(fd, &st) != 0) {
        say(why, wcap, "%s: cannot stat %s: %s", what, path, strerror(errno));
        bad = true;
    } else if (!S_ISREG(st.st_mode)) {
        say(why, wcap, "%s: %s is not a regular file", what, path);
        bad = true;
    } else if (st.st_uid != geteuid()) {
        say(why, wcap, "%s: %s is owned by uid %u, not by this user (uid %u)", what, path,
                (unsigned)st.st_uid, (unsigned)geteuid());
        bad = true;
    } else if ((st.st_mode & 077) != 0) {
        say(why, wcap, "%s: %s has mode %04o, must be 0600 (chmod 600 %s)", what, path,
                (unsigned)(st.st_mode & 07777), path);
        bad = true;
    }
    while (!bad) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            say(why, wcap, "%s: cannot read %s: %s", what, path, strerror(errno));
            bad = true;
        } else if (r == 0) {
            break;
        } else {
            got += (size_t)r;
            if (got == cap - 1) {
                char extra;
                ssize_t more;
                do
                    more = read(fd, &extra, 1);
                while (more < 0 && errno == EINTR);
                if (more != 0) {
                    say(why, wcap, "%s: %s is too large (at most %zu octets)", what, path,
                            cap - 1);
                    bad = true;
                }
                mg_wipe(&extra, sizeof(extra));
                break;
            }
        }
    }
    close(fd);
    if (!bad && got == 0) {
        say(why, wcap, "%s: %s is empty", what, path);
        bad = true;
    }
    if (bad) {
        mg_wipe(buf, cap);
        return MG_EXIT_INPUT;
    }
    buf[got] = '\0';
    if (len != NULL)
        *len = got;
    return MG_EXIT_OK;
}

int mg_read_private(const char *what, const char *path, char *buf, size_t cap, size_t *len)
{
    return mg_read_private_why(what, path, buf, cap, len, NULL, 0);
}

/* ---- clocks and time ----------------------------------------------------------- */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mg_now_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (int64_t)time(NULL);
    return (int64_t)ts.tv_sec;
}

int64_t mg_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t mg_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

void mg_time_iso(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(out, 32, "%lld", (long long)t);
}

void mg_say(char *why, size_t cap, const char *fmt, ...)
{
    if (why == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

void mg_say_add(char *done, size_t cap, const char *fmt, ...)
{
    if (done == NULL || cap == 0)
        return;
    size_t len = strnlen(done, cap);
    if (len + 1 >= cap)
        return;
    if (len > 0) {
        (void)snprintf(done + len, cap - len, "; ");
        len = strnlen(done, cap);
        if (len + 1 >= cap)
            return;
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(done + len, cap - len, fmt, ap);
    va_end(ap);
}

bool mg_listen_parse(const char *s, struct sockaddr_storage *ss, bool *v6)
{
    char host[64];
    const char *colon;
    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
            return false;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        colon = rb + 1;
        *v6 = true;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
            return false;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        *v6 = false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port > 65535)
        return false;
    if (*v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1;
}
