/* Property tests of the risk engine, schema-error tests and determinism.
 *  - adding a measure never lowers the attack cost;
 *  - raising an attacker's budget never turns "not enough" into "enough";
 *  - the portfolio is secure enough and no cheaper feasible set exists
 *    (brute force over every placement on a small catalogue);
 *  - the same seed gives the same report; bad models are reported with their
 *    location; truncated models never crash the loader. */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "m2mguard/risk.h"

#ifndef MG_RISK_DATA
#error "MG_RISK_DATA must name data/risk"
#endif
#ifndef MG_RISK_EXAMPLES
#error "MG_RISK_EXAMPLES must name examples/"
#endif

static const char *const examples[] = {
    "risk-door-locks-sms.yaml", "risk-door-locks-secured.yaml", "risk-vending.yaml",
    "risk-smart-meters.yaml", "risk-payment-terminals.yaml"};
#define N_EX (sizeof(examples) / sizeof(examples[0]))

static mg_risk_catalogue cat;

static int setup(void **state)
{
    (void)state;
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    if (mg_risk_catalogue_load(MG_RISK_DATA, &cat, &d) != MG_OK) {
        fprintf(stderr, "%s", d.text);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_risk_catalogue_free(&cat);
    return 0;
}

static void load_example(const mg_risk_catalogue *c, size_t i, mg_risk_model *m)
{
    char path[1024];
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    snprintf(path, sizeof(path), "%s/%s", MG_RISK_EXAMPLES, examples[i]);
    mg_err e = mg_risk_model_load(path, c, m, &d);
    if (e != MG_OK)
        fprintf(stderr, "%s", d.text);
    assert_int_equal(e, MG_OK);
}

/* ---- property 1 ---------------------------------------------------------------- */
static void test_measure_never_lowers_cost(void **state)
{
    (void)state;
    size_t checked = 0;
    assert_true(cat.n_measures > 0);
    for (size_t ex = 0; ex < N_EX; ex++) {
        mg_risk_model m;
        load_example(&cat, ex, &m);
        uint64_t x = 0x243f6a8885a308d3ULL + ex;
        for (size_t t = 0; t < m.n_targets; t++)
            for (size_t v = 0; v < cat.n_vectors; v++) {
                if (!mg_risk_vector_targets(&cat, (int)v, &m.targets[t]))
                    continue;
                mg_risk_vt base;
                mg_risk_eval_vt(&m, &cat, m.year, (int)v, (int)t, NULL, 0, &base);
                /* every single measure, then random sets and their supersets */
                for (size_t me = 0; me < cat.n_measures; me++) {
                    int extra[1] = {(int)me};
                    mg_risk_vt w;
                    mg_risk_eval_vt(&m, &cat, m.year, (int)v, (int)t, extra, 1, &w);
                    assert_true(w.cost.lo >= base.cost.lo);
                    assert_true(w.cost.hi >= base.cost.hi);
                    assert_true(w.ap_cem >= base.ap_cem);
                    checked++;
                }
                for (int rep = 0; rep < 20; rep++) {
                    int set[8];
                    size_t n = 0;
                    for (size_t k = 0; k < 7; k++) {
                        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                        set[n++] = (int)((x >> 33) % (cat.n_measures ? cat.n_measures : 1));
                    }
                    mg_risk_vt a, b;
                    mg_risk_eval_vt(&m, &cat, m.year, (int)v, (int)t, set, n - 1, &a);
                    mg_risk_eval_vt(&m, &cat, m.year, (int)v, (int)t, set, n, &b);
                    assert_true(b.cost.lo >= a.cost.lo);
                    assert_true(b.cost.hi >= a.cost.hi);
                    /* a secure finding stays secure when a measure is added */
                    if (a.secure)
                        assert_true(b.secure);
                    checked++;
                }
            }
        mg_risk_model_free(&m);
    }
    assert_true(checked > 1000);
}

/* ---- property 2 ---------------------------------------------------------------- */
static void test_bigger_budget_never_helps(void **state)
{
    (void)state;
    for (size_t ex = 0; ex < N_EX; ex++) {
        mg_risk_model m;
        load_example(&cat, ex, &m);
        mg_risk_opts o = {.seed = 42, .draws = 300};
        mg_risk_result before, after;
        assert_int_equal(mg_risk_analyze(&m, &cat, &o, &before), MG_OK);
        static const double factors[] = {2, 20, 200};
        for (size_t fi = 0; fi < 3; fi++) {
            double k = factors[fi];
            mg_range saved[16];
            for (size_t a = 0; a < cat.n_attackers && a < 16; a++) {
                saved[a] = cat.attackers[a].budget;
                cat.attackers[a].budget.lo *= k;
                cat.attackers[a].budget.hi *= k;
            }
            assert_int_equal(mg_risk_analyze(&m, &cat, &o, &after), MG_OK);
            for (size_t a = 0; a < cat.n_attackers && a < 16; a++)
                cat.attackers[a].budget = saved[a];
            assert_int_equal(after.n_vts, before.n_vts);
            for (size_t i = 0; i < before.n_vts; i++) {
                if (!before.vts[i].secure)
                    assert_false(after.vts[i].secure);
                assert_true(after.vts[i].probability >= before.vts[i].probability);
                assert_true(after.vts[i].willingness >= before.vts[i].willingness);
            }
            if (!before.secure)
                assert_false(after.secure);
            mg_risk_result_free(&after);
        }
        mg_risk_result_free(&before);
        mg_risk_model_free(&m);
    }
}

/* ---- property 3: brute force on a small catalogue ------------------------------- */
static const char small_att[] =
    "attackers:\n"
    "  - {id: low, name: Low, budget_eur: [100, 1000], capability: 13, source: test}\n"
    "  - {id: high, name: High, budget_eur: [1000, 20000], capability: 19, source: test}\n";
static const char small_mea[] =
    "measures:\n"
    "  - {id: m_cheap, name: cheap, kinds: [x], role: r1, cost_per_device_eur: 0.5, cost_fixed_eur: 100, source: test}\n"
    "  - {id: m_mid, name: mid, kinds: [x, y], role: r1, cost_per_target_eur: 300, cost_fixed_eur: 1000, source: test}\n"
    "  - {id: m_big, name: big, kinds: [x, y], role: r2, cost_per_device_eur: 20, cost_fixed_eur: 5000, source: test}\n"
    "  - {id: m_det, name: det, kinds: [x, y], role: r2, cost_fixed_eur: 700, params: {time_to_detect_hours: 1}, source: test}\n"
    "  - {id: m_key, name: key, kinds: [y], role: r1, cost_per_device_eur: 1, cost_fixed_eur: 200, params: {key_bits: 128}, source: test}\n";
static const char small_vec[] =
    "vectors:\n"
    "  - id: v1\n    name: one\n    principle: authentication\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, window: unlimited, equipment: standard}\n"
    "    cost_eur: [50, 500]\n    reach: fleet\n    damage: manipulated\n    devices_per_day: 10\n"
    "    countered_by:\n      - {measure: m_cheap, cost_x: 5}\n      - {measure: m_mid, cost_x: 50}\n      - {measure: m_big, prevents: true}\n"
    "    detected_by: [m_det]\n    source: test\n"
    "  - id: v2\n    name: two\n    principle: integrity\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_week, expertise: proficient, knowledge: public, window: easy, equipment: standard}\n"
    "    cost_eur: [200, 2000]\n    reach: one\n    damage: stolen\n"
    "    countered_by:\n      - {measure: m_mid, cost_x: 20}\n      - {measure: m_big, cost_x: 100}\n      - {measure: m_cheap, raise: {expertise: multiple_experts, knowledge: critical}}\n"
    "    source: test\n"
    "  - id: v3\n    name: three\n    principle: availability\n    kinds: [y]\n"
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, window: unlimited, equipment: standard}\n"
    "    cost_eur: [10, 100]\n    reach: fleet\n    damage: outage\n"
    "    countered_by:\n      - {measure: m_mid, cost_x: 1000}\n      - {measure: m_big, prevents: true}\n"
    "    source: test\n"
    "  - id: v4\n    name: four\n    principle: confidentiality\n    kinds: [y]\n"
    "    potential: {elapsed_time: le_1_month, expertise: expert, knowledge: public, window: unlimited, equipment: standard}\n"
    "    cost_eur: [100, 1000]\n    reach: fleet\n    damage: stolen\n    brute_force: offline\n"
    "    countered_by:\n      - {measure: m_key}\n    source: test\n"
    "  - id: v5\n    name: five\n    principle: availability\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, window: unlimited, equipment: standard}\n"
    "    cost_eur: [10, 20]\n    reach: one\n    damage: outage\n    source: test\n";
