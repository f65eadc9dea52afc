/* Reports (issue 13, items 7 and 9) on a small in-memory catalogue, worked by hand.
 *
 * Catalogue: one attacker A, budget 100..20 000 EUR, capability 30, no gain
 * share, so it spends up to 20 000 EUR (budget.hi) on every vector it can
 * field. No brute force, so nothing is limited by key length.
 *
 *  v_none  window "none": 1 week (CEM 1, 21434 1) + proficient 3 + restricted 3
 *          + none (CEM: no value; 21434 10) + specialised 4.
 *          CEM: not rated. 21434: 1+3+3+10+4 = 21 -> feasibility Low.
 *          cost 50..500 EUR < 20 000: not secure enough.
 *  v_raise window easy: 0+0+0+1+0 = 1 -> CEM Basic required / No rating
 *          resistant; 21434 1 -> High. Measure m_cage raises the window to
 *          "none": on x2 (where m_cage is placed) CEM not rated and 21434
 *          0+0+0+10+0 = 10 -> still High. cost 20..40 EUR: not enough.
 *  v_mod   1 month 4 + expert 6 + restricted 3 + easy 1 + standard 0 = 14 ->
 *          CEM Moderate required, TOE resistant to Enhanced-Basic; 21434 14 ->
 *          Medium. cost 2 000..3 000 EUR: not enough.
 *  v_sev   severe impact and 21434 High feasibility (all levels 0) -> risk
 *          value 5, but it costs 30 000..40 000 EUR > 20 000: secure enough.
 *          The HTML must explain that (note #risk-note).
 *
 * Cost chart axis (amounts drawn: each vector's cheapest cost.lo and the
 * budget 20 000): smallest 20 EUR (v_raise), largest 30 000 EUR (v_sev):
 * decades floor(log10 20) = 1 .. ceil(log10 3e4) = 5.
 */
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
#include "tables.h"

static const char att[] =
    "attackers:\n"
    "  - {id: a, name: Attacker A, budget_eur: [100, 20000], capability: 30, source: test}\n";
static const char mea[] =
    "measures:\n"
    "  - {id: m_cage, name: cage, kinds: [x], role: r1, cost_per_target_eur: 10, source: test}\n"
    "  - {id: m_other, name: other, kinds: [x], role: r1, cost_per_target_eur: 1000000, "
    "source: test}\n";
static const char vec[] =
    "vectors:\n"
    "  - id: v_none\n    name: none window\n    principle: integrity\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_week, expertise: proficient, knowledge: restricted, "
    "window: none, equipment: specialised}\n"
    "    cost_eur: [50, 500]\n    reach: one\n    damage: manipulated\n"
    "    countered_by:\n      - {measure: m_other, prevents: true}\n    source: test\n"
    "  - id: v_raise\n    name: raised window\n    principle: integrity\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, "
    "window: easy, equipment: standard}\n"
    "    cost_eur: [20, 40]\n    reach: one\n    damage: manipulated\n"
    "    countered_by:\n      - {measure: m_cage, raise: {window: none}}\n"
    "      - {measure: m_other, prevents: true}\n    source: test\n"
    "  - id: v_mod\n    name: moderate\n    principle: confidentiality\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_month, expertise: expert, knowledge: restricted, "
    "window: easy, equipment: standard}\n"
    "    cost_eur: [2000, 3000]\n    reach: one\n    damage: stolen\n"
    "    countered_by:\n      - {measure: m_other, prevents: true}\n    source: test\n"
    "  - id: v_sev\n    name: severe but dear\n    principle: integrity\n    kinds: [x]\n"
    "    potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, "
    "window: unlimited, equipment: standard}\n"
    "    cost_eur: [30000, 40000]\n    reach: fleet\n    damage: manipulated\n"
    "    devices_per_day: 100000\n"
    "    countered_by:\n      - {measure: m_other, prevents: true}\n    source: test\n";
static const char cal[] =
    "brute_force: {reference_year: 2024, trials_per_eur: 7.0e13, doubling_years: 2, source: test}\n"
    "online: {sms_eur: 0.05, sms_per_hour_max: 3600, restart_eur: 10, source: test}\n"
    "detection: {default_time_to_detect_days: 30, source: test}\n"
    "impact_thresholds_eur: {moderate: 10000, major: 100000, severe: 1000000, source: test}\n"
    "roles:\n  - {id: r1, name: Role one, duty: d1, source: test}\n";
/* 100 000 devices x 100 EUR manipulated: v_sev, rolled out to the whole fleet
 * (100 000 devices a day), does 1e7 EUR damage: severe (>= 1e6). */
static const char model[] =
    "system:\n  name: report test\n  year: 2025\n  lifetime_years: 10\n  devices: 100000\n"
    "  value_eur: {stolen_per_device: 50, manipulated_per_device: 100, outage_per_day: 1000}\n"
    "attackers: [a]\n"
    "nodes:\n  - {id: x1, kind: x}\n  - {id: x2, kind: x, measures: [m_cage]}\n";

