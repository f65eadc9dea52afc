/*
 * m2mguard_mosquitto.so — the Mosquitto 2.0 plugin (plugin API v5) that puts
 * the broker under the m2mguard registry (docs/mosquitto.md):
 *  - BASIC_AUTH: the TLS client certificate (verified by the broker against
 *    cafile + crlfile, require_certificate true) is looked up by its SHA-256
 *    fingerprint; unknown, revoked, outside its dates, or owned by a device
 *    that is not ACTIVE: refused. The username becomes the device's (or the
 *    application's) name; a device's client id must be its name, an
 *    application's must start with its name.
 *  - ACL_CHECK: the MQTT profile (mqtt_profile.h) decides; payload size and
 *    a per-client token bucket on publishes.
 *  - MESSAGE: receipts of commands (m2m/NAME/up/receipt).
 *  - TICK: re-check live sessions when the registry generation moves (kick),
 *    deliver queued commands over MQTT, time out commands without receipt.
 *  - DISCONNECT: session bookkeeping.
 * Fails closed: without a readable store every connection is refused.
 * Security events are bounded: per client and globally per window, the rest
 * is counted and reported as one "mqtt_suppressed" event.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "m2mguard/mqtt_profile.h"
#include "m2mguard/policy.h"
#include "m2mguard/store.h"

#define EV_WINDOW_S 10        /* event budget window */
#define EV_PER_CLIENT 5       /* events per client per window */
#define EV_GLOBAL 100         /* events per window in all */
#define BLOCKS_MAX 4096       /* DROP-blocked addresses (bearer "mqtt") held */
#define DELIVER_BATCH 32      /* commands delivered per tick */
#define STORE_RETRY_S 1       /* how often a failed store open is retried */
#define STORE_BUSY_MS 1000    /* the broker thread waits at most this for a lock */

typedef struct client {
    struct mosquitto *mosq;
    bool is_app;
    int64_t device_id;
    int64_t app_id;
    uint8_t fp[32];
    int64_t not_before, not_after;
    char name[MG_NAME_MAX];
    char role[MG_ROLE_MAX];
    char cid[MG_NAME_MAX];
    double tokens;
    int64_t last_ms;
    int64_t ev_window;
    unsigned ev_count;
    bool kicked;
    bool gone; /* disconnected: kept until the next tick for its will's ACL check */
} client;

typedef struct plugin {
    mosquitto_plugin_id_t *id;
    char store_path[1024];
    char policy_path[1024]; /* "" : policy.yaml beside the store (absent: the empty policy) */
    mg_policy *policy;
    mg_store *s;
    time_t store_retry;
    uint32_t max_payload;
    unsigned rate, burst;
    int64_t cmd_timeout;
    int64_t poll_ms;
    bool sync_full; /* plugin_opt_sync full: every commit synced */
    client *clients;
    size_t n, cap;
    int64_t gen;
    bool gen_known;
    int64_t last_poll_ms;
    int64_t ev_window;
    unsigned ev_count;
    uint64_t ev_suppressed;
    int64_t ev_first_suppressed; /* s: the first of them */
    /* DROP blocks of bearer "mqtt" (store.h mg_block), reloaded when the
     * registry generation moves: at most BLOCKS_MAX, about 300 KiB */
    struct blk { char addr[MG_EVENT_SOURCE_MAX]; int64_t until; } *blk;
    size_t nblk;
} plugin;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mosquitto_log_printf(level, "m2mguard: %s", buf);
}

/* ---- the store (fail closed) ---------------------------------------------- */

static mg_store *store(plugin *p)
{
    if (p->s != NULL)
        return p->s;
    time_t t = time(NULL);
    if (t < p->store_retry)
        return NULL;
    p->store_retry = t + STORE_RETRY_S;
    mg_store *s = NULL;
    mg_err e = mg_store_open(p->store_path, NULL, false, &s);
    if (e != MG_OK) {
        logf_(MOSQ_LOG_ERR, "cannot open the store %s (%s): every connection is refused",
              mg_store_path_label(p->store_path), s != NULL ? mg_store_errmsg(s) : mg_strerror(e));
        mg_store_close(s);
        return NULL;
    }
    if (mg_store_busy_timeout(s, STORE_BUSY_MS) != MG_OK) {
        /* not fatal: the default timeout stays */
    }
    if (mg_store_sync_full(s, p->sync_full) != MG_OK)
        logf_(MOSQ_LOG_WARNING, "cannot set the store's durability: %s", mg_store_errmsg(s));
    p->s = s;
    if (mg_store_session_reset(s) != MG_OK)
        logf_(MOSQ_LOG_WARNING, "session reset failed: %s", mg_store_errmsg(s));
    logf_(MOSQ_LOG_NOTICE, "store %s open", mg_store_path_label(p->store_path));
    return s;
}

/* A store error while serving: log it loudly; the caller refuses. */
static void store_failed(plugin *p, const char *what)
{
    logf_(MOSQ_LOG_ERR, "store error (%s): %s; refusing", what,
          p->s != NULL ? mg_store_errmsg(p->s) : "not open");
}

/* ---- bounded security events ---------------------------------------------- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    if (src != NULL) {
        for (; i + 1 < cap && src[i] != '\0'; i++) {
            if (src[i] >= 0x20 && src[i] < 0x7f)
                dst[i] = src[i];
            else
                dst[i] = '?';
        }
    }
    dst[i] = '\0';
}

/* auth: the fact rests on the client certificate the broker verified (a
 * connected client, or one refused for what its verified certificate says);
 * false before that, and for the broker's own acts (mg_event.authenticated).
 * count > 1: an aggregate (time = first, last = now). */
