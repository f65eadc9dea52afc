/* SUIT envelopes, host side (suit.h "building envelopes"): the manifest
 * m2mguard writes, the Sig_structure for an external signer, the assembled
 * envelope, and signing with a key in memory (mg_crypto_sign). Kept apart
 * from the device's manifest processor (suit.c): a device does not link it.
 * No allocation; its buffers are on the stack (host). */
#include <string.h>

#include "buf.h"
#include "m2mguard/cbor.h"
#include "m2mguard/suit.h"

/* ---- host side: building envelopes ----------------------------------------- */

/* The policy the draft's examples put on conditions (15) and directives (2). */
#define POL_COND 15u
#define POL_DIR 2u

static mg_err digest_encode(const uint8_t d[MG_SHA256_LEN], uint8_t *out, size_t cap, size_t *len)
{
    mg_cbor_writer w;
    mg_cbor_writer_init(&w, out, cap);
    mg_cbor_put_array(&w, 2);
    mg_cbor_put_int(&w, MG_SUIT_DIGEST_ALG_SHA256);
    mg_cbor_put_bstr(&w, d, MG_SHA256_LEN);
    return mg_cbor_writer_finish(&w, len);
}

mg_err mg_suit_manifest_encode(const mg_suit_params *p, uint8_t *out, size_t cap, size_t *len)
{
    uint8_t dig[48], shared[256], common[320], val[32], inst[300], ver[16];
    size_t dl = 0, sl = 0, cl = 0, vl = 0, il = 0, verl = 0;
    static const uint8_t comp0[1] = {0x00};
    mg_cbor_writer w;
    if (p == NULL || out == NULL || len == NULL)
        return MG_ERR_ARG;
    *len = 0;
    const uint8_t *cid = p->component_id != NULL ? p->component_id : comp0;
    size_t cidl = p->component_id != NULL ? p->component_id_len : 1;
    if (cidl == 0 || cidl > MG_SUIT_COMPONENT_ID_MAX || (p->uri != NULL && p->uri_len > MG_SUIT_URI_MAX) ||
        p->size == 0 || (p->has_min_seq && p->min_seq > (uint64_t)INT64_MAX))
        return MG_ERR_ARG;
    MG_TRY(digest_encode(p->digest, dig, sizeof(dig), &dl));
    if (p->has_min_seq) { /* [greater-equal, [N]] */
        mg_cbor_writer_init(&w, ver, sizeof(ver));
        mg_cbor_put_array(&w, 2);
        mg_cbor_put_uint(&w, MG_SUIT_VERSION_GREATER_EQUAL);
        mg_cbor_put_array(&w, 1);
        mg_cbor_put_uint(&w, p->min_seq);
        MG_TRY(mg_cbor_writer_finish(&w, &verl));
    }
    /* shared sequence */
    mg_cbor_writer_init(&w, shared, sizeof(shared));
    mg_cbor_put_array(&w, p->has_min_seq ? 8 : 6);
    mg_cbor_put_uint(&w, MG_SUIT_DIR_OVERRIDE_PARAMS);
    mg_cbor_put_map(&w, p->has_min_seq ? 5 : 4);
    mg_cbor_put_uint(&w, MG_SUIT_P_VENDOR);
    mg_cbor_put_bstr(&w, p->vendor, MG_SUIT_UUID_LEN);
    mg_cbor_put_uint(&w, MG_SUIT_P_CLASS);
    mg_cbor_put_bstr(&w, p->class_id, MG_SUIT_UUID_LEN);
    mg_cbor_put_uint(&w, MG_SUIT_P_DIGEST);
    mg_cbor_put_bstr(&w, dig, dl);
    mg_cbor_put_uint(&w, MG_SUIT_P_SIZE);
    mg_cbor_put_uint(&w, p->size);
    if (p->has_min_seq) {
        mg_cbor_put_uint(&w, MG_SUIT_P_VERSION);
        mg_cbor_put_bstr(&w, ver, verl);
    }
    mg_cbor_put_uint(&w, MG_SUIT_COND_VENDOR);
    mg_cbor_put_uint(&w, POL_COND);
    mg_cbor_put_uint(&w, MG_SUIT_COND_CLASS);
    mg_cbor_put_uint(&w, POL_COND);
    if (p->has_min_seq) {
        mg_cbor_put_uint(&w, MG_SUIT_COND_VERSION);
        mg_cbor_put_uint(&w, POL_COND);
    }
    MG_TRY(mg_cbor_writer_finish(&w, &sl));
    /* common */
    mg_cbor_writer_init(&w, common, sizeof(common));
    mg_cbor_put_map(&w, 2);
    mg_cbor_put_uint(&w, MG_SUIT_C_COMPONENTS);
    mg_cbor_put_array(&w, 1);
    mg_cbor_put_array(&w, 1);
    mg_cbor_put_bstr(&w, cid, cidl);
    mg_cbor_put_uint(&w, MG_SUIT_C_SHARED_SEQ);
    mg_cbor_put_bstr(&w, shared, sl);
    MG_TRY(mg_cbor_writer_finish(&w, &cl));
    /* validate */
    mg_cbor_writer_init(&w, val, sizeof(val));
    mg_cbor_put_array(&w, 2);
    mg_cbor_put_uint(&w, MG_SUIT_COND_IMAGE_MATCH);
    mg_cbor_put_uint(&w, POL_COND);
    MG_TRY(mg_cbor_writer_finish(&w, &vl));
    if (p->uri != NULL) { /* install: fetch from the uri, then check it */
        mg_cbor_writer_init(&w, inst, sizeof(inst));
        mg_cbor_put_array(&w, 6);
        mg_cbor_put_uint(&w, MG_SUIT_DIR_OVERRIDE_PARAMS);
        mg_cbor_put_map(&w, 1);
        mg_cbor_put_uint(&w, MG_SUIT_P_URI);
        mg_cbor_put_tstr(&w, p->uri, p->uri_len);
        mg_cbor_put_uint(&w, MG_SUIT_DIR_FETCH);
        mg_cbor_put_uint(&w, POL_DIR);
        mg_cbor_put_uint(&w, MG_SUIT_COND_IMAGE_MATCH);
        mg_cbor_put_uint(&w, POL_COND);
        MG_TRY(mg_cbor_writer_finish(&w, &il));
    }
    static const uint8_t invoke[3] = {0x82, MG_SUIT_DIR_INVOKE, POL_DIR}; /* [23, 2] */
    mg_cbor_writer_init(&w, out, cap);
    mg_cbor_put_map(&w, p->uri != NULL ? 6 : 5);
    mg_cbor_put_uint(&w, MG_SUIT_M_VERSION);
    mg_cbor_put_uint(&w, 1);
    mg_cbor_put_uint(&w, MG_SUIT_M_SEQ);
    mg_cbor_put_uint(&w, p->seq);
    mg_cbor_put_uint(&w, MG_SUIT_M_COMMON);
    mg_cbor_put_bstr(&w, common, cl);
    mg_cbor_put_uint(&w, MG_SUIT_M_VALIDATE);
    mg_cbor_put_bstr(&w, val, vl);
    mg_cbor_put_uint(&w, MG_SUIT_M_INVOKE);
    mg_cbor_put_bstr(&w, invoke, 3);
    if (p->uri != NULL) {
        mg_cbor_put_uint(&w, MG_SUIT_M_INSTALL);
        mg_cbor_put_bstr(&w, inst, il);
    }
    return mg_cbor_writer_finish(&w, len);
}

