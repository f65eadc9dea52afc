/* Loading the catalogues (data/risk/ *.yaml): attackers, vectors, measures,
 * calibration with the value-chain roles. Every entry must cite its source. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "risk_internal.h"

#define MAX_FILE (16u << 20)

static const char *const reach_names[] = {"one", "network", "fleet"};
static const char *const damage_names[] = {"stolen", "manipulated", "destroyed", "outage"};
static const char *const brute_names[] = {"none", "offline", "online"};
static const char *const principle_names[] = {"authentication", "confidentiality", "integrity",
                                              "availability"};

static bool dup_id(ydoc *y, yaml_node_t *n, const char *id, const char *const *ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(ids[i], id) == 0) {
            y_err(y, n, "ids must be unique", "duplicate id '%s'", id);
            return true;
        }
    return false;
}

static bool str_list(ydoc *y, yaml_node_t *n, const char *what, const char ***out, size_t *cnt)
{
    if (!y_is_seq(y, n, what))
        return false;
    size_t len = y_seq_len(n);
    const char **a = mg_arena_array(y->arena, len ? len : 1, sizeof(char *));
    if (a == NULL)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!y_str(y, y_seq_at(y, n, i), &a[i]))
            return false;
    *out = a;
    *cnt = len;
    return true;
}

static bool load_potential(ydoc *y, yaml_node_t *n, signed char *lv, bool required_all)
{
    static const char *const keys[] = {"elapsed_time", "expertise", "knowledge", "window",
                                       "equipment"};
    if (!y_is_map(y, n, "potential"))
        return false;
    y_check_keys(y, n, keys, 5);
    for (int f = 0; f < MG_AP_NFACTORS; f++) {
        yaml_node_t *v = y_get(y, n, keys[f]);
        lv[f] = -1;
        if (v == NULL) {
            if (required_all) {
                y_err(y, n, "rate all five factors of ISO/IEC 18045",
                      "missing attack-potential factor '%s'", keys[f]);
                return false;
            }
            continue;
        }
        const char *names[16];
        int nl = mg_risk_ap_levels((mg_ap_factor)f);
        for (int i = 0; i < nl; i++)
            names[i] = mg_risk_ap_level_name((mg_ap_factor)f, i);
        int idx = y_enum(y, v, keys[f], names, (size_t)nl);
        if (idx < 0)
            return false;
        lv[f] = (signed char)idx;
    }
    return true;
}

/* ---- calibration and roles ------------------------------------------------- */
static bool load_calibration(ydoc *y, mg_risk_catalogue *c)
{
    static const char *const top[] = {"brute_force", "online", "detection", "impact_thresholds_eur",
                                      "horizon_years", "roles"};
    static const char *const bf[] = {"reference_year", "trials_per_eur", "doubling_years", "case",
                                     "budget_growth_per_year", "source"};
    static const char *const on[] = {"sms_eur", "sms_per_hour_max", "restart_eur", "source"};
    static const char *const de[] = {"default_time_to_detect_days", "source"};
    static const char *const im[] = {"moderate", "major", "severe", "source"};
    static const char *const rk[] = {"id", "name", "duty", "source"};
    yaml_node_t *r = y_root(y), *n;
    const char *src;
    if (!y_is_map(y, r, "calibration"))
        return false;
    y_check_keys(y, r, top, 6);
    mg_risk_calib *k = &c->calib;
    if (!y_req(y, r, "brute_force", &n) || !y_is_map(y, n, "brute_force"))
        return false;
    y_check_keys(y, n, bf, 6);
    if (!y_req_num(y, n, "reference_year", 1990, 2100, &k->ref_year) ||
        !y_req_num(y, n, "trials_per_eur", 1, 1e30, &k->trials_per_eur) ||
        !y_req_num(y, n, "doubling_years", 0.1, 100, &k->doubling_years) ||
        !y_req_str(y, n, "source", &src))
        return false;
    /* expected (2^(b-1) trials) or worst case (2^b), and growing budgets */
    yaml_node_t *cs = y_get(y, n, "case");
    if (cs != NULL) {
        static const char *const cases[] = {"expected", "worst"};
        int ci = y_enum(y, cs, "case", cases, 2);
        if (ci < 0)
            return false;
        k->worst_case = ci == 1;
    }
    if (!y_opt_num(y, n, "budget_growth_per_year", 0, 10, &k->budget_growth))
        return false;
    if (!y_req(y, r, "online", &n) || !y_is_map(y, n, "online"))
        return false;
    y_check_keys(y, n, on, 4);
    if (!y_req_num(y, n, "sms_eur", 1e-6, 1e6, &k->sms_eur) ||
        !y_req_num(y, n, "sms_per_hour_max", 1, 1e9, &k->sms_per_hour_max) ||
        !y_req_num(y, n, "restart_eur", 0, 1e9, &k->restart_eur) ||
        !y_req_str(y, n, "source", &src))
        return false;
    if (!y_req(y, r, "detection", &n) || !y_is_map(y, n, "detection"))
        return false;
    y_check_keys(y, n, de, 2);
    if (!y_req_num(y, n, "default_time_to_detect_days", 0, 36500, &k->default_ttd_days) ||
        !y_req_str(y, n, "source", &src))
        return false;
    if (!y_req(y, r, "impact_thresholds_eur", &n) || !y_is_map(y, n, "impact_thresholds_eur"))
        return false;
    y_check_keys(y, n, im, 4);
    if (!y_req_num(y, n, "moderate", 0, 1e15, &k->impact_eur[0]) ||
        !y_req_num(y, n, "major", 0, 1e15, &k->impact_eur[1]) ||
        !y_req_num(y, n, "severe", 0, 1e15, &k->impact_eur[2]) ||
        !y_req_str(y, n, "source", &src))
        return false;
    if (!(k->impact_eur[0] <= k->impact_eur[1] && k->impact_eur[1] <= k->impact_eur[2])) {
        y_err(y, n, "moderate <= major <= severe", "impact thresholds are not increasing");
        return false;
    }
    k->horizon_years = 30;
    if (!y_opt_num(y, r, "horizon_years", 1, 200, &k->horizon_years))
        return false;
    if (!y_req(y, r, "roles", &n) || !y_is_seq(y, n, "roles"))
        return false;
    size_t len = y_seq_len(n);
    c->roles = mg_arena_array(y->arena, len ? len : 1, sizeof(mg_risk_role));
    const char **ids = mg_arena_array(y->arena, len ? len : 1, sizeof(char *));
    if (c->roles == NULL || ids == NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *e = y_seq_at(y, n, i);
        mg_risk_role *ro = &c->roles[i];
        if (!y_is_map(y, e, "a role"))
            return false;
        y_check_keys(y, e, rk, 4);
        if (!y_req_str(y, e, "id", &ro->id) || !y_req_str(y, e, "name", &ro->name) ||
            !y_req_str(y, e, "duty", &ro->duty) || !y_req_str(y, e, "source", &ro->source))
            return false;
        if (dup_id(y, e, ro->id, ids, i))
            return false;
        ids[i] = ro->id;
        c->n_roles = i + 1;
    }
    return y->errors == 0;
}

