/* `m2mguard ca init|issue|server|revoke|crl|list`: the two-tier CA (ca.h) in
 * WORKDIR/ca. Profiles: docs/pki-profile.md. */
#ifdef MG_HAVE_CA
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/ca.h"
#include "m2mguard/keyref.h"
#include "workdir.h"

#define CA_DIR_HELP                                                                               \
    "  --dir DIR    working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT   \
    "); the CA is DIR/ca\n"
#define CA_EXIT_HELP                                                                              \
    "exit: 0 done; 1 refused (CSR fails the checks, CA exists, already revoked, wrong state);\n"  \
    "      2 bad command line; 3 no working directory, CA, device or file; 4 internal failure.\n"
#define CSR_FILE_MAX ((size_t)64 * 1024)

static int ca_exit(mg_err e)
{
    switch (e) {
    case MG_OK: return MG_EXIT_OK;
    case MG_ERR_ARG: return MG_EXIT_USAGE;
    case MG_ERR_KEY: return MG_EXIT_INPUT;
    case MG_ERR_FORMAT:
    case MG_ERR_AUTH:
    case MG_ERR_UNSUPPORTED:
    case MG_ERR_STATE: return MG_EXIT_REJECT;
    default: return MG_EXIT_INTERNAL;
    }
}

static bool parse_pos(const char *path, const char *opt, const char *s, int max, int *v)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || x < 1 || x > max) {
        fprintf(stderr, "%s: %s must be 1..%d\n", path, opt, max);
        return false;
    }
    *v = (int)x;
    return true;
}

static int ca_path(const char *dir, char *out, size_t cap)
{
    char wd[MG_PATH_MAX];
    int rc = mg_workdir_path(dir, wd, sizeof(wd));
    if (rc != MG_EXIT_OK)
        return rc;
    int n = snprintf(out, cap, "%s/ca", wd);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "m2mguard ca: path too long\n");
        return MG_EXIT_USAGE;
    }
    return MG_EXIT_OK;
}

/* Opens the working directory and the CA in it. */
static int open_ca(const char *path, const char *dir, mg_workdir *w, mg_ca **ca)
{
    int rc = mg_workdir_open(dir, w);
    if (rc != MG_EXIT_OK)
        return rc;
    char cdir[MG_PATH_MAX + 8], why[256] = "";
    (void)snprintf(cdir, sizeof(cdir), "%s/ca", w->dir);
    mg_err e = mg_ca_open(cdir, w->store, ca, why, sizeof(why));
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, why);
        mg_workdir_close(w);
        return e == MG_ERR_STATE ? MG_EXIT_INPUT : ca_exit(e);
    }
    return MG_EXIT_OK;
}

/* ---- init ------------------------------------------------------------------ */

static const char init_usage[] =
    "usage: m2mguard ca init [--key p256|p384|rsa2048] [--root-key-out FILE] [--days N]\n"
    "                        [--crl-days N] [--org O] [--issuing-key REF] [--dir DIR]\n"
    "\n"
    "Creates the two-tier CA in DIR/ca: a root CA (20 years) and an issuing CA\n"
    "(5 years) signed by it, their keys (0600), chain.pem, ca.conf and an empty\n"
    "CRL v2 (crl.pem). Refused if DIR/ca already holds a CA.\n"
    "  --key T            key type of both CAs: p256 (default), p384, rsa2048\n"
    "  --root-key-out F   write the root key to F instead of DIR/ca/root.key (offline\n"
    "                     root: keep F away from the server; it is needed only to\n"
    "                     re-issue the issuing CA)\n"
    "  --days N           default validity of issued device/app certificates (365)\n"
    "  --crl-days N       CRL nextUpdate - thisUpdate in days (7)\n"
    "  --org O            subject O of both CAs (m2mguard)\n"
    "  --issuing-key REF  use an existing issuing key instead of generating one: an\n"
    "                     absolute PEM file path or a pkcs11: URI (docs/pkcs11.md) of a\n"
    "                     key generated inside a token, which then never leaves it;\n"
    "                     ca.conf names it and no issuing.key is written (--key then\n"
    "                     applies to the root key only)\n" CA_DIR_HELP CA_EXIT_HELP;

