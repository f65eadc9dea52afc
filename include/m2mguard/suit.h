/*
 * m2mguard — SUIT manifests (IETF draft-ietf-suit-manifest; RFC 9019
 * architecture, RFC 9124 information model) for the portable core: C11, no
 * allocation, no I/O, caller buffers; cryptography through crypto.h.
 *
 * What is accepted (docs/suit.md has the full profile):
 *
 *   SUIT_Envelope_Tagged = #6.107({
 *     2: bstr .cbor [ bstr .cbor SUIT_Digest, + bstr .cbor COSE_Sign1_Tagged ],
 *     3: bstr .cbor SUIT_Manifest,
 *     * other members (severable sections, integrated payloads) skipped })
 *   SUIT_Digest = [ -16 (SHA-256), bstr .size 32 ]
 *   COSE_Sign1: protected {1: -7 ES256 | -8 EdDSA, ? 4: kid}, payload nil
 *     (detached: the payload is the SUIT_Digest bstr, RFC 9052 4.4) or that
 *     same bstr attached.
 *
 * Order of the checks (draft section 8.3 and RFC 9124 REQ.SEC.AUTHENTIC):
 *  1. the envelope's outer shape only (tag 107, a map, members 2 and 3
 *     located as byte strings; nothing inside the manifest is read);
 *  2. each COSE_Sign1 of the authentication wrapper is verified against the
 *     trust anchors, over the SUIT_Digest bstr (detached payload);
 *  3. SHA-256 of the manifest bstr (its CBOR head included, as the draft's
 *     examples compute it) is compared in constant time (mg_ct_equal) with
 *     the signed digest; every severable member the envelope carries (16,
 *     20, 23, ...) must match the digest the manifest holds for it;
 *  4. only then is the manifest parsed: manifest-version 1, the sequence
 *     number, common (components, shared sequence), validate/load/invoke/
 *     install sequences (payload-fetch and install may be severed: their
 *     digest is checked, their commands are not needed by the device).
 *
 * Commands understood (draft section 8.4): directive-set-component-index
 * (12), directive-override-parameters (20), directive-run-sequence (32,
 * one level), condition-vendor-identifier
 * (1), condition-class-identifier (2), condition-image-match (3),
 * condition-version (28), condition-component-slot (5), directive-fetch
 * (21), directive-copy (22), directive-invoke (23), directive-swap (31)
 * (recorded, executed by the caller), directive-try-each (15: its FIRST
 * alternative is processed), and custom commands (negative) ignored. Parameters kept:
 * vendor-id (1), class-id (2), image-digest (3), image-size (14), uri (21),
 * version (28); other parameters are skipped. Any other command is
 * MG_SUIT_WHY_COMMAND (a condition the processor cannot evaluate must not be
 * skipped).
 *
 * Minimum installed version: the draft's own registry has a fit, the
 * parameter and condition suit-parameter-version / suit-condition-version
 * (28, draft-ietf-suit-update-management) with SUIT_Parameter_Version_Match
 * = [comparison-type, [+ int]]. m2mguard reads a version [N] (one element)
 * compared "greater-equal" (2) as "the installed sequence number must be at
 * least N" (info.min_seq). Other comparison types or longer versions:
 * MG_SUIT_WHY_VERSION.
 *
 * Limits on what an unauthenticated peer controls: the envelope is at most
 * MG_SUIT_ENVELOPE_MAX octets, at most MG_SUIT_SIGS_MAX signatures are
 * tried (each against at most 8 anchors), at most MG_SUIT_COMPONENTS_MAX
 * components, at most 4 severable members, CBOR nesting bounded by
 * MG_CBOR_MAX_DEPTH, command sequences nested at most 3 deep.
 */
#ifndef M2MGUARD_SUIT_H
#define M2MGUARD_SUIT_H

