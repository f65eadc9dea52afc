/* `m2mguard device add|import|list|show|quarantine|activate|revoke|delete`: the device
 * registry. Keys are never printed; they leave only in the provisioning file. */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cli.h"
#include "commands.h"
#include "devimport.h"
#include "m2mguard/crypto.h"
#include "m2mguard/device.h"
#include "m2mguard/sms.h"
#include "workdir.h"
#ifdef MG_HAVE_CA
#include "m2mguard/ca.h"
#endif

enum { O_DIR = 1, O_JSON = 2, O_YES = 4, O_ADD = 8, O_REASON = 16 };

#define TOKEN_TTL_DEFAULT 72 /* hours */

typedef struct dev_opts {
    const char *dir, *msisdn, *cls, *alg, *tar, *name, *ttl, *reason;
    bool json, yes, ip, token;
    const char *anchor[MG_DEV_ANCHORS + 1]; /* --anchor, in order */
    size_t n_anchor;
    const char *sig, *two;                  /* --signed, --two-signers */
} dev_opts;

typedef struct dev_sub {
    const char *path;
    const char *usage;
    unsigned allowed;
    bool takes_name;
} dev_sub;

#define DIR_HELP "  --dir DIR    working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
#define EXIT_HELP                                                                                 \
    "exit: 0 done; 1 refused (name or MSISDN taken, file exists, wrong state);\n"                 \
    "      2 bad command line; 3 no working directory or no such device; 4 internal failure.\n"

static const dev_sub sub_add = {
    "m2mguard device add",
    "usage: m2mguard device add NAME --msisdn +E164 [--class C] [--alg A] [--tar HEX6] [--dir DIR]\n"
    "       m2mguard device add NAME --ip [--msisdn +E164 ...] [--enrol-token [--token-ttl H]]\n"
    "       ... [--anchor KID:ALG:PUBHEX ...] [--signed CMD,...] [--two-signers CMD,...]\n"
    "\n"
    "Registers a device. With an MSISDN (SMS bearer) it gets fresh random SMS keys\n"
    "(KIc and KID, key version 1, active; counters 0) and its provisioning file\n"
    "DIR/devices/NAME.prov, mode 0600, which the device side loads. The keys are\n"
    "printed nowhere else: move the file to the device and delete it here. Refuses\n"
    "to overwrite an existing file. With --ip it speaks the IP bearer (MQTT with a\n"
    "certificate); --ip without --msisdn is IP-only: no SMS keys, no .prov file.\n"
    "  NAME         [A-Za-z0-9._-], 1..63 characters\n"
    "  --msisdn N   the device's number: '+' and 1..15 digits\n"
    "  --ip         IP bearer (with --msisdn too: dual-bearer)\n"
    "  --enrol-token  make a one-time EST enrolment token (needs --ip): 16 random\n"
    "               octets, printed ONCE as 'enrol-token: <32 hex>'; only its SHA-256\n"
    "               is stored\n"
    "  --token-ttl H  hours the token stays valid (1..8760, default 72)\n"
    "  --class C    free device class (same characters as NAME; default none)\n"
    "  --alg A      aes (AES-128, default), aes192, aes256, 3des2, 3des3 (legacy only)\n"
    "  --tar HEX6   TAR of the device application (default 4d4701)\n"
    "Signed commands (docs/device.md; the device verifies them itself):\n"
    "  --anchor KID:ALG:PUBHEX  a trust anchor: an operator key id (1..32 printable,\n"
    "               no ':' ','), ES256 or EdDSA, the public key in hex (65 octets\n"
    "               04||x||y, or 32); up to 4, repeat the option\n"
    "  --signed CMD,...       commands the device refuses unless signed ('*': all)\n"
    "  --two-signers CMD,...  commands the device refuses unless signed by two anchors\n"
    "These are written as anchor=, signed=, two_signers= lines into NAME.prov (SMS),\n"
    "and for an IP device into DIR/devices/NAME.anchors (for 'agent run --anchors').\n"
    DIR_HELP EXIT_HELP,
    O_DIR | O_ADD, true};
static const dev_sub sub_list = {
    "m2mguard device list",
    "usage: m2mguard device list [--json] [--dir DIR]\n"
    "\n"
    "One line per device, tab-separated:\n"
    "  id name class msisdn status key_version cntr_in cntr_out created\n"
    "(class '-' when none; created in ISO-8601 UTC). --json: a JSON array of objects\n"
    "with those keys.\n" DIR_HELP EXIT_HELP,
    O_DIR | O_JSON, false};
static const dev_sub sub_show = {
    "m2mguard device show",
    "usage: m2mguard device show NAME [--json] [--dir DIR]\n"
    "\n"
    "The device, its TAR and counters, its key versions with their algorithm and\n"
    "state (never the keys), its bearers (IP devices) and its certificates (serial,\n"
    "not_after, status). --json: one JSON object.\n" DIR_HELP EXIT_HELP,
    O_DIR | O_JSON, true};
static const dev_sub sub_quarantine = {
    "m2mguard device quarantine",
    "usage: m2mguard device quarantine NAME [--dir DIR]\n"
    "\n"
    "Messages of the device are refused (each with an event); its keys are kept.\n"
    "Undo with 'm2mguard device activate NAME'. Writes a 'quarantine' event.\n" DIR_HELP EXIT_HELP,
    O_DIR, true};
static const dev_sub sub_activate = {
    "m2mguard device activate",
    "usage: m2mguard device activate NAME [--dir DIR]\n"
    "\n"
    "Lifts a quarantine. A revoked device cannot be activated. Writes an 'activate'\n"
    "event.\n" DIR_HELP EXIT_HELP,
    O_DIR, true};
static const dev_sub sub_revoke = {
    "m2mguard device revoke",
    "usage: m2mguard device revoke NAME [--reason R] [--dir DIR]\n"
    "\n"
    "Revokes the device for good: its keys are overwritten and deleted, its\n"
    "provisioning file (if still in DIR/devices) too; its messages are refused.\n"
    "Every valid certificate of the device is revoked too (CRLReason R, default\n"
    "cessationOfOperation; see 'm2mguard ca revoke --help') and the CRL in DIR/ca\n"
    "rewritten when a CA exists there. Writes a 'revoke' event.\n" DIR_HELP EXIT_HELP,
    O_DIR | O_REASON, true};
static const dev_sub sub_delete = {
    "m2mguard device delete",
    "usage: m2mguard device delete NAME [--yes] [--dir DIR]\n"
    "\n"
    "Deletes the device, its keys (overwritten first), counters, queued commands and\n"
    "provisioning file; its events stay. Its valid certificates are revoked first\n"
    "(cessationOfOperation) and the CRL in DIR/ca rewritten when a CA exists there;\n"
    "if that fails, nothing is deleted. An active device needs --yes.\n"
    "Writes a 'delete' event.\n" DIR_HELP EXIT_HELP,
    O_DIR | O_YES, true};

