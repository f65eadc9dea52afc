/* The log facade: see include/m2mguard/log.h. Host code. */
#include "m2mguard/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static struct {
    mg_log_dest dest;
    mg_log_level level;
    bool syslog_open;
    int journal; /* -1 unknown, 0 no, 1 stderr is the journal's stream */
} lg = {MG_LOG_TO_STDERR, MG_LOG_INFO, false, -1};

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

bool mg_log_level_parse(const char *s, mg_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (s != NULL && strcmp(s, level_names[i]) == 0) {
            *out = (mg_log_level)(MG_LOG_ERROR + (int)i);
            return true;
        }
    return false;
}

const char *mg_log_level_name(mg_log_level level)
{
    if (level < MG_LOG_ERROR || level > MG_LOG_DEBUG)
        return "error";
    return level_names[level - MG_LOG_ERROR];
}

bool mg_log_dest_parse(const char *s, mg_log_dest *out)
{
    if (s == NULL)
        return false;
    if (strcmp(s, "stderr") == 0)
        *out = MG_LOG_TO_STDERR;
    else if (strcmp(s, "syslog") == 0)
        *out = MG_LOG_TO_SYSLOG;
    else if (strcmp(s, "journal") == 0)
        *out = MG_LOG_TO_JOURNAL;
    else
        return false;
    return true;
}

/* systemd sets JOURNAL_STREAM=DEV:INODE for the stream of stdout/stderr it
 * connected to the journal: stderr is that stream when both match (a child
 * whose stderr was redirected elsewhere must not print prefixes). */
static bool stderr_is_journal(void)
{
    if (lg.journal >= 0)
        return lg.journal == 1;
    lg.journal = 0;
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev = 0, ino = 0;
    struct stat st;
    if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        lg.journal = 1;
    return lg.journal == 1;
}

void mg_log_open(const char *ident, mg_log_dest dest, mg_log_level level)
{
    mg_log_close();
    lg.dest = dest;
    lg.level = level;
    lg.journal = -1;
    (void)stderr_is_journal(); /* decided here: mg_log only reads (the EST server's thread logs too) */
    if (dest == MG_LOG_TO_SYSLOG) {
        openlog(ident != NULL ? ident : "m2mguard", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        lg.syslog_open = true;
    }
}

void mg_log_set_level(mg_log_level level)
{
    if (level >= MG_LOG_ERROR && level <= MG_LOG_DEBUG)
        lg.level = level;
}

mg_log_level mg_log_get_level(void)
{
    return lg.level;
}

bool mg_log_enabled(mg_log_level level)
{
    return level <= lg.level;
}

void mg_log_close(void)
{
    if (lg.syslog_open)
        closelog();
    lg.syslog_open = false;
    lg.dest = MG_LOG_TO_STDERR;
}

size_t mg_log_escape(char *out, size_t cap, const char *in, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        char e[4];
        size_t el = 0;
        if (c == '\\') {
            e[0] = '\\';
            e[1] = '\\';
            el = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            e[0] = '\\';
            e[1] = 'x';
            e[2] = hex[c >> 4];
            e[3] = hex[c & 15];
            el = 4;
        } else {
            e[0] = (char)c;
            el = 1;
        }
        if (o + el + 1 > cap) { /* does not fit: end with "..." after a whole element */
            size_t keep = cap >= 4 ? cap - 4 : 0;
            if (o > keep) { /* the last element boundary at or before keep */
                size_t b = 0;
                for (size_t j = 0; j < i; j++) {
                    unsigned char cj = (unsigned char)in[j];
                    size_t ej = cj == '\\' ? 2 : (cj < 0x20 || cj >= 0x7f) ? 4 : 1;
                    if (b + ej > keep)
                        break;
                    b += ej;
                }
                o = b;
            }
            for (size_t k = 0; k < 3 && o + 1 < cap; k++)
                out[o++] = '.';
            out[o] = '\0';
            return o;
        }
        memcpy(out + o, e, el);
        o += el;
    }
    out[o] = '\0';
    return o;
}

size_t mg_log_format(char *out, size_t cap, const char *component, const char *fmt, va_list ap)
{
    char raw[MG_LOG_LINE_MAX];
    if (cap == 0)
        return 0;
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    if (n < 0)
        n = 0;
    size_t rn = (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
    size_t o = 0;
    if (component != NULL && component[0] != '\0') {
        o = mg_log_escape(out, cap, component, strlen(component));
        if (o + 2 < cap) {
            out[o++] = ':';
            out[o++] = ' ';
            out[o] = '\0';
        }
    }
    bool cut = (size_t)n > rn; /* the message was longer than raw: say so */
    size_t room = cap - o;
    if (cut && room > 8)
        room -= 3; /* for the "..." */
    o += mg_log_escape(out + o, room, raw, rn);
    if (cut && o + 3 < cap && (o < 3 || strcmp(out + o - 3, "...") != 0)) {
        memcpy(out + o, "...", 4);
        o += 3;
    }
    return o;
}

void mg_log_v(mg_log_level level, const char *component, const char *fmt, va_list ap)
{
    if (!mg_log_enabled(level))
        return;
    char line[MG_LOG_LINE_MAX];
    (void)mg_log_format(line, sizeof(line), component, fmt, ap);
    if (lg.dest == MG_LOG_TO_SYSLOG) {
        syslog((int)level, "%s", line);
        return;
    }
    if (lg.dest == MG_LOG_TO_JOURNAL || stderr_is_journal())
        fprintf(stderr, "<%d>%s\n", (int)level, line);
    else
        fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

void mg_log(mg_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mg_log_v(level, component, fmt, ap);
    va_end(ap);
}
