/* `m2mguard gateway run`, `m2mguard send`, `m2mguard key rotate`. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "daemon.h"
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "m2mguard/cose.h"
#include "m2mguard/keyref.h"
#include "m2mguard/log.h"
#include "m2mguard/policy.h"
#include "m2mguard/sms.h"
#include "m2mguard/smpp.h"
#include "workdir.h"

/* Text of a command: what the store keeps (the profile's limit, MG_SMS_DATA_MAX
 * octets in up to MG_SMS_MAX_PARTS concatenated SMS, is higher). */
#define MG_COMMAND_TEXT_MAX 255

/* ---- gateway run -------------------------------------------------------------- */

static unsigned conf_uint(const mg_workdir *w, const char *key, unsigned dflt, bool *bad)
{
    const char *v = mg_conf_get(w, key, NULL);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    if (*end != '\0' || x > 1000000000ul) {
        fprintf(stderr, "m2mguard gateway run: %s = '%s' is not a number\n", key, v);
        *bad = true;
        return dflt;
    }
    return (unsigned)x;
}

/* The settings `gateway run` may change while running (SIGHUP, mg_gw_set_limits);
 * *bad after a message when one is not a number. */
static void read_limits(const mg_workdir *w, mg_gw_cfg *g, bool *bad)
{
    g->por_timeout_s = (int)conf_uint(w, "por_timeout_s", 120, bad);
    g->partial_age_s = (int)conf_uint(w, "partial_age_s", 60, bad);
    g->lookups_per_s = conf_uint(w, "lookups_per_s", 2000, bad);
    g->events_per_s = conf_uint(w, "events_per_s", 200, bad);
    g->events_burst = conf_uint(w, "events_burst", 10, bad);
    g->events_aggregate_s = conf_uint(w, "events_aggregate_s", 10, bad);
    g->events_new_sources = conf_uint(w, "events_new_sources", 100, bad);
    unsigned days = conf_uint(w, "events_retention_days", 90, bad);
    g->events_retention_days = days == 0 ? -1 : (int)(days > 36500 ? 36500 : days);
    unsigned max_rows = conf_uint(w, "events_max_rows", 2000000, bad);
    g->events_max_rows = max_rows == 0 ? -1 : (int64_t)max_rows;
    g->throttle_per_min = conf_uint(w, "throttle_per_min", 6, bad);
    g->cntr_jump_max = conf_uint(w, "cntr_jump_max", 1000, bad);
}

/* log and log_level (checked by the configuration table). */
static void open_log(const mg_workdir *w)
{
    mg_log_dest dest = MG_LOG_TO_STDERR;
    mg_log_level level = MG_LOG_INFO;
    (void)mg_log_dest_parse(mg_conf_get(w, "log", "stderr"), &dest);
    (void)mg_log_level_parse(mg_conf_get(w, "log_level", "info"), &level);
    mg_log_open("m2mguard", dest, level);
}

/* SIGHUP: re-read the configuration (docs/operations.md "Reloading"). */
static volatile sig_atomic_t gw_reload;
static void on_hup(int sig)
{
    (void)sig;
    gw_reload = 1;
}

typedef struct reload_ctx {
    const mg_workdir *w; /* the configuration in force for what needs a restart */
    const char *path;    /* the file to read again */
} reload_ctx;

static int gw_reload_conf(void *ctx, mg_gw_cfg *limits)
{
    reload_ctx *r = ctx;
    static mg_workdir fresh; /* large: not on the stack */
    memset(&fresh, 0, sizeof(fresh));
    bool bad = false;
    int rc = mg_conf_load(&fresh, r->path); /* file:line messages on stderr */
    if (rc == MG_EXIT_OK)
        read_limits(&fresh, limits, &bad);
    mg_log_level level = MG_LOG_INFO;
    if (rc == MG_EXIT_OK && !bad && !mg_log_level_parse(mg_conf_get(&fresh, "log_level", "info"), &level))
        bad = true;
    if (rc != MG_EXIT_OK || bad) {
        mg_wipe(&fresh, sizeof(fresh));
        mg_log(MG_LOG_WARNING, "gateway", "reload: %s is not valid", r->path);
        return 1;
    }
    /* what cannot change while running: kept, and said so (never the values) */
    for (size_t i = 0; i < mg_conf_nkeys; i++) {
        const mg_conf_key *k = &mg_conf_keys[i];
        if (k->live || (strstr(k->user, "gateway") == NULL && strcmp(k->user, "all") != 0))
            continue;
        if (strcmp(mg_conf_get(r->w, k->key, ""), mg_conf_get(&fresh, k->key, "")) != 0)
            mg_log(MG_LOG_WARNING, "gateway", "reload: %s changed: it needs a restart; the old value stays",
                   k->key);
    }
    mg_log_set_level(level);
    mg_wipe(&fresh, sizeof(fresh)); /* the SMPP password */
    return 0;
}