static int ca_init(int argc, char **argv)
{
    static const char path[] = "m2mguard ca init";
    enum { L_KEY = 256, L_ROOT, L_DAYS, L_CRL, L_ORG, L_DIR, L_IKEY };
    static const struct option lo[] = {
        {"key", required_argument, NULL, L_KEY},    {"root-key-out", required_argument, NULL, L_ROOT},
        {"issuing-key", required_argument, NULL, L_IKEY},
        {"days", required_argument, NULL, L_DAYS},  {"crl-days", required_argument, NULL, L_CRL},
        {"org", required_argument, NULL, L_ORG},    {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    mg_ca_init_opts o;
    memset(&o, 0, sizeof(o));
    const char *dir = NULL;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(init_usage, stdout); return MG_EXIT_OK;
        case L_KEY:
            if (!mg_ca_keytype_parse(optarg, &o.keytype))
                return mg_cli_usage_error(path, "--key must be p256, p384 or rsa2048");
            break;
        case L_ROOT: o.root_key_out = optarg; break;
        case L_DAYS:
            if (!parse_pos(path, "--days", optarg, 36500, &o.default_days))
                return MG_EXIT_USAGE;
            break;
        case L_CRL:
            if (!parse_pos(path, "--crl-days", optarg, 3650, &o.crl_days))
                return MG_EXIT_USAGE;
            break;
        case L_ORG:
            if (optarg[0] == '\0' || strlen(optarg) > 64)
                return mg_cli_usage_error(path, "--org must be 1..64 characters");
            o.org = optarg;
            break;
        case L_DIR: dir = optarg; break;
        case L_IKEY:
            if (optarg[0] != '/' && strncmp(optarg, "pkcs11:", 7) != 0)
                return mg_cli_usage_error(path, "--issuing-key must be an absolute path or a pkcs11: URI");
            o.issuing_key = optarg;
            break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error(path, "no arguments expected");
    char cdir[MG_PATH_MAX + 8], why[256] = "";
    int rc = ca_path(dir, cdir, sizeof(cdir));
    if (rc != MG_EXIT_OK)
        return rc;
    /* The working directory must exist (m2mguard init). */
    char wd[MG_PATH_MAX];
    struct stat st;
    if (mg_workdir_path(dir, wd, sizeof(wd)) != MG_EXIT_OK || stat(wd, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: no working directory %s (run 'm2mguard init' first)\n", path, wd);
        return MG_EXIT_INPUT;
    }
    mg_err e = mg_ca_init(cdir, &o, why, sizeof(why));
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, why);
        return ca_exit(e);
    }
    printf("CA created in %s\n", cdir);
    printf("root certificate: %s/root.crt\nissuing certificate: %s/issuing.crt\nchain: %s/chain.pem\n"
           "crl: %s/crl.pem\n", cdir, cdir, cdir, cdir);
    if (o.root_key_out != NULL)
        printf("root key: %s (keep it offline)\n", o.root_key_out);
    if (o.issuing_key != NULL)
        printf("issuing key: %s (existing key, not copied)\n",
               mg_keyref_is_pkcs11(o.issuing_key) ? "pkcs11: URI in ca.conf" : o.issuing_key);
    return MG_EXIT_OK;
}

/* ---- issue ------------------------------------------------------------------ */

static const char issue_usage[] =
    "usage: m2mguard ca issue DEVICE --csr FILE [--days N | --minutes N] [--out FILE] [--dir DIR]\n"
    "       m2mguard ca issue --app NAME --csr FILE [--days N | --minutes N] [--out FILE]\n"
    "       m2mguard ca issue DEVICE --genkey --key-out FILE [--key p256|p384|rsa2048] [--out FILE]\n"
    "\n"
    "Issues a client certificate (docs/pki-profile.md: CN = name, SAN URI\n"
    "urn:m2mguard:dev:NAME or urn:m2mguard:app:NAME, EKU clientAuth, random 16-octet\n"
    "serial) for the key in a PKCS#10 CSR (PEM or DER, at most 16384 octets of DER).\n"
    "The CSR must verify with its own key (proof of possession), name the device or\n"
    "application in its subject CN, and hold a P-256, P-384 or RSA 2048..4096 key.\n"
    "The device must be active. The certificate is recorded in the registry.\n"
    "  --csr FILE     the request\n"
    "  --genkey       make the key and CSR here (tests and demos; a real device makes\n"
    "                 its own key); the key goes to --key-out FILE (0600)\n"
    "  --days N       validity in days (default: ca.conf default_days, 365)\n"
    "  --minutes N    short-lived certificate: validity in minutes\n"
    "  --out FILE     write the certificate (PEM) to FILE (must not exist) and print its\n"
    "                 serial and SHA-256 fingerprint; default: the PEM on stdout\n" CA_DIR_HELP
        CA_EXIT_HELP;

/* Reads a CSR file, PEM or DER, into *der (malloc'ed). */
static int read_csr(const char *path, const char *file, uint8_t **der, size_t *len)
{
    *der = NULL;
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open %s: %s\n", path, file, strerror(errno));
        return MG_EXIT_INPUT;
    }
    uint8_t *buf = malloc(CSR_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "%s: out of memory\n", path);
        return MG_EXIT_INTERNAL;
    }
    size_t n = fread(buf, 1, CSR_FILE_MAX + 1, f);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err || n == 0 || n > CSR_FILE_MAX) {
        free(buf);
        fprintf(stderr, "%s: %s is %s\n", path, file,
                err ? "unreadable" : n == 0 ? "empty" : "too large (more than 64 KiB)");
        return n > CSR_FILE_MAX ? MG_EXIT_REJECT : MG_EXIT_INPUT;
    }
    static const char pem[] = "-----BEGIN ";
    if (n >= sizeof(pem) - 1 && memcmp(buf, pem, sizeof(pem) - 1) == 0) {
        BIO *b = BIO_new_mem_buf(buf, (int)n);
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long dl = 0;
        int ok = b != NULL && PEM_read_bio(b, &name, &header, &data, &dl) == 1;
        BIO_free(b);
        free(buf);
        bool req = ok && (strcmp(name, "CERTIFICATE REQUEST") == 0 ||
                          strcmp(name, "NEW CERTIFICATE REQUEST") == 0);
        if (!req || dl <= 0) {
            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_free(data);
            fprintf(stderr, "%s: %s is not a PEM CERTIFICATE REQUEST\n", path, file);
            return MG_EXIT_REJECT;
        }
        *der = malloc((size_t)dl);
        if (*der != NULL) {
            memcpy(*der, data, (size_t)dl);
            *len = (size_t)dl;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (*der == NULL) {
            fprintf(stderr, "%s: out of memory\n", path);
            return MG_EXIT_INTERNAL;
        }
        return MG_EXIT_OK;
    }
    *der = buf;
    *len = n;
    return MG_EXIT_OK;
}

