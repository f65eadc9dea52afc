/* What each crypto backend provides to src/crypto/common.c. Internal. */
#ifndef M2MGUARD_CRYPTO_BACKEND_H
#define M2MGUARD_CRYPTO_BACKEND_H

#include "m2mguard/crypto.h"

/** AES-CMAC (SP 800-38B) over the pieces, full 16-octet tag. */
MG_MUST_CHECK mg_err mg_be_cmac(mg_key *k, const mg_iov *parts, size_t n, uint8_t tag[16]);
/** Releases whatever the backend attached to k->backend. */
void mg_be_release(mg_key *k);
/** k->bytes changed, k->alg and k->len did not: what is attached to
 *  k->backend (not NULL) takes the new bytes at its next use. */
void mg_be_rekey(mg_key *k);

#endif