/* ---- attackers --------------------------------------------------------------- */
static bool load_attackers(ydoc *y, mg_risk_catalogue *c)
{
    static const char *const keys[] = {"id", "name", "motivation", "skills", "equipment",
                                       "budget_eur", "capability", "gain_share", "gains", "source"};
    yaml_node_t *r = y_root(y), *n, *b;
    if (!y_is_map(y, r, "attackers file"))
        return false;
    static const char *const top[] = {"attackers"};
    y_check_keys(y, r, top, 1);
    if (!y_req(y, r, "attackers", &n) || !y_is_seq(y, n, "attackers"))
        return false;
    size_t len = y_seq_len(n);
    c->attackers = mg_arena_array(y->arena, len ? len : 1, sizeof(mg_risk_attacker));
    const char **ids = mg_arena_array(y->arena, len ? len : 1, sizeof(char *));
    if (c->attackers == NULL || ids == NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *e = y_seq_at(y, n, i);
        mg_risk_attacker *a = &c->attackers[i];
        double cap = 0;
        if (!y_is_map(y, e, "an attacker"))
            return false;
        y_check_keys(y, e, keys, sizeof(keys) / sizeof(keys[0]));
        a->motivation = a->skills = a->equipment = "";
        if (!y_req_str(y, e, "id", &a->id) || !y_req_str(y, e, "name", &a->name) ||
            !y_opt_str(y, e, "motivation", &a->motivation) ||
            !y_opt_str(y, e, "skills", &a->skills) ||
            !y_opt_str(y, e, "equipment", &a->equipment) || !y_req(y, e, "budget_eur", &b) ||
            !y_range(y, b, 0.01, 1e15, &a->budget) ||
            !y_req_num(y, e, "capability", 0, 100, &cap) ||
            !y_opt_num(y, e, "gain_share", 0, 100, &a->gain_share) ||
            !y_req_str(y, e, "source", &a->source))
            return false;
        a->capability = (int)cap;
        b = y_get(y, e, "gains");
        if (b != NULL) {
            static const char *const gn[] = {"stolen", "manipulated", "destroyed", "outage",
                                             "publicity"};
            if (!y_is_seq(y, b, "gains"))
                return false;
            for (size_t j = 0; j < y_seq_len(b); j++) {
                int g = y_enum(y, y_seq_at(y, b, j), "gain", gn, 5);
                if (g < 0)
                    return false;
                a->gains |= 1u << g;
            }
        }
        if (dup_id(y, e, a->id, ids, i))
            return false;
        ids[i] = a->id;
        c->n_attackers = i + 1;
    }
    return y->errors == 0;
}

