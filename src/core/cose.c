/* COSE_Sign1 (RFC 9052) and signed commands (docs/commands.md): parse,
 * Sig_structure, verify through the crypto interface; host-side signing. */
#include <string.h>

#include "m2mguard/cose.h"
#include "m2mguard/crypto.h"

/* Keeps a helper's locals off its caller's frame (Cortex-M0+ stack budget). */
#if defined(__GNUC__) || defined(__clang__)
#define MG_NOINLINE __attribute__((noinline))
#else
#define MG_NOINLINE
#endif
/* Merges a helper's frame into its caller's (one frame instead of two). */
#if defined(__GNUC__) || defined(__clang__)
#define MG_INLINE inline __attribute__((always_inline))
#else
#define MG_INLINE inline
#endif

const char *mg_cose_why_str(mg_cose_why why)
{
    switch (why) {
    case MG_COSE_WHY_NONE: return "none";
    case MG_COSE_WHY_CBOR: return "cbor";
    case MG_COSE_WHY_SHAPE: return "not_sign1";
    case MG_COSE_WHY_DETACHED: return "detached_payload";
    case MG_COSE_WHY_HEADER: return "bad_header";
    case MG_COSE_WHY_CRIT: return "crit";
    case MG_COSE_WHY_NO_ALG: return "no_alg";
    case MG_COSE_WHY_ALG: return "alg_not_allowed";
    case MG_COSE_WHY_SIG_LEN: return "signature_length";
    case MG_COSE_WHY_BAD_SIG: return "bad_signature";
    case MG_COSE_WHY_KEY: return "bad_key";
    case MG_COSE_WHY_UNSUPPORTED: return "unsupported";
    case MG_COSE_WHY_CRYPTO: return "crypto";
    }
    return "unknown";
}

const char *mg_cmd_why_str(mg_cmd_why why)
{
    switch (why) {
    case MG_CMD_OK: return "ok";
    case MG_CMD_OVERSIZED: return "oversized";
    case MG_CMD_MALFORMED: return "malformed";
    case MG_CMD_NOT_DETERMINISTIC: return "not_deterministic";
    case MG_CMD_DUPLICATE_KEY: return "duplicate_key";
    case MG_CMD_TRAILING: return "trailing_bytes";
    case MG_CMD_UNKNOWN_KID: return "unknown_kid";
    case MG_CMD_ALG_NOT_ALLOWED: return "alg_not_allowed";
    case MG_CMD_BAD_SIGNATURE: return "bad_signature";
    case MG_CMD_KID_MISMATCH: return "kid_mismatch";
    case MG_CMD_WRONG_AUDIENCE: return "wrong_audience";
    case MG_CMD_NOT_YET_VALID: return "not_yet_valid";
    case MG_CMD_EXPIRED: return "expired";
    case MG_CMD_SEQ_NOT_HIGHER: return "seq_not_higher";
    case MG_CMD_UNSUPPORTED: return "unsupported";
    case MG_CMD_CRYPTO: return "crypto";
    case MG_CMD_DUPLICATE_SIGNER: return "duplicate_signer";
    case MG_CMD_TOO_FEW_SIGNERS: return "too_few_signers";
    }
    return "unknown";
}

/* ---- COSE_Sign1 ---------------------------------------------------------- */

static mg_err cose_fail(mg_cose_why *why, mg_cose_why w, mg_err e)
{
    if (why != NULL)
        *why = w;
    return e;
}

/* Reads one header map (its head already read: n pairs) into m. */
static mg_err read_headers(mg_cbor_reader *r, uint64_t n, bool prot, mg_cose_sign1 *m,
                           mg_cose_why *why)
{
    for (uint64_t i = 0; i < n; i++) {
        mg_cbor_item k, v;
        mg_err e = mg_cbor_read(r, &k);
        if (e != MG_OK)
            return cose_fail(why, MG_COSE_WHY_CBOR, e);
        if (k.type == MG_CBOR_TSTR) { /* text labels: none understood */
            e = mg_cbor_skip(r, NULL, NULL);
            if (e != MG_OK)
                return cose_fail(why, MG_COSE_WHY_CBOR, e);
            continue;
        }
        if (k.type != MG_CBOR_UINT && k.type != MG_CBOR_NINT)
            return cose_fail(why, MG_COSE_WHY_HEADER, MG_ERR_FORMAT);
        if (k.type == MG_CBOR_UINT && k.val == MG_COSE_HDR_ALG) {
            int64_t alg;
            if (m->has_alg)
                return cose_fail(why, MG_COSE_WHY_HEADER, MG_ERR_FORMAT);
            e = mg_cbor_read_int(r, &alg);
            if (e != MG_OK) /* a text alg names nothing we implement */
                return cose_fail(why, MG_COSE_WHY_HEADER, e);
            m->has_alg = true;
            m->alg_protected = prot;
            m->alg = alg;
        } else if (k.type == MG_CBOR_UINT && k.val == MG_COSE_HDR_KID) {
            if (m->kid != NULL)
                return cose_fail(why, MG_COSE_WHY_HEADER, MG_ERR_FORMAT);
            e = mg_cbor_expect(r, MG_CBOR_BSTR, &v);
            if (e != MG_OK)
                return cose_fail(why, MG_COSE_WHY_HEADER, e);
            m->kid = v.p;
            m->kid_len = (size_t)v.val;
            m->kid_protected = prot;
        } else if (k.type == MG_CBOR_UINT && k.val == MG_COSE_HDR_CRIT) {
            return cose_fail(why, MG_COSE_WHY_CRIT, MG_ERR_UNSUPPORTED);
        } else {
            e = mg_cbor_skip(r, NULL, NULL);
            if (e != MG_OK)
                return cose_fail(why, MG_COSE_WHY_CBOR, e);
        }
    }
    return MG_OK;
}

/* The protected bucket: a serialized map, or empty (= empty map). Kept out
 * of mg_cose_sign1_parse so that its reader is not on the same frame. */
static MG_NOINLINE mg_err read_protected(const uint8_t *p, size_t n, unsigned flags,
                                         mg_cose_sign1 *m, mg_cose_why *why)
{
    mg_cbor_reader pr;
    mg_cbor_item pm;
    mg_cbor_why cw = MG_CBOR_WHY_NONE;
    mg_err e = mg_cbor_check(p, n, flags, &cw);
    if (e != MG_OK) {
        m->cbor_why = cw;
        return cose_fail(why, MG_COSE_WHY_CBOR, e);
    }
    mg_cbor_reader_init(&pr, p, n, flags);
    if (mg_cbor_expect(&pr, MG_CBOR_MAP, &pm) != MG_OK)
        return cose_fail(why, MG_COSE_WHY_HEADER, MG_ERR_FORMAT);
    /* RFC 9052 4.4: no protected attributes (an empty map) sign as h'' */
    m->prot_empty = pm.val == 0;
    return read_headers(&pr, pm.val, true, m, why);
}

/* After the unprotected bucket was read into m: reads the protected one
 * (m->prot) and merges; a label in both buckets is an error (RFC 9052 3). */
