/*
 * m2mguard audit: the checks (audit.h; docs/audit.md). Read-only: the store
 * is queried, files are stat()ed, certificates parsed; nothing is written.
 */
#include "audit.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "m2mguard/text.h"

#define DAY 86400
#define NAMES_SHOWN 8        /* device names listed in one finding, then "and N more" */
#define DIR_ENTRIES_MAX 200000 /* files looked at in one directory */
#define CONF_LINE_MAX 1024
#define MOSQ_CONF_MAX ((size_t)256 * 1024)

const char *mg_audit_sev_name(mg_audit_sev s)
{
    static const char *const n[] = {"info", "low", "medium", "high", "critical"};
    return (unsigned)s < MG_AUDIT_NSEV ? n[s] : "?";
}

bool mg_audit_sev_parse(const char *s, mg_audit_sev *out)
{
    for (int i = 0; i < MG_AUDIT_NSEV; i++)
        if (strcmp(s, mg_audit_sev_name((mg_audit_sev)i)) == 0) {
            *out = (mg_audit_sev)i;
            return true;
        }
    return false;
}

void mg_audit_cfg_defaults(mg_audit_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->key_max_age_days = 365;
    c->cert_expiry_days = 30;
    c->cert_max_age_days = 730;
    c->ca_expiry_days = 180;
    c->silent_days = 7;
    c->fleet_key_devices = 10;
    c->min_key_bits = 128;
    c->cc_octets = 8;
    c->min_cc_octets = 8;
    c->events_per_s = 200;
    c->retention_days = 90;
    c->min_retention_days = 30;
    c->detect_lag_s = 300;
    c->max_per_check = 50;
}

/* ---- the run -------------------------------------------------------------------- */
typedef struct dev_keys {
    bool has;        /* an ACTIVE version was read */
    int alg;         /* mg_alg */
    size_t len;
    int version;
    int64_t created; /* 0: before schema 5 */
} dev_keys;

typedef struct key_ent {
    uint8_t digest[32];
    uint32_t dev;    /* index into devs */
    uint32_t next;   /* next entry of the same digest + 1; 0 none */
    uint8_t which;   /* 1 KIc, 2 KID */
} key_ent;

typedef struct run {
    mg_store *s;
    const mg_audit_paths *p;
    const mg_audit_cfg *c;
    mg_audit_fn fn;
    void *fctx;
    mg_audit_summary *sum;
    int64_t now;
    char *why;
    size_t cap;
    /* the current check: findings passed on, findings held back */
    size_t shown, held;
    mg_audit_sev held_max;
    const char *check;
    /* devices (id order) and their keys */
    mg_device *devs;
    size_t ndev, capdev;
    dev_keys *keys;
    key_ent *ents;
    size_t nent, capent;
    size_t cur;      /* device whose keys are being listed */
    bool oom;
} run;

static void fmt(char *out, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    if (n < 0)
        out[0] = '\0';
    else if ((size_t)n >= cap && cap > 4)
        memcpy(out + cap - 4, "...", 4); /* a cut text says so */
}

static void begin(run *r, const char *check)
{
    r->check = check;
    r->shown = r->held = 0;
    r->held_max = MG_AUDIT_INFO;
}

/* Counts the finding; passes it on unless the check has passed max_per_check. */
static void emit(run *r, mg_audit_finding *f)
{
    f->check = r->check;
    r->sum->total++;
    r->sum->by_sev[f->severity]++;
    if (r->c->max_per_check > 0 && r->shown >= r->c->max_per_check) {
        r->held++;
        if (f->severity > r->held_max)
            r->held_max = f->severity;
        return;
    }
    r->shown++;
    r->fn(r->fctx, f);
}

static void finding(run *r, mg_audit_sev sev, const char *what, const char *where, const char *why,
                    const char *fix)
{
    mg_audit_finding f;
    memset(&f, 0, sizeof(f));
    f.severity = sev;
    f.secure_until = NAN;
    f.disallowed_since = NAN;
    fmt(f.what, sizeof(f.what), "%s", what);
    fmt(f.where, sizeof(f.where), "%s", where);
    fmt(f.why, sizeof(f.why), "%s", why);
    fmt(f.fix, sizeof(f.fix), "%s", fix);
    emit(r, &f);
}

/* The findings held back by max_per_check, as one more (counted as info). */
static void end(run *r)
{
    if (r->held == 0)
        return;
    mg_audit_finding f;
    memset(&f, 0, sizeof(f));
    f.check = r->check;
    f.severity = MG_AUDIT_INFO;
    f.secure_until = f.disallowed_since = NAN;
    fmt(f.what, sizeof(f.what), "%zu more findings of this check not listed (highest severity %s; "
        "they count in the summary)", r->held, mg_audit_sev_name(r->held_max));
    fmt(f.where, sizeof(f.where), "fleet");
    fmt(f.why, sizeof(f.why), "at most %zu findings per check are listed", r->c->max_per_check);
    fmt(f.fix, sizeof(f.fix), "fix the ones listed and run the audit again, or raise "
        "audit_max_per_check");
    r->sum->total++;
    r->sum->by_sev[MG_AUDIT_INFO]++;
    r->fn(r->fctx, &f);
}

static mg_err store_fail(run *r, const char *what)
{
    fmt(r->why, r->cap, "%s: %s", what, mg_store_errmsg(r->s));
    return MG_ERR_STORE;
}

/* "a, b, c and 5 more" of the devices idx[0..n) */
static void name_list(const run *r, const uint32_t *idx, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && i < NAMES_SHOWN; i++) {
        int k = snprintf(out + used, cap - used, "%s%s", i > 0 ? ", " : "", r->devs[idx[i]].name);
        if (k < 0 || (size_t)k >= cap - used)
            return;
        used += (size_t)k;
    }
    if (n > NAMES_SHOWN)
        (void)snprintf(out + used, cap - used, " and %zu more", n - NAMES_SHOWN);
}

