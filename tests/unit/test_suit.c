/*
 * SUIT manifests (src/core/suit.c) and the device's update and tamper
 * response (src/device/update.c).
 *
 * Vectors: the example envelopes of draft-ietf-suit-manifest with the
 * draft's example key (tests/suit/vectors/README.md names the source).
 * Properties: random valid manifests built by mg_suit_envelope_sign
 * round-trip through mg_suit_check; every single bit flip of an envelope and
 * of an image is refused; rollback, wrong vendor/class, oversize refused.
 *
 * The device library is compiled into this test (device.c, update.c included
 * below) because tests/CMakeLists.txt links test_* with the core only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "m2mguard/crypto.h"
#include "m2mguard/device.h"
#include "m2mguard/suit.h"
#include "testutil.h"

static const char DRAFT_PUB[] =
    "048496811aae0baaabd26157189eecda26beaa8bf11b6f3fe6e2b5659c85dbc0ad"
    "3b1f2a4b6c098131c0a36dacd1d78bd381dcdfb09c052db33991db7338b4a896";
static const char DRAFT_PRIV[] = "0296588d909418b339d150420a3612b57fb4f631a69f224fae90cb4f3fe18973";
static const char VENDOR[] = "fa6b4a53d5ad5fdfbe9de663e4d41ffe";
static const char CLASS[] = "1492af1425695e48bf429b2d51f2ab45";
static const char DIGEST[] = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";

static uint8_t draft_pub[65], draft_priv[32];
static mg_suit_anchor anchor;

static int setup(void **st)
{
    (void)st;
    hx(DRAFT_PUB, draft_pub, sizeof(draft_pub));
    hx(DRAFT_PRIV, draft_priv, sizeof(draft_priv));
    anchor = (mg_suit_anchor){NULL, 0, MG_COSE_ALG_ES256, draft_pub, sizeof(draft_pub)};
    return 0;
}

static bool can_sign(void)
{
    return strcmp(mg_crypto_backend(), "openssl") == 0;
}

/* Reads tests/suit/vectors/NAME (hex, whitespace ignored), located from this file. */
static size_t load_vector(const char *name, uint8_t *out, size_t cap)
{
    char path[1024];
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    assert_non_null(slash);
    int k = snprintf(path, sizeof(path), "%.*s/../suit/vectors/%s", (int)(slash - here), here, name);
    assert_true(k > 0 && (size_t)k < sizeof(path));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = 0;
    int hi = -1, c;
    while ((c = fgetc(f)) != EOF) {
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            assert_true(n < cap);
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    fclose(f);
    assert_int_equal(hi, -1);
    return n;
}

static const struct {
    const char *file;
    uint64_t seq;
    size_t ncomp;
    const char *manifest_digest;
    bool install, fetch, load, invoke;
} VEC[] = {
    {"example0.hex", 0, 1, "6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af", false, false, false, true},
    {"example1.hex", 1, 1, "1f2e7acca0dc2786f2fe4eb947f50873a6a3cfaa98866c5b02e621f42074daf2", true, false, false, false},
    {"example2.hex", 2, 1, "86bbcc8823f3a4441956f02b001302f503487461fb77fab086efe31530881f97", false, false, false, true},
    {"example3.hex", 3, 1, "b3e6a52776bf3ed218feba031c609c98260e1a52fc1f019683edb6d1c5c4a379", false, false, false, false},
    {"example4.hex", 4, 3, "5b5f6586b1e6cdf19ee479a5adabf206581000bd584b0832a9bdaf4f72cdbdd6", true, true, true, true},
    {"example5.hex", 5, 2, "264dc89eb4a39ae7a8ed05e4d6232153bce4fb9a111a31310b90627d1edfc3bb", false, false, false, true},
};

static void test_vectors(void **st)
{
    (void)st;
    uint8_t env[2048], v[16], c[16], d[32], md[32];
    hx(VENDOR, v, sizeof(v));
    hx(CLASS, c, sizeof(c));
    hx(DIGEST, d, sizeof(d));
    for (size_t i = 0; i < sizeof(VEC) / sizeof(VEC[0]); i++) {
        size_t n = load_vector(VEC[i].file, env, sizeof(env));
        mg_suit_info info;
        mg_suit_why why = MG_SUIT_OK;
        mg_err e = mg_suit_check(env, n, &anchor, 1, &info, &why);
        if (e != MG_OK)
            fail_msg("%s: %s / %s", VEC[i].file, mg_strerror(e), mg_suit_why_str(why));
        assert_int_equal(info.seq, VEC[i].seq);
        assert_int_equal(info.n_components, VEC[i].ncomp);
        assert_true(info.has_vendor && info.cond_vendor && memcmp(info.vendor, v, 16) == 0);
        assert_true(info.has_class && info.cond_class && memcmp(info.class_id, c, 16) == 0);
        assert_true(info.has_digest && memcmp(info.digest, d, 32) == 0);
        assert_true(info.has_size);
        assert_int_equal(info.size, 34768);
        assert_true(info.cond_image && info.has_validate);
        hx(VEC[i].manifest_digest, md, sizeof(md));
        assert_memory_equal(info.manifest_digest, md, 32);
        assert_int_equal(info.has_install, VEC[i].install);
        assert_int_equal(info.has_fetch, VEC[i].fetch);
        assert_int_equal(info.has_load, VEC[i].load);
        assert_int_equal(info.has_invoke, VEC[i].invoke);
        assert_int_equal(info.component_id_len, 1);
        assert_int_equal(info.component_id[0], 0x00);
        assert_int_equal(info.anchor, 0);
        assert_int_equal(info.alg, MG_COSE_ALG_ES256);
        assert_false(info.has_min_seq);
        if (i == 1) {
            assert_true(info.has_uri);
            assert_int_equal(info.uri_len, strlen("http://example.com/file.bin"));
            assert_memory_equal(info.uri, "http://example.com/file.bin", info.uri_len);
        }
        /* the device's decision: the draft's identifiers, image fits a 64 KiB slot */
        mg_suit_device dev;
        memcpy(dev.vendor, v, 16);
        memcpy(dev.class_id, c, 16);
        dev.installed_seq = 0;
        dev.slot_size = 65536;
        e = mg_suit_applies(&info, &dev, &why);
        if (VEC[i].seq == 0) { /* sequence 0 is never above an installed 0 */
            assert_int_equal(e, MG_ERR_CNTR_LOW);
            assert_int_equal(why, MG_SUIT_WHY_ROLLBACK);
        } else {
            assert_int_equal(e, MG_OK);
        }
    }
}

/* Any single bit flip of any vector is refused (signature, digest, manifest,
 * severed members, structure). Every bit with the host backend; with the
 * Mbed TLS backend (26 times slower per verification, and the same parser)
 * every 5th bit and the first and last 64. */
static void test_vectors_bitflips(void **st)
{
    (void)st;
    uint8_t env[2048];
    size_t step = can_sign() ? 1 : 5;
    for (size_t i = 0; i < sizeof(VEC) / sizeof(VEC[0]); i++) {
        size_t n = load_vector(VEC[i].file, env, sizeof(env));
        for (size_t bit = 0; bit < n * 8; bit++) {
            if (step > 1 && bit >= 64 && bit + 64 < n * 8 && bit % step != 0)
                continue;
            env[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            mg_suit_info info;
            mg_suit_why why;
            mg_err e = mg_suit_check(env, n, &anchor, 1, &info, &why);
            if (e == MG_OK)
                fail_msg("%s: flip of bit %zu accepted", VEC[i].file, bit);
            assert_int_equal(info.seq, 0); /* zeroed on error */
            env[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* truncations too */
        for (size_t k = 0; k < n; k++) {
            mg_suit_info info;
            assert_int_not_equal(mg_suit_check(env, k, &anchor, 1, &info, NULL), MG_OK);
        }
    }
}

static void test_wrong_key_and_limits(void **st)
{
    (void)st;
    uint8_t env[MG_SUIT_ENVELOPE_MAX + 8];
    size_t n = load_vector("example1.hex", env, sizeof(env));
    mg_suit_info info;
    mg_suit_why why;
    /* another P-256 key (the cose-wg key "11") */
    uint8_t other[65];
    hx("04bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff"
       "20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e",
       other, sizeof(other));
    mg_suit_anchor a2 = {NULL, 0, MG_COSE_ALG_ES256, other, sizeof(other)};
    assert_int_equal(mg_suit_check(env, n, &a2, 1, &info, &why), MG_ERR_AUTH);
    assert_int_equal(why, MG_SUIT_WHY_UNKNOWN_KEY);
    /* the right key second in the table */
    mg_suit_anchor two[2] = {a2, anchor};
    assert_int_equal(mg_suit_check(env, n, two, 2, &info, &why), MG_OK);
    assert_int_equal(info.anchor, 1);
    /* an EdDSA anchor with the same bytes is never tried for an ES256 signature */
    mg_suit_anchor ed = {NULL, 0, MG_COSE_ALG_EDDSA, draft_pub + 1, 32};
    assert_int_equal(mg_suit_check(env, n, &ed, 1, &info, &why), MG_ERR_AUTH);
    /* an anchor with a kid still verifies a signature without kid */
    mg_suit_anchor kid = {(const uint8_t *)"op1", 3, MG_COSE_ALG_ES256, draft_pub, 65};
    assert_int_equal(mg_suit_check(env, n, &kid, 1, &info, &why), MG_OK);
    /* no anchors */
    assert_int_equal(mg_suit_check(env, n, NULL, 0, &info, &why), MG_ERR_AUTH);
    /* oversized */
    assert_int_equal(mg_suit_check(env, MG_SUIT_ENVELOPE_MAX + 1, &anchor, 1, &info, &why),
                     MG_ERR_LENGTH);
    assert_int_equal(why, MG_SUIT_WHY_OVERSIZED);
    assert_string_equal(mg_suit_why_str(MG_SUIT_WHY_ROLLBACK), "rollback");
}

/* ---- the encoder: random valid manifests round-trip ---------------------- */

static void rnd(uint64_t *s, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)prng_next(s);
}

static void random_params(uint64_t *s, mg_suit_params *p, char *uri, uint8_t *cid)
{
    memset(p, 0, sizeof(*p));
    p->seq = prng_next(s) % 4 == 0 ? prng_next(s) : prng_next(s) % 100000;
    rnd(s, p->vendor, 16);
    rnd(s, p->class_id, 16);
    rnd(s, p->digest, 32);
    p->size = 1 + prng_next(s) % (1u << 24);
    if (prng_next(s) % 2) {
        p->component_id_len = 1 + prng_next(s) % MG_SUIT_COMPONENT_ID_MAX;
        rnd(s, cid, p->component_id_len);
        p->component_id = cid;
    }
    if (prng_next(s) % 2) {
        size_t ul = prng_next(s) % 200;
        for (size_t i = 0; i < ul; i++)
            uri[i] = (char)('a' + prng_next(s) % 26);
        p->uri = uri;
        p->uri_len = ul;
    }
    if (prng_next(s) % 2) {
        p->has_min_seq = true;
        p->min_seq = prng_next(s) % 100000;
    }
}

static void test_roundtrip_property(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    uint64_t s = 14;
    for (int round = 0; round < 200; round++) {
        mg_suit_params p;
        char uri[256];
        uint8_t cid[MG_SUIT_COMPONENT_ID_MAX], env[MG_SUIT_ENVELOPE_MAX];
        random_params(&s, &p, uri, cid);
        size_t n = 0;
        assert_int_equal(mg_suit_envelope_sign(&p, MG_COSE_ALG_ES256, NULL, 0, draft_priv, 32, env,
                                               sizeof(env), &n),
                         MG_OK);
        mg_suit_info info;
        mg_suit_why why;
        mg_err e = mg_suit_check(env, n, &anchor, 1, &info, &why);
        if (e != MG_OK)
            fail_msg("round %d: %s / %s", round, mg_strerror(e), mg_suit_why_str(why));
        assert_int_equal(info.seq, p.seq);
        assert_memory_equal(info.vendor, p.vendor, 16);
        assert_memory_equal(info.class_id, p.class_id, 16);
        assert_memory_equal(info.digest, p.digest, 32);
        assert_int_equal(info.size, p.size);
        assert_int_equal(info.has_min_seq, p.has_min_seq);
        if (p.has_min_seq)
            assert_int_equal(info.min_seq, p.min_seq);
        assert_int_equal(info.has_uri, p.uri != NULL);
        assert_int_equal(info.has_install, p.uri != NULL);
        if (p.uri != NULL) {
            assert_int_equal(info.uri_len, p.uri_len);
            assert_memory_equal(info.uri, p.uri, p.uri_len);
        }
        if (p.component_id != NULL) {
            assert_int_equal(info.component_id_len, p.component_id_len);
            assert_memory_equal(info.component_id, p.component_id, p.component_id_len);
        }
        assert_true(info.cond_vendor && info.cond_class && info.cond_image && info.has_invoke);
        /* the manifest is deterministic CBOR */
        assert_int_equal(mg_cbor_check(info.manifest, info.manifest_len, MG_CBOR_DETERMINISTIC, NULL),
                         MG_OK);
        /* a few rounds: every single bit flip refused */
        if (round < 3) {
            for (size_t bit = 0; bit < n * 8; bit++) {
                env[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                assert_int_not_equal(mg_suit_check(env, n, &anchor, 1, &info, NULL), MG_OK);
                env[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
        }
    }
}

/* The PKCS#11 path: tbs + an external signature + assemble = the same. */
static void test_tbs_assemble(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    mg_suit_params p;
    memset(&p, 0, sizeof(p));
    p.seq = 7;
    hx(VENDOR, p.vendor, 16);
    hx(CLASS, p.class_id, 16);
    hx(DIGEST, p.digest, 32);
    p.size = 1000;
    uint8_t m[1024], tbs[256], sig[64], env[2048];
    size_t ml = 0, tl = 0, n = 0;
    assert_int_equal(mg_suit_manifest_encode(&p, m, sizeof(m), &ml), MG_OK);
    assert_int_equal(mg_suit_tbs(MG_COSE_ALG_ES256, (const uint8_t *)"op1", 3, m, ml, tbs,
                                 sizeof(tbs), &tl),
                     MG_OK);
    const mg_iov part = {tbs, tl};
    assert_int_equal(mg_crypto_sign(MG_SIG_ES256, draft_priv, 32, &part, 1, sig), MG_OK);
    assert_int_equal(mg_suit_envelope_assemble(m, ml, MG_COSE_ALG_ES256, (const uint8_t *)"op1", 3,
                                               sig, env, sizeof(env), &n),
                     MG_OK);
    mg_suit_info info;
    mg_suit_anchor kid = {(const uint8_t *)"op1", 3, MG_COSE_ALG_ES256, draft_pub, 65};
    assert_int_equal(mg_suit_check(env, n, &kid, 1, &info, NULL), MG_OK);
    assert_int_equal(info.seq, 7);
    /* an anchor with another kid is not tried */
    mg_suit_anchor other = {(const uint8_t *)"op2", 3, MG_COSE_ALG_ES256, draft_pub, 65};
    assert_int_equal(mg_suit_check(env, n, &other, 1, &info, NULL), MG_ERR_AUTH);
    /* EdDSA where the backend has it */
    uint8_t edpriv[32], edpub[32];
    size_t el = 0;
    memset(edpriv, 0x42, sizeof(edpriv));
    if (mg_crypto_public_key(MG_SIG_ED25519, edpriv, 32, edpub, sizeof(edpub), &el) == MG_OK) {
        assert_int_equal(mg_suit_envelope_sign(&p, MG_COSE_ALG_EDDSA, NULL, 0, edpriv, 32, env,
                                               sizeof(env), &n),
                         MG_OK);
        mg_suit_anchor ed = {NULL, 0, MG_COSE_ALG_EDDSA, edpub, 32};
        assert_int_equal(mg_suit_check(env, n, &ed, 1, &info, NULL), MG_OK);
        assert_int_equal(info.alg, MG_COSE_ALG_EDDSA);
        assert_int_equal(mg_suit_check(env, n, &anchor, 1, &info, NULL), MG_ERR_AUTH);
    }
}

static void sign_params(mg_suit_params *p, uint8_t *env, size_t cap, size_t *n)
{
    assert_int_equal(mg_suit_envelope_sign(p, MG_COSE_ALG_ES256, NULL, 0, draft_priv, 32, env, cap, n),
                     MG_OK);
}

static void test_applies(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    mg_suit_params p;
    memset(&p, 0, sizeof(p));
    hx(VENDOR, p.vendor, 16);
    hx(CLASS, p.class_id, 16);
    hx(DIGEST, p.digest, 32);
    p.seq = 10;
    p.size = 4096;
    p.has_min_seq = true;
    p.min_seq = 5;
    uint8_t env[2048];
    size_t n = 0;
    sign_params(&p, env, sizeof(env), &n);
    mg_suit_info info;
    assert_int_equal(mg_suit_check(env, n, &anchor, 1, &info, NULL), MG_OK);
    mg_suit_device dev;
    memcpy(dev.vendor, p.vendor, 16);
    memcpy(dev.class_id, p.class_id, 16);
    dev.installed_seq = 9;
    dev.slot_size = 4096;
    mg_suit_why why;
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_OK);
    dev.installed_seq = 10; /* same sequence: rollback */
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_ERR_CNTR_LOW);
    assert_int_equal(why, MG_SUIT_WHY_ROLLBACK);
    dev.installed_seq = 11; /* older manifest: rollback */
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_ERR_CNTR_LOW);
    dev.installed_seq = 4; /* below the minimum version */
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_ERR_STATE);
    assert_int_equal(why, MG_SUIT_WHY_TOO_OLD);
    dev.installed_seq = 5;
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_OK);
    dev.slot_size = 4095; /* one octet too big */
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_ERR_LENGTH);
    assert_int_equal(why, MG_SUIT_WHY_TOO_BIG);
    dev.slot_size = 4096;
    dev.class_id[15] ^= 1; /* wrong class */
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_ERR_AUTH);
    assert_int_equal(why, MG_SUIT_WHY_WRONG_CLASS);
    dev.class_id[15] ^= 1;
    dev.vendor[0] ^= 0x80; /* wrong vendor */
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_ERR_AUTH);
    assert_int_equal(why, MG_SUIT_WHY_WRONG_VENDOR);
    /* size overflow: the largest image size, any slot smaller */
    dev.vendor[0] ^= 0x80;
    p.size = UINT64_MAX;
    sign_params(&p, env, sizeof(env), &n);
    assert_int_equal(mg_suit_check(env, n, &anchor, 1, &info, NULL), MG_OK);
    dev.slot_size = UINT64_MAX - 1;
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_ERR_LENGTH);
    /* a manifest without its conditions is refused by the device */
    info.cond_class = false;
    dev.slot_size = UINT64_MAX;
    assert_int_equal(mg_suit_applies(&info, &dev, &why), MG_ERR_AUTH);
}