typedef struct fixture {
    mg_risk_catalogue cat;
    mg_risk_model m;
    mg_risk_result r;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    mg_risk_text a = {"att.yaml", att, sizeof(att) - 1};
    mg_risk_text v = {"vec.yaml", vec, sizeof(vec) - 1};
    mg_risk_text me = {"mea.yaml", mea, sizeof(mea) - 1};
    mg_risk_text ca = {"cal.yaml", cal, sizeof(cal) - 1};
    mg_risk_text mo = {"model.yaml", model, sizeof(model) - 1};
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    if (mg_risk_catalogue_load_texts(&a, &v, &me, &ca, &fx->cat, &d) != MG_OK ||
        mg_risk_model_load_text(&mo, &fx->cat, &fx->m, &d) != MG_OK) {
        fprintf(stderr, "%s", d.text);
        free(fx);
        return -1;
    }
    mg_risk_opts o = {.seed = 1, .draws = 200};
    if (mg_risk_analyze(&fx->m, &fx->cat, &o, &fx->r) != MG_OK) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    mg_risk_result_free(&fx->r);
    mg_risk_model_free(&fx->m);
    mg_risk_catalogue_free(&fx->cat);
    free(fx);
    return 0;
}

typedef mg_err (*writer)(FILE *, const mg_risk_result *);

static char *render(const mg_risk_result *r, writer w)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(w(f, r), MG_OK);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static mg_risk_vt *find(fixture *fx, const char *v, const char *t)
{
    for (size_t i = 0; i < fx->r.n_vts; i++)
        if (strcmp(fx->cat.vectors[fx->r.vts[i].vector].id, v) == 0 &&
            strcmp(fx->m.targets[fx->r.vts[i].target].id, t) == 0)
            return &fx->r.vts[i];
    fail_msg("no finding %s on %s", v, t);
    return NULL;
}

