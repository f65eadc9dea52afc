/*
 * m2mguard audit (issue 11 item 4): a one-shot review of the fleet's
 * configuration, the open, self-hosted counterpart of an IoT "audit" of
 * configuration checks. Internal to src/detect; the command is
 * src/cli/cmd_audit.c, the checks and defaults are in docs/audit.md.
 *
 * Host code: allocates, checks every result. Reads the store, the working
 * directory's files and the CA's certificates; writes nothing. Key material
 * is unwrapped only to hash it (SHA-256) and wiped at once: no finding, log
 * or error carries a key or a digest of one.
 *
 * Each finding names its check, a severity, what was found, where (device,
 * certificate, file), why it matters and the fix. Weak algorithms quote the
 * analysis engine's secure-until year (risk.h mg_risk_offline_year with the
 * catalogue's calibration and an attacker profile's budget) and the policy
 * year (mg_risk_policy_disallowed): never re-derived here.
 */
#ifndef M2MGUARD_DETECT_AUDIT_H
#define M2MGUARD_DETECT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2mguard/common.h"
#include "m2mguard/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mg_audit_sev {
    MG_AUDIT_INFO = 0, /**< a fact worth knowing (a check that could not run) */
    MG_AUDIT_LOW = 1,
    MG_AUDIT_MEDIUM = 2,
    MG_AUDIT_HIGH = 3,
    MG_AUDIT_CRITICAL = 4,
} mg_audit_sev;
#define MG_AUDIT_NSEV 5

/** "info", "low", "medium", "high", "critical". */
const char *mg_audit_sev_name(mg_audit_sev s);
/** The inverse of mg_audit_sev_name; false if unknown. */
bool mg_audit_sev_parse(const char *s, mg_audit_sev *out);

#define MG_AUDIT_TEXT_MAX 400

typedef struct mg_audit_finding {
    const char *check;     /**< "shared_keys", "fleet_key", "weak_algorithm", "key_age",
                                "certificates", "ca", "client_ids", "silent_devices",
                                "secret_files", "event_logging", "audit" (static text) */
    mg_audit_sev severity;
    char what[MG_AUDIT_TEXT_MAX];  /**< one line: what was found */
    char where[MG_AUDIT_TEXT_MAX]; /**< "device meter-1", "certificate 0a1b...", "file /x/y" */
    char why[MG_AUDIT_TEXT_MAX];   /**< why it matters */
    char fix[MG_AUDIT_TEXT_MAX];   /**< what to do */
    double secure_until;   /**< weak_algorithm: the risk engine's year (floor); NAN otherwise */
    double disallowed_since; /**< weak_algorithm: NIST policy year; NAN otherwise (INFINITY: never) */
} mg_audit_finding;

/** Where the files are. Every pointer but dir may be NULL. */
typedef struct mg_audit_paths {
    const char *dir;            /**< the working directory (m2mguard.conf, master.key, devices/) */
    const char *ca_dir;         /**< NULL: DIR/ca (absent: the CA checks are skipped) */
    bool master_in_token;       /**< master_key is a pkcs11: URI: no master.key expected */
    bool store_pg;              /**< the store is PostgreSQL (m2mguard.conf store): a
                                     DIR/m2mguard.db is a stale copy, not the registry */
    const char *const *secret_files; /**< more secret files to check (the configuration's
                                          webhook secret, key files, ...) */
    size_t n_secret_files;
    const char *mosquitto_conf; /**< a mosquitto.conf whose keyfile lines are checked */
} mg_audit_paths;

/* ---- the analysis engine's years (audit_risk.c) ------------------------------
 * risk.h cannot be included next to store.h (both define MG_ALG_NONE,
 * MG_ALG_3DES2, MG_ALG_3DES3), so the engine is reached through this handle. */
typedef struct mg_audit_risk mg_audit_risk;
/** Loads the risk catalogue of catalogue_dir (attackers, calibration) and picks
 *  the attacker profile `attacker` (NULL or "": "cyber_crime"); its budget's
 *  high end is what an attack may cost. */
MG_MUST_CHECK mg_err mg_audit_risk_load(const char *catalogue_dir, const char *attacker,
                                        mg_audit_risk **out, char *why, size_t cap);
void mg_audit_risk_free(mg_audit_risk *r);
const char *mg_audit_risk_attacker(const mg_audit_risk *r);
double mg_audit_risk_budget(const mg_audit_risk *r);
/** The year (floor) until which an offline search for a key of alg (mg_alg)
 *  and len octets costs more than the attacker's budget: mg_risk_offline_year
 *  with the catalogue's calibration; *policy_year and *policy: the engine's
 *  mg_risk_policy_disallowed (INFINITY / NULL: not disallowed). */
double mg_audit_risk_key_year(const mg_audit_risk *r, int alg, size_t len, double *policy_year,
                              const char **policy);
/** EUR to forge a bits-bit checksum by trial over SMS (mg_risk_online_cost). */
double mg_audit_risk_mac_cost(const mg_audit_risk *r, double bits);

/** Thresholds (m2mguard.conf keys audit_*, docs/audit.md) and context. */
typedef struct mg_audit_cfg {
    int64_t now;               /**< s; 0: the wall clock */
    int key_max_age_days;      /**< audit_key_max_age_days, 365 */
    int cert_expiry_days;      /**< audit_cert_expiry_days, 30 */
    int cert_max_age_days;     /**< audit_cert_max_age_days, 730 */
    int ca_expiry_days;        /**< audit_ca_expiry_days, 180 */
    int silent_days;           /**< audit_silent_days, 7 */
    int fleet_key_devices;     /**< audit_fleet_key_devices, 10: a key on more devices is a fleet key */
    int min_key_bits;          /**< audit_min_key_bits, 128 (256: AES-128 is a finding) */
    int cc_octets;             /**< audit_cc_octets, 8: the CC length the SMS peers use (the
                                    m2mguard profile: 8, src/core/ota.c) */
    int min_cc_octets;         /**< audit_min_cc_octets, 8 */
    long events_per_s;         /**< the gateway's events_per_s (200 when not configured) */
    long retention_days;       /**< events_retention_days (90; < 0 no age limit: the file's 0) */
    int min_retention_days;    /**< audit_min_retention_days, 30 */
    int detect_lag_s;          /**< audit_detect_lag_s, 300: unread events older: detector down */
    size_t max_per_check;      /**< audit_max_per_check, 50: then one "and N more" finding */
    const mg_audit_risk *risk; /**< the analysis engine; NULL: no years quoted */
} mg_audit_cfg;

/** The defaults above (risk NULL, now 0). */
void mg_audit_cfg_defaults(mg_audit_cfg *c);

typedef struct mg_audit_summary {
    size_t total;
    size_t by_sev[MG_AUDIT_NSEV];
    size_t devices, certificates; /**< what was looked at */
} mg_audit_summary;

/** Called once per finding; the finding lives for the call only. */
typedef void (*mg_audit_fn)(void *ctx, const mg_audit_finding *f);

/** Runs every check. s may be NULL (the store could not be opened): then only
 *  the file and CA checks run and one "audit" finding says so. A store opened
 *  without a master key (keys unavailable) gives an "audit" finding for the
 *  key checks. Returns MG_ERR_STORE (why says which query) when the store
 *  fails, MG_ERR_BUF when out of memory; findings are not errors. */
MG_MUST_CHECK mg_err mg_audit_run(mg_store *s, const mg_audit_paths *p, const mg_audit_cfg *c,
                                  mg_audit_fn fn, void *ctx, mg_audit_summary *sum, char *why,
                                  size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_DETECT_AUDIT_H */
