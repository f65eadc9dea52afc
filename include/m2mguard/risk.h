/*
 * m2mguard risk — "what is secure enough?": risk and defence analysis of an
 * M2M system, in money and in years (host code; see docs/risk-method.md).
 *
 * Contract (stated once, here):
 *  - This is host code: it allocates. Every object that a *_load or
 *    mg_risk_analyze call fills owns its memory in one arena and is released by
 *    the matching *_free call, which accepts a zeroed or half-filled object and
 *    may be called twice.
 *  - Loaders never abort on bad input: every schema error is appended to the
 *    caller's mg_risk_diag as "FILE:LINE:COLUMN: message (hint: ...)" and the
 *    call returns MG_ERR_FORMAT. Out of memory returns MG_ERR_BUF.
 *  - The analysis is deterministic for a given seed: it uses its own PRNG
 *    (splitmix64 seeding xoshiro256**), never rand().
 *  - Money is in the currency of the catalogue (EUR), time in years, days or
 *    hours as each field name says.
 */
#ifndef M2MGUARD_RISK_H
#define M2MGUARD_RISK_H

#include <stdio.h>

#include "m2mguard/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- diagnostics --------------------------------------------------------- */
#define MG_RISK_DIAG_CAP 8192
typedef struct mg_risk_diag {
    char text[MG_RISK_DIAG_CAP]; /* messages, one per line, NUL-terminated */
    size_t len;
    unsigned count;               /* number of errors reported (even if text is full) */
} mg_risk_diag;
void mg_risk_diag_init(mg_risk_diag *d);

/* ---- the standard tables (ISO/IEC 18045 = CEM, ISO/SAE 21434, ETSI TVRA) -- */
typedef enum mg_ap_factor {
    MG_AP_ELAPSED = 0, /* elapsed time */
    MG_AP_EXPERTISE,   /* specialist expertise */
    MG_AP_KNOWLEDGE,   /* knowledge of the target */
    MG_AP_WINDOW,      /* window of opportunity */
    MG_AP_EQUIPMENT,   /* equipment */
    MG_AP_NFACTORS
} mg_ap_factor;

/* Number of levels of a factor, a level's name ("le_1_week", "expert", ...)
 * and its ISO/IEC 18045 (CEM v3.1 Table B.3) value; -1 / NULL when out of range. */
int mg_risk_ap_levels(mg_ap_factor f);
const char *mg_risk_ap_level_name(mg_ap_factor f, int level);
int mg_risk_ap_value_cem(mg_ap_factor f, int level);
/* The same level valued on the coarser ISO/SAE 21434 Annex G scale. */
int mg_risk_ap_value_21434(mg_ap_factor f, int level);
/* Level index from its name, or -1. */
int mg_risk_ap_level_parse(mg_ap_factor f, const char *name);
const char *mg_risk_ap_factor_name(mg_ap_factor f);

typedef enum mg_cc_band {
    MG_CC_BASIC = 0,       /* 0..9   */
    MG_CC_ENHANCED_BASIC,  /* 10..13 */
    MG_CC_MODERATE,        /* 14..19 */
    MG_CC_HIGH,            /* 20..24 */
    MG_CC_BEYOND_HIGH      /* >= 25  */
} mg_cc_band;
mg_cc_band mg_risk_cc_band(int attack_potential);
const char *mg_risk_cc_band_name(mg_cc_band b);

typedef enum mg_feas {
    MG_FEAS_VERY_LOW = 0, MG_FEAS_LOW, MG_FEAS_MEDIUM, MG_FEAS_HIGH
} mg_feas;
/* ISO/SAE 21434 attack feasibility from the attack potential (Annex G). */
mg_feas mg_risk_feasibility_21434(int attack_potential);
const char *mg_risk_feas_name(mg_feas f);

typedef enum mg_impact {
    MG_IMPACT_NEGLIGIBLE = 0, MG_IMPACT_MODERATE, MG_IMPACT_MAJOR, MG_IMPACT_SEVERE
} mg_impact;
const char *mg_risk_impact_name(mg_impact i);
/* ISO/SAE 21434 risk value 1..5 (Annex H example matrix). */
int mg_risk_value_21434(mg_impact i, mg_feas f);

