/* Reports: terminal summary, JSON, Markdown, self-contained HTML with SVG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "risk_internal.h"
#include "tables.h"

/* ---- shared helpers ----------------------------------------------------------- */
static const mg_risk_vector *VEC(const mg_risk_result *r, const mg_risk_vt *x)
{
    return &r->cat->vectors[x->vector];
}
static const mg_risk_target *TGT(const mg_risk_result *r, int t)
{
    return &r->model->targets[t];
}

/* Worst finding per catalogue vector (lowest margin), -1 when not present. */
static void worst_per_vector(const mg_risk_result *r, long *w)
{
    for (size_t v = 0; v < r->cat->n_vectors; v++)
        w[v] = -1;
    for (size_t i = 0; i < r->n_vts; i++) {
        int v = r->vts[i].vector;
        if (w[v] < 0 || r->vts[i].margin < r->vts[w[v]].margin)
            w[v] = (long)i;
    }
}

static const char *attacker_name(const mg_risk_result *r, int a)
{
    return a >= 0 ? r->cat->attackers[a].name : "none capable";
}

static void until_text(char *b, size_t cap, const mg_risk_result *r, double y)
{
    if (isinf(y) && y > 0)
        snprintf(b, cap, "not limited by key length");
    else if (y < r->year)
        snprintf(b, cap, "already broken in %.0f", r->year);
    else
        snprintf(b, cap, "%.0f", floor(y));
}

static bool detectable(const mg_risk_vector *v)
{
    return v->n_detected_by > 0;
}

static bool preventable(const mg_risk_vector *v)
{
    for (size_t i = 0; i < v->n_effects; i++)
        if (v->effects[i].prevents || v->effects[i].cost_x > 1)
            return true;
    return false;
}

/* The CEM attack potential of a finding as the report shows it: the sum, or
 * MG_AP_NOT_RATED when its effective window of opportunity is "none" (CEM
 * Table B.3 gives "none" no value; ISO/SAE 21434 still rates it). The
 * effective level is the vector's, raised by the effects of the measures in
 * place on the target (the rule of the engine: the highest level is kept). */
static int cem_ap(const mg_risk_result *r, const mg_risk_vt *x)
{
    const mg_risk_vector *v = VEC(r, x);
    const mg_risk_target *t = TGT(r, x->target);
    /* levels are small integers (-1 none .. 4), not characters */
    int lw = v->level[MG_AP_WINDOW]; /* NOLINT(bugprone-signed-char-misuse,cert-str34-c) */
    for (size_t i = 0; i < v->n_effects; i++) {
        const mg_risk_effect *e = &v->effects[i];
        if (e->raise[MG_AP_WINDOW] <= lw)
            continue;
        for (size_t k = 0; k < t->n_measures; k++)
            if (t->measures[k].measure == e->measure) {
                lw = e->raise[MG_AP_WINDOW]; /* NOLINT(bugprone-signed-char-misuse,cert-str34-c) */
                break;
            }
    }
    return mg_risk_ap_cem_rated(MG_AP_WINDOW, lw) ? x->ap_cem : MG_AP_NOT_RATED;
}

