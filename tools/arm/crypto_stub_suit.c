/*
 * The incremental SHA-256 of the crypto interface (issue 14), stubbed for
 * the Cortex-M0+ size probes (tools/arm-size.sh) like crypto_stub.c: crypto
 * is outside the budgets. Never run.
 */
#include "m2mguard/crypto.h"

extern volatile int probe_sink;

mg_err mg_sha256_init(mg_sha256 *c)
{
    c->started = true;
    return MG_OK;
}

mg_err mg_sha256_update(mg_sha256 *c, const uint8_t *p, size_t n)
{
    (void)c;
    probe_sink = (int)n + (p != NULL);
    return MG_OK;
}

mg_err mg_sha256_final(mg_sha256 *c, uint8_t out[MG_SHA256_LEN])
{
    c->started = false;
    out[0] = (uint8_t)probe_sink;
    return MG_OK;
}

void mg_sha256_abort(mg_sha256 *c)
{
    c->started = false;
}
