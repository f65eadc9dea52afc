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
/**
 * Replaces the key in k (a zeroed, cleared or set-up key) with a new one, as
 * mg_key_clear then mg_key_init would, but keeps the backend's prepared
 * contexts when the algorithm and length are the same: they take the new
 * key at their next use (a new key schedule, no new context), or as they
 * are when the bytes are the same too. For caches that reuse their entries.
 * On error k is cleared (all zero, nothing attached).
 */
MG_MUST_CHECK mg_err mg_key_reinit(mg_key *k, mg_alg alg, const uint8_t *bytes, size_t len);
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

/* ---- hashing and signatures (signed commands, issue 12) ------------------ */

/** Signature algorithms of the crypto interface (COSE maps onto these). */
typedef enum mg_sig_alg {
    MG_SIG_NONE = 0,
    MG_SIG_ES256 = 1,   /**< ECDSA P-256 with SHA-256; raw r||s (RFC 9053 2.1) */
    MG_SIG_ED25519 = 2, /**< pure Ed25519 (RFC 8032) */
} mg_sig_alg;

#define MG_SHA256_LEN 32
/** Length of every signature of MG_SIG_ES256 and MG_SIG_ED25519. */
#define MG_SIG_LEN 64
/** Public key lengths: ES256 uncompressed point 04||X||Y, Ed25519 raw. */
#define MG_ES256_PUB_LEN 65
#define MG_ED25519_PUB_LEN 32
/** Private key length of both: the P-256 scalar (big-endian) or the Ed25519 seed. */
#define MG_SIG_PRIV_LEN 32

/** SHA-256 of the concatenation of the n pieces. */
MG_MUST_CHECK mg_err mg_crypto_sha256(const mg_iov *parts, size_t n, uint8_t out[MG_SHA256_LEN]);

/* ---- incremental SHA-256 (SUIT image streams, issue 14) ------------------ */

/** Room for a backend's SHA-256 state (Mbed TLS: mbedtls_sha256_context,
 *  108 octets on 64-bit hosts; checked at compile time). */
#define MG_SHA256_STATE_MAX 128

/**
 * An incremental SHA-256 in caller storage. Mbed TLS keeps its state in st_
 * (nothing allocated); OpenSSL attaches an EVP_MD_CTX to backend (host).
 * Every context that was started must be finished or aborted (both release
 * and wipe it). A zeroed context is "not started".
 */
typedef struct mg_sha256 {
    void *backend; /**< backend state; NULL when not started (or Mbed TLS) */
    bool started;
    union {
        uint64_t align_;
        uint8_t b[MG_SHA256_STATE_MAX];
    } st_;
} mg_sha256;

/** Starts a hash (an earlier one on c must be finished or aborted first). */
MG_MUST_CHECK mg_err mg_sha256_init(mg_sha256 *c);
/** Adds p[0..n) (p may be NULL when n is 0). MG_ERR_STATE if not started. */
MG_MUST_CHECK mg_err mg_sha256_update(mg_sha256 *c, const uint8_t *p, size_t n);
/** Writes the digest and releases c (also on error). MG_ERR_STATE if not started. */
MG_MUST_CHECK mg_err mg_sha256_final(mg_sha256 *c, uint8_t out[MG_SHA256_LEN]);
/** Releases and wipes c without a digest. Safe on a zeroed or finished context. */
void mg_sha256_abort(mg_sha256 *c);

/**
 * Verifies a signature over the concatenation of the n pieces (the message
 * itself, not a digest: ES256 hashes it with SHA-256, Ed25519 signs it whole).
 * pub: MG_ES256_PUB_LEN octets (uncompressed point, checked to be on the
 * curve) or MG_ED25519_PUB_LEN octets. sig: MG_SIG_LEN octets.
 * Returns MG_OK when the signature is valid, MG_ERR_AUTH when it is not
 * (including r or s out of range), MG_ERR_KEY for a public key of the wrong
 * length or not on the curve, MG_ERR_UNSUPPORTED for an algorithm the
 * backend lacks (Mbed TLS 2.28 has no Ed25519), MG_ERR_CRYPTO otherwise.
 */
MG_MUST_CHECK mg_err mg_crypto_verify(mg_sig_alg alg, const uint8_t *pub, size_t pub_len,
                                      const mg_iov *parts, size_t n, const uint8_t sig[MG_SIG_LEN]);

/**
 * Host only (OpenSSL backend; Mbed TLS returns MG_ERR_UNSUPPORTED): signs the
 * concatenation of the n pieces with a MG_SIG_PRIV_LEN-octet private key and
 * writes the MG_SIG_LEN-octet signature (ES256: raw r||s, each left-padded
 * to 32 octets). ES256 signatures are randomised (OpenSSL's nonce).
 */
MG_MUST_CHECK mg_err mg_crypto_sign(mg_sig_alg alg, const uint8_t *priv, size_t priv_len,
                                    const mg_iov *parts, size_t n, uint8_t sig[MG_SIG_LEN]);

/**
 * Host only (as mg_crypto_sign): the public key of a private key, into pub
 * (cap octets); *pub_len receives MG_ES256_PUB_LEN or MG_ED25519_PUB_LEN.
 */
MG_MUST_CHECK mg_err mg_crypto_public_key(mg_sig_alg alg, const uint8_t *priv, size_t priv_len,
                                          uint8_t *pub, size_t cap, size_t *pub_len);

/** Name of the linked backend ("openssl" or "mbedtls"). */
const char *mg_crypto_backend(void);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_CRYPTO_H */