static void print_fp(FILE *f, const uint8_t fp[32])
{
    for (int i = 0; i < 32; i++)
        fprintf(f, "%02x", fp[i]);
}

static int write_pem_cert(const char *path, const uint8_t *der, size_t len, const char *out)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    BIO *b = BIO_new(BIO_s_mem());
    if (x == NULL || b == NULL || PEM_write_bio_X509(b, x) != 1) {
        X509_free(x);
        BIO_free(b);
        fprintf(stderr, "%s: cannot encode the certificate\n", path);
        return MG_EXIT_INTERNAL;
    }
    X509_free(x);
    char *data = NULL;
    long dl = BIO_get_mem_data(b, &data);
    int rc = MG_EXIT_OK;
    if (out == NULL)
        rc = fwrite(data, 1, (size_t)dl, stdout) == (size_t)dl ? MG_EXIT_OK : MG_EXIT_INTERNAL;
    else
        rc = mg_file_create(out, data, (size_t)dl, 0644);
    BIO_free(b);
    return rc;
}

static int ca_issue(int argc, char **argv)
{
    static const char path[] = "m2mguard ca issue";
    enum { L_APP = 256, L_CSR, L_DAYS, L_MIN, L_OUT, L_GEN, L_KEYOUT, L_KEY, L_DIR };
    static const struct option lo[] = {
        {"app", required_argument, NULL, L_APP},     {"csr", required_argument, NULL, L_CSR},
        {"days", required_argument, NULL, L_DAYS},   {"minutes", required_argument, NULL, L_MIN},
        {"out", required_argument, NULL, L_OUT},     {"genkey", no_argument, NULL, L_GEN},
        {"key-out", required_argument, NULL, L_KEYOUT}, {"key", required_argument, NULL, L_KEY},
        {"dir", required_argument, NULL, L_DIR},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *app = NULL, *csr = NULL, *out = NULL, *key_out = NULL, *dir = NULL;
    bool genkey = false;
    mg_ca_keytype kt = MG_CA_P256;
    mg_ca_issue_opts io;
    memset(&io, 0, sizeof(io));
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(issue_usage, stdout); return MG_EXIT_OK;
        case L_APP: app = optarg; break;
        case L_CSR: csr = optarg; break;
        case L_DAYS:
            if (!parse_pos(path, "--days", optarg, 36500, &io.days))
                return MG_EXIT_USAGE;
            break;
        case L_MIN:
            if (!parse_pos(path, "--minutes", optarg, 527040, &io.minutes))
                return MG_EXIT_USAGE;
            break;
        case L_OUT: out = optarg; break;
        case L_GEN: genkey = true; break;
        case L_KEYOUT: key_out = optarg; break;
        case L_KEY:
            if (!mg_ca_keytype_parse(optarg, &kt))
                return mg_cli_usage_error(path, "--key must be p256, p384 or rsa2048");
            break;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    const char *name = app;
    if (app == NULL) {
        if (argc - optind != 1)
            return mg_cli_usage_error(path, "expected exactly one DEVICE (or --app NAME)");
        name = argv[optind];
    } else if (optind != argc) {
        return mg_cli_usage_error(path, "--app NAME takes no DEVICE");
    }
    if (!mg_store_name_valid(name))
        return mg_cli_usage_error(path, "invalid name: use 1..63 of A-Z a-z 0-9 . _ -");
    if (io.days > 0 && io.minutes > 0)
        return mg_cli_usage_error(path, "--days and --minutes exclude each other");
    if (genkey == (csr != NULL))
        return mg_cli_usage_error(path, "give exactly one of --csr FILE and --genkey");
    if (genkey != (key_out != NULL))
        return mg_cli_usage_error(path, "--genkey needs --key-out FILE (and only it)");

    struct stat st;
    if (out != NULL && lstat(out, &st) == 0) {
        fprintf(stderr, "%s: %s exists; refusing to overwrite it\n", path, out);
        return MG_EXIT_REJECT;
    }
    mg_workdir w;
    mg_ca *ca = NULL;
    int rc = open_ca(path, dir, &w, &ca);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_device d;
    mg_app a;
    memset(&d, 0, sizeof(d));
    memset(&a, 0, sizeof(a));
    mg_err e = app != NULL ? mg_store_app_by_name(w.store, name, &a)
                           : mg_store_device_by_name(w.store, name, &d);
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path,
                e == MG_ERR_KEY ? (app ? "no such application" : "no such device")
                                : mg_store_errmsg(w.store));
        rc = mg_store_exit(e);
        goto done;
    }
    uint8_t *req = NULL, *der = NULL;
    size_t req_len = 0, der_len = 0;
    char why[256] = "";
    if (genkey) {
        e = mg_ca_make_csr(kt, name, key_out, &req, &req_len, why, sizeof(why));
        if (e != MG_OK) {
            fprintf(stderr, "%s: %s\n", path, why);
            rc = ca_exit(e);
            goto done;
        }
    } else if ((rc = read_csr(path, csr, &req, &req_len)) != MG_EXIT_OK) {
        goto done;
    }
    mg_cert rec;
    e = app != NULL ? mg_ca_issue_app(ca, &a, req, req_len, &io, &der, &der_len, &rec, why, sizeof(why))
                    : mg_ca_issue_device(ca, &d, req, req_len, &io, &der, &der_len, &rec, why,
                                         sizeof(why));
    free(req);
    if (e != MG_OK) {
        fprintf(stderr, "%s: refused: %s\n", path, why);
        /* A refused CSR is a security event (the CLI is the operator's path; EST logs its own). */
        mg_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.device_id = d.id;
        (void)snprintf(ev.bearer, sizeof(ev.bearer), "ca");
        (void)snprintf(ev.kind, sizeof(ev.kind), "csr_refused");
        (void)snprintf(ev.reason, sizeof(ev.reason), "%s: %s", name, why);
        if (mg_store_event_add(w.store, &ev) != MG_OK)
            fprintf(stderr, "%s: cannot record the event: %s\n", path, mg_store_errmsg(w.store));
        if (genkey)
            (void)remove(key_out);
        rc = ca_exit(e);
        goto done;
    }
    rc = write_pem_cert(path, der, der_len, out);
    free(der);
    if (rc == MG_EXIT_OK && out != NULL) {
        char nb[32], na[32];
        mg_time_iso(rec.not_before, nb);
        mg_time_iso(rec.not_after, na);
        printf("issued %s certificate for %s\nserial: %s\nsha256: ", app ? "application" : "device",
               name, rec.serial);
        print_fp(stdout, rec.fp);
        printf("\nvalid: %s .. %s\ncertificate: %s\n", nb, na, out);
        if (genkey)
            printf("key: %s\n", key_out);
    }
