/*
 * The secured-SMS endpoint: the profile of docs/sms-profile.md, once.
 * Portable C11: no allocation, no I/O.
 */
#include "m2mguard/sms.h"

#include <string.h>

#include "buf.h"

const uint8_t mg_sms_tar_backend[3] = {0x4D, 0x47, 0x00};

/* Offsets in a command packet (CPL..end) and in a response packet (from its UDH). */
enum { CMD_KIC = 5, CMD_KID = 6, CMD_TAR = 7, RSP_TAR = 6, RSP_MIN = 9 };

#define SPI1_PROFILE (MG_SPI1_CC | MG_SPI1_CIPHER | MG_SPI1_CNTR_HIGHER) /* 0x16 */
#define SPI2_POR                                                                 \
    (MG_SPI2_POR_REQUIRED | (MG_SPI1_CC << MG_SPI2_POR_RCCCDS_SHIFT) | MG_SPI2_POR_CIPHER | \
     MG_SPI2_POR_SUBMIT) /* 0x39 */

const uint8_t *mg_sms_tar(mg_sms_dir dir, const uint8_t device_tar[3])
{
    return dir == MG_SMS_MO ? mg_sms_tar_backend : device_tar;
}

uint16_t mg_sms_spi(bool por)
{
    return MG_SPI(SPI1_PROFILE, por ? SPI2_POR : 0x00u);
}

uint8_t mg_sms_ki(mg_alg alg, unsigned version)
{
    unsigned nib;
    switch (alg) {
    case MG_ALG_AES: nib = MG_KIC_AES_CBC; break;
    case MG_ALG_3DES2: nib = MG_KIC_3DES2_CBC; break;
    case MG_ALG_3DES3: nib = MG_KIC_3DES3_CBC; break;
    default: return 0;
    }
    if (version < 1 || version > 15)
        return 0;
    return (uint8_t)(version << 4 | nib);
}

mg_alg mg_sms_ki_alg(uint8_t ki)
{
    switch (ki & MG_KI_ALG_MASK) {
    case MG_KIC_AES_CBC: return MG_ALG_AES;
    case MG_KIC_3DES2_CBC: return MG_ALG_3DES2;
    case MG_KIC_3DES3_CBC: return MG_ALG_3DES3;
    default: return MG_ALG_NONE;
    }
}

void mg_sms_keys(mg_ota_keys *out, mg_key *kic, mg_key *kid, unsigned version)
{
    out->kic = kic;
    out->kid = kid;
    out->kic_index = (uint8_t)version;
    out->kid_index = (uint8_t)version;
}

/* ---- data coding ----------------------------------------------------------- */

mg_err mg_sms_dcs_check(uint8_t dcs, bool smpp, const char **why)
{
    static const char *const w7 = "7-bit GSM coding alters octets (secured SMS need 8-bit data)";
    static const char *const wucs2 = "UCS2 coding alters octets (secured SMS need 8-bit data)";
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = "";
    if (smpp && dcs < 0x10u) {
        /* SMPP 3.4 §5.2.19: 02 and 04 are "octet unspecified (8-bit binary)" */
        if (dcs == 0x02u || dcs == 0x04u)
            return MG_OK;
        *why = dcs == 0x08u ? wucs2 : "SMPP text data coding alters octets (secured SMS need 8-bit data)";
        return MG_ERR_SECURITY_LEVEL;
    }
    unsigned grp = dcs >> 4;
    if (grp <= 0x7u) { /* 00xx general, 01xx general with automatic deletion */
        if (dcs & 0x20u) {
            *why = "compressed data coding (TS 23.038 §4)";
            return MG_ERR_SECURITY_LEVEL;
        }
        switch ((dcs >> 2) & 3u) {
        case 1: return MG_OK; /* 8-bit data */
        case 0: *why = w7; return MG_ERR_SECURITY_LEVEL;
        case 2: *why = wucs2; return MG_ERR_SECURITY_LEVEL;
        default: *why = "reserved alphabet in the data coding"; return MG_ERR_SECURITY_LEVEL;
        }
    }
    if (grp == 0xFu) { /* data coding / message class */
        if (dcs & 0x04u)
            return MG_OK;
        *why = w7;
        return MG_ERR_SECURITY_LEVEL;
    }
    if (grp >= 0xCu) {
        *why = "message waiting indication coding (text, not data)";
        return MG_ERR_SECURITY_LEVEL;
    }
    *why = "reserved data coding group";
    return MG_ERR_SECURITY_LEVEL;
}

