/*
 * libFuzzer target: the EST request body path (include/m2mguard/est.h).
 *  1. mg_est_b64_decode on the input: on success the output is at most 3/4
 *     of the input, and re-encoding it (OpenSSL EVP_EncodeBlock) then
 *     decoding again gives the same octets.
 *  2. mg_est_csr_decode on the input (base64 -> DER -> PKCS#10 -> subject
 *     CN): on success the CN is 1..63 printable ASCII octets and the DER
 *     length is within the buffer.
 *  3. The same on the input base64-encoded first, so that the DER and CSR
 *     parsers see the raw fuzz bytes (seeds: DER CSRs in corpus/est).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "m2mguard/est.h"

static uint8_t out[MG_EST_CSR_DER_MAX], again[MG_EST_CSR_DER_MAX];
static uint8_t enc[MG_EST_CSR_DER_MAX * 2];

static void check_csr(const uint8_t *body, size_t len)
{
    char cn[MG_NAME_MAX];
    char why[160];
    size_t der_len = 0;
    if (mg_est_csr_decode(body, len, out, sizeof(out), &der_len, cn, why, sizeof(why)) != MG_OK)
        return;
    size_t n = strlen(cn);
    if (n == 0 || n >= MG_NAME_MAX || der_len == 0 || der_len > sizeof(out))
        abort();
    for (size_t i = 0; i < n; i++)
        if (cn[i] < 0x20 || cn[i] > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0, m = 0;
    if (mg_est_b64_decode(data, size, out, sizeof(out), &n) == MG_OK) {
        if (n > size / 4 * 3 + 3)
            abort();
        int w = EVP_EncodeBlock(enc, out, (int)n);
        if (w < 0 || mg_est_b64_decode(enc, (size_t)w, again, sizeof(again), &m) != MG_OK ||
            m != n || memcmp(out, again, n) != 0)
            abort();
    }
    check_csr(data, size);
    if (size <= sizeof(enc) / 4 * 3 - 3) {
        int w = EVP_EncodeBlock(enc, data, (int)size);
        if (w > 0)
            check_csr(enc, (size_t)w);
    }
    return 0;
}
