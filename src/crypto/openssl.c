/* OpenSSL 3 backend of the crypto interface (host builds). */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "backend.h"

/* Prepared state attached to an mg_key: keyed contexts, made on first use
 * so that the key schedule is computed once per key, not once per packet.
 * mg_key_reinit keeps them for another key of the same algorithm and length
 * (mg_be_rekey): each is keyed again at its next use. */
typedef struct ossl_state {
    EVP_MAC_CTX *cmac;
    EVP_CIPHER_CTX *cbc[2]; /* [0] decrypt, [1] encrypt */
    uint8_t stale;          /* STALE_*: keyed with the previous key */
} ossl_state;

#define STALE_CBC(encrypt) ((encrypt) ? 2u : 1u)
#define STALE_CMAC 4u

static const uint8_t zero_iv[16];

const char *mg_crypto_backend(void)
{
    return "openssl";
}

static ossl_state *state_of(mg_key *k)
{
    if (k->backend == NULL) {
        ossl_state *s = OPENSSL_zalloc(sizeof(*s));
        if (s == NULL)
            return NULL;
        k->backend = s;
    }
    return (ossl_state *)k->backend;
}

void mg_be_release(mg_key *k)
{
    ossl_state *s = (ossl_state *)k->backend;
    if (s == NULL)
        return;
    EVP_MAC_CTX_free(s->cmac);
    EVP_CIPHER_CTX_free(s->cbc[0]);
    EVP_CIPHER_CTX_free(s->cbc[1]);
    OPENSSL_clear_free(s, sizeof(*s));
    k->backend = NULL;
}

void mg_be_rekey(mg_key *k)
{
    ossl_state *s = (ossl_state *)k->backend;
    s->stale = STALE_CBC(false) | STALE_CBC(true) | STALE_CMAC;
}

static const char *cbc_name(const mg_key *k)
{
    switch (k->alg) {
    case MG_ALG_AES:
        return k->len == 16 ? "AES-128-CBC" : k->len == 24 ? "AES-192-CBC" : "AES-256-CBC";
    case MG_ALG_3DES2: return "DES-EDE-CBC";
    case MG_ALG_3DES3: return "DES-EDE3-CBC";
    case MG_ALG_NONE: break;
    }
    return NULL;
}

