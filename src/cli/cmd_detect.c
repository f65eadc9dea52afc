/* `m2mguard detect run|defaults`: the detector over the working directory's store. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/detect.h"
#include "m2mguard/log.h"
#include "metrics.h" /* the gateway's metrics server (src/gateway/metrics.h) */
#include "workdir.h"

#define DETECT_PATH "m2mguard detect"

static const char run_usage[] =
    "usage: " DETECT_PATH " run [--rules FILE] [--poll-ms N] [--once] [--dry-run] [--dir DIR]\n"
    "\n"
    "Follows the security events of the working directory's store (every bearer writes\n"
    "there), evaluates the rules (the built-in set, or FILE over it: docs/detect.md) and\n"
    "records alerts; the responses the rule names are carried out, except that evidence\n"
    "that is not authenticated never acts on a device (it throttles the source instead).\n"
    "Resumes after the last event it processed (\"detect_cursor\" in the store).\n"
    "Prints one line per new alert on stderr:\n"
    "  alert ID RULE SCOPE KEY SEVERITY: SUMMARY -> RESPONSE\n"
    "  --rules FILE   YAML rules (default: m2mguard.conf detect_rules, else built-in)\n"
    "  --poll-ms N    poll the store every N ms, 10..60000 (default 250)\n"
    "  --once         process the events there are, then exit\n"
    "  --dry-run      record alerts, carry out no response\n"
    "  --dir DIR      working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "m2mguard.conf keys: detect_rules, detect_block_s (throttle/block seconds, default 600),\n"
    "detect_webhook_url, detect_webhook_secret (file, 0600), detect_syslog (yes|no),\n"
    "detect_mqtt_host, detect_mqtt_port, detect_mqtt_topic, detect_mqtt_cafile,\n"
    "detect_mqtt_cert, detect_mqtt_key. The CA for revocations is DIR/ca when it exists.\n"
    "Alerts and messages go through the log: log (stderr|syslog|journal), log_level\n"
    "(error|warning|notice|info|debug; docs/operations.md \"Logging\").\n"
    "detect_metrics_listen = 127.0.0.1:PORT serves Prometheus metrics at /metrics\n"
    "(docs/metrics.md; off by default, not with --once).\n"
    "Stops on SIGINT or SIGTERM (exit 0).\n"
    "exit: 0 done; 2 bad command line; 3 no working directory or bad rules file;\n"
    "      4 store or internal failure.\n";

static const char defaults_usage[] =
    "usage: " DETECT_PATH " defaults\n"
    "\n"
    "Prints the built-in rules as YAML (the format of --rules, docs/detect.md); the\n"
    "output loads back as the same rules.\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prometheus metrics of the detector (detect_metrics_listen, docs/metrics.md). */
static size_t detect_metrics(void *ctx, char *out, size_t cap)
{
    const mg_detect *d = ctx;
    mg_detect_stats st = mg_detect_get_stats(d);
    int n = snprintf(out, cap,
                     "# HELP m2mguard_detect_events_total Events the detector has read.\n"
                     "# TYPE m2mguard_detect_events_total counter\n"
                     "m2mguard_detect_events_total %" PRIu64 "\n"
                     "# HELP m2mguard_detect_alerts_total Alerts raised.\n"
                     "# TYPE m2mguard_detect_alerts_total counter\n"
                     "m2mguard_detect_alerts_total %" PRIu64 "\n"
                     "# HELP m2mguard_detect_responses_total Responses carried out.\n"
                     "# TYPE m2mguard_detect_responses_total counter\n"
                     "m2mguard_detect_responses_total %" PRIu64 "\n"
                     "# HELP m2mguard_detect_device_responses_refused_total Device responses refused: "
                     "evidence not authenticated.\n"
                     "# TYPE m2mguard_detect_device_responses_refused_total counter\n"
                     "m2mguard_detect_device_responses_refused_total %" PRIu64 "\n"
                     "# HELP m2mguard_detect_windows Live window states.\n"
                     "# TYPE m2mguard_detect_windows gauge\n"
                     "m2mguard_detect_windows %zu\n"
                     "# HELP m2mguard_detect_window_memory_bytes Octets held by window states.\n"
                     "# TYPE m2mguard_detect_window_memory_bytes gauge\n"
                     "m2mguard_detect_window_memory_bytes %zu\n",
                     st.events, st.alerts, st.responses, st.suppressed_responses, st.windows, st.memory);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Sleeps ms, serving the metrics meanwhile (m NULL: a plain sleep). */
static void idle_ms(mg_metrics_server *m, long ms)
{
    struct pollfd pfd[MG_METRICS_POLLFDS];
    size_t n = mg_metrics_pollfds(m, pfd, MG_METRICS_POLLFDS);
    (void)poll(n > 0 ? pfd : NULL, (nfds_t)n, (int)ms);
    mg_metrics_run(m);
}

typedef struct print_ctx {
    int64_t last;
    bool print;
} print_ctx;

static bool print_alert(void *ctx, const mg_alert *a)
{
    print_ctx *c = ctx;
    c->last = a->id;
    if (!c->print)
        return true;
    /* one log line; the facade escapes what an attacker chose (source, summary) */
    char who[sizeof(a->source) + 32];
    if (a->device_id != 0)
        (void)snprintf(who, sizeof(who), "device=%" PRId64, a->device_id);
    else if (a->source[0] != '\0')
        (void)snprintf(who, sizeof(who), "source=%s", a->source);
    else
        (void)snprintf(who, sizeof(who), "fleet");
    mg_log(MG_LOG_WARNING, NULL, "alert %" PRId64 " %s %s %s %s%s: %s -> %s", a->id, a->rule, a->scope,
           who, a->severity, a->authenticated ? " authenticated" : "", a->summary, a->response);
    return true;
}

static const char *conf_or_null(const mg_workdir *w, const char *key)
{
    const char *v = mg_conf_get(w, key, NULL);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool conf_int(const mg_workdir *w, const char *key, long dflt, long lo, long hi, long *out)
{
    const char *v = mg_conf_get(w, key, NULL);
    if (v == NULL || v[0] == '\0') {
        *out = dflt;
        return true;
    }
    errno = 0;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, DETECT_PATH ": m2mguard.conf %s: expected %ld..%ld\n", key, lo, hi);
        return false;
    }
    *out = x;
    return true;
}

