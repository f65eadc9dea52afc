/*
 * m2mguard — common definitions shared by every public header.
 *
 * Contract for the whole library (stated once, here):
 *  - The portable core (ota.h, tpdu.h, replay) is C11, allocates nothing,
 *    does no I/O and works only on buffers that the caller provides.
 *  - Every function that can fail returns an mg_err; MG_OK (0) is success,
 *    every error is negative. Results are marked MG_MUST_CHECK so that the
 *    compiler refuses to let a caller ignore them.
 *  - Pointers are never NULL unless a function says so. A length of 0 with a
 *    NULL pointer is accepted where the data is optional.
 *  - On error, output structures are left in an unspecified but safe state:
 *    their data pointers are NULL and no secret remains in caller buffers that
 *    the function wrote to.
 */
#ifndef M2MGUARD_COMMON_H
#define M2MGUARD_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MG_MUST_CHECK __attribute__((warn_unused_result))
#else
#define MG_MUST_CHECK
#endif

/** Library version. */
#define MG_VERSION_STRING "0.1.0"

/** One error type for the whole library. */
typedef enum mg_err {
    MG_OK = 0,
    MG_ERR_ARG = -1,            /**< invalid argument given by the caller */
    MG_ERR_BUF = -2,            /**< caller's output buffer is too small */
    MG_ERR_TRUNC = -3,          /**< input ends before its own length fields say */
    MG_ERR_LENGTH = -4,         /**< a length field disagrees with the real length */
    MG_ERR_FORMAT = -5,         /**< malformed input or a reserved value */
    MG_ERR_UNSUPPORTED = -6,    /**< well-formed but not supported (e.g. DS) */
    MG_ERR_CRYPTO = -7,         /**< the crypto backend failed */
    MG_ERR_AUTH = -8,           /**< RC/CC/DS does not match */
    MG_ERR_CNTR_LOW = -9,       /**< counter not higher than the last one: replay */
    MG_ERR_CNTR_HIGH = -10,     /**< counter more than one higher where one higher is required */
    MG_ERR_CNTR_BLOCKED = -11,  /**< counter exhausted (reached 2^40-1) */
    MG_ERR_CIPHER = -12,        /**< ciphering error: bad block multiple or padding count */
    MG_ERR_SECURITY_LEVEL = -13,/**< packet weaker than the minimum security level */
    MG_ERR_KEY = -14,           /**< KIc/KID names a key or algorithm not configured */
    MG_ERR_STORE = -15,         /**< the caller's counter store failed */
    MG_ERR_STATE = -16,         /**< call out of order (e.g. accept before open) */
    MG_ERR_TAR = -17,           /**< TAR not known to the receiver */
} mg_err;

/** Short stable name of an error ("auth", "cntr_low", ...). Never NULL. */
const char *mg_strerror(mg_err e);

/**
 * Constant-time comparison: returns 1 when the n octets at a and b are equal,
 * 0 otherwise. Its running time depends only on n. The one tag comparison of
 * the library: do not write another.
 */
int mg_ct_equal(const void *a, const void *b, size_t n);

/** Wipes n octets at p in a way the compiler cannot remove. */
void mg_wipe(void *p, size_t n);

/** Lower-case hex of p[0..n) into out, which holds 2 * n + 1 characters. */
void mg_hex_encode(char *out, const uint8_t *p, size_t n);

/**
 * Decodes hex_len hex digits (upper or lower case, nothing else) into out
 * (cap octets): returns the number of octets (hex_len / 2), or -1 for an odd
 * length, more octets than cap, or a character that is not a hex digit.
 * For keys: the running time depends on hex_len only, never on the digits
 * (no table indexed by a digit, no early exit on a bad one). On -1, out
 * holds nothing of the input.
 */
int mg_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_COMMON_H */