/* ---- JSON ---------------------------------------------------------------------- */
static void js(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Money and figures in JSON: exact (mg_json_num: integers for whole euros,
 * else the shortest digits that read back the same; null for infinity). */
static void jnum(FILE *f, double v)
{
    mg_json_num(f, v);
}

/* "V on T: A still profits; margin M with every catalogue measure; closed only
 * by more than X EUR of attack cost from outside the catalogue, by removing
 * the asset, or by accepting the risk" */
static void gap_text(char *buf, size_t cap, const mg_risk_result *r, const mg_risk_gap *g)
{
    const mg_risk_vt *x = &r->vts[g->vt];
    char m[64], e[64];
    mg_fmt_eur(m, sizeof(m), g->margin_all);
    mg_fmt_eur(e, sizeof(e), g->close_eur);
    snprintf(buf, cap,
             "%s on %s: %s still profits (margin %s with every catalogue measure); closed only by "
             "raising the attack cost by more than %s with a measure outside the catalogue, by "
             "removing the asset, or by accepting the risk",
             VEC(r, x)->id, TGT(r, x->target)->id, attacker_name(r, g->attacker), m, e);
}

/* The headline's policy finding, "since Y: V on T (P)"; false when no key is
 * disallowed by policy. One text for every format. */
static bool policy_headline(char *buf, size_t cap, const mg_risk_result *r)
{
    if (!isfinite(r->disallowed_since))
        return false;
    const mg_risk_vt *x = &r->vts[r->disallowed_vt];
    snprintf(buf, cap, "since %.0f: %s on %s (%s)", r->disallowed_since, VEC(r, x)->id,
             TGT(r, x->target)->id, x->policy != NULL ? x->policy : "policy");
    return true;
}

/* "computationally secure until Y; disallowed by policy since Z (P)" */
static void policy_text(char *buf, size_t cap, const mg_risk_result *r, const mg_risk_vt *x)
{
    char u[64];
    until_text(u, sizeof(u), r, x->secure_until);
    if (isfinite(x->disallowed_since))
        snprintf(buf, cap, "%s; disallowed by policy since %.0f (%s)", u, x->disallowed_since,
                 x->policy != NULL ? x->policy : "policy");
    else
        snprintf(buf, cap, "%s", u);
}

mg_err mg_risk_write_json(FILE *f, const mg_risk_result *r)
{
    const mg_risk_model *m = r->model;
    const mg_risk_catalogue *c = r->cat;
    fprintf(f, "{\n  \"model\": {\"name\": ");
    js(f, m->name);
    fprintf(f, ", \"file\": ");
    js(f, m->file);
    fprintf(f, ", \"year\": %.0f, \"lifetime_years\": ", m->year);
    jnum(f, m->lifetime_years);
    fprintf(f, ", \"devices\": ");
    jnum(f, m->devices);
    fprintf(f, "},\n  \"analysis\": {\"year\": %.0f, \"seed\": %llu, \"draws\": %u, "
               "\"currency\": \"EUR\", \"brute_force_case\": \"%s\", \"budget_growth_per_year\": ",
            r->year, (unsigned long long)r->seed, r->draws,
            r->cat->calib.worst_case ? "worst" : "expected");
    jnum(f, r->cat->calib.budget_growth);
    fprintf(f, "},\n");
    fprintf(f, "  \"verdict\": {\"secure_enough\": %s, \"insecure_findings\": %zu, "
               "\"findings\": %zu, \"min_margin_eur\": ",
            r->secure ? "true" : "false", r->n_insecure, r->n_vts);
    jnum(f, r->min_margin);
    fprintf(f, ", \"secure_until_year\": ");
    jnum(f, isfinite(r->secure_until) ? floor(r->secure_until) : r->secure_until);
    char ut[64];
    until_text(ut, sizeof(ut), r, r->secure_until);
    fprintf(f, ", \"secure_until_limited_by_key_length\": %s, \"secure_until\": ",
            r->key_limited ? "true" : "false");
    js(f, ut);
    fprintf(f, ", \"disallowed_by_policy_since\": ");
    jnum(f, isfinite(r->disallowed_since) ? r->disallowed_since : NAN);
    if (isfinite(r->disallowed_since)) {
        const mg_risk_vt *x = &r->vts[r->disallowed_vt];
        fprintf(f, ", \"disallowed_finding\": {\"vector\": ");
        js(f, VEC(r, x)->id);
        fprintf(f, ", \"target\": ");
        js(f, TGT(r, x->target)->id);
        fprintf(f, ", \"policy\": ");
        js(f, x->policy != NULL ? x->policy : "");
        fputc('}', f);
    }
    fprintf(f, ", \"achievable\": %s, \"not_achievable\": [", r->achievable ? "true" : "false");
    for (size_t i = 0; i < r->n_gaps; i++) {
        const mg_risk_gap *g = &r->gaps[i];
        const mg_risk_vt *x = &r->vts[g->vt];
        fprintf(f, "%s\n    {\"vector\": ", i ? "," : "");
        js(f, VEC(r, x)->id);
        fprintf(f, ", \"target\": ");
        js(f, TGT(r, x->target)->id);
        fprintf(f, ", \"attacker\": ");
        js(f, g->attacker >= 0 ? r->cat->attackers[g->attacker].id : "");
        fprintf(f, ", \"cost_eur_with_all_measures\": ");
        jnum(f, g->cost_lo_all);
        fprintf(f, ", \"willingness_eur\": ");
        jnum(f, g->willingness_all);
        fprintf(f, ", \"margin_eur\": ");
        jnum(f, g->margin_all);
        fprintf(f, ", \"raise_cost_by_more_than_eur\": ");
        jnum(f, g->close_eur);
        fprintf(f, ", \"options\": [\"a measure outside the catalogue\", \"removing the asset\", "
                   "\"accepting the risk\"]}");
    }
    fprintf(f, "]");
    fprintf(f, ", \"residual_risk_eur\": ");
    jnum(f, r->residual);
    fprintf(f, "},\n  \"portfolio\": {\"exact\": %s, \"cost_eur\": ",
            r->portfolio_exact ? "true" : "false");
    jnum(f, r->portfolio_cost);
    fprintf(f, ", \"lower_bound_eur\": ");
    jnum(f, r->portfolio_lower_bound);
    fprintf(f, ", \"unclosable_findings\": %zu, \"residual_risk_after_eur\": ", r->n_unclosable);
    jnum(f, r->residual_after);
    fprintf(f, ", \"measures\": [");
    for (size_t i = 0; i < r->n_picks; i++) {
        fprintf(f, "%s\n    {\"measure\": ", i ? "," : "");
        js(f, c->measures[r->picks[i].measure].id);
        fprintf(f, ", \"target\": ");
        js(f, TGT(r, r->picks[i].target)->id);
        fprintf(f, ", \"role\": ");
        js(f, c->roles[c->measures[r->picks[i].measure].role].id);
        fprintf(f, ", \"cost_eur\": ");
        jnum(f, r->picks[i].cost);
        fprintf(f, ", \"fixed_cost_eur\": ");
        jnum(f, c->measures[r->picks[i].measure].cost_fixed);
        fputc('}', f);
    }
    fprintf(f, "]},\n  \"curve\": [");
    for (size_t i = 0; i < r->n_curve; i++) {
        fprintf(f, "%s{\"cost_eur\": ", i ? ", " : "");
        jnum(f, r->curve[i].cost);
        fprintf(f, ", \"residual_risk_eur\": ");
        jnum(f, r->curve[i].residual);
        fputc('}', f);
    }
    fprintf(f, "],\n  \"targets\": [");
    for (size_t t = 0; t < m->n_targets; t++) {
        const mg_risk_target *tg = &m->targets[t];
        bool sec = true;
        double margin = INFINITY;
        long weakest = -1;
        for (size_t i = 0; i < r->n_vts; i++)
            if (r->vts[i].target == (int)t) {
                sec = sec && r->vts[i].secure;
                if (weakest < 0 || r->vts[i].margin < margin) {
                    margin = r->vts[i].margin;
                    weakest = (long)i;
                }
            }
        fprintf(f, "%s\n    {\"id\": ", t ? "," : "");
        js(f, tg->id);
        fprintf(f, ", \"kind\": ");
        js(f, tg->kind);
        fprintf(f, ", \"link\": %s, \"owner\": ", tg->is_link ? "true" : "false");
        if (tg->owner >= 0)
            js(f, c->roles[tg->owner].id);
        else
            fputs("null", f);
        fprintf(f, ", \"measures\": [");
        for (size_t k = 0; k < tg->n_measures; k++) {
            fprintf(f, "%s", k ? ", " : "");
            js(f, c->measures[tg->measures[k].measure].id);
        }
        fprintf(f, "], \"secure_enough\": %s, \"weakest_vector\": ", sec ? "true" : "false");
        if (weakest >= 0)
            js(f, c->vectors[r->vts[weakest].vector].id);
        else
            fputs("null", f);
        fprintf(f, ", \"margin_eur\": ");
        jnum(f, margin);
        fputc('}', f);
    }
    fprintf(f, "],\n  \"findings\": [");
    for (size_t i = 0; i < r->n_vts; i++) {
        const mg_risk_vt *x = &r->vts[i];
        const mg_risk_vector *v = VEC(r, x);
        fprintf(f, "%s\n    {\"vector\": ", i ? "," : "");
        js(f, v->id);
        fprintf(f, ", \"target\": ");
        js(f, TGT(r, x->target)->id);
        fprintf(f, ", \"principle\": ");
        js(f, mg_risk_principle_name(v->principle));
        fprintf(f, ", \"prevented\": %s, \"attack_potential\": %d, \"attack_potential_21434\": %d,"
                   " \"cc_band\": ",
                x->applicable ? "false" : "true", x->ap_cem, x->ap_21434);
        js(f, mg_risk_cc_band_name(x->band));
        int apc = cem_ap(r, x);
        fprintf(f, ", \"cem_rated\": %s, \"cem_attack_potential_required\": ",
                apc >= 0 ? "true" : "false");
        js(f, mg_risk_cem_required_text(apc));
        fprintf(f, ", \"cem_toe_resistant_to\": ");
        js(f, mg_risk_cem_resistant_text(apc));
        fprintf(f, ", \"feasibility_21434\": ");
        js(f, mg_risk_feas_name(x->feas));
        fprintf(f, ", \"cost_eur\": {\"low\": ");
        jnum(f, x->cost.lo);
        fprintf(f, ", \"high\": ");
        jnum(f, x->cost.hi);
        fprintf(f, "}, \"brute_force_eur\": ");
        jnum(f, x->brute_eur);
        fprintf(f, ", \"willingness_eur\": ");
        jnum(f, x->willingness);
        fprintf(f, ", \"attacker\": ");
        if (x->worst_attacker >= 0)
            js(f, c->attackers[x->worst_attacker].id);
        else
            fputs("null", f);
        fprintf(f, ", \"probability\": %.4f, \"probability_by_attacker\": {", x->probability);
        for (size_t j = 0; j < m->n_attackers; j++) {
            fprintf(f, "%s", j ? ", " : "");
            js(f, c->attackers[m->attackers[j]].id);
            fprintf(f, ": %.4f", r->p_attacker[i * m->n_attackers + j]);
        }
        fprintf(f, "}, \"exploited_devices\": ");
        jnum(f, x->exploited);
        fprintf(f, ", \"exposure_days\": ");
        jnum(f, x->exposure_days);
        fprintf(f, ", \"damage_eur\": {\"min\": ");
        jnum(f, x->damage_min);
        fprintf(f, ", \"worst\": ");
        jnum(f, x->damage_worst);
        fprintf(f, "}, \"demand_eur\": ");
        jnum(f, x->demand);
        fprintf(f, ", \"impact\": ");
        js(f, mg_risk_impact_name(x->impact));
        fprintf(f, ", \"risk_21434\": %d, \"tvra\": ", x->risk_21434);
        js(f, mg_risk_tvra_name(x->tvra));
        fprintf(f, ", \"secure_enough\": %s, \"margin_eur\": ", x->secure ? "true" : "false");
        jnum(f, x->margin);
        fprintf(f, ", \"secure_until_year\": ");
        jnum(f, isfinite(x->secure_until) ? floor(x->secure_until) : x->secure_until);
        until_text(ut, sizeof(ut), r, x->secure_until);
        fprintf(f, ", \"secure_until\": ");
        js(f, ut);
        fprintf(f, ", \"key_limited\": %s, \"disallowed_by_policy_since\": ",
                x->key_limited ? "true" : "false");
        jnum(f, isfinite(x->disallowed_since) ? x->disallowed_since : NAN);
        fprintf(f, ", \"policy\": ");
        if (x->policy != NULL && isfinite(x->disallowed_since))
            js(f, x->policy);
        else
            fputs("null", f);
        fprintf(f, ", \"detected\": %s, \"prevention_eur\": ", x->detected ? "true" : "false");
        jnum(f, x->prevention_eur);
        fputc('}', f);
    }
    long *w = calloc(c->n_vectors + 1, sizeof(long));
    if (w == NULL)
        return MG_ERR_BUF;
    worst_per_vector(r, w);
    fprintf(f, "],\n  \"defence\": [");
    bool first = true;
    for (size_t v = 0; v < c->n_vectors; v++) {
        if (w[v] < 0)
            continue;
        const mg_risk_vector *ve = &c->vectors[v];
        const mg_risk_vt *x = &r->vts[w[v]];
        fprintf(f, "%s\n    {\"vector\": ", first ? "" : ",");
        first = false;
        js(f, ve->id);
        fprintf(f, ", \"name\": ");
        js(f, ve->name);
        fprintf(f, ", \"detectable\": %s, \"detected\": %s, \"preventable\": %s, "
                   "\"prevention_eur\": ",
                detectable(ve) ? "true" : "false", x->detected ? "true" : "false",
                preventable(ve) ? "true" : "false");
        jnum(f, x->secure ? 0.0 : x->prevention_eur);
        fprintf(f, ", \"response\": ");
        js(f, ve->response);
        fprintf(f, ", \"source\": ");
        js(f, ve->source);
        fputc('}', f);
    }
    free(w);
    fprintf(f, "],\n  \"duties\": [");
    for (size_t ro = 0; ro < c->n_roles; ro++) {
        fprintf(f, "%s\n    {\"role\": ", ro ? "," : "");
        js(f, c->roles[ro].id);
        fprintf(f, ", \"organisation\": ");
        if (m->role_org[ro])
            js(f, m->role_org[ro]);
        else
            fputs("null", f);
        fprintf(f, ", \"duty\": ");
        js(f, c->roles[ro].duty);
        fprintf(f, ", \"new_measures\": [");
        bool f1 = true;
        for (size_t i = 0; i < r->n_picks; i++)
            if (c->measures[r->picks[i].measure].role == (int)ro) {
                fprintf(f, "%s{\"measure\": ", f1 ? "" : ", ");
                f1 = false;
                js(f, c->measures[r->picks[i].measure].id);
                fprintf(f, ", \"target\": ");
                js(f, TGT(r, r->picks[i].target)->id);
                fputc('}', f);
            }
        fprintf(f, "], \"keeps\": [");
        f1 = true;
        for (size_t t = 0; t < m->n_targets; t++)
            for (size_t k = 0; k < m->targets[t].n_measures; k++)
                if (c->measures[m->targets[t].measures[k].measure].role == (int)ro) {
                    fprintf(f, "%s{\"measure\": ", f1 ? "" : ", ");
                    f1 = false;
                    js(f, c->measures[m->targets[t].measures[k].measure].id);
                    fprintf(f, ", \"target\": ");
                    js(f, m->targets[t].id);
                    fputc('}', f);
                }
        fprintf(f, "]}");
    }
    fprintf(f, "]\n}\n");
    return ferror(f) ? MG_ERR_BUF : MG_OK;
}

/* ---- terminal summary ------------------------------------------------------------ */
mg_err mg_risk_write_text(FILE *f, const mg_risk_result *r)
{
    const mg_risk_catalogue *c = r->cat;
    char a[64], b[64], u[64];
    mg_fmt_eur(a, sizeof(a), r->min_margin);
    until_text(u, sizeof(u), r, r->secure_until);
    fprintf(f, "%s: %s\n", r->model->name,
            r->secure ? "SECURE ENOUGH" : "NOT SECURE ENOUGH");
    fprintf(f, "  %zu of %zu vector/target findings below the attackers' budget; smallest margin %s\n",
            r->n_insecure, r->n_vts, a);
    fprintf(f, "  secure until: %s (analysis year %.0f, end of life %.0f)\n", u, r->year,
            r->model->year + r->model->lifetime_years);
    char ph[512];
    if (policy_headline(ph, sizeof(ph), r))
        fprintf(f, "  disallowed by policy %s\n", ph);
    if (!r->achievable) {
        fprintf(f, "  NOT ACHIEVABLE WITH THE CATALOGUE: %zu finding(s) no set of measures closes:\n",
                r->n_gaps);
        for (size_t i = 0; i < r->n_gaps; i++) {
            char g[512];
            gap_text(g, sizeof(g), r, &r->gaps[i]);
            fprintf(f, "    ! %s\n", g);
        }
    }
    mg_fmt_eur(a, sizeof(a), r->residual);
    fprintf(f, "  residual risk (sum of probability x damage): %s\n", a);
    size_t shown = 0;
    for (size_t i = 0; i < r->n_vts && shown < 10; i++) {
        const mg_risk_vt *x = &r->vts[i];
        if (x->secure)
            continue;
        if (shown++ == 0)
            fprintf(f, "  weakest points:\n");
        mg_fmt_eur(a, sizeof(a), x->cost.lo);
        mg_fmt_eur(b, sizeof(b), x->willingness);
        fprintf(f, "    - %s on %s: attack from %s, %s would spend %s\n", VEC(r, x)->id,
                TGT(r, x->target)->id, a, attacker_name(r, x->worst_attacker), b);
    }
    if (r->n_insecure > shown)
        fprintf(f, "    ... %zu more in the full report\n", r->n_insecure - shown);
    if (r->n_picks > 0) {
        mg_fmt_eur(a, sizeof(a), r->portfolio_cost);
        if (r->achievable)
            fprintf(f, "  cheapest measures that close the gap (%s, %s):\n", a,
                    r->portfolio_exact ? "exact" : "heuristic");
        else
            fprintf(f, "  cheapest measures that close the %zu closable finding(s) (%s, %s; %zu cannot "
                       "be closed):\n",
                    r->n_insecure - r->n_gaps, a, r->portfolio_exact ? "exact" : "heuristic", r->n_gaps);
        for (size_t i = 0; i < r->n_picks && i < 15; i++) {
            mg_fmt_eur(b, sizeof(b), r->picks[i].cost);
            fprintf(f, "    + %s on %s (%s + %s once)\n", c->measures[r->picks[i].measure].id,
                    TGT(r, r->picks[i].target)->id, b,
                    (mg_fmt_eur(a, sizeof(a), c->measures[r->picks[i].measure].cost_fixed), a));
        }
        if (r->n_picks > 15)
            fprintf(f, "    ... %zu more in the full report\n", r->n_picks - 15);
    }
    return ferror(f) ? MG_ERR_BUF : MG_OK;
}

/* ---- Markdown ----------------------------------------------------------------------- */
static void mdcell(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

/* Text shared by the Markdown and HTML reports. */
static const char columns_note[] =
    "Attack potential: sum of the five factors on the ISO/IEC 18045 (CEM) and ISO/SAE 21434 "
    "scales. The two CEM columns are Table B.4: the attack potential required to exploit the "
    "scenario, and the attack potential the TOE is resistant to (one band lower; 0-9 gives no "
    "rating). A window of opportunity \"none\" has no CEM value (not rated) but is still rated "
    "by ISO/SAE 21434 (value 10).";
static const char risk5_note[] =
    "Why a finding can have ISO/SAE 21434 risk value 4 or 5 and still be \"secure enough\": "
    "the risk value is read from the standard's ordinal matrix of impact (the damage if the "
    "attack succeeds) and attack feasibility (how hard the attack is), and says nothing about "
    "money. The verdict compares the cheapest attack with the most that a capable attacker in "
    "scope would spend: a severe, technically easy attack is still secure enough when it costs "
    "more than any such attacker gains from it. Treat a high risk value with a thin margin as "
    "the first thing to watch when budgets or costs change.";

/* Findings with a 21434 risk value of 4 or 5 judged secure enough. */
static size_t count_high_risk_secure(const mg_risk_result *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_vts; i++)
        n += r->vts[i].secure && r->vts[i].applicable && r->vts[i].risk_21434 >= 4;
    return n;
}

mg_err mg_risk_write_md(FILE *f, const mg_risk_result *r)
{
    const mg_risk_model *m = r->model;
    const mg_risk_catalogue *c = r->cat;
    char a[64], b[64], d[64], u[64];
    long *w = calloc(c->n_vectors + 1, sizeof(long));
    if (w == NULL)
        return MG_ERR_BUF;
    worst_per_vector(r, w);
    fprintf(f, "# Risk report: ");
    mdcell(f, m->name);
    fprintf(f, "\n\n## Verdict: **%s**\n\n", r->secure ? "secure enough" : "NOT secure enough");
    mg_fmt_eur(a, sizeof(a), r->min_margin);
    until_text(u, sizeof(u), r, r->secure_until);
    fprintf(f, "- findings below the attackers' budget: %zu of %zu\n", r->n_insecure, r->n_vts);
    fprintf(f, "- smallest margin (attack cost minus attacker budget): %s\n", a);
    fprintf(f, "- secure until: %s (analysis year %.0f, end of life %.0f)\n", u, r->year,
            m->year + m->lifetime_years);
    char ph[512];
    if (policy_headline(ph, sizeof(ph), r)) {
        fprintf(f, "- disallowed by policy ");
        mdcell(f, ph);
        fputc('\n', f);
    }
    if (!r->achievable) {
        fprintf(f, "- **not achievable with the catalogue**: %zu finding(s) no set of measures closes\n",
                r->n_gaps);
        for (size_t i = 0; i < r->n_gaps; i++) {
            char g[512];
            gap_text(g, sizeof(g), r, &r->gaps[i]);
            fprintf(f, "  - ");
            mdcell(f, g);
            fputc('\n', f);
        }
    }
    mg_fmt_eur(a, sizeof(a), r->residual);
    mg_fmt_eur(b, sizeof(b), r->portfolio_cost);
    mg_fmt_eur(d, sizeof(d), r->residual_after);
    fprintf(f, "- residual risk: %s per attack campaign; after the cheapest portfolio (%s): %s\n",
            a, b, d);
    fprintf(f, "- model: %.0f devices, year %.0f, Monte Carlo %u draws, seed %llu\n\n", m->devices,
            r->year, r->draws, (unsigned long long)r->seed);

    fprintf(f, "## Risk matrix (ISO/SAE 21434: impact x attack feasibility, findings per cell)\n\n"
               "| impact \\ feasibility | Very low | Low | Medium | High |\n|---|---|---|---|---|\n");
    for (int i = MG_IMPACT_SEVERE; i >= 0; i--) {
        fprintf(f, "| %s |", mg_risk_impact_name((mg_impact)i));
        for (int j = 0; j < 4; j++) {
            size_t n = 0;
            for (size_t k = 0; k < r->n_vts; k++)
                n += r->vts[k].applicable && (int)r->vts[k].impact == i && (int)r->vts[k].feas == j;
            fprintf(f, " %zu (risk %d) |", n, mg_risk_value_21434((mg_impact)i, (mg_feas)j));
        }
        fputc('\n', f);
    }
    fprintf(f, "\n## Attack cost vs attacker budget (weakest target per vector)\n\n"
               "| vector | target | attack cost | attacker | budget | margin | verdict |\n"
               "|---|---|---|---|---|---|---|\n");
    for (size_t v = 0; v < c->n_vectors; v++) {
        if (w[v] < 0)
            continue;
        const mg_risk_vt *x = &r->vts[w[v]];
        mg_fmt_eur(a, sizeof(a), x->cost.lo);
        mg_fmt_eur(b, sizeof(b), x->willingness);
        mg_fmt_eur(d, sizeof(d), x->margin);
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s |\n", c->vectors[v].id,
                TGT(r, x->target)->id, a, attacker_name(r, x->worst_attacker), b, d,
                x->secure ? "enough" : "**not enough**");
    }
    fprintf(f, "\n## Secure until (key and MAC length)\n\n| vector | target | secure until |\n|---|---|---|\n");
    size_t nk = 0;
    for (size_t i = 0; i < r->n_vts; i++) {
        const mg_risk_vt *x = &r->vts[i];
        if (VEC(r, x)->brute == MG_BRUTE_NONE || x->brute_eur <= 0)
            continue;
        char pt[160];
        policy_text(pt, sizeof(pt), r, x);
        fprintf(f, "| %s | %s | %s |\n", VEC(r, x)->id, TGT(r, x->target)->id, pt);
        nk++;
    }
    if (nk == 0)
        fprintf(f, "| (no key or MAC in place) | | |\n");
    fprintf(f, "\n## Cost vs residual risk\n\n| measures cost | residual risk |\n|---|---|\n");
    for (size_t i = 0; i < r->n_curve; i++) {
        mg_fmt_eur(a, sizeof(a), r->curve[i].cost);
        mg_fmt_eur(b, sizeof(b), r->curve[i].residual);
        fprintf(f, "| %s | %s |\n", a, b);
    }
    mg_fmt_eur(a, sizeof(a), r->portfolio_cost);
    mg_fmt_eur(b, sizeof(b), r->portfolio_lower_bound);
    fprintf(f, "\n## Cheapest portfolio (%s): %s (lower bound %s)\n\n", 
            r->portfolio_exact ? "exact" : "heuristic", a, b);
    fprintf(f, "| measure | on | who | cost | fixed cost (once) |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < r->n_picks; i++) {
        const mg_risk_measure *me = &c->measures[r->picks[i].measure];
        mg_fmt_eur(a, sizeof(a), r->picks[i].cost);
        mg_fmt_eur(b, sizeof(b), me->cost_fixed);
        fprintf(f, "| %s | %s | %s | %s | %s |\n", me->id, TGT(r, r->picks[i].target)->id,
                c->roles[me->role].name, a, b);
    }
    if (r->n_unclosable)
        fprintf(f, "\n%zu finding(s) cannot be closed by any catalogue measure.\n", r->n_unclosable);
    fprintf(f, "\n## Nodes and links\n\n| node/link | kind | measures in place | verdict | weakest vector | margin |\n|---|---|---|---|---|---|\n");
    for (size_t t = 0; t < m->n_targets; t++) {
        const mg_risk_target *tg = &m->targets[t];
        bool sec = true;
        long wk = -1;
        for (size_t i = 0; i < r->n_vts; i++)
            if (r->vts[i].target == (int)t) {
                sec = sec && r->vts[i].secure;
                if (wk < 0 || r->vts[i].margin < r->vts[wk].margin)
                    wk = (long)i;
            }
        fprintf(f, "| %s | %s%s | ", tg->id, tg->kind, tg->is_link ? " (link)" : "");
        for (size_t k = 0; k < tg->n_measures; k++)
            fprintf(f, "%s%s", k ? ", " : "", c->measures[tg->measures[k].measure].id);
        if (wk >= 0)
            mg_fmt_eur(a, sizeof(a), r->vts[wk].margin);
        fprintf(f, " | %s | %s | %s |\n", sec ? "enough" : "**not enough**",
                wk >= 0 ? c->vectors[r->vts[wk].vector].id : "-", wk >= 0 ? a : "-");
    }
    fprintf(f, "\n## Findings\n\n%s\n\n| vector | target | principle | potential CEM / 21434 | "
               "required to exploit (CEM) | TOE resistant to (CEM) | feasibility (21434) | cost | "
               "probability | worst damage | demand | risk 21434 | TVRA | verdict |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            columns_note);
    for (size_t i = 0; i < r->n_vts; i++) {
        const mg_risk_vt *x = &r->vts[i];
        int apc = cem_ap(r, x);
        mg_fmt_eur(a, sizeof(a), x->cost.lo);
        mg_fmt_eur(b, sizeof(b), x->damage_worst);
        mg_fmt_eur(d, sizeof(d), x->demand);
        char p[32];
        if (apc >= 0)
            snprintf(p, sizeof(p), "%d / %d", apc, x->ap_21434);
        else
            snprintf(p, sizeof(p), "- / %d", x->ap_21434);
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %.3f | %s | %s | %d | %s | %s |\n",
                VEC(r, x)->id, TGT(r, x->target)->id, mg_risk_principle_name(VEC(r, x)->principle),
                p, mg_risk_cem_required_text(apc), mg_risk_cem_resistant_text(apc),
                mg_risk_feas_name(x->feas), a, x->probability, b, d, x->risk_21434,
                mg_risk_tvra_name(x->tvra), x->secure ? "enough" : "**not enough**");
    }
    if (count_high_risk_secure(r) > 0)
        fprintf(f, "\n%s\n", risk5_note);
    fprintf(f, "\n## Defence analysis\n\n| vector | detectable | detected now | preventable | cost of prevention | response |\n|---|---|---|---|---|---|\n");
    for (size_t v = 0; v < c->n_vectors; v++) {
        if (w[v] < 0)
            continue;
        const mg_risk_vt *x = &r->vts[w[v]];
        mg_fmt_eur(a, sizeof(a), x->secure ? 0.0 : x->prevention_eur);
        fprintf(f, "| %s | %s | %s | %s | %s | ", c->vectors[v].id,
                detectable(&c->vectors[v]) ? "yes" : "no", x->detected ? "yes" : "no",
                preventable(&c->vectors[v]) ? "yes" : "no",
                x->secure ? "0 EUR (already enough)"
                          : (isfinite(x->prevention_eur) ? a : "no catalogue measure"));
        mdcell(f, c->vectors[v].response);
        fprintf(f, " |\n");
    }
    fprintf(f, "\n## Duties per role\n\n");
    for (size_t ro = 0; ro < c->n_roles; ro++) {
        fprintf(f, "- **%s**%s%s: ", c->roles[ro].name, m->role_org[ro] ? " — " : "",
                m->role_org[ro] ? m->role_org[ro] : "");
        mdcell(f, c->roles[ro].duty);
        for (size_t i = 0; i < r->n_picks; i++)
            if (c->measures[r->picks[i].measure].role == (int)ro)
                fprintf(f, " Add %s on %s.", c->measures[r->picks[i].measure].name,
                        TGT(r, r->picks[i].target)->id);
        fputc('\n', f);
    }
    free(w);
    return ferror(f) ? MG_ERR_BUF : MG_OK;
}

