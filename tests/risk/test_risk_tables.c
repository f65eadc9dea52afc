/* Pins the standard tables and the money/secure-until formulas.
 * Sources of the values (facts, not text):
 *  - ISO/IEC 18045 = CEM v3.1 Annex B.4, Table B.3 (factor values) and
 *    Table B.4 (0-9 Basic, 10-13 Enhanced-Basic, 14-19 Moderate, 20-24 High,
 *    >= 25 Beyond-High).
 *  - ISO/SAE 21434:2021 Annex G (attack potential 0-13 High, 14-19 Medium,
 *    20-24 Low, >= 25 Very low feasibility; elapsed time <=1 day 0, <=1 week 1,
 *    <=1 month 4, <=6 months 17, >6 months 19) and the Annex H example risk matrix.
 *  - ETSI TS 102 165-1 (TVRA): likelihood x impact, 1-2 minor, 3-4 major, 6-9 critical.
 * The worked examples below are computed by hand from those tables (the
 * standards' own example texts are not reproduced). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "m2mguard/risk.h"
#include "tables.h"

static void test_cem_factor_values(void **state)
{
    (void)state;
    static const int elapsed[] = {0, 1, 2, 4, 7, 10, 13, 15, 17, 19};
    static const int expertise[] = {0, 3, 6, 8};
    static const int knowledge[] = {0, 3, 7, 11};
    static const int window_[] = {0, 1, 4, 10};
    static const int equipment[] = {0, 4, 7, 9};
    assert_int_equal(mg_risk_ap_levels(MG_AP_ELAPSED), 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(mg_risk_ap_value_cem(MG_AP_ELAPSED, i), elapsed[i]);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mg_risk_ap_value_cem(MG_AP_EXPERTISE, i), expertise[i]);
        assert_int_equal(mg_risk_ap_value_cem(MG_AP_KNOWLEDGE, i), knowledge[i]);
        assert_int_equal(mg_risk_ap_value_cem(MG_AP_WINDOW, i), window_[i]);
        assert_int_equal(mg_risk_ap_value_cem(MG_AP_EQUIPMENT, i), equipment[i]);
    }
    assert_int_equal(mg_risk_ap_value_cem(MG_AP_EXPERTISE, 4), -1);
    assert_int_equal(mg_risk_ap_value_cem(MG_AP_NFACTORS, 0), -1);
    assert_int_equal(mg_risk_ap_level_parse(MG_AP_EXPERTISE, "multiple_experts"), 3);
    assert_int_equal(mg_risk_ap_level_parse(MG_AP_WINDOW, "difficult"), 3);
    /* window "none" (issue 13 item 7): level 4, after "difficult"; CEM Table
     * B.3 gives it no value ("**"), ISO/SAE 21434 "difficult/none" 10. */
    assert_int_equal(mg_risk_ap_levels(MG_AP_WINDOW), 5);
    assert_int_equal(mg_risk_ap_level_parse(MG_AP_WINDOW, "none"), 4);
    assert_int_equal(mg_risk_ap_value_21434(MG_AP_WINDOW, 4), 10);
    assert_int_equal(mg_risk_ap_value_cem(MG_AP_WINDOW, 5), -1);
    assert_int_equal(mg_risk_ap_level_parse(MG_AP_WINDOW, "never"), -1);
}

static void test_21434_factor_values(void **state)
{
    (void)state;
    /* elapsed time on the coarser 21434 scale */
    static const int elapsed[] = {0, 1, 4, 4, 17, 17, 17, 17, 17, 19};
    for (int i = 0; i < 10; i++)
        assert_int_equal(mg_risk_ap_value_21434(MG_AP_ELAPSED, i), elapsed[i]);
    /* the other four factors have the same values in both */
    for (int f = 1; f < MG_AP_NFACTORS; f++)
        for (int i = 0; i < 4; i++)
            assert_int_equal(mg_risk_ap_value_21434((mg_ap_factor)f, i),
                             mg_risk_ap_value_cem((mg_ap_factor)f, i));
}

