/*
 * m2mguard — the crypto interface used by the protocol core.
 *
 * The core calls these functions and nothing else for cryptography. Two
 * backends implement them: src/crypto/openssl.c (OpenSSL 3, host) and
 * src/crypto/mbedtls.c (Mbed TLS, host tests and microcontrollers). One of
 * them is linked in; the core does not know which.
 *
 * Keys live in an mg_key that the caller owns. A backend may attach prepared
 * state to it on first use (OpenSSL: a keyed EVP context, so that the key
 * schedule is not redone per packet); mg_key_clear() wipes the key bytes and
 * releases that state. Every mg_key that was initialised must be cleared.
 * On a microcontroller build with the Mbed TLS backend nothing is allocated.
 */
#ifndef M2MGUARD_CRYPTO_H
#define M2MGUARD_CRYPTO_H

#include "m2mguard/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Algorithms of a key, independent of how KIc/KID code them. */
typedef enum mg_alg {
    MG_ALG_NONE = 0,
    MG_ALG_AES = 1,   /**< AES-128/192/256: CBC ciphering, CMAC checksum */
    MG_ALG_3DES2 = 2, /**< triple DES, 2 keys (16 octets), outer CBC */
    MG_ALG_3DES3 = 3, /**< triple DES, 3 keys (24 octets), outer CBC */
} mg_alg;

#define MG_KEY_MAX 32

typedef struct mg_key {
    mg_alg alg;
    uint8_t len;
    uint8_t bytes[MG_KEY_MAX];
    void *backend; /**< backend-owned prepared state; NULL until first use */
} mg_key;

/** A piece of input for the MAC functions (data taken in order). */
typedef struct mg_iov {
    const uint8_t *p;
    size_t len;
} mg_iov;

/**
 * Sets up a key. len must fit alg: AES 16/24/32, 3DES2 16, 3DES3 24.
 * The bytes are copied; the caller wipes its own copy.
 */
MG_MUST_CHECK mg_err mg_key_init(mg_key *k, mg_alg alg, const uint8_t *bytes, size_t len);
/** Wipes the key and releases backend state. Safe on a zeroed or cleared key. */
void mg_key_clear(mg_key *k);
/** Cipher block size of the key's algorithm: 16 (AES) or 8 (3DES); 0 if none. */
size_t mg_alg_block(mg_alg alg);

/**
 * CBC with an all-zero IV and no padding (TS 102 225 §5.1.2). len must be a
 * multiple of the block size. in and out may be the same buffer.
 */
MG_MUST_CHECK mg_err mg_crypto_cbc(mg_key *k, bool encrypt, const uint8_t *in,
                                   uint8_t *out, size_t len);

/**
 * Cryptographic checksum as TS 102 225 §5.1.3.1 defines it for the key's
 * algorithm, over the concatenation of the n pieces:
 *  - AES: AES-CMAC (NIST SP 800-38B); the full 16-octet tag is written.
 *  - 3DES: CBC-MAC with a zero IV, the input padded with zero octets to a
 *    multiple of 8; the 8-octet final block is written.
 * Returns the tag length in *tag_len. tag must hold 16 octets.
 */
MG_MUST_CHECK mg_err mg_crypto_mac(mg_key *k, const mg_iov *parts, size_t n,
                                   uint8_t tag[16], size_t *tag_len);

/** Cryptographically strong random octets. */
MG_MUST_CHECK mg_err mg_crypto_random(uint8_t *out, size_t len);

/** Name of the linked backend ("openssl" or "mbedtls"). */
const char *mg_crypto_backend(void);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_CRYPTO_H */