static const mg_device *dev_by_id(const run *r, int64_t id, size_t *idx)
{
    size_t lo = 0, hi = r->ndev;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->devs[mid].id == id) {
            if (idx != NULL)
                *idx = mid;
            return &r->devs[mid];
        }
        if (r->devs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool on_device(void *ctx, const mg_device *d)
{
    run *r = ctx;
    if (r->ndev == r->capdev) {
        size_t nc = r->capdev == 0 ? 256 : r->capdev * 2;
        mg_device *nd = realloc(r->devs, nc * sizeof(*nd));
        if (nd == NULL) {
            r->oom = true;
            return false;
        }
        r->devs = nd;
        r->capdev = nc;
    }
    r->devs[r->ndev++] = *d;
    return true;
}

/* ---- keys: shared, fleet-wide, weak, old --------------------------------------------- */
static bool add_digest(run *r, const uint8_t *key, size_t len, uint8_t which)
{
    if (r->nent == r->capent) {
        size_t nc = r->capent == 0 ? 512 : r->capent * 2;
        key_ent *ne = realloc(r->ents, nc * sizeof(*ne));
        if (ne == NULL)
            return false;
        r->ents = ne;
        r->capent = nc;
    }
    key_ent *e = &r->ents[r->nent];
    memset(e, 0, sizeof(*e));
    unsigned dl = 0;
    if (EVP_Digest(key, len, e->digest, &dl, EVP_sha256(), NULL) != 1 || dl != 32)
        return false;
    e->dev = (uint32_t)r->cur;
    e->which = which;
    r->nent++;
    return true;
}

static bool on_keyset(void *ctx, const mg_keyset *k)
{
    run *r = ctx;
    if (!add_digest(r, k->kic, k->len, 1) || !add_digest(r, k->kid, k->len, 2)) {
        r->oom = true;
        return false;
    }
    if (k->state == MG_KEY_ACTIVE) {
        dev_keys *dk = &r->keys[r->cur];
        dk->has = true;
        dk->alg = (int)k->alg;
        dk->len = k->len;
        dk->version = k->version;
        dk->created = k->created;
    }
    return true;
}

static uint32_t digest_hash(const uint8_t d[32])
{
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

/* Groups equal digests with an open-addressing table of chain heads. */
static mg_err check_shared(run *r)
{
    size_t slots = 16;
    while (slots < r->nent * 2)
        slots *= 2;
    uint32_t *head = calloc(slots, sizeof(*head)); /* entry index + 1 */
    uint32_t *idx = malloc((r->ndev > 0 ? r->ndev : 1) * sizeof(*idx));
    if (head == NULL || idx == NULL) {
        free(head);
        free(idx);
        fmt(r->why, r->cap, "out of memory");
        return MG_ERR_BUF;
    }
    for (size_t i = 0; i < r->nent; i++) {
        size_t h = digest_hash(r->ents[i].digest) & (slots - 1);
        while (head[h] != 0 &&
               CRYPTO_memcmp(r->ents[head[h] - 1].digest, r->ents[i].digest, 32) != 0)
            h = (h + 1) & (slots - 1);
        r->ents[i].next = head[h]; /* prepend: a device's entries stay together */
        head[h] = (uint32_t)(i + 1);
    }
    begin(r, "shared_keys");
    for (size_t h = 0; h < slots; h++) {
        if (head[h] == 0)
            continue;
        size_t n = 0;
        unsigned which = 0;
        uint32_t last = UINT32_MAX;
        for (uint32_t e = head[h]; e != 0; e = r->ents[e - 1].next) {
            const key_ent *k = &r->ents[e - 1];
            which |= k->which;
            if (k->dev != last) {
                bool seen = false; /* entries of one device are adjacent; be sure */
                for (size_t j = 0; j < n; j++)
                    seen = seen || idx[j] == k->dev;
                if (!seen)
                    idx[n++] = k->dev;
                last = k->dev;
            }
        }
        if (n < 2)
            continue;
        /* id order for the text */
        for (size_t a = 1; a < n; a++)
            for (size_t b = a; b > 0 && idx[b - 1] > idx[b]; b--) {
                uint32_t t = idx[b];
                idx[b] = idx[b - 1];
                idx[b - 1] = t;
            }
        const char *kind = which == 1 ? "KIc" : which == 2 ? "KID" : "KIc/KID";
        char where[MG_AUDIT_TEXT_MAX], what[MG_AUDIT_TEXT_MAX];
        name_list(r, idx, n, where, sizeof(where));
        bool fleet = n > (size_t)r->c->fleet_key_devices;
        mg_audit_finding f;
        memset(&f, 0, sizeof(f));
        f.secure_until = f.disallowed_since = NAN;
        if (fleet) {
            f.severity = MG_AUDIT_CRITICAL;
            fmt(what, sizeof(what), "one %s key is used by %zu devices (more than "
                "audit_fleet_key_devices = %d): a fleet-wide key", kind, n, r->c->fleet_key_devices);
            fmt(f.why, sizeof(f.why), "a key read out of any one of these devices forges and "
                "deciphers secured SMS of all %zu", n);
        } else {
            f.severity = MG_AUDIT_HIGH;
            fmt(what, sizeof(what), "%zu devices share one %s key", n, kind);
            fmt(f.why, sizeof(f.why), "whoever extracts the key of one of them can impersonate "
                "the others and command them; per-device keys confine a compromise to one device");
        }
        fmt(f.what, sizeof(f.what), "%s", what);
        fmt(f.where, sizeof(f.where), "devices %s", where);
        fmt(f.fix, sizeof(f.fix), "give each device its own random keys: m2mguard key rotate "
            "DEVICE for each of them (and provision new devices with m2mguard device add)");
        const char *save = r->check;
        r->check = fleet ? "fleet_key" : "shared_keys";
        emit(r, &f);
        r->check = save;
    }
    end(r);
    free(head);
    free(idx);
    return MG_OK;
}

static const char *alg_label(int alg, size_t len)
{
    return mg_store_alg_label((mg_alg)alg, len);
}

static void check_weak(run *r)
{
    begin(r, "weak_algorithm");
    /* one finding per weak (algorithm, length): 3DES2, 3DES3, AES-128/192 */
    static const struct { int alg; size_t len; } cls[] = {
        {MG_ALG_3DES2, 16}, {MG_ALG_3DES3, 24}, {MG_ALG_AES, 16}, {MG_ALG_AES, 24}};
    uint32_t *idx = malloc((r->ndev > 0 ? r->ndev : 1) * sizeof(*idx));
    if (idx == NULL) {
        r->oom = true;
        return;
    }
    for (size_t c = 0; c < sizeof(cls) / sizeof(cls[0]); c++) {
        size_t n = 0;
        for (size_t i = 0; i < r->ndev; i++)
            if (r->keys[i].has && r->keys[i].alg == cls[c].alg && r->keys[i].len == cls[c].len &&
                r->devs[i].status != MG_DEV_REVOKED)
                idx[n++] = (uint32_t)i;
        if (n == 0)
            continue;
        bool tdea = cls[c].alg != MG_ALG_AES;
        size_t bits = tdea ? (cls[c].alg == MG_ALG_3DES2 ? 80 : 112) : cls[c].len * 8;
        if (!tdea && bits >= (size_t)r->c->min_key_bits)
            continue;
        mg_audit_finding f;
        memset(&f, 0, sizeof(f));
        f.secure_until = f.disallowed_since = NAN;
        f.severity = tdea ? MG_AUDIT_HIGH : MG_AUDIT_MEDIUM;
        char names[MG_AUDIT_TEXT_MAX / 2];
        name_list(r, idx, n, names, sizeof(names));
        fmt(f.where, sizeof(f.where), "device%s %s", n == 1 ? "" : "s", names);
        char years[MG_AUDIT_TEXT_MAX] = "the analysis engine was not loaded (no risk catalogue): "
                                        "no secure-until year";
        if (r->c->risk != NULL) {
            const char *pol = NULL;
            double py = INFINITY;
            double y = mg_audit_risk_key_year(r->c->risk, cls[c].alg, cls[c].len, &py, &pol);
            f.secure_until = y;
            f.disallowed_since = py;
            char ys[64];
            if (!isfinite(y))
                fmt(ys, sizeof(ys), "not limited by key length");
            else if (y < 1970.0 + (double)r->now / (365.2425 * DAY))
                fmt(ys, sizeof(ys), "already broken by brute force (%.0f)", y);
            else
                fmt(ys, sizeof(ys), "until %.0f", y);
            if (pol != NULL)
                fmt(years, sizeof(years), "analysis engine: %zu-bit strength secure %s against "
                    "%s (budget %.0f EUR); policy: disallowed from %.0f (%s)", bits, ys,
                    mg_audit_risk_attacker(r->c->risk), mg_audit_risk_budget(r->c->risk), py, pol);
            else
                fmt(years, sizeof(years), "analysis engine: %zu-bit strength secure %s against "
                    "%s (budget %.0f EUR); not disallowed by NIST policy", bits, ys,
                    mg_audit_risk_attacker(r->c->risk), mg_audit_risk_budget(r->c->risk));
        }
        fmt(f.what, sizeof(f.what), "%zu device%s with %s SMS keys (%s)", n, n == 1 ? "" : "s",
            alg_label(cls[c].alg, cls[c].len), years);
        if (tdea)
            fmt(f.why, sizeof(f.why), "triple DES exists only for legacy peers: %zu-bit security "
                "strength and a 64-bit block; NIST has disallowed it for applying protection", bits);
        else
            fmt(f.why, sizeof(f.why), "the policy (audit_min_key_bits = %d) wants stronger keys "
                "than %zu bits", r->c->min_key_bits, bits);
        fmt(f.fix, sizeof(f.fix), "re-provision these devices with AES keys of at least %d bits "
            "(m2mguard device add --alg aes ... on a device that supports it); a rotation keeps "
            "the algorithm", r->c->min_key_bits > 128 ? r->c->min_key_bits : 128);
        emit(r, &f);
    }
    free(idx);
    /* short checksums: the CC length the SMS peers use */
    if (r->c->cc_octets < r->c->min_cc_octets) {
        size_t bits = (size_t)r->c->cc_octets * 8;
        mg_audit_finding f;
        memset(&f, 0, sizeof(f));
        f.secure_until = f.disallowed_since = NAN;
        f.severity = MG_AUDIT_HIGH;
        char cost[MG_AUDIT_TEXT_MAX / 2] = "no risk catalogue: cost not computed";
        if (r->c->risk != NULL) {
            double eur = mg_audit_risk_mac_cost(r->c->risk, (double)bits);
            bool broken = eur <= mg_audit_risk_budget(r->c->risk);
            f.secure_until = broken ? -INFINITY : INFINITY;
            fmt(cost, sizeof(cost), "analysis engine: forging it by trial over SMS costs %.3g EUR, "
                "%s the budget of %s (%.0f EUR): %s", eur, broken ? "within" : "above",
                mg_audit_risk_attacker(r->c->risk), mg_audit_risk_budget(r->c->risk),
                broken ? "broken now and later (online cost does not fall with time)"
                       : "secure for ever against that attacker, if rate limits hold");
        }
        fmt(f.what, sizeof(f.what), "cryptographic checksums of %d octets (%zu bits; %s)",
            r->c->cc_octets, bits, cost);
        fmt(f.where, sizeof(f.where), "configuration audit_cc_octets = %d", r->c->cc_octets);
        fmt(f.why, sizeof(f.why), "a short CC can be guessed online: every forged SMS is one trial");
        fmt(f.fix, sizeof(f.fix), "use the 8-octet CC of the m2mguard profile (AES-CMAC "
            "truncated to 64 bits, docs/sms-profile.md) with every peer");
        emit(r, &f);
    }
    end(r);
}

static void check_key_age(run *r)
{
    begin(r, "key_age");
    int64_t max = (int64_t)r->c->key_max_age_days * DAY;
    for (size_t i = 0; i < r->ndev; i++) {
        const dev_keys *k = &r->keys[i];
        if (!k->has || r->devs[i].status == MG_DEV_REVOKED)
            continue;
        bool legacy = k->created == 0;
        int64_t made = legacy ? r->devs[i].created : k->created;
        if (r->now - made <= max)
            continue;
        char what[MG_AUDIT_TEXT_MAX], where[MG_AUDIT_TEXT_MAX], t[32];
        mg_time_iso(made, t);
        fmt(what, sizeof(what), "active key version %d is %lld days old (made %s%s), older than "
            "audit_key_max_age_days = %d", k->version, (long long)((r->now - made) / DAY), t,
            legacy ? "; the version predates schema 5, so this is the device's creation time"
                   : "", r->c->key_max_age_days);
        fmt(where, sizeof(where), "device %s", r->devs[i].name);
        finding(r, MG_AUDIT_MEDIUM, what, where,
                "the longer a key is used, the more traffic and time an attacker has against it, "
                "and a leaked key stays useful until it is rotated",
                "m2mguard key rotate DEVICE (the device confirms the new version by PoR)");
    }
    end(r);
}

/* ---- certificates ---------------------------------------------------------------------- */
typedef struct cert_dev {
    unsigned valid;    /* VALID and inside its validity */
    unsigned revoked;
    bool compromised;  /* a revoked one said keyCompromise */
} cert_dev;

typedef struct cert_run {
    run *r;
    cert_dev *per;     /* per device index */
} cert_run;

static bool on_cert(void *ctx, const mg_cert *c)
{
    cert_run *cr = ctx;
    run *r = cr->r;
    r->sum->certificates++;
    size_t di = 0;
    const mg_device *d = c->device_id > 0 ? dev_by_id(r, c->device_id, &di) : NULL;
    char where[MG_AUDIT_TEXT_MAX], what[MG_AUDIT_TEXT_MAX], t[32];
    fmt(where, sizeof(where), "certificate %s (CN %s, %s)", c->serial, c->subject,
        c->device_id > 0 ? (d != NULL ? "device" : "deleted device") : "application");
    if (c->status == MG_CERT_REVOKED) {
        if (d != NULL) {
            cr->per[di].revoked++;
            cr->per[di].compromised = cr->per[di].compromised || c->reason == 1;
        }
        return true;
    }
    if (d != NULL && d->status == MG_DEV_REVOKED && c->not_after > r->now) {
        fmt(what, sizeof(what), "device %s is revoked but its certificate is not", d->name);
        finding(r, MG_AUDIT_HIGH, what, where,
                "the broker and EST check the registry, but any other relying party that only "
                "checks the CRL still accepts this certificate",
                "m2mguard ca revoke SERIAL (it rewrites the CRL)");
        return true;
    }
    if (c->not_after <= r->now) {
        mg_time_iso(c->not_after, t);
        fmt(what, sizeof(what), "certificate expired on %s and is still marked valid", t);
        finding(r, MG_AUDIT_LOW, what, where,
                "an expired certificate no longer connects; the owner needs a new one",
                "re-enrol the owner (EST /simplereenroll or m2mguard ca issue)");
        return true;
    }
    if (d != NULL)
        cr->per[di].valid++;
    int64_t left = c->not_after - r->now;
    if (left <= (int64_t)r->c->cert_expiry_days * DAY) {
        mg_time_iso(c->not_after, t);
        fmt(what, sizeof(what), "certificate expires in %lld days (%s), within "
            "audit_cert_expiry_days = %d", (long long)((left + DAY - 1) / DAY), t,
            r->c->cert_expiry_days);
        finding(r, MG_AUDIT_MEDIUM, what, where,
                "when it expires the owner can no longer connect to the broker",
                "re-enrol before it expires (EST /simplereenroll, or m2mguard ca issue)");
    }
    int64_t age = r->now - (c->not_before > 0 ? c->not_before : c->issued);
    if (age > (int64_t)r->c->cert_max_age_days * DAY) {
        fmt(what, sizeof(what), "certificate is %lld days old, older than "
            "audit_cert_max_age_days = %d", (long long)(age / DAY), r->c->cert_max_age_days);
        finding(r, MG_AUDIT_LOW, what, where,
                "a long-lived certificate keeps a key pair in use for years; short validity "
                "limits what a stolen key is worth",
                "re-enrol with a new key pair and a shorter validity (ca.conf default_days)");
    }
    return true;
}

static mg_err check_certs(run *r)
{
    begin(r, "certificates");
    cert_run cr = {r, calloc(r->ndev > 0 ? r->ndev : 1, sizeof(cert_dev))};
    if (cr.per == NULL) {
        fmt(r->why, r->cap, "out of memory");
        return MG_ERR_BUF;
    }
    if (mg_store_cert_list(r->s, 0, 0, false, on_cert, &cr) != MG_OK) {
        free(cr.per);
        return store_fail(r, "certificates");
    }
    for (size_t i = 0; i < r->ndev; i++) {
        const cert_dev *p = &cr.per[i];
        const mg_device *d = &r->devs[i];
        char what[MG_AUDIT_TEXT_MAX], where[MG_AUDIT_TEXT_MAX];
        fmt(where, sizeof(where), "device %s", d->name);
        if (p->valid > 1) {
            fmt(what, sizeof(what), "%u valid certificates at once", p->valid);
            finding(r, MG_AUDIT_MEDIUM, what, where,
                    "one device needs one certificate; a second valid one may be a copy in "
                    "other hands, and revoking one leaves the other working",
                    "keep the newest: m2mguard ca revoke SERIAL --reason superseded for the others");
        }
        if (d->status == MG_DEV_ACTIVE && p->revoked > 0 && p->valid == 0) {
            fmt(what, sizeof(what), "device is ACTIVE but its certificate%s revoked%s and it has "
                "no valid one", p->revoked > 1 ? "s are" : " is",
                p->compromised ? " (keyCompromise)" : "");
            finding(r, p->compromised ? MG_AUDIT_HIGH : MG_AUDIT_MEDIUM, what, where,
                    p->compromised ? "its key was reported compromised, yet the device keeps its "
                                     "SMS keys and its ACTIVE status"
                                   : "the device can no longer connect over IP; it is either "
                                     "retired or waiting for a certificate",
                    p->compromised ? "m2mguard device quarantine DEVICE, rotate its SMS keys, "
                                     "re-enrol it with a new key pair"
                                   : "re-enrol it, or m2mguard device revoke DEVICE if it is gone");
        }
    }
    free(cr.per);
    end(r);
    return MG_OK;
}

/* ---- the CA ----------------------------------------------------------------------------- */
static X509 *read_pem_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static int64_t asn1_time_s(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void check_ca_cert(run *r, const char *dir, const char *file, const char *label)
{
    char path[1200], what[MG_AUDIT_TEXT_MAX], where[MG_AUDIT_TEXT_MAX], t[32];
    fmt(path, sizeof(path), "%s/%s", dir, file);
    if (access(path, F_OK) != 0)
        return;
    fmt(where, sizeof(where), "%s certificate %s", label, path);
    X509 *x = read_pem_cert(path);
    if (x == NULL) {
        finding(r, MG_AUDIT_HIGH, "the CA certificate cannot be read (not PEM?)", where,
                "brokers and EST servers configured with it will fail", "restore it from backup");
        return;
    }
    EVP_PKEY *k = X509_get0_pubkey(x);
    int id = k != NULL ? EVP_PKEY_get_base_id(k) : 0;
    int bits = k != NULL ? EVP_PKEY_get_bits(k) : 0;
    bool weak = (id == EVP_PKEY_RSA && bits < 2048) || (id == EVP_PKEY_EC && bits < 256) ||
                (id != EVP_PKEY_RSA && id != EVP_PKEY_EC && id != EVP_PKEY_ED25519 &&
                 id != EVP_PKEY_ED448);
    if (weak) {
        fmt(what, sizeof(what), "%s CA key is %s of %d bits", label,
            id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "EC" : "of an unexpected type", bits);
        finding(r, MG_AUDIT_HIGH, what, where,
                "RSA below 2048 bits or EC below 256 bits gives less than 112-bit security "
                "(NIST SP 800-57 Part 1 Table 2): whoever breaks it issues trusted certificates",
                "create a new CA (m2mguard ca init --key-type p256 or p384) and re-enrol the fleet");
    }
    int64_t na = asn1_time_s(X509_get0_notAfter(x));
    mg_time_iso(na, t);
    if (na != 0 && na <= r->now) {
        fmt(what, sizeof(what), "%s CA certificate expired on %s", label, t);
        finding(r, MG_AUDIT_CRITICAL, what, where,
                "no certificate it signed verifies any more: devices cannot connect",
                "renew the CA certificate with the same key, or a new CA and re-enrolment");
    } else if (na != 0 && na - r->now <= (int64_t)r->c->ca_expiry_days * DAY) {
        fmt(what, sizeof(what), "%s CA certificate expires in %lld days (%s), within "
            "audit_ca_expiry_days = %d", label, (long long)((na - r->now + DAY - 1) / DAY), t,
            r->c->ca_expiry_days);
        finding(r, MG_AUDIT_HIGH, what, where,
                "when it expires no device certificate under it verifies",
                "renew the CA certificate and distribute the new chain before the date");
    }
    X509_free(x);
}

static void check_ca(run *r)
{
    begin(r, "ca");
    char dflt[1100];
    const char *dir = r->p->ca_dir;
    if (dir == NULL) {
        fmt(dflt, sizeof(dflt), "%s/ca", r->p->dir);
        dir = dflt;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        end(r);
        return; /* no CA: IP devices are not used here */
    }
    check_ca_cert(r, dir, "root.crt", "root");
    check_ca_cert(r, dir, "issuing.crt", "issuing");
    char path[1200], what[MG_AUDIT_TEXT_MAX], where[MG_AUDIT_TEXT_MAX], t[32];
    fmt(path, sizeof(path), "%s/crl.pem", dir);
    fmt(where, sizeof(where), "CRL %s", path);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        char issuing[1200];
        fmt(issuing, sizeof(issuing), "%s/issuing.crt", dir);
        if (access(path, F_OK) != 0 && access(issuing, F_OK) == 0) /* a CA without a CRL */
            finding(r, MG_AUDIT_HIGH, "the CA has no CRL", where,
                    "brokers load crlfile; without it revoked certificates are accepted "
                    "(or the broker does not start)", "m2mguard ca crl");
    } else {
        X509_CRL *crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
        fclose(f);
        int64_t nu = crl != NULL ? asn1_time_s(X509_CRL_get0_nextUpdate(crl)) : 0;
        if (crl == NULL) {
            finding(r, MG_AUDIT_HIGH, "the CRL cannot be read", where,
                    "relying parties cannot check revocation", "m2mguard ca crl");
        } else if (nu == 0) {
            finding(r, MG_AUDIT_MEDIUM, "the CRL has no nextUpdate", where,
                    "RFC 5280 5.1.2.5: conforming CRL issuers MUST include nextUpdate",
                    "m2mguard ca crl");
        } else if (nu < r->now) {
            mg_time_iso(nu, t);
            fmt(what, sizeof(what), "the CRL's nextUpdate (%s) has passed", t);
            finding(r, MG_AUDIT_HIGH, what, where,
                    "a relying party that checks nextUpdate refuses every certificate, one that "
                    "does not keeps using stale revocation data",
                    "m2mguard ca crl (and run it from cron before nextUpdate)");
        }
        X509_CRL_free(crl);
    }
    end(r);
}

/* ---- client ids ------------------------------------------------------------------------ */
typedef struct cid {
    char lower[MG_NAME_MAX];
    char name[MG_NAME_MAX];
    bool app;
} cid;

typedef struct cid_list {
    cid *v;
    size_t n, cap;
    bool oom;
} cid_list;

static bool cid_add(cid_list *l, const char *name, bool app)
{
    if (l->n == l->cap) {
        size_t nc = l->cap == 0 ? 256 : l->cap * 2;
        cid *nv = realloc(l->v, nc * sizeof(*nv));
        if (nv == NULL) {
            l->oom = true;
            return false;
        }
        l->v = nv;
        l->cap = nc;
    }
    cid *c = &l->v[l->n++];
    fmt(c->name, sizeof(c->name), "%s", name);
    for (size_t i = 0; i < sizeof(c->lower); i++) {
        c->lower[i] = (char)tolower((unsigned char)c->name[i]);
        if (c->name[i] == '\0')
            break;
    }
    c->app = app;
    return true;
}

static bool on_app(void *ctx, const mg_app *a) { return cid_add(ctx, a->name, true); }

static int cid_cmp(const void *a, const void *b)
{
    const cid *x = a, *y = b;
    int c = strcmp(x->lower, y->lower);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static mg_err check_client_ids(run *r)
{
    begin(r, "client_ids");
    cid_list l = {0};
    for (size_t i = 0; i < r->ndev && !l.oom; i++)
        (void)cid_add(&l, r->devs[i].name, false);
    if (!l.oom && mg_store_app_list(r->s, on_app, &l) != MG_OK && !l.oom) {
        free(l.v);
        return store_fail(r, "applications");
    }
    if (l.oom) {
        free(l.v);
        fmt(r->why, r->cap, "out of memory");
        return MG_ERR_BUF;
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof(*l.v), cid_cmp);
    for (size_t i = 0; i < l.n;) {
        size_t j = i + 1;
        while (j < l.n && strcmp(l.v[j].lower, l.v[i].lower) == 0)
            j++;
        if (j - i > 1) {
            char where[MG_AUDIT_TEXT_MAX], what[MG_AUDIT_TEXT_MAX];
            size_t used = 0, apps = 0;
            where[0] = '\0';
            for (size_t k = i; k < j; k++) {
                apps += l.v[k].app;
                int w = snprintf(where + used, sizeof(where) - used, "%s%s %s", k > i ? ", " : "",
                                 l.v[k].app ? "application" : "device", l.v[k].name);
                if (w < 0 || (size_t)w >= sizeof(where) - used)
                    break;
                used += (size_t)w;
            }
            fmt(what, sizeof(what), "%zu names differ only in letter case%s", j - i,
                apps > 0 && apps < j - i ? ": an application is named like a device" : "");
            finding(r, MG_AUDIT_MEDIUM, what, where,
                    "the MQTT client id is the name: tools, logs and case-insensitive systems "
                    "(file names on some platforms, operators) confuse them, and a second "
                    "session with the same id takes over the first",
                    "rename one of them (delete and add again with a distinct name)");
        }
        i = j;
    }
    free(l.v);
    end(r);
    return MG_OK;
}

/* ---- silent devices ------------------------------------------------------------------ */
typedef struct seen_list {
    int64_t *last; /* per device index */
    const run *r;
} seen_list;

static bool on_seen(void *ctx, int64_t device_id, int64_t last)
{
    seen_list *s = ctx;
    size_t i;
    if (dev_by_id(s->r, device_id, &i) != NULL)
        s->last[i] = last;
    return true;
}

static mg_err check_silent(run *r)
{
    begin(r, "silent_devices");
    seen_list sl = {calloc(r->ndev > 0 ? r->ndev : 1, sizeof(int64_t)), r};
    if (sl.last == NULL) {
        fmt(r->why, r->cap, "out of memory");
        return MG_ERR_BUF;
    }
    if (mg_store_last_seen(r->s, on_seen, &sl) != MG_OK) {
        free(sl.last);
        return store_fail(r, "last seen");
    }
    int64_t lim = (int64_t)r->c->silent_days * DAY;
    for (size_t i = 0; i < r->ndev; i++) {
        const mg_device *d = &r->devs[i];
        if (d->status != MG_DEV_ACTIVE)
            continue;
        char what[MG_AUDIT_TEXT_MAX], where[MG_AUDIT_TEXT_MAX], t[32];
        fmt(where, sizeof(where), "device %s", d->name);
        if (sl.last[i] == 0) {
            if (r->now - d->created <= lim)
                continue; /* new: give it time */
            mg_time_iso(d->created, t);
            fmt(what, sizeof(what), "ACTIVE device never seen with authenticated traffic (added "
                "%s, more than audit_silent_days = %d ago)", t, r->c->silent_days);
        } else if (r->now - sl.last[i] > lim) {
            mg_time_iso(sl.last[i], t);
            fmt(what, sizeof(what), "ACTIVE device silent for %lld days (last authenticated "
                "event %s; audit_silent_days = %d)", (long long)((r->now - sl.last[i]) / DAY), t,
                r->c->silent_days);
        } else {
            continue;
        }
        finding(r, MG_AUDIT_LOW, what, where,
                "a device that stopped talking may be broken, stolen or replaced; its keys and "
                "certificate still work for whoever holds them",
                "check the device; if it is gone: m2mguard device revoke DEVICE");
    }
    free(sl.last);
    end(r);
    return MG_OK;
}

/* ---- files ------------------------------------------------------------------------------ */
/* One finding when path exists with group/other permission bits. */
static void file_mode(run *r, const char *path, const char *what_file, bool must_exist)
{
    struct stat st;
    char what[MG_AUDIT_TEXT_MAX], where[MG_AUDIT_TEXT_MAX], fix[MG_AUDIT_TEXT_MAX];
    fmt(where, sizeof(where), "file %s", path);
    if (stat(path, &st) != 0) {
        if (must_exist && errno == ENOENT) {
            fmt(what, sizeof(what), "%s is missing", what_file);
            finding(r, MG_AUDIT_MEDIUM, what, where, "the configuration names a file that is not "
                    "there", "correct the path or restore the file");
        }
        return;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) == 0)
        return;
    const char *who = (st.st_mode & 007) != 0 ? "everyone" : "its group";
    fmt(what, sizeof(what), "%s has mode %04o: %s%s by %s", what_file,
        (unsigned)(st.st_mode & 07777), (st.st_mode & 044) != 0 ? "readable" : "",
        (st.st_mode & 022) != 0 ? ((st.st_mode & 044) != 0 ? " and writable" : "writable") : "",
        who);
    fmt(fix, sizeof(fix), "chmod 600 %s (and check who read it: a secret that others could "
        "read must be replaced)", path);
    finding(r, MG_AUDIT_HIGH, what, where,
            "it holds a secret (a key, a password or keys wrapped under it); the system refuses "
            "such files where it reads them itself, other programs may not",
            fix);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Every file in dir whose name ends with suffix (bounded). */
static void dir_files(run *r, const char *dir, const char *suffix, const char *what_file)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < DIR_ENTRIES_MAX) {
        n++;
        if (e->d_name[0] == '.' || !ends_with(e->d_name, suffix) ||
            strcmp(e->d_name, "master.key") == 0) /* checked on its own */
            continue;
        char path[1400], label[MG_AUDIT_TEXT_MAX / 2];
        fmt(path, sizeof(path), "%s/%s", dir, e->d_name);
        fmt(label, sizeof(label), "%s %s", what_file, e->d_name);
        file_mode(r, path, label, false);
    }
    closedir(d);
}

/* keyfile lines of a mosquitto.conf */
static void mosquitto_keys(run *r, const char *conf)
{
    FILE *f = fopen(conf, "r");
    if (f == NULL)
        return;
    char line[CONF_LINE_MAX];
    size_t total = 0;
    while (fgets(line, sizeof(line), f) != NULL && total < MOSQ_CONF_MAX) {
        total += strlen(line);
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "keyfile", 7) != 0 || (p[7] != ' ' && p[7] != '\t'))
            continue;
        p += 7;
        while (*p == ' ' || *p == '\t')
            p++;
        p[strcspn(p, "\r\n")] = '\0';
        size_t n = strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            p[--n] = '\0';
        if (n > 0)
            file_mode(r, p, "mosquitto keyfile", true);
    }
    fclose(f);
}

