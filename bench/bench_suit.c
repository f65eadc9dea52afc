/* Device-side SUIT update check (issue 14): the throughput of digest+verify
 * over a 1 MiB image, i.e. mg_suit_check of its envelope (ES256 signature,
 * manifest digest, manifest) plus the image streamed through
 * mg_suit_img_begin/update/finish in CHUNK-octet pieces, against raw SHA-256
 * over the same 1 MiB in one call (mg_crypto_sha256), measured in the same
 * run with the same backend (OpenSSL). Goal: ratio >= 0.9.
 * Also prints mg_suit_check alone (envelopes per second).
 * usage: bench_suit [SECONDS per measurement, default 2] [CHUNK, default 4096] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "m2mguard/crypto.h"
#include "m2mguard/suit.h"

#define IMG_LEN (1024u * 1024u)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, mg_err e)
{
    fprintf(stderr, "bench_suit: %s: %s\n", what, mg_strerror(e));
    exit(1);
}

static uint8_t img[IMG_LEN];

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    size_t chunk = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 4096;
    if (secs <= 0 || chunk == 0 || chunk > IMG_LEN) {
        fprintf(stderr, "usage: bench_suit [SECONDS] [CHUNK]\n");
        return 2;
    }
    uint64_t s = 0x5eed;
    for (size_t i = 0; i < IMG_LEN; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        img[i] = (uint8_t)(s >> 56);
    }
    /* the envelope, signed with a fresh P-256 key */
    uint8_t priv[32], pub[65], env[MG_SUIT_ENVELOPE_MAX];
    size_t pl = 0, el = 0;
    mg_err e;
    do {
        if ((e = mg_crypto_random(priv, sizeof(priv))) != MG_OK)
            die("random", e);
    } while (mg_crypto_public_key(MG_SIG_ES256, priv, 32, pub, sizeof(pub), &pl) != MG_OK);
    mg_suit_params p;
    memset(&p, 0, sizeof(p));
    p.seq = 2;
    memset(p.vendor, 0x11, 16);
    memset(p.class_id, 0x22, 16);
    const mg_iov part = {img, IMG_LEN};
    if ((e = mg_crypto_sha256(&part, 1, p.digest)) != MG_OK)
        die("sha256", e);
    p.size = IMG_LEN;
    if ((e = mg_suit_envelope_sign(&p, MG_COSE_ALG_ES256, NULL, 0, priv, 32, env, sizeof(env), &el)) != MG_OK)
        die("sign", e);
    mg_wipe(priv, sizeof(priv));
    mg_suit_anchor a = {NULL, 0, MG_COSE_ALG_ES256, pub, pl};

    /* raw SHA-256 of the image */
    uint8_t h[MG_SHA256_LEN];
    unsigned long n_raw = 0;
    double t0 = now_s(), t;
    do {
        if ((e = mg_crypto_sha256(&part, 1, h)) != MG_OK)
            die("sha256", e);
        n_raw++;
    } while ((t = now_s() - t0) < secs);
    double raw = (double)n_raw / t; /* images per second */

    /* the device's check: envelope + streamed image */
    unsigned long n_dev = 0;
    t0 = now_s();
    do {
        mg_suit_info info;
        mg_suit_why why;
        mg_suit_img c;
        if ((e = mg_suit_check(env, el, &a, 1, &info, &why)) != MG_OK)
            die(mg_suit_why_str(why), e);
        if ((e = mg_suit_img_begin(&c, &info)) != MG_OK)
            die("img_begin", e);
        for (size_t off = 0; off < IMG_LEN; off += chunk) {
            size_t k = IMG_LEN - off < chunk ? IMG_LEN - off : chunk;
            if ((e = mg_suit_img_update(&c, img + off, k)) != MG_OK)
                die("img_update", e);
        }
        if ((e = mg_suit_img_finish(&c, &why)) != MG_OK)
            die(mg_suit_why_str(why), e);
        n_dev++;
    } while ((t = now_s() - t0) < secs);
    double dev = (double)n_dev / t;

    /* the envelope alone */
    unsigned long n_env = 0;
    t0 = now_s();
    do {
        mg_suit_info info;
        if ((e = mg_suit_check(env, el, &a, 1, &info, NULL)) != MG_OK)
            die("check", e);
        n_env++;
    } while ((t = now_s() - t0) < secs);
    double envs = (double)n_env / t;

    printf("bench_suit: backend %s, image %u octets, chunk %zu, envelope %zu octets\n",
           mg_crypto_backend(), IMG_LEN, chunk, el);
    printf("raw SHA-256 (one call):            %8.1f MiB/s\n", raw);
    printf("device check (envelope + stream):  %8.1f MiB/s\n", dev);
    printf("mg_suit_check alone:               %8.0f envelopes/s\n", envs);
    printf("ratio device/raw: %.3f (goal >= 0.9): %s\n", dev / raw, dev / raw >= 0.9 ? "ok" : "BELOW GOAL");
    return 0;
}
