/* The working directory, its configuration and master key, and the device
 * provisioning file (workdir.h; formats in docs/operations.md). */
#include "workdir.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "m2mguard/keyref.h"

#define PROV_MAX 2048 /* octets of a provisioning file */
#define CONF_FILE_MAX 16384

int mg_workdir_path(const char *dir_or_null, char *out, size_t cap)
{
    const char *d = dir_or_null;
    if (d == NULL || d[0] == '\0')
        d = getenv(MG_WORKDIR_ENV);
    if (d == NULL || d[0] == '\0')
        d = MG_WORKDIR_DEFAULT;
    if (strlen(d) + 1 > cap || strlen(d) > MG_PATH_MAX - 64) {
        fprintf(stderr, "m2mguard: working directory path is too long\n");
        return MG_EXIT_USAGE;
    }
    memcpy(out, d, strlen(d) + 1);
    return MG_EXIT_OK;
}

int mg_workdir_file(const mg_workdir *w, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", w->dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "m2mguard: path %s/%s is too long\n", w->dir, name);
        return MG_EXIT_USAGE;
    }
    return MG_EXIT_OK;
}

static int conf_read(mg_workdir *w, const char *path, bool all, unsigned *errors)
{
    static char text[CONF_FILE_MAX];
    mg_wipe(w->conf, sizeof(w->conf));
    w->nconf = 0;
    int rc = mg_read_private("config", path, text, sizeof(text), NULL);
    if (rc == MG_EXIT_OK)
        rc = mg_conf_parse(w, path, text, all, errors);
    else if (errors != NULL)
        *errors = 1;
    mg_wipe(text, sizeof(text)); /* it holds the SMPP password */
    return rc;
}

int mg_conf_load(mg_workdir *w, const char *path)
{
    return conf_read(w, path, false, NULL);
}

int mg_conf_check_file(mg_workdir *w, const char *path, unsigned *errors)
{
    return conf_read(w, path, true, errors);
}

/* master.key: 32 octets as 64 hex digits (whitespace around them ignored),
 * in a private file (mg_read_private names a wrong mode as such). */
int mg_workdir_read_master(const char *path, uint8_t master[32])
{
    char text[160];
    size_t n = 0;
    int rc = mg_read_private("master key", path, text, sizeof(text), &n);
    if (rc != MG_EXIT_OK)
        return rc;
    size_t a = 0;
    while (a < n && isspace((unsigned char)text[a]))
        a++;
    while (n > a && isspace((unsigned char)text[n - 1]))
        n--;
    if (n - a != 64 || mg_hex_decode(text + a, 64, master, 32) != 32) {
        fprintf(stderr, "master key: %s must hold 32 octets as 64 hex digits\n", path);
        rc = MG_EXIT_INPUT;
    }
    mg_wipe(text, sizeof(text));
    return rc;
}

/* The store's master key in a PKCS#11 token (m2mguard.conf `master_key =
 * pkcs11:...`): the token handle of each open store, closed with it. */
#define WD_P11_MAX 8
static struct {
    mg_store *store;
    mg_p11_master *m;
} wd_p11[WD_P11_MAX];

static mg_err p11_wrap(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                       size_t *out_len)
{
    return mg_p11_master_wrap(ctx, in, in_len, out, cap, out_len, NULL, 0);
}

static mg_err p11_unwrap(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                         size_t *out_len)
{
    return mg_p11_master_unwrap(ctx, in, in_len, out, cap, out_len, NULL, 0);
}

/* m2mguard.conf `store = ...`: a PostgreSQL database instead of WORKDIR/m2mguard.db.
 * Its connection string may hold a password: messages name the key, not the value. */
const char *mg_workdir_store_pg(const mg_workdir *w)
{
    const char *v = mg_conf_get(w, "store", "");
    return v[0] != '\0' && mg_store_path_is_pg(v) ? v : NULL;
}

static const char *store_label(const char *db)
{
    return mg_store_path_is_pg(db) ? "(PostgreSQL: store in " MG_CONF_FILE ")" : db;
}