/* ---- the image stream ----------------------------------------------------- */

static void test_image_stream(void **st)
{
    (void)st;
    static uint8_t img[10000];
    uint64_t s = 99;
    rnd(&s, img, sizeof(img));
    mg_suit_info info;
    memset(&info, 0, sizeof(info));
    const mg_iov part = {img, sizeof(img)};
    assert_int_equal(mg_crypto_sha256(&part, 1, info.digest), MG_OK);
    info.has_digest = info.has_size = true;
    info.size = sizeof(img);
    mg_suit_img c;
    mg_suit_why why;
    /* chunked, any chunk sizes */
    assert_int_equal(mg_suit_img_begin(&c, &info), MG_OK);
    for (size_t off = 0; off < sizeof(img);) {
        size_t k = 1 + prng_next(&s) % 700;
        if (k > sizeof(img) - off)
            k = sizeof(img) - off;
        assert_int_equal(mg_suit_img_update(&c, img + off, k), MG_OK);
        off += k;
    }
    assert_int_equal(mg_suit_img_finish(&c, &why), MG_OK);
    /* one octet more: refused at once, and finish refuses */
    assert_int_equal(mg_suit_img_begin(&c, &info), MG_OK);
    assert_int_equal(mg_suit_img_update(&c, img, sizeof(img)), MG_OK);
    assert_int_equal(mg_suit_img_update(&c, img, 1), MG_ERR_LENGTH);
    assert_int_equal(mg_suit_img_finish(&c, &why), MG_ERR_LENGTH);
    assert_int_equal(why, MG_SUIT_WHY_IMAGE_LONG);
    /* short */
    assert_int_equal(mg_suit_img_begin(&c, &info), MG_OK);
    assert_int_equal(mg_suit_img_update(&c, img, sizeof(img) - 1), MG_OK);
    assert_int_equal(mg_suit_img_finish(&c, &why), MG_ERR_LENGTH);
    assert_int_equal(why, MG_SUIT_WHY_IMAGE_SHORT);
    /* every single bit flip of the image refused (a sample of the bits of a
     * 10000-octet image: every bit of the first and last 64 octets, then
     * every 7th bit) */
    for (size_t bit = 0; bit < sizeof(img) * 8; bit++) {
        if (!(bit < 512 || bit >= sizeof(img) * 8 - 512 || bit % 7 == 0))
            continue;
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(mg_suit_img_begin(&c, &info), MG_OK);
        assert_int_equal(mg_suit_img_update(&c, img, sizeof(img)), MG_OK);
        assert_int_equal(mg_suit_img_finish(&c, &why), MG_ERR_AUTH);
        assert_int_equal(why, MG_SUIT_WHY_IMAGE_DIGEST);
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* a 1 KiB image: EVERY single bit flip refused */
    info.size = 1024;
    const mg_iov small = {img, 1024};
    assert_int_equal(mg_crypto_sha256(&small, 1, info.digest), MG_OK);
    for (size_t bit = 0; bit < 1024 * 8; bit++) {
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(mg_suit_img_begin(&c, &info), MG_OK);
        assert_int_equal(mg_suit_img_update(&c, img, 1024), MG_OK);
        assert_int_equal(mg_suit_img_finish(&c, &why), MG_ERR_AUTH);
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(mg_suit_img_begin(&c, &info), MG_OK);
    assert_int_equal(mg_suit_img_update(&c, img, 1024), MG_OK);
    assert_int_equal(mg_suit_img_finish(&c, &why), MG_OK);
    /* not begun; abort is safe twice */
    memset(&c, 0, sizeof(c));
    assert_int_equal(mg_suit_img_update(&c, img, 1), MG_ERR_STATE);
    assert_int_equal(mg_suit_img_finish(&c, &why), MG_ERR_STATE);
    mg_suit_img_abort(&c);
    mg_suit_img_abort(&c);
    info.has_digest = false;
    assert_int_equal(mg_suit_img_begin(&c, &info), MG_ERR_FORMAT);
}

static void test_sha256_incremental(void **st)
{
    (void)st;
    /* FIPS 180-2 "abc" */
    uint8_t want[32], got[32];
    hx("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
    mg_sha256 h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(mg_sha256_update(&h, (const uint8_t *)"a", 1), MG_ERR_STATE);
    assert_int_equal(mg_sha256_init(&h), MG_OK);
    assert_int_equal(mg_sha256_init(&h), MG_ERR_STATE);
    assert_int_equal(mg_sha256_update(&h, (const uint8_t *)"a", 1), MG_OK);
    assert_int_equal(mg_sha256_update(&h, NULL, 0), MG_OK);
    assert_int_equal(mg_sha256_update(&h, (const uint8_t *)"bc", 2), MG_OK);
    assert_int_equal(mg_sha256_final(&h, got), MG_OK);
    assert_memory_equal(got, want, 32);
    assert_int_equal(mg_sha256_final(&h, got), MG_ERR_STATE);
    mg_sha256_abort(&h);
    assert_int_equal(mg_sha256_init(&h), MG_OK);
    mg_sha256_abort(&h);
}

/* ---- the device's update (src/device/update.c) ----------------------------- */

#define SLOT 16384u

typedef struct flash {
    uint8_t slot[2][SLOT];
    mg_upd_state saved; /* what persist() made durable */
    bool have_saved;
    int persists;
    bool persist_fail, write_fail, read_corrupt;
    char reports[8][MG_UPD_REPORT_MAX + 1];
    size_t n_reports;
    mg_err report_err;
} flash;

static mg_err f_persist(void *ctx, const mg_upd_state *st)
{
    flash *f = ctx;
    if (f->persist_fail)
        return MG_ERR_STORE;
    f->saved = *st;
    f->have_saved = true;
    f->persists++;
    return MG_OK;
}

static mg_err f_erase(void *ctx, unsigned slot, uint64_t size)
{
    flash *f = ctx;
    assert_true(slot < 2 && size <= SLOT);
    memset(f->slot[slot], 0xFF, SLOT);
    return MG_OK;
}

static mg_err f_write(void *ctx, unsigned slot, uint64_t off, const uint8_t *p, size_t n)
{
    flash *f = ctx;
    if (f->write_fail)
        return MG_ERR_STORE;
    assert_true(slot < 2 && off + n <= SLOT);
    memcpy(f->slot[slot] + off, p, n);
    return MG_OK;
}

static mg_err f_read(void *ctx, unsigned slot, uint64_t off, uint8_t *p, size_t n)
{
    flash *f = ctx;
    assert_true(slot < 2 && off + n <= SLOT);
    memcpy(p, f->slot[slot] + off, n);
    if (f->read_corrupt && off == 0)
        p[0] ^= 1;
    return MG_OK;
}

static mg_err f_report(void *ctx, const char *text, size_t n)
{
    flash *f = ctx;
    if (f->report_err != MG_OK)
        return f->report_err;
    assert_true(n <= MG_UPD_REPORT_MAX && f->n_reports < 8);
    memcpy(f->reports[f->n_reports], text, n);
    f->reports[f->n_reports++][n] = '\0';
    return MG_OK;
}

static const char *last_report(const flash *f)
{
    return f->n_reports == 0 ? "" : f->reports[f->n_reports - 1];
}

static mg_dev_trust upd_trust(void)
{
    mg_dev_trust t;
    memset(&t, 0, sizeof(t));
    t.anchor[0].kid_len = 3;
    memcpy(t.anchor[0].kid, "ops", 3);
    t.anchor[0].alg = MG_COSE_ALG_ES256;
    t.anchor[0].pub_len = 65;
    memcpy(t.anchor[0].pub, draft_pub, 65);
    return t;
}

static void upd_setup(flash *f, mg_upd *u, const mg_upd_state *saved)
{
    mg_dev_trust t = upd_trust();
    mg_upd_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    hx(VENDOR, cfg.vendor, 16);
    hx(CLASS, cfg.class_id, 16);
    cfg.slot_size = SLOT;
    cfg.trust = &t;
    cfg.factory_seq = 1;
    mg_upd_cb cb = {f, f_persist, f_erase, f_write, f_read, f_report};
    mg_upd_wipe(u); /* a running hash of an earlier life (a simulated power loss) */
    assert_int_equal(mg_upd_init(u, &cfg, &cb, saved), MG_OK);
}

/* An image of n octets (seeded) and its signed envelope with sequence seq. */
static void make_update(uint64_t seed, size_t n, uint64_t seq, const char *cls, uint8_t *img,
                        uint8_t *env, size_t *env_len)
{
    uint64_t s = seed;
    rnd(&s, img, n);
    mg_suit_params p;
    memset(&p, 0, sizeof(p));
    p.seq = seq;
    hx(VENDOR, p.vendor, 16);
    hx(cls, p.class_id, 16);
    const mg_iov part = {img, n};
    assert_int_equal(mg_crypto_sha256(&part, 1, p.digest), MG_OK);
    p.size = n;
    sign_params(&p, env, 2048, env_len);
}

static void download(mg_upd *u, const uint8_t *img, size_t n, size_t chunk)
{
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        assert_int_equal(mg_upd_write(u, img + off, k, NULL), MG_OK);
    }
}

static void test_update_flow(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    static flash f;
    static mg_upd u;
    static uint8_t img[12000], env[2048];
    size_t el = 0;
    memset(&f, 0, sizeof(f));
    upd_setup(&f, &u, NULL);
    make_update(1, sizeof(img), 10, CLASS, img, env, &el);
    const char *reason = NULL;
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_OK);
    assert_int_equal(f.saved.phase, MG_UPD_DOWNLOADING);
    assert_int_equal(f.saved.active, 0);
    download(&u, img, sizeof(img), 512);
    assert_int_equal(mg_upd_finish(&u, &reason), MG_OK);
    assert_int_equal(f.saved.phase, MG_UPD_VERIFIED);
    assert_int_equal(mg_upd_boot_slot(&f.saved), 0); /* not switched yet */
    int before = f.persists;
    assert_int_equal(mg_upd_switch(&u), MG_OK);
    assert_int_equal(f.persists, before + 1); /* the switch is one write */
    assert_int_equal(mg_upd_boot_slot(&f.saved), 1);
    assert_int_equal(f.saved.installed_seq, 10);
    assert_memory_equal(f.slot[1], img, sizeof(img));
    /* reboot into the new image: "update_ok 10", IDLE */
    mg_upd_state saved = f.saved;
    upd_setup(&f, &u, &saved);
    assert_string_equal(last_report(&f), "update_ok 10");
    assert_int_equal(f.saved.phase, MG_UPD_IDLE);
    assert_int_equal(f.saved.installed_seq, 10);
    assert_int_equal(f.saved.active, 1);
    /* the same envelope again: rollback refused, reported, nothing changes */
    mg_upd_state keep = f.saved;
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_ERR_CNTR_LOW);
    assert_string_equal(reason, "rollback");
    assert_string_equal(last_report(&f), "update_failed rollback");
    assert_memory_equal(&f.saved, &keep, sizeof(keep));
    /* an older one too */
    make_update(2, 100, 9, CLASS, img, env, &el);
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_ERR_CNTR_LOW);
    /* another class */
    make_update(3, 100, 11, "00000000000000000000000000000001", img, env, &el);
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_ERR_AUTH);
    assert_string_equal(reason, "wrong_class");
    /* too big for the slot */
    static uint8_t big[SLOT + 1];
    make_update(4, sizeof(big), 12, CLASS, big, env, &el);
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_ERR_LENGTH);
    assert_string_equal(reason, "too_big");
    /* a forged envelope (a flipped bit in the signature) */
    make_update(5, 100, 12, CLASS, img, env, &el);
    env[40] ^= 1;
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_ERR_AUTH);
    assert_memory_equal(&f.saved, &keep, sizeof(keep));
    /* switch without a verified image */
    assert_int_equal(mg_upd_switch(&u), MG_ERR_STATE);
}