/* protected {1: alg[, 4: kid]} and the SUIT_Digest of manifest m. */
static mg_err sign_parts(int64_t alg, const uint8_t *kid, size_t kid_len, const uint8_t *m,
                         size_t mlen, uint8_t prot[64], size_t *pl, uint8_t dig[48], size_t *dl)
{
    uint8_t h[9], d[MG_SHA256_LEN];
    mg_cbor_writer w;
    if ((alg != MG_COSE_ALG_ES256 && alg != MG_COSE_ALG_EDDSA) || kid_len > MG_CMD_KID_MAX ||
        (kid == NULL && kid_len > 0) || m == NULL || mlen == 0)
        return MG_ERR_ARG;
    mg_cbor_writer_init(&w, prot, 64);
    mg_cbor_put_map(&w, kid_len > 0 ? 2 : 1);
    mg_cbor_put_uint(&w, MG_COSE_HDR_ALG);
    mg_cbor_put_int(&w, alg);
    if (kid_len > 0) {
        mg_cbor_put_uint(&w, MG_COSE_HDR_KID);
        mg_cbor_put_bstr(&w, kid, kid_len);
    }
    MG_TRY(mg_cbor_writer_finish(&w, pl));
    size_t hl = mg_cbor_encode_head(h, MG_CBOR_BSTR, mlen);
    const mg_iov parts[2] = {{h, hl}, {m, mlen}}; /* the bstr-wrapped manifest */
    MG_TRY(mg_crypto_sha256(parts, 2, d));
    return digest_encode(d, dig, 48, dl);
}

