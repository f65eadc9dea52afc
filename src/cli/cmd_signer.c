/* `m2mguard signer add|list|revoke`: the operators' command-signing keys and
 * their policy roles (issue 12; docs/commands.md "Policy"). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/cose.h"
#include "m2mguard/keyref.h"
#include "workdir.h"

#define SIGNER_DIR_HELP                                                                           \
    "  --dir DIR    working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
#define SIGNER_EXIT_HELP                                                                          \
    "exit: 0 done; 1 refused (kid taken, already revoked); 2 bad command line;\n"               \
    "      3 no working directory, unreadable key or no such signer; 4 internal failure.\n"

static const char add_usage[] =
    "usage: m2mguard signer add KID --role ROLE (--pub FILE | --key KEYREF) [--dir DIR]\n"
    "\n"
    "Registers an operator key that signs commands (m2mguard send --sign). The\n"
    "gateway and the broker plugin verify signed commands with the registered\n"
    "keys and apply the roles of WORKDIR/policy.yaml (docs/commands.md).\n"
    "  KID          the key id put in the COSE header: 1..32 of A-Z a-z 0-9 . _ -\n"
    "  --role ROLE  the signer's policy role: 1..31 of A-Z a-z 0-9 . _ -\n"
    "  --pub FILE   a PEM public key or certificate (P-256: ES256; Ed25519: EdDSA)\n"
    "  --key KEYREF or the public half of a private key: a PEM file or a pkcs11: URI\n"
    "               (only the public key is stored)\n" SIGNER_DIR_HELP SIGNER_EXIT_HELP;

static const char list_usage[] =
    "usage: m2mguard signer list [--json] [--dir DIR]\n"
    "\n"
    "One line per signer, tab-separated: kid alg role status created (ISO-8601 UTC)\n"
    "public-key (hex). --json: a JSON array of objects with those keys.\n" SIGNER_DIR_HELP
        SIGNER_EXIT_HELP;

static const char revoke_usage[] =
    "usage: m2mguard signer revoke KID [--dir DIR]\n"
    "\n"
    "Revokes a signer: commands it signed are refused by the gateway and the broker\n"
    "plugin from now on, also those already queued. Devices hold their own trust\n"
    "anchors: rotate them with a signed anchor-rotate command.\n" SIGNER_DIR_HELP
        SIGNER_EXIT_HELP;

bool mg_cli_signer_pub(EVP_PKEY *k, int64_t *alg, uint8_t *pub, size_t *pub_len)
{
    size_t n = 0;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
        *alg = MG_COSE_ALG_EDDSA;
        n = MG_SIGNER_PUB_MAX; /* in: room; out: length */
        if (EVP_PKEY_get_raw_public_key(k, pub, &n) != 1 || n != 32)
            return false;
    } else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
        /* A key held in a token (pkcs11: through the engine) does not answer
         * the parameter queries; its SubjectPublicKeyInfo, parsed again,
         * does, and so does a key in memory. */
        unsigned char *der = NULL;
        int dl = i2d_PUBKEY(k, &der);
        const unsigned char *dp = der;
        EVP_PKEY *pk = dl > 0 ? d2i_PUBKEY(NULL, &dp, dl) : NULL;
        OPENSSL_free(der);
        if (pk == NULL)
            return false;
        char grp[32];
        bool ok = EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp),
                                                 NULL) == 1 &&
                  strcmp(grp, "prime256v1") == 0 &&
                  EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
                                                  MG_SIGNER_PUB_MAX, &n) == 1 &&
                  n == 65 && pub[0] == 0x04;
        EVP_PKEY_free(pk);
        if (!ok)
            return false;
        *alg = MG_COSE_ALG_ES256;
    } else
        return false;
    *pub_len = n;
    return true;
}

/* Signs tbs with k (inside the token for a pkcs11: key) and gives the COSE
 * form: raw r || s for ES256 (RFC 9053 2.1), the 64 octets for Ed25519. */
