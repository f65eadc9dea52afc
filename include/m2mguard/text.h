/*
 * m2mguard — the small text module of the host programs (src/text): JSON
 * string literals, the private-file reader, the clocks and ISO-8601 time.
 * One copy of each; the CLI, the gateway and the agent call these.
 *
 * Host code only (stdio, POSIX). The constant-time hex decoder for keys is
 * in the portable core: mg_hex_decode in common.h.
 */
#ifndef M2MGUARD_TEXT_H
#define M2MGUARD_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Exit codes of the m2mguard programs, the same for every subcommand
 *  (README "Exit codes", man page). Functions of this module that return int
 *  return one of these. */
enum {
    MG_EXIT_OK = 0,       /**< success; for `risk analyze`: secure enough */
    MG_EXIT_REJECT = 1,   /**< input verified and refused (bad checksum, replay...);
                               for `risk analyze`: not secure enough */
    MG_EXIT_USAGE = 2,    /**< bad command line */
    MG_EXIT_INPUT = 3,    /**< unreadable file or malformed input data */
    MG_EXIT_INTERNAL = 4, /**< internal or crypto backend failure */
};

/* ---- JSON string literals ------------------------------------------------------ */

/**
 * Writes the n octets at s as one JSON string literal, quotes included, that
 * is valid JSON (RFC 8259) and valid UTF-8 whatever the octets are: '"' and
 * '\' are escaped, control characters (and DEL) become \b \f \n \r \t or
 * \u00XX, every ill-formed UTF-8 sequence (stray continuation octets,
 * truncated sequences, overlong forms, surrogates, code points above
 * U+10FFFF) becomes one \ufffd per maximal ill-formed subpart (Unicode
 * §3.9 "U+FFFD substitution of maximal subparts"). NUL octets are written as
 * \u0000. Well-formed UTF-8 passes unchanged.
 */
void mg_json_strn(FILE *f, const char *s, size_t n);
/** mg_json_strn of the NUL-terminated string s. */
void mg_json_str(FILE *f, const char *s);
/**
 * The same literal into out (cap octets, NUL-terminated). Returns the length
 * of the complete literal without the NUL. When that is >= cap the literal
 * does not fit: out then holds "" (if cap > 0), never a cut literal.
 */
size_t mg_json_str_buf(char *out, size_t cap, const char *s, size_t n);

/* ---- private files ------------------------------------------------------------- */

/**
 * Reads a small secret file (a key, a configuration holding a password, a
 * provisioning file) into buf and NUL-terminates it; *len (if len != NULL)
 * receives the number of octets read (at most cap - 1).
 *
 * The file is opened with O_NOFOLLOW and must be a regular file owned by the
 * effective user with no group or other permission bits (mode 0600 or 0400).
 * Returns MG_EXIT_OK, or MG_EXIT_INPUT after one message on stderr that
 * starts with `what` and names the file and the real problem: cannot open
 * (with the system's reason), a symbolic link, not a regular file, owned by
 * another user, "mode 0644, must be 0600 (chmod 600 FILE)", empty, too large.
 * MG_EXIT_USAGE when cap < 2. On failure buf holds nothing of the file.
 */
int mg_read_private(const char *what, const char *path, char *buf, size_t cap, size_t *len);
/** The same with the message ("what: FILE has mode 0644, ...", no newline)
 *  in why instead of on stderr (why NULL: on stderr). For libraries. */
int mg_read_private_why(const char *what, const char *path, char *buf, size_t cap, size_t *len,
                        char *why, size_t wcap);

/* ---- clocks and time ----------------------------------------------------------- */

/** Writes the formatted message into why (cap octets, always terminated);
 *  nothing when why is NULL or cap 0. The one "why" writer of host code. */
void mg_say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Appends "; " (when done is not empty) and the formatted text to done,
 *  truncating at cap: a running summary of what was done. */
void mg_say_add(char *done, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Wall clock (CLOCK_REALTIME), seconds since the Unix epoch. */
int64_t mg_now_s(void);
/** Wall clock (CLOCK_REALTIME), milliseconds since the Unix epoch. */
int64_t mg_now_ms(void);
/** Monotonic clock (CLOCK_MONOTONIC) in milliseconds: for intervals and
 *  deadlines, never for timestamps. */
int64_t mg_mono_ms(void);
/** t (seconds since the epoch) as ISO-8601 UTC, "2026-11-25T08:00:00Z";
 *  the decimal number when it cannot be represented. */
void mg_time_iso(int64_t t, char out[32]);

struct sockaddr_storage;
/** A listening address "HOST:PORT" (IPv4) or "[HOST]:PORT" (IPv6), numeric
 *  only (no name look-up), port 0..65535, into ss; v6 says which. false:
 *  not such an address (ss zeroed). Used by the EST server, the console and
 *  the metrics endpoints. */
bool mg_listen_parse(const char *s, struct sockaddr_storage *ss, bool *v6);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_TEXT_H */