#include "m2mguard/common.h"
#include "m2mguard/cose.h"
#include "m2mguard/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MG_SUIT_TAG_ENVELOPE 107   /**< SUIT_Envelope_Tagged */
#define MG_SUIT_ENVELOPE_MAX 4096u /**< largest envelope accepted, octets */
#define MG_SUIT_SIGS_MAX 2u        /**< COSE_Sign1 entries tried, at most */
#define MG_SUIT_COMPONENTS_MAX 4u  /**< components of one manifest, at most */
#define MG_SUIT_UUID_LEN 16u       /**< RFC 9562 UUID: vendor / class identifiers */
#define MG_SUIT_DIGEST_ALG_SHA256 (-16) /**< COSE algorithm id of SHA-256 (RFC 9054) */
#define MG_SUIT_URI_MAX 255u       /**< suit-parameter-uri, octets */
#define MG_SUIT_COMPONENT_ID_MAX 32u /**< first component identifier, octets (concatenated bstrs) */

/* CBOR labels (draft-ietf-suit-manifest, IANA section). */
enum {
    MG_SUIT_ENV_AUTH = 2,
    MG_SUIT_ENV_MANIFEST = 3,
    MG_SUIT_M_VERSION = 1,
    MG_SUIT_M_SEQ = 2,
    MG_SUIT_M_COMMON = 3,
    MG_SUIT_M_REFERENCE_URI = 4,
    MG_SUIT_M_COMPONENT_ID = 5,
    MG_SUIT_M_VALIDATE = 7,
    MG_SUIT_M_LOAD = 8,
    MG_SUIT_M_INVOKE = 9,
    MG_SUIT_M_PAYLOAD_FETCH = 16,
    MG_SUIT_M_INSTALL = 20,
    MG_SUIT_M_TEXT = 23,
    MG_SUIT_C_COMPONENTS = 2,
    MG_SUIT_C_SHARED_SEQ = 4,
    MG_SUIT_COND_VENDOR = 1,
    MG_SUIT_COND_CLASS = 2,
    MG_SUIT_COND_IMAGE_MATCH = 3,
    MG_SUIT_COND_VERSION = 28,
    MG_SUIT_DIR_SET_COMPONENT = 12,
    MG_SUIT_DIR_OVERRIDE_PARAMS = 20,
    MG_SUIT_DIR_FETCH = 21,
    MG_SUIT_DIR_COPY = 22,
    MG_SUIT_DIR_INVOKE = 23,
    MG_SUIT_DIR_SWAP = 31,
    MG_SUIT_DIR_RUN_SEQ = 32,
    MG_SUIT_P_VENDOR = 1,
    MG_SUIT_P_CLASS = 2,
    MG_SUIT_P_DIGEST = 3,
    MG_SUIT_P_SIZE = 14,
    MG_SUIT_P_URI = 21,
    MG_SUIT_P_VERSION = 28,
    MG_SUIT_VERSION_GREATER_EQUAL = 2,
};