/* ---- inbound classification ------------------------------------------------ */

mg_err mg_sms_peek_cmd(const uint8_t *pkt, size_t len, mg_sms_peek *pk, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = "";
    if (pkt == NULL || pk == NULL)
        return MG_ERR_ARG;
    if (len > MG_SMS_PKT_MAX) {
        *why = "secured packet longer than the profile allows (512 octets)";
        return MG_ERR_LENGTH;
    }
    if (len < MG_OTA_CMD_HDR_MIN) {
        *why = "secured packet shorter than its header";
        return MG_ERR_TRUNC;
    }
    pk->kind = MG_SMS_COMMAND;
    pk->pkt = pkt;
    pk->pkt_len = len;
    pk->kic = pkt[CMD_KIC];
    pk->kid = pkt[CMD_KID];
    pk->key_version = MG_KI_INDEX(pkt[CMD_KID]);
    memcpy(pk->tar, pkt + CMD_TAR, 3);
    return MG_OK;
}

mg_err mg_sms_classify(const mg_sms_in *in, mg_sms_peek *pk, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = "";
    if (in == NULL || pk == NULL || (in->ud == NULL && in->ud_len > 0))
        return MG_ERR_ARG;
    memset(pk, 0, sizeof(*pk));
    /* With SAR TLVs, segments after the first carry no UDH at all: the SMSC
     * moved their only IE (the concatenation IE) into the TLVs. */
    if (!in->udhi && in->sar == NULL) {
        *why = "not a secured SMS: no user data header";
        return MG_ERR_SECURITY_LEVEL;
    }
    if (in->pid != 0x00u) {
        *why = "not a secured SMS: TP-PID is not 00";
        return MG_ERR_SECURITY_LEVEL;
    }
    MG_TRY(mg_sms_dcs_check(in->dcs, in->smpp_dcs, why));
    mg_udh u = {NULL, 0, 0};
    if (in->udhi && mg_udh_parse(in->ud, in->ud_len, &u) != MG_OK) {
        *why = "malformed user data header";
        return MG_ERR_FORMAT;
    }
    mg_udh_ie ie;
    mg_concat_info ci;
    bool concat = mg_udh_concat(&u, &ci);
    if (in->sar != NULL) {
        if (concat) {
            *why = "both SAR TLVs and a concatenation IE";
            return MG_ERR_FORMAT;
        }
        ci = *in->sar;
        if (ci.total < 1 || ci.seq < 1 || ci.seq > ci.total) {
            *why = "SAR segment number out of range";
            return MG_ERR_FORMAT;
        }
        concat = true;
    }
    bool cpi = mg_udh_find(&u, MG_IEI_CPI, &ie);
    bool rpi = mg_udh_find(&u, MG_IEI_RPI, &ie);
    if (cpi && rpi) {
        *why = "both command and response packet identifiers";
        return MG_ERR_FORMAT;
    }
    const uint8_t *body = in->ud + u.len;
    size_t body_len = in->ud_len - u.len;
    if (concat && ci.total > 1) {
        if (rpi) {
            *why = "concatenated response packet (the profile sends PoRs in one SMS)";
            return MG_ERR_UNSUPPORTED;
        }
        if (ci.total > MG_SMS_MAX_PARTS) {
            *why = "concatenated secured packet of more parts than the profile allows";
            return MG_ERR_UNSUPPORTED;
        }
        if (body_len == 0 || body_len > MG_SMS_SEG_MAX) {
            *why = "segment of a secured packet empty or longer than one SMS allows";
            return MG_ERR_LENGTH;
        }
        if (ci.seq != 1 && cpi) {
            *why = "command packet identifier outside the first segment";
            return MG_ERR_FORMAT;
        }
        pk->kind = MG_SMS_SEGMENT;
        pk->pkt = body;
        pk->pkt_len = body_len;
        pk->concat = ci;
        pk->first_has_cpi = cpi;
        return MG_OK;
    }
    if (rpi) {
        /* The response packet starts at its UDH, which must be exactly 02 71 00. */
        if (u.len != MG_OTA_RSP_UDH_LEN) {
            *why = "response packet with other IEs in its UDH";
            return MG_ERR_FORMAT;
        }
        if (in->ud_len < RSP_MIN) {
            *why = "response packet shorter than its header";
            return MG_ERR_TRUNC;
        }
        if (in->ud_len > MG_SMS_RSP_MAX) {
            *why = "response packet longer than one SMS";
            return MG_ERR_LENGTH;
        }
        pk->kind = MG_SMS_RESPONSE;
        pk->pkt = in->ud;
        pk->pkt_len = in->ud_len;
        memcpy(pk->tar, in->ud + RSP_TAR, 3);
        return MG_OK;
    }
    if (!cpi) {
        *why = "no secured packet (no UDH IE 70 or 71)";
        return MG_ERR_SECURITY_LEVEL;
    }
    return mg_sms_peek_cmd(body, body_len, pk, why);
}