static void test_cc_bands(void **state)
{
    (void)state;
    assert_int_equal(mg_risk_cc_band(0), MG_CC_BASIC);
    assert_int_equal(mg_risk_cc_band(9), MG_CC_BASIC);
    assert_int_equal(mg_risk_cc_band(10), MG_CC_ENHANCED_BASIC);
    assert_int_equal(mg_risk_cc_band(13), MG_CC_ENHANCED_BASIC);
    assert_int_equal(mg_risk_cc_band(14), MG_CC_MODERATE);
    assert_int_equal(mg_risk_cc_band(19), MG_CC_MODERATE);
    assert_int_equal(mg_risk_cc_band(20), MG_CC_HIGH);
    assert_int_equal(mg_risk_cc_band(24), MG_CC_HIGH);
    assert_int_equal(mg_risk_cc_band(25), MG_CC_BEYOND_HIGH);
    assert_int_equal(mg_risk_cc_band(60), MG_CC_BEYOND_HIGH);
    assert_string_equal(mg_risk_cc_band_name(MG_CC_ENHANCED_BASIC), "Enhanced-Basic");
    assert_string_equal(mg_risk_cc_band_name(MG_CC_BEYOND_HIGH), "Beyond-High");
}

/* CEM Table B.4, both columns: "attack potential required to exploit the
 * scenario" (0-9 Basic .. >=25 Beyond-High, mg_risk_cc_band) and "TOE resistant
 * to attackers with attack potential of" (0-9 No rating, 10-13 Basic, 14-19
 * Enhanced-Basic, 20-24 Moderate, >=25 High). */
