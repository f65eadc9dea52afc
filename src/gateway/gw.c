/* The gateway core: see gw.h. Host code: allocates, checks every result. */
#include "gw.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "m2mguard/smpp.h"
#include "m2mguard/tpdu.h"

#define PKT_MAX 160
#define DEV_TTL_S 1 /* status and key version are re-read from the store this often */

typedef struct dev_entry {
    bool used;
    char msisdn[MG_MSISDN_MAX];
    int64_t id;
    char name[MG_NAME_MAX];
    mg_dev_status status;
    uint8_t tar[3];
    int kver;
    bool have_keys;
    mg_key kic, kid;
    uint64_t cntr_in; /* highest counter accepted or pending in this batch */
    int64_t loaded;
} dev_entry;

typedef struct pending {
    uint64_t tag;
    bool accepted;
    bool por;          /* the device asked for a PoR */
    int64_t device_id;
    char device[MG_NAME_MAX];
    char source[MG_MSISDN_MAX];
    mg_ota_cmd cmd;
    mg_ota_keys keys;  /* points into the device entry (stable during a batch) */
    uint8_t pkt[PKT_MAX];
    int64_t inbox_id;
    int kind;           /* P_REFUSED, P_MESSAGE or P_POR */
    int64_t cmd_id;     /* P_POR: the command it answers */
    uint8_t por_status; /* P_POR: the status the device reported */
    bool rotate;        /* the message proves a new key version has arrived */
    int rotate_version;
    mg_key tkic, tkid;  /* a pending key version this message was secured with */
    mg_event ev;
} pending;