static MG_NOINLINE mg_err merge_protected(unsigned flags, mg_cose_sign1 *m, mg_cose_why *why)
{
    bool u_alg = m->has_alg;
    int64_t ualg = m->alg;
    const uint8_t *ukid = m->kid;
    size_t ukid_len = m->kid_len;
    mg_err e;
    if (m->prot_len == 0)
        return MG_OK;
    m->has_alg = false;
    m->kid = NULL;
    m->kid_len = 0;
    e = read_protected(m->prot, m->prot_len, flags, m, why);
    if (e != MG_OK)
        return e;
    if ((u_alg && m->has_alg) || (ukid != NULL && m->kid != NULL))
        return cose_fail(why, MG_COSE_WHY_HEADER, MG_ERR_FORMAT);
    if (u_alg) {
        m->has_alg = true;
        m->alg = ualg;
        m->alg_protected = false;
    }
    if (ukid != NULL) {
        m->kid = ukid;
        m->kid_len = ukid_len;
        m->kid_protected = false;
    }
    if (m->prot_empty)
        m->prot_len = 0;
    return MG_OK;
}

mg_err mg_cose_sign1_parse(const uint8_t *buf, size_t len, unsigned flags, mg_cose_sign1 *m,
                           mg_cose_why *why)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    mg_cbor_why cw = MG_CBOR_WHY_NONE;
    mg_err e;

    if (m == NULL || (buf == NULL && len > 0))
        return cose_fail(why, MG_COSE_WHY_NONE, MG_ERR_ARG);
    memset(m, 0, sizeof(*m));
    /* The whole message first: well-formed (deterministic if asked), one item. */
    e = mg_cbor_check(buf, len, flags, &cw);
    if (e != MG_OK) {
        m->cbor_why = cw;
        return cose_fail(why, MG_COSE_WHY_CBOR, e);
    }
    mg_cbor_reader_init(&r, buf, len, flags);
    e = cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_FORMAT);
    if (mg_cbor_read(&r, &it) != MG_OK)
        goto bad;
    if (it.type == MG_CBOR_TAG) {
        if (it.val != MG_COSE_TAG_SIGN1 || mg_cbor_read(&r, &it) != MG_OK)
            goto bad;
        m->tagged = true;
    }
    if (it.type != MG_CBOR_ARRAY || it.val != 4 || mg_cbor_expect(&r, MG_CBOR_BSTR, &it) != MG_OK)
        goto bad;
    m->prot = it.p;
    m->prot_len = (size_t)it.val;
    if (mg_cbor_expect(&r, MG_CBOR_MAP, &it) != MG_OK)
        goto bad;
    /* unprotected headers first; then protected, which must not repeat them */
    e = read_headers(&r, it.val, false, m, why);
    if (e != MG_OK)
        goto bad;
    e = cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_FORMAT);
    if (mg_cbor_read(&r, &it) != MG_OK)
        goto bad;
    if (it.type == MG_CBOR_SIMPLE && it.val == 22) {
        e = cose_fail(why, MG_COSE_WHY_DETACHED, MG_ERR_UNSUPPORTED);
        goto bad;
    }
    if (it.type != MG_CBOR_BSTR)
        goto bad;
    m->payload = it.p;
    m->payload_len = (size_t)it.val;
    if (mg_cbor_expect(&r, MG_CBOR_BSTR, &it) != MG_OK)
        goto bad;
    m->sig = it.p;
    m->sig_len = (size_t)it.val;
    e = merge_protected(flags, m, why);
    if (e != MG_OK)
        goto bad;
    return cose_fail(why, MG_COSE_WHY_NONE, MG_OK);
bad:
    cw = m->cbor_why;
    memset(m, 0, sizeof(*m));
    m->cbor_why = cw;
    return e;
}

/* The heads of the Sig_structure around protected, aad and payload. */
typedef struct sig_heads {
    uint8_t pre[1 + 11 + 9]; /* array(4), "Signature1", bstr head of protected */
    size_t pre_len;
    uint8_t aad_h[9];
    size_t aad_h_len;
    uint8_t pl_h[9];
    size_t pl_h_len;
} sig_heads;

static const char ctx_sig1[] = "Signature1";

static void make_heads(sig_heads *h, size_t prot_len, size_t aad_len, size_t payload_len)
{
    h->pre[0] = 0x84;
    h->pre_len = 1 + mg_cbor_encode_head(h->pre + 1, MG_CBOR_TSTR, sizeof(ctx_sig1) - 1);
    memcpy(h->pre + h->pre_len, ctx_sig1, sizeof(ctx_sig1) - 1);
    h->pre_len += sizeof(ctx_sig1) - 1;
    h->pre_len += mg_cbor_encode_head(h->pre + h->pre_len, MG_CBOR_BSTR, prot_len);
    h->aad_h_len = mg_cbor_encode_head(h->aad_h, MG_CBOR_BSTR, aad_len);
    h->pl_h_len = mg_cbor_encode_head(h->pl_h, MG_CBOR_BSTR, payload_len);
}

static void make_iov(mg_iov v[6], const sig_heads *h, const uint8_t *prot, size_t prot_len,
                     const uint8_t *aad, size_t aad_len, const uint8_t *pl, size_t pl_len)
{
    v[0].p = h->pre;
    v[0].len = h->pre_len;
    v[1].p = prot;
    v[1].len = prot_len;
    v[2].p = h->aad_h;
    v[2].len = h->aad_h_len;
    v[3].p = aad;
    v[3].len = aad_len;
    v[4].p = h->pl_h;
    v[4].len = h->pl_h_len;
    v[5].p = pl;
    v[5].len = pl_len;
}

mg_err mg_cose_sig_structure(const mg_cose_sign1 *m, const uint8_t *aad, size_t aad_len,
                             uint8_t *out, size_t cap, size_t *len)
{
    sig_heads h;
    mg_iov v[6];
    size_t total = 0;
    if (m == NULL || out == NULL || len == NULL || (aad == NULL && aad_len > 0))
        return MG_ERR_ARG;
    make_heads(&h, m->prot_len, aad_len, m->payload_len);
    make_iov(v, &h, m->prot, m->prot_len, aad, aad_len, m->payload, m->payload_len);
    for (size_t i = 0; i < 6; i++) {
        if (v[i].len > cap - total)
            return MG_ERR_BUF;
        if (v[i].len > 0)
            memcpy(out + total, v[i].p, v[i].len);
        total += v[i].len;
    }
    *len = total;
    return MG_OK;
}

static mg_sig_alg sig_alg_of(int64_t cose_alg)
{
    return cose_alg == MG_COSE_ALG_ES256   ? MG_SIG_ES256
           : cose_alg == MG_COSE_ALG_EDDSA ? MG_SIG_ED25519
                                           : MG_SIG_NONE;
}

mg_err mg_cose_sign1_verify(const mg_cose_sign1 *m, const uint8_t *aad, size_t aad_len,
                            int64_t key_alg, const uint8_t *pub, size_t pub_len,
                            mg_cose_why *why)
{
    sig_heads h;
    mg_iov v[6];
    mg_sig_alg sa = sig_alg_of(key_alg);
    mg_err e;
    if (m == NULL || pub == NULL || (aad == NULL && aad_len > 0) || m->sig == NULL)
        return cose_fail(why, MG_COSE_WHY_NONE, MG_ERR_ARG);
    if (sa == MG_SIG_NONE)
        return cose_fail(why, MG_COSE_WHY_UNSUPPORTED, MG_ERR_UNSUPPORTED);
    if (!m->has_alg)
        return cose_fail(why, MG_COSE_WHY_NO_ALG, MG_ERR_FORMAT);
    if (m->alg != key_alg)
        return cose_fail(why, MG_COSE_WHY_ALG, MG_ERR_KEY);
    if (m->sig_len != MG_SIG_LEN)
        return cose_fail(why, MG_COSE_WHY_SIG_LEN, MG_ERR_AUTH);
    make_heads(&h, m->prot_len, aad_len, m->payload_len);
    make_iov(v, &h, m->prot, m->prot_len, aad, aad_len, m->payload, m->payload_len);
    e = mg_crypto_verify(sa, pub, pub_len, v, 6, m->sig);
    switch (e) {
    case MG_OK: return cose_fail(why, MG_COSE_WHY_NONE, MG_OK);
    case MG_ERR_AUTH: return cose_fail(why, MG_COSE_WHY_BAD_SIG, e);
    case MG_ERR_KEY: return cose_fail(why, MG_COSE_WHY_KEY, e);
    case MG_ERR_UNSUPPORTED: return cose_fail(why, MG_COSE_WHY_UNSUPPORTED, e);
    default: return cose_fail(why, MG_COSE_WHY_CRYPTO, MG_ERR_CRYPTO);
    }
}