static void event_write(plugin *p, bool auth, int64_t count, int64_t first, int64_t device_id,
                        const char *source, const char *kind, const char *reason)
{
    mg_store *s = store(p);
    if (s == NULL)
        return;
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.device_id = device_id;
    copy_str(e.bearer, sizeof(e.bearer), "mqtt");
    copy_str(e.source, sizeof(e.source), source);
    copy_str(e.kind, sizeof(e.kind), kind);
    copy_str(e.reason, sizeof(e.reason), reason);
    e.authenticated = auth;
    if (count > 1) {
        e.count = count;
        e.time = first;
        e.last = (int64_t)time(NULL);
    }
    if (mg_store_event_add(s, &e) != MG_OK)
        logf_(MOSQ_LOG_WARNING, "event %s not recorded: %s", kind, mg_store_errmsg(s));
}

static void window_roll(plugin *p)
{
    int64_t w = (int64_t)time(NULL) / EV_WINDOW_S;
    if (w == p->ev_window)
        return;
    p->ev_window = w;
    p->ev_count = 0;
    if (p->ev_suppressed != 0) {
        char r[MG_REASON_MAX];
        snprintf(r, sizeof(r), "%" PRIu64 " events suppressed (budget %d per %d s, %d per client)",
                 p->ev_suppressed, EV_GLOBAL, EV_WINDOW_S, EV_PER_CLIENT);
        /* one aggregate row: count = the events it stands for */
        int64_t n = p->ev_suppressed > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)p->ev_suppressed;
        p->ev_suppressed = 0;
        event_write(p, false, n, p->ev_first_suppressed, 0, "broker", "mqtt_suppressed", r);
    }
}

static void event(plugin *p, client *c, bool auth, int64_t device_id, const char *source,
                  const char *kind, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void event(plugin *p, client *c, bool auth, int64_t device_id, const char *source,
                  const char *kind, const char *fmt, ...)
{
    window_roll(p);
    if (c != NULL) {
        if (c->ev_window != p->ev_window) {
            c->ev_window = p->ev_window;
            c->ev_count = 0;
        }
        if (c->ev_count >= EV_PER_CLIENT) {
            if (p->ev_suppressed++ == 0)
                p->ev_first_suppressed = (int64_t)time(NULL);
            return;
        }
    }
    if (p->ev_count >= EV_GLOBAL) {
        if (p->ev_suppressed++ == 0)
            p->ev_first_suppressed = (int64_t)time(NULL);
        return;
    }
    if (c != NULL)
        c->ev_count++;
    p->ev_count++;
    char r[MG_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r, sizeof(r), fmt, ap);
    va_end(ap);
    logf_(MOSQ_LOG_NOTICE, "%s %s: %s", kind, source != NULL ? source : "", r);
    event_write(p, auth, 1, 0, device_id, source, kind, r);
}

/* ---- clients -------------------------------------------------------------- */

static client *client_find(plugin *p, const struct mosquitto *m)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->clients[i].mosq == m)
            return &p->clients[i];
    return NULL;
}

static client *client_put(plugin *p, struct mosquitto *m)
{
    client *c = client_find(p, m);
    if (c == NULL) {
        if (p->n == p->cap) {
            size_t ncap = p->cap == 0 ? 16 : p->cap * 2;
            client *nc = realloc(p->clients, ncap * sizeof(*nc));
            if (nc == NULL)
                return NULL;
            p->clients = nc;
            p->cap = ncap;
        }
        c = &p->clients[p->n++];
    }
    memset(c, 0, sizeof(*c));
    c->mosq = m;
    return c;
}

static size_t device_live(const plugin *p, int64_t device_id)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!p->clients[i].is_app && !p->clients[i].gone && p->clients[i].device_id == device_id)
            k++;
    return k;
}

/* The connection ended: the device's session ends with its last connection.
 * The entry stays (gone) so that the will, published by the broker after
 * the disconnect, is checked against the same rules; purged on the tick. */
static void client_gone(plugin *p, client *c)
{
    if (c->gone)
        return;
    c->gone = true;
    if (!c->is_app && device_live(p, c->device_id) == 0) {
        int64_t id = c->device_id;
        mg_store *s = store(p);
        if (s != NULL && mg_store_session_set(s, id, false, (int64_t)time(NULL)) != MG_OK)
            logf_(MOSQ_LOG_WARNING, "session end not recorded: %s", mg_store_errmsg(s));
    }
}

static void client_purge(plugin *p, client *c)
{
    client_gone(p, c);
    *c = p->clients[--p->n];
}

static void purge_gone(plugin *p)
{
    for (size_t i = p->n; i-- > 0;)
        if (p->clients[i].gone)
            client_purge(p, &p->clients[i]);
}

/* ---- authentication --------------------------------------------------------- */

/* Is the certificate with this registry row still allowed (at now)? Sets
 * why; MG_OK, MG_ERR_AUTH (refuse) or MG_ERR_STORE. Fills dev / app. */