struct mg_gw {
    mg_gw_cfg cfg;
    dev_entry *devs;
    size_t ndevs, capdevs;
    pending *batch;
    size_t nbatch;
    mg_gw_stats stats;
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

mg_gw *mg_gw_new(const mg_gw_cfg *cfg)
{
    if (cfg == NULL || cfg->store == NULL || cfg->ack == NULL || cfg->submit == NULL)
        return NULL;
    mg_gw *gw = calloc(1, sizeof(*gw));
    if (gw == NULL)
        return NULL;
    gw->cfg = *cfg;
    if (gw->cfg.group_commit_max == 0)
        gw->cfg.group_commit_max = 256;
    if (gw->cfg.por_timeout_s <= 0)
        gw->cfg.por_timeout_s = 120;
    gw->capdevs = 64;
    gw->devs = calloc(gw->capdevs, sizeof(*gw->devs));
    gw->batch = calloc(gw->cfg.group_commit_max, sizeof(*gw->batch));
    if (gw->devs == NULL || gw->batch == NULL) {
        mg_gw_free(gw);
        return NULL;
    }
    return gw;
}

static void dev_clear(dev_entry *d)
{
    mg_key_clear(&d->kic);
    mg_key_clear(&d->kid);
    memset(d, 0, sizeof(*d));
}

void mg_gw_invalidate(mg_gw *gw)
{
    for (size_t i = 0; i < gw->capdevs; i++)
        if (gw->devs[i].used)
            dev_clear(&gw->devs[i]);
    gw->ndevs = 0;
}

void mg_gw_free(mg_gw *gw)
{
    if (gw == NULL)
        return;
    if (gw->devs != NULL)
        mg_gw_invalidate(gw);
    free(gw->devs);
    if (gw->batch != NULL)
        mg_wipe(gw->batch, gw->cfg.group_commit_max * sizeof(*gw->batch));
    free(gw->batch);
    free(gw);
}

mg_gw_stats mg_gw_get_stats(const mg_gw *gw)
{
    return gw->stats;
}

size_t mg_gw_pending(const mg_gw *gw)
{
    return gw->nbatch;
}

/* Loads (or refreshes) the keys of a device entry from the store. */
static mg_err dev_load_keys(mg_gw *gw, dev_entry *d)
{
    mg_keyset ks;
    mg_key_clear(&d->kic);
    mg_key_clear(&d->kid);
    d->have_keys = false;
    mg_err e = mg_store_keys_get(gw->cfg.store, d->id, 0, &ks);
    if (e == MG_OK) {
        e = mg_key_init(&d->kic, ks.alg, ks.kic, ks.len);
        if (e == MG_OK)
            e = mg_key_init(&d->kid, ks.alg, ks.kid, ks.len);
        if (e == MG_OK) {
            d->kver = ks.version;
            d->have_keys = true;
        }
    }
    mg_keyset_wipe(&ks);
    return e;
}

static void dev_fill(dev_entry *d, const mg_device *dv)
{
    d->id = dv->id;
    snprintf(d->name, sizeof(d->name), "%s", dv->name);
    d->status = dv->status;
    memcpy(d->tar, dv->tar, 3);
    if (dv->cntr_in > d->cntr_in)
        d->cntr_in = dv->cntr_in; /* another gateway may have moved it */
    d->loaded = now_s();
}

static mg_err grow(mg_gw *gw)
{
    size_t cap = gw->capdevs * 2;
    dev_entry *n = calloc(cap, sizeof(*n));
    if (n == NULL)
        return MG_ERR_BUF;
    for (size_t i = 0; i < gw->capdevs; i++) {
        if (!gw->devs[i].used)
            continue;
        size_t j = (size_t)(hash_str(gw->devs[i].msisdn) & (cap - 1));
        while (n[j].used)
            j = (j + 1) & (cap - 1);
        n[j] = gw->devs[i]; /* mg_key backend pointers move with the struct */
    }
    mg_wipe(gw->devs, gw->capdevs * sizeof(*gw->devs));
    free(gw->devs);
    gw->devs = n;
    gw->capdevs = cap;
    return MG_OK;
}

/* The device that owns msisdn, from the cache or the store. *idx is its slot.
 * MG_ERR_KEY: no such device. MG_ERR_STATE: the cache must grow while a
 * batch refers to it (flush, then ask again). */
static mg_err dev_lookup(mg_gw *gw, const char *msisdn, size_t *idx)
{
    size_t mask = gw->capdevs - 1;
    size_t j = (size_t)(hash_str(msisdn) & mask);
    mg_device dv;
    mg_err e;
    while (gw->devs[j].used && strcmp(gw->devs[j].msisdn, msisdn) != 0)
        j = (j + 1) & mask;
    dev_entry *d = &gw->devs[j];
    if (d->used) {
        if (now_s() - d->loaded < DEV_TTL_S) {
            *idx = j;
            return d->id != 0 ? MG_OK : MG_ERR_KEY;
        }
        /* refresh: status, key version, counter; the device may be gone */
        e = mg_store_device_by_msisdn(gw->cfg.store, msisdn, &dv);
        if (e != MG_OK && e != MG_ERR_KEY)
            return e;
        if (e == MG_ERR_KEY || dv.id != d->id) {
            mg_key_clear(&d->kic);
            mg_key_clear(&d->kid);
            d->have_keys = false;
            d->cntr_in = 0;
            d->kver = 0;
            d->id = 0;
        }
        d->loaded = now_s();
        if (e == MG_ERR_KEY)
            return MG_ERR_KEY; /* remembered as unknown for DEV_TTL_S */
        dev_fill(d, &dv);
        if (dv.key_version != d->kver || !d->have_keys)
            (void)dev_load_keys(gw, d);
        *idx = j;
        return MG_OK;
    }
    if ((gw->ndevs + 1) * 2 > gw->capdevs) {
        if (gw->nbatch > 0)
            return MG_ERR_STATE;
        e = grow(gw);
        if (e != MG_OK)
            return e;
        return dev_lookup(gw, msisdn, idx);
    }
    e = mg_store_device_by_msisdn(gw->cfg.store, msisdn, &dv);
    if (e != MG_OK && e != MG_ERR_KEY)
        return e;
    memset(d, 0, sizeof(*d));
    d->used = true;
    snprintf(d->msisdn, sizeof(d->msisdn), "%s", msisdn);
    gw->ndevs++;
    d->loaded = now_s();
    *idx = j;
    if (e == MG_ERR_KEY)
        return MG_ERR_KEY; /* negative entry: floods of unknown senders cost no query */
    dev_fill(d, &dv);
    (void)dev_load_keys(gw, d);
    return MG_OK;
}

/* ---- events --------------------------------------------------------------- */

/* Bounded copy of a NUL-terminated string (always terminates dst). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static void ev_set(mg_event *ev, int64_t device_id, const char *bearer, const char *source,
                   const char *kind, const char *reason)
{
    memset(ev, 0, sizeof(*ev));
    ev->time = now_s();
    ev->device_id = device_id;
    copy_str(ev->bearer, sizeof(ev->bearer), bearer);
    copy_str(ev->source, sizeof(ev->source), source);
    copy_str(ev->kind, sizeof(ev->kind), kind);
    copy_str(ev->reason, sizeof(ev->reason), reason);
}

/* Records an event outside a batch; a failure is reported, not fatal. */
static void ev_store(mg_gw *gw, mg_event *ev)
{
    if (mg_store_event_add(gw->cfg.store, ev) != MG_OK)
        fprintf(stderr, "m2mguard gateway: cannot record event %s: %s\n", ev->kind,
                mg_store_errmsg(gw->cfg.store));
}

void mg_gw_event(mg_gw *gw, const char *bearer, const char *source, const char *kind,
                 const char *reason)
{
    mg_event ev;
    ev_set(&ev, 0, bearer, source, kind, reason);
    ev_store(gw, &ev);
}

/* Event kind for a refused secured packet. */
static const char *kind_of(mg_err e)
{
    switch (e) {
    case MG_ERR_AUTH: return "auth_fail";
    case MG_ERR_CNTR_LOW: return "replay";
    case MG_ERR_CNTR_HIGH:
    case MG_ERR_CNTR_BLOCKED: return "counter_out_of_window";
    case MG_ERR_SECURITY_LEVEL: return "insufficient_security";
    case MG_ERR_KEY: return "unknown_key";
    case MG_ERR_TAR: return "tar_unknown";
    default: return "malformed";
    }
}

/* ---- inbound -------------------------------------------------------------- */

enum { P_REFUSED = 0, P_MESSAGE = 1, P_POR = 2 };

static void refuse(pending *p, int64_t device_id, const char *kind, const char *reason)
{
    p->accepted = false;
    ev_set(&p->ev, device_id, "sms", p->source, kind, reason);
}

int mg_gw_inbound(mg_gw *gw, const char *source, uint8_t esm_class, uint8_t pid, uint8_t dcs,
                  const uint8_t *ud, size_t ud_len, uint64_t tag)
{
    if (gw->nbatch >= gw->cfg.group_commit_max && mg_gw_flush(gw) != MG_OK)
        return MG_ESME_RX_T_APPN; /* the SMSC delivers it again later */
    char src[MG_MSISDN_MAX];
    snprintf(src, sizeof(src), "%s", source ? source : "");
    size_t di = 0;
    mg_err e = dev_lookup(gw, src, &di);
    if (e == MG_ERR_STATE) {
        /* the device cache must grow, and the batch points into it */
        if (mg_gw_flush(gw) != MG_OK)
            return MG_ESME_RX_T_APPN;
        e = dev_lookup(gw, src, &di);
    }
    if (e != MG_OK && e != MG_ERR_KEY)
        return MG_ESME_RX_T_APPN;
    pending *p = &gw->batch[gw->nbatch++];
    memset(p, 0, sizeof(*p));
    p->tag = tag;
    memcpy(p->source, src, sizeof(src));
    if (e == MG_ERR_KEY) {
        refuse(p, 0, "unknown_sender", "no device has this MSISDN");
        return MG_SMPP_DEFER;
    }
    dev_entry *d = &gw->devs[di];
    p->device_id = d->id;
    copy_str(p->device, sizeof(p->device), d->name);
    if (d->status != MG_DEV_ACTIVE) {
        refuse(p, d->id, d->status == MG_DEV_QUARANTINED ? "quarantined" : "revoked",
               "message from a device that is not active");
        return MG_SMPP_DEFER;
    }
    if ((esm_class & MG_SMPP_ESM_UDHI) == 0 || dcs != 0x04 || pid != 0x00) {
        refuse(p, d->id, "insufficient_security", "not a secured SMS (no UDH, or DCS/PID not 04/00)");
        return MG_SMPP_DEFER;
    }
    mg_udh u;
    mg_udh_ie ie;
    e = mg_udh_parse(ud, ud_len, &u);
    if (e != MG_OK) {
        refuse(p, d->id, "malformed", "bad user data header");
        return MG_SMPP_DEFER;
    }
    mg_concat_info ci;
    if (mg_udh_concat(&u, &ci)) {
        refuse(p, d->id, "malformed", "concatenated secured SMS: not accepted by this gateway");
        return MG_SMPP_DEFER;
    }
    if (!d->have_keys) {
        refuse(p, d->id, "unknown_key", "device has no active keys");
        return MG_SMPP_DEFER;
    }
    p->keys.kic = &d->kic;
    p->keys.kid = &d->kid;
    p->keys.kic_index = (uint8_t)d->kver;
    p->keys.kid_index = (uint8_t)d->kver;

    if (mg_udh_find(&u, MG_IEI_RPI, &ie)) {
        /* A proof of receipt for one of our commands (UDH included). */
        if (ud_len > PKT_MAX) {
            refuse(p, d->id, "malformed", "PoR too long");
            return MG_SMPP_DEFER;
        }
        memcpy(p->pkt, ud, ud_len);
        mg_ota_hdr h = {MG_GW_SPI_COMMAND, MG_GW_KI(d->kver), MG_GW_KI(d->kver), {0, 0, 0}, 0, 0};
        mg_ota_rsp r;
        e = mg_ota_rsp_open(&h, &p->keys, p->pkt, ud_len, &r);
        if (e != MG_OK) {
            refuse(p, d->id, "por_auth_fail", mg_strerror(e));
            return MG_SMPP_DEFER;
        }
        mg_command c;
        if (memcmp(r.tar, d->tar, 3) != 0 ||
            mg_store_cmd_by_cntr(gw->cfg.store, d->id, r.cntr, &c) != MG_OK) {
            refuse(p, d->id, "por_unknown", "PoR for no command sent to this device");
            return MG_SMPP_DEFER;
        }
        p->accepted = true;
        p->kind = P_POR;
        p->cmd_id = c.id;
        p->por_status = r.status;
        p->rotate = sscanf(c.text, "key-rotate %d", &p->rotate_version) == 1;
        char reason[MG_REASON_MAX];
        snprintf(reason, sizeof(reason), "command %" PRId64 " '%.60s': %s", c.id, c.text,
                 mg_ota_status_name(r.status));
        ev_set(&p->ev, d->id, "sms", p->source, r.status == MG_POR_OK ? "por_ok" : "por_fail", reason);
        return MG_SMPP_DEFER;
    }
    if (!mg_udh_find(&u, MG_IEI_CPI, &ie) || ud_len - u.len > PKT_MAX) {
        refuse(p, d->id, "insufficient_security", "no secured packet (UDH IE 70)");
        return MG_SMPP_DEFER;
    }
    size_t n = ud_len - u.len;
    memcpy(p->pkt, ud + u.len, n);
    int v = n > 6 ? (int)MG_KI_INDEX(p->pkt[6]) : d->kver;
    if (v != d->kver && v != 0) {
        /* A key version that is not active yet: if it is the one a rotation
         * delivered, a message secured with it proves its arrival (as the
         * PoR would have: the PoR may have been lost). */
        mg_keyset ks;
        if (mg_store_keys_get(gw->cfg.store, d->id, v, &ks) == MG_OK && ks.state == MG_KEY_PENDING &&
            mg_key_init(&p->tkic, ks.alg, ks.kic, ks.len) == MG_OK &&
            mg_key_init(&p->tkid, ks.alg, ks.kid, ks.len) == MG_OK) {
            p->keys.kic = &p->tkic;
            p->keys.kid = &p->tkid;
            p->keys.kic_index = (uint8_t)v;
            p->keys.kid_index = (uint8_t)v;
            p->rotate = true;
            p->rotate_version = v;
        }
        mg_keyset_wipe(&ks);
    }
    e = mg_ota_cmd_open(p->pkt, n, &p->keys, &mg_ota_msl_default, d->cntr_in, &p->cmd);
    if (e == MG_OK && memcmp(p->cmd.hdr.tar, d->tar, 3) != 0) {
        e = MG_ERR_TAR;
        memset(&p->cmd, 0, sizeof(p->cmd));
    }
    if (e != MG_OK) {
        char reason[MG_REASON_MAX];
        snprintf(reason, sizeof(reason), "status %s (%s)", mg_ota_status_name(mg_ota_status_of(e)),
                 mg_strerror(e));
        refuse(p, d->id, kind_of(e), reason);
        return MG_SMPP_DEFER;
    }
    /* Pending: later packets of this batch must be higher still. */
    d->cntr_in = p->cmd.hdr.cntr;
    p->accepted = true;
    p->kind = P_MESSAGE;
    p->por = (p->cmd.hdr.spi & MG_SPI2_POR_MASK) == MG_SPI2_POR_REQUIRED;
    char reason[32];
    snprintf(reason, sizeof(reason), "counter %" PRIu64, p->cmd.hdr.cntr);
    ev_set(&p->ev, d->id, "sms", p->source, "auth_ok", reason);
    return MG_SMPP_DEFER;
}

/* ---- output --------------------------------------------------------------- */

static void json_hex(FILE *f, const uint8_t *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    char buf[2 * 512];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 2 <= sizeof(buf); i++) {
        buf[k++] = d[p[i] >> 4];
        buf[k++] = d[p[i] & 15];
    }
    if (k > 0)
        fwrite(buf, 1, k, f);
}


