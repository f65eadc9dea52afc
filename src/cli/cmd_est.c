/* `m2mguard est run`: the EST enrolment server (include/m2mguard/est.h, docs/est.md). */
#ifdef MG_HAVE_EST
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/ca.h"
#include "m2mguard/est.h"
#include "m2mguard/log.h"
#include "workdir.h"

#define EST_RUN "m2mguard est run"

static const char est_run_usage[] =
    "usage: " EST_RUN " [--dir DIR] [--listen ADDR:PORT] [--cert FILE --key FILE]\n"
    "                        [--factory-ca FILE]\n"
    "\n"
    "Runs the EST server (RFC 7030, RFC 8951) of the CA in DIR/ca over HTTPS (TLS 1.2\n"
    "or 1.3; a client certificate is requested, not required):\n"
    "  GET  /.well-known/est/cacerts         the issuing and root CA certificates\n"
    "  GET  /.well-known/est/csrattrs        the key and signature the CA wants\n"
    "  POST /.well-known/est/simpleenroll    first enrolment: HTTP Basic with the device\n"
    "       name and its one-time enrolment token (device add --enrol-token), or a\n"
    "       client certificate of the manufacturer CA (--factory-ca) whose CN is the\n"
    "       device name\n"
    "  POST /.well-known/est/simplereenroll  renewal with the device's current valid\n"
    "       certificate as the TLS client certificate\n"
    "Every refusal is a security event (bearer est; rate-limited per source).\n"
    "Prints 'est: listening on https://ADDR:PORT' once it accepts connections and\n"
    "stops on SIGTERM or SIGINT.\n"
    "\n"
    "Options (defaults from DIR/m2mguard.conf, then the built-in ones):\n"
    "  --dir DIR          working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "  --listen A:P       address and port, key est_listen (127.0.0.1:8443); [::1]:P for IPv6\n"
    "  --cert FILE        PEM server certificate (`m2mguard ca server`), key est_cert\n"
    "                     (DIR/est-server.crt); relative names are taken in DIR\n"
    "  --key FILE         its PEM key, mode 0600, key est_key (DIR/est-server.key)\n"
    "  --factory-ca FILE  PEM manufacturer CA: enables factory-certificate enrolment,\n"
    "                     key est_factory_ca (none)\n"
    "Messages go through the log: log (stderr|syslog|journal), log_level (info);\n"
    "\"est: listening on ...\" is printed on standard output.\n"
    "Configuration only: est_max_body (16384 octets, 256..1048576; larger bodies get\n"
    "413), est_max_conn (64), est_max_conn_per_ip (8), est_timeout_s (10),\n"
    "est_events_per_min (30 refusal events written per source and minute; more are\n"
    "counted, not written), est_events_burst (10), est_crl_check_s (600: every so\n"
    "many seconds the CA's CRL is rewritten if missing or a third of its period is\n"
    "left; 0 never).\n"
    "\n"
    "exit: 0 stopped by a signal; 2 bad command line; 3 bad working directory,\n"
    "      configuration, CA, certificate or key; 4 cannot listen or internal error.\n";

static bool conf_size(const mg_workdir *w, const char *key, size_t dflt, size_t max, size_t *out)
{
    const char *v = mg_conf_get(w, key, NULL);
    *out = dflt;
    if (v == NULL || *v == '\0')
        return true;
    errno = 0;
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x > max) {
        fprintf(stderr, EST_RUN ": %s = '%s' is not a number up to %zu\n", key, v, max);
        return false;
    }
    *out = (size_t)x;
    return true;
}

/* A relative file name is taken in the working directory. */
static int in_dir(const mg_workdir *w, const char *name, char *out, size_t cap)
{
    if (name[0] == '/') {
        if ((size_t)snprintf(out, cap, "%s", name) >= cap)
            return MG_EXIT_INPUT;
        return MG_EXIT_OK;
    }
    return mg_workdir_file(w, name, out, cap);
}