/* Room before the payload in the output for everything that precedes it:
 * tag (1), array (1), protected bstr (2 + at most 38), {} (1), payload head
 * (at most 3 for payloads below 64 KiB; more is refused). */
#define SIGN1_PRE 48

/* Signs the payload that lies at out[SIGN1_PRE..SIGN1_PRE+plen) and builds
 * the COSE_Sign1 in place (no second payload buffer: small stack). */
static mg_err sign1_in_place(int64_t alg, const uint8_t *kid, size_t kid_len, size_t plen,
                             const uint8_t *priv, size_t priv_len, bool tagged, uint8_t *out,
                             size_t cap, size_t *len)
{
    uint8_t prot[40];
    uint8_t sig[MG_SIG_LEN];
    size_t prot_len = 0, h = 0;
    sig_heads sh;
    mg_iov v[6];
    mg_cbor_writer w;
    mg_sig_alg sa = sig_alg_of(alg);
    mg_err e;

    if (sa == MG_SIG_NONE)
        return MG_ERR_UNSUPPORTED;
    if (plen > 0xffffu)
        return MG_ERR_ARG;
    /* protected {1: alg, 4: kid}: keys in order 0x01 < 0x04 */
    mg_cbor_writer_init(&w, prot, sizeof(prot));
    mg_cbor_put_map(&w, kid != NULL ? 2 : 1);
    mg_cbor_put_uint(&w, MG_COSE_HDR_ALG);
    mg_cbor_put_int(&w, alg);
    if (kid != NULL) {
        mg_cbor_put_uint(&w, MG_COSE_HDR_KID);
        mg_cbor_put_bstr(&w, kid, kid_len);
    }
    e = mg_cbor_writer_finish(&w, &prot_len);
    if (e != MG_OK)
        return e;
    /* the header in front of the payload */
    uint8_t hdr[SIGN1_PRE];
    if (tagged)
        hdr[h++] = 0xd2; /* tag 18 */
    hdr[h++] = 0x84;
    h += mg_cbor_encode_head(hdr + h, MG_CBOR_BSTR, prot_len);
    memcpy(hdr + h, prot, prot_len);
    h += prot_len;
    hdr[h++] = 0xa0;
    h += mg_cbor_encode_head(hdr + h, MG_CBOR_BSTR, plen);
    if (h + plen + 2 + MG_SIG_LEN > cap)
        return MG_ERR_BUF;
    memmove(out + h, out + SIGN1_PRE, plen);
    memcpy(out, hdr, h);
    make_heads(&sh, prot_len, 0, plen);
    make_iov(v, &sh, prot, prot_len, NULL, 0, out + h, plen);
    e = mg_crypto_sign(sa, priv, priv_len, v, 6, sig);
    if (e != MG_OK)
        return e;
    out[h + plen] = 0x58;
    out[h + plen + 1] = MG_SIG_LEN;
    memcpy(out + h + plen + 2, sig, MG_SIG_LEN);
    *len = h + plen + 2 + MG_SIG_LEN;
    if (mg_cbor_check(out, *len, MG_CBOR_DETERMINISTIC, NULL) != MG_OK)
        return MG_ERR_FORMAT;
    return MG_OK;
}

mg_err mg_cose_sign1_sign(int64_t alg, const uint8_t *kid, size_t kid_len,
                          const uint8_t *payload, size_t payload_len, const uint8_t *priv,
                          size_t priv_len, bool tagged, uint8_t *out, size_t cap, size_t *len)
{
    mg_err e;
    if ((kid == NULL && kid_len > 0) || (payload == NULL && payload_len > 0) || priv == NULL ||
        out == NULL || len == NULL || kid_len > MG_CMD_KID_MAX)
        return MG_ERR_ARG;
    if (cap < SIGN1_PRE || payload_len > cap - SIGN1_PRE)
        return MG_ERR_BUF;
    if (payload_len > 0)
        memmove(out + SIGN1_PRE, payload, payload_len);
    e = sign1_in_place(alg, kid, kid_len, payload_len, priv, priv_len, tagged, out, cap, len);
    if (e != MG_OK)
        mg_wipe(out, cap);
    return e;
}

/* ---- COSE_Sign (RFC 9052 4.1) ---------------------------------------------- */

/* One header pair [protected bstr, unprotected map] into h (a scratch
 * mg_cose_sign1 that only carries the header fields). */
static MG_INLINE mg_err read_header_pair(mg_cbor_reader *r, unsigned flags, mg_cose_sign1 *h,
                                           mg_cose_why *why)
{
    mg_cbor_item it;
    mg_err e;
    memset(h, 0, sizeof(*h));
    if (mg_cbor_expect(r, MG_CBOR_BSTR, &it) != MG_OK)
        return cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_FORMAT);
    h->prot = it.p;
    h->prot_len = (size_t)it.val;
    if (mg_cbor_expect(r, MG_CBOR_MAP, &it) != MG_OK)
        return cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_FORMAT);
    e = read_headers(r, it.val, false, h, why);
    if (e != MG_OK)
        return e;
    return merge_protected(flags, h, why);
}

