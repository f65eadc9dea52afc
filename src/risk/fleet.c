/* The live loop (issue 11 item 5): the deployed fleet of a working directory
 * as a risk model, its observed attacks as evidence, and the report of where
 * they change the verdict and which measures stop their repetition.
 * Method: docs/risk-method.md §6. Host code: allocates, checks every result. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "m2mguard/policy.h"
#include "m2mguard/store.h"
#include "risk_internal.h"

#define MAC_BITS_PROFILE 64u /* docs/sms-profile.md: the 8 leftmost octets of the CMAC */
#define MAX_CAND 16          /* exact search of the stopping measures per node/link */

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void set_why(char *why, size_t cap, const char *a, const char *b)
{
    if (why != NULL && cap > 0)
        snprintf(why, cap, "%s%s%s", a, b[0] ? ": " : "", b);
}

/* ---- reading the registry ------------------------------------------------------ */
typedef struct devrow {
    int64_t id;
    size_t cls;
    mg_dev_status status;
    unsigned bearers;
    char msisdn[MG_MSISDN_MAX];
} devrow;

typedef struct rd {
    mg_risk_fleet *f;
    devrow *dev;
    size_t n_dev, cap_dev;
    const devrow **by_msisdn; /* SMS devices sorted by number (alerts name sources) */
    size_t n_msisdn;
    bool oom;
} rd;

static size_t class_index(mg_risk_fleet *f, const char *name)
{
    for (size_t i = 0; i < f->n_cls; i++)
        if (strcmp(f->cls[i].name, name) == 0)
            return i;
    if (f->n_cls < MG_RISK_FLEET_CLASSES - 1) {
        mg_risk_fleet_class *c = &f->cls[f->n_cls];
        memset(c, 0, sizeof(*c));
        copy_str(c->name, sizeof(c->name), name);
        c->cert_bits = NAN;
        return f->n_cls++;
    }
    /* the last slot gathers every further class */
    size_t last = MG_RISK_FLEET_CLASSES - 1;
    if (f->n_cls == last) {
        memset(&f->cls[last], 0, sizeof(f->cls[last]));
        copy_str(f->cls[last].name, sizeof(f->cls[last].name), "(other)");
        f->cls[last].cert_bits = NAN;
        f->n_cls++;
    }
    return last;
}

static bool on_device(void *ctx, const mg_device *d)
{
    rd *r = ctx;
    if (r->n_dev == r->cap_dev) {
        size_t nc = r->cap_dev ? r->cap_dev * 2 : 256;
        devrow *p = realloc(r->dev, nc * sizeof(*p));
        if (p == NULL) {
            r->oom = true;
            return false;
        }
        r->dev = p;
        r->cap_dev = nc;
    }
    devrow *w = &r->dev[r->n_dev++];
    w->id = d->id;
    w->cls = class_index(r->f, d->dev_class);
    w->status = d->status;
    w->bearers = d->bearers ? d->bearers : MG_BEARER_SMS;
    copy_str(w->msisdn, sizeof(w->msisdn), d->msisdn);
    mg_risk_fleet_class *c = &r->f->cls[w->cls];
    if (d->status == MG_DEV_REVOKED) {
        c->revoked++;
        r->f->revoked++;
        return true;
    }
    c->devices++;
    r->f->devices++;
    if (d->status == MG_DEV_QUARANTINED) {
        c->quarantined++;
        r->f->quarantined++;
    }
    c->sms += (w->bearers & MG_BEARER_SMS) != 0;
    c->ip += (w->bearers & MG_BEARER_IP) != 0;
    return true;
}

/* device ids come in id order: binary search */
static const devrow *dev_find(const rd *r, int64_t id)
{
    size_t lo = 0, hi = r->n_dev;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->dev[mid].id == id)
            return &r->dev[mid];
        if (r->dev[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int msisdn_cmp(const void *a, const void *b)
{
    return strcmp((*(const devrow *const *)a)->msisdn, (*(const devrow *const *)b)->msisdn);
}

static bool index_msisdn(rd *r)
{
    r->by_msisdn = calloc(r->n_dev ? r->n_dev : 1, sizeof(*r->by_msisdn)); /* NOLINT(bugprone-sizeof-expression): an array of pointers */
    if (r->by_msisdn == NULL)
        return false;
    for (size_t i = 0; i < r->n_dev; i++)
        if (r->dev[i].msisdn[0] != '\0')
            r->by_msisdn[r->n_msisdn++] = &r->dev[i];
    qsort(r->by_msisdn, r->n_msisdn, sizeof(*r->by_msisdn), msisdn_cmp); /* NOLINT(bugprone-sizeof-expression): pointers */
    return true;
}

static const devrow *dev_by_msisdn(const rd *r, const char *msisdn)
{
    size_t n = strlen(msisdn);
    if (n == 0 || n >= MG_MSISDN_MAX)
        return NULL; /* no device has such a number */
    devrow key;
    memset(&key, 0, sizeof(key));
    memcpy(key.msisdn, msisdn, n);
    const devrow *kp = &key;
    const devrow *const *hit =
        bsearch(&kp, r->by_msisdn, r->n_msisdn, sizeof(*r->by_msisdn), msisdn_cmp); /* NOLINT(bugprone-sizeof-expression): pointers */
    return hit ? *hit : NULL;
}

static int key_alg(const mg_keyset *k)
{
    switch (k->alg) {
    case MG_ALG_AES:
        return k->len == 16 ? MG_RISK_ALG_AES128 : k->len == 24 ? MG_RISK_ALG_AES192
                                            : k->len == 32 ? MG_RISK_ALG_AES256 : -1;
    case MG_ALG_3DES2: return MG_RISK_ALG_3DES2;
    case MG_ALG_3DES3: return MG_RISK_ALG_3DES3;
    default: return -1;
    }
}

typedef struct digest { uint8_t d[MG_SHA256_LEN]; } digest;

static int digest_cmp(const void *a, const void *b)
{
    /* digests of keys under a salt drawn for this run: their order says nothing */
    return memcmp(a, b, sizeof(digest));
}

/* Active SMS key of every SMS device that is not revoked: algorithm, and which
 * keys several devices hold (salted SHA-256, compared after sorting). */
static mg_err read_keys(mg_store *s, rd *r, char *why, size_t cap)
{
    mg_risk_fleet *f = r->f;
    uint8_t salt[32];
    mg_err e = mg_crypto_random(salt, sizeof(salt));
    if (e != MG_OK) {
        set_why(why, cap, "random salt", "");
        return e;
    }
    digest *dg = calloc(r->n_dev ? r->n_dev : 1, sizeof(digest));
    size_t *owner = calloc(r->n_dev ? r->n_dev : 1, sizeof(size_t));
    if (dg == NULL || owner == NULL) {
        free(dg);
        free(owner);
        mg_wipe(salt, sizeof(salt));
        set_why(why, cap, "out of memory", "");
        return MG_ERR_BUF;
    }
    size_t nd = 0;
    for (size_t i = 0; i < r->n_dev && e == MG_OK; i++) {
        devrow *d = &r->dev[i];
        if (d->status == MG_DEV_REVOKED || !(d->bearers & MG_BEARER_SMS))
            continue;
        mg_keyset k;
        memset(&k, 0, sizeof(k));
        mg_err g = mg_store_keys_get(s, d->id, 0, &k);
        if (g == MG_ERR_KEY) {
            f->cls[d->cls].no_keys++;
            continue;
        }
        if (g != MG_OK) {
            mg_keyset_wipe(&k);
            set_why(why, cap, "reading keys", mg_store_errmsg(s));
            e = g;
            break;
        }
        int a = key_alg(&k);
        if (a < 0) {
            f->cls[d->cls].no_keys++;
        } else {
            f->cls[d->cls].keys[a]++;
            uint8_t hdr[2] = {(uint8_t)k.alg, (uint8_t)k.len};
            mg_iov parts[4] = {{salt, sizeof(salt)}, {hdr, 2}, {k.kic, k.len}, {k.kid, k.len}};
            e = mg_crypto_sha256(parts, 4, dg[nd].d);
            if (e == MG_OK)
                owner[nd++] = i;
            else
                set_why(why, cap, "SHA-256", "");
        }
        mg_keyset_wipe(&k);
    }
    mg_wipe(salt, sizeof(salt));
    if (e == MG_OK && nd > 1) {
        /* sort (digest, owner) pairs together: sort an index */
        typedef struct pair { digest d; size_t o; } pair;
        pair *p = calloc(nd, sizeof(pair));
        if (p == NULL) {
            e = MG_ERR_BUF;
            set_why(why, cap, "out of memory", "");
        } else {
            for (size_t i = 0; i < nd; i++) {
                p[i].d = dg[i];
                p[i].o = owner[i];
            }
            qsort(p, nd, sizeof(pair), digest_cmp);
            uint64_t sms_keyed = nd;
            for (size_t i = 0; i < nd;) {
                size_t j = i + 1;
                while (j < nd && mg_ct_equal(p[j].d.d, p[i].d.d, MG_SHA256_LEN))
                    j++;
                if (j - i > 1) {
                    f->shared_keys++;
                    if (j - i > f->shared_max)
                        f->shared_max = j - i;
                    for (size_t k = i; k < j; k++)
                        f->cls[r->dev[p[k].o].cls].shared++;
                    if (j - i == sms_keyed)
                        f->fleet_wide_key = true;
                }
                i = j;
            }
            mg_wipe(p, nd * sizeof(pair));
            free(p);
        }
    }
    mg_wipe(dg, (r->n_dev ? r->n_dev : 1) * sizeof(digest));
    free(dg);
    free(owner);
    return e;
}

/* NIST SP 800-57 Part 1 Rev. 5 Table 2: security strength of a public key. */
static double pkey_strength(EVP_PKEY *k, int *type)
{
    int id = EVP_PKEY_get_base_id(k), bits = EVP_PKEY_get_bits(k);
    if (id == EVP_PKEY_EC) {
        *type = 0;
        return bits / 2.0; /* P-256: 128 (f = 256..383) */
    }
    if (id == EVP_PKEY_ED25519) {
        *type = 1;
        return 128;
    }
    if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
        *type = 2;
        return bits >= 15360 ? 256 : bits >= 7680 ? 192 : bits >= 3072 ? 128 : bits >= 2048 ? 112
                                                                                             : 80;
    }
    *type = 3;
    return EVP_PKEY_get_security_bits(k) > 0 ? EVP_PKEY_get_security_bits(k) : 80;
}

typedef struct certrow { int64_t id, device_id; } certrow;
typedef struct certs_ctx {
    certrow *c;
    size_t n, cap;
    int64_t now;
    bool oom;
} certs_ctx;

static bool on_cert(void *ctx, const mg_cert *c)
{
    certs_ctx *x = ctx;
    if (c->device_id <= 0 || c->status != MG_CERT_VALID || c->not_after <= x->now)
        return true;
    if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 64;
        certrow *p = realloc(x->c, nc * sizeof(*p));
        if (p == NULL) {
            x->oom = true;
            return false;
        }
        x->c = p;
        x->cap = nc;
    }
    x->c[x->n].id = c->id;
    x->c[x->n].device_id = c->device_id;
    x->n++;
    return true;
}