typedef enum mg_tvra { MG_TVRA_MINOR = 0, MG_TVRA_MAJOR, MG_TVRA_CRITICAL } mg_tvra;
/* ETSI TS 102 165-1 risk: likelihood (1 unlikely, 2 possible, 3 likely) times
 * impact (1 low, 2 medium, 3 high); 1-2 minor, 3-4 major, 6-9 critical. */
int mg_risk_tvra_likelihood(mg_cc_band b);
int mg_risk_tvra_impact(mg_impact i);
mg_tvra mg_risk_tvra_class(int likelihood, int impact);
const char *mg_risk_tvra_name(mg_tvra t);

/* ---- brute force and calibration ------------------------------------------ */
typedef struct mg_risk_calib {
    double ref_year;             /* year of reference of the trial rate */
    double trials_per_eur;       /* offline key trials bought for 1 EUR in ref_year */
    double doubling_years;       /* compute cost halves every this many years */
    double sms_eur;              /* price of one SMS sent by the attacker */
    double sms_per_hour_max;     /* throughput of one attacker without rate limit */
    double restart_eur;          /* cost of a new identity (SIM) after being blocked */
    double default_ttd_days;     /* time to detect when no detection is in place */
    double impact_eur[3];        /* thresholds moderate, major, severe */
    double horizon_years;        /* secure-until is computed up to year + horizon */
    bool worst_case;             /* brute force: false = expected 2^(b-1) trials,
                                    true = worst case 2^b (calibration
                                    `brute_force: {case: worst}`, CLI --worst-case) */
    double budget_growth;        /* attacker budgets grow by this fraction per year
                                    from ref_year (0 = constant) */
} mg_risk_calib;

/* Cost in EUR of an offline exhaustive search of a bits-bit key in `year`:
 * expected 2^(bits-1) trials at trials_per_eur * 2^((year-ref_year)/doubling). */
double mg_risk_offline_cost(const mg_risk_calib *c, double bits, double year);
/* Year in which that cost falls to `budget` (may be before ref_year). */
double mg_risk_offline_year(const mg_risk_calib *c, double bits, double budget);
/* Cost in EUR of online forgery of a bits-bit MAC by trial: 2^(bits-1) SMS at
 * sms_eur, plus a restart (new identity) for each block of `trials_per_campaign`
 * trials after which detection stops the attacker (0 = never stopped). */
double mg_risk_online_cost(const mg_risk_calib *c, double bits, double trials_per_campaign);

/* ---- published policy (NIST SP 800-131A / SP 800-57 Part 1) ---------------- */
typedef enum mg_risk_alg {
    MG_RISK_ALG_NONE = -1, MG_RISK_ALG_AES128 = 0, MG_RISK_ALG_AES192, MG_RISK_ALG_AES256, MG_RISK_ALG_3DES2,
    MG_RISK_ALG_3DES3
} mg_risk_alg;
/* First year in which applying protection (encryption, MAC generation) with this
 * algorithm, or with a key of this security strength when alg is MG_RISK_ALG_NONE,
 * is disallowed by NIST policy; INFINITY when not disallowed. *source names the
 * table and its wording. */
double mg_risk_policy_disallowed(mg_risk_alg alg, double security_bits, const char **source);

/* ---- catalogues ---------------------------------------------------------- */
typedef struct mg_range { double lo, hi; } mg_range;

typedef enum mg_principle {
    MG_PR_AUTHENTICATION = 0, MG_PR_CONFIDENTIALITY, MG_PR_INTEGRITY, MG_PR_AVAILABILITY
} mg_principle;
const char *mg_risk_principle_name(mg_principle p);

typedef enum mg_reach { MG_REACH_ONE = 0, MG_REACH_NETWORK, MG_REACH_FLEET } mg_reach;
typedef enum mg_damage_kind {
    MG_DMG_STOLEN = 0, MG_DMG_MANIPULATED, MG_DMG_DESTROYED, MG_DMG_OUTAGE
} mg_damage_kind;
#define MG_GAIN_PUBLICITY 4
typedef enum mg_brute { MG_BRUTE_NONE = 0, MG_BRUTE_OFFLINE, MG_BRUTE_ONLINE } mg_brute;

