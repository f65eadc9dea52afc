/*
 * m2mguard detect — the responder (respond.h): quarantine, throttle/block,
 * rotate, revoke, notify, and the operator's undo. Documented in
 * docs/detect-responses.md ("Responses").
 *
 * Call it outside a store transaction: a key rotation opens its own, and a
 * notification may take up to its timeout, which must not hold the store's
 * write lock.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/text.h"
#include "notify.h"
#include "respond.h"
#ifdef MG_HAVE_CA
#include "m2mguard/ca.h"
#endif

#define RESP_BLOCK_S_DEFAULT 600
#define CRL_KEY_COMPROMISE 1 /* CRLReason keyCompromise (RFC 5280 5.3.1) */

struct mg_responder {
    mg_store *store;
    const char *ca_dir;
    int block_s;
#ifdef MG_HAVE_CA
    mg_ca *ca;
#endif
    mg_notify *notify;
};

mg_err mg_responder_new(const mg_detect_cfg *cfg, mg_responder **out, char *why, size_t cap)
{
    *out = NULL;
    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (cfg == NULL || cfg->store == NULL) {
        mg_say(why, cap, "responder: no store");
        return MG_ERR_ARG;
    }
    mg_responder *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        mg_say(why, cap, "responder: out of memory");
        return MG_ERR_STATE;
    }
    r->store = cfg->store;
    r->ca_dir = cfg->ca_dir;
    r->block_s = cfg->block_s > 0 ? cfg->block_s : RESP_BLOCK_S_DEFAULT;
    mg_err e = MG_OK;
    if (cfg->ca_dir != NULL) {
#ifdef MG_HAVE_CA
        char w[256] = "";
        e = mg_ca_open(cfg->ca_dir, cfg->store, &r->ca, w, sizeof(w));
        if (e != MG_OK)
            mg_say(why, cap, "responder: cannot open the CA %s: %s", cfg->ca_dir, w);
#else
        mg_say(why, cap, "responder: built without the CA; revoke cannot use %s", cfg->ca_dir);
        e = MG_ERR_UNSUPPORTED;
#endif
    }
    if (e == MG_OK)
        e = mg_notify_new(&cfg->notify, &r->notify, why, cap);
    if (e != MG_OK) {
        mg_responder_free(r);
        return e;
    }
    *out = r;
    return MG_OK;
}

void mg_responder_free(mg_responder *r)
{
    if (r == NULL)
        return;
#ifdef MG_HAVE_CA
    mg_ca_close(r->ca);
#endif
    mg_notify_free(r->notify);
    free(r);
}

/* ---- what the alert is about ---------------------------------------------------------- */

typedef struct target {
    bool have_ev;   /* the first evidence event was found */
    mg_event ev;    /* it */
    int64_t device_id;
    char source[MG_EVENT_SOURCE_MAX];
    char bearer[16]; /* of a block: "sms", "mqtt", "est" or "" */
} target;

typedef struct first_ctx {
    int64_t want;
    mg_event *ev;
    bool found;
} first_ctx;

static bool first_fn(void *ctx, const mg_event *e)
{
    first_ctx *c = ctx;
    if (e->id == c->want) {
        *c->ev = *e;
        c->found = true;
    }
    return false; /* ids are > want - 1 in order: the first one is it or it is gone */
}

/* The block bearer of an event's bearer: the daemons that enforce blocks. */
static const char *block_bearer(const char *ev_bearer)
{
    if (strcmp(ev_bearer, "sms") == 0 || strcmp(ev_bearer, "smpp") == 0)
        return "sms";
    if (strcmp(ev_bearer, "mqtt") == 0)
        return "mqtt";
    if (strcmp(ev_bearer, "est") == 0)
        return "est";
    return "";
}

/* Reads the first evidence event; the device is the alert's, else (evidence
 * about a device) the event's; the source the alert's, else the event's; the
 * bearer of a block is the event's (an MSISDN-looking source: sms). */