mg_err mg_cose_sign_parse(const uint8_t *buf, size_t len, unsigned flags, mg_cose_sign *m,
                          mg_cose_why *why)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    mg_cose_sign1 h;
    mg_cbor_why cw = MG_CBOR_WHY_NONE;
    mg_err e;

    if (m == NULL || (buf == NULL && len > 0))
        return cose_fail(why, MG_COSE_WHY_NONE, MG_ERR_ARG);
    memset(m, 0, sizeof(*m));
    h.cbor_why = MG_CBOR_WHY_NONE;
    e = mg_cbor_check(buf, len, flags, &cw);
    if (e != MG_OK) {
        m->cbor_why = cw;
        return cose_fail(why, MG_COSE_WHY_CBOR, e);
    }
    mg_cbor_reader_init(&r, buf, len, flags);
    e = cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_FORMAT);
    if (mg_cbor_read(&r, &it) != MG_OK)
        goto bad;
    if (it.type == MG_CBOR_TAG) {
        if (it.val != MG_COSE_TAG_SIGN || mg_cbor_read(&r, &it) != MG_OK)
            goto bad;
        m->tagged = true;
    }
    if (it.type != MG_CBOR_ARRAY || it.val != 4)
        goto bad;
    e = read_header_pair(&r, flags, &h, why);
    if (e != MG_OK)
        goto bad;
    m->prot = h.prot;
    m->prot_len = h.prot_len;
    m->body_has_alg = h.has_alg;
    m->body_has_kid = h.kid != NULL;
    e = cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_FORMAT);
    if (mg_cbor_read(&r, &it) != MG_OK)
        goto bad;
    if (it.type == MG_CBOR_SIMPLE && it.val == 22) {
        e = cose_fail(why, MG_COSE_WHY_DETACHED, MG_ERR_UNSUPPORTED);
        goto bad;
    }
    if (it.type != MG_CBOR_BSTR)
        goto bad;
    m->payload = it.p;
    m->payload_len = (size_t)it.val;
    if (mg_cbor_expect(&r, MG_CBOR_ARRAY, &it) != MG_OK || it.val == 0)
        goto bad;
    if (it.val > MG_COSE_SIGN_MAX) {
        e = cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_LENGTH);
        goto bad;
    }
    m->n_sigs = (size_t)it.val;
    for (size_t i = 0; i < m->n_sigs; i++) {
        mg_cose_signature *s = &m->sigs[i];
        e = cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_FORMAT);
        if (mg_cbor_expect(&r, MG_CBOR_ARRAY, &it) != MG_OK || it.val != 3)
            goto bad;
        e = read_header_pair(&r, flags, &h, why);
        if (e != MG_OK)
            goto bad;
        e = cose_fail(why, MG_COSE_WHY_SHAPE, MG_ERR_FORMAT);
        if (mg_cbor_expect(&r, MG_CBOR_BSTR, &it) != MG_OK)
            goto bad;
        s->prot = h.prot;
        s->prot_len = h.prot_len;
        s->has_alg = h.has_alg;
        s->alg_protected = h.alg_protected;
        s->alg = h.alg;
        s->kid = h.kid;
        s->kid_len = h.kid_len;
        s->kid_protected = h.kid_protected;
        s->sig = it.p;
        s->sig_len = (size_t)it.val;
    }
    if (mg_cbor_at_end(&r) != MG_OK)
        goto bad;
    return cose_fail(why, MG_COSE_WHY_NONE, MG_OK);
bad:
    cw = h.cbor_why != MG_CBOR_WHY_NONE ? h.cbor_why : m->cbor_why;
    memset(m, 0, sizeof(*m));
    m->cbor_why = cw;
    return e;
}

/* The heads of a COSE_Signature's Sig_structure:
 * 0x85 "Signature" bstr(body) | bstr(sign) | bstr(aad) | bstr(payload). */
typedef struct sig_heads_m {
    uint8_t pre[1 + 10 + 9];
    size_t pre_len;
    uint8_t sp_h[9];
    size_t sp_h_len;
    uint8_t aad_h[9];
    size_t aad_h_len;
    uint8_t pl_h[9];
    size_t pl_h_len;
} sig_heads_m;

static const char ctx_sig[] = "Signature";

static void make_heads_m(sig_heads_m *h, size_t body_len, size_t sp_len, size_t aad_len,
                         size_t payload_len)
{
    h->pre[0] = 0x85;
    h->pre_len = 1 + mg_cbor_encode_head(h->pre + 1, MG_CBOR_TSTR, sizeof(ctx_sig) - 1);
    memcpy(h->pre + h->pre_len, ctx_sig, sizeof(ctx_sig) - 1);
    h->pre_len += sizeof(ctx_sig) - 1;
    h->pre_len += mg_cbor_encode_head(h->pre + h->pre_len, MG_CBOR_BSTR, body_len);
    h->sp_h_len = mg_cbor_encode_head(h->sp_h, MG_CBOR_BSTR, sp_len);
    h->aad_h_len = mg_cbor_encode_head(h->aad_h, MG_CBOR_BSTR, aad_len);
    h->pl_h_len = mg_cbor_encode_head(h->pl_h, MG_CBOR_BSTR, payload_len);
}

static void make_iov_m(mg_iov v[8], const sig_heads_m *h, const uint8_t *body, size_t body_len,
                       const uint8_t *sp, size_t sp_len, const uint8_t *aad, size_t aad_len,
                       const uint8_t *pl, size_t pl_len)
{
    v[0].p = h->pre;
    v[0].len = h->pre_len;
    v[1].p = body;
    v[1].len = body_len;
    v[2].p = h->sp_h;
    v[2].len = h->sp_h_len;
    v[3].p = sp;
    v[3].len = sp_len;
    v[4].p = h->aad_h;
    v[4].len = h->aad_h_len;
    v[5].p = aad;
    v[5].len = aad_len;
    v[6].p = h->pl_h;
    v[6].len = h->pl_h_len;
    v[7].p = pl;
    v[7].len = pl_len;
}

static mg_err verify_iov(mg_sig_alg sa, const uint8_t *pub, size_t pub_len, const mg_iov *v,
                         size_t n, const uint8_t *sig, mg_cose_why *why)
{
    mg_err e = mg_crypto_verify(sa, pub, pub_len, v, n, sig);
    switch (e) {
    case MG_OK: return cose_fail(why, MG_COSE_WHY_NONE, MG_OK);
    case MG_ERR_AUTH: return cose_fail(why, MG_COSE_WHY_BAD_SIG, e);
    case MG_ERR_KEY: return cose_fail(why, MG_COSE_WHY_KEY, e);
    case MG_ERR_UNSUPPORTED: return cose_fail(why, MG_COSE_WHY_UNSUPPORTED, e);
    default: return cose_fail(why, MG_COSE_WHY_CRYPTO, MG_ERR_CRYPTO);
    }
}

mg_err mg_cose_sign_verify(const mg_cose_sign *m, size_t idx, const uint8_t *aad,
                           size_t aad_len, int64_t key_alg, const uint8_t *pub, size_t pub_len,
                           mg_cose_why *why)
{
    sig_heads_m h;
    mg_iov v[8];
    mg_sig_alg sa = sig_alg_of(key_alg);
    const mg_cose_signature *s;
    if (m == NULL || pub == NULL || (aad == NULL && aad_len > 0) || idx >= m->n_sigs ||
        idx >= MG_COSE_SIGN_MAX || m->sigs[idx].sig == NULL)
        return cose_fail(why, MG_COSE_WHY_NONE, MG_ERR_ARG);
    s = &m->sigs[idx];
    if (sa == MG_SIG_NONE)
        return cose_fail(why, MG_COSE_WHY_UNSUPPORTED, MG_ERR_UNSUPPORTED);
    if (!s->has_alg)
        return cose_fail(why, MG_COSE_WHY_NO_ALG, MG_ERR_FORMAT);
    if (s->alg != key_alg)
        return cose_fail(why, MG_COSE_WHY_ALG, MG_ERR_KEY);
    if (s->sig_len != MG_SIG_LEN)
        return cose_fail(why, MG_COSE_WHY_SIG_LEN, MG_ERR_AUTH);
    make_heads_m(&h, m->prot_len, s->prot_len, aad_len, m->payload_len);
    make_iov_m(v, &h, m->prot, m->prot_len, s->prot, s->prot_len, aad, aad_len, m->payload,
               m->payload_len);
    return verify_iov(sa, pub, pub_len, v, 8, s->sig, why);
}

