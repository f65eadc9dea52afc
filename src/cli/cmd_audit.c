/* `m2mguard audit`: the fleet's configuration checked once (src/detect/audit.h,
 * docs/audit.md). Exit 0: no finding at or above --fail-on; 1: some; 2: error. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "commands.h"
#include "m2mguard/keyref.h"
#include "workdir.h"

#define AUDIT_PATH "m2mguard audit"
#define AUDIT_EXIT_ERROR 2
#define SECRET_FILES_MAX 16

static const char audit_usage[] =
    "usage: " AUDIT_PATH " [--json] [--fail-on low|medium|high|critical] [--config FILE]\n"
    "                      [--catalogue DIR] [--dir DIR]\n"
    "\n"
    "Checks the fleet's configuration once and prints one finding per problem, with\n"
    "its check, severity, what was found, where (device, certificate, file), why it\n"
    "matters and the fix (docs/audit.md):\n"
    "  shared_keys, fleet_key  devices with the same KIc or KID (compared as SHA-256\n"
    "                 digests; no key or digest is printed); one key on more than\n"
    "                 audit_fleet_key_devices (10) devices is critical\n"
    "  weak_algorithm 3DES keys, AES keys below audit_min_key_bits (128), checksums\n"
    "                 below audit_min_cc_octets (8), with the analysis engine's\n"
    "                 secure-until year and the NIST policy year\n"
    "  key_age        active key versions older than audit_key_max_age_days (365)\n"
    "  certificates   expiring within audit_cert_expiry_days (30), older than\n"
    "                 audit_cert_max_age_days (730), revoked device still ACTIVE,\n"
    "                 several valid certificates of one device\n"
    "  ca             CA key type and size, CA expiry (audit_ca_expiry_days, 180), CRL\n"
    "  client_ids     device/application names equal but for letter case\n"
    "  silent_devices ACTIVE devices without authenticated traffic for audit_silent_days (7)\n"
    "  secret_files   master.key, the database, m2mguard.conf, *.key, ca/*.key,\n"
    "                 devices/*.prov, files named by *_secret / *_key / *_keyfile\n"
    "                 settings, keyfile lines of mosquitto.conf: group/other access is high\n"
    "  event_logging  events_per_s = 0, short events_retention_days, no event in a day,\n"
    "                 detector never run or not keeping up\n"
    "Thresholds are m2mguard.conf settings (audit_*), listed in docs/audit.md.\n"
    "\n"
    "  --json        one JSON object: {\"findings\":[...],\"summary\":{...}}; a finding has\n"
    "                check, severity, what, where, why, fix and, for weak algorithms,\n"
    "                secure_until_year and disallowed_since (null: never)\n"
    "  --fail-on S   exit 1 when a finding is at S or above (default high)\n"
    "  --config FILE read the settings from FILE instead of DIR/m2mguard.conf\n"
    "  --catalogue DIR  risk catalogue for the secure-until years (default:\n"
    "                audit_risk_catalogue, $M2MGUARD_DATA_DIR, the installed or source data/risk)\n"
    "  --dir DIR, -C DIR  working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "exit: 0 no finding at or above --fail-on; 1 findings at or above it;\n"
    "      2 bad command line, or the audit could not run.\n"
    "The audit only reads: it changes nothing. When the store cannot be opened (a\n"
    "master.key readable by others is refused) the file checks still run.\n";

typedef struct out_ctx {
    bool json;
    size_t n;
} out_ctx;

static void print_finding(void *ctx, const mg_audit_finding *f)
{
    out_ctx *o = ctx;
    if (!o->json) {
        printf("[%s] %s: %s\n  where: %s\n  why:   %s\n  fix:   %s\n", mg_audit_sev_name(f->severity),
               f->check, f->what, f->where, f->why, f->fix);
        o->n++;
        return;
    }
    printf("%s\n  {\"check\":", o->n > 0 ? "," : "");
    mg_json_str(stdout, f->check);
    printf(",\"severity\":\"%s\",\"what\":", mg_audit_sev_name(f->severity));
    mg_json_str(stdout, f->what);
    fputs(",\"where\":", stdout);
    mg_json_str(stdout, f->where);
    fputs(",\"why\":", stdout);
    mg_json_str(stdout, f->why);
    fputs(",\"fix\":", stdout);
    mg_json_str(stdout, f->fix);
    if (!isnan(f->secure_until)) {
        if (isfinite(f->secure_until))
            printf(",\"secure_until_year\":%.0f", f->secure_until);
        else
            printf(",\"secure_until_year\":%s", f->secure_until > 0 ? "null" : "\"broken\"");
    }
    if (!isnan(f->disallowed_since)) {
        if (isfinite(f->disallowed_since))
            printf(",\"disallowed_since\":%.0f", f->disallowed_since);
        else
            fputs(",\"disallowed_since\":null", stdout);
    }
    putchar('}');
    o->n++;
}

/* An integer setting: absent or empty -> dflt; bad -> message, *bad. */
static long conf_long(const mg_workdir *w, const char *key, long dflt, long lo, long hi, bool *bad)
{
    const char *v = mg_conf_get(w, key, NULL);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end != '\0' || x < lo || x > hi) {
        fprintf(stderr, AUDIT_PATH ": %s = '%s': use a whole number from %ld to %ld\n", key, v, lo,
                hi);
        *bad = true;
        return dflt;
    }
    return x;
}

