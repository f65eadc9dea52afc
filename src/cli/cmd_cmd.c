/* `m2mguard cmd sign|verify|inspect`: signed commands (COSE_Sign1, issue 12,
 * docs/commands.md) on the command line. The core (src/core/cose.c) does the
 * work; this file reads PEM keys with OpenSSL and turns them into the raw
 * keys of the crypto interface. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli.h"
#include "commands.h"
#include "workdir.h"
#include "m2mguard/cose.h"
#include "m2mguard/keyref.h"
#include "m2mguard/crypto.h"

#define MAX_ANCHORS 16

static const char sign_usage[] =
    "usage: m2mguard cmd sign --key REF --kid KID --device NAME --seq N --command TEXT\n"
    "       [--args TEXT] [--iat SECONDS] [--ttl SECONDS] [--out FILE]\n"
    "\n"
    "Signs a command for one device as a COSE_Sign1 (RFC 9052, tag 18) whose\n"
    "payload is the deterministic CBOR map of docs/commands.md, and prints it as\n"
    "lower-case hex on one line (or writes the binary to --out FILE, mode 0644).\n"
    "\n"
    "  --key REF       private key: a PEM file (mode 0600) or a pkcs11: URI (the key\n"
    "                  signs inside the token, docs/pkcs11.md): EC P-256 signs\n"
    "                  ES256 (-7), Ed25519 signs EdDSA (-8); mode 0600 or 0400\n"
    "  --kid KID       key id, 1..32 printable characters, as the device knows it\n"
    "  --device NAME   audience: the device name, 1..64 printable characters\n"
    "  --seq N         sequence number, 1..2^63-1, higher than the device's last\n"
    "  --command TEXT  the command, 1..255 printable ASCII characters\n"
    "  --args TEXT     arguments, 0..255 printable ASCII characters (optional)\n"
    "  --iat SECONDS   issued-at, seconds since the epoch (default: now)\n"
    "  --ttl SECONDS   validity: expiry = iat + ttl (default 300)\n"
    "  --out FILE      write the binary COSE_Sign1 to FILE (must not exist)\n"
    "  -h, --help      print this help\n"
    "\n"
    "Exit codes: 0 ok, 2 bad command line, 3 unreadable or unsuitable key,\n"
    "4 crypto failure.\n";

static const char verify_usage[] =
    "usage: m2mguard cmd verify --anchor KID=FILE [--anchor KID=FILE ...] --device NAME\n"
    "       [--last-seq N] [--now SECONDS] (--in FILE | HEX)\n"
    "\n"
    "Verifies a signed command as a device does (mg_cmd_verify): size, deterministic\n"
    "CBOR, the trust anchor named by the kid, the algorithm that anchor allows, the\n"
    "signature, audience, issued-at/expiry and sequence. Prints\n"
    "'ok seq=N kid=KID alg=ES256|EdDSA command=TEXT [args=TEXT]' on success; on a\n"
    "refusal prints 'refused: REASON' on stderr (REASON one of: oversized,\n"
    "malformed, not_deterministic, duplicate_key, trailing_bytes, unknown_kid,\n"
    "alg_not_allowed, bad_signature, kid_mismatch, wrong_audience, not_yet_valid,\n"
    "expired, seq_not_higher, unsupported, crypto).\n"
    "\n"
    "  --anchor KID=FILE  a trust anchor: key id and its public key, PEM\n"
    "                     (SubjectPublicKeyInfo): EC P-256 allows ES256 only,\n"
    "                     Ed25519 allows EdDSA only; up to 16\n"
    "  --device NAME      this device's name (the audience to expect)\n"
    "  --last-seq N       the last accepted sequence number (default 0)\n"
    "  --now SECONDS      the device clock (default: now)\n"
    "  --in FILE          read the binary COSE_Sign1 from FILE (else HEX)\n"
    "  -h, --help         print this help\n"
    "\n"
    "Exit codes: 0 verified, 1 refused, 2 bad command line, 3 unreadable input\n"
    "or key.\n";

static const char inspect_usage[] =
    "usage: m2mguard cmd inspect (--in FILE | HEX)\n"
    "\n"
    "Prints the fields of a signed command, one 'name: value' per line, WITHOUT\n"
    "verifying its signature (the last line says so). The structure is checked as\n"
    "mg_cmd_verify checks it (deterministic CBOR, required fields, limits).\n"
    "\n"
    "  --in FILE   read the binary COSE_Sign1 from FILE (else HEX)\n"
    "  -h, --help  print this help\n"
    "\n"
    "Exit codes: 0 ok, 2 bad command line, 3 unreadable or malformed input.\n";

/* ---- keys ----------------------------------------------------------------------- */

