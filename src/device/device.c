/*
 * The device side of a secured-SMS link (include/m2mguard/device.h,
 * docs/device.md). Portable C11: no allocation, no I/O; everything goes
 * through sms.h and the caller's callbacks.
 */
#include "m2mguard/device.h"

#include <string.h>

#include "buf.h"

static const uint8_t por_data[4] = {'d', 'o', 'n', 'e'};

static void ev(const mg_dev *d, mg_dev_event kind, const char *reason)
{
    if (d->cb_.event != NULL)
        d->cb_.event(d->cb_.ctx, kind, reason);
}

static bool keyver_ok(const mg_dev_keyver *k)
{
    if (k->version == 0)
        return k->alg == 0 && k->len == 0;
    return k->version <= 15 && mg_sms_key_len_ok((mg_alg)k->alg, k->len);
}

static void keys_clear(mg_dev *d)
{
    for (size_t i = 0; i < 2; i++) {
        mg_key_clear(&d->kic_[i]);
        mg_key_clear(&d->kid_[i]);
    }
}

/* (Re)builds the mg_key objects from the state's key versions. */
static mg_err keys_load(mg_dev *d)
{
    keys_clear(d);
    for (size_t i = 0; i < 2; i++) {
        const mg_dev_keyver *k = &d->st_.keys[i];
        if (k->version == 0)
            continue;
        if (mg_key_init(&d->kic_[i], (mg_alg)k->alg, k->kic, k->len) != MG_OK ||
            mg_key_init(&d->kid_[i], (mg_alg)k->alg, k->kid, k->len) != MG_OK) {
            keys_clear(d);
            return MG_ERR_KEY;
        }
    }
    return MG_OK;
}

static int slot_of(const mg_dev *d, unsigned version)
{
    if (version == 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (d->st_.keys[i].version == version)
            return i;
    return -1;
}

static void ota_keys(mg_dev *d, int i, mg_ota_keys *k)
{
    mg_sms_keys(k, &d->kic_[i], &d->kid_[i], d->st_.keys[i].version);
}

static void pending_clear(mg_dev *d)
{
    mg_wipe(&d->st_.pending, sizeof(d->st_.pending));
    d->ran_ = false;
    d->ran_status_ = 0;
}

static mg_err persist(mg_dev *d)
{
    mg_err e = d->cb_.persist(d->cb_.ctx, &d->st_);
    if (e != MG_OK)
        ev(d, MG_DEV_EV_STORE, "the state could not be made durable");
    return e;
}


/* ---- signed commands: trust anchors, policy, check (bearer independent) ---- */

static bool kid_char(uint8_t c)
{
    return c > 0x20u && c <= 0x7Eu && c != ':' && c != ',';
}

static bool anchor_ok(const mg_dev_anchor *a)
{
    if (a->kid_len == 0 || a->kid_len > MG_CMD_KID_MAX)
        return false;
    for (size_t i = 0; i < a->kid_len; i++)
        if (!kid_char(a->kid[i]))
            return false;
    if (a->alg == MG_COSE_ALG_ES256)
        return a->pub_len == MG_ES256_PUB_LEN && a->pub[0] == 0x04u;
    if (a->alg == MG_COSE_ALG_EDDSA)
        return a->pub_len == MG_ED25519_PUB_LEN;
    return false;
}

static bool trust_ok(const mg_dev_trust *t)
{
    for (size_t i = 0; i < MG_DEV_ANCHORS; i++) {
        const mg_dev_anchor *a = &t->anchor[i];
        if (a->kid_len == 0) {
            if (a->pub_len != 0 || a->alg != 0)
                return false;
            continue;
        }
        if (!anchor_ok(a))
            return false;
        for (size_t j = 0; j < i; j++) /* kids are unique */
            if (t->anchor[j].kid_len == a->kid_len && memcmp(t->anchor[j].kid, a->kid, a->kid_len) == 0)
                return false;
    }
    return t->last_seq <= (uint64_t)INT64_MAX;
}

static bool span_eq(const char *p, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i] != '\0'; i++)
        if (p[i] != lit[i])
            return false;
    return i == n && lit[i] == '\0';
}

mg_err mg_dev_anchor_parse(const char *s, size_t n, mg_dev_anchor *a)
{
    if (a == NULL)
        return MG_ERR_ARG;
    memset(a, 0, sizeof(*a));
    if (s == NULL || n == 0 || n >= MG_DEV_ANCHOR_TEXT_MAX)
        return MG_ERR_FORMAT;
    size_t c1 = 0;
    while (c1 < n && s[c1] != ':')
        c1++;
    size_t c2 = c1 + 1;
    while (c2 < n && s[c2] != ':')
        c2++;
    if (c1 == 0 || c1 > MG_CMD_KID_MAX || c2 >= n)
        return MG_ERR_FORMAT;
    for (size_t i = 0; i < c1; i++) {
        if (!kid_char((uint8_t)s[i]))
            return MG_ERR_FORMAT;
        a->kid[i] = (uint8_t)s[i];
    }
    a->kid_len = (uint8_t)c1;
    const char *alg = s + c1 + 1;
    size_t alg_n = c2 - c1 - 1;
    if (span_eq(alg, alg_n, "ES256"))
        a->alg = (int8_t)MG_COSE_ALG_ES256;
    else if (span_eq(alg, alg_n, "EdDSA"))
        a->alg = (int8_t)MG_COSE_ALG_EDDSA;
    else {
        memset(a, 0, sizeof(*a));
        return MG_ERR_FORMAT;
    }
    const char *hex = s + c2 + 1;
    size_t hex_n = n - c2 - 1;
    int pl = hex_n == (size_t)2 * MG_ES256_PUB_LEN || hex_n == (size_t)2 * MG_ED25519_PUB_LEN
                 ? mg_hex_decode(hex, hex_n, a->pub, sizeof(a->pub))
                 : -1;
    if (pl <= 0) {
        memset(a, 0, sizeof(*a));
        return MG_ERR_FORMAT;
    }
    a->pub_len = (uint8_t)pl;
    if (!anchor_ok(a)) {
        memset(a, 0, sizeof(*a));
        return MG_ERR_FORMAT;
    }
    return MG_OK;
}

mg_err mg_dev_anchor_format(const mg_dev_anchor *a, char *out, size_t cap)
{
    if (a == NULL || out == NULL || !anchor_ok(a))
        return MG_ERR_ARG;
    const char *alg = a->alg == MG_COSE_ALG_ES256 ? "ES256" : "EdDSA";
    size_t al = 5;
    size_t need = (size_t)a->kid_len + 1 + al + 1 + (size_t)2 * a->pub_len + 1;
    if (need > cap) {
        if (cap > 0)
            out[0] = '\0';
        return MG_ERR_BUF;
    }
    size_t o = 0;
    memcpy(out, a->kid, a->kid_len);
    o += a->kid_len;
    out[o++] = ':';
    memcpy(out + o, alg, al);
    o += al;
    out[o++] = ':';
    mg_hex_encode(out + o, a->pub, a->pub_len); /* writes a NUL */
    return MG_OK;
}

