/*
 * m2mguard — COSE_Sign1 (RFC 9052 4.2, 4.4) and the signed command object
 * (docs/commands.md) for the portable core: C11, no allocation, no I/O; the
 * signature goes through the crypto interface (crypto.h).
 *
 * Algorithms (RFC 9053): ES256 (-7; ECDSA P-256 + SHA-256, signature raw
 * r||s, 64 octets) and EdDSA (-8) with Ed25519 keys. The caller gives the
 * key's algorithm; the message's alg header must equal it (no algorithm
 * confusion). The Mbed TLS backend has no Ed25519 (MG_ERR_UNSUPPORTED).
 */
#ifndef M2MGUARD_COSE_H
#define M2MGUARD_COSE_H

#include "m2mguard/cbor.h"
#include "m2mguard/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MG_COSE_ALG_ES256 (-7)
#define MG_COSE_ALG_EDDSA (-8)
#define MG_COSE_TAG_SIGN1 18
#define MG_COSE_TAG_SIGN 98   /**< COSE_Sign (RFC 9052 4.1), head 0xD8 0x62 */
#define MG_COSE_SIGN_MAX 2    /**< most COSE_Signature entries parsed in one COSE_Sign (the
                                   two-person rule; small: the device's stack budget) */
#define MG_COSE_HDR_ALG 1
#define MG_COSE_HDR_CRIT 2
#define MG_COSE_HDR_KID 4

/** Why a COSE_Sign1 was refused (with the mg_err of the call). */
typedef enum mg_cose_why {
    MG_COSE_WHY_NONE = 0,
    MG_COSE_WHY_CBOR,        /**< not well-formed (or not deterministic) CBOR: see cbor_why */
    MG_COSE_WHY_SHAPE,       /**< not [bstr, map, bstr, bstr], or a tag other than 18 */
    MG_COSE_WHY_DETACHED,    /**< payload nil (detached content): not supported */
    MG_COSE_WHY_HEADER,      /**< a header has the wrong type, is duplicated or in both buckets */
    MG_COSE_WHY_CRIT,        /**< crit header present: no critical extension is understood */
    MG_COSE_WHY_NO_ALG,      /**< no alg header (or, where required, not protected) */
    MG_COSE_WHY_ALG,         /**< alg is not the key's algorithm */
    MG_COSE_WHY_SIG_LEN,     /**< the signature is not 64 octets */
    MG_COSE_WHY_BAD_SIG,     /**< the signature does not verify */
    MG_COSE_WHY_KEY,         /**< the public key is malformed / not on the curve */
    MG_COSE_WHY_UNSUPPORTED, /**< algorithm not provided by the linked crypto backend */
    MG_COSE_WHY_CRYPTO,      /**< backend failure */
} mg_cose_why;

const char *mg_cose_why_str(mg_cose_why why);

/** A parsed COSE_Sign1: pointers into the caller's buffer. */
typedef struct mg_cose_sign1 {
    bool tagged;                 /**< began with tag 18 */
    const uint8_t *prot;         /**< serialized protected header (bstr content) */
    size_t prot_len;             /**< 0 also when it is an empty map (RFC 9052 4.4) */
    bool prot_empty;             /**< the protected bstr held an empty map (e.g. h'A0') */
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *sig;
    size_t sig_len;
    bool has_alg, alg_protected;
    int64_t alg;
    const uint8_t *kid;          /**< NULL when absent */
    size_t kid_len;
    bool kid_protected;
    mg_cbor_why cbor_why;        /**< with MG_COSE_WHY_CBOR */
} mg_cose_sign1;

/**
 * Parses buf[0..len) as one COSE_Sign1, tagged (18) or not, with nothing
 * after it. flags: 0 (well-formed CBOR) or MG_CBOR_DETERMINISTIC (the
 * message and its protected header must be deterministically encoded).
 * Headers understood: alg (1, int), kid (4, bstr); crit (2) is refused;
 * other labels are skipped. MG_ERR_FORMAT / _TRUNC / _LENGTH / _UNSUPPORTED
 * with *why.
 */
MG_MUST_CHECK mg_err mg_cose_sign1_parse(const uint8_t *buf, size_t len, unsigned flags,
                                         mg_cose_sign1 *m, mg_cose_why *why);

/**
 * Writes the Sig_structure ["Signature1", body_protected, external_aad,
 * payload] (RFC 9052 4.4) into out (cap octets); *len gets its length.
 */
MG_MUST_CHECK mg_err mg_cose_sig_structure(const mg_cose_sign1 *m, const uint8_t *aad,
                                           size_t aad_len, uint8_t *out, size_t cap,
                                           size_t *len);

