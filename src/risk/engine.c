/* The analysis: per vector and node/link, attack potential, cost in money,
 * attack probability (Monte Carlo), damage, demand, verdict, secure-until;
 * then the cheapest portfolio of measures and the cost/residual-risk curve.
 * The method and its formulas: docs/risk-method.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "risk_internal.h"

#define MAX_LOCAL 16     /* per-target exact search up to 2^16 subsets */
#define MAX_PRESENT 128

bool mg_risk_vector_targets(const mg_risk_catalogue *c, int v, const mg_risk_target *t)
{
    const mg_risk_vector *ve = &c->vectors[v];
    for (size_t i = 0; i < ve->n_kinds; i++)
        if (strcmp(ve->kinds[i], t->kind) == 0)
            return true;
    return false;
}

double mg_risk_place_cost(const mg_risk_model *m, const mg_risk_catalogue *c, int measure,
                          int target)
{
    const mg_risk_measure *me = &c->measures[measure];
    const mg_risk_target *t = &m->targets[target];
    return me->cost_per_device * m->devices +
           me->cost_per_target * (t->per_device ? m->devices : 1.0);
}

/* The measures at a target (in place plus extra), merged per catalogue measure. */
typedef struct present {
    size_t n;
    int id[MAX_PRESENT];
    double param[MAX_PRESENT][MG_P_N];
    mg_risk_alg alg[MAX_PRESENT];
} present;

static void present_add(present *p, int id, const double *param, mg_risk_alg alg)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->id[i] == id) {
            double had = p->param[i][MG_P_KEY_BITS], add = param[MG_P_KEY_BITS];
            if (!isnan(add) && (isnan(had) || add > had))
                p->alg[i] = alg;
            /* the stronger of two: longer keys and MACs, faster detection, lower rate */
            for (int q = 0; q < MG_P_N; q++) {
                double a = p->param[i][q], b = param[q];
                if (isnan(a))
                    p->param[i][q] = b;
                else if (!isnan(b))
                    p->param[i][q] = (q == MG_P_KEY_BITS || q == MG_P_MAC_BITS) ? fmax(a, b)
                                                                              : fmin(a, b);
            }
            return;
        }
    if (p->n < MAX_PRESENT) {
        p->id[p->n] = id;
        p->alg[p->n] = alg;
        memcpy(p->param[p->n], param, sizeof(p->param[0]));
        p->n++;
    }
}

static int present_find(const present *p, int id)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->id[i] == id)
            return (int)i;
    return -1;
}

static double best_param(const present *p, mg_param q)
{
    double best = NAN;
    for (size_t i = 0; i < p->n; i++) {
        double v = p->param[i][q];
        if (isnan(v))
            continue;
        if (isnan(best))
            best = v;
        else
            best = (q == MG_P_KEY_BITS || q == MG_P_MAC_BITS) ? fmax(best, v) : fmin(best, v);
    }
    return best;
}

static double command_value(const mg_risk_model *m, int target)
{
    double best = 0;
    for (size_t i = 0; i < m->n_commands; i++)
        for (size_t j = 0; j < m->commands[i].n_via; j++)
            if (m->commands[i].via[j] == target && m->commands[i].value > best)
                best = m->commands[i].value;
    return best;
}

static mg_impact impact_of(const mg_risk_calib *k, double eur)
{
    if (eur >= k->impact_eur[2])
        return MG_IMPACT_SEVERE;
    if (eur >= k->impact_eur[1])
        return MG_IMPACT_MAJOR;
    if (eur >= k->impact_eur[0])
        return MG_IMPACT_MODERATE;
    return MG_IMPACT_NEGLIGIBLE;
}

static const mg_risk_vector_use *use_of(const mg_risk_model *m, int vector)
{
    for (size_t i = 0; i < m->n_uses; i++)
        if (m->uses[i].vector == vector)
            return &m->uses[i];
    return NULL;
}

bool mg_risk_attacker_uses(const mg_risk_model *m, int vector, size_t j)
{
    const mg_risk_vector_use *u = use_of(m, vector);
    if (u == NULL || u->n_attackers == 0)
        return true;
    for (size_t k = 0; k < u->n_attackers; k++)
        if (u->attackers[k] == m->attackers[j])
            return true;
    return false;
}

double mg_risk_attempt_probability(const mg_risk_model *m, int vector, size_t j)
{
    const mg_risk_vector_use *u = use_of(m, vector);
    if (!mg_risk_attacker_uses(m, vector, j))
        return 0;
    if (u != NULL && !isnan(u->probability))
        return u->probability;
    if (m->attacker_probability != NULL && !isnan(m->attacker_probability[j]))
        return m->attacker_probability[j];
    return 1;
}

/* What an attacker spends: its budget, capped by a share of what it gains. */
static double cap_by_gain(const mg_risk_attacker *a, const mg_risk_vt *o, mg_damage_kind k,
                          double budget)
{
    if (!(a->gain_share > 0))
        return budget;
    double g = ((a->gains >> k) & 1u ? o->gain_money : 0.0) +
               ((a->gains >> MG_GAIN_PUBLICITY) & 1u ? o->gain_publicity : 0.0);
    return fmin(budget, a->gain_share * g);
}

