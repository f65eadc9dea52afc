#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/common.h"

volatile sig_atomic_t mg_cli_stop;

static void on_stop(int sig)
{
    (void)sig;
    mg_cli_stop = 1;
}

int mg_cli_catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

void mg_cli_print_table(FILE *f, const char *path, const mg_cmd *table, size_t n)
{
    fprintf(f, "usage: %s <command> [options]\n\ncommands:\n", path);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-12s %s\n", table[i].name, table[i].summary);
    fprintf(f, "\nRun '%s <command> --help' for the options of a command.\n", path);
}

int mg_cli_dispatch(const char *path, const mg_cmd *table, size_t n, int argc, char **argv)
{
    if (argc < 1) {
        mg_cli_print_table(stderr, path, table, n);
        return MG_EXIT_USAGE;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        mg_cli_print_table(stdout, path, table, n);
        return MG_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[0], table[i].name) == 0)
            return table[i].fn(argc, argv);
    fprintf(stderr, "%s: unknown command '%s'\n", path, argv[0]);
    mg_cli_print_table(stderr, path, table, n);
    return MG_EXIT_USAGE;
}

int mg_cli_list_args(const char *path, const char *usage, int argc, char **argv, const char **dir,
                     bool *json)
{
    enum { L_JSON = 256, L_DIR };
    static const struct option lo[] = {
        {"json", no_argument, NULL, L_JSON}, {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},    {NULL, 0, NULL, 0},
    };
    *dir = NULL;
    *json = false;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(usage, stdout); return MG_EXIT_OK;
        case L_JSON: *json = true; break;
        case L_DIR: *dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error(path, "no arguments expected");
    return -1;
}

bool mg_cli_parse_u64(const char *s, uint64_t max, uint64_t *v)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || x > max)
        return false;
    *v = (uint64_t)x;
    return true;
}

int mg_cli_usage_error(const char *path, const char *msg)
{
    fprintf(stderr, "%s: %s (see '%s --help')\n", path, msg, path);
    return MG_EXIT_USAGE;
}

long mg_cli_hex(const char *what, const char *hex, uint8_t *out, size_t cap, size_t want)
{
    size_t len = strlen(hex);
    if (len % 2 != 0) {
        fprintf(stderr, "%s: odd number of hex digits\n", what);
        return -1;
    }
    size_t n = len / 2;
    if ((want != 0 && n != want) || n > cap) {
        if (want != 0)
            fprintf(stderr, "%s: expected %zu octets (%zu hex digits), got %zu\n", what, want,
                    want * 2, n);
        else
            fprintf(stderr, "%s: too long (%zu octets, at most %zu)\n", what, n, cap);
        return -1;
    }
    int got = mg_hex_decode(hex, len, out, cap);
    if (got < 0) {
        /* not a key (those go through mg_cli_key_hex): the position helps */
        size_t pos = 0;
        while (pos < len && isxdigit((unsigned char)hex[pos]))
            pos++;
        fprintf(stderr, "%s: not a hex digit at position %zu\n", what, pos + 1);
        return -1;
    }
    return got;
}

bool mg_cli_hexnum(const char *what, const char *hex, size_t digits, uint64_t *v)
{
    uint8_t b[8];
    if (digits % 2 != 0 || digits > 16)
        return false;
    long n = mg_cli_hex(what, hex, b, sizeof(b), digits / 2);
    if (n < 0)
        return false;
    *v = 0;
    for (long i = 0; i < n; i++)
        *v = (*v << 8) | b[i];
    return true;
}

void mg_cli_print_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

int mg_cli_key_hex(const char *what, const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    *len = 0;
    if (n == 0) {
        fprintf(stderr, "%s: empty key (give the key as hex digits)\n", what);
        return MG_EXIT_USAGE;
    }
    if (n % 2 != 0) {
        fprintf(stderr, "%s: odd number of hex digits (%zu)\n", what, n);
        return MG_EXIT_USAGE;
    }
    if (n / 2 > cap) {
        fprintf(stderr, "%s: key too long (%zu octets, at most %zu)\n", what, n / 2, cap);
        return MG_EXIT_USAGE;
    }
    int got = mg_hex_decode(hex, n, out, cap);
    if (got < 0) {
        fprintf(stderr, "%s: not a hex key (only 0-9, a-f, A-F)\n", what);
        return MG_EXIT_USAGE;
    }
    *len = (size_t)got;
    return MG_EXIT_OK;
}

int mg_cli_key_file(const char *what, const char *path, uint8_t *out, size_t cap, size_t *len)
{
    char text[512];
    size_t got = 0, h = 0;
    *len = 0;
    int rc = mg_read_private(what, path, text, sizeof(text), &got);
    if (rc != MG_EXIT_OK)
        return rc;
    /* squeeze out whitespace in place: a key file may end with a newline */
    for (size_t i = 0; i < got; i++)
        if (!isspace((unsigned char)text[i]))
            text[h++] = text[i];
    const char *bad = NULL;
    if (h == 0)
        bad = "holds no hex digits";
    else if (h % 2 != 0)
        bad = "holds an odd number of hex digits";
    else if (h / 2 > cap)
        bad = "holds a key that is too long";
    int n = bad == NULL ? mg_hex_decode(text, h, out, cap) : -1;
    mg_wipe(text, sizeof(text));
    if (bad == NULL && n < 0)
        bad = "holds a character that is not a hex digit";
    if (bad != NULL) {
        if (h / 2 > cap)
            fprintf(stderr, "%s: %s %s (%zu octets, at most %zu)\n", what, path, bad, h / 2, cap);
        else
            fprintf(stderr, "%s: %s %s (expected the key as hex text)\n", what, path, bad);
        return MG_EXIT_INPUT;
    }
    *len = (size_t)n;
    return MG_EXIT_OK;
}
