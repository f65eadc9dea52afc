/*
 * Secured packets against published vectors of independent implementations.
 *
 * Source of every vector below: osmocom pySim, tests/unittests/test_ota.py
 * (GPL-2.0; bytes only). The "SJA5" sets were produced with sysmocom's
 * sysmoISIM-SJA5 sample cards; the "card 8988211000000467285" set with a
 * sysmoUSIM whose keys the file names. pySim returns unciphered command
 * packets without their CPL; the CPL is restored here (it is covered by the
 * checksum, so the CC in those vectors already accounts for it).
 */
#include <stdio.h>

#include "testutil.h"

#include "m2mguard/ota.h"

typedef struct vec {
    const char *name;
    mg_alg alg;
    const char *kic, *kid;
    uint8_t ki; /* KIc == KID octet in these vectors */
    uint8_t index;
    uint16_t spi;
    const char *tar;
    const char *data;
    const char *cmd;   /* command packet, CPL to the end */
    const char *rsp;   /* PoR, UDH included; NULL if none */
    uint8_t rsp_status;
    const char *rsp_data;
} vec;

static const vec vectors[] = {
    {"AES128-SJA5-CIPHERED-CC", MG_ALG_AES, "200102030405060708090a0b0c0d0e0f",
     "201102030405060708090a0b0c0d0e0f", 0x22, 2, MG_SPI(0x06, 0x19), "b00011", "00a40004023f00",
     "00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058",
     "027100002412b00011ebc6b497e2cad7aedf36ace0e3a29b38853f0fe9ccde81913be5702b73abce1f", 0x00,
     "016132"},
    {"3DES-SJA5-CIPHERED-CC", MG_ALG_3DES2, "300102030405060708090a0b0c0d0e0f",
     "301102030405060708090a0b0c0d0e0f", 0x35, 3, MG_SPI(0x06, 0x19), "b00011", "00a40004023f00",
     "00201506193535b00011ae733256918d050b87c94fbfe12e4dc402f262c41cf67f2f",
     "027100001c12b000118bb989492c632529326a2f4681feb37c825bc9021c9f6d0b", 0x00, "016132"},
    {"3DES-SJA5-UNCIPHERED-CC", MG_ALG_3DES2, "300102030405060708090a0b0c0d0e0f",
     "301102030405060708090a0b0c0d0e0f", 0x35, 3, MG_SPI(0x06, 0x09), "b00011", "00a40004023f00",
     "00201506093535b00011c49ac91ab8159ba5b83a54fb6385e0a5e31694f8b215fafc",
     "027100001612b0001100000000000000b5bcd6353a421fae016132", 0x00, "016132"},
    {"3DES-SJA5-UNCIPHERED-NOCC", MG_ALG_3DES2, "300102030405060708090a0b0c0d0e0f",
     "301102030405060708090a0b0c0d0e0f", 0x35, 3, MG_SPI(0x06, 0x01), "b00011", "00a40004023f00",
     "00201506013535b000113190be334900f52b025f3f7eddfe868e96ebf310023b7769",
     "027100000e0ab0001100000000000000016132", 0x00, "016132"},
    {"3DES-card-467285-ciphered-noCC", MG_ALG_3DES2, "c21dd66acac13cb3bc8b331b24afb57b",
     "12110c78e678c25408233076aa033615", 0x35, 3, MG_SPI(0x04, 0x19), "b00000", "00a40000023f00",
     "00180d04193535b00000e3ec80a849b554421276af3883927c20",
     "027100001c12b000119660ebdb81be189b5e4389e9e7ab2bc0954f963ad869ed7c", 0x00, "01612f"},
    {"3DES-card-467285-signed", MG_ALG_3DES2, "c21dd66acac13cb3bc8b331b24afb57b",
     "12110c78e678c25408233076aa033615", 0x35, 3, MG_SPI(0x02, 0x09), "b00000", "00a40000023f00",
     "001d1502093535b00000000000000000" /* SPI 02 09: see note below */
     "072ea17bdb72060e00a40000023f00",
     "027100001612b000110000000000000055f47118381175fb01612f", 0x00, "01612f"},
    {"3DES-card-467285-none", MG_ALG_3DES2, "c21dd66acac13cb3bc8b331b24afb57b",
     "12110c78e678c25408233076aa033615", 0x35, 3, MG_SPI(0x00, 0x01), "b00000", "00a40000023f00",
     "00150d00013535b0000000000000000000a40000023f00",
     "027100000e0ab000110000000000000001612f", 0x00, "01612f"},
};
/* Note: pySim's 3DES class mutates one shared SPI dict between its tests; its
 * signed command vector was made with SPI 02 19 and its "none" with 00 19.
 * The PoR vectors of the same class use 09 (signed) and 01 (none). The two
 * rows above pair each PoR with the SPI second octet that PoR needs, and the
 * command tests below use the SPI the command vector was made with. */