static mg_err read_certs(mg_store *s, rd *r, char *why, size_t cap)
{
    certs_ctx x = {.now = r->f->now};
    mg_err e = mg_store_cert_list(s, 0, 0, false, on_cert, &x);
    if (e == MG_OK && x.oom)
        e = MG_ERR_BUF;
    uint8_t *der = malloc(MG_CERT_DER_MAX);
    if (der == NULL && e == MG_OK)
        e = MG_ERR_BUF;
    for (size_t i = 0; i < x.n && e == MG_OK; i++) {
        const devrow *d = dev_find(r, x.c[i].device_id);
        if (d == NULL || d->status == MG_DEV_REVOKED)
            continue;
        size_t len = 0;
        e = mg_store_cert_der(s, x.c[i].id, der, MG_CERT_DER_MAX, &len);
        if (e != MG_OK)
            break;
        mg_risk_fleet_class *c = &r->f->cls[d->cls];
        c->certs++;
        const unsigned char *p = der;
        X509 *cert = d2i_X509(NULL, &p, (long)len);
        EVP_PKEY *k = cert ? X509_get0_pubkey(cert) : NULL;
        int type = 3;
        double bits = k ? pkey_strength(k, &type) : 0;
        c->cert_ec += type == 0;
        c->cert_ed25519 += type == 1;
        c->cert_rsa += type == 2;
        c->cert_other += type == 3;
        if (isnan(c->cert_bits) || bits < c->cert_bits)
            c->cert_bits = bits > 0 ? bits : 1;
        X509_free(cert);
    }
    if (e != MG_OK)
        set_why(why, cap, "reading certificates",
                e == MG_ERR_BUF ? "out of memory" : mg_store_errmsg(s));
    free(der);
    free(x.c);
    return e;
}

static mg_err read_policy(rd *r, const char *path, char *why, size_t cap)
{
    mg_risk_fleet *f = r->f;
    if (path == NULL)
        return MG_OK;
    FILE *t = fopen(path, "r");
    f->policy = t != NULL;
    if (t != NULL)
        fclose(t);
    mg_policy *p = NULL;
    char err[256] = "";
    mg_err e = mg_policy_load(path, true, &p, err, sizeof(err));
    if (e != MG_OK) {
        set_why(why, cap, "policy", err);
        return e;
    }
    f->policy_rules = mg_policy_rule_count(p);
    /* A class needs signed commands when an unsigned command that no rule
     * names is refused for lack of a signature (rules for '*' or the file's
     * require_signed). A rule for one command word only is not counted. */
    static const char probe[] = "m2mguard-risk-probe";
    for (size_t i = 0; i < f->n_cls; i++) {
        mg_policy_input in = {.command = probe, .command_len = sizeof(probe) - 1,
                              .dev_class = f->cls[i].name, .is_signed = false};
        mg_policy_decision d;
        mg_policy_decide(p, &in, &d);
        f->cls[i].signed_required =
            !d.allow && (d.why == MG_POLICY_UNSIGNED || d.why == MG_POLICY_CRITICAL_UNSIGNED);
    }
    mg_policy_free(p);
    return MG_OK;
}

static const char *event_class(const rd *r, int64_t device_id)
{
    if (device_id <= 0)
        return "(no device)";
    const devrow *d = dev_find(r, device_id);
    return d ? r->f->cls[d->cls].name : "(deleted device)";
}

static bool on_event(void *ctx, const mg_event *e)
{
    rd *r = ctx;
    mg_risk_fleet *f = r->f;
    if (e->time < f->since || e->time > f->now)
        return true;
    uint64_t cnt = e->count > 1 ? (uint64_t)e->count : 1;
    f->ev_rows++;
    f->ev_count += cnt;
    const char *cls = event_class(r, e->device_id);
    mg_risk_fleet_evgroup *g = NULL;
    for (size_t i = 0; i < f->n_ev && g == NULL; i++)
        if (f->ev[i].authenticated == e->authenticated && strcmp(f->ev[i].kind, e->kind) == 0 &&
            strcmp(f->ev[i].bearer, e->bearer) == 0 && strcmp(f->ev[i].cls, cls) == 0)
            g = &f->ev[i];
    if (g == NULL) {
        if (f->n_ev == MG_RISK_FLEET_EVENTS) {
            f->ev_dropped += cnt;
            return true;
        }
        g = &f->ev[f->n_ev++];
        copy_str(g->bearer, sizeof(g->bearer), e->bearer);
        copy_str(g->kind, sizeof(g->kind), e->kind);
        copy_str(g->cls, sizeof(g->cls), cls);
        g->authenticated = e->authenticated;
    }
    g->rows++;
    g->count += cnt;
    return true;
}