/* ---- measures ---------------------------------------------------------------- */
static bool load_params(ydoc *y, yaml_node_t *n, double *param, bool partial)
{
    static const char *const keys[] = {"key_bits", "mac_bits", "time_to_detect_hours", "per_hour"};
    static const double lo[] = {1, 1, 0.001, 0.001}, hi[] = {1024, 1024, 1e6, 1e9};
    if (!y_is_map(y, n, "params"))
        return false;
    y_check_keys(y, n, keys, 4);
    for (int p = 0; p < MG_P_N; p++) {
        yaml_node_t *v = y_get(y, n, keys[p]);
        if (v != NULL && !y_num(y, v, lo[p], hi[p], &param[p]))
            return false;
        (void)partial;
    }
    return true;
}

static bool load_measures(ydoc *y, mg_risk_catalogue *c)
{
    static const char *const keys[] = {"id", "name", "kinds", "role", "cost_per_device_eur",
                                       "cost_per_target_eur", "cost_fixed_eur", "params",
                                       "effect", "source"};
    yaml_node_t *r = y_root(y), *n, *v;
    if (!y_is_map(y, r, "measures file"))
        return false;
    static const char *const top[] = {"measures"};
    y_check_keys(y, r, top, 1);
    if (!y_req(y, r, "measures", &n) || !y_is_seq(y, n, "measures"))
        return false;
    size_t len = y_seq_len(n);
    c->measures = mg_arena_array(y->arena, len ? len : 1, sizeof(mg_risk_measure));
    const char **ids = mg_arena_array(y->arena, len ? len : 1, sizeof(char *));
    const char **roles = mg_arena_array(y->arena, c->n_roles ? c->n_roles : 1, sizeof(char *));
    if (c->measures == NULL || ids == NULL || roles == NULL)
        return false;
    for (size_t i = 0; i < c->n_roles; i++)
        roles[i] = c->roles[i].id;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *e = y_seq_at(y, n, i);
        mg_risk_measure *m = &c->measures[i];
        for (int p = 0; p < MG_P_N; p++)
            m->param[p] = NAN;
        if (!y_is_map(y, e, "a measure"))
            return false;
        y_check_keys(y, e, keys, sizeof(keys) / sizeof(keys[0]));
        m->effect = "";
        if (!y_req_str(y, e, "id", &m->id) || !y_req_str(y, e, "name", &m->name) ||
            !y_req(y, e, "kinds", &v) || !str_list(y, v, "kinds", &m->kinds, &m->n_kinds) ||
            !y_req(y, e, "role", &v) ||
            (m->role = y_enum(y, v, "role", roles, c->n_roles)) < 0 ||
            !y_opt_num(y, e, "cost_per_device_eur", 0, 1e9, &m->cost_per_device) ||
            !y_opt_num(y, e, "cost_per_target_eur", 0, 1e12, &m->cost_per_target) ||
            !y_opt_num(y, e, "cost_fixed_eur", 0, 1e12, &m->cost_fixed) ||
            !y_opt_str(y, e, "effect", &m->effect) || !y_req_str(y, e, "source", &m->source))
            return false;
        v = y_get(y, e, "params");
        if (v != NULL && !load_params(y, v, m->param, false))
            return false;
        if (dup_id(y, e, m->id, ids, i))
            return false;
        ids[i] = m->id;
        c->n_measures = i + 1;
    }
    return y->errors == 0;
}