int mg_workdir_open_store_p11(const char *db, const char *uri, bool create, mg_store **out)
{
    char why[256] = "";
    mg_p11_master *m = NULL;
    size_t slot = 0;
    *out = NULL;
    while (slot < WD_P11_MAX && wd_p11[slot].m != NULL)
        slot++;
    if (slot == WD_P11_MAX) {
        fprintf(stderr, "m2mguard: too many stores open with a token master key\n");
        return MG_EXIT_INTERNAL;
    }
    mg_err e = mg_p11_master_open(uri, &m, why, sizeof(why));
    if (e != MG_OK) {
        fprintf(stderr, "m2mguard: master key (master_key in %s): %s\n", MG_CONF_FILE, why);
        return e == MG_ERR_CRYPTO ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
    }
    e = mg_store_open_wrapped(db, p11_wrap, p11_unwrap, m, create, out);
    if (e != MG_OK) {
        fprintf(stderr, "m2mguard: store %s: %s\n", store_label(db), mg_store_errmsg(NULL));
        mg_p11_master_close(m);
        return e == MG_ERR_KEY || e == MG_ERR_ARG || e == MG_ERR_AUTH || e == MG_ERR_STORE
                   ? MG_EXIT_INPUT
                   : MG_EXIT_INTERNAL;
    }
    wd_p11[slot].store = *out;
    wd_p11[slot].m = m;
    return MG_EXIT_OK;
}

void mg_workdir_close_store(mg_store *s)
{
    if (s == NULL)
        return;
    mg_store_close(s);
    for (size_t i = 0; i < WD_P11_MAX; i++)
        if (wd_p11[i].store == s) {
            mg_p11_master_close(wd_p11[i].m);
            wd_p11[i].store = NULL;
            wd_p11[i].m = NULL;
        }
}

int mg_workdir_open(const char *dir_or_null, mg_workdir *w)
{
    char path[MG_PATH_MAX + 32];
    struct stat st;
    memset(w, 0, sizeof(*w));
    int rc = mg_workdir_path(dir_or_null, w->dir, sizeof(w->dir));
    if (rc != MG_EXIT_OK)
        return rc;
    if (lstat(w->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "m2mguard: no working directory at %s (run 'm2mguard init %s', "
                        "or use --dir or $%s)\n", w->dir, w->dir, MG_WORKDIR_ENV);
        return MG_EXIT_INPUT;
    }
    /* Whoever can write the directory can swap the master key, the database
     * or the configuration (docs/operations.md: mode 0700). */
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        fprintf(stderr, "m2mguard: working directory %s has mode %04o: writable by %s; it must "
                        "be 0700 (chmod 700 %s)\n", w->dir, (unsigned)(st.st_mode & 07777),
                (st.st_mode & S_IWOTH) != 0 ? "everyone" : "its group", w->dir);
        return MG_EXIT_INPUT;
    }
    if ((rc = mg_workdir_file(w, MG_CONF_FILE, path, sizeof(path))) != MG_EXIT_OK ||
        (rc = mg_conf_load(w, path)) != MG_EXIT_OK)
        return rc;
    rc = mg_workdir_open_store(w, &w->store);
    if (rc != MG_EXIT_OK)
        mg_workdir_close(w);
    return rc;
}