static void test_update_bad_image(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    static flash f;
    static mg_upd u;
    static uint8_t img[5000], env[2048];
    size_t el = 0;
    const char *reason;
    memset(&f, 0, sizeof(f));
    upd_setup(&f, &u, NULL);
    make_update(7, sizeof(img), 2, CLASS, img, env, &el);
    /* a tampered image: one bit */
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_OK);
    img[1234] ^= 0x10;
    download(&u, img, sizeof(img), 1000);
    assert_int_equal(mg_upd_finish(&u, &reason), MG_ERR_AUTH);
    assert_string_equal(reason, "image_digest");
    assert_string_equal(last_report(&f), "update_failed image_digest");
    assert_int_equal(f.saved.phase, MG_UPD_IDLE);
    assert_int_equal(f.saved.active, 0);
    assert_int_equal(mg_upd_switch(&u), MG_ERR_STATE);
    img[1234] ^= 0x10;
    /* one octet too many */
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_OK);
    download(&u, img, sizeof(img), 1000);
    assert_int_equal(mg_upd_write(&u, img, 1, &reason), MG_ERR_LENGTH);
    assert_string_equal(reason, "image_too_long");
    assert_int_equal(f.saved.phase, MG_UPD_IDLE);
    /* short */
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_OK);
    download(&u, img, sizeof(img) - 1, 1000);
    assert_int_equal(mg_upd_finish(&u, &reason), MG_ERR_LENGTH);
    assert_string_equal(reason, "image_too_short");
    /* the read-back sees another content than was written */
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_OK);
    download(&u, img, sizeof(img), 1000);
    f.read_corrupt = true;
    assert_int_equal(mg_upd_finish(&u, &reason), MG_ERR_AUTH);
    assert_string_equal(reason, "readback");
    f.read_corrupt = false;
    /* flash write error */
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_OK);
    f.write_fail = true;
    assert_int_equal(mg_upd_write(&u, img, 10, &reason), MG_ERR_STORE);
    assert_string_equal(reason, "flash");
    f.write_fail = false;
    /* persist fails at the switch: nothing switched */
    assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_OK);
    download(&u, img, sizeof(img), 1000);
    assert_int_equal(mg_upd_finish(&u, &reason), MG_OK);
    f.persist_fail = true;
    assert_int_equal(mg_upd_switch(&u), MG_ERR_STORE);
    f.persist_fail = false;
    assert_int_equal(f.saved.active, 0);
    assert_int_equal(mg_upd_state_get(&u)->phase, MG_UPD_VERIFIED);
    assert_int_equal(mg_upd_switch(&u), MG_OK);
    assert_int_equal(f.saved.active, 1);
    /* the report finds no link after the reboot: retried by resume */
    mg_upd_state saved = f.saved;
    f.report_err = MG_ERR_STATE;
    size_t nr = f.n_reports;
    upd_setup(&f, &u, &saved);
    assert_int_equal(f.n_reports, nr);
    assert_int_equal(f.saved.phase, MG_UPD_SWITCHING);
    assert_int_equal(mg_upd_resume(&u), MG_ERR_STATE);
    f.report_err = MG_OK;
    assert_int_equal(mg_upd_resume(&u), MG_OK);
    assert_string_equal(last_report(&f), "update_ok 2");
    assert_int_equal(f.saved.phase, MG_UPD_IDLE);
}