/** Why an envelope was refused (with the mg_err of the call). */
typedef enum mg_suit_why {
    MG_SUIT_OK = 0,
    MG_SUIT_WHY_OVERSIZED,    /**< longer than MG_SUIT_ENVELOPE_MAX */
    MG_SUIT_WHY_CBOR,         /**< not well-formed CBOR */
    MG_SUIT_WHY_SHAPE,        /**< not a tag-107 envelope with members 2 and 3 as bstr */
    MG_SUIT_WHY_DIGEST_ALG,   /**< a SUIT_Digest that is not [-16, bstr .size 32] */
    MG_SUIT_WHY_NO_SIGNATURE, /**< the wrapper holds no COSE_Sign1 */
    MG_SUIT_WHY_COSE,         /**< a COSE_Sign1 of the wrong shape (not tag 18, crit, ...) */
    MG_SUIT_WHY_UNKNOWN_KEY,  /**< no anchor verifies any signature (bad signature included) */
    MG_SUIT_WHY_UNSUPPORTED,  /**< signature algorithm not in the linked crypto backend */
    MG_SUIT_WHY_CRYPTO,       /**< the backend failed */
    MG_SUIT_WHY_MANIFEST_DIGEST, /**< the manifest does not match the signed digest */
    MG_SUIT_WHY_MANIFEST,     /**< the (authentic) manifest is not of this profile */
    MG_SUIT_WHY_MANIFEST_VERSION, /**< manifest-version is not 1 */
    MG_SUIT_WHY_SEVERED,      /**< a needed sequence is severed (a digest instead of the bstr) */
    MG_SUIT_WHY_COMMAND,      /**< a command this processor does not implement */
    MG_SUIT_WHY_COMPONENTS,   /**< no component, or more than MG_SUIT_COMPONENTS_MAX */
    MG_SUIT_WHY_VERSION,      /**< a version match other than greater-equal [N] */
    MG_SUIT_WHY_PARAM,        /**< a parameter of the wrong type or size (UUID not 16, ...) */
    /* mg_suit_applies (the device's own checks) */
    MG_SUIT_WHY_WRONG_VENDOR, /**< vendor-id differs from the device's, or no vendor condition */
    MG_SUIT_WHY_WRONG_CLASS,  /**< class-id differs from the device's, or no class condition */
    MG_SUIT_WHY_ROLLBACK,     /**< sequence number not higher than the installed one */
    MG_SUIT_WHY_TOO_OLD,      /**< installed sequence below the manifest's minimum version */
    MG_SUIT_WHY_NO_IMAGE,     /**< no image digest/size or no condition-image-match */
    MG_SUIT_WHY_TOO_BIG,      /**< image-size larger than the slot */
    /* mg_suit_img_* (the image stream) */
    MG_SUIT_WHY_IMAGE_LONG,   /**< more octets than image-size */
    MG_SUIT_WHY_IMAGE_SHORT,  /**< finished before image-size octets */
    MG_SUIT_WHY_IMAGE_DIGEST, /**< the image does not match image-digest */
} mg_suit_why;

/** Short stable name ("rollback", "image_digest", ...): the reason text of an
 *  "update_failed REASON" report. Never NULL. */
const char *mg_suit_why_str(mg_suit_why why);

/** A trust anchor for manifests: the same shape as a command anchor (kid may
 *  be empty: then a signature without kid, or with any kid, is tried with
 *  it; with a kid, a signature carrying a different kid is not). */
typedef mg_cmd_anchor mg_suit_anchor;

/** What an authentic manifest says (the first component, component index 0).
 *  Pointers point into the caller's envelope buffer. */
typedef struct mg_suit_info {
    uint64_t seq;                  /**< manifest-sequence-number */
    size_t n_components;           /**< 1..MG_SUIT_COMPONENTS_MAX */
    const uint8_t *component_id;   /**< the first component identifier's first bstr */
    size_t component_id_len;
    bool has_vendor, has_class, has_digest, has_size, has_uri, has_min_seq;
    bool cond_vendor, cond_class, cond_image; /**< the conditions are in the sequences */
    uint8_t vendor[MG_SUIT_UUID_LEN];
    uint8_t class_id[MG_SUIT_UUID_LEN];
    uint8_t digest[MG_SHA256_LEN]; /**< image-digest (SHA-256) */
    uint64_t size;                 /**< image-size */
    const char *uri;               /**< suit-parameter-uri (not NUL-terminated) */
    size_t uri_len;
    uint64_t min_seq;              /**< condition-version greater-equal [N]: N */
    bool has_validate, has_load, has_invoke, has_install, has_fetch;
    uint8_t manifest_digest[MG_SHA256_LEN]; /**< the signed SHA-256 of the manifest */
    size_t anchor;                 /**< index of the anchor that verified it */
    int64_t alg;                   /**< COSE alg of that signature */
    const uint8_t *manifest;       /**< the manifest bstr's content */
    size_t manifest_len;
} mg_suit_info;

/**
 * Verifies envelope env[0..len) against anchors[0..n) (the first anchor
 * whose algorithm and kid fit and whose key verifies a signature wins), in
 * the order of the file comment, and fills *info. Does NOT check the
 * device's identity, rollback or slot size: see mg_suit_applies.
 * MG_OK; or MG_ERR_LENGTH (oversized), MG_ERR_FORMAT / MG_ERR_TRUNC (shape,
 * CBOR, manifest), MG_ERR_AUTH (no anchor verifies; the manifest digest
 * differs), MG_ERR_UNSUPPORTED, MG_ERR_CRYPTO, each with *why (may be NULL).
 * On error *info is zeroed.
 */