/* The algorithm behind the strongest key in place (MG_RISK_ALG_NONE: only a length). */
static mg_risk_alg key_alg(const present *p, double bits)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->param[i][MG_P_KEY_BITS] == bits && p->alg[i] != MG_RISK_ALG_NONE)
            return p->alg[i];
    return MG_RISK_ALG_NONE;
}

/* NIST transition dates for applying protection (encryption, MAC generation).
 * Security strengths from SP 800-57 Part 1 Rev. 5 Table 2: 2-key TDEA 80 bits,
 * 3-key TDEA 112 bits, AES-n n bits. A key of b bits without a named algorithm
 * is taken to have a security strength of b bits. */
double mg_risk_policy_disallowed(mg_risk_alg alg, double bits, const char **source)
{
    const char *dummy;
    if (source == NULL)
        source = &dummy;
    *source = NULL;
    switch (alg) {
    case MG_RISK_ALG_3DES2:
        *source = "NIST SP 800-131A Rev. 1 (2015), Table 1: two-key TDEA encryption "
                  "disallowed after 2015";
        return 2016;
    case MG_RISK_ALG_3DES3:
        *source = "NIST SP 800-131A Rev. 2 (2019), Table 1: three-key TDEA encryption "
                  "deprecated through 2023, disallowed after 2023";
        return 2024;
    case MG_RISK_ALG_AES128:
    case MG_RISK_ALG_AES192:
    case MG_RISK_ALG_AES256:
        return INFINITY;
    case MG_RISK_ALG_NONE:
    default:
        break;
    }
    if (isnan(bits) || bits >= 128)
        return INFINITY;
    if (bits >= 112) {
        *source = "NIST SP 800-57 Part 1 Rev. 5, Table 4: 112-bit security strength "
                  "acceptable through 2030, disallowed after 2030 for applying protection";
        return 2031;
    }
    if (bits >= 80) {
        *source = "NIST SP 800-131A Rev. 1 / SP 800-57 Part 1 Rev. 4, Table 4: 80-bit "
                  "security strength deprecated 2011 through 2013, disallowed after 2013";
        return 2014;
    }
    *source = "NIST SP 800-131A (2011): security strength below 80 bits disallowed";
    return 2011;
}

/* Budgets grow by calib.budget_growth per year from the reference year. */
static double growth_factor(const mg_risk_calib *k, double year)
{
    if (!(k->budget_growth > 0))
        return 1.0;
    return pow(1.0 + k->budget_growth, year - k->ref_year);
}

/* Year in which an offline search of a bits-bit key (already +1 for the worst
 * case) costs what the attacker spends: W(y) = w_ref * 2^(L (y - ref)) with
 * L = log2(1 + growth) (0 when the gain cap, which does not grow, binds);
 * C(y) = 2^((bits-1) - log2 T0 - (y - ref)/d). Solving C(y) = W(y):
 * y = ref + ((bits-1) - log2(T0 * w_ref)) / (1/d + L). */
static double offline_year_growing(const mg_risk_calib *k, double bits, double w_ref, double L)
{
    if (!(w_ref > 0))
        return INFINITY;
    return k->ref_year +
           ((bits - 1.0) - log2(k->trials_per_eur * w_ref)) / (1.0 / k->doubling_years + L);
}

/* Upper bounds in days of the CEM elapsed-time levels (<= 1 day, <= 1 week,
 * <= 2 weeks, <= 1 month, <= 2, 3, 4, 5, 6 months, > 6 months; a month is 30.4
 * days). An attack of level l lengthened by d days takes up to bound(l) + d
 * days: the new level is the first whose bound covers that. */
static signed char elapsed_plus(signed char level, double days)
{
    static const double bound[] = {1, 7, 14, 30.4, 60.8, 91.3, 121.7, 152.1, 182.5};
    const int nb = (int)(sizeof(bound) / sizeof(bound[0]));
    if (level < 0)
        level = 0;
    if (level >= nb)
        return level;
    double need = bound[(int)level] + days;
    int l = (int)level;
    while (l < nb && bound[l] < need)
        l++;
    return (signed char)l;
}

