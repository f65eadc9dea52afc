/*
 * libFuzzer target: the CA's CSR check (mg_ca_csr_check): DER PKCS#10 parse,
 * key policy, proof of possession, subject CN. Any input must give MG_OK or a
 * refusal with a reason, never a crash. The expected CN is "meter-1", the
 * name in the seeds (tests/fuzz/corpus/csr, made with `openssl req -outform DER`).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    why[0] = '\0';
    mg_err e = mg_ca_csr_check(data, size, "meter-1", why, sizeof(why));
    if (e != MG_OK && why[0] == '\0')
        abort(); /* every refusal says why */
    if (e != MG_OK && e != MG_ERR_FORMAT && e != MG_ERR_AUTH && e != MG_ERR_UNSUPPORTED)
        abort();
    why[0] = '\0';
    mg_err e2 = mg_ca_csr_check(data, size, NULL, why, sizeof(why));
    if (e == MG_OK && e2 != MG_OK)
        abort(); /* without the CN condition nothing more is refused */
    return 0;
}
