/* Hand-worked cases of the risk engine (issue 13). Every expected figure is
 * worked out in the comment above its assertion, from the catalogue and model
 * texts in this file, so a reader can check the arithmetic by hand.
 * Method: docs/risk-method.md. */
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
#include "../../src/risk/risk_internal.h"

/* One attacker with a fixed budget (lo == hi, so the Monte Carlo has no spread),
 * no gain cap: it spends exactly 1000 EUR. Capability 19 (moderate). */
static const char att[] =
    "attackers:\n"
    "  - {id: crook, name: Crook, budget_eur: [1000, 1000], capability: 19, source: test}\n"
    "  - {id: vandal, name: Vandal, budget_eur: [50, 50], capability: 19, source: test}\n";
static const char mea[] =
    "measures:\n"
    "  - {id: m_add, name: add, kinds: [x], role: r1, cost_fixed_eur: 300, source: test}\n"
    "  - {id: m_mul, name: mul, kinds: [x], role: r1, cost_fixed_eur: 300, source: test}\n"
    "  - {id: m_days, name: days, kinds: [x], role: r1, cost_fixed_eur: 50, source: test}\n"
    "  - {id: a_twin, name: twin a, kinds: [y], role: r1, cost_fixed_eur: 400, source: test}\n"
    "  - {id: b_twin, name: twin b, kinds: [y], role: r1, cost_fixed_eur: 400, source: test}\n"
    "  - {id: c_half, name: half c, kinds: [y], role: r1, cost_fixed_eur: 200, source: test}\n"
    "  - {id: d_half, name: half d, kinds: [y], role: r1, cost_fixed_eur: 200, source: test}\n"
    "  - {id: m_weak, name: weak, kinds: [z], role: r1, cost_fixed_eur: 10, source: test}\n"
    "  - {id: m_key, name: key, kinds: [k], role: r1, params: {key_bits: 128}, source: test}\n";
#define POT_LOW                                                                              \
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, window: " \
    "unlimited, equipment: standard}\n"
static const char vec[] =
    "vectors:\n"
    /* tie: cost exactly the attacker's 1000 EUR */
    "  - id: v_tie\n    name: tie\n    principle: integrity\n    kinds: [t]\n" POT_LOW
    "    cost_eur: [1000, 1000]\n    reach: one\n    damage: stolen\n    source: test\n"
    /* additive and multiplicative effects on one vector */
    "  - id: v_mix\n    name: mix\n    principle: integrity\n    kinds: [x]\n" POT_LOW
    "    cost_eur: [50, 100]\n    reach: one\n    damage: stolen\n"
    "    countered_by:\n      - {measure: m_add, cost_add: 600}\n"
    "      - {measure: m_mul, cost_x: 4}\n      - {measure: m_days, add_days: 30}\n"
    "    source: test\n"
    /* portfolio ties: a_twin or b_twin alone (400 EUR each), or c_half + d_half (400 EUR) */
    "  - id: v_twin\n    name: twin\n    principle: integrity\n    kinds: [y]\n" POT_LOW
    "    cost_eur: [100, 100]\n    reach: one\n    damage: stolen\n"
    "    countered_by:\n      - {measure: b_twin, prevents: true}\n"
    "      - {measure: a_twin, prevents: true}\n"
    "      - {measure: c_half, cost_add: 500}\n      - {measure: d_half, cost_add: 500}\n"
    "    source: test\n"
    /* unclosable: the only measure doubles 100 EUR to 200 EUR against 1000 EUR */
    "  - id: v_gap\n    name: gap\n    principle: availability\n    kinds: [z]\n" POT_LOW
    "    cost_eur: [100, 300]\n    reach: one\n    damage: stolen\n"
    "    countered_by:\n      - {measure: m_weak, cost_x: 2}\n    source: test\n"
    /* offline key search against the key of m_key */
    "  - id: v_key\n    name: key search\n    principle: confidentiality\n    kinds: [k]\n" POT_LOW
    "    cost_eur: [10, 10]\n    reach: one\n    damage: stolen\n    brute_force: offline\n"
    "    countered_by:\n      - {measure: m_key}\n    source: test\n";