/* Measure parameters (NaN = not given). */
typedef enum mg_param {
    MG_P_KEY_BITS = 0, MG_P_MAC_BITS, MG_P_TTD_HOURS, MG_P_PER_HOUR, MG_P_N
} mg_param;
const char *mg_risk_param_name(mg_param p);

typedef struct mg_risk_attacker {
    const char *id, *name, *motivation, *skills, *equipment, *source;
    mg_range budget;      /* EUR the attacker can spend on one goal */
    int capability;       /* highest attack potential (CEM sum) it can field */
    double gain_share;    /* > 0: spends at most gain_share * what it gains */
    unsigned gains;       /* what counts as its gain: bit per mg_damage_kind,
                             bit MG_GAIN_PUBLICITY for publicity */
} mg_risk_attacker;

typedef struct mg_risk_role {
    const char *id, *name, *duty, *source;
} mg_risk_role;

typedef struct mg_risk_measure {
    const char *id, *name, *effect, *source;
    const char **kinds; size_t n_kinds; /* node/link kinds it can be placed on */
    int role;                 /* index into roles: who implements it */
    double cost_per_device;   /* EUR per device served by the node/link */
    double cost_per_target;   /* EUR per node/link instance */
    double cost_fixed;        /* EUR once, however many places use it */
    double param[MG_P_N];     /* defaults (NaN: no such parameter) */
} mg_risk_measure;

typedef struct mg_risk_effect {
    int measure;              /* index into measures */
    bool prevents;            /* the vector no longer works at all */
    double cost_x;            /* multiplies the attack cost range (>= 1) */
    double cost_add;          /* EUR added to the attack cost range (>= 0) */
    double add_days;          /* days added to the elapsed time (>= 0) */
    signed char raise[MG_AP_NFACTORS]; /* minimum level imposed, -1 none */
    int limit_reach;          /* the exploit reaches at most this (mg_reach), -1 none */
} mg_risk_effect;

typedef struct mg_risk_vector {
    const char *id, *name, *response, *source;
    mg_principle principle;
    const char **kinds; size_t n_kinds;
    signed char level[MG_AP_NFACTORS];
    mg_range cost;            /* EUR, without any measure */
    mg_reach reach;
    mg_damage_kind damage;
    double devices_per_day;   /* how fast an exploit is rolled out */
    mg_brute brute;           /* key/MAC length dependence */
    mg_risk_effect *effects; size_t n_effects;
    int *detected_by; size_t n_detected_by; /* measures that detect it */
} mg_risk_vector;

typedef struct mg_risk_catalogue {
    mg_risk_attacker *attackers; size_t n_attackers;
    mg_risk_vector *vectors; size_t n_vectors;
    mg_risk_measure *measures; size_t n_measures;
    mg_risk_role *roles; size_t n_roles;
    mg_risk_calib calib;
    void *arena;
} mg_risk_catalogue;

/* Loads attackers.yaml, vectors.yaml, measures.yaml, calibration.yaml from dir. */
MG_MUST_CHECK mg_err mg_risk_catalogue_load(const char *dir, mg_risk_catalogue *cat,
                                            mg_risk_diag *diag);
/* The same from four in-memory documents (names are used in messages). */
typedef struct mg_risk_text { const char *name; const char *data; size_t len; } mg_risk_text;
MG_MUST_CHECK mg_err mg_risk_catalogue_load_texts(const mg_risk_text *attackers,
                                                  const mg_risk_text *vectors,
                                                  const mg_risk_text *measures,
                                                  const mg_risk_text *calibration,
                                                  mg_risk_catalogue *cat, mg_risk_diag *diag);
void mg_risk_catalogue_free(mg_risk_catalogue *cat);
int mg_risk_measure_find(const mg_risk_catalogue *cat, const char *id);
int mg_risk_role_find(const mg_risk_catalogue *cat, const char *id);

/* ---- the model ------------------------------------------------------------ */
typedef struct mg_risk_placed {
    int measure;              /* index into the catalogue's measures */
    double param[MG_P_N];     /* effective parameters (defaults filled in) */
    mg_risk_alg algorithm;    /* `algorithm:` given in the model, MG_RISK_ALG_NONE */
} mg_risk_placed;