/* Power loss at every step: the durable state always boots a complete image
 * (the old one until the switch write, the new one after it). */
static void test_update_power_loss(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    static flash f;
    static mg_upd u, u2;
    static uint8_t old_img[3000], img[3000], env[2048];
    size_t el = 0;
    uint64_t s = 5;
    const char *reason;
    rnd(&s, old_img, sizeof(old_img));
    make_update(8, sizeof(img), 3, CLASS, img, env, &el);
    /* steps: 0 begin, 1..6 chunks of 500, 7 finish, 8 switch */
    for (int crash_after = 0; crash_after <= 8; crash_after++) {
        memset(&f, 0, sizeof(f));
        memcpy(f.slot[0], old_img, sizeof(old_img));
        upd_setup(&f, &u, NULL);
        f.saved = *mg_upd_state_get(&u);
        for (int step = 0; step <= crash_after; step++) {
            if (step == 0)
                assert_int_equal(mg_upd_begin(&u, env, el, &reason), MG_OK);
            else if (step <= 6)
                assert_int_equal(mg_upd_write(&u, img + (step - 1) * 500, 500, &reason), MG_OK);
            else if (step == 7)
                assert_int_equal(mg_upd_finish(&u, &reason), MG_OK);
            else
                assert_int_equal(mg_upd_switch(&u), MG_OK);
        }
        /* power lost here: only f.saved and the flash survive */
        mg_upd_state durable = f.saved;
        unsigned boot = mg_upd_boot_slot(&durable);
        if (crash_after < 8) {
            assert_int_equal(boot, 0);
            assert_memory_equal(f.slot[0], old_img, sizeof(old_img));
        } else {
            assert_int_equal(boot, 1);
            assert_memory_equal(f.slot[1], img, sizeof(img));
        }
        /* the encoded state survives the same way */
        uint8_t enc[MG_UPD_STATE_MAX];
        size_t enl = 0;
        mg_upd_state back;
        assert_int_equal(mg_upd_state_encode(&durable, enc, sizeof(enc), &enl), MG_OK);
        assert_int_equal(mg_upd_state_decode(enc, enl, &back), MG_OK);
        assert_memory_equal(&back, &durable, sizeof(back));
        upd_setup(&f, &u2, &back);
        const mg_upd_state *now = mg_upd_state_get(&u2);
        if (crash_after < 7) { /* DOWNLOADING: abandoned */
            assert_int_equal(now->phase, MG_UPD_IDLE);
            assert_string_equal(last_report(&f), "update_failed interrupted");
            assert_int_equal(now->installed_seq, 1);
        } else if (crash_after == 7) { /* VERIFIED: still ready to switch */
            assert_int_equal(now->phase, MG_UPD_VERIFIED);
            assert_int_equal(mg_upd_switch(&u2), MG_OK);
            assert_int_equal(mg_upd_boot_slot(&f.saved), 1);
        } else {
            assert_int_equal(now->phase, MG_UPD_IDLE);
            assert_int_equal(now->installed_seq, 3);
            assert_string_equal(last_report(&f), "update_ok 3");
        }
    }
}