static bool on_alert(void *ctx, const mg_alert *a)
{
    rd *r = ctx;
    mg_risk_fleet *f = r->f;
    if (a->first_evidence < f->since || a->first_evidence > f->now)
        return true;
    f->al_total++;
    const devrow *d = a->device_id > 0 ? dev_find(r, a->device_id) : dev_by_msisdn(r, a->source);
    const char *cls = d ? f->cls[d->cls].name : "";
    double ttd = (double)a->detected_ms / 1000.0 - (double)a->first_evidence;
    if (ttd < 0)
        ttd = 0;
    if (f->n_ttd < MG_RISK_FLEET_TTD)
        f->ttd_s[f->n_ttd++] = ttd;
    mg_risk_fleet_algroup *g = NULL;
    for (size_t i = 0; i < f->n_al && g == NULL; i++)
        if (strcmp(f->al[i].rule, a->rule) == 0 && strcmp(f->al[i].cls, cls) == 0 &&
            f->al[i].cls_known == (d != NULL) && strcmp(f->al[i].scope, a->scope) == 0)
            g = &f->al[i];
    if (g == NULL) {
        if (f->n_al == MG_RISK_FLEET_ALERTS) {
            f->al_dropped++;
            return true;
        }
        g = &f->al[f->n_al++];
        copy_str(g->rule, sizeof(g->rule), a->rule);
        copy_str(g->cls, sizeof(g->cls), cls);
        copy_str(g->scope, sizeof(g->scope), a->scope);
        g->cls_known = d != NULL;
        g->first = a->first_evidence;
    }
    g->alerts++;
    g->evidence += a->evidence_count > 0 ? (uint64_t)a->evidence_count : a->n_evidence;
    g->authenticated |= a->authenticated;
    if (a->first_evidence < g->first)
        g->first = a->first_evidence;
    if (ttd > g->ttd_max_s)
        g->ttd_max_s = ttd;
    return true;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

mg_err mg_risk_fleet_read(mg_store *s, const char *policy_path, int64_t now, double since_days,
                          mg_risk_fleet *f, char *why, size_t why_cap)
{
    if (s == NULL || f == NULL || !(since_days > 0) || since_days > 36500)
        return MG_ERR_ARG;
    memset(f, 0, sizeof(*f));
    f->now = now;
    f->days = since_days;
    f->since = now - (int64_t)(since_days * 86400.0);
    f->mac_bits = MAC_BITS_PROFILE;
    f->ttd_median_s = NAN;
    rd r = {.f = f};
    mg_err e = mg_store_device_list(s, on_device, &r);
    if (e == MG_OK && r.oom)
        e = MG_ERR_BUF;
    if (e != MG_OK)
        set_why(why, why_cap, "reading devices", e == MG_ERR_BUF ? "out of memory"
                                                                 : mg_store_errmsg(s));
    if (e == MG_OK)
        e = read_keys(s, &r, why, why_cap);
    if (e == MG_OK)
        e = read_certs(s, &r, why, why_cap);
    if (e == MG_OK)
        e = read_policy(&r, policy_path, why, why_cap);
    if (e == MG_OK) {
        e = mg_store_events(s, 0, 0, f->since, on_event, &r);
        if (e != MG_OK)
            set_why(why, why_cap, "reading events", mg_store_errmsg(s));
    }
    if (e == MG_OK && !index_msisdn(&r)) {
        set_why(why, why_cap, "out of memory", "");
        e = MG_ERR_BUF;
    }
    if (e == MG_OK) {
        e = mg_store_alerts(s, 0, false, on_alert, &r);
        if (e != MG_OK)
            set_why(why, why_cap, "reading alerts", mg_store_errmsg(s));
    }
    if (e == MG_OK) {
        int64_t cur = 0;
        mg_err m = mg_store_meta_int(s, "detect_cursor", &cur);
        if (m != MG_OK && m != MG_ERR_KEY) {
            set_why(why, why_cap, "reading the detector's cursor", mg_store_errmsg(s));
            e = m;
        }
        f->detector = m == MG_OK || f->al_total > 0;
    }
    if (e == MG_OK && f->n_ttd > 0) {
        double tmp[MG_RISK_FLEET_TTD];
        memcpy(tmp, f->ttd_s, f->n_ttd * sizeof(double));
        qsort(tmp, f->n_ttd, sizeof(double), dbl_cmp);
        f->ttd_median_s = f->n_ttd % 2 ? tmp[f->n_ttd / 2]
                                       : (tmp[f->n_ttd / 2 - 1] + tmp[f->n_ttd / 2]) / 2;
    }
    free(r.by_msisdn);
    free(r.dev);
    return e;
}

/* ---- the model ------------------------------------------------------------------ */
static const char *const alg_name[MG_RISK_FLEET_ALGS] = {"aes128", "aes192", "aes256", "3des2",
                                                        "3des3"};
static const double alg_bits[MG_RISK_FLEET_ALGS] = {128, 192, 256, 80, 112};

/* The weakest algorithm among the class's keys (by strength), -1 none. */
static int weakest_alg(const mg_risk_fleet_class *c)
{
    int w = -1;
    for (int a = 0; a < MG_RISK_FLEET_ALGS; a++)
        if (c->keys[a] > 0 && (w < 0 || alg_bits[a] < alg_bits[w]))
            w = a;
    return w;
}

static uint64_t sum_keys(const mg_risk_fleet_class *c)
{
    uint64_t n = 0;
    for (int a = 0; a < MG_RISK_FLEET_ALGS; a++)
        n += c->keys[a];
    return n;
}

/* Target ids: class names are [A-Za-z0-9._-] (or "" or "(other)"). */
static void target_id(char *buf, size_t cap, const char *prefix, const char *cls)
{
    if (cls[0] == '\0')
        snprintf(buf, cap, "%s", prefix);
    else if (strcmp(cls, "(other)") == 0)
        snprintf(buf, cap, "%s_other_classes", prefix);
    else
        snprintf(buf, cap, "%s_%s", prefix, cls);
}

static void year_of(int64_t now, int *year)
{
    time_t t = (time_t)now;
    struct tm tm;
    *year = gmtime_r(&t, &tm) ? tm.tm_year + 1900 : 2026;
}

/* The documented defaults (docs/risk-method.md §6.2). */
#define DEF_STOLEN 100
#define DEF_MANIPULATED 200
#define DEF_DESTROYED 150
#define DEF_OUTAGE 1000
#define DEF_PUBLICITY 50000
#define DEF_TTR_DAYS 2

/* A list of measures "a, {id: b, ...}" built item by item. */
typedef struct mlist { char b[768]; size_t n; } mlist;

static void ml_add(mlist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ml_add(mlist *l, const char *fmt, ...)
{
    if (l->n > 0 && l->n + 2 < sizeof(l->b)) {
        memcpy(l->b + l->n, ", ", 3);
        l->n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(l->b + l->n, sizeof(l->b) - l->n, fmt, ap);
    va_end(ap);
    if (w > 0)
        l->n += (size_t)w < sizeof(l->b) - l->n ? (size_t)w : sizeof(l->b) - l->n - 1;
}

static void ml_detection(const mg_risk_fleet *f, mlist *l)
{
    if (!f->detector)
        return;
    if (isnan(f->ttd_median_s)) {
        ml_add(l, "detection");
        return;
    }
    double h = f->ttd_median_s / 3600.0;
    if (h < 0.001)
        h = 0.001; /* the model's lower bound: 3.6 s */
    char b[40];
    mg_json_num_fmt(b, sizeof(b), h);
    ml_add(l, "{id: detection, time_to_detect_hours: %s}", b);
}

mg_err mg_risk_fleet_model_yaml(const mg_risk_fleet *f, FILE *o)
{
    int year;
    year_of(f->now, &year);
    bool any_sms = false, any_ip = false;
    for (size_t i = 0; i < f->n_cls; i++) {
        any_sms |= f->cls[i].devices > 0 && f->cls[i].sms > 0;
        any_ip |= f->cls[i].devices > 0 && f->cls[i].ip > 0;
    }
    fprintf(o, "# Built by 'm2mguard risk analyze --fleet' from the registry\n"
               "# (defaults: docs/risk-method.md section 6.2; edit and pass with --model).\n");
    fprintf(o, "system:\n  name: \"m2mguard fleet (%llu devices)\"\n  year: %d\n"
               "  lifetime_years: 10\n  devices: %llu\n",
            (unsigned long long)f->devices, year,
            (unsigned long long)(f->devices ? f->devices : 1));
    fprintf(o, "  value_eur: {stolen_per_device: %d, manipulated_per_device: %d, "
               "destroyed_per_device: %d, outage_per_day: %d, publicity: %d}\n",
            DEF_STOLEN, DEF_MANIPULATED, DEF_DESTROYED, DEF_OUTAGE, DEF_PUBLICITY);
    fprintf(o, "  time_to_resolve_days: %d\n", DEF_TTR_DAYS);
    fprintf(o, "attackers: [buzz_and_glory, fraud, cyber_crime]\nnodes:\n");
    mlist l = {.n = 0};
    ml_add(&l, "patching");
    ml_detection(f, &l);
    fprintf(o, "  - {id: backend, kind: backend, measures: [%s]}\n", l.b);
    if (any_sms)
        fprintf(o, "  - {id: smsc, kind: smsc}\n");
    if (any_ip)
        fprintf(o, "  - {id: broker, kind: broker, measures: [broker_acl, patching]}\n");
    char id[MG_RISK_FLEET_NAME + 32], mcu[MG_RISK_FLEET_NAME + 32];
    for (size_t i = 0; i < f->n_cls; i++) {
        const mg_risk_fleet_class *c = &f->cls[i];
        if (c->devices == 0)
            continue;
        target_id(mcu, sizeof(mcu), "mcu", c->name);
        memset(&l, 0, sizeof(l));
        if (c->shared == 0 && (sum_keys(c) > 0 || c->certs > 0))
            ml_add(&l, "per_device_keys");
        if (c->signed_required)
            ml_add(&l, "signed_commands");
        fprintf(o, "  - {id: \"%s\", kind: device_mcu, per_device: true, measures: [%s]}\n", mcu,
                l.b);
    }
    bool any_link = false;
    for (size_t i = 0; i < f->n_cls; i++) {
        const mg_risk_fleet_class *c = &f->cls[i];
        if (c->devices == 0 || (c->sms == 0 && c->ip == 0))
            continue;
        if (!any_link)
            fprintf(o, "links:\n");
        any_link = true;
        target_id(mcu, sizeof(mcu), "mcu", c->name);
        if (c->sms > 0) {
            target_id(id, sizeof(id), "sms", c->name);
            memset(&l, 0, sizeof(l));
            int w = weakest_alg(c);
            /* every SMS device of the class keyed: the weakest key is the link's */
            if (w >= 0 && c->no_keys == 0) {
                ml_add(&l, "{id: secured_sms, algorithm: %s, mac_bits: %u}", alg_name[w],
                       f->mac_bits);
                if (c->shared == 0)
                    ml_add(&l, "per_device_keys");
            }
            if (c->signed_required)
                ml_add(&l, "signed_commands");
            ml_detection(f, &l);
            fprintf(o, "  - {id: \"%s\", kind: sms, from: smsc, to: \"%s\", per_device: true, "
                       "measures: [%s]}\n",
                    id, mcu, l.b);
        }
        if (c->ip > 0) {
            target_id(id, sizeof(id), "ip", c->name);
            memset(&l, 0, sizeof(l));
            if (c->certs > 0) {
                char b[40];
                mg_json_num_fmt(b, sizeof(b), isnan(c->cert_bits) ? 128 : c->cert_bits);
                ml_add(&l, "{id: tls_certificates, key_bits: %s}", b);
                ml_add(&l, "per_device_keys");
            }
            if (c->signed_required)
                ml_add(&l, "signed_commands");
            ml_detection(f, &l);
            fprintf(o, "  - {id: \"%s\", kind: ip, from: broker, to: \"%s\", per_device: true, "
                       "measures: [%s]}\n",
                    id, mcu, l.b);
        }
    }
    return ferror(o) ? MG_ERR_BUF : MG_OK;
}

static int measure_at(const mg_risk_target *t, int measure)
{
    for (size_t i = 0; i < t->n_measures; i++)
        if (t->measures[i].measure == measure)
            return (int)i;
    return -1;
}

static void measure_remove(mg_risk_target *t, int measure)
{
    int k;
    while ((k = measure_at(t, measure)) >= 0) {
        memmove(&t->measures[k], &t->measures[k + 1],
                (t->n_measures - (size_t)k - 1) * sizeof(t->measures[0]));
        t->n_measures--;
    }
}

static mg_err measure_ensure(mg_risk_model *m, const mg_risk_catalogue *cat, size_t t, int measure)
{
    if (measure < 0 || measure_at(&m->targets[t], measure) >= 0)
        return MG_OK;
    return mg_risk_model_add_measure(m, cat, t, measure);
}

/* The fleet-wide facts that override an analyst's model. */
typedef struct fleet_sum {
    uint64_t sms, keyed, nokeys, ip, certs;
    int weakest;      /* weakest SMS key algorithm, -1 none */
    double cert_bits; /* weakest certificate key, NAN none */
    bool all_signed;  /* every class requires signed commands */
} fleet_sum;

static fleet_sum summarise(const mg_risk_fleet *f)
{
    fleet_sum u = {.weakest = -1, .cert_bits = NAN, .all_signed = f->n_cls > 0};
    for (size_t i = 0; i < f->n_cls; i++) {
        const mg_risk_fleet_class *c = &f->cls[i];
        if (c->devices == 0)
            continue;
        u.sms += c->sms;
        u.ip += c->ip;
        u.keyed += sum_keys(c);
        u.nokeys += c->no_keys;
        u.certs += c->certs;
        int w = weakest_alg(c);
        if (w >= 0 && (u.weakest < 0 || alg_bits[w] < alg_bits[u.weakest]))
            u.weakest = w;
        if (!isnan(c->cert_bits) && (isnan(u.cert_bits) || c->cert_bits < u.cert_bits))
            u.cert_bits = c->cert_bits;
        u.all_signed &= c->signed_required;
    }
    return u;
}

/* The fleet's facts over an analyst's model (docs/risk-method.md §6.2). */
static mg_err override_model(const mg_risk_fleet *f, const mg_risk_catalogue *cat, mg_risk_model *m)
{
    double dev = f->devices ? (double)f->devices : 1;
    m->devices = dev;
    if (m->network_devices > dev || m->network_devices <= 0)
        m->network_devices = dev;
    fleet_sum u = summarise(f);
    uint64_t sms = u.sms, keyed = u.keyed, nokeys = u.nokeys, ip = u.ip, certs = u.certs;
    int weakest = u.weakest;
    double cert_bits = u.cert_bits;
    bool all_signed = u.all_signed;
    int ssms = mg_risk_measure_find(cat, "secured_sms");
    int pdk = mg_risk_measure_find(cat, "per_device_keys");
    int sgn = mg_risk_measure_find(cat, "signed_commands");
    int tls = mg_risk_measure_find(cat, "tls_certificates");
    for (size_t t = 0; t < m->n_targets; t++) {
        mg_risk_target *tg = &m->targets[t];
        mg_err e = MG_OK;
        if (strcmp(tg->kind, "sms") == 0 && sms > 0) {
            if (weakest >= 0 && nokeys == 0) {
                e = measure_ensure(m, cat, t, ssms);
                int k = measure_at(tg, ssms);
                if (e == MG_OK && k >= 0) {
                    tg->measures[k].param[MG_P_KEY_BITS] = alg_bits[weakest];
                    tg->measures[k].param[MG_P_MAC_BITS] = f->mac_bits;
                    tg->measures[k].algorithm = (mg_risk_alg)weakest;
                }
            } else if (ssms >= 0) {
                measure_remove(tg, ssms); /* some device speaks SMS without keys */
            }
            if (e == MG_OK && pdk >= 0) {
                if (f->shared_keys > 0 || keyed == 0)
                    measure_remove(tg, pdk);
                else
                    e = measure_ensure(m, cat, t, pdk);
            }
        }
        if (e == MG_OK && strcmp(tg->kind, "ip") == 0 && ip > 0 && tls >= 0) {
            if (certs > 0) {
                e = measure_ensure(m, cat, t, tls);
                int k = measure_at(tg, tls);
                if (e == MG_OK && k >= 0 && !isnan(cert_bits))
                    tg->measures[k].param[MG_P_KEY_BITS] = cert_bits;
            } else {
                measure_remove(tg, tls);
            }
        }
        if (e == MG_OK && sgn >= 0 && (strcmp(tg->kind, "sms") == 0 || strcmp(tg->kind, "ip") == 0)) {
            if (all_signed)
                e = measure_ensure(m, cat, t, sgn);
            else
                measure_remove(tg, sgn);
        }
        if (e != MG_OK)
            return e;
    }
    return MG_OK;
}

mg_err mg_risk_fleet_model(const mg_risk_fleet *f, const mg_risk_catalogue *cat,
                           const char *model_path, mg_risk_model *m, mg_risk_diag *diag)
{
    memset(m, 0, sizeof(*m));
    if (model_path != NULL) {
        mg_err e = mg_risk_model_load(model_path, cat, m, diag);
        if (e == MG_OK)
            e = override_model(f, cat, m);
        if (e != MG_OK)
            mg_risk_model_free(m);
        return e;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (o == NULL)
        return MG_ERR_BUF;
    mg_err e = mg_risk_fleet_model_yaml(f, o);
    if (fclose(o) != 0 && e == MG_OK)
        e = MG_ERR_BUF;
    if (e == MG_OK) {
        mg_risk_text t = {"(fleet model)", buf, len};
        e = mg_risk_model_load_text(&t, cat, m, diag);
    }
    free(buf);
    return e;
}

/* ---- evidence --------------------------------------------------------------------- */
/* Alert rules onto catalogue vectors (docs/risk-method.md §6.3): the first
 * pattern contained in the rule's name decides. per_message: what was tried
 * costs one SMS or message each (calibration sms_eur); else the vector's
 * lowest cost (the equipment the attack needs). */
typedef struct rule_map {
    const char *pattern, *vector, *kind, *prefix;
    bool per_message;
} rule_map;
static const rule_map rule_maps[] = {
    {"checksum", "sms_mac_online_forgery", "sms", "sms", true},
    {"mac_guess", "sms_mac_online_forgery", "sms", "sms", true},
    {"replay", "sms_replay", "sms", "sms", false},
    {"reflect", "sms_replay", "sms", "sms", false},
    {"wrong_direction", "sms_replay", "sms", "sms", false},
    {"unknown_sender", "sms_sender_spoofing", "sms", "sms", true},
    {"spoof", "sms_sender_spoofing", "sms", "sms", true},
    {"counter_jump", "key_extraction_flash", "device_mcu", "mcu", false},
    {"tamper", "enclosure_opening", "device_mcu", "mcu", false},
    {"quarantined", "stolen_device_certificate", "device_mcu", "mcu", false},
    {"revoked", "stolen_device_certificate", "device_mcu", "mcu", false},
    {"cert_reuse", "stolen_device_certificate", "device_mcu", "mcu", false},
    {"inactive_device", "stolen_device_certificate", "device_mcu", "mcu", false},
    {"cross_device", "mqtt_topic_abuse", "broker", "", false},
    {"acl", "mqtt_topic_abuse", "broker", "", false},
    {"flood", "backend_flooding", "backend", "", true},
    {"rate", "backend_flooding", "backend", "", true},
};

static const rule_map *map_rule(const char *rule)
{
    for (size_t i = 0; i < sizeof(rule_maps) / sizeof(rule_maps[0]); i++)
        if (strstr(rule, rule_maps[i].pattern) != NULL)
            return &rule_maps[i];
    return NULL;
}

static int vector_find(const mg_risk_catalogue *c, const char *id)
{
    for (size_t i = 0; i < c->n_vectors; i++)
        if (strcmp(c->vectors[i].id, id) == 0)
            return (int)i;
    return -1;
}

static mg_err set_observed(mg_risk_model *m, int vector)
{
    for (size_t i = 0; i < m->n_uses; i++)
        if (m->uses[i].vector == vector) {
            m->uses[i].probability = 1;
            return MG_OK;
        }
    mg_risk_vector_use *u = mg_arena_array(m->arena, m->n_uses + 1, sizeof(*u));
    if (u == NULL)
        return MG_ERR_BUF;
    if (m->n_uses)
        memcpy(u, m->uses, m->n_uses * sizeof(*u));
    u[m->n_uses].vector = vector;
    u[m->n_uses].attackers = NULL;
    u[m->n_uses].n_attackers = 0;
    u[m->n_uses].probability = 1;
    m->uses = u;
    m->n_uses++;
    return MG_OK;
}

mg_err mg_risk_fleet_evidence(const mg_risk_fleet *f, mg_risk_model *m, mg_risk_catalogue *cat,
                              mg_risk_observed *obs, size_t cap, size_t *n_obs)
{
    *n_obs = 0;
    for (size_t g = 0; g < f->n_al; g++) {
        const mg_risk_fleet_algroup *a = &f->al[g];
        const rule_map *rm = map_rule(a->rule);
        if (rm == NULL)
            continue;
        int v = vector_find(cat, rm->vector);
        if (v < 0)
            continue;
        /* the class's own node/link when the model has it, else every one of the kind */
        char want[MG_RISK_FLEET_NAME + 32] = "";
        bool own = false;
        if (a->cls_known && rm->prefix[0]) {
            target_id(want, sizeof(want), rm->prefix, a->cls);
            for (size_t t = 0; t < m->n_targets && !own; t++)
                own = strcmp(m->targets[t].id, want) == 0;
        }
        const mg_risk_vector *ve = &cat->vectors[v];
        double spent = rm->per_message ? (double)a->evidence * cat->calib.sms_eur : ve->cost.lo;
        for (size_t t = 0; t < m->n_targets; t++) {
            const mg_risk_target *tg = &m->targets[t];
            if (strcmp(tg->kind, rm->kind) != 0 || (own && strcmp(tg->id, want) != 0) ||
                !mg_risk_vector_targets(cat, v, tg))
                continue;
            if (*n_obs == cap)
                return MG_OK; /* the report says how many were kept */
            mg_risk_observed *o = &obs[(*n_obs)++];
            o->alert = g;
            o->vector = v;
            o->target = (int)t;
            o->spent_eur = spent;
            mg_err e = set_observed(m, v);
            if (e != MG_OK)
                return e;
            mg_risk_vt x;
            mg_risk_eval_vt(m, cat, m->year, v, (int)t, NULL, 0, &x);
            for (size_t j = 0; j < m->n_attackers; j++) {
                mg_risk_attacker *at = &cat->attackers[m->attackers[j]];
                if (x.ap_cem > at->capability || !mg_risk_attacker_uses(m, v, j))
                    continue;
                if (at->budget.lo < spent)
                    at->budget.lo = spent;
                if (at->budget.hi < spent)
                    at->budget.hi = spent;
            }
        }
    }
    return MG_OK;
}

/* ---- which measures stop the repetition ------------------------------------------ */
#define STOP_VEC 8
typedef struct stopres {
    int target;
    int vec[STOP_VEC]; size_t nv;
    int pick[MAX_CAND]; size_t n_pick;
    double cost;        /* EUR (placement + fixed), INFINITY: not closable */
    bool needed;        /* an attacked finding is not secure enough */
    bool truncated;     /* more than MAX_CAND candidates: the first ones searched */
    int prevent[STOP_VEC];          /* cheapest measure preventing vec[i] outright, -1 none */
    double prevent_cost[STOP_VEC];
} stopres;

static bool acts_on(const mg_risk_vector *ve, int measure)
{
    for (size_t i = 0; i < ve->n_effects; i++)
        if (ve->effects[i].measure == measure)
            return true;
    for (size_t i = 0; i < ve->n_detected_by; i++)
        if (ve->detected_by[i] == measure)
            return true;
    return false;
}

static bool fits(const mg_risk_measure *me, const char *kind)
{
    for (size_t k = 0; k < me->n_kinds; k++)
        if (strcmp(me->kinds[k], kind) == 0 || strcmp(me->kinds[k], "any") == 0)
            return true;
    return false;
}

static int cmp_measure_id(const void *a, const void *b, const mg_risk_catalogue *c)
{
    return strcmp(c->measures[*(const int *)a].id, c->measures[*(const int *)b].id);
}

/* The engine's local search (docs/risk-method.md §3) restricted to the attacked
 * vectors of one node/link: every subset of the candidate measures, the
 * cheapest that makes every attacked finding secure enough; ties: fewer
 * measures, then the first in the order of measure ids. */
static void stop_search(const mg_risk_result *r, stopres *s)
{
    const mg_risk_model *m = r->model;
    const mg_risk_catalogue *c = r->cat;
    const mg_risk_target *tg = &m->targets[s->target];
    int cand[MAX_CAND];
    size_t nc = 0;
    for (size_t me = 0; me < c->n_measures; me++) {
        bool useful = false;
        for (size_t i = 0; i < s->nv && !useful; i++)
            useful = acts_on(&c->vectors[s->vec[i]], (int)me);
        if (!useful || !fits(&c->measures[me], tg->kind) || measure_at(tg, (int)me) >= 0)
            continue;
        if (nc == MAX_CAND) {
            s->truncated = true;
            break;
        }
        cand[nc++] = (int)me;
    }
    /* name order, for the tie rule (insertion sort: nc <= 16) */
    for (size_t i = 1; i < nc; i++)
        for (size_t j = i; j > 0 && cmp_measure_id(&cand[j - 1], &cand[j], c) > 0; j--) {
            int t = cand[j];
            cand[j] = cand[j - 1];
            cand[j - 1] = t;
        }
    s->cost = INFINITY;
    s->needed = false;
    for (size_t i = 0; i < s->nv; i++) {
        mg_risk_vt x;
        mg_risk_eval_vt(m, c, r->year, s->vec[i], s->target, NULL, 0, &x);
        s->needed |= !x.secure;
        s->prevent[i] = -1;
        s->prevent_cost[i] = INFINITY;
        for (size_t k = 0; k < nc; k++) {
            mg_risk_eval_vt(m, c, r->year, s->vec[i], s->target, &cand[k], 1, &x);
            double cost = mg_risk_place_cost(m, c, cand[k], s->target) +
                          c->measures[cand[k]].cost_fixed;
            if (!x.applicable && cost < s->prevent_cost[i]) {
                s->prevent[i] = cand[k];
                s->prevent_cost[i] = cost;
            }
        }
    }
    if (!s->needed) {
        s->cost = 0;
        return;
    }
    unsigned best = 0;
    size_t best_n = 0;
    for (unsigned mask = 1; mask < (1u << nc); mask++) {
        int ex[MAX_CAND];
        size_t ne = 0;
        double cost = 0;
        for (size_t k = 0; k < nc; k++)
            if (mask & (1u << k)) {
                ex[ne++] = cand[k];
                cost += mg_risk_place_cost(m, c, cand[k], s->target) + c->measures[cand[k]].cost_fixed;
            }
        if (cost > s->cost || (cost == s->cost && ne >= best_n))
            continue;
        bool ok = true;
        for (size_t i = 0; i < s->nv && ok; i++) {
            mg_risk_vt x;
            mg_risk_eval_vt(m, c, r->year, s->vec[i], s->target, ex, ne, &x);
            ok = x.secure;
        }
        if (ok) {
            s->cost = cost;
            best = mask;
            best_n = ne;
        }
    }
    s->n_pick = 0;
    for (size_t k = 0; k < nc; k++)
        if (best & (1u << k))
            s->pick[s->n_pick++] = cand[k];
}

/* One stopres per attacked node/link (at most n_obs). */
static size_t build_stops(const mg_risk_result *after, const mg_risk_observed *obs, size_t n_obs,
                          stopres *st)
{
    size_t n = 0;
    for (size_t i = 0; i < n_obs; i++) {
        stopres *s = NULL;
        for (size_t k = 0; k < n && s == NULL; k++)
            if (st[k].target == obs[i].target)
                s = &st[k];
        if (s == NULL) {
            s = &st[n++];
            memset(s, 0, sizeof(*s));
            s->target = obs[i].target;
        }
        bool have = false;
        for (size_t k = 0; k < s->nv; k++)
            have |= s->vec[k] == obs[i].vector;
        if (!have && s->nv < STOP_VEC)
            s->vec[s->nv++] = obs[i].vector;
    }
    for (size_t k = 0; k < n; k++)
        stop_search(after, &st[k]);
    return n;
}

/* ---- the report ------------------------------------------------------------------ */
typedef struct wr { FILE *f; mg_risk_fmt fmt; } wr;

static void esc(wr *w, const char *s)
{
    for (; *s; s++) {
        if (w->fmt == MG_RISK_FMT_HTML) {
            switch (*s) {
            case '&': fputs("&amp;", w->f); continue;
            case '<': fputs("&lt;", w->f); continue;
            case '>': fputs("&gt;", w->f); continue;
            case '"': fputs("&quot;", w->f); continue;
            default: break;
            }
        } else if (*s == '|') {
            fputs("\\|", w->f);
            continue;
        }
        fputc(*s, w->f);
    }
}

static void w_h(wr *w, int level, const char *text)
{
    if (w->fmt == MG_RISK_FMT_HTML) {
        fprintf(w->f, "<h%d>", level);
        esc(w, text);
        fprintf(w->f, "</h%d>\n", level);
    } else {
        for (int i = 0; i < level; i++)
            fputc('#', w->f);
        fputc(' ', w->f);
        esc(w, text);
        fputs("\n\n", w->f);
    }
}

static void w_p(wr *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void w_p(wr *w, const char *fmt, ...)
{
    char b[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    fputs(w->fmt == MG_RISK_FMT_HTML ? "<p>" : "", w->f);
    esc(w, b);
    fputs(w->fmt == MG_RISK_FMT_HTML ? "</p>\n" : "\n\n", w->f);
}

static void w_row(wr *w, const char *const *cells, size_t n, bool head)
{
    if (w->fmt == MG_RISK_FMT_HTML) {
        fputs(head ? "<table>\n<tr>" : "<tr>", w->f);
        for (size_t i = 0; i < n; i++) {
            fputs(head ? "<th>" : "<td>", w->f);
            esc(w, cells[i]);
            fputs(head ? "</th>" : "</td>", w->f);
        }
        fputs("</tr>\n", w->f);
        return;
    }
    fputs("|", w->f);
    for (size_t i = 0; i < n; i++) {
        fputc(' ', w->f);
        esc(w, cells[i]);
        fputs(" |", w->f);
    }
    fputc('\n', w->f);
    if (head) {
        fputs("|", w->f);
        for (size_t i = 0; i < n; i++)
            fputs("---|", w->f);
        fputc('\n', w->f);
    }
}

static void w_tend(wr *w)
{
    fputs(w->fmt == MG_RISK_FMT_HTML ? "</table>\n" : "\n", w->f);
}

/* Exact figures: the JSON number, in every format. */
typedef struct nb { char b[48]; } nb;
static nb num(double v)
{
    nb n = {{0}};
    mg_json_num_fmt(n.b, sizeof(n.b), v);
    return n;
}
static nb num_u(uint64_t v)
{
    nb n = {{0}};
    snprintf(n.b, sizeof(n.b), "%llu", (unsigned long long)v);
    return n;
}
static nb year_or(double y, const char *inf)
{
    nb n = {{0}};
    if (isinf(y))
        snprintf(n.b, sizeof(n.b), "%s", inf);
    else
        mg_json_num_fmt(n.b, sizeof(n.b), floor(y));
    return n;
}
static nb eur(double v)
{
    nb n = {{0}};
    if (isinf(v))
        snprintf(n.b, sizeof(n.b), "unbounded");
    else
        mg_json_num_fmt(n.b, sizeof(n.b), v);
    return n;
}

static void time_iso(int64_t t, char *b, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(b, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(b, cap, "%lld", (long long)t);
}

static const char *cls_label(const char *c)
{
    return c[0] ? c : "(none)";
}

static const mg_risk_vt *vt_of(const mg_risk_result *r, int vector, int target)
{
    for (size_t i = 0; i < r->n_vts; i++)
        if (r->vts[i].vector == vector && r->vts[i].target == target)
            return &r->vts[i];
    return NULL;
}

/* The key of a link: the secured_sms or tls_certificates measure in place. */
static bool link_key(const mg_risk_result *r, int target, int *alg, double *bits)
{
    const mg_risk_target *t = &r->model->targets[target];
    for (size_t i = 0; i < t->n_measures; i++) {
        const mg_risk_placed *p = &t->measures[i];
        const char *id = r->cat->measures[p->measure].id;
        if (strcmp(id, "secured_sms") == 0 || strcmp(id, "tls_certificates") == 0) {
            *alg = p->algorithm;
            *bits = p->param[MG_P_KEY_BITS];
            return true;
        }
    }
    return false;
}

static void key_label(char *b, size_t cap, int alg, double bits)
{
    if (alg >= 0 && alg < MG_RISK_FLEET_ALGS)
        snprintf(b, cap, "%s", alg_name[alg]);
    else
        snprintf(b, cap, "%.24s-bit key", num(bits).b);
}

static bool weak_key(int alg, double disallowed, double year)
{
    return alg == MG_RISK_ALG_3DES2 || alg == MG_RISK_ALG_3DES3 || disallowed <= year;
}

static void picks_text(const mg_risk_catalogue *c, const stopres *s, char *b, size_t cap)
{
    size_t u = 0;
    b[0] = '\0';
    for (size_t k = 0; k < s->n_pick && u < cap; k++) {
        int w = snprintf(b + u, cap - u, "%s%s", k ? ", " : "", c->measures[s->pick[k]].id);
        if (w < 0)
            break;
        u += (size_t)w;
    }
}

static void verdict_rows(wr *w, const mg_risk_result *b, const mg_risk_result *a)
{
    static const char *const head[] = {"", "without the evidence", "with the evidence"};
    w_row(w, head, 3, true);
    const char *r1[] = {"secure enough", b->secure ? "yes" : "no", a->secure ? "yes" : "no"};
    w_row(w, r1, 3, false);
    nb x = num_u(b->n_insecure), y = num_u(a->n_insecure);
    const char *r2[] = {"findings not secure enough", x.b, y.b};
    w_row(w, r2, 3, false);
    x = eur(b->min_margin);
    y = eur(a->min_margin);
    const char *r3[] = {"smallest margin (EUR)", x.b, y.b};
    w_row(w, r3, 3, false);
    x = year_or(b->secure_until, "not limited by key length");
    y = year_or(a->secure_until, "not limited by key length");
    const char *r4[] = {"secure until", x.b, y.b};
    w_row(w, r4, 3, false);
    x = eur(b->residual);
    y = eur(a->residual);
    const char *r5[] = {"residual risk (EUR)", x.b, y.b};
    w_row(w, r5, 3, false);
    w_tend(w);
}

static void write_human(wr *w, const char *workdir, const char *model_path,
                        const mg_risk_fleet *f, const mg_risk_observed *obs, size_t n_obs,
                        const mg_risk_result *b, const mg_risk_result *a, const stopres *st,
                        size_t n_st)
{
    const mg_risk_catalogue *c = a->cat;
    const mg_risk_model *m = a->model;
    char t[512];
    if (w->fmt == MG_RISK_FMT_HTML)
        fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>m2mguard fleet risk"
              "</title>\n<style>body{font-family:sans-serif;max-width:70em;margin:auto}"
              "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
              "</style></head><body>\n",
              w->f);
    snprintf(t, sizeof(t), "Fleet risk analysis: %s", workdir);
    w_h(w, 1, t);
    char since[32], now[32];
    time_iso(f->since, since, sizeof(since));
    time_iso(f->now, now, sizeof(now));
    w_p(w, "Evidence window: %s days, %s to %s. Model: %s. Analysis year %s, seed %llu, %u draws.",
        num(f->days).b, since, now,
        model_path ? model_path : "built from the registry with the documented defaults "
                                  "(docs/risk-method.md section 6.2)",
        num(a->year).b, (unsigned long long)a->seed, a->draws);

    if (model_path != NULL) {
        fleet_sum u = summarise(f);
        char key[48] = "unchanged (no SMS device)";
        if (u.sms > 0 && (u.weakest < 0 || u.nokeys > 0))
            snprintf(key, sizeof(key), "removed (an SMS device has no keys)");
        else if (u.sms > 0)
            snprintf(key, sizeof(key), "%s, %u-bit checksum", alg_name[u.weakest], f->mac_bits);
        w_p(w, "The fleet's facts replace the model's: devices %llu; on SMS links secured_sms: %s, "
               "per_device_keys: %s; on SMS and IP links signed_commands: %s; on IP links "
               "tls_certificates: %s.",
            (unsigned long long)f->devices, key,
            u.sms == 0 ? "unchanged" : f->shared_keys > 0 || u.keyed == 0 ? "removed (a shared key)"
                                                                          : "in place",
            u.all_signed ? "in place (the policy requires them)"
                         : "removed (the policy does not require them for every class)",
            u.ip == 0     ? "unchanged (no IP device)"
            : u.certs == 0 ? "removed (no certificate)"
                           : "the weakest certificate key");
    }
    w_h(w, 2, "Verdict");
    verdict_rows(w, b, a);

    w_h(w, 2, "Fleet");
    w_p(w, "%llu devices (not revoked), %llu quarantined, %llu revoked. Checksum: %u bits "
           "(8 octets of AES-CMAC or triple-DES CBC-MAC, docs/sms-profile.md).",
        (unsigned long long)f->devices, (unsigned long long)f->quarantined,
        (unsigned long long)f->revoked, f->mac_bits);
    static const char *const ch[] = {"class", "devices", "quarantined", "revoked", "SMS", "IP",
                                     "aes128", "aes192", "aes256", "3des2", "3des3", "no key",
                                     "shared key", "certificates", "EC/Ed25519/RSA/other",
                                     "signed commands"};
    w_row(w, ch, 16, true);
    for (size_t i = 0; i < f->n_cls; i++) {
        const mg_risk_fleet_class *k = &f->cls[i];
        nb v[12] = {num_u(k->devices), num_u(k->quarantined), num_u(k->revoked), num_u(k->sms),
                    num_u(k->ip), num_u(k->keys[0]), num_u(k->keys[1]), num_u(k->keys[2]),
                    num_u(k->keys[3]), num_u(k->keys[4]), num_u(k->no_keys), num_u(k->shared)};
        nb cc = num_u(k->certs);
        char kt[96];
        snprintf(kt, sizeof(kt), "%llu/%llu/%llu/%llu", (unsigned long long)k->cert_ec,
                 (unsigned long long)k->cert_ed25519, (unsigned long long)k->cert_rsa,
                 (unsigned long long)k->cert_other);
        const char *row[16] = {cls_label(k->name), v[0].b, v[1].b, v[2].b, v[3].b, v[4].b, v[5].b,
                               v[6].b, v[7].b, v[8].b, v[9].b, v[10].b, v[11].b, cc.b, kt,
                               k->signed_required ? "required" : "not required"};
        w_row(w, row, 16, false);
    }
    w_tend(w);
    w_p(w, "Shared SMS keys: %llu keys held by more than one device (largest group: %llu "
           "devices); fleet-wide key: %s. Command policy: %s (%zu rules). Detector: %s; "
           "observed time to detect (median of %zu alerts, s): %s.",
        (unsigned long long)f->shared_keys, (unsigned long long)f->shared_max,
        f->fleet_wide_key ? "yes" : "no", f->policy ? "policy.yaml" : "none", f->policy_rules,
        f->detector ? "has run" : "never ran", f->n_ttd,
        isnan(f->ttd_median_s) ? "none (no alert)" : num(f->ttd_median_s).b);

    w_h(w, 2, "Keys and their secure-until years");
    static const char *const kh[] = {"node/link", "key", "finding", "secure until",
                                     "secure until with the evidence",
                                     "disallowed by policy since", "weak"};
    w_row(w, kh, 7, true);
    int off = vector_find(c, "offline_key_bruteforce");
    for (size_t ti = 0; ti < m->n_targets; ti++) {
        int alg;
        double bits;
        if (!link_key(b, (int)ti, &alg, &bits))
            continue;
        const mg_risk_vt *x = off >= 0 ? vt_of(b, off, (int)ti) : NULL;
        const mg_risk_vt *y = off >= 0 ? vt_of(a, off, (int)ti) : NULL;
        if (x == NULL || y == NULL)
            continue;
        char kl[48];
        key_label(kl, sizeof(kl), alg, bits);
        nb u0 = year_or(x->secure_until, "not limited by key length");
        nb u1 = year_or(y->secure_until, "not limited by key length");
        nb d0 = year_or(x->disallowed_since, "never");
        bool weak = weak_key(alg, x->disallowed_since, b->year);
        const char *row[7] = {m->targets[ti].id, kl, c->vectors[off].id, u0.b, u1.b, d0.b,
                              weak ? "WEAK: legacy algorithm, re-key" : "no"};
        w_row(w, row, 7, false);
    }
    w_tend(w);

    w_h(w, 2, "Evidence");
    w_p(w, "%llu event rows (%llu occurrences) and %llu alerts in the window%s.",
        (unsigned long long)f->ev_rows, (unsigned long long)f->ev_count,
        (unsigned long long)f->al_total,
        f->ev_dropped || f->al_dropped ? " (some groups beyond the report's bounds are counted "
                                         "in the totals only)"
                                       : "");
    static const char *const eh[] = {"bearer", "kind", "class", "authenticated", "rows",
                                     "occurrences"};
    w_row(w, eh, 6, true);
    for (size_t i = 0; i < f->n_ev; i++) {
        const mg_risk_fleet_evgroup *g = &f->ev[i];
        nb r = num_u(g->rows), n = num_u(g->count);
        const char *row[6] = {g->bearer, g->kind, cls_label(g->cls),
                              g->authenticated ? "yes" : "no", r.b, n.b};
        w_row(w, row, 6, false);
    }
    w_tend(w);
    static const char *const ah[] = {"rule", "class", "scope", "alerts", "occurrences",
                                     "authenticated", "longest time to detect (s)", "vector"};
    w_row(w, ah, 8, true);
    for (size_t i = 0; i < f->n_al; i++) {
        const mg_risk_fleet_algroup *g = &f->al[i];
        const rule_map *rm = map_rule(g->rule);
        nb n1 = num_u(g->alerts), n2 = num_u(g->evidence), n3 = num(g->ttd_max_s);
        const char *row[8] = {g->rule, g->cls_known ? cls_label(g->cls) : "(not a device)",
                              g->scope, n1.b, n2.b, g->authenticated ? "yes" : "no", n3.b,
                              rm ? rm->vector : "(not mapped)"};
        w_row(w, row, 8, false);
    }
    w_tend(w);

    w_h(w, 2, "Observed attacks");
    if (n_obs == 0) {
        w_p(w, "No attack observed in the window: no alert maps onto an attack vector, so the "
               "two verdicts are the same.");
    } else {
        static const char *const oh[] = {"rule", "vector", "node/link", "occurrences",
                                         "spent at least (EUR)", "probability",
                                         "probability with the evidence", "secure enough",
                                         "secure enough with the evidence", "margin (EUR)",
                                         "margin with the evidence (EUR)", "demand (EUR)",
                                         "demand with the evidence (EUR)"};
        w_row(w, oh, 13, true);
        for (size_t i = 0; i < n_obs; i++) {
            const mg_risk_observed *o = &obs[i];
            const mg_risk_vt *x = vt_of(b, o->vector, o->target);
            const mg_risk_vt *y = vt_of(a, o->vector, o->target);
            if (x == NULL || y == NULL)
                continue;
            nb n0 = num_u(f->al[o->alert].evidence), s0 = num(o->spent_eur), p0 = num(x->probability),
               p1 = num(y->probability), m0 = eur(x->margin), m1 = eur(y->margin),
               d0 = num(x->demand), d1 = num(y->demand);
            const char *row[13] = {f->al[o->alert].rule, c->vectors[o->vector].id,
                                   m->targets[o->target].id, n0.b, s0.b, p0.b, p1.b,
                                   x->secure ? "yes" : "no", y->secure ? "yes" : "no", m0.b, m1.b,
                                   d0.b, d1.b};
            w_row(w, row, 13, false);
        }
        w_tend(w);
    }

    w_h(w, 2, "Where the observed attacks change the verdict");
    size_t changed = 0;
    for (size_t i = 0; i < a->n_vts && i < b->n_vts; i++)
        changed += a->vts[i].secure != b->vts[i].secure;
    if (changed == 0 && n_obs == 0) {
        w_p(w, "Nowhere: no attack observed (residual risk %s EUR).", num(b->residual).b);
    } else if (changed == 0) {
        w_p(w, "Nowhere: every finding keeps its verdict (%s without the evidence, %s with it). "
               "The evidence raises the attack probability of the attacked vectors to observed "
               "and the budgets below: residual risk %s EUR without, %s EUR with the evidence.",
            b->secure ? "secure enough" : "not secure enough",
            a->secure ? "secure enough" : "not secure enough", num(b->residual).b,
            num(a->residual).b);
    } else {
        static const char *const vh[] = {"vector", "node/link", "secure enough",
                                         "with the evidence", "margin (EUR)",
                                         "with the evidence (EUR)"};
        w_row(w, vh, 6, true);
        for (size_t i = 0; i < a->n_vts && i < b->n_vts; i++) {
            if (a->vts[i].secure == b->vts[i].secure)
                continue;
            nb m0 = eur(b->vts[i].margin), m1 = eur(a->vts[i].margin);
            const char *row[6] = {c->vectors[a->vts[i].vector].id,
                                  m->targets[a->vts[i].target].id,
                                  b->vts[i].secure ? "yes" : "no", a->vts[i].secure ? "yes" : "no",
                                  m0.b, m1.b};
            w_row(w, row, 6, false);
        }
        w_tend(w);
    }

    size_t nb_raised = 0;
    for (size_t i = 0; i < c->n_attackers && i < b->cat->n_attackers; i++)
        nb_raised += c->attackers[i].budget.lo != b->cat->attackers[i].budget.lo ||
                     c->attackers[i].budget.hi != b->cat->attackers[i].budget.hi;
    if (nb_raised > 0) {
        w_p(w, "Attacker budgets the evidence raised (an attacker who spent X has at least X; "
               "every capable profile in scope that uses an attacked vector):");
        static const char *const bh[] = {"attacker", "budget (EUR)", "with the evidence (EUR)"};
        w_row(w, bh, 3, true);
        for (size_t i = 0; i < c->n_attackers && i < b->cat->n_attackers; i++) {
            const mg_range *x0 = &b->cat->attackers[i].budget, *x1 = &c->attackers[i].budget;
            if (x0->lo == x1->lo && x0->hi == x1->hi)
                continue;
            char s0[100], s1[100];
            snprintf(s0, sizeof(s0), "%s .. %s", num(x0->lo).b, num(x0->hi).b);
            snprintf(s1, sizeof(s1), "%s .. %s", num(x1->lo).b, num(x1->hi).b);
            const char *row[3] = {c->attackers[i].id, s0, s1};
            w_row(w, row, 3, false);
        }
        w_tend(w);
    }

    w_h(w, 2, "Measures that stop their repetition");
    if (n_st == 0) {
        w_p(w, "No attack observed: nothing to stop.");
    } else {
        static const char *const sh[] = {"node/link", "attacked vectors",
                                         "cheapest measures (secure enough again)", "cost (EUR)",
                                         "prevents outright (cost EUR)", "response"};
        w_row(w, sh, 6, true);
        for (size_t k = 0; k < n_st; k++) {
            const stopres *s = &st[k];
            char vecs[256] = "", pre[512] = "", resp[768] = "", picks[256];
            size_t uv = 0, up = 0, ur = 0;
            for (size_t i = 0; i < s->nv; i++) {
                const mg_risk_vector *ve = &c->vectors[s->vec[i]];
                int q = snprintf(vecs + uv, sizeof(vecs) - uv, "%s%s", i ? ", " : "", ve->id);
                uv += q > 0 && (size_t)q < sizeof(vecs) - uv ? (size_t)q : 0;
                if (s->prevent[i] >= 0)
                    q = snprintf(pre + up, sizeof(pre) - up, "%s%s: %s (%s)", i ? "; " : "",
                                 ve->id, c->measures[s->prevent[i]].id, num(s->prevent_cost[i]).b);
                else
                    q = snprintf(pre + up, sizeof(pre) - up, "%s%s: none in the catalogue",
                                 i ? "; " : "", ve->id);
                up += q > 0 && (size_t)q < sizeof(pre) - up ? (size_t)q : 0;
                q = snprintf(resp + ur, sizeof(resp) - ur, "%s%s", i ? " " : "", ve->response);
                ur += q > 0 && (size_t)q < sizeof(resp) - ur ? (size_t)q : 0;
            }
            picks_text(c, s, picks, sizeof(picks));
            const char *pk = !s->needed ? "none needed: the repetition does not pay"
                             : isinf(s->cost) ? "not achievable with the catalogue"
                                              : picks;
            nb co = eur(s->cost);
            const char *row[6] = {m->targets[s->target].id, vecs, pk, co.b, pre, resp};
            w_row(w, row, 6, false);
        }
        w_tend(w);
    }
    if (w->fmt == MG_RISK_FMT_HTML)
        fputs("</body></html>\n", w->f);
}

/* ---- JSON ------------------------------------------------------------------------ */
static void js(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void js_verdict(FILE *f, const mg_risk_result *r)
{
    fprintf(f, "{\"secure\":%s,\"insecure\":%zu,\"min_margin_eur\":", r->secure ? "true" : "false",
            r->n_insecure);
    mg_json_num(f, r->min_margin);
    fputs(",\"secure_until\":", f);
    mg_json_num(f, isinf(r->secure_until) ? r->secure_until : floor(r->secure_until));
    fputs(",\"residual_eur\":", f);
    mg_json_num(f, r->residual);
    fputc('}', f);
}

static void write_json(FILE *o, const char *workdir, const char *model_path,
                       const mg_risk_fleet *f, const mg_risk_observed *obs, size_t n_obs,
                       const mg_risk_result *b, const mg_risk_result *a, const stopres *st,
                       size_t n_st)
{
    const mg_risk_catalogue *c = a->cat;
    const mg_risk_model *m = a->model;
    fputs("{\"workdir\":", o);
    js(o, workdir);
    fputs(",\"model\":", o);
    if (model_path)
        js(o, model_path);
    else
        fputs("null", o);
    fprintf(o, ",\"window\":{\"days\":");
    mg_json_num(o, f->days);
    fprintf(o, ",\"since\":%lld,\"now\":%lld},\"year\":", (long long)f->since, (long long)f->now);
    mg_json_num(o, a->year);
    fprintf(o, ",\"seed\":%llu,\"draws\":%u", (unsigned long long)a->seed, a->draws);
    fputs(",\"verdict\":{\"without_evidence\":", o);
    js_verdict(o, b);
    fputs(",\"with_evidence\":", o);
    js_verdict(o, a);
    fprintf(o, "},\"fleet\":{\"devices\":%llu,\"quarantined\":%llu,\"revoked\":%llu,"
               "\"mac_bits\":%u,\"shared_keys\":%llu,\"shared_max\":%llu,\"fleet_wide_key\":%s,"
               "\"policy\":%s,\"policy_rules\":%zu,\"detector\":%s,\"ttd_median_s\":",
            (unsigned long long)f->devices, (unsigned long long)f->quarantined,
            (unsigned long long)f->revoked, f->mac_bits, (unsigned long long)f->shared_keys,
            (unsigned long long)f->shared_max, f->fleet_wide_key ? "true" : "false",
            f->policy ? "true" : "false", f->policy_rules, f->detector ? "true" : "false");
    mg_json_num(o, f->ttd_median_s);
    fputs(",\"classes\":[", o);
    for (size_t i = 0; i < f->n_cls; i++) {
        const mg_risk_fleet_class *k = &f->cls[i];
        fputs(i ? ",{\"class\":" : "{\"class\":", o);
        js(o, k->name);
        fprintf(o, ",\"devices\":%llu,\"quarantined\":%llu,\"revoked\":%llu,\"sms\":%llu,"
                   "\"ip\":%llu,\"keys\":{",
                (unsigned long long)k->devices, (unsigned long long)k->quarantined,
                (unsigned long long)k->revoked, (unsigned long long)k->sms,
                (unsigned long long)k->ip);
        for (int q = 0; q < MG_RISK_FLEET_ALGS; q++)
            fprintf(o, "%s\"%s\":%llu", q ? "," : "", alg_name[q], (unsigned long long)k->keys[q]);
        fprintf(o, "},\"no_keys\":%llu,\"shared\":%llu,\"certificates\":%llu,"
                   "\"cert_keys\":{\"ec\":%llu,\"ed25519\":%llu,\"rsa\":%llu,\"other\":%llu},"
                   "\"cert_bits\":",
                (unsigned long long)k->no_keys, (unsigned long long)k->shared,
                (unsigned long long)k->certs, (unsigned long long)k->cert_ec,
                (unsigned long long)k->cert_ed25519, (unsigned long long)k->cert_rsa,
                (unsigned long long)k->cert_other);
        mg_json_num(o, k->cert_bits);
        fprintf(o, ",\"signed_required\":%s}", k->signed_required ? "true" : "false");
    }
    fputs("]},\"keys\":[", o);
    int off = vector_find(c, "offline_key_bruteforce");
    bool first = true;
    for (size_t ti = 0; ti < m->n_targets; ti++) {
        int alg;
        double bits;
        if (!link_key(b, (int)ti, &alg, &bits))
            continue;
        const mg_risk_vt *x = off >= 0 ? vt_of(b, off, (int)ti) : NULL;
        const mg_risk_vt *y = off >= 0 ? vt_of(a, off, (int)ti) : NULL;
        if (x == NULL || y == NULL)
            continue;
        char kl[48];
        key_label(kl, sizeof(kl), alg, bits);
        fputs(first ? "{\"target\":" : ",{\"target\":", o);
        first = false;
        js(o, m->targets[ti].id);
        fputs(",\"key\":", o);
        js(o, kl);
        fputs(",\"key_bits\":", o);
        mg_json_num(o, bits);
        fputs(",\"vector\":", o);
        js(o, c->vectors[off].id);
        fputs(",\"secure_until\":", o);
        mg_json_num(o, isinf(x->secure_until) ? x->secure_until : floor(x->secure_until));
        fputs(",\"secure_until_with_evidence\":", o);
        mg_json_num(o, isinf(y->secure_until) ? y->secure_until : floor(y->secure_until));
        fputs(",\"disallowed_since\":", o);
        mg_json_num(o, x->disallowed_since);
        fprintf(o, ",\"weak\":%s}", weak_key(alg, x->disallowed_since, b->year) ? "true" : "false");
    }
    fprintf(o, "],\"evidence\":{\"event_rows\":%llu,\"occurrences\":%llu,\"alert_count\":%llu,"
               "\"dropped_occurrences\":%llu,\"dropped_alerts\":%llu,\"events\":[",
            (unsigned long long)f->ev_rows, (unsigned long long)f->ev_count,
            (unsigned long long)f->al_total, (unsigned long long)f->ev_dropped,
            (unsigned long long)f->al_dropped);
    for (size_t i = 0; i < f->n_ev; i++) {
        const mg_risk_fleet_evgroup *g = &f->ev[i];
        fputs(i ? ",{\"bearer\":" : "{\"bearer\":", o);
        js(o, g->bearer);
        fputs(",\"kind\":", o);
        js(o, g->kind);
        fputs(",\"class\":", o);
        js(o, g->cls);
        fprintf(o, ",\"authenticated\":%s,\"rows\":%llu,\"count\":%llu}",
                g->authenticated ? "true" : "false", (unsigned long long)g->rows,
                (unsigned long long)g->count);
    }
    fputs("],\"alerts\":[", o);
    for (size_t i = 0; i < f->n_al; i++) {
        const mg_risk_fleet_algroup *g = &f->al[i];
        const rule_map *rm = map_rule(g->rule);
        fputs(i ? ",{\"rule\":" : "{\"rule\":", o);
        js(o, g->rule);
        fputs(",\"class\":", o);
        if (g->cls_known)
            js(o, g->cls);
        else
            fputs("null", o);
        fputs(",\"scope\":", o);
        js(o, g->scope);
        fprintf(o, ",\"alerts\":%llu,\"evidence_count\":%llu,\"authenticated\":%s,"
                   "\"first_evidence\":%lld,\"ttd_max_s\":",
                (unsigned long long)g->alerts, (unsigned long long)g->evidence,
                g->authenticated ? "true" : "false", (long long)g->first);
        mg_json_num(o, g->ttd_max_s);
        fputs(",\"vector\":", o);
        if (rm)
            js(o, rm->vector);
        else
            fputs("null", o);
        fputc('}', o);
    }
    fputs("]},\"observed\":[", o);
    first = true;
    for (size_t i = 0; i < n_obs; i++) {
        const mg_risk_observed *ob = &obs[i];
        const mg_risk_vt *x = vt_of(b, ob->vector, ob->target);
        const mg_risk_vt *y = vt_of(a, ob->vector, ob->target);
        if (x == NULL || y == NULL)
            continue;
        fputs(first ? "{\"rule\":" : ",{\"rule\":", o);
        first = false;
        js(o, f->al[ob->alert].rule);
        fputs(",\"vector\":", o);
        js(o, c->vectors[ob->vector].id);
        fputs(",\"target\":", o);
        js(o, m->targets[ob->target].id);
        fprintf(o, ",\"occurrences\":%llu,\"spent_eur\":",
                (unsigned long long)f->al[ob->alert].evidence);
        mg_json_num(o, ob->spent_eur);
        fputs(",\"probability\":", o);
        mg_json_num(o, x->probability);
        fputs(",\"probability_with_evidence\":", o);
        mg_json_num(o, y->probability);
        fprintf(o, ",\"secure\":%s,\"secure_with_evidence\":%s,\"margin_eur\":",
                x->secure ? "true" : "false", y->secure ? "true" : "false");
        mg_json_num(o, x->margin);
        fputs(",\"margin_with_evidence_eur\":", o);
        mg_json_num(o, y->margin);
        fputs(",\"demand_eur\":", o);
        mg_json_num(o, x->demand);
        fputs(",\"demand_with_evidence_eur\":", o);
        mg_json_num(o, y->demand);
        fputc('}', o);
    }
    fputs("],\"changes\":[", o);
    first = true;
    for (size_t i = 0; i < a->n_vts && i < b->n_vts; i++) {
        if (a->vts[i].secure == b->vts[i].secure)
            continue;
        fputs(first ? "{\"vector\":" : ",{\"vector\":", o);
        first = false;
        js(o, c->vectors[a->vts[i].vector].id);
        fputs(",\"target\":", o);
        js(o, m->targets[a->vts[i].target].id);
        fprintf(o, ",\"secure\":%s,\"secure_with_evidence\":%s,\"margin_eur\":",
                b->vts[i].secure ? "true" : "false", a->vts[i].secure ? "true" : "false");
        mg_json_num(o, b->vts[i].margin);
        fputs(",\"margin_with_evidence_eur\":", o);
        mg_json_num(o, a->vts[i].margin);
        fputc('}', o);
    }
    fputs("],\"budgets\":[", o);
    first = true;
    for (size_t i = 0; i < c->n_attackers && i < b->cat->n_attackers; i++) {
        const mg_range *x0 = &b->cat->attackers[i].budget, *x1 = &c->attackers[i].budget;
        if (x0->lo == x1->lo && x0->hi == x1->hi)
            continue;
        fputs(first ? "{\"attacker\":" : ",{\"attacker\":", o);
        first = false;
        js(o, c->attackers[i].id);
        fputs(",\"budget_eur\":[", o);
        mg_json_num(o, x0->lo);
        fputc(',', o);
        mg_json_num(o, x0->hi);
        fputs("],\"budget_with_evidence_eur\":[", o);
        mg_json_num(o, x1->lo);
        fputc(',', o);
        mg_json_num(o, x1->hi);
        fputs("]}", o);
    }
    fputs("],\"stop\":[", o);
    for (size_t k = 0; k < n_st; k++) {
        const stopres *s = &st[k];
        fputs(k ? ",{\"target\":" : "{\"target\":", o);
        js(o, m->targets[s->target].id);
        fputs(",\"vectors\":[", o);
        for (size_t i = 0; i < s->nv; i++) {
            if (i)
                fputc(',', o);
            js(o, c->vectors[s->vec[i]].id);
        }
        fprintf(o, "],\"needed\":%s,\"achievable\":%s,\"measures\":[", s->needed ? "true" : "false",
                isinf(s->cost) ? "false" : "true");
        for (size_t i = 0; i < s->n_pick; i++) {
            if (i)
                fputc(',', o);
            js(o, c->measures[s->pick[i]].id);
        }
        fputs("],\"cost_eur\":", o);
        mg_json_num(o, s->cost);
        fprintf(o, ",\"searched_all\":%s,\"prevents\":[", s->truncated ? "false" : "true");
        for (size_t i = 0; i < s->nv; i++) {
            fputs(i ? ",{\"vector\":" : "{\"vector\":", o);
            js(o, c->vectors[s->vec[i]].id);
            fputs(",\"measure\":", o);
            if (s->prevent[i] >= 0)
                js(o, c->measures[s->prevent[i]].id);
            else
                fputs("null", o);
            fputs(",\"cost_eur\":", o);
            mg_json_num(o, s->prevent_cost[i]);
            fputs(",\"response\":", o);
            js(o, c->vectors[s->vec[i]].response);
            fputc('}', o);
        }
        fputs("]}", o);
    }
    fputs("]}\n", o);
}

mg_err mg_risk_fleet_write(FILE *out, mg_risk_fmt fmt, const char *workdir,
                           const char *model_path, const mg_risk_fleet *f,
                           const mg_risk_observed *obs, size_t n_obs,
                           const mg_risk_result *before, const mg_risk_result *after)
{
    if (out == NULL || f == NULL || before == NULL || after == NULL ||
        before->n_vts != after->n_vts)
        return MG_ERR_ARG;
    stopres *st = calloc(n_obs ? n_obs : 1, sizeof(stopres));
    if (st == NULL)
        return MG_ERR_BUF;
    size_t n_st = build_stops(after, obs, n_obs, st);
    if (fmt == MG_RISK_FMT_JSON) {
        write_json(out, workdir, model_path, f, obs, n_obs, before, after, st, n_st);
    } else {
        wr w = {out, fmt};
        write_human(&w, workdir, model_path, f, obs, n_obs, before, after, st, n_st);
    }
    free(st);
    return ferror(out) ? MG_ERR_BUF : MG_OK;
}