static const uint16_t cmd_spi_override[] = {0, 0, 0, 0, 0, MG_SPI(0x02, 0x19), MG_SPI(0x00, 0x19)};

static const mg_ota_msl msl_open = {false, false, MG_SPI1_CNTR_NONE};

typedef struct keyset {
    mg_key kic, kid;
    mg_ota_keys keys;
} keyset;

static void keys_of(const vec *v, keyset *ks)
{
    uint8_t b[32];
    size_t n = hx(v->kic, b, sizeof(b));
    assert_int_equal(mg_key_init(&ks->kic, v->alg, b, n), MG_OK);
    n = hx(v->kid, b, sizeof(b));
    assert_int_equal(mg_key_init(&ks->kid, v->alg, b, n), MG_OK);
    ks->keys.kic = &ks->kic;
    ks->keys.kid = &ks->kid;
    ks->keys.kic_index = v->index;
    ks->keys.kid_index = v->index;
}

static void keys_clear(keyset *ks)
{
    mg_key_clear(&ks->kic);
    mg_key_clear(&ks->kid);
}

static mg_ota_hdr hdr_of(const vec *v, uint16_t spi)
{
    mg_ota_hdr h;
    memset(&h, 0, sizeof(h));
    h.spi = spi;
    h.kic = v->ki;
    h.kid = v->ki;
    uint8_t tar[3];
    hx(v->tar, tar, 3);
    memcpy(h.tar, tar, 3);
    return h;
}

static void test_cmd_vectors_pack(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const vec *v = &vectors[i];
        uint16_t spi = cmd_spi_override[i] ? cmd_spi_override[i] : v->spi;
        char want_hex[256];
        snprintf(want_hex, sizeof(want_hex), "%s", v->cmd);
        if (cmd_spi_override[i]) { /* put the SPI the vector was made with */
            snprintf(want_hex + 6, 5, "%04x", spi);
            memcpy(want_hex + 6 + 4, v->cmd + 10, strlen(v->cmd) - 10 + 1);
        }
        keyset ks;
        keys_of(v, &ks);
        uint8_t data[64], want[128], out[128];
        size_t dl = hx(v->data, data, sizeof(data)), wl = hx(want_hex, want, sizeof(want)), ol;
        mg_ota_hdr h = hdr_of(v, spi);
        print_message("pack %s\n", v->name);
        assert_int_equal(mg_ota_cmd_pack(&h, &ks.keys, data, dl, out, sizeof(out), &ol), MG_OK);
        assert_int_equal(ol, wl);
        assert_memory_equal(out, want, wl);

        /* and open it again */
        mg_ota_cmd cmd;
        assert_int_equal(mg_ota_cmd_open(out, ol, &ks.keys, &msl_open, 0, &cmd), MG_OK);
        assert_null(cmd.data);
        assert_false(cmd.advances_counter);
        assert_int_equal(mg_ota_cmd_accept(&cmd, 12345), MG_OK);
        assert_int_equal(cmd.data_len, dl);
        assert_memory_equal(cmd.data, data, dl);
        assert_int_equal(cmd.hdr.spi, spi);
        assert_memory_equal(cmd.hdr.tar, h.tar, 3);
        keys_clear(&ks);
    }
}