static int gateway_run(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *config = NULL;
    mg_gw_daemon_cfg dc;
    memset(&dc, 0, sizeof(dc));
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 'c': config = optarg; break;
        case 'v': dc.verbose = true; break;
        case 'h':
            printf("usage: m2mguard gateway run [--dir DIR] [--config FILE] [--verbose]\n\n"
                   "Runs the SMS gateway: binds to the SMSC (SMPP 3.4, as a transceiver or as a\n"
                   "transmitter+receiver pair: smsc_bind) named in the configuration, accepts secured\n"
                   "telemetry from registered devices, sends queued commands and tracks their\n"
                   "delivery receipts and proofs of receipt, records security events. Accepted\n"
                   "messages are appended as JSON lines to the file named by `output` (relative to\n"
                   "the working directory). Stops on SIGTERM or SIGINT after committing.\n"
                   "DIR: --dir, else $M2MGUARD_HOME, else ./m2mguard-data. --config replaces\n"
                   "DIR/m2mguard.conf (keys: docs/operations.md; the events' aggregation, blocks\n"
                   "and retention: events_burst, events_aggregate_s, events_aggregates_max,\n"
                   "events_new_sources, events_per_s, events_retention_days, events_max_rows,\n"
                   "throttle_per_min, blocks_max, cntr_jump_max: docs/gateway.md). Refusals beyond\n"
                   "the burst are "
                   "counted into aggregate rows; sources blocked in the store (bearer sms) are\n"
                   "refused (DROP) or rate-limited (THROTTLE) before any work.\n"
                   "Logging: log (stderr|syslog|journal) and log_level (error..debug). SIGHUP\n"
                   "re-reads the configuration: the rate limits, aggregation, retention,\n"
                   "throttle_per_min, cntr_jump_max, por_timeout_s, partial_age_s and log_level\n"
                   "change at once; a change of any other key is refused with a warning (restart\n"
                   "for it); a bad file keeps the old configuration entirely. metrics_listen =\n"
                   "127.0.0.1:PORT serves Prometheus metrics at /metrics (docs/metrics.md).\n"
                   "Group commits run on a thread of their own (a second store handle) while\n"
                   "the next messages are checked, device look-ups on a third; commit_thread = no:\n"
                   "all on one handle in one thread (docs/gateway.md). device_index = yes (the\n"
                   "default) loads every device with an MSISDN into memory at start, keys still\n"
                   "wrapped (~150 octets a device), and follows the registry's changes (a\n"
                   "look-up sees them 50 ms on): a sender not in the cache costs no store query\n"
                   "(docs/fleet.md).\n\n"
                   "exit: 0 stopped by a signal, 2 usage, 3 bad working directory or configuration,\n"
                   "      4 internal error\n");
            return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard gateway run", "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error("m2mguard gateway run", "no arguments expected");
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    /* the commit thread's handle on the same store (before --config replaces
     * the directory's configuration, which named the store) */
    mg_store *commit_store = NULL, *lookup_store = NULL;
    if ((rc = mg_workdir_open_store(&w, &commit_store)) != MG_EXIT_OK)
        goto out;
    /* and the device look-ups' (a reader: docs/fleet.md "Look-up tail"):
     * with the commit thread only (another handle's commits reset a
     * handle's page cache, so the look-ups then need one of their own) */
    if ((rc = mg_workdir_open_store(&w, &lookup_store)) != MG_EXIT_OK)
        goto out;
    if (config != NULL && (rc = mg_conf_load(&w, config)) != MG_EXIT_OK)
        goto out;
    if (strcmp(mg_conf_get(&w, "commit_thread", "yes"), "no") == 0) {
        mg_workdir_close_store(commit_store); /* commits and look-ups on w.store */
        mg_workdir_close_store(lookup_store);
        commit_store = lookup_store = NULL;
    }
    const char *number = mg_conf_get(&w, "gateway_number", "");
    if (!mg_store_msisdn_valid(number)) {
        fprintf(stderr, "m2mguard gateway run: gateway_number '%s' is not +E164\n", number);
        rc = MG_EXIT_INPUT;
        goto out;
    }
    char out_path[MG_PATH_MAX];
    const char *out_name = mg_conf_get(&w, "output", "inbox.jsonl");
    if (out_name[0] == '/')
        snprintf(out_path, sizeof(out_path), "%s", out_name);
    else if (mg_workdir_file(&w, out_name, out_path, sizeof(out_path)) != MG_EXIT_OK) {
        rc = MG_EXIT_INPUT;
        goto out;
    }
    bool bad = false;
    dc.gw.store = w.store;
    dc.gw.commit_store = commit_store;
    dc.gw.lookup_store = lookup_store;
    dc.gw.gateway_number = number;
    read_limits(&w, &dc.gw, &bad);
    dc.gw.group_commit_max = conf_uint(&w, "group_commit_max", 256, &bad);
    dc.gw.device_index = strcmp(mg_conf_get(&w, "device_index", "yes"), "no") != 0;
    dc.gw.cache_devices = conf_uint(&w, "cache_devices", 16384, &bad);
    dc.gw.cache_unknown = conf_uint(&w, "cache_unknown", 4096, &bad);
    dc.gw.partials_max = conf_uint(&w, "partials_max", 256, &bad);
    dc.gw.aggregates_max = conf_uint(&w, "events_aggregates_max", 4096, &bad);
    dc.gw.blocks_max = conf_uint(&w, "blocks_max", 4096, &bad);
    unsigned port = conf_uint(&w, "smsc_port", 2775, &bad);
    const char *bind = mg_conf_get(&w, "smsc_bind", "transceiver");
    dc.smpp.host = mg_conf_get(&w, "smsc_host", "127.0.0.1");
    dc.smpp.port = (uint16_t)port;
    dc.smpp.system_id = mg_conf_get(&w, "system_id", "m2mguard");
    dc.smpp.password = mg_conf_get(&w, "password", "");
    dc.smpp.system_type = mg_conf_get(&w, "system_type", "");
    dc.smpp.window = conf_uint(&w, "window", 10, &bad);
    dc.smpp.enquire_link_ms = conf_uint(&w, "enquire_link_ms", 30000, &bad);
    dc.smpp.response_timeout_ms = conf_uint(&w, "response_timeout_ms", 10000, &bad);
    dc.smpp.reconnect_min_ms = conf_uint(&w, "reconnect_min_ms", 250, &bad);
    dc.smpp.reconnect_max_ms = conf_uint(&w, "reconnect_max_ms", 30000, &bad);
    dc.smpp_ext.bind_mode = strcmp(bind, "transmitter+receiver") == 0 ? MG_SMPP_BIND_TX_RX : MG_SMPP_BIND_TRX;
    dc.addr.country_code = mg_conf_get(&w, "smsc_country_code", NULL);
    dc.addr.national_prefix = mg_conf_get(&w, "smsc_national_prefix", NULL);
    dc.addr.intl_prefix = mg_conf_get(&w, "smsc_intl_prefix", NULL);
    dc.addr.out_ton = (uint8_t)conf_uint(&w, "smsc_ton", 1, &bad);
    dc.addr.out_npi = (uint8_t)conf_uint(&w, "smsc_npi", 1, &bad);
    dc.addr.out_plus = strcmp(mg_conf_get(&w, "smsc_plus", "no"), "yes") == 0;
    if (strcmp(bind, "transceiver") != 0 && strcmp(bind, "transmitter+receiver") != 0) {
        fprintf(stderr, "m2mguard gateway run: smsc_bind = '%s': use transceiver or transmitter+receiver\n", bind);
        bad = true;
    }
    if (port == 0 || port > 65535) {
        fprintf(stderr, "m2mguard gateway run: smsc_port = %u: use 1..65535\n", port);
        bad = true;
    }
    if (bad) {
        rc = MG_EXIT_INPUT;
        goto out;
    }
    char pol_path[MG_PATH_MAX], pol_err[300] = "policy.yaml: path too long";
    mg_policy *pol = NULL;
    if (mg_workdir_file(&w, "policy.yaml", pol_path, sizeof(pol_path)) != MG_EXIT_OK ||
        mg_policy_load(pol_path, true, &pol, pol_err, sizeof(pol_err)) != MG_OK) {
        fprintf(stderr, "m2mguard gateway run: %s\n", pol_err);
        rc = MG_EXIT_INPUT;
        goto out;
    }
    dc.gw.policy = pol;
    dc.output_path = out_path;
    dc.stop = &mg_cli_stop;
    dc.metrics_listen = mg_conf_get(&w, "metrics_listen", "");
    char conf_path[MG_PATH_MAX + 32];
    if (config != NULL)
        (void)snprintf(conf_path, sizeof(conf_path), "%s", config);
    else
        (void)mg_workdir_file(&w, MG_CONF_FILE, conf_path, sizeof(conf_path));
    reload_ctx rctx = {&w, conf_path};
    gw_reload = 0;
    dc.reload = &gw_reload;
    dc.reload_fn = gw_reload_conf;
    dc.reload_ctx = &rctx;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_hup;
    (void)sigaction(SIGHUP, &sa, NULL);
    (void)mg_cli_catch_stop();
    open_log(&w);
    rc = mg_gw_daemon_run(&dc);
    mg_log_close();
    mg_policy_free(pol);
    rc = rc == 0 ? MG_EXIT_OK : rc == 3 ? MG_EXIT_INPUT : MG_EXIT_INTERNAL;
out:
    mg_workdir_close_store(commit_store); /* NULL: nothing */
    mg_workdir_close_store(lookup_store);
    mg_workdir_close(&w);
    return rc;
}

