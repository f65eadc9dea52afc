/*
 * libFuzzer target: the command-packet parser, mg_ota_cmd_open().
 *
 * The input is a command packet, CPL to the end. It is opened with fixed
 * AES-128 and 3DES 2-key keysets (the keys of the osmocom pySim SJA5 test
 * vectors, so that the published packets in corpus/ota_cmd are valid seeds)
 * under the m2mguard default MSL and an open MSL ({false, false, NONE}),
 * each time from a heap copy of exactly the input size so that ASan catches
 * any overread. When a packet opens, its data is accepted and re-packed
 * with the header read, and the re-packed packet must open to the same
 * header and data; when the original carried exactly the padding pack
 * would add (zero octets), the re-packed packet must be byte-identical.
 * Any violation traps.
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

static fks sets[3];
static const size_t nsets = sizeof(sets) / sizeof(sets[0]);

static void init_keys(void)
{
    static int done;
    static const uint8_t aes_kic[16] = {0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t aes_kid[16] = {0x20, 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t des_kic[16] = {0x30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t des_kid[16] = {0x30, 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t des3_k[24] = {0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                       12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
    if (done)
        return;
    CHECK(mg_key_init(&sets[0].kic, MG_ALG_AES, aes_kic, 16) == MG_OK);
    CHECK(mg_key_init(&sets[0].kid, MG_ALG_AES, aes_kid, 16) == MG_OK);
    sets[0].keys = (mg_ota_keys){&sets[0].kic, &sets[0].kid, 2, 2};
    CHECK(mg_key_init(&sets[1].kic, MG_ALG_3DES2, des_kic, 16) == MG_OK);
    CHECK(mg_key_init(&sets[1].kid, MG_ALG_3DES2, des_kid, 16) == MG_OK);
    sets[1].keys = (mg_ota_keys){&sets[1].kic, &sets[1].kid, 3, 3};
    CHECK(mg_key_init(&sets[2].kic, MG_ALG_3DES3, des3_k, 24) == MG_OK);
    CHECK(mg_key_init(&sets[2].kid, MG_ALG_3DES3, des3_k, 24) == MG_OK);
    sets[2].keys = (mg_ota_keys){&sets[2].kic, &sets[2].kid, 1, 1};
    done = 1;
}

static const mg_ota_msl msl_open = {false, false, MG_SPI1_CNTR_NONE};

static void repack_check(const uint8_t *orig, size_t len, const mg_ota_keys *keys,
                         const mg_ota_msl *msl, uint64_t last, const mg_ota_cmd *cmd)
{
    uint8_t *data = malloc(cmd->data_len ? cmd->data_len : 1);
    CHECK(data != NULL);
    if (cmd->data_len > 0)
        memcpy(data, cmd->data, cmd->data_len);
    const size_t cap = cmd->data_len + MG_OTA_MAX_OVERHEAD;
    uint8_t *out = malloc(cap);
    CHECK(out != NULL);
    size_t n = 0;
    CHECK(mg_ota_cmd_pack(&cmd->hdr, keys, data, cmd->data_len, out, cap, &n) == MG_OK);
    CHECK(n <= cap);

    /* The packet pack makes has the padding pack computes: when the
     * original's padding count and octets were the same, the bytes are. */
    uint8_t *again = malloc(n);
    CHECK(again != NULL);
    memcpy(again, out, n);
    mg_ota_cmd c2;
    CHECK(mg_ota_cmd_open(again, n, keys, msl, last, &c2) == MG_OK);
    CHECK(mg_ota_cmd_accept(&c2, c2.hdr.cntr) == MG_OK);
    CHECK(c2.hdr.spi == cmd->hdr.spi && c2.hdr.kic == cmd->hdr.kic &&
          c2.hdr.kid == cmd->hdr.kid && c2.hdr.cntr == cmd->hdr.cntr &&
          memcmp(c2.hdr.tar, cmd->hdr.tar, 3) == 0);
    CHECK(c2.data_len == cmd->data_len);
    CHECK(cmd->data_len == 0 || memcmp(c2.data, data, cmd->data_len) == 0);
    if (c2.hdr.pcntr == cmd->hdr.pcntr && n == len) {
        /* same padding count; the padding octets of the original must be
         * zero for the bytes to match */
        const uint8_t *pad = cmd->data + cmd->data_len;
        int zero = 1;
        for (size_t i = 0; i < cmd->hdr.pcntr; i++)
            zero &= pad[i] == 0;
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
    for (size_t s = 0; s < nsets; s++)
        for (int m = 0; m < 2; m++) {
            const mg_ota_msl *msl = m ? &msl_open : &mg_ota_msl_default;
            uint8_t *pkt = malloc(len ? len : 1); /* exactly len: ASan sees overreads */
            CHECK(pkt != NULL);
            if (len > 0)
                memcpy(pkt, in, len);
            mg_ota_cmd cmd;
            mg_err e = mg_ota_cmd_open(pkt, len, &sets[s].keys, msl, 0, &cmd);
            CHECK(cmd.data == NULL);
            if (e != MG_OK) {
                CHECK(e < 0 && cmd.state == 0);
                CHECK(mg_ota_cmd_accept(&cmd, cmd.hdr.cntr) == MG_ERR_STATE);
                (void)mg_ota_status_of(e);
                free(pkt);
                continue;
            }
            CHECK(cmd.state == MG_OTA_OPENED);
            CHECK(mg_ota_cmd_accept(&cmd, cmd.hdr.cntr) == MG_OK);
            /* data lie inside the packet, after the header */
            CHECK(cmd.data >= pkt + 16); /* CPL..PCNTR */
            CHECK(cmd.data + cmd.data_len + cmd.hdr.pcntr == pkt + len);
            repack_check(in, len, &sets[s].keys, msl, 0, &cmd);
            free(pkt);
        }
    return 0;
}