static int trust_find(const mg_dev_trust *t, const uint8_t *kid, size_t kid_len)
{
    for (size_t i = 0; i < MG_DEV_ANCHORS; i++)
        if (t->anchor[i].kid_len != 0 && t->anchor[i].kid_len == kid_len &&
            memcmp(t->anchor[i].kid, kid, kid_len) == 0)
            return (int)i;
    return -1;
}

static int trust_slot_for(const mg_dev_trust *t, const mg_dev_anchor *a)
{
    int i = trust_find(t, a->kid, a->kid_len);
    for (size_t j = 0; i < 0 && j < MG_DEV_ANCHORS; j++)
        if (t->anchor[j].kid_len == 0)
            i = (int)j;
    return i;
}

mg_err mg_dev_trust_put(mg_dev_trust *t, const mg_dev_anchor *a)
{
    if (t == NULL || a == NULL || !anchor_ok(a))
        return MG_ERR_ARG;
    int i = trust_slot_for(t, a);
    if (i < 0)
        return MG_ERR_BUF;
    t->anchor[i] = *a;
    return MG_OK;
}

size_t mg_dev_trust_count(const mg_dev_trust *t)
{
    size_t n = 0;
    for (size_t i = 0; t != NULL && i < MG_DEV_ANCHORS; i++)
        n += t->anchor[i].kid_len != 0;
    return n;
}

mg_err mg_dev_list_set(char dst[MG_DEV_LIST_MAX], const char *list)
{
    if (dst == NULL || list == NULL)
        return MG_ERR_ARG;
    dst[0] = '\0';
    size_t n = 0;
    while (n < MG_DEV_LIST_MAX && list[n] != '\0')
        n++;
    if (n >= MG_DEV_LIST_MAX)
        return MG_ERR_LENGTH;
    if (!(n == 1 && list[0] == '*')) {
        size_t word = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i == n || list[i] == ',') {
                if ((word == 0 && n != 0) || word > MG_CMD_KID_MAX)
                    return MG_ERR_FORMAT;
                word = 0;
            } else if (kid_char((uint8_t)list[i]) && list[i] != '*') {
                word++;
            } else {
                return MG_ERR_FORMAT;
            }
        }
    }
    memcpy(dst, list, n + 1);
    return MG_OK;
}

/* Is the name nm[0..nl) in the comma-separated list? */
static bool list_has(const char *list, const char *nm, size_t nl)
{
    if (list[0] == '*' && list[1] == '\0')
        return true;
    size_t start = 0;
    for (size_t i = 0; i < MG_DEV_LIST_MAX; i++) {
        if (list[i] == ',' || list[i] == '\0') {
            if (i - start == nl && nl > 0 && memcmp(list + start, nm, nl) == 0)
                return true;
            if (list[i] == '\0')
                break;
            start = i + 1;
        }
    }
    return false;
}

unsigned mg_dev_sigpol_need(const mg_dev_sigpol *p, const char *cmd, size_t n)
{
    if (cmd == NULL)
        return 0;
    size_t nl = 0;
    while (nl < n && cmd[nl] != ' ')
        nl++;
    unsigned need = span_eq(cmd, nl, MG_DEV_ANCHOR_ROTATE) ? 1u : 0u;
    if (p == NULL)
        return need;
    if (list_has(p->two, cmd, nl))
        return 2;
    if (list_has(p->require, cmd, nl))
        return 1;
    return need;
}

mg_err mg_dev_unsigned_check(const mg_dev_sigpol *p, const uint8_t *text, size_t n,
                             const char **reason)
{
    const char *dummy;
    if (reason == NULL)
        reason = &dummy;
    *reason = "";
    unsigned need = mg_dev_sigpol_need(p, (const char *)text, n);
    if (need == 0)
        return MG_OK;
    *reason = need == 2 ? "two_signers_required" : "signature_required";
    return MG_ERR_AUTH;
}

static mg_err verify(const uint8_t *buf, size_t len, const mg_cmd_anchor *an, size_t na,
                     const char *device, uint64_t last_seq, uint64_t now, size_t min_signers,
                     mg_signed_cmd *out, mg_cmd_why *why, size_t *n_signers)
{
#ifdef MG_CMD_SIGNERS_MAX
    mg_err e = mg_cmd_verify_multi(buf, len, an, na, device, last_seq, now, min_signers, out, why);
    *n_signers = e == MG_OK ? out->n_kids : 0;
    return e;
#else
    /* the core without COSE_Sign: one signer only */
    mg_err e = mg_cmd_verify(buf, len, an, na, device, last_seq, now, out, why);
    *n_signers = e == MG_OK ? 1 : 0;
    if (e == MG_OK && min_signers > 1) {
        memset(out, 0, sizeof(*out));
        *why = MG_CMD_MALFORMED;
        *n_signers = 0;
        return MG_ERR_AUTH;
    }
    return e;
#endif
}

static mg_err signed_check(const mg_dev_trust *t, const mg_dev_sigpol *p, const char *device,
                           const uint8_t *buf, size_t len, uint64_t now, mg_dev_signed *out,
                           mg_cmd_why *why, const char **reason, mg_cmd_anchor *an);

mg_err mg_dev_signed_check(const mg_dev_trust *t, const mg_dev_sigpol *p, const char *device,
                           const uint8_t *buf, size_t len, uint64_t now, mg_dev_signed *out,
                           mg_cmd_why *why, const char **reason)
{
    mg_cmd_anchor an[MG_DEV_ANCHORS];
    return signed_check(t, p, device, buf, len, now, out, why, reason, an);
}

