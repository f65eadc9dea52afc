/*
 * `m2mguard update create|inspect|verify|push` (issue 14, docs/update.md):
 * SUIT envelopes (include/m2mguard/suit.h; the core builds and verifies
 * them) on the command line, and their delivery to devices over MQTT in
 * chunks (the profile's down/update and up/update, mqtt_profile.h).
 *
 * Signing keys by reference (keyref.h: a 0600 PEM file or a pkcs11: URI, the
 * key signs inside the token). Vendor and class identifiers are UUIDs; a
 * NAME is turned into the name-based UUID the SUIT manifest draft
 * recommends: vendor = UUID5(DNS namespace, NAME), class = UUID5(vendor,
 * NAME) (RFC 9562 5.5, SHA-1).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "cli.h"
#include "commands.h"
#include "workdir.h"
#include "m2mguard/cbor.h"
#include "m2mguard/crypto.h"
#include "m2mguard/keyref.h"
#include "m2mguard/mqtt_profile.h"
#include "m2mguard/sms.h"
#include "m2mguard/store.h"
#include "m2mguard/suit.h"

#define IMAGE_MAX ((size_t)64 * 1024 * 1024) /* largest image the CLI handles */
#define ANCHORS_MAX 8
#define PUSH_DEVICES_MAX 256

/* ---- small helpers ---------------------------------------------------------- */

/* Reads a whole file (at most max octets) into a new buffer. */
static int read_all(const char *what, const char *path, size_t max, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s: %s\n", what, path, strerror(errno));
        return MG_EXIT_INPUT;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (uint64_t)st.st_size > max) {
        fprintf(stderr, "%s: %s: not a regular file of at most %zu octets\n", what, path, max);
        fclose(f);
        return MG_EXIT_INPUT;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n > 0 ? n : 1);
    if (b == NULL) {
        fclose(f);
        fprintf(stderr, "%s: out of memory\n", what);
        return MG_EXIT_INTERNAL;
    }
    size_t got = fread(b, 1, n, f);
    bool bad = got != n || ferror(f) || fgetc(f) != EOF;
    fclose(f);
    if (bad) {
        free(b);
        fprintf(stderr, "%s: %s: read error (file changed?)\n", what, path);
        return MG_EXIT_INPUT;
    }
    *out = b;
    *len = n;
    return MG_EXIT_OK;
}

static void hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

static void uuid_print(FILE *f, const uint8_t u[16])
{
    for (size_t i = 0; i < 16; i++)
        fprintf(f, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", u[i]);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "8-4-4-4-12" hex digits. */
static bool uuid_parse(const char *s, uint8_t u[16])
{
    if (strlen(s) != 36)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
            continue;
        }
        int h = hexval(s[i]), l = hexval(s[i + 1]);
        if (h < 0 || l < 0)
            return false;
        u[k++] = (uint8_t)(h * 16 + l);
        i += 2;
    }
    return k == 16;
}

/* RFC 9562 5.5: SHA-1(namespace || name), version 5, variant 10. */
static bool uuid5(const uint8_t ns[16], const char *name, uint8_t out[16])
{
    uint8_t d[SHA_DIGEST_LENGTH];
    unsigned int dl = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 &&
              EVP_DigestUpdate(c, ns, 16) == 1 && EVP_DigestUpdate(c, name, strlen(name)) == 1 &&
              EVP_DigestFinal_ex(c, d, &dl) == 1 && dl == SHA_DIGEST_LENGTH;
    EVP_MD_CTX_free(c);
    if (!ok)
        return false;
    memcpy(out, d, 16);
    out[6] = (uint8_t)((out[6] & 0x0Fu) | 0x50u);
    out[8] = (uint8_t)((out[8] & 0x3Fu) | 0x80u);
    return true;
}

/* NameSpace_DNS of RFC 9562 (6ba7b810-9dad-11d1-80b4-00c04fd430c8). */
static const uint8_t NS_DNS[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};

static bool id_arg(const char *s, const uint8_t *ns, uint8_t out[16])
{
    if (uuid_parse(s, out))
        return true;
    if (*s == '\0' || strlen(s) > 255)
        return false;
    return uuid5(ns != NULL ? ns : NS_DNS, s, out);
}

/* SHA-256 of a whole buffer through the crypto interface. */
static bool sha256_buf(const uint8_t *p, size_t n, uint8_t out[MG_SHA256_LEN])
{
    mg_iov v = {p, n};
    return mg_crypto_sha256(&v, 1, out) == MG_OK;
}

/* The manifest of an envelope WITHOUT verifying its signature: the manifest
 * bstr is re-wrapped with a fresh signature of an ephemeral key and checked
 * with that key, so the ONE parser of the core (mg_suit_check) reads it.
 * info's pointers point into *scratch (caller frees). */
static int unverified_info(const uint8_t *env, size_t len, mg_suit_info *info, uint8_t **scratch)
{
    *scratch = NULL;
    /* locate member 3 (the manifest bstr) of the tag-107 map */
    mg_cbor_reader r;
    mg_cbor_item it;
    mg_cbor_reader_init(&r, env, len, 0);
    const uint8_t *m = NULL;
    size_t mlen = 0;
    if (mg_cbor_read(&r, &it) != MG_OK || it.type != MG_CBOR_TAG || it.val != MG_SUIT_TAG_ENVELOPE ||
        mg_cbor_read(&r, &it) != MG_OK || it.type != MG_CBOR_MAP)
        return MG_EXIT_INPUT;
    uint64_t pairs = it.val;
    for (uint64_t i = 0; i < pairs; i++) {
        mg_cbor_item k;
        if (mg_cbor_read(&r, &k) != MG_OK) /* an integer, or "#name" of an integrated payload */
            return MG_EXIT_INPUT;
        if (k.type == MG_CBOR_UINT && k.val == MG_SUIT_ENV_MANIFEST) {
            if (mg_cbor_read(&r, &it) != MG_OK || it.type != MG_CBOR_BSTR)
                return MG_EXIT_INPUT;
            m = it.p;
            mlen = (size_t)it.val;
        } else {
            size_t a, b;
            if (mg_cbor_skip(&r, &a, &b) != MG_OK)
                return MG_EXIT_INPUT;
        }
    }
    if (m == NULL)
        return MG_EXIT_INPUT;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    int64_t alg = 0;
    uint8_t pub[MG_SIGNER_PUB_MAX], sig[MG_SIG_LEN];
    size_t publ = 0, tl = 0, n = 0;
    size_t cap = MG_SUIT_ENVELOPE_MAX + 256, tcap = mlen + 256;
    uint8_t *buf = malloc(cap), *tbs = malloc(tcap);
    int rc = MG_EXIT_INTERNAL;
    if (k != NULL && buf != NULL && tbs != NULL && mg_cli_signer_pub(k, &alg, pub, &publ) &&
        mg_suit_tbs(alg, NULL, 0, m, mlen, tbs, tcap, &tl) == MG_OK &&
        mg_cli_sign_raw(k, alg, tbs, tl, sig) &&
        mg_suit_envelope_assemble(m, mlen, alg, NULL, 0, sig, buf, cap, &n) == MG_OK) {
        mg_suit_anchor a = {NULL, 0, alg, pub, publ};
        mg_suit_why why = MG_SUIT_OK;
        if (mg_suit_check(buf, n, &a, 1, info, &why) == MG_OK) {
            rc = MG_EXIT_OK;
            *scratch = buf;
            buf = NULL;
        } else {
            fprintf(stderr, "update: manifest refused: %s\n", mg_suit_why_str(why));
            rc = MG_EXIT_INPUT;
        }
    }
    free(buf);
    free(tbs);
    EVP_PKEY_free(k);
    return rc;
}

