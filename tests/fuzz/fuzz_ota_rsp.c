/*
 * libFuzzer target: the response-packet (PoR) parser, mg_ota_rsp_open().
 *
 * The input is a PoR from its UDH (02 71 00) on. It is opened for several
 * commands whose second SPI octet asks for different PoR security (none,
 * RC with CRC-16 and CRC-32, CC, CC with ciphering, ciphering alone) with
 * AES-128 and 3DES 2-key keysets (the keys of the osmocom pySim SJA5 test
 * vectors, so that the published PoRs in corpus/ota_rsp are valid seeds),
 * each time from a heap copy of exactly the input size so that ASan catches
 * any overread. When a PoR opens, it is re-packed from the fields read; the
 * re-packed PoR must open to the same fields, and must be byte-identical
 * when the original had the padding pack adds. Any violation traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/ota.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c))                                                             \
            __builtin_trap();                                                 \
    } while (0)

typedef struct fks {
    mg_key kic, kid;
    mg_ota_keys keys;
} fks;

static fks sets[2];

static void init_keys(void)
{
    static int done;
    static const uint8_t aes_kic[16] = {0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t aes_kid[16] = {0x20, 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t des_kic[16] = {0x30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t des_kid[16] = {0x30, 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    if (done)
        return;
    CHECK(mg_key_init(&sets[0].kic, MG_ALG_AES, aes_kic, 16) == MG_OK);
    CHECK(mg_key_init(&sets[0].kid, MG_ALG_AES, aes_kid, 16) == MG_OK);
    sets[0].keys = (mg_ota_keys){&sets[0].kic, &sets[0].kid, 2, 2};
    CHECK(mg_key_init(&sets[1].kic, MG_ALG_3DES2, des_kic, 16) == MG_OK);
    CHECK(mg_key_init(&sets[1].kid, MG_ALG_3DES2, des_kid, 16) == MG_OK);
    sets[1].keys = (mg_ota_keys){&sets[1].kic, &sets[1].kid, 3, 3};
    done = 1;
}

/* The commands the PoR answers: keyset, SPI, KIc, KID. */
static const struct {
    int set;
    uint16_t spi;
    uint8_t kic, kid;
} cmds[] = {
    {0, MG_SPI(0x16, 0x21), 0x22, 0x22}, /* PoR in clear, no check */
    {0, MG_SPI(0x16, 0x29), 0x22, 0x22}, /* PoR CC (AES CMAC) */
    {0, MG_SPI(0x16, 0x39), 0x22, 0x22}, /* PoR CC + ciphered (AES) */
    {0, MG_SPI(0x16, 0x31), 0x22, 0x22}, /* PoR ciphered, no check */
    {0, MG_SPI(0x05, 0x25), 0x22, 0x21}, /* PoR RC CRC-16 */
    {1, MG_SPI(0x06, 0x19), 0x35, 0x35}, /* PoR CC + ciphered (3DES), pySim */
    {1, MG_SPI(0x06, 0x09), 0x35, 0x35}, /* PoR CC (3DES CBC-MAC), pySim */
    {1, MG_SPI(0x06, 0x01), 0x35, 0x35}, /* PoR no check, pySim */
    {1, MG_SPI(0x05, 0x05), 0x35, 0x35}, /* PoR RC CRC-32 */
};

static void repack_check(const uint8_t *orig, size_t len, const mg_ota_hdr *h,
                         const mg_ota_keys *keys, const mg_ota_rsp *r)
{
    uint8_t *data = malloc(r->data_len ? r->data_len : 1);
    CHECK(data != NULL);
    if (r->data_len > 0)
        memcpy(data, r->data, r->data_len);
    mg_ota_rsp in = *r;
    in.data = data;
    const size_t cap = r->data_len + MG_OTA_MAX_OVERHEAD;
    uint8_t *out = malloc(cap);
    CHECK(out != NULL);
    size_t n = 0;
    CHECK(mg_ota_rsp_pack(h, keys, &in, out, cap, &n) == MG_OK);
    CHECK(n <= cap);
    uint8_t *again = malloc(n);
    CHECK(again != NULL);
    memcpy(again, out, n);
    mg_ota_rsp r2;
    CHECK(mg_ota_rsp_open(h, keys, again, n, &r2) == MG_OK);
    CHECK(memcmp(r2.tar, r->tar, 3) == 0 && r2.cntr == r->cntr && r2.status == r->status);
    CHECK(r2.data_len == r->data_len);
    CHECK(r->data_len == 0 || memcmp(r2.data, data, r->data_len) == 0);
    if (r2.pcntr == r->pcntr && n == len) {
        int zero = 1;
        for (size_t i = 0; i < r->pcntr; i++)
            zero &= r->data[r->data_len + i] == 0;
        if (zero)
            CHECK(memcmp(out, orig, n) == 0);
    }
    free(again);
    free(out);
    free(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
    init_keys();
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const mg_ota_keys *keys = &sets[cmds[i].set].keys;
        mg_ota_hdr h;
        memset(&h, 0, sizeof(h));
        h.spi = cmds[i].spi;
        h.kic = cmds[i].kic;
        h.kid = cmds[i].kid;
        uint8_t *pkt = malloc(len ? len : 1); /* exactly len: ASan sees overreads */
        CHECK(pkt != NULL);
        if (len > 0)
            memcpy(pkt, in, len);
        mg_ota_rsp r;
        mg_err e = mg_ota_rsp_open(&h, keys, pkt, len, &r);
        if (e != MG_OK) {
            CHECK(e < 0 && r.data == NULL);
        } else {
            CHECK(r.data >= pkt + 16 && r.data + r.data_len + r.pcntr == pkt + len);
            (void)mg_ota_status_name(r.status);
            repack_check(in, len, &h, keys, &r);
        }
        free(pkt);
    }
    return 0;
}