/* The protected header {1: alg, 4: kid} of one signer (out: 40 octets). */
static mg_err signer_prot(int64_t alg, const uint8_t *kid, size_t kid_len, uint8_t out[40],
                          size_t *len)
{
    mg_cbor_writer w;
    if (kid == NULL || kid_len == 0 || kid_len > MG_CMD_KID_MAX)
        return MG_ERR_ARG;
    mg_cbor_writer_init(&w, out, 40);
    mg_cbor_put_map(&w, 2);
    mg_cbor_put_uint(&w, MG_COSE_HDR_ALG);
    mg_cbor_put_int(&w, alg);
    mg_cbor_put_uint(&w, MG_COSE_HDR_KID);
    mg_cbor_put_bstr(&w, kid, kid_len);
    return mg_cbor_writer_finish(&w, len);
}

mg_err mg_cose_tbs(bool multi, int64_t alg, const uint8_t *kid, size_t kid_len,
                   const uint8_t *payload, size_t payload_len, uint8_t *out, size_t cap,
                   size_t *len)
{
    uint8_t prot[40];
    size_t prot_len = 0, total = 0, n;
    mg_iov v[8];
    mg_err e;
    if ((payload == NULL && payload_len > 0) || out == NULL || len == NULL)
        return MG_ERR_ARG;
    if (sig_alg_of(alg) == MG_SIG_NONE)
        return MG_ERR_UNSUPPORTED;
    e = signer_prot(alg, kid, kid_len, prot, &prot_len);
    if (e != MG_OK)
        return e;
    if (multi) {
        sig_heads_m h;
        make_heads_m(&h, 0, prot_len, 0, payload_len);
        make_iov_m(v, &h, NULL, 0, prot, prot_len, NULL, 0, payload, payload_len);
        n = 8;
        for (size_t i = 0; i < n; i++) {
            if (v[i].len > cap - total)
                return MG_ERR_BUF;
            if (v[i].len > 0)
                memcpy(out + total, v[i].p, v[i].len);
            total += v[i].len;
        }
    } else {
        sig_heads h;
        make_heads(&h, prot_len, 0, payload_len);
        make_iov(v, &h, prot, prot_len, NULL, 0, payload, payload_len);
        n = 6;
        for (size_t i = 0; i < n; i++) {
            if (v[i].len > cap - total)
                return MG_ERR_BUF;
            if (v[i].len > 0)
                memcpy(out + total, v[i].p, v[i].len);
            total += v[i].len;
        }
    }
    *len = total;
    return MG_OK;
}

/* Writes the signatures array of a COSE_Sign (or the last element of a
 * COSE_Sign1) to w. */
static void put_signatures(mg_cbor_writer *w, const mg_cose_sig_in *sigs, size_t n)
{
    mg_cbor_put_array(w, n);
    for (size_t i = 0; i < n; i++) {
        uint8_t prot[40];
        size_t prot_len = 0;
        if (signer_prot(sigs[i].alg, sigs[i].kid, sigs[i].kid_len, prot, &prot_len) != MG_OK) {
            w->overflow = true; /* makes finish fail */
            return;
        }
        mg_cbor_put_array(w, 3);
        mg_cbor_put_bstr(w, prot, prot_len);
        mg_cbor_put_map(w, 0);
        mg_cbor_put_bstr(w, sigs[i].sig, MG_SIG_LEN);
    }
}

mg_err mg_cose_assemble(const uint8_t *payload, size_t payload_len, const mg_cose_sig_in *sigs,
                        size_t n, uint8_t *out, size_t cap, size_t *len)
{
    mg_cbor_writer w;
    mg_err e;
    if ((payload == NULL && payload_len > 0) || sigs == NULL || n == 0 ||
        n > MG_COSE_SIGN_MAX || out == NULL || len == NULL)
        return MG_ERR_ARG;
    for (size_t i = 0; i < n; i++)
        if (sigs[i].sig == NULL || sig_alg_of(sigs[i].alg) == MG_SIG_NONE)
            return MG_ERR_ARG;
    /* the payload must not lie inside out (the writer copies it) */
    if (payload != NULL && payload + payload_len > out && payload < out + cap)
        return MG_ERR_ARG;
    mg_cbor_writer_init(&w, out, cap);
    if (n == 1) {
        uint8_t prot[40];
        size_t prot_len = 0;
        e = signer_prot(sigs[0].alg, sigs[0].kid, sigs[0].kid_len, prot, &prot_len);
        if (e != MG_OK)
            return e;
        mg_cbor_put_tag(&w, MG_COSE_TAG_SIGN1);
        mg_cbor_put_array(&w, 4);
        mg_cbor_put_bstr(&w, prot, prot_len);
        mg_cbor_put_map(&w, 0);
        mg_cbor_put_bstr(&w, payload, payload_len);
        mg_cbor_put_bstr(&w, sigs[0].sig, MG_SIG_LEN);
    } else {
        mg_cbor_put_tag(&w, MG_COSE_TAG_SIGN);
        mg_cbor_put_array(&w, 4);
        mg_cbor_put_bstr(&w, NULL, 0);
        mg_cbor_put_map(&w, 0);
        mg_cbor_put_bstr(&w, payload, payload_len);
        put_signatures(&w, sigs, n);
    }
    return mg_cbor_writer_finish(&w, len);
}

/* ---- signed commands ----------------------------------------------------- */

static bool is_cose_sign(const uint8_t *buf, size_t len);
static MG_INLINE mg_err parse_cmd_sign(const uint8_t *buf, size_t len, mg_cose_sign *m,
                                       mg_signed_cmd *c, mg_cmd_why *why);

static mg_err cmd_fail(mg_cmd_why *why, mg_cmd_why w, mg_err e)
{
    if (why != NULL)
        *why = w;
    return e;
}

static mg_cmd_why from_cbor(mg_cbor_why w)
{
    switch (w) {
    case MG_CBOR_WHY_NOT_SHORTEST:
    case MG_CBOR_WHY_UNSORTED:
    case MG_CBOR_WHY_FLOAT:
    case MG_CBOR_WHY_INDEFINITE: return MG_CMD_NOT_DETERMINISTIC;
    case MG_CBOR_WHY_DUPLICATE: return MG_CMD_DUPLICATE_KEY;
    case MG_CBOR_WHY_TRAILING: return MG_CMD_TRAILING;
    default: return MG_CMD_MALFORMED;
    }
}

static bool printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    return true;
}

/* A text field of the payload: printable ASCII, lo..hi octets. */
static bool text_field(mg_cbor_reader *r, size_t lo, size_t hi, const char **p, size_t *n)
{
    mg_cbor_item it;
    if (mg_cbor_expect(r, MG_CBOR_TSTR, &it) != MG_OK || it.val < lo || it.val > hi ||
        !printable(it.p, (size_t)it.val))
        return false;
    *p = (const char *)it.p;
    *n = (size_t)it.val;
    return true;
}