/* ---- HTML --------------------------------------------------------------------------- */
static void he(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Escaped, with a line-break opportunity after '_', '/' and '.' so that long
 * identifiers wrap inside a narrow table cell. */
static void hew(FILE *f, const char *s)
{
    char one[2] = {0, 0};
    for (; s && *s; s++) {
        one[0] = *s;
        he(f, one);
        if ((*s == '_' || *s == '/' || *s == '.') && s[1] != '\0')
            fputs("<wbr>", f);
    }
}

/* Principle names with soft hyphens (a narrow column hyphenates them). */
static const char *principle_html(mg_principle p)
{
    static const char *n[] = {"authen&shy;tication", "confiden&shy;tiality", "integrity",
                              "availa&shy;bility"};
    return (unsigned)p <= MG_PR_AVAILABILITY ? n[p] : "?";
}

static const char *risk_colour(int v)
{
    static const char *c[] = {"#eee", "#4caf50", "#9ccc65", "#ffb300", "#f4511e", "#b71c1c"};
    return v >= 0 && v <= 5 ? c[v] : "#eee";
}

static void svg_matrix(FILE *f, const mg_risk_result *r)
{
    fprintf(f, "<svg class=\"chart\" id=\"risk-matrix\" width=\"460\" height=\"260\" "
               "viewBox=\"0 0 460 260\" role=\"img\" aria-label=\"risk matrix\">\n");
    for (int i = 0; i < 4; i++) {
        int row = 3 - i; /* severe at the top */
        fprintf(f, "<text x=\"95\" y=\"%d\" text-anchor=\"end\">%s</text>\n", 20 + row * 50 + 30,
                mg_risk_impact_name((mg_impact)i));
        for (int j = 0; j < 4; j++) {
            size_t n = 0;
            for (size_t k = 0; k < r->n_vts; k++)
                n += r->vts[k].applicable && (int)r->vts[k].impact == i && (int)r->vts[k].feas == j;
            int v = mg_risk_value_21434((mg_impact)i, (mg_feas)j);
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"88\" height=\"48\" fill=\"%s\"/>"
                       "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%zu</text>"
                       "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"small\">risk %d</text>\n",
                    100 + j * 90, 20 + row * 50, risk_colour(v), 144 + j * 90, 20 + row * 50 + 24,
                    n, 144 + j * 90, 20 + row * 50 + 40, v);
        }
    }
    for (int j = 0; j < 4; j++)
        fprintf(f, "<text x=\"%d\" y=\"235\" text-anchor=\"middle\">%s</text>\n", 144 + j * 90,
                mg_risk_feas_name((mg_feas)j));
    fprintf(f, "<text x=\"280\" y=\"255\" text-anchor=\"middle\" class=\"small\">attack "
               "feasibility (ISO/SAE 21434) &#8594;</text>\n</svg>\n");
}