static mg_err owner_ok(plugin *p, const mg_cert *rec, int64_t now, mg_device *dev, mg_app *app,
                       char *why, size_t cap)
{
    mg_store *s = p->s;
    if (rec->status != MG_CERT_VALID) {
        snprintf(why, cap, "certificate %s is revoked", rec->serial);
        return MG_ERR_AUTH;
    }
    if (now < rec->not_before || now > rec->not_after) {
        snprintf(why, cap, "certificate %s outside its validity", rec->serial);
        return MG_ERR_AUTH;
    }
    if ((rec->device_id > 0) == (rec->app_id > 0)) {
        snprintf(why, cap, "certificate %s has no single owner", rec->serial);
        return MG_ERR_AUTH;
    }
    mg_err e;
    if (rec->device_id > 0) {
        e = mg_store_device_by_id(s, rec->device_id, dev);
        if (e == MG_ERR_KEY) {
            snprintf(why, cap, "owner device of %s deleted", rec->serial);
            return MG_ERR_AUTH;
        }
        if (e != MG_OK)
            return MG_ERR_STORE;
        if (dev->status != MG_DEV_ACTIVE) {
            snprintf(why, cap, "device %s is %s", dev->name, mg_dev_status_name(dev->status));
            return MG_ERR_AUTH;
        }
        if (!(dev->bearers & MG_BEARER_IP)) {
            snprintf(why, cap, "device %s has no IP bearer", dev->name);
            return MG_ERR_AUTH;
        }
    } else {
        e = mg_store_app_by_id(s, rec->app_id, app);
        if (e == MG_ERR_KEY) {
            snprintf(why, cap, "owner application of %s deleted", rec->serial);
            return MG_ERR_AUTH;
        }
        if (e != MG_OK)
            return MG_ERR_STORE;
    }
    return MG_OK;
}

static bool addr_blocked(const plugin *p, const char *addr);

static int on_basic_auth(int ev, void *data, void *ud)
{
    (void)ev;
    plugin *p = ud;
    struct mosquitto_evt_basic_auth *a = data;
    client *stale = client_find(p, a->client);
    if (stale != NULL)
        client_purge(p, stale); /* a freed connection's address reused */
    const char *cid = mosquitto_client_id(a->client);
    const char *addr = mosquitto_client_address(a->client);
    char src[MG_NAME_MAX];
    copy_str(src, sizeof(src), cid != NULL ? cid : "");
    /* Mosquitto 2 calls no plugin before the TLS handshake and the CONNECT
     * packet: basic auth is the first point, before any certificate or store
     * work of ours. */
    if (addr_blocked(p, addr)) {
        event(p, NULL, false, 0, addr, "mqtt_blocked", "connection from a blocked address (client id '%s')",
              src);
        return MOSQ_ERR_AUTH;
    }

    X509 *x = mosquitto_client_certificate(a->client);
    if (x == NULL) {
        event(p, NULL, false, 0, src, "mqtt_auth_fail", "no client certificate (from %s)",
              addr != NULL ? addr : "?");
        return MOSQ_ERR_AUTH;
    }
    uint8_t fp[32];
    unsigned fplen = 0;
    int dg = X509_digest(x, EVP_sha256(), fp, &fplen);
    /* the broker verified the chain; check the dates ourselves too */
    int nb = X509_cmp_current_time(X509_get0_notBefore(x));
    int na = X509_cmp_current_time(X509_get0_notAfter(x));
    X509_free(x);
    if (dg != 1 || fplen != sizeof(fp)) {
        event(p, NULL, false, 0, src, "mqtt_auth_fail", "cannot hash the client certificate");
        return MOSQ_ERR_AUTH;
    }
    if (nb >= 0 || na <= 0) {
        event(p, NULL, false, 0, src, "mqtt_auth_fail", "client certificate %s",
              nb >= 0 ? "not yet valid" : "expired");
        return MOSQ_ERR_AUTH;
    }
    mg_store *s = store(p);
    if (s == NULL) {
        logf_(MOSQ_LOG_ERR, "refusing %s: the store is not available", src);
        return MOSQ_ERR_AUTH;
    }
    mg_cert rec;
    mg_err e = mg_store_cert_by_fp(s, fp, &rec);
    if (e == MG_ERR_KEY) {
        event(p, NULL, false, 0, src, "mqtt_auth_fail", "certificate not in the registry");
        return MOSQ_ERR_AUTH;
    }
    if (e != MG_OK) {
        store_failed(p, "cert_by_fp");
        return MOSQ_ERR_AUTH;
    }
    mg_device dev;
    mg_app app;
    memset(&dev, 0, sizeof(dev));
    memset(&app, 0, sizeof(app));
    char why[MG_REASON_MAX];
    e = owner_ok(p, &rec, (int64_t)time(NULL), &dev, &app, why, sizeof(why));
    if (e == MG_ERR_STORE) {
        store_failed(p, "owner");
        return MOSQ_ERR_AUTH;
    }
    if (e != MG_OK) {
        event(p, NULL, true, rec.device_id, src, "mqtt_auth_fail", "%s", why);
        return MOSQ_ERR_AUTH;
    }
    size_t cl = cid != NULL ? strnlen(cid, MG_NAME_MAX) : 0;
    const char *name = rec.device_id > 0 ? dev.name : app.name;
    if (rec.device_id > 0) {
        if (cid == NULL || cl >= MG_NAME_MAX || strcmp(cid, dev.name) != 0) {
            event(p, NULL, true, dev.id, src, "mqtt_auth_fail",
                  "client id is not the device name %s", dev.name);
            return MOSQ_ERR_AUTH;
        }
    } else {
        size_t nl = strlen(app.name);
        if (cid == NULL || cl >= MG_NAME_MAX || !mg_mqtt_name_valid(cid, cl) ||
            strncmp(cid, app.name, nl) != 0) {
            event(p, NULL, true, 0, src, "mqtt_auth_fail",
                  "client id does not start with the application name %s", app.name);
            return MOSQ_ERR_AUTH;
        }
        /* an application's client id must not take over a device's or
         * another application's session */
        mg_device od;
        mg_app oa;
        mg_err e1 = mg_store_device_by_name(s, cid, &od);
        mg_err e2 = cl == nl ? MG_ERR_KEY : mg_store_app_by_name(s, cid, &oa);
        if ((e1 != MG_OK && e1 != MG_ERR_KEY) || (e2 != MG_OK && e2 != MG_ERR_KEY)) {
            store_failed(p, "client id");
            return MOSQ_ERR_AUTH;
        }
        if (e1 == MG_OK || e2 == MG_OK) {
            event(p, NULL, true, 0, src, "mqtt_auth_fail",
                  "application %s uses the client id of another registry entry", app.name);
            return MOSQ_ERR_AUTH;
        }
    }
    if (mosquitto_set_username(a->client, name) != MOSQ_ERR_SUCCESS) {
        logf_(MOSQ_LOG_ERR, "cannot set the username of %s", src);
        return MOSQ_ERR_AUTH;
    }
    client *c = client_put(p, a->client);
    if (c == NULL) {
        logf_(MOSQ_LOG_ERR, "out of memory: refusing %s", src);
        return MOSQ_ERR_AUTH;
    }
    c->is_app = rec.app_id > 0;
    c->device_id = rec.device_id;
    c->app_id = rec.app_id;
    memcpy(c->fp, fp, sizeof(fp));
    c->not_before = rec.not_before;
    c->not_after = rec.not_after;
    copy_str(c->name, sizeof(c->name), name);
    copy_str(c->role, sizeof(c->role), app.role);
    copy_str(c->cid, sizeof(c->cid), cid);
    c->tokens = (double)p->burst;
    c->last_ms = now_ms();
    /* The session and its event in one transaction: one sync per connection
     * on the broker's only thread, not two. */
    if (mg_store_begin(s) != MG_OK) {
        store_failed(p, "begin");
        client_purge(p, c);
        return MOSQ_ERR_AUTH;
    }
    if (!c->is_app && mg_store_session_set(s, dev.id, true, (int64_t)time(NULL)) != MG_OK) {
        store_failed(p, "session_set");
        mg_store_rollback(s);
        client_purge(p, c);
        return MOSQ_ERR_AUTH;
    }
    event(p, c, true, rec.device_id, src, "mqtt_connect", "%s %s connected with certificate %s",
          c->is_app ? "application" : "device", name, rec.serial);
    if (mg_store_commit(s) != MG_OK) {
        store_failed(p, "commit");
        client_purge(p, c);
        return MOSQ_ERR_AUTH;
    }
    return MOSQ_ERR_SUCCESS;
}