mg_err mg_suit_tbs(int64_t alg, const uint8_t *kid, size_t kid_len, const uint8_t *m, size_t mlen,
                   uint8_t *out, size_t cap, size_t *len)
{
    uint8_t prot[64], dig[48];
    size_t pl = 0, dl = 0;
    mg_cbor_writer w;
    if (out == NULL || len == NULL)
        return MG_ERR_ARG;
    *len = 0;
    MG_TRY(sign_parts(alg, kid, kid_len, m, mlen, prot, &pl, dig, &dl));
    mg_cbor_writer_init(&w, out, cap);
    mg_cbor_put_array(&w, 4);
    mg_cbor_put_tstr(&w, "Signature1", 10);
    mg_cbor_put_bstr(&w, prot, pl);
    mg_cbor_put_bstr(&w, NULL, 0);
    mg_cbor_put_bstr(&w, dig, dl);
    return mg_cbor_writer_finish(&w, len);
}

mg_err mg_suit_envelope_assemble(const uint8_t *m, size_t mlen, int64_t alg, const uint8_t *kid,
                                 size_t kid_len, const uint8_t *sig, uint8_t *out, size_t cap,
                                 size_t *len)
{
    uint8_t prot[64], dig[48], cose[200], auth[280];
    size_t pl = 0, dl = 0, col = 0, al = 0;
    mg_cbor_writer w;
    if (out == NULL || len == NULL || sig == NULL)
        return MG_ERR_ARG;
    *len = 0;
    MG_TRY(sign_parts(alg, kid, kid_len, m, mlen, prot, &pl, dig, &dl));
    mg_cbor_writer_init(&w, cose, sizeof(cose));
    mg_cbor_put_tag(&w, MG_COSE_TAG_SIGN1);
    mg_cbor_put_array(&w, 4);
    mg_cbor_put_bstr(&w, prot, pl);
    mg_cbor_put_map(&w, 0);
    mg_cbor_put_head(&w, MG_CBOR_SIMPLE, 22); /* nil: detached payload */
    mg_cbor_put_bstr(&w, sig, MG_SIG_LEN);
    MG_TRY(mg_cbor_writer_finish(&w, &col));
    mg_cbor_writer_init(&w, auth, sizeof(auth));
    mg_cbor_put_array(&w, 2);
    mg_cbor_put_bstr(&w, dig, dl);
    mg_cbor_put_bstr(&w, cose, col);
    MG_TRY(mg_cbor_writer_finish(&w, &al));
    mg_cbor_writer_init(&w, out, cap);
    mg_cbor_put_tag(&w, MG_SUIT_TAG_ENVELOPE);
    mg_cbor_put_map(&w, 2);
    mg_cbor_put_uint(&w, MG_SUIT_ENV_AUTH);
    mg_cbor_put_bstr(&w, auth, al);
    mg_cbor_put_uint(&w, MG_SUIT_ENV_MANIFEST);
    mg_cbor_put_bstr(&w, m, mlen);
    return mg_cbor_writer_finish(&w, len);
}