static void check_files(run *r)
{
    begin(r, "secret_files");
    const char *dir = r->p->dir;
    char path[1200], what[MG_AUDIT_TEXT_MAX], where[MG_AUDIT_TEXT_MAX];
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 022) != 0) {
        fmt(what, sizeof(what), "working directory has mode %04o: writable by %s",
            (unsigned)(st.st_mode & 07777), (st.st_mode & 002) != 0 ? "everyone" : "its group");
        fmt(where, sizeof(where), "directory %s", dir);
        finding(r, MG_AUDIT_HIGH, what, where,
                "whoever writes it can swap the master key, the database or the configuration",
                "chmod 700 on the directory");
    }
    if (!r->p->master_in_token) {
        fmt(path, sizeof(path), "%s/master.key", dir);
        file_mode(r, path, "the master key", false);
    }
    fmt(path, sizeof(path), "%s/m2mguard.db", dir);
    file_mode(r, path, "the database (wrapped keys, counters)", false);
    if (r->p->store_pg && lstat(path, &st) == 0) {
        (void)snprintf(where, sizeof(where), "file %.380s", path); /* fits MG_AUDIT_TEXT_MAX */
        finding(r, MG_AUDIT_LOW, "a SQLite store lies beside the PostgreSQL one (store in "
                "m2mguard.conf)", where,
                "it is not the registry the system uses: an old copy of wrapped keys and counters, "
                "out of date, which backups and copies of the directory carry along",
                "move it to offline storage (or delete it) once PostgreSQL holds everything");
    }
    fmt(path, sizeof(path), "%s/m2mguard.conf", dir);
    file_mode(r, path, "the configuration (SMPP password)", false);
    dir_files(r, dir, ".key", "key file");
    fmt(path, sizeof(path), "%s/devices", dir);
    dir_files(r, path, ".prov", "provisioning file");
    char cadir[1100];
    fmt(cadir, sizeof(cadir), "%s", r->p->ca_dir != NULL ? r->p->ca_dir : "");
    if (cadir[0] == '\0')
        fmt(cadir, sizeof(cadir), "%s/ca", dir);
    dir_files(r, cadir, ".key", "CA key file");
    fmt(path, sizeof(path), "%s/ca.conf", cadir);
    FILE *cf = fopen(path, "r");
    if (cf != NULL) { /* issuing_key = a file elsewhere (a pkcs11: URI is in a token) */
        char line[CONF_LINE_MAX];
        for (int n = 0; n < 64 && fgets(line, sizeof(line), cf) != NULL; n++) {
            char *v = line + strspn(line, " \t");
            if (strncmp(v, "issuing_key", 11) != 0)
                continue;
            v += 11;
            v += strspn(v, " \t");
            if (*v != '=')
                continue;
            v++;
            v += strspn(v, " \t");
            v[strcspn(v, " \t\r\n")] = '\0';
            if (v[0] == '/' && strncmp(v, cadir, strlen(cadir)) != 0)
                file_mode(r, v, "the issuing CA key (ca.conf issuing_key)", true);
        }
        fclose(cf);
    }
    for (size_t i = 0; i < r->p->n_secret_files; i++)
        if (r->p->secret_files[i] != NULL && r->p->secret_files[i][0] != '\0')
            file_mode(r, r->p->secret_files[i], "secret file named in the configuration", true);
    if (r->p->mosquitto_conf != NULL)
        mosquitto_keys(r, r->p->mosquitto_conf);
    end(r);
}