/* an: MG_DEV_ANCHORS entries of scratch (the device library passes its own) */
static mg_err signed_check(const mg_dev_trust *t, const mg_dev_sigpol *p, const char *device,
                           const uint8_t *buf, size_t len, uint64_t now, mg_dev_signed *out,
                           mg_cmd_why *why, const char **reason, mg_cmd_anchor *an)
{
    mg_cmd_why wdummy;
    const char *rdummy;
    if (why == NULL)
        why = &wdummy;
    if (reason == NULL)
        reason = &rdummy;
    *why = MG_CMD_MALFORMED;
    *reason = mg_cmd_why_str(MG_CMD_MALFORMED);
    if (out == NULL || t == NULL || device == NULL)
        return MG_ERR_ARG;
    memset(out, 0, sizeof(*out));
    if (now == 0) {
        *reason = "no_clock";
        return MG_ERR_STATE;
    }
    size_t na = 0;
    for (size_t i = 0; i < MG_DEV_ANCHORS; i++) {
        const mg_dev_anchor *a = &t->anchor[i];
        if (a->kid_len == 0)
            continue;
        an[na].kid = a->kid;
        an[na].kid_len = a->kid_len;
        an[na].alg = a->alg == MG_COSE_ALG_ES256 ? MG_COSE_ALG_ES256 : MG_COSE_ALG_EDDSA;
        an[na].pub = a->pub;
        an[na].pub_len = a->pub_len;
        na++;
    }
    /* The command decides how many signers it needs, and it is only known
     * once verified: verify with one, then require two if it says so. A
     * COSE_Sign with two good signatures passes both. */
    size_t ns = 0;
    mg_err e = verify(buf, len, an, na, device, t->last_seq, now, 1, &out->cmd, why, &ns);
    if (e != MG_OK) {
        memset(out, 0, sizeof(*out));
        *reason = mg_cmd_why_str(*why);
        return e;
    }
    unsigned need = mg_dev_sigpol_need(p, out->cmd.command, out->cmd.command_len);
    if (need >= 2 && ns < 2) {
        memset(out, 0, sizeof(*out));
#ifdef MG_CMD_SIGNERS_MAX
        *why = MG_CMD_TOO_FEW_SIGNERS;
#else
        *why = MG_CMD_MALFORMED;
#endif
        *reason = "too_few_signers";
        return MG_ERR_AUTH;
    }
    out->n_signers = ns;
    if (span_eq(out->cmd.command, out->cmd.command_len, MG_DEV_ANCHOR_ROTATE)) {
        if (out->cmd.args == NULL ||
            mg_dev_anchor_parse(out->cmd.args, out->cmd.args_len, &out->new_anchor) != MG_OK) {
            memset(out, 0, sizeof(*out));
            *why = MG_CMD_MALFORMED;
            *reason = "bad_rotate_args";
            return MG_ERR_FORMAT;
        }
        if (trust_slot_for(t, &out->new_anchor) < 0) {
            memset(out, 0, sizeof(*out));
            *why = MG_CMD_MALFORMED;
            *reason = "anchors_full";
            return MG_ERR_BUF;
        }
        out->rotate = true;
    }
    *why = MG_CMD_OK;
    *reason = mg_cmd_why_str(MG_CMD_OK);
    return MG_OK;
}

void mg_dev_trust_accept(mg_dev_trust *t, const mg_dev_signed *s)
{
    if (t == NULL || s == NULL)
        return;
    t->last_seq = s->cmd.seq;
    if (s->rotate) {
        mg_err e = mg_dev_trust_put(t, &s->new_anchor); /* room checked by the check */
        (void)e;
    }
}

mg_err mg_dev_signed_text(const mg_dev_signed *s, char *out, size_t cap, size_t *len)
{
    if (len != NULL)
        *len = 0;
    if (s == NULL || out == NULL || s->cmd.command == NULL)
        return MG_ERR_ARG;
    size_t n = s->cmd.command_len;
    bool args = s->cmd.args != NULL && s->cmd.args_len > 0;
    size_t total = n + (args ? 1 + s->cmd.args_len : 0);
    if (total + 1 > cap)
        return MG_ERR_BUF;
    memcpy(out, s->cmd.command, n);
    if (args) {
        out[n] = ' ';
        memcpy(out + n + 1, s->cmd.args, s->cmd.args_len);
    }
    out[total] = '\0';
    if (len != NULL)
        *len = total;
    return MG_OK;
}

static void wr_trust(mg_wr *w, const mg_dev_trust *t)
{
    mg_wr_be(w, t->last_seq, 8);
    for (size_t i = 0; i < MG_DEV_ANCHORS; i++) {
        const mg_dev_anchor *a = &t->anchor[i];
        mg_wr_u8(w, a->kid_len);
        mg_wr_bytes(w, a->kid, a->kid_len);
        mg_wr_u8(w, (uint8_t)a->alg);
        mg_wr_u8(w, a->pub_len);
        mg_wr_bytes(w, a->pub, a->pub_len);
    }
}

static bool rd_trust(mg_rd *r, mg_dev_trust *t)
{
    t->last_seq = mg_rd_be(r, 8);
    for (size_t i = 0; i < MG_DEV_ANCHORS; i++) {
        mg_dev_anchor *a = &t->anchor[i];
        a->kid_len = mg_rd_u8(r);
        if (a->kid_len > MG_CMD_KID_MAX)
            return false;
        mg_rd_copy(r, a->kid, a->kid_len);
        a->alg = (int8_t)mg_rd_u8(r);
        a->pub_len = mg_rd_u8(r);
        if (a->pub_len > MG_DEV_PUB_MAX)
            return false;
        mg_rd_copy(r, a->pub, a->pub_len);
    }
    return r->err == MG_OK && trust_ok(t);
}

static const uint8_t trust_magic[4] = {'M', 'G', 'T', '1'};

mg_err mg_dev_trust_encode(const mg_dev_trust *t, uint8_t *out, size_t cap, size_t *len)
{
    if (t == NULL || out == NULL || len == NULL)
        return MG_ERR_ARG;
    *len = 0;
    MG_ENSURE(trust_ok(t), MG_ERR_ARG);
    mg_wr w = mg_wr_make(out, cap);
    mg_wr_bytes(&w, trust_magic, 4);
    wr_trust(&w, t);
    if (w.err == MG_OK) {
        mg_iov v = {out, w.off};
        mg_wr_be(&w, mg_crc32(&v, 1), 4);
    }
    if (w.err != MG_OK)
        return w.err;
    *len = w.off;
    return MG_OK;
}

mg_err mg_dev_trust_decode(const uint8_t *p, size_t n, mg_dev_trust *t)
{
    if (p == NULL || t == NULL)
        return MG_ERR_ARG;
    memset(t, 0, sizeof(*t));
    MG_ENSURE(n >= 8 && n <= MG_DEV_TRUST_MAX, MG_ERR_LENGTH);
    mg_iov v = {p, n - 4};
    mg_rd crc = mg_rd_make(p + n - 4, 4);
    MG_ENSURE(mg_rd_be(&crc, 4) == mg_crc32(&v, 1), MG_ERR_FORMAT);
    mg_rd r = mg_rd_make(p, n - 4);
    const uint8_t *m = mg_rd_take(&r, 4);
    bool ok = m != NULL && memcmp(m, trust_magic, 4) == 0 && rd_trust(&r, t) && mg_rd_left(&r) == 0;
    if (!ok) {
        memset(t, 0, sizeof(*t));
        return MG_ERR_FORMAT;
    }
    return MG_OK;
}

/* ---- set-up ------------------------------------------------------------------ */

static bool state_ok(const mg_dev_state *s)
{
    if (!keyver_ok(&s->keys[0]) || !keyver_ok(&s->keys[1]) || s->keys[0].version == 0 ||
        s->keys[0].version == s->keys[1].version)
        return false;
    if (s->mo_version != s->keys[0].version && s->mo_version != s->keys[1].version)
        return false;
    if (s->cntr_in > MG_OTA_CNTR_MAX || s->lease_end > MG_OTA_CNTR_MAX || !trust_ok(&s->trust))
        return false;
    switch (s->pending.kind) {
    case MG_DEV_PEND_NONE: return true;
    case MG_DEV_PEND_TEXT:
    case MG_DEV_PEND_UPDATE:
    case MG_DEV_PEND_KEYS: return s->pending.len <= MG_DEV_CMD_MAX && s->pending.hdr.cntr == s->cntr_in;
    case MG_DEV_PEND_BAD:
    case MG_DEV_PEND_DONE: return s->pending.len == 0 && s->pending.hdr.cntr == s->cntr_in;
    default: return false;
    }
}

