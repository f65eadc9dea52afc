/* The device's A/B update driven by SUIT envelopes, and the tamper response
 * (include/m2mguard/device.h, block "updates and tamper response").
 * Portable: no allocation, no I/O of its own (callbacks), no recursion. */
#include <string.h>

#include "buf.h"
#include "m2mguard/device.h"
#include "m2mguard/suit.h"

/* ---- reports ---------------------------------------------------------------- */

/* "update_ok SEQ" / "update_failed REASON" into out (MG_UPD_REPORT_MAX + 1). */
static size_t report_text(char *out, bool ok, uint64_t seq, const char *reason)
{
    size_t n = 0;
    const char *head = ok ? MG_UPD_TEXT_OK : MG_UPD_TEXT_FAILED;
    while (*head != '\0' && n < MG_UPD_REPORT_MAX)
        out[n++] = *head++;
    out[n++] = ' ';
    if (ok) {
        char d[20];
        size_t k = 0;
        do {
            d[k++] = (char)('0' + seq % 10u);
            seq /= 10u;
        } while (seq != 0 && k < sizeof(d));
        while (k > 0 && n < MG_UPD_REPORT_MAX)
            out[n++] = d[--k];
    } else {
        if (reason == NULL)
            reason = "unknown";
        while (*reason != '\0' && n < MG_UPD_REPORT_MAX) {
            char c = *reason++;
            if (c <= 0x20 || c >= 0x7F)
                c = '_';
            out[n++] = c;
        }
    }
    out[n] = '\0';
    return n;
}

static mg_err report(mg_upd *u, bool ok, uint64_t seq, const char *reason)
{
    char text[MG_UPD_REPORT_MAX + 1];
    if (u->cb_.report == NULL)
        return MG_OK;
    size_t n = report_text(text, ok, seq, reason);
    return u->cb_.report(u->cb_.ctx, text, n);
}

mg_err mg_dev_update_report(void *ctx, const char *text, size_t n)
{
    if (ctx == NULL || text == NULL)
        return MG_ERR_ARG;
    return mg_dev_telemetry((mg_dev *)ctx, (const uint8_t *)text, n, false, NULL);
}

/* ---- state ------------------------------------------------------------------ */

static bool state_valid(const mg_upd_state *s)
{
    if (s->active > 1 || s->phase > MG_UPD_SWITCHING)
        return false;
    if (s->phase == MG_UPD_IDLE)
        return true;
    if (s->phase == MG_UPD_SWITCHING) /* installed_seq is the new image's */
        return true;
    return s->target_seq > s->installed_seq && s->target_size > 0;
}

static mg_err upd_persist(mg_upd *u, const mg_upd_state *next)
{
    mg_err e = u->cb_.persist(u->cb_.ctx, next);
    if (e != MG_OK)
        return MG_ERR_STORE;
    u->st_ = *next;
    return MG_OK;
}

/* Back to IDLE (the inactive slot's content is abandoned), reported. */
static mg_err fail_update(mg_upd *u, const char *reason)
{
    mg_upd_state next = u->st_;
    mg_suit_img_abort(&u->img_);
    u->off_ = 0;
    next.phase = MG_UPD_IDLE;
    next.target_seq = 0;
    next.target_size = 0;
    memset(next.target_digest, 0, sizeof(next.target_digest));
    mg_err e = upd_persist(u, &next);
    (void)report(u, false, 0, reason); /* best effort: the failure stands either way */
    return e;
}

static void anchors_build(mg_upd *u)
{
    size_t k = 0;
    for (size_t i = 0; i < MG_DEV_ANCHORS; i++) {
        const mg_dev_anchor *a = &u->trust_.anchor[i];
        if (a->kid_len == 0)
            continue;
        u->an_[k].kid = a->kid;
        u->an_[k].kid_len = a->kid_len;
        u->an_[k].alg = a->alg; /* NOLINT(bugprone-signed-char-misuse,cert-str34-c): a COSE algorithm id (-7, -8), signed by definition */
        u->an_[k].pub = a->pub;
        u->an_[k].pub_len = a->pub_len;
        k++;
    }
    for (; k < MG_DEV_ANCHORS; k++)
        memset(&u->an_[k], 0, sizeof(u->an_[k]));
}