static EVP_CIPHER_CTX *cbc_ctx(mg_key *k, bool encrypt)
{
    ossl_state *s = state_of(k);
    if (s == NULL)
        return NULL;
    EVP_CIPHER_CTX **slot = &s->cbc[encrypt ? 1 : 0];
    if (*slot != NULL) {
        /* Same cipher and direction: only reset the chaining value, and the
         * key schedule if the key changed. */
        bool stale = (s->stale & STALE_CBC(encrypt)) != 0;
        if (EVP_CipherInit_ex2(*slot, NULL, stale ? k->bytes : NULL, zero_iv, -1, NULL) != 1)
            return NULL;
        s->stale &= (uint8_t)~STALE_CBC(encrypt);
        return *slot;
    }
    const char *name = cbc_name(k);
    EVP_CIPHER *c = name ? EVP_CIPHER_fetch(NULL, name, NULL) : NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (c == NULL || ctx == NULL ||
        EVP_CipherInit_ex2(ctx, c, k->bytes, zero_iv, encrypt ? 1 : 0, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
        EVP_CIPHER_free(c);
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    EVP_CIPHER_free(c);
    *slot = ctx;
    s->stale &= (uint8_t)~STALE_CBC(encrypt);
    return ctx;
}

mg_err mg_crypto_cbc(mg_key *k, bool encrypt, const uint8_t *in, uint8_t *out, size_t len)
{
    size_t bs;
    if (k == NULL || (len > 0 && (in == NULL || out == NULL)))
        return MG_ERR_ARG;
    bs = mg_alg_block(k->alg);
    if (bs == 0 || len % bs != 0 || len > (size_t)INT32_MAX)
        return MG_ERR_ARG;
    if (len == 0)
        return MG_OK;
    EVP_CIPHER_CTX *ctx = cbc_ctx(k, encrypt);
    int outl = 0, finl = 0;
    if (ctx == NULL)
        return MG_ERR_CRYPTO;
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1 || (size_t)outl != len ||
        EVP_CipherFinal_ex(ctx, out + outl, &finl) != 1 || finl != 0)
        return MG_ERR_CRYPTO;
    return MG_OK;
}

static EVP_MAC_CTX *cmac_ctx(mg_key *k)
{
    ossl_state *s = state_of(k);
    if (s == NULL)
        return NULL;
    if (s->cmac != NULL) {
        /* Keyed already: a NULL key restarts the MAC with the same key; a
         * new key of the same length keeps the context's cipher. */
        bool stale = (s->stale & STALE_CMAC) != 0;
        if (EVP_MAC_init(s->cmac, stale ? k->bytes : NULL, stale ? k->len : 0, NULL) != 1)
            return NULL;
        s->stale &= (uint8_t)~STALE_CMAC;
        return s->cmac;
    }
    /* OSSL_PARAM takes a non-const pointer; it does not write through it. */
    static char aes128[] = "AES-128-CBC", aes192[] = "AES-192-CBC", aes256[] = "AES-256-CBC";
    char *cipher = k->len == 16 ? aes128 : k->len == 24 ? aes192 : aes256;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0);
    params[1] = OSSL_PARAM_construct_end();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    if (ctx == NULL || EVP_MAC_init(ctx, k->bytes, k->len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    s->cmac = ctx;
    s->stale &= (uint8_t)~STALE_CMAC;
    return ctx;
}

mg_err mg_be_cmac(mg_key *k, const mg_iov *parts, size_t n, uint8_t tag[16])
{
    EVP_MAC_CTX *ctx;
    size_t outl = 0;
    if (k->alg != MG_ALG_AES)
        return MG_ERR_ARG;
    ctx = cmac_ctx(k);
    if (ctx == NULL)
        return MG_ERR_CRYPTO;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len > 0 && EVP_MAC_update(ctx, parts[i].p, parts[i].len) != 1)
            return MG_ERR_CRYPTO;
    if (EVP_MAC_final(ctx, tag, &outl, 16) != 1 || outl != 16)
        return MG_ERR_CRYPTO;
    return MG_OK;
}

mg_err mg_crypto_random(uint8_t *out, size_t len)
{
    if (out == NULL && len > 0)
        return MG_ERR_ARG;
    while (len > 0) {
        int chunk = len > 1u << 20 ? 1 << 20 : (int)len;
        if (RAND_bytes(out, chunk) != 1)
            return MG_ERR_CRYPTO;
        out += chunk;
        len -= (size_t)chunk;
    }
    return MG_OK;
}

/* ---- hashing and signatures --------------------------------------------- */

mg_err mg_crypto_sha256(const mg_iov *parts, size_t n, uint8_t out[MG_SHA256_LEN])
{
    EVP_MD_CTX *ctx;
    unsigned outl = 0;
    int ok;
    if (out == NULL || (n > 0 && parts == NULL))
        return MG_ERR_ARG;
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return MG_ERR_CRYPTO;
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        if (parts[i].p == NULL && parts[i].len > 0)
            ok = 0;
        else if (parts[i].len > 0)
            ok = EVP_DigestUpdate(ctx, parts[i].p, parts[i].len) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, out, &outl) == 1 && outl == MG_SHA256_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? MG_OK : MG_ERR_CRYPTO;
}

/* ---- incremental SHA-256 (issue 14): an EVP_MD_CTX attached to c ------- */

mg_err mg_sha256_init(mg_sha256 *c)
{
    if (c == NULL)
        return MG_ERR_ARG;
    if (c->started)
        return MG_ERR_STATE;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return MG_ERR_CRYPTO;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return MG_ERR_CRYPTO;
    }
    c->backend = ctx;
    c->started = true;
    return MG_OK;
}