mg_err mg_dev_init(mg_dev *d, const mg_dev_cfg *cfg, const mg_dev_cb *cb, const mg_dev_state *saved)
{
    if (d == NULL || cfg == NULL || cb == NULL || cb->persist == NULL || cb->send == NULL ||
        cb->execute == NULL)
        return MG_ERR_ARG;
    mg_wipe(d, sizeof(*d));
    if (memcmp(cfg->tar, mg_sms_tar_backend, 3) == 0) /* the device's TAR is not the backend's */
        return MG_ERR_ARG;
    d->cfg_ = *cfg;
    d->cfg_.kic = NULL;
    d->cfg_.kid = NULL;
    d->cfg_.trust = NULL;
    d->cfg_.sigpol = NULL;
    d->cfg_.name = NULL;
    d->cfg_.upd = NULL;
    d->upd_ = cfg->upd;
    d->cb_ = *cb;
    if (cfg->sigpol != NULL && (mg_dev_list_set(d->pol_.require, cfg->sigpol->require) != MG_OK ||
                                mg_dev_list_set(d->pol_.two, cfg->sigpol->two) != MG_OK)) {
        mg_wipe(d, sizeof(*d));
        return MG_ERR_ARG;
    }
    if (cfg->name != NULL) {
        size_t nl = 0;
        while (nl <= MG_CMD_AUD_MAX && cfg->name[nl] != '\0')
            nl++;
        if (nl == 0 || nl > MG_CMD_AUD_MAX) {
            mg_wipe(d, sizeof(*d));
            return MG_ERR_ARG;
        }
        memcpy(d->name_, cfg->name, nl);
    }
    if (saved != NULL) {
        if (!state_ok(saved))
            return MG_ERR_ARG;
        d->st_ = *saved;
    } else {
        if (cfg->kic == NULL || cfg->kid == NULL || cfg->key_version < 1 || cfg->key_version > 15 ||
            !mg_sms_key_len_ok((mg_alg)cfg->alg, cfg->key_len))
            return MG_ERR_ARG;
        mg_dev_keyver *k = &d->st_.keys[0];
        k->version = (uint8_t)cfg->key_version;
        k->alg = (uint8_t)cfg->alg;
        k->len = (uint8_t)cfg->key_len;
        memcpy(k->kic, cfg->kic, cfg->key_len);
        memcpy(k->kid, cfg->kid, cfg->key_len);
        d->st_.mo_version = k->version;
        if (cfg->trust != NULL) {
            if (!trust_ok(cfg->trust)) {
                mg_wipe(d, sizeof(*d));
                return MG_ERR_ARG;
            }
            d->st_.trust = *cfg->trust;
        }
    }
    d->cntr_out_ = d->st_.lease_end; /* continue above the lease: never reuse one */
    mg_err e = keys_load(d);
    if (e != MG_OK)
        mg_wipe(d, sizeof(*d));
    return e;
}

void mg_dev_wipe(mg_dev *d)
{
    if (d == NULL)
        return;
    keys_clear(d);
    mg_wipe(d, sizeof(*d));
}

bool mg_dev_pending(const mg_dev *d)
{
    return d != NULL && d->st_.pending.kind != MG_DEV_PEND_NONE;
}

const mg_dev_state *mg_dev_state_get(const mg_dev *d)
{
    return &d->st_;
}

unsigned mg_dev_key_version(const mg_dev *d)
{
    return d->st_.mo_version;
}

uint64_t mg_dev_next_cntr(const mg_dev *d)
{
    return d->cntr_out_ + 1;
}

/* ---- commands ------------------------------------------------------------------ */

/* Applies the key delivery of the pending command (idempotent). */
static uint8_t rotate(mg_dev *d, const mg_ota_hdr *h, bool *rotated)
{
    mg_sms_keydeliv kd;
    uint8_t status = MG_POR_UNDEFINED_SECURITY_ERROR;
    *rotated = false;
    if (mg_sms_keydeliv_decode(d->st_.pending.data, d->st_.pending.len, &kd) != MG_OK) {
        ev(d, MG_DEV_EV_KEYS, "refused: malformed key delivery");
        return status;
    }
    mg_dev_keyver nk;
    memset(&nk, 0, sizeof(nk));
    nk.version = (uint8_t)kd.version;
    nk.alg = (uint8_t)kd.alg;
    nk.len = (uint8_t)kd.len;
    memcpy(nk.kic, kd.kic, kd.len);
    memcpy(nk.kid, kd.kid, kd.len);
    mg_wipe(&kd, sizeof(kd));
    mg_dev_keyver *cur = &d->st_.keys[0];
    int came = slot_of(d, MG_KI_INDEX(h->kid));
    if (cur->version == nk.version) {
        /* delivered again (a resumed command): the same keys change nothing */
        if (cur->alg == nk.alg && cur->len == nk.len && mg_ct_equal(cur->kic, nk.kic, nk.len) &&
            mg_ct_equal(cur->kid, nk.kid, nk.len)) {
            status = MG_POR_OK;
            ev(d, MG_DEV_EV_KEYS, "unchanged: this key version is already current");
        } else {
            ev(d, MG_DEV_EV_KEYS, "refused: the current key version with other keys");
        }
    } else if (came < 0) {
        ev(d, MG_DEV_EV_KEYS, "refused: the keys the delivery came with are gone");
    } else if (came == 1 && d->st_.keys[1].version == nk.version) {
        ev(d, MG_DEV_EV_KEYS, "refused: delivery of the version it came with");
    } else {
        mg_dev_state *s = &d->st_;
        if (came == 0) /* the version the delivery came with stays as the previous one */
            s->keys[1] = s->keys[0];
        s->keys[0] = nk;
        s->mo_version = nk.version;
        if (keys_load(d) == MG_OK) {
            status = MG_POR_OK;
            *rotated = true;
            ev(d, MG_DEV_EV_KEYS, "rotated: a new key version is current");
        } else {
            ev(d, MG_DEV_EV_KEYS, "refused: the delivered keys do not load");
        }
    }
    mg_wipe(&nk, sizeof(nk));
    return status;
}

static void porq_push(mg_dev *d, const uint8_t *p, size_t n)
{
    if (d->porq_n_ >= MG_DEV_PORQ || n > MG_SMS_RSP_MAX) {
        ev(d, MG_DEV_EV_POR_DROPPED, "PoR dropped: the PoR queue is full");
        return;
    }
    memcpy(d->porq_[d->porq_n_], p, n);
    d->porq_len_[d->porq_n_++] = (uint8_t)n;
}

#if defined(__GNUC__) || defined(__clang__)
#define MG_NOINLINE __attribute__((noinline))
#else
#define MG_NOINLINE
#endif

