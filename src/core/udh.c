/*
 * User Data Header (3GPP TS 23.040 §9.2.3.24) and concatenated short
 * messages: split (sender) and reassembly (receiver). No allocation; every
 * read goes through mg_rd, every write through mg_wr.
 */
#include "m2mguard/tpdu.h"

#include "buf.h"

/* §9.2.3.24.1/.8: total 0, seq 0 or seq > total are reserved values. The
 * standard tells a receiver to ignore such an IE; m2mguard refuses the whole
 * UDH instead, so that no half-understood segment reaches a security layer. */
static mg_err ie_check(uint8_t iei, uint8_t len, const uint8_t *d)
{
    switch (iei) {
    case MG_IEI_CONCAT8:
    case MG_IEI_CONCAT16: {
        size_t want = iei == MG_IEI_CONCAT8 ? 3u : 4u;
        MG_ENSURE(len == want, MG_ERR_FORMAT);
        uint8_t total = d[want - 2], seq = d[want - 1];
        MG_ENSURE(total >= 1 && seq >= 1 && seq <= total, MG_ERR_FORMAT);
        return MG_OK;
    }
    case MG_IEI_PORT8:
        MG_ENSURE(len == 2, MG_ERR_FORMAT);
        return MG_OK;
    case MG_IEI_PORT16:
        MG_ENSURE(len == 4, MG_ERR_FORMAT);
        return MG_OK;
    case MG_IEI_CPI: /* TS 31.115: IEIDL = 00 */
    case MG_IEI_RPI:
        MG_ENSURE(len == 0, MG_ERR_FORMAT);
        return MG_OK;
    default:
        return MG_OK;
    }
}

mg_err mg_udh_parse(const uint8_t *ud, size_t ud_len, mg_udh *u)
{
    MG_ENSURE(u != NULL && (ud != NULL || ud_len == 0), MG_ERR_ARG);
    u->ies = NULL;
    u->ies_len = 0;
    u->len = 0;
    mg_rd r = mg_rd_make(ud, ud_len);
    uint8_t udhl = mg_rd_u8(&r);
    MG_TRY(r.err);
    const uint8_t *ies = mg_rd_take(&r, udhl);
    MG_ENSURE(ies != NULL, MG_ERR_LENGTH); /* UDHL beyond the UD */
    mg_rd ie = mg_rd_make(ies, udhl);
    while (mg_rd_left(&ie) > 0) {
        uint8_t iei = mg_rd_u8(&ie);
        uint8_t len = mg_rd_u8(&ie);
        const uint8_t *d = mg_rd_take(&ie, len);
        MG_ENSURE(ie.err == MG_OK, MG_ERR_LENGTH); /* IE beyond UDHL */
        MG_TRY(ie_check(iei, len, d));
    }
    u->ies = ies;
    u->ies_len = udhl;
    u->len = 1u + udhl;
    return MG_OK;
}

void mg_udh_iter_init(mg_udh_iter *it, const mg_udh *u)
{
    it->p = u->ies;
    it->len = u->ies != NULL ? u->ies_len : 0;
    it->off = 0;
}

bool mg_udh_next(mg_udh_iter *it, mg_udh_ie *ie)
{
    if (it->off >= it->len)
        return false;
    mg_rd r = mg_rd_make(it->p, it->len);
    r.off = it->off;
    uint8_t iei = mg_rd_u8(&r);
    uint8_t len = mg_rd_u8(&r);
    const uint8_t *d = mg_rd_take(&r, len);
    if (r.err != MG_OK) {
        it->off = it->len;
        return false;
    }
    ie->iei = iei;
    ie->len = len;
    ie->data = len > 0 ? d : NULL;
    it->off = r.off;
    return true;
}

bool mg_udh_find(const mg_udh *u, uint8_t iei, mg_udh_ie *ie)
{
    mg_udh_iter it;
    mg_udh_ie cur;
    bool found = false;
    mg_udh_iter_init(&it, u);
    while (mg_udh_next(&it, &cur))
        if (cur.iei == iei) {
            *ie = cur;
            found = true;
        }
    return found;
}

bool mg_udh_concat(const mg_udh *u, mg_concat_info *ci)
{
    mg_udh_iter it;
    mg_udh_ie ie;
    bool found = false;
    mg_udh_iter_init(&it, u);
    while (mg_udh_next(&it, &ie)) {
        if (ie.iei == MG_IEI_CONCAT8 && ie.len == 3) {
            ci->ref = ie.data[0];
            ci->ref16 = false;
        } else if (ie.iei == MG_IEI_CONCAT16 && ie.len == 4) {
            ci->ref = (uint16_t)(ie.data[0] << 8 | ie.data[1]);
            ci->ref16 = true;
        } else {
            continue;
        }
        ci->total = ie.data[ie.len - 2];
        ci->seq = ie.data[ie.len - 1];
        found = true;
    }
    return found;
}