/* The JSON object of finding (v, t): from its "vector" key to the closing brace. */
static char *json_finding(const char *json, const char *v, const char *t)
{
    char key[128];
    snprintf(key, sizeof(key), "{\"vector\": \"%s\", \"target\": \"%s\"", v, t);
    const char *p = strstr(json, key);
    assert_non_null(p);
    const char *e = strstr(p, "\"detected\"");
    assert_non_null(e);
    size_t n = (size_t)(e - p);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void test_engine_sees_the_levels(void **state)
{
    fixture *fx = *state;
    /* the parser accepted window "none" and the 21434 sums are as worked out */
    assert_int_equal(find(fx, "v_none", "x1")->ap_21434, 21);
    assert_int_equal(find(fx, "v_none", "x1")->feas, MG_FEAS_LOW);
    assert_int_equal(find(fx, "v_raise", "x1")->ap_21434, 1);
    assert_int_equal(find(fx, "v_raise", "x2")->ap_21434, 10);
    assert_int_equal(find(fx, "v_raise", "x2")->feas, MG_FEAS_HIGH);
    assert_int_equal(find(fx, "v_mod", "x1")->ap_cem, 14);
    const mg_risk_vt *sev = find(fx, "v_sev", "x1");
    assert_int_equal(sev->risk_21434, 5);
    assert_true(sev->secure);
}

static void test_json_cem_columns(void **state)
{
    fixture *fx = *state;
    char *j = render(&fx->r, mg_risk_write_json);
    char *s = json_finding(j, "v_none", "x1");
    assert_non_null(strstr(s, "\"cem_rated\": false"));
    assert_non_null(strstr(s, "\"cem_attack_potential_required\": \"not rated (window: none)\""));
    assert_non_null(strstr(s, "\"cem_toe_resistant_to\": \"not rated (window: none)\""));
    assert_non_null(strstr(s, "\"feasibility_21434\": \"Low\""));
    free(s);
    s = json_finding(j, "v_raise", "x1");
    assert_non_null(strstr(s, "\"cem_rated\": true"));
    assert_non_null(strstr(s, "\"cem_attack_potential_required\": \"Basic\""));
    assert_non_null(strstr(s, "\"cem_toe_resistant_to\": \"No rating\""));
    free(s);
    s = json_finding(j, "v_raise", "x2"); /* m_cage raised the window to none */
    assert_non_null(strstr(s, "\"cem_rated\": false"));
    assert_non_null(strstr(s, "\"feasibility_21434\": \"High\""));
    free(s);
    s = json_finding(j, "v_mod", "x1");
    assert_non_null(strstr(s, "\"cem_attack_potential_required\": \"Moderate\""));
    assert_non_null(strstr(s, "\"cem_toe_resistant_to\": \"Enhanced-Basic\""));
    free(s);
    free(j);
}

static void test_markdown_cem_columns(void **state)
{
    fixture *fx = *state;
    char *md = render(&fx->r, mg_risk_write_md);
    assert_non_null(strstr(md, "| required to exploit (CEM) | TOE resistant to (CEM) |"));
    assert_non_null(strstr(md, "| v_none | x1 | integrity | - / 21 | not rated (window: none) | "
                               "not rated (window: none) | Low |"));
    assert_non_null(strstr(md, "| v_mod | x1 | confidentiality | 14 / 14 | Moderate | "
                               "Enhanced-Basic | Medium |"));
    /* risk value 5 next to "enough" is explained */
    assert_non_null(strstr(md, "Why a finding can have ISO/SAE 21434 risk value 4 or 5"));
    free(md);
}

static void test_html_axes_and_note(void **state)
{
    fixture *fx = *state;
    char *h = render(&fx->r, mg_risk_write_html);
    /* the cost axis follows the data: 1e1 .. 1e5 EUR (see the header) */
    assert_non_null(strstr(h, "data-axis-min-eur=\"1e1\" data-axis-max-eur=\"1e5\""));
    assert_non_null(strstr(h, ">1e1 EUR</text>"));
    assert_non_null(strstr(h, ">1e5 EUR</text>"));
    assert_null(strstr(h, ">1e0 EUR</text>"));
    assert_null(strstr(h, ">1e6 EUR</text>"));
    /* the note explaining risk 5 next to "enough", and the link to it */
    assert_non_null(strstr(h, "id=\"risk-note\""));
    assert_non_null(strstr(h, "<td>5 <a href=\"#risk-note\""));
    /* both CEM columns in the findings table */
    assert_non_null(strstr(h, "<th>CEM: re&shy;quired to exploit</th>"));
    assert_non_null(strstr(h, "<th>CEM: TOE resis&shy;tant to</th>"));
    /* the secure-until axis covers the analysis year and the end of life
     * (2025 .. 2035, +1) at least; horizon 30 years from the calibration default */
    const char *p = strstr(h, "id=\"secure-until\"");
    assert_non_null(p);
    double from = 0, to = 0;
    const char *q = strstr(p, "data-axis-from=\"");
    assert_non_null(q);
    assert_int_equal(sscanf(q, "data-axis-from=\"%lf\" data-axis-to=\"%lf\"", &from, &to), 2);
    assert_true(from <= 2025 && to >= 2036);
    free(h);
}

/* A headline year beyond the horizon is still on the secure-until axis: a
 * finding forced to be limited in 2200 (what an offline brute force of a long
 * key gives) moves the end of the axis and gets the headline marker. */
static void test_html_timeline_covers_headline(void **state)
{
    fixture *fx = *state;
    mg_risk_vt *x = find(fx, "v_sev", "x1");
    mg_risk_vector *v = &fx->cat.vectors[x->vector];
    mg_brute saved_b = v->brute;
    double saved_e = x->brute_eur, saved_u = x->secure_until, saved_r = fx->r.secure_until;
    v->brute = MG_BRUTE_OFFLINE;
    x->brute_eur = 1;
    x->secure_until = 2200.4;
    fx->r.secure_until = 2200.4;
    char *h = render(&fx->r, mg_risk_write_html);
    v->brute = saved_b;
    x->brute_eur = saved_e;
    x->secure_until = saved_u;
    fx->r.secure_until = saved_r;
    assert_non_null(strstr(h, "secure until: 2200"));                  /* headline */
    assert_non_null(strstr(h, "data-axis-from=\"2025\" data-axis-to=\"2201\""));
    assert_non_null(strstr(h, "id=\"secure-until-headline\" data-year=\"2200\""));
    free(h);
}

static void test_tables_none_and_resistance(void **state)
{
    (void)state;
    assert_int_equal(mg_risk_ap_level_parse(MG_AP_WINDOW, "none"), MG_AP_WINDOW_NONE);
    assert_false(mg_risk_ap_cem_rated(MG_AP_WINDOW, MG_AP_WINDOW_NONE));
    assert_true(mg_risk_ap_cem_rated(MG_AP_WINDOW, 3));
    signed char lv[MG_AP_NFACTORS] = {1, 1, 1, MG_AP_WINDOW_NONE, 1};
    assert_int_equal(mg_risk_ap_sum_cem(lv), MG_AP_NOT_RATED);
    assert_int_equal(mg_risk_ap_sum_21434(lv), 21);
    assert_string_equal(mg_risk_cem_required_text(MG_AP_NOT_RATED), "not rated (window: none)");
    assert_string_equal(mg_risk_cem_resistant_text(14), "Enhanced-Basic");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_none_and_resistance),
        cmocka_unit_test_setup_teardown(test_engine_sees_the_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_cem_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markdown_cem_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_axes_and_note, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_timeline_covers_headline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