/* ---- event logging ------------------------------------------------------------------------ */
typedef struct first_ev {
    bool got;
    mg_event e;
} first_ev;

static bool on_first(void *ctx, const mg_event *e)
{
    first_ev *f = ctx;
    f->e = *e;
    f->got = true;
    return false;
}

static mg_err check_events(run *r, size_t active)
{
    begin(r, "event_logging");
    char what[MG_AUDIT_TEXT_MAX];
    if (r->c->events_per_s == 0)
        finding(r, MG_AUDIT_HIGH, "the gateway records no events (events_per_s = 0)",
                "configuration events_per_s",
                "detection, alerts, the audit and the risk engine's evidence all read the events: "
                "with none, attacks go unnoticed",
                "remove events_per_s from m2mguard.conf (default 200) or set it above 0");
    if (r->c->retention_days < 0)
        finding(r, MG_AUDIT_LOW, "events are kept for ever (events_retention_days = 0: no age limit)",
                "configuration events_retention_days",
                "an attacker who can make refusals decides how fast the disk fills",
                "set events_retention_days (default 90) and events_max_rows");
    else if (r->c->retention_days > 0 && r->c->retention_days < r->c->min_retention_days) {
        fmt(what, sizeof(what), "events are kept only %ld days (events_retention_days), less than "
            "audit_min_retention_days = %d", r->c->retention_days, r->c->min_retention_days);
        finding(r, MG_AUDIT_MEDIUM, what, "configuration events_retention_days",
                "an incident found late has no evidence left to investigate",
                "raise events_retention_days (default 90)");
    }
    if (r->s == NULL) {
        end(r);
        return MG_OK;
    }
    int64_t rows = 0, max_id = 0;
    if (mg_store_events_stats(r->s, &rows, &max_id) != MG_OK)
        return store_fail(r, "events");
    first_ev newest = {0};
    if (max_id > 0 && mg_store_events(r->s, max_id - 1, 0, 0, on_first, &newest) != MG_OK)
        return store_fail(r, "events");
    if (active > 0 && (!newest.got || (newest.e.last > 0 ? newest.e.last : newest.e.time) <
                                          r->now - DAY)) {
        fmt(what, sizeof(what), "no event in the last day while %zu device%s ACTIVE", active,
            active == 1 ? " is" : "s are");
        finding(r, MG_AUDIT_MEDIUM, what, "the events table",
                "a fleet at work writes auth_ok and PoR events; silence means the gateway or the "
                "broker is not running or not logging",
                "check that m2mguard gateway run / the broker are up and events_per_s > 0");
    }
    if (rows == 0) {
        end(r);
        return MG_OK;
    }
    int64_t cursor = 0;
    mg_err e = mg_store_meta_int(r->s, "detect_cursor", &cursor);
    if (e == MG_ERR_KEY) {
        finding(r, MG_AUDIT_MEDIUM, "the detector has never run (no detect_cursor)",
                "store meta detect_cursor",
                "events are recorded but nobody reads them: attacks are not detected",
                "run m2mguard detect run (as a service)");
    } else if (e != MG_OK) {
        return store_fail(r, "detect_cursor");
    } else if (cursor < max_id) {
        first_ev unread = {0};
        if (mg_store_events(r->s, cursor, 0, 0, on_first, &unread) != MG_OK)
            return store_fail(r, "events");
        int64_t t = unread.got ? unread.e.time : r->now;
        if (r->now - t > r->c->detect_lag_s) {
            char ts[32];
            mg_time_iso(t, ts);
            fmt(what, sizeof(what), "the detector is not keeping up: %lld events unread, the "
                "oldest from %s (more than audit_detect_lag_s = %d s ago)",
                (long long)(max_id - cursor), ts, r->c->detect_lag_s);
            finding(r, MG_AUDIT_MEDIUM, what, "store meta detect_cursor",
                    "the detector's cursor does not move: alerts and responses are late or absent",
                    "check that m2mguard detect run is running");
        }
    }
    end(r);
    return MG_OK;
}