done:
    mg_ca_close(ca);
    mg_workdir_close(&w);
    return rc;
}

/* ---- server --------------------------------------------------------------- */

static const char server_usage[] =
    "usage: m2mguard ca server NAME (--dns D | --ip A)... --key-out FILE --out FILE [--days N]\n"
    "                          [--dir DIR]\n"
    "\n"
    "Makes a TLS server certificate for the EST server or the broker: a fresh P-256\n"
    "key in --key-out (PEM, 0600) and a certificate (PEM) in --out, signed by the\n"
    "issuing CA: CN = NAME, SAN the --dns names and --ip addresses (each may repeat,\n"
    "at most 16), EKU serverAuth. Not recorded in the device registry.\n"
    "  --days N   validity (default: ca.conf default_days)\n" CA_DIR_HELP CA_EXIT_HELP;

static int ca_server(int argc, char **argv)
{
    static const char path[] = "m2mguard ca server";
    enum { L_DNS = 256, L_IP, L_KEYOUT, L_OUT, L_DAYS, L_DIR };
    static const struct option lo[] = {
        {"dns", required_argument, NULL, L_DNS},       {"ip", required_argument, NULL, L_IP},
        {"key-out", required_argument, NULL, L_KEYOUT}, {"out", required_argument, NULL, L_OUT},
        {"days", required_argument, NULL, L_DAYS},     {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
    };
    const char *dns[17] = {NULL}, *ips[17] = {NULL};
    size_t nd = 0, ni = 0;
    const char *key_out = NULL, *out = NULL, *dir = NULL;
    int days = 0;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(server_usage, stdout); return MG_EXIT_OK;
        case L_DNS:
            if (nd == 16)
                return mg_cli_usage_error(path, "at most 16 --dns");
            dns[nd++] = optarg;
            break;
        case L_IP:
            if (ni == 16)
                return mg_cli_usage_error(path, "at most 16 --ip");
            ips[ni++] = optarg;
            break;
        case L_KEYOUT: key_out = optarg; break;
        case L_OUT: out = optarg; break;
        case L_DAYS:
            if (!parse_pos(path, "--days", optarg, 36500, &days))
                return MG_EXIT_USAGE;
            break;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(path, "expected exactly one NAME");
    if (key_out == NULL || out == NULL || nd + ni == 0)
        return mg_cli_usage_error(path, "--key-out, --out and at least one --dns or --ip are required");
    mg_workdir w;
    mg_ca *ca = NULL;
    int rc = open_ca(path, dir, &w, &ca);
    if (rc != MG_EXIT_OK)
        return rc;
    char why[256] = "";
    mg_err e = mg_ca_issue_server(ca, argv[optind], dns, ips, days, key_out, out, why, sizeof(why));
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, why);
        rc = ca_exit(e);
    } else {
        printf("server certificate %s: %s (key %s)\n", argv[optind], out, key_out);
    }
    mg_ca_close(ca);
    mg_workdir_close(&w);
    return rc;
}