/* The same vectors with additive and elapsed-time effects mixed in: the search
 * must stay exact under base * prod(cost_x) + sum(cost_add). v1 is closed against
 * High (20 000 EUR) by m_mid and m_cheap together (50 * 20 + 19 500 =
 * 20 500 > 20 000) or m_big alone; v2 by m_mid (200 + 25 000) or m_cheap's 200 extra days, which
 * lift the attack potential beyond High's capability; m_big on v2 is an exact tie
 * (200 * 100 = 20 000, not enough). */
static const char small_vec_add[] =
    "vectors:\n"
    "  - id: v1\n    name: one\n    principle: authentication\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, window: unlimited, equipment: standard}\n"
    "    cost_eur: [50, 500]\n    reach: fleet\n    damage: manipulated\n    devices_per_day: 10\n"
    "    countered_by:\n      - {measure: m_cheap, cost_add: 19500}\n      - {measure: m_mid, cost_x: 20}\n      - {measure: m_big, cost_add: 30000}\n"
    "    detected_by: [m_det]\n    source: test\n"
    "  - id: v2\n    name: two\n    principle: integrity\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_week, expertise: proficient, knowledge: public, window: easy, equipment: standard}\n"
    "    cost_eur: [200, 2000]\n    reach: one\n    damage: stolen\n"
    "    countered_by:\n      - {measure: m_mid, cost_add: 25000}\n      - {measure: m_big, cost_x: 100}\n      - {measure: m_cheap, add_days: 200}\n"
    "    source: test\n"
    "  - id: v3\n    name: three\n    principle: availability\n    kinds: [y]\n"
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, window: unlimited, equipment: standard}\n"
    "    cost_eur: [10, 100]\n    reach: fleet\n    damage: outage\n"
    "    countered_by:\n      - {measure: m_mid, cost_x: 100, cost_add: 10000}\n      - {measure: m_big, cost_add: 15000}\n      - {measure: m_key, cost_add: 5000}\n"
    "    source: test\n"
    "  - id: v5\n    name: five\n    principle: availability\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, window: unlimited, equipment: standard}\n"
    "    cost_eur: [10, 20]\n    reach: one\n    damage: outage\n    source: test\n";