static void test_update_state_codec(void **st)
{
    (void)st;
    mg_upd_state s, b;
    memset(&s, 0, sizeof(s));
    s.installed_seq = 5;
    s.active = 1;
    s.phase = MG_UPD_DOWNLOADING;
    s.target_seq = 6;
    s.target_size = 1000;
    memset(s.target_digest, 0xAB, 32);
    uint8_t enc[MG_UPD_STATE_MAX];
    size_t n = 0;
    assert_int_equal(mg_upd_state_encode(&s, enc, sizeof(enc), &n), MG_OK);
    assert_int_equal(n, MG_UPD_STATE_MAX);
    assert_int_equal(mg_upd_state_decode(enc, n, &b), MG_OK);
    assert_memory_equal(&s, &b, sizeof(s));
    for (size_t bit = 0; bit < n * 8; bit++) {
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(mg_upd_state_decode(enc, n, &b), MG_OK);
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(mg_upd_state_decode(enc, n - 1, &b), MG_ERR_LENGTH);
    s.target_seq = 5; /* a target not above the installed one is not a state */
    assert_int_equal(mg_upd_state_encode(&s, enc, sizeof(enc), &n), MG_ERR_ARG);
}

/* ---- tamper response (mg_dev_tamper) ---------------------------------------- */

typedef struct tdev {
    mg_dev_state saved;
    int persists;
    size_t sent_n;
    uint8_t sent[4][MG_SMS_UD_MAX];
    size_t sent_len[4];
    mg_err send_err;
    int order; /* 1: sent before the wipe was persisted */
} tdev;

static mg_err t_persist(void *ctx, const mg_dev_state *st)
{
    tdev *t = ctx;
    t->saved = *st;
    t->persists++;
    if (mg_dev_state_is_wiped(st) && t->sent_n > 0)
        t->order = 1;
    return MG_OK;
}

static mg_err t_send(void *ctx, const uint8_t *ud, size_t len)
{
    tdev *t = ctx;
    if (t->send_err != MG_OK)
        return t->send_err;
    assert_true(t->sent_n < 4 && len <= MG_SMS_UD_MAX);
    memcpy(t->sent[t->sent_n], ud, len);
    t->sent_len[t->sent_n++] = len;
    return MG_OK;
}

static uint8_t t_execute(void *ctx, const uint8_t *cmd, size_t len, uint64_t cntr)
{
    (void)ctx;
    (void)cmd;
    (void)len;
    (void)cntr;
    return 0;
}

static const uint8_t tkic[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t tkid[16] = {31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46};
static const uint8_t ttar[3] = {0x4D, 0x47, 0x01};

static void tdev_init(mg_dev *d, tdev *t)
{
    mg_dev_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.tar, ttar, 3);
    cfg.alg = MG_ALG_AES;
    cfg.key_version = 1;
    cfg.kic = tkic;
    cfg.kid = tkid;
    cfg.key_len = 16;
    cfg.name = "meter-1";
    mg_dev_cb cb = {t, t_persist, t_send, t_execute, NULL, NULL, NULL};
    assert_int_equal(mg_dev_init(d, &cfg, &cb, NULL), MG_OK);
}

/* The backend opens one single-SMS telemetry with the device's keys. */
static mg_err backend_open(const uint8_t *ud, size_t len, uint64_t last, char *text, size_t cap)
{
    mg_key kic, kid;
    mg_ota_keys k;
    assert_int_equal(mg_key_init(&kic, MG_ALG_AES, tkic, 16), MG_OK);
    assert_int_equal(mg_key_init(&kid, MG_ALG_AES, tkid, 16), MG_OK);
    mg_sms_keys(&k, &kic, &kid, 1);
    mg_sms_in in = {true, 0x00, 0x04, true, ud, len, NULL};
    mg_sms_peek pk;
    uint8_t pkt[MG_SMS_PKT_MAX];
    assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_OK);
    assert_int_equal(pk.kind, MG_SMS_COMMAND);
    memcpy(pkt, pk.pkt, pk.pkt_len);
    mg_ota_cmd cmd;
    mg_err e = mg_sms_open(MG_SMS_MO, ttar, pkt, pk.pkt_len, &k, last, &cmd);
    if (e == MG_OK)
        e = mg_ota_cmd_accept(&cmd, cmd.hdr.cntr);
    if (e == MG_OK) {
        assert_true(cmd.data_len < cap);
        memcpy(text, cmd.data, cmd.data_len);
        text[cmd.data_len] = '\0';
    }
    mg_key_clear(&kic);
    mg_key_clear(&kid);
    return e;
}

