/*
 * Cortex-M0+ probe of the signed-command verify path WITH Mbed TLS's ECDSA
 * (issue 12; tools/arm-size.sh, third image): mg_dev_signed_check ->
 * mg_cmd_verify[_multi] -> mg_crypto_verify (src/crypto/mbedtls.c, real) ->
 * mbedtls_ecdsa_verify. The heap of Mbed TLS is a static buffer
 * (MBEDTLS_MEMORY_BUFFER_ALLOC_C, RAM: not in the flash figure; the size a
 * verify needs is measured on the host by tools/arm/mbedtls_heap.c).
 * Linked, never run; its own code is not counted.
 */
#include "m2mguard/device.h"
#include "mbedtls/memory_buffer_alloc.h"

#ifndef MG_ARM_HEAP
#define MG_ARM_HEAP 4096
#endif

volatile int probe_sink;
static uint8_t msg[MG_CMD_MAX_LEN];
static unsigned char heap[MG_ARM_HEAP];
static mg_dev_trust trust;

/* The board's random source (MG_MBEDTLS_NO_ENTROPY); not on the verify path. */
int mg_platform_random(uint8_t *out, size_t len);
int mg_platform_random(uint8_t *out, size_t len)
{
    (void)out;
    return (int)len;
}

int main(void)
{
    mg_dev_signed s;
    mg_cmd_why why;
    const char *reason;
    mbedtls_memory_buffer_alloc_init(heap, sizeof(heap));
    mg_err e = mg_dev_signed_check(&trust, NULL, "door-1", msg, (size_t)probe_sink, 2, &s, &why,
                                   &reason);
    probe_sink = (int)e + (int)why + (int)s.cmd.seq;
    return 0;
}