/* The audit's settings of m2mguard.conf (docs/audit.md): `audit` and the
 * console's audit page read them here. false: a bad value (said on stderr). */
bool mg_cli_audit_cfg(const mg_workdir *w, mg_audit_cfg *out)
{
    mg_audit_cfg c;
    mg_audit_cfg_defaults(&c);
    bool bad = false;
    c.key_max_age_days = (int)conf_long(w, "audit_key_max_age_days", c.key_max_age_days, 1, 36500, &bad);
    c.cert_expiry_days = (int)conf_long(w, "audit_cert_expiry_days", c.cert_expiry_days, 0, 36500, &bad);
    c.cert_max_age_days = (int)conf_long(w, "audit_cert_max_age_days", c.cert_max_age_days, 1, 36500, &bad);
    c.ca_expiry_days = (int)conf_long(w, "audit_ca_expiry_days", c.ca_expiry_days, 0, 36500, &bad);
    c.silent_days = (int)conf_long(w, "audit_silent_days", c.silent_days, 1, 36500, &bad);
    c.fleet_key_devices = (int)conf_long(w, "audit_fleet_key_devices", c.fleet_key_devices, 2, 1000000000, &bad);
    c.min_key_bits = (int)conf_long(w, "audit_min_key_bits", c.min_key_bits, 80, 256, &bad);
    c.cc_octets = (int)conf_long(w, "audit_cc_octets", c.cc_octets, 1, 16, &bad);
    c.min_cc_octets = (int)conf_long(w, "audit_min_cc_octets", c.min_cc_octets, 1, 16, &bad);
    c.min_retention_days = (int)conf_long(w, "audit_min_retention_days", c.min_retention_days, 0, 36500, &bad);
    c.detect_lag_s = (int)conf_long(w, "audit_detect_lag_s", c.detect_lag_s, 1, 86400L * 365L, &bad);
    c.max_per_check = (size_t)conf_long(w, "audit_max_per_check", (long)c.max_per_check, 0, 1000000, &bad);
    c.events_per_s = conf_long(w, "events_per_s", c.events_per_s, 0, 1000000000, &bad);
    /* the range of the key table (mg_conf_keys); the gateway reads 0 as "no age
     * limit" (cmd_gateway.c read_limits), the audit's -1 */
    c.retention_days = conf_long(w, "events_retention_days", c.retention_days, 0, 36500, &bad);
    if (c.retention_days == 0)
        c.retention_days = -1;
    *out = c;
    return !bad;
}

static bool has_catalogue(const char *dir)
{
    char p[MG_PATH_MAX + 32];
    struct stat st;
    return dir != NULL && dir[0] != '\0' &&
           snprintf(p, sizeof(p), "%s/calibration.yaml", dir) < (int)sizeof(p) && stat(p, &st) == 0;
}

/* The analysis engine's catalogue: the option, audit_risk_catalogue, then
 * the installed or source data directory (NULL: none). */