/* Decades [*d0, *d1] of the log axis of the cost chart: from the smallest to
 * the largest finite positive amount drawn (cheapest attack cost.lo, attacker
 * budget), at least
 * one decade wide; 10^0..10^3 when there is nothing to show. */
static void bars_axis(const mg_risk_result *r, const long *w, int *d0, int *d1)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t v = 0; v < r->cat->n_vectors; v++) {
        if (w[v] < 0)
            continue;
        const mg_risk_vt *x = &r->vts[w[v]];
        double vals[2] = {x->cost.lo, x->worst_attacker >= 0 ? x->willingness : 0};
        for (int k = 0; k < 2; k++)
            if (isfinite(vals[k]) && vals[k] > 0) {
                lo = fmin(lo, vals[k]);
                hi = fmax(hi, vals[k]);
            }
    }
    if (!(lo <= hi)) {
        *d0 = 0;
        *d1 = 3;
        return;
    }
    /* ±308 fits in an int: finite doubles are below 1.8e308 */
    *d0 = (int)floor(log10(lo));
    *d1 = (int)ceil(log10(hi));
    if (*d1 <= *d0)
        *d1 = *d0 + 1;
}

#define BARS_X 260
#define BARS_W 600

/* x position of an amount on the log axis [10^d0, 10^d1], clamped to it. */
static double bars_x(double eur, int d0, int d1)
{
    if (!(eur > 0))
        return BARS_X;
    double t = (log10(eur) - d0) / (double)(d1 - d0);
    return BARS_X + BARS_W * fmin(1.0, fmax(0.0, t));
}

