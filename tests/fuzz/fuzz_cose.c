/*
 * libFuzzer target: the CBOR checker (both modes), the COSE_Sign1 parser and
 * the signed-command verifier (src/core/cbor.c, cose.c).
 * Invariants: a deterministic acceptance implies a plain one; a parsed
 * message's pieces lie inside the input; the Sig_structure fits its bound;
 * mg_cmd_verify never accepts (no command for device "fuzz-dev" was signed
 * with the anchor's key: the seeds name "door-1") and
 * always names a reason. COSE_Sign (tag 98): the parser's pieces lie inside
 * the input, at most MG_COSE_SIGN_MAX signatures; mg_cmd_verify_multi never
 * accepts and always names a reason; inspect reports 1..MG_CMD_SIGNERS_MAX
 * signers inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/cbor.h"
#include "m2mguard/cose.h"

static const uint8_t pub[65] = {
    0x04, 0xba, 0xc5, 0xb1, 0x1c, 0xad, 0x8f, 0x99, 0xf9, 0xc7, 0x2b, 0x05, 0xcf, 0x4b, 0x9e,
    0x26, 0xd2, 0x44, 0xdc, 0x18, 0x9f, 0x74, 0x52, 0x28, 0x25, 0x5a, 0x21, 0x9a, 0x86, 0xd6,
    0xa0, 0x9e, 0xff, 0x20, 0x13, 0x8b, 0xf8, 0x2d, 0xc1, 0xb6, 0xd5, 0x62, 0xbe, 0x0f, 0xa5,
    0x4a, 0xb7, 0x80, 0x4a, 0x3a, 0x64, 0xb6, 0xd7, 0x2c, 0xcf, 0xed, 0x6b, 0x6f, 0xb6, 0xed,
    0x28, 0xbb, 0xfc, 0x11, 0x7e};

static int inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
    return n == 0 || (p >= buf && p + n <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_cbor_why w;
    if (mg_cbor_check(data, size, MG_CBOR_DETERMINISTIC, &w) == MG_OK &&
        mg_cbor_check(data, size, 0, &w) != MG_OK)
        abort();

    mg_cose_sign1 m;
    mg_cose_why cw;
    for (unsigned flags = 0; flags <= MG_CBOR_DETERMINISTIC; flags++) {
        if (mg_cose_sign1_parse(data, size, flags, &m, &cw) != MG_OK)
            continue;
        if (!inside(m.prot, m.prot_len, data, size) ||
            !inside(m.payload, m.payload_len, data, size) || !inside(m.sig, m.sig_len, data, size) ||
            (m.kid != NULL && !inside(m.kid, m.kid_len, data, size)))
            abort();
        static uint8_t tbs[4096 + 64];
        size_t tn = 0;
        if (size <= 4096 && mg_cose_sig_structure(&m, NULL, 0, tbs, sizeof(tbs), &tn) != MG_OK)
            abort();
        (void)mg_cose_sign1_verify(&m, NULL, 0, MG_COSE_ALG_ES256, pub, sizeof(pub), &cw);
    }

    {
        static mg_cose_sign ms;
        for (unsigned flags = 0; flags <= MG_CBOR_DETERMINISTIC; flags++) {
            if (mg_cose_sign_parse(data, size, flags, &ms, &cw) != MG_OK)
                continue;
            if (ms.n_sigs == 0 || ms.n_sigs > MG_COSE_SIGN_MAX ||
                !inside(ms.prot, ms.prot_len, data, size) ||
                !inside(ms.payload, ms.payload_len, data, size))
                abort();
            for (size_t i = 0; i < ms.n_sigs; i++) {
                const mg_cose_signature *s = &ms.sigs[i];
                if (!inside(s->prot, s->prot_len, data, size) ||
                    !inside(s->sig, s->sig_len, data, size) ||
                    (s->kid != NULL && !inside(s->kid, s->kid_len, data, size)))
                    abort();
                (void)mg_cose_sign_verify(&ms, i, NULL, 0, MG_COSE_ALG_ES256, pub, sizeof(pub),
                                          &cw);
            }
        }
    }

    mg_cmd_anchor a = {(const uint8_t *)"11", 2, MG_COSE_ALG_ES256, pub, sizeof(pub)};
    mg_signed_cmd c;
    mg_cmd_why why = MG_CMD_OK;
    if (mg_cmd_verify(data, size, &a, 1, "fuzz-dev", 0, 1700000000u, &c, &why) == MG_OK ||
        why == MG_CMD_OK)
        abort();
    why = MG_CMD_OK;
    if (mg_cmd_verify_multi(data, size, &a, 1, "fuzz-dev", 0, 1700000000u, 1, &c, &why) ==
            MG_OK ||
        why == MG_CMD_OK)
        abort();
    if (mg_cmd_inspect(data, size, &c, &why) == MG_OK &&
        (!inside((const uint8_t *)c.command, c.command_len, data, size) || c.command_len == 0 ||
         c.n_kids == 0 || c.n_kids > MG_CMD_SIGNERS_MAX ||
         !inside(c.kids[c.n_kids - 1].kid, c.kids[c.n_kids - 1].kid_len, data, size)))
        abort();
    return 0;
}