static mg_err find_target(mg_responder *r, const mg_alert *a, target *t)
{
    memset(t, 0, sizeof(*t));
    if (a->n_evidence > 0 && a->evidence[0] > 0) {
        first_ctx c = {.want = a->evidence[0], .ev = &t->ev};
        mg_err e = mg_store_events(r->store, a->evidence[0] - 1, 0, 0, first_fn, &c);
        if (e != MG_OK)
            return e;
        t->have_ev = c.found;
    }
    t->device_id = a->device_id;
    if (t->device_id == 0 && t->have_ev)
        t->device_id = t->ev.device_id;
    (void)snprintf(t->source, sizeof(t->source), "%.*s",
                   (int)strnlen(a->source, sizeof(a->source)), a->source);
    if (t->source[0] == '\0' && t->have_ev)
        (void)snprintf(t->source, sizeof(t->source), "%.*s",
                       (int)strnlen(t->ev.source, sizeof(t->ev.source)), t->ev.source);
    if (t->have_ev)
        (void)snprintf(t->bearer, sizeof(t->bearer), "%s", block_bearer(t->ev.bearer));
    else if (t->source[0] == '+')
        (void)snprintf(t->bearer, sizeof(t->bearer), "sms");
    return MG_OK;
}

/* One response event: bearer "detect", kind "response_<action>", reason
 * "alert N: <what>", not authenticated (it is the detector's own record). */
static mg_err record(mg_responder *r, const mg_alert *a, const target *t, const char *action,
                     const char *what)
{
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time = mg_now_s();
    ev.device_id = t->device_id;
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "detect");
    (void)snprintf(ev.source, sizeof(ev.source), "%s", t->source);
    (void)snprintf(ev.kind, sizeof(ev.kind), "response_%s", action);
    (void)snprintf(ev.reason, sizeof(ev.reason), "alert %lld: %s", (long long)a->id, what);
    ev.count = 1;
    ev.authenticated = false;
    return mg_store_event_add(r->store, &ev);
}

/* Keeps the most important result: a failure over a refusal over success. */
static void worst(mg_err *rv, mg_err e)
{
    if (e == MG_OK)
        return;
    if (*rv == MG_OK || (*rv == MG_ERR_STATE && e != MG_ERR_STATE))
        *rv = e;
}

/* ---- the actions --------------------------------------------------------------------------- */

static mg_err do_quarantine(mg_responder *r, const mg_alert *a, const target *t, const mg_device *d,
                            char *done, size_t cap)
{
    char what[MG_REASON_MAX];
    if (d->status != MG_DEV_ACTIVE) {
        (void)snprintf(what, sizeof(what), "%s already %s", d->name, mg_dev_status_name(d->status));
        mg_say_add(done, cap, "%s", what);
        return record(r, a, t, "quarantine", what);
    }
    (void)snprintf(what, sizeof(what), "quarantined %s", d->name);
    mg_err e = mg_store_begin(r->store);
    if (e == MG_OK)
        e = mg_store_device_set_status(r->store, d->id, MG_DEV_QUARANTINED);
    if (e == MG_OK)
        e = record(r, a, t, "quarantine", what);
    if (e == MG_OK)
        e = mg_store_commit(r->store);
    if (e != MG_OK) {
        mg_store_rollback(r->store);
        mg_say_add(done, cap, "quarantine of %s failed: %s", d->name, mg_store_errmsg(r->store));
        return MG_ERR_STORE;
    }
    mg_say_add(done, cap, "%s", what);
    return MG_OK;
}

/* Is src the number of a registered device? (a block of it would act on it) */
static bool device_number(mg_store *s, const char *src, char name[MG_NAME_MAX])
{
    mg_device d;
    name[0] = '\0';
    if (!mg_store_msisdn_valid(src) || mg_store_device_by_msisdn(s, src, &d) != MG_OK)
        return false;
    (void)snprintf(name, MG_NAME_MAX, "%s", d.name);
    return true;
}