/* A SUIT envelope with an integrated payload in pending.data: verified,
 * written, switched and reported by the updater (its report callback sends
 * "update_ok SEQ" / "update_failed REASON" as telemetry). After a restart
 * the same envelope runs again: the installed sequence refuses it
 * ("update_failed rollback") once it was switched. */
static MG_NOINLINE uint8_t run_update(mg_dev *d)
{
    mg_upd *u = d->upd_;
    const mg_dev_state *s = &d->st_;
    const char *why = NULL;
    const uint8_t *p = NULL;
    size_t n = 0;
    if (u == NULL)
        return MG_POR_UNDEFINED_SECURITY_ERROR;
    if (mg_upd_begin(u, s->pending.data, s->pending.len, &why) != MG_OK) {
        ev(d, MG_DEV_EV_CMD_REFUSED, why != NULL ? why : "update_refused");
        return MG_POR_UNDEFINED_SECURITY_ERROR; /* reported by the updater */
    }
    /* the envelope's one integrated payload ("#config"): authentic by the
     * image digest of the signed manifest, checked while it is written */
    if (mg_suit_payload(s->pending.data, s->pending.len, NULL, 0, &p, &n) != MG_OK) {
        why = "no_integrated_payload";
        if (mg_upd_abort(u, why) != MG_OK)
            ev(d, MG_DEV_EV_STORE, "update state not stored");
    } else if (mg_upd_write(u, p, n, &why) == MG_OK && mg_upd_finish(u, &why) == MG_OK &&
               mg_upd_switch(u) == MG_OK) {
        if (mg_upd_resume(u) != MG_OK) /* "update_ok SEQ" */
            ev(d, MG_DEV_EV_POR_DROPPED, "update report waits: call mg_upd_resume later");
        return MG_POR_OK;
    }
    ev(d, MG_DEV_EV_CMD_REFUSED, why != NULL ? why : "update_failed");
    return MG_POR_UNDEFINED_SECURITY_ERROR;
}

/* Runs the pending command (once per process: ran_), sends its PoR, clears
 * it. MG_ERR_STATE when the PoR found no link: the command stays pending. */
static mg_err run_pending(mg_dev *d)
{
    mg_dev_state *s = &d->st_;
    if (s->pending.kind == MG_DEV_PEND_NONE)
        return MG_OK;
    const mg_ota_hdr *h = &s->pending.hdr;
    unsigned came_version = MG_KI_INDEX(h->kid);
    bool newest = s->keys[0].version == came_version, rotated = false;
    if (!d->ran_) {
        /* an update runs from mg_dev_resume only: the manifest processor's
         * stack is not added to mg_dev_receive's (Cortex-M0+ budget) */
        if (s->pending.kind == MG_DEV_PEND_UPDATE)
            return MG_ERR_BUF;
        switch (s->pending.kind) {
        case MG_DEV_PEND_TEXT:
            d->ran_status_ = d->cb_.execute(d->cb_.ctx, s->pending.data, s->pending.len, h->cntr);
            break;
        case MG_DEV_PEND_KEYS: d->ran_status_ = rotate(d, h, &rotated); break;
        case MG_DEV_PEND_DONE: d->ran_status_ = MG_POR_OK; break;
        default: d->ran_status_ = MG_POR_UNDEFINED_SECURITY_ERROR; break;
        }
        d->ran_ = true;
    }
    if ((h->spi & MG_SPI2_POR_MASK) == MG_SPI2_POR_REQUIRED) {
        int ks = slot_of(d, came_version);
        size_t n = 0;
        mg_ota_keys k;
        if (ks < 0) {
            ev(d, MG_DEV_EV_POR_DROPPED, "PoR dropped: the command's keys are gone");
        } else {
            ota_keys(d, ks, &k);
            if (mg_sms_por_seal(h, &k, d->ran_status_, por_data, sizeof(por_data), d->work_,
                                MG_SMS_RSP_MAX, &n) != MG_OK) {
                ev(d, MG_DEV_EV_POR_DROPPED, "PoR dropped: it could not be sealed");
            } else {
                mg_err e = d->cb_.send(d->cb_.ctx, d->work_, n);
                if (e == MG_ERR_STATE) {
                    mg_wipe(d->work_, n);
                    return MG_ERR_STATE; /* no link: mg_dev_resume() later */
                }
                if (e == MG_ERR_BUF)
                    porq_push(d, d->work_, n);
                else if (e != MG_OK)
                    ev(d, MG_DEV_EV_POR_DROPPED, "PoR dropped: the bearer refused it");
                mg_wipe(d->work_, n);
            }
        }
    }
    /* a command under the newest keys ends a rotation's overlap */
    if (s->pending.kind == MG_DEV_PEND_TEXT && newest && s->keys[1].version != 0 &&
        s->mo_version == s->keys[0].version) {
        mg_wipe(&s->keys[1], sizeof(s->keys[1]));
        (void)keys_load(d); /* the current keys loaded before; they load again */
    }
    (void)rotated;
    pending_clear(d);
    /* a failure here is reported; after a restart the command is resumed
     * and the actuator recognises its counter */
    (void)persist(d);
    return MG_OK;
}

static mg_dev_verdict refuse(mg_dev *d, mg_err *err, mg_err e, const char *why)
{
    *err = e;
    if (why == NULL || why[0] == '\0') {
        if (e == MG_ERR_TAR)
            why = "tar_unknown: not this device's TAR (a packet for the backend: reflected?)";
        else if (e == MG_ERR_KEY)
            why = "undefined_security_error: no key of the version the packet names";
        else
            why = mg_ota_status_name(mg_ota_status_of(e));
    }
    ev(d, MG_DEV_EV_REFUSED, why);
    return MG_DEV_REFUSED;
}

