/* Shared pieces of the m2mguard command-line tool. */
#ifndef M2MGUARD_CLI_H
#define M2MGUARD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

/* Exit codes, the same for every subcommand (documented in README and man page). */
enum {
    MG_EXIT_OK = 0,       /* success; for `risk analyze`: secure enough */
    MG_EXIT_REJECT = 1,   /* input verified and refused (bad checksum, replay...);
                             for `risk analyze`: not secure enough */
    MG_EXIT_USAGE = 2,    /* bad command line */
    MG_EXIT_INPUT = 3,    /* unreadable file or malformed input data */
    MG_EXIT_INTERNAL = 4, /* internal or crypto backend failure */
};

/* A command in a table: `name` is matched against argv[0]. fn receives
 * argc/argv starting at its own name (argv[0] == name). */
typedef struct mg_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} mg_cmd;

/* Runs the command named by argv[0] from the table; prints the table as help
 * for --help/-h/help or when argv is empty. `path` is the words so far
 * ("m2mguard sms") for messages. */
int mg_cli_dispatch(const char *path, const mg_cmd *table, size_t n, int argc, char **argv);
void mg_cli_print_table(FILE *f, const char *path, const mg_cmd *table, size_t n);

/* Hex: parse exactly `want` octets (want == 0: any even length up to cap).
 * Accepts upper and lower case; spaces are not accepted. Returns the number of
 * octets or -1 with a message on stderr naming `what`. */
long mg_cli_hex(const char *what, const char *hex, uint8_t *out, size_t cap, size_t want);
/* Parses a hex number of exactly `digits` hex digits into *v. */
bool mg_cli_hexnum(const char *what, const char *hex, size_t digits, uint64_t *v);
void mg_cli_print_hex(FILE *f, const uint8_t *p, size_t n);
/* Reads a key from a file: hex text (whitespace ignored). The file must not be
 * readable by group or others. Returns octets or -1 with a message. */
long mg_cli_key_file(const char *what, const char *path, uint8_t *out, size_t cap);
/* Writes s as a JSON string (with quotes). */
void mg_cli_json_str(FILE *f, const char *s);

/* Monotonic clock in milliseconds. */
int64_t mg_cli_now_ms(void);

/* Set by SIGTERM/SIGINT once mg_cli_catch_stop() ran (SIGPIPE is ignored). */
extern volatile sig_atomic_t mg_cli_stop;
int mg_cli_catch_stop(void);

/* getopt_long helper: report an unknown option / missing argument uniformly. */
int mg_cli_usage_error(const char *path, const char *msg);

#endif