/* ---- reassembly -------------------------------------------------------------- */

void mg_sms_partial_init(mg_sms_partial *p)
{
    mg_wipe(p, sizeof(*p));
}

bool mg_sms_partial_match(const mg_sms_partial *p, const mg_sms_peek *pk)
{
    return p->state == 1 && pk->kind == MG_SMS_SEGMENT && p->ref == pk->concat.ref &&
           p->ref16 == pk->concat.ref16 && p->total == pk->concat.total;
}

mg_err mg_sms_partial_add(mg_sms_partial *p, const mg_sms_peek *pk, uint8_t *out, size_t cap,
                          size_t *out_len, bool *done)
{
    if (p == NULL || pk == NULL || out == NULL || out_len == NULL || done == NULL ||
        pk->kind != MG_SMS_SEGMENT || pk->pkt_len == 0 || pk->pkt_len > MG_SMS_SEG_MAX ||
        pk->concat.seq < 1 || pk->concat.seq > pk->concat.total ||
        pk->concat.total > MG_SMS_MAX_PARTS)
        return MG_ERR_ARG;
    *done = false;
    *out_len = 0;
    if (p->state == 1 && !mg_sms_partial_match(p, pk))
        return MG_ERR_STATE;
    if (pk->concat.seq == 1 && !pk->first_has_cpi) {
        mg_sms_partial_init(p);
        return MG_ERR_SECURITY_LEVEL;
    }
    size_t i = pk->concat.seq - 1u;
    uint8_t *slot = p->buf + i * MG_SMS_SEG_MAX;
    if (p->state == 1 && p->len[i] != 0) {
        if (p->len[i] == pk->pkt_len && memcmp(slot, pk->pkt, pk->pkt_len) == 0)
            return MG_OK; /* a retransmission */
        return MG_ERR_FORMAT;
    }
    if (p->state == 0) {
        mg_sms_partial_init(p);
        p->state = 1;
        p->ref = pk->concat.ref;
        p->ref16 = pk->concat.ref16;
        p->total = pk->concat.total;
    }
    memcpy(slot, pk->pkt, pk->pkt_len);
    p->len[i] = (uint8_t)pk->pkt_len;
    size_t total = 0;
    for (size_t k = 0; k < p->total; k++) {
        if (p->len[k] == 0)
            return MG_OK; /* more to come */
        total += p->len[k];
    }
    if (total > cap || total > MG_SMS_PKT_MAX) {
        mg_sms_partial_init(p);
        return MG_ERR_LENGTH;
    }
    size_t off = 0;
    for (size_t k = 0; k < p->total; k++) {
        memcpy(out + off, p->buf + k * MG_SMS_SEG_MAX, p->len[k]);
        off += p->len[k];
    }
    mg_sms_partial_init(p);
    *out_len = off;
    *done = true;
    return MG_OK;
}