static const mg_cmd gateway_table[] = {
    {"run", gateway_run, "run the SMS gateway (SMPP client of the SMSC)"},
};

int mg_cmd_gateway(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard gateway", gateway_table,
                           sizeof(gateway_table) / sizeof(gateway_table[0]), argc - 1, argv + 1);
}

/* ---- send and key rotate ------------------------------------------------------- */

/* Waits until command id leaves QUEUED/SENT/DELIVERED or `secs` pass; prints
 * its state and the bearer it went on (the same states for SMS and MQTT). */
static int wait_command(mg_workdir *w, int64_t id, int secs)
{
    int64_t end = mg_mono_ms() + (int64_t)secs * 1000;
    for (;;) {
        mg_command c;
        mg_err e = mg_store_cmd_get(w->store, id, &c);
        if (e != MG_OK) {
            fprintf(stderr, "command %" PRId64 ": %s\n", id, mg_store_errmsg(w->store));
            return MG_EXIT_INTERNAL;
        }
        const char *via = c.bearer[0] ? c.bearer : "-";
        if (c.state != MG_CMD_QUEUED && c.state != MG_CMD_SENT && c.state != MG_CMD_DELIVERED) {
            printf("command %" PRId64 ": %s%s%s (bearer %s)\n", id, mg_cmd_state_name(c.state),
                   c.detail[0] ? " " : "", c.detail, via);
            return c.state == MG_CMD_DONE ? MG_EXIT_OK : MG_EXIT_REJECT;
        }
        if (mg_mono_ms() >= end || mg_cli_stop) {
            printf("command %" PRId64 ": %s (no outcome yet) (bearer %s)\n", id,
                   mg_cmd_state_name(c.state), via);
            return MG_EXIT_REJECT;
        }
        usleep(100000);
    }
}

