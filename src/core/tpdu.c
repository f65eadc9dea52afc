/*
 * SMS transfer layer codec (3GPP TS 23.040 §9.2.2.1 SMS-DELIVER, §9.2.2.2
 * SMS-SUBMIT), addresses (§9.1.2.5), timestamps (§9.2.3.11), the data
 * coding scheme (TS 23.038 §4), GSM 7-bit packing (TS 23.038 §6.1.2.1) and
 * the PDU-mode framing of TS 27.005. Reads only through mg_rd, writes only
 * through mg_wr; no allocation, no I/O.
 */
#include "m2mguard/tpdu.h"

#include "buf.h"

/* ---- addresses ---------------------------------------------------------------- */

static const char bcd_chars[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                   '8', '9', '*', '#', 'a', 'b', 'c', '?'};

mg_err mg_sms_addr_from_str(mg_sms_addr *a, const char *s, size_t n)
{
    MG_ENSURE(a != NULL && s != NULL, MG_ERR_ARG);
    memset(a, 0, sizeof(*a));
    a->toa = 0x81; /* ext | TON unknown | NPI ISDN/E.164 */
    if (n > 0 && s[0] == '+') {
        a->toa = 0x91; /* ext | TON international | NPI ISDN/E.164 */
        s++;
        n--;
    }
    MG_ENSURE(n >= 1 && n <= MG_SMS_ADDR_DIGITS_MAX, MG_ERR_ARG);
    memset(a->val, 0xff, sizeof(a->val));
    for (size_t i = 0; i < n; i++) {
        unsigned v = 16;
        for (unsigned k = 0; k < 15; k++)
            if (bcd_chars[k] == s[i])
                v = k;
        MG_ENSURE(v < 15, MG_ERR_ARG);
        uint8_t *o = &a->val[i / 2];
        /* §9.1.2.3: the first digit goes in bits 3..0 of the octet. */
        *o = (i % 2 == 0) ? (uint8_t)((*o & 0xf0) | v) : (uint8_t)((*o & 0x0f) | (v << 4));
    }
    for (size_t i = (n + 1) / 2; i < sizeof(a->val); i++)
        a->val[i] = 0;
    a->len = (uint8_t)n;
    return MG_OK;
}

mg_err mg_sms_addr_to_str(const mg_sms_addr *a, char *out, size_t cap)
{
    MG_ENSURE(a != NULL && out != NULL && cap > 0, MG_ERR_ARG);
    out[0] = '\0';
    MG_ENSURE(a->len <= MG_SMS_ADDR_DIGITS_MAX, MG_ERR_FORMAT);
    MG_ENSURE(mg_sms_addr_ton(a) != MG_TON_ALPHANUMERIC, MG_ERR_UNSUPPORTED);
    size_t o = 0;
    bool plus = mg_sms_addr_ton(a) == MG_TON_INTERNATIONAL;
    MG_ENSURE(cap > (size_t)a->len + (plus ? 1u : 0u), MG_ERR_BUF);
    if (plus)
        out[o++] = '+';
    for (size_t i = 0; i < a->len; i++) {
        unsigned v = (i % 2 == 0) ? (a->val[i / 2] & 15u) : (unsigned)(a->val[i / 2] >> 4);
        if (v == 15) {
            out[0] = '\0';
            return MG_ERR_FORMAT;
        }
        out[o++] = bcd_chars[v];
    }
    out[o] = '\0';
    return MG_OK;
}

/* Address field: length (semi-octets), TOA, value. */
static void addr_read(mg_rd *r, mg_sms_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->len = mg_rd_u8(r);
    a->toa = mg_rd_u8(r);
    if (a->len > MG_SMS_ADDR_DIGITS_MAX) {
        if (r->err == MG_OK)
            r->err = MG_ERR_FORMAT;
        return;
    }
    mg_rd_copy(r, a->val, (a->len + 1u) / 2u);
}

static void addr_write(mg_wr *w, const mg_sms_addr *a)
{
    mg_wr_u8(w, a->len);
    mg_wr_u8(w, a->toa);
    mg_wr_bytes(w, a->val, (a->len + 1u) / 2u);
}