static void emit(mg_gw *gw, const mg_inbox_msg *m, const char *device, const char *msisdn)
{
    FILE *f = gw->cfg.output;
    if (f == NULL)
        return;
    char when[32];
    time_t t = (time_t)m->received;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, "{\"id\":%" PRId64 ",\"device\":\"%s\",\"msisdn\":\"%s\",\"cntr\":%" PRIu64
               ",\"received\":\"%s\",\"data\":\"",
            m->id, device, msisdn, m->cntr, when);
    json_hex(f, m->data, m->data_len);
    fputs("\",\"text\":", f);
    bool printable = true;
    for (size_t i = 0; i < m->data_len; i++)
        if (m->data[i] < 0x20 || m->data[i] >= 0x7f || m->data[i] == '"' || m->data[i] == '\\')
            printable = false;
    if (printable)
        fprintf(f, "\"%.*s\"}\n", (int)m->data_len, (const char *)m->data);
    else
        fputs("null}\n", f);
}

typedef struct replay_ctx {
    mg_gw *gw;
    size_t n;
    int64_t last;
} replay_ctx;

static bool replay_one(void *ctx, const mg_inbox_msg *m)
{
    replay_ctx *rc = ctx;
    mg_device dv;
    if (mg_store_device_by_id(rc->gw->cfg.store, m->device_id, &dv) != MG_OK) {
        snprintf(dv.name, sizeof(dv.name), "#%" PRId64, m->device_id);
        dv.msisdn[0] = '\0';
    }
    emit(rc->gw, m, dv.name, dv.msisdn);
    rc->n++;
    rc->last = m->id;
    return true;
}