static const char cal[] =
    "brute_force: {reference_year: 2024, trials_per_eur: 7.0e13, doubling_years: 2, source: test}\n"
    "online: {sms_eur: 0.05, sms_per_hour_max: 3600, restart_eur: 10, source: test}\n"
    "detection: {default_time_to_detect_days: 30, source: test}\n"
    "impact_thresholds_eur: {moderate: 10000, major: 100000, severe: 1000000, source: test}\n"
    "roles:\n  - {id: r1, name: Role one, duty: d1, source: test}\n";

static void load(const char *model, mg_risk_catalogue *c, mg_risk_model *m)
{
    mg_risk_text a = {"att.yaml", att, sizeof(att) - 1};
    mg_risk_text v = {"vec.yaml", vec, sizeof(vec) - 1};
    mg_risk_text me = {"mea.yaml", mea, sizeof(mea) - 1};
    mg_risk_text ca = {"cal.yaml", cal, sizeof(cal) - 1};
    mg_risk_text mo = {"case.yaml", model, strlen(model)};
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

#define MODEL(kind)                                                                     \
    "system:\n  name: case\n  year: 2025\n  devices: 10\n"                              \
    "  value_eur: {stolen_per_device: 5000, manipulated_per_device: 1, outage_per_day: 1}\n" \
    "attackers: [crook]\nnodes:\n  - {id: n1, kind: " kind "}\n"

static int vindex(const mg_risk_catalogue *c, const char *id)
{
    for (size_t i = 0; i < c->n_vectors; i++)
        if (strcmp(c->vectors[i].id, id) == 0)
            return (int)i;
    fail();
    return -1;
}

/* 1. Tie. cost [1000, 1000], the crook spends 1000: cost <= willingness, so the
 * attack happens: not secure, margin 1000 - 1000 = 0, and in every Monte Carlo
 * draw cost 1000 <= budget 1000, so probability 1 and the demand is the whole
 * worst damage: one device stolen, 5000 EUR (reach one, no publicity).
 * Before the fix the draws used cost < budget: probability 0, demand 0. */
static void test_tie(void **state)
{
    (void)state;
    mg_risk_catalogue c;
    mg_risk_model m;
    load(MODEL("t"), &c, &m);
    mg_risk_opts o = {.seed = 1, .draws = 100};
    mg_risk_result r;
    assert_int_equal(mg_risk_analyze(&m, &c, &o, &r), MG_OK);
    assert_int_equal(r.n_vts, 1);
    assert_false(r.vts[0].secure);
    assert_true(r.vts[0].margin == 0.0);
    assert_true(r.vts[0].probability == 1.0);
    assert_true(r.vts[0].damage_worst == 5000.0);
    assert_true(r.vts[0].demand == 5000.0);
    assert_true(r.residual == 5000.0);
    /* nothing counters it: unclosable, the crook still profits by 0 EUR */
    assert_false(r.achievable);
    assert_int_equal(r.n_gaps, 1);
    assert_true(r.gaps[0].margin_all == 0.0);
    assert_true(r.gaps[0].close_eur == 0.0);
    /* residual after the (empty) portfolio keeps the tie's demand */
    assert_true(r.residual_after == 5000.0);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
}

/* 3. Additive, multiplicative and elapsed-time effects, order-independent.
 * v_mix cost [50, 100]:
 *   m_add alone:   [50 + 600, 100 + 600]          = [650, 700]   -> 650 <= 1000: not secure
 *   m_mul alone:   [50 * 4, 100 * 4]              = [200, 400]   -> not secure
 *   both:          [50 * 4 + 600, 100 * 4 + 600]  = [800, 1000]  -> not secure (margin -200)
 *   (in either order of the extra list: the rule is base * prod(x) + sum(add))
 *   m_days: elapsed le_1_day (bound 1 day) + 30 days = 31 days -> le_2_months,
 *   CEM value 7 (was 0): AP = 7 + 0 + 0 + 0 + 0 = 7 (basic band still). */
static void test_additive(void **state)
{
    (void)state;
    mg_risk_catalogue c;
    mg_risk_model m;
    load(MODEL("x"), &c, &m);
    int v = vindex(&c, "v_mix");
    int ma = mg_risk_measure_find(&c, "m_add"), mm = mg_risk_measure_find(&c, "m_mul"),
        md = mg_risk_measure_find(&c, "m_days");
    mg_risk_vt x;
    int one[1] = {ma};
    mg_risk_eval_vt(&m, &c, 2025, v, 0, one, 1, &x);
    assert_true(x.cost.lo == 650.0 && x.cost.hi == 700.0);
    int ab[2] = {ma, mm}, ba[2] = {mm, ma};
    mg_risk_eval_vt(&m, &c, 2025, v, 0, ab, 2, &x);
    assert_true(x.cost.lo == 800.0 && x.cost.hi == 1000.0);
    assert_true(x.margin == -200.0);
    assert_false(x.secure);
    mg_risk_vt y;
    mg_risk_eval_vt(&m, &c, 2025, v, 0, ba, 2, &y);
    assert_true(y.cost.lo == x.cost.lo && y.cost.hi == x.cost.hi);
    mg_risk_eval_vt(&m, &c, 2025, v, 0, NULL, 0, &x);
    assert_int_equal(x.ap_cem, 0);
    int d1[1] = {md};
    mg_risk_eval_vt(&m, &c, 2025, v, 0, d1, 1, &x);
    assert_int_equal(x.ap_cem, 7);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
}

/* 8. Portfolio ties. v_twin costs 100 <= 1000. Closing sets, each 400 EUR
 * (fixed costs only, no per-device cost): {a_twin}, {b_twin} (prevent),
 * {c_half, d_half} (100 + 500 + 500 = 1100 > 1000). Fewer measures first
 * excludes the pair; names in order pick a_twin before b_twin, although b_twin
 * is listed first in the vector and the catalogue order is a, b. */
static void test_portfolio_tie(void **state)
{
    (void)state;
    mg_risk_catalogue c;
    mg_risk_model m;
    load(MODEL("y"), &c, &m);
    mg_risk_opts o = {.seed = 1, .draws = 50};
    mg_risk_result r;
    assert_int_equal(mg_risk_analyze(&m, &c, &o, &r), MG_OK);
    assert_true(r.portfolio_exact);
    assert_true(r.achievable);
    assert_int_equal(r.n_gaps, 0);
    assert_int_equal(r.n_picks, 1);
    assert_string_equal(c.measures[r.picks[0].measure].id, "a_twin");
    assert_true(r.portfolio_cost == 400.0);
    /* the pair alone would close it too, at the same 400 EUR */
    int pair[2] = {mg_risk_measure_find(&c, "c_half"), mg_risk_measure_find(&c, "d_half")};
    mg_risk_vt x;
    mg_risk_eval_vt(&m, &c, 2025, r.vts[0].vector, 0, pair, 2, &x);
    assert_true(x.secure && x.cost.lo == 1100.0);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
}

/* 4. No sufficient measure set. v_gap [100, 300]; with every available measure
 * (m_weak, cost_x 2): [200, 600]; the crook spends 1000: margin 200 - 1000 =
 * -800, a measure outside the catalogue must add more than 800 EUR. The engine
 * claims no portfolio for it: not achievable, no pick. */
static void test_unclosable(void **state)
{
    (void)state;
    mg_risk_catalogue c;
    mg_risk_model m;
    load(MODEL("z"), &c, &m);
    mg_risk_opts o = {.seed = 1, .draws = 50};
    mg_risk_result r;
    assert_int_equal(mg_risk_analyze(&m, &c, &o, &r), MG_OK);
    assert_false(r.secure);
    assert_false(r.achievable);
    assert_int_equal(r.n_unclosable, 1);
    assert_int_equal(r.n_gaps, 1);
    const mg_risk_gap *g = &r.gaps[0];
    assert_string_equal(c.vectors[r.vts[g->vt].vector].id, "v_gap");
    assert_string_equal(m.targets[r.vts[g->vt].target].id, "n1");
    assert_string_equal(c.attackers[g->attacker].id, "crook");
    assert_true(g->cost_lo_all == 200.0);
    assert_true(g->willingness_all == 1000.0);
    assert_true(g->margin_all == -800.0);
    assert_true(g->close_eur == 800.0);
    assert_int_equal(r.n_picks, 0);
    assert_true(r.portfolio_cost == 0.0);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
}

/* 5. Which attackers use a vector, and with what probability.
 * v_tie costs 1000 (tie with the crook, see case 1). */
#define MODEL5(att, vecs)                                                               \
    "system:\n  name: case\n  year: 2025\n  devices: 10\n"                              \
    "  value_eur: {stolen_per_device: 5000, manipulated_per_device: 1, outage_per_day: 1}\n" \
    "attackers: " att "\nnodes:\n  - {id: n1, kind: t}\n" vecs

static void analyze5(const char *model, mg_risk_result *r, mg_risk_catalogue *c,
                     mg_risk_model *m)
{
    load(model, c, m);
    mg_risk_opts o = {.seed = 1, .draws = 100};
    assert_int_equal(mg_risk_analyze(m, c, &o, r), MG_OK);
    assert_int_equal(r->n_vts, 1);
}

static void test_attackers_and_probability(void **state)
{
    (void)state;
    mg_risk_catalogue c;
    mg_risk_model m;
    mg_risk_result r;
    /* (a) only the vandal (50 EUR) uses v_tie: willingness 50, secure,
     * margin 1000 - 50 = 950; 1000 <= 50 in no draw: probability 0, demand 0 */
    analyze5(MODEL5("[crook, vandal]", "vectors:\n  - {vector: v_tie, attackers: [vandal]}\n"),
             &r, &c, &m);
    assert_true(r.vts[0].secure);
    assert_true(r.vts[0].willingness == 50.0);
    assert_string_equal(c.attackers[r.vts[0].worst_attacker].id, "vandal");
    assert_true(r.vts[0].margin == 950.0);
    assert_true(r.vts[0].probability == 0.0);
    assert_true(r.residual == 0.0);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
    /* (b) the analyst's per-vector probability 0.25: the crook's tie happens in
     * every draw, P = 1 x 0.25 = 0.25; demand 0.25 x 5000 = 1250 EUR. The
     * verdict does not change (not secure, margin 0). */
    analyze5(MODEL5("[crook, vandal]", "vectors:\n  - {vector: v_tie, probability: 0.25}\n"), &r,
             &c, &m);
    assert_false(r.vts[0].secure);
    assert_true(r.vts[0].probability == 0.25);
    assert_true(r.vts[0].demand == 1250.0);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
    /* (c) per-attacker probability 0.4 for the crook: P = 0.4, demand 2000 EUR */
    analyze5(MODEL5("[{id: crook, probability: 0.4}]", ""), &r, &c, &m);
    assert_true(r.vts[0].probability == 0.4);
    assert_true(r.vts[0].demand == 2000.0);
    assert_true(r.p_attacker[0] == 0.4);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
}

static void expect_model_error(const char *model, const char *want)
{
    mg_risk_catalogue c;
    mg_risk_model m;
    mg_risk_text a = {"att.yaml", att, sizeof(att) - 1};
    mg_risk_text v = {"vec.yaml", vec, sizeof(vec) - 1};
    mg_risk_text me = {"mea.yaml", mea, sizeof(mea) - 1};
    mg_risk_text ca = {"cal.yaml", cal, sizeof(cal) - 1};
    mg_risk_text mo = {"case.yaml", model, strlen(model)};
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    assert_int_equal(mg_risk_catalogue_load_texts(&a, &v, &me, &ca, &c, &d), MG_OK);
    assert_int_equal(mg_risk_model_load_text(&mo, &c, &m, &d), MG_ERR_FORMAT);
    if (strstr(d.text, want) == NULL) {
        fprintf(stderr, "wanted '%s' in:\n%s", want, d.text);
        fail();
    }
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
}

/* Bad inputs: FILE:LINE:COLUMN, the message and the key. Line 6 is attackers:,
 * line 10 the vectors entry. */
static void test_bad_inputs(void **state)
{
    (void)state;
    expect_model_error(MODEL5("[crook]", "vectors:\n  - {vector: v_tie, probability: 1.5}\n"),
                       "case.yaml:10:34: 1.5 is out of range (key: probability)");
    expect_model_error(MODEL5("[crook]", "vectors:\n  - {vector: v_nope}\n"),
                       "case.yaml:10:14: unknown vector 'v_nope' (key: vector)");
    expect_model_error(MODEL5("[crook]", "vectors:\n  - {vector: v_tie, attackers: [vandal]}\n"),
                       "case.yaml:10:33: attacker 'vandal' is not in scope (key: attackers[0])");
    expect_model_error(MODEL5("[{id: crook, probability: -0.1}]", ""),
                       "case.yaml:6:38: -0.1 is out of range (key: probability)");
    /* a negative cost in the catalogue */
    static const char badvec[] =
        "vectors:\n  - id: v\n    name: v\n    principle: integrity\n    kinds: [t]\n" POT_LOW
        "    cost_eur: [-5, 10]\n    reach: one\n    damage: stolen\n    source: test\n";
    mg_risk_text a = {"att.yaml", att, sizeof(att) - 1};
    mg_risk_text v = {"vec.yaml", badvec, sizeof(badvec) - 1};
    mg_risk_text me = {"mea.yaml", mea, sizeof(mea) - 1};
    mg_risk_text ca = {"cal.yaml", cal, sizeof(cal) - 1};
    mg_risk_catalogue c;
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    assert_int_equal(mg_risk_catalogue_load_texts(&a, &v, &me, &ca, &c, &d), MG_ERR_FORMAT);
    if (strstr(d.text, "vec.yaml:7:16: -5 is out of range (key: cost_eur[0])") == NULL) {
        fprintf(stderr, "%s", d.text);
        fail();
    }
    mg_risk_catalogue_free(&c);
}

/* 6. Secure until and policy. Node k with m_key as two-key TDEA (80-bit
 * security strength, SP 800-57 Part 1 Table 2). Calibration: T0 = 7e13
 * trials/EUR in 2024, cost halves every 2 years. The crook spends 1000 EUR.
 *  cost in 2025 = 2^79 / (7e13 * 2^(1/2)) = 6 105 997 464 EUR > 1000: secure;
 *  secure until y = 2024 + 2 * (79 - log2(7e13 * 1000)) = 2024 + 2 * 23.0418
 *                 = 2070.08 -> "computationally secure until 2070";
 *  policy: SP 800-131A Rev. 1, two-key TDEA encryption disallowed after 2015
 *                 -> "disallowed by policy since 2016".
 *  worst case (2^80 trials): y = 2024 + 2 * 24.0418 = 2072.08, cost doubled.
 *  budgets growing 10 %/year: W(y) = 1000 * 1.1^(y - 2024), L = log2 1.1 = 0.137504,
 *                 y = 2024 + 23.0418 / (1/2 + 0.137504) = 2060.14.
 * A finding without a key (case 1) is "not limited by key length". */
#define MODEL6                                                                          \
    "system:\n  name: case\n  year: 2025\n  devices: 10\n"                              \
    "  value_eur: {stolen_per_device: 5000, manipulated_per_device: 1, outage_per_day: 1}\n" \
    "attackers: [crook]\nnodes:\n  - {id: n1, kind: k, measures: [{id: m_key, algorithm: 3des2}]}\n"

static void test_secure_until_policy(void **state)
{
    (void)state;
    mg_risk_catalogue c;
    mg_risk_model m;
    mg_risk_result r;
    mg_risk_opts o = {.seed = 1, .draws = 50};
    load(MODEL6, &c, &m);
    assert_int_equal(mg_risk_analyze(&m, &c, &o, &r), MG_OK);
    assert_int_equal(r.n_vts, 1);
    const mg_risk_vt *x = &r.vts[0];
    assert_true(x->secure);
    assert_true(fabs(x->cost.lo - 6105997464.292923) < 1e-3);
    assert_true(fabs(x->secure_until - 2070.083591119489) < 1e-9);
    assert_true(x->key_limited && r.key_limited);
    assert_true(x->disallowed_since == 2016.0);
    assert_non_null(x->policy);
    assert_non_null(strstr(x->policy, "two-key TDEA"));
    assert_true(r.disallowed_since == 2016.0);
    assert_int_equal(r.disallowed_vt, 0);
    mg_risk_result_free(&r);

    c.calib.worst_case = true;
    assert_int_equal(mg_risk_analyze(&m, &c, &o, &r), MG_OK);
    assert_true(fabs(r.vts[0].secure_until - 2072.083591119489) < 1e-9);
    assert_true(fabs(r.vts[0].cost.lo - 2 * 6105997464.292923) < 1e-3);
    mg_risk_result_free(&r);

    c.calib.worst_case = false;
    c.calib.budget_growth = 0.1;
    assert_int_equal(mg_risk_analyze(&m, &c, &o, &r), MG_OK);
    assert_true(fabs(r.vts[0].willingness - 1100.0) < 1e-9); /* 1000 * 1.1^(2025-2024) */
    assert_true(fabs(r.vts[0].secure_until - 2060.1437932518515) < 1e-9);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);

    /* policy table itself */
    const char *src = NULL;
    assert_true(mg_risk_policy_disallowed(MG_RISK_ALG_3DES3, 112, &src) == 2024.0);
    assert_non_null(strstr(src, "three-key TDEA"));
    assert_true(isinf(mg_risk_policy_disallowed(MG_RISK_ALG_AES128, 128, &src)));
    assert_null(src);
    assert_true(mg_risk_policy_disallowed(MG_RISK_ALG_NONE, 112, &src) == 2031.0);
    assert_true(mg_risk_policy_disallowed(MG_RISK_ALG_NONE, 96, &src) == 2014.0);

    /* no key: never "already broken" */
    load(MODEL("t"), &c, &m);
    assert_int_equal(mg_risk_analyze(&m, &c, &o, &r), MG_OK);
    assert_false(r.secure);
    assert_false(r.key_limited);
    assert_true(isinf(r.secure_until) && r.secure_until > 0);
    assert_true(isinf(r.disallowed_since));
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&c);
}

