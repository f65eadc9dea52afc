/* Constant-time comparison, wiping and error names for the whole library. */
#include <limits.h>
#include <string.h>

#include "m2mguard/common.h"

int mg_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = (const volatile uint8_t *)a;
    const volatile uint8_t *y = (const volatile uint8_t *)b;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (uint8_t)(x[i] ^ y[i]);
    /* 1 when acc == 0, 0 otherwise, without a branch on acc. */
    return (int)(1 & ((uint32_t)(acc - 1) >> 8));
}

/* A store through a volatile function pointer cannot be elided by the
 * optimiser, and the pointer itself is opaque to it. */
static void *(*const volatile mg_memset_v)(void *, int, size_t) = memset;

void mg_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        (void)mg_memset_v(p, 0, n);
}

void mg_hex_encode(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* 1 when a < b, else 0, for a, b < 2^31: the sign bit of the wrapped difference. */
static uint32_t ct_lt(uint32_t a, uint32_t b)
{
    return ((a - b) >> 31) & 1u;
}

int mg_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap)
{
    /* Lengths are public; digit values are not: every digit goes through the
     * same arithmetic, with no table indexed by it and no exit on a bad one. */
    if (hex == NULL || hex_len % 2 != 0 || hex_len / 2 > cap || hex_len / 2 > (size_t)INT_MAX ||
        (out == NULL && hex_len > 0))
        return -1;
    size_t n = hex_len / 2;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v[2];
        for (size_t j = 0; j < 2; j++) {
            uint32_t c = (uint8_t)hex[2 * i + j];
            uint32_t lc = c | 0x20u; /* 'A'..'F' -> 'a'..'f' */
            uint32_t is_dig = (1u ^ ct_lt(c, '0')) & ct_lt(c, '9' + 1);
            uint32_t is_af = (1u ^ ct_lt(lc, 'a')) & ct_lt(lc, 'f' + 1);
            v[j] = ((c - '0') & (0u - is_dig)) | ((lc - 'a' + 10u) & (0u - is_af));
            bad |= 1u ^ (is_dig | is_af);
        }
        out[i] = (uint8_t)((v[0] << 4 | v[1]) & 0xffu);
    }
    /* Neither is there a branch on the verdict: bad is 0 or 1; on 1 the mask
     * clears out[] and the result is -1 (all bits set), on 0 it is n. */
    uint32_t keep = bad - 1u;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(out[i] & keep);
    return (int)(uint32_t)(((uint32_t)n & keep) | (0u - bad));
}

const char *mg_strerror(mg_err e)
{
    switch (e) {
    case MG_OK: return "ok";
    case MG_ERR_ARG: return "bad_argument";
    case MG_ERR_BUF: return "buffer_too_small";
    case MG_ERR_TRUNC: return "truncated";
    case MG_ERR_LENGTH: return "bad_length";
    case MG_ERR_FORMAT: return "malformed";
    case MG_ERR_UNSUPPORTED: return "unsupported";
    case MG_ERR_CRYPTO: return "crypto_failure";
    case MG_ERR_AUTH: return "rc_cc_ds_failed";
    case MG_ERR_CNTR_LOW: return "cntr_low";
    case MG_ERR_CNTR_HIGH: return "cntr_high";
    case MG_ERR_CNTR_BLOCKED: return "cntr_blocked";
    case MG_ERR_CIPHER: return "ciphering_error";
    case MG_ERR_SECURITY_LEVEL: return "insufficient_security_level";
    case MG_ERR_KEY: return "unknown_key";
    case MG_ERR_STORE: return "counter_store_failed";
    case MG_ERR_STATE: return "bad_state";
    case MG_ERR_TAR: return "tar_unknown";
    }
    return "unknown_error";
}
