/* The configuration file m2mguard.conf (workdir.h): the key=value reader, the
 * table of known keys and the check of a value. No file access: workdir.c
 * reads the file (mg_read_private) and hands its text to mg_conf_parse, which
 * a fuzzer (tests/fuzz/fuzz_conf.c) reaches with a buffer. */
#include "workdir.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "metrics.h" /* mg_metrics_listen_parse: metrics_listen */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Walks "key=value" lines ('#' comments, blank lines); calls fn for each.
 * Returns an exit code; messages name the file and line. */
int mg_conf_each_line(const char *what, const char *path, char *text,
                     int (*fn)(void *ctx, const char *key, const char *value, unsigned line),
                     void *ctx)
{
    unsigned line = 0;
    for (char *p = text; *p != '\0';) {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        line++;
        char *l = trim(p);
        p = nl != NULL ? nl + 1 : p + strlen(p);
        if (*l == '\0' || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (eq == NULL) {
            fprintf(stderr, "%s: %s:%u: expected key=value\n", what, path, line);
            return MG_EXIT_INPUT;
        }
        *eq = '\0';
        char *key = trim(l), *value = trim(eq + 1);
        for (const char *k = key; *k != '\0'; k++)
            if (!(islower((unsigned char)*k) || isdigit((unsigned char)*k) || *k == '_')) {
                fprintf(stderr, "%s: %s:%u: bad key (use a-z, 0-9, _)\n", what, path, line);
                return MG_EXIT_INPUT;
            }
        if (*key == '\0' || strlen(key) >= MG_CONF_KEY_MAX || strlen(value) >= MG_CONF_VAL_MAX) {
            fprintf(stderr, "%s: %s:%u: key or value empty or too long\n", what, path, line);
            return MG_EXIT_INPUT;
        }
        int rc = fn(ctx, key, value, line);
        if (rc != MG_EXIT_OK)
            return rc;
    }
    return MG_EXIT_OK;
}

typedef struct conf_ctx {
    mg_workdir *w;
    const char *path;
    bool all;        /* config check: report every bad line, go on */
    unsigned errors; /* bad lines seen (all) */
} conf_ctx;

static int conf_bad(conf_ctx *c)
{
    c->errors++;
    return c->all ? MG_EXIT_OK : MG_EXIT_INPUT;
}

static int conf_line(void *ctx, const char *key, const char *value, unsigned line)
{
    conf_ctx *c = ctx;
    mg_workdir *w = c->w;
    char why[160];
    const mg_conf_key *k = mg_conf_key_find(key);
    if (k == NULL) {
        fprintf(stderr, "%s:%u: %s: unknown key (the keys: docs/operations.md, "
                        "m2mguard config keys)\n", c->path, line, key);
        return conf_bad(c);
    }
    if (!mg_conf_value_ok(k, value, why, sizeof(why))) {
        if (k->secret) {
            fprintf(stderr, "%s:%u: %s: %s\n", c->path, line, key, why);
        } else {
            char shown[80];
            size_t n = 0;
            for (const char *v = value; *v != '\0' && n + 4 < sizeof(shown); v++) {
                if (*v >= 0x20 && *v < 0x7f && *v != '"')
                    shown[n++] = *v;
                else
                    shown[n++] = '?';
            }
            if (strlen(value) > n) {
                memcpy(shown + n, "...", 3);
                n += 3;
            }
            shown[n] = '\0';
            fprintf(stderr, "%s:%u: %s: \"%s\" %s\n", c->path, line, key, shown, why);
        }
        return conf_bad(c);
    }
    for (size_t i = 0; i < w->nconf; i++)
        if (strcmp(w->conf[i].key, key) == 0) {
            fprintf(stderr, "%s:%u: %s given twice (first on line %u)\n", c->path, line, key,
                    w->conf[i].line);
            return conf_bad(c);
        }
    if (w->nconf == MG_CONF_MAX) {
        fprintf(stderr, "config: %s: more than %d settings\n", c->path, MG_CONF_MAX);
        return MG_EXIT_INPUT;
    }
    (void)snprintf(w->conf[w->nconf].key, MG_CONF_KEY_MAX, "%s", key);
    (void)snprintf(w->conf[w->nconf].value, MG_CONF_VAL_MAX, "%s", value);
    w->conf[w->nconf].line = line;
    w->nconf++;
    return MG_EXIT_OK;
}

int mg_conf_parse(mg_workdir *w, const char *path, char *text, bool all, unsigned *errors)
{
    mg_wipe(w->conf, sizeof(w->conf));
    w->nconf = 0;
    conf_ctx c = {w, path, all, 0};
    int rc = mg_conf_each_line("config", path, text, conf_line, &c);
    if (rc == MG_EXIT_OK && c.errors > 0)
        rc = MG_EXIT_INPUT;
    if (errors != NULL)
        *errors = c.errors + (rc != MG_EXIT_OK && c.errors == 0 ? 1u : 0u);
    if (rc != MG_EXIT_OK) {
        mg_wipe(w->conf, sizeof(w->conf));
        w->nconf = 0;
    }
    return rc;
}

const char *mg_conf_get(const mg_workdir *w, const char *key, const char *dflt)
{
    for (size_t i = 0; i < w->nconf; i++)
        if (strcmp(w->conf[i].key, key) == 0)
            return w->conf[i].value;
    return dflt;
}

unsigned mg_conf_line(const mg_workdir *w, const char *key)
{
    for (size_t i = 0; i < w->nconf; i++)
        if (strcmp(w->conf[i].key, key) == 0)
            return w->conf[i].line;
    return 0;
}

/* ---- the known keys ------------------------------------------------------------------
 * One row per key: type and range, the default, who reads it, whether `gateway
 * run` applies a change on SIGHUP, and the line of docs/operations.md (the
 * table there is `m2mguard config keys --markdown`; tests/ops/config.sh
 * compares them). Ranges are those of the code that reads the key. */
#define NUM(lo, hi) MG_CONF_NUM, (lo), (hi), NULL
#define STR MG_CONF_STR, 0, 0, NULL
#define ENUM(c) MG_CONF_ENUM, 0, 0, (c)
#define G1 1000000000LL
const mg_conf_key mg_conf_keys[] = {
    /* the gateway (m2mguard gateway run) */
    {"gateway_number", MG_CONF_MSISDN, 0, 0, NULL, "+491710000001", "gateway", false, false,
     "the gateway's own number (+E.164); written into provisioning files"},
    {"smsc_host", STR, "127.0.0.1", "gateway", false, false, "the SMSC (SMPP 3.4): host"},
    {"smsc_port", NUM(1, 65535), "2775", "gateway", false, false, "the SMSC: port"},
    {"system_id", STR, "m2mguard", "gateway", false, false, "bind credentials: system_id (at most 15 characters)"},
    {"password", STR, "", "gateway", false, true,
     "bind credentials: password (at most 8 characters; `init` writes 8 random `[A-Za-z0-9]`; never logged)"},
    {"system_type", STR, "", "gateway", false, false, "bind credentials: system_type (at most 12 characters)"},
    {"smsc_bind", ENUM("transceiver|transmitter+receiver"), "transceiver", "gateway", false, false,
     "`transceiver` (one `bind_transceiver`) or `transmitter+receiver` (two connections, for SMSCs that refuse transceivers)"},
    {"window", NUM(0, 1024), "10", "gateway", false, false, "outstanding submit_sm at most"},
    {"enquire_link_ms", NUM(0, G1), "30000", "gateway", false, false, "keep-alive interval"},
    {"response_timeout_ms", NUM(0, G1), "10000", "gateway", false, false, "an SMPP request without answer after this: the link is down"},
    {"reconnect_min_ms", NUM(0, G1), "250", "gateway", false, false, "first delay before a reconnection (doubling)"},
    {"reconnect_max_ms", NUM(0, G1), "30000", "gateway", false, false, "longest delay between reconnections"},
    {"smsc_country_code", STR, "", "gateway", false, false,
     "country code for national numbers (TON 2, or TON 0 without `+`); without it such senders are refused"},
    {"smsc_national_prefix", STR, "0", "gateway", false, false, "trunk prefix stripped from inbound numbers"},
    {"smsc_intl_prefix", STR, "00", "gateway", false, false, "international prefix stripped from inbound numbers"},
    {"smsc_ton", NUM(0, 6), "1", "gateway", false, false, "TON of the numbers written to this SMSC (submit_sm, bind address_range)"},
    {"smsc_npi", NUM(0, 18), "1", "gateway", false, false, "NPI of the numbers written to this SMSC"},
    {"smsc_plus", ENUM("yes|no"), "no", "gateway", false, false, "numbers written to this SMSC with a leading `+`"},
    {"output", STR, "inbox.jsonl", "gateway", false, false, "accepted messages as JSON lines, relative to DIR"},
    {"por_timeout_s", NUM(0, G1), "120", "gateway", true, false,
     "a sent command without proof of receipt is marked `timeout` after this"},
    {"group_commit_max", NUM(0, 1000000), "256", "gateway", false, false, "accepted messages per transaction at most"},
    {"commit_thread", ENUM("yes|no"), "yes", "gateway", false, false,
     "group commits on a thread of their own while the next batch is checked, look-ups on a handle of their own (docs/gateway.md \"Durable-path speed\")"},
    {"device_index", ENUM("yes|no"), "yes", "gateway", false, false,
     "every device with an MSISDN in memory, keys wrapped: a sender not in the cache costs no query (docs/fleet.md \"Device index\")"},
    {"cache_devices", NUM(0, G1), "16384", "gateway", false, false, "device cache (entries, bounded)"},
    {"cache_unknown", NUM(0, G1), "4096", "gateway", false, false, "negative cache of unknown senders (entries, bounded)"},
    {"lookups_per_s", NUM(0, G1), "2000", "gateway", true, false,
     "store look-ups of senders in neither cache per second; beyond, the SMSC is asked to deliver again"},
    {"partials_max", NUM(0, 1000000), "256", "gateway", false, false, "concatenated packets being reassembled at once"},
    {"partial_age_s", NUM(0, G1), "60", "gateway", true, false, "how long a partial concatenated packet is kept"},
    {"events_per_s", NUM(0, G1), "200", "gateway", true, false,
     "refusal events written per second (burst 4x), a backstop behind the aggregation: beyond it occurrences are counted into the fleet-wide row of their kind (source `*`)"},
    {"events_burst", NUM(0, G1), "10", "gateway", true, false,
     "refusals per source, kind and window written as rows of their own (docs/gateway.md)"},
    {"events_aggregate_s", NUM(0, G1), "10", "gateway", true, false, "the aggregation window, seconds"},
    {"events_aggregates_max", NUM(0, G1), "4096", "gateway", false, false, "(source, kind) aggregation entries"},
    {"events_new_sources", NUM(0, G1), "100", "gateway", true, false,
     "sources of one kind with entries of their own per window; the rest: the fleet-wide row"},
    {"events_retention_days", NUM(0, 36500), "90", "gateway, audit", true, false,
     "events older are pruned once a minute by the gateway (0: no age limit)"},
    {"events_max_rows", NUM(0, G1), "2000000", "gateway", true, false, "event rows kept at most (0: the default)"},
    {"throttle_per_min", NUM(0, G1), "6", "gateway", true, false,
     "a THROTTLE-blocked source: messages per minute (`m2mguard block`, the detector's responses)"},
    {"blocks_max", NUM(0, G1), "4096", "gateway", false, false, "blocked sources of bearer sms held"},
    {"cntr_jump_max", NUM(0, G1), "1000", "gateway", true, false,
     "a valid packet whose counter leaps further is refused as `counter_jump` (0: no limit; docs/gateway.md)"},
    {"metrics_listen", MG_CONF_LOOPBACK, 0, 0, NULL, "", "gateway", false, false,
     "Prometheus metrics at http://ADDRESS/metrics, a loopback address only (e.g. `127.0.0.1:9464`); absent: off (docs/metrics.md)"},
    /* every daemon */
    {"log", ENUM("stderr|syslog|journal"), "stderr", "gateway, detect, est", false, false,
     "where the daemons log: stderr (with journald's `<N>` level prefixes when started by systemd), syslog, or journal (always the prefixes)"},
    {"log_level", ENUM("error|warning|notice|info|debug"), "info", "gateway, detect, est", true, false,
     "messages above this level are dropped"},
    {"master_key", STR, "", "all", false, false,
     "the store's master key in a PKCS#11 token (`pkcs11:` URI; `m2mguard store`); absent: DIR/master.key"},
    {"store", STR, "", "all", false, true,
     "the store engine: absent, DIR/m2mguard.db (SQLite); `postgresql://...` or a libpq connection string (never logged)"},
    /* the detector (m2mguard detect run) */
    {"detect_rules", STR, "", "detect", false, false, "YAML rules file (absent: the built-in rules)"},
    {"detect_metrics_listen", MG_CONF_LOOPBACK, 0, 0, NULL, "", "detect", false, false,
     "Prometheus metrics of `detect run` at http://ADDRESS/metrics, a loopback address only; absent: off (docs/metrics.md)"},
    {"detect_block_s", NUM(1, 2592000), "600", "detect", false, false, "throttle and block duration of the responses, seconds"},
    {"detect_webhook_url", STR, "", "detect", false, false, "notifications: webhook URL"},
    {"detect_webhook_secret", STR, "", "detect", false, false, "notifications: the webhook's HMAC secret (a file, 0600)"},
    {"detect_syslog", ENUM("yes|no|true|false"), "no", "detect", false, false, "notifications: to syslog"},
    {"detect_mqtt_host", STR, "", "detect", false, false, "notifications: MQTT broker host"},
    {"detect_mqtt_port", NUM(1, 65535), "8883", "detect", false, false, "notifications: MQTT broker port"},
    {"detect_mqtt_topic", STR, "", "detect", false, false, "notifications: MQTT topic"},
    {"detect_mqtt_cafile", STR, "", "detect", false, false, "notifications: MQTT CA file"},
    {"detect_mqtt_cert", STR, "", "detect", false, false, "notifications: MQTT client certificate"},
    {"detect_mqtt_key", STR, "", "detect", false, false, "notifications: MQTT client key (0600)"},
    /* the EST server (m2mguard est run) */
    {"est_listen", STR, "127.0.0.1:8443", "est", false, false, "the EST server's address"},
    {"est_cert", STR, "est-server.crt", "est", false, false, "its TLS certificate, relative to DIR"},
    {"est_key", STR, "est-server.key", "est", false, false, "its TLS key (0600), relative to DIR"},
    {"est_factory_ca", STR, "", "est", false, false, "the factory CA of first enrolments"},
    {"est_max_body", NUM(0, 1048576), "16384", "est", false, false, "octets of a request body at most"},
    {"est_max_conn", NUM(0, 10000), "64", "est", false, false, "connections at most"},
    {"est_max_conn_per_ip", NUM(0, 10000), "8", "est", false, false, "connections per address at most"},
    {"est_timeout_s", NUM(0, 3600), "10", "est", false, false, "idle connection time-out"},
    {"est_events_per_min", NUM(0, 60000), "30", "est", false, false, "refusal events written per source and minute"},
    {"est_events_burst", NUM(0, 100000), "10", "est", false, false, "burst of those"},
    {"est_crl_check_s", NUM(0, 86400), "600", "est", false, false, "CRL refresh check period (0: never)"},
    /* the audit (m2mguard audit, docs/audit.md) */
    {"audit_key_max_age_days", NUM(1, 36500), "365", "audit", false, false, "keys older are reported"},
    {"audit_cert_expiry_days", NUM(0, 36500), "30", "audit", false, false, "certificates expiring sooner are reported"},
    {"audit_cert_max_age_days", NUM(1, 36500), "730", "audit", false, false, "certificates older are reported"},
    {"audit_ca_expiry_days", NUM(0, 36500), "180", "audit", false, false, "a CA expiring sooner is reported"},
    {"audit_silent_days", NUM(1, 36500), "7", "audit", false, false, "devices silent longer are reported"},
    {"audit_fleet_key_devices", NUM(2, G1), "10", "audit", false, false, "one key on this many devices: a fleet-wide key"},
    {"audit_min_key_bits", NUM(80, 256), "128", "audit", false, false, "weaker keys are reported"},
    {"audit_cc_octets", NUM(1, 16), "8", "audit", false, false, "cryptographic checksum length in use"},
    {"audit_min_cc_octets", NUM(1, 16), "8", "audit", false, false, "shorter checksums are reported"},
    {"audit_min_retention_days", NUM(0, 36500), "30", "audit", false, false, "a shorter event retention is reported"},
    {"audit_detect_lag_s", NUM(1, 31536000), "300", "audit", false, false, "a detector further behind is reported"},
    {"audit_max_per_check", NUM(0, 1000000), "50", "audit", false, false, "findings listed per check at most"},
    {"audit_risk_catalogue", STR, "", "audit", false, false, "the analysis engine's catalogue directory"},
    {"audit_attacker", STR, "", "audit", false, false, "the attacker profile of the key-age findings"},
    {"audit_mosquitto_conf", STR, "", "audit", false, false, "the broker configuration to audit"},
    /* the console (m2mguard console run, docs/console.md); 0: the default */
    {"console_listen", STR, "127.0.0.1:8443", "console", false, false, "HTTPS address of the console (loopback unless you mean it)"},
    {"console_cert", STR, "", "console", false, false, "server certificate (PEM; default console/tls.crt, created at first start)"},
    {"console_key", STR, "", "console", false, false, "its private key (PEM, 0600; default console/tls.key)"},
    {"console_max_conn", NUM(0, 1024), "64", "console", false, false, "connections at most"},
    {"console_max_conn_per_ip", NUM(0, 1024), "16", "console", false, false, "connections per client address at most"},
    {"console_timeout_s", NUM(0, 3600), "30", "console", false, false, "idle connection time-out"},
    {"console_sessions", NUM(0, 10000), "64", "console", false, false, "operator sessions held at most"},
    {"console_streams", NUM(0, 1024), "32", "console", false, false, "live event streams at most"},
    {"console_max_body", NUM(0, 65536), "8192", "console", false, false, "request body octets at most (413 beyond)"},
    {"console_login_failures", NUM(0, 1000), "5", "console", false, false, "failed logins per account or address and window, then 429"},
    {"console_login_window_s", NUM(0, 86400), "300", "console", false, false, "the login-failure window"},
    {"console_idle_s", NUM(0, 86400), "1800", "console", false, false, "a session idle longer ends"},
    {"console_session_s", NUM(0, 604800), "43200", "console", false, false, "a session ends this long after login"},
    {"console_ping_s", NUM(0, 3600), "15", "console", false, false, "keep-alive comment on event streams"},
    {"console_argon2_t", NUM(0, 100), "3", "console", false, false, "Argon2id passes of new password hashes (at least 2)"},
    {"console_argon2_m_kib", NUM(0, 4194304), "65536", "console", false, false, "Argon2id memory of new password hashes, KiB (at least 19456)"},
};
const size_t mg_conf_nkeys = sizeof(mg_conf_keys) / sizeof(mg_conf_keys[0]);
#undef NUM
#undef STR
#undef ENUM
#undef G1

const mg_conf_key *mg_conf_key_find(const char *key)
{
    for (size_t i = 0; i < mg_conf_nkeys; i++)
        if (strcmp(mg_conf_keys[i].key, key) == 0)
            return &mg_conf_keys[i];
    return NULL;
}

bool mg_conf_value_ok(const mg_conf_key *k, const char *v, char *why, size_t cap)
{
    if (v[0] == '\0')
        return true; /* the default */
    switch (k->type) {
    case MG_CONF_STR: return true;
    case MG_CONF_NUM: {
        const char *d = v[0] == '-' ? v + 1 : v;
        bool digits = d[0] != '\0';
        for (const char *q = d; *q != '\0'; q++)
            digits = digits && isdigit((unsigned char)*q);
        if (!digits) {
            (void)snprintf(why, cap, "is not a number");
            return false;
        }
        errno = 0;
        long long x = strtoll(v, NULL, 10);
        if (errno != 0 || x < k->lo || x > k->hi) {
            (void)snprintf(why, cap, "is out of range %lld..%lld", k->lo, k->hi);
            return false;
        }
        return true;
    }
    case MG_CONF_ENUM: {
        size_t n = strlen(v);
        for (const char *c = k->choices; c != NULL && *c != '\0';) {
            const char *bar = strchr(c, '|');
            size_t len = bar != NULL ? (size_t)(bar - c) : strlen(c);
            if (len == n && strncmp(c, v, n) == 0)
                return true;
            c = bar != NULL ? bar + 1 : c + len;
        }
        (void)snprintf(why, cap, "is not one of %s", k->choices);
        return false;
    }
    case MG_CONF_MSISDN:
        if (mg_store_msisdn_valid(v))
            return true;
        (void)snprintf(why, cap, "is not a number in +E.164 form");
        return false;
    case MG_CONF_LOOPBACK: {
        char host[16];
        uint16_t port = 0;
        const char *r = NULL;
        if (mg_metrics_listen_parse(v, host, &port, &r))
            return true;
        (void)snprintf(why, cap, "is not an address: %s", r);
        return false;
    }
    default: break;
    }
    (void)snprintf(why, cap, "cannot be checked");
    return false;
}