/* ---- sending ------------------------------------------------------------------- */

static mg_err hdr_of(mg_sms_dir dir, const uint8_t device_tar[3], const mg_ota_keys *keys,
                     bool por, uint64_t cntr, mg_ota_hdr *h)
{
    if (keys == NULL || keys->kic == NULL || keys->kid == NULL || device_tar == NULL ||
        (dir != MG_SMS_MT && dir != MG_SMS_MO) || keys->kic_index != keys->kid_index)
        return MG_ERR_ARG;
    memset(h, 0, sizeof(*h));
    h->spi = mg_sms_spi(por);
    h->kic = mg_sms_ki(keys->kic->alg, keys->kic_index);
    h->kid = mg_sms_ki(keys->kid->alg, keys->kid_index);
    MG_ENSURE(h->kic != 0 && h->kid != 0, MG_ERR_KEY);
    memcpy(h->tar, mg_sms_tar(dir, device_tar), 3);
    h->cntr = cntr;
    return MG_OK;
}

mg_err mg_sms_seal(mg_sms_dir dir, const uint8_t device_tar[3], const mg_ota_keys *keys,
                   uint64_t cntr, bool por, const uint8_t *data, size_t len, uint8_t *pkt,
                   size_t cap, size_t *pkt_len)
{
    mg_ota_hdr h;
    if (pkt_len == NULL)
        return MG_ERR_ARG;
    *pkt_len = 0;
    MG_TRY(hdr_of(dir, device_tar, keys, por, cntr, &h));
    MG_ENSURE(len <= MG_SMS_DATA_MAX, MG_ERR_BUF);
    size_t n = 0;
    MG_TRY(mg_ota_cmd_pack(&h, keys, data, len, pkt, cap, &n));
    if (n > MG_SMS_PKT_MAX) {
        mg_wipe(pkt, n);
        return MG_ERR_BUF;
    }
    *pkt_len = n;
    return MG_OK;
}

static const mg_udh_ie cpi_ie = {MG_IEI_CPI, 0, NULL};

mg_err mg_sms_parts(size_t pkt_len, size_t *n)
{
    if (n == NULL || pkt_len == 0 || pkt_len > MG_SMS_PKT_MAX)
        return MG_ERR_ARG;
    if (pkt_len + 3 <= MG_SMS_UD_MAX) {
        *n = 1;
        return MG_OK;
    }
    /* segment 1: UDH 07 00 03 ref n 1 70 00 (8 octets), others 05 00 03 ref n i (6) */
    size_t rest = pkt_len > MG_SMS_UD_MAX - 8 ? pkt_len - (MG_SMS_UD_MAX - 8) : 0;
    *n = 1 + (rest + MG_SMS_SEG_MAX - 1) / MG_SMS_SEG_MAX;
    return *n <= MG_SMS_MAX_PARTS ? MG_OK : MG_ERR_LENGTH;
}

mg_err mg_sms_part(const uint8_t *pkt, size_t pkt_len, uint8_t ref, size_t seq, uint8_t *ud,
                   size_t cap, size_t *ud_len)
{
    size_t n;
    if (pkt == NULL || ud == NULL || ud_len == NULL)
        return MG_ERR_ARG;
    *ud_len = 0;
    MG_TRY(mg_sms_parts(pkt_len, &n));
    MG_ENSURE(seq >= 1 && seq <= n, MG_ERR_ARG);
    if (n == 1) {
        MG_ENSURE(cap >= pkt_len + 3, MG_ERR_BUF);
        ud[0] = 0x02;
        ud[1] = MG_IEI_CPI;
        ud[2] = 0x00;
        memcpy(ud + 3, pkt, pkt_len);
        *ud_len = pkt_len + 3;
        return MG_OK;
    }
    mg_concat_spec s = {pkt, pkt_len, &cpi_ie, 1, NULL, 0, ref, false};
    size_t parts, udh_len;
    MG_TRY(mg_concat_parts(&s, &parts));
    MG_ENSURE(parts == n, MG_ERR_LENGTH);
    return mg_concat_part(&s, seq, ud, cap, ud_len, &udh_len);
}