static mg_err do_block(mg_responder *r, const mg_alert *a, const target *t, bool drop,
                       char *done, size_t cap)
{
    const char *action = drop ? "block" : "throttle";
    char what[MG_REASON_MAX];
    if (t->source[0] == '\0' || t->bearer[0] == '\0') {
        (void)snprintf(what, sizeof(what), "%s not applicable: %s", action,
                       t->source[0] == '\0' ? "no source address"
                                            : "the evidence's bearer cannot be blocked");
        mg_say_add(done, cap, "%s", what);
        return record(r, a, t, action, what);
    }
    char dev[MG_NAME_MAX];
    if (drop && !a->authenticated && strcmp(t->bearer, "sms") == 0 &&
        device_number(r->store, t->source, dev)) {
        /* The rule (detect.h): a spoofable number must not cut a device off. */
        drop = false;
        action = "throttle";
        mg_say_add(done, cap, "block of %s refused (number of device %s, evidence not authenticated)",
            t->source, dev);
    }
    mg_block b;
    memset(&b, 0, sizeof(b));
    (void)snprintf(b.bearer, sizeof(b.bearer), "%s", t->bearer);
    (void)snprintf(b.source, sizeof(b.source), "%s", t->source);
    b.mode = drop ? MG_BLOCK_DROP : MG_BLOCK_THROTTLE;
    b.until = mg_now_s() + r->block_s;
    b.alert_id = a->id;
    (void)snprintf(b.reason, sizeof(b.reason), "alert %lld: %.*s", (long long)a->id,
                   (int)strnlen(a->rule, sizeof(a->rule)), a->rule);
    /* Who enforces what (docs/detect-responses.md): the SMS gateway both
     * modes; the broker plugin DROP only (its per-client rate covers the
     * rest); nobody blocks on EST yet. Said, so nobody relies on it. */
    const char *note = strcmp(b.bearer, "est") == 0 ? " (not enforced by the EST server)"
                       : (!drop && strcmp(b.bearer, "mqtt") == 0)
                           ? " (the broker enforces only drop)"
                           : "";
    (void)snprintf(what, sizeof(what), "%s %s %s for %d s%s", drop ? "blocked" : "throttled",
                   b.bearer, b.source, r->block_s, note);
    mg_err e = mg_store_begin(r->store);
    if (e == MG_OK)
        e = mg_store_block_set(r->store, &b);
    if (e == MG_OK)
        e = record(r, a, t, action, what);
    if (e == MG_OK)
        e = mg_store_commit(r->store);
    if (e != MG_OK) {
        mg_store_rollback(r->store);
        mg_say_add(done, cap, "%s of %s failed: %s", action, b.source, mg_store_errmsg(r->store));
        return MG_ERR_STORE;
    }
    mg_say_add(done, cap, "%s", what);
    return MG_OK;
}

/* The rotation itself (also the console's, mg_responder_rotate): 1 done,
 * 0 not applicable, -1 failed; what says which. */
static int rotate_core(mg_responder *r, const mg_device *d, char *what, size_t cap)
{
    if ((d->bearers & MG_BEARER_SMS) == 0 || d->key_version == 0) {
        (void)snprintf(what, cap, "rotate not applicable: %s has no SMS keys", d->name);
        return 0;
    }
    int64_t cmd = 0;
    int oldv = 0, newv = 0;
    mg_err e = mg_store_key_rotate(r->store, d->id, &cmd, &oldv, &newv);
    if (e != MG_OK) {
        (void)snprintf(what, cap, "rotate of %s failed: %s", d->name, mg_store_errmsg(r->store));
        return -1;
    }
    (void)snprintf(what, cap, "key rotation of %s queued (version %d -> %d, command %lld)",
                   d->name, oldv, newv, (long long)cmd);
    return 1;
}

static mg_err do_rotate(mg_responder *r, const mg_alert *a, const target *t, const mg_device *d,
                        char *done, size_t cap)
{
    char what[MG_REASON_MAX];
    int k = rotate_core(r, d, what, sizeof(what));
    mg_say_add(done, cap, "%s", what);
    mg_err e = record(r, a, t, "rotate", what);
    if (k < 0)
        return MG_ERR_STORE; /* MG_ERR_STATE is kept for the refusal of unauthenticated evidence */
    if (k == 0)
        return e;
    return e == MG_OK ? MG_OK : MG_ERR_STORE;
}

mg_err mg_responder_rotate(mg_responder *r, const mg_device *d, char *what, size_t cap)
{
    int k = rotate_core(r, d, what, cap);
    return k > 0 ? MG_OK : k == 0 ? MG_ERR_STATE : MG_ERR_STORE;
}

typedef struct serials {
    char (*v)[MG_SERIAL_HEX_MAX];
    size_t n, cap;
    bool oom;
} serials;