/**
 * Verifies m with a public key whose algorithm is key_alg (COSE value).
 * The message's alg must be present and equal key_alg (MG_ERR_KEY,
 * MG_COSE_WHY_ALG otherwise). The Sig_structure is streamed into the
 * crypto interface (no copy). MG_OK, or MG_ERR_AUTH (bad signature),
 * MG_ERR_KEY, MG_ERR_FORMAT, MG_ERR_UNSUPPORTED, MG_ERR_CRYPTO with *why.
 */
MG_MUST_CHECK mg_err mg_cose_sign1_verify(const mg_cose_sign1 *m, const uint8_t *aad,
                                          size_t aad_len, int64_t key_alg, const uint8_t *pub,
                                          size_t pub_len, mg_cose_why *why);

/**
 * Host side (needs mg_crypto_sign): builds a COSE_Sign1 with protected
 * {1: alg, 4: kid}, unprotected {}, the payload, and the signature, with
 * tag 18 when tagged; deterministic encoding. out: cap octets.
 */
MG_MUST_CHECK mg_err mg_cose_sign1_sign(int64_t alg, const uint8_t *kid, size_t kid_len,
                                        const uint8_t *payload, size_t payload_len,
                                        const uint8_t *priv, size_t priv_len, bool tagged,
                                        uint8_t *out, size_t cap, size_t *len);

/* ---- COSE_Sign (RFC 9052 4.1): several signers over one payload ---------- */

/** One COSE_Signature of a COSE_Sign: [protected bstr, unprotected map, signature bstr]. */
typedef struct mg_cose_signature {
    int64_t alg;
    const uint8_t *prot; /**< serialized protected header (bstr content) */
    size_t prot_len;     /**< 0 also when it is an empty map */
    const uint8_t *sig;
    size_t sig_len;
    const uint8_t *kid; /**< NULL when absent */
    size_t kid_len;
    bool has_alg, alg_protected, kid_protected;
} mg_cose_signature;

/** A parsed COSE_Sign: pointers into the caller's buffer. */
typedef struct mg_cose_sign {
    bool tagged;          /**< began with tag 98 */
    const uint8_t *prot;  /**< body protected header (bstr content) */
    size_t prot_len;      /**< 0 also when it is an empty map */
    bool body_has_alg;    /**< the body's headers carry an alg (this profile refuses it) */
    bool body_has_kid;    /**< the body's headers carry a kid (this profile refuses it) */
    const uint8_t *payload;
    size_t payload_len;
    size_t n_sigs; /**< 1..MG_COSE_SIGN_MAX */
    mg_cose_signature sigs[MG_COSE_SIGN_MAX];
    mg_cbor_why cbor_why; /**< with MG_COSE_WHY_CBOR */
} mg_cose_sign;

/**
 * Parses buf[0..len) as one COSE_Sign, tagged (98) or not, with nothing
 * after it: [protected bstr, unprotected map, payload bstr, [+ COSE_Signature]].
 * Header rules as mg_cose_sign1_parse, in the body and in each signature.
 * More than MG_COSE_SIGN_MAX signatures: MG_ERR_LENGTH (MG_COSE_WHY_SHAPE);
 * zero signatures: MG_ERR_FORMAT (MG_COSE_WHY_SHAPE).
 */
MG_MUST_CHECK mg_err mg_cose_sign_parse(const uint8_t *buf, size_t len, unsigned flags,
                                        mg_cose_sign *m, mg_cose_why *why);

/**
 * Verifies signature number idx of m: Sig_structure ["Signature",
 * body_protected, sign_protected, external_aad, payload] (RFC 9052 4.4),
 * streamed into the crypto interface. Same rules and results as
 * mg_cose_sign1_verify (the signature's alg must equal key_alg).
 */
MG_MUST_CHECK mg_err mg_cose_sign_verify(const mg_cose_sign *m, size_t idx, const uint8_t *aad,
                                         size_t aad_len, int64_t key_alg, const uint8_t *pub,
                                         size_t pub_len, mg_cose_why *why);

/**
 * Host side, for a signer whose key is outside the core (a PKCS#11 token,
 * EVP_DigestSign): writes into out the to-be-signed bytes (the
 * Sig_structure) of one signer with protected {1: alg, 4: kid} over
 * payload: multi = false: of a COSE_Sign1 ("Signature1"); multi = true: of
 * a COSE_Signature in a COSE_Sign whose body protected header is empty
 * ("Signature", h''). ES256 / EdDSA sign these bytes as they are.
 */
MG_MUST_CHECK mg_err mg_cose_tbs(bool multi, int64_t alg, const uint8_t *kid, size_t kid_len,
                                 const uint8_t *payload, size_t payload_len, uint8_t *out,
                                 size_t cap, size_t *len);