bool mg_udh_port(const mg_udh *u, uint16_t *dst, uint16_t *src)
{
    mg_udh_iter it;
    mg_udh_ie ie;
    bool found = false;
    mg_udh_iter_init(&it, u);
    while (mg_udh_next(&it, &ie)) {
        if (ie.iei == MG_IEI_PORT8 && ie.len == 2) {
            *dst = ie.data[0];
            *src = ie.data[1];
            found = true;
        } else if (ie.iei == MG_IEI_PORT16 && ie.len == 4) {
            *dst = (uint16_t)(ie.data[0] << 8 | ie.data[1]);
            *src = (uint16_t)(ie.data[2] << 8 | ie.data[3]);
            found = true;
        }
    }
    return found;
}

/* Octets that the IEs take in a UDH, each checked. */
static mg_err ies_size(const mg_udh_ie *ies, size_t n, size_t *size)
{
    size_t s = 0;
    MG_ENSURE(ies != NULL || n == 0, MG_ERR_ARG);
    for (size_t i = 0; i < n; i++) {
        MG_ENSURE(ies[i].data != NULL || ies[i].len == 0, MG_ERR_ARG);
        MG_TRY(ie_check(ies[i].iei, ies[i].len, ies[i].data));
        s += 2u + ies[i].len;
        MG_ENSURE(s < MG_SMS_UD_MAX, MG_ERR_LENGTH);
    }
    *size = s;
    return MG_OK;
}

static void ies_write(mg_wr *w, const mg_udh_ie *ies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mg_wr_u8(w, ies[i].iei);
        mg_wr_u8(w, ies[i].len);
        if (ies[i].len > 0)
            mg_wr_bytes(w, ies[i].data, ies[i].len);
    }
}

mg_err mg_udh_build(const mg_udh_ie *ies, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t s;
    MG_ENSURE(out != NULL && out_len != NULL, MG_ERR_ARG);
    MG_TRY(ies_size(ies, n, &s));
    mg_wr w = mg_wr_make(out, cap);
    mg_wr_u8(&w, (uint8_t)s);
    ies_write(&w, ies, n);
    MG_TRY(w.err);
    *out_len = w.off;
    return MG_OK;
}

/* ---- split ------------------------------------------------------------------ */

typedef struct split_plan {
    size_t nparts;
    size_t first_ies; /* octets of the first-only IEs */
    size_t every_ies; /* octets of the every-segment IEs */
    size_t hdr1, hdrn; /* UDH octets of segment 1 / of the others */
} split_plan;

static mg_err plan(const mg_concat_spec *s, split_plan *p)
{
    MG_ENSURE(s != NULL && (s->payload != NULL || s->payload_len == 0), MG_ERR_ARG);
    MG_TRY(ies_size(s->first, s->n_first, &p->first_ies));
    MG_TRY(ies_size(s->every, s->n_every, &p->every_ies));
    size_t ies = p->first_ies + p->every_ies;
    /* Single SM: no concatenation IE; no UDH at all without IEs. */
    size_t single = (s->n_first + s->n_every > 0 ? 1u + ies : 0u);
    if (single <= MG_SMS_UD_MAX && s->payload_len <= MG_SMS_UD_MAX - single) {
        p->nparts = 1;
        p->hdr1 = p->hdrn = single;
        return MG_OK;
    }
    size_t concat = s->ref16 ? 6u : 5u;
    p->hdrn = 1u + concat + p->every_ies;
    p->hdr1 = p->hdrn + p->first_ies;
    MG_ENSURE(p->hdr1 < MG_SMS_UD_MAX, MG_ERR_LENGTH);
    size_t cap1 = MG_SMS_UD_MAX - p->hdr1, capn = MG_SMS_UD_MAX - p->hdrn;
    size_t rest = s->payload_len - cap1; /* > 0: it did not fit in one SM */
    p->nparts = 1u + (rest + capn - 1u) / capn;
    MG_ENSURE(p->nparts <= 255, MG_ERR_LENGTH);
    return MG_OK;
}

mg_err mg_concat_parts(const mg_concat_spec *s, size_t *nparts)
{
    split_plan p;
    MG_ENSURE(nparts != NULL, MG_ERR_ARG);
    MG_TRY(plan(s, &p));
    *nparts = p.nparts;
    return MG_OK;
}