static void test_rsp_vectors_open(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const vec *v = &vectors[i];
        keyset ks;
        keys_of(v, &ks);
        uint8_t pkt[128], data[16];
        size_t pl = hx(v->rsp, pkt, sizeof(pkt)), dl = hx(v->rsp_data, data, sizeof(data));
        mg_ota_hdr h = hdr_of(v, v->spi);
        mg_ota_rsp r;
        print_message("open PoR %s\n", v->name);
        assert_int_equal(mg_ota_rsp_open(&h, &ks.keys, pkt, pl, &r), MG_OK);
        assert_int_equal(r.status, v->rsp_status);
        assert_int_equal(r.data_len, dl);
        assert_memory_equal(r.data, data, dl);

        /* Re-pack with the fields read: byte-exact (padding is zero). */
        uint8_t again[128], orig[128];
        size_t al;
        hx(v->rsp, orig, sizeof(orig));
        mg_ota_rsp in = r;
        memcpy(data, r.data, r.data_len);
        in.data = data;
        assert_int_equal(mg_ota_rsp_pack(&h, &ks.keys, &in, again, sizeof(again), &al), MG_OK);
        assert_int_equal(al, pl);
        assert_memory_equal(again, orig, pl);
        keys_clear(&ks);
    }
}

/* pySim test_resp_3des_signed_err: one octet of the data changed. */
static void test_rsp_tampered(void **state)
{
    (void)state;
    const vec *v = &vectors[5];
    keyset ks;
    keys_of(v, &ks);
    uint8_t pkt[64];
    size_t pl = hx("027100001612b000110000000000000055f47118381175fb02612f", pkt, sizeof(pkt));
    mg_ota_hdr h = hdr_of(v, v->spi);
    mg_ota_rsp r;
    assert_int_equal(mg_ota_rsp_open(&h, &ks.keys, pkt, pl, &r), MG_ERR_AUTH);
    assert_null(r.data);
    keys_clear(&ks);
}

/* The default profile: AES, CC, ciphering, counter must be higher. */
static void default_keys(keyset *ks)
{
    static const vec v = {"default", MG_ALG_AES, "000102030405060708090a0b0c0d0e0f",
                          "f0e0d0c0b0a090807060504030201000", 0x12, 1, 0, "", "", "", NULL, 0,
                          NULL};
    keys_of(&v, ks);
}

static size_t pack_default(keyset *ks, uint64_t cntr, const char *data_hex, uint8_t *out, size_t cap)
{
    uint8_t data[256];
    size_t dl = hx(data_hex, data, sizeof(data)), ol = 0;
    mg_ota_hdr h = {MG_SPI(0x16, 0x21), 0x12, 0x12, {0xAA, 0xBB, 0xCC}, cntr, 0};
    assert_int_equal(mg_ota_cmd_pack(&h, &ks->keys, data, dl, out, cap, &ol), MG_OK);
    return ol;
}

static void test_counter_policy(void **state)
{
    (void)state;
    keyset ks;
    default_keys(&ks);
    uint8_t pkt[128], copy[128];
    size_t n = pack_default(&ks, 5, "756e6c6f636b", pkt, sizeof(pkt));
    mg_ota_cmd cmd;

    memcpy(copy, pkt, n);
    assert_int_equal(mg_ota_cmd_open(copy, n, &ks.keys, &mg_ota_msl_default, 4, &cmd), MG_OK);
    assert_true(cmd.advances_counter);
    assert_int_equal(cmd.hdr.cntr, 5);
    /* the data stay hidden until the caller says which counter it stored */
    assert_null(cmd.data);
    assert_int_equal(mg_ota_cmd_accept(&cmd, 4), MG_ERR_STATE);
    assert_null(cmd.data);
    assert_int_equal(mg_ota_cmd_accept(&cmd, 5), MG_OK);
    assert_int_equal(cmd.data_len, 6);
    assert_memory_equal(cmd.data, "unlock", 6);
    assert_int_equal(mg_ota_cmd_accept(&cmd, 5), MG_ERR_STATE); /* once */

    /* replay: same counter, and a lower one */
    memcpy(copy, pkt, n);
    assert_int_equal(mg_ota_cmd_open(copy, n, &ks.keys, &mg_ota_msl_default, 5, &cmd), MG_ERR_CNTR_LOW);
    assert_int_equal(mg_ota_status_of(MG_ERR_CNTR_LOW), MG_POR_CNTR_LOW);
    assert_null(cmd.data);
    assert_int_equal(cmd.state, 0);
    assert_int_equal(mg_ota_cmd_accept(&cmd, 5), MG_ERR_STATE);
    memcpy(copy, pkt, n);
    assert_int_equal(mg_ota_cmd_open(copy, n, &ks.keys, &mg_ota_msl_default, 9, &cmd), MG_ERR_CNTR_LOW);
    /* the rejected packet's deciphered octets are wiped from the buffer */
    for (size_t i = 10; i < n; i++)
        assert_int_equal(copy[i], 0);
    /* blocked when the stored counter is exhausted */
    memcpy(copy, pkt, n);
    assert_int_equal(mg_ota_cmd_open(copy, n, &ks.keys, &mg_ota_msl_default, MG_OTA_CNTR_MAX, &cmd),
                     MG_ERR_CNTR_BLOCKED);
    keys_clear(&ks);
}

