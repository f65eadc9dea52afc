/* `m2mguard broker config`: a complete mosquitto.conf for the working
 * directory, with the m2mguard plugin (docs/mosquitto.md). */
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "workdir.h"
#ifdef MG_HAVE_CA
#include "m2mguard/ca.h"
#endif

#define BROKER_PATH "m2mguard broker"
#define PLUGIN_SO "m2mguard_mosquitto.so"

static const char broker_usage[] =
    "usage: " BROKER_PATH " config [--dir DIR] [--port N] [--out FILE] [--plugin PATH]\n"
    "                              [--host NAME]\n"
    "\n"
    "config  writes a complete mosquitto.conf (Mosquitto 2.0) for the working directory:\n"
    "        one TLS listener on 127.0.0.1:PORT that requires a client certificate of\n"
    "        the m2mguard CA (cafile DIR/ca/chain.pem, crlfile DIR/ca/crl.pem), the\n"
    "        broker's server certificate DIR/broker.crt and key DIR/broker.key (issued\n"
    "        by the CA, CN and DNS name localhost (or --host), IP 127.0.0.1, if they do\n"
    "        not exist yet), and the m2mguard plugin with plugin_opt_store\n"
    "        DIR/m2mguard.db, which decides who may connect and what they may do.\n"
    "        With store = (PostgreSQL) in " MG_CONF_FILE ": plugin_opt_store is its\n"
    "        connection string (the file then holds it: keep it 0600) and\n"
    "        plugin_opt_policy DIR/policy.yaml, which must exist.\n"
    "  --port N       listener port (default 8883)\n"
    "  --out FILE     write there (created 0600; an existing file is refused);\n"
    "                 default: standard output\n"
    "  --plugin PATH  the plugin; default: " PLUGIN_SO " beside this program (a build\n"
    "                 tree), else ../lib/m2mguard/" PLUGIN_SO " relative to it (an\n"
    "                 install)\n"
    "  --host NAME    DNS name in a newly issued broker certificate (default localhost)\n"
    "  --dir DIR      working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "Then: mosquitto -c FILE, as the owner of DIR (the configuration names that user,\n"
    "which mosquitto switches to when started as root). Mosquitto reads crlfile at\n"
    "start and on SIGHUP; the plugin's registry check is what makes a revocation\n"
    "take effect at once.\n"
    "exit: 0 done; 1 --out FILE exists; 2 bad command line; 3 no working directory,\n"
    "      no CA or no plugin; 4 internal failure.\n";

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The plugin beside the executable, else in ../lib/m2mguard. */
static bool find_plugin(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    int k = snprintf(out, cap, "%s/%s", exe, PLUGIN_SO);
    if (k > 0 && (size_t)k < cap && exists(out))
        return true;
    k = snprintf(out, cap, "%s/../lib/m2mguard/%s", exe, PLUGIN_SO);
    if (k > 0 && (size_t)k < cap && exists(out)) {
        char real[PATH_MAX];
        if (realpath(out, real) != NULL && strlen(real) < cap)
            memcpy(out, real, strlen(real) + 1);
        return true;
    }
    return false;
}

/* Writable config values must not break the line-based format. */
static bool conf_safe(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static int config(int argc, char **argv)
{
    enum { L_DIR = 256, L_PORT, L_OUT, L_PLUGIN, L_HOST };
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, L_DIR},       {"port", required_argument, NULL, L_PORT},
        {"out", required_argument, NULL, L_OUT},       {"plugin", required_argument, NULL, L_PLUGIN},
        {"host", required_argument, NULL, L_HOST},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *out = NULL, *plugin_arg = NULL, *host = "localhost";
    long port = 8883;
    optind = 1;
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "h", longopts, NULL);
        if (ch == -1)
            break;
        switch (ch) {
        case 'h': fputs(broker_usage, stdout); return MG_EXIT_OK;
        case L_DIR: dir = optarg; break;
        case L_OUT: out = optarg; break;
        case L_PLUGIN: plugin_arg = optarg; break;
        case L_HOST: host = optarg; break;
        case L_PORT: {
            char *end = NULL;
            port = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || port < 1 || port > 65535) {
                fprintf(stderr, BROKER_PATH ": --port: expected 1..65535, got '%s'\n", optarg);
                return MG_EXIT_USAGE;
            }
            break;
        }
        default:
            return mg_cli_usage_error(BROKER_PATH " config",
                                      ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error(BROKER_PATH " config", "no arguments expected");
    if (!conf_safe(host) || host[0] == '\0' || strlen(host) > 253) {
        fprintf(stderr, BROKER_PATH ": --host: invalid name\n");
        return MG_EXIT_USAGE;
    }

    char plugin[MG_PATH_MAX];
    if (plugin_arg != NULL) {
        if (strlen(plugin_arg) >= sizeof(plugin) || !conf_safe(plugin_arg)) {
            fprintf(stderr, BROKER_PATH ": --plugin: invalid path\n");
            return MG_EXIT_USAGE;
        }
        memcpy(plugin, plugin_arg, strlen(plugin_arg) + 1);
        if (!exists(plugin)) {
            fprintf(stderr, BROKER_PATH ": plugin %s: no such file\n", plugin);
            return MG_EXIT_INPUT;
        }
    } else if (!find_plugin(plugin, sizeof(plugin))) {
        fprintf(stderr, BROKER_PATH ": " PLUGIN_SO " not found beside this program nor in "
                        "../lib/m2mguard; give --plugin PATH\n");
        return MG_EXIT_INPUT;
    }

    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    /* realpath writes up to PATH_MAX octets (found by _FORTIFY_SOURCE in the
     * Debian build): resolve into PATH_MAX, then it must fit MG_PATH_MAX */
    char wreal[PATH_MAX], wdir[MG_PATH_MAX];
    if (realpath(w.dir, wreal) == NULL || strlen(wreal) >= sizeof(wdir) || !conf_safe(wreal)) {
        fprintf(stderr, BROKER_PATH ": cannot resolve the working directory %s\n", w.dir);
        mg_workdir_close(&w);
        return MG_EXIT_INPUT;
    }
    memcpy(wdir, wreal, strlen(wreal) + 1);
    char cadir[MG_PATH_MAX + 8], chain[MG_PATH_MAX + 32], crl[MG_PATH_MAX + 32];
    char crt[MG_PATH_MAX + 32], key[MG_PATH_MAX + 32], db[MG_PATH_MAX + MG_CONF_VAL_MAX];
    char policy[MG_PATH_MAX + 32], policy_line[MG_PATH_MAX + 64] = "";
    snprintf(cadir, sizeof(cadir), "%s/ca", wdir);
    snprintf(chain, sizeof(chain), "%s/chain.pem", cadir);
    snprintf(crl, sizeof(crl), "%s/crl.pem", cadir);
    snprintf(crt, sizeof(crt), "%s/broker.crt", wdir);
    snprintf(key, sizeof(key), "%s/broker.key", wdir);
    /* the store the working directory names: DIR/m2mguard.db, or PostgreSQL
     * (m2mguard.conf `store`; the plugin's mg_store_open takes either). Beside
     * a PostgreSQL store there is no directory to find policy.yaml in: the
     * plugin is told where it is. */
    const char *pg = mg_workdir_store_pg(&w);
    snprintf(policy, sizeof(policy), "%s/policy.yaml", wdir);
    if (pg != NULL) {
        if (!conf_safe(pg)) {
            fprintf(stderr, BROKER_PATH ": store in %s: a control character in the connection "
                            "string\n", MG_CONF_FILE);
            mg_workdir_close(&w);
            return MG_EXIT_INPUT;
        }
        if (!exists(policy)) {
            fprintf(stderr, BROKER_PATH ": the store is PostgreSQL (store in %s): the plugin "
                            "reads the command policy from %s, which does not exist; create it "
                            "(docs/commands.md), then run this again\n", MG_CONF_FILE, policy);
            mg_workdir_close(&w);
            return MG_EXIT_INPUT;
        }
        snprintf(db, sizeof(db), "%s", pg);
        snprintf(policy_line, sizeof(policy_line), "plugin_opt_policy %s\n", policy);
    } else {
        snprintf(db, sizeof(db), "%s/" MG_DB_FILE, wdir);
    }
    if (!exists(chain) || !exists(crl)) {
        fprintf(stderr, BROKER_PATH ": no CA in %s (run 'm2mguard ca init' first)\n", cadir);
        mg_workdir_close(&w);
        return MG_EXIT_INPUT;
    }
    if (!exists(crt) || !exists(key)) {
#ifdef MG_HAVE_CA
        char why[256] = "";
        mg_ca *ca = NULL;
        mg_err e = mg_ca_open(cadir, w.store, &ca, why, sizeof(why));
        if (e == MG_OK) {
            const char *dns[] = {host, NULL};
            const char *ips[] = {"127.0.0.1", NULL};
            e = mg_ca_issue_server(ca, host, dns, ips, 365, key, crt, why, sizeof(why));
            mg_ca_close(ca);
        }
        if (e != MG_OK) {
            fprintf(stderr, BROKER_PATH ": cannot issue the broker certificate: %s\n", why);
            mg_workdir_close(&w);
            return e == MG_ERR_ARG || e == MG_ERR_STATE ? MG_EXIT_INPUT : MG_EXIT_INTERNAL;
        }
        fprintf(stderr, BROKER_PATH ": issued %s (key %s)\n", crt, key);
#else
        fprintf(stderr, BROKER_PATH ": %s or %s missing and this build has no CA library\n", crt,
                key);
        mg_workdir_close(&w);
        return MG_EXIT_INPUT;
#endif
    }
    mg_workdir_close(&w);

    /* Started as root, mosquitto switches to `user`; the store and the keys are
     * readable only by their owner, so that must be this user. */
    const struct passwd *pw = getpwuid(geteuid());
    if (pw == NULL || !conf_safe(pw->pw_name) || strchr(pw->pw_name, ' ') != NULL) {
        fprintf(stderr, BROKER_PATH ": cannot name the current user\n");
        return MG_EXIT_INTERNAL;
    }
    char text[8192];
    int n = snprintf(
        text, sizeof(text),
        "# mosquitto.conf written by `m2mguard broker config` for %s\n"
        "# Mosquitto 2.0. The m2mguard plugin decides every connection and every\n"
        "# publish/subscribe from the registry (docs/mosquitto.md).\n"
        "# the owner of the working directory (mosquitto started as root switches to it)\n"
        "user %s\n"
        "per_listener_settings false\n"
        "# Clients authenticate with their certificate only; the plugin's verdict\n"
        "# is final (with a plugin that answers, allow_anonymous is not consulted).\n"
        "allow_anonymous false\n"
        "persistence false\n"
        "set_tcp_nodelay true\n"
        "\n"
        "listener %ld 127.0.0.1\n"
        "cafile %s\n"
        "certfile %s\n"
        "keyfile %s\n"
        "# read at start and on SIGHUP; the plugin re-checks revocation at once\n"
        "crlfile %s\n"
        "require_certificate true\n"
        "use_identity_as_username false\n"
        "tls_version tlsv1.2\n"
        "\n"
        "plugin %s\n"
        "plugin_opt_store %s\n"
        "plugin_opt_max_payload 4096\n"
        "plugin_opt_rate 20\n"
        "plugin_opt_burst 40\n"
        "plugin_opt_cmd_timeout 30\n"
        "plugin_opt_poll_ms 500\n"
        "%s",
        wdir, pw->pw_name, port, chain, crt, key, crl, plugin, db, policy_line);
    mg_wipe(db, sizeof(db)); /* a PostgreSQL connection string may hold a password */
    if (n < 0 || (size_t)n >= sizeof(text)) {
        fprintf(stderr, BROKER_PATH ": configuration too long\n");
        mg_wipe(text, sizeof(text));
        return MG_EXIT_INTERNAL;
    }
    if (out == NULL) {
        fputs(text, stdout);
        mg_wipe(text, sizeof(text));
        return fflush(stdout) == 0 ? MG_EXIT_OK : MG_EXIT_INTERNAL;
    }
    rc = mg_file_create(out, text, (size_t)n, 0600);
    mg_wipe(text, sizeof(text));
    return rc;
}

static const mg_cmd broker_table[] = {
    {"config", config, "write a mosquitto.conf with the m2mguard plugin"},
};

int mg_cmd_broker(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(broker_usage, stdout);
        return MG_EXIT_OK;
    }
    return mg_cli_dispatch(BROKER_PATH, broker_table, sizeof(broker_table) / sizeof(broker_table[0]),
                           argc - 1, argv + 1);
}