const char *mg_cli_risk_catalogue(const char *opt, const mg_workdir *w)
{
    if (opt != NULL)
        return opt;
    const char *c = mg_conf_get(w, "audit_risk_catalogue", NULL);
    if (c != NULL && c[0] != '\0')
        return c;
    c = getenv("M2MGUARD_DATA_DIR");
    if (has_catalogue(c))
        return c;
#ifdef MG_RISK_INSTALL_DATA_DIR
    if (has_catalogue(MG_RISK_INSTALL_DATA_DIR))
        return MG_RISK_INSTALL_DATA_DIR;
#endif
#ifdef MG_RISK_SOURCE_DATA_DIR
    if (has_catalogue(MG_RISK_SOURCE_DATA_DIR))
        return MG_RISK_SOURCE_DATA_DIR;
#endif
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int mg_cmd_audit(int argc, char **argv)
{
    enum { L_JSON = 256, L_FAIL, L_CONFIG, L_CAT, L_DIR };
    static const struct option lo[] = {
        {"json", no_argument, NULL, L_JSON},          {"fail-on", required_argument, NULL, L_FAIL},
        {"config", required_argument, NULL, L_CONFIG}, {"catalogue", required_argument, NULL, L_CAT},
        {"dir", required_argument, NULL, L_DIR},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *config = NULL, *catopt = NULL;
    bool json = false;
    mg_audit_sev fail_on = MG_AUDIT_HIGH;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "hC:", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(audit_usage, stdout); return MG_EXIT_OK;
        case L_JSON: json = true; break;
        case L_FAIL:
            if (!mg_audit_sev_parse(optarg, &fail_on) || fail_on == MG_AUDIT_INFO)
                return mg_cli_usage_error(AUDIT_PATH, "--fail-on: use low, medium, high or critical");
            break;
        case L_CONFIG: config = optarg; break;
        case L_CAT: catopt = optarg; break;
        case 'C':
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(AUDIT_PATH,
                                      ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error(AUDIT_PATH, "no arguments expected");

    mg_workdir w;
    bool opened = mg_workdir_open(dir, &w) == MG_EXIT_OK;
    if (!opened) {
        /* the file checks still run: the settings are read when they can be */
        memset(&w, 0, sizeof(w));
        if (mg_workdir_path(dir, w.dir, sizeof(w.dir)) != MG_EXIT_OK)
            return AUDIT_EXIT_ERROR;
        struct stat st;
        if (stat(w.dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return AUDIT_EXIT_ERROR; /* mg_workdir_open said why */
        char path[MG_PATH_MAX + 32];
        if (config == NULL && snprintf(path, sizeof(path), "%s/" MG_CONF_FILE, w.dir) <
                                  (int)sizeof(path))
            (void)mg_conf_load(&w, path); /* absent or unreadable: defaults */
        fprintf(stderr, AUDIT_PATH ": the store could not be opened: only the file checks run\n");
    }
    if (config != NULL && mg_conf_load(&w, config) != MG_EXIT_OK) {
        mg_workdir_close(&w);
        return AUDIT_EXIT_ERROR;
    }

    mg_audit_cfg c;
    bool bad = !mg_cli_audit_cfg(&w, &c);
    if (bad) {
        mg_workdir_close(&w);
        return AUDIT_EXIT_ERROR;
    }

    /* secret files named by the settings; relative names are in DIR */
    static char files[SECRET_FILES_MAX][MG_PATH_MAX + MG_CONF_VAL_MAX];
    const char *fptr[SECRET_FILES_MAX];
    size_t nf = 0;
    for (size_t i = 0; i < w.nconf && nf < SECRET_FILES_MAX; i++) {
        const char *k = w.conf[i].key, *v = w.conf[i].value;
        if (strcmp(k, "master_key") == 0 || v[0] == '\0' || mg_keyref_is_pkcs11(v))
            continue;
        if (!ends_with(k, "secret") && !ends_with(k, "_key") && !ends_with(k, "keyfile"))
            continue;
        (void)snprintf(files[nf], sizeof(files[nf]), v[0] == '/' ? "%.0s%s" : "%s/%s",
                       w.dir, v);
        fptr[nf] = files[nf];
        nf++;
    }
    char mosq[MG_PATH_MAX + MG_CONF_VAL_MAX];
    const char *mq = mg_conf_get(&w, "audit_mosquitto_conf", NULL);
    if (mq != NULL && mq[0] != '\0')
        (void)snprintf(mosq, sizeof(mosq), mq[0] == '/' ? "%.0s%s" : "%s/%s", w.dir, mq);
    else
        (void)snprintf(mosq, sizeof(mosq), "%s/mosquitto.conf", w.dir);

    mg_audit_paths p;
    memset(&p, 0, sizeof(p));
    p.dir = w.dir;
    const char *mref = mg_conf_get(&w, "master_key", "");
    p.master_in_token = mref[0] != '\0';
    p.store_pg = mg_workdir_store_pg(&w) != NULL;
    p.secret_files = fptr;
    p.n_secret_files = nf;
    p.mosquitto_conf = access(mosq, F_OK) == 0 ? mosq : NULL;

    char why[512];
    mg_audit_risk *risk = NULL;
    const char *cat = mg_cli_risk_catalogue(catopt, &w);
    if (cat == NULL)
        fprintf(stderr, AUDIT_PATH ": no risk catalogue found (--catalogue DIR): weak algorithms "
                        "are reported without the secure-until year\n");
    else if (mg_audit_risk_load(cat, mg_conf_get(&w, "audit_attacker", NULL), &risk, why,
                                sizeof(why)) != MG_OK) {
        fprintf(stderr, AUDIT_PATH ": %s\n", why);
        mg_workdir_close(&w);
        return AUDIT_EXIT_ERROR;
    }
    c.risk = risk;

    out_ctx o = {json, 0};
    mg_audit_summary sum;
    if (json)
        fputs("{\"findings\":[", stdout);
    mg_err e = mg_audit_run(opened ? w.store : NULL, &p, &c, print_finding, &o, &sum, why,
                            sizeof(why));
    mg_audit_risk_free(risk);
    if (opened)
        mg_workdir_close(&w);
    else
        mg_wipe(w.conf, sizeof(w.conf));
    size_t at_or_above = 0;
    for (int s = (int)fail_on; s < MG_AUDIT_NSEV; s++)
        at_or_above += sum.by_sev[s];
    int rc = at_or_above > 0 ? MG_EXIT_REJECT : MG_EXIT_OK;
    if (e != MG_OK) {
        fprintf(stderr, AUDIT_PATH ": %s\n", why);
        rc = AUDIT_EXIT_ERROR;
    } else if (!opened && rc == MG_EXIT_OK) {
        rc = AUDIT_EXIT_ERROR; /* nothing found, but most checks did not run */
    }
    if (json) {
        printf("%s],\"summary\":{\"findings\":%zu", o.n > 0 ? "\n" : "", sum.total);
        for (int s = MG_AUDIT_NSEV - 1; s >= 0; s--)
            printf(",\"%s\":%zu", mg_audit_sev_name((mg_audit_sev)s), sum.by_sev[s]);
        printf(",\"devices\":%zu,\"certificates\":%zu,\"fail_on\":\"%s\",\"at_or_above\":%zu,"
               "\"complete\":%s,\"exit\":%d}}\n", sum.devices, sum.certificates,
               mg_audit_sev_name(fail_on), at_or_above, opened && e == MG_OK ? "true" : "false",
               rc);
    } else {
        printf("audit: %zu finding%s (critical %zu, high %zu, medium %zu, low %zu, info %zu) over "
               "%zu device%s and %zu certificate%s; %zu at or above %s%s\n",
               sum.total, sum.total == 1 ? "" : "s", sum.by_sev[MG_AUDIT_CRITICAL],
               sum.by_sev[MG_AUDIT_HIGH], sum.by_sev[MG_AUDIT_MEDIUM], sum.by_sev[MG_AUDIT_LOW],
               sum.by_sev[MG_AUDIT_INFO], sum.devices, sum.devices == 1 ? "" : "s",
               sum.certificates, sum.certificates == 1 ? "" : "s", at_or_above,
               mg_audit_sev_name(fail_on), opened && e == MG_OK ? "" : " (incomplete)");
    }
    return rc;
}