static void test_cntr_check_table(void **state)
{
    (void)state;
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_NONE, 10, 0), MG_OK);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_AVAILABLE, 10, 3), MG_OK);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_HIGHER, 10, 11), MG_OK);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_HIGHER, 10, 500), MG_OK);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_HIGHER, 10, 10), MG_ERR_CNTR_LOW);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_HIGHER, 10, 9), MG_ERR_CNTR_LOW);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_ONE_HIGHER, 10, 11), MG_OK);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_ONE_HIGHER, 10, 12), MG_ERR_CNTR_HIGH);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_ONE_HIGHER, 10, 10), MG_ERR_CNTR_LOW);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_HIGHER, MG_OTA_CNTR_MAX - 1, MG_OTA_CNTR_MAX), MG_OK);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_HIGHER, MG_OTA_CNTR_MAX, MG_OTA_CNTR_MAX),
                     MG_ERR_CNTR_BLOCKED);
    assert_int_equal(mg_ota_cntr_check(MG_SPI1_CNTR_ONE_HIGHER, MG_OTA_CNTR_MAX, 0), MG_ERR_CNTR_BLOCKED);
}

/* The packet's SPI cannot lower the receiver's minimum security level. */
static void test_minimum_security_level(void **state)
{
    (void)state;
    keyset ks;
    default_keys(&ks);
    const struct {
        uint16_t spi;
        mg_err want;
    } cases[] = {
        {MG_SPI(0x16, 0x00), MG_OK},
        {MG_SPI(0x1E, 0x00), MG_OK},                 /* one higher is stronger */
        {MG_SPI(0x06, 0x00), MG_ERR_SECURITY_LEVEL}, /* no counter */
        {MG_SPI(0x0E, 0x00), MG_ERR_SECURITY_LEVEL}, /* counter, no check */
        {MG_SPI(0x12, 0x00), MG_ERR_SECURITY_LEVEL}, /* not ciphered */
        {MG_SPI(0x14, 0x00), MG_ERR_SECURITY_LEVEL}, /* no CC */
        {MG_SPI(0x15, 0x00), MG_ERR_SECURITY_LEVEL}, /* RC instead of CC */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t data[4] = {1, 2, 3, 4}, pkt[64];
        size_t n;
        mg_ota_hdr h = {cases[i].spi, 0x12, 0x12, {1, 2, 3}, 7, 0};
        if ((cases[i].spi >> 8 & 3) == 1)
            h.kid = 0x15; /* CRC-32 */
        assert_int_equal(mg_ota_cmd_pack(&h, &ks.keys, data, 4, pkt, sizeof(pkt), &n), MG_OK);
        mg_ota_cmd cmd;
        assert_int_equal(mg_ota_cmd_open(pkt, n, &ks.keys, &mg_ota_msl_default, 6, &cmd), cases[i].want);
    }
    keys_clear(&ks);
}