/* ---- access control --------------------------------------------------------- */

static bool bucket_take(plugin *p, client *c)
{
    int64_t t = now_ms();
    double add = (double)(t - c->last_ms) * (double)p->rate / 1000.0;
    c->last_ms = t;
    c->tokens += add;
    if (c->tokens > (double)p->burst)
        c->tokens = (double)p->burst;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}

static const char *acc_name(int acc)
{
    switch (acc) {
    case MOSQ_ACL_READ: return "read";
    case MOSQ_ACL_WRITE: return "publish";
    case MOSQ_ACL_SUBSCRIBE: return "subscribe";
    case MOSQ_ACL_UNSUBSCRIBE: return "unsubscribe";
    default: return "?";
    }
}

static int on_acl_check(int ev, void *data, void *ud)
{
    (void)ev;
    plugin *p = ud;
    struct mosquitto_evt_acl_check *a = data;
    client *c = client_find(p, a->client);
    if (c == NULL || c->kicked || (c->gone && a->access != MOSQ_ACL_WRITE))
        return MOSQ_ERR_ACL_DENIED;
    const char *topic = a->topic != NULL ? a->topic : "";
    size_t tl = strnlen(topic, MG_MQTT_TOPIC_MAX + 1);
    mg_mqtt_access acc;
    switch (a->access) {
    case MOSQ_ACL_READ: acc = MG_MQTT_ACC_READ; break;
    case MOSQ_ACL_WRITE: acc = MG_MQTT_ACC_WRITE; break;
    case MOSQ_ACL_SUBSCRIBE: acc = MG_MQTT_ACC_SUBSCRIBE; break;
    case MOSQ_ACL_UNSUBSCRIBE: acc = MG_MQTT_ACC_UNSUBSCRIBE; break;
    default: return MOSQ_ERR_ACL_DENIED;
    }
    bool ok = c->is_app ? mg_mqtt_acl_app(c->role, acc, topic, tl)
                        : mg_mqtt_acl_device(c->name, acc, topic, tl);
    if (!ok) {
        char shown[64];
        copy_str(shown, sizeof(shown), topic);
        event(p, c, true, c->device_id, c->cid, "mqtt_acl_deny", "%s %s%s denied", acc_name(a->access),
              shown, tl >= sizeof(shown) ? "..." : "");
        return MOSQ_ERR_ACL_DENIED;
    }
    if (acc == MG_MQTT_ACC_WRITE) {
        if (a->payloadlen > p->max_payload) {
            event(p, c, true, c->device_id, c->cid, "mqtt_size", "payload of %" PRIu32
                  " octets over the limit %" PRIu32, a->payloadlen, p->max_payload);
            return MOSQ_ERR_ACL_DENIED;
        }
        if (!bucket_take(p, c)) {
            event(p, c, true, c->device_id, c->cid, "mqtt_rate",
                  "publish dropped: over %u messages/s (burst %u)", p->rate, p->burst);
            return MOSQ_ERR_ACL_DENIED;
        }
    }
    return MOSQ_ERR_SUCCESS;
}

/* ---- device reports (issue 14) --------------------------------------------- */

/* An authenticated fact from device c (its verified TLS client certificate
 * and the ACL: only c publishes on m2m/c/up/...): the tamper alarm on
 * up/telemetry ("tamper" or "tamper <detail>") and an update result on
 * up/update ("<seq> ok" / "<seq> fail <reason>"; docs/update.md) become
 * events with authenticated true. Update results count against the event
 * budget of the client and of the broker (a device may publish 20/s); the
 * tamper alarm does not: a device sends one before it wipes itself, and it
 * must never be suppressed. */