/* Parses the payload map (already checked deterministic: keys sorted, unique). */
static MG_NOINLINE mg_err parse_payload(const uint8_t *p, size_t len, mg_signed_cmd *c, mg_cmd_why *why)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    mg_cbor_why cw = MG_CBOR_WHY_NONE;
    unsigned seen = 0;
    mg_err e = mg_cbor_check(p, len, MG_CBOR_DETERMINISTIC, &cw);
    if (e != MG_OK)
        return cmd_fail(why, from_cbor(cw), e);
    mg_cbor_reader_init(&r, p, len, MG_CBOR_DETERMINISTIC);
    if (mg_cbor_expect(&r, MG_CBOR_MAP, &it) != MG_OK || it.val < 6 || it.val > 7)
        return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_FORMAT);
    for (uint64_t i = 0, n = it.val; i < n; i++) {
        mg_cbor_item k, v;
        bool ok = true;
        if (mg_cbor_expect(&r, MG_CBOR_UINT, &k) != MG_OK || k.val < MG_CMD_K_KID ||
            k.val > MG_CMD_K_EXP)
            return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_FORMAT);
        switch (k.val) {
        case MG_CMD_K_KID:
            ok = mg_cbor_expect(&r, MG_CBOR_BSTR, &v) == MG_OK && v.val >= 1 &&
                 v.val <= MG_CMD_KID_MAX;
            if (ok) {
                c->kid = v.p;
                c->kid_len = (size_t)v.val;
            }
            break;
        case MG_CMD_K_AUD:
            ok = text_field(&r, 1, MG_CMD_AUD_MAX, &c->audience, &c->audience_len);
            break;
        case MG_CMD_K_CMD:
            ok = text_field(&r, 1, MG_CMD_TEXT_MAX, &c->command, &c->command_len);
            break;
        case MG_CMD_K_ARGS:
            ok = text_field(&r, 0, MG_CMD_ARGS_MAX, &c->args, &c->args_len);
            break;
        default: /* SEQ, IAT, EXP: uint */
            ok = mg_cbor_expect(&r, MG_CBOR_UINT, &v) == MG_OK;
            if (ok && k.val == MG_CMD_K_SEQ)
                c->seq = v.val;
            else if (ok && k.val == MG_CMD_K_IAT)
                c->iat = v.val;
            else if (ok)
                c->exp = v.val;
            break;
        }
        if (!ok)
            return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_FORMAT);
        seen |= 1u << k.val;
    }
    /* every key but ARGS is required */
    const unsigned need = (1u << MG_CMD_K_KID) | (1u << MG_CMD_K_AUD) | (1u << MG_CMD_K_CMD) |
                          (1u << MG_CMD_K_SEQ) | (1u << MG_CMD_K_IAT) | (1u << MG_CMD_K_EXP);
    if ((seen & need) != need || c->seq == 0 || c->seq > (uint64_t)INT64_MAX ||
        c->exp <= c->iat)
        return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_FORMAT);
    return MG_OK;
}

/* Parses the COSE envelope of a command and its payload (no signature check). */
static mg_err parse_cmd(const uint8_t *buf, size_t len, mg_cose_sign1 *m, mg_signed_cmd *c,
                        mg_cmd_why *why)
{
    mg_cose_why cw = MG_COSE_WHY_NONE;
    mg_err e;
    if (len > MG_CMD_MAX_LEN)
        return cmd_fail(why, MG_CMD_OVERSIZED, MG_ERR_LENGTH);
    e = mg_cose_sign1_parse(buf, len, MG_CBOR_DETERMINISTIC, m, &cw);
    if (e != MG_OK)
        return cmd_fail(why, cw == MG_COSE_WHY_CBOR ? from_cbor(m->cbor_why) : MG_CMD_MALFORMED,
                        e);
    /* this profile: alg protected, kid present (protected or not) */
    if (!m->has_alg || !m->alg_protected || m->kid == NULL || m->kid_len == 0 ||
        m->kid_len > MG_CMD_KID_MAX)
        return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_FORMAT);
    e = parse_payload(m->payload, m->payload_len, c, why);
    if (e != MG_OK)
        return e;
    c->alg = m->alg;
    return MG_OK;
}

mg_err mg_cmd_inspect(const uint8_t *buf, size_t len, mg_signed_cmd *out, mg_cmd_why *why)
{
    mg_cose_sign1 m;
    mg_err e;
    if (out == NULL || (buf == NULL && len > 0))
        return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_ARG);
    memset(out, 0, sizeof(*out));
    if (is_cose_sign(buf, len)) {
        mg_cose_sign ms;
        e = parse_cmd_sign(buf, len, &ms, out, why);
    } else {
        e = parse_cmd(buf, len, &m, out, why);
        if (e == MG_OK) {
            out->n_kids = 1;
            out->kids[0].kid = m.kid;
            out->kids[0].kid_len = m.kid_len;
            out->kids[0].alg = m.alg;
        }
    }
    if (e != MG_OK) {
        memset(out, 0, sizeof(*out));
        return e;
    }
    return cmd_fail(why, MG_CMD_OK, MG_OK);
}

/* The signed content's rules after the signature(s): audience, validity, sequence. */
static mg_err check_content(const mg_signed_cmd *c, const char *device, uint64_t last_seq,
                            uint64_t now, mg_cmd_why *why)
{
    if (c->audience_len != strlen(device) || memcmp(c->audience, device, c->audience_len) != 0)
        return cmd_fail(why, MG_CMD_WRONG_AUDIENCE, MG_ERR_AUTH);
    if (c->iat > now && c->iat - now > MG_CMD_SKEW_S)
        return cmd_fail(why, MG_CMD_NOT_YET_VALID, MG_ERR_AUTH);
    if (now >= c->exp)
        return cmd_fail(why, MG_CMD_EXPIRED, MG_ERR_AUTH);
    if (c->seq <= last_seq)
        return cmd_fail(why, MG_CMD_SEQ_NOT_HIGHER, MG_ERR_CNTR_LOW);
    return MG_OK;
}

mg_err mg_cmd_verify(const uint8_t *buf, size_t len, const mg_cmd_anchor *anchors,
                     size_t n_anchors, const char *device, uint64_t last_seq, uint64_t now,
                     mg_signed_cmd *out, mg_cmd_why *why)
{
    mg_cose_sign1 m;
    mg_cose_why cw = MG_COSE_WHY_NONE;
    const mg_cmd_anchor *a = NULL;
    size_t ai = 0;
    mg_err e;

    if (out == NULL || device == NULL || (buf == NULL && len > 0) ||
        (anchors == NULL && n_anchors > 0))
        return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_ARG);
    memset(out, 0, sizeof(*out));
    e = parse_cmd(buf, len, &m, out, why);
    if (e != MG_OK)
        goto refuse;
    for (ai = 0; ai < n_anchors; ai++) {
        if (anchors[ai].kid_len == m.kid_len && anchors[ai].kid != NULL &&
            memcmp(anchors[ai].kid, m.kid, m.kid_len) == 0) {
            a = &anchors[ai];
            break;
        }
    }
    if (a == NULL) {
        e = cmd_fail(why, MG_CMD_UNKNOWN_KID, MG_ERR_KEY);
        goto refuse;
    }
    if (m.alg != a->alg) {
        e = cmd_fail(why, MG_CMD_ALG_NOT_ALLOWED, MG_ERR_KEY);
        goto refuse;
    }
    e = mg_cose_sign1_verify(&m, NULL, 0, a->alg, a->pub, a->pub_len, &cw);
    if (e != MG_OK) {
        mg_cmd_why w = cw == MG_COSE_WHY_BAD_SIG || cw == MG_COSE_WHY_SIG_LEN ? MG_CMD_BAD_SIGNATURE
                       : cw == MG_COSE_WHY_UNSUPPORTED                       ? MG_CMD_UNSUPPORTED
                       : cw == MG_COSE_WHY_ALG                               ? MG_CMD_ALG_NOT_ALLOWED
                                                                             : MG_CMD_CRYPTO;
        e = cmd_fail(why, w, e);
        goto refuse;
    }
    /* Signed content from here on. */
    if (out->kid_len != m.kid_len || memcmp(out->kid, m.kid, m.kid_len) != 0) {
        e = cmd_fail(why, MG_CMD_KID_MISMATCH, MG_ERR_AUTH);
        goto refuse;
    }
    e = check_content(out, device, last_seq, now, why);
    if (e != MG_OK)
        goto refuse;
    out->anchor = ai;
    out->n_kids = 1;
    out->kids[0].kid = m.kid;
    out->kids[0].kid_len = m.kid_len;
    out->kids[0].alg = m.alg;
    out->kids[0].anchor = ai;
    return cmd_fail(why, MG_CMD_OK, MG_OK);