mg_err mg_gw_replay_output(mg_gw *gw, int64_t after_id)
{
    replay_ctx rc = {gw, 0, after_id};
    mg_err e;
    for (;;) {
        size_t before = rc.n;
        e = mg_store_inbox_since(gw->cfg.store, rc.last, 1024, replay_one, &rc);
        if (e != MG_OK || rc.n - before < 1024)
            break;
    }
    if (gw->cfg.output != NULL)
        fflush(gw->cfg.output);
    return e;
}

/* The inbox row of an accepted message (id set by the store). */
static void inbox_msg_of(const pending *p, mg_inbox_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->id = p->inbox_id;
    m->device_id = p->device_id;
    m->received = p->ev.time;
    m->cntr = p->cmd.hdr.cntr;
    m->data_len = p->cmd.data_len < sizeof(m->data) ? p->cmd.data_len : sizeof(m->data);
    memcpy(m->data, p->cmd.data, m->data_len);
}

/* ---- group commit ----------------------------------------------------------- */

/* Answers a PoR the device asked for with its message: secured as the
 * device's SPI says, with the same counter and TAR, status 00. */
static void send_por(mg_gw *gw, pending *p)
{
    uint8_t out[PKT_MAX + 32];
    size_t n = 0;
    mg_ota_rsp r = {{p->cmd.hdr.tar[0], p->cmd.hdr.tar[1], p->cmd.hdr.tar[2]}, p->cmd.hdr.cntr, 0,
                    MG_POR_OK, NULL, 0};
    if (mg_ota_rsp_pack(&p->cmd.hdr, &p->keys, &r, out, sizeof(out), &n) != MG_OK || n > 140)
        return;
    /* best effort: a PoR lost to a full window is like a PoR lost on the air */
    (void)gw->cfg.submit(gw->cfg.ctx, p->source, out, n, 0);
}