typedef struct mg_risk_target {
    const char *id, *kind, *name;
    bool is_link;
    const char *from, *to;    /* links only */
    int owner;                /* index into catalogue roles, -1 none */
    bool per_device;          /* one instance per device (MCU, modem, SMS link...) */
    mg_risk_placed *measures; size_t n_measures, cap_measures;
} mg_risk_target;

typedef struct mg_risk_command {
    const char *name;
    double value;             /* EUR damage of one forged command on one device */
    int *via; size_t n_via;   /* targets it travels through */
} mg_risk_command;

/* What the analyst knows about one vector in this system (model `vectors:`). */
typedef struct mg_risk_vector_use {
    int vector;               /* index into the catalogue's vectors */
    int *attackers; size_t n_attackers; /* catalogue attacker indices that use it;
                                           0 = every attacker in scope */
    double probability;       /* P(the attack is attempted in a campaign), NaN: not given */
} mg_risk_vector_use;

typedef struct mg_risk_model {
    const char *name, *file;
    double year, lifetime_years;
    double devices;           /* total */
    double network_devices;   /* most devices in one network */
    double value[4];          /* stolen, manipulated, destroyed per device; outage per day */
    double publicity;         /* EUR brand damage when an attack reaches many devices */
    double ttr_days;          /* time to resolve an incident */
    double ttd_days;          /* time to detect without a detection measure */
    int *attackers; size_t n_attackers;
    double *attacker_probability; /* per entry of attackers: P(it attempts an attack
                                     in a campaign), NaN: not given */
    mg_risk_vector_use *uses; size_t n_uses; /* per-vector restrictions (model `vectors:`) */
    const char **role_org;    /* organisation per catalogue role (NULL: not named) */
    mg_risk_target *targets; size_t n_targets;
    mg_risk_command *commands; size_t n_commands;
    void *arena;
} mg_risk_model;

MG_MUST_CHECK mg_err mg_risk_model_load(const char *path, const mg_risk_catalogue *cat,
                                        mg_risk_model *m, mg_risk_diag *diag);
MG_MUST_CHECK mg_err mg_risk_model_load_text(const mg_risk_text *t, const mg_risk_catalogue *cat,
                                             mg_risk_model *m, mg_risk_diag *diag);
void mg_risk_model_free(mg_risk_model *m);
/* Adds a catalogue measure with its default parameters to a target (tests,
 * what-if). MG_ERR_ARG when the measure cannot be placed on that kind. */
MG_MUST_CHECK mg_err mg_risk_model_add_measure(mg_risk_model *m, const mg_risk_catalogue *cat,
                                               size_t target, int measure);

/* ---- analysis ------------------------------------------------------------- */
typedef struct mg_risk_opts {
    uint64_t seed;     /* Monte Carlo seed */
    double year;       /* analysis year; 0 = the model's year */
    unsigned draws;    /* Monte Carlo draws; 0 = 1000 */
    unsigned exact_max;/* exact portfolio search up to this many candidates; 0 = 20 */
} mg_risk_opts;

/* One vector against one node or link. */
typedef struct mg_risk_vt {
    int vector, target;
    bool applicable;        /* false: a measure in place prevents it */
    int ap_cem, ap_21434;   /* attack potential sums */
    mg_cc_band band;
    mg_feas feas;
    mg_range cost;          /* EUR (INFINITY when prevented) at the analysis year */
    double brute_eur;       /* brute-force cost part (0 if none) */
    double willingness;     /* EUR: most that a capable in-scope attacker spends (0: none capable) */
    int worst_attacker;     /* attacker index behind willingness, -1 none */
    double probability;     /* Monte Carlo: P(cost <= willingness), most likely attacker */
    double exploited;       /* devices reached within the exposure time */
    double exposure_days;   /* time to detect + time to resolve */
    double damage_min, damage_worst; /* EUR */
    double gain_money;      /* EUR of the vector's damage kind (without publicity) */
    double gain_publicity;  /* EUR of publicity damage */
    double demand;          /* probability x worst damage, EUR */
    mg_impact impact;
    int risk_21434;         /* 1..5 */
    mg_tvra tvra;
    bool secure;            /* cost.lo > willingness (a tie is NOT secure) */
    double margin;          /* cost.lo - willingness, EUR */
    double secure_until;    /* year; INFINITY when not limited by key length;
                               < year: already broken by its key or MAC length */
    double disallowed_since;/* year from which the key's algorithm/strength is
                               disallowed by policy; INFINITY none */
    const char *policy;     /* the policy behind it (static text), NULL none */
    bool key_limited;       /* cost set by key or MAC length (brute force floor) */
    bool detected;          /* a detection measure for it is in place */
    double prevention_eur;  /* cheapest measures at this target closing it; INFINITY none */
} mg_risk_vt;