#define SEND_SIGNERS_MAX 2
typedef struct q_opts {
    const char *dir;
    int wait;
    const char *bearer; /* send only: "" auto, "sms", "mqtt" */
    bool tap;           /* send only: SMS shoulder-tap before an MQTT command */
    const char *sign[SEND_SIGNERS_MAX]; /* send only: key references */
    size_t n_sign;
    const char *kid[SEND_SIGNERS_MAX]; /* send only: kids, in the order of --sign */
    size_t n_kid;
    long ttl; /* send only: seconds the signed command stays valid */
    int first; /* index of the first positional argument */
} q_opts;

static int q_parse(const char *path, const char *usage, int argc, char **argv, q_opts *o)
{
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},
        {"wait", required_argument, NULL, 'w'},
        {"bearer", required_argument, NULL, 'b'},
        {"tap", no_argument, NULL, 't'},
        {"sign", required_argument, NULL, 's'},
        {"kid", required_argument, NULL, 'k'},
        {"ttl", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool is_send = strcmp(path, "m2mguard send") == 0;
    o->n_sign = 0;
    o->n_kid = 0;
    o->ttl = 3600;
    o->dir = NULL;
    o->wait = -1;
    o->bearer = "";
    o->tap = false;
    o->first = argc;
    optind = 1;
    opterr = 0;
    int ch;
    /* '+': options only before the positional words (a command's own
     * arguments may start with '-') */
    while ((ch = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': o->dir = optarg; break;
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 0 || v > 86400)
                return mg_cli_usage_error(path, "--wait takes seconds (0..86400)");
            o->wait = (int)v;
            break;
        }
        case 'b':
            if (!is_send)
                return mg_cli_usage_error(path, "unknown option");
            if (strcmp(optarg, "auto") == 0)
                o->bearer = "";
            else if (strcmp(optarg, "sms") == 0 || strcmp(optarg, "mqtt") == 0)
                o->bearer = optarg;
            else
                return mg_cli_usage_error(path, "--bearer takes auto, sms or mqtt");
            break;
        case 't':
            if (!is_send)
                return mg_cli_usage_error(path, "unknown option");
            o->tap = true;
            break;
        case 's':
            if (!is_send)
                return mg_cli_usage_error(path, "unknown option");
            if (o->n_sign >= SEND_SIGNERS_MAX)
                return mg_cli_usage_error(path, "--sign at most twice (two signers)");
            o->sign[o->n_sign++] = optarg;
            break;
        case 'k':
            if (!is_send)
                return mg_cli_usage_error(path, "unknown option");
            if (o->n_kid >= SEND_SIGNERS_MAX)
                return mg_cli_usage_error(path, "--kid at most twice (one per --sign)");
            o->kid[o->n_kid++] = optarg;
            break;
        case 'T': {
            if (!is_send)
                return mg_cli_usage_error(path, "unknown option");
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > 30L * 86400)
                return mg_cli_usage_error(path, "--ttl takes seconds (1..2592000)");
            o->ttl = v;
            break;
        }
        case 'h': printf("%s", usage); return -1;
        default: return mg_cli_usage_error(path, "unknown option");
        }
    }
    if (o->n_kid > o->n_sign)
        return mg_cli_usage_error(path, "--kid names the key of a --sign: give --sign first");
    o->first = optind;
    return MG_EXIT_OK;
}