refuse:
    memset(out, 0, sizeof(*out));
    return e;
}

mg_err mg_cmd_encode(const mg_signed_cmd *c, uint8_t *out, size_t cap, size_t *len)
{
    mg_cbor_writer w;
    if (c == NULL || out == NULL || len == NULL || c->kid == NULL || c->kid_len == 0 ||
        c->kid_len > MG_CMD_KID_MAX || c->audience == NULL || c->audience_len == 0 ||
        c->audience_len > MG_CMD_AUD_MAX || c->command == NULL || c->command_len == 0 ||
        c->command_len > MG_CMD_TEXT_MAX || c->args_len > MG_CMD_ARGS_MAX ||
        (c->args == NULL && c->args_len > 0) || c->seq == 0 || c->seq > (uint64_t)INT64_MAX ||
        c->exp <= c->iat || !printable((const uint8_t *)c->audience, c->audience_len) ||
        !printable((const uint8_t *)c->command, c->command_len) ||
        (c->args != NULL && !printable((const uint8_t *)c->args, c->args_len)))
        return MG_ERR_ARG;
    mg_cbor_writer_init(&w, out, cap);
    mg_cbor_put_map(&w, c->args != NULL ? 7 : 6);
    mg_cbor_put_uint(&w, MG_CMD_K_KID);
    mg_cbor_put_bstr(&w, c->kid, c->kid_len);
    mg_cbor_put_uint(&w, MG_CMD_K_AUD);
    mg_cbor_put_tstr(&w, c->audience, c->audience_len);
    mg_cbor_put_uint(&w, MG_CMD_K_CMD);
    mg_cbor_put_tstr(&w, c->command, c->command_len);
    if (c->args != NULL) {
        mg_cbor_put_uint(&w, MG_CMD_K_ARGS);
        mg_cbor_put_tstr(&w, c->args, c->args_len);
    }
    mg_cbor_put_uint(&w, MG_CMD_K_SEQ);
    mg_cbor_put_uint(&w, c->seq);
    mg_cbor_put_uint(&w, MG_CMD_K_IAT);
    mg_cbor_put_uint(&w, c->iat);
    mg_cbor_put_uint(&w, MG_CMD_K_EXP);
    mg_cbor_put_uint(&w, c->exp);
    return mg_cbor_writer_finish(&w, len);
}

mg_err mg_cmd_sign(const mg_signed_cmd *c, int64_t alg, const uint8_t *priv, size_t priv_len,
                   uint8_t *out, size_t cap, size_t *len)
{
    size_t plen = 0;
    mg_err e;
    if (c == NULL || out == NULL || len == NULL || priv == NULL)
        return MG_ERR_ARG;
    if (cap < SIGN1_PRE)
        return MG_ERR_BUF;
    e = mg_cmd_encode(c, out + SIGN1_PRE, cap - SIGN1_PRE, &plen);
    if (e == MG_OK)
        e = sign1_in_place(alg, c->kid, c->kid_len, plen, priv, priv_len, true, out, cap, len);
    if (e == MG_OK && *len > MG_CMD_MAX_LEN)
        e = MG_ERR_BUF;
    if (e != MG_OK)
        mg_wipe(out, cap);
    return e;
}

/* ---- several signers: COSE_Sign (the two-person rule) -------------------- */

static bool is_cose_sign(const uint8_t *buf, size_t len)
{
    return len >= 2 && buf[0] == 0xd8 && buf[1] == MG_COSE_TAG_SIGN;
}

/* Parses a tagged COSE_Sign command and its payload (no signature check). */
static MG_INLINE mg_err parse_cmd_sign(const uint8_t *buf, size_t len, mg_cose_sign *m,
                                       mg_signed_cmd *c, mg_cmd_why *why)
{
    mg_cose_why cw = MG_COSE_WHY_NONE;
    mg_err e;
    if (len > MG_CMD_MAX_LEN)
        return cmd_fail(why, MG_CMD_OVERSIZED, MG_ERR_LENGTH);
    e = mg_cose_sign_parse(buf, len, MG_CBOR_DETERMINISTIC, m, &cw);
    if (e != MG_OK)
        return cmd_fail(why, cw == MG_COSE_WHY_CBOR ? from_cbor(m->cbor_why) : MG_CMD_MALFORMED,
                        e);
    /* this profile: the body names no signer; each signature has a
     * protected alg and a kid */
    if (!m->tagged || m->body_has_alg || m->body_has_kid)
        return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_FORMAT);
    for (size_t i = 0; i < m->n_sigs; i++) {
        const mg_cose_signature *s = &m->sigs[i];
        if (!s->has_alg || !s->alg_protected || s->kid == NULL || s->kid_len == 0 ||
            s->kid_len > MG_CMD_KID_MAX)
            return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_FORMAT);
        for (size_t j = 0; j < i; j++)
            if (m->sigs[j].kid_len == s->kid_len &&
                memcmp(m->sigs[j].kid, s->kid, s->kid_len) == 0)
                return cmd_fail(why, MG_CMD_DUPLICATE_SIGNER, MG_ERR_FORMAT);
    }
    e = parse_payload(m->payload, m->payload_len, c, why);
    if (e != MG_OK)
        return e;
    c->alg = m->sigs[0].alg;
    c->n_kids = m->n_sigs;
    for (size_t i = 0; i < m->n_sigs; i++) {
        c->kids[i].kid = m->sigs[i].kid;
        c->kids[i].kid_len = m->sigs[i].kid_len;
        c->kids[i].alg = m->sigs[i].alg;
    }
    return MG_OK;
}

static mg_cmd_why why_of_cose(mg_cose_why cw)
{
    return cw == MG_COSE_WHY_BAD_SIG || cw == MG_COSE_WHY_SIG_LEN ? MG_CMD_BAD_SIGNATURE
           : cw == MG_COSE_WHY_UNSUPPORTED                       ? MG_CMD_UNSUPPORTED
           : cw == MG_COSE_WHY_ALG                               ? MG_CMD_ALG_NOT_ALLOWED
                                                                 : MG_CMD_CRYPTO;
}

/* Verifies every signature of a parsed COSE_Sign command against the anchors. */
static MG_NOINLINE mg_err verify_signers(const mg_cose_sign *m, const mg_cmd_anchor *anchors,
                                         size_t n_anchors, mg_signed_cmd *c, mg_cmd_why *why)
{
    bool issuer_signed = false;
    for (size_t i = 0; i < m->n_sigs; i++) {
        const mg_cose_signature *s = &m->sigs[i];
        mg_cose_why cw = MG_COSE_WHY_NONE;
        size_t ai;
        mg_err e;
        for (ai = 0; ai < n_anchors; ai++)
            if (anchors[ai].kid != NULL && anchors[ai].kid_len == s->kid_len &&
                memcmp(anchors[ai].kid, s->kid, s->kid_len) == 0)
                break;
        if (ai == n_anchors)
            return cmd_fail(why, MG_CMD_UNKNOWN_KID, MG_ERR_KEY);
        if (s->alg != anchors[ai].alg)
            return cmd_fail(why, MG_CMD_ALG_NOT_ALLOWED, MG_ERR_KEY);
        e = mg_cose_sign_verify(m, i, NULL, 0, anchors[ai].alg, anchors[ai].pub,
                                anchors[ai].pub_len, &cw);
        if (e != MG_OK)
            return cmd_fail(why, why_of_cose(cw), e);
        c->kids[i].anchor = ai;
        if (c->kid_len == s->kid_len && memcmp(c->kid, s->kid, s->kid_len) == 0)
            issuer_signed = true;
    }
    /* Signed content from here on: the issuer named in it is a signer. */
    if (!issuer_signed)
        return cmd_fail(why, MG_CMD_KID_MISMATCH, MG_ERR_AUTH);
    c->anchor = c->kids[0].anchor;
    return MG_OK;
}