/* Returns -1 to go on, else the exit code. */
static int parse(const dev_sub *c, int argc, char **argv, dev_opts *o)
{
    enum { L_DIR = 256, L_JSON, L_YES, L_MSISDN, L_CLASS, L_ALG, L_TAR, L_IP, L_TOKEN, L_TTL,
           L_ANCHOR, L_SIGNED, L_TWO, L_REASON };
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, L_DIR},     {"json", no_argument, NULL, L_JSON},
        {"yes", no_argument, NULL, L_YES},           {"msisdn", required_argument, NULL, L_MSISDN},
        {"class", required_argument, NULL, L_CLASS}, {"alg", required_argument, NULL, L_ALG},
        {"tar", required_argument, NULL, L_TAR},     {"help", no_argument, NULL, 'h'},
        {"ip", no_argument, NULL, L_IP},             {"enrol-token", no_argument, NULL, L_TOKEN},
        {"token-ttl", required_argument, NULL, L_TTL}, {"reason", required_argument, NULL, L_REASON},
        {"anchor", required_argument, NULL, L_ANCHOR}, {"signed", required_argument, NULL, L_SIGNED},
        {"two-signers", required_argument, NULL, L_TWO},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    optind = 1;
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "h", longopts, NULL);
        if (ch == -1)
            break;
        unsigned need = ch == L_DIR ? O_DIR : ch == L_JSON ? O_JSON : ch == L_YES ? O_YES
                        : ch == 'h' ? 0 : (ch >= L_MSISDN && ch <= L_TWO) ? O_ADD
                        : ch == L_REASON ? O_REASON : ~0u;
        if (ch == 'h') {
            fputs(c->usage, stdout);
            return MG_EXIT_OK;
        }
        if (ch == '?' || ch == ':' || (need & c->allowed) != need || need == ~0u)
            return mg_cli_usage_error(c->path, ch == ':' ? "option needs an argument"
                                                         : "unknown option");
        switch (ch) {
        case L_DIR: o->dir = optarg; break;
        case L_JSON: o->json = true; break;
        case L_YES: o->yes = true; break;
        case L_MSISDN: o->msisdn = optarg; break;
        case L_CLASS: o->cls = optarg; break;
        case L_ALG: o->alg = optarg; break;
        case L_TAR: o->tar = optarg; break;
        case L_IP: o->ip = true; break;
        case L_TOKEN: o->token = true; break;
        case L_TTL: o->ttl = optarg; break;
        case L_REASON: o->reason = optarg; break;
        case L_ANCHOR:
            if (o->n_anchor >= MG_DEV_ANCHORS)
                return mg_cli_usage_error(c->path, "at most 4 --anchor");
            o->anchor[o->n_anchor++] = optarg;
            break;
        case L_SIGNED: o->sig = optarg; break;
        case L_TWO: o->two = optarg; break;
        default: break;
        }
    }
    int want = c->takes_name ? 1 : 0;
    if (argc - optind != want)
        return mg_cli_usage_error(c->path, want ? "expected exactly one NAME" : "no arguments expected");
    if (want) {
        o->name = argv[optind];
        if (!mg_store_name_valid(o->name)) {
            fprintf(stderr, "%s: invalid device name '%s': use 1..63 of A-Z a-z 0-9 . _ -\n",
                    c->path, o->name);
            return MG_EXIT_USAGE;
        }
    }
    return -1;
}

/* Opens the working directory and finds the device. */
static int open_device(const dev_sub *c, const dev_opts *o, mg_workdir *w, mg_device *d)
{
    int rc = mg_workdir_open(o->dir, w);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_err e = mg_store_device_by_name(w->store, o->name, d);
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", c->path,
                e == MG_ERR_KEY ? "no such device" : mg_store_errmsg(w->store));
        mg_workdir_close(w);
        return mg_store_exit(e);
    }
    return MG_EXIT_OK;
}

/* Parses the command line and finds the device: -1 to go on, else the exit code. */
static int start(const dev_sub *c, int argc, char **argv, dev_opts *o, mg_workdir *w,
                 mg_device *d)
{
    int rc = parse(c, argc, argv, o);
    if (rc >= 0)
        return rc;
    rc = open_device(c, o, w, d);
    return rc == MG_EXIT_OK ? -1 : rc;
}

static int prov_path(const mg_workdir *w, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s/%s.prov", w->dir, MG_DEVICES_DIR, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "m2mguard: path of the provisioning file is too long\n");
        return MG_EXIT_USAGE;
    }
    return MG_EXIT_OK;
}

static mg_err add_event(mg_store *s, int64_t device_id, const char *kind, const char *reason)
{
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.device_id = device_id;
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "cli");
    (void)snprintf(ev.kind, sizeof(ev.kind), "%s", kind);
    (void)snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    return mg_store_event_add(s, &ev);
}

/* Reports a store error, rolls back, closes; returns the exit code. */
static int store_fail(const dev_sub *c, mg_workdir *w, mg_err e)
{
    fprintf(stderr, "%s: %s\n", c->path, mg_store_errmsg(w->store));
    mg_store_rollback(w->store);
    mg_workdir_close(w);
    return mg_store_exit(e);
}

/* ---- add ------------------------------------------------------------------------ */

/* Writes the provisioning file inside the store's transaction, before the
 * commit (mg_store_device_provision). */
typedef struct prov_ctx {
    const char *path;
    const char *sigtext; /* anchor=/signed=/two_signers= lines appended to the .prov, or NULL */
    const char *gateway;
    int rc;       /* exit code of the write */
    bool written; /* the file exists: remove it if the commit fails */
    mg_store *store;
    const uint8_t *token_hash; /* NULL: no enrolment token */
    int64_t token_expires;
} prov_ctx;

/* A one-time enrolment token: 16 random octets; the store keeps SHA-256 of it. */
static int make_token(const char *path, uint8_t tok[16], uint8_t hash[32])
{
    unsigned int hl = 0;
    if (mg_crypto_random(tok, 16) != MG_OK ||
        EVP_Digest(tok, 16, hash, &hl, EVP_sha256(), NULL) != 1 || hl != 32) {
        OPENSSL_cleanse(tok, 16);
        fprintf(stderr, "%s: cannot make the enrolment token\n", path);
        return MG_EXIT_INTERNAL;
    }
    return MG_EXIT_OK;
}

static void print_token(const uint8_t tok[16], int64_t expires)
{
    char exp[32];
    mg_time_iso(expires, exp);
    printf("enrol-token: ");
    mg_cli_print_hex(stdout, tok, 16);
    printf("\nenrol-token-expires: %s\n", exp);
}

/* Appends text to an existing regular file and fsyncs it. */
static int append_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    return ok ? 0 : -1;
}

/* Validates --anchor/--signed/--two-signers into the lines of a .prov /
 * .anchors file (out, cap). 0, or an exit code (message on stderr). */