int mg_cli_detect_cfg(const mg_workdir *w, const char *rules, bool dry_run, mg_detect_cfg *cfg,
                      char *ca_dir)
{
    long block_s = 600, mqtt_port = 8883;
    if (!conf_int(w, "detect_block_s", 600, 1, 30L * 86400, &block_s) ||
        !conf_int(w, "detect_mqtt_port", 8883, 1, 65535, &mqtt_port))
        return MG_EXIT_USAGE;
    if (mg_workdir_file(w, "ca", ca_dir, MG_PATH_MAX) != MG_EXIT_OK)
        return MG_EXIT_USAGE;
    char probe[MG_PATH_MAX + 16];
    (void)snprintf(probe, sizeof(probe), "%s/ca.conf", ca_dir);
    struct stat st;
    bool have_ca = stat(probe, &st) == 0;
    if (rules == NULL)
        rules = conf_or_null(w, "detect_rules");
    const char *sl = mg_conf_get(w, "detect_syslog", "no");
    memset(cfg, 0, sizeof(*cfg));
    cfg->store = w->store;
    cfg->rules_path = rules;
    cfg->ca_dir = have_ca ? ca_dir : NULL;
    cfg->notify.webhook_url = conf_or_null(w, "detect_webhook_url");
    cfg->notify.webhook_secret = conf_or_null(w, "detect_webhook_secret");
    cfg->notify.syslog = strcmp(sl, "yes") == 0 || strcmp(sl, "true") == 0;
    cfg->notify.mqtt_host = conf_or_null(w, "detect_mqtt_host");
    cfg->notify.mqtt_port = (int)mqtt_port;
    cfg->notify.mqtt_topic = conf_or_null(w, "detect_mqtt_topic");
    cfg->notify.mqtt_cafile = conf_or_null(w, "detect_mqtt_cafile");
    cfg->notify.mqtt_cert = conf_or_null(w, "detect_mqtt_cert");
    cfg->notify.mqtt_key = conf_or_null(w, "detect_mqtt_key");
    cfg->block_s = (int)block_s;
    cfg->dry_run = dry_run;
    return MG_EXIT_OK;
}