/* A complete command packet in d->work_[0..n). */
static mg_dev_verdict on_command(mg_dev *d, size_t n, mg_err *err)
{
    mg_dev_state *s = &d->st_;
    mg_sms_peek pk;
    const char *why = NULL;
    mg_err e = mg_sms_peek_cmd(d->work_, n, &pk, &why);
    if (e != MG_OK) {
        mg_wipe(d->work_, n);
        return refuse(d, err, e, why);
    }
    int ks = slot_of(d, pk.key_version);
    if (ks < 0) {
        mg_wipe(d->work_, n);
        /* a packet of the other direction names a key too: the TAR says more */
        if (memcmp(pk.tar, d->cfg_.tar, 3) != 0)
            return refuse(d, err, MG_ERR_TAR, NULL);
        return refuse(d, err, MG_ERR_KEY, NULL);
    }
    mg_ota_keys k;
    ota_keys(d, ks, &k);
    mg_ota_cmd cmd;
    e = mg_sms_open(MG_SMS_MT, d->cfg_.tar, d->work_, n, &k, s->cntr_in, &cmd);
    if (e != MG_OK) {
        mg_wipe(d->work_, n);
        return refuse(d, err, e, NULL);
    }
    /* The counter and the command become durable together before anything
     * acts on them; nothing is exposed to anybody before persist() returns. */
    uint64_t prev = s->cntr_in;
    if (cmd.advances_counter)
        s->cntr_in = cmd.hdr.cntr;
    if (mg_ota_cmd_accept(&cmd, s->cntr_in) != MG_OK || cmd.data_len > MG_DEV_CMD_MAX) {
        s->cntr_in = prev;
        mg_wipe(d->work_, n);
        return refuse(d, err, MG_ERR_STATE, "undefined_security_error: the command cannot be taken");
    }
    pending_clear(d);
    s->pending.hdr = cmd.hdr;
    /* signed commands: the trust changes (sequence, a rotated anchor) are
     * made durable with the counter, before anything executes */
    uint64_t prev_seq = s->trust.last_seq;
    mg_dev_anchor *prev_anchor = &d->prev_anchor_;
    int rot_slot = -1;
    const char *cmd_refused = NULL;
    mg_err cmd_err = MG_OK;
    /* the one place a device tells an update from a command: mg_suit_is_envelope */
    int kind = d->upd_ != NULL && mg_suit_is_envelope(cmd.data, cmd.data_len)
                   ? -1
                   : (int)mg_sms_content_kind(cmd.data, cmd.data_len);
    switch (kind) {
    case -1: /* an update: the updater checks its signature */
        s->pending.kind = MG_DEV_PEND_UPDATE;
        break;
    case MG_SMS_CONTENT_KEYDELIV:
        s->pending.kind = MG_DEV_PEND_KEYS;
        break;
    case MG_SMS_CONTENT_TEXT:
        cmd_err = mg_dev_unsigned_check(&d->pol_, cmd.data, cmd.data_len, &cmd_refused);
        s->pending.kind = cmd_err == MG_OK ? MG_DEV_PEND_TEXT : MG_DEV_PEND_BAD;
        break;
    case MG_SMS_CONTENT_SIGNED: {
        mg_dev_signed *sc = &d->sc_;
        uint64_t now = d->cb_.now_s != NULL ? d->cb_.now_s(d->cb_.ctx) : 0;
        cmd_err = d->name_[0] == '\0' ? MG_ERR_STATE
                  : signed_check(&s->trust, &d->pol_, d->name_, cmd.data, cmd.data_len, now, sc,
                                 NULL, &cmd_refused, d->an_);
        if (d->name_[0] == '\0')
            cmd_refused = "no_device_name";
        if (cmd_err != MG_OK) {
            s->pending.kind = MG_DEV_PEND_BAD;
            break;
        }
        if (sc->rotate) {
            rot_slot = trust_slot_for(&s->trust, &sc->new_anchor);
            if (rot_slot >= 0)
                *prev_anchor = s->trust.anchor[rot_slot];
            s->pending.kind = MG_DEV_PEND_DONE;
        } else {
            size_t tl = 0;
            /* command + ' ' + args <= 511 > MG_DEV_CMD_MAX: refuse what does not fit */
            char *txt = (char *)s->pending.data;
            if (mg_dev_signed_text(sc, txt, MG_DEV_CMD_MAX, &tl) != MG_OK) {
                s->pending.kind = MG_DEV_PEND_BAD;
                cmd_refused = "command_too_long";
                cmd_err = MG_ERR_LENGTH;
                break;
            }
            txt[tl] = '\0';
            s->pending.len = (uint16_t)tl;
            s->pending.kind = MG_DEV_PEND_TEXT;
        }
        mg_dev_trust_accept(&s->trust, sc);
        mg_wipe(sc, sizeof(*sc));
        break;
    }
    default: /* MG_SMS_CONTENT_BAD */
        s->pending.kind = MG_DEV_PEND_BAD;
        break;
    }
    if (s->pending.kind == MG_DEV_PEND_BAD || s->pending.kind == MG_DEV_PEND_DONE) {
        mg_wipe(s->pending.data, sizeof(s->pending.data));
        s->pending.len = 0;
    } else if (s->pending.kind != MG_DEV_PEND_TEXT || s->pending.len == 0) {
        memcpy(s->pending.data, cmd.data, cmd.data_len);
        s->pending.len = (uint16_t)cmd.data_len;
    }
    mg_wipe(d->work_, n);
    if (persist(d) != MG_OK) {
        s->cntr_in = prev;
        s->trust.last_seq = prev_seq;
        if (rot_slot >= 0)
            s->trust.anchor[rot_slot] = *prev_anchor;
        pending_clear(d);
        *err = MG_ERR_STORE;
        return MG_DEV_RETRY; /* not executed: the bearer delivers it again */
    }
    if (s->pending.kind == MG_DEV_PEND_BAD && cmd_refused != NULL) {
        *err = cmd_err != MG_OK ? cmd_err : MG_ERR_AUTH;
        ev(d, MG_DEV_EV_CMD_REFUSED, cmd_refused);
    } else if (s->pending.kind == MG_DEV_PEND_BAD) {
        *err = MG_ERR_FORMAT;
        ev(d, MG_DEV_EV_REFUSED,
           "undefined_security_error: an authentic command neither printable text nor a key delivery");
    } else if (rot_slot >= 0) {
        ev(d, MG_DEV_EV_ANCHOR, "rotated");
    }
    (void)run_pending(d); /* no link for its PoR: mg_dev_resume() finishes it */
    return MG_DEV_DONE;
}

static void age_slots(mg_dev *d)
{
    if (d->cb_.now_ms == NULL || d->cfg_.reasm_ms == 0)
        return;
    uint32_t now = d->cb_.now_ms(d->cb_.ctx);
    for (size_t i = 0; i < MG_DEV_SLOTS; i++) {
        if (d->slot_[i].p.state != 0 && (uint32_t)(now - d->slot_[i].t0) > d->cfg_.reasm_ms) {
            mg_sms_partial_init(&d->slot_[i].p);
            ev(d, MG_DEV_EV_EXPIRED, "an unfinished concatenated command aged out");
        }
    }
}