/* ---- timestamps ------------------------------------------------------------------ */

/* One swapped-BCD octet: first digit in bits 3..0. Returns 0xff if not BCD. */
static uint8_t bcd_swapped(uint8_t o)
{
    unsigned hi = o & 15u, lo = o >> 4;
    if (hi > 9 || lo > 9)
        return 0xff;
    return (uint8_t)(hi * 10u + lo);
}

mg_err mg_sms_time_decode(const uint8_t in[7], mg_sms_time *t)
{
    static const uint8_t max[6] = {99, 12, 31, 23, 59, 59};
    static const uint8_t min[6] = {0, 1, 1, 0, 0, 0};
    uint8_t v[6];
    MG_ENSURE(in != NULL && t != NULL, MG_ERR_ARG);
    for (size_t i = 0; i < 6; i++) {
        v[i] = bcd_swapped(in[i]);
        MG_ENSURE(v[i] >= min[i] && v[i] <= max[i], MG_ERR_FORMAT);
    }
    /* §9.2.3.11: bit 3 of the 7th octet is the sign of the offset. */
    uint8_t q = bcd_swapped((uint8_t)(in[6] & 0xf7));
    MG_ENSURE(q != 0xff, MG_ERR_FORMAT);
    t->year = v[0];
    t->month = v[1];
    t->day = v[2];
    t->hour = v[3];
    t->minute = v[4];
    t->second = v[5];
    t->tz = (int8_t)((in[6] & 0x08) ? -(int)q : (int)q);
    return MG_OK;
}

mg_err mg_sms_time_encode(const mg_sms_time *t, uint8_t out[7])
{
    MG_ENSURE(t != NULL && out != NULL, MG_ERR_ARG);
    const uint8_t v[6] = {t->year, t->month, t->day, t->hour, t->minute, t->second};
    static const uint8_t max[6] = {99, 12, 31, 23, 59, 59};
    static const uint8_t min[6] = {0, 1, 1, 0, 0, 0};
    MG_ENSURE(t->tz >= -79 && t->tz <= 79, MG_ERR_ARG);
    for (size_t i = 0; i < 6; i++) {
        MG_ENSURE(v[i] >= min[i] && v[i] <= max[i], MG_ERR_ARG);
        out[i] = (uint8_t)((v[i] / 10u) | (v[i] % 10u) << 4);
    }
    unsigned q = (unsigned)(t->tz < 0 ? -t->tz : t->tz);
    out[6] = (uint8_t)((q / 10u) | (q % 10u) << 4 | (t->tz < 0 ? 0x08u : 0u));
    return MG_OK;
}

/* ---- data coding scheme ------------------------------------------------------------- */

mg_alphabet mg_dcs_alphabet(uint8_t dcs)
{
    unsigned g = dcs >> 4;
    if (g <= 7) { /* 00xx general, 01xx automatic deletion: bits 3..2 */
        unsigned a = (dcs >> 2) & 3u;
        return a == 1 ? MG_ALPHABET_8BIT : a == 2 ? MG_ALPHABET_UCS2 : MG_ALPHABET_GSM7;
    }
    if (g == 0xe) /* message waiting, store, UCS2 */
        return MG_ALPHABET_UCS2;
    if (g == 0xf) /* data coding / message class: bit 2 */
        return (dcs & 4u) ? MG_ALPHABET_8BIT : MG_ALPHABET_GSM7;
    return MG_ALPHABET_GSM7; /* 1000..1011 reserved, 1100/1101: GSM 7-bit */
}

bool mg_dcs_udl_octets(uint8_t dcs)
{
    /* §9.2.3.16: compressed user data (bit 5 in groups 00xx/01xx) counts octets. */
    if ((dcs >> 4) <= 7 && (dcs & 0x20u))
        return true;
    return mg_dcs_alphabet(dcs) != MG_ALPHABET_GSM7;
}

/* ---- GSM 7-bit -------------------------------------------------------------------- */