static void svg_bars(FILE *f, const mg_risk_result *r, const long *w)
{
    size_t n = 0;
    for (size_t v = 0; v < r->cat->n_vectors; v++)
        n += w[v] >= 0;
    int h = 40 + (int)n * 22;
    int d0, d1;
    bars_axis(r, w, &d0, &d1);
    fprintf(f, "<svg class=\"chart\" id=\"cost-vs-budget\" width=\"900\" height=\"%d\" "
               "viewBox=\"0 0 900 %d\" role=\"img\" aria-label=\"attack cost versus attacker budget\" "
               "data-axis-min-eur=\"1e%d\" data-axis-max-eur=\"1e%d\">\n",
            h, h, d0, d1);
    /* a labelled grid line every `step` decades, at most 10 labels */
    int step = (d1 - d0 + 9) / 10;
    if (step < 1)
        step = 1;
    for (int e = d0; e <= d1; e += step) {
        double gx = bars_x(pow(10.0, e), d0, d1);
        fprintf(f, "<line x1=\"%.1f\" y1=\"20\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>"
                   "<text x=\"%.1f\" y=\"14\" text-anchor=\"middle\" class=\"small tick\">1e%d EUR</text>\n",
                gx, gx, h - 10, gx, e);
    }
    size_t row = 0;
    for (size_t v = 0; v < r->cat->n_vectors; v++) {
        if (w[v] < 0)
            continue;
        const mg_risk_vt *x = &r->vts[w[v]];
        int y = 26 + (int)row * 22;
        char a[64];
        mg_fmt_eur(a, sizeof(a), x->cost.lo);
        /* a prevented vector (infinite cost) runs to the end of the axis */
        double bx = isinf(x->cost.lo) && x->cost.lo > 0 ? BARS_X + BARS_W : bars_x(x->cost.lo, d0, d1);
        fprintf(f, "<text x=\"252\" y=\"%d\" text-anchor=\"end\" class=\"small\">", y + 12);
        he(f, r->cat->vectors[v].id);
        fprintf(f, "</text><rect class=\"bar %s\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"14\">"
                   "<title>attack cost from %s</title></rect>",
                x->secure ? "ok" : "bad", BARS_X, y, fmax(1.0, bx - BARS_X), a);
        if (x->worst_attacker >= 0) {
            double bxw = bars_x(x->willingness, d0, d1);
            mg_fmt_eur(a, sizeof(a), x->willingness);
            fprintf(f, "<line class=\"budget\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\">"
                       "<title>",
                    bxw, y - 3, bxw, y + 17);
            he(f, r->cat->attackers[x->worst_attacker].name);
            fprintf(f, " spends up to %s</title></line>", a);
        }
        fputc('\n', f);
        row++;
    }
    fprintf(f, "</svg>\n");
}