static int sig_lines(const dev_sub *c, const dev_opts *o, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    static mg_dev_trust t;
    memset(&t, 0, sizeof(t));
    for (size_t i = 0; i < o->n_anchor; i++) {
        mg_dev_anchor a;
        if (mg_dev_anchor_parse(o->anchor[i], strlen(o->anchor[i]), &a) != MG_OK) {
            fprintf(stderr, "%s: --anchor '%s': want KID:ALG:PUBHEX (KID 1..32 printable without "
                            "':' ','; ALG ES256 or EdDSA; 65-octet 04||x||y or 32-octet key)\n",
                    c->path, o->anchor[i]);
            return MG_EXIT_USAGE;
        }
        for (size_t j = 0; j < MG_DEV_ANCHORS; j++)
            if (t.anchor[j].kid_len == a.kid_len && memcmp(t.anchor[j].kid, a.kid, a.kid_len) == 0) {
                fprintf(stderr, "%s: --anchor: key id given twice\n", c->path);
                return MG_EXIT_USAGE;
            }
        if (mg_dev_trust_put(&t, &a) != MG_OK)
            return mg_cli_usage_error(c->path, "at most 4 --anchor");
        char txt[MG_DEV_ANCHOR_TEXT_MAX];
        if (mg_dev_anchor_format(&a, txt, sizeof(txt)) != MG_OK)
            return MG_EXIT_INTERNAL;
        n += (size_t)snprintf(out + n, cap - n, "anchor=%s\n", txt);
    }
    char list[MG_DEV_LIST_MAX];
    const char *lists[2] = {o->sig, o->two};
    const char *keys[2] = {"signed", "two_signers"}, *opts[2] = {"signed", "two-signers"};
    for (size_t i = 0; i < 2; i++) {
        if (lists[i] == NULL)
            continue;
        if (mg_dev_list_set(list, lists[i]) != MG_OK) {
            fprintf(stderr, "%s: --%s: want CMD,CMD,... (names without spaces, at most 127 "
                            "characters) or '*'\n", c->path, opts[i]);
            return MG_EXIT_USAGE;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s=%s\n", keys[i], list);
    }
    if ((o->sig != NULL || o->two != NULL) && o->n_anchor == 0)
        return mg_cli_usage_error(c->path, "--signed/--two-signers need at least one --anchor");
    return n < cap ? 0 : MG_EXIT_INTERNAL;
}

static int anchors_path(const mg_workdir *w, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s/%s.anchors", w->dir, MG_DEVICES_DIR, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "m2mguard: path of the anchors file is too long\n");
        return MG_EXIT_USAGE;
    }
    return MG_EXIT_OK;
}

static mg_err write_prov(void *ctx, const mg_device *d, const mg_keyset *k)
{
    prov_ctx *pc = ctx;
    mg_prov p;
    memset(&p, 0, sizeof(p));
    (void)snprintf(p.name, sizeof(p.name), "%s", d->name);
    (void)snprintf(p.msisdn, sizeof(p.msisdn), "%s", d->msisdn);
    (void)snprintf(p.gateway, sizeof(p.gateway), "%s", pc->gateway);
    memcpy(p.tar, d->tar, 3);
    p.alg = k->alg;
    p.key_version = k->version;
    p.key_len = k->len;
    memcpy(p.kic, k->kic, k->len);
    memcpy(p.kid, k->kid, k->len);
    pc->rc = mg_prov_write(pc->path, &p);
    mg_prov_wipe(&p);
    pc->written = pc->rc == MG_EXIT_OK;
    if (pc->written && pc->sigtext != NULL && append_file(pc->path, pc->sigtext) != 0) {
        fprintf(stderr, "m2mguard: cannot append the signed-command lines to %s: %s\n", pc->path,
                strerror(errno));
        pc->rc = MG_EXIT_INTERNAL;
        return MG_ERR_STORE; /* the file is destroyed by the caller */
    }
    if (!pc->written)
        return MG_ERR_STORE;
    if (pc->token_hash != NULL)
        return mg_store_enrol_token_set(pc->store, d->id, pc->token_hash, pc->token_expires);
    return MG_OK;
}

static int device_add(int argc, char **argv)
{
    const dev_sub *c = &sub_add;
    dev_opts o;
    int rc = parse(c, argc, argv, &o);
    if (rc >= 0)
        return rc;
    mg_device d;
    mg_keyset k;
    mg_alg alg = MG_ALG_AES;
    size_t key_len = 16;
    memset(&d, 0, sizeof(d));
    memset(&k, 0, sizeof(k));
    if (o.msisdn == NULL && !o.ip)
        return mg_cli_usage_error(c->path, "--msisdn is required (or --ip for an IP-only device)");
    if (o.token && !o.ip)
        return mg_cli_usage_error(c->path, "--enrol-token needs --ip");
    if (o.ttl != NULL && !o.token)
        return mg_cli_usage_error(c->path, "--token-ttl needs --enrol-token");
    if (o.msisdn == NULL && (o.alg != NULL || o.tar != NULL))
        return mg_cli_usage_error(c->path, "--alg and --tar are SMS options: give --msisdn too");
    long ttl_h = TOKEN_TTL_DEFAULT;
    if (o.ttl != NULL) {
        char *end = NULL;
        errno = 0;
        ttl_h = strtol(o.ttl, &end, 10);
        if (errno != 0 || end == o.ttl || *end != '\0' || ttl_h < 1 || ttl_h > 8760)
            return mg_cli_usage_error(c->path, "--token-ttl must be 1..8760 hours");
    }
    if (o.msisdn != NULL && !mg_store_msisdn_valid(o.msisdn)) {
        fprintf(stderr, "%s: invalid MSISDN '%s': use '+' and 1..15 digits (E.164)\n", c->path,
                o.msisdn);
        return MG_EXIT_USAGE;
    }
    if (o.cls != NULL && !mg_store_class_valid(o.cls)) {
        fprintf(stderr, "%s: invalid class '%s': use up to 63 of A-Z a-z 0-9 . _ -\n", c->path,
                o.cls);
        return MG_EXIT_USAGE;
    }
    if (o.alg != NULL && !mg_imp_alg_of(o.alg, &alg, &key_len)) {
        fprintf(stderr, "%s: unknown --alg '%s' (aes, aes192, aes256, 3des2, 3des3)\n", c->path,
                o.alg);
        return MG_EXIT_USAGE;
    }
    memcpy(d.tar, mg_imp_default_tar, 3);
    if (o.tar != NULL && mg_cli_hex("--tar", o.tar, d.tar, 3, 3) != 3)
        return MG_EXIT_USAGE;
    static char sigtext[MG_DEV_ANCHORS * (MG_DEV_ANCHOR_TEXT_MAX + 8) + 2 * MG_DEV_LIST_MAX + 64];
    if ((rc = sig_lines(c, &o, sigtext, sizeof(sigtext))) != 0)
        return rc;
    bool has_sig = sigtext[0] != '\0';
    (void)snprintf(d.name, sizeof(d.name), "%s", o.name);
    (void)snprintf(d.msisdn, sizeof(d.msisdn), "%s", o.msisdn != NULL ? o.msisdn : "");
    (void)snprintf(d.dev_class, sizeof(d.dev_class), "%s", o.cls != NULL ? o.cls : "");
    d.status = MG_DEV_ACTIVE;
    d.bearers = (o.msisdn != NULL ? MG_BEARER_SMS : 0u) | (o.ip ? MG_BEARER_IP : 0u);

    mg_workdir w;
    char path[MG_PATH_MAX + 96];
    uint8_t tok[16], tok_hash[32];
    int64_t tok_expires = mg_now_s() + (int64_t)ttl_h * 3600;
    if (o.token && (rc = make_token(c->path, tok, tok_hash)) != MG_EXIT_OK)
        return rc;
    if ((rc = mg_workdir_open(o.dir, &w)) != MG_EXIT_OK) {
        OPENSSL_cleanse(tok, sizeof(tok));
        return rc;
    }
    char apath[MG_PATH_MAX + 96];
    if (has_sig && o.ip) {
        /* the IP device's anchors file: made first (refused if it exists), removed on failure */
        if ((rc = anchors_path(&w, d.name, apath, sizeof(apath))) != MG_EXIT_OK ||
            (rc = mg_file_create(apath, sigtext, strlen(sigtext), 0600)) != MG_EXIT_OK) {
            OPENSSL_cleanse(tok, sizeof(tok));
            mg_workdir_close(&w);
            return rc;
        }
    }
    if (o.msisdn == NULL) {
        /* IP-only: no SMS keys, no provisioning file; device, event and token in
         * one transaction. */
        char reason[MG_REASON_MAX];
        (void)snprintf(reason, sizeof(reason), "device %s added (IP-only)%s", d.name,
                       o.token ? " with an enrolment token" : "");
        mg_err e = mg_store_begin(w.store);
        if (e == MG_OK)
            e = mg_store_device_add(w.store, &d);
        if (e == MG_OK)
            e = add_event(w.store, d.id, "device_add", reason);
        if (e == MG_OK && o.token)
            e = mg_store_enrol_token_set(w.store, d.id, tok_hash, tok_expires);
        if (e == MG_OK)
            e = mg_store_commit(w.store);
        if (e != MG_OK) {
            OPENSSL_cleanse(tok, sizeof(tok));
            if (has_sig)
                (void)unlink(apath);
            return store_fail(c, &w, e);
        }
        printf("added device %s (id %lld, IP-only, no SMS keys)\n", d.name, (long long)d.id);
        if (has_sig)
            printf("anchors file: %s\n", apath);
        if (o.token)
            print_token(tok, tok_expires);
        OPENSSL_cleanse(tok, sizeof(tok));
        mg_workdir_close(&w);
        return MG_EXIT_OK;
    }
    const char *gateway = mg_conf_get(&w, "gateway_number", "");
    if (!mg_store_msisdn_valid(gateway)) {
        fprintf(stderr, "%s: gateway_number in %s/%s is missing or not +E.164\n", c->path, w.dir,
                MG_CONF_FILE);
        OPENSSL_cleanse(tok, sizeof(tok));
        if (has_sig && o.ip)
            (void)unlink(apath);
        mg_workdir_close(&w);
        return MG_EXIT_INPUT;
    }
    if ((rc = prov_path(&w, d.name, path, sizeof(path))) != MG_EXIT_OK) {
        OPENSSL_cleanse(tok, sizeof(tok));
        if (has_sig && o.ip)
            (void)unlink(apath);
        mg_workdir_close(&w);
        return rc;
    }
    /* One transaction; the file is made before the commit and removed if it fails. */
    prov_ctx pc = {.path = path, .sigtext = has_sig ? sigtext : NULL, .gateway = gateway, .rc = MG_EXIT_OK, .written = false,
                   .store = w.store, .token_hash = o.token ? tok_hash : NULL,
                   .token_expires = tok_expires};
    mg_err e = mg_store_device_provision(w.store, &d, alg, key_len, &k, write_prov, &pc);
    mg_keyset_wipe(&k);
    if (e != MG_OK) {
        OPENSSL_cleanse(tok, sizeof(tok));
        if (has_sig && o.ip)
            (void)unlink(apath);
        if (pc.written)
            (void)mg_prov_destroy(path); /* the commit failed after the file was made */
        else if (pc.rc != MG_EXIT_OK) {
            mg_workdir_close(&w); /* mg_prov_write said why */
            return pc.rc;
        }
        return store_fail(c, &w, e);
    }
    printf("added device %s (id %lld, %s, %s, key version 1)\n", d.name, (long long)d.id,
           d.msisdn, mg_store_alg_label(alg, key_len));
    printf("provisioning file: %s\n", path);
    if (has_sig)
        printf("signed commands: %zu anchor(s)%s\n", o.n_anchor,
               o.ip ? "; anchors file for the IP side written" : "");
    if (has_sig && o.ip)
        printf("anchors file: %s\n", apath);
    if (o.ip)
        printf("bearers: sms ip\n");
    if (o.token)
        print_token(tok, tok_expires);
    OPENSSL_cleanse(tok, sizeof(tok));
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}