/* Public key from a PEM file to raw; the algorithm it allows. */
static int load_public(const char *path, int64_t *alg, uint8_t *pub, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cmd verify: --anchor %s: %s\n", path, strerror(errno));
        return MG_EXIT_INPUT;
    }
    EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    int rc = MG_EXIT_INPUT;
    if (pk != NULL && EVP_PKEY_is_a(pk, "ED25519")) {
        *len = cap;
        if (EVP_PKEY_get_raw_public_key(pk, pub, len) == 1 && *len == MG_ED25519_PUB_LEN) {
            *alg = MG_COSE_ALG_EDDSA;
            rc = MG_EXIT_OK;
        }
    } else if (pk != NULL && EVP_PKEY_is_a(pk, "EC")) {
        char group[64] = "";
        if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           NULL) == 1 &&
            strcmp(group, "prime256v1") == 0 &&
            EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, cap,
                                            len) == 1 &&
            *len == MG_ES256_PUB_LEN && pub[0] == 0x04) {
            *alg = MG_COSE_ALG_ES256;
            rc = MG_EXIT_OK;
        }
    }
    EVP_PKEY_free(pk);
    if (rc != MG_EXIT_OK)
        fprintf(stderr, "cmd verify: --anchor %s: not an EC P-256 or Ed25519 public key (PEM)\n",
                path);
    return rc;
}

/* ---- helpers -------------------------------------------------------------------- */

static bool printable_text(const char *s, size_t lo, size_t hi)
{
    size_t n = strlen(s);
    if (n < lo || n > hi)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* The input message: --in FILE (binary) or a hex argument. */
static int read_input(const char *path, const char *what, int argc, char **argv, uint8_t *buf,
                      size_t cap, size_t *len)
{
    if (path != NULL) {
        if (optind != argc)
            return mg_cli_usage_error(what, "give --in FILE or HEX, not both");
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            fprintf(stderr, "%s: %s: %s\n", what, path, strerror(errno));
            return MG_EXIT_INPUT;
        }
        size_t n = fread(buf, 1, cap, f);
        int more = fgetc(f);
        int err = ferror(f);
        fclose(f);
        if (err) {
            fprintf(stderr, "%s: %s: read error\n", what, path);
            return MG_EXIT_INPUT;
        }
        if (more != EOF) { /* larger than cap: mg_cmd_verify calls it oversized */
            *len = cap;
            return -1;
        }
        *len = n;
        return MG_EXIT_OK;
    }
    if (optind + 1 != argc)
        return mg_cli_usage_error(what, "give one HEX argument or --in FILE");
    const char *hex = argv[optind];
    if (strlen(hex) / 2 > cap) {
        *len = cap;
        return -1;
    }
    long n = mg_cli_hex("signed command", hex, buf, cap, 0);
    if (n < 0)
        return MG_EXIT_INPUT;
    *len = (size_t)n;
    return MG_EXIT_OK;
}

static void print_text(const char *label, const char *p, size_t n)
{
    printf("%s%.*s", label, (int)n, p);
}

static const char *alg_name(int64_t alg)
{
    return alg == MG_COSE_ALG_ES256 ? "ES256" : alg == MG_COSE_ALG_EDDSA ? "EdDSA" : "?";
}

/* ---- sign ----------------------------------------------------------------------- */