/* The year the headline's "secure until" names (until_text): the analysis
 * year when already broken, NAN when not limited by key length. */
static double headline_year(const mg_risk_result *r, double y)
{
    if (isinf(y) && y > 0)
        return NAN;
    return y < r->year ? r->year : floor(y);
}

static void svg_timeline(FILE *f, const mg_risk_result *r)
{
    double y0 = r->year, y1 = r->year + r->cat->calib.horizon_years;
    double eol = r->model->year + r->model->lifetime_years;
    double hy = headline_year(r, r->secure_until);
    size_t n = 0;
    for (size_t i = 0; i < r->n_vts; i++) {
        const mg_risk_vt *x = &r->vts[i];
        if (VEC(r, x)->brute == MG_BRUTE_NONE || x->brute_eur <= 0)
            continue;
        n++;
        double fy = headline_year(r, x->secure_until);
        if (isfinite(fy))
            y1 = fmax(y1, fy + 1);
    }
    /* the axis covers the analysis year, the end of life and the year the
     * headline names, with a year to spare at the end */
    if (isfinite(eol))
        y1 = fmax(y1, eol + 1);
    if (isfinite(hy))
        y1 = fmax(y1, hy + 1);
    /* and the year the policy disallowed a key (earlier or later) */
    double py = r->disallowed_since;
    if (isfinite(py)) {
        y0 = fmin(y0, py);
        y1 = fmax(y1, py + 1);
    }
    if (!(y1 > y0))
        y1 = y0 + 1;
    int h = 50 + (int)(n ? n : 1) * 20;
    fprintf(f, "<svg class=\"chart\" id=\"secure-until\" width=\"900\" height=\"%d\" "
               "viewBox=\"0 0 900 %d\" role=\"img\" aria-label=\"secure-until timeline\" "
               "data-axis-from=\"%.0f\" data-axis-to=\"%.0f\">\n",
            h, h, y0, y1);
    double span = y1 - y0;
    for (int k = 0; k <= 6; k++) {
        double yr = y0 + span * k / 6.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"20\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>"
                   "<text x=\"%.1f\" y=\"14\" text-anchor=\"middle\" class=\"small\">%.0f</text>\n",
                300 + 560.0 * k / 6.0, 300 + 560.0 * k / 6.0, h - 10, 300 + 560.0 * k / 6.0, yr);
    }
    if (eol >= y0 && eol <= y1)
        fprintf(f, "<line class=\"eol\" x1=\"%.1f\" y1=\"18\" x2=\"%.1f\" y2=\"%d\"><title>end of "
                   "life %.0f</title></line>\n",
                300 + 560.0 * (eol - y0) / span, 300 + 560.0 * (eol - y0) / span, h - 6, eol);
    if (isfinite(hy) && hy >= y0 && hy <= y1)
        fprintf(f, "<line class=\"headline\" id=\"secure-until-headline\" data-year=\"%.0f\" "
                   "x1=\"%.1f\" y1=\"18\" x2=\"%.1f\" y2=\"%d\"><title>secure until (headline): "
                   "%.0f</title></line>\n",
                hy, 300 + 560.0 * (hy - y0) / span, 300 + 560.0 * (hy - y0) / span, h - 6, hy);
    if (isfinite(py))
        fprintf(f, "<line class=\"eol\" id=\"policy-year\" data-year=\"%.0f\" x1=\"%.1f\" y1=\"18\" "
                   "x2=\"%.1f\" y2=\"%d\"><title>disallowed by policy since %.0f</title></line>\n",
                py, 300 + 560.0 * (py - y0) / span, 300 + 560.0 * (py - y0) / span, h - 6, py);
    size_t row = 0;
    for (size_t i = 0; i < r->n_vts; i++) {
        const mg_risk_vt *x = &r->vts[i];
        if (VEC(r, x)->brute == MG_BRUTE_NONE || x->brute_eur <= 0)
            continue;
        double until = x->secure_until;
        double from = r->year; /* bars start at the analysis year (the axis may start earlier) */
        double end = isinf(until) && until > 0 ? y1 : fmin(fmax(until, from), y1);
        int y = 26 + (int)row * 20;
        char u[64];
        until_text(u, sizeof(u), r, until);
        fprintf(f, "<text x=\"292\" y=\"%d\" text-anchor=\"end\" class=\"small\">", y + 11);
        he(f, VEC(r, x)->id);
        fprintf(f, " @ ");
        he(f, TGT(r, x->target)->id);
        fprintf(f, "</text><rect class=\"bar %s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"12\">"
                   "<title>secure until: %s</title></rect>\n",
                end >= eol ? "ok" : "bad", 300 + 560.0 * (from - y0) / span, y,
                fmax(1.0, 560.0 * (end - from) / span), u);
        row++;
    }
    if (n == 0)
        fprintf(f, "<text x=\"300\" y=\"40\" class=\"small\">no key or MAC length in place: "
                   "nothing is limited by brute force</text>\n");
    fprintf(f, "</svg>\n");
}