/* Parses and verifies every signature of a tagged COSE_Sign command (its
 * parsed form kept off mg_cmd_verify_multi's frame: the Sign1 path). */
static MG_NOINLINE mg_err verify_sign_cmd(const uint8_t *buf, size_t len,
                                          const mg_cmd_anchor *anchors, size_t n_anchors,
                                          mg_signed_cmd *out, mg_cmd_why *why)
{
    mg_cose_sign m;
    mg_err e = parse_cmd_sign(buf, len, &m, out, why);
    if (e == MG_OK)
        e = verify_signers(&m, anchors, n_anchors, out, why);
    return e;
}

mg_err mg_cmd_verify_multi(const uint8_t *buf, size_t len, const mg_cmd_anchor *anchors,
                           size_t n_anchors, const char *device, uint64_t last_seq, uint64_t now,
                           size_t min_signers, mg_signed_cmd *out, mg_cmd_why *why)
{
    mg_err e;
    size_t need = min_signers == 0 ? 1 : min_signers;

    if (out == NULL || device == NULL || (buf == NULL && len > 0) ||
        (anchors == NULL && n_anchors > 0))
        return cmd_fail(why, MG_CMD_MALFORMED, MG_ERR_ARG);
    memset(out, 0, sizeof(*out));
    if (!is_cose_sign(buf, len)) {
        /* one signer: the COSE_Sign1 rules, then the count */
        e = mg_cmd_verify(buf, len, anchors, n_anchors, device, last_seq, now, out, why);
        if (e == MG_OK && need > 1) {
            memset(out, 0, sizeof(*out));
            return cmd_fail(why, MG_CMD_TOO_FEW_SIGNERS, MG_ERR_AUTH);
        }
        return e;
    }
    e = verify_sign_cmd(buf, len, anchors, n_anchors, out, why);
    if (e == MG_OK && out->n_kids < need) /* kids distinct -> anchors distinct */
        e = cmd_fail(why, MG_CMD_TOO_FEW_SIGNERS, MG_ERR_AUTH);
    if (e == MG_OK)
        e = check_content(out, device, last_seq, now, why);
    if (e != MG_OK) {
        memset(out, 0, sizeof(*out));
        return e;
    }
    return cmd_fail(why, MG_CMD_OK, MG_OK);
}

/* Signs the payload at out[SIGN1_PRE..SIGN1_PRE+plen) by n >= 2 keys and
 * builds the COSE_Sign in place (kept off mg_cmd_sign_multi's frame). */
static MG_NOINLINE mg_err sign_multi_tail(const mg_cmd_signer_key *keys, size_t n, size_t plen,
                                          uint8_t *out, size_t cap, size_t *len)
{
    uint8_t sigs[MG_COSE_SIGN_MAX][MG_SIG_LEN];
    size_t h = 0;
    mg_cbor_writer w;
    mg_err e = MG_OK;
    for (size_t i = 0; i < n && e == MG_OK; i++) {
        uint8_t prot[40];
        size_t prot_len = 0;
        sig_heads_m sh;
        mg_iov v[8];
        mg_sig_alg sa = sig_alg_of(keys[i].alg);
        e = sa == MG_SIG_NONE ? MG_ERR_UNSUPPORTED
                              : signer_prot(keys[i].alg, keys[i].kid, keys[i].kid_len, prot,
                                            &prot_len);
        if (e != MG_OK)
            break;
        make_heads_m(&sh, 0, prot_len, 0, plen);
        make_iov_m(v, &sh, NULL, 0, prot, prot_len, NULL, 0, out + SIGN1_PRE, plen);
        e = mg_crypto_sign(sa, keys[i].priv, keys[i].priv_len, v, 8, sigs[i]);
    }
    if (e != MG_OK)
        goto wipe;
    /* tag 98, array(4), h'', {}, payload head; then the payload moves to follow it */
    {
        uint8_t hdr[5 + 9];
        hdr[h++] = 0xd8;
        hdr[h++] = MG_COSE_TAG_SIGN;
        hdr[h++] = 0x84;
        hdr[h++] = 0x40;
        hdr[h++] = 0xa0;
        h += mg_cbor_encode_head(hdr + h, MG_CBOR_BSTR, plen); /* plen < 64 KiB: <= 3 */
        memmove(out + h, out + SIGN1_PRE, plen);
        memcpy(out, hdr, h);
    }
    {
        mg_cose_sig_in si[MG_COSE_SIGN_MAX];
        size_t tail = 0;
        for (size_t i = 0; i < n; i++) {
            si[i].alg = keys[i].alg;
            si[i].kid = keys[i].kid;
            si[i].kid_len = keys[i].kid_len;
            si[i].sig = sigs[i];
        }
        mg_cbor_writer_init(&w, out + h + plen, cap - h - plen);
        put_signatures(&w, si, n);
        e = mg_cbor_writer_finish(&w, &tail);
        if (e == MG_OK) {
            *len = h + plen + tail;
            if (mg_cbor_check(out, *len, MG_CBOR_DETERMINISTIC, NULL) != MG_OK)
                e = MG_ERR_FORMAT;
        }
    }
wipe:
    mg_wipe(sigs, sizeof(sigs));
    return e;
}

mg_err mg_cmd_sign_multi(const mg_signed_cmd *c, const mg_cmd_signer_key *keys, size_t n,
                         uint8_t *out, size_t cap, size_t *len)
{
    size_t plen = 0;
    mg_err e;

    if (c == NULL || keys == NULL || n == 0 || n > MG_COSE_SIGN_MAX || out == NULL ||
        len == NULL)
        return MG_ERR_ARG;
    for (size_t i = 0; i < n; i++)
        if (keys[i].priv == NULL || keys[i].kid == NULL || keys[i].kid_len == 0 ||
            keys[i].kid_len > MG_CMD_KID_MAX)
            return MG_ERR_ARG;
    if (cap < SIGN1_PRE)
        return MG_ERR_BUF;
    e = mg_cmd_encode(c, out + SIGN1_PRE, cap - SIGN1_PRE, &plen);
    if (e != MG_OK)
        goto done;
    if (n == 1) {
        e = sign1_in_place(keys[0].alg, keys[0].kid, keys[0].kid_len, plen, keys[0].priv,
                           keys[0].priv_len, true, out, cap, len);
        goto done;
    }
    e = sign_multi_tail(keys, n, plen, out, cap, len);
done:
    if (e == MG_OK && *len > MG_CMD_MAX_LEN)
        e = MG_ERR_BUF;
    if (e != MG_OK)
        mg_wipe(out, cap);
    return e;
}
