/* Mbed TLS backend of the crypto interface. Used for host tests and, with the
 * same source, for microcontroller builds (MG_MBEDTLS_NO_ENTROPY: the
 * platform supplies mg_platform_random()). It keeps no state in mg_key. */
#include <string.h>

#include <mbedtls/aes.h>
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
#include <mbedtls/des.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/sha256.h>

#include "backend.h"

#ifndef MG_MBEDTLS_NO_ENTROPY
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#else
/* Provided by the board support package: a TRNG or a seeded DRBG. */
extern int mg_platform_random(uint8_t *out, size_t len);
#endif

const char *mg_crypto_backend(void)
{
    return "mbedtls";
}

void mg_be_release(mg_key *k)
{
    k->backend = NULL;
}

void mg_be_rekey(mg_key *k)
{
    (void)k; /* nothing is attached: every operation sets its key up */
}

static mg_err aes_cbc(mg_key *k, bool encrypt, const uint8_t *in, uint8_t *out, size_t len)
{
    mbedtls_aes_context ctx;
    uint8_t iv[16] = {0};
    int rc;
    mbedtls_aes_init(&ctx);
    rc = encrypt ? mbedtls_aes_setkey_enc(&ctx, k->bytes, (unsigned)k->len * 8u)
                 : mbedtls_aes_setkey_dec(&ctx, k->bytes, (unsigned)k->len * 8u);
    if (rc == 0)
        rc = mbedtls_aes_crypt_cbc(&ctx, encrypt ? MBEDTLS_AES_ENCRYPT : MBEDTLS_AES_DECRYPT,
                                   len, iv, in, out);
    mbedtls_aes_free(&ctx); /* zeroizes the key schedule */
    mg_wipe(iv, sizeof(iv));
    return rc == 0 ? MG_OK : MG_ERR_CRYPTO;
}

static mg_err des3_cbc(mg_key *k, bool encrypt, const uint8_t *in, uint8_t *out, size_t len)
{
    mbedtls_des3_context ctx;
    uint8_t iv[8] = {0};
    int rc;
    mbedtls_des3_init(&ctx);
    if (k->alg == MG_ALG_3DES2)
        rc = encrypt ? mbedtls_des3_set2key_enc(&ctx, k->bytes) : mbedtls_des3_set2key_dec(&ctx, k->bytes);
    else
        rc = encrypt ? mbedtls_des3_set3key_enc(&ctx, k->bytes) : mbedtls_des3_set3key_dec(&ctx, k->bytes);
    if (rc == 0)
        rc = mbedtls_des3_crypt_cbc(&ctx, encrypt ? MBEDTLS_DES_ENCRYPT : MBEDTLS_DES_DECRYPT,
                                    len, iv, in, out);
    mbedtls_des3_free(&ctx);
    mg_wipe(iv, sizeof(iv));
    return rc == 0 ? MG_OK : MG_ERR_CRYPTO;
}

mg_err mg_crypto_cbc(mg_key *k, bool encrypt, const uint8_t *in, uint8_t *out, size_t len)
{
    size_t bs;
    if (k == NULL || (len > 0 && (in == NULL || out == NULL)))
        return MG_ERR_ARG;
    bs = mg_alg_block(k->alg);
    if (bs == 0 || len % bs != 0)
        return MG_ERR_ARG;
    if (len == 0)
        return MG_OK;
    return k->alg == MG_ALG_AES ? aes_cbc(k, encrypt, in, out, len) : des3_cbc(k, encrypt, in, out, len);
}