mg_err mg_gw_flush(mg_gw *gw)
{
    if (gw->nbatch == 0)
        return MG_OK;
    mg_store *st = gw->cfg.store;
    mg_err e = mg_store_begin(st);
    for (size_t i = 0; i < gw->nbatch && e == MG_OK; i++) {
        pending *p = &gw->batch[i];
        if (p->accepted && p->kind == P_MESSAGE) {
            /* Counter first (compare-and-set), then the message, in one
             * transaction: the data is handed over only to be stored with
             * its counter, and nothing acts on it before COMMIT. */
            mg_err c = mg_store_cntr_in_advance(st, p->device_id, p->cmd.hdr.cntr);
            if (c == MG_ERR_CNTR_LOW) {
                memset(&p->cmd, 0, sizeof(p->cmd));
                refuse(p, p->device_id, "replay", "counter already accepted (another gateway)");
                p->kind = P_REFUSED;
            } else if (c != MG_OK) {
                e = c;
                break;
            } else {
                e = mg_ota_cmd_accept(&p->cmd, p->cmd.hdr.cntr);
                if (e != MG_OK)
                    break;
                mg_inbox_msg m;
                inbox_msg_of(p, &m);
                e = mg_store_inbox_add(st, &m);
                p->inbox_id = m.id;
                mg_wipe(&m, sizeof(m));
                if (e == MG_OK && p->rotate) {
                    e = mg_store_keys_activate(st, p->device_id, p->rotate_version);
                    mg_event kev;
                    char reason[MG_REASON_MAX];
                    snprintf(reason, sizeof(reason), "key version %d active (a message secured with it arrived)",
                             p->rotate_version);
                    ev_set(&kev, p->device_id, "sms", p->source, "key_rotated", reason);
                    if (e == MG_OK)
                        e = mg_store_event_add(st, &kev);
                }
                if (e != MG_OK)
                    break;
            }
        } else if (p->accepted && p->kind == P_POR) {
            e = mg_store_cmd_update(st, p->cmd_id, p->por_status == MG_POR_OK ? MG_CMD_DONE : MG_CMD_FAILED,
                                    0, mg_ota_status_name(p->por_status));
            if (e == MG_OK && p->rotate && p->por_status == MG_POR_OK) {
                e = mg_store_keys_activate(st, p->device_id, p->rotate_version);
                if (e == MG_OK) {
                    char reason[MG_REASON_MAX];
                    snprintf(reason, sizeof(reason), "key version %d active after proof of receipt",
                             p->rotate_version);
                    mg_event kev;
                    ev_set(&kev, p->device_id, "sms", p->source, "key_rotated", reason);
                    e = mg_store_event_add(st, &kev);
                }
            }
        }
        if (e == MG_OK)
            e = mg_store_event_add(st, &p->ev);
    }
    if (e == MG_OK)
        e = mg_store_commit(st);
    if (e != MG_OK) {
        fprintf(stderr, "m2mguard gateway: commit failed, %zu message(s) to be delivered again: %s\n",
                gw->nbatch, mg_store_errmsg(st));
        mg_store_rollback(st);
        for (size_t i = 0; i < gw->nbatch; i++) {
            mg_key_clear(&gw->batch[i].tkic);
            mg_key_clear(&gw->batch[i].tkid);
            gw->cfg.ack(gw->cfg.ctx, gw->batch[i].tag, MG_ESME_RX_T_APPN);
        }
        mg_gw_invalidate(gw); /* in-memory counters are ahead of the store now */
        mg_wipe(gw->batch, gw->nbatch * sizeof(*gw->batch));
        gw->nbatch = 0;
        return e;
    }
    gw->stats.commits++;
    bool rotated = false;
    for (size_t i = 0; i < gw->nbatch; i++) {
        pending *p = &gw->batch[i];
        if (p->accepted && p->kind == P_MESSAGE) {
            mg_inbox_msg m;
            inbox_msg_of(p, &m);
            emit(gw, &m, p->device, p->source);
            mg_wipe(&m, sizeof(m));
            gw->stats.accepted++;
            if (p->por)
                send_por(gw, p);
        } else if (p->accepted && p->kind == P_POR) {
            if (p->por_status == MG_POR_OK)
                gw->stats.por_ok++;
            else
                gw->stats.por_fail++;
        } else {
            gw->stats.refused++;
        }
        rotated |= p->rotate;
        mg_key_clear(&p->tkic);
        mg_key_clear(&p->tkid);
        gw->cfg.ack(gw->cfg.ctx, p->tag, MG_ESME_ROK);
    }
    if (gw->cfg.output != NULL)
        fflush(gw->cfg.output);
    mg_wipe(gw->batch, gw->nbatch * sizeof(*gw->batch));
    gw->nbatch = 0;
    if (rotated)
        mg_gw_invalidate(gw);
    return MG_OK;
}