/* ---- receiving ------------------------------------------------------------------- */

mg_err mg_sms_open(mg_sms_dir dir, const uint8_t device_tar[3], uint8_t *pkt, size_t len,
                   const mg_ota_keys *keys, uint64_t last_cntr, mg_ota_cmd *cmd)
{
    mg_sms_peek pk;
    if (device_tar == NULL || cmd == NULL || (dir != MG_SMS_MT && dir != MG_SMS_MO))
        return MG_ERR_ARG;
    memset(cmd, 0, sizeof(*cmd));
    MG_TRY(mg_sms_peek_cmd(pkt, len, &pk, NULL));
    const uint8_t *want = mg_sms_tar(dir, device_tar);
    /* Cheap, before any crypto: a packet for the other direction (TAR public). */
    if (memcmp(pk.tar, want, 3) != 0)
        return MG_ERR_TAR;
    mg_err e = mg_ota_cmd_open(pkt, len, keys, &mg_ota_msl_default, last_cntr, cmd);
    if (e == MG_OK && memcmp(cmd->hdr.tar, want, 3) != 0) { /* cannot happen: same octets */
        memset(cmd, 0, sizeof(*cmd));
        e = MG_ERR_TAR;
    }
    return e;
}

/* ---- proof of receipt -------------------------------------------------------------- */

mg_err mg_sms_por_seal(const mg_ota_hdr *cmd, const mg_ota_keys *keys, uint8_t status,
                       const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (cmd == NULL || out_len == NULL)
        return MG_ERR_ARG;
    *out_len = 0;
    mg_ota_rsp r;
    memset(&r, 0, sizeof(r));
    memcpy(r.tar, cmd->tar, 3);
    r.cntr = cmd->cntr;
    r.status = status;
    r.data = data;
    r.data_len = len;
    size_t n = 0;
    MG_TRY(mg_ota_rsp_pack(cmd, keys, &r, out, cap, &n));
    if (n > MG_SMS_RSP_MAX) {
        mg_wipe(out, n);
        return MG_ERR_BUF;
    }
    *out_len = n;
    return MG_OK;
}

mg_err mg_sms_por_open(mg_sms_dir dir, const uint8_t device_tar[3], const mg_ota_keys *keys,
                       uint8_t *pkt, size_t len, mg_ota_rsp *r)
{
    mg_ota_hdr h;
    if (pkt == NULL || r == NULL)
        return MG_ERR_ARG;
    memset(r, 0, sizeof(*r));
    MG_TRY(hdr_of(dir, device_tar, keys, true, 0, &h));
    MG_ENSURE(len >= RSP_MIN, MG_ERR_TRUNC);
    MG_ENSURE(len <= MG_SMS_RSP_MAX, MG_ERR_LENGTH);
    /* Cheap, before any crypto: a PoR that carries the other direction's TAR
     * is one this side made itself (reflected). */
    if (memcmp(pkt + RSP_TAR, h.tar, 3) != 0)
        return MG_ERR_TAR;
    mg_err e = mg_ota_rsp_open(&h, keys, pkt, len, r);
    if (e == MG_OK && memcmp(r->tar, h.tar, 3) != 0)
        e = MG_ERR_TAR;
    if (e != MG_OK)
        memset(r, 0, sizeof(*r));
    return e;
}

/* ---- key delivery ---------------------------------------------------------------- */