static size_t anchors_count(const mg_upd *u)
{
    size_t k = 0;
    while (k < MG_DEV_ANCHORS && u->an_[k].pub != NULL)
        k++;
    return k;
}

mg_err mg_upd_init(mg_upd *u, const mg_upd_cfg *cfg, const mg_upd_cb *cb, const mg_upd_state *saved)
{
    if (u == NULL || cfg == NULL || cb == NULL || cb->persist == NULL || cb->erase == NULL ||
        cb->write == NULL || cfg->slot_size == 0 || cfg->trust == NULL)
        return MG_ERR_ARG;
    memset(u, 0, sizeof(*u));
    u->cfg_ = *cfg;
    u->cfg_.trust = NULL;
    u->cb_ = *cb;
    u->trust_ = *cfg->trust;
    anchors_build(u);
    if (saved == NULL) {
        u->st_.installed_seq = cfg->factory_seq;
        u->st_.active = 0;
        u->st_.phase = MG_UPD_IDLE;
        return MG_OK;
    }
    if (!state_valid(saved)) {
        memset(u, 0, sizeof(*u));
        return MG_ERR_ARG;
    }
    u->st_ = *saved;
    switch ((mg_upd_phase)saved->phase) {
    case MG_UPD_DOWNLOADING: /* power lost during the download: start over */
        return fail_update(u, "interrupted");
    case MG_UPD_SWITCHING: /* running the new image now: report, then IDLE */
        u->report_due_ = true;
        if (mg_upd_resume(u) != MG_OK)
            return MG_OK; /* no link yet: the caller calls mg_upd_resume later */
        return MG_OK;
    case MG_UPD_IDLE:
    case MG_UPD_VERIFIED:
        break;
    }
    return MG_OK;
}

mg_err mg_upd_resume(mg_upd *u)
{
    if (u == NULL)
        return MG_ERR_ARG;
    if (!u->report_due_)
        return MG_OK;
    MG_TRY(report(u, true, u->st_.installed_seq, NULL));
    mg_upd_state next = u->st_;
    next.phase = MG_UPD_IDLE;
    next.target_seq = 0;
    next.target_size = 0;
    memset(next.target_digest, 0, sizeof(next.target_digest));
    MG_TRY(upd_persist(u, &next));
    u->report_due_ = false;
    return MG_OK;
}

mg_err mg_upd_begin(mg_upd *u, const uint8_t *env, size_t len, const char **reason)
{
    const char *dummy;
    if (reason == NULL)
        reason = &dummy;
    *reason = NULL;
    if (u == NULL || (env == NULL && len > 0))
        return MG_ERR_ARG;
    if (u->st_.phase == MG_UPD_SWITCHING) {
        *reason = "state";
        return MG_ERR_STATE;
    }
    mg_suit_info *info = &u->info_;
    mg_suit_why why = MG_SUIT_OK;
    mg_err e = mg_suit_check(env, len, u->an_, anchors_count(u), info, &why);
    if (e == MG_OK) {
        mg_suit_device *dev = &u->dev_;
        memcpy(dev->vendor, u->cfg_.vendor, MG_SUIT_UUID_LEN);
        memcpy(dev->class_id, u->cfg_.class_id, MG_SUIT_UUID_LEN);
        dev->installed_seq = u->st_.installed_seq;
        dev->slot_size = u->cfg_.slot_size;
        e = mg_suit_applies(info, dev, &why);
    }
    if (e != MG_OK) { /* refused: whatever was in progress stays as it was */
        mg_wipe(info, sizeof(*info));
        *reason = mg_suit_why_str(why);
        (void)report(u, false, 0, *reason);
        return e;
    }
    /* abandon an earlier download first (IDLE is bootable whatever the slot holds) */
    mg_suit_img_abort(&u->img_);
    u->off_ = 0;
    mg_upd_state next = u->st_;
    next.phase = MG_UPD_DOWNLOADING;
    next.target_seq = info->seq;
    next.target_size = info->size;
    memcpy(next.target_digest, info->digest, MG_SHA256_LEN);
    if (upd_persist(u, &next) != MG_OK) {
        mg_wipe(info, sizeof(*info));
        *reason = "store";
        (void)report(u, false, 0, *reason);
        return MG_ERR_STORE;
    }
    if (u->cb_.erase(u->cb_.ctx, 1u - u->st_.active, info->size) != MG_OK) {
        *reason = "flash";
        (void)fail_update(u, *reason);
        return MG_ERR_STORE;
    }
    e = mg_suit_img_begin(&u->img_, info);
    mg_wipe(info, sizeof(*info)); /* its pointers point into the caller's envelope */
    if (e != MG_OK) {
        *reason = "crypto";
        (void)fail_update(u, *reason);
        return e;
    }
    return MG_OK;
}

