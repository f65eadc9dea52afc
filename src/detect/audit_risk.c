/*
 * m2mguard audit: the bridge to the analysis engine (risk.h): the
 * secure-until and policy years of an algorithm, the cost of guessing a
 * checksum. The years come from the engine's functions, never re-derived here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/risk.h"

/* The declarations of audit.h that this file implements, repeated: audit.h
 * includes store.h, hence crypto.h. The compiler checks them against each
 * other in audit.c's unit (which includes audit.h) only at link time, so
 * keep the two lists identical. */
typedef struct mg_audit_risk mg_audit_risk;
MG_MUST_CHECK mg_err mg_audit_risk_load(const char *catalogue_dir, const char *attacker,
                                        mg_audit_risk **out, char *why, size_t cap);
void mg_audit_risk_free(mg_audit_risk *r);
const char *mg_audit_risk_attacker(const mg_audit_risk *r);
double mg_audit_risk_budget(const mg_audit_risk *r);
double mg_audit_risk_key_year(const mg_audit_risk *r, int alg, size_t len, double *policy_year,
                              const char **policy);
double mg_audit_risk_mac_cost(const mg_audit_risk *r, double bits);

struct mg_audit_risk {
    mg_risk_catalogue cat;
    double budget;
    char attacker[64];
};

mg_err mg_audit_risk_load(const char *catalogue_dir, const char *attacker, mg_audit_risk **out,
                          char *why, size_t cap)
{
    *out = NULL;
    mg_audit_risk *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        (void)snprintf(why, cap, "out of memory");
        return MG_ERR_BUF;
    }
    static mg_risk_diag d; /* 8 KiB: not on the stack */
    mg_risk_diag_init(&d);
    mg_err e = mg_risk_catalogue_load(catalogue_dir, &r->cat, &d);
    if (e != MG_OK) {
        size_t n = strcspn(d.text, "\n");
        (void)snprintf(why, cap, "risk catalogue %s: %.*s", catalogue_dir, (int)(n > 300 ? 300 : n),
                       d.text);
        mg_risk_catalogue_free(&r->cat);
        free(r);
        return e;
    }
    const char *want = attacker != NULL && attacker[0] != '\0' ? attacker : "cyber_crime";
    for (size_t i = 0; i < r->cat.n_attackers; i++)
        if (strcmp(r->cat.attackers[i].id, want) == 0) {
            r->budget = r->cat.attackers[i].budget.hi;
            (void)snprintf(r->attacker, sizeof(r->attacker), "%s", want);
        }
    if (r->attacker[0] == '\0') {
        (void)snprintf(why, cap, "risk catalogue %s: no attacker profile '%.60s' (see 'm2mguard risk "
                                 "catalogue attackers')", catalogue_dir, want);
        mg_risk_catalogue_free(&r->cat);
        free(r);
        return MG_ERR_ARG;
    }
    *out = r;
    return MG_OK;
}

void mg_audit_risk_free(mg_audit_risk *r)
{
    if (r == NULL)
        return;
    mg_risk_catalogue_free(&r->cat);
    free(r);
}

const char *mg_audit_risk_attacker(const mg_audit_risk *r) { return r->attacker; }
double mg_audit_risk_budget(const mg_audit_risk *r) { return r->budget; }

/* alg: crypto.h's mg_alg (1 AES, 2 two-key TDEA, 3 three-key TDEA), len octets.
 * The security strengths are the engine's (model.c `algorithm:`: 3des2 80,
 * 3des3 112, aes-n n; SP 800-57 Part 1 Rev. 5 Table 2). */
double mg_audit_risk_key_year(const mg_audit_risk *r, int alg, size_t len, double *policy_year,
                              const char **policy)
{
    mg_risk_alg ra;
    double bits;
    switch (alg) {
    case 2: ra = MG_RISK_ALG_3DES2; bits = 80; break;
    case 3: ra = MG_RISK_ALG_3DES3; bits = 112; break;
    default:
        bits = (double)len * 8.0;
        ra = len == 16 ? MG_RISK_ALG_AES128 : len == 24 ? MG_RISK_ALG_AES192 : len == 32 ? MG_RISK_ALG_AES256
                                                                               : MG_RISK_ALG_NONE;
        break;
    }
    *policy_year = mg_risk_policy_disallowed(ra, bits, policy);
    const mg_risk_calib *k = &r->cat.calib;
    /* the engine's convention: the worst case adds one bit (engine.c) */
    return floor(mg_risk_offline_year(k, bits + (k->worst_case ? 1.0 : 0.0), r->budget));
}

/* Cost in EUR of forging a bits-bit checksum by trial over SMS, never stopped. */
double mg_audit_risk_mac_cost(const mg_audit_risk *r, double bits)
{
    const mg_risk_calib *k = &r->cat.calib;
    return mg_risk_online_cost(k, bits + (k->worst_case ? 1.0 : 0.0), 0);
}