static void print_info(const mg_suit_info *in, bool json, const char *verified)
{
    if (json) {
        printf("{\"seq\":%" PRIu64 ",\"vendor\":\"", in->seq);
        uuid_print(stdout, in->vendor);
        printf("\",\"class\":\"");
        uuid_print(stdout, in->class_id);
        printf("\",\"image_digest\":\"");
        hex(stdout, in->digest, sizeof(in->digest));
        printf("\",\"image_size\":%" PRIu64 ",\"min_version\":", in->size);
        if (in->has_min_seq)
            printf("%" PRIu64, in->min_seq);
        else
            printf("null");
        printf(",\"manifest_digest\":\"");
        hex(stdout, in->manifest_digest, sizeof(in->manifest_digest));
        printf("\",\"components\":%zu,\"signature\":\"%s\"}\n", in->n_components, verified);
        return;
    }
    printf("sequence: %" PRIu64 "\nvendor: ", in->seq);
    uuid_print(stdout, in->vendor);
    printf("%s\nclass: ", in->has_vendor && in->cond_vendor ? "" : " (not checked by a condition)");
    uuid_print(stdout, in->class_id);
    printf("%s\nimage-digest: sha-256 ", in->has_class && in->cond_class ? "" : " (not checked by a condition)");
    hex(stdout, in->digest, sizeof(in->digest));
    printf("\nimage-size: %" PRIu64 "\n", in->size);
    if (in->has_min_seq)
        printf("min-version: %" PRIu64 "\n", in->min_seq);
    printf("components: %zu\nmanifest-digest: sha-256 ", in->n_components);
    hex(stdout, in->manifest_digest, sizeof(in->manifest_digest));
    printf("\nsignature: %s\n", verified);
}

/* ---- create ----------------------------------------------------------------------- */

static const char create_usage[] =
    "usage: m2mguard update create --image FILE --vendor UUID|NAME --class UUID|NAME --seq N\n"
    "       [--min-version N] --key KEYREF [--kid KID] [--uri URI] -o ENVELOPE\n"
    "\n"
    "Writes a signed SUIT envelope (draft-ietf-suit-manifest: tag 107, a\n"
    "COSE_Sign1 over the SHA-256 SUIT_Digest of the manifest; docs/update.md) for\n"
    "FILE: one component, vendor and class identifiers checked by conditions,\n"
    "image digest (SHA-256) and size, condition-image-match, sequence number N.\n"
    "\n"
    "  --image FILE       the image (at most 64 MiB)\n"
    "  --vendor UUID|NAME vendor identifier; a NAME gives UUID5(DNS namespace, NAME)\n"
    "  --class UUID|NAME  class identifier; a NAME gives UUID5(vendor, NAME)\n"
    "  --seq N            manifest sequence number, 1..2^63-1 (anti-rollback: a\n"
    "                     device installs only a number above its installed one)\n"
    "  --min-version N    the device must have at least N installed\n"
    "                     (suit-condition-version greater-equal [N])\n"
    "  --key KEYREF       signing key: PEM file (0600) or pkcs11: URI; EC P-256\n"
    "                     signs ES256, Ed25519 signs EdDSA\n"
    "  --kid KID          key id in the protected header (1..32 printable)\n"
    "  --uri URI          where the device fetches the image (install sequence:\n"
    "                     override uri, fetch, condition-image-match); \"#NAME\"\n"
    "                     names an integrated payload: `update push --sms` puts\n"
    "                     the image into the envelope under that key\n"
    "  -o, --out FILE     the envelope (must not exist; mode 0644)\n"
    "\n"
    "Exit codes: 0 written, 2 bad command line, 3 unreadable image or key,\n"
    "4 crypto failure.\n";

