/*
 * The standard tables, copied as facts (values, not text):
 *  - ISO/IEC 18045 (= Common Evaluation Methodology v3.1, Annex B.4), Table B.3
 *    "calculation of attack potential" factor values and Table B.4 bands.
 *  - ISO/SAE 21434:2021 Annex G (attack potential-based attack feasibility)
 *    and the Annex H example risk matrix.
 *  - ETSI TS 102 165-1 (TVRA): likelihood x impact and the risk classes.
 * docs/risk-method.md lists them; tests/risk/test_risk_tables.c pins them.
 */
#include <math.h>
#include <string.h>

#include "risk_internal.h"
#include "tables.h"

/* cem_unrated: CEM gives the level no value (see tables.h). */
typedef struct level { const char *name; int cem; int iso21434; bool cem_unrated; } level;

/* Elapsed time. ISO/SAE 21434 has fewer steps: <=1 day 0, <=1 week 1,
 * <=1 month 4, <=6 months 17, >6 months 19; a CEM step is valued with the
 * 21434 step that contains it. */
static const level elapsed[] = {
    {"le_1_day", 0, 0, false},    {"le_1_week", 1, 1, false},   {"le_2_weeks", 2, 4, false},
    {"le_1_month", 4, 4, false},  {"le_2_months", 7, 17, false}, {"le_3_months", 10, 17, false},
    {"le_4_months", 13, 17, false}, {"le_5_months", 15, 17, false}, {"le_6_months", 17, 17, false},
    {"gt_6_months", 19, 19, false},
};
static const level expertise[] = {
    {"layman", 0, 0, false}, {"proficient", 3, 3, false},
    {"expert", 6, 6, false}, {"multiple_experts", 8, 8, false},
};
/* CEM: public, restricted, sensitive, critical; 21434 names the last two
 * confidential and strictly confidential with the same values. */
static const level knowledge[] = {
    {"public", 0, 0, false}, {"restricted", 3, 3, false},
    {"sensitive", 7, 7, false}, {"critical", 11, 11, false},
};
/* CEM: unnecessary/unlimited 0, easy 1, moderate 4, difficult 10, none "**"
 * (not exploitable: no value). 21434: unlimited 0, easy 1, moderate 4,
 * difficult/none 10. "none" carries 10 on both scales so that a CEM sum that
 * contains it is a lower bound, and is flagged not rated for CEM (tables.h). */
static const level window_[] = {
    {"unlimited", 0, 0, false}, {"easy", 1, 1, false},   {"moderate", 4, 4, false},
    {"difficult", 10, 10, false}, {"none", 10, 10, true},
};
static const level equipment[] = {
    {"standard", 0, 0, false}, {"specialised", 4, 4, false},
    {"bespoke", 7, 7, false}, {"multiple_bespoke", 9, 9, false},
};

static const struct { const level *l; int n; const char *name; } factors[MG_AP_NFACTORS] = {
    {elapsed, (int)(sizeof(elapsed) / sizeof(elapsed[0])), "elapsed_time"},
    {expertise, 4, "expertise"},
    {knowledge, 4, "knowledge"},
    {window_, (int)(sizeof(window_) / sizeof(window_[0])), "window"},
    {equipment, 4, "equipment"},
};

int mg_risk_ap_levels(mg_ap_factor f)
{
    return (unsigned)f < MG_AP_NFACTORS ? factors[f].n : -1;
}

const char *mg_risk_ap_factor_name(mg_ap_factor f)
{
    return (unsigned)f < MG_AP_NFACTORS ? factors[f].name : NULL;
}

const char *mg_risk_ap_level_name(mg_ap_factor f, int l)
{
    if ((unsigned)f >= MG_AP_NFACTORS || l < 0 || l >= factors[f].n)
        return NULL;
    return factors[f].l[l].name;
}

int mg_risk_ap_value_cem(mg_ap_factor f, int l)
{
    if ((unsigned)f >= MG_AP_NFACTORS || l < 0 || l >= factors[f].n)
        return -1;
    return factors[f].l[l].cem;
}

int mg_risk_ap_value_21434(mg_ap_factor f, int l)
{
    if ((unsigned)f >= MG_AP_NFACTORS || l < 0 || l >= factors[f].n)
        return -1;
    return factors[f].l[l].iso21434;
}

int mg_risk_ap_level_parse(mg_ap_factor f, const char *name)
{
    if ((unsigned)f >= MG_AP_NFACTORS)
        return -1;
    for (int i = 0; i < factors[f].n; i++)
        if (strcmp(factors[f].l[i].name, name) == 0)
            return i;
    return -1;
}

bool mg_risk_ap_cem_rated(mg_ap_factor f, int l)
{
    if ((unsigned)f >= MG_AP_NFACTORS || l < 0 || l >= factors[f].n)
        return false;
    return !factors[f].l[l].cem_unrated;
}

int mg_risk_ap_sum_cem(const signed char lv[MG_AP_NFACTORS])
{
    int s = 0;
    bool rated = true;
    for (int f = 0; f < MG_AP_NFACTORS; f++) {
        int v = mg_risk_ap_value_cem((mg_ap_factor)f, lv[f]);
        if (v < 0)
            return -1;
        rated = rated && mg_risk_ap_cem_rated((mg_ap_factor)f, lv[f]);
        s += v;
    }
    return rated ? s : MG_AP_NOT_RATED;
}

int mg_risk_ap_sum_21434(const signed char lv[MG_AP_NFACTORS])
{
    int s = 0;
    for (int f = 0; f < MG_AP_NFACTORS; f++) {
        int v = mg_risk_ap_value_21434((mg_ap_factor)f, lv[f]);
        if (v < 0)
            return -1;
        s += v;
    }
    return s;
}