mg_err mg_sha256_update(mg_sha256 *c, const uint8_t *p, size_t n)
{
    if (c == NULL || (p == NULL && n > 0))
        return MG_ERR_ARG;
    if (!c->started || c->backend == NULL)
        return MG_ERR_STATE;
    if (n == 0)
        return MG_OK;
    return EVP_DigestUpdate((EVP_MD_CTX *)c->backend, p, n) == 1 ? MG_OK : MG_ERR_CRYPTO;
}

void mg_sha256_abort(mg_sha256 *c)
{
    if (c == NULL)
        return;
    EVP_MD_CTX_free((EVP_MD_CTX *)c->backend); /* frees and cleanses; NULL is fine */
    mg_wipe(c, sizeof(*c));
}

mg_err mg_sha256_final(mg_sha256 *c, uint8_t out[MG_SHA256_LEN])
{
    if (c == NULL || out == NULL)
        return MG_ERR_ARG;
    if (!c->started || c->backend == NULL)
        return MG_ERR_STATE;
    unsigned outl = 0;
    int ok = EVP_DigestFinal_ex((EVP_MD_CTX *)c->backend, out, &outl) == 1 &&
             outl == MG_SHA256_LEN;
    mg_sha256_abort(c);
    return ok ? MG_OK : MG_ERR_CRYPTO;
}

/* An EVP_PKEY from raw key octets: public (priv == NULL) or private. */
static EVP_PKEY *raw_pkey(mg_sig_alg alg, const uint8_t *pub, size_t pub_len,
                          const uint8_t *priv, size_t priv_len)
{
    if (alg == MG_SIG_ED25519) {
        if (priv != NULL)
            return priv_len == MG_SIG_PRIV_LEN
                       ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, priv_len)
                       : NULL;
        return pub_len == MG_ED25519_PUB_LEN
                   ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, pub_len)
                   : NULL;
    }
    if (alg != MG_SIG_ES256)
        return NULL;
    if (priv == NULL && (pub_len != MG_ES256_PUB_LEN || pub[0] != 0x04))
        return NULL;
    if (priv != NULL && priv_len != MG_SIG_PRIV_LEN)
        return NULL;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *d = priv != NULL ? BN_secure_new() : NULL;
    int ok = pctx != NULL && bld != NULL && (priv == NULL || d != NULL) &&
             OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1;
    if (ok && priv != NULL)
        ok = BN_bin2bn(priv, (int)priv_len, d) != NULL &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1;
    if (ok && pub != NULL)
        ok = OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len) == 1;
    if (ok)
        ok = (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
             EVP_PKEY_fromdata_init(pctx) == 1 &&
             EVP_PKEY_fromdata(pctx, &pkey,
                               priv != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) == 1;
    if (ok && priv == NULL) {
        /* fromdata does not check that the point is on the curve: do it. */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        ok = chk != NULL && EVP_PKEY_public_check(chk) == 1;
        EVP_PKEY_CTX_free(chk);
        if (!ok) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    OSSL_PARAM_free(params); /* OSSL_PARAM_BLD_to_param copies: the copy holds d */
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    EVP_PKEY_CTX_free(pctx);
    return ok ? pkey : NULL;
}

/* The concatenation of the pieces in one heap buffer (Ed25519 is one-shot). */
static uint8_t *concat(const mg_iov *parts, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > SIZE_MAX / 2 - total)
            return NULL;
        total += parts[i].len;
    }
    uint8_t *buf = OPENSSL_malloc(total > 0 ? total : 1);
    if (buf == NULL)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > 0)
            memcpy(buf + off, parts[i].p, parts[i].len);
        off += parts[i].len;
    }
    *len = total;
    return buf;
}