static bool collect_valid(void *ctx, const mg_cert *c)
{
    serials *s = ctx;
    if (c->status != MG_CERT_VALID)
        return true;
    if (s->n == s->cap) {
        size_t nc = s->cap == 0 ? 8 : s->cap * 2;
        if (nc > 4096) {
            s->oom = true;
            return false;
        }
        void *p = realloc(s->v, nc * sizeof(*s->v));
        if (p == NULL) {
            s->oom = true;
            return false;
        }
        s->v = p;
        s->cap = nc;
    }
    (void)snprintf(s->v[s->n++], MG_SERIAL_HEX_MAX, "%s", c->serial);
    return true;
}

/* The revocation itself (also the console's, mg_responder_revoke): MG_OK,
 * MG_RESP_ERR_IO (the CA failed) or MG_ERR_STORE; what says what was done. */
static mg_err revoke_core(mg_responder *r, const mg_device *d, char *what, size_t wcap)
{
#ifdef MG_HAVE_CA
    if (r->ca != NULL) {
        int count = 0;
        char w[200] = "";
        mg_err e = mg_ca_revoke_owner(r->ca, d->id, 0, CRL_KEY_COMPROMISE, &count, w, sizeof(w));
        if (e != MG_OK)
            (void)snprintf(what, wcap, "revoke of %s failed: %s", d->name, w);
        else if (count == 0)
            (void)snprintf(what, wcap, "revoke: %s has no valid certificate", d->name);
        else
            (void)snprintf(what, wcap,
                           "revoked %d certificate%s of %s (keyCompromise), CRL rewritten", count,
                           count == 1 ? "" : "s", d->name);
        return e != MG_OK ? MG_RESP_ERR_IO : MG_OK;
    }
#endif
    /* No CA directory: the store's rows are marked (the broker plugin and EST
     * refuse the certificates at once); the CRL is rewritten from them at the
     * CA's next revocation or refresh. */
    serials sv = {0};
    mg_err e = mg_store_cert_list(r->store, d->id, 0, false, collect_valid, &sv);
    int n = 0;
    for (size_t i = 0; e == MG_OK && !sv.oom && i < sv.n; i++) {
        mg_err e1 = mg_store_cert_revoke(r->store, sv.v[i], CRL_KEY_COMPROMISE, mg_now_s());
        if (e1 == MG_OK)
            n++;
        else if (e1 != MG_ERR_STATE) /* revoked meanwhile: fine */
            e = e1;
    }
    free(sv.v);
    if (e != MG_OK || sv.oom)
        (void)snprintf(what, wcap, "revoke of %s failed: %s", d->name,
                       sv.oom ? "too many certificates" : mg_store_errmsg(r->store));
    else if (n == 0)
        (void)snprintf(what, wcap, "revoke: %s has no valid certificate", d->name);
    else
        (void)snprintf(what, wcap,
                       "revoked %d certificate%s of %s in the store; CRL not rewritten (no CA "
                       "directory configured)",
                       n, n == 1 ? "" : "s", d->name);
    return (e != MG_OK || sv.oom) ? MG_ERR_STORE : MG_OK;
}

static mg_err do_revoke(mg_responder *r, const mg_alert *a, const target *t, const mg_device *d,
                        char *done, size_t cap)
{
    char what[MG_REASON_MAX];
    mg_err e = revoke_core(r, d, what, sizeof(what));
    mg_say_add(done, cap, "%s", what);
    mg_err e2 = record(r, a, t, "revoke", what);
    return e != MG_OK ? e : e2 != MG_OK ? MG_ERR_STORE : MG_OK;
}

mg_err mg_responder_revoke(mg_responder *r, const mg_device *d, char *what, size_t cap)
{
    return revoke_core(r, d, what, cap);
}

static mg_err do_notify(mg_responder *r, const mg_alert *a, const target *t, const char *so_far,
                        char *done, size_t cap)
{
    /* The alert as the operator will see it: with what was done so far. */
    mg_alert copy = *a;
    (void)snprintf(copy.response, sizeof(copy.response), "%s", so_far);
    char res[MG_REASON_MAX];
    mg_err e = mg_notify_send(r->notify, r->store, &copy, res, sizeof(res));
    mg_say_add(done, cap, "%s", res);
    mg_err e2 = record(r, a, t, "notify", res);
    return e != MG_OK ? e : e2 != MG_OK ? MG_ERR_STORE : MG_OK;
}

