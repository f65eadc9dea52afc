/*
 * Benchmark: command-packet verification per second against raw OpenSSL
 * AES-CMAC on the same bytes, measured in the same run (issue 2, "How it is
 * checked"; goal: ratio >= 0.5).
 *
 * Measured path (what a device does per incoming SMS): restore the packet
 * into the receive buffer (ciphered opening deciphers in place), then
 * mg_ota_cmd_open() with the m2mguard default MSL and the stored counter,
 * then mg_ota_cmd_accept() with the new counter ("must be higher": every
 * packet carries a higher counter than the one before), then read the data.
 * Packets: AES-128 KIc/KID, 8-octet AES-CMAC CC, 64 octets of secured data,
 * counter mode "must be higher"; one set in clear (SPI 12 21, under an MSL
 * that does not demand ciphering) and one ciphered (SPI 16 21, the default
 * profile). They are built beforehand with increasing counters.
 *
 * Anchor: what a competent OpenSSL 3 user writes for AES-CMAC: an EVP_MAC
 * context keyed once, then per message EVP_MAC_init(ctx, NULL, 0, NULL),
 * EVP_MAC_update() over the octets the checksum covers (the 80 octets
 * CPL..PCNTR and the data of the same packets, contiguous), EVP_MAC_final().
 *
 * Each figure is the best of 3 runs of at least 1 s. The ratio of the clear
 * variant is judged against the goal; the ciphered variant is also compared
 * with an anchor that adds raw AES-128-CBC deciphering of the same octets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "m2mguard/ota.h"

#define NPKT 1024
#define DATA_LEN 64
#define PKT_MAX 128
#define GOAL 0.5

static const uint8_t kic_b[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                  0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const uint8_t kid_b[16] = {0xf0, 0xe0, 0xd0, 0xc0, 0xb0, 0xa0, 0x90, 0x80,
                                  0x70, 0x60, 0x50, 0x40, 0x30, 0x20, 0x10, 0x00};

static mg_key kic, kid;
static mg_ota_keys keys;
static uint8_t pkts[2][NPKT][PKT_MAX]; /* [clear, ciphered] */
static size_t pkt_len[2];
static uint8_t macin[NPKT][80];       /* what the CC covers, contiguous */
static volatile unsigned sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_ota_verify: %s\n", what);
    exit(1);
}

static const mg_ota_msl msl_clear = {true, false, MG_SPI1_CNTR_HIGHER};

/* One pass over the NPKT packets; returns the number of operations. */
static long run_open(int variant)
{
    static uint8_t rx[PKT_MAX];
    const size_t n = pkt_len[variant];
    const mg_ota_msl *msl = variant ? &mg_ota_msl_default : &msl_clear;
    uint64_t stored = 0; /* the counter the device has stored */
    for (int i = 0; i < NPKT; i++) {
        mg_ota_cmd cmd;
        memcpy(rx, pkts[variant][i], n); /* the packet arrives */
        if (mg_ota_cmd_open(rx, n, &keys, msl, stored, &cmd) != MG_OK)
            die("open failed");
        if (cmd.advances_counter)
            stored = cmd.hdr.cntr; /* "stored durably" */
        if (mg_ota_cmd_accept(&cmd, stored) != MG_OK || cmd.data_len != DATA_LEN)
            die("accept failed");
        sink += cmd.data[0];
    }
    return NPKT;
}

static EVP_MAC_CTX *anchor_mac;
static EVP_CIPHER_CTX *anchor_cbc;

static long run_anchor(int with_cbc)
{
    static uint8_t rx[PKT_MAX];
    static const uint8_t iv[16];
    const size_t n = pkt_len[1];
    for (int i = 0; i < NPKT; i++) {
        uint8_t tag[16];
        size_t tl = 0;
        int outl = 0;
        if (with_cbc) {
            /* decipher the ciphered part of the same ciphered packet */
            if (EVP_DecryptInit_ex2(anchor_cbc, NULL, NULL, iv, NULL) != 1 ||
                EVP_DecryptUpdate(anchor_cbc, rx, &outl, pkts[1][i] + 10, (int)(n - 10)) != 1)
                die("anchor cbc");
        }
        if (EVP_MAC_init(anchor_mac, NULL, 0, NULL) != 1 ||
            EVP_MAC_update(anchor_mac, macin[i], sizeof(macin[i])) != 1 ||
            EVP_MAC_final(anchor_mac, tag, &tl, sizeof(tag)) != 1)
            die("anchor cmac");
        sink += tag[0];
    }
    return NPKT;
}