/* ---- signed commands (send --sign) ----------------------------------------------- */

typedef struct find_pub { const uint8_t *pub; size_t len; mg_signer found; int hits; } find_pub;

static bool match_pub(void *ctx, const mg_signer *g)
{
    find_pub *f = ctx;
    if (g->status == MG_SIGNER_ACTIVE && g->pub_len == f->len &&
        memcmp(g->pub, f->pub, f->len) == 0) {
        f->found = *g;
        f->hits++;
    }
    return true;
}

/* Signs tbs with k: ES256 (SHA-256, DER signature converted to raw r||s) or
 * Ed25519 (PureEdDSA); the key may live in a token (EVP_DigestSign). */
/* Builds and signs the command map for d: kid = the first signer (issuer),
 * audience = the device's name, seq = the device's next signed sequence. */
static int sign_command(mg_workdir *w, const q_opts *o, const mg_device *d, const char *text,
                        uint8_t *out, size_t cap, size_t *out_len)
{
    EVP_PKEY *keys[SEND_SIGNERS_MAX] = {NULL, NULL};
    mg_signer who[SEND_SIGNERS_MAX];
    int64_t algs[SEND_SIGNERS_MAX];
    int rc = MG_EXIT_OK;
    for (size_t i = 0; i < o->n_sign && rc == MG_EXIT_OK; i++) {
        char why[256] = "";
        uint8_t pub[MG_SIGNER_PUB_MAX];
        size_t pl = 0;
        if (mg_keyref_load_private(o->sign[i], &keys[i], why, sizeof(why)) != MG_OK) {
            fprintf(stderr, "m2mguard send: --sign %s: %s\n", o->sign[i], why);
            rc = MG_EXIT_INPUT;
            break;
        }
        if (!mg_cli_signer_pub(keys[i], &algs[i], pub, &pl)) {
            fprintf(stderr, "m2mguard send: --sign %s: not a P-256 or Ed25519 key\n", o->sign[i]);
            rc = MG_EXIT_INPUT;
            break;
        }
        if (i < o->n_kid) {
            if (mg_store_signer_get(w->store, o->kid[i], &who[i]) != MG_OK) {
                fprintf(stderr, "m2mguard send: no signer '%s' (m2mguard signer add)\n", o->kid[i]);
                rc = MG_EXIT_INPUT;
            } else if (who[i].pub_len != pl || memcmp(who[i].pub, pub, pl) != 0) {
                fprintf(stderr, "m2mguard send: --sign %s is not the key of signer '%s'\n",
                        o->sign[i], o->kid[i]);
                rc = MG_EXIT_INPUT;
            }
        } else {
            find_pub f = {.pub = pub, .len = pl, .hits = 0};
            if (mg_store_signer_list(w->store, match_pub, &f) != MG_OK) {
                fprintf(stderr, "m2mguard send: %s\n", mg_store_errmsg(w->store));
                rc = MG_EXIT_INTERNAL;
            } else if (f.hits != 1) {
                fprintf(stderr, "m2mguard send: --sign %s: %s (give --kid)\n", o->sign[i],
                        f.hits == 0 ? "no active signer has this key" : "several signers have this key");
                rc = MG_EXIT_INPUT;
            } else
                who[i] = f.found;
        }
    }
    if (rc == MG_EXIT_OK && o->n_sign == 2 && strcmp(who[0].kid, who[1].kid) == 0) {
        fprintf(stderr, "m2mguard send: the two --sign keys are the same signer\n");
        rc = MG_EXIT_USAGE;
    }
    uint64_t seq = 0;
    if (rc == MG_EXIT_OK && mg_store_signed_seq_next(w->store, d->id, &seq) != MG_OK) {
        fprintf(stderr, "m2mguard send: %s\n", mg_store_errmsg(w->store));
        rc = MG_EXIT_INTERNAL;
    }
    uint8_t pl[MG_CMD_MAX_LEN];
    size_t plen = 0;
    if (rc == MG_EXIT_OK) {
        mg_signed_cmd c;
        memset(&c, 0, sizeof(c));
        const char *sp = strchr(text, ' ');
        int64_t t = (int64_t)time(NULL);
        c.kid = (const uint8_t *)who[0].kid;
        c.kid_len = strlen(who[0].kid);
        c.audience = d->name;
        c.audience_len = strlen(d->name);
        c.command = text;
        c.command_len = sp != NULL ? (size_t)(sp - text) : strlen(text);
        if (sp != NULL) {
            c.args = sp + 1;
            c.args_len = strlen(sp + 1);
        }
        c.seq = seq;
        c.iat = (uint64_t)t;
        c.exp = (uint64_t)(t + o->ttl);
        if (c.command_len == 0 || c.command_len > MG_CMD_TEXT_MAX ||
            mg_cmd_encode(&c, pl, sizeof(pl), &plen) != MG_OK) {
            fprintf(stderr, "m2mguard send: cannot encode the command for signing\n");
            rc = MG_EXIT_USAGE;
        }
    }
    mg_cose_sig_in si[SEND_SIGNERS_MAX];
    uint8_t sigs[SEND_SIGNERS_MAX][MG_SIG_LEN];
    for (size_t i = 0; i < o->n_sign && rc == MG_EXIT_OK; i++) {
        uint8_t tbs[MG_CMD_MAX_LEN + 128];
        size_t tl = 0;
        if (mg_cose_tbs(o->n_sign > 1, algs[i], (const uint8_t *)who[i].kid, strlen(who[i].kid),
                        pl, plen, tbs, sizeof(tbs), &tl) != MG_OK ||
            !mg_cli_sign_raw(keys[i], algs[i], tbs, tl, sigs[i])) {
            fprintf(stderr, "m2mguard send: signing with %s failed\n", o->sign[i]);
            rc = MG_EXIT_INTERNAL;
            break;
        }
        si[i].alg = algs[i];
        si[i].kid = (const uint8_t *)who[i].kid;
        si[i].kid_len = strlen(who[i].kid);
        si[i].sig = sigs[i];
    }
    if (rc == MG_EXIT_OK &&
        (mg_cose_assemble(pl, plen, si, o->n_sign, out, cap, out_len) != MG_OK ||
         *out_len > MG_CMD_MAX_LEN)) {
        fprintf(stderr, "m2mguard send: the signed command does not fit %d octets\n",
                MG_CMD_MAX_LEN);
        rc = MG_EXIT_USAGE;
    }
    for (size_t i = 0; i < SEND_SIGNERS_MAX; i++)
        EVP_PKEY_free(keys[i]);
    return rc;
}