int mg_workdir_open_store(const mg_workdir *w, mg_store **out)
{
    char path[MG_PATH_MAX + 32];
    uint8_t master[32];
    struct stat st;
    int rc;
    *out = NULL;
    const char *master_ref = mg_conf_get(w, "master_key", "");
    bool in_token = master_ref[0] != '\0';
    if (in_token && !mg_keyref_is_pkcs11(master_ref)) {
        fprintf(stderr, "m2mguard: master_key in %s must be a pkcs11: URI (or absent: %s)\n",
                MG_CONF_FILE, MG_MASTER_FILE);
        rc = MG_EXIT_INPUT;
        goto fail;
    }
    if (!in_token && (rc = mg_workdir_file(w, MG_MASTER_FILE, path, sizeof(path))) != MG_EXIT_OK)
        goto fail;
    if (!in_token && (rc = mg_workdir_read_master(path, master)) != MG_EXIT_OK)
        goto fail;
    const char *store_ref = mg_conf_get(w, "store", "");
    if (store_ref[0] != '\0' && !mg_store_path_is_pg(store_ref)) {
        fprintf(stderr, "m2mguard: store in %s must be a PostgreSQL connection string"
                        " (postgresql://... or host=... dbname=...); the SQLite store is %s/%s\n",
                MG_CONF_FILE, w->dir, MG_DB_FILE);
        rc = MG_EXIT_INPUT;
        goto fail;
    }
    if (store_ref[0] != '\0') {
        (void)snprintf(path, sizeof(path), "%s", store_ref);
    } else if ((rc = mg_workdir_file(w, MG_DB_FILE, path, sizeof(path))) != MG_EXIT_OK) {
        goto fail;
    }
    /* The database holds the wrapped keys and the counters: private too. */
    if (store_ref[0] == '\0' && lstat(path, &st) == 0 &&
        (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)) {
        if (!S_ISREG(st.st_mode))
            fprintf(stderr, "m2mguard: database %s is not a regular file\n", path);
        else if (st.st_uid != geteuid())
            fprintf(stderr, "m2mguard: database %s is owned by uid %u, not by this user (uid %u)\n",
                    path, (unsigned)st.st_uid, (unsigned)geteuid());
        else
            fprintf(stderr, "m2mguard: database %s has mode %04o, must be 0600 (chmod 600 %s)\n",
                    path, (unsigned)(st.st_mode & 07777), path);
        rc = MG_EXIT_INPUT;
        goto fail;
    }
    if (in_token) {
        rc = mg_workdir_open_store_p11(path, master_ref, false, out);
        if (rc != MG_EXIT_OK)
            goto fail;
        return MG_EXIT_OK;
    }
    mg_err e = mg_store_open(path, master, false, out);
    mg_wipe(master, sizeof(master));
    if (e != MG_OK) {
        fprintf(stderr, "m2mguard: store %s: %s\n", store_label(path), mg_store_errmsg(NULL));
        /* a wrong master key (KEY), a file or directory of the wrong mode (ARG),
         * a busy or damaged database (STORE): all the operator's to fix */
        rc = e == MG_ERR_KEY || e == MG_ERR_ARG || e == MG_ERR_AUTH || e == MG_ERR_STORE ? MG_EXIT_INPUT
                                                                                      : MG_EXIT_INTERNAL;
        goto fail;
    }
    return MG_EXIT_OK;
fail:
    mg_wipe(master, sizeof(master));
    return rc;
}

void mg_workdir_close(mg_workdir *w)
{
    if (w == NULL)
        return;
    mg_workdir_close_store(w->store);
    mg_wipe(w, sizeof(*w));
}

int mg_store_exit(mg_err e)
{
    switch (e) {
    case MG_OK: return MG_EXIT_OK;
    case MG_ERR_KEY: return MG_EXIT_INPUT;
    case MG_ERR_ARG:
    case MG_ERR_STATE:
    case MG_ERR_CNTR_LOW:
    case MG_ERR_CNTR_BLOCKED: return MG_EXIT_REJECT;
    default: return MG_EXIT_INTERNAL;
    }
}

