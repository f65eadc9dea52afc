/*
 * m2mguard console — the risk page: the fleet analysis of
 * `m2mguard risk analyze --fleet WORKDIR --format html` (src/cli/cmd_risk.c
 * cmd_fleet) on the console's open store, with the built model and a 30-day
 * evidence window. risk.h and store.h cannot meet (risk_report.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "m2mguard/risk.h"
#include "risk_report.h"

#define EVIDENCE_DAYS 30.0

mg_err mg_con_risk_run(struct mg_store *s, const char *catalogue_dir, const char *policy_path,
                       const char *workdir, char **html, size_t *html_len, bool *secure,
                       char *summary, size_t cap)
{
    *html = NULL;
    *html_len = 0;
    *secure = false;
    mg_risk_fleet *f = calloc(1, sizeof(*f));
    mg_risk_observed *obs = calloc(MG_RISK_FLEET_OBSERVED, sizeof(*obs));
    if (f == NULL || obs == NULL) {
        free(f);
        free(obs);
        (void)snprintf(summary, cap, "out of memory");
        return MG_ERR_BUF;
    }
    char why[256] = "";
    mg_err e = mg_risk_fleet_read(s, policy_path, (int64_t)time(NULL), EVIDENCE_DAYS, f, why,
                                  sizeof(why));
    if (e != MG_OK) {
        (void)snprintf(summary, cap, "reading the fleet failed: %s", why[0] ? why : mg_strerror(e));
        free(f);
        free(obs);
        return e;
    }
    mg_risk_catalogue c0, c1;
    mg_risk_model m0, m1;
    mg_risk_result r0, r1;
    memset(&c0, 0, sizeof(c0));
    memset(&c1, 0, sizeof(c1));
    memset(&m0, 0, sizeof(m0));
    memset(&m1, 0, sizeof(m1));
    memset(&r0, 0, sizeof(r0));
    memset(&r1, 0, sizeof(r1));
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    bool have_c0 = false, have_c1 = false, have_m0 = false, have_m1 = false;
    size_t n_obs = 0;
    mg_risk_opts o;
    memset(&o, 0, sizeof(o));
    e = mg_risk_catalogue_load(catalogue_dir, &c0, &d);
    have_c0 = e == MG_OK;
    if (e == MG_OK) {
        e = mg_risk_catalogue_load(catalogue_dir, &c1, &d);
        have_c1 = e == MG_OK;
    }
    if (e == MG_OK) {
        e = mg_risk_fleet_model(f, &c0, NULL, &m0, &d);
        have_m0 = e == MG_OK;
    }
    if (e == MG_OK) {
        e = mg_risk_fleet_model(f, &c1, NULL, &m1, &d);
        have_m1 = e == MG_OK;
    }
    if (e != MG_OK)
        (void)snprintf(summary, cap, "the catalogue or the fleet's model failed: %.200s", d.text);
    if (e == MG_OK) {
        e = mg_risk_fleet_evidence(f, &m1, &c1, obs, MG_RISK_FLEET_OBSERVED, &n_obs);
        if (e != MG_OK)
            (void)snprintf(summary, cap, "applying the evidence failed");
    }
    if (e == MG_OK) {
        e = mg_risk_analyze(&m0, &c0, &o, &r0);
        if (e == MG_OK)
            e = mg_risk_analyze(&m1, &c1, &o, &r1);
        if (e != MG_OK)
            (void)snprintf(summary, cap, "the analysis failed");
    }
    if (e == MG_OK) {
        char *p = NULL;
        size_t n = 0;
        FILE *out = open_memstream(&p, &n);
        if (out == NULL)
            e = MG_ERR_BUF;
        else {
            e = mg_risk_fleet_write(out, MG_RISK_FMT_HTML, workdir, NULL, f, obs, n_obs, &r0, &r1);
            if (ferror(out))
                e = MG_ERR_BUF;
            if (fclose(out) != 0)
                e = MG_ERR_BUF;
            if (e == MG_OK) {
                *html = p;
                *html_len = n;
            } else
                free(p);
        }
        if (e != MG_OK)
            (void)snprintf(summary, cap, "writing the report failed");
    }
    if (e == MG_OK) {
        *secure = r1.secure;
        (void)snprintf(summary, cap,
                       "%llu devices, %zu observed attack%s in %.0f days; %zu of %zu findings not "
                       "secure enough with the evidence (%zu before it)",
                       (unsigned long long)f->devices, n_obs, n_obs == 1 ? "" : "s", EVIDENCE_DAYS,
                       r1.n_insecure, r1.n_vts, r0.n_insecure);
    }
    mg_risk_result_free(&r0);
    mg_risk_result_free(&r1);
    if (have_m0)
        mg_risk_model_free(&m0);
    if (have_m1)
        mg_risk_model_free(&m1);
    if (have_c1)
        mg_risk_catalogue_free(&c1);
    if (have_c0)
        mg_risk_catalogue_free(&c0);
    free(obs);
    free(f);
    return e;
}