void mg_risk_eval_vt(const mg_risk_model *m, const mg_risk_catalogue *c, double year, int v,
                     int t, const int *extra, size_t n_extra, mg_risk_vt *o)
{
    const mg_risk_vector *ve = &c->vectors[v];
    const mg_risk_target *tg = &m->targets[t];
    const mg_risk_calib *k = &c->calib;
    present p;
    p.n = 0;
    for (size_t i = 0; i < tg->n_measures; i++)
        present_add(&p, tg->measures[i].measure, tg->measures[i].param, tg->measures[i].algorithm);
    for (size_t i = 0; i < n_extra; i++)
        present_add(&p, extra[i], c->measures[extra[i]].param, MG_RISK_ALG_NONE);

    memset(o, 0, sizeof(*o));
    o->vector = v;
    o->target = t;
    o->applicable = true;
    o->worst_attacker = -1;
    o->prevention_eur = INFINITY;
    o->disallowed_since = INFINITY;

    /* measures against this vector: combined order-independently
     * (docs/risk-method.md §1.4): cost = base * prod(cost_x) + sum(cost_add),
     * each factor at the highest level imposed, then elapsed time lengthened by
     * the sum of add_days */
    double cost_x = 1, cost_add = 0, add_days = 0;
    mg_reach reach_kind = ve->reach;
    signed char lv[MG_AP_NFACTORS];
    memcpy(lv, ve->level, sizeof(lv));
    for (size_t i = 0; i < ve->n_effects; i++) {
        const mg_risk_effect *e = &ve->effects[i];
        if (present_find(&p, e->measure) < 0)
            continue;
        if (e->prevents)
            o->applicable = false;
        cost_x *= e->cost_x;
        cost_add += e->cost_add;
        add_days += e->add_days;
        if (e->limit_reach >= 0 && (mg_reach)e->limit_reach < reach_kind)
            reach_kind = (mg_reach)e->limit_reach;
        for (int f = 0; f < MG_AP_NFACTORS; f++)
            if (e->raise[f] > lv[f])
                lv[f] = e->raise[f];
    }
    if (add_days > 0)
        lv[MG_AP_ELAPSED] = elapsed_plus(lv[MG_AP_ELAPSED], add_days);
    for (int f = 0; f < MG_AP_NFACTORS; f++) {
        o->ap_cem += mg_risk_ap_value_cem((mg_ap_factor)f, lv[f]);
        o->ap_21434 += mg_risk_ap_value_21434((mg_ap_factor)f, lv[f]);
    }
    o->band = mg_risk_cc_band(o->ap_cem);
    o->feas = mg_risk_feasibility_21434(o->ap_21434);

    /* detection of this vector */
    double ttd_days = m->ttd_days;
    for (size_t i = 0; i < ve->n_detected_by; i++) {
        int pi = present_find(&p, ve->detected_by[i]);
        if (pi < 0)
            continue;
        o->detected = true;
        double h = p.param[pi][MG_P_TTD_HOURS];
        double d = isnan(h) ? m->ttd_days : h / 24.0;
        if (d < ttd_days)
            ttd_days = d;
    }
    o->exposure_days = ttd_days + m->ttr_days;

    /* cost in money */
    o->cost.lo = ve->cost.lo * cost_x + cost_add;
    o->cost.hi = ve->cost.hi * cost_x + cost_add;
    double base_lo = o->cost.lo;
    double bits = NAN;
    if (ve->brute == MG_BRUTE_OFFLINE) {
        bits = best_param(&p, MG_P_KEY_BITS);
        if (!isnan(bits)) {
            o->disallowed_since = mg_risk_policy_disallowed(key_alg(&p, bits), bits, &o->policy);
            o->brute_eur = mg_risk_offline_cost(k, bits + (k->worst_case ? 1.0 : 0.0), year);
        }
    } else if (ve->brute == MG_BRUTE_ONLINE) {
        bits = best_param(&p, MG_P_MAC_BITS);
        if (!isnan(bits)) {
            double per_campaign = 0;
            if (o->detected) {
                double rate = best_param(&p, MG_P_PER_HOUR);
                if (isnan(rate) || rate > k->sms_per_hour_max)
                    rate = k->sms_per_hour_max;
                per_campaign = fmax(1.0, rate * ttd_days * 24.0);
            }
            o->brute_eur =
                mg_risk_online_cost(k, bits + (k->worst_case ? 1.0 : 0.0), per_campaign);
        }
    }
    if (o->brute_eur > o->cost.lo)
        o->cost.lo = o->brute_eur;
    if (o->brute_eur > o->cost.hi)
        o->cost.hi = o->brute_eur;
    if (!o->applicable)
        o->cost.lo = o->cost.hi = INFINITY;

    /* damage */
    double reach = reach_kind == MG_REACH_ONE ? 1.0
                   : reach_kind == MG_REACH_NETWORK ? m->network_devices
                                                    : m->devices;
    double roll = ve->devices_per_day * o->exposure_days;
    o->exploited = fmin(reach, fmax(1.0, roll));
    double per_dev;
    if (ve->damage == MG_DMG_OUTAGE) {
        per_dev = m->value[3] * o->exposure_days / fmax(1.0, m->devices);
    } else {
        per_dev = m->value[ve->damage];
        if (ve->damage == MG_DMG_MANIPULATED)
            per_dev += command_value(m, t);
    }
    o->gain_money = per_dev * o->exploited;
    o->gain_publicity = o->exploited > 1.0 ? m->publicity : 0.0;
    o->damage_min = per_dev;
    o->damage_worst = o->gain_money + o->gain_publicity;
    o->impact = impact_of(k, o->damage_worst);
    o->risk_21434 = mg_risk_value_21434(o->impact, o->feas);
    o->tvra = mg_risk_tvra_class(mg_risk_tvra_likelihood(o->band), mg_risk_tvra_impact(o->impact));

    /* who would pay for it (budgets grown to the analysis year) */
    bool w_grows = false;
    for (size_t i = 0; i < m->n_attackers; i++) {
        const mg_risk_attacker *a = &c->attackers[m->attackers[i]];
        if (o->ap_cem > a->capability || !mg_risk_attacker_uses(m, v, i))
            continue;
        double grown = a->budget.hi * growth_factor(k, year);
        double w = cap_by_gain(a, o, ve->damage, grown);
        if (o->worst_attacker < 0 || w > o->willingness) {
            o->willingness = w;
            o->worst_attacker = m->attackers[i];
            w_grows = w >= grown;
        }
    }
    o->secure = o->cost.lo > o->willingness;
    o->margin = o->cost.lo - o->willingness;

    /* secure until (docs/risk-method.md §1.8): only a finding whose cost is set by
     * its key or MAC length gets a year; any other is "not limited by key length"
     * whatever its verdict, so that no report calls it "already broken". */
    bool keyed = ve->brute != MG_BRUTE_NONE && !isnan(bits) && o->applicable;
    double L = w_grows && k->budget_growth > 0 ? log2(1.0 + k->budget_growth) : 0.0;
    double w_ref = L > 0 ? o->willingness / growth_factor(k, year) : o->willingness;
    double eff_bits = bits + (k->worst_case ? 1.0 : 0.0);
    if (ve->brute == MG_BRUTE_OFFLINE && keyed && base_lo <= o->willingness &&
        o->willingness > 0) {
        double y_star = offline_year_growing(k, eff_bits, w_ref, L);
        o->secure_until = o->secure ? y_star : fmin(year, y_star);
    } else if (!o->secure && keyed && o->brute_eur >= base_lo) {
        o->secure_until = -INFINITY; /* online: the MAC is too short, now and later */
    } else {
        o->secure_until = INFINITY;
    }
    o->key_limited = !(isinf(o->secure_until) && o->secure_until > 0);
}