/* ---- outbound commands ------------------------------------------------------ */

typedef struct cmd_list {
    mg_command c[32];
    size_t n;
} cmd_list;

static bool collect(void *ctx, const mg_command *c)
{
    cmd_list *l = ctx;
    if (l->n >= sizeof(l->c) / sizeof(l->c[0]))
        return false;
    l->c[l->n++] = *c;
    return true;
}

/* The secured data of a command: its text, or for a key rotation the new
 * keys (read from the store only now, never kept in the command row). */
static mg_err command_data(mg_gw *gw, const mg_command *c, char *out, size_t cap, size_t *len)
{
    int version;
    if (sscanf(c->text, "key-rotate %d", &version) == 1) {
        mg_keyset ks;
        char kic[2 * MG_KEY_MAX + 1], kid[2 * MG_KEY_MAX + 1];
        mg_err e = mg_store_keys_get(gw->cfg.store, c->device_id, version, &ks);
        if (e != MG_OK)
            return e;
        mg_hex_encode(kic, ks.kic, ks.len);
        mg_hex_encode(kid, ks.kid, ks.len);
        int n = snprintf(out, cap, "key-rotate %d %s %s", version, kic, kid);
        mg_keyset_wipe(&ks);
        mg_wipe(kic, sizeof(kic));
        mg_wipe(kid, sizeof(kid));
        if (n < 0 || (size_t)n >= cap)
            return MG_ERR_BUF;
        *len = (size_t)n;
        return MG_OK;
    }
    int n = snprintf(out, cap, "%s", c->text);
    if (n < 0 || (size_t)n >= cap)
        return MG_ERR_BUF;
    *len = (size_t)n;
    return MG_OK;
}