mg_err mg_upd_write(mg_upd *u, const uint8_t *p, size_t n, const char **reason)
{
    const char *dummy;
    if (reason == NULL)
        reason = &dummy;
    *reason = NULL;
    if (u == NULL || (p == NULL && n > 0))
        return MG_ERR_ARG;
    if (u->st_.phase != MG_UPD_DOWNLOADING || u->img_.state_ != 1) {
        *reason = "state";
        return MG_ERR_STATE;
    }
    mg_err e = mg_suit_img_update(&u->img_, p, n); /* refuses more than image-size */
    if (e != MG_OK) {
        *reason = e == MG_ERR_LENGTH ? mg_suit_why_str(MG_SUIT_WHY_IMAGE_LONG) : "crypto";
        (void)fail_update(u, *reason);
        return e;
    }
    if (n > 0 && u->cb_.write(u->cb_.ctx, 1u - u->st_.active, u->off_, p, n) != MG_OK) {
        *reason = "flash";
        (void)fail_update(u, *reason);
        return MG_ERR_STORE;
    }
    u->off_ += n;
    return MG_OK;
}

/* Hashes the inactive slot's first size octets again (read-back). */
static mg_err readback(mg_upd *u)
{
    mg_sha256 h;
    uint8_t d[MG_SHA256_LEN];
    memset(&h, 0, sizeof(h));
    MG_TRY(mg_sha256_init(&h));
    for (uint64_t off = 0; off < u->st_.target_size;) {
        uint64_t left = u->st_.target_size - off;
        size_t k = left < sizeof(u->buf_) ? (size_t)left : sizeof(u->buf_);
        if (u->cb_.read(u->cb_.ctx, 1u - u->st_.active, off, u->buf_, k) != MG_OK ||
            mg_sha256_update(&h, u->buf_, k) != MG_OK) {
            mg_sha256_abort(&h);
            return MG_ERR_STORE;
        }
        off += k;
    }
    MG_TRY(mg_sha256_final(&h, d));
    return mg_ct_equal(d, u->st_.target_digest, MG_SHA256_LEN) ? MG_OK : MG_ERR_AUTH;
}