mg_cc_band mg_risk_cc_band(int ap)
{
    if (ap <= 9)
        return MG_CC_BASIC;
    if (ap <= 13)
        return MG_CC_ENHANCED_BASIC;
    if (ap <= 19)
        return MG_CC_MODERATE;
    if (ap <= 24)
        return MG_CC_HIGH;
    return MG_CC_BEYOND_HIGH;
}

const char *mg_risk_cc_band_name(mg_cc_band b)
{
    static const char *n[] = {"Basic", "Enhanced-Basic", "Moderate", "High", "Beyond-High"};
    return (unsigned)b <= MG_CC_BEYOND_HIGH ? n[b] : "?";
}

/* CEM Table B.4, second column: one band below the first, "No rating" for 0-9. */
mg_cc_resist mg_risk_cc_resistance(int ap)
{
    if (ap <= 9)
        return MG_CC_RESIST_NONE;
    if (ap <= 13)
        return MG_CC_RESIST_BASIC;
    if (ap <= 19)
        return MG_CC_RESIST_ENHANCED_BASIC;
    if (ap <= 24)
        return MG_CC_RESIST_MODERATE;
    return MG_CC_RESIST_HIGH;
}

const char *mg_risk_cc_resist_name(mg_cc_resist r)
{
    static const char *n[] = {"No rating", "Basic", "Enhanced-Basic", "Moderate", "High"};
    return (unsigned)r <= MG_CC_RESIST_HIGH ? n[r] : "?";
}

static const char not_rated[] = "not rated (window: none)";

const char *mg_risk_cem_required_text(int ap)
{
    return ap < 0 ? not_rated : mg_risk_cc_band_name(mg_risk_cc_band(ap));
}

const char *mg_risk_cem_resistant_text(int ap)
{
    return ap < 0 ? not_rated : mg_risk_cc_resist_name(mg_risk_cc_resistance(ap));
}

mg_feas mg_risk_feasibility_21434(int ap)
{
    if (ap <= 13)
        return MG_FEAS_HIGH;
    if (ap <= 19)
        return MG_FEAS_MEDIUM;
    if (ap <= 24)
        return MG_FEAS_LOW;
    return MG_FEAS_VERY_LOW;
}

const char *mg_risk_feas_name(mg_feas f)
{
    static const char *n[] = {"Very low", "Low", "Medium", "High"};
    return (unsigned)f <= MG_FEAS_HIGH ? n[f] : "?";
}

const char *mg_risk_impact_name(mg_impact i)
{
    static const char *n[] = {"Negligible", "Moderate", "Major", "Severe"};
    return (unsigned)i <= MG_IMPACT_SEVERE ? n[i] : "?";
}

int mg_risk_value_21434(mg_impact i, mg_feas f)
{
    /* rows: impact negligible..severe; columns: feasibility very low..high */
    static const int m[4][4] = {
        {1, 1, 1, 1},
        {1, 2, 2, 3},
        {1, 2, 3, 4},
        {2, 3, 4, 5},
    };
    if ((unsigned)i > MG_IMPACT_SEVERE || (unsigned)f > MG_FEAS_HIGH)
        return 0;
    return m[i][f];
}

int mg_risk_tvra_likelihood(mg_cc_band b)
{
    switch (b) {
    case MG_CC_BASIC:
    case MG_CC_ENHANCED_BASIC:
        return 3; /* likely */
    case MG_CC_MODERATE:
        return 2; /* possible */
    default:
        return 1; /* unlikely */
    }
}

int mg_risk_tvra_impact(mg_impact i)
{
    switch (i) {
    case MG_IMPACT_SEVERE:
        return 3;
    case MG_IMPACT_MAJOR:
        return 2;
    default:
        return 1;
    }
}

mg_tvra mg_risk_tvra_class(int likelihood, int impact)
{
    int r = likelihood * impact;
    if (r >= 6)
        return MG_TVRA_CRITICAL;
    if (r >= 3)
        return MG_TVRA_MAJOR;
    return MG_TVRA_MINOR;
}

const char *mg_risk_tvra_name(mg_tvra t)
{
    static const char *n[] = {"minor", "major", "critical"};
    return (unsigned)t <= MG_TVRA_CRITICAL ? n[t] : "?";
}

const char *mg_risk_principle_name(mg_principle p)
{
    static const char *n[] = {"authentication", "confidentiality", "integrity", "availability"};
    return (unsigned)p <= MG_PR_AVAILABILITY ? n[p] : "?";
}

const char *mg_risk_param_name(mg_param p)
{
    static const char *n[] = {"key_bits", "mac_bits", "time_to_detect_hours", "per_hour"};
    return (unsigned)p < MG_P_N ? n[p] : "?";
}

/* ---- brute force ----------------------------------------------------------- */
double mg_risk_offline_cost(const mg_risk_calib *c, double bits, double year)
{
    /* log2 of the cost avoids overflow for 256-bit keys */
    double l2 = (bits - 1.0) - log2(c->trials_per_eur) - (year - c->ref_year) / c->doubling_years;
    return exp2(l2);
}

double mg_risk_offline_year(const mg_risk_calib *c, double bits, double budget)
{
    if (budget <= 0)
        return INFINITY;
    return c->ref_year + c->doubling_years * ((bits - 1.0) - log2(c->trials_per_eur * budget));
}

double mg_risk_online_cost(const mg_risk_calib *c, double bits, double per_campaign)
{
    double trials = exp2(bits - 1.0);
    double cost = trials * c->sms_eur;
    if (per_campaign > 0 && per_campaign < trials)
        cost += (trials / per_campaign) * c->restart_eur;
    return cost;
}