static void cmd_fail(mg_gw *gw, const mg_command *c, const char *msisdn, const char *why)
{
    if (mg_store_cmd_update(gw->cfg.store, c->id, MG_CMD_FAILED, c->cntr, why) != MG_OK)
        return;
    mg_event ev;
    char reason[MG_REASON_MAX];
    snprintf(reason, sizeof(reason), "command %" PRId64 " '%.60s': %s", c->id, c->text, why);
    ev_set(&ev, c->device_id, "sms", msisdn, "cmd_failed", reason);
    ev_store(gw, &ev);
}

mg_err mg_gw_send_queued(mg_gw *gw)
{
    cmd_list l;
    l.n = 0;
    mg_store *st = gw->cfg.store;

    mg_err e = mg_store_cmd_queued(st, sizeof(l.c) / sizeof(l.c[0]), collect, &l);
    if (e != MG_OK)
        return e;
    for (size_t i = 0; i < l.n; i++) {
        mg_command *c = &l.c[i];
        mg_device dv;
        if (mg_store_device_by_id(st, c->device_id, &dv) != MG_OK) {
            cmd_fail(gw, c, "", "device deleted");
            continue;
        }
        if (dv.status != MG_DEV_ACTIVE) {
            cmd_fail(gw, c, dv.msisdn, "device not active");
            continue;
        }
        mg_keyset ks;
        if (mg_store_keys_get(st, dv.id, 0, &ks) != MG_OK) {
            cmd_fail(gw, c, dv.msisdn, "device has no active keys");
            continue;
        }
        mg_key kic, kid;
        memset(&kic, 0, sizeof(kic));
        memset(&kid, 0, sizeof(kid));
        e = mg_key_init(&kic, ks.alg, ks.kic, ks.len);
        if (e == MG_OK)
            e = mg_key_init(&kid, ks.alg, ks.kid, ks.len);
        int kver = ks.version;
        mg_keyset_wipe(&ks);
        /* The counter is reserved and the command marked SENT durably
         * before anything goes on the air: a crash can lose a command (it
         * times out) but never reuse a counter. */
        uint64_t cntr = 0;
        if (e == MG_OK)
            e = mg_store_begin(st);
        if (e == MG_OK) {
            e = mg_store_cntr_out_next(st, dv.id, &cntr);
            if (e == MG_OK)
                e = mg_store_cmd_update(st, c->id, MG_CMD_SENT, cntr, "");
            if (e == MG_OK)
                e = mg_store_commit(st);
            else
                mg_store_rollback(st);
        }
        char text[256];
        uint8_t pkt[PKT_MAX + 3];
        size_t tl = 0, pl = 0;
        if (e == MG_OK) {
            e = command_data(gw, c, text, sizeof(text), &tl);
            mg_ota_keys keys = {&kic, &kid, (uint8_t)kver, (uint8_t)kver};
            mg_ota_hdr h = {MG_GW_SPI_COMMAND, MG_GW_KI(kver), MG_GW_KI(kver),
                            {dv.tar[0], dv.tar[1], dv.tar[2]}, cntr, 0};
            pkt[0] = 0x02;
            pkt[1] = MG_IEI_CPI;
            pkt[2] = 0x00;
            if (e == MG_OK)
                e = mg_ota_cmd_pack(&h, &keys, (const uint8_t *)text, tl, pkt + 3, sizeof(pkt) - 3, &pl);
            mg_wipe(text, sizeof(text));
        }
        mg_key_clear(&kic);
        mg_key_clear(&kid);
        if (e == MG_OK && pl + 3 > 140)
            e = MG_ERR_BUF;
        if (e != MG_OK) {
            c->cntr = cntr;
            cmd_fail(gw, c, dv.msisdn, e == MG_ERR_BUF ? "too long for one SMS" : mg_strerror(e));
            continue;
        }
        e = gw->cfg.submit(gw->cfg.ctx, dv.msisdn, pkt, pl + 3, (uint64_t)c->id);
        mg_wipe(pkt, sizeof(pkt));
        if (e == MG_ERR_BUF || e == MG_ERR_STATE) {
            /* bearer busy or down: queue it again (the reserved counter is
             * simply skipped; counters only have to increase) */
            if (mg_store_cmd_update(st, c->id, MG_CMD_QUEUED, 0, "") != MG_OK)
                return MG_ERR_STORE;
            return MG_OK;
        }
        if (e != MG_OK) {
            c->cntr = cntr;
            cmd_fail(gw, c, dv.msisdn, mg_strerror(e));
            continue;
        }
        gw->stats.sent++;
        mg_event ev;
        char reason[MG_REASON_MAX];
        snprintf(reason, sizeof(reason), "command %" PRId64 " '%.60s' counter %" PRIu64, c->id,
                 strncmp(c->text, "key-rotate", 10) == 0 ? "key-rotate" : c->text, cntr);
        ev_set(&ev, dv.id, "sms", dv.msisdn, "cmd_sent", reason);
        ev_store(gw, &ev);
    }
    return MG_OK;
}