/* ---- list / show ------------------------------------------------------------------- */

static void print_tsv(const mg_device *d)
{
    char created[32];
    mg_time_iso(d->created, created);
    printf("%lld\t%s\t%s\t%s\t%s\t%d\t%llu\t%llu\t%s\n", (long long)d->id, d->name,
           d->dev_class[0] != '\0' ? d->dev_class : "-", d->msisdn, mg_dev_status_name(d->status),
           d->key_version, (unsigned long long)d->cntr_in, (unsigned long long)d->cntr_out,
           created);
}

/* The device's fields as JSON members (without braces). */
static void print_json_fields(const mg_device *d)
{
    char created[32];
    mg_time_iso(d->created, created);
    printf("\"id\":%lld,\"name\":", (long long)d->id);
    mg_json_str(stdout, d->name);
    printf(",\"class\":");
    mg_json_str(stdout, d->dev_class);
    printf(",\"msisdn\":");
    mg_json_str(stdout, d->msisdn);
    printf(",\"status\":\"%s\",\"tar\":\"%02x%02x%02x\",\"key_version\":%d,\"cntr_in\":%llu,"
           "\"cntr_out\":%llu,\"created\":\"%s\"",
           mg_dev_status_name(d->status), d->tar[0], d->tar[1], d->tar[2], d->key_version,
           (unsigned long long)d->cntr_in, (unsigned long long)d->cntr_out, created);
}

typedef struct list_ctx {
    bool json;
    size_t n;
} list_ctx;

static bool list_one(void *ctx, const mg_device *d)
{
    list_ctx *l = ctx;
    if (l->json) {
        printf("%s{", l->n == 0 ? "" : ",");
        print_json_fields(d);
        printf("}");
    } else {
        print_tsv(d);
    }
    l->n++;
    return true;
}

static int device_list(int argc, char **argv)
{
    dev_opts o;
    mg_workdir w;
    int rc = parse(&sub_list, argc, argv, &o);
    if (rc >= 0)
        return rc;
    if ((rc = mg_workdir_open(o.dir, &w)) != MG_EXIT_OK)
        return rc;
    list_ctx l = {o.json, 0};
    if (o.json)
        printf("[");
    mg_err e = mg_store_device_list(w.store, list_one, &l);
    if (o.json)
        printf("]\n");
    if (e != MG_OK)
        return store_fail(&sub_list, &w, e);
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}

typedef struct cert_show_ctx {
    bool json;
    size_t n;
} cert_show_ctx;

static bool show_cert(void *ctx, const mg_cert *cert)
{
    cert_show_ctx *x = ctx;
    char na[32];
    mg_time_iso(cert->not_after, na);
    if (x->json)
        printf("%s{\"serial\":\"%s\",\"not_after\":\"%s\",\"status\":\"%s\"}", x->n ? "," : "",
               cert->serial, na, mg_cert_status_name(cert->status));
    else
        printf("cert: %s not_after %s %s\n", cert->serial, na, mg_cert_status_name(cert->status));
    x->n++;
    return true;
}

static const char *bearers_label(unsigned b)
{
    b = b == 0 ? MG_BEARER_SMS : b;
    return (b & MG_BEARER_SMS) && (b & MG_BEARER_IP) ? "sms ip" : (b & MG_BEARER_IP) ? "ip" : "sms";
}