mg_err mg_responder_run(mg_responder *r, const mg_alert *a, unsigned actions, char *done,
                        size_t cap)
{
    if (done != NULL && cap > 0)
        done[0] = '\0';
    if (r == NULL || a == NULL || a->id <= 0)
        return MG_ERR_ARG;
    target t;
    mg_err rv = MG_OK;
    mg_err e = find_target(r, a, &t);
    if (e != MG_OK) {
        mg_say_add(done, cap, "evidence unreadable: %s", mg_store_errmsg(r->store));
        return MG_ERR_STORE;
    }

    unsigned on_dev = actions & MG_RESP_ON_DEVICE;
    mg_device d;
    bool have_dev = false;
    if (on_dev != 0 && !a->authenticated) {
        /* Defence in depth: the detector filtered with mg_detect_allowed(). */
        char what[MG_REASON_MAX];
        (void)snprintf(what, sizeof(what), "%s%s%srefused: evidence not authenticated",
                       (on_dev & MG_RESP_QUARANTINE) != 0 ? "quarantine " : "",
                       (on_dev & MG_RESP_ROTATE) != 0 ? "rotate " : "",
                       (on_dev & MG_RESP_REVOKE) != 0 ? "revoke " : "");
        mg_say_add(done, cap, "%s", what);
        const char *kind = (on_dev & MG_RESP_QUARANTINE) != 0 ? "quarantine"
                           : (on_dev & MG_RESP_ROTATE) != 0   ? "rotate"
                                                              : "revoke";
        worst(&rv, record(r, a, &t, kind, what) == MG_OK ? MG_ERR_STATE : MG_ERR_STORE);
        worst(&rv, MG_ERR_STATE);
        on_dev = 0;
    } else if (on_dev != 0) {
        e = t.device_id > 0 ? mg_store_device_by_id(r->store, t.device_id, &d) : MG_ERR_KEY;
        if (e != MG_OK) {
            char what[MG_REASON_MAX];
            (void)snprintf(what, sizeof(what), "device actions not carried out: %s",
                           e == MG_ERR_KEY ? "the alert names no registered device"
                                           : mg_store_errmsg(r->store));
            mg_say_add(done, cap, "%s", what);
            worst(&rv, record(r, a, &t, "quarantine", what) == MG_OK && e == MG_ERR_KEY
                           ? MG_ERR_ARG
                           : MG_ERR_STORE);
            on_dev = 0;
        } else {
            have_dev = true;
        }
    }
    /* Rotation first: it needs an ACTIVE device; its command waits in the
     * queue while the device is quarantined. */
    if (have_dev && (on_dev & MG_RESP_ROTATE) != 0)
        worst(&rv, do_rotate(r, a, &t, &d, done, cap));
    if (have_dev && (on_dev & MG_RESP_REVOKE) != 0)
        worst(&rv, do_revoke(r, a, &t, &d, done, cap));
    if (have_dev && (on_dev & MG_RESP_QUARANTINE) != 0)
        worst(&rv, do_quarantine(r, a, &t, &d, done, cap));
    if ((actions & (MG_RESP_THROTTLE | MG_RESP_BLOCK)) != 0)
        worst(&rv, do_block(r, a, &t, (actions & MG_RESP_BLOCK) != 0, done, cap));
    if ((actions & MG_RESP_NOTIFY) != 0) {
        char so_far[MG_REASON_MAX];
        (void)snprintf(so_far, sizeof(so_far), "%s", done != NULL ? done : "");
        worst(&rv, do_notify(r, a, &t, so_far, done, cap));
    }
    if (done != NULL && cap > 0 && done[0] == '\0')
        mg_say_add(done, cap, "none");
    return rv;
}

/* ---- undo ----------------------------------------------------------------------------------- */

typedef struct undo_ctx {
    int64_t alert;
    char prefix[40];
    bool quarantined, rotated, revoked;
} undo_ctx;

static bool undo_scan(void *ctx, const mg_event *e)
{
    undo_ctx *u = ctx;
    if (strcmp(e->bearer, "detect") != 0 || strncmp(e->reason, u->prefix, strlen(u->prefix)) != 0)
        return true;
    const char *what = e->reason + strlen(u->prefix);
    if (strcmp(e->kind, "response_quarantine") == 0 && strncmp(what, "quarantined ", 12) == 0)
        u->quarantined = true;
    else if (strcmp(e->kind, "response_rotate") == 0 && strncmp(what, "key rotation ", 13) == 0)
        u->rotated = true;
    else if (strcmp(e->kind, "response_revoke") == 0 && strncmp(what, "revoked ", 8) == 0)
        u->revoked = true;
    return true;
}