static bool iov_ok(const mg_iov *parts, size_t n)
{
    if (n > 0 && parts == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (parts[i].p == NULL && parts[i].len > 0)
            return false;
    return true;
}

/* Verification keys prepared once: building an EVP_PKEY from a raw point and
 * checking it is on the curve costs about as much as a verification. A
 * small per-thread cache of public keys (not secret) keyed by their octets;
 * the least recently filled slot is replaced. Entries live until the thread
 * ends (8 keys at most per thread). */
#define PK_CACHE 8
typedef struct pk_slot {
    mg_sig_alg alg;
    size_t len;
    uint8_t pub[MG_ES256_PUB_LEN];
    EVP_PKEY *pk;
} pk_slot;
static _Thread_local pk_slot pk_cache[PK_CACHE];
static _Thread_local unsigned pk_next;

static EVP_PKEY *verify_key(mg_sig_alg alg, const uint8_t *pub, size_t pub_len)
{
    if (pub_len > MG_ES256_PUB_LEN)
        return NULL;
    for (unsigned i = 0; i < PK_CACHE; i++) {
        pk_slot *s = &pk_cache[i];
        if (s->pk != NULL && s->alg == alg && s->len == pub_len && memcmp(s->pub, pub, pub_len) == 0)
            return s->pk;
    }
    EVP_PKEY *pk = raw_pkey(alg, pub, pub_len, NULL, 0);
    if (pk == NULL)
        return NULL;
    pk_slot *s = &pk_cache[pk_next++ % PK_CACHE];
    EVP_PKEY_free(s->pk);
    s->alg = alg;
    s->len = pub_len;
    memcpy(s->pub, pub, pub_len);
    s->pk = pk;
    return pk;
}

mg_err mg_crypto_verify(mg_sig_alg alg, const uint8_t *pub, size_t pub_len,
                        const mg_iov *parts, size_t n, const uint8_t sig[MG_SIG_LEN])
{
    if (pub == NULL || sig == NULL || !iov_ok(parts, n))
        return MG_ERR_ARG;
    if (alg != MG_SIG_ES256 && alg != MG_SIG_ED25519)
        return MG_ERR_UNSUPPORTED;
    EVP_PKEY *pkey = verify_key(alg, pub, pub_len);
    if (pkey == NULL)
        return MG_ERR_KEY;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    mg_err e = MG_ERR_CRYPTO;
    if (md == NULL)
        goto out;
    if (alg == MG_SIG_ED25519) {
        size_t mlen = 0;
        uint8_t *msg = concat(parts, n, &mlen);
        if (msg != NULL && EVP_DigestVerifyInit_ex(md, NULL, NULL, NULL, NULL, pkey, NULL) == 1) {
            int r = EVP_DigestVerify(md, sig, MG_SIG_LEN, msg, mlen);
            e = r == 1 ? MG_OK : r == 0 ? MG_ERR_AUTH : MG_ERR_CRYPTO;
            if (r < 0) /* OpenSSL reports a malformed signature as an error too */
                e = MG_ERR_AUTH;
        }
        OPENSSL_free(msg);
    } else {
        /* Raw r||s (RFC 9053 2.1) to the DER form that OpenSSL verifies. */
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        unsigned char *der = NULL;
        int derlen = -1;
        if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
            r = s = NULL; /* owned by es */
            derlen = i2d_ECDSA_SIG(es, &der);
        }
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        if (derlen > 0 && EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1) {
            int ok = 1;
            for (size_t i = 0; ok && i < n; i++)
                if (parts[i].len > 0)
                    ok = EVP_DigestVerifyUpdate(md, parts[i].p, parts[i].len) == 1;
            if (ok) {
                int v = EVP_DigestVerifyFinal(md, der, (size_t)derlen);
                /* 0: wrong signature; < 0: r or s zero or out of range */
                e = v == 1 ? MG_OK : MG_ERR_AUTH;
            }
        }
        OPENSSL_free(der);
    }
out:
    EVP_MD_CTX_free(md);
    return e; /* pkey belongs to the cache */
}

