/*
 * Crypto interface stub for the Cortex-M0+ size probe (tools/arm-size.sh).
 * Crypto is outside the core budget (issue 2): these functions only keep the
 * link whole and are excluded from the flash and stack figures. They are
 * never run.
 */
#include "m2mguard/crypto.h"

extern volatile int probe_sink;

size_t mg_alg_block(mg_alg alg)
{
    return alg == MG_ALG_AES ? 16u : 8u;
}

mg_err mg_crypto_cbc(mg_key *k, bool encrypt, const uint8_t *in, uint8_t *out, size_t len)
{
    (void)k;
    (void)encrypt;
    (void)in;
    (void)out;
    probe_sink = (int)len;
    return MG_OK;
}

mg_err mg_crypto_mac(mg_key *k, const mg_iov *parts, size_t n, uint8_t tag[16], size_t *tag_len)
{
    (void)k;
    (void)parts;
    (void)n;
    tag[0] = (uint8_t)probe_sink;
    *tag_len = 16;
    return MG_OK;
}

/* Used by the device library (it keeps its keys in mg_key objects). */
mg_err mg_key_init(mg_key *k, mg_alg alg, const uint8_t *bytes, size_t len)
{
    k->alg = alg;
    k->len = (uint8_t)len;
    k->bytes[0] = bytes[0];
    k->backend = 0;
    return MG_OK;
}

void mg_key_clear(mg_key *k)
{
    k->len = 0;
    probe_sink = (int)k->alg;
}

/* Signed commands (issue 12): hash, verify, and the host-only sign. */
mg_err mg_crypto_sha256(const mg_iov *parts, size_t n, uint8_t out[MG_SHA256_LEN])
{
    (void)parts;
    out[0] = (uint8_t)n;
    return MG_OK;
}

mg_err mg_crypto_verify(mg_sig_alg alg, const uint8_t *pub, size_t pub_len, const mg_iov *parts,
                        size_t n, const uint8_t sig[MG_SIG_LEN])
{
    (void)pub;
    (void)parts;
    probe_sink = (int)alg + (int)pub_len + (int)n + sig[0];
    return MG_OK;
}

mg_err mg_crypto_sign(mg_sig_alg alg, const uint8_t *priv, size_t priv_len, const mg_iov *parts,
                      size_t n, uint8_t sig[MG_SIG_LEN])
{
    (void)priv;
    (void)parts;
    sig[0] = (uint8_t)(alg + (int)priv_len + (int)n);
    return MG_OK;
}

mg_err mg_crypto_public_key(mg_sig_alg alg, const uint8_t *priv, size_t priv_len, uint8_t *pub,
                            size_t cap, size_t *pub_len)
{
    (void)priv;
    (void)cap;
    pub[0] = (uint8_t)alg;
    *pub_len = priv_len;
    return MG_OK;
}