bool mg_sms_key_len_ok(mg_alg alg, size_t len)
{
    switch (alg) {
    case MG_ALG_AES: return len == 16 || len == 24 || len == 32;
    case MG_ALG_3DES2: return len == 16;
    case MG_ALG_3DES3: return len == 24;
    default: return false;
    }
}

mg_err mg_sms_keydeliv_encode(const mg_sms_keydeliv *k, uint8_t *out, size_t cap, size_t *out_len)
{
    if (k == NULL || out == NULL || out_len == NULL)
        return MG_ERR_ARG;
    *out_len = 0;
    uint8_t ki = mg_sms_ki(k->alg, k->version);
    MG_ENSURE(ki != 0 && mg_sms_key_len_ok(k->alg, k->len), MG_ERR_ARG);
    size_t n = 4 + 2 * k->len;
    MG_ENSURE(n <= cap, MG_ERR_BUF);
    out[0] = MG_SMS_KEYDELIV_TAG;
    out[1] = (uint8_t)k->version;
    out[2] = (uint8_t)(ki & MG_KI_ALG_MASK);
    out[3] = (uint8_t)k->len;
    memcpy(out + 4, k->kic, k->len);
    memcpy(out + 4 + k->len, k->kid, k->len);
    *out_len = n;
    return MG_OK;
}

bool mg_sms_is_keydeliv(const uint8_t *p, size_t n)
{
    return p != NULL && n > 0 && p[0] == MG_SMS_KEYDELIV_TAG;
}

mg_err mg_sms_keydeliv_decode(const uint8_t *p, size_t n, mg_sms_keydeliv *out)
{
    if (p == NULL || out == NULL)
        return MG_ERR_ARG;
    mg_wipe(out, sizeof(*out));
    MG_ENSURE(n >= 4 && p[0] == MG_SMS_KEYDELIV_TAG, MG_ERR_FORMAT);
    MG_ENSURE(p[2] <= MG_KI_ALG_MASK, MG_ERR_FORMAT);
    mg_alg alg = mg_sms_ki_alg(p[2]);
    MG_ENSURE(alg != MG_ALG_NONE, MG_ERR_FORMAT);
    size_t len = p[3];
    MG_ENSURE(p[1] >= 1 && p[1] <= 15 && mg_sms_key_len_ok(alg, len), MG_ERR_FORMAT);
    MG_ENSURE(n == 4 + 2 * len, MG_ERR_LENGTH);
    out->version = p[1];
    out->alg = alg;
    out->len = len;
    memcpy(out->kic, p + 4, len);
    memcpy(out->kid, p + 4 + len, len);
    return MG_OK;
}

bool mg_sms_text_ok(const uint8_t *p, size_t n)
{
    if (p == NULL || n == 0 || n > MG_SMS_DATA_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20u || p[i] > 0x7Eu)
            return false;
    return true;
}

mg_sms_content mg_sms_content_kind(const uint8_t *d, size_t n)
{
    if (d == NULL || n == 0 || n > MG_SMS_DATA_MAX)
        return MG_SMS_CONTENT_BAD;
    if (d[0] == MG_SMS_KEYDELIV_TAG)
        return MG_SMS_CONTENT_KEYDELIV;
    if (d[0] == MG_SMS_SIGN1_TAG0 && n >= 2)
        return MG_SMS_CONTENT_SIGNED;
    if (d[0] == MG_SMS_SIGN_TAG0 && n >= 3 && d[1] == MG_SMS_SIGN_TAG1)
        return MG_SMS_CONTENT_SIGNED;
    if (mg_sms_text_ok(d, n))
        return MG_SMS_CONTENT_TEXT;
    return MG_SMS_CONTENT_BAD;
}

const char *mg_sms_content_str(mg_sms_content k)
{
    switch (k) {
    case MG_SMS_CONTENT_TEXT: return "text";
    case MG_SMS_CONTENT_KEYDELIV: return "keydeliv";
    case MG_SMS_CONTENT_SIGNED: return "signed";
    case MG_SMS_CONTENT_BAD: break;
    }
    return "bad";
}