int mg_file_create(const char *path, const void *data, size_t len, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        fprintf(stderr, "m2mguard: cannot create %s: %s\n", path, strerror(errno));
        return errno == EEXIST ? MG_EXIT_REJECT : MG_EXIT_INPUT;
    }
    const uint8_t *p = data;
    size_t off = 0;
    int err = 0;
    if (fchmod(fd, (mode_t)mode) != 0) /* exactly mode, whatever the umask */
        err = errno;
    while (err == 0 && off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            err = errno;
        else
            off += (size_t)w;
    }
    if (err == 0 && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && err == 0)
        err = errno;
    if (err != 0) {
        fprintf(stderr, "m2mguard: cannot write %s: %s\n", path, strerror(err));
        (void)unlink(path);
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

/* ---- provisioning file ---------------------------------------------------------- */

void mg_prov_wipe(mg_prov *p)
{
    if (p != NULL)
        mg_wipe(p, sizeof(*p));
}

static bool copy_ok(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static const char *prov_alg_name(mg_alg alg)
{
    return alg == MG_ALG_AES ? "aes" : alg == MG_ALG_3DES2 ? "3des2" : "3des3";
}

enum { P_NAME = 1, P_MSISDN = 2, P_GATEWAY = 4, P_TAR = 8, P_ALG = 16, P_KVER = 32, P_KIC = 64,
       P_KID = 128, P_ALL = 255 };

typedef struct prov_ctx {
    mg_prov *p;
    const char *path;
    unsigned seen;
    long kic_len, kid_len;
} prov_ctx;

static int prov_line(void *ctx, const char *key, const char *v, unsigned line)
{
    static const char *const keys[] = {"name", "msisdn", "gateway", "tar", "alg",
                                       "key_version", "kic", "kid"};
    prov_ctx *c = ctx;
    mg_prov *p = c->p;
    unsigned bit = 0;
    bool ok = false;
    /* signed-command provisioning (issue 12): read by the agent (src/agent/trust.c) */
    if (strcmp(key, "anchor") == 0 || strcmp(key, "signed") == 0 || strcmp(key, "two_signers") == 0)
        return MG_EXIT_OK;
    for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i]) == 0)
            bit = 1u << i;
    if (bit == 0 || (c->seen & bit) != 0) {
        fprintf(stderr, "provisioning file: %s line %u: %s '%s'\n", c->path, line,
                bit == 0 ? "unknown key" : "repeated key", key);
        return MG_EXIT_INPUT;
    }
    c->seen |= bit;
    switch (bit) {
    case P_NAME: ok = mg_store_name_valid(v) && copy_ok(p->name, sizeof(p->name), v); break;
    case P_MSISDN: ok = mg_store_msisdn_valid(v) && copy_ok(p->msisdn, sizeof(p->msisdn), v); break;
    case P_GATEWAY: ok = mg_store_msisdn_valid(v) && copy_ok(p->gateway, sizeof(p->gateway), v); break;
    case P_TAR: ok = strlen(v) == 6 && mg_cli_hex("tar", v, p->tar, 3, 3) == 3; break;
    case P_ALG:
        ok = true;
        if (strcmp(v, "aes") == 0)
            p->alg = MG_ALG_AES;
        else if (strcmp(v, "3des2") == 0)
            p->alg = MG_ALG_3DES2;
        else if (strcmp(v, "3des3") == 0)
            p->alg = MG_ALG_3DES3;
        else
            ok = false;
        break;
    case P_KVER: {
        char *end = NULL;
        long kv = strtol(v, &end, 10);
        ok = end != v && *end == '\0' && kv >= 1 && kv <= 15;
        p->key_version = (int)kv;
        break;
    }
    /* keys: constant-time decoding, and the message below shows no digit */
    case P_KIC: c->kic_len = mg_hex_decode(v, strlen(v), p->kic, sizeof(p->kic)); ok = c->kic_len > 0; break;
    case P_KID: c->kid_len = mg_hex_decode(v, strlen(v), p->kid, sizeof(p->kid)); ok = c->kid_len > 0; break;
    default: break;
    }
    if (!ok) {
        /* Never echo a key value. */
        fprintf(stderr, "provisioning file: %s line %u: bad value for %s\n", c->path, line, key);
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

int mg_prov_load(const char *path, mg_prov *p)
{
    static char text[PROV_MAX];
    memset(p, 0, sizeof(*p));
    prov_ctx c = {p, path, 0, 0, 0};
    int rc = mg_read_private("provisioning file", path, text, sizeof(text), NULL);
    if (rc == MG_EXIT_OK)
        rc = mg_conf_each_line("provisioning file", path, text, prov_line, &c);
    mg_wipe(text, sizeof(text));
    if (rc == MG_EXIT_OK && c.seen != P_ALL) {
        fprintf(stderr, "provisioning file: %s lacks a field (name, msisdn, gateway, tar, alg, "
                        "key_version, kic, kid are required)\n", path);
        rc = MG_EXIT_INPUT;
    }
    if (rc == MG_EXIT_OK) {
        p->key_len = (size_t)c.kic_len;
        bool fits = p->alg == MG_ALG_AES ? (p->key_len == 16 || p->key_len == 24 || p->key_len == 32)
                    : p->alg == MG_ALG_3DES2 ? p->key_len == 16
                                             : p->key_len == 24;
        if (c.kic_len != c.kid_len || !fits) {
            fprintf(stderr, "provisioning file: %s: kic and kid must have the length of alg=%s\n",
                    path, prov_alg_name(p->alg));
            rc = MG_EXIT_INPUT;
        }
    }
    if (rc != MG_EXIT_OK)
        mg_prov_wipe(p);
    return rc;
}

int mg_prov_write(const char *path, const mg_prov *p)
{
    char text[PROV_MAX];
    char kic[2 * MG_KEY_MAX + 1], kid[2 * MG_KEY_MAX + 1];
    if (p->key_len == 0 || p->key_len > MG_KEY_MAX) {
        fprintf(stderr, "provisioning file: bad key length\n");
        return MG_EXIT_INTERNAL;
    }
    mg_hex_encode(kic, p->kic, p->key_len);
    mg_hex_encode(kid, p->kid, p->key_len);
    int n = snprintf(text, sizeof(text),
                     "# m2mguard device provisioning file: SECRET, keep it mode 0600\n"
                     "name=%s\nmsisdn=%s\ngateway=%s\ntar=%02x%02x%02x\nalg=%s\n"
                     "key_version=%d\nkic=%s\nkid=%s\n",
                     p->name, p->msisdn, p->gateway, p->tar[0], p->tar[1], p->tar[2],
                     prov_alg_name(p->alg), p->key_version, kic, kid);
    int rc = n > 0 && (size_t)n < sizeof(text) ? mg_file_create(path, text, (size_t)n, 0600)
                                               : MG_EXIT_INTERNAL;
    mg_wipe(text, sizeof(text));
    mg_wipe(kic, sizeof(kic));
    mg_wipe(kid, sizeof(kid));
    return rc;
}

int mg_prov_destroy(const char *path)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return MG_EXIT_OK;
        fprintf(stderr, "m2mguard: cannot open %s to destroy it: %s\n", path, strerror(errno));
        return MG_EXIT_INPUT;
    }
    int err = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        err = EINVAL;
    static const uint8_t zeros[512];
    for (off_t off = 0; err == 0 && off < st.st_size;) {
        size_t chunk = st.st_size - off > (off_t)sizeof(zeros) ? sizeof(zeros)
                                                               : (size_t)(st.st_size - off);
        ssize_t w = write(fd, zeros, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            err = w < 0 ? errno : EIO;
        else
            off += w;
    }
    if (err == 0 && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && err == 0)
        err = errno;
    if (err == 0 && unlink(path) != 0)
        err = errno;
    if (err != 0) {
        fprintf(stderr, "m2mguard: cannot destroy %s: %s\n", path, strerror(err));
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

int mg_workdir_list(const char *path, const char *usage, int argc, char **argv,
                    mg_workdir_lister fn)
{
    const char *dir = NULL;
    bool json = false;
    int rc = mg_cli_list_args(path, usage, argc, argv, &dir, &json);
    if (rc >= 0)
        return rc;
    mg_workdir w;
    rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    if (json)
        printf("[");
    mg_err e = fn(w.store, json);
    if (json)
        printf("]\n");
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, mg_store_errmsg(w.store));
        rc = mg_store_exit(e);
    }
    mg_workdir_close(&w);
    return rc;
}