MG_MUST_CHECK mg_err mg_suit_check(const uint8_t *env, size_t len, const mg_suit_anchor *anchors,
                                   size_t n, mg_suit_info *info, mg_suit_why *why);

/** The device's identity and installed state for mg_suit_applies. */
typedef struct mg_suit_device {
    uint8_t vendor[MG_SUIT_UUID_LEN];
    uint8_t class_id[MG_SUIT_UUID_LEN];
    uint64_t installed_seq; /**< sequence number of the running image (0: none yet) */
    uint64_t slot_size;     /**< capacity of the inactive slot, octets */
} mg_suit_device;

/**
 * The device's decision on an authentic manifest: vendor and class present
 * as parameters AND checked by conditions, equal to the device's (compared
 * with mg_ct_equal); seq > installed_seq (anti-rollback); installed_seq >=
 * min_seq when the manifest has one; an image digest, size and
 * condition-image-match; size <= slot_size and size > 0. MG_OK, or
 * MG_ERR_AUTH (vendor/class), MG_ERR_CNTR_LOW (rollback), MG_ERR_STATE (too
 * old), MG_ERR_FORMAT (no image), MG_ERR_LENGTH (too big), with *why.
 */
MG_MUST_CHECK mg_err mg_suit_applies(const mg_suit_info *info, const mg_suit_device *dev,
                                     mg_suit_why *why);

/* ---- command kind and integrated payloads --------------------------------- */

/**
 * THE place where a command's binary data is told apart (gateway policy,
 * device, CLI): true when p[0..n) starts as a SUIT_Envelope_Tagged (tag 107
 * in its preferred two-octet form 0xD8 0x6B, then a map head). Nothing else is
 * read: a true answer says "hand it to mg_suit_check", never "authentic". A
 * COSE_Sign1/COSE_Sign command starts with tag 18/98 (0xD2 / 0xD8 0x62).
 */
bool mg_suit_is_envelope(const uint8_t *p, size_t n);

/**
 * An integrated payload (draft-ietf-suit-manifest, "integrated payloads":
 * an envelope member whose key is the text string of the manifest's
 * suit-parameter-uri fragment, e.g. "#config", and whose value is the
 * payload bstr). Finds key[0..key_len) in envelope env[0..len) and points
 * *p and *n at the bstr content (inside env). Reads only the envelope's outer
 * map: call it AFTER mg_suit_check succeeded, with info.uri as the key; the
 * payload's authenticity is its image digest (mg_suit_img_begin/update/finish), checked by the
 * caller. key NULL: THE integrated payload, the one member whose key is a
 * text string "#..." (two such members: MG_ERR_FORMAT); a device that does
 * not keep the manifest's uri uses it: the digest still decides. MG_OK;
 * MG_ERR_KEY (no such member), MG_ERR_FORMAT/TRUNC (shape, a duplicate key),
 * MG_ERR_LENGTH (oversized).
 */
MG_MUST_CHECK mg_err mg_suit_payload(const uint8_t *env, size_t len, const char *key,
                                     size_t key_len, const uint8_t **p, size_t *n);

/* ---- the image stream: digest and size while it is written -------------- */

typedef struct mg_suit_img {
    mg_sha256 h;                 /**< incremental SHA-256 (crypto.h) */
    uint8_t want[MG_SHA256_LEN]; /**< image-digest */
    uint64_t size, got;
    int state_;                  /* 0 idle, 1 open, 2 failed */
} mg_suit_img;

/** Starts hashing an image of info->size octets (info must have a digest
 *  and a size: MG_ERR_FORMAT otherwise). */
MG_MUST_CHECK mg_err mg_suit_img_begin(mg_suit_img *c, const mg_suit_info *info);
/** Hashes and counts p[0..n). More than size octets in total: MG_ERR_LENGTH
 *  (MG_SUIT_WHY_IMAGE_LONG) and the stream is failed (finish refuses). */