/* ---- the whole audit -------------------------------------------------------------------- */
static mg_err run_store(run *r)
{
    if (mg_store_device_list(r->s, on_device, r) != MG_OK)
        return r->oom ? MG_ERR_BUF : store_fail(r, "devices");
    if (r->oom) {
        fmt(r->why, r->cap, "out of memory");
        return MG_ERR_BUF;
    }
    r->sum->devices = r->ndev;
    r->keys = calloc(r->ndev > 0 ? r->ndev : 1, sizeof(*r->keys));
    if (r->keys == NULL) {
        fmt(r->why, r->cap, "out of memory");
        return MG_ERR_BUF;
    }
    size_t active = 0;
    bool no_master = false;
    begin(r, "shared_keys");
    for (size_t i = 0; i < r->ndev; i++) {
        if (r->devs[i].status == MG_DEV_ACTIVE)
            active++;
        if (r->devs[i].status == MG_DEV_REVOKED || r->devs[i].key_version == 0 || no_master)
            continue;
        r->cur = i;
        mg_err e = mg_store_keys_list(r->s, r->devs[i].id, on_keyset, r);
        if (r->oom) {
            fmt(r->why, r->cap, "out of memory");
            return MG_ERR_BUF;
        }
        if (e == MG_ERR_STATE) {
            no_master = true;
        } else if (e == MG_ERR_AUTH) {
            char where[MG_AUDIT_TEXT_MAX];
            fmt(where, sizeof(where), "device %s", r->devs[i].name);
            finding(r, MG_AUDIT_HIGH, "stored keys fail their integrity check (altered, or "
                    "copied from another device's row)", where,
                    "somebody with write access to the database changed key rows",
                    "investigate; re-provision the device's keys");
        } else if (e != MG_OK && e != MG_ERR_KEY) {
            return store_fail(r, "keys");
        }
    }
    end(r);
    if (no_master) {
        begin(r, "audit");
        finding(r, MG_AUDIT_INFO, "key checks not run: the store was opened without the master "
                "key", "store", "shared keys, weak algorithms and key ages need the keys",
                "run the audit where the master key (or its token) is available");
        end(r);
    } else {
        mg_err e = check_shared(r);
        if (e != MG_OK)
            return e;
        check_weak(r);
        if (r->oom) {
            fmt(r->why, r->cap, "out of memory");
            return MG_ERR_BUF;
        }
        check_key_age(r);
    }
    mg_err e = check_certs(r);
    if (e == MG_OK)
        e = check_client_ids(r);
    if (e == MG_OK)
        e = check_silent(r);
    if (e == MG_OK)
        e = check_events(r, active);
    return e;
}