/** A finished signature for mg_cose_assemble. */
typedef struct mg_cose_sig_in {
    int64_t alg;
    const uint8_t *kid; /**< 1..MG_CMD_KID_MAX octets */
    size_t kid_len;
    const uint8_t *sig; /**< MG_SIG_LEN (64) octets: ES256 raw r||s or Ed25519 */
} mg_cose_sig_in;

/**
 * Host side: assembles the message from signatures made over mg_cose_tbs:
 * n == 1: a COSE_Sign1 tagged 18 (multi = false bytes); n >= 2 (at most
 * MG_COSE_SIGN_MAX): a COSE_Sign tagged 98 with body protected h'',
 * unprotected {} and one COSE_Signature per signer (multi = true bytes),
 * each with protected {1: alg, 4: kid} and unprotected {}. Deterministic.
 */
MG_MUST_CHECK mg_err mg_cose_assemble(const uint8_t *payload, size_t payload_len,
                                      const mg_cose_sig_in *sigs, size_t n, uint8_t *out,
                                      size_t cap, size_t *len);

/* ---- signed commands (docs/commands.md) ---------------------------------- */

#define MG_CMD_MAX_LEN 1024   /**< largest signed command accepted, octets */
#define MG_CMD_KID_MAX 32     /**< key id: 1..32 octets */
#define MG_CMD_AUD_MAX 64     /**< audience (device name): 1..64 printable ASCII */
#define MG_CMD_TEXT_MAX 255   /**< command: 1..255 printable ASCII */
#define MG_CMD_ARGS_MAX 255   /**< arguments: 0..255 printable ASCII */
#define MG_CMD_SKEW_S 300     /**< issued-at may be this far ahead of the device clock */
#define MG_CMD_SIGNERS_MAX MG_COSE_SIGN_MAX /**< most signers of one command */

/** Payload map keys. */
enum {
    MG_CMD_K_KID = 1,
    MG_CMD_K_AUD = 2,
    MG_CMD_K_CMD = 3,
    MG_CMD_K_ARGS = 4,
    MG_CMD_K_SEQ = 5,
    MG_CMD_K_IAT = 6,
    MG_CMD_K_EXP = 7,
};

/** A trust anchor: an operator key the device accepts commands from. */
typedef struct mg_cmd_anchor {
    const uint8_t *kid;
    size_t kid_len;
    int64_t alg; /**< the only algorithm allowed with this key (COSE value) */
    const uint8_t *pub;
    size_t pub_len;
} mg_cmd_anchor;

/** A signed command's content (pointers into the verified buffer). */
typedef struct mg_signed_cmd {
    const uint8_t *kid;
    size_t kid_len;
    const char *audience;
    size_t audience_len;
    const char *command;
    size_t command_len;
    const char *args; /**< NULL when absent */
    size_t args_len;
    uint64_t seq;
    uint64_t iat;
    uint64_t exp;
    int64_t alg;   /**< alg of the COSE message (of its first signature for a COSE_Sign) */
    size_t anchor; /**< index of the anchor that verified it (mg_cmd_verify; first signer) */
    /** The signers (mg_cmd_verify_multi: verified; mg_cmd_inspect: as found):
     * 1 for a COSE_Sign1, one per COSE_Signature for a COSE_Sign. Pointers
     * into the buffer. anchor: index in the anchors given (verify only). */
    size_t n_kids;
    struct {
        const uint8_t *kid;
        size_t kid_len;
        int64_t alg;
        size_t anchor;
    } kids[MG_CMD_SIGNERS_MAX];
} mg_signed_cmd;

/** The precise refusals of mg_cmd_verify. */
typedef enum mg_cmd_why {
    MG_CMD_OK = 0,
    MG_CMD_OVERSIZED,         /**< longer than MG_CMD_MAX_LEN */
    MG_CMD_MALFORMED,         /**< not a COSE_Sign1 / command of this profile */
    MG_CMD_NOT_DETERMINISTIC, /**< CBOR not in deterministic encoding */
    MG_CMD_DUPLICATE_KEY,     /**< a map has the same key twice */
    MG_CMD_TRAILING,          /**< bytes after the COSE_Sign1 (or the payload map) */
    MG_CMD_UNKNOWN_KID,       /**< no trust anchor has this key id */
    MG_CMD_ALG_NOT_ALLOWED,   /**< alg header is not the anchor's algorithm */
    MG_CMD_BAD_SIGNATURE,     /**< the signature does not verify */
    MG_CMD_KID_MISMATCH,      /**< payload issuer differs from the header kid */
    MG_CMD_WRONG_AUDIENCE,    /**< for another device */
    MG_CMD_NOT_YET_VALID,     /**< issued-at later than now + MG_CMD_SKEW_S */
    MG_CMD_EXPIRED,           /**< now >= expiry */
    MG_CMD_SEQ_NOT_HIGHER,    /**< sequence not higher than the last accepted: replay */
    MG_CMD_UNSUPPORTED,       /**< algorithm not in the linked crypto backend */
    MG_CMD_CRYPTO,            /**< the anchor's key is malformed or the backend failed */
    MG_CMD_DUPLICATE_SIGNER,  /**< a COSE_Sign names the same kid twice */
    MG_CMD_TOO_FEW_SIGNERS,   /**< fewer distinct verified signers than required */
} mg_cmd_why;