static int enqueue(mg_workdir *w, const mg_device *d, const char *text, const char *want,
                   int64_t *id)
{
    mg_command c;
    memset(&c, 0, sizeof(c));
    c.device_id = d->id;
    snprintf(c.text, sizeof(c.text), "%s", text);
    mg_err e = mg_store_cmd_enqueue_on(w->store, &c, want);
    if (e != MG_OK) {
        fprintf(stderr, "cannot queue the command: %s\n", mg_store_errmsg(w->store));
        return mg_store_exit(e);
    }
    *id = c.id;
    return MG_EXIT_OK;
}

/* Queues a command with its COSE bytes in one transaction (no sender sees
 * it without them). */
static int enqueue_signed(mg_workdir *w, const mg_device *d, const char *text, const char *want,
                          const uint8_t *cose, size_t cose_len, int64_t *id)
{
    mg_err e = mg_store_begin(w->store);
    if (e != MG_OK) {
        fprintf(stderr, "cannot queue the command: %s\n", mg_store_errmsg(w->store));
        return mg_store_exit(e);
    }
    int rc = enqueue(w, d, text, want, id);
    if (rc == MG_EXIT_OK && (e = mg_store_cmd_set_signed(w->store, *id, cose, cose_len)) != MG_OK) {
        fprintf(stderr, "cannot queue the command: %s\n", mg_store_errmsg(w->store));
        rc = mg_store_exit(e);
    }
    if (rc == MG_EXIT_OK && (e = mg_store_commit(w->store)) != MG_OK) {
        fprintf(stderr, "cannot queue the command: %s\n", mg_store_errmsg(w->store));
        rc = mg_store_exit(e);
    }
    if (rc != MG_EXIT_OK)
        mg_store_rollback(w->store);
    return rc;
}

static int find_active(mg_workdir *w, const char *path, const char *name, mg_device *d)
{
    mg_err e = mg_store_device_by_name(w->store, name, d);
    if (e != MG_OK) {
        fprintf(stderr, "%s: no device '%s'\n", path, name);
        return mg_store_exit(e);
    }
    if (d->status != MG_DEV_ACTIVE) {
        fprintf(stderr, "%s: device '%s' is %s\n", path, name, mg_dev_status_name(d->status));
        return MG_EXIT_REJECT;
    }
    return MG_EXIT_OK;
}

/* Which bearers can carry a command to d; --tap needs both and a device that
 * is not connected (a connected device gets the command over MQTT at once,
 * so no tap is queued). */