mg_err mg_suit_envelope_sign(const mg_suit_params *p, int64_t alg, const uint8_t *kid,
                             size_t kid_len, const uint8_t *priv, size_t priv_len, uint8_t *out,
                             size_t cap, size_t *len)
{
    uint8_t m[MG_SUIT_ENVELOPE_MAX / 2], tbs[160], sig[MG_SIG_LEN];
    size_t ml = 0, tl = 0;
    if (p == NULL || priv == NULL || out == NULL || len == NULL)
        return MG_ERR_ARG;
    *len = 0;
    MG_TRY(mg_suit_manifest_encode(p, m, sizeof(m), &ml));
    MG_TRY(mg_suit_tbs(alg, kid, kid_len, m, ml, tbs, sizeof(tbs), &tl));
    const mg_iov part = {tbs, tl};
    mg_err e = mg_crypto_sign(alg == MG_COSE_ALG_ES256 ? MG_SIG_ES256 : MG_SIG_ED25519, priv,
                              priv_len, &part, 1, sig);
    if (e == MG_OK)
        e = mg_suit_envelope_assemble(m, ml, alg, kid, kid_len, sig, out, cap, len);
    mg_wipe(sig, sizeof(sig));
    return e;
}

mg_err mg_suit_envelope_integrate(const uint8_t *env, size_t len, const char *key, size_t key_len,
                                  const uint8_t *payload, size_t plen, uint8_t *out, size_t cap,
                                  size_t *olen)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    const uint8_t *have = NULL;
    size_t hn = 0;
    if (env == NULL || key == NULL || key_len == 0 || (payload == NULL && plen > 0) ||
        out == NULL || olen == NULL)
        return MG_ERR_ARG;
    *olen = 0;
    if (!mg_suit_is_envelope(env, len) || mg_suit_payload(env, len, key, key_len, &have, &hn) != MG_ERR_KEY)
        return MG_ERR_ARG;
    mg_cbor_reader_init(&r, env, len, 0);
    if (mg_cbor_read(&r, &it) != MG_OK || mg_cbor_expect(&r, MG_CBOR_MAP, &it) != MG_OK ||
        it.val >= 23)
        return MG_ERR_ARG;
    size_t body = r.pos; /* the members, copied as they are */
    uint8_t h[3][9];
    size_t hl[3];
    hl[0] = mg_cbor_encode_head(h[0], MG_CBOR_MAP, it.val + 1);
    hl[1] = mg_cbor_encode_head(h[1], MG_CBOR_TSTR, key_len);
    hl[2] = mg_cbor_encode_head(h[2], MG_CBOR_BSTR, plen);
    /* tag 107 (2) + map head + members + key + payload */
    size_t need = 2 + hl[0] + (len - body) + hl[1] + key_len + hl[2];
    MG_ENSURE(plen <= MG_SUIT_ENVELOPE_MAX && need <= cap && cap - need >= plen, MG_ERR_BUF);
    size_t at = 0;
    out[at++] = env[0];
    out[at++] = env[1];
    memcpy(out + at, h[0], hl[0]);
    at += hl[0];
    memcpy(out + at, env + body, len - body);
    at += len - body;
    memcpy(out + at, h[1], hl[1]);
    at += hl[1];
    memcpy(out + at, key, key_len);
    at += key_len;
    memcpy(out + at, h[2], hl[2]);
    at += hl[2];
    if (plen > 0)
        memcpy(out + at, payload, plen);
    *olen = at + plen;
    return MG_OK;
}