/* 2. Exact JSON numbers: 1 234 567 EUR is "1234567" (was "1.23457e+06");
 * 0.1 keeps the digits that read back as the same double; 2^53 + 2 is not
 * printed as an integer literal that would lose its meaning; inf is null. */
static void test_json_numbers(void **state)
{
    (void)state;
    char b[40];
    mg_json_num_fmt(b, sizeof(b), 1234567.0);
    assert_string_equal(b, "1234567");
    mg_json_num_fmt(b, sizeof(b), 1e15);
    assert_string_equal(b, "1000000000000000");
    mg_json_num_fmt(b, sizeof(b), 0.1);
    assert_string_equal(b, "0.1");
    mg_json_num_fmt(b, sizeof(b), 1234567.25);
    assert_string_equal(b, "1234567.25");
    mg_json_num_fmt(b, sizeof(b), 1.0 / 3.0);
    assert_true(strtod(b, NULL) == 1.0 / 3.0);
    mg_json_num_fmt(b, sizeof(b), -0.0);
    assert_string_equal(b, "0");
    mg_json_num_fmt(b, sizeof(b), INFINITY);
    assert_string_equal(b, "null");
    mg_json_num_fmt(b, sizeof(b), 9007199254740994.0);
    assert_true(strtod(b, NULL) == 9007199254740994.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tie),           cmocka_unit_test(test_additive),
        cmocka_unit_test(test_portfolio_tie), cmocka_unit_test(test_unclosable),
        cmocka_unit_test(test_json_numbers),  cmocka_unit_test(test_attackers_and_probability),
        cmocka_unit_test(test_bad_inputs),    cmocka_unit_test(test_secure_until_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