static const char small_cal[] =
    "brute_force: {reference_year: 2024, trials_per_eur: 7.0e13, doubling_years: 2, source: test}\n"
    "online: {sms_eur: 0.05, sms_per_hour_max: 3600, restart_eur: 10, source: test}\n"
    "detection: {default_time_to_detect_days: 30, source: test}\n"
    "impact_thresholds_eur: {moderate: 10000, major: 100000, severe: 1000000, source: test}\n"
    "roles:\n  - {id: r1, name: Role one, duty: d1, source: test}\n"
    "  - {id: r2, name: Role two, duty: d2, source: test}\n";
static const char small_model[] =
    "system:\n  name: small\n  year: 2025\n  devices: 100\n"
    "  value_eur: {stolen_per_device: 50, manipulated_per_device: 100, outage_per_day: 1000}\n"
    "attackers: [low, high]\n"
    "nodes:\n  - {id: x1, kind: x}\n  - {id: x2, kind: x, per_device: true}\n  - {id: y1, kind: y}\n";

static void load_small_vec(mg_risk_catalogue *c, mg_risk_model *m, const char *vec)
{
    mg_risk_text a = {"att.yaml", small_att, sizeof(small_att) - 1};
    mg_risk_text v = {"vec.yaml", vec, strlen(vec)};
    mg_risk_text me = {"mea.yaml", small_mea, sizeof(small_mea) - 1};
    mg_risk_text ca = {"cal.yaml", small_cal, sizeof(small_cal) - 1};
    mg_risk_text mo = {"small.yaml", small_model, sizeof(small_model) - 1};
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    mg_err e = mg_risk_catalogue_load_texts(&a, &v, &me, &ca, c, &d);
    if (e != MG_OK)
        fprintf(stderr, "%s", d.text);
    assert_int_equal(e, MG_OK);
    e = mg_risk_model_load_text(&mo, c, m, &d);
    if (e != MG_OK)
        fprintf(stderr, "%s", d.text);
    assert_int_equal(e, MG_OK);
}