static void test_cc_resistance_column(void **state)
{
    (void)state;
    static const struct { int ap; const char *req, *res; } t[] = {
        {0, "Basic", "No rating"},          {9, "Basic", "No rating"},
        {10, "Enhanced-Basic", "Basic"},    {13, "Enhanced-Basic", "Basic"},
        {14, "Moderate", "Enhanced-Basic"}, {19, "Moderate", "Enhanced-Basic"},
        {20, "High", "Moderate"},           {24, "High", "Moderate"},
        {25, "Beyond-High", "High"},        {60, "Beyond-High", "High"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_string_equal(mg_risk_cem_required_text(t[i].ap), t[i].req);
        assert_string_equal(mg_risk_cem_resistant_text(t[i].ap), t[i].res);
        assert_string_equal(mg_risk_cc_band_name(mg_risk_cc_band(t[i].ap)), t[i].req);
        assert_string_equal(mg_risk_cc_resist_name(mg_risk_cc_resistance(t[i].ap)), t[i].res);
    }
    assert_string_equal(mg_risk_cc_resist_name((mg_cc_resist)5), "?");
    assert_string_equal(mg_risk_cem_required_text(MG_AP_NOT_RATED), "not rated (window: none)");
    assert_string_equal(mg_risk_cem_resistant_text(MG_AP_NOT_RATED), "not rated (window: none)");
}

/* Window "none": CEM not rated, ISO/SAE 21434 still rated (difficult/none 10).
 * Worked example: relay through a sealed cabinet: <=1 week (1), proficient
 * (3), restricted (3), window none, specialised (4). CEM: not rated; 21434:
 * 1+3+3+10+4 = 21 -> Low feasibility. The same with window difficult: CEM
 * 1+3+3+10+4 = 21 -> High required, resistant to Moderate. */
static void test_window_none(void **state)
{
    (void)state;
    assert_int_equal(MG_AP_WINDOW_NONE, 4);
    assert_string_equal(mg_risk_ap_level_name(MG_AP_WINDOW, MG_AP_WINDOW_NONE), "none");
    assert_false(mg_risk_ap_cem_rated(MG_AP_WINDOW, MG_AP_WINDOW_NONE));
    for (int l = 0; l < MG_AP_WINDOW_NONE; l++)
        assert_true(mg_risk_ap_cem_rated(MG_AP_WINDOW, l));
    assert_true(mg_risk_ap_cem_rated(MG_AP_ELAPSED, 9));
    assert_false(mg_risk_ap_cem_rated(MG_AP_ELAPSED, 10));
    assert_false(mg_risk_ap_cem_rated(MG_AP_NFACTORS, 0));
    signed char relay[MG_AP_NFACTORS] = {1, 1, 1, MG_AP_WINDOW_NONE, 1};
    assert_int_equal(mg_risk_ap_sum_cem(relay), MG_AP_NOT_RATED);
    assert_int_equal(mg_risk_ap_sum_21434(relay), 21);
    assert_int_equal(mg_risk_feasibility_21434(mg_risk_ap_sum_21434(relay)), MG_FEAS_LOW);
    signed char hard[MG_AP_NFACTORS] = {1, 1, 1, 3, 1};
    assert_int_equal(mg_risk_ap_sum_cem(hard), 21);
    assert_string_equal(mg_risk_cem_required_text(21), "High");
    assert_string_equal(mg_risk_cem_resistant_text(21), "Moderate");
    signed char bad[MG_AP_NFACTORS] = {1, 1, 1, 5, 1};
    assert_int_equal(mg_risk_ap_sum_cem(bad), -1);
    assert_int_equal(mg_risk_ap_sum_21434(bad), -1);
}

static void test_21434_feasibility(void **state)
{
    (void)state;
    assert_int_equal(mg_risk_feasibility_21434(0), MG_FEAS_HIGH);
    assert_int_equal(mg_risk_feasibility_21434(13), MG_FEAS_HIGH);
    assert_int_equal(mg_risk_feasibility_21434(14), MG_FEAS_MEDIUM);
    assert_int_equal(mg_risk_feasibility_21434(19), MG_FEAS_MEDIUM);
    assert_int_equal(mg_risk_feasibility_21434(20), MG_FEAS_LOW);
    assert_int_equal(mg_risk_feasibility_21434(24), MG_FEAS_LOW);
    assert_int_equal(mg_risk_feasibility_21434(25), MG_FEAS_VERY_LOW);
}

static void test_21434_risk_matrix(void **state)
{
    (void)state;
    /* rows negligible..severe, columns very low..high */
    static const int want[4][4] = {{1, 1, 1, 1}, {1, 2, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            assert_int_equal(mg_risk_value_21434((mg_impact)i, (mg_feas)j), want[i][j]);
    assert_int_equal(mg_risk_value_21434((mg_impact)4, MG_FEAS_HIGH), 0);
}

static void test_tvra(void **state)
{
    (void)state;
    assert_int_equal(mg_risk_tvra_likelihood(MG_CC_BASIC), 3);
    assert_int_equal(mg_risk_tvra_likelihood(MG_CC_ENHANCED_BASIC), 3);
    assert_int_equal(mg_risk_tvra_likelihood(MG_CC_MODERATE), 2);
    assert_int_equal(mg_risk_tvra_likelihood(MG_CC_HIGH), 1);
    assert_int_equal(mg_risk_tvra_likelihood(MG_CC_BEYOND_HIGH), 1);
    assert_int_equal(mg_risk_tvra_impact(MG_IMPACT_SEVERE), 3);
    assert_int_equal(mg_risk_tvra_impact(MG_IMPACT_MAJOR), 2);
    assert_int_equal(mg_risk_tvra_impact(MG_IMPACT_MODERATE), 1);
    assert_int_equal(mg_risk_tvra_class(1, 1), MG_TVRA_MINOR);
    assert_int_equal(mg_risk_tvra_class(1, 2), MG_TVRA_MINOR);
    assert_int_equal(mg_risk_tvra_class(3, 1), MG_TVRA_MAJOR);
    assert_int_equal(mg_risk_tvra_class(2, 2), MG_TVRA_MAJOR);
    assert_int_equal(mg_risk_tvra_class(2, 3), MG_TVRA_CRITICAL);
    assert_int_equal(mg_risk_tvra_class(3, 3), MG_TVRA_CRITICAL);
}

static int sum(const int *lv, int iso)
{
    int s = 0;
    for (int f = 0; f < MG_AP_NFACTORS; f++)
        s += iso ? mg_risk_ap_value_21434((mg_ap_factor)f, lv[f])
                 : mg_risk_ap_value_cem((mg_ap_factor)f, lv[f]);
    return s;
}

/* Worked examples, by hand from the tables. */
static void test_worked_examples(void **state)
{
    (void)state;
    /* SMS sender spoofing: <=1 day, layman, public, unlimited, standard:
     * 0+0+0+0+0 = 0 -> Basic; 21434: 0 -> High feasibility. */
    int spoof[] = {0, 0, 0, 0, 0};
    assert_int_equal(sum(spoof, 0), 0);
    assert_int_equal(mg_risk_cc_band(sum(spoof, 0)), MG_CC_BASIC);
    assert_int_equal(mg_risk_feasibility_21434(sum(spoof, 1)), MG_FEAS_HIGH);
    /* Key extraction from flash: <=1 week (1), proficient (3), restricted (3),
     * easy (1), specialised (4) = 12 -> Enhanced-Basic; 21434: 12 -> High. */
    int kx[] = {1, 1, 1, 1, 1};
    assert_int_equal(sum(kx, 0), 12);
    assert_int_equal(mg_risk_cc_band(12), MG_CC_ENHANCED_BASIC);
    assert_int_equal(mg_risk_feasibility_21434(sum(kx, 1)), MG_FEAS_HIGH);
    /* The same behind a TEE: <=2 months (7), expert (6), restricted (3), easy
     * (1), specialised (4) = 21 -> High; on the 21434 scale <=2 months counts
     * as <=6 months (17): 17+6+3+1+4 = 31 -> Very low. */
    int tee[] = {4, 2, 1, 1, 1};
    assert_int_equal(sum(tee, 0), 21);
    assert_int_equal(mg_risk_cc_band(21), MG_CC_HIGH);
    assert_int_equal(sum(tee, 1), 31);
    assert_int_equal(mg_risk_feasibility_21434(31), MG_FEAS_VERY_LOW);
    /* Severe impact and High feasibility: risk 5, TVRA critical (3 x 3). */
    assert_int_equal(mg_risk_value_21434(MG_IMPACT_SEVERE, MG_FEAS_HIGH), 5);
    assert_int_equal(mg_risk_tvra_class(mg_risk_tvra_likelihood(MG_CC_BASIC),
                                        mg_risk_tvra_impact(MG_IMPACT_SEVERE)),
                     MG_TVRA_CRITICAL);
}

static void test_money_formulas(void **state)
{
    (void)state;
    mg_risk_calib c = {0};
    c.ref_year = 2020;
    c.trials_per_eur = 1e6;
    c.doubling_years = 2;
    c.sms_eur = 0.05;
    c.restart_eur = 10;
    /* 21-bit key: 2^20 trials expected = 1 048 576 trials at 1e6 per EUR */
    assert_true(fabs(mg_risk_offline_cost(&c, 21, 2020) - 1.048576) < 1e-9);
    /* four years later: two halvings */
    assert_true(fabs(mg_risk_offline_cost(&c, 21, 2024) - 0.262144) < 1e-9);
    /* year where it costs 1 EUR: 2020 + 2 * (20 - log2(1e6)) = 2020.136862... */
    assert_true(fabs(mg_risk_offline_year(&c, 21, 1.0) - 2020.1368628) < 1e-6);
    /* a budget twice as big moves the year one doubling period earlier */
    assert_true(fabs(mg_risk_offline_year(&c, 21, 2.0) - (2020.1368628 - 2)) < 1e-6);
    /* the production calibration: 56-bit DES in 2024 at 7e13 trials/EUR:
     * 2^55 / 7e13 = 514.7 EUR */
    mg_risk_calib p = c;
    p.ref_year = 2024;
    p.trials_per_eur = 7e13;
    assert_true(fabs(mg_risk_offline_cost(&p, 56, 2024) - 514.69710) < 1e-3);
    /* online: 16-bit MAC, 2^15 SMS at 0.05 EUR = 1638.4 EUR */
    assert_true(fabs(mg_risk_online_cost(&c, 16, 0) - 1638.4) < 1e-9);
    /* stopped every 240 trials (10 per hour, detected after 24 h): 32768/240
     * restarts at 10 EUR = 1365.33 EUR more */
    assert_true(fabs(mg_risk_online_cost(&c, 16, 240) - (1638.4 + 32768.0 / 240 * 10)) < 1e-9);
    /* a 128-bit key does not overflow */
    assert_true(isfinite(mg_risk_offline_cost(&p, 256, 2024)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cem_factor_values), cmocka_unit_test(test_21434_factor_values),
        cmocka_unit_test(test_cc_bands),          cmocka_unit_test(test_21434_feasibility),
        cmocka_unit_test(test_21434_risk_matrix), cmocka_unit_test(test_tvra),
        cmocka_unit_test(test_worked_examples),   cmocka_unit_test(test_money_formulas),
        cmocka_unit_test(test_cc_resistance_column), cmocka_unit_test(test_window_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