mg_err mg_be_cmac(mg_key *k, const mg_iov *parts, size_t n, uint8_t tag[16])
{
    mbedtls_cipher_context_t ctx;
    const mbedtls_cipher_info_t *info;
    mbedtls_cipher_type_t t = k->len == 16 ? MBEDTLS_CIPHER_AES_128_ECB
                              : k->len == 24 ? MBEDTLS_CIPHER_AES_192_ECB
                                             : MBEDTLS_CIPHER_AES_256_ECB;
    int rc;
    if (k->alg != MG_ALG_AES)
        return MG_ERR_ARG;
    info = mbedtls_cipher_info_from_type(t);
    if (info == NULL)
        return MG_ERR_CRYPTO;
    mbedtls_cipher_init(&ctx);
    rc = mbedtls_cipher_setup(&ctx, info);
    if (rc == 0)
        rc = mbedtls_cipher_cmac_starts(&ctx, k->bytes, (size_t)k->len * 8u);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (parts[i].len > 0)
            rc = mbedtls_cipher_cmac_update(&ctx, parts[i].p, parts[i].len);
    if (rc == 0)
        rc = mbedtls_cipher_cmac_finish(&ctx, tag);
    mbedtls_cipher_free(&ctx); /* zeroizes the CMAC state */
    return rc == 0 ? MG_OK : MG_ERR_CRYPTO;
}

/* ---- hashing and signatures ---------------------------------------------
 * SHA-256 and ES256 verification. Mbed TLS 2.28 has no Ed25519: verify
 * returns MG_ERR_UNSUPPORTED for it. Signing is host-only (OpenSSL). */

static int sha256_parts(const mg_iov *parts, size_t n, uint8_t out[MG_SHA256_LEN])
{
    mbedtls_sha256_context ctx;
    int rc;
    mbedtls_sha256_init(&ctx);
    rc = mbedtls_sha256_starts_ret(&ctx, 0);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (parts[i].len > 0)
            rc = mbedtls_sha256_update_ret(&ctx, parts[i].p, parts[i].len);
    if (rc == 0)
        rc = mbedtls_sha256_finish_ret(&ctx, out);
    mbedtls_sha256_free(&ctx);
    return rc;
}

/* ---- incremental SHA-256 (issue 14): the context lives in c->st_ -------- */

_Static_assert(sizeof(mbedtls_sha256_context) <= MG_SHA256_STATE_MAX,
               "MG_SHA256_STATE_MAX too small for mbedtls_sha256_context");
_Static_assert(_Alignof(mbedtls_sha256_context) <= _Alignof(uint64_t),
               "mg_sha256.st_ not aligned enough for mbedtls_sha256_context");

static mbedtls_sha256_context *sha_ctx(mg_sha256 *c)
{
    return (mbedtls_sha256_context *)(void *)c->st_.b;
}

mg_err mg_sha256_init(mg_sha256 *c)
{
    if (c == NULL)
        return MG_ERR_ARG;
    if (c->started)
        return MG_ERR_STATE;
    mbedtls_sha256_init(sha_ctx(c));
    if (mbedtls_sha256_starts_ret(sha_ctx(c), 0) != 0) {
        mbedtls_sha256_free(sha_ctx(c));
        return MG_ERR_CRYPTO;
    }
    c->backend = NULL;
    c->started = true;
    return MG_OK;
}

mg_err mg_sha256_update(mg_sha256 *c, const uint8_t *p, size_t n)
{
    if (c == NULL || (p == NULL && n > 0))
        return MG_ERR_ARG;
    if (!c->started)
        return MG_ERR_STATE;
    if (n == 0)
        return MG_OK;
    return mbedtls_sha256_update_ret(sha_ctx(c), p, n) == 0 ? MG_OK : MG_ERR_CRYPTO;
}

void mg_sha256_abort(mg_sha256 *c)
{
    if (c == NULL)
        return;
    if (c->started)
        mbedtls_sha256_free(sha_ctx(c)); /* zeroizes */
    mg_wipe(c, sizeof(*c));
}

