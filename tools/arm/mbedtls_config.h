/*
 * Minimal Mbed TLS 2.28 configuration of the Cortex-M0+ signed-command verify
 * image (tools/arm-size.sh, issue 12): what src/crypto/mbedtls.c's
 * mg_crypto_verify (ES256) and mg_crypto_sha256 need, nothing else.
 * Used with -DMBEDTLS_CONFIG_FILE='"mbedtls_config.h"'.
 *
 *  - ECDSA verify on secp256r1: ECDSA_C, ECP_C, ECP_DP_SECP256R1_ENABLED,
 *    BIGNUM_C; ECDSA_C requires ASN1_PARSE_C and ASN1_WRITE_C (check_config.h;
 *    the DER signature functions are not linked by the verify path).
 *  - SHA-256: SHA256_C, SHA256_SMALLER (the rolled loop: smaller on an MCU).
 *  - No entropy, no CTR_DRBG, no HMAC_DRBG: verification takes no random
 *    input (mbedtls.c is built with -DMG_MBEDTLS_NO_ENTROPY).
 *    ECP_NO_INTERNAL_RNG: ECP's internal DRBG (point blinding of a
 *    multiplication by a SECRET scalar) is left out; the verify
 *    multiplications (ecp_muladd) use public scalars only.
 *  - No filesystem, no time, no networking: NO_PLATFORM_ENTROPY, no FS_IO,
 *    no HAVE_TIME (newlib-nano supplies exit() for the allocator's abort).
 *  - ECP allocates its point tables (ecp_mul_comb, ecp_muladd) and every MPI
 *    grows on the heap: MEMORY_BUFFER_ALLOC_C serves them from a static
 *    buffer (mbedtls_memory_buffer_alloc_init); MG_MBEDTLS_HEAP_DEBUG adds
 *    MEMORY_DEBUG for the host measurement (mbedtls_memory_buffer_alloc_max_get).
 *  - ECP_NIST_OPTIM is left out: it is a speed option (fast modular
 *    reduction of the NIST curves, reached through the grp->modp function
 *    pointer); without it the reduction is the generic mbedtls_mpi_mod_mpi.
 *  - ECP_WINDOW_SIZE 2 and ECP_FIXED_POINT_OPTIM 0: the smallest tables
 *    (RAM over speed, as suits a Cortex-M0+).
 *  - The remaining headers src/crypto/mbedtls.c includes (aes, des, cipher,
 *    cmac) only declare (CIPHER_MODE_CBC declares mbedtls_aes_crypt_cbc and
 *    mbedtls_des3_crypt_cbc); aes.c, des.c, cipher.c, cmac.c are not built:
 *    nothing on the verify path calls them, --gc-sections drops the callers.
 */
#ifndef MG_ARM_MBEDTLS_CONFIG_H
#define MG_ARM_MBEDTLS_CONFIG_H

/* The host measurement (mbedtls_heap.c) forces 32-bit limbs as on the MCU
 * with MBEDTLS_HAVE_INT32, which excludes the assembly multipliers. */
#ifndef MBEDTLS_HAVE_INT32
#define MBEDTLS_HAVE_ASM
#endif
#define MBEDTLS_NO_PLATFORM_ENTROPY

#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
#ifdef MG_MBEDTLS_HEAP_DEBUG
#define MBEDTLS_MEMORY_DEBUG
#endif

#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NO_INTERNAL_RNG
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_CIPHER_MODE_CBC /* declarations only, see above */

#include "mbedtls/check_config.h"

#endif