mg_err mg_upd_finish(mg_upd *u, const char **reason)
{
    const char *dummy;
    if (reason == NULL)
        reason = &dummy;
    *reason = NULL;
    if (u == NULL)
        return MG_ERR_ARG;
    if (u->st_.phase != MG_UPD_DOWNLOADING || u->img_.state_ == 0) {
        *reason = "state";
        return MG_ERR_STATE;
    }
    mg_suit_why why = MG_SUIT_OK;
    mg_err e = mg_suit_img_finish(&u->img_, &why);
    if (e != MG_OK) {
        *reason = why != MG_SUIT_OK ? mg_suit_why_str(why) : "crypto";
        (void)fail_update(u, *reason);
        return e;
    }
    if (u->cb_.read != NULL && (e = readback(u)) != MG_OK) {
        *reason = "readback";
        (void)fail_update(u, *reason);
        return e;
    }
    mg_upd_state next = u->st_;
    next.phase = MG_UPD_VERIFIED;
    if (upd_persist(u, &next) != MG_OK) {
        *reason = "store";
        (void)fail_update(u, *reason);
        return MG_ERR_STORE;
    }
    return MG_OK;
}

mg_err mg_upd_switch(mg_upd *u)
{
    if (u == NULL)
        return MG_ERR_ARG;
    if (u->st_.phase != MG_UPD_VERIFIED)
        return MG_ERR_STATE;
    /* the switch: ONE persisted write; before it the old slot boots, after it the new */
    mg_upd_state next = u->st_;
    next.active = (uint8_t)(1u - u->st_.active);
    next.installed_seq = u->st_.target_seq;
    next.phase = MG_UPD_SWITCHING;
    MG_TRY(upd_persist(u, &next));
    u->report_due_ = true;
    return MG_OK;
}

mg_err mg_upd_abort(mg_upd *u, const char *reason)
{
    if (u == NULL)
        return MG_ERR_ARG;
    if (u->st_.phase != MG_UPD_DOWNLOADING && u->st_.phase != MG_UPD_VERIFIED)
        return MG_ERR_STATE;
    return fail_update(u, reason != NULL ? reason : "aborted");
}

void mg_upd_wipe(mg_upd *u)
{
    if (u == NULL)
        return;
    mg_suit_img_abort(&u->img_);
    mg_wipe(u, sizeof(*u));
}

const mg_upd_state *mg_upd_state_get(const mg_upd *u)
{
    return &u->st_;
}

unsigned mg_upd_boot_slot(const mg_upd_state *st)
{
    return st != NULL && st->active == 1 ? 1u : 0u;
}

/* ---- serialisation: "MGU1", big-endian, CRC-32 (IEEE, reflected) -------------- */

static const uint8_t upd_magic[4] = {'M', 'G', 'U', '1'};

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

mg_err mg_upd_state_encode(const mg_upd_state *st, uint8_t *out, size_t cap, size_t *len)
{
    if (st == NULL || out == NULL || len == NULL)
        return MG_ERR_ARG;
    *len = 0;
    if (cap < MG_UPD_STATE_MAX)
        return MG_ERR_BUF;
    if (!state_valid(st))
        return MG_ERR_ARG;
    uint8_t *p = out;
    memcpy(p, upd_magic, 4);
    put64(p + 4, st->installed_seq);
    p[12] = st->active;
    p[13] = st->phase;
    put64(p + 14, st->target_seq);
    put64(p + 22, st->target_size);
    memcpy(p + 30, st->target_digest, MG_SHA256_LEN);
    uint32_t c = crc32_ieee(out, 30 + MG_SHA256_LEN);
    p += 30 + MG_SHA256_LEN;
    p[0] = (uint8_t)(c >> 24);
    p[1] = (uint8_t)(c >> 16);
    p[2] = (uint8_t)(c >> 8);
    p[3] = (uint8_t)c;
    *len = MG_UPD_STATE_MAX;
    return MG_OK;
}