mg_err mg_audit_run(mg_store *s, const mg_audit_paths *p, const mg_audit_cfg *c, mg_audit_fn fn,
                    void *ctx, mg_audit_summary *sum, char *why, size_t cap)
{
    if (p == NULL || p->dir == NULL || c == NULL || fn == NULL || sum == NULL || why == NULL ||
        cap == 0)
        return MG_ERR_ARG;
    why[0] = '\0';
    memset(sum, 0, sizeof(*sum));
    run r;
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.p = p;
    r.c = c;
    r.fn = fn;
    r.fctx = ctx;
    r.sum = sum;
    r.now = c->now != 0 ? c->now : (int64_t)time(NULL);
    r.why = why;
    r.cap = cap;
    mg_err e = MG_OK;
    if (s != NULL) {
        e = run_store(&r);
    } else {
        begin(&r, "audit");
        finding(&r, MG_AUDIT_INFO, "registry checks not run: the store could not be opened",
                "store", "keys, certificates, client ids, silent devices and events need it",
                "fix what prevented opening it (see the message above) and run again");
        end(&r);
        e = check_events(&r, 0);
    }
    if (e == MG_OK) {
        check_ca(&r);
        check_files(&r);
    }
    if (r.ents != NULL)
        OPENSSL_cleanse(r.ents, r.capent * sizeof(*r.ents)); /* digests of keys */
    free(r.ents);
    free(r.keys);
    free(r.devs);
    return e;
}