/* Best of 3 runs of >= 1 s, in operations per second. */
static double measure(long (*fn)(int), int arg)
{
    double best = 0;
    for (int r = 0; r < 3; r++) {
        long ops = 0;
        double t0 = now(), t;
        do {
            ops += fn(arg);
            t = now() - t0;
        } while (t < 1.0);
        if ((double)ops / t > best)
            best = (double)ops / t;
    }
    return best;
}

static void build(void)
{
    uint8_t data[DATA_LEN];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 37 + 1);
    if (mg_key_init(&kic, MG_ALG_AES, kic_b, 16) != MG_OK ||
        mg_key_init(&kid, MG_ALG_AES, kid_b, 16) != MG_OK)
        die("keys");
    keys = (mg_ota_keys){&kic, &kid, 1, 1};
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < NPKT; i++) {
            mg_ota_hdr h = {v ? MG_SPI(0x16, 0x21) : MG_SPI(0x12, 0x21), 0x12, 0x12,
                            {0xB0, 0x00, 0x10}, (uint64_t)i + 1, 0};
            data[0] = (uint8_t)i;
            if (mg_ota_cmd_pack(&h, &keys, data, sizeof(data), pkts[v][i], PKT_MAX,
                                &pkt_len[v]) != MG_OK)
                die("pack");
            if (v == 0) { /* the CC input: CPL..PCNTR, then the data */
                memcpy(macin[i], pkts[0][i], 16);
                memcpy(macin[i] + 16, pkts[0][i] + 24, DATA_LEN);
            }
        }

    /* the anchor: keyed once */
    static char cipher[] = "AES-128-CBC";
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                            OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    anchor_mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    if (anchor_mac == NULL || EVP_MAC_init(anchor_mac, kid_b, 16, params) != 1)
        die("anchor setup");
    /* check the anchor computes the packets' CC */
    uint8_t tag[16];
    size_t tl;
    if (EVP_MAC_init(anchor_mac, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(anchor_mac, macin[5], 80) != 1 ||
        EVP_MAC_final(anchor_mac, tag, &tl, sizeof(tag)) != 1 || memcmp(tag, pkts[0][5] + 16, 8) != 0)
        die("anchor does not reproduce the packet CC");
    anchor_cbc = EVP_CIPHER_CTX_new();
    if (anchor_cbc == NULL ||
        EVP_DecryptInit_ex2(anchor_cbc, EVP_aes_128_cbc(), kic_b, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(anchor_cbc, 0) != 1)
        die("anchor cbc setup");
}

int main(void)
{
    build();
    printf("command-packet verify: AES-128, CMAC 8-octet CC, %d-octet data, counter must be higher\n",
           DATA_LEN);
    printf("packets: %zu octets in clear, %zu ciphered; crypto backend %s\n", pkt_len[0],
           pkt_len[1], mg_crypto_backend());
    /* warm-up: first-use key setup of both paths */
    (void)run_open(0);
    (void)run_open(1);
    (void)run_anchor(1);

    const double anchor = measure(run_anchor, 0);
    const double clear = measure(run_open, 0);
    const double ciph = measure(run_open, 1);
    const double anchor_cbc_cmac = measure(run_anchor, 1);
    const double ratio = clear / anchor;

    printf("anchor  raw OpenSSL AES-CMAC (80 octets)            %10.0f ops/s\n", anchor);
    printf("anchor  raw OpenSSL AES-CBC decipher + AES-CMAC    %10.0f ops/s\n", anchor_cbc_cmac);
    printf("m2mguard open+accept, CC in clear (SPI 12 21)      %10.0f ops/s  ratio %.2f\n", clear,
           ratio);
    printf("m2mguard open+accept, ciphered    (SPI 16 21)      %10.0f ops/s  ratio %.2f "
           "(vs CBC+CMAC anchor %.2f)\n",
           ciph, ciph / anchor, ciph / anchor_cbc_cmac);
    printf("verify ratio %.2f (goal >= %.1f) %s\n", ratio, GOAL, ratio >= GOAL ? "PASS" : "FAIL");

    EVP_MAC_CTX_free(anchor_mac);
    EVP_CIPHER_CTX_free(anchor_cbc);
    mg_key_clear(&kic);
    mg_key_clear(&kid);
    return ratio >= GOAL ? 0 : 1;
}