mg_err mg_gsm7_unpack(const uint8_t *in, size_t in_len, size_t skip, size_t nsept,
                      uint8_t *out, size_t cap)
{
    MG_ENSURE((in != NULL || in_len == 0) && (out != NULL || cap == 0), MG_ERR_ARG);
    MG_ENSURE(nsept <= cap, MG_ERR_BUF);
    MG_ENSURE(skip <= 8 * in_len && nsept <= (8 * in_len - skip) / 7, MG_ERR_TRUNC);
    for (size_t i = 0; i < nsept; i++) {
        size_t bit = skip + 7 * i, o = bit / 8, sh = bit % 8;
        mg_rd r = mg_rd_make(in, in_len);
        r.off = o;
        unsigned v = mg_rd_u8(&r);
        if (sh > 1) /* the septet continues in the next octet */
            v |= (unsigned)mg_rd_u8(&r) << 8;
        MG_TRY(r.err);
        out[i] = (uint8_t)((v >> sh) & 0x7fu);
    }
    return MG_OK;
}

mg_err mg_gsm7_pack(const uint8_t *sept, size_t nsept, size_t skip, uint8_t *out, size_t cap,
                    size_t *out_len)
{
    MG_ENSURE((sept != NULL || nsept == 0) && out_len != NULL && skip < 7, MG_ERR_ARG);
    size_t n = (skip + 7 * nsept + 7) / 8;
    mg_wr w = mg_wr_make(out, cap);
    uint8_t *o = mg_wr_reserve(&w, n);
    MG_TRY(w.err);
    if (n > 0)
        memset(o, 0, n);
    for (size_t i = 0; i < nsept; i++) {
        MG_ENSURE(sept[i] < 128, MG_ERR_ARG);
        size_t bit = skip + 7 * i, k = bit / 8, sh = bit % 8;
        unsigned v = (unsigned)sept[i] << sh;
        o[k] = (uint8_t)(o[k] | (v & 0xffu));
        if (v > 0xffu)
            o[k + 1] = (uint8_t)(o[k + 1] | (v >> 8));
    }
    *out_len = n;
    return MG_OK;
}

/* ---- TPDU ------------------------------------------------------------------------- */

size_t mg_vp_len(mg_vpf vpf)
{
    return vpf == MG_VPF_NONE ? 0u : vpf == MG_VPF_RELATIVE ? 1u : 7u;
}

/* Septets that a UDH of udh_len octets occupies, fill bits included. */
static size_t udh_septets(size_t udh_len)
{
    return (8 * udh_len + 6) / 7;
}

#define FIELD(f) (t->err_field = (f))

static mg_err tpdu_decode(mg_rd *r, mg_tpdu *t)
{
    FIELD(MG_TF_FIRST_OCTET);
    uint8_t fo = mg_rd_u8(r);
    MG_TRY(r->err);
    unsigned mti = fo & 3u;
    MG_ENSURE(mti <= 1, MG_ERR_UNSUPPORTED);
    t->type = (mg_tpdu_type)mti;
    t->rp = (fo & 0x80) != 0;
    t->udhi = (fo & 0x40) != 0;
    t->sr = (fo & 0x20) != 0;
    if (t->type == MG_TPDU_SUBMIT) {
        t->rd = (fo & 0x04) != 0;
        t->vpf = (mg_vpf)((fo >> 3) & 3u);
        FIELD(MG_TF_MR);
        t->mr = mg_rd_u8(r);
        MG_TRY(r->err);
    } else {
        t->mms = (fo & 0x04) != 0;
        t->lp = (fo & 0x08) != 0;
    }
    FIELD(MG_TF_ADDR);
    addr_read(r, &t->addr);
    MG_TRY(r->err);
    FIELD(MG_TF_PID);
    t->pid = mg_rd_u8(r);
    MG_TRY(r->err);
    FIELD(MG_TF_DCS);
    t->dcs = mg_rd_u8(r);
    MG_TRY(r->err);
    if (t->type == MG_TPDU_SUBMIT) {
        FIELD(MG_TF_VP);
        mg_rd_copy(r, t->vp, mg_vp_len(t->vpf));
    } else {
        FIELD(MG_TF_SCTS);
        mg_rd_copy(r, t->scts, sizeof(t->scts));
    }
    MG_TRY(r->err);
    FIELD(MG_TF_UDL);
    t->udl = mg_rd_u8(r);
    MG_TRY(r->err);
    bool octets = mg_dcs_udl_octets(t->dcs);
    size_t n = octets ? t->udl : ((size_t)t->udl * 7 + 7) / 8;
    MG_ENSURE(n <= MG_SMS_UD_MAX, MG_ERR_LENGTH);
    FIELD(MG_TF_UD);
    t->ud = mg_rd_take(r, n);
    MG_TRY(r->err);
    MG_ENSURE(mg_rd_left(r) == 0, MG_ERR_LENGTH); /* no trailing octets */
    t->ud_len = n;
    t->sm = t->ud;
    t->sm_len = n;
    if (!octets)
        t->sm_septets = t->udl;
    if (t->udhi) {
        mg_udh u;
        FIELD(MG_TF_UDH);
        MG_TRY(mg_udh_parse(t->ud, n, &u));
        t->udh = t->ud;
        t->udh_len = u.len;
        t->sm = t->ud + u.len;
        t->sm_len = n - u.len;
        if (!octets) {
            size_t hs = udh_septets(u.len);
            MG_ENSURE(hs <= t->udl, MG_ERR_LENGTH);
            t->sm_fill = (uint8_t)(7 * hs - 8 * u.len);
            t->sm_septets = (uint8_t)(t->udl - hs);
        }
    }
    FIELD(MG_TF_NONE);
    return MG_OK;
}