static mg_dev_verdict on_segment(mg_dev *d, const mg_sms_peek *pk, mg_err *err)
{
    if (pk->concat.seq == 1 && !pk->first_has_cpi)
        return refuse(d, err, MG_ERR_SECURITY_LEVEL,
                      "first segment of a concatenated SMS without a command packet identifier");
    size_t s = MG_DEV_SLOTS;
    for (size_t i = 0; i < MG_DEV_SLOTS && s == MG_DEV_SLOTS; i++)
        if (mg_sms_partial_match(&d->slot_[i].p, pk))
            s = i;
    for (size_t i = 0; i < MG_DEV_SLOTS && s == MG_DEV_SLOTS; i++)
        if (d->slot_[i].p.state == 0)
            s = i;
    if (s == MG_DEV_SLOTS) { /* all busy: the oldest goes */
        s = 0;
        for (size_t i = 1; i < MG_DEV_SLOTS; i++)
            if ((int32_t)(d->slot_[i].seq - d->slot_[s].seq) < 0)
                s = i;
        mg_sms_partial_init(&d->slot_[s].p);
        ev(d, MG_DEV_EV_EVICTED, "an unfinished concatenated command was dropped for a newer one");
    }
    bool fresh = d->slot_[s].p.state == 0;
    size_t n = 0;
    bool done = false;
    mg_err e = mg_sms_partial_add(&d->slot_[s].p, pk, d->work_, sizeof(d->work_), &n, &done);
    if (e != MG_OK) {
        const char *why = e == MG_ERR_FORMAT ? "a segment repeated with other octets"
                          : e == MG_ERR_LENGTH ? "reassembled packet too long"
                                               : "segment not accepted";
        return refuse(d, err, e, why);
    }
    if (fresh && !done) {
        d->slot_[s].t0 = d->cb_.now_ms != NULL ? d->cb_.now_ms(d->cb_.ctx) : 0;
        d->slot_[s].seq = ++d->seq_;
    }
    if (!done)
        return MG_DEV_PART;
    return on_command(d, n, err);
}

static mg_dev_verdict on_por(mg_dev *d, const mg_sms_peek *pk, mg_err *err)
{
    if (pk->pkt_len > MG_SMS_RSP_MAX)
        return refuse(d, err, MG_ERR_LENGTH, "response packet longer than one SMS");
    /* the versions our waiting telemetry used (the current one if none waits:
     * a reflected PoR of our own is then still refused for its TAR) */
    unsigned versions[MG_DEV_POR_WAIT + 1] = {0};
    size_t nv = 0;
    for (size_t i = 0; i < MG_DEV_POR_WAIT; i++) {
        unsigned v = d->wait_[i].version;
        bool seen = v == 0;
        for (size_t j = 0; j < nv && !seen; j++)
            seen = versions[j] == v;
        if (!seen)
            versions[nv++] = v;
    }
    bool none_waits = nv == 0;
    if (none_waits)
        versions[nv++] = d->st_.mo_version;
    mg_err e = MG_ERR_KEY;
    mg_ota_rsp r;
    for (size_t j = 0; j < nv; j++) {
        int ks = slot_of(d, versions[j]);
        if (ks < 0)
            continue;
        mg_ota_keys k;
        ota_keys(d, ks, &k);
        memcpy(d->work_, pk->pkt, pk->pkt_len);
        e = mg_sms_por_open(MG_SMS_MO, d->cfg_.tar, &k, d->work_, pk->pkt_len, &r);
        if (e == MG_OK) {
            for (size_t i = 0; i < MG_DEV_POR_WAIT; i++) {
                if (d->wait_[i].version == versions[j] && d->wait_[i].cntr == r.cntr) {
                    d->wait_[i].version = 0;
                    d->wait_[i].cntr = 0;
                    uint8_t st = r.status;
                    mg_wipe(d->work_, pk->pkt_len);
                    *err = MG_OK;
                    ev(d, MG_DEV_EV_POR, mg_ota_status_name(st));
                    return MG_DEV_POR;
                }
            }
            e = MG_ERR_STATE;
        }
        mg_wipe(d->work_, pk->pkt_len);
        if (e == MG_ERR_TAR)
            break;
    }
    if (e == MG_ERR_STATE)
        return refuse(d, err, e, none_waits ? "a PoR although no telemetry asked for one"
                                            : "a PoR for no telemetry waiting (or its second copy)");
    if (e == MG_ERR_TAR)
        return refuse(d, err, e, "tar_unknown: a PoR not for the backend's TAR (our own, reflected?)");
    return refuse(d, err, e, NULL);
}

mg_dev_verdict mg_dev_receive(mg_dev *d, const mg_sms_in *in, mg_err *err)
{
    mg_err dummy;
    if (err == NULL)
        err = &dummy;
    *err = MG_OK;
    if (d == NULL || in == NULL) {
        *err = MG_ERR_ARG;
        return MG_DEV_REFUSED;
    }
    if (mg_dev_tampered(d)) { /* wiped: nothing is opened, nothing answered */
        *err = MG_ERR_STATE;
        return MG_DEV_REFUSED;
    }
    age_slots(d);
    mg_sms_peek pk;
    const char *why = NULL;
    mg_err e = mg_sms_classify(in, &pk, &why);
    if (e != MG_OK)
        return refuse(d, err, e, why);
    if (pk.kind == MG_SMS_RESPONSE)
        return on_por(d, &pk, err);
    /* one command at a time: finish a pending one first */
    if (d->st_.pending.kind != MG_DEV_PEND_NONE && run_pending(d) != MG_OK) {
        *err = MG_ERR_STATE;
        return MG_DEV_RETRY;
    }
    if (pk.kind == MG_SMS_SEGMENT)
        return on_segment(d, &pk, err);
    memcpy(d->work_, pk.pkt, pk.pkt_len); /* pkt_len <= MG_SMS_PKT_MAX (classify) */
    return on_command(d, pk.pkt_len, err);
}

/* ---- telemetry ------------------------------------------------------------------ */

mg_err mg_dev_telemetry(mg_dev *d, const uint8_t *data, size_t len, bool por, uint64_t *cntr)
{
    if (d == NULL || (data == NULL && len > 0))
        return MG_ERR_ARG;
    if (cntr != NULL)
        *cntr = 0;
    MG_ENSURE(!mg_dev_tampered(d), MG_ERR_STATE);
    MG_ENSURE(len <= MG_SMS_DATA_MAX, MG_ERR_LENGTH);
    mg_dev_state *s = &d->st_;
    MG_ENSURE(d->cntr_out_ < MG_OTA_CNTR_MAX, MG_ERR_CNTR_BLOCKED);
    if (d->cntr_out_ + 1 > s->lease_end) { /* lease the next block first */
        uint64_t old = s->lease_end;
        s->lease_end = MG_OTA_CNTR_MAX - d->cntr_out_ > MG_DEV_LEASE ? d->cntr_out_ + MG_DEV_LEASE
                                                                      : MG_OTA_CNTR_MAX;
        if (persist(d) != MG_OK) {
            s->lease_end = old;
            return MG_ERR_STORE;
        }
    }
    uint64_t c = ++d->cntr_out_;
    int ks = slot_of(d, s->mo_version);
    if (ks < 0)
        ks = 0;
    mg_ota_keys k;
    ota_keys(d, ks, &k);
    size_t n = 0, parts = 0;
    MG_TRY(mg_sms_seal(MG_SMS_MO, d->cfg_.tar, &k, c, por, data, len, d->work_, sizeof(d->work_),
                       &n));
    mg_err e = mg_sms_parts(n, &parts);
    uint8_t ref = d->telemetry_ref_++;
    for (size_t i = 1; e == MG_OK && i <= parts; i++) {
        uint8_t ud[MG_SMS_UD_MAX];
        size_t ul = 0;
        e = mg_sms_part(d->work_, n, ref, i, ud, sizeof(ud), &ul);
        if (e == MG_OK)
            e = d->cb_.send(d->cb_.ctx, ud, ul);
    }
    mg_wipe(d->work_, n);
    if (e != MG_OK)
        return e;
    if (por) { /* remember it; the oldest waiting one goes when full */
        size_t w = 0;
        for (size_t i = 0; i < MG_DEV_POR_WAIT; i++) {
            if (d->wait_[i].version == 0) {
                w = i;
                break;
            }
            if (d->wait_[i].cntr < d->wait_[w].cntr)
                w = i;
        }
        d->wait_[w].cntr = c;
        d->wait_[w].version = (uint8_t)s->keys[ks].version;
    }
    if (cntr != NULL)
        *cntr = c;
    return MG_OK;
}