static int check_bearer(mg_workdir *w, const mg_device *d, unsigned bearers, q_opts *o,
                        const char **want)
{
    if (strcmp(*want, "sms") == 0 && (bearers & MG_BEARER_SMS) == 0) {
        fprintf(stderr, "m2mguard send: %s has no SMS bearer\n", d->name);
        return MG_EXIT_REJECT;
    }
    if (strcmp(*want, "mqtt") == 0 && (bearers & MG_BEARER_IP) == 0) {
        fprintf(stderr, "m2mguard send: %s has no IP bearer\n", d->name);
        return MG_EXIT_REJECT;
    }
    if (!o->tap)
        return MG_EXIT_OK;
    if ((bearers & (MG_BEARER_SMS | MG_BEARER_IP)) != (MG_BEARER_SMS | MG_BEARER_IP)) {
        fprintf(stderr, "m2mguard send: --tap needs a device with both bearers\n");
        return MG_EXIT_REJECT;
    }
    if (strcmp(*want, "sms") == 0)
        return mg_cli_usage_error("m2mguard send", "--tap sends the command over mqtt");
    bool connected = false;
    int64_t since = 0;
    mg_err e = mg_store_session_get(w->store, d->id, &connected, &since);
    if (e != MG_OK) {
        fprintf(stderr, "m2mguard send: %s\n", mg_store_errmsg(w->store));
        return mg_store_exit(e);
    }
    if (connected)
        o->tap = false; /* connected: no shoulder-tap needed */
    *want = "mqtt";
    return MG_EXIT_OK;
}

int mg_cmd_send(int argc, char **argv)
{
    static const char usage[] =
        "usage: m2mguard send [--dir DIR] [--wait SECS] [--bearer auto|sms|mqtt] [--tap]\n"
        "                     [--sign KEYREF [--sign KEYREF2]] [--kid KID]... [--ttl SECS]\n"
        "                     DEVICE COMMAND [ARG...]\n\n"
        "Queues COMMAND (and its arguments, joined by spaces; at most 255 printable\n"
        "ASCII characters) for DEVICE, on one queue for both bearers:\n"
        "  sms   the running gateway secures it with the device's keys and the next\n"
        "        counter (concatenated if longer than one SMS) and waits for the\n"
        "        proof of receipt;\n"
        "  mqtt  the broker plugin publishes it on m2m/DEVICE/down/cmd (QoS 1) while\n"
        "        the device is connected and waits for its receipt on up/receipt;\n"
        "  auto  (default) MQTT while the device has a live MQTT session, else SMS\n"
        "        (an IP-only device waits for its next connection).\n"
        "--tap (a dual-bearer device that is not connected): also queues the SMS\n"
        "command 'connect' (a shoulder-tap that makes the device connect) and the\n"
        "command itself on MQTT. Prints the command id and bearer. --wait waits up to\n"
        "SECS for the outcome (queued/sent/done/failed/timeout, the same states on\n"
        "both bearers) and prints it with the bearer it went on.\n"
        "--sign KEYREF (a PEM private key file or a pkcs11: URI; P-256 or Ed25519)\n"
        "signs the command (COSE_Sign1, docs/commands.md): issuer = the signer,\n"
        "audience = DEVICE, sequence = the device's next signed sequence, valid for\n"
        "--ttl SECS (default 3600). Twice: a COSE_Sign with two signatures (the\n"
        "two-person rule). The signer is the registered one (m2mguard signer add)\n"
        "with that public key, or --kid KID (one per --sign, in order). The gateway\n"
        "and the broker plugin verify it and apply WORKDIR/policy.yaml before\n"
        "sending; a refused command ends FAILED ('policy: ...').\n\n"
        "exit: 0 queued (with --wait: done), 1 device not active, bearer not available\n"
        "      for the device or (with --wait) failed / timed out, 2 usage, 3 no such\n"
        "      device, 4 internal error\n";
    q_opts o;
    int rc = q_parse("m2mguard send", usage, argc, argv, &o);
    if (rc != MG_EXIT_OK)
        return rc < 0 ? MG_EXIT_OK : rc;
    if (argc - o.first < 2)
        return mg_cli_usage_error("m2mguard send", "expected DEVICE and COMMAND");
    char text[256];
    size_t len = 0;
    for (int i = o.first + 1; i < argc; i++) {
        int n = snprintf(text + len, sizeof(text) - len, "%s%s", i > o.first + 1 ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof(text) - len) {
            len = sizeof(text);
            break;
        }
        len += (size_t)n;
    }
    if (len > MG_COMMAND_TEXT_MAX) {
        fprintf(stderr, "m2mguard send: the command is %zu octets; at most %d\n", len,
                MG_COMMAND_TEXT_MAX);
        return MG_EXIT_USAGE;
    }
    if (!mg_sms_text_ok((const uint8_t *)text, len))
        return mg_cli_usage_error("m2mguard send", "the command must be printable ASCII (0x20..0x7e)");
    if (strncmp(text, "key-rotate", 10) == 0)
        return mg_cli_usage_error("m2mguard send", "key-rotate is reserved: use 'm2mguard key rotate'");
    mg_workdir w;
    if ((rc = mg_workdir_open(o.dir, &w)) != MG_EXIT_OK)
        return rc;
    mg_device d;
    int64_t id = 0;
    rc = find_active(&w, "m2mguard send", argv[o.first], &d);
    const char *want = o.bearer;
    unsigned bearers = d.bearers != 0 ? d.bearers : MG_BEARER_SMS;
    if (rc == MG_EXIT_OK)
        rc = check_bearer(&w, &d, bearers, &o, &want);
    if (rc == MG_EXIT_OK && want[0] == '\0' && (bearers & MG_BEARER_SMS) == 0)
        want = "mqtt"; /* IP-only: nothing else can carry it */
    if (rc == MG_EXIT_OK && o.tap) {
        int64_t tap_id = 0;
        rc = enqueue(&w, &d, "connect", "sms", &tap_id);
        if (rc == MG_EXIT_OK)
            printf("command %" PRId64 " queued for %s on sms: connect (shoulder-tap)\n", tap_id,
                   d.name);
    }
    uint8_t cose[MG_CMD_MAX_LEN + 64];
    size_t cose_len = 0;
    if (rc == MG_EXIT_OK && o.n_sign > 0) {
        rc = sign_command(&w, &o, &d, text, cose, sizeof(cose), &cose_len);
        if (rc == MG_EXIT_OK && cose_len > MG_SMS_DATA_MAX && strcmp(want, "sms") == 0) {
            fprintf(stderr, "m2mguard send: the signed command is %zu octets; SMS carries %u\n",
                    cose_len, (unsigned)MG_SMS_DATA_MAX);
            rc = MG_EXIT_USAGE;
        }
    }
    if (rc == MG_EXIT_OK)
        rc = o.n_sign > 0 ? enqueue_signed(&w, &d, text, want, cose, cose_len, &id)
                          : enqueue(&w, &d, text, want, &id);
    if (rc == MG_EXIT_OK) {
        printf("command %" PRId64 " queued for %s on %s: %s%s\n", id, d.name,
               want[0] ? want : "auto", text,
               o.n_sign == 0 ? "" : o.n_sign == 1 ? " (signed)" : " (signed by two)");
        fflush(stdout);
        if (o.wait >= 0)
            rc = wait_command(&w, id, o.wait);
    }
    mg_workdir_close(&w);
    return rc;
}