static int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},    {"kid", required_argument, NULL, 'i'},
        {"device", required_argument, NULL, 'd'}, {"seq", required_argument, NULL, 's'},
        {"command", required_argument, NULL, 'c'}, {"args", required_argument, NULL, 'a'},
        {"iat", required_argument, NULL, 't'},    {"ttl", required_argument, NULL, 'l'},
        {"out", required_argument, NULL, 'o'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *key = NULL, *kid = NULL, *dev = NULL, *text = NULL, *args = NULL, *out = NULL;
    uint64_t seq = 0, iat = (uint64_t)mg_now_s(), ttl = 300;
    bool have_seq = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'i': kid = optarg; break;
        case 'd': dev = optarg; break;
        case 'c': text = optarg; break;
        case 'a': args = optarg; break;
        case 'o': out = optarg; break;
        case 's':
            if (!mg_cli_parse_u64(optarg, (uint64_t)INT64_MAX, &seq) || seq == 0)
                return mg_cli_usage_error("m2mguard cmd sign", "--seq: 1..2^63-1");
            have_seq = true;
            break;
        case 't':
            if (!mg_cli_parse_u64(optarg, UINT64_MAX / 2, &iat))
                return mg_cli_usage_error("m2mguard cmd sign", "--iat: seconds since the epoch");
            break;
        case 'l':
            if (!mg_cli_parse_u64(optarg, UINT32_MAX, &ttl) || ttl == 0)
                return mg_cli_usage_error("m2mguard cmd sign", "--ttl: 1..4294967295 seconds");
            break;
        case 'h': fputs(sign_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard cmd sign", "unknown option or missing argument");
        }
    }
    if (optind != argc || key == NULL || kid == NULL || dev == NULL || text == NULL || !have_seq)
        return mg_cli_usage_error("m2mguard cmd sign",
                                  "--key, --kid, --device, --seq and --command are required");
    if (!printable_text(kid, 1, MG_CMD_KID_MAX) || !printable_text(dev, 1, MG_CMD_AUD_MAX) ||
        !printable_text(text, 1, MG_CMD_TEXT_MAX) ||
        (args != NULL && !printable_text(args, 0, MG_CMD_ARGS_MAX)))
        return mg_cli_usage_error("m2mguard cmd sign",
                                  "--kid 1..32, --device 1..64, --command 1..255, --args 0..255 "
                                  "printable ASCII characters");
    /* The key by reference (keyref.h): a 0600 PEM file, or a pkcs11: URI whose
     * key signs inside the token. */
    EVP_PKEY *pk = NULL;
    char why[256] = "";
    if (mg_keyref_load_private(key, &pk, why, sizeof(why)) != MG_OK) {
        fprintf(stderr, "cmd sign: --key %s: %s\n", key, why);
        return MG_EXIT_INPUT;
    }
    int64_t alg = 0;
    uint8_t pub[MG_SIGNER_PUB_MAX];
    size_t publ = 0;
    if (!mg_cli_signer_pub(pk, &alg, pub, &publ)) {
        EVP_PKEY_free(pk);
        fprintf(stderr, "cmd sign: --key %s: not an EC P-256 or Ed25519 private key\n", key);
        return MG_EXIT_INPUT;
    }
    mg_signed_cmd sc = {0};
    sc.kid = (const uint8_t *)kid;
    sc.kid_len = strlen(kid);
    sc.audience = dev;
    sc.audience_len = strlen(dev);
    sc.command = text;
    sc.command_len = strlen(text);
    sc.args = args;
    sc.args_len = args != NULL ? strlen(args) : 0;
    sc.seq = seq;
    sc.iat = iat;
    sc.exp = iat + ttl;
    uint8_t payload[MG_CMD_MAX_LEN], tbs[MG_CMD_MAX_LEN + 128], sig[MG_SIG_LEN];
    uint8_t msg[MG_CMD_MAX_LEN];
    size_t pl = 0, tl = 0, n = 0;
    mg_err e = mg_cmd_encode(&sc, payload, sizeof(payload), &pl);
    if (e == MG_OK)
        e = mg_cose_tbs(false, alg, sc.kid, sc.kid_len, payload, pl, tbs, sizeof(tbs), &tl);
    if (e == MG_OK && !mg_cli_sign_raw(pk, alg, tbs, tl, sig))
        e = MG_ERR_CRYPTO;
    EVP_PKEY_free(pk);
    if (e == MG_OK) {
        mg_cose_sig_in si = {.alg = alg, .kid = sc.kid, .kid_len = sc.kid_len, .sig = sig};
        e = mg_cose_assemble(payload, pl, &si, 1, msg, sizeof(msg), &n);
    }
    if (e != MG_OK) {
        fprintf(stderr, "cmd sign: %s\n", mg_strerror(e));
        return e == MG_ERR_ARG || e == MG_ERR_BUF ? MG_EXIT_USAGE : MG_EXIT_INTERNAL;
    }
    if (out != NULL)
        return mg_file_create(out, msg, n, 0644);
    mg_cli_print_hex(stdout, msg, n);
    putchar('\n');
    return MG_EXIT_OK;
}