mg_err mg_dev_resume(mg_dev *d)
{
    if (d == NULL)
        return MG_ERR_ARG;
    MG_ENSURE(!mg_dev_tampered(d), MG_ERR_STATE);
    if (d->st_.pending.kind == MG_DEV_PEND_UPDATE && !d->ran_) {
        mg_dev_state *s = &d->st_;
        d->ran_status_ = run_update(d);
        d->ran_ = true;
        /* taken up: after a restart only its PoR is left (run again, a
         * switched update would be refused and reported as a rollback) */
        s->pending.kind = d->ran_status_ == MG_POR_OK ? MG_DEV_PEND_DONE : MG_DEV_PEND_BAD;
        mg_wipe(s->pending.data, sizeof(s->pending.data));
        s->pending.len = 0;
        (void)persist(d);
    }
    MG_TRY(run_pending(d));
    while (d->porq_n_ > 0) {
        mg_err e = d->cb_.send(d->cb_.ctx, d->porq_[0], d->porq_len_[0]);
        if (e == MG_ERR_BUF || e == MG_ERR_STATE)
            return e;
        if (e != MG_OK)
            ev(d, MG_DEV_EV_POR_DROPPED, "PoR dropped: the bearer refused it");
        d->porq_n_--;
        memmove(d->porq_[0], d->porq_[1], (size_t)d->porq_n_ * sizeof(d->porq_[0]));
        memmove(d->porq_len_, d->porq_len_ + 1, d->porq_n_);
        mg_wipe(d->porq_[d->porq_n_], sizeof(d->porq_[0]));
    }
    return MG_OK;
}

/* ---- serialisation ------------------------------------------------------------ */

static const uint8_t state_magic[4] = {'M', 'G', 'D', '2'};
static const uint8_t state_magic1[4] = {'M', 'G', 'D', '1'};

mg_err mg_dev_state_encode(const mg_dev_state *st, uint8_t *out, size_t cap, size_t *out_len)
{
    if (st == NULL || out == NULL || out_len == NULL)
        return MG_ERR_ARG;
    *out_len = 0;
    MG_ENSURE(state_ok(st), MG_ERR_ARG);
    mg_wr w = mg_wr_make(out, cap);
    mg_wr_bytes(&w, state_magic, 4);
    mg_wr_be(&w, st->cntr_in, 5);
    mg_wr_be(&w, st->lease_end, 5);
    mg_wr_u8(&w, st->mo_version);
    for (size_t i = 0; i < 2; i++) {
        const mg_dev_keyver *k = &st->keys[i];
        mg_wr_u8(&w, k->version);
        mg_wr_u8(&w, k->alg);
        mg_wr_u8(&w, k->len);
        mg_wr_bytes(&w, k->kic, k->len);
        mg_wr_bytes(&w, k->kid, k->len);
    }
    const mg_ota_hdr *h = &st->pending.hdr;
    mg_wr_u8(&w, st->pending.kind);
    mg_wr_be16(&w, h->spi);
    mg_wr_u8(&w, h->kic);
    mg_wr_u8(&w, h->kid);
    mg_wr_bytes(&w, h->tar, 3);
    mg_wr_be(&w, h->cntr, 5);
    mg_wr_be16(&w, st->pending.len);
    mg_wr_bytes(&w, st->pending.data, st->pending.len);
    wr_trust(&w, &st->trust);
    if (w.err == MG_OK) {
        mg_iov v = {out, w.off};
        mg_wr_be(&w, mg_crc32(&v, 1), 4);
    }
    if (w.err != MG_OK) {
        mg_wipe(out, cap);
        return w.err;
    }
    *out_len = w.off;
    return MG_OK;
}

mg_err mg_dev_state_decode(const uint8_t *p, size_t n, mg_dev_state *st)
{
    if (p == NULL || st == NULL)
        return MG_ERR_ARG;
    mg_wipe(st, sizeof(*st));
    MG_ENSURE(n >= 8, MG_ERR_TRUNC);
    mg_iov v = {p, n - 4};
    mg_rd crc = mg_rd_make(p + n - 4, 4);
    MG_ENSURE(mg_rd_be(&crc, 4) == mg_crc32(&v, 1), MG_ERR_FORMAT);
    mg_rd r = mg_rd_make(p, n - 4);
    const uint8_t *m = mg_rd_take(&r, 4);
    bool v1 = m != NULL && memcmp(m, state_magic1, 4) == 0;
    MG_ENSURE(v1 || (m != NULL && memcmp(m, state_magic, 4) == 0), MG_ERR_FORMAT);
    st->cntr_in = mg_rd_be(&r, 5);
    st->lease_end = mg_rd_be(&r, 5);
    st->mo_version = mg_rd_u8(&r);
    for (size_t i = 0; i < 2; i++) {
        mg_dev_keyver *k = &st->keys[i];
        k->version = mg_rd_u8(&r);
        k->alg = mg_rd_u8(&r);
        k->len = mg_rd_u8(&r);
        if (k->len > MG_KEY_MAX) {
            mg_wipe(st, sizeof(*st));
            return MG_ERR_FORMAT;
        }
        mg_rd_copy(&r, k->kic, k->len);
        mg_rd_copy(&r, k->kid, k->len);
    }
    mg_ota_hdr *h = &st->pending.hdr;
    st->pending.kind = mg_rd_u8(&r);
    h->spi = mg_rd_be16(&r);
    h->kic = mg_rd_u8(&r);
    h->kid = mg_rd_u8(&r);
    mg_rd_copy(&r, h->tar, 3);
    h->cntr = mg_rd_be(&r, 5);
    st->pending.len = mg_rd_be16(&r);
    if (st->pending.len > MG_DEV_CMD_MAX) {
        mg_wipe(st, sizeof(*st));
        return MG_ERR_FORMAT;
    }
    mg_rd_copy(&r, st->pending.data, st->pending.len);
    if (!v1 && !rd_trust(&r, &st->trust)) {
        mg_wipe(st, sizeof(*st));
        return MG_ERR_FORMAT;
    }
    mg_err e = r.err != MG_OK ? r.err : mg_rd_left(&r) != 0 ? MG_ERR_LENGTH : MG_OK;
    if (e == MG_OK && !state_ok(st))
        e = MG_ERR_FORMAT;
    if (e != MG_OK)
        mg_wipe(st, sizeof(*st));
    return e;
}