/* ---- Monte Carlo ------------------------------------------------------------- */
typedef struct mc {
    unsigned draws;
    uint64_t seed;
    double *budget; /* [attacker][draw] */
} mc;

static double loguniform(double lo, double hi, double u)
{
    if (!(hi > lo))
        return lo;
    return exp(log(lo) + u * (log(hi) - log(lo)));
}

static double mc_probability(const mc *s, const mg_risk_model *m, const mg_risk_catalogue *c,
                             const mg_risk_vt *o, double *per_attacker)
{
    if (per_attacker != NULL)
        for (size_t i = 0; i < m->n_attackers; i++)
            per_attacker[i] = 0;
    if (!o->applicable)
        return 0;
    mg_rng r;
    /* common random numbers: the same draws for a vector/target whatever the measures */
    mg_rng_seed(&r, s->seed ^ ((uint64_t)(unsigned)o->vector << 32) ^ (uint64_t)(unsigned)o->target);
    double best = 0;
    unsigned hit[MAX_PRESENT];
    size_t na = m->n_attackers < MAX_PRESENT ? m->n_attackers : MAX_PRESENT;
    memset(hit, 0, sizeof(hit));
    for (unsigned d = 0; d < s->draws; d++) {
        double cost = loguniform(o->cost.lo, o->cost.hi, mg_rng_unit(&r));
        for (size_t i = 0; i < na; i++) {
            const mg_risk_attacker *a = &c->attackers[m->attackers[i]];
            if (o->ap_cem > a->capability || !mg_risk_attacker_uses(m, o->vector, i))
                continue;
            double w = cap_by_gain(a, o, c->vectors[o->vector].damage,
                                   s->budget[i * s->draws + d]);
            if (cost <= w) /* the one rule: cost <= willingness is an attack that happens */
                hit[i]++;
        }
    }
    for (size_t i = 0; i < na; i++) {
        double p = (double)hit[i] / (double)s->draws * mg_risk_attempt_probability(m, o->vector, i);
        if (per_attacker != NULL)
            per_attacker[i] = p;
        if (p > best)
            best = p;
    }
    return best;
}

/* ---- portfolio ----------------------------------------------------------------- */
typedef struct cand { int measure, target; double cost; } cand;

static bool in_effects(const mg_risk_vector *ve, int measure)
{
    for (size_t i = 0; i < ve->n_effects; i++)
        if (ve->effects[i].measure == measure)
            return true;
    for (size_t i = 0; i < ve->n_detected_by; i++)
        if (ve->detected_by[i] == measure)
            return true;
    return false;
}

static bool stronger_defaults(const mg_risk_catalogue *c, const mg_risk_target *t, int measure)
{
    const double *d = c->measures[measure].param;
    for (size_t i = 0; i < t->n_measures; i++) {
        if (t->measures[i].measure != measure)
            continue;
        const double *h = t->measures[i].param;
        for (int q = 0; q < MG_P_N; q++) {
            if (isnan(d[q]) || isnan(h[q]))
                continue;
            if ((q == MG_P_KEY_BITS || q == MG_P_MAC_BITS) ? d[q] > h[q] : d[q] < h[q])
                return true;
        }
        return false;
    }
    return true; /* not in place */
}

typedef struct tsol {
    size_t first, n;   /* candidates [first, first+n) */
    size_t *vts; size_t n_vts;  /* failing vector/targets here */
    bool *closable;
    unsigned char *feasible; /* per local mask (exact only) */
    unsigned best_mask;
    double minvar, mintotal;
} tsol;

