/* Standard-table declarations beyond include/m2mguard/risk.h (issue 13, item 7):
 * both columns of ISO/IEC 18045 (= CEM v3.1) Table B.4 and the window of
 * opportunity "none". Host code of the risk engine; see src/risk/tables.c. */
#ifndef M2MGUARD_RISK_TABLES_H
#define M2MGUARD_RISK_TABLES_H

#include <stdbool.h>

#include "m2mguard/risk.h"

/* Level index of window of opportunity "none" (after "difficult", so the
 * "raise to at least" rule of measures keeps its order).
 * ISO/SAE 21434 Annex G rates it like "difficult": value 10 ("difficult/none").
 * CEM Table B.3 gives it no value ("**": the attack path is not exploitable in
 * the intended environment). mg_risk_ap_value_cem() returns 10 for it, so a
 * CEM sum that includes it is the smallest value it can have (never overstates
 * resistance); mg_risk_ap_cem_rated() is false for it, and a report must print
 * the CEM columns of such a finding as not rated. */
#define MG_AP_WINDOW_NONE 4

/* False when CEM gives the level no value (window "none"); true for every
 * other valid level; false when out of range. */
bool mg_risk_ap_cem_rated(mg_ap_factor f, int level);

/* Sums of the five factor values of the levels lv[f] (indices as in
 * mg_risk_ap_level_name). mg_risk_ap_sum_cem returns MG_AP_NOT_RATED when a
 * level has no CEM value; either returns -1 for an out-of-range level. */
#define MG_AP_NOT_RATED (-2)
int mg_risk_ap_sum_cem(const signed char lv[MG_AP_NFACTORS]);
int mg_risk_ap_sum_21434(const signed char lv[MG_AP_NFACTORS]);

/* CEM v3.1 / ISO/IEC 18045 Table B.4, "Rating of vulnerabilities and TOE
 * resistance". For an attack potential sum:
 *   values   attack potential required     TOE resistant to attackers
 *            to exploit the scenario       with attack potential of
 *   0-9      Basic                         No rating
 *   10-13    Enhanced-Basic                Basic
 *   14-19    Moderate                      Enhanced-Basic
 *   20-24    High                          Moderate
 *   >= 25    Beyond-High                   High
 * The first column is mg_risk_cc_band()/mg_risk_cc_band_name(). */
typedef enum mg_cc_resist {
    MG_CC_RESIST_NONE = 0, /* "No rating" */
    MG_CC_RESIST_BASIC,
    MG_CC_RESIST_ENHANCED_BASIC,
    MG_CC_RESIST_MODERATE,
    MG_CC_RESIST_HIGH
} mg_cc_resist;
mg_cc_resist mg_risk_cc_resistance(int attack_potential);
const char *mg_risk_cc_resist_name(mg_cc_resist r);
/* Both column texts for a sum; MG_AP_NOT_RATED (or any negative) gives
 * "not rated (window: none)" in both. */
const char *mg_risk_cem_required_text(int attack_potential);
const char *mg_risk_cem_resistant_text(int attack_potential);

#endif
