/* Backend-independent part of the crypto interface: key objects and the
 * 3DES CBC-MAC of TS 102 225 §5.1.3.1, built on the backend's CBC. */
#include <string.h>

#include "backend.h"

size_t mg_alg_block(mg_alg alg)
{
    switch (alg) {
    case MG_ALG_AES: return 16;
    case MG_ALG_3DES2:
    case MG_ALG_3DES3: return 8;
    case MG_ALG_NONE: break;
    }
    return 0;
}

mg_err mg_key_init(mg_key *k, mg_alg alg, const uint8_t *bytes, size_t len)
{
    if (k == NULL || bytes == NULL)
        return MG_ERR_ARG;
    memset(k, 0, sizeof(*k));
    switch (alg) {
    case MG_ALG_AES:
        if (len != 16 && len != 24 && len != 32)
            return MG_ERR_ARG;
        break;
    case MG_ALG_3DES2:
        if (len != 16)
            return MG_ERR_ARG;
        break;
    case MG_ALG_3DES3:
        if (len != 24)
            return MG_ERR_ARG;
        break;
    case MG_ALG_NONE:
    default:
        return MG_ERR_ARG;
    }
    k->alg = alg;
    k->len = (uint8_t)len;
    memcpy(k->bytes, bytes, len);
    return MG_OK;
}

void mg_key_clear(mg_key *k)
{
    if (k == NULL)
        return;
    if (k->backend != NULL)
        mg_be_release(k);
    mg_wipe(k, sizeof(*k));
}

mg_err mg_key_reinit(mg_key *k, mg_alg alg, const uint8_t *bytes, size_t len)
{
    if (k == NULL)
        return MG_ERR_ARG;
    if (k->backend == NULL || k->alg != alg || k->len != len || bytes == NULL) {
        mg_key_clear(k); /* nothing to keep, or contexts of another cipher */
        return mg_key_init(k, alg, bytes, len);
    }
    void *be = k->backend;
    bool same_bytes = mg_ct_equal(k->bytes, bytes, len);
    mg_err e = mg_key_init(k, alg, bytes, len); /* zeroes k first: the old bytes are gone */
    k->backend = be;
    if (e != MG_OK)
        mg_key_clear(k); /* releases be */
    else if (!same_bytes)
        mg_be_rekey(k);
    return e;
}

/* CBC-MAC with zero IV and zero padding: x = E(x ^ m_i) block by block. */
static mg_err cbc_mac8(mg_key *k, const mg_iov *parts, size_t n, uint8_t tag[16])
{
    uint8_t x[8] = {0}, blk[8];
    size_t fill = 0;
    size_t total = 0;
    mg_err e = MG_OK;

    for (size_t i = 0; i < n && e == MG_OK; i++) {
        for (size_t j = 0; j < parts[i].len; j++) {
            blk[fill] = (uint8_t)(x[fill] ^ parts[i].p[j]);
            fill++;
            total++;
            if (fill == 8) {
                e = mg_crypto_cbc(k, true, blk, x, 8);
                fill = 0;
                if (e != MG_OK)
                    break;
            }
        }
    }
    if (e == MG_OK && (fill > 0 || total == 0)) {
        for (; fill < 8; fill++)
            blk[fill] = x[fill]; /* zero padding: x ^ 0 */
        e = mg_crypto_cbc(k, true, blk, x, 8);
    }
    if (e == MG_OK)
        memcpy(tag, x, 8);
    mg_wipe(x, sizeof(x));
    mg_wipe(blk, sizeof(blk));
    return e;
}

mg_err mg_crypto_mac(mg_key *k, const mg_iov *parts, size_t n, uint8_t tag[16],
                     size_t *tag_len)
{
    if (k == NULL || tag == NULL || tag_len == NULL || (n > 0 && parts == NULL))
        return MG_ERR_ARG;
    for (size_t i = 0; i < n; i++)
        if (parts[i].p == NULL && parts[i].len > 0)
            return MG_ERR_ARG;
    switch (k->alg) {
    case MG_ALG_AES:
        *tag_len = 16;
        return mg_be_cmac(k, parts, n, tag);
    case MG_ALG_3DES2:
    case MG_ALG_3DES3:
        *tag_len = 8;
        return cbc_mac8(k, parts, n, tag);
    case MG_ALG_NONE:
        break;
    }
    return MG_ERR_ARG;
}
