/*
 * The log facade of the long-running commands (gateway run, detect run,
 * est run): one line per message, a level, a component, three destinations
 * (docs/operations.md "Logging"):
 *   stderr  (default) "component: message"; when the process was started by
 *           systemd with stderr connected to the journal (JOURNAL_STREAM names
 *           stderr's device:inode), each line starts with the sd-daemon
 *           priority prefix "<N>" so that journald records the level;
 *   journal the same lines, always with the "<N>" prefix;
 *   syslog  openlog(ident, LOG_PID, LOG_DAEMON) + syslog(priority, ...).
 * Every line is bounded (MG_LOG_LINE_MAX, cut with "...") and its control
 * characters (and octets >= 0x7f, and '\\') are escaped as \xNN / \\ : text an
 * attacker chose (a sender address, a reason) cannot start a log line of its
 * own. Nothing takes key material: never pass a secret.
 */
#ifndef M2MGUARD_LOG_H
#define M2MGUARD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/** syslog(3) priorities (RFC 5424 severities). */
typedef enum mg_log_level {
    MG_LOG_ERROR = 3,
    MG_LOG_WARNING = 4,
    MG_LOG_NOTICE = 5,
    MG_LOG_INFO = 6,
    MG_LOG_DEBUG = 7,
} mg_log_level;

typedef enum mg_log_dest {
    MG_LOG_TO_STDERR = 0,
    MG_LOG_TO_SYSLOG = 1,
    MG_LOG_TO_JOURNAL = 2,
} mg_log_dest;

#define MG_LOG_LINE_MAX 1024 /* octets of a line, escapes included, before the newline */

#if defined(__GNUC__) || defined(__clang__)
#define MG_LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MG_LOG_PRINTF(f, a)
#endif

/** "error", "warning", "notice", "info", "debug" -> level; false otherwise. */
bool mg_log_level_parse(const char *s, mg_log_level *out);
const char *mg_log_level_name(mg_log_level level);
/** "stderr", "syslog", "journal" -> destination; false otherwise. */
bool mg_log_dest_parse(const char *s, mg_log_dest *out);

/** Selects the destination and the level (messages above it are dropped).
 *  ident: the syslog identity (e.g. "m2mguard"), kept by pointer. */
void mg_log_open(const char *ident, mg_log_dest dest, mg_log_level level);
void mg_log_set_level(mg_log_level level);
mg_log_level mg_log_get_level(void);
bool mg_log_enabled(mg_log_level level);
/** Closes syslog if open; back to stderr. */
void mg_log_close(void);

/** One message: level, component ("gateway", "detect", "est"), printf format. */
void mg_log(mg_log_level level, const char *component, const char *fmt, ...) MG_LOG_PRINTF(3, 4);
void mg_log_v(mg_log_level level, const char *component, const char *fmt, va_list ap)
    MG_LOG_PRINTF(3, 0);

/** Escapes in (n octets) into out (always terminated, cap >= 4): control
 *  characters, DEL, octets >= 0x80 as \xNN, '\\' as \\. Stops before an escape
 *  that does not fit and then ends with "..." Returns the length written. */
size_t mg_log_escape(char *out, size_t cap, const char *in, size_t n);
/** The line mg_log writes (without the journal prefix and the newline):
 *  "component: message", escaped and bounded to cap - 1 octets. */
size_t mg_log_format(char *out, size_t cap, const char *component, const char *fmt, va_list ap)
    MG_LOG_PRINTF(4, 0);

#endif