/* ---- revoke ------------------------------------------------------------------ */

static const char revoke_usage[] =
    "usage: m2mguard ca revoke SERIAL [--reason R] [--dir DIR]\n"
    "       m2mguard ca revoke --device NAME [--reason R]\n"
    "       m2mguard ca revoke --app NAME [--reason R]\n"
    "\n"
    "Revokes one certificate (SERIAL: hex as 'ca list' shows it) or every valid\n"
    "certificate of a device or application, in the registry, and rewrites the CRL\n"
    "(DIR/ca/crl.pem). Brokers and EST refuse the certificate from then on.\n"
    "  --reason R   CRLReason (RFC 5280 5.3.1): unspecified (default for a serial),\n"
    "               keyCompromise, cACompromise, affiliationChanged, superseded,\n"
    "               cessationOfOperation (default for --device/--app), certificateHold,\n"
    "               privilegeWithdrawn, aACompromise\n" CA_DIR_HELP CA_EXIT_HELP;

static int ca_revoke(int argc, char **argv)
{
    static const char path[] = "m2mguard ca revoke";
    enum { L_DEV = 256, L_APP, L_REASON, L_DIR };
    static const struct option lo[] = {
        {"device", required_argument, NULL, L_DEV}, {"app", required_argument, NULL, L_APP},
        {"reason", required_argument, NULL, L_REASON}, {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *dev = NULL, *app = NULL, *dir = NULL;
    int reason = -1;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(revoke_usage, stdout); return MG_EXIT_OK;
        case L_DEV: dev = optarg; break;
        case L_APP: app = optarg; break;
        case L_REASON:
            if (!mg_ca_reason_parse(optarg, &reason) || reason == 8)
                return mg_cli_usage_error(path, "unknown --reason (see --help)");
            break;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    int owners = (dev != NULL) + (app != NULL) + (argc - optind);
    if (owners != 1 || argc - optind > 1)
        return mg_cli_usage_error(path, "give exactly one of SERIAL, --device NAME, --app NAME");
    mg_workdir w;
    mg_ca *ca = NULL;
    int rc = open_ca(path, dir, &w, &ca);
    if (rc != MG_EXIT_OK)
        return rc;
    char why[256] = "";
    mg_err e;
    if (dev != NULL || app != NULL) {
        mg_device d;
        mg_app a;
        memset(&d, 0, sizeof(d));
        memset(&a, 0, sizeof(a));
        e = dev != NULL ? mg_store_device_by_name(w.store, dev, &d)
                        : mg_store_app_by_name(w.store, app, &a);
        if (e != MG_OK) {
            fprintf(stderr, "%s: %s\n", path,
                    e == MG_ERR_KEY ? "no such device or application" : mg_store_errmsg(w.store));
            rc = mg_store_exit(e);
            goto done;
        }
        int n = 0;
        e = mg_ca_revoke_owner(ca, d.id, a.id, reason < 0 ? 5 : reason, &n, why, sizeof(why));
        if (e == MG_OK)
            printf("revoked %d certificate%s of %s; CRL rewritten\n", n, n == 1 ? "" : "s",
                   dev != NULL ? dev : app);
    } else {
        e = mg_ca_revoke(ca, argv[optind], reason < 0 ? 0 : reason, why, sizeof(why));
        if (e == MG_OK)
            printf("revoked %s (%s); CRL rewritten\n", argv[optind],
                   mg_ca_reason_name(reason < 0 ? 0 : reason));
    }
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, why);
        rc = ca_exit(e);
    }
done:
    mg_ca_close(ca);
    mg_workdir_close(&w);
    return rc;
}