static int device_show(int argc, char **argv)
{
    const dev_sub *c = &sub_show;
    dev_opts o;
    mg_workdir w;
    mg_device d;
    memset(&d, 0, sizeof(d));
    int rc = start(c, argc, argv, &o, &w, &d);
    if (rc >= 0)
        return rc;
    /* store.h has no key listing without the keys: read each version's
     * metadata and wipe the unwrapped keys at once. */
    mg_keyset ks[15];
    size_t nks = 0;
    mg_err e = MG_OK;
    for (int v = 1; v <= 15 && e == MG_OK; v++) {
        mg_keyset k;
        memset(&k, 0, sizeof(k));
        e = mg_store_keys_get(w.store, d.id, v, &k);
        if (e == MG_OK) {
            mg_wipe(k.kic, sizeof(k.kic));
            mg_wipe(k.kid, sizeof(k.kid));
            ks[nks++] = k;
        } else if (e == MG_ERR_KEY) {
            e = MG_OK;
        }
        mg_keyset_wipe(&k);
    }
    if (e != MG_OK)
        return store_fail(c, &w, e);
    static const char *const state[] = {"pending", "active", "retired"};
    if (o.json) {
        printf("{");
        print_json_fields(&d);
        printf(",\"bearers\":\"%s\",\"certificates\":[", bearers_label(d.bearers));
        cert_show_ctx cx = {true, 0};
        e = mg_store_cert_list(w.store, d.id, 0, false, show_cert, &cx);
        printf("],\"keys\":[");
        for (size_t i = 0; i < nks; i++)
            printf("%s{\"version\":%d,\"alg\":\"%s\",\"state\":\"%s\"}", i ? "," : "",
                   ks[i].version, mg_store_alg_label(ks[i].alg, ks[i].len),
                   ks[i].state <= MG_KEY_RETIRED ? state[ks[i].state] : "unknown");
        printf("]}\n");
    } else {
        char created[32];
        mg_time_iso(d.created, created);
        printf("id: %lld\nname: %s\nclass: %s\nmsisdn: %s\nstatus: %s\ntar: %02x%02x%02x\n"
               "key_version: %d\ncntr_in: %llu\ncntr_out: %llu\ncreated: %s\n",
               (long long)d.id, d.name, d.dev_class[0] ? d.dev_class : "-", d.msisdn,
               mg_dev_status_name(d.status), d.tar[0], d.tar[1], d.tar[2], d.key_version,
               (unsigned long long)d.cntr_in, (unsigned long long)d.cntr_out, created);
        for (size_t i = 0; i < nks; i++)
            printf("key: version %d %s %s\n", ks[i].version, mg_store_alg_label(ks[i].alg, ks[i].len),
                   ks[i].state <= MG_KEY_RETIRED ? state[ks[i].state] : "unknown");
        if (nks == 0)
            printf("key: none\n");
        /* SMS-only devices keep their old output (scripts read it). */
        bool ip = (d.bearers & MG_BEARER_IP) != 0;
        if (ip)
            printf("bearers: %s\n", bearers_label(d.bearers));
        cert_show_ctx cx = {false, 0};
        e = mg_store_cert_list(w.store, d.id, 0, false, show_cert, &cx);
        if (e == MG_OK && cx.n == 0 && ip)
            printf("cert: none\n");
    }
    if (e != MG_OK) {
        mg_wipe(ks, sizeof(ks));
        return store_fail(c, &w, e);
    }
    mg_wipe(ks, sizeof(ks));
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}

/* ---- status changes ------------------------------------------------------------------ */

/* The valid certificates of a device, collected before revoking (no writes
 * while the store iterates). */
typedef struct serial_list {
    char (*v)[MG_SERIAL_HEX_MAX];
    size_t n, cap;
    bool oom;
} serial_list;

static bool collect_valid(void *ctx, const mg_cert *cert)
{
    serial_list *l = ctx;
    if (cert->status != MG_CERT_VALID)
        return true;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 8;
        void *nv = realloc(l->v, nc * sizeof(*l->v));
        if (nv == NULL) {
            l->oom = true;
            return false;
        }
        l->v = nv;
        l->cap = nc;
    }
    memcpy(l->v[l->n++], cert->serial, MG_SERIAL_HEX_MAX);
    return true;
}

/* Revokes every valid certificate of a revoked device: through the CA (which
 * rewrites the CRL) when DIR/ca holds one, else in the registry only. */
static int revoke_certs(const dev_sub *c, mg_workdir *w, const mg_device *d, int reason)
{
    char conf[MG_PATH_MAX + 16];
    struct stat st;
    (void)snprintf(conf, sizeof(conf), "%s/ca/ca.conf", w->dir);
    bool have_ca = stat(conf, &st) == 0;
#ifdef MG_HAVE_CA
    if (have_ca) {
        char cdir[MG_PATH_MAX + 8], why[256] = "";
        (void)snprintf(cdir, sizeof(cdir), "%s/ca", w->dir);
        mg_ca *ca = NULL;
        int n = 0;
        mg_err e = mg_ca_open(cdir, w->store, &ca, why, sizeof(why));
        if (e == MG_OK)
            e = mg_ca_revoke_owner(ca, d->id, 0, reason, &n, why, sizeof(why));
        mg_ca_close(ca);
        if (e != MG_OK) {
            fprintf(stderr, "%s: revoking the certificates: %s\n", c->path, why);
            return MG_EXIT_INTERNAL;
        }
        if (n > 0)
            printf("revoked %d certificate%s of %s; CRL rewritten\n", n, n == 1 ? "" : "s", d->name);
        return MG_EXIT_OK;
    }
#else
    (void)have_ca;
#endif
    serial_list l = {NULL, 0, 0, false};
    mg_err e = mg_store_cert_list(w->store, d->id, 0, false, collect_valid, &l);
    int64_t now = mg_now_s();
    size_t n = 0;
    for (size_t i = 0; e == MG_OK && !l.oom && i < l.n; i++) {
        e = mg_store_cert_revoke(w->store, l.v[i], reason, now);
        if (e == MG_ERR_STATE)
            e = MG_OK;
        else if (e == MG_OK)
            n++;
    }
    free(l.v);
    if (l.oom || e != MG_OK) {
        fprintf(stderr, "%s: revoking the certificates: %s\n", c->path,
                l.oom ? "out of memory" : mg_store_errmsg(w->store));
        return MG_EXIT_INTERNAL;
    }
    if (n > 0)
        printf("revoked %zu certificate%s of %s in the registry (no CA in %s/ca: no CRL)\n", n,
               n == 1 ? "" : "s", d->name, w->dir);
    return MG_EXIT_OK;
}

/* Sets the status (revoke destroys the keys in the store) and writes the event,
 * in one transaction. */