mg_err mg_crypto_sign(mg_sig_alg alg, const uint8_t *priv, size_t priv_len,
                      const mg_iov *parts, size_t n, uint8_t sig[MG_SIG_LEN])
{
    if (priv == NULL || sig == NULL || !iov_ok(parts, n))
        return MG_ERR_ARG;
    if (alg != MG_SIG_ES256 && alg != MG_SIG_ED25519)
        return MG_ERR_UNSUPPORTED;
    EVP_PKEY *pkey = raw_pkey(alg, NULL, 0, priv, priv_len);
    if (pkey == NULL)
        return MG_ERR_KEY;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    mg_err e = MG_ERR_CRYPTO;
    if (md == NULL)
        goto out;
    if (alg == MG_SIG_ED25519) {
        size_t mlen = 0, slen = MG_SIG_LEN;
        uint8_t *msg = concat(parts, n, &mlen);
        if (msg != NULL && EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, pkey, NULL) == 1 &&
            EVP_DigestSign(md, sig, &slen, msg, mlen) == 1 && slen == MG_SIG_LEN)
            e = MG_OK;
        OPENSSL_free(msg);
    } else {
        uint8_t der[80];
        size_t dlen = sizeof(der);
        int ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1;
        for (size_t i = 0; ok && i < n; i++)
            if (parts[i].len > 0)
                ok = EVP_DigestSignUpdate(md, parts[i].p, parts[i].len) == 1;
        ok = ok && EVP_DigestSignFinal(md, der, &dlen) == 1;
        const unsigned char *dp = der;
        ECDSA_SIG *es = ok ? d2i_ECDSA_SIG(NULL, &dp, (long)dlen) : NULL;
        if (es != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32)
            e = MG_OK;
        ECDSA_SIG_free(es);
    }
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    if (e != MG_OK)
        OPENSSL_cleanse(sig, MG_SIG_LEN);
    return e;
}

mg_err mg_crypto_public_key(mg_sig_alg alg, const uint8_t *priv, size_t priv_len,
                            uint8_t *pub, size_t cap, size_t *pub_len)
{
    if (priv == NULL || pub == NULL || pub_len == NULL)
        return MG_ERR_ARG;
    if (alg == MG_SIG_ED25519) {
        EVP_PKEY *pkey = raw_pkey(alg, NULL, 0, priv, priv_len);
        size_t len = cap;
        int ok = pkey != NULL && cap >= MG_ED25519_PUB_LEN &&
                 EVP_PKEY_get_raw_public_key(pkey, pub, &len) == 1 && len == MG_ED25519_PUB_LEN;
        EVP_PKEY_free(pkey);
        if (!ok)
            return pkey == NULL ? MG_ERR_KEY : cap < MG_ED25519_PUB_LEN ? MG_ERR_BUF : MG_ERR_CRYPTO;
        *pub_len = len;
        return MG_OK;
    }
    if (alg != MG_SIG_ES256)
        return MG_ERR_UNSUPPORTED;
    if (priv_len != MG_SIG_PRIV_LEN)
        return MG_ERR_KEY;
    if (cap < MG_ES256_PUB_LEN)
        return MG_ERR_BUF;
    /* Q = d * G on P-256 (EC_POINT is not deprecated in OpenSSL 3). */
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *q = g != NULL ? EC_POINT_new(g) : NULL;
    BIGNUM *d = BN_secure_new();
    BN_CTX *bc = BN_CTX_new();
    mg_err e = MG_ERR_CRYPTO;
    if (q != NULL && d != NULL && bc != NULL && BN_bin2bn(priv, (int)priv_len, d) != NULL) {
        if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(g)) >= 0)
            e = MG_ERR_KEY;
        else if (EC_POINT_mul(g, q, d, NULL, NULL, bc) == 1 &&
                 EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, pub, cap, bc) ==
                     MG_ES256_PUB_LEN) {
            *pub_len = MG_ES256_PUB_LEN;
            e = MG_OK;
        }
    }
    BN_CTX_free(bc);
    BN_clear_free(d);
    EC_POINT_free(q);
    EC_GROUP_free(g);
    return e;
}