static bool fits(const mg_risk_catalogue *c, int me, const mg_risk_target *t)
{
    for (size_t k = 0; k < c->measures[me].n_kinds; k++)
        if (strcmp(c->measures[me].kinds[k], t->kind) == 0)
            return true;
    return false;
}

/* Are all findings that can be closed at all closed by these placements? */
static bool feasible(const mg_risk_model *m, const mg_risk_catalogue *c, const int *pm,
                     const int *pt, size_t np, const bool *closable, const mg_risk_result *r)
{
    for (size_t i = 0; i < r->n_vts; i++) {
        if (r->vts[i].secure || !closable[i])
            continue;
        int ex[64];
        size_t ne = 0;
        for (size_t k = 0; k < np; k++)
            if (pt[k] == r->vts[i].target)
                ex[ne++] = pm[k];
        mg_risk_vt w;
        mg_risk_eval_vt(m, c, r->year, r->vts[i].vector, r->vts[i].target, ex, ne, &w);
        if (!w.secure)
            return false;
    }
    return true;
}

static void portfolio_is_cheapest(const char *vec)
{
    mg_risk_catalogue c;
    mg_risk_model m;
    load_small_vec(&c, &m, vec);
    mg_risk_opts o = {.seed = 3, .draws = 200};
    mg_risk_result r;
    assert_int_equal(mg_risk_analyze(&m, &c, &o, &r), MG_OK);
    assert_false(r.secure);
    assert_true(r.portfolio_exact);
    /* every placement of every measure on every node: the brute-force universe */
    int um[64], ut[64];
    size_t nu = 0;
    for (size_t t = 0; t < m.n_targets; t++)
        for (size_t me = 0; me < c.n_measures; me++)
            if (fits(&c, (int)me, &m.targets[t])) {
                um[nu] = (int)me;
                ut[nu] = (int)t;
                nu++;
            }
    assert_true(nu <= 20);
    bool closable[256];
    assert_true(r.n_vts <= 256);
    for (size_t i = 0; i < r.n_vts; i++) {
        closable[i] = true;
        int single_m[1];
        (void)single_m;
        int ex[64];
        size_t ne = 0;
        for (size_t k = 0; k < nu; k++)
            if (ut[k] == r.vts[i].target)
                ex[ne++] = um[k];
        mg_risk_vt w;
        mg_risk_eval_vt(&m, &c, r.year, r.vts[i].vector, r.vts[i].target, ex, ne, &w);
        closable[i] = w.secure;
    }
    size_t unclosable = 0;
    for (size_t i = 0; i < r.n_vts; i++)
        unclosable += !r.vts[i].secure && !closable[i];
    assert_int_equal(unclosable, r.n_unclosable);
    assert_true(unclosable >= 1); /* v5 on x1 and x2: nothing counters it */
    double best = INFINITY;
    size_t best_n = SIZE_MAX;
    for (unsigned long g = 0; g < (1ul << nu); g++) {
        int pm[64], pt[64];
        size_t np = 0;
        double cost = 0;
        bool paid[64] = {false};
        for (size_t k = 0; k < nu; k++)
            if (g & (1ul << k)) {
                pm[np] = um[k];
                pt[np] = ut[k];
                np++;
                cost += mg_risk_place_cost(&m, &c, um[k], ut[k]);
                if (!paid[um[k]]) {
                    paid[um[k]] = true;
                    cost += c.measures[um[k]].cost_fixed;
                }
            }
        if (cost < best - 1e-6 && feasible(&m, &c, pm, pt, np, closable, &r)) {
            best = cost;
            best_n = np;
        } else if (fabs(cost - best) <= 1e-6 && np < best_n &&
                   feasible(&m, &c, pm, pt, np, closable, &r)) {
            best_n = np;
        }
    }
    assert_true(isfinite(best));
    /* the engine's portfolio is feasible ... */
    int pm[64], pt[64];
    for (size_t k = 0; k < r.n_picks; k++) {
        pm[k] = r.picks[k].measure;
        pt[k] = r.picks[k].target;
    }
    assert_true(feasible(&m, &c, pm, pt, r.n_picks, closable, &r));
    /* ... and no cheaper feasible set exists */
    assert_true(fabs(r.portfolio_cost - best) < 1e-6);
    /* ... and among the cheapest it has the fewest measures */
    assert_int_equal(r.n_picks, best_n);
    assert_int_equal(r.achievable, r.n_unclosable == 0);
    assert_int_equal(r.n_gaps, r.n_unclosable);
    assert_true(r.portfolio_lower_bound <= r.portfolio_cost + 1e-6);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
}

