/*
 * Constant-flow check of the tag comparison and the checksum verification
 * path, in the style of Monocypher's tests/ctgrind.c and Mbed TLS's
 * constant_flow.h: secrets are marked *undefined* for valgrind memcheck
 * (VALGRIND_MAKE_MEM_UNDEFINED); memcheck then reports every conditional
 * branch and every memory address that depends on them. Run as
 *
 *     valgrind --error-exitcode=1 ctgrind            expect: 0 errors, exit 0
 *     valgrind --error-exitcode=1 ctgrind --naive    expect: errors, exit 1
 *
 * The second run is the negative control: the same method applied to a
 * memcmp-style compare that stops at the first difference must be flagged,
 * which shows the first run's silence means something.
 *
 * What is checked (the first run):
 *  1. mg_ct_equal() on 8- and 16-octet tags, both operands undefined,
 *     equal and differing at the first, a middle and the last octet.
 *  2. The checksum itself: mg_crypto_mac() (AES-CMAC) with the key and the
 *     message undefined, then mg_ct_equal() against a received tag.
 *  3. The real verification path, src/core/ota.c compiled into this file
 *     unchanged: mg_ota_cmd_open() and mg_ota_rsp_open() with the keys (KIc
 *     and KID) and the received CC undefined, for genuine and forged
 *     packets, ciphered and not. For a ciphered packet the deciphered
 *     plaintext is secret too, and a forged one is rejected without a
 *     branch on it.
 *
 * Declassification: the one value that becomes public by design is the
 * verdict of the tag comparison (accept or reject). The harness wraps the
 * mg_ct_equal() calls of ota.c so that its result is marked defined, as
 * Mbed TLS's TEST_CF_PUBLIC does; nothing else is declassified. Genuine
 * ciphered packets are not run with a secret key: after a successful check
 * their deciphered header is authentic and its counter and padding are
 * compared, which is intended and would be (rightly) reported.
 *
 * Scope: 3DES is not checked. Its CBC-MAC runs on the backends' DES, which
 * uses S-box table lookups indexed by key-dependent data (OpenSSL and Mbed
 * TLS alike); TS 102 225 3DES is for legacy peers only and the m2mguard
 * profile uses AES. Run `ctgrind --3des` under valgrind to see it flagged.
 *
 * Outside valgrind the program refuses to run (it would prove nothing).
 */
#include <stdio.h>
#include <string.h>

#include <valgrind/memcheck.h>

#include "m2mguard/common.h"
#include "m2mguard/crypto.h"
#include "m2mguard/ota.h"

#define SECRET(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#define PUBLIC(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))

/* The verdict of a tag comparison is public: declassify it. */
static int ct_public(int v)
{
    PUBLIC(&v, sizeof(v));
    return v;
}

/* ota.c exactly as shipped, with its tag comparison's verdict declassified. */
#define mg_ct_equal(a, b, n) ct_public(mg_ct_equal((a), (b), (n)))
#include "../../src/core/ota.c"
#undef mg_ct_equal

static int failures;

/* true when some bit of p[0..n) is undefined for memcheck: proves that a
 * secret really flowed into a result (else the check would be vacuous). */
static bool tainted(const void *p, size_t n)
{
    uint8_t vbits[32];
    if (n > sizeof(vbits) || VALGRIND_GET_VBITS(p, vbits, n) != 1)
        return false;
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++)
        any |= vbits[i];
    return any != 0;
}

static void fail(const char *what)
{
    printf("FAIL: %s\n", what);
    failures++;
}

/* Runs one case and prints how many memcheck errors it caused. */
#define CASE(name, body)                                                      \
    do {                                                                      \
        unsigned long before_ = (unsigned long)VALGRIND_COUNT_ERRORS;         \
        body;                                                                 \
        unsigned long n_ = (unsigned long)VALGRIND_COUNT_ERRORS - before_;    \
        printf("%-58s %lu memcheck error(s)\n", name, n_);                    \
    } while (0)

/* ---- 1. mg_ct_equal ----------------------------------------------------- */

static void ct_equal_cases(void)
{
    static const size_t lens[] = {8, 16};
    for (size_t l = 0; l < 2; l++) {
        const size_t n = lens[l];
        const size_t diffs[] = {n, 0, n / 2, n - 1}; /* n: equal */
        for (size_t d = 0; d < 4; d++) {
            uint8_t a[16], b[16];
            char name[80];
            for (size_t i = 0; i < n; i++)
                a[i] = b[i] = (uint8_t)(0x5A + 7 * i);
            if (diffs[d] < n)
                b[diffs[d]] ^= 0x10;
            snprintf(name, sizeof(name), "mg_ct_equal %zu octets, %s %zu", n,
                     diffs[d] < n ? "differ at" : "equal", diffs[d] < n ? diffs[d] : n);
            CASE(name, {
                SECRET(a, n);
                SECRET(b, n);
                int raw = mg_ct_equal(a, b, n);
                if (!tainted(&raw, sizeof(raw)))
                    fail("secret did not reach the verdict");
                if (ct_public(raw) != (diffs[d] >= n))
                    fail(name);
            });
        }
    }
}