MG_MUST_CHECK mg_err mg_suit_img_update(mg_suit_img *c, const uint8_t *p, size_t n);
/** Ends the stream: MG_OK when exactly size octets came and their SHA-256
 *  equals the digest (mg_ct_equal); MG_ERR_LENGTH (short or long),
 *  MG_ERR_AUTH (digest), MG_ERR_STATE (not begun), with *why (may be NULL).
 *  Releases the hash context in every case. */
MG_MUST_CHECK mg_err mg_suit_img_finish(mg_suit_img *c, mg_suit_why *why);
/** Abandons a stream (releases the hash context). Safe on a zeroed one. */
void mg_suit_img_abort(mg_suit_img *c);

/* ---- host side: building envelopes (needs mg_crypto_sign) --------------- */

/** What mg_suit_manifest_encode writes: one component, the shared sequence
 *  [override-parameters {vendor, class, digest, size[, uri][, version]},
 *  condition-vendor, condition-class[, condition-version]], validate
 *  [condition-image-match], install [directive-fetch, condition-image-match]
 *  when a uri is given, invoke [directive-invoke]. Reporting policy 15 on
 *  every condition and 2 on directives, as the draft's examples. */
typedef struct mg_suit_params {
    uint64_t seq;
    uint8_t vendor[MG_SUIT_UUID_LEN];
    uint8_t class_id[MG_SUIT_UUID_LEN];
    uint8_t digest[MG_SHA256_LEN];
    uint64_t size;
    const uint8_t *component_id; /**< NULL: h'00' */
    size_t component_id_len;     /**< 1..MG_SUIT_COMPONENT_ID_MAX */
    const char *uri;             /**< NULL: none (no install sequence) */
    size_t uri_len;
    bool has_min_seq;
    uint64_t min_seq;
} mg_suit_params;

/** Encodes the SUIT_Manifest of p (deterministic CBOR) into out. */
MG_MUST_CHECK mg_err mg_suit_manifest_encode(const mg_suit_params *p, uint8_t *out, size_t cap,
                                             size_t *len);

/**
 * For a signer outside the core (PKCS#11): the bytes to sign for manifest
 * m[0..mlen) with protected {1: alg[, 4: kid]} (kid_len 0: no kid): the
 * Sig_structure ["Signature1", protected, h'', SUIT_Digest bstr] (RFC 9052
 * 4.4, detached payload). ES256 / EdDSA sign these bytes as they are.
 */
MG_MUST_CHECK mg_err mg_suit_tbs(int64_t alg, const uint8_t *kid, size_t kid_len,
                                 const uint8_t *m, size_t mlen, uint8_t *out, size_t cap,
                                 size_t *len);

/** Assembles the tagged envelope from manifest m and one signature made over
 *  mg_suit_tbs with the same alg and kid (sig: MG_SIG_LEN octets). */
MG_MUST_CHECK mg_err mg_suit_envelope_assemble(const uint8_t *m, size_t mlen, int64_t alg,
                                               const uint8_t *kid, size_t kid_len,
                                               const uint8_t *sig, uint8_t *out, size_t cap,
                                               size_t *len);

/** Adds an integrated payload to an assembled envelope env[0..len): a
 *  member key[0..key_len) (a tstr, the uri the manifest names, e.g.
 *  "#config") : bstr payload[0..plen), written after the existing members
 *  (the signature does not cover it; the manifest's image digest does).
 *  MG_ERR_ARG for an envelope not built by this builder or a key it holds. */
MG_MUST_CHECK mg_err mg_suit_envelope_integrate(const uint8_t *env, size_t len, const char *key,
                                                size_t key_len, const uint8_t *payload,
                                                size_t plen, uint8_t *out, size_t cap,
                                                size_t *olen);

/** mg_suit_manifest_encode + mg_suit_tbs + mg_crypto_sign + assemble, with a
 *  private key in memory (MG_SIG_PRIV_LEN octets). */
MG_MUST_CHECK mg_err mg_suit_envelope_sign(const mg_suit_params *p, int64_t alg,
                                           const uint8_t *kid, size_t kid_len,
                                           const uint8_t *priv, size_t priv_len, uint8_t *out,
                                           size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_SUIT_H */