typedef struct blocks_ctx {
    int64_t alert;
    mg_block v[16];
    size_t n;
} blocks_ctx;

static bool blocks_of(void *ctx, const mg_block *b)
{
    blocks_ctx *c = ctx;
    if (b->alert_id == c->alert && c->n < sizeof(c->v) / sizeof(c->v[0]))
        c->v[c->n++] = *b;
    return true;
}

mg_err mg_responder_undo(mg_responder *r, const mg_alert *a, char *done, size_t cap)
{
    if (done != NULL && cap > 0)
        done[0] = '\0';
    if (r == NULL || a == NULL || a->id <= 0)
        return MG_ERR_ARG;
    target t;
    mg_err rv = MG_OK;
    if (find_target(r, a, &t) != MG_OK) {
        mg_say_add(done, cap, "evidence unreadable: %s", mg_store_errmsg(r->store));
        return MG_ERR_STORE;
    }
    undo_ctx u = {.alert = a->id};
    (void)snprintf(u.prefix, sizeof(u.prefix), "alert %lld: ", (long long)a->id);
    if (t.device_id > 0) {
        int64_t since = a->first_evidence > 0 ? a->first_evidence : 0;
        if (mg_store_events(r->store, 0, t.device_id, since, undo_scan, &u) != MG_OK) {
            mg_say_add(done, cap, "responses unreadable: %s", mg_store_errmsg(r->store));
            return MG_ERR_STORE;
        }
    }
    mg_device d;
    if (u.quarantined) {
        mg_err e = mg_store_device_by_id(r->store, t.device_id, &d);
        if (e == MG_ERR_KEY) {
            mg_say_add(done, cap, "quarantined device %lld no longer exists", (long long)t.device_id);
        } else if (e != MG_OK) {
            mg_say_add(done, cap, "device unreadable: %s", mg_store_errmsg(r->store));
            worst(&rv, MG_ERR_STORE);
        } else if (d.status != MG_DEV_QUARANTINED) {
            mg_say_add(done, cap, "%s is %s now: not changed", d.name, mg_dev_status_name(d.status));
        } else if (mg_store_device_set_status(r->store, d.id, MG_DEV_ACTIVE) != MG_OK) {
            mg_say_add(done, cap, "re-activation of %s failed: %s", d.name, mg_store_errmsg(r->store));
            worst(&rv, MG_ERR_STORE);
        } else {
            mg_say_add(done, cap, "re-activated %s", d.name);
        }
    }
    blocks_ctx bc = {.alert = a->id};
    if (mg_store_blocks(r->store, NULL, mg_now_s(), blocks_of, &bc) != MG_OK) {
        mg_say_add(done, cap, "blocks unreadable: %s", mg_store_errmsg(r->store));
        worst(&rv, MG_ERR_STORE);
    }
    for (size_t i = 0; i < bc.n; i++) {
        mg_err e = mg_store_block_clear(r->store, bc.v[i].bearer, bc.v[i].source);
        if (e == MG_OK || e == MG_ERR_KEY) {
            mg_say_add(done, cap, "cleared the %s of %s %s",
                bc.v[i].mode == MG_BLOCK_DROP ? "block" : "throttle", bc.v[i].bearer,
                bc.v[i].source);
        } else {
            mg_say_add(done, cap, "clearing %s %s failed: %s", bc.v[i].bearer, bc.v[i].source,
                mg_store_errmsg(r->store));
            worst(&rv, MG_ERR_STORE);
        }
    }
    if (u.rotated)
        mg_say_add(done, cap, "key rotation not undone (the new key is the way forward)");
    if (u.revoked)
        mg_say_add(done, cap, "revocation not undone (re-enrol the device)");
    if (done != NULL && cap > 0 && done[0] == '\0')
        mg_say_add(done, cap, "nothing to undo");
    char what[MG_REASON_MAX];
    (void)snprintf(what, sizeof(what), "undo: %s", done != NULL ? done : "");
    if (record(r, a, &t, "undo", what) != MG_OK)
        worst(&rv, MG_ERR_STORE);
    return rv;
}