mg_err mg_tpdu_decode(const uint8_t *p, size_t n, mg_tpdu *t)
{
    MG_ENSURE(t != NULL, MG_ERR_ARG);
    memset(t, 0, sizeof(*t));
    MG_ENSURE(p != NULL || n == 0, MG_ERR_ARG);
    mg_rd r = mg_rd_make(p, n);
    mg_err e = tpdu_decode(&r, t);
    if (e != MG_OK) {
        mg_tpdu_field f = t->err_field;
        memset(t, 0, sizeof(*t));
        t->err_field = f;
    }
    return e;
}

mg_err mg_tpdu_encode(const mg_tpdu *t, uint8_t *out, size_t cap, size_t *out_len)
{
    MG_ENSURE(t != NULL && out != NULL && out_len != NULL, MG_ERR_ARG);
    MG_ENSURE(t->type == MG_TPDU_SUBMIT || t->type == MG_TPDU_DELIVER, MG_ERR_ARG);
    MG_ENSURE(t->addr.len <= MG_SMS_ADDR_DIGITS_MAX, MG_ERR_ARG);
    MG_ENSURE((t->udh != NULL || t->udh_len == 0) && (t->sm != NULL || t->sm_len == 0),
              MG_ERR_ARG);
    MG_ENSURE(t->udhi == (t->udh_len > 0), MG_ERR_ARG);
    size_t n = t->udh_len + t->sm_len;
    MG_ENSURE(n <= MG_SMS_UD_MAX, MG_ERR_ARG);
    if (t->udhi) {
        mg_udh u;
        MG_TRY(mg_udh_parse(t->udh, t->udh_len, &u));
        MG_ENSURE(u.len == t->udh_len, MG_ERR_ARG);
    }
    uint8_t udl = (uint8_t)n;
    if (!mg_dcs_udl_octets(t->dcs)) {
        udl = t->udl;
        MG_ENSURE(((size_t)udl * 7 + 7) / 8 == n, MG_ERR_ARG);
        MG_ENSURE(udh_septets(t->udh_len) <= udl, MG_ERR_ARG);
    }
    uint8_t fo = (uint8_t)((unsigned)t->type | (t->rp ? 0x80u : 0u) | (t->udhi ? 0x40u : 0u) |
                           (t->sr ? 0x20u : 0u));
    if (t->type == MG_TPDU_SUBMIT) {
        MG_ENSURE((unsigned)t->vpf <= 3u, MG_ERR_ARG);
        fo = (uint8_t)(fo | (t->rd ? 0x04u : 0u) | ((unsigned)t->vpf << 3));
    } else {
        fo = (uint8_t)(fo | (t->mms ? 0x04u : 0u) | (t->lp ? 0x08u : 0u));
    }
    mg_wr w = mg_wr_make(out, cap);
    mg_wr_u8(&w, fo);
    if (t->type == MG_TPDU_SUBMIT)
        mg_wr_u8(&w, t->mr);
    addr_write(&w, &t->addr);
    mg_wr_u8(&w, t->pid);
    mg_wr_u8(&w, t->dcs);
    if (t->type == MG_TPDU_SUBMIT)
        mg_wr_bytes(&w, t->vp, mg_vp_len(t->vpf));
    else
        mg_wr_bytes(&w, t->scts, sizeof(t->scts));
    mg_wr_u8(&w, udl);
    mg_wr_bytes(&w, t->udh, t->udh_len);
    mg_wr_bytes(&w, t->sm, t->sm_len);
    MG_TRY(w.err);
    *out_len = w.off;
    return MG_OK;
}

