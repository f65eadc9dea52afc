/*
 * Host measurement of the heap Mbed TLS needs for one ES256 verification
 * through src/crypto/mbedtls.c's mg_crypto_verify (tools/arm-size.sh, issue
 * 12), with the configuration of the Cortex-M0+ image (mbedtls_config.h):
 * the static buffer allocator (MBEDTLS_MEMORY_BUFFER_ALLOC_C), 32-bit limbs
 * as on the MCU (MBEDTLS_HAVE_INT32).
 *
 *   mbedtls_heap max        MEMORY_DEBUG build: verifies a good and a bad
 *                           signature, prints "max_used BYTES max_blocks N"
 *                           (mbedtls_memory_buffer_alloc_max_get)
 *   mbedtls_heap try SIZE   plain build: exit 0 when a verify succeeds with
 *                           a SIZE-octet buffer (and a forged one is refused
 *                           with MG_ERR_AUTH), 1 otherwise
 *
 * The vector: a P-256 key and an ECDSA-SHA256 signature of "m2mguard heap
 * probe" made with the openssl CLI (openssl dgst -sha256 -sign).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbedtls/memory_buffer_alloc.h"

#include "m2mguard/crypto.h"

int mg_platform_random(uint8_t *out, size_t len);
int mg_platform_random(uint8_t *out, size_t len)
{
    (void)out;
    (void)len;
    return -1; /* not used by verification */
}

static const uint8_t pub[65] = {
    0x04, 0x35, 0x7f, 0xb7, 0x8b, 0x72, 0x8d, 0xab, 0xed, 0x94, 0x01, 0x54, 0x33, 0xe5, 0x50,
    0x60, 0xd9, 0x8b, 0x5d, 0x7e, 0x59, 0x3e, 0xbf, 0xbe, 0xe3, 0x5a, 0x30, 0x31, 0x0c, 0x26,
    0xde, 0xfb, 0xa8, 0x4b, 0x69, 0x34, 0x61, 0xcb, 0x16, 0xa5, 0xea, 0xa0, 0x1e, 0xcd, 0x68,
    0xa2, 0xc6, 0xe6, 0x99, 0xb2, 0xb9, 0x06, 0x62, 0x5e, 0x7a, 0xf6, 0x08, 0xf4, 0x6d, 0x42,
    0x8f, 0x45, 0x2c, 0x69, 0xee};
static const uint8_t sig[64] = {
    0x01, 0x47, 0xAD, 0xBA, 0x55, 0x6B, 0x95, 0xC4, 0xDE, 0x5E, 0x81, 0x57, 0x22, 0xE5, 0xF7, 0x78,
    0xD1, 0x41, 0x65, 0x46, 0x76, 0x0D, 0xB8, 0x6A, 0x76, 0x5F, 0xDA, 0x2D, 0xC5, 0x32, 0xE8, 0x45,
    0xE7, 0xDA, 0x99, 0xAC, 0x6A, 0x51, 0x78, 0x3A, 0x21, 0x9B, 0x97, 0xA6, 0x15, 0xCD, 0x8B, 0x84,
    0xFE, 0x49, 0xE0, 0x92, 0xAE, 0x5E, 0x53, 0x8A, 0xD9, 0x21, 0xD6, 0x11, 0xEE, 0xA8, 0x90, 0xB5};

static int run(void)
{
    static const char text[] = "m2mguard heap probe";
    mg_iov part = {(const uint8_t *)text, sizeof(text) - 1};
    uint8_t bad[64];
    if (mg_crypto_verify(MG_SIG_ES256, pub, sizeof(pub), &part, 1, sig) != MG_OK)
        return 1;
    memcpy(bad, sig, sizeof(bad));
    bad[63] ^= 1;
    if (mg_crypto_verify(MG_SIG_ES256, pub, sizeof(pub), &part, 1, bad) != MG_ERR_AUTH)
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    static unsigned char buf[65536];
    size_t size = sizeof(buf);
    if (argc == 3 && strcmp(argv[1], "try") == 0) {
        char *end;
        unsigned long v = strtoul(argv[2], &end, 10);
        if (*end != '\0' || v == 0 || v > sizeof(buf))
            return 2;
        size = (size_t)v;
    } else if (argc != 2 || strcmp(argv[1], "max") != 0) {
        fprintf(stderr, "usage: mbedtls_heap max | try SIZE\n");
        return 2;
    }
    mbedtls_memory_buffer_alloc_init(buf, size);
    int rc = run();
#ifdef MBEDTLS_MEMORY_DEBUG
    size_t used, blocks;
    mbedtls_memory_buffer_alloc_max_get(&used, &blocks);
    if (rc == 0)
        printf("max_used %zu max_blocks %zu\n", used, blocks);
#endif
    mbedtls_memory_buffer_alloc_free();
    return rc;
}