typedef struct mg_risk_pick { int measure, target; double cost; } mg_risk_pick;

/* A finding that no set of catalogue measures closes ("not achievable with the
 * catalogue"): evaluated with every candidate measure of its node/link applied.
 * What would close it: a measure outside the catalogue raising the attack cost
 * by MORE than close_eur (a tie is an attack that happens), removing the asset
 * (the node/link or the damage), or accepting the risk. */
typedef struct mg_risk_gap {
    size_t vt;               /* index into vts */
    int attacker;            /* catalogue attacker index who still profits */
    double cost_lo_all;      /* EUR, cheapest attack with every available measure */
    double willingness_all;  /* EUR, what that attacker spends then */
    double margin_all;       /* cost_lo_all - willingness_all (<= 0) */
    double close_eur;        /* willingness_all - cost_lo_all: the cost to add, exceeded */
} mg_risk_gap;
typedef struct mg_risk_point { double cost, residual; } mg_risk_point;

typedef struct mg_risk_result {
    const mg_risk_model *model;
    const mg_risk_catalogue *cat;
    double year;
    uint64_t seed;
    unsigned draws;
    mg_risk_vt *vts; size_t n_vts;
    /* P(cost <= what attacker model->attackers[j] spends) for finding i at
     * [i * model->n_attackers + j]; 0 when that attacker is not capable */
    double *p_attacker;
    bool secure;             /* every vector against every node/link */
    size_t n_insecure;
    double min_margin;       /* EUR, over all vectors */
    double secure_until;     /* year, min over all vectors */
    bool key_limited;        /* some finding's cost is set by its key/MAC length;
                                false: never print "already broken" */
    double disallowed_since; /* year, min over all findings; INFINITY none */
    size_t disallowed_vt;    /* the finding behind it (valid when finite) */
    double residual;         /* EUR, sum of demands */
    /* cheapest portfolio */
    mg_risk_pick *picks; size_t n_picks;
    double portfolio_cost;
    bool portfolio_exact;
    double portfolio_lower_bound;
    size_t n_unclosable;     /* vectors no catalogue measure can close */
    mg_risk_gap *gaps; size_t n_gaps; /* those findings, named (n_gaps == n_unclosable) */
    bool achievable;         /* false: "not achievable with the catalogue" — the
                                portfolio closes only the closable findings */
    double residual_after;
    mg_risk_point *curve; size_t n_curve;
    void *arena;
} mg_risk_result;

MG_MUST_CHECK mg_err mg_risk_analyze(const mg_risk_model *m, const mg_risk_catalogue *cat,
                                     const mg_risk_opts *o, mg_risk_result *r);
void mg_risk_result_free(mg_risk_result *r);

/* Deterministic evaluation of one vector on one target with the measures in
 * place plus `extra` (n_extra catalogue measures with default parameters).
 * Fills cost, potential, willingness, secure, margin, secure_until. */
void mg_risk_eval_vt(const mg_risk_model *m, const mg_risk_catalogue *cat, double year,
                     int vector, int target, const int *extra, size_t n_extra, mg_risk_vt *out);
/* Whether the j-th in-scope attacker of the model uses the vector (model
 * `vectors: [{vector, attackers}]`), and the probability that it attempts it:
 * the vector's `probability`, else the attacker's, else 1 (docs/risk-method.md §1.7). */