/* ---- verify / inspect ----------------------------------------------------------- */

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"anchor", required_argument, NULL, 'a'}, {"device", required_argument, NULL, 'd'},
        {"last-seq", required_argument, NULL, 's'}, {"now", required_argument, NULL, 't'},
        {"in", required_argument, NULL, 'i'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static uint8_t pubs[MAX_ANCHORS][MG_ES256_PUB_LEN];
    static char kids[MAX_ANCHORS][MG_CMD_KID_MAX + 1];
    mg_cmd_anchor anchors[MAX_ANCHORS];
    size_t na = 0;
    const char *dev = NULL, *in = NULL;
    uint64_t last = 0, now = (uint64_t)mg_now_s();
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': {
            const char *eq = strchr(optarg, '=');
            size_t kl = eq != NULL ? (size_t)(eq - optarg) : 0;
            if (eq == NULL || kl == 0 || kl > MG_CMD_KID_MAX || eq[1] == '\0')
                return mg_cli_usage_error("m2mguard cmd verify", "--anchor KID=FILE (KID 1..32)");
            if (na == MAX_ANCHORS)
                return mg_cli_usage_error("m2mguard cmd verify", "at most 16 --anchor");
            memcpy(kids[na], optarg, kl);
            kids[na][kl] = '\0';
            anchors[na].kid = (const uint8_t *)kids[na];
            anchors[na].kid_len = kl;
            rc = load_public(eq + 1, &anchors[na].alg, pubs[na], sizeof(pubs[na]),
                             &anchors[na].pub_len);
            if (rc != MG_EXIT_OK)
                return rc;
            anchors[na].pub = pubs[na];
            na++;
            break;
        }
        case 'd': dev = optarg; break;
        case 'i': in = optarg; break;
        case 's':
            if (!mg_cli_parse_u64(optarg, UINT64_MAX, &last))
                return mg_cli_usage_error("m2mguard cmd verify", "--last-seq: a number");
            break;
        case 't':
            if (!mg_cli_parse_u64(optarg, UINT64_MAX, &now))
                return mg_cli_usage_error("m2mguard cmd verify", "--now: seconds since the epoch");
            break;
        case 'h': fputs(verify_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard cmd verify", "unknown option or missing argument");
        }
    }
    if (na == 0 || dev == NULL)
        return mg_cli_usage_error("m2mguard cmd verify", "--anchor and --device are required");
    uint8_t buf[MG_CMD_MAX_LEN + 1];
    size_t n = 0;
    rc = read_input(in, "m2mguard cmd verify", argc, argv, buf, sizeof(buf), &n);
    if (rc > 0)
        return rc;
    mg_signed_cmd sc;
    mg_cmd_why why = MG_CMD_MALFORMED;
    mg_err e = mg_cmd_verify(buf, n, anchors, na, dev, last, now, &sc, &why);
    if (e != MG_OK) {
        fprintf(stderr, "refused: %s\n", mg_cmd_why_str(why));
        return why == MG_CMD_CRYPTO ? MG_EXIT_INTERNAL : MG_EXIT_REJECT;
    }
    printf("ok seq=%llu kid=%s alg=%s", (unsigned long long)sc.seq, kids[sc.anchor],
           alg_name(sc.alg));
    print_text(" command=", sc.command, sc.command_len);
    if (sc.args != NULL)
        print_text(" args=", sc.args, sc.args_len);
    putchar('\n');
    return MG_EXIT_OK;
}

static int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"in", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *in = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'h': fputs(inspect_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard cmd inspect", "unknown option or missing argument");
        }
    }
    uint8_t buf[MG_CMD_MAX_LEN + 1];
    size_t n = 0;
    int rc = read_input(in, "m2mguard cmd inspect", argc, argv, buf, sizeof(buf), &n);
    if (rc > 0)
        return rc;
    mg_signed_cmd sc;
    mg_cmd_why why = MG_CMD_MALFORMED;
    if (mg_cmd_inspect(buf, n, &sc, &why) != MG_OK) {
        fprintf(stderr, "cmd inspect: %s\n", mg_cmd_why_str(why));
        return MG_EXIT_INPUT;
    }
    printf("alg: %s\nkid: ", alg_name(sc.alg));
    for (size_t i = 0; i < sc.kid_len; i++) /* kid: printable or shown as hex */
        if (sc.kid[i] < 0x20 || sc.kid[i] > 0x7e) {
            printf("hex:");
            mg_cli_print_hex(stdout, sc.kid, sc.kid_len);
            goto kid_done;
        }
    printf("%.*s", (int)sc.kid_len, (const char *)sc.kid);
kid_done:
    print_text("\naudience: ", sc.audience, sc.audience_len);
    print_text("\ncommand: ", sc.command, sc.command_len);
    if (sc.args != NULL)
        print_text("\nargs: ", sc.args, sc.args_len);
    printf("\nseq: %llu\niat: %llu\nexp: %llu\nsignature: NOT VERIFIED (use cmd verify)\n",
           (unsigned long long)sc.seq, (unsigned long long)sc.iat, (unsigned long long)sc.exp);
    return MG_EXIT_OK;
}

int mg_cmd_cmd(int argc, char **argv)
{
    static const mg_cmd table[] = {
        {"sign", cmd_sign, "sign a command for a device (COSE_Sign1, ES256 or Ed25519)"},
        {"verify", cmd_verify, "verify a signed command as the device does"},
        {"inspect", cmd_inspect, "print a signed command's fields without verifying it"},
    };
    return mg_cli_dispatch("m2mguard cmd", table, sizeof(table) / sizeof(table[0]), argc - 1,
                           argv + 1);
}