static int key_rotate(int argc, char **argv)
{
    static const char usage[] =
        "usage: m2mguard key rotate [--dir DIR] [--wait SECS] DEVICE\n\n"
        "Makes a new key version for DEVICE (fresh random KIc and KID, version + 1) and\n"
        "queues its delivery to the device, secured under the current keys. The new\n"
        "version becomes active only when the device's proof of receipt arrives; until\n"
        "then the old keys stay in use. The keys are never printed.\n\n"
        "exit: 0 queued (with --wait: switched over), 1 device not active or (with\n"
        "      --wait) failed / timed out, 2 usage, 3 no such device, 4 internal error\n";
    q_opts o;
    int rc = q_parse("m2mguard key rotate", usage, argc, argv, &o);
    if (rc != MG_EXIT_OK)
        return rc < 0 ? MG_EXIT_OK : rc;
    if (argc - o.first != 1)
        return mg_cli_usage_error("m2mguard key rotate", "expected DEVICE");
    mg_workdir w;
    if ((rc = mg_workdir_open(o.dir, &w)) != MG_EXIT_OK)
        return rc;
    mg_device d;
    int64_t id = 0;
    int old_version = 0, new_version = 0;
    rc = find_active(&w, "m2mguard key rotate", argv[o.first], &d);
    if (rc == MG_EXIT_OK) {
        mg_err e = mg_store_key_rotate(w.store, d.id, &id, &old_version, &new_version);
        if (e == MG_ERR_KEY) {
            fprintf(stderr, "m2mguard key rotate: %s has no active keys\n", d.name);
            rc = MG_EXIT_REJECT;
        } else if (e != MG_OK) {
            fprintf(stderr, "m2mguard key rotate: %s\n", mg_store_errmsg(w.store));
            rc = mg_store_exit(e);
        }
    }
    if (rc == MG_EXIT_OK) {
        printf("command %" PRId64 " queued for %s: key version %d -> %d (switch-over on proof of receipt)\n",
               id, d.name, old_version, new_version);
        fflush(stdout);
        if (o.wait >= 0)
            rc = wait_command(&w, id, o.wait);
    }
    mg_workdir_close(&w);
    return rc;
}

static const mg_cmd key_table[] = {
    {"rotate", key_rotate, "new key version for a device, delivered under the old one"},
};

int mg_cmd_key(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard key", key_table, sizeof(key_table) / sizeof(key_table[0]),
                           argc - 1, argv + 1);
}