mg_err mg_concat_part(const mg_concat_spec *s, size_t seq, uint8_t *ud, size_t cap,
                      size_t *ud_len, size_t *udh_len)
{
    split_plan p;
    MG_ENSURE(ud != NULL && ud_len != NULL && udh_len != NULL, MG_ERR_ARG);
    MG_TRY(plan(s, &p));
    MG_ENSURE(seq >= 1 && seq <= p.nparts, MG_ERR_ARG);
    size_t off, len, hdr = seq == 1 ? p.hdr1 : p.hdrn;
    size_t cap1 = MG_SMS_UD_MAX - p.hdr1, capn = MG_SMS_UD_MAX - p.hdrn;
    if (seq == 1) {
        off = 0;
        len = s->payload_len < cap1 ? s->payload_len : cap1;
    } else {
        off = cap1 + (seq - 2u) * capn;
        len = s->payload_len - off < capn ? s->payload_len - off : capn;
    }
    mg_wr w = mg_wr_make(ud, cap);
    if (hdr > 0) {
        mg_wr_u8(&w, (uint8_t)(hdr - 1u));
        if (p.nparts > 1) {
            if (s->ref16) {
                mg_wr_u8(&w, MG_IEI_CONCAT16);
                mg_wr_u8(&w, 4);
                mg_wr_be16(&w, s->ref);
            } else {
                mg_wr_u8(&w, MG_IEI_CONCAT8);
                mg_wr_u8(&w, 3);
                mg_wr_u8(&w, (uint8_t)s->ref);
            }
            mg_wr_u8(&w, (uint8_t)p.nparts);
            mg_wr_u8(&w, (uint8_t)seq);
        }
        if (seq == 1)
            ies_write(&w, s->first, s->n_first);
        ies_write(&w, s->every, s->n_every);
    }
    if (len > 0)
        mg_wr_bytes(&w, s->payload + off, len);
    MG_TRY(w.err);
    *ud_len = w.off;
    *udh_len = hdr;
    return MG_OK;
}

/* ---- reassembly --------------------------------------------------------------- */

enum { CTX_EMPTY = 0, CTX_COLLECTING = 1, CTX_COMPLETE = 2 };

void mg_concat_init(mg_concat_ctx *c)
{
    memset(c, 0, sizeof(*c));
}

mg_err mg_concat_add(mg_concat_ctx *c, const uint8_t *ud, size_t ud_len, bool *complete)
{
    mg_udh u;
    mg_concat_info ci;
    MG_ENSURE(c != NULL && complete != NULL, MG_ERR_ARG);
    *complete = false;
    MG_ENSURE(c->state != CTX_COMPLETE, MG_ERR_STATE);
    MG_ENSURE(ud_len <= MG_SMS_UD_MAX, MG_ERR_LENGTH);
    MG_TRY(mg_udh_parse(ud, ud_len, &u));
    MG_ENSURE(mg_udh_concat(&u, &ci), MG_ERR_ARG);
    MG_ENSURE(ci.total <= MG_CONCAT_MAX_PARTS, MG_ERR_UNSUPPORTED);
    if (c->state == CTX_COLLECTING) {
        MG_ENSURE(ci.ref == c->ref && ci.ref16 == (c->ref16 != 0), MG_ERR_STATE);
        MG_ENSURE(ci.total == c->total, MG_ERR_FORMAT);
    }
    size_t i = ci.seq - 1u; /* 0 <= i < total <= MG_CONCAT_MAX_PARTS (checked) */
    uint8_t *slot = c->buf + i * MG_SMS_UD_MAX;
    if (c->state == CTX_COLLECTING && c->len[i] != 0) {
        /* A repeat: the same octets are a harmless retransmission. */
        MG_ENSURE(c->len[i] == ud_len && memcmp(slot, ud, ud_len) == 0, MG_ERR_FORMAT);
        return MG_OK;
    }
    if (c->state == CTX_EMPTY) {
        c->state = CTX_COLLECTING;
        c->ref = ci.ref;
        c->ref16 = ci.ref16 ? 1 : 0;
        c->total = ci.total;
    }
    mg_wr w = mg_wr_make(slot, MG_SMS_UD_MAX);
    mg_wr_bytes(&w, ud, ud_len);
    MG_TRY(w.err);
    c->len[i] = (uint8_t)ud_len; /* >= 6: a UDH with a concatenation IE */
    c->hlen[i] = (uint8_t)u.len;
    for (size_t k = 0; k < c->total; k++)
        if (c->len[k] == 0)
            return MG_OK;
    /* Complete: keep segment 1's UDH at the start of buf and move every
     * payload chunk left so that they are contiguous. The destination of
     * chunk k never passes its source (each earlier slot gave up at least its
     * UDH), so moving in increasing order is safe. */
    size_t out = c->hlen[0];
    for (size_t k = 0; k < c->total; k++) {
        size_t n = (size_t)c->len[k] - c->hlen[k];
        memmove(c->buf + out, c->buf + k * MG_SMS_UD_MAX + c->hlen[k], n);
        out += n;
    }
    c->out_len = out;
    c->state = CTX_COMPLETE;
    *complete = true;
    return MG_OK;
}

mg_err mg_concat_result(const mg_concat_ctx *c, const uint8_t **udh, size_t *udh_len,
                        const uint8_t **payload, size_t *payload_len)
{
    MG_ENSURE(c != NULL && udh != NULL && udh_len != NULL && payload != NULL &&
                  payload_len != NULL,
              MG_ERR_ARG);
    *udh = *payload = NULL;
    *udh_len = *payload_len = 0;
    MG_ENSURE(c->state == CTX_COMPLETE, MG_ERR_STATE);
    *udh = c->buf;
    *udh_len = c->hlen[0];
    *payload = c->buf + c->hlen[0];
    *payload_len = c->out_len - c->hlen[0];
    return MG_OK;
}