/* ---- 27.005 PDU mode ------------------------------------------------------------------ */

mg_err mg_pdu_mode_decode(const uint8_t *p, size_t n, mg_pdu_mode *out)
{
    MG_ENSURE(out != NULL, MG_ERR_ARG);
    memset(out, 0, sizeof(*out));
    MG_ENSURE(p != NULL || n == 0, MG_ERR_ARG);
    mg_rd r = mg_rd_make(p, n);
    uint8_t len = mg_rd_u8(&r); /* octets, TOA included */
    MG_TRY(r.err);
    MG_ENSURE(len <= 1u + MG_SMS_ADDR_DIGITS_MAX / 2u, MG_ERR_FORMAT);
    mg_sms_addr a;
    memset(&a, 0, sizeof(a));
    if (len > 0) {
        a.toa = mg_rd_u8(&r);
        mg_rd_copy(&r, a.val, len - 1u);
        MG_TRY(r.err);
        size_t digits = (size_t)2u * (len - 1u);
        if (digits > 0 && (a.val[len - 2u] >> 4) == 15u)
            digits--; /* F filler after an odd number of digits */
        a.len = (uint8_t)digits;
    }
    MG_ENSURE(mg_rd_left(&r) > 0, MG_ERR_TRUNC);
    out->smsc_present = len > 0;
    out->smsc = a;
    out->tpdu_len = mg_rd_left(&r);
    out->tpdu = mg_rd_take(&r, out->tpdu_len);
    return MG_OK;
}

mg_err mg_pdu_mode_encode(const mg_sms_addr *smsc, const uint8_t *tpdu, size_t tpdu_len,
                          uint8_t *out, size_t cap, size_t *out_len)
{
    MG_ENSURE(out != NULL && out_len != NULL && (tpdu != NULL || tpdu_len == 0), MG_ERR_ARG);
    size_t pre = 1;
    if (smsc != NULL) {
        MG_ENSURE(smsc->len <= MG_SMS_ADDR_DIGITS_MAX, MG_ERR_ARG);
        pre = 2u + (smsc->len + 1u) / 2u;
    }
    MG_ENSURE(tpdu_len <= cap && pre <= cap - tpdu_len, MG_ERR_BUF);
    mg_wr w = mg_wr_make(out, cap);
    /* Move the TPDU first: it may sit where the prefix goes. */
    w.off = pre;
    mg_wr_bytes(&w, tpdu, tpdu_len);
    w.off = 0;
    mg_wr_u8(&w, (uint8_t)(pre - 1u));
    if (smsc != NULL) {
        mg_wr_u8(&w, smsc->toa);
        mg_wr_bytes(&w, smsc->val, pre - 2u);
    }
    MG_TRY(w.err);
    *out_len = pre + tpdu_len;
    return MG_OK;
}

mg_err mg_pdu_mode_cmgs_length(const uint8_t *p, size_t n, size_t *len)
{
    mg_pdu_mode m;
    MG_ENSURE(len != NULL, MG_ERR_ARG);
    MG_TRY(mg_pdu_mode_decode(p, n, &m));
    *len = m.tpdu_len;
    return MG_OK;
}