static void device_report(plugin *p, client *c, mg_mqtt_leaf leaf, const void *payload,
                          uint32_t len)
{
    const char *kind = NULL;
    char reason[MG_REASON_MAX];
    const uint8_t *pl = payload;
    if (leaf == MG_MQTT_LEAF_TELEMETRY && pl != NULL && len >= 6 && memcmp(pl, "tamper", 6) == 0 &&
        (len == 6 || pl[6] == ' ')) {
        char d[MG_REASON_MAX - 32];
        size_t n = len - 6 < sizeof(d) ? len - 6 : sizeof(d) - 1;
        memcpy(d, pl + 6, n);
        d[n] = '\0';
        char shown[MG_REASON_MAX - 32];
        copy_str(shown, sizeof(shown), d);
        kind = "tamper";
        snprintf(reason, sizeof(reason), "tamper alarm:%s", shown);
    } else if (leaf == MG_MQTT_LEAF_UPSTATUS) {
        mg_mqtt_ustatus us;
        if (mg_mqtt_ustatus_decode(pl, len, &us) != MG_OK || us.kind == MG_MQTT_UST_NEXT)
            return;
        window_roll(p);
        if (c->ev_window != p->ev_window) {
            c->ev_window = p->ev_window;
            c->ev_count = 0;
        }
        if (c->ev_count >= EV_PER_CLIENT || p->ev_count >= EV_GLOBAL) {
            p->ev_suppressed++;
            return;
        }
        c->ev_count++;
        p->ev_count++;
        kind = us.kind == MG_MQTT_UST_OK ? "update_ok" : "update_failed";
        snprintf(reason, sizeof(reason), "update %" PRId64 "%s%s", us.seq,
                 us.kind == MG_MQTT_UST_OK ? " installed" : ": ", us.detail);
    }
    mg_store *s = kind != NULL ? store(p) : NULL;
    if (s == NULL)
        return;
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.device_id = c->device_id;
    e.authenticated = true;
    copy_str(e.bearer, sizeof(e.bearer), "mqtt");
    copy_str(e.source, sizeof(e.source), c->cid);
    copy_str(e.kind, sizeof(e.kind), kind);
    copy_str(e.reason, sizeof(e.reason), reason);
    logf_(MOSQ_LOG_NOTICE, "%s %s: %s", kind, c->cid, reason);
    if (mg_store_event_add(s, &e) != MG_OK)
        logf_(MOSQ_LOG_WARNING, "event %s not recorded: %s", kind, mg_store_errmsg(s));
}

/* ---- receipts ------------------------------------------------------------- */

static int on_message(int ev, void *data, void *ud)
{
    (void)ev;
    plugin *p = ud;
    struct mosquitto_evt_message *m = data;
    client *c = client_find(p, m->client);
    if (c == NULL || c->is_app || m->topic == NULL)
        return MOSQ_ERR_SUCCESS;
    mg_mqtt_topic t;
    if (mg_mqtt_topic_parse(m->topic, strnlen(m->topic, MG_MQTT_TOPIC_MAX + 1), &t) != MG_OK ||
        strcmp(t.name, c->name) != 0)
        return MOSQ_ERR_SUCCESS;
    if (t.leaf != MG_MQTT_LEAF_RECEIPT) {
        device_report(p, c, t.leaf, m->payload, m->payloadlen);
        return MOSQ_ERR_SUCCESS;
    }
    mg_mqtt_receipt r;
    if (mg_mqtt_receipt_decode(m->payload, m->payloadlen, &r) != MG_OK) {
        event(p, c, true, c->device_id, c->cid, "mqtt_bad_receipt",
              "malformed receipt (%" PRIu32 " octets)", m->payloadlen);
        return MOSQ_ERR_SUCCESS;
    }
    mg_store *s = store(p);
    if (s == NULL)
        return MOSQ_ERR_SUCCESS;
    mg_command cmd;
    mg_err e = mg_store_cmd_get(s, r.id, &cmd);
    if (e != MG_OK && e != MG_ERR_KEY) {
        store_failed(p, "cmd_get");
        return MOSQ_ERR_SUCCESS;
    }
    if (e == MG_ERR_KEY || cmd.device_id != c->device_id) {
        event(p, c, true, c->device_id, c->cid, "mqtt_bad_receipt",
              "receipt for command %" PRId64 " that is not this device's", r.id);
        return MOSQ_ERR_SUCCESS;
    }
    if (strcmp(cmd.bearer, "mqtt") != 0 || cmd.state != MG_CMD_SENT) {
        event(p, c, true, c->device_id, c->cid, "mqtt_bad_receipt",
              "receipt for command %" PRId64 " in state %s on bearer '%s': ignored", r.id,
              mg_cmd_state_name(cmd.state), cmd.bearer);
        return MOSQ_ERR_SUCCESS;
    }
    char detail[MG_REASON_MAX];
    if (r.ok)
        snprintf(detail, sizeof(detail), "receipt ok");
    else
        snprintf(detail, sizeof(detail), "receipt fail: %s", r.detail);
    e = mg_store_cmd_complete(s, r.id, r.ok ? MG_CMD_DONE : MG_CMD_FAILED, detail);
    if (e == MG_ERR_STATE) {
        event(p, c, true, c->device_id, c->cid, "mqtt_bad_receipt",
              "command %" PRId64 " already completed", r.id);
        return MOSQ_ERR_SUCCESS;
    }
    if (e != MG_OK) {
        store_failed(p, "cmd_complete");
        return MOSQ_ERR_SUCCESS;
    }
    event(p, NULL, true, c->device_id, c->cid, r.ok ? "cmd_done" : "cmd_failed",
          "command %" PRId64 " %s", r.id, detail);
    return MOSQ_ERR_SUCCESS;
}