mg_err mg_sha256_final(mg_sha256 *c, uint8_t out[MG_SHA256_LEN])
{
    if (c == NULL || out == NULL)
        return MG_ERR_ARG;
    if (!c->started)
        return MG_ERR_STATE;
    int rc = mbedtls_sha256_finish_ret(sha_ctx(c), out);
    mg_sha256_abort(c);
    return rc == 0 ? MG_OK : MG_ERR_CRYPTO;
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

mg_err mg_crypto_sha256(const mg_iov *parts, size_t n, uint8_t out[MG_SHA256_LEN])
{
    if (out == NULL || !iov_ok(parts, n))
        return MG_ERR_ARG;
    return sha256_parts(parts, n, out) == 0 ? MG_OK : MG_ERR_CRYPTO;
}

mg_err mg_crypto_verify(mg_sig_alg alg, const uint8_t *pub, size_t pub_len,
                        const mg_iov *parts, size_t n, const uint8_t sig[MG_SIG_LEN])
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    uint8_t h[MG_SHA256_LEN];
    mg_err e = MG_ERR_CRYPTO;
    if (pub == NULL || sig == NULL || !iov_ok(parts, n))
        return MG_ERR_ARG;
    if (alg != MG_SIG_ES256)
        return MG_ERR_UNSUPPORTED; /* Ed25519: not in Mbed TLS 2.28 */
    if (pub_len != MG_ES256_PUB_LEN || pub[0] != 0x04)
        return MG_ERR_KEY;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0)
        goto out;
    if (mbedtls_ecp_point_read_binary(&grp, &q, pub, pub_len) != 0 ||
        mbedtls_ecp_check_pubkey(&grp, &q) != 0) {
        e = MG_ERR_KEY;
        goto out;
    }
    if (mbedtls_mpi_read_binary(&r, sig, 32) != 0 || mbedtls_mpi_read_binary(&s, sig + 32, 32) != 0 ||
        sha256_parts(parts, n, h) != 0)
        goto out;
    /* Rejects r, s outside [1, n-1] as well as a wrong signature. */
    e = mbedtls_ecdsa_verify(&grp, h, sizeof(h), &q, &r, &s) == 0 ? MG_OK : MG_ERR_AUTH;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return e;
}

mg_err mg_crypto_sign(mg_sig_alg alg, const uint8_t *priv, size_t priv_len,
                      const mg_iov *parts, size_t n, uint8_t sig[MG_SIG_LEN])
{
    (void)alg;
    (void)priv;
    (void)priv_len;
    (void)parts;
    (void)n;
    (void)sig;
    return MG_ERR_UNSUPPORTED; /* host-only: the OpenSSL backend signs */
}

mg_err mg_crypto_public_key(mg_sig_alg alg, const uint8_t *priv, size_t priv_len,
                            uint8_t *pub, size_t cap, size_t *pub_len)
{
    (void)alg;
    (void)priv;
    (void)priv_len;
    (void)pub;
    (void)cap;
    (void)pub_len;
    return MG_ERR_UNSUPPORTED;
}

#ifndef MG_MBEDTLS_NO_ENTROPY
mg_err mg_crypto_random(uint8_t *out, size_t len)
{
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    static const unsigned char pers[] = "m2mguard";
    int rc;
    if (out == NULL && len > 0)
        return MG_ERR_ARG;
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, pers, sizeof(pers) - 1);
    while (rc == 0 && len > 0) {
        size_t chunk = len > MBEDTLS_CTR_DRBG_MAX_REQUEST ? MBEDTLS_CTR_DRBG_MAX_REQUEST : len;
        rc = mbedtls_ctr_drbg_random(&drbg, out, chunk);
        out += chunk;
        len -= chunk;
    }
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
    return rc == 0 ? MG_OK : MG_ERR_CRYPTO;
}
#else
mg_err mg_crypto_random(uint8_t *out, size_t len)
{
    if (out == NULL && len > 0)
        return MG_ERR_ARG;
    return mg_platform_random(out, len) == 0 ? MG_OK : MG_ERR_CRYPTO;
}
#endif