static void test_portfolio_is_cheapest(void **state)
{
    (void)state;
    portfolio_is_cheapest(small_vec);
}

static void test_portfolio_is_cheapest_additive(void **state)
{
    (void)state;
    portfolio_is_cheapest(small_vec_add);
}

/* On the examples: the portfolio closes every closable finding. */
static void test_portfolio_closes_examples(void **state)
{
    (void)state;
    for (size_t ex = 0; ex < N_EX; ex++) {
        mg_risk_model m;
        load_example(&cat, ex, &m);
        mg_risk_opts o = {.seed = 1, .draws = 100};
        mg_risk_result r;
        assert_int_equal(mg_risk_analyze(&m, &cat, &o, &r), MG_OK);
        for (size_t k = 0; k < r.n_picks; k++)
            assert_int_equal(mg_risk_model_add_measure(&m, &cat, (size_t)r.picks[k].target,
                                                       r.picks[k].measure),
                             MG_OK);
        mg_risk_result r2;
        assert_int_equal(mg_risk_analyze(&m, &cat, &o, &r2), MG_OK);
        assert_int_equal(r2.n_insecure, r.n_unclosable);
        assert_true(r.portfolio_lower_bound <= r.portfolio_cost + 1e-6);
        assert_true(r2.residual <= r.residual + 1e-6);
        mg_risk_result_free(&r2);
        mg_risk_result_free(&r);
        mg_risk_model_free(&m);
    }
}

/* ---- determinism ----------------------------------------------------------------- */
static char *json_of(const mg_risk_model *m, uint64_t seed, size_t *len)
{
    mg_risk_opts o = {.seed = seed, .draws = 500};
    mg_risk_result r;
    char *buf = NULL;
    assert_int_equal(mg_risk_analyze(m, &cat, &o, &r), MG_OK);
    FILE *f = open_memstream(&buf, len);
    assert_non_null(f);
    assert_int_equal(mg_risk_write_json(f, &r), MG_OK);
    fclose(f);
    mg_risk_result_free(&r);
    return buf;
}