static void svg_curve(FILE *f, const mg_risk_result *r)
{
    double maxc = 1, maxr = 1;
    for (size_t i = 0; i < r->n_curve; i++) {
        maxc = fmax(maxc, r->curve[i].cost);
        maxr = fmax(maxr, r->curve[i].residual);
    }
    fprintf(f, "<svg class=\"chart\" id=\"cost-vs-residual\" width=\"620\" height=\"300\" "
               "viewBox=\"0 0 620 300\" role=\"img\" aria-label=\"cost versus residual risk\">\n"
               "<line x1=\"80\" y1=\"260\" x2=\"600\" y2=\"260\" class=\"axis\"/>"
               "<line x1=\"80\" y1=\"20\" x2=\"80\" y2=\"260\" class=\"axis\"/>\n"
               "<text x=\"340\" y=\"292\" text-anchor=\"middle\" class=\"small\">cost of measures "
               "(0 .. %.3g EUR)</text>"
               "<text x=\"14\" y=\"140\" class=\"small\" transform=\"rotate(-90 14 140)\" "
               "text-anchor=\"middle\">residual risk (0 .. %.3g EUR)</text>\n<polyline class=\"curve\" points=\"",
            maxc, maxr);
    for (size_t i = 0; i < r->n_curve; i++)
        fprintf(f, "%.1f,%.1f ", 80 + 520 * r->curve[i].cost / maxc,
                260 - 240 * r->curve[i].residual / maxr);
    fprintf(f, "\"/>\n");
    for (size_t i = 0; i < r->n_curve; i++)
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" class=\"pt\"><title>%.3g EUR &#8594; "
                   "residual %.3g EUR</title></circle>\n",
                80 + 520 * r->curve[i].cost / maxc, 260 - 240 * r->curve[i].residual / maxr,
                r->curve[i].cost, r->curve[i].residual);
    fprintf(f, "</svg>\n");
}

static const char css[] =
    "body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}"
    ".verdict{padding:1em;border-radius:6px;font-size:1.2em}"
    ".verdict.ok{background:#e8f5e9;border:2px solid #2e7d32}"
    ".verdict.bad{background:#ffebee;border:2px solid #c62828}"
    "table{border-collapse:collapse;font-size:.85em;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    /* every table fits the page width (1280 px window): cells wrap, long
     * identifiers break, numbers wrap only between their groups */
    "table{width:100%;table-layout:auto}td,th{overflow-wrap:break-word}"
    "#findings,#defence{font-size:.78em}"
    "th{background:#f5f5f5}td.num{text-align:right;overflow-wrap:normal}"
    ".note{font-size:.9em;background:#fff8e1;border-left:4px solid #ffb300;padding:.5em 1em}"
    "svg .headline{stroke:#c62828;stroke-width:2}"
    ".no{color:#c62828;font-weight:bold}.yes{color:#2e7d32}"
    "svg.chart{font-size:12px;display:block;margin:.5em 0}svg .small{font-size:10px}"
    "svg .grid{stroke:#ddd}svg .axis{stroke:#333}svg .bar.ok{fill:#66bb6a}"
    "svg .bar.bad{fill:#ef5350}svg .budget{stroke:#000;stroke-width:3}"
    "svg .eol{stroke:#1565c0;stroke-width:2;stroke-dasharray:4 3}"
    "svg .curve{fill:none;stroke:#1565c0;stroke-width:2}svg .pt{fill:#1565c0}";