static int est_run(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},    {"listen", required_argument, NULL, 'l'},
        {"cert", required_argument, NULL, 'c'},   {"key", required_argument, NULL, 'k'},
        {"factory-ca", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *listen = NULL, *cert = NULL, *key = NULL, *factory = NULL;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 'l': listen = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'f': factory = optarg; break;
        case 'h': fputs(est_run_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error(EST_RUN, "unknown option or missing argument");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error(EST_RUN, "no arguments expected");
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    char cert_path[MG_PATH_MAX], key_path[MG_PATH_MAX], fac_path[MG_PATH_MAX], ca_dir[MG_PATH_MAX];
    mg_est_opts o;
    memset(&o, 0, sizeof(o));
    o.listen = listen != NULL ? listen : mg_conf_get(&w, "est_listen", "127.0.0.1:8443");
    if (cert == NULL)
        cert = mg_conf_get(&w, "est_cert", "est-server.crt");
    if (key == NULL)
        key = mg_conf_get(&w, "est_key", "est-server.key");
    if (factory == NULL)
        factory = mg_conf_get(&w, "est_factory_ca", "");
    size_t max_body = 0, conn = 0, per_ip = 0, timeout = 0, evpm = 0, burst = 0, crl_s = 0;
    bool ok = conf_size(&w, "est_max_body", MG_EST_MAX_BODY_DEFAULT, (size_t)1024 * 1024, &max_body) &&
              conf_size(&w, "est_max_conn", 64, 10000, &conn) &&
              conf_size(&w, "est_max_conn_per_ip", 8, 10000, &per_ip) &&
              conf_size(&w, "est_timeout_s", 10, 3600, &timeout) &&
              conf_size(&w, "est_events_per_min", 30, 60000, &evpm) &&
              conf_size(&w, "est_events_burst", 10, 100000, &burst) &&
              conf_size(&w, "est_crl_check_s", 600, 86400, &crl_s);
    if (!ok || in_dir(&w, cert, cert_path, sizeof(cert_path)) != MG_EXIT_OK ||
        in_dir(&w, key, key_path, sizeof(key_path)) != MG_EXIT_OK ||
        (factory[0] != '\0' && in_dir(&w, factory, fac_path, sizeof(fac_path)) != MG_EXIT_OK) ||
        mg_workdir_file(&w, "ca", ca_dir, sizeof(ca_dir)) != MG_EXIT_OK) {
        mg_workdir_close(&w);
        return MG_EXIT_INPUT;
    }
    o.cert_file = cert_path;
    o.key_file = key_path;
    o.factory_ca = factory[0] != '\0' ? fac_path : NULL;
    o.max_body = max_body;
    o.conn_limit = (unsigned)conn;
    o.per_ip_limit = (unsigned)per_ip;
    o.timeout_s = (unsigned)timeout;
    o.ev_per_min = (unsigned)evpm;
    o.ev_burst = (unsigned)burst;

    char why[256] = "";
    mg_ca *ca = NULL;
    mg_log_dest ldest = MG_LOG_TO_STDERR;
    mg_log_level llevel = MG_LOG_INFO;
    (void)mg_log_dest_parse(mg_conf_get(&w, "log", "stderr"), &ldest); /* checked by the table */
    (void)mg_log_level_parse(mg_conf_get(&w, "log_level", "info"), &llevel);
    mg_log_open("m2mguard", ldest, llevel);
    mg_err e = mg_ca_open(ca_dir, w.store, &ca, why, sizeof(why));
    if (e != MG_OK) {
        fprintf(stderr, EST_RUN ": cannot open the CA in %s: %s (run `m2mguard ca init`)\n",
                ca_dir, why);
        mg_workdir_close(&w);
        return MG_EXIT_INPUT;
    }
    if (mg_cli_catch_stop() != 0) {
        fprintf(stderr, EST_RUN ": cannot install signal handlers\n");
        mg_ca_close(ca);
        mg_workdir_close(&w);
        return MG_EXIT_INTERNAL;
    }
    mg_est *est = NULL;
    e = mg_est_start(ca, w.store, &o, &est, why, sizeof(why));
    if (e != MG_OK) {
        mg_log(MG_LOG_ERROR, EST_RUN, "%s", why);
        mg_ca_close(ca);
        mg_workdir_close(&w);
        return e == MG_ERR_STATE ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
    }
    /* the address part of --listen, the port MHD bound */
    char host[64] = "127.0.0.1";
    const char *colon = strrchr(o.listen, ':');
    if (colon != NULL && (size_t)(colon - o.listen) < sizeof(host)) {
        memcpy(host, o.listen, (size_t)(colon - o.listen));
        host[colon - o.listen] = '\0';
    }
    /* on standard output: scripts wait for it (the journal takes it under systemd) */
    printf("est: listening on https://%s:%u\n", host, (unsigned)mg_est_port(est));
    fflush(stdout);
    /* The CRL is rewritten before it expires (RFC 5280 5.1.2.5 nextUpdate):
     * every est_crl_check_s seconds (0: never) this thread checks it, with a
     * CA and a store handle of its own (the server's belong to its thread). */
    mg_workdir w2;
    mg_ca *crl_ca = NULL;
    if (crl_s > 0 && mg_workdir_open(dir, &w2) == MG_EXIT_OK) {
        if (mg_ca_open(ca_dir, w2.store, &crl_ca, why, sizeof(why)) != MG_OK) {
            mg_log(MG_LOG_WARNING, "est", "no CRL refresh: %s", why);
            mg_workdir_close(&w2);
        }
    } else if (crl_s > 0) {
        mg_log(MG_LOG_WARNING, "est", "no CRL refresh: the working directory does not open twice");
    }
    int64_t next_crl = mg_mono_ms();
    while (!mg_cli_stop) {
        if (crl_ca != NULL && mg_mono_ms() >= next_crl) {
            bool rewritten = false;
            if (mg_ca_crl_refresh(crl_ca, &rewritten, why, sizeof(why)) != MG_OK)
                mg_log(MG_LOG_ERROR, "est", "CRL refresh failed: %s", why);
            else if (rewritten)
                mg_log(MG_LOG_NOTICE, "est", "CRL rewritten (missing, unreadable or a third of its period left)");
            next_crl = mg_mono_ms() + (int64_t)crl_s * 1000;
        }
        struct timespec ts = {0, 100L * 1000 * 1000};
        (void)nanosleep(&ts, NULL);
    }
    if (crl_ca != NULL) {
        mg_ca_close(crl_ca);
        mg_workdir_close(&w2);
    }
    uint64_t sup = mg_est_events_suppressed(est);
    mg_est_stop(est);
    mg_ca_close(ca);
    mg_workdir_close(&w);
    mg_log(MG_LOG_NOTICE, "est", "stopped (%llu refusal events suppressed by the rate limit)",
           (unsigned long long)sup);
    mg_log_close();
    return MG_EXIT_OK;
}

static const mg_cmd est_table[] = {
    {"run", est_run, "run the EST enrolment server (RFC 7030) of the CA"},
};

int mg_cmd_est(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard est", est_table, sizeof(est_table) / sizeof(est_table[0]),
                           argc - 1, argv + 1);
}
#else
typedef int mg_cmd_est_unused; /* ISO C: a translation unit is not empty */
#endif
