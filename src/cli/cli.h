/* Shared pieces of the m2mguard command-line tool. */
#ifndef M2MGUARD_CLI_H
#define M2MGUARD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

/* Exit codes (MG_EXIT_OK, _REJECT, _USAGE, _INPUT, _INTERNAL): m2mguard/text.h,
 * the same for every subcommand (documented in README and man page). */
#include "m2mguard/text.h"

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
/* Keys. A key given as hex text: decoded with the constant-time mg_hex_decode;
 * messages never show a digit of it. Empty, odd length, not hex, or longer
 * than cap octets: a message naming `what` and MG_EXIT_USAGE. On success
 * *len receives the octets. */
int mg_cli_key_hex(const char *what, const char *hex, uint8_t *out, size_t cap, size_t *len);
/* A key from a file (mg_read_private: O_NOFOLLOW, regular, owned by the user,
 * mode 0600): hex text, whitespace ignored. Unreadable, wrong mode, empty or
 * not 1..cap octets of hex: a message naming the file and MG_EXIT_INPUT. */
int mg_cli_key_file(const char *what, const char *path, uint8_t *out, size_t cap, size_t *len);

/* Set by SIGTERM/SIGINT once mg_cli_catch_stop() ran (SIGPIPE is ignored). */
extern volatile sig_atomic_t mg_cli_stop;
int mg_cli_catch_stop(void);

/* getopt_long helper: report an unknown option / missing argument uniformly. */
int mg_cli_usage_error(const char *path, const char *msg);
/* A decimal number without sign or spaces, at most max: false otherwise. */
bool mg_cli_parse_u64(const char *s, uint64_t max, uint64_t *v);
/* The arguments of a list subcommand: `[--json] [--dir DIR]`, --help, no
 * operand. Returns -1 to go on (dir and json set), else the exit code (help
 * printed on stdout, or a usage error on stderr). */
int mg_cli_list_args(const char *path, const char *usage, int argc, char **argv, const char **dir,
                     bool *json);

#endif
