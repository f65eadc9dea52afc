/* OpenSSL 3 backend of the crypto interface (host builds). */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "backend.h"

/* Prepared state attached to an mg_key: keyed contexts, made on first use
 * so that the key schedule is computed once per key, not once per packet. */
typedef struct ossl_state {
    EVP_MAC_CTX *cmac;
    EVP_CIPHER_CTX *cbc[2]; /* [0] decrypt, [1] encrypt */
} ossl_state;

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
        /* Same key and direction: only reset the chaining value. */
        if (EVP_CipherInit_ex2(*slot, NULL, NULL, zero_iv, -1, NULL) != 1)
            return NULL;
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
        /* Keyed already: a NULL key restarts the MAC with the same key. */
        if (EVP_MAC_init(s->cmac, NULL, 0, NULL) != 1)
            return NULL;
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