/* ---- crl ----------------------------------------------------------------------- */

static const char crl_usage[] =
    "usage: m2mguard ca crl [--refresh | --write] [--dir DIR]\n"
    "\n"
    "Prints the CRL (DIR/ca/crl.pem, PEM) on stdout.\n"
    "  --refresh   rewrite it first if less than a third of its period is left\n"
    "              (run it from cron or a timer; the gateway does it on its own)\n"
    "  --write     rewrite it now (new thisUpdate, nextUpdate and CRL number)\n" CA_DIR_HELP
        CA_EXIT_HELP;

static int ca_crl(int argc, char **argv)
{
    static const char path[] = "m2mguard ca crl";
    enum { L_REFRESH = 256, L_WRITE, L_DIR };
    static const struct option lo[] = {
        {"refresh", no_argument, NULL, L_REFRESH}, {"write", no_argument, NULL, L_WRITE},
        {"dir", required_argument, NULL, L_DIR},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool refresh = false, wr = false;
    const char *dir = NULL;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(crl_usage, stdout); return MG_EXIT_OK;
        case L_REFRESH: refresh = true; break;
        case L_WRITE: wr = true; break;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (optind != argc || (refresh && wr))
        return mg_cli_usage_error(path, "no arguments expected; --refresh and --write exclude each other");
    mg_workdir w;
    mg_ca *ca = NULL;
    int rc = open_ca(path, dir, &w, &ca);
    if (rc != MG_EXIT_OK)
        return rc;
    char why[256] = "";
    mg_err e = MG_OK;
    if (wr) {
        e = mg_ca_crl_write(ca, why, sizeof(why));
        if (e == MG_OK)
            fprintf(stderr, "%s: CRL rewritten\n", path);
    } else if (refresh) {
        bool done = false;
        e = mg_ca_crl_refresh(ca, &done, why, sizeof(why));
        if (e == MG_OK)
            fprintf(stderr, "%s: %s\n", path, done ? "CRL rewritten" : "CRL still fresh");
    }
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, why);
        rc = ca_exit(e);
    } else {
        char p[MG_PATH_MAX + 16], buf[4096];
        (void)snprintf(p, sizeof(p), "%s/crl.pem", mg_ca_dir(ca));
        FILE *f = fopen(p, "r");
        if (f == NULL) {
            fprintf(stderr, "%s: cannot open %s: %s\n", path, p, strerror(errno));
            rc = MG_EXIT_INPUT;
        } else {
            size_t n;
            while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                (void)fwrite(buf, 1, n, stdout);
            fclose(f);
        }
    }
    mg_ca_close(ca);
    mg_workdir_close(&w);
    return rc;
}