static int change_status(const dev_sub *c, int argc, char **argv, mg_dev_status to,
                         const char *kind)
{
    dev_opts o;
    mg_workdir w;
    mg_device d;
    memset(&d, 0, sizeof(d));
    char reason[MG_REASON_MAX], path[MG_PATH_MAX + 96];
    int crl_reason = 5; /* cessationOfOperation (RFC 5280 5.3.1) */
    int rc = parse(c, argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.reason != NULL) {
#ifdef MG_HAVE_CA
        if (!mg_ca_reason_parse(o.reason, &crl_reason) || crl_reason == 8)
            return mg_cli_usage_error(c->path, "unknown --reason (see 'm2mguard ca revoke --help')");
#else
        return mg_cli_usage_error(c->path, "--reason needs the CA (built without it)");
#endif
    }
    if ((rc = open_device(c, &o, &w, &d)) != MG_EXIT_OK)
        return rc;
    if (d.status == MG_DEV_REVOKED) {
        fprintf(stderr, "%s: device %s is %s\n", c->path, d.name,
                to == MG_DEV_REVOKED ? "already revoked" : "revoked; it cannot change state");
        mg_workdir_close(&w);
        return MG_EXIT_REJECT;
    }
    if (d.status == to) {
        printf("device %s is already %s\n", d.name, mg_dev_status_name(to));
        mg_workdir_close(&w);
        return MG_EXIT_OK;
    }
    (void)snprintf(reason, sizeof(reason), "device %s %s by the operator (was %s)", d.name,
                   to == MG_DEV_ACTIVE ? "activated" : mg_dev_status_name(to),
                   mg_dev_status_name(d.status));
    mg_err e = mg_store_begin(w.store);
    if (e == MG_OK)
        e = mg_store_device_set_status(w.store, d.id, to);
    if (e == MG_OK)
        e = add_event(w.store, d.id, kind, reason);
    if (e == MG_OK)
        e = mg_store_commit(w.store);
    if (e != MG_OK)
        return store_fail(c, &w, e);
    rc = MG_EXIT_OK;
    if (to == MG_DEV_REVOKED && (rc = prov_path(&w, d.name, path, sizeof(path))) == MG_EXIT_OK)
        rc = mg_prov_destroy(path);
    if (to == MG_DEV_REVOKED) {
        int rc2 = revoke_certs(c, &w, &d, crl_reason);
        if (rc == MG_EXIT_OK)
            rc = rc2;
    }
    printf("device %s %s%s\n", d.name, to == MG_DEV_ACTIVE ? "activated" : mg_dev_status_name(to),
           to == MG_DEV_REVOKED ? ": keys destroyed" : "");
    mg_workdir_close(&w);
    return rc;
}

static int device_quarantine(int argc, char **argv)
{
    return change_status(&sub_quarantine, argc, argv, MG_DEV_QUARANTINED, "quarantine");
}

static int device_activate(int argc, char **argv)
{
    return change_status(&sub_activate, argc, argv, MG_DEV_ACTIVE, "activate");
}

static int device_revoke(int argc, char **argv)
{
    return change_status(&sub_revoke, argc, argv, MG_DEV_REVOKED, "revoke");
}

static int device_delete(int argc, char **argv)
{
    const dev_sub *c = &sub_delete;
    dev_opts o;
    mg_workdir w;
    mg_device d;
    memset(&d, 0, sizeof(d));
    char reason[MG_REASON_MAX], path[MG_PATH_MAX + 96];
    int rc = start(c, argc, argv, &o, &w, &d);
    if (rc >= 0)
        return rc;
    if (d.status == MG_DEV_ACTIVE && !o.yes) {
        fprintf(stderr, "%s: device %s is active; quarantine or revoke it first, or pass --yes\n",
                c->path, d.name);
        mg_workdir_close(&w);
        return MG_EXIT_REJECT;
    }
    /* its certificates die with it: revoked (and in the CRL) before the row
     * that owns them goes; a device without a valid one needs no CA */
    serial_list valid = {NULL, 0, 0, false};
    mg_err le = mg_store_cert_list(w.store, d.id, 0, false, collect_valid, &valid);
    free(valid.v);
    if (le != MG_OK || valid.oom) {
        fprintf(stderr, "%s: reading the certificates: %s\n", c->path,
                valid.oom ? "out of memory" : mg_store_errmsg(w.store));
        mg_workdir_close(&w);
        return MG_EXIT_INTERNAL;
    }
    if (valid.n > 0 && (rc = revoke_certs(c, &w, &d, 5 /* cessationOfOperation */)) != MG_EXIT_OK) {
        mg_workdir_close(&w);
        return rc;
    }
    (void)snprintf(reason, sizeof(reason), "device %s (%s) deleted by the operator (was %s)",
                   d.name, d.msisdn, mg_dev_status_name(d.status));
    mg_err e = mg_store_begin(w.store);
    if (e == MG_OK)
        e = mg_store_device_delete(w.store, d.id);
    if (e == MG_OK)
        e = add_event(w.store, d.id, "delete", reason);
    if (e == MG_OK)
        e = mg_store_commit(w.store);
    if (e != MG_OK)
        return store_fail(c, &w, e);
    if ((rc = prov_path(&w, d.name, path, sizeof(path))) == MG_EXIT_OK)
        rc = mg_prov_destroy(path);
    printf("device %s deleted\n", d.name);
    mg_workdir_close(&w);
    return rc;
}

/* ---- import: many devices from a CSV or JSON-lines file ---------------------------- */

#define IMP_BATCH_DEFAULT 10000  /* devices per transaction */
#define IMP_BATCH_MAX 100000

static const char imp_usage[] =
    "usage: m2mguard device import FILE|- --provision-out OUT [--format csv|jsonl]\n"
    "       [--continue] [--batch N] [--dir DIR]\n"
    "\n"
    "Registers many devices at once. FILE (or '-': standard input) holds one device\n"
    "a line, as CSV with a header line naming the columns, or as JSON lines (one\n"
    "object of string members a line); without --format a first octet '{' means\n"
    "JSON lines. Fields (docs/fleet.md):\n"
    "  name     required; [A-Za-z0-9._-], 1..63 characters\n"
    "  msisdn   '+' and 1..15 digits (E.164); needed for the SMS bearer\n"
    "  class    device class (same characters as name; default none)\n"
    "  bearer   sms, ip or sms+ip (default: sms with an MSISDN, else ip)\n"
    "  alg      aes (default), aes192, aes256, 3des2, 3des3\n"
    "  tar      6 hex digits (default 4d4701)\n"
    "Every line is checked first (each error as FILE:LINE: why), names and MSISDNs\n"
    "must be new and unique in the file; then the devices are added in\n"
    "transactions of N (default 10000, 1..100000), each SMS device with fresh\n"
    "random KIc and KID (key version 1, wrapped by the master key), with one\n"
    "'device_import' event per transaction. Lines are at most 1024 octets.\n"
    "All or nothing: one bad line refuses the whole file and nothing is stored.\n"
    "  --provision-out OUT  required: the provisioning output, created mode 0600\n"
    "               (refused if it exists): one JSON object a line per device with\n"
    "               the keys of its .prov file (name, msisdn, gateway, tar, alg,\n"
    "               key_version, kic, kid; an IP-only device: name, bearers). It\n"
    "               holds the keys: move it to the devices' factory, then delete it.\n"
    "  --continue   skip bad lines (reported on stderr) and import the others\n"
    "  --format F   csv or jsonl (default: by the first octet)\n"
    "  --batch N    devices per transaction\n"
    DIR_HELP
    "exit: 0 imported (with --continue: some lines may have been skipped, see stderr);\n"
    "      1 refused (a bad or duplicate line; nothing stored); 2 bad command line;\n"
    "      3 no working directory, unreadable FILE, OUT exists; 4 internal failure.\n";

/* Names and MSISDNs the registry has already: read in transactions of
 * IMP_BATCH_DEFAULT look-ups (a read outside one pays the file locking on
 * every statement). 0, or the exit code. */
