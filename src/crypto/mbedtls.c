/* Mbed TLS backend of the crypto interface. Used for host tests and, with the
 * same source, for microcontroller builds (MG_MBEDTLS_NO_ENTROPY: the
 * platform supplies mg_platform_random()). It keeps no state in mg_key. */
#include <string.h>

#include <mbedtls/aes.h>
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
#include <mbedtls/des.h>

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