static void test_tamper(void **st)
{
    (void)st;
    static mg_dev d;
    static tdev t;
    memset(&t, 0, sizeof(t));
    tdev_init(&d, &t);
    /* one ordinary telemetry first: the alarm rides the next counter */
    uint64_t c1 = 0;
    assert_int_equal(mg_dev_telemetry(&d, (const uint8_t *)"temp=20", 7, false, &c1), MG_OK);
    assert_false(mg_dev_tampered(&d));
    mg_err alarm = MG_ERR_ARG;
    assert_int_equal(mg_dev_tamper(&d, "lid_open", &alarm), MG_OK);
    assert_int_equal(alarm, MG_OK);
    /* 1. one alarm, sent BEFORE the wipe was persisted, authentic for the backend */
    assert_int_equal(t.sent_n, 2);
    assert_int_equal(t.order, 1);
    char text[200];
    assert_int_equal(backend_open(t.sent[1], t.sent_len[1], c1, text, sizeof(text)), MG_OK);
    assert_string_equal(text, "tamper lid_open");
    /* a replay of the alarm is refused like any replay (counter not higher) */
    assert_int_equal(backend_open(t.sent[1], t.sent_len[1], c1 + 1, text, sizeof(text)),
                     MG_ERR_CNTR_LOW);
    /* 2. the durable state holds no key, no counter */
    assert_true(mg_dev_state_is_wiped(&t.saved));
    /* ... and the device in memory neither */
    const uint8_t *p = (const uint8_t *)mg_dev_state_get(&d);
    uint8_t acc = 0;
    for (size_t i = 0; i < sizeof(mg_dev_state); i++)
        acc |= p[i];
    assert_int_equal(acc, 0);
    /* 3. it refuses to operate */
    assert_true(mg_dev_tampered(&d));
    size_t sent = t.sent_n;
    int persists = t.persists;
    assert_int_equal(mg_dev_telemetry(&d, (const uint8_t *)"x", 1, false, NULL), MG_ERR_STATE);
    mg_err err = MG_OK;
    mg_sms_in in = {true, 0x00, 0x04, true, t.sent[0], t.sent_len[0], NULL};
    assert_int_equal(mg_dev_receive(&d, &in, &err), MG_DEV_REFUSED);
    assert_int_equal(err, MG_ERR_STATE);
    assert_int_equal(mg_dev_resume(&d), MG_ERR_STATE);
    assert_int_equal(mg_dev_tamper(&d, "again", NULL), MG_ERR_STATE);
    assert_int_equal(t.sent_n, sent);
    assert_int_equal(t.persists, persists);
    /* the wiped state does not restore a device: provisioning anew is needed */
    mg_dev_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.tar, ttar, 3);
    cfg.alg = MG_ALG_AES;
    cfg.name = "meter-1";
    mg_dev_cb cb = {&t, t_persist, t_send, t_execute, NULL, NULL, NULL};
    static mg_dev d2;
    assert_int_equal(mg_dev_init(&d2, &cfg, &cb, &t.saved), MG_ERR_ARG);
    tdev_init(&d2, &t); /* re-provisioned */
    assert_false(mg_dev_tampered(&d2));
    mg_dev_wipe(&d2);
}