/* ---- vectors ----------------------------------------------------------------- */
static bool load_effect(ydoc *y, yaml_node_t *e, const mg_risk_catalogue *c, const char **mids,
                        mg_risk_effect *ef)
{
    static const char *const keys[] = {"measure", "prevents", "cost_x",     "cost_add",
                                       "add_days", "raise",  "limit_reach"};
    yaml_node_t *v;
    if (!y_is_map(y, e, "an entry of countered_by"))
        return false;
    y_check_keys(y, e, keys, sizeof(keys) / sizeof(keys[0]));
    ef->cost_x = 1;
    ef->limit_reach = -1;
    for (int f = 0; f < MG_AP_NFACTORS; f++)
        ef->raise[f] = -1;
    if (!y_req(y, e, "measure", &v) ||
        (ef->measure = y_enum(y, v, "measure", mids, c->n_measures)) < 0)
        return false;
    v = y_get(y, e, "prevents");
    if (v != NULL && !y_bool(y, v, &ef->prevents))
        return false;
    /* cost_x >= 1: a measure never makes an attack cheaper */
    if (!y_opt_num(y, e, "cost_x", 1, 1e30, &ef->cost_x))
        return false;
    /* "raises the attack cost by X EUR" and "adds N days of elapsed time" */
    if (!y_opt_num(y, e, "cost_add", 0, 1e30, &ef->cost_add) ||
        !y_opt_num(y, e, "add_days", 0, 36500, &ef->add_days))
        return false;
    v = y_get(y, e, "raise");
    if (v != NULL && !load_potential(y, v, ef->raise, false))
        return false;
    v = y_get(y, e, "limit_reach");
    if (v != NULL && (ef->limit_reach = y_enum(y, v, "reach", reach_names, 3)) < 0)
        return false;
    return true;
}