static int imp_check_store(imp_state *st, mg_store *s)
{
    mg_device d;
    mg_err e = MG_OK;
    for (size_t i = 0; e == MG_OK && i < st->n; i += IMP_BATCH_DEFAULT) {
        e = mg_store_begin(s);
        for (size_t j = i; e == MG_OK && j < st->n && j < i + IMP_BATCH_DEFAULT; j++) {
            imp_row *r = &st->rows[j];
            const char *name = st->arena + r->name, *msisdn = st->arena + r->msisdn;
            e = mg_store_device_by_name(s, name, &d);
            if (e == MG_OK) {
                r->skip = true;
                e = MG_OK;
                (void)mg_imp_bad(st, r->line, "device name '%s' is already registered", name);
                continue;
            }
            if (e == MG_ERR_KEY && msisdn[0] != '\0') {
                e = mg_store_device_by_msisdn(s, msisdn, &d);
                if (e == MG_OK) {
                    r->skip = true;
                    e = MG_OK;
                    (void)mg_imp_bad(st, r->line, "MSISDN %s is already registered (device %s)",
                                  msisdn, d.name);
                    continue;
                }
            }
            if (e == MG_ERR_KEY)
                e = MG_OK;
        }
        if (e == MG_OK)
            e = mg_store_commit(s);
        if (e != MG_OK) {
            fprintf(stderr, "m2mguard device import: %s\n", mg_store_errmsg(s));
            mg_store_rollback(s);
            return mg_store_exit(e);
        }
    }
    return 0;
}

/* The provisioning output: a 0600 file of JSON lines, written with write(2). */
typedef struct imp_out {
    const char *path;
    int fd;
    char buf[1 << 16];
    size_t n;
    bool failed;
} imp_out;

static void out_flush(imp_out *o)
{
    size_t off = 0;
    while (!o->failed && off < o->n) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            o->failed = true;
        else
            off += (size_t)w;
    }
    mg_wipe(o->buf, o->n);
    o->n = 0;
}

static void out_put(imp_out *o, const char *text, size_t n)
{
    if (o->n + n > sizeof(o->buf))
        out_flush(o);
    if (n > sizeof(o->buf)) {
        o->failed = true;
        return;
    }
    memcpy(o->buf + o->n, text, n);
    o->n += n;
}

/* The device's line, as the .prov file would hold it (mg_prov_write). */
static void out_device(imp_out *o, const mg_device *d, const char *gateway, const mg_keyset *k)
{
    char line[640];
    int n;
    if (k->len == 0) {
        n = snprintf(line, sizeof(line), "{\"name\":\"%s\",\"bearers\":\"ip\"}\n", d->name);
    } else {
        char kic[2 * MG_KEY_MAX + 1], kid[2 * MG_KEY_MAX + 1];
        mg_hex_encode(kic, k->kic, k->len);
        mg_hex_encode(kid, k->kid, k->len);
        n = snprintf(line, sizeof(line),
                     "{\"name\":\"%s\",\"msisdn\":\"%s\",\"gateway\":\"%s\",\"tar\":\"%02x%02x%02x\","
                     "\"alg\":\"%s\",\"key_version\":1,\"kic\":\"%s\",\"kid\":\"%s\"%s}\n",
                     d->name, d->msisdn, gateway, d->tar[0], d->tar[1], d->tar[2],
                     k->alg == MG_ALG_AES ? "aes" : k->alg == MG_ALG_3DES2 ? "3des2" : "3des3",
                     kic, kid, (d->bearers & MG_BEARER_IP) ? ",\"bearers\":\"sms ip\"" : "");
        mg_wipe(kic, sizeof(kic));
        mg_wipe(kid, sizeof(kid));
    }
    if (n <= 0 || (size_t)n >= sizeof(line))
        o->failed = true;
    else
        out_put(o, line, (size_t)n);
    mg_wipe(line, sizeof(line));
}

/* Overwrites the output from off to its end with zeros and cuts it there. */
static bool out_cut(imp_out *o, off_t off)
{
    static const uint8_t zeros[4096];
    mg_wipe(o->buf, o->n);
    o->n = 0;
    struct stat sb;
    if (fstat(o->fd, &sb) != 0 || lseek(o->fd, off, SEEK_SET) != off)
        return false;
    for (off_t p = off; p < sb.st_size;) {
        size_t c = sb.st_size - p > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)(sb.st_size - p);
        ssize_t w = write(o->fd, zeros, c);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
    }
    return fsync(o->fd) == 0 && ftruncate(o->fd, off) == 0 && lseek(o->fd, off, SEEK_SET) == off;
}

/* Adds rows [from, to) in one transaction; their lines go to the output
 * (synced) before the commit. *added counts the devices committed. */
static mg_err imp_batch(imp_state *st, mg_store *s, imp_out *o, const char *gateway, size_t from,
                        size_t to, int64_t *ids, size_t *nids)
{
    mg_err e = mg_store_begin(s);
    size_t n0 = *nids;
    unsigned long first = 0, last = 0;
    for (size_t i = from; e == MG_OK && i < to; i++) {
        const imp_row *r = &st->rows[i];
        if (r->skip)
            continue;
        mg_device d;
        mg_keyset k;
        memset(&d, 0, sizeof(d));
        memset(&k, 0, sizeof(k));
        (void)snprintf(d.name, sizeof(d.name), "%s", st->arena + r->name);
        (void)snprintf(d.dev_class, sizeof(d.dev_class), "%s", st->arena + r->cls);
        (void)snprintf(d.msisdn, sizeof(d.msisdn), "%s", st->arena + r->msisdn);
        memcpy(d.tar, r->tar, 3);
        d.status = MG_DEV_ACTIVE;
        d.bearers = r->bearers;
        e = mg_store_device_add(s, &d);
        if (e != MG_OK) {
            /* registered by someone else since the check */
            fprintf(stderr, "%s:%lu: %s\n", st->file, (unsigned long)r->line, mg_store_errmsg(s));
            break;
        }
        ids[(*nids)++] = d.id;
        if (first == 0)
            first = r->line;
        last = r->line;
        if (r->len != 0) {
            k.version = 1;
            k.alg = (mg_alg)r->alg;
            k.len = r->len;
            k.state = MG_KEY_ACTIVE;
            e = mg_crypto_random(k.kic, k.len);
            if (e == MG_OK)
                e = mg_crypto_random(k.kid, k.len);
            if (e != MG_OK)
                fprintf(stderr, "m2mguard device import: the random generator failed\n");
            if (e == MG_OK && (e = mg_store_keys_put(s, d.id, &k)) != MG_OK)
                fprintf(stderr, "%s:%lu: %s\n", st->file, (unsigned long)r->line, mg_store_errmsg(s));
        }
        if (e == MG_OK)
            out_device(o, &d, gateway, &k);
        mg_keyset_wipe(&k);
    }
    if (e == MG_OK && *nids > n0) {
        char reason[MG_REASON_MAX];
        (void)snprintf(reason, sizeof(reason), "%zu devices imported (lines %lu..%lu of the file)",
                       *nids - n0, first, last);
        e = add_event(s, 0, "device_import", reason);
        if (e != MG_OK)
            fprintf(stderr, "m2mguard device import: %s\n", mg_store_errmsg(s));
    }
    if (e == MG_OK) {
        out_flush(o);
        if (o->failed || fsync(o->fd) != 0) {
            fprintf(stderr, "m2mguard device import: cannot write %s: %s\n", o->path,
                    strerror(errno));
            e = MG_ERR_STORE;
        }
    }
    if (e == MG_OK && (e = mg_store_commit(s)) != MG_OK)
        fprintf(stderr, "m2mguard device import: commit: %s\n", mg_store_errmsg(s));
    if (e != MG_OK) {
        mg_store_rollback(s);
        *nids = n0;
    }
    return e;
}