static void test_tamper_no_link(void **st)
{
    (void)st;
    static mg_dev d;
    static tdev t;
    memset(&t, 0, sizeof(t));
    tdev_init(&d, &t);
    t.send_err = MG_ERR_STATE; /* jammed radio: the wipe happens anyway */
    mg_err alarm = MG_OK;
    assert_int_equal(mg_dev_tamper(&d, "bad detail with spaces", &alarm), MG_OK);
    assert_int_equal(alarm, MG_ERR_STATE);
    assert_true(mg_dev_state_is_wiped(&t.saved));
    assert_true(mg_dev_tampered(&d));
    /* the detail fell back to "enclosure" */
    memset(&t, 0, sizeof(t));
    tdev_init(&d, &t);
    assert_int_equal(mg_dev_tamper(&d, NULL, &alarm), MG_OK);
    char text[200];
    assert_int_equal(backend_open(t.sent[0], t.sent_len[0], 0, text, sizeof(text)), MG_OK);
    assert_string_equal(text, "tamper enclosure");
}

/* The update's reports ride the device's secured telemetry. */
static void test_update_report_over_sms(void **st)
{
    (void)st;
    static mg_dev d;
    static tdev t;
    memset(&t, 0, sizeof(t));
    tdev_init(&d, &t);
    assert_int_equal(mg_dev_update_report(&d, "update_ok 7", 11), MG_OK);
    char text[200];
    assert_int_equal(backend_open(t.sent[0], t.sent_len[0], 0, text, sizeof(text)), MG_OK);
    assert_string_equal(text, "update_ok 7");
    mg_dev_wipe(&d);
}

/* ---- a configuration update over secured SMS (mg_dev_cfg.upd) --------------- */

static mg_dev *sms_dev; /* the device whose telemetry carries the updater's reports */

static mg_err f_report_sms(void *ctx, const char *text, size_t n)
{
    assert_int_equal(f_report(ctx, text, n), MG_OK);
    return mg_dev_update_report(sms_dev, text, n);
}

/* The backend seals data as one command (MT, counter cntr, PoR asked) and
 * the device receives its parts; the last verdict. */
static mg_dev_verdict backend_cmd(mg_dev *d, uint64_t cntr, const uint8_t *data, size_t n,
                                  mg_err *err)
{
    mg_key kic, kid;
    mg_ota_keys k;
    static uint8_t pkt[MG_SMS_PKT_MAX];
    size_t pl = 0, parts = 0;
    assert_int_equal(mg_key_init(&kic, MG_ALG_AES, tkic, 16), MG_OK);
    assert_int_equal(mg_key_init(&kid, MG_ALG_AES, tkid, 16), MG_OK);
    mg_sms_keys(&k, &kic, &kid, 1);
    assert_int_equal(mg_sms_seal(MG_SMS_MT, ttar, &k, cntr, true, data, n, pkt, sizeof(pkt), &pl),
                     MG_OK);
    mg_key_clear(&kic);
    mg_key_clear(&kid);
    assert_int_equal(mg_sms_parts(pl, &parts), MG_OK);
    mg_dev_verdict v = MG_DEV_REFUSED;
    for (size_t i = 1; i <= parts; i++) {
        uint8_t ud[MG_SMS_UD_MAX];
        size_t ul = 0;
        assert_int_equal(mg_sms_part(pkt, pl, (uint8_t)cntr, i, ud, sizeof(ud), &ul), MG_OK);
        mg_sms_in in = {true, 0x00, 0x04, true, ud, ul, NULL};
        v = mg_dev_receive(d, &in, err);
    }
    return v;
}

/* A signed envelope with cfg[0..n) as the integrated payload "#config". */
static void make_config(const char *cfg, uint64_t seq, uint8_t *env, size_t cap, size_t *len)
{
    static uint8_t e0[2048];
    size_t l0 = 0, n = strlen(cfg);
    mg_suit_params p;
    memset(&p, 0, sizeof(p));
    p.seq = seq;
    hx(VENDOR, p.vendor, 16);
    hx(CLASS, p.class_id, 16);
    const mg_iov part = {(const uint8_t *)cfg, n};
    assert_int_equal(mg_crypto_sha256(&part, 1, p.digest), MG_OK);
    p.size = n;
    p.uri = "#config";
    p.uri_len = 7;
    sign_params(&p, e0, sizeof(e0), &l0);
    assert_int_equal(mg_suit_envelope_integrate(e0, l0, "#config", 7, (const uint8_t *)cfg, n, env,
                                                cap, len),
                     MG_OK);
    /* the same key twice is refused by the builder */
    size_t l2 = 0;
    assert_int_equal(mg_suit_envelope_integrate(env, *len, "#config", 7, (const uint8_t *)"x", 1, e0,
                                                sizeof(e0), &l2),
                     MG_ERR_ARG);
}

static void test_integrated_payload(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    static uint8_t env[2048];
    size_t el = 0;
    make_config("interval=60\n", 3, env, sizeof(env), &el);
    assert_true(mg_suit_is_envelope(env, el));
    assert_false(mg_suit_is_envelope((const uint8_t *)"\xD2\x84", 2)); /* COSE_Sign1 */
    assert_false(mg_suit_is_envelope((const uint8_t *)"reboot", 6));
    mg_suit_info info;
    assert_int_equal(mg_suit_check(env, el, &anchor, 1, &info, NULL), MG_OK);
    assert_true(info.has_uri);
    assert_int_equal(info.uri_len, 7);
    const uint8_t *p = NULL;
    size_t n = 0;
    assert_int_equal(mg_suit_payload(env, el, info.uri, info.uri_len, &p, &n), MG_OK);
    assert_int_equal(n, 12);
    assert_memory_equal(p, "interval=60\n", 12);
    assert_int_equal(mg_suit_payload(env, el, "#other", 6, &p, &n), MG_ERR_KEY);
    assert_null(p);
    assert_int_equal(mg_suit_payload(env, el, NULL, 0, &p, &n), MG_OK); /* the one "#..." */
    assert_int_equal(n, 12);
    /* a truncated envelope */
    assert_int_not_equal(mg_suit_payload(env, el - 1, "#config", 7, &p, &n), MG_OK);
}