static int detect_run(int argc, char **argv)
{
    enum { L_RULES = 256, L_POLL, L_ONCE, L_DRY, L_DIR };
    static const struct option lo[] = {
        {"rules", required_argument, NULL, L_RULES}, {"poll-ms", required_argument, NULL, L_POLL},
        {"once", no_argument, NULL, L_ONCE},         {"dry-run", no_argument, NULL, L_DRY},
        {"dir", required_argument, NULL, L_DIR},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *rules = NULL, *dir = NULL;
    long poll_ms = 250;
    bool once = false, dry = false;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "hC:", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(run_usage, stdout); return MG_EXIT_OK;
        case L_RULES: rules = optarg; break;
        case L_ONCE: once = true; break;
        case L_DRY: dry = true; break;
        case 'C':
        case L_DIR: dir = optarg; break;
        case L_POLL: {
            char *end = NULL;
            errno = 0;
            poll_ms = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || poll_ms < 10 || poll_ms > 60000)
                return mg_cli_usage_error(DETECT_PATH " run", "--poll-ms: expected 10..60000");
            break;
        }
        default:
            return mg_cli_usage_error(DETECT_PATH " run", ch == ':' ? "option needs an argument"
                                                                    : "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error(DETECT_PATH " run", "no arguments expected");
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_detect_cfg cfg;
    char ca_dir[MG_PATH_MAX];
    rc = mg_cli_detect_cfg(&w, rules, dry, &cfg, ca_dir);
    if (rc != MG_EXIT_OK) {
        mg_workdir_close(&w);
        return rc;
    }
    char why[256];
    mg_detect *d = NULL;
    print_ctx pc = {0};
    mg_log_dest ldest = MG_LOG_TO_STDERR;
    mg_log_level llevel = MG_LOG_INFO;
    (void)mg_log_dest_parse(mg_conf_get(&w, "log", "stderr"), &ldest); /* checked by the table */
    (void)mg_log_level_parse(mg_conf_get(&w, "log_level", "info"), &llevel);
    mg_log_open("m2mguard", ldest, llevel);
    /* Commits reach the WAL without a sync each (synchronous=NORMAL): a crash
     * of the process loses nothing; a power loss may take back the last
     * batches, alerts and cursor together, which are then processed again
     * (at least once, docs/detect.md). */
    mg_err e = mg_store_sync_full(w.store, false);
    if (e == MG_OK)
        e = mg_store_alerts(w.store, 0, false, print_alert, &pc); /* last id: print after it */
    if (e == MG_OK)
        e = mg_detect_new(&cfg, &d, why, sizeof(why));
    else
        (void)snprintf(why, sizeof(why), "%s", mg_store_errmsg(w.store));
    if (e != MG_OK) {
        mg_log(MG_LOG_ERROR, DETECT_PATH, "%s", why);
        mg_workdir_close(&w);
        return e == MG_ERR_FORMAT || e == MG_ERR_ARG ? MG_EXIT_INPUT : MG_EXIT_INTERNAL;
    }
    if (!once) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
            mg_log(MG_LOG_ERROR, DETECT_PATH, "sigaction: %s", strerror(errno));
            mg_detect_free(d);
            mg_workdir_close(&w);
            return MG_EXIT_INTERNAL;
        }
    }
    mg_metrics_server *metrics = NULL;
    const char *ml = mg_conf_get(&w, "detect_metrics_listen", "");
    if (!once && ml[0] != '\0') {
        metrics = mg_metrics_start(ml, detect_metrics, d, why, sizeof(why));
        if (metrics == NULL) {
            mg_log(MG_LOG_ERROR, DETECT_PATH, "metrics: %s", why);
            mg_detect_free(d);
            mg_workdir_close(&w);
            return MG_EXIT_INPUT;
        }
        mg_log(MG_LOG_NOTICE, DETECT_PATH, "metrics on http://127.0.0.1:%u/metrics",
               (unsigned)mg_metrics_port(metrics));
    }
    pc.print = true;
    rc = MG_EXIT_OK;
    int64_t last_tick = 0;
    while (!stop_flag) {
        size_t n = 0;
        e = mg_detect_poll(d, 0, &n);
        int64_t now = wall_ms();
        if (e == MG_OK && now - last_tick >= 1000) {
            e = mg_detect_tick(d, now);
            last_tick = now;
        }
        if (e == MG_OK)
            e = mg_store_alerts(w.store, pc.last, false, print_alert, &pc);
        if (e != MG_OK) {
            /* a busy store is retried on the next poll; anything else ends the run */
            mg_log(e == MG_ERR_STORE && !once ? MG_LOG_WARNING : MG_LOG_ERROR, DETECT_PATH, "%s",
                   mg_store_errmsg(w.store));
            if (e != MG_ERR_STORE || once) {
                rc = MG_EXIT_INTERNAL;
                break;
            }
        }
        if (once)
            break;
        idle_ms(metrics, poll_ms);
    }
    mg_metrics_stop(metrics);
    mg_detect_stats st = mg_detect_get_stats(d);
    mg_log(MG_LOG_NOTICE, DETECT_PATH,
           "%" PRIu64 " events, %" PRIu64 " alerts, %" PRIu64
           " responses, %" PRIu64 " device responses refused (evidence not authenticated)",
           st.events, st.alerts, st.responses, st.suppressed_responses);
    mg_detect_free(d);
    mg_workdir_close(&w);
    mg_log_close();
    return rc;
}

static int detect_defaults(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(defaults_usage, stdout);
        return MG_EXIT_OK;
    }
    if (argc != 1)
        return mg_cli_usage_error(DETECT_PATH " defaults", "no arguments expected");
    if (mg_detect_write_defaults(stdout) != MG_OK || fflush(stdout) != 0)
        return MG_EXIT_INTERNAL;
    return MG_EXIT_OK;
}

static const mg_cmd detect_cmds[] = {
    {"run", detect_run, "follow the events, raise alerts, carry out responses"},
    {"defaults", detect_defaults, "print the built-in rules as YAML"},
};

int mg_cmd_detect(int argc, char **argv)
{
    return mg_cli_dispatch(DETECT_PATH, detect_cmds, sizeof(detect_cmds) / sizeof(detect_cmds[0]),
                           argc - 1, argv + 1);
}