/** Short stable name ("bad_signature", "seq_not_higher", ...). Never NULL. */
const char *mg_cmd_why_str(mg_cmd_why why);

/**
 * Verifies a signed command for device `device` (NUL-terminated name):
 * size, deterministic CBOR throughout, the anchor named by the kid, the
 * algorithm that anchor allows, the signature, the payload (binding the
 * same kid), audience, validity (iat <= now + MG_CMD_SKEW_S, now < exp) and
 * sequence (seq > last_seq). On MG_OK, *out holds the command and its seq
 * (the caller persists seq as the new last_seq BEFORE executing). On a
 * refusal *why says which rule refused it; out is zeroed.
 */
MG_MUST_CHECK mg_err mg_cmd_verify(const uint8_t *buf, size_t len, const mg_cmd_anchor *anchors,
                                   size_t n_anchors, const char *device, uint64_t last_seq,
                                   uint64_t now, mg_signed_cmd *out, mg_cmd_why *why);

/**
 * As mg_cmd_verify, for a COSE_Sign1 (tag 18 or untagged: one signer) or a
 * COSE_Sign (tag 98 required: the two-person rule). For a COSE_Sign: the
 * body carries no alg/kid; every COSE_Signature has a protected alg and a
 * kid; no kid appears twice (MG_CMD_DUPLICATE_SIGNER); EVERY signature
 * must name a known anchor (MG_CMD_UNKNOWN_KID), use its algorithm
 * (MG_CMD_ALG_NOT_ALLOWED) and verify (MG_CMD_BAD_SIGNATURE); the
 * payload's issuer kid (key 1) must be one of the signers' kids
 * (MG_CMD_KID_MISMATCH). Then, for both forms, fewer than min_signers
 * (0 counts as 1) distinct verified anchors: MG_CMD_TOO_FEW_SIGNERS
 * (MG_ERR_AUTH); then audience, validity and sequence as mg_cmd_verify.
 * On MG_OK out->n_kids / out->kids[] name the verified signers (in message
 * order), out->anchor the first one's anchor.
 */
MG_MUST_CHECK mg_err mg_cmd_verify_multi(const uint8_t *buf, size_t len,
                                         const mg_cmd_anchor *anchors, size_t n_anchors,
                                         const char *device, uint64_t last_seq, uint64_t now,
                                         size_t min_signers, mg_signed_cmd *out,
                                         mg_cmd_why *why);

/** A signer's private key for mg_cmd_sign_multi (host side). */
typedef struct mg_cmd_signer_key {
    int64_t alg; /**< MG_COSE_ALG_ES256 / _EDDSA */
    const uint8_t *kid;
    size_t kid_len;
    const uint8_t *priv;
    size_t priv_len;
} mg_cmd_signer_key;

/**
 * Host side: encodes c (c->kid is the issuer, normally keys[0].kid) and
 * signs it by n keys: n == 1 a tagged COSE_Sign1 (as mg_cmd_sign), n >= 2
 * a tagged COSE_Sign (mg_cose_assemble). At most MG_CMD_MAX_LEN octets.
 */
MG_MUST_CHECK mg_err mg_cmd_sign_multi(const mg_signed_cmd *c, const mg_cmd_signer_key *keys,
                                       size_t n, uint8_t *out, size_t cap, size_t *len);

/** Parses a signed command WITHOUT verifying it (inspection only): a
 * COSE_Sign1, or a tagged COSE_Sign (out->kids lists its signers). */
MG_MUST_CHECK mg_err mg_cmd_inspect(const uint8_t *buf, size_t len, mg_signed_cmd *out,
                                    mg_cmd_why *why);

/** Encodes the payload map of c (deterministic) into out. */
MG_MUST_CHECK mg_err mg_cmd_encode(const mg_signed_cmd *c, uint8_t *out, size_t cap, size_t *len);

/**
 * Host side: encodes c and signs it as a tagged COSE_Sign1 with alg
 * (MG_COSE_ALG_ES256 / _EDDSA), kid c->kid in the protected header.
 */
MG_MUST_CHECK mg_err mg_cmd_sign(const mg_signed_cmd *c, int64_t alg, const uint8_t *priv,
                                 size_t priv_len, uint8_t *out, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_COSE_H */