static void test_wrong_keys(void **state)
{
    (void)state;
    keyset ks;
    default_keys(&ks);
    uint8_t pkt[128], copy[128];
    size_t n = pack_default(&ks, 1, "0102", pkt, sizeof(pkt));
    mg_ota_cmd cmd;
    /* another key version */
    ks.keys.kid_index = 2;
    memcpy(copy, pkt, n);
    assert_int_equal(mg_ota_cmd_open(copy, n, &ks.keys, &mg_ota_msl_default, 0, &cmd), MG_ERR_KEY);
    ks.keys.kid_index = 1;
    /* same index, other key bytes: the checksum fails */
    ks.kid.bytes[0] ^= 1;
    mg_key_clear(&ks.kid);
    uint8_t other[16] = {9};
    assert_int_equal(mg_key_init(&ks.kid, MG_ALG_AES, other, 16), MG_OK);
    memcpy(copy, pkt, n);
    assert_int_equal(mg_ota_cmd_open(copy, n, &ks.keys, &mg_ota_msl_default, 0, &cmd), MG_ERR_AUTH);
    assert_int_equal(mg_ota_status_of(MG_ERR_AUTH), MG_POR_RC_CC_DS_FAILED);
    /* no keys at all */
    mg_ota_keys none = {NULL, NULL, 1, 1};
    memcpy(copy, pkt, n);
    assert_int_equal(mg_ota_cmd_open(copy, n, &none, &mg_ota_msl_default, 0, &cmd), MG_ERR_KEY);
    keys_clear(&ks);
}

/* CRC check values of the catalogue of parametrised CRC algorithms:
 * CRC-16/IBM-SDLC (ISO/IEC 13239 FCS-16) 906E, CRC-32/ISO-HDLC CBF43926. */
static void test_crc_check_values(void **state)
{
    (void)state;
    const mg_iov in = {(const uint8_t *)"123456789", 9};
    assert_int_equal(mg_crc16(&in, 1), 0x906E);
    assert_int_equal(mg_crc32(&in, 1), 0xCBF43926u);
}

static void test_ds_unsupported_and_reserved(void **state)
{
    (void)state;
    keyset ks;
    default_keys(&ks);
    uint8_t pkt[64];
    size_t n;
    mg_ota_hdr h = {MG_SPI(0x13, 0x00), 0x12, 0x12, {1, 2, 3}, 7, 0};
    assert_int_equal(mg_ota_cmd_pack(&h, &ks.keys, NULL, 0, pkt, sizeof(pkt), &n), MG_ERR_UNSUPPORTED);
    h.spi = MG_SPI(0x36, 0x00); /* reserved bit */
    assert_int_equal(mg_ota_cmd_pack(&h, &ks.keys, NULL, 0, pkt, sizeof(pkt), &n), MG_ERR_FORMAT);
    h.spi = MG_SPI(0x16, 0x03); /* reserved PoR value */
    assert_int_equal(mg_ota_cmd_pack(&h, &ks.keys, NULL, 0, pkt, sizeof(pkt), &n), MG_ERR_FORMAT);
    h.spi = MG_SPI(0x16, 0x00);
    h.kic = 0x11; /* single DES: not offered */
    assert_int_equal(mg_ota_cmd_pack(&h, &ks.keys, NULL, 0, pkt, sizeof(pkt), &n), MG_ERR_KEY);
    h.kic = 0x12;
    assert_int_equal(mg_ota_cmd_pack(&h, &ks.keys, NULL, 0, pkt, 20, &n), MG_ERR_BUF);
    h.cntr = MG_OTA_CNTR_MAX + 1;
    assert_int_equal(mg_ota_cmd_pack(&h, &ks.keys, NULL, 0, pkt, sizeof(pkt), &n), MG_ERR_ARG);
    keys_clear(&ks);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(mg_ota_status_name(0), "por_ok");
    assert_string_equal(mg_ota_status_name(1), "rc_cc_ds_failed");
    assert_string_equal(mg_ota_status_name(2), "cntr_low");
    assert_string_equal(mg_ota_status_name(0x0A), "insufficient_security_level");
    assert_string_equal(mg_ota_status_name(0x0B), "response_via_submit");
    assert_string_equal(mg_ota_status_name(0x42), "reserved");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_vectors_pack),
        cmocka_unit_test(test_rsp_vectors_open),
        cmocka_unit_test(test_rsp_tampered),
        cmocka_unit_test(test_counter_policy),
        cmocka_unit_test(test_cntr_check_table),
        cmocka_unit_test(test_minimum_security_level),
        cmocka_unit_test(test_wrong_keys),
        cmocka_unit_test(test_crc_check_values),
        cmocka_unit_test(test_ds_unsupported_and_reserved),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