/* ---- 2. the checksum ---------------------------------------------------- */

static const uint8_t k_kic[16] = {0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t k_kid[16] = {0x20, 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static void cmac_cases(void)
{
    static const size_t klens[] = {16, 24, 32};
    for (size_t i = 0; i < 3; i++) {
        uint8_t kb[32], msg[64], tag[16], want[16];
        size_t tl = 0;
        mg_key k;
        char name[80];
        memset(kb, 0x3C, sizeof(kb));
        memset(msg, 0xA7, sizeof(msg));
        if (mg_key_init(&k, MG_ALG_AES, kb, klens[i]) != MG_OK ||
            mg_crypto_mac(&k, &(mg_iov){msg, sizeof(msg)}, 1, want, &tl) != MG_OK) {
            fail("cmac setup");
            return;
        }
        mg_key_clear(&k); /* fresh key object: the backend keys it from secret bytes */
        if (mg_key_init(&k, MG_ALG_AES, kb, klens[i]) != MG_OK) {
            fail("cmac setup");
            return;
        }
        snprintf(name, sizeof(name), "AES-%zu-CMAC, secret key and message, compare", klens[i] * 8);
        CASE(name, {
            SECRET(k.bytes, k.len);
            SECRET(msg, sizeof(msg));
            mg_err e = mg_crypto_mac(&k, &(mg_iov){msg, sizeof(msg)}, 1, tag, &tl);
            if (e != MG_OK || !tainted(tag, sizeof(tag)))
                fail("secret key did not reach the tag");
            if (ct_public(mg_ct_equal(tag, want, 8)) != 1)
                fail(name);
        });
        mg_key_clear(&k);
    }
}

/* ---- 3. the verification path of ota.c ---------------------------------- */

typedef struct keyset {
    mg_key kic, kid;
    mg_ota_keys keys;
} keyset;

/* Keys whose bytes are secret before the backend first sees them. */
static int secret_keys(keyset *ks, bool secret)
{
    if (mg_key_init(&ks->kic, MG_ALG_AES, k_kic, 16) != MG_OK ||
        mg_key_init(&ks->kid, MG_ALG_AES, k_kid, 16) != MG_OK)
        return -1;
    if (secret) {
        SECRET(ks->kic.bytes, 16);
        SECRET(ks->kid.bytes, 16);
    }
    ks->keys = (mg_ota_keys){&ks->kic, &ks->kid, 2, 2};
    return 0;
}

static void clear_keys(keyset *ks)
{
    mg_key_clear(&ks->kic);
    mg_key_clear(&ks->kid);
}

static const mg_ota_msl msl_open = {false, false, MG_SPI1_CNTR_NONE};

static void cmd_cases(void)
{
    static const struct {
        uint16_t spi;
        const char *what;
    } spis[] = {
        {MG_SPI(0x12, 0x21), "AES CC, clear"},
        {MG_SPI(0x16, 0x21), "AES CC, ciphered (default profile)"},
    };
    static const uint8_t data[64] = {0x75, 0x6e, 0x6c, 0x6f, 0x63, 0x6b};
    for (size_t s = 0; s < 2; s++) {
        const bool ciphered = (spis[s].spi >> 8 & MG_SPI1_CIPHER) != 0;
        uint8_t pkt[128], buf[128];
        size_t n;
        keyset ks;
        mg_ota_hdr h = {spis[s].spi, 0x22, 0x22, {0xB0, 0x00, 0x11}, 7, 0};
        if (secret_keys(&ks, false) != 0 ||
            mg_ota_cmd_pack(&h, &ks.keys, data, sizeof(data), pkt, sizeof(pkt), &n) != MG_OK) {
            fail("pack");
            return;
        }
        clear_keys(&ks);
        /* genuine, forged in the tag, forged in the data. A genuine ciphered
         * packet is left out: once its tag is verified its deciphered
         * (authentic) counter and padding are checked, by design. */
        for (int forge = ciphered ? 1 : 0; forge < 3; forge++) {
            char name[96];
            snprintf(name, sizeof(name), "cmd open %s, %s", spis[s].what,
                     forge == 0 ? "genuine" : forge == 1 ? "forged tag" : "forged data");
            if (secret_keys(&ks, true) != 0) {
                fail("keys");
                return;
            }
            memcpy(buf, pkt, n);
            if (forge == 1)
                buf[16 + (ciphered ? 0 : 7)] ^= 0x01; /* the tag (clear) / its block (ciphered) */
            if (forge == 2)
                buf[n - 1] ^= 0x80;
            CASE(name, {
                mg_ota_cmd cmd;
                if (!ciphered)
                    SECRET(buf + 16, 8); /* the received CC */
                mg_err e = mg_ota_cmd_open(buf, n, &ks.keys, &msl_open, 6, &cmd);
                if (e != (forge == 0 ? MG_OK : MG_ERR_AUTH))
                    fail(name);
            });
            clear_keys(&ks);
        }
    }
}

static void rsp_cases(void)
{
    static const uint8_t rdata[] = {0x01, 0x61, 0x32, 0x90, 0x00};
    for (int ciphered = 0; ciphered < 2; ciphered++)
        for (int forge = ciphered; forge < 2; forge++) {
            uint8_t pkt[128];
            size_t n;
            keyset ks;
            char name[96];
            mg_ota_hdr h = {MG_SPI(0x16, (uint8_t)(ciphered ? 0x39 : 0x29)), 0x22, 0x22, {0}, 0, 0};
            mg_ota_rsp r = {{0xB0, 0x00, 0x11}, 7, 0, 0, rdata, sizeof(rdata)};
            if (secret_keys(&ks, false) != 0 ||
                mg_ota_rsp_pack(&h, &ks.keys, &r, pkt, sizeof(pkt), &n) != MG_OK) {
                fail("PoR pack");
                return;
            }
            clear_keys(&ks);
            /* (no genuine ciphered PoR: its authentic plaintext is then parsed) */
            if (secret_keys(&ks, true) != 0) {
                fail("keys");
                return;
            }
            if (forge)
                pkt[n - 1] ^= 0x04;
            snprintf(name, sizeof(name), "PoR open AES CC%s, %s", ciphered ? " ciphered" : "",
                     forge ? "forged" : "genuine");
            CASE(name, {
                mg_ota_rsp got;
                if (!ciphered)
                    SECRET(pkt + 16, 8);
                mg_err e = mg_ota_rsp_open(&h, &ks.keys, pkt, n, &got);
                if (e != (forge ? MG_ERR_AUTH : MG_OK))
                    fail(name);
            });
            clear_keys(&ks);
        }
}

/* ---- legacy 3DES: expected to be flagged (information only) ------------- */

static void des_cases(void)
{
    uint8_t kb[16], msg[32], tag[16];
    size_t tl;
    mg_key k;
    memset(kb, 0x3C, sizeof(kb));
    memset(msg, 0xA7, sizeof(msg));
    if (mg_key_init(&k, MG_ALG_3DES2, kb, 16) != MG_OK)
        return;
    CASE("3DES CBC-MAC, secret key (table-based DES: flagged)", {
        SECRET(k.bytes, 16);
        if (mg_crypto_mac(&k, &(mg_iov){msg, sizeof(msg)}, 1, tag, &tl) != MG_OK)
            fail("3des mac");
    });
    mg_key_clear(&k);
}

/* ---- negative control ---------------------------------------------------- */

/* What not to write: a compare that returns at the first difference. */
__attribute__((noinline)) static int naive_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static void naive_cases(void)
{
    uint8_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    CASE("negative control: early-exit compare (MUST be flagged)", {
        SECRET(a, 8);
        SECRET(b, 8);
        if (ct_public(naive_equal(a, b, 8)) != 0)
            fail("naive");
    });
}

int main(int argc, char **argv)
{
    if (!RUNNING_ON_VALGRIND) {
        fprintf(stderr, "ctgrind: run me under valgrind --error-exitcode=1; alone I prove nothing\n");
        return 2;
    }
    printf("ctgrind, crypto backend %s\n", mg_crypto_backend());
    if (argc > 1 && strcmp(argv[1], "--naive") == 0) {
        naive_cases();
    } else if (argc > 1 && strcmp(argv[1], "--3des") == 0) {
        des_cases();
    } else if (argc > 1) {
        fprintf(stderr, "usage: ctgrind [--naive | --3des]\n");
        return 2;
    } else {
        ct_equal_cases();
        cmac_cases();
        cmd_cases();
        rsp_cases();
    }
    unsigned long errs = (unsigned long)VALGRIND_COUNT_ERRORS;
    printf("total: %lu memcheck error(s)%s\n", errs, failures ? ", functional FAILURES" : "");
    return failures ? 1 : 0;
}