bool mg_cli_sign_raw(EVP_PKEY *k, int64_t alg, const uint8_t *tbs, size_t tbs_len,
                     uint8_t sig[MG_SIG_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t n = sizeof(der);
    bool ok = md != NULL &&
              EVP_DigestSignInit(md, NULL, alg == MG_COSE_ALG_ES256 ? EVP_sha256() : NULL, NULL,
                                 k) == 1 &&
              EVP_DigestSign(md, der, &n, tbs, tbs_len) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return false;
    if (alg == MG_COSE_ALG_EDDSA) {
        if (n != MG_SIG_LEN)
            return false;
        memcpy(sig, der, MG_SIG_LEN);
        return true;
    }
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    if (es == NULL)
        return false;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    ok = BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
    ECDSA_SIG_free(es);
    return ok;
}

static bool kid_ok(const char *kid)
{
    size_t n = strlen(kid);
    if (n == 0 || n > MG_SIGNER_KID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = kid[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int signer_add(int argc, char **argv)
{
    static const char path[] = "m2mguard signer add";
    enum { L_ROLE = 256, L_PUB, L_KEY, L_DIR };
    static const struct option lo[] = {
        {"role", required_argument, NULL, L_ROLE}, {"pub", required_argument, NULL, L_PUB},
        {"key", required_argument, NULL, L_KEY},   {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *role = NULL, *pubf = NULL, *keyref = NULL, *dir = NULL;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(add_usage, stdout); return MG_EXIT_OK;
        case L_ROLE: role = optarg; break;
        case L_PUB: pubf = optarg; break;
        case L_KEY: keyref = optarg; break;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(path, "expected exactly one KID");
    if (role == NULL)
        return mg_cli_usage_error(path, "--role is required");
    if ((pubf == NULL) == (keyref == NULL))
        return mg_cli_usage_error(path, "give one of --pub FILE or --key KEYREF");
    const char *kid = argv[optind];
    if (!kid_ok(kid))
        return mg_cli_usage_error(path, "invalid KID: use 1..32 of A-Z a-z 0-9 . _ -");
    if (!mg_store_role_valid(role) || strlen(role) >= MG_ROLE_MAX)
        return mg_cli_usage_error(path, "invalid --role: use 1..31 of A-Z a-z 0-9 . _ -");
    EVP_PKEY *k = NULL;
    char why[256] = "";
    mg_err e = pubf != NULL ? mg_keyref_load_public(pubf, &k, NULL, why, sizeof(why))
                            : mg_keyref_load_private(keyref, &k, why, sizeof(why));
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s: %s\n", path, pubf != NULL ? pubf : keyref, why);
        return MG_EXIT_INPUT;
    }
    mg_signer g;
    memset(&g, 0, sizeof(g));
    bool ok = mg_cli_signer_pub(k, &g.alg, g.pub, &g.pub_len);
    EVP_PKEY_free(k);
    if (!ok) {
        fprintf(stderr, "%s: %s: not a P-256 or Ed25519 key\n", path, pubf != NULL ? pubf : keyref);
        return MG_EXIT_INPUT;
    }
    (void)snprintf(g.kid, sizeof(g.kid), "%s", kid);
    (void)snprintf(g.role, sizeof(g.role), "%s", role);
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    e = mg_store_signer_add(w.store, &g);
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, mg_store_errmsg(w.store));
        mg_workdir_close(&w);
        return e == MG_ERR_ARG ? MG_EXIT_REJECT : mg_store_exit(e);
    }
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time = (int64_t)time(NULL);
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "cli");
    (void)snprintf(ev.kind, sizeof(ev.kind), "signer_added");
    (void)snprintf(ev.reason, sizeof(ev.reason), "signer %s (%s) role %s", g.kid,
                   g.alg == MG_COSE_ALG_ES256 ? "ES256" : "EdDSA", g.role);
    if (mg_store_event_add(w.store, &ev) != MG_OK)
        fprintf(stderr, "%s: event not recorded: %s\n", path, mg_store_errmsg(w.store));
    printf("added signer %s (%s, role %s)\n", g.kid, g.alg == MG_COSE_ALG_ES256 ? "ES256" : "EdDSA",
           g.role);
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}

typedef struct list_ctx {
    bool json;
    size_t n;
} list_ctx;

static bool list_one(void *ctx, const mg_signer *g)
{
    list_ctx *l = ctx;
    char created[32], hex[2 * MG_SIGNER_PUB_MAX + 1];
    mg_time_iso(g->created, created);
    for (size_t i = 0; i < g->pub_len; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", g->pub[i]);
    hex[2 * g->pub_len] = '\0';
    const char *alg = g->alg == MG_COSE_ALG_ES256 ? "ES256" : "EdDSA";
    if (l->json) {
        printf("%s{\"kid\":", l->n ? "," : "");
        mg_json_str(stdout, g->kid);
        printf(",\"alg\":\"%s\",\"role\":", alg);
        mg_json_str(stdout, g->role);
        printf(",\"status\":\"%s\",\"created\":\"%s\",\"public_key\":\"%s\"}",
               mg_signer_status_name(g->status), created, hex);
    } else {
        printf("%s\t%s\t%s\t%s\t%s\t%s\n", g->kid, alg, g->role, mg_signer_status_name(g->status),
               created, hex);
    }
    l->n++;
    return true;
}

static mg_err list_rows(mg_store *s, bool json)
{
    list_ctx l = {json, 0};
    return mg_store_signer_list(s, list_one, &l);
}

static int signer_list(int argc, char **argv)
{
    return mg_workdir_list("m2mguard signer list", list_usage, argc, argv, list_rows);
}

static int signer_revoke(int argc, char **argv)
{
    static const char path[] = "m2mguard signer revoke";
    enum { L_DIR = 256 };
    static const struct option lo[] = {
        {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(revoke_usage, stdout); return MG_EXIT_OK;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(path, "expected exactly one KID");
    const char *kid = argv[optind];
    if (!kid_ok(kid))
        return mg_cli_usage_error(path, "invalid KID: use 1..32 of A-Z a-z 0-9 . _ -");
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    int64_t t = (int64_t)time(NULL);
    mg_err e = mg_store_signer_revoke(w.store, kid, t);
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, mg_store_errmsg(w.store));
        mg_workdir_close(&w);
        return e == MG_ERR_STATE ? MG_EXIT_REJECT : e == MG_ERR_KEY ? MG_EXIT_INPUT : mg_store_exit(e);
    }
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time = t;
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "cli");
    (void)snprintf(ev.kind, sizeof(ev.kind), "signer_revoked");
    (void)snprintf(ev.reason, sizeof(ev.reason), "signer %s", kid);
    if (mg_store_event_add(w.store, &ev) != MG_OK)
        fprintf(stderr, "%s: event not recorded: %s\n", path, mg_store_errmsg(w.store));
    printf("revoked signer %s\n", kid);
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}

int mg_cmd_signer(int argc, char **argv)
{
    static const mg_cmd table[] = {
        {"add", signer_add, "register a command-signing key with a policy role"},
        {"list", signer_list, "list the signers (tab-separated, or --json)"},
        {"revoke", signer_revoke, "revoke a signer"},
    };
    return mg_cli_dispatch("m2mguard signer", table, sizeof(table) / sizeof(table[0]), argc - 1,
                           argv + 1);
}