bool mg_risk_attacker_uses(const mg_risk_model *m, int vector, size_t j);
double mg_risk_attempt_probability(const mg_risk_model *m, int vector, size_t j);
/* Whether a vector applies to a target's kind. */
bool mg_risk_vector_targets(const mg_risk_catalogue *cat, int vector, const mg_risk_target *t);
/* Cost in EUR of placing a measure on a target (fixed cost excluded). */
double mg_risk_place_cost(const mg_risk_model *m, const mg_risk_catalogue *cat, int measure,
                          int target);

/* ---- reports ---------------------------------------------------------------- */
MG_MUST_CHECK mg_err mg_risk_write_json(FILE *f, const mg_risk_result *r);
MG_MUST_CHECK mg_err mg_risk_write_md(FILE *f, const mg_risk_result *r);
MG_MUST_CHECK mg_err mg_risk_write_html(FILE *f, const mg_risk_result *r);
/* Short human summary (verdict first) for the terminal. */
MG_MUST_CHECK mg_err mg_risk_write_text(FILE *f, const mg_risk_result *r);

/* ==== the live loop: the deployed fleet and its evidence (src/risk/fleet.c) ====
 * `m2mguard risk analyze --fleet WORKDIR` (docs/risk-method.md §6): the
 * registry of a working directory read as model facts (devices per class,
 * bearers, SMS key algorithms, keys shared between devices, certificates,
 * the command policy) and its events and alerts of a window read as evidence
 * of attacks. Host code; every table below is bounded (a peer that fills the
 * events table with new kinds or classes cannot grow it: the excess is
 * counted in *_dropped). Keys are read to compare them (a salted SHA-256 per
 * run, wiped after) and never printed. */
struct mg_store;

#define MG_RISK_FLEET_CLASSES 32  /* device classes told apart; the rest: "(other)" */
#define MG_RISK_FLEET_EVENTS 256  /* (bearer, kind, class, authenticated) groups */
#define MG_RISK_FLEET_ALERTS 128  /* (rule, class, scope) groups */
#define MG_RISK_FLEET_TTD 1024    /* detection times kept for the median */
#define MG_RISK_FLEET_NAME 64
#define MG_RISK_FLEET_ALGS 5      /* indexed by mg_risk_alg: aes128 .. 3des3 */

typedef struct mg_risk_fleet_class {
    char name[MG_RISK_FLEET_NAME]; /* device class; "" = no class */
    uint64_t devices;      /* devices not revoked */
    uint64_t quarantined, revoked;
    uint64_t sms, ip;      /* devices not revoked, per bearer */
    uint64_t keys[MG_RISK_FLEET_ALGS]; /* SMS devices by algorithm of the active key */
    uint64_t no_keys;      /* SMS devices without an active key version */
    uint64_t shared;       /* devices whose active SMS key another device also holds */
    uint64_t certs;        /* valid device certificates (not revoked, not expired) */
    uint64_t cert_ec, cert_ed25519, cert_rsa, cert_other;
    double cert_bits;      /* security strength of the weakest certificate key
                              (NIST SP 800-57 Part 1 Table 2), NAN: none */
    bool signed_required;  /* the policy refuses every unsigned command to the class */
} mg_risk_fleet_class;

typedef struct mg_risk_fleet_evgroup {
    char bearer[16], kind[32], cls[MG_RISK_FLEET_NAME];
    bool authenticated;
    uint64_t rows, count;  /* event rows; occurrences (sum of mg_event.count) */
} mg_risk_fleet_evgroup;

typedef struct mg_risk_fleet_algroup {
    char rule[32], cls[MG_RISK_FLEET_NAME], scope[8];
    bool cls_known;        /* the class is the device's (device scope or a
                              source that is a device's number) */
    uint64_t alerts, evidence; /* alerts; occurrences behind them */
    bool authenticated;    /* some alert rests on authenticated evidence */
    int64_t first;         /* earliest first evidence, s */
    double ttd_max_s;      /* longest detected - first evidence, s */
} mg_risk_fleet_algroup;