/* ---- the tick ------------------------------------------------------------- */

static void kick(plugin *p, client *c, const char *why)
{
    if (c->kicked)
        return;
    c->kicked = true; /* refused by the ACL until the broker drops it */
    event(p, NULL, false, c->device_id, c->cid, "mqtt_kick", "%s %s disconnected: %s",
          c->is_app ? "application" : "device", c->name, why);
    /* by client id: only this connection (an application may hold several
     * certificates and connections under one username) */
    mosquitto_kick_client_by_clientid(c->cid, false);
}

/* ---- blocked addresses --------------------------------------------------- */

static bool blk_one(void *ctx, const mg_block *b)
{
    plugin *p = ctx;
    if (b->mode != MG_BLOCK_DROP)
        return true; /* THROTTLE is the SMS gateway's; the broker has its per-client rate */
    if (p->nblk >= BLOCKS_MAX)
        return false;
    copy_str(p->blk[p->nblk].addr, sizeof(p->blk[p->nblk].addr), b->source);
    p->blk[p->nblk].until = b->until;
    p->nblk++;
    return true;
}

static bool addr_blocked(const plugin *p, const char *addr)
{
    if (addr == NULL || p->nblk == 0)
        return false;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < p->nblk; i++)
        if (p->blk[i].until > now && strcmp(p->blk[i].addr, addr) == 0)
            return true;
    return false;
}

static void kick(plugin *p, client *c, const char *why);

/* Reloads the DROP blocks and kicks the live connections from a blocked address. */
static void blocks_reload(plugin *p)
{
    if (p->blk == NULL && (p->blk = calloc(BLOCKS_MAX, sizeof(*p->blk))) == NULL) {
        logf_(MOSQ_LOG_ERR, "out of memory: blocked addresses not enforced");
        return;
    }
    p->nblk = 0;
    if (mg_store_blocks(p->s, "mqtt", (int64_t)time(NULL), blk_one, p) != MG_OK) {
        store_failed(p, "blocks");
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        client *c = &p->clients[i];
        if (!c->kicked && !c->gone && addr_blocked(p, mosquitto_client_address(c->mosq)))
            kick(p, c, "its address is blocked");
    }
}

static void recheck_sessions(plugin *p, bool registry_moved)
{
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < p->n; i++) {
        client *c = &p->clients[i];
        if (c->kicked || c->gone)
            continue;
        if (now < c->not_before || now > c->not_after) {
            kick(p, c, "certificate outside its validity");
            continue;
        }
        if (!registry_moved)
            continue;
        mg_cert rec;
        mg_err e = mg_store_cert_by_fp(p->s, c->fp, &rec);
        if (e == MG_ERR_KEY) {
            kick(p, c, "certificate no longer in the registry");
            continue;
        }
        if (e != MG_OK) {
            store_failed(p, "recheck");
            return;
        }
        mg_device dev;
        mg_app app;
        char why[MG_REASON_MAX];
        e = owner_ok(p, &rec, now, &dev, &app, why, sizeof(why));
        if (e == MG_ERR_STORE) {
            store_failed(p, "recheck owner");
            return;
        }
        if (e != MG_OK)
            kick(p, c, why);
    }
}

typedef struct cmd_batch {
    mg_command c[DELIVER_BATCH];
    size_t n;
} cmd_batch;

static bool collect(void *ctx, const mg_command *c)
{
    cmd_batch *b = ctx;
    if (b->n < DELIVER_BATCH)
        b->c[b->n++] = *c;
    return b->n < DELIVER_BATCH;
}

static client *device_client(plugin *p, int64_t device_id)
{
    for (size_t i = 0; i < p->n; i++)
        if (!p->clients[i].is_app && !p->clients[i].kicked && !p->clients[i].gone &&
            p->clients[i].device_id == device_id)
            return &p->clients[i];
    return NULL;
}

static void deliver(plugin *p)
{
    static cmd_batch b;
    b.n = 0;
    if (mg_store_cmd_queued_mqtt(p->s, DELIVER_BATCH, collect, &b) != MG_OK) {
        store_failed(p, "cmd_queued_mqtt");
        return;
    }
    for (size_t i = 0; i < b.n; i++) {
        mg_command *cmd = &b.c[i];
        client *c = device_client(p, cmd->device_id);
        if (c == NULL)
            continue; /* session stale in the store: not ours to send */
        /* The policy first (the same function as the SMS gateway's): a
         * refusal is claimed, FAILED and recorded (cmd_policy_refused). */
        static uint8_t cose[MG_SIGNED_CMD_MAX];
        size_t cose_len = 0;
        mg_err pe = mg_policy_enforce(p->s, p->policy, cmd, "mqtt", (int64_t)time(NULL), cose,
                                      sizeof(cose), &cose_len, NULL, 0);
        if (pe == MG_ERR_AUTH || pe == MG_ERR_STATE)
            continue;
        if (pe != MG_OK) {
            store_failed(p, "policy_enforce");
            return;
        }
        static uint8_t pl[MG_MQTT_SCMD_PAYLOAD_MAX > MG_MQTT_CMD_PAYLOAD_MAX
                              ? MG_MQTT_SCMD_PAYLOAD_MAX
                              : MG_MQTT_CMD_PAYLOAD_MAX];
        size_t len = 0;
        char topic[MG_MQTT_TOPIC_BUF];
        /* a signed command: its COSE bytes on down/scmd; else the text on down/cmd */
        mg_err ee = cose_len > 0 ? mg_mqtt_scmd_encode(pl, sizeof(pl), &len, cmd->id, cose, cose_len)
                                 : mg_mqtt_cmd_encode(pl, sizeof(pl), &len, cmd->id, cmd->text);
        if (ee != MG_OK ||
            mg_mqtt_topic_build(topic, sizeof(topic), NULL, c->name,
                                cose_len > 0 ? MG_MQTT_LEAF_SCMD : MG_MQTT_LEAF_CMD) != MG_OK) {
            if (mg_store_cmd_claim(p->s, cmd->id, "mqtt", 0) == MG_OK &&
                mg_store_cmd_complete(p->s, cmd->id, MG_CMD_FAILED,
                                      "not expressible in the MQTT profile") != MG_OK)
                store_failed(p, "cmd_complete");
            continue;
        }
        mg_err e = mg_store_cmd_claim(p->s, cmd->id, "mqtt", 0);
        if (e == MG_ERR_STATE)
            continue; /* taken by the SMS gateway meanwhile */
        if (e != MG_OK) {
            store_failed(p, "cmd_claim");
            return;
        }
        int rc = mosquitto_broker_publish_copy(c->cid, topic, (int)len, pl, 1, false, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            if (mg_store_cmd_complete(p->s, cmd->id, MG_CMD_FAILED, "broker publish failed") != MG_OK)
                store_failed(p, "cmd_complete");
            continue;
        }
        event(p, NULL, false, cmd->device_id, c->cid, "cmd_sent", "command %" PRId64 " sent on %s",
              cmd->id, topic);
    }
}

