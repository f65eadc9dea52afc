/* `m2mguard config check` and `m2mguard config keys`: the configuration file
 * against the table of known keys (workdir.c, docs/operations.md). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "workdir.h"

static const char check_usage[] =
    "usage: m2mguard config check [--dir DIR] [FILE]\n\n"
    "Checks a configuration file (default: DIR/m2mguard.conf; DIR: --dir, else\n"
    "$M2MGUARD_HOME, else ./m2mguard-data) as every command reads it at start:\n"
    "key=value lines, each key known (m2mguard config keys) and given once, each\n"
    "value of its type and range, the file private (mode 0600). Every bad line is\n"
    "reported as FILE:LINE: key: why; values of secret keys are never shown.\n"
    "Nothing is opened but the file (no store, no peer).\n\n"
    "exit: 0 the file is valid, 1 it is not (or cannot be read), 2 usage\n";

static const char keys_usage[] =
    "usage: m2mguard config keys [--markdown]\n\n"
    "Prints the known configuration keys: key, type, default, who reads it, whether\n"
    "`gateway run` applies a change on SIGHUP (live) or needs a restart, and what it\n"
    "does. --markdown: the table of docs/operations.md.\n\n"
    "exit: 0, 2 usage\n";

static int config_check(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 'h': fputs(check_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard config check", "unknown option");
        }
    }
    if (argc - optind > 1)
        return mg_cli_usage_error("m2mguard config check", "at most one FILE");
    static mg_workdir w; /* large: not on the stack */
    memset(&w, 0, sizeof(w));
    char path[MG_PATH_MAX + 32];
    if (optind < argc) {
        (void)snprintf(path, sizeof(path), "%s", argv[optind]);
    } else {
        if (mg_workdir_path(dir, w.dir, sizeof(w.dir)) != MG_EXIT_OK ||
            mg_workdir_file(&w, MG_CONF_FILE, path, sizeof(path)) != MG_EXIT_OK)
            return MG_EXIT_USAGE;
    }
    unsigned errors = 0;
    int rc = mg_conf_check_file(&w, path, &errors);
    size_t n = w.nconf;
    mg_workdir_close(&w); /* wipes the values (the SMPP password) */
    if (rc != MG_EXIT_OK) {
        fprintf(stderr, "m2mguard config check: %s: %u error%s\n", path, errors,
                errors == 1 ? "" : "s");
        return MG_EXIT_REJECT;
    }
    printf("%s: valid (%zu setting%s)\n", path, n, n == 1 ? "" : "s");
    return MG_EXIT_OK;
}

static const char *type_name(const mg_conf_key *k, char *buf, size_t cap)
{
    switch (k->type) {
    case MG_CONF_NUM: (void)snprintf(buf, cap, "%lld..%lld", k->lo, k->hi); return buf;
    case MG_CONF_ENUM: (void)snprintf(buf, cap, "%s", k->choices); return buf;
    case MG_CONF_MSISDN: return "+E.164";
    case MG_CONF_LOOPBACK: return "127.x.x.x:port";
    default: return "text";
    }
}

/* The Markdown table of docs/operations.md (between its markers). */
void mg_conf_keys_markdown(FILE *f);
void mg_conf_keys_markdown(FILE *f)
{
    char t[96];
    fputs("| key | type | default | read by | SIGHUP | meaning |\n|---|---|---|---|---|---|\n", f);
    for (size_t i = 0; i < mg_conf_nkeys; i++) {
        const mg_conf_key *k = &mg_conf_keys[i];
        char ty[128];
        const char *raw = type_name(k, t, sizeof(t));
        size_t o = 0;
        for (const char *c = raw; *c != '\0' && o + 3 < sizeof(ty); c++) {
            if (*c == '|') /* a table cell: escaped */
                ty[o++] = '\\';
            ty[o++] = *c;
        }
        ty[o] = '\0';
        const char *q = k->dflt[0] != '\0' ? "`" : "";
        const char *tq = k->type == MG_CONF_STR ? "" : "`";
        fprintf(f, "| `%s` | %s%s%s | %s%s%s | %s | %s | %s |\n", k->key, tq, ty, tq, q,
                k->dflt[0] != '\0' ? k->dflt : "none", q, k->user,
                k->user[0] == 'g' ? (k->live ? "live" : "restart") : "-", k->doc);
    }
}

static int config_keys(int argc, char **argv)
{
    static const struct option lo[] = {
        {"markdown", no_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool md = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': md = true; break;
        case 'h': fputs(keys_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard config keys", "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error("m2mguard config keys", "no arguments expected");
    if (md) {
        mg_conf_keys_markdown(stdout);
        return MG_EXIT_OK;
    }
    char t[96];
    for (size_t i = 0; i < mg_conf_nkeys; i++) {
        const mg_conf_key *k = &mg_conf_keys[i];
        printf("%s\t%s\t%s\t%s\t%s\n", k->key, type_name(k, t, sizeof(t)),
               k->dflt[0] != '\0' ? k->dflt : "-", k->user,
               k->user[0] == 'g' ? (k->live ? "live" : "restart") : "-");
    }
    return MG_EXIT_OK;
}

static const mg_cmd config_table[] = {
    {"check", config_check, "check a configuration file: unknown keys, bad values (FILE:LINE)"},
    {"keys", config_keys, "list the known configuration keys (--markdown: the docs' table)"},
};

int mg_cmd_config(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard config", config_table,
                           sizeof(config_table) / sizeof(config_table[0]), argc - 1, argv + 1);
}