mg_err mg_risk_write_html(FILE *f, const mg_risk_result *r)
{
    const mg_risk_model *m = r->model;
    const mg_risk_catalogue *c = r->cat;
    char a[64], b[64], d[64], u[64];
    long *w = calloc(c->n_vectors + 1, sizeof(long));
    if (w == NULL)
        return MG_ERR_BUF;
    worst_per_vector(r, w);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width\">"
               "<title>Risk report: ");
    he(f, m->name);
    fprintf(f, "</title><style>%s</style></head><body>\n<h1>Risk report: ", css);
    he(f, m->name);
    fprintf(f, "</h1>\n");
    mg_fmt_eur(a, sizeof(a), r->min_margin);
    until_text(u, sizeof(u), r, r->secure_until);
    fprintf(f, "<div class=\"verdict %s\" id=\"verdict\"><strong>%s</strong> &#8212; %zu of %zu "
               "findings below the attackers' budget; smallest margin %s; secure until: %s "
               "(end of life %.0f).",
            r->secure ? "ok" : "bad", r->secure ? "Secure enough" : "NOT secure enough",
            r->n_insecure, r->n_vts, a, u, m->year + m->lifetime_years);
    mg_fmt_eur(a, sizeof(a), r->portfolio_cost);
    mg_fmt_eur(b, sizeof(b), r->residual);
    mg_fmt_eur(d, sizeof(d), r->residual_after);
    char ph[512];
    if (policy_headline(ph, sizeof(ph), r)) {
        fprintf(f, " Disallowed by policy ");
        he(f, ph);
        fputc('.', f);
    }
    if (!r->secure && r->achievable)
        fprintf(f, " Cheapest measures that close the gap: %s (%s); residual risk %s &#8594; %s.",
                a, r->portfolio_exact ? "exact optimum" : "heuristic", b, d);
    else if (!r->secure)
        fprintf(f, " Cheapest measures that close the %zu closable finding(s): %s (%s); residual risk "
                   "%s &#8594; %s.",
                r->n_insecure - r->n_gaps, a, r->portfolio_exact ? "exact optimum" : "heuristic", b, d);
    if (!r->achievable) {
        fprintf(f, "<p id=\"not-achievable\"><strong>Not achievable with the catalogue:</strong></p><ul>");
        for (size_t i = 0; i < r->n_gaps; i++) {
            char g[512];
            gap_text(g, sizeof(g), r, &r->gaps[i]);
            fprintf(f, "<li>");
            he(f, g);
            fprintf(f, "</li>");
        }
        fprintf(f, "</ul>");
    }
    fprintf(f, "</div>\n<p class=\"small\">Analysis year %.0f; %.0f devices; Monte Carlo %u draws, "
               "seed %llu. Money in EUR. Method: docs/risk-method.md.</p>\n",
            r->year, m->devices, r->draws, (unsigned long long)r->seed);

    fprintf(f, "<h2>Risk matrix</h2><p>Findings per cell: impact (rows) by attack feasibility "
               "(columns), coloured by the ISO/SAE 21434 risk value 1&#8211;5.</p>\n");
    svg_matrix(f, r);
    fprintf(f, "<h2>Attack cost vs attacker budget</h2><p>Per vector, at its weakest node or "
               "link: bar = cheapest attack (log scale, EUR), black mark = the most a capable "
               "in-scope attacker spends. Red: not enough.</p>\n");
    svg_bars(f, r, w);
    fprintf(f, "<h2>Secure until</h2><p>Vectors limited by key or MAC length: bar until the year "
               "brute force falls under the attackers' budget (dashed line: end of life).</p>\n");
    svg_timeline(f, r);
    fprintf(f, "<h2>Cost vs residual risk</h2>\n");
    svg_curve(f, r);

    mg_fmt_eur(b, sizeof(b), r->portfolio_lower_bound);
    fprintf(f, "<h2>Cheapest portfolio</h2><p>Total %s (%s; lower bound %s).%s</p>\n"
               "<table id=\"portfolio\"><tr><th>measure</th><th>on</th><th>who</th><th>cost</th>"
               "<th>fixed cost (once)</th></tr>\n",
            a, r->portfolio_exact ? "exact" : "heuristic", b,
            r->n_unclosable ? " Some findings cannot be closed by any catalogue measure." : "");
    for (size_t i = 0; i < r->n_picks; i++) {
        const mg_risk_measure *me = &c->measures[r->picks[i].measure];
        mg_fmt_eur(a, sizeof(a), r->picks[i].cost);
        mg_fmt_eur(b, sizeof(b), me->cost_fixed);
        fprintf(f, "<tr><td>");
        he(f, me->name);
        fprintf(f, "</td><td>");
        he(f, TGT(r, r->picks[i].target)->id);
        fprintf(f, "</td><td>");
        he(f, c->roles[me->role].name);
        fprintf(f, "</td><td class=\"num\">%s</td><td class=\"num\">%s</td></tr>\n", a, b);
    }
    fprintf(f, "</table>\n<h2>Nodes and links</h2>\n<table id=\"links\"><tr><th>node/link</th>"
               "<th>kind</th><th>owner</th><th>measures in place</th><th>verdict</th>"
               "<th>weakest vector</th><th>margin</th></tr>\n");
    for (size_t t = 0; t < m->n_targets; t++) {
        const mg_risk_target *tg = &m->targets[t];
        bool sec = true;
        long wk = -1;
        for (size_t i = 0; i < r->n_vts; i++)
            if (r->vts[i].target == (int)t) {
                sec = sec && r->vts[i].secure;
                if (wk < 0 || r->vts[i].margin < r->vts[wk].margin)
                    wk = (long)i;
            }
        fprintf(f, "<tr><td>");
        he(f, tg->name);
        fprintf(f, "</td><td>");
        he(f, tg->kind);
        fprintf(f, "%s</td><td>", tg->is_link ? " (link)" : "");
        he(f, tg->owner >= 0 ? c->roles[tg->owner].name : "-");
        fprintf(f, "</td><td>");
        for (size_t k = 0; k < tg->n_measures; k++) {
            fprintf(f, "%s", k ? ", " : "");
            he(f, c->measures[tg->measures[k].measure].id);
        }
        if (wk >= 0)
            mg_fmt_eur(a, sizeof(a), r->vts[wk].margin);
        fprintf(f, "</td><td class=\"%s\">%s</td><td>%s</td><td class=\"num\">%s</td></tr>\n",
                sec ? "yes" : "no", sec ? "enough" : "not enough",
                wk >= 0 ? c->vectors[r->vts[wk].vector].id : "-", wk >= 0 ? a : "-");
    }
    size_t n_hi = count_high_risk_secure(r);
    fprintf(f, "</table>\n<h2>Findings</h2>\n<p class=\"small\">%s</p>\n", columns_note);
    if (n_hi > 0)
        fprintf(f, "<p class=\"note\" id=\"risk-note\">%s (%zu finding%s here.)</p>\n",
                risk5_note, n_hi, n_hi == 1 ? "" : "s");
    fprintf(f, "<table id=\"findings\"><tr><th>vector</th><th>on</th>"
               "<th>prin&shy;ciple</th><th>attack poten&shy;tial CEM / 21434</th>"
               "<th>CEM: re&shy;quired to exploit</th><th>CEM: TOE resis&shy;tant to</th>"
               "<th>feasi&shy;bility (21434)</th>"
               "<th>attack cost</th><th>attacker budget</th><th>proba&shy;bility</th>"
               "<th>worst damage</th><th>demand</th><th>risk 21434</th><th>TVRA</th>"
               "<th>secure until</th><th>verdict</th></tr>\n");
    for (size_t i = 0; i < r->n_vts; i++) {
        const mg_risk_vt *x = &r->vts[i];
        char e[64], g[192], p[32];
        int apc = cem_ap(r, x);
        mg_fmt_eur(a, sizeof(a), x->cost.lo);
        mg_fmt_eur(b, sizeof(b), x->willingness);
        mg_fmt_eur(d, sizeof(d), x->damage_worst);
        mg_fmt_eur(e, sizeof(e), x->demand);
        policy_text(g, sizeof(g), r, x);
        if (apc >= 0)
            snprintf(p, sizeof(p), "%d / %d", apc, x->ap_21434);
        else
            snprintf(p, sizeof(p), "&#8211; / %d", x->ap_21434);
        fprintf(f, "<tr><td>");
        hew(f, VEC(r, x)->name);
        fprintf(f, "</td><td>");
        hew(f, TGT(r, x->target)->id);
        fprintf(f, "</td><td>%s</td><td class=\"num\">%s</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%.1f %%</td>"
                   "<td class=\"num\">%s</td><td class=\"num\">%s</td>",
                principle_html(VEC(r, x)->principle), p, mg_risk_cem_required_text(apc),
                mg_risk_cem_resistant_text(apc), mg_risk_feas_name(x->feas), a, b,
                100 * x->probability, d, e);
        if (x->secure && x->applicable && x->risk_21434 >= 4)
            fprintf(f, "<td>%d <a href=\"#risk-note\" title=\"high risk value, secure enough: "
                       "see the note above the table\">(why enough?)</a></td>",
                    x->risk_21434);
        else
            fprintf(f, "<td>%d</td>", x->risk_21434);
        fprintf(f, "<td>%s</td><td>%s</td><td class=\"%s\">%s</td></tr>\n",
                mg_risk_tvra_name(x->tvra), g, x->secure ? "yes" : "no",
                x->secure ? "enough" : "not enough");
    }
    fprintf(f, "</table>\n<h2>Defence analysis</h2>\n<table id=\"defence\"><tr><th>vector</th>"
               "<th>detectable?</th><th>detected now?</th><th>preventable?</th>"
               "<th>cost of prevention</th><th>response that prevents repetition</th>"
               "<th>source</th></tr>\n");
    for (size_t v = 0; v < c->n_vectors; v++) {
        if (w[v] < 0)
            continue;
        const mg_risk_vt *x = &r->vts[w[v]];
        mg_fmt_eur(a, sizeof(a), x->prevention_eur);
        fprintf(f, "<tr><td>");
        he(f, c->vectors[v].name);
        fprintf(f, "</td><td>%s</td><td>%s</td><td>%s</td><td class=\"num\">%s</td><td>",
                detectable(&c->vectors[v]) ? "yes" : "no", x->detected ? "yes" : "no",
                preventable(&c->vectors[v]) ? "yes" : "no",
                x->secure ? "0 EUR (already enough)"
                          : (isfinite(x->prevention_eur) ? a : "no catalogue measure"));
        he(f, c->vectors[v].response);
        fprintf(f, "</td><td class=\"small\">");
        he(f, c->vectors[v].source);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table>\n<h2>Duties per role</h2>\n<table id=\"duties\"><tr><th>role</th>"
               "<th>organisation</th><th>duty</th><th>new measures</th></tr>\n");
    for (size_t ro = 0; ro < c->n_roles; ro++) {
        fprintf(f, "<tr><td>");
        he(f, c->roles[ro].name);
        fprintf(f, "</td><td>");
        he(f, m->role_org[ro] ? m->role_org[ro] : "-");
        fprintf(f, "</td><td>");
        he(f, c->roles[ro].duty);
        fprintf(f, "</td><td>");
        bool any = false;
        for (size_t i = 0; i < r->n_picks; i++)
            if (c->measures[r->picks[i].measure].role == (int)ro) {
                fprintf(f, "%s", any ? "; " : "");
                he(f, c->measures[r->picks[i].measure].name);
                fprintf(f, " on ");
                he(f, TGT(r, r->picks[i].target)->id);
                any = true;
            }
        fprintf(f, "%s</td></tr>\n", any ? "" : "-");
    }
    fprintf(f, "</table>\n</body></html>\n");
    free(w);
    return ferror(f) ? MG_ERR_BUF : MG_OK;
}