typedef struct timeout_batch {
    int64_t id[DELIVER_BATCH];
    int64_t dev[DELIVER_BATCH];
    size_t n;
} timeout_batch;

static bool collect_timeout(void *ctx, const mg_command *c)
{
    timeout_batch *b = ctx;
    if (strcmp(c->bearer, "mqtt") != 0)
        return true;
    b->id[b->n] = c->id;
    b->dev[b->n] = c->device_id;
    b->n++;
    return b->n < DELIVER_BATCH;
}

static void time_out(plugin *p)
{
    timeout_batch b;
    b.n = 0;
    if (mg_store_cmd_sent_before(p->s, (int64_t)time(NULL) - p->cmd_timeout, collect_timeout, &b) !=
        MG_OK) {
        store_failed(p, "cmd_sent_before");
        return;
    }
    for (size_t i = 0; i < b.n; i++) {
        char d[MG_REASON_MAX];
        snprintf(d, sizeof(d), "no receipt within %" PRId64 " s", p->cmd_timeout);
        mg_err e = mg_store_cmd_complete(p->s, b.id[i], MG_CMD_TIMEOUT, d);
        if (e == MG_OK)
            event(p, NULL, false, b.dev[i], "broker", "cmd_timeout", "command %" PRId64 " %s", b.id[i], d);
        else if (e != MG_ERR_STATE)
            store_failed(p, "cmd_complete");
    }
}

static int on_tick(int ev, void *data, void *ud)
{
    (void)ev;
    (void)data;
    plugin *p = ud;
    int64_t t = now_ms();
    if (t - p->last_poll_ms < p->poll_ms)
        return MOSQ_ERR_SUCCESS;
    p->last_poll_ms = t;
    window_roll(p);
    purge_gone(p);
    if (store(p) == NULL)
        return MOSQ_ERR_SUCCESS;
    int64_t gen = 0;
    bool moved = false;
    if (mg_store_registry_gen(p->s, &gen) != MG_OK) {
        store_failed(p, "registry_gen");
        return MOSQ_ERR_SUCCESS;
    }
    if (!p->gen_known || gen != p->gen)
        moved = true;
    p->gen = gen;
    p->gen_known = true;
    recheck_sessions(p, moved);
    if (moved)
        blocks_reload(p);
    deliver(p);
    time_out(p);
    return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int ev, void *data, void *ud)
{
    (void)ev;
    plugin *p = ud;
    struct mosquitto_evt_disconnect *d = data;
    client *c = client_find(p, d->client);
    if (c != NULL)
        client_gone(p, c);
    return MOSQ_ERR_SUCCESS;
}

/* ---- options and life cycle --------------------------------------------------- */

static bool opt_num(const char *key, const char *v, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi) {
        logf_(MOSQ_LOG_ERR, "plugin_opt_%s %s: not an integer in %lld..%lld", key, v, lo, hi);
        return false;
    }
    *out = x;
    return true;
}

#define MG_EXPORT __attribute__((visibility("default")))

MG_EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

static const struct {
    int ev;
    MOSQ_FUNC_generic_callback cb;
} callbacks[] = {
    {MOSQ_EVT_BASIC_AUTH, on_basic_auth}, {MOSQ_EVT_ACL_CHECK, on_acl_check},
    {MOSQ_EVT_MESSAGE, on_message},       {MOSQ_EVT_TICK, on_tick},
    {MOSQ_EVT_DISCONNECT, on_disconnect},
};