void mg_gw_submit_result(mg_gw *gw, uint64_t tag, uint32_t status, const char *message_id)
{
    if (tag == 0)
        return; /* a PoR we sent */
    if (status == MG_ESME_ROK) {
        char detail[MG_REASON_MAX];
        snprintf(detail, sizeof(detail), "smsc message id %s", message_id ? message_id : "?");
        /* keep SENT; record the SMSC's id */
        if (mg_store_cmd_update(gw->cfg.store, (int64_t)tag, MG_CMD_SENT, 0, detail) != MG_OK)
            fprintf(stderr, "m2mguard gateway: command %" PRIu64 ": %s\n", tag,
                    mg_store_errmsg(gw->cfg.store));
        return;
    }
    char why[64];
    snprintf(why, sizeof(why), "refused by the SMSC: status 0x%08x", status);
    mg_command c;
    mg_device dv;
    if (mg_store_cmd_get(gw->cfg.store, (int64_t)tag, &c) != MG_OK) {
        memset(&c, 0, sizeof(c));
        c.id = (int64_t)tag;
        snprintf(c.text, sizeof(c.text), "#%" PRIu64, tag);
    }
    if (mg_store_device_by_id(gw->cfg.store, c.device_id, &dv) != MG_OK)
        dv.msisdn[0] = '\0';
    cmd_fail(gw, &c, dv.msisdn, why);
}

typedef struct to_ctx {
    mg_command c[64];
    size_t n;
} to_ctx;

static bool collect_to(void *ctx, const mg_command *c)
{
    to_ctx *t = ctx;
    if (t->n >= sizeof(t->c) / sizeof(t->c[0]))
        return false;
    t->c[t->n++] = *c;
    return true;
}

mg_err mg_gw_timeouts(mg_gw *gw, int64_t now)
{
    to_ctx t;
    t.n = 0;
    mg_err e = mg_store_cmd_sent_before(gw->cfg.store, now - gw->cfg.por_timeout_s, collect_to, &t);
    for (size_t i = 0; e == MG_OK && i < t.n; i++) {
        e = mg_store_cmd_update(gw->cfg.store, t.c[i].id, MG_CMD_TIMEOUT, 0, "no proof of receipt");
        if (e == MG_OK) {
            mg_event ev;
            char reason[MG_REASON_MAX];
            snprintf(reason, sizeof(reason), "command %" PRId64 ": no proof of receipt in %d s",
                     t.c[i].id, gw->cfg.por_timeout_s);
            ev_set(&ev, t.c[i].device_id, "sms", "", "por_timeout", reason);
            e = mg_store_event_add(gw->cfg.store, &ev);
        }
    }
    return e;
}