typedef struct mg_risk_fleet {
    int64_t now, since;    /* s; the evidence window [since, now] */
    double days;
    uint64_t devices, quarantined, revoked; /* devices: not revoked */
    mg_risk_fleet_class cls[MG_RISK_FLEET_CLASSES]; size_t n_cls;
    uint64_t shared_keys;  /* distinct SMS keys held by more than one device */
    uint64_t shared_max;   /* devices holding the most widely shared key */
    bool fleet_wide_key;   /* one key held by every SMS device (at least 2) */
    unsigned mac_bits;     /* checksum length of the secured-SMS profile: 64 */
    bool policy;           /* WORKDIR/policy.yaml exists */
    size_t policy_rules;
    bool detector;         /* the detector has run (cursor) or alerts exist */
    double ttd_s[MG_RISK_FLEET_TTD]; size_t n_ttd; /* detection times, s */
    double ttd_median_s;   /* NAN: no alert in the window */
    mg_risk_fleet_evgroup ev[MG_RISK_FLEET_EVENTS]; size_t n_ev;
    uint64_t ev_rows, ev_count, ev_dropped;
    mg_risk_fleet_algroup al[MG_RISK_FLEET_ALERTS]; size_t n_al;
    uint64_t al_total, al_dropped;
} mg_risk_fleet;

/* Reads the registry and the evidence window (since_days before now) of an
 * open store (opened with its master key: keys are compared by digest).
 * policy_path: the command policy (a missing file: none). f is caller
 * memory (large: allocate it). why (cap octets) gets the reason on failure. */
MG_MUST_CHECK mg_err mg_risk_fleet_read(struct mg_store *s, const char *policy_path, int64_t now,
                                        double since_days, mg_risk_fleet *f, char *why,
                                        size_t why_cap);
/* The model the fleet's facts make with the documented defaults (one SMS link,
 * IP link and MCU per class; docs/risk-method.md §6.2) as YAML. */
MG_MUST_CHECK mg_err mg_risk_fleet_model_yaml(const mg_risk_fleet *f, FILE *out);
/* The model: model_path NULL builds it (mg_risk_fleet_model_yaml); else loads
 * it and lets the fleet's facts override its devices and the key, checksum,
 * per-device-key, certificate and signed-command measures of its links. */
MG_MUST_CHECK mg_err mg_risk_fleet_model(const mg_risk_fleet *f, const mg_risk_catalogue *cat,
                                         const char *model_path, mg_risk_model *m,
                                         mg_risk_diag *diag);

/* One observed attack: an alert group mapped onto a finding. */
#define MG_RISK_FLEET_OBSERVED 64
typedef struct mg_risk_observed {
    size_t alert;          /* index into f->al */
    int vector, target;    /* catalogue vector, model target */
    double spent_eur;      /* the least the attacker spent on what was tried */
} mg_risk_observed;

/* The evidence applied: each alert group whose rule maps onto a vector
 * (docs/risk-method.md §6.3) is an observed attack on the matching nodes or
 * links of m: the vector's probability becomes 1 ("observed") and every
 * capable in-scope attacker using it gets a budget of at least spent_eur
 * (in cat). obs gets at most cap of them. */
MG_MUST_CHECK mg_err mg_risk_fleet_evidence(const mg_risk_fleet *f, mg_risk_model *m,
                                            mg_risk_catalogue *cat, mg_risk_observed *obs,
                                            size_t cap, size_t *n_obs);

typedef enum mg_risk_fmt { MG_RISK_FMT_MD = 0, MG_RISK_FMT_JSON, MG_RISK_FMT_HTML } mg_risk_fmt;
/* The fleet report: the facts, the verdict without (before) and with (after)
 * the evidence, where the observed attacks change it, and the cheapest
 * measures that stop their repetition. Both results are of the same model
 * structure (mg_risk_fleet_model twice). workdir and model_path are names
 * shown (model_path NULL: built). JSON figures are exact. */
MG_MUST_CHECK mg_err mg_risk_fleet_write(FILE *out, mg_risk_fmt fmt, const char *workdir,
                                         const char *model_path, const mg_risk_fleet *f,
                                         const mg_risk_observed *obs, size_t n_obs,
                                         const mg_risk_result *before,
                                         const mg_risk_result *after);
/* ==== end of the live loop ==================================================== */

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_RISK_H */
