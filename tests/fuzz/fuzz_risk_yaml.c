/* libFuzzer target for the risk engine's YAML loaders (model and catalogue).
 * The first input byte picks what the rest is: 0 a model (loaded against a
 * small built-in catalogue, then analysed and reported), 1 a vectors
 * catalogue, 2 an attackers catalogue, 3 a calibration file. Needs
 * m2mguard_risk linked in. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "m2mguard/risk.h"

static const char att[] =
    "attackers:\n"
    "  - {id: low, name: Low, budget_eur: [100, 1000], capability: 13, gain_share: 1, gains: [publicity], source: f}\n"
    "  - {id: high, name: High, budget_eur: [1000, 1e8], capability: 40, source: f}\n";
static const char mea[] =
    "measures:\n"
    "  - {id: secured_sms, name: s, kinds: [sms], role: r1, cost_per_device_eur: 0.5, cost_fixed_eur: 100, params: {key_bits: 128, mac_bits: 64}, source: f}\n"
    "  - {id: detection, name: d, kinds: [sms, backend, device_mcu], role: r2, cost_fixed_eur: 700, params: {time_to_detect_hours: 1, per_hour: 10}, source: f}\n"
    "  - {id: secure_element, name: se, kinds: [device_mcu], role: r1, cost_per_device_eur: 2, source: f}\n"
    "  - {id: per_device_keys, name: k, kinds: [device_mcu, sms], role: r1, cost_per_target_eur: 3, source: f}\n";
static const char vec[] =
    "vectors:\n"
    "  - {id: spoof, name: s, principle: authentication, kinds: [sms], potential: {elapsed_time: le_1_day, expertise: layman, knowledge: public, window: unlimited, equipment: standard}, cost_eur: [5, 100], reach: fleet, damage: manipulated, devices_per_day: 100, countered_by: [{measure: secured_sms, prevents: true}], detected_by: [detection], source: f}\n"
    "  - {id: online, name: o, principle: authentication, kinds: [sms], potential: {elapsed_time: le_1_month, expertise: proficient, knowledge: public, window: unlimited, equipment: standard}, cost_eur: [50, 500], reach: one, damage: manipulated, brute_force: online, detected_by: [detection], source: f}\n"
    "  - {id: offline, name: b, principle: confidentiality, kinds: [sms], potential: {elapsed_time: le_1_month, expertise: expert, knowledge: public, window: unlimited, equipment: specialised}, cost_eur: [1000, 20000], reach: fleet, damage: stolen, brute_force: offline, countered_by: [{measure: per_device_keys, limit_reach: one}], source: f}\n"
    "  - {id: extract, name: x, principle: confidentiality, kinds: [device_mcu], potential: {elapsed_time: le_1_week, expertise: proficient, knowledge: restricted, window: easy, equipment: specialised}, cost_eur: [300, 5000], reach: one, damage: stolen, countered_by: [{measure: secure_element, cost_x: 100, raise: {expertise: expert}}], source: f}\n"
    "  - {id: flood, name: f, principle: availability, kinds: [backend], potential: {elapsed_time: le_1_day, expertise: proficient, knowledge: public, window: unlimited, equipment: standard}, cost_eur: [50, 2000], reach: fleet, damage: outage, devices_per_day: 1e6, source: f}\n";
static const char cal[] =
    "brute_force: {reference_year: 2024, trials_per_eur: 7.0e13, doubling_years: 2, source: f}\n"
    "online: {sms_eur: 0.05, sms_per_hour_max: 3600, restart_eur: 10, source: f}\n"
    "detection: {default_time_to_detect_days: 30, source: f}\n"
    "impact_thresholds_eur: {moderate: 10000, major: 100000, severe: 1000000, source: f}\n"
    "roles:\n  - {id: r1, name: One, duty: d, source: f}\n  - {id: r2, name: Two, duty: d, source: f}\n";

static mg_risk_text T(const char *name, const char *s, size_t n)
{
    mg_risk_text t = {name, s, n};
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mg_risk_catalogue cat;
    static int loaded;
    static FILE *sink;
    mg_risk_diag d;
    if (!loaded) {
        mg_risk_text a = T("att", att, sizeof(att) - 1), v = T("vec", vec, sizeof(vec) - 1),
                     m = T("mea", mea, sizeof(mea) - 1), c = T("cal", cal, sizeof(cal) - 1);
        mg_risk_diag_init(&d);
        if (mg_risk_catalogue_load_texts(&a, &v, &m, &c, &cat, &d) != MG_OK) {
            fputs(d.text, stderr);
            __builtin_trap();
        }
        sink = fopen("/dev/null", "w");
        loaded = 1;
    }
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    mg_risk_diag_init(&d);
    switch (data[0] & 3) {
    case 0: {
        mg_risk_text t = T("fuzz.yaml", text, len);
        mg_risk_model m;
        if (mg_risk_model_load_text(&t, &cat, &m, &d) == MG_OK) {
            mg_risk_opts o = {.seed = 1, .draws = 16};
            mg_risk_result r;
            if (m.n_targets <= 64 && mg_risk_analyze(&m, &cat, &o, &r) == MG_OK) {
                if (sink != NULL) {
                    (void)mg_risk_write_json(sink, &r);
                    (void)mg_risk_write_html(sink, &r);
                    (void)mg_risk_write_md(sink, &r);
                    (void)mg_risk_write_text(sink, &r);
                }
                mg_risk_result_free(&r);
            }
            mg_risk_model_free(&m);
        }
        break;
    }
    default: {
        mg_risk_text a = T("att", att, sizeof(att) - 1), v = T("vec", vec, sizeof(vec) - 1),
                     m = T("mea", mea, sizeof(mea) - 1), c = T("cal", cal, sizeof(cal) - 1);
        mg_risk_text f = T("fuzz.yaml", text, len);
        mg_risk_catalogue c2;
        if ((data[0] & 3) == 1)
            v = f;
        else if ((data[0] & 3) == 2)
            a = f;
        else
            c = f;
        if (mg_risk_catalogue_load_texts(&a, &v, &m, &c, &c2, &d) == MG_OK)
            mg_risk_catalogue_free(&c2);
        break;
    }
    }
    return 0;
}
