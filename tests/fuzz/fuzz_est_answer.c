/*
 * libFuzzer target: the agent's parser of EST answers (base64 certs-only
 * PKCS#7, RFC 7030 4.1.3 / 4.2.3, RFC 8951 3): mg_est_parse_answer on the raw
 * input, and on the input base64-encoded (so the DER/PKCS#7 parser sees the
 * fuzz bytes). On success at least one certificate was found. Seeds:
 * tests/fuzz/corpus/est_answer (DER PKCS#7 made with `openssl crl2pkcs7`).
 * Built with -DMG_FUZZ=ON (clang, tests/fuzz, run by tools/run-fuzzers.sh);
 * without it, a driver runs the seeds (ctest ipagent_fuzz_est_answer_seeds).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "ip.h"

static unsigned char enc[MG_EST_RESPONSE_MAX + 4];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[160];
    int n = 0;
    if (size > MG_EST_RESPONSE_MAX)
        return 0;
    if (mg_est_parse_answer(data, size, &n, why, sizeof(why)) == 0 && n < 1)
        abort();
    if (size <= (MG_EST_RESPONSE_MAX / 4) * 3) {
        int el = EVP_EncodeBlock(enc, data, (int)size);
        if (mg_est_parse_answer(enc, (size_t)el, &n, why, sizeof(why)) == 0 && n < 1)
            abort();
    }
    return 0;
}

#ifndef MG_FUZZ_MAIN_LIBFUZZER
/* Seed driver: runs every file named on the command line once. */
int main(int argc, char **argv)
{
    static unsigned char buf[MG_EST_RESPONSE_MAX];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        (void)LLVMFuzzerTestOneInput(buf, len);
    }
    printf("%d seeds ok\n", argc - 1);
    return 0;
}
#endif