static int upd_create(int argc, char **argv)
{
    static const struct option lo[] = {
        {"image", required_argument, NULL, 'i'},   {"vendor", required_argument, NULL, 'V'},
        {"class", required_argument, NULL, 'c'},   {"seq", required_argument, NULL, 's'},
        {"min-version", required_argument, NULL, 'm'}, {"key", required_argument, NULL, 'k'},
        {"kid", required_argument, NULL, 'K'},     {"out", required_argument, NULL, 'o'},
        {"uri", required_argument, NULL, 'u'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *image = NULL, *vendor = NULL, *cls = NULL, *key = NULL, *kid = NULL, *out = NULL;
    const char *uri = NULL;
    const char *p = "m2mguard update create";
    uint64_t seq = 0, minv = 0;
    bool have_min = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", lo, NULL)) != -1) {
        switch (c) {
        case 'i': image = optarg; break;
        case 'V': vendor = optarg; break;
        case 'c': cls = optarg; break;
        case 'k': key = optarg; break;
        case 'K': kid = optarg; break;
        case 'o': out = optarg; break;
        case 'u': uri = optarg; break;
        case 's':
            if (!mg_cli_parse_u64(optarg, (uint64_t)INT64_MAX, &seq) || seq == 0)
                return mg_cli_usage_error(p, "--seq: 1..2^63-1");
            break;
        case 'm':
            if (!mg_cli_parse_u64(optarg, (uint64_t)INT64_MAX, &minv))
                return mg_cli_usage_error(p, "--min-version: 0..2^63-1");
            have_min = true;
            break;
        case 'h': fputs(create_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error(p, "unknown option or missing argument");
        }
    }
    if (optind != argc || image == NULL || vendor == NULL || cls == NULL || seq == 0 ||
        key == NULL || out == NULL)
        return mg_cli_usage_error(p, "--image, --vendor, --class, --seq, --key and -o are required");
    size_t kidl = kid != NULL ? strlen(kid) : 0;
    if (kid != NULL && (kidl == 0 || kidl > MG_CMD_KID_MAX))
        return mg_cli_usage_error(p, "--kid: 1..32 characters");
    for (size_t i = 0; i < kidl; i++)
        if (kid[i] < 0x21 || kid[i] > 0x7e)
            return mg_cli_usage_error(p, "--kid: printable characters");
    if (uri != NULL && (uri[0] == '\0' || strlen(uri) > MG_SUIT_URI_MAX))
        return mg_cli_usage_error(p, "--uri: 1..255 characters");
    mg_suit_params sp;
    memset(&sp, 0, sizeof(sp));
    sp.seq = seq;
    sp.uri = uri;
    sp.uri_len = uri != NULL ? strlen(uri) : 0;
    sp.has_min_seq = have_min;
    sp.min_seq = minv;
    if (!id_arg(vendor, NULL, sp.vendor) || !id_arg(cls, sp.vendor, sp.class_id))
        return mg_cli_usage_error(p, "--vendor/--class: a UUID or a name of 1..255 characters");
    uint8_t *img = NULL;
    size_t imgl = 0;
    int rc = read_all("update create: --image", image, IMAGE_MAX, &img, &imgl);
    if (rc != MG_EXIT_OK)
        return rc;
    if (imgl == 0) {
        free(img);
        fprintf(stderr, "update create: --image %s is empty\n", image);
        return MG_EXIT_INPUT;
    }
    bool hashed = sha256_buf(img, imgl, sp.digest);
    free(img);
    if (!hashed) {
        fprintf(stderr, "update create: SHA-256 failed\n");
        return MG_EXIT_INTERNAL;
    }
    sp.size = imgl;
    EVP_PKEY *pk = NULL;
    char why[256] = "";
    if (mg_keyref_load_private(key, &pk, why, sizeof(why)) != MG_OK) {
        fprintf(stderr, "update create: --key %s: %s\n", key, why);
        return MG_EXIT_INPUT;
    }
    int64_t alg = 0;
    uint8_t pub[MG_SIGNER_PUB_MAX];
    size_t publ = 0;
    if (!mg_cli_signer_pub(pk, &alg, pub, &publ)) {
        EVP_PKEY_free(pk);
        fprintf(stderr, "update create: --key %s: not an EC P-256 or Ed25519 private key\n", key);
        return MG_EXIT_INPUT;
    }
    static uint8_t m[MG_SUIT_ENVELOPE_MAX], tbs[MG_SUIT_ENVELOPE_MAX + 128],
        env[MG_SUIT_ENVELOPE_MAX];
    uint8_t sig[MG_SIG_LEN];
    size_t ml = 0, tl = 0, el = 0;
    mg_err e = mg_suit_manifest_encode(&sp, m, sizeof(m), &ml);
    if (e == MG_OK)
        e = mg_suit_tbs(alg, (const uint8_t *)kid, kidl, m, ml, tbs, sizeof(tbs), &tl);
    if (e == MG_OK && !mg_cli_sign_raw(pk, alg, tbs, tl, sig))
        e = MG_ERR_CRYPTO;
    EVP_PKEY_free(pk);
    if (e == MG_OK)
        e = mg_suit_envelope_assemble(m, ml, alg, (const uint8_t *)kid, kidl, sig, env, sizeof(env),
                                      &el);
    if (e != MG_OK) {
        fprintf(stderr, "update create: %s\n", mg_strerror(e));
        return e == MG_ERR_CRYPTO ? MG_EXIT_INTERNAL : MG_EXIT_USAGE;
    }
    rc = mg_file_create(out, env, el, 0644);
    if (rc == MG_EXIT_OK)
        fprintf(stderr, "update create: %s: %zu octets, sequence %" PRIu64 ", image %zu octets\n",
                out, el, seq, imgl);
    return rc;
}

/* ---- inspect ---------------------------------------------------------------------- */

static const char inspect_usage[] =
    "usage: m2mguard update inspect ENVELOPE [--json]\n"
    "\n"
    "Prints what the manifest of a SUIT envelope says (sequence, vendor, class,\n"
    "image digest and size, minimum version, manifest digest) WITHOUT verifying\n"
    "its signature (use `update verify`). The manifest is read by the same\n"
    "parser the device runs. --json: one JSON object.\n"
    "\n"
    "Exit codes: 0 ok, 2 bad command line, 3 unreadable or malformed envelope.\n";

static int upd_inspect(int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    bool json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'h': fputs(inspect_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard update inspect", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return mg_cli_usage_error("m2mguard update inspect", "one ENVELOPE");
    uint8_t *env = NULL, *scratch = NULL;
    size_t n = 0;
    int rc = read_all("update inspect", argv[optind], MG_SUIT_ENVELOPE_MAX, &env, &n);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_suit_info info;
    rc = unverified_info(env, n, &info, &scratch);
    if (rc == MG_EXIT_OK)
        print_info(&info, json, "NOT VERIFIED (use update verify)");
    else if (rc == MG_EXIT_INPUT)
        fprintf(stderr, "update inspect: %s: not a SUIT envelope of this profile\n", argv[optind]);
    free(scratch);
    free(env);
    return rc;
}

/* ---- verify ----------------------------------------------------------------------- */

static const char verify_usage[] =
    "usage: m2mguard update verify ENVELOPE (--anchor PUB.pem ... | --signer KID ...)\n"
    "       [--image FILE] [--json] [--dir DIR]\n"
    "\n"
    "Verifies a SUIT envelope as a device does (mg_suit_check): the signature\n"
    "against the trust anchors first, then the manifest digest, then the\n"
    "manifest. With --image, FILE is streamed through the device's image check\n"
    "(size and SHA-256 against the manifest). Prints the manifest (as inspect);\n"
    "a refusal prints 'refused: REASON' on stderr (REASON as a device reports\n"
    "it: bad_signature, manifest_digest, image_digest, image_too_short, ...).\n"
    "\n"
    "  --anchor PUB.pem  a trust anchor: EC P-256 (ES256) or Ed25519 (EdDSA)\n"
    "                    public key, PEM; repeatable (at most 8)\n"
    "  --signer KID      a trust anchor from the signer registry (`m2mguard signer\n"
    "                    add`; revoked signers are refused); repeatable\n"
    "  --dir DIR         working directory for --signer (default $M2MGUARD_HOME)\n"
    "\n"
    "Exit codes: 0 verified, 1 refused, 2 bad command line, 3 unreadable input.\n";

static int load_pub(const char *path, int64_t *alg, uint8_t *pub, size_t *len)
{
    EVP_PKEY *pk = NULL;
    char why[256] = "";
    if (mg_keyref_load_public(path, &pk, NULL, why, sizeof(why)) != MG_OK) {
        fprintf(stderr, "update verify: --anchor %s: %s\n", path, why);
        return MG_EXIT_INPUT;
    }
    size_t l = MG_SIGNER_PUB_MAX;
    int rc = MG_EXIT_INPUT;
    if (EVP_PKEY_is_a(pk, "ED25519")) {
        if (EVP_PKEY_get_raw_public_key(pk, pub, &l) == 1 && l == MG_ED25519_PUB_LEN) {
            *alg = MG_COSE_ALG_EDDSA;
            *len = l;
            rc = MG_EXIT_OK;
        }
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        unsigned char *enc = NULL;
        size_t el = EVP_PKEY_get1_encoded_public_key(pk, &enc);
        if (el == MG_ES256_PUB_LEN && EVP_PKEY_get_bits(pk) == 256) {
            memcpy(pub, enc, el);
            *alg = MG_COSE_ALG_ES256;
            *len = el;
            rc = MG_EXIT_OK;
        }
        OPENSSL_free(enc);
    }
    EVP_PKEY_free(pk);
    if (rc != MG_EXIT_OK)
        fprintf(stderr, "update verify: --anchor %s: not an EC P-256 or Ed25519 public key\n", path);
    return rc;
}

static int stream_image(const char *path, const mg_suit_info *info, mg_suit_why *why)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "update verify: --image %s: %s\n", path, strerror(errno));
        return MG_EXIT_INPUT;
    }
    mg_suit_img ctx;
    memset(&ctx, 0, sizeof(ctx));
    if (mg_suit_img_begin(&ctx, info) != MG_OK) {
        fclose(f);
        *why = MG_SUIT_WHY_NO_IMAGE;
        return MG_EXIT_REJECT;
    }
    uint8_t buf[4096];
    size_t n;
    mg_err e = MG_OK;
    while (e == MG_OK && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        e = mg_suit_img_update(&ctx, buf, n);
    bool rerr = ferror(f) != 0;
    fclose(f);
    if (rerr) {
        mg_suit_img_abort(&ctx);
        fprintf(stderr, "update verify: --image %s: read error\n", path);
        return MG_EXIT_INPUT;
    }
    if (e != MG_OK) {
        mg_suit_img_abort(&ctx);
        *why = MG_SUIT_WHY_IMAGE_LONG;
        return MG_EXIT_REJECT;
    }
    return mg_suit_img_finish(&ctx, why) == MG_OK ? MG_EXIT_OK : MG_EXIT_REJECT;
}

static int upd_verify(int argc, char **argv)
{
    static const struct option lo[] = {
        {"anchor", required_argument, NULL, 'a'}, {"signer", required_argument, NULL, 's'},
        {"image", required_argument, NULL, 'i'},  {"json", no_argument, NULL, 'j'},
        {"dir", required_argument, NULL, 'd'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *p = "m2mguard update verify";
    const char *files[ANCHORS_MAX], *kids[ANCHORS_MAX], *image = NULL, *dir = NULL;
    size_t nf = 0, nk = 0;
    bool json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (nf + nk == ANCHORS_MAX)
                return mg_cli_usage_error(p, "at most 8 anchors");
            files[nf++] = optarg;
            break;
        case 's':
            if (nf + nk == ANCHORS_MAX)
                return mg_cli_usage_error(p, "at most 8 anchors");
            kids[nk++] = optarg;
            break;
        case 'i': image = optarg; break;
        case 'j': json = true; break;
        case 'd': dir = optarg; break;
        case 'h': fputs(verify_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error(p, "unknown option or missing argument");
        }
    }
    if (optind + 1 != argc || nf + nk == 0)
        return mg_cli_usage_error(p, "one ENVELOPE and at least one --anchor or --signer");
    static uint8_t pubs[ANCHORS_MAX][MG_SIGNER_PUB_MAX];
    static char kidbuf[ANCHORS_MAX][MG_SIGNER_KID_MAX + 1];
    mg_suit_anchor an[ANCHORS_MAX];
    size_t na = 0;
    int rc;
    for (size_t i = 0; i < nf; i++, na++) {
        memset(&an[na], 0, sizeof(an[na]));
        rc = load_pub(files[i], &an[na].alg, pubs[na], &an[na].pub_len);
        if (rc != MG_EXIT_OK)
            return rc;
        an[na].pub = pubs[na];
    }
    if (nk > 0) {
        mg_workdir w;
        rc = mg_workdir_open(dir, &w);
        if (rc != MG_EXIT_OK)
            return rc;
        for (size_t i = 0; i < nk; i++, na++) {
            mg_signer g;
            mg_err e = mg_store_signer_get(w.store, kids[i], &g);
            if (e != MG_OK || g.status != MG_SIGNER_ACTIVE) {
                fprintf(stderr, "update verify: --signer %s: %s\n", kids[i],
                        e == MG_ERR_KEY ? "no such signer" : e != MG_OK ? mg_store_errmsg(w.store)
                                                                        : "revoked");
                mg_workdir_close(&w);
                return e == MG_OK ? MG_EXIT_REJECT : mg_store_exit(e);
            }
            memcpy(pubs[na], g.pub, g.pub_len);
            snprintf(kidbuf[na], sizeof(kidbuf[na]), "%s", g.kid);
            an[na].kid = (const uint8_t *)kidbuf[na];
            an[na].kid_len = strlen(kidbuf[na]);
            an[na].alg = g.alg;
            an[na].pub = pubs[na];
            an[na].pub_len = g.pub_len;
        }
        mg_workdir_close(&w);
    }
    uint8_t *env = NULL;
    size_t n = 0;
    rc = read_all("update verify", argv[optind], MG_SUIT_ENVELOPE_MAX + 1, &env, &n);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_suit_info info;
    mg_suit_why why = MG_SUIT_OK;
    mg_err e = mg_suit_check(env, n, an, na, &info, &why);
    if (e != MG_OK) {
        free(env);
        fprintf(stderr, "refused: %s\n", mg_suit_why_str(why));
        return e == MG_ERR_CRYPTO ? MG_EXIT_INTERNAL : MG_EXIT_REJECT;
    }
    if (image != NULL) {
        rc = stream_image(image, &info, &why);
        if (rc != MG_EXIT_OK) {
            free(env);
            if (rc == MG_EXIT_REJECT)
                fprintf(stderr, "refused: %s\n", mg_suit_why_str(why));
            return rc;
        }
    }
    print_info(&info, json, image != NULL ? "verified; image verified" : "verified");
    free(env);
    return MG_EXIT_OK;
}

/* ---- push over MQTT ---------------------------------------------------------------- */

static const char push_usage[] =
    "usage: m2mguard update push (DEVICE ... | --class CLASS) ENVELOPE --image FILE\n"
    "       --mqtt HOST:PORT --cafile CA.pem --cert CERT.pem --key KEY.pem [--client-id ID]\n"
    "       [--rate N] [--window N] [--chunk N] [--timeout S] [--dir DIR] [--unchecked]\n"
    "       m2mguard update push (DEVICE ... | --class CLASS) ENVELOPE --image FILE --sms\n"
    "       [--dir DIR] [--unchecked]\n"
    "\n"
    "With --sms (implied when --mqtt is not given): a small configuration update\n"
    "over secured SMS. The manifest must name an integrated payload (`update\n"
    "create --uri '#config'`); FILE is put into the envelope under that key and\n"
    "the whole envelope must fit the secured data of one concatenated command\n"
    "(472 octets, MG_SMS_DATA_MAX; larger: exit 3, use MQTT). One command\n"
    "\"update SEQ\" per device is queued for the SMS gateway with the envelope as\n"
    "its binary data; the policy rule for \"update\" applies; the device verifies\n"
    "the signature and digest and answers with authenticated telemetry, recorded\n"
    "as event update_ok / update_failed. --class takes every active device of the\n"
    "class with the SMS bearer. Prints 'NAME queued update SEQ (command ID)'.\n"
    "Exit codes with --sms: 0 queued for every device, 1 a device not active or\n"
    "without SMS, 2 bad command line, 3 input (too large, no integrated payload,\n"
    "not the manifest's image, unknown device), 4 internal.\n"
    "\n"
    "Over MQTT:\n"
    "Delivers an update to IP devices over the broker (docs/update.md): for each\n"
    "device the envelope on m2m/NAME/down/update (\"m SEQ \" + envelope), then\n"
    "FILE in chunks (\"c SEQ OFFSET \" + octets), QoS 1, flow-controlled by the\n"
    "device's answers on m2m/NAME/up/update (\"SEQ next OFFSET\": at most --window\n"
    "chunks beyond the acknowledged offset; a device that restarted resumes where\n"
    "it asks; without progress for 3 s the chunks from the last acknowledged\n"
    "offset are sent again, the manifest again after 3, 6, 12, 24 s while the\n"
    "device is silent). It ends when every device answered\n"
    "\"SEQ ok\" (update_ok) or \"SEQ fail REASON\" (update_failed), or at --timeout.\n"
    "The client is an application with role `updater` (`m2mguard app add NAME\n"
    "--role updater`, its certificate from `m2mguard ca issue --app NAME`): the\n"
    "plugin lets it publish only down/update and read only up/update.\n"
    "\n"
    "  DEVICE ...      device names (at most 256)\n"
    "  --class CLASS   every IP device of the registry with this class\n"
    "  --image FILE    the image the envelope describes (its size and digest are\n"
    "                  checked against the manifest before anything is sent)\n"
    "  --client-id ID  MQTT client id; the plugin wants it to start with the\n"
    "                  application's name (ota, ota-1; default 'updater')\n"
    "  --rate N        messages per second at most (default 15; the plugin's rate)\n"
    "  --window N      chunks in flight per device (default 4)\n"
    "  --chunk N       chunk size, 1..2048 octets (default 2048)\n"
    "  --timeout S     give up after S seconds (default 120)\n"
    "  --unchecked     send FILE even when it is not the image the manifest\n"
    "                  describes (tests and demos: the device must refuse it)\n"
    "\n"
    "Prints one line per device: 'NAME update_ok SEQ' or 'NAME update_failed SEQ\n"
    "REASON' (or 'timeout'). Exit codes: 0 all installed, 1 a device refused or\n"
    "timed out, 2 bad command line, 3 unreadable input, 4 broker unreachable.\n";

typedef enum { PD_MANIFEST, PD_CHUNKS, PD_OK, PD_FAIL } pd_state;

typedef struct pdev {
    char name[MG_MQTT_NAME_BUF];
    char topic[MG_MQTT_TOPIC_BUF];
    pd_state st;
    bool heard;        /* a "next" came */
    uint64_t acked;    /* the device holds [0, acked) */
    uint64_t sent;     /* next offset to send */
    int64_t progress_ms; /* last progress (or send of the manifest) */
    unsigned restarts;   /* downloads begun again after "fail interrupted" */
    int64_t retry_ms;    /* silence before sending again: 3 s, doubled (to 24 s) while unheard */
    char reason[MG_MQTT_DETAIL_MAX + 1];
} pdev;

typedef struct pusher {
    pdev *d;
    size_t n;
    int64_t seq;
    const uint8_t *env, *img;
    size_t envl, imgl, chunk;
    unsigned window;
    double tokens, rate;
    int64_t last_ms;
    bool connected, subscribed;
    int conn_rc;
} pusher;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void p_connect(struct mosquitto *m, void *ctx, int rc)
{
    pusher *ps = ctx;
    ps->conn_rc = rc;
    if (rc != 0)
        return;
    ps->connected = true;
    (void)mosquitto_subscribe(m, NULL, "m2m/+/up/update", 1);
}

static void p_subscribe(struct mosquitto *m, void *ctx, int mid, int n, const int *q)
{
    (void)m;
    (void)mid;
    pusher *ps = ctx;
    ps->subscribed = n == 1 && q[0] <= 2;
    if (!ps->subscribed)
        fprintf(stderr, "update push: the broker refused the subscription to m2m/+/up/update\n");
}

static void p_disconnect(struct mosquitto *m, void *ctx, int rc)
{
    (void)m;
    (void)rc;
    pusher *ps = ctx;
    ps->connected = false;
}

static void p_message(struct mosquitto *m, void *ctx, const struct mosquitto_message *msg)
{
    (void)m;
    pusher *ps = ctx;
    mg_mqtt_topic t;
    mg_mqtt_ustatus us;
    if (msg->topic == NULL || mg_mqtt_topic_parse(msg->topic, strlen(msg->topic), &t) != MG_OK ||
        t.leaf != MG_MQTT_LEAF_UPSTATUS || msg->payloadlen < 0 ||
        mg_mqtt_ustatus_decode(msg->payload, (size_t)msg->payloadlen, &us) != MG_OK ||
        us.seq != ps->seq)
        return;
    for (size_t i = 0; i < ps->n; i++) {
        pdev *d = &ps->d[i];
        if (strcmp(d->name, t.name) != 0 || d->st == PD_OK || d->st == PD_FAIL)
            continue;
        if (us.kind == MG_MQTT_UST_OK) {
            d->st = PD_OK;
        } else if (us.kind == MG_MQTT_UST_FAIL && strcmp(us.detail, "interrupted") == 0 &&
                   d->restarts < 5) {
            /* the device restarted during the download and abandoned it: again */
            fprintf(stderr, "update push: %s: download interrupted (device restart): pushing "
                            "again\n", d->name);
            d->restarts++;
            d->st = PD_MANIFEST;
            d->heard = false;
            d->acked = d->sent = 0;
            d->progress_ms = mono_ms();
        } else if (us.kind == MG_MQTT_UST_FAIL) {
            d->st = PD_FAIL;
            snprintf(d->reason, sizeof(d->reason), "%s", us.detail);
        } else if (us.offset <= ps->imgl) {
            if (!d->heard || us.offset > d->acked)
                d->progress_ms = mono_ms();
            d->retry_ms = 3000;
            if (us.offset < d->acked || !d->heard) /* a restart: resume where it asks */
                d->sent = us.offset;
            d->acked = us.offset;
            if (d->sent < d->acked)
                d->sent = d->acked;
            d->heard = true;
            d->st = PD_CHUNKS;
        }
    }
}

static bool take_token(pusher *ps)
{
    int64_t t = mono_ms();
    ps->tokens += (double)(t - ps->last_ms) * ps->rate / 1000.0;
    if (ps->tokens > ps->rate)
        ps->tokens = ps->rate;
    ps->last_ms = t;
    if (ps->tokens < 1.0)
        return false;
    ps->tokens -= 1.0;
    return true;
}

static bool publish_upd(struct mosquitto *m, pusher *ps, pdev *d, mg_mqtt_upd_kind kind,
                        uint64_t off)
{
    static uint8_t buf[MG_MQTT_UPD_PAYLOAD_MAX];
    mg_mqtt_upd u;
    memset(&u, 0, sizeof(u));
    u.kind = kind;
    u.seq = ps->seq;
    u.offset = off;
    if (kind == MG_MQTT_UPD_MANIFEST) {
        u.data = ps->env;
        u.n = ps->envl;
    } else {
        u.data = ps->img + off;
        u.n = ps->imgl - off < ps->chunk ? ps->imgl - (size_t)off : ps->chunk;
    }
    size_t len = 0;
    if (mg_mqtt_upd_encode(buf, sizeof(buf), &len, &u) != MG_OK)
        return false;
    return mosquitto_publish(m, NULL, d->topic, (int)len, buf, 1, false) == MOSQ_ERR_SUCCESS;
}

/* One round of sending: manifests, chunks within the window, retransmissions. */
static void push_step(struct mosquitto *m, pusher *ps)
{
    int64_t now = mono_ms();
    for (size_t i = 0; i < ps->n; i++) {
        pdev *d = &ps->d[i];
        if (d->st == PD_OK || d->st == PD_FAIL)
            continue;
        if (d->retry_ms == 0)
            d->retry_ms = 3000;
        if (now - d->progress_ms > d->retry_ms) { /* no progress: send again */
            if (!d->heard) { /* offline? its broker queue need not fill up */
                d->st = PD_MANIFEST;
                d->retry_ms = d->retry_ms * 2 > 24000 ? 24000 : d->retry_ms * 2;
            }
            d->sent = d->acked;
            d->progress_ms = now;
        }
        if (d->st == PD_MANIFEST) {
            if (!take_token(ps))
                return;
            if (publish_upd(m, ps, d, MG_MQTT_UPD_MANIFEST, 0)) {
                d->st = PD_CHUNKS; /* waiting for "next" */
                d->progress_ms = now;
            }
            continue;
        }
        while (d->heard && d->sent < ps->imgl &&
               d->sent < d->acked + (uint64_t)ps->window * ps->chunk) {
            if (!take_token(ps))
                return;
            if (!publish_upd(m, ps, d, MG_MQTT_UPD_CHUNK, d->sent))
                return;
            uint64_t n = ps->imgl - d->sent < ps->chunk ? ps->imgl - d->sent : ps->chunk;
            d->sent += n;
        }
    }
}

typedef struct class_ctx {
    const char *cls;
    pdev *d;
    size_t n;
    bool full;
} class_ctx;

static bool class_member(void *ctx, const mg_device *dv)
{
    class_ctx *c = ctx;
    if (strcmp(dv->dev_class, c->cls) != 0 || (dv->bearers & MG_BEARER_IP) == 0 ||
        dv->status != MG_DEV_ACTIVE)
        return true;
    if (c->n == PUSH_DEVICES_MAX) {
        c->full = true;
        return false;
    }
    snprintf(c->d[c->n].name, sizeof(c->d[c->n].name), "%s", dv->name);
    c->n++;
    return true;
}

/* ---- push over secured SMS -------------------------------------------------------- */

typedef struct sms_class_ctx {
    const char *cls;
    char (*names)[MG_NAME_MAX];
    size_t n;
    bool full;
} sms_class_ctx;

static bool sms_class_member(void *ctx, const mg_device *dv)
{
    sms_class_ctx *c = ctx;
    if (strcmp(dv->dev_class, c->cls) != 0 || (dv->bearers != 0 && (dv->bearers & MG_BEARER_SMS) == 0) ||
        dv->status != MG_DEV_ACTIVE)
        return true;
    if (c->n == PUSH_DEVICES_MAX) {
        c->full = true;
        return false;
    }
    snprintf(c->names[c->n], MG_NAME_MAX, "%s", dv->name);
    c->n++;
    return true;
}

/* Builds the envelope with FILE as its integrated payload and queues it for
 * each device as command "update SEQ" (want "sms") with the envelope as its
 * binary data, in one transaction per device. */
static int push_sms(const char *cls, char **devs, int ndev, const char *envpath, const char *image,
                    const char *dir, bool unchecked)
{
    uint8_t *env = NULL, *img = NULL, *scratch = NULL;
    size_t envl = 0, imgl = 0, outl = 0;
    static uint8_t out[MG_SUIT_ENVELOPE_MAX];
    int rc = read_all("update push", envpath, MG_SUIT_ENVELOPE_MAX, &env, &envl);
    if (rc == MG_EXIT_OK)
        rc = read_all("update push: --image", image, IMAGE_MAX, &img, &imgl);
    mg_suit_info info;
    memset(&info, 0, sizeof(info));
    if (rc == MG_EXIT_OK)
        rc = unverified_info(env, envl, &info, &scratch);
    uint8_t dg[MG_SHA256_LEN];
    if (rc == MG_EXIT_OK && (info.seq > INT64_MAX || !info.has_uri || info.uri_len < 2 ||
                             info.uri[0] != '#')) {
        fprintf(stderr, "update push: %s names no integrated payload (create it with "
                        "--uri '#config')\n", envpath);
        rc = MG_EXIT_INPUT;
    }
    if (rc == MG_EXIT_OK && !unchecked &&
        (info.size != imgl || !sha256_buf(img, imgl, dg) || memcmp(dg, info.digest, sizeof(dg)) != 0)) {
        fprintf(stderr, "update push: %s is not the image the manifest describes (size %" PRIu64
                        ", digest)\n", image, info.size);
        rc = MG_EXIT_INPUT;
    }
    if (rc == MG_EXIT_OK) {
        const uint8_t *have = NULL;
        size_t hn = 0;
        mg_err e = mg_suit_payload(env, envl, info.uri, info.uri_len, &have, &hn);
        if (e == MG_OK && hn == imgl && memcmp(have, img, imgl) == 0) { /* already integrated */
            memcpy(out, env, envl);
            outl = envl;
        } else if (e == MG_ERR_KEY) {
            e = mg_suit_envelope_integrate(env, envl, info.uri, info.uri_len, img, imgl, out,
                                           sizeof(out), &outl);
            if (e == MG_ERR_BUF)
                outl = sizeof(out) + 1;
            else if (e != MG_OK) {
                fprintf(stderr, "update push: %s: cannot integrate the payload: %s\n", envpath,
                        mg_strerror(e));
                rc = MG_EXIT_INPUT;
            }
        } else {
            fprintf(stderr, "update push: %s carries another payload under %.*s\n", envpath,
                    (int)info.uri_len, info.uri);
            rc = MG_EXIT_INPUT;
        }
    }
    if (rc == MG_EXIT_OK && outl > MG_SMS_DATA_MAX) {
        fprintf(stderr, "update push: the envelope with its payload is %s%zu octets; secured SMS "
                        "carries at most %u (MG_SMS_DATA_MAX, %u concatenated SMS): use --mqtt\n",
                outl > sizeof(out) ? "more than " : "", outl > sizeof(out) ? sizeof(out) : outl,
                (unsigned)MG_SMS_DATA_MAX, (unsigned)MG_SMS_MAX_PARTS);
        rc = MG_EXIT_INPUT;
    }
    uint64_t seq = info.seq;
    free(scratch);
    free(env);
    free(img);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_workdir w;
    rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    char(*names)[MG_NAME_MAX] = calloc(PUSH_DEVICES_MAX, MG_NAME_MAX);
    size_t n = 0;
    if (names == NULL) {
        mg_workdir_close(&w);
        return MG_EXIT_INTERNAL;
    }
    if (cls != NULL) {
        sms_class_ctx cc = {cls, names, 0, false};
        mg_err e = mg_store_device_list(w.store, sms_class_member, &cc);
        if (e != MG_OK || cc.full || cc.n == 0) {
            fprintf(stderr, "update push: --class %s: %s\n", cls,
                    e != MG_OK ? "registry error" : cc.full ? "more than 256 devices"
                                                          : "no active SMS device of this class");
            rc = e != MG_OK ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
        }
        n = cc.n;
    } else {
        for (int i = 0; i < ndev; i++)
            snprintf(names[n++], MG_NAME_MAX, "%s", devs[i]);
    }
    char text[64];
    snprintf(text, sizeof(text), "update %" PRIu64, seq);
    for (size_t i = 0; rc == MG_EXIT_OK && i < n; i++) {
        mg_device d;
        mg_err e = mg_store_device_by_name(w.store, names[i], &d);
        if (e != MG_OK) {
            fprintf(stderr, "update push: no device '%s'\n", names[i]);
            rc = mg_store_exit(e);
            break;
        }
        if (d.status != MG_DEV_ACTIVE || (d.bearers != 0 && (d.bearers & MG_BEARER_SMS) == 0)) {
            fprintf(stderr, "update push: device '%s' is %s\n", names[i],
                    d.status != MG_DEV_ACTIVE ? mg_dev_status_name(d.status) : "not an SMS device");
            rc = MG_EXIT_REJECT;
            break;
        }
        mg_command c;
        memset(&c, 0, sizeof(c));
        c.device_id = d.id;
        snprintf(c.text, sizeof(c.text), "%s", text);
        if ((e = mg_store_begin(w.store)) == MG_OK &&
            (e = mg_store_cmd_enqueue_on(w.store, &c, "sms")) == MG_OK &&
            (e = mg_store_cmd_set_signed(w.store, c.id, out, outl)) == MG_OK)
            e = mg_store_commit(w.store);
        if (e != MG_OK) {
            fprintf(stderr, "update push: cannot queue the update for '%s': %s\n", names[i],
                    mg_store_errmsg(w.store));
            mg_store_rollback(w.store);
            rc = mg_store_exit(e);
            break;
        }
        printf("%s queued %s (command %" PRId64 ")\n", names[i], text, c.id);
    }
    fflush(stdout);
    if (rc == MG_EXIT_OK)
        fprintf(stderr, "update push: sequence %" PRIu64 ", envelope %zu octets over SMS to %zu "
                        "device(s)\n", seq, outl, n);
    free(names);
    mg_workdir_close(&w);
    return rc;
}

static int upd_push(int argc, char **argv)
{
    static const struct option lo[] = {
        {"class", required_argument, NULL, 'c'},  {"image", required_argument, NULL, 'i'},
        {"mqtt", required_argument, NULL, 'M'},   {"cafile", required_argument, NULL, 'A'},
        {"cert", required_argument, NULL, 'C'},   {"key", required_argument, NULL, 'K'},
        {"client-id", required_argument, NULL, 'I'}, {"rate", required_argument, NULL, 'r'},
        {"window", required_argument, NULL, 'w'}, {"chunk", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'}, {"dir", required_argument, NULL, 'd'},
        {"unchecked", no_argument, NULL, 'u'},    {"help", no_argument, NULL, 'h'},
        {"sms", no_argument, NULL, 'S'},          {NULL, 0, NULL, 0}};
    const char *p = "m2mguard update push";
    bool sms = false;
    const char *cls = NULL, *image = NULL, *mqtt = NULL, *cafile = NULL, *cert = NULL, *key = NULL;
    const char *cid = "updater", *dir = NULL;
    bool unchecked = false;
    uint64_t rate = 15, window = 4, chunk = MG_MQTT_UPD_CHUNK_MAX, timeout = 120;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': cls = optarg; break;
        case 'i': image = optarg; break;
        case 'M': mqtt = optarg; break;
        case 'A': cafile = optarg; break;
        case 'C': cert = optarg; break;
        case 'K': key = optarg; break;
        case 'I': cid = optarg; break;
        case 'd': dir = optarg; break;
        case 'u': unchecked = true; break;
        case 'S': sms = true; break;
        case 'r':
            if (!mg_cli_parse_u64(optarg, 10000, &rate) || rate == 0)
                return mg_cli_usage_error(p, "--rate: 1..10000");
            break;
        case 'w':
            if (!mg_cli_parse_u64(optarg, 64, &window) || window == 0)
                return mg_cli_usage_error(p, "--window: 1..64");
            break;
        case 'k':
            if (!mg_cli_parse_u64(optarg, MG_MQTT_UPD_CHUNK_MAX, &chunk) || chunk == 0)
                return mg_cli_usage_error(p, "--chunk: 1..2048");
            break;
        case 't':
            if (!mg_cli_parse_u64(optarg, 86400, &timeout) || timeout == 0)
                return mg_cli_usage_error(p, "--timeout: 1..86400 seconds");
            break;
        case 'h': fputs(push_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error(p, "unknown option or missing argument");
        }
    }
    int nargs = argc - optind;
    if (sms || mqtt == NULL) {
        if (mqtt != NULL)
            return mg_cli_usage_error(p, "--sms and --mqtt exclude each other");
        if (image == NULL)
            return mg_cli_usage_error(p, "--image is required");
        if (nargs < 1 || (cls != NULL && nargs != 1) || (cls == NULL && nargs < 2))
            return mg_cli_usage_error(p, "DEVICE ... ENVELOPE, or --class CLASS ENVELOPE");
        if (cls == NULL && nargs - 1 > PUSH_DEVICES_MAX)
            return mg_cli_usage_error(p, "at most 256 devices");
        return push_sms(cls, argv + optind, nargs - 1, argv[argc - 1], image, dir, unchecked);
    }
    if (image == NULL || mqtt == NULL || cafile == NULL || cert == NULL || key == NULL)
        return mg_cli_usage_error(p, "--image, --mqtt, --cafile, --cert and --key are required");
    if (nargs < 1 || (cls != NULL && nargs != 1) || (cls == NULL && nargs < 2))
        return mg_cli_usage_error(p, "DEVICE ... ENVELOPE, or --class CLASS ENVELOPE");
    if (cls == NULL && nargs - 1 > PUSH_DEVICES_MAX)
        return mg_cli_usage_error(p, "at most 256 devices");
    const char *colon = strrchr(mqtt, ':');
    uint64_t port = 0;
    char host[256];
    if (colon == NULL || colon == mqtt || (size_t)(colon - mqtt) >= sizeof(host) ||
        !mg_cli_parse_u64(colon + 1, 65535, &port) || port == 0)
        return mg_cli_usage_error(p, "--mqtt takes HOST:PORT");
    memcpy(host, mqtt, (size_t)(colon - mqtt));
    host[colon - mqtt] = '\0';

    pusher ps;
    memset(&ps, 0, sizeof(ps));
    ps.d = calloc(PUSH_DEVICES_MAX, sizeof(pdev));
    if (ps.d == NULL)
        return MG_EXIT_INTERNAL;
    int rc = MG_EXIT_OK;
    if (cls != NULL) {
        mg_workdir w;
        rc = mg_workdir_open(dir, &w);
        if (rc != MG_EXIT_OK) {
            free(ps.d);
            return rc;
        }
        class_ctx cc = {cls, ps.d, 0, false};
        mg_err e = mg_store_device_list(w.store, class_member, &cc);
        mg_workdir_close(&w);
        if (e != MG_OK || cc.full || cc.n == 0) {
            fprintf(stderr, "update push: --class %s: %s\n", cls,
                    e != MG_OK ? "registry error" : cc.full ? "more than 256 devices"
                                                          : "no active IP device of this class");
            free(ps.d);
            return e != MG_OK ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
        }
        ps.n = cc.n;
    } else {
        for (int i = optind; i < argc - 1; i++)
            snprintf(ps.d[ps.n++].name, sizeof(ps.d[0].name), "%s", argv[i]);
    }
    for (size_t i = 0; i < ps.n; i++)
        if (mg_mqtt_topic_build(ps.d[i].topic, sizeof(ps.d[i].topic), NULL, ps.d[i].name,
                                MG_MQTT_LEAF_UPDATE) != MG_OK) {
            fprintf(stderr, "update push: '%s' is not a device name\n", ps.d[i].name);
            free(ps.d);
            return MG_EXIT_USAGE;
        }
    uint8_t *env = NULL, *img = NULL, *scratch = NULL;
    size_t envl = 0, imgl = 0;
    rc = read_all("update push", argv[argc - 1], MG_MQTT_UPD_ENVELOPE_MAX, &env, &envl);
    if (rc == MG_EXIT_OK)
        rc = read_all("update push: --image", image, IMAGE_MAX, &img, &imgl);
    mg_suit_info info;
    memset(&info, 0, sizeof(info));
    if (rc == MG_EXIT_OK)
        rc = unverified_info(env, envl, &info, &scratch);
    uint8_t dg[MG_SHA256_LEN];
    if (rc == MG_EXIT_OK && info.seq > INT64_MAX)
        rc = MG_EXIT_INPUT;
    if (rc == MG_EXIT_OK && !unchecked &&
        (info.size != imgl || !sha256_buf(img, imgl, dg) || memcmp(dg, info.digest, sizeof(dg)) != 0)) {
        fprintf(stderr, "update push: %s is not the image the manifest describes (size %" PRIu64
                        ", digest)\n", image, info.size);
        rc = MG_EXIT_INPUT;
    }
    free(scratch);
    if (rc != MG_EXIT_OK) {
        free(env);
        free(img);
        free(ps.d);
        return rc;
    }
    ps.seq = (int64_t)info.seq;
    ps.env = env;
    ps.envl = envl;
    ps.img = img;
    ps.imgl = imgl;
    ps.chunk = (size_t)chunk;
    ps.window = (unsigned)window;
    ps.rate = (double)rate;
    ps.tokens = 1.0;
    ps.last_ms = mono_ms();

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(cid, true, &ps);
    int mr = m != NULL ? MOSQ_ERR_SUCCESS : MOSQ_ERR_NOMEM;
    if (m != NULL) {
        mosquitto_connect_callback_set(m, p_connect);
        mosquitto_disconnect_callback_set(m, p_disconnect);
        mosquitto_subscribe_callback_set(m, p_subscribe);
        mosquitto_message_callback_set(m, p_message);
        mr = mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        if (mr == MOSQ_ERR_SUCCESS)
            mr = mosquitto_tls_set(m, cafile, NULL, cert, key, NULL);
        if (mr == MOSQ_ERR_SUCCESS)
            mr = mosquitto_tls_opts_set(m, 1, "tlsv1.2", NULL);
        if (mr == MOSQ_ERR_SUCCESS)
            mr = mosquitto_max_inflight_messages_set(m, 0);
        if (mr == MOSQ_ERR_SUCCESS)
            mr = mosquitto_connect(m, host, (int)port, 30);
    }
    if (mr != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "update push: cannot connect to %s: %s\n", mqtt,
                mr == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(mr));
        rc = MG_EXIT_INTERNAL;
    }
    (void)mg_cli_catch_stop();
    int64_t t0 = mono_ms(), deadline = t0 + (int64_t)timeout * 1000;
    bool started = false;
    while (rc == MG_EXIT_OK && !mg_cli_stop) {
        int lr = mosquitto_loop(m, 20, 1);
        if (ps.conn_rc != 0) {
            fprintf(stderr, "update push: the broker refused the connection: %s\n",
                    mosquitto_connack_string(ps.conn_rc));
            rc = MG_EXIT_INTERNAL;
            break;
        }
        if (lr != MOSQ_ERR_SUCCESS) {
            if (mono_ms() > deadline)
                break;
            usleep(200000);
            (void)mosquitto_reconnect(m);
            continue;
        }
        if (ps.connected && ps.subscribed) {
            if (!started) {
                for (size_t i = 0; i < ps.n; i++)
                    ps.d[i].progress_ms = mono_ms();
                started = true;
            }
            push_step(m, &ps);
        }
        size_t done = 0;
        for (size_t i = 0; i < ps.n; i++)
            done += ps.d[i].st == PD_OK || ps.d[i].st == PD_FAIL;
        if (done == ps.n || mono_ms() > deadline)
            break;
    }
    bool all = rc == MG_EXIT_OK;
    for (size_t i = 0; rc == MG_EXIT_OK && i < ps.n; i++) {
        pdev *d = &ps.d[i];
        if (d->st == PD_OK) {
            printf("%s update_ok %" PRId64 "\n", d->name, ps.seq);
        } else {
            all = false;
            printf("%s update_failed %" PRId64 " %s\n", d->name, ps.seq,
                   d->st == PD_FAIL ? d->reason : "timeout");
        }
    }
    fflush(stdout);
    if (m != NULL) {
        (void)mosquitto_disconnect(m);
        (void)mosquitto_loop(m, 100, 1);
        mosquitto_destroy(m);
    }
    mosquitto_lib_cleanup();
    if (rc == MG_EXIT_OK)
        fprintf(stderr, "update push: sequence %" PRId64 ", %zu octets to %zu device(s) in %.1f s\n",
                ps.seq, imgl, ps.n, (double)(mono_ms() - t0) / 1000.0);
    free(env);
    free(img);
    free(ps.d);
    return rc != MG_EXIT_OK ? rc : all ? MG_EXIT_OK : MG_EXIT_REJECT;
}

int mg_cmd_update(int argc, char **argv)
{
    static const mg_cmd table[] = {
        {"create", upd_create, "build and sign a SUIT envelope for an image"},
        {"inspect", upd_inspect, "print a SUIT envelope's manifest without verifying it"},
        {"verify", upd_verify, "verify a SUIT envelope (and an image) as a device does"},
        {"push", upd_push, "deliver an update over MQTT in chunks, or a small one over SMS"},
    };
    return mg_cli_dispatch("m2mguard update", table, sizeof(table) / sizeof(table[0]), argc - 1,
                           argv + 1);
}