static double mask_var(const cand *cd, size_t first, unsigned mask, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        if (mask & (1u << i))
            s += cd[first + i].cost;
    return s;
}

static double mask_fixed(const mg_risk_catalogue *c, const cand *cd, size_t first, unsigned mask,
                         size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(mask & (1u << i)))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = (mask & (1u << j)) && cd[first + j].measure == cd[first + i].measure;
        if (!seen)
            s += c->measures[cd[first + i].measure].cost_fixed;
    }
    return s;
}

static void mask_extra(const cand *cd, size_t first, unsigned mask, size_t n, int *ex, size_t *ne)
{
    *ne = 0;
    for (size_t i = 0; i < n; i++)
        if (mask & (1u << i))
            ex[(*ne)++] = cd[first + i].measure;
}

/* ---- deterministic ties (docs/risk-method.md §3) ------------------------------------
 * Among portfolios of equal cost (equal within 1e-9 relative, so that a sum in a
 * different order is still a tie) the one with fewer measures wins, then the one
 * whose sorted list of "measure target" names comes first. rank[i] is the position
 * of candidate i in that name order. */
static bool cost_tie(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static size_t popcount64(unsigned long long x)
{
    size_t n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

static void mask_ranks(unsigned long long mask, const unsigned *rank, size_t off, size_t n,
                       unsigned *out, size_t *no)
{
    *no = 0;
    for (size_t i = 0; i < n && i < 64; i++)
        if ((mask >> i) & 1ull) {
            unsigned v = rank[off + i];
            size_t j = (*no)++;
            while (j > 0 && out[j - 1] > v) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = v;
        }
}

/* true when (ca, a) is strictly preferred to (cb, b) */
static bool prefer(double ca, unsigned long long a, double cb, unsigned long long b,
                   const unsigned *rank, size_t off, size_t n)
{
    if (!cost_tie(ca, cb))
        return ca < cb;
    size_t pa = popcount64(a), pb = popcount64(b);
    if (pa != pb)
        return pa < pb;
    unsigned ra[64], rb[64];
    size_t na, nb;
    mask_ranks(a, rank, off, n, ra, &na);
    mask_ranks(b, rank, off, n, rb, &nb);
    for (size_t i = 0; i < na && i < nb; i++)
        if (ra[i] != rb[i])
            return ra[i] < rb[i];
    return false;
}

mg_err mg_risk_analyze(const mg_risk_model *m, const mg_risk_catalogue *c,
                       const mg_risk_opts *opt, mg_risk_result *r)
{
    mg_risk_opts o = opt ? *opt : (mg_risk_opts){0};
    memset(r, 0, sizeof(*r));
    if (m == NULL || c == NULL || m->n_targets == 0 || m->n_attackers > MAX_PRESENT)
        return MG_ERR_ARG;
    mg_arena *A = mg_arena_new();
    if (A == NULL)
        return MG_ERR_BUF;
    r->arena = A;
    r->model = m;
    r->cat = c;
    r->year = o.year > 0 ? o.year : m->year;
    r->seed = o.seed;
    r->draws = o.draws ? o.draws : 1000;
    unsigned exact_max = o.exact_max ? o.exact_max : 20;
    if (exact_max > 24)
        exact_max = 24;

    /* 1. vector x target */
    size_t n = 0;
    for (size_t t = 0; t < m->n_targets; t++)
        for (size_t v = 0; v < c->n_vectors; v++)
            n += mg_risk_vector_targets(c, (int)v, &m->targets[t]);
    r->vts = mg_arena_array(A, n ? n : 1, sizeof(mg_risk_vt));
    r->p_attacker = mg_arena_array(A, (n ? n : 1) * m->n_attackers, sizeof(double));
    mc s = {r->draws, o.seed, mg_arena_array(A, (size_t)r->draws * (m->n_attackers + 1),
                                             sizeof(double))};
    r->gaps = mg_arena_array(A, n ? n : 1, sizeof(mg_risk_gap));
    if (r->vts == NULL || r->p_attacker == NULL || s.budget == NULL || r->gaps == NULL)
        goto oom;
    double grow = growth_factor(&c->calib, r->year);
    for (size_t i = 0; i < m->n_attackers; i++) {
        mg_rng rg;
        const mg_risk_attacker *a = &c->attackers[m->attackers[i]];
        mg_rng_seed(&rg, o.seed + 0x5bd1e995u * (uint64_t)(i + 1));
        for (unsigned d = 0; d < r->draws; d++)
            s.budget[i * r->draws + d] =
                loguniform(a->budget.lo, a->budget.hi, mg_rng_unit(&rg)) * grow;
    }
    r->secure = true;
    r->min_margin = INFINITY;
    r->secure_until = INFINITY;
    r->disallowed_since = INFINITY;
    for (size_t t = 0; t < m->n_targets; t++)
        for (size_t v = 0; v < c->n_vectors; v++) {
            if (!mg_risk_vector_targets(c, (int)v, &m->targets[t]))
                continue;
            mg_risk_vt *x = &r->vts[r->n_vts];
            mg_risk_eval_vt(m, c, r->year, (int)v, (int)t, NULL, 0, x);
            x->probability =
                mc_probability(&s, m, c, x, r->p_attacker + r->n_vts * m->n_attackers);
            r->n_vts++;
            x->demand = x->probability * x->damage_worst;
            r->residual += x->demand;
            if (!x->secure) {
                r->secure = false;
                r->n_insecure++;
            }
            if (x->margin < r->min_margin)
                r->min_margin = x->margin;
            if (x->secure_until < r->secure_until)
                r->secure_until = x->secure_until;
            r->key_limited |= x->key_limited;
            if (x->disallowed_since < r->disallowed_since) {
                r->disallowed_since = x->disallowed_since;
                r->disallowed_vt = r->n_vts - 1;
            }
        }

    /* 2. candidates, grouped by target */
    size_t cap = 0;
    for (size_t t = 0; t < m->n_targets; t++)
        cap += c->n_measures;
    cand *cd = mg_arena_array(A, cap ? cap : 1, sizeof(cand));
    tsol *ts = mg_arena_array(A, m->n_targets, sizeof(tsol));
    int *ex = mg_arena_array(A, c->n_measures + 1, sizeof(int));
    if (cd == NULL || ts == NULL || ex == NULL)
        goto oom;
    size_t nc = 0, vi = 0;
    for (size_t t = 0; t < m->n_targets; t++) {
        tsol *so = &ts[t];
        size_t v0 = vi, nf = 0;
        while (vi < r->n_vts && r->vts[vi].target == (int)t) {
            nf += !r->vts[vi].secure;
            vi++;
        }
        so->first = nc;
        so->vts = mg_arena_array(A, nf ? nf : 1, sizeof(size_t));
        so->closable = mg_arena_array(A, nf ? nf : 1, sizeof(bool));
        if (so->vts == NULL || so->closable == NULL)
            goto oom;
        for (size_t j = v0; j < vi; j++)
            if (!r->vts[j].secure)
                so->vts[so->n_vts++] = j;
        if (so->n_vts == 0)
            continue;
        for (size_t me = 0; me < c->n_measures; me++) {
            bool useful = false;
            for (size_t j = 0; j < so->n_vts && !useful; j++)
                useful = in_effects(&c->vectors[r->vts[so->vts[j]].vector], (int)me);
            if (!useful || !stronger_defaults(c, &m->targets[t], (int)me))
                continue;
            bool fits = false;
            for (size_t k = 0; k < c->measures[me].n_kinds && !fits; k++)
                fits = strcmp(c->measures[me].kinds[k], m->targets[t].kind) == 0 ||
                       strcmp(c->measures[me].kinds[k], "any") == 0;
            if (!fits || nc - so->first >= 32)
                continue;
            cd[nc].measure = (int)me;
            cd[nc].target = (int)t;
            cd[nc].cost = mg_risk_place_cost(m, c, (int)me, (int)t);
            nc++;
        }
        so->n = nc - so->first;
    }

    /* rank of each candidate in the order of its names (measure id, then node/link id) */
    unsigned *rank = mg_arena_array(A, nc ? nc : 1, sizeof(unsigned));
    if (rank == NULL)
        goto oom;
    for (size_t i = 0; i < nc; i++) {
        unsigned k = 0;
        for (size_t j = 0; j < nc; j++) {
            int d = strcmp(c->measures[cd[j].measure].id, c->measures[cd[i].measure].id);
            if (d == 0)
                d = strcmp(m->targets[cd[j].target].id, m->targets[cd[i].target].id);
            if (d == 0)
                d = (j > i) - (j < i);
            k += d < 0;
        }
        rank[i] = k;
    }

    /* 3. per target: which failing vectors can be closed, feasibility of each subset */
    bool all_local_exact = true;
    for (size_t t = 0; t < m->n_targets; t++) {
        tsol *so = &ts[t];
        if (so->n_vts == 0)
            continue;
        size_t ne;
        mask_extra(cd, so->first, (so->n >= 32 ? 0xffffffffu : (1u << so->n) - 1u),
                   so->n < 32 ? so->n : 32, ex, &ne);
        for (size_t j = 0; j < so->n_vts; j++) {
            mg_risk_vt tmp;
            mg_risk_eval_vt(m, c, r->year, r->vts[so->vts[j]].vector, (int)t, ex, ne, &tmp);
            so->closable[j] = tmp.secure;
            if (!tmp.secure) {
                mg_risk_gap *gp = &r->gaps[r->n_gaps++];
                gp->vt = so->vts[j];
                gp->attacker = tmp.worst_attacker;
                gp->cost_lo_all = tmp.cost.lo;
                gp->willingness_all = tmp.willingness;
                gp->margin_all = tmp.margin;
                gp->close_eur = tmp.willingness - tmp.cost.lo;
                r->n_unclosable++;
            }
        }
        so->minvar = so->mintotal = INFINITY;
        if (so->n <= MAX_LOCAL) {
            size_t nm = (size_t)1 << so->n;
            so->feasible = mg_arena_alloc(A, nm);
            if (so->feasible == NULL)
                goto oom;
            for (unsigned mask = 0; mask < nm; mask++) {
                mask_extra(cd, so->first, mask, so->n, ex, &ne);
                double var = mask_var(cd, so->first, mask, so->n);
                double tot = var + mask_fixed(c, cd, so->first, mask, so->n);
                bool feas = true;
                for (size_t j = 0; j < so->n_vts; j++) {
                    mg_risk_vt tmp;
                    mg_risk_vt *x = &r->vts[so->vts[j]];
                    mg_risk_eval_vt(m, c, r->year, x->vector, (int)t, ex, ne, &tmp);
                    if (tmp.secure && tot < x->prevention_eur)
                        x->prevention_eur = tot;
                    if (so->closable[j] && !tmp.secure)
                        feas = false;
                }
                so->feasible[mask] = feas;
                if (feas && var < so->minvar)
                    so->minvar = var;
                if (feas && (isinf(so->mintotal) ||
                             prefer(tot, mask, so->mintotal, so->best_mask, rank, so->first,
                                    so->n))) {
                    so->mintotal = tot;
                    so->best_mask = mask;
                }
            }
        } else {
            /* greedy: add the candidate closing most open vectors per EUR, then drop
             * the ones no longer needed (most expensive first) */
            all_local_exact = false;
            for (size_t i = 0; i < so->n; i++) {
                int one[1] = {cd[so->first + i].measure};
                double tot = cd[so->first + i].cost + c->measures[one[0]].cost_fixed;
                for (size_t j = 0; j < so->n_vts; j++) {
                    mg_risk_vt tmp;
                    mg_risk_vt *x = &r->vts[so->vts[j]];
                    mg_risk_eval_vt(m, c, r->year, x->vector, (int)t, one, 1, &tmp);
                    if (tmp.secure && tot < x->prevention_eur)
                        x->prevention_eur = tot;
                }
            }
            unsigned long long chosen = 0;
            for (;;) {
                size_t open = 0;
                mask_extra(cd, so->first, 0, 0, ex, &ne);
                size_t k = 0;
                for (size_t i = 0; i < so->n; i++)
                    if (chosen & (1ull << i))
                        ex[k++] = cd[so->first + i].measure;
                ne = k;
                for (size_t j = 0; j < so->n_vts; j++) {
                    mg_risk_vt tmp;
                    mg_risk_eval_vt(m, c, r->year, r->vts[so->vts[j]].vector, (int)t, ex, ne, &tmp);
                    open += so->closable[j] && !tmp.secure;
                }
                if (open == 0 || k >= so->n)
                    break;
                double best = -1;
                size_t bi = 0;
                for (size_t i = 0; i < so->n && i < 64; i++) {
                    if (chosen & (1ull << i))
                        continue;
                    ex[k] = cd[so->first + i].measure;
                    size_t still = 0;
                    for (size_t j = 0; j < so->n_vts; j++) {
                        mg_risk_vt tmp;
                        mg_risk_eval_vt(m, c, r->year, r->vts[so->vts[j]].vector, (int)t, ex,
                                        k + 1, &tmp);
                        still += so->closable[j] && !tmp.secure;
                    }
                    double gain = (double)(open - still) + 1e-9;
                    double score = gain / (cd[so->first + i].cost + 1.0);
                    if (score > best) {
                        best = score;
                        bi = i;
                    }
                }
                chosen |= 1ull << bi;
            }
            so->best_mask = (unsigned)(chosen & 0xffffffffu);
            so->minvar = 0; /* unknown: contributes 0 to the lower bound */
            so->mintotal = mask_var(cd, so->first, so->best_mask, so->n < 32 ? so->n : 32);
        }
    }

    /* 4. global: exact over all candidates when few, else per-target optima */
    r->portfolio_exact = false;
    unsigned long long best_global = 0;
    if (nc <= exact_max && all_local_exact) {
        double best = INFINITY;
        /* candidates sharing a catalogue measure share its fixed cost */
        unsigned long long dmask[32];
        int dmeas[32];
        size_t nd = 0;
        for (size_t i = 0; i < nc; i++) {
            size_t k = 0;
            while (k < nd && dmeas[k] != cd[i].measure)
                k++;
            if (k == nd) {
                dmeas[nd] = cd[i].measure;
                dmask[nd++] = 0;
            }
            dmask[k] |= 1ull << i;
        }
        for (unsigned long long g = 0; g < (1ull << nc); g++) {
            bool feas = true;
            for (size_t t = 0; t < m->n_targets && feas; t++)
                if (ts[t].n_vts)
                    feas = ts[t].feasible[(g >> ts[t].first) & ((1ull << ts[t].n) - 1)];
            if (!feas)
                continue;
            double cost = 0;
            for (size_t i = 0; i < nc; i++)
                if (g & (1ull << i))
                    cost += cd[i].cost;
            for (size_t k = 0; k < nd; k++)
                if (g & dmask[k])
                    cost += c->measures[dmeas[k]].cost_fixed;
            if (isinf(best) || prefer(cost, g, best, best_global, rank, 0, nc)) {
                best = cost;
                best_global = g;
            }
        }
        r->portfolio_exact = true;
    } else {
        for (size_t t = 0; t < m->n_targets; t++)
            if (ts[t].n_vts)
                best_global |= (unsigned long long)ts[t].best_mask << ts[t].first;
    }
    /* picks (for large models the set is kept per target) */
    size_t np = 0;
    for (size_t t = 0; t < m->n_targets; t++)
        for (size_t i = 0; i < ts[t].n; i++) {
            unsigned long long bit = 0;
            if (r->portfolio_exact)
                bit = (best_global >> (ts[t].first + i)) & 1ull;
            else
                bit = i < 32 ? (ts[t].best_mask >> i) & 1u : 0;
            np += bit != 0;
        }
    r->picks = mg_arena_array(A, np ? np : 1, sizeof(mg_risk_pick));
    bool *fixed_paid = mg_arena_array(A, c->n_measures + 1, sizeof(bool));
    if (r->picks == NULL || fixed_paid == NULL)
        goto oom;
    double lb_sum = 0, lb_max = 0;
    for (size_t t = 0; t < m->n_targets; t++) {
        tsol *so = &ts[t];
        if (so->n_vts) {
            lb_sum += isfinite(so->minvar) ? so->minvar : 0;
            if (isfinite(so->mintotal) && so->mintotal > lb_max && all_local_exact)
                lb_max = so->mintotal;
        }
        unsigned lm = 0;
        for (size_t i = 0; i < so->n && i < 32; i++) {
            bool bit = r->portfolio_exact ? ((best_global >> (so->first + i)) & 1ull) != 0
                                          : ((so->best_mask >> i) & 1u) != 0;
            if (!bit)
                continue;
            lm |= 1u << i;
            mg_risk_pick *pk = &r->picks[r->n_picks++];
            pk->measure = cd[so->first + i].measure;
            pk->target = (int)t;
            pk->cost = cd[so->first + i].cost;
            r->portfolio_cost += pk->cost;
            if (!fixed_paid[pk->measure]) {
                fixed_paid[pk->measure] = true;
                r->portfolio_cost += c->measures[pk->measure].cost_fixed;
            }
        }
        so->best_mask = lm;
    }
    r->achievable = r->n_unclosable == 0;
    r->portfolio_lower_bound = r->portfolio_exact ? r->portfolio_cost : fmax(lb_sum, lb_max);

    /* 5. residual risk after the portfolio and the cost/residual curve */
    typedef struct step { size_t t; double cost, delta; } step;
    step *st = mg_arena_array(A, m->n_targets, sizeof(step));
    r->curve = mg_arena_array(A, m->n_targets + 2, sizeof(mg_risk_point));
    if (st == NULL || r->curve == NULL)
        goto oom;
    size_t ns = 0;
    for (size_t t = 0; t < m->n_targets; t++) {
        tsol *so = &ts[t];
        if (so->best_mask == 0)
            continue;
        size_t ne;
        mask_extra(cd, so->first, so->best_mask, so->n < 32 ? so->n : 32, ex, &ne);
        double before = 0, after = 0;
        for (size_t j = 0; j < r->n_vts; j++) {
            if (r->vts[j].target != (int)t)
                continue;
            mg_risk_vt tmp;
            mg_risk_eval_vt(m, c, r->year, r->vts[j].vector, (int)t, ex, ne, &tmp);
            tmp.probability = mc_probability(&s, m, c, &tmp, NULL);
            before += r->vts[j].demand;
            after += tmp.probability * tmp.damage_worst;
        }
        st[ns].t = t;
        st[ns].cost = mask_var(cd, so->first, so->best_mask, so->n < 32 ? so->n : 32);
        st[ns].delta = before - after;
        ns++;
    }
    /* order by risk reduction per EUR (insertion sort keeps equal items stable) */
    for (size_t i = 1; i < ns; i++) {
        step x = st[i];
        size_t j = i;
        while (j > 0 && st[j - 1].delta * (x.cost + 1) < x.delta * (st[j - 1].cost + 1)) {
            st[j] = st[j - 1];
            j--;
        }
        st[j] = x;
    }
    memset(fixed_paid, 0, (c->n_measures + 1) * sizeof(bool));
    double cost = 0, res = r->residual;
    r->curve[r->n_curve++] = (mg_risk_point){0, res};
    for (size_t i = 0; i < ns; i++) {
        tsol *so = &ts[st[i].t];
        cost += st[i].cost;
        for (size_t k = 0; k < so->n && k < 32; k++)
            if ((so->best_mask >> k) & 1u) {
                int me = cd[so->first + k].measure;
                if (!fixed_paid[me]) {
                    fixed_paid[me] = true;
                    cost += c->measures[me].cost_fixed;
                }
            }
        res -= st[i].delta;
        if (res < 0)
            res = 0;
        if (r->n_curve < m->n_targets + 2)
            r->curve[r->n_curve++] = (mg_risk_point){cost, res};
    }
    r->residual_after = res;
    return MG_OK;
oom:
    mg_risk_result_free(r);
    return MG_ERR_BUF;
}

void mg_risk_result_free(mg_risk_result *r)
{
    if (r == NULL)
        return;
    mg_arena_free(r->arena);
    memset(r, 0, sizeof(*r));
}