static bool load_vectors(ydoc *y, mg_risk_catalogue *c)
{
    static const char *const keys[] = {"id", "name", "principle", "kinds", "potential",
                                       "cost_eur", "reach", "damage", "devices_per_day",
                                       "brute_force", "countered_by", "detected_by", "response",
                                       "source"};
    yaml_node_t *r = y_root(y), *n, *v;
    if (!y_is_map(y, r, "vectors file"))
        return false;
    static const char *const top[] = {"vectors"};
    y_check_keys(y, r, top, 1);
    if (!y_req(y, r, "vectors", &n) || !y_is_seq(y, n, "vectors"))
        return false;
    size_t len = y_seq_len(n);
    c->vectors = mg_arena_array(y->arena, len ? len : 1, sizeof(mg_risk_vector));
    const char **ids = mg_arena_array(y->arena, len ? len : 1, sizeof(char *));
    const char **mids = mg_arena_array(y->arena, c->n_measures ? c->n_measures : 1, sizeof(char *));
    if (c->vectors == NULL || ids == NULL || mids == NULL)
        return false;
    for (size_t i = 0; i < c->n_measures; i++)
        mids[i] = c->measures[i].id;
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *e = y_seq_at(y, n, i);
        mg_risk_vector *ve = &c->vectors[i];
        int k;
        if (!y_is_map(y, e, "a vector"))
            return false;
        y_check_keys(y, e, keys, sizeof(keys) / sizeof(keys[0]));
        ve->devices_per_day = 1;
        ve->response = "";
        if (!y_req_str(y, e, "id", &ve->id) || !y_req_str(y, e, "name", &ve->name) ||
            !y_req(y, e, "principle", &v) ||
            (k = y_enum(y, v, "principle", principle_names, 4)) < 0)
            return false;
        ve->principle = (mg_principle)k;
        if (!y_req(y, e, "kinds", &v) || !str_list(y, v, "kinds", &ve->kinds, &ve->n_kinds) ||
            !y_req(y, e, "potential", &v) || !load_potential(y, v, ve->level, true) ||
            !y_req(y, e, "cost_eur", &v) || !y_range(y, v, 0.01, 1e15, &ve->cost) ||
            !y_req(y, e, "reach", &v) || (k = y_enum(y, v, "reach", reach_names, 3)) < 0)
            return false;
        ve->reach = (mg_reach)k;
        if (!y_req(y, e, "damage", &v) || (k = y_enum(y, v, "damage", damage_names, 4)) < 0)
            return false;
        ve->damage = (mg_damage_kind)k;
        if (!y_opt_num(y, e, "devices_per_day", 0.001, 1e9, &ve->devices_per_day))
            return false;
        v = y_get(y, e, "brute_force");
        if (v != NULL) {
            if ((k = y_enum(y, v, "brute_force", brute_names, 3)) < 0)
                return false;
            ve->brute = (mg_brute)k;
        }
        v = y_get(y, e, "countered_by");
        if (v != NULL) {
            if (!y_is_seq(y, v, "countered_by"))
                return false;
            size_t ne = y_seq_len(v);
            ve->effects = mg_arena_array(y->arena, ne ? ne : 1, sizeof(mg_risk_effect));
            if (ve->effects == NULL)
                return false;
            for (size_t j = 0; j < ne; j++) {
                if (!load_effect(y, y_seq_at(y, v, j), c, mids, &ve->effects[j]))
                    return false;
                ve->n_effects = j + 1;
            }
        }
        v = y_get(y, e, "detected_by");
        if (v != NULL) {
            if (!y_is_seq(y, v, "detected_by"))
                return false;
            size_t nd = y_seq_len(v);
            ve->detected_by = mg_arena_array(y->arena, nd ? nd : 1, sizeof(int));
            if (ve->detected_by == NULL)
                return false;
            for (size_t j = 0; j < nd; j++) {
                if ((k = y_enum(y, y_seq_at(y, v, j), "measure", mids, c->n_measures)) < 0)
                    return false;
                ve->detected_by[j] = k;
                ve->n_detected_by = j + 1;
            }
        }
        if (!y_opt_str(y, e, "response", &ve->response) || !y_req_str(y, e, "source", &ve->source))
            return false;
        if (dup_id(y, e, ve->id, ids, i))
            return false;
        ids[i] = ve->id;
        c->n_vectors = i + 1;
    }
    return y->errors == 0;
}

