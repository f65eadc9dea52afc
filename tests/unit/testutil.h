/* Helpers shared by the cmocka tests. */
#ifndef M2MGUARD_TESTUTIL_H
#define M2MGUARD_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Decodes a hex string (no separators) into out; fails the test on error. */
static inline size_t hx(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    assert_true(n / 2 <= cap);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        char b[3] = {hex[2 * i], hex[2 * i + 1], 0};
        assert_true(sscanf(b, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

/* Deterministic PRNG for property tests (splitmix64). */
static inline uint64_t prng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