/* Undoes committed batches: deletes the devices imported so far. */
static bool imp_undo(mg_store *s, const int64_t *ids, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < n;) {
        mg_err e = mg_store_begin(s);
        size_t end = i + IMP_BATCH_DEFAULT < n ? i + IMP_BATCH_DEFAULT : n;
        for (size_t j = i; e == MG_OK && j < end; j++)
            e = mg_store_device_delete(s, ids[j]);
        if (e == MG_OK)
            e = mg_store_commit(s);
        if (e != MG_OK) {
            fprintf(stderr, "m2mguard device import: undoing the import failed: %s\n",
                    mg_store_errmsg(s));
            mg_store_rollback(s);
            ok = false;
            break;
        }
        i = end;
    }
    return ok;
}

static int device_import(int argc, char **argv)
{
    const char *path = "m2mguard device import";
    enum { L_DIR = 256, L_OUT, L_FORMAT, L_CONT, L_BATCH };
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, L_DIR},       {"provision-out", required_argument, NULL, L_OUT},
        {"format", required_argument, NULL, L_FORMAT}, {"continue", no_argument, NULL, L_CONT},
        {"batch", required_argument, NULL, L_BATCH},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *outp = NULL;
    int format = 0;
    uint64_t batch = IMP_BATCH_DEFAULT;
    bool cont = false;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(imp_usage, stdout); return MG_EXIT_OK;
        case L_DIR: dir = optarg; break;
        case L_OUT: outp = optarg; break;
        case L_CONT: cont = true; break;
        case L_FORMAT:
            if (strcmp(optarg, "csv") == 0)
                format = 1;
            else if (strcmp(optarg, "jsonl") == 0)
                format = 2;
            else
                return mg_cli_usage_error(path, "--format is csv or jsonl");
            break;
        case L_BATCH:
            if (!mg_cli_parse_u64(optarg, IMP_BATCH_MAX, &batch) || batch == 0)
                return mg_cli_usage_error(path, "--batch takes 1..100000");
            break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(path, "expected exactly one FILE (or '-')");
    if (outp == NULL)
        return mg_cli_usage_error(path, "--provision-out OUT is required (the devices' keys go there)");
    const char *file = argv[optind];
    bool std_in = strcmp(file, "-") == 0;
    FILE *in = std_in ? stdin : fopen(file, "re");
    if (in == NULL) {
        fprintf(stderr, "%s: cannot open %s: %s\n", path, file, strerror(errno));
        return MG_EXIT_INPUT;
    }
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK) {
        if (!std_in)
            fclose(in);
        return rc;
    }
    /* the output first: an existing one is refused before any work */
    static imp_out o;
    memset(&o, 0, sizeof(o));
    o.path = outp;
    o.fd = open(outp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (o.fd < 0) {
        fprintf(stderr, "%s: cannot create %s: %s\n", path, outp, strerror(errno));
        if (!std_in)
            fclose(in);
        mg_workdir_close(&w);
        return MG_EXIT_INPUT;
    }
    imp_state st;
    memset(&st, 0, sizeof(st));
    st.file = std_in ? "(stdin)" : file;
    st.cont = cont;
    rc = mg_imp_read(&st, in, format);
    if (!std_in)
        fclose(in);
    if (rc == 0)
        rc = imp_check_store(&st, w.store);
    if (rc == 0 && st.bad > IMP_ERRORS_SHOWN)
        fprintf(stderr, "%s: %zu more bad lines not shown\n", st.file, st.bad - IMP_ERRORS_SHOWN);
    if (rc == 0 && st.bad > 0 && !cont)
        rc = MG_EXIT_REJECT;
    if (rc == MG_EXIT_INTERNAL)
        fprintf(stderr, "%s: out of memory\n", path);
    if (rc == MG_EXIT_REJECT && !cont)
        fprintf(stderr, "%s: nothing imported (all or nothing; --continue skips bad lines)\n", path);
    const char *gateway = mg_conf_get(&w, "gateway_number", "");
    bool any_sms = false;
    for (size_t i = 0; i < st.n && !any_sms; i++)
        any_sms = st.rows[i].len != 0;
    if (rc == 0 && any_sms && !mg_store_msisdn_valid(gateway)) {
        fprintf(stderr, "%s: gateway_number in %s/%s is missing or not +E.164\n", path, w.dir,
                MG_CONF_FILE);
        rc = MG_EXIT_INPUT;
    }
    int64_t *ids = rc == 0 ? calloc(st.n ? st.n : 1, sizeof(*ids)) : NULL;
    if (rc == 0 && ids == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        rc = MG_EXIT_INTERNAL;
    }
    if (rc != 0) {
        (void)close(o.fd); /* nothing was written to it */
        (void)unlink(outp);
        mg_imp_free(&st);
        mg_workdir_close(&w);
        return rc;
    }
    size_t nids = 0;
    mg_err e = MG_OK;
    for (size_t i = 0; e == MG_OK && i < st.n; i += (size_t)batch) {
        off_t mark = lseek(o.fd, 0, SEEK_CUR);
        e = imp_batch(&st, w.store, &o, gateway, i, i + (size_t)batch < st.n ? i + (size_t)batch : st.n,
                      ids, &nids);
        if (e != MG_OK && !out_cut(&o, mark))
            fprintf(stderr, "%s: cannot cut %s back: destroy it\n", path, outp);
    }
    rc = MG_EXIT_OK;
    if (e != MG_OK && !cont) {
        /* all or nothing: the batches committed so far go too */
        bool undone = imp_undo(w.store, ids, nids);
        (void)close(o.fd);
        o.fd = -1;
        (void)mg_prov_destroy(outp);
        fprintf(stderr, "%s: %s\n", path, undone ? "nothing imported" :
                "the import failed and could not be undone: see 'm2mguard device list'");
        rc = e == MG_ERR_ARG ? MG_EXIT_REJECT : mg_store_exit(e);
    } else if (e != MG_OK) {
        fprintf(stderr, "%s: stopped: %zu devices imported before the failure\n", path, nids);
        rc = e == MG_ERR_ARG ? MG_EXIT_REJECT : mg_store_exit(e);
    }
    if (o.fd >= 0 && close(o.fd) != 0 && rc == MG_EXIT_OK) {
        fprintf(stderr, "%s: closing %s: %s\n", path, outp, strerror(errno));
        rc = MG_EXIT_INTERNAL;
    }
    if (rc == MG_EXIT_OK || (cont && nids > 0)) {
        printf("imported %zu devices from %s", nids, st.file);
        if (st.bad > 0)
            printf(" (%zu bad lines skipped)", st.bad);
        printf("\nprovisioning output: %s (mode 0600; it holds the keys)\n", outp);
    }
    free(ids);
    mg_imp_free(&st);
    mg_workdir_close(&w);
    return rc;
}

int mg_cmd_device(int argc, char **argv)
{
    static const mg_cmd table[] = {
        {"add", device_add, "register a device with fresh keys; write its provisioning file"},
        {"import", device_import, "register many devices from a CSV or JSON-lines file"},
        {"list", device_list, "list the devices (tab-separated, or --json)"},
        {"show", device_show, "show a device and its key versions (never the keys)"},
        {"quarantine", device_quarantine, "refuse the device's messages, keep its keys"},
        {"activate", device_activate, "lift a quarantine"},
        {"revoke", device_revoke, "refuse the device for good and destroy its keys"},
        {"delete", device_delete, "delete the device (its events stay)"},
    };
    return mg_cli_dispatch("m2mguard device", table, sizeof(table) / sizeof(table[0]), argc - 1,
                           argv + 1);
}