static void test_deterministic(void **state)
{
    (void)state;
    mg_risk_model m;
    load_example(&cat, 0, &m);
    size_t la, lb, lc;
    char *a = json_of(&m, 7, &la), *b = json_of(&m, 7, &lb), *c = json_of(&m, 8, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_true(la != lc || memcmp(a, c, la) != 0); /* another seed, other draws */
    free(a);
    free(b);
    free(c);
    mg_risk_model_free(&m);
}

/* ---- schema errors ------------------------------------------------------------------ */
static void expect_error(const char *text, const char *want)
{
    mg_risk_text t = {"bad.yaml", text, strlen(text)};
    mg_risk_model m;
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    assert_int_equal(mg_risk_model_load_text(&t, &cat, &m, &d), MG_ERR_FORMAT);
    if (strstr(d.text, want) == NULL) {
        fprintf(stderr, "wanted '%s' in:\n%s", want, d.text);
        fail();
    }
}

static void test_schema_errors(void **state)
{
    (void)state;
    expect_error("system:\n  name: x\n  yeer: 2025\n",
                 "bad.yaml:3:3: unknown key 'yeer' (hint: did you mean 'year'?)");
    expect_error("system: [\n", "bad.yaml:2:1: YAML syntax error");
    expect_error("system:\n  name: x\n  year: 2025\n  devices: 10\n  value_eur: {}\n"
                 "attackers: [fraud, mafia]\nnodes:\n  - {id: a, kind: backend}\n",
                 "bad.yaml:6:20: unknown attacker 'mafia' (key: attackers[1])");
    expect_error("system:\n  name: x\n  year: 2025\n  devices: 10\n  value_eur: {}\n"
                 "attackers: [fraud]\nnodes:\n  - {id: a, kind: backend, measures: [secure_elemnt]}\n",
                 "bad.yaml:8:39: unknown measure 'secure_elemnt' (key: measures[0]) (hint: did you mean 'secure_element'?)");
    expect_error("system:\n  name: x\n  year: 2025\n  devices: 10\n  value_eur: {}\n"
                 "attackers: [fraud]\nnodes:\n  - {id: a, kind: backend, measures: [lte_only]}\n",
                 "measure 'lte_only' cannot be placed on a backend (key: measures[0]) (hint: it fits on: radio modem)");
    expect_error("system:\n  name: x\n  year: 2025\n  devices: -3\n  value_eur: {}\n",
                 "bad.yaml:4:12: -3 is out of range (key: devices)");
    expect_error("system:\n  name: x\n  year: 2025\n  value_eur: {}\n",
                 "the system has no device count");
    expect_error("system:\n  name: x\n  year: 2025\n  devices: 10\n  value_eur: {}\n"
                 "attackers: [fraud]\nnodes:\n  - {id: a, kind: toaster}\n",
                 "bad.yaml:8:19: unknown kind 'toaster'");
    expect_error("system:\n  name: x\n  year: 2025\n  devices: 10\n  value_eur: {}\n"
                 "attackers: [fraud]\nnodes:\n  - {id: a, kind: backend}\n"
                 "links:\n  - {id: l, kind: ip, from: a, to: nowhere}\n",
                 "link end 'nowhere' is not a node");
    expect_error("system:\n  name: x\n  year: 2025\n  devices: 10\n  value_eur: {}\n"
                 "attackers: [fraud]\nnodes:\n  - {id: a, kind: backend, measures: [{id: detection, key_bits: 128}]}\n",
                 "measure 'detection' has no parameter 'key_bits'");
}

/* Every prefix of a real model loads or fails cleanly; none crashes. */
static void test_truncated_models(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", MG_RISK_EXAMPLES, examples[1]);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    size_t ok = 0;
    for (size_t len = 0; len <= n; len++) {
        mg_risk_text t = {"cut.yaml", buf, len};
        mg_risk_model m;
        mg_risk_diag d;
        mg_risk_diag_init(&d);
        mg_err e = mg_risk_model_load_text(&t, &cat, &m, &d);
        assert_true(e == MG_OK || e == MG_ERR_FORMAT);
        if (e == MG_OK) {
            ok++;
            mg_risk_opts o = {.seed = 1, .draws = 10};
            mg_risk_result r;
            assert_int_equal(mg_risk_analyze(&m, &cat, &o, &r), MG_OK);
            mg_risk_result_free(&r);
            mg_risk_model_free(&m);
        } else {
            assert_true(d.count > 0);
        }
    }
    assert_true(ok > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measure_never_lowers_cost),
        cmocka_unit_test(test_bigger_budget_never_helps),
        cmocka_unit_test(test_portfolio_is_cheapest),
        cmocka_unit_test(test_portfolio_is_cheapest_additive),
        cmocka_unit_test(test_portfolio_closes_examples),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_schema_errors),
        cmocka_unit_test(test_truncated_models),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