/* ---- entry points --------------------------------------------------------------- */
typedef bool (*loader_fn)(ydoc *, mg_risk_catalogue *);

static bool load_one(const mg_risk_text *t, loader_fn fn, mg_risk_catalogue *c, mg_risk_diag *d)
{
    ydoc y;
    if (!y_load(&y, t->name, (const unsigned char *)t->data, t->len, d, c->arena)) {
        y_free(&y);
        return false;
    }
    bool ok = fn(&y, c);
    if (!ok && y.errors == 0)
        mg_diag_add(d, t->name, 1, 1, "out of memory", NULL);
    y_free(&y);
    return ok;
}

mg_err mg_risk_catalogue_load_texts(const mg_risk_text *att, const mg_risk_text *vec,
                                    const mg_risk_text *mea, const mg_risk_text *cal,
                                    mg_risk_catalogue *c, mg_risk_diag *d)
{
    memset(c, 0, sizeof(*c));
    c->arena = mg_arena_new();
    if (c->arena == NULL)
        return MG_ERR_BUF;
    bool ok = load_one(cal, load_calibration, c, d) && load_one(att, load_attackers, c, d) &&
              load_one(mea, load_measures, c, d) && load_one(vec, load_vectors, c, d);
    if (!ok) {
        mg_risk_catalogue_free(c);
        return MG_ERR_FORMAT;
    }
    if (c->n_attackers == 0 || c->n_vectors == 0) {
        mg_diag_add(d, att->name, 1, 1, "the catalogue has no attackers or no vectors", NULL);
        mg_risk_catalogue_free(c);
        return MG_ERR_FORMAT;
    }
    return MG_OK;
}

mg_err mg_risk_catalogue_load(const char *dir, mg_risk_catalogue *c, mg_risk_diag *d)
{
    static const char *const names[4] = {"attackers.yaml", "vectors.yaml", "measures.yaml",
                                         "calibration.yaml"};
    char path[4][PATH_MAX];
    unsigned char *buf[4] = {NULL, NULL, NULL, NULL};
    mg_risk_text t[4];
    mg_err e = MG_OK;
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < 4; i++) {
        size_t len = 0;
        int w = snprintf(path[i], sizeof(path[i]), "%s/%s", dir, names[i]);
        if (w < 0 || (size_t)w >= sizeof(path[i])) {
            mg_diag_add(d, dir, 1, 1, "catalogue path too long", NULL);
            e = MG_ERR_ARG;
            goto out;
        }
        buf[i] = mg_read_file(path[i], MAX_FILE, &len);
        if (buf[i] == NULL) {
            char msg[256];
            snprintf(msg, sizeof(msg), "cannot read the catalogue: %s", strerror(errno));
            mg_diag_add(d, path[i], 0, 0, msg,
                        "set --catalogue DIR or M2MGUARD_DATA_DIR to the data/risk directory");
            e = MG_ERR_ARG;
            goto out;
        }
        t[i].name = path[i];
        t[i].data = (const char *)buf[i];
        t[i].len = len;
    }
    e = mg_risk_catalogue_load_texts(&t[0], &t[1], &t[2], &t[3], c, d);
out:
    for (int i = 0; i < 4; i++)
        free(buf[i]);
    return e;
}

void mg_risk_catalogue_free(mg_risk_catalogue *c)
{
    if (c == NULL)
        return;
    mg_arena_free(c->arena);
    memset(c, 0, sizeof(*c));
}

int mg_risk_measure_find(const mg_risk_catalogue *c, const char *id)
{
    for (size_t i = 0; i < c->n_measures; i++)
        if (strcmp(c->measures[i].id, id) == 0)
            return (int)i;
    return -1;
}

int mg_risk_role_find(const mg_risk_catalogue *c, const char *id)
{
    for (size_t i = 0; i < c->n_roles; i++)
        if (strcmp(c->roles[i].id, id) == 0)
            return (int)i;
    return -1;
}