/* ---- list ----------------------------------------------------------------------- */

static const char list_usage[] =
    "usage: m2mguard ca list [--device NAME | --app NAME] [--json] [--dir DIR]\n"
    "\n"
    "The issued certificates, one line each, tab-separated:\n"
    "  serial owner subject not_before not_after status reason sha256\n"
    "(owner dev:NAME or app:NAME; times ISO-8601 UTC; reason '-' unless revoked).\n"
    "--json: an array of objects with those keys.\n" CA_DIR_HELP CA_EXIT_HELP;

typedef struct list_ctx {
    mg_store *s;
    bool json;
    size_t n;
} list_ctx;

static bool list_one(void *ctx, const mg_cert *c)
{
    list_ctx *l = ctx;
    char owner[MG_NAME_MAX + 8] = "?", nb[32], na[32], fp[65];
    mg_device d;
    mg_app a;
    if (c->device_id > 0 && mg_store_device_by_id(l->s, c->device_id, &d) == MG_OK)
        (void)snprintf(owner, sizeof(owner), "dev:%s", d.name);
    else if (c->app_id > 0 && mg_store_app_by_id(l->s, c->app_id, &a) == MG_OK)
        (void)snprintf(owner, sizeof(owner), "app:%s", a.name);
    mg_time_iso(c->not_before, nb);
    mg_time_iso(c->not_after, na);
    for (size_t i = 0; i < 32; i++)
        (void)snprintf(fp + 2 * i, 3, "%02x", c->fp[i]);
    const char *reason = c->status == MG_CERT_REVOKED ? mg_ca_reason_name(c->reason) : "-";
    if (l->json) {
        printf("%s{\"serial\":\"%s\",\"owner\":", l->n ? "," : "", c->serial);
        mg_json_str(stdout, owner);
        printf(",\"subject\":");
        mg_json_str(stdout, c->subject);
        printf(",\"not_before\":\"%s\",\"not_after\":\"%s\",\"status\":\"%s\",\"reason\":\"%s\","
               "\"sha256\":\"%s\"}",
               nb, na, mg_cert_status_name(c->status), reason, fp);
    } else {
        printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c->serial, owner, c->subject, nb, na,
               mg_cert_status_name(c->status), reason, fp);
    }
    l->n++;
    return true;
}