MG_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    plugin *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return MOSQ_ERR_NOMEM;
    p->id = identifier;
    p->max_payload = 4096;
    p->rate = 20;
    p->burst = 40;
    p->cmd_timeout = 30;
    p->poll_ms = 500;
    p->sync_full = false;
    bool have_store = false;
    for (int i = 0; i < option_count; i++) {
        const char *k = options[i].key, *v = options[i].value;
        long long x = 0;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "store") == 0) {
            if (strlen(v) >= sizeof(p->store_path)) {
                logf_(MOSQ_LOG_ERR, "plugin_opt_store: path too long");
                free(p);
                return MOSQ_ERR_INVAL;
            }
            copy_str(p->store_path, sizeof(p->store_path), v);
            have_store = true;
            continue;
        }
        if (strcmp(k, "policy") == 0) {
            if (strlen(v) >= sizeof(p->policy_path) || v[0] == '\0') {
                logf_(MOSQ_LOG_ERR, "plugin_opt_policy: empty or too long");
                free(p);
                return MOSQ_ERR_INVAL;
            }
            copy_str(p->policy_path, sizeof(p->policy_path), v);
            continue;
        }
        bool ok = true;
        if (strcmp(k, "max_payload") == 0) {
            ok = opt_num(k, v, 1, 268435455, &x);
            p->max_payload = (uint32_t)x;
        } else if (strcmp(k, "rate") == 0) {
            ok = opt_num(k, v, 1, 100000, &x);
            p->rate = (unsigned)x;
        } else if (strcmp(k, "burst") == 0) {
            ok = opt_num(k, v, 1, 1000000, &x);
            p->burst = (unsigned)x;
        } else if (strcmp(k, "cmd_timeout") == 0) {
            ok = opt_num(k, v, 1, 86400LL * 30, &x);
            p->cmd_timeout = x;
        } else if (strcmp(k, "poll_ms") == 0) {
            ok = opt_num(k, v, 50, 60000, &x);
            p->poll_ms = x;
        } else if (strcmp(k, "sync") == 0) {
            /* normal (default): commits synced at checkpoints; full: every commit */
            ok = strcmp(v, "normal") == 0 || strcmp(v, "full") == 0;
            if (!ok)
                logf_(MOSQ_LOG_ERR, "plugin_opt_sync %s: normal or full", v);
            p->sync_full = strcmp(v, "full") == 0;
        } else {
            logf_(MOSQ_LOG_ERR, "unknown option plugin_opt_%s", k);
            ok = false;
        }
        if (!ok) {
            free(p);
            return MOSQ_ERR_INVAL;
        }
    }
    if (!have_store) {
        logf_(MOSQ_LOG_ERR, "plugin_opt_store (path of m2mguard.db) is required");
        free(p);
        return MOSQ_ERR_INVAL;
    }
    /* The command policy: plugin_opt_policy, else policy.yaml beside the
     * SQLite store (a missing default file is the empty policy; a named one
     * must exist; with PostgreSQL it must be named). Read once, at start: restart the broker after editing it. */
    bool named = p->policy_path[0] != '\0';
    if (!named && mg_store_path_is_pg(p->store_path)) {
        /* no directory beside a connection string: the policy must be named
         * (m2mguard broker config writes it), never silently empty */
        logf_(MOSQ_LOG_ERR, "plugin_opt_policy is required with a PostgreSQL store");
        free(p);
        return MOSQ_ERR_INVAL;
    }
    if (!named) {
        const char *slash = strrchr(p->store_path, '/');
        int dl = slash != NULL ? (int)(slash - p->store_path) : 1;
        const char *dir = slash != NULL ? p->store_path : ".";
        if (snprintf(p->policy_path, sizeof(p->policy_path), "%.*s/policy.yaml", dl, dir) >=
            (int)sizeof(p->policy_path)) {
            logf_(MOSQ_LOG_ERR, "policy path too long");
            free(p);
            return MOSQ_ERR_INVAL;
        }
    }
    {
        char perr[300] = "";
        if (mg_policy_load(p->policy_path, !named, &p->policy, perr, sizeof(perr)) != MG_OK) {
            logf_(MOSQ_LOG_ERR, "command policy: %s", perr);
            free(p);
            return MOSQ_ERR_INVAL;
        }
    }
    for (size_t i = 0; i < sizeof(callbacks) / sizeof(callbacks[0]); i++) {
        int rc = mosquitto_callback_register(identifier, callbacks[i].ev, callbacks[i].cb, NULL, p);
        if (rc != MOSQ_ERR_SUCCESS) {
            logf_(MOSQ_LOG_ERR, "cannot register callback %d: %d", callbacks[i].ev, rc);
            for (size_t j = 0; j < i; j++)
                (void)mosquitto_callback_unregister(identifier, callbacks[j].ev, callbacks[j].cb,
                                                    NULL);
            mg_policy_free(p->policy);
            free(p);
            return rc;
        }
    }
    /* A store that cannot be opened now is retried on every connection and
     * tick; until then everything is refused (fail closed). */
    (void)store(p);
    logf_(MOSQ_LOG_NOTICE,
          "plugin ready: store %s, max_payload %" PRIu32 ", rate %u/s burst %u, cmd_timeout %" PRId64
          " s, poll %" PRId64 " ms, policy %s (%zu rules)",
          mg_store_path_label(p->store_path), p->max_payload, p->rate, p->burst, p->cmd_timeout, p->poll_ms,
          p->policy_path, mg_policy_rule_count(p->policy));
    *userdata = p;
    return MOSQ_ERR_SUCCESS;
}

MG_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    (void)options;
    (void)option_count;
    plugin *p = userdata;
    if (p == NULL)
        return MOSQ_ERR_SUCCESS;
    for (size_t i = 0; i < sizeof(callbacks) / sizeof(callbacks[0]); i++)
        (void)mosquitto_callback_unregister(p->id, callbacks[i].ev, callbacks[i].cb, NULL);
    if (p->s != NULL) {
        if (mg_store_session_reset(p->s) != MG_OK)
            logf_(MOSQ_LOG_WARNING, "session reset failed: %s", mg_store_errmsg(p->s));
        mg_store_close(p->s);
    }
    free(p->clients);
    free(p->blk);
    mg_policy_free(p->policy);
    free(p);
    return MOSQ_ERR_SUCCESS;
}