static void test_update_over_sms(void **st)
{
    (void)st;
    if (!can_sign())
        skip();
    static flash f;
    static mg_upd u;
    static mg_dev d;
    static tdev t;
    static uint8_t env[MG_SMS_DATA_MAX + 64];
    size_t el = 0;
    memset(&f, 0, sizeof(f));
    memset(&t, 0, sizeof(t));
    sms_dev = &d;
    mg_dev_trust tr = upd_trust();
    mg_upd_cfg ucfg;
    memset(&ucfg, 0, sizeof(ucfg));
    hx(VENDOR, ucfg.vendor, 16);
    hx(CLASS, ucfg.class_id, 16);
    ucfg.slot_size = 256;
    ucfg.trust = &tr;
    ucfg.factory_seq = 1;
    mg_upd_cb ucb = {&f, f_persist, f_erase, f_write, f_read, f_report_sms};
    mg_upd_wipe(&u);
    assert_int_equal(mg_upd_init(&u, &ucfg, &ucb, NULL), MG_OK);
    mg_dev_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.tar, ttar, 3);
    cfg.alg = MG_ALG_AES;
    cfg.key_version = 1;
    cfg.kic = tkic;
    cfg.kid = tkid;
    cfg.key_len = 16;
    cfg.name = "meter-1";
    cfg.upd = &u;
    mg_dev_cb cb = {&t, t_persist, t_send, t_execute, NULL, NULL, NULL};
    assert_int_equal(mg_dev_init(&d, &cfg, &cb, NULL), MG_OK);
    static const char conf[] = "interval=60\nserver=10.0.0.1\n";
    make_config(conf, 10, env, sizeof(env), &el);
    assert_true(el <= MG_SMS_DATA_MAX);
    mg_err err = MG_ERR_ARG;
    /* 1. applied: slot 1 holds it, switched, "update_ok 10" as authentic telemetry, PoR */
    assert_int_equal(backend_cmd(&d, 1, env, el, &err), MG_DEV_DONE);
    assert_int_equal(err, MG_OK);
    assert_true(mg_dev_pending(&d)); /* stored with its counter; mg_dev_resume takes it up */
    assert_int_equal(t.sent_n, 0);
    assert_int_equal(mg_dev_resume(&d), MG_OK);
    assert_int_equal(mg_upd_boot_slot(&f.saved), 1);
    assert_int_equal(f.saved.installed_seq, 10);
    assert_int_equal(f.saved.phase, MG_UPD_IDLE);
    assert_memory_equal(f.slot[1], conf, sizeof(conf) - 1);
    assert_false(mg_dev_pending(&d));
    char text[200];
    assert_int_equal(t.sent_n, 2); /* the report, then the PoR */
    assert_int_equal(backend_open(t.sent[0], t.sent_len[0], 0, text, sizeof(text)), MG_OK);
    assert_string_equal(text, "update_ok 10");
    /* 2. the same SMS again: refused by the counter, nothing sent */
    t.sent_n = 0;
    assert_int_equal(backend_cmd(&d, 1, env, el, &err), MG_DEV_REFUSED);
    assert_int_equal(err, MG_ERR_CNTR_LOW);
    assert_int_equal(t.sent_n, 0);
    /* 3. the same envelope on a new counter: a rollback, reported */
    assert_int_equal(backend_cmd(&d, 2, env, el, &err), MG_DEV_DONE);
    assert_int_equal(mg_dev_resume(&d), MG_OK);
    assert_int_equal(t.sent_n, 2);
    assert_int_equal(backend_open(t.sent[0], t.sent_len[0], 1, text, sizeof(text)), MG_OK);
    assert_string_equal(text, "update_failed rollback");
    assert_int_equal(f.saved.installed_seq, 10);
    /* 4. a flipped payload bit: the digest refuses it, the active slot stays */
    t.sent_n = 0;
    make_config("interval=30\n", 11, env, sizeof(env), &el);
    env[el - 2] ^= 0x01;
    assert_int_equal(backend_cmd(&d, 3, env, el, &err), MG_DEV_DONE);
    assert_int_equal(mg_dev_resume(&d), MG_OK);
    assert_int_equal(backend_open(t.sent[0], t.sent_len[0], 2, text, sizeof(text)), MG_OK);
    assert_string_equal(text, "update_failed image_digest");
    assert_int_equal(mg_upd_boot_slot(&f.saved), 1);
    assert_int_equal(f.saved.installed_seq, 10);
    /* 5. a flipped manifest bit (inside the signed part) */
    t.sent_n = 0;
    make_config("interval=30\n", 11, env, sizeof(env), &el);
    env[el / 2] ^= 0x40;
    assert_int_equal(backend_cmd(&d, 4, env, el, &err), MG_DEV_DONE);
    assert_int_equal(mg_dev_resume(&d), MG_OK);
    assert_int_equal(backend_open(t.sent[0], t.sent_len[0], 3, text, sizeof(text)), MG_OK);
    assert_true(strncmp(text, "update_failed ", 14) == 0);
    assert_int_equal(f.saved.installed_seq, 10);
    /* 6. the next one applies, into the other slot */
    t.sent_n = 0;
    make_config("interval=30\n", 11, env, sizeof(env), &el);
    assert_int_equal(backend_cmd(&d, 5, env, el, &err), MG_DEV_DONE);
    assert_int_equal(mg_dev_resume(&d), MG_OK);
    assert_int_equal(backend_open(t.sent[0], t.sent_len[0], 4, text, sizeof(text)), MG_OK);
    assert_string_equal(text, "update_ok 11");
    assert_int_equal(mg_upd_boot_slot(&f.saved), 0);
    assert_memory_equal(f.slot[0], "interval=30\n", 12);
    /* 7. no link after the switch (report and PoR wait), then a restart: the
     *    update is not run again (no "rollback"), only its PoR is sent */
    make_config("interval=15\n", 12, env, sizeof(env), &el);
    assert_int_equal(backend_cmd(&d, 6, env, el, &err), MG_DEV_DONE);
    t.sent_n = 0;
    t.send_err = MG_ERR_STATE;
    size_t reports = f.n_reports;
    assert_int_equal(mg_dev_resume(&d), MG_ERR_STATE);
    assert_int_equal(f.saved.installed_seq, 12);
    assert_int_equal(t.saved.pending.kind, MG_DEV_PEND_DONE);
    static mg_dev_state saved;
    saved = t.saved;
    mg_dev_wipe(&d);
    t.send_err = MG_OK;
    assert_int_equal(mg_dev_init(&d, &cfg, &cb, &saved), MG_OK);
    assert_int_equal(mg_dev_resume(&d), MG_OK);
    assert_int_equal(t.sent_n, 1); /* the PoR only */
    assert_false(mg_dev_pending(&d));
    assert_int_equal(f.n_reports, reports + 1); /* "update_ok 12" tried once, no rollback */
    assert_int_equal(mg_upd_resume(&u), MG_OK);   /* the report that found no link */
    assert_string_equal(last_report(&f), "update_ok 12");
    assert_int_equal(backend_open(t.sent[1], t.sent_len[1], 0, text, sizeof(text)), MG_OK);
    assert_string_equal(text, "update_ok 12");
    mg_dev_wipe(&d);
    mg_upd_wipe(&u);
    /* a device without an updater refuses an envelope (authentic, not text) */
    memset(&t, 0, sizeof(t));
    tdev_init(&d, &t);
    assert_int_equal(backend_cmd(&d, 1, env, el, &err), MG_DEV_DONE);
    assert_int_equal(err, MG_ERR_FORMAT);
    mg_dev_wipe(&d);
}

#define UPDATE_TESTS                                                                               \
    cmocka_unit_test(test_update_flow), cmocka_unit_test(test_update_bad_image),                  \
        cmocka_unit_test(test_update_power_loss), cmocka_unit_test(test_update_state_codec),       \
        cmocka_unit_test(test_tamper), cmocka_unit_test(test_tamper_no_link),                      \
        cmocka_unit_test(test_update_report_over_sms), cmocka_unit_test(test_integrated_payload), \
        cmocka_unit_test(test_update_over_sms),

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_incremental),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_vectors_bitflips),
        cmocka_unit_test(test_wrong_key_and_limits),
        cmocka_unit_test(test_roundtrip_property),
        cmocka_unit_test(test_tbs_assemble),
        cmocka_unit_test(test_applies),
        cmocka_unit_test(test_image_stream),
        UPDATE_TESTS
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