mg_err mg_upd_state_decode(const uint8_t *p, size_t n, mg_upd_state *st)
{
    if (p == NULL || st == NULL)
        return MG_ERR_ARG;
    memset(st, 0, sizeof(*st));
    if (n != MG_UPD_STATE_MAX)
        return MG_ERR_LENGTH;
    if (memcmp(p, upd_magic, 4) != 0)
        return MG_ERR_FORMAT;
    uint32_t c = (uint32_t)p[n - 4] << 24 | (uint32_t)p[n - 3] << 16 | (uint32_t)p[n - 2] << 8 |
                 p[n - 1];
    if (crc32_ieee(p, n - 4) != c)
        return MG_ERR_FORMAT;
    st->installed_seq = get64(p + 4);
    st->active = p[12];
    st->phase = p[13];
    st->target_seq = get64(p + 14);
    st->target_size = get64(p + 22);
    memcpy(st->target_digest, p + 30, MG_SHA256_LEN);
    if (!state_valid(st)) {
        memset(st, 0, sizeof(*st));
        return MG_ERR_FORMAT;
    }
    return MG_OK;
}

/* ---- tamper response ------------------------------------------------------------ */

/* The callbacks a tampered device is left with: everything refuses. */
static mg_err tampered_persist(void *ctx, const mg_dev_state *st)
{
    (void)ctx;
    (void)st;
    return MG_ERR_STATE;
}

static mg_err tampered_send(void *ctx, const uint8_t *ud, size_t len)
{
    (void)ctx;
    (void)ud;
    (void)len;
    return MG_ERR_STATE;
}

static uint8_t tampered_execute(void *ctx, const uint8_t *cmd, size_t len, uint64_t cntr)
{
    (void)ctx;
    (void)cmd;
    (void)len;
    (void)cntr;
    return 0x0D; /* never reached: nothing can be opened without keys */
}

bool mg_dev_tampered(const mg_dev *d)
{
    return d != NULL && d->cb_.persist == tampered_persist;
}

bool mg_dev_state_is_wiped(const mg_dev_state *st)
{
    if (st == NULL)
        return false;
    const uint8_t *p = (const uint8_t *)st;
    uint8_t acc = 0;
    for (size_t i = 0; i < sizeof(*st); i++)
        acc |= p[i];
    return acc == 0;
}

static bool detail_ok(const char *s, size_t *n)
{
    size_t k = 0;
    if (s == NULL)
        return false;
    while (k <= MG_DEV_TAMPER_DETAIL_MAX && s[k] != '\0') {
        if (s[k] <= 0x20 || s[k] >= 0x7F)
            return false;
        k++;
    }
    *n = k;
    return k >= 1 && k <= MG_DEV_TAMPER_DETAIL_MAX;
}

mg_err mg_dev_tamper(mg_dev *d, const char *detail, mg_err *alarm)
{
    mg_err dummy;
    if (alarm == NULL)
        alarm = &dummy;
    *alarm = MG_ERR_STATE;
    if (d == NULL)
        return MG_ERR_ARG;
    if (mg_dev_tampered(d))
        return MG_ERR_STATE;
    /* 1. the last authenticated alarm, on the normal counter */
    char text[sizeof(MG_DEV_TAMPER_TEXT) + 1 + MG_DEV_TAMPER_DETAIL_MAX];
    size_t dl = 0, n = sizeof(MG_DEV_TAMPER_TEXT) - 1;
    if (!detail_ok(detail, &dl)) {
        detail = "enclosure";
        dl = 9;
    }
    memcpy(text, MG_DEV_TAMPER_TEXT, n);
    text[n++] = ' ';
    memcpy(text + n, detail, dl);
    n += dl;
    *alarm = mg_dev_telemetry(d, (const uint8_t *)text, n, false, NULL);
    /* 2. wipe: the store receives a state that holds no key and no counter */
    mg_dev_cb cb = d->cb_;
    mg_wipe(&d->st_, sizeof(d->st_));
    mg_err e = cb.persist(cb.ctx, &d->st_) == MG_OK ? MG_OK : MG_ERR_STORE;
    mg_dev_wipe(d); /* keys, counters, queues, buffers in memory */
    /* 3. refuse to operate until provisioned anew (mg_dev_init) */
    d->cb_.persist = tampered_persist;
    d->cb_.send = tampered_send;
    d->cb_.execute = tampered_execute;
    mg_wipe(text, sizeof(text));
    return e;
}