static int ca_list(int argc, char **argv)
{
    static const char path[] = "m2mguard ca list";
    enum { L_DEV = 256, L_APP, L_JSON, L_DIR };
    static const struct option lo[] = {
        {"device", required_argument, NULL, L_DEV}, {"app", required_argument, NULL, L_APP},
        {"json", no_argument, NULL, L_JSON},        {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *dev = NULL, *app = NULL, *dir = NULL;
    bool json = false;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(list_usage, stdout); return MG_EXIT_OK;
        case L_DEV: dev = optarg; break;
        case L_APP: app = optarg; break;
        case L_JSON: json = true; break;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (optind != argc || (dev != NULL && app != NULL))
        return mg_cli_usage_error(path, "no arguments expected; at most one of --device, --app");
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_device d;
    mg_app a;
    memset(&d, 0, sizeof(d));
    memset(&a, 0, sizeof(a));
    mg_err e = MG_OK;
    if (dev != NULL)
        e = mg_store_device_by_name(w.store, dev, &d);
    else if (app != NULL)
        e = mg_store_app_by_name(w.store, app, &a);
    if (e == MG_OK) {
        list_ctx l = {w.store, json, 0};
        if (json)
            printf("[");
        e = mg_store_cert_list(w.store, d.id, a.id, false, list_one, &l);
        if (json)
            printf("]\n");
    }
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path,
                e == MG_ERR_KEY ? "no such device or application" : mg_store_errmsg(w.store));
        rc = mg_store_exit(e);
    }
    mg_workdir_close(&w);
    return rc;
}

int mg_cmd_ca(int argc, char **argv)
{
    static const mg_cmd table[] = {
        {"init", ca_init, "create the two-tier CA (root, issuing) in WORKDIR/ca"},
        {"issue", ca_issue, "issue a device or application certificate from a CSR"},
        {"server", ca_server, "make a TLS server certificate and key (EST, broker)"},
        {"revoke", ca_revoke, "revoke a certificate (or all of a device) and rewrite the CRL"},
        {"crl", ca_crl, "print the CRL; --refresh / --write rewrite it"},
        {"list", ca_list, "list the issued certificates"},
    };
    return mg_cli_dispatch("m2mguard ca", table, sizeof(table) / sizeof(table[0]), argc - 1,
                           argv + 1);
}
#else
typedef int mg_cmd_ca_unused; /* ISO C: a translation unit is not empty */
#endif
