/*
 * EST enrolments per second over HTTPS against a raw OpenSSL X509_sign loop
 * with the same issuing key, measured in the same run.
 *
 *   set-up: a temporary working directory made with the m2mguard CLI:
 *           `init`, `ca init`, `ca server` (TLS certificate of the EST
 *           server), N x `device add bench-NNN --ip --enrol-token` (the
 *           one-time tokens are read from its output); one P-256 key and
 *           PKCS#10 CSR per device made here beforehand; `est run` started
 *           (fork/exec) on a free port of 127.0.0.1 and stopped by its PID.
 *   path:   N first enrolments, POST /.well-known/est/simpleenroll (RFC 7030
 *           4.2.1: base64 PKCS#10 body, HTTP Basic device:token) with
 *           libcurl on one keep-alive HTTPS connection; each answer must be
 *           200 with a PKCS#7 certs-only body. The server parses and checks
 *           the CSR (PoP, key policy, CN), spends the token, signs, records
 *           the certificate in the registry, and answers.
 *   anchor: for the same N CSRs, a raw loop that builds a certificate of the
 *           same profile (subject CN, SAN URI, KU, EKU, SKI/AKI, random
 *           16-octet serial) and signs it with X509_sign with the same
 *           issuing key (WORKDIR/ca/issuing.key); measured twice: sign only,
 *           and CSR parse + X509_REQ_verify (proof of possession) + sign.
 * Usage: bench_est [--devices N] [--m2mguard BIN] [--tmpdir DIR] [--keep]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include "benchutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MG_BENCH_M2MGUARD
#define MG_BENCH_M2MGUARD "m2mguard"
#endif

static long ndev = 200;
static char *m2mguard = MG_BENCH_M2MGUARD;
static bool keep;
static const char *tmpdir = "/tmp";
static char tmp[256], home[512];
static pid_t est_pid;
static long est_new_conn = -1;

static void die(const char *what)
{
    fprintf(stderr, "bench_est: %s (files kept in %s)\n", what, tmp);
    if (est_pid > 0) {
        kill(est_pid, SIGTERM);
        waitpid(est_pid, NULL, 0);
    }
    exit(1);
}

static void fmt(char *out, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        die("string too long");
}

/* Runs argv without a shell; stdout into out (if not NULL, NUL-terminated),
 * stderr into tmp/cmd.log. True if it exited 0. */
static bool run(char *const argv[], char *out, size_t cap)
{
    int pfd[2];
    char log[512];
    fmt(log, sizeof(log), "%s/cmd.log", tmp);
    if (pipe(pfd) != 0)
        return false;
    pid_t p = fork();
    if (p < 0)
        return false;
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t n = 0;
    char sink[256];
    for (;;) {
        char *dst = out && n + 1 < cap ? out + n : sink;
        size_t room = out && n + 1 < cap ? cap - 1 - n : sizeof(sink);
        ssize_t r = read(pfd[0], dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (dst != sink)
            n += (size_t)r;
    }
    close(pfd[0]);
    if (out)
        out[n] = '\0';
    int st;
    if (waitpid(p, &st, 0) < 0)
        return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int free_port(void)
{
    int p = bench_free_port();
    if (p < 0)
        die("no free port");
    return p;
}

typedef struct dev {
    char name[32];
    char token[40];
    unsigned char *csr; /* DER */
    int csr_len;
    char *csr_b64;
} dev;

static char *b64(const unsigned char *d, int n)
{
    char *o = malloc((size_t)(4 * ((n + 2) / 3) + 1));
    if (!o || EVP_EncodeBlock((unsigned char *)o, d, n) < 0)
        die("out of memory");
    return o;
}

static void make_csr(dev *d)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_REQ *r = X509_REQ_new();
    if (!k || !r)
        die("key or CSR");
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_ASC,
                               (const unsigned char *)d->name, -1, -1, 0);
    if (!X509_REQ_set_pubkey(r, k) || !X509_REQ_sign(r, k, EVP_sha256()))
        die("X509_REQ_sign");
    d->csr = NULL;
    d->csr_len = i2d_X509_REQ(r, &d->csr);
    if (d->csr_len <= 0)
        die("i2d_X509_REQ");
    d->csr_b64 = b64(d->csr, d->csr_len);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
}

/* ---- the anchor: a certificate of the device profile, X509_sign ----------- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    if (!bench_add_ext(x, issuer, nid, value))
        die("cannot add an extension");
}

static size_t anchor_one(const dev *d, X509 *ica, EVP_PKEY *ikey, bool verify)
{
    const unsigned char *p = d->csr;
    X509_REQ *r = d2i_X509_REQ(NULL, &p, d->csr_len);
    EVP_PKEY *pub = r ? X509_REQ_get_pubkey(r) : NULL;
    if (!pub)
        die("CSR does not parse");
    if (verify && X509_REQ_verify(r, pub) != 1)
        die("CSR does not verify");
    X509 *x = X509_new();
    unsigned char serial[16], *der = NULL;
    char san[96];
    if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
        die("X509_new");
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01);
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        die("serial");
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400L);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)d->name, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(ica));
    X509_set_pubkey(x, pub);
    fmt(san, sizeof(san), "URI:urn:m2mguard:dev:%s", d->name);
    add_ext(x, ica, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, ica, NID_key_usage, "critical,digitalSignature");
    add_ext(x, ica, NID_ext_key_usage, "clientAuth");
    add_ext(x, ica, NID_subject_alt_name, san);
    add_ext(x, ica, NID_subject_key_identifier, "hash");
    add_ext(x, ica, NID_authority_key_identifier, "keyid:always");
    if (!X509_sign(x, ikey, EVP_sha256()))
        die("X509_sign");
    int l = i2d_X509(x, &der);
    if (l <= 0)
        die("i2d_X509");
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(pub);
    X509_REQ_free(r);
    return (size_t)l;
}

/* At least one pass over the CSRs and at least 1 s: certificates per second. */
static double anchor_rate(const dev *ds, X509 *ica, EVP_PKEY *ikey, bool verify)
{
    long done = 0;
    double t0 = bench_now();
    do {
        for (long i = 0; i < ndev; i++)
            (void)anchor_one(&ds[i], ica, ikey, verify);
        done += ndev;
    } while (bench_now() - t0 < 1.0);
    return (double)done / (bench_now() - t0);
}

/* ---- EST over libcurl ------------------------------------------------------ */

typedef struct body {
    char buf[16384];
    size_t len;
    bool over;
} body;

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
    body *b = ctx;
    size_t len = sz * n;
    if (b->len + len >= sizeof(b->buf)) {
        b->over = true;
        return 0;
    }
    memcpy(b->buf + b->len, p, len);
    b->len += len;
    return len;
}

static double est_rate(const dev *ds, int port, const char *cafile, long *fails)
{
    CURL *c = curl_easy_init();
    if (!c)
        die("curl_easy_init");
    char url[128], userpwd[128];
    body b;
    fmt(url, sizeof(url), "https://127.0.0.1:%d/.well-known/est/simpleenroll", port);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/pkcs10");
    h = curl_slist_append(h, "Content-Transfer-Encoding: base64");
    h = curl_slist_append(h, "Expect:");
    if (!h)
        die("out of memory");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    *fails = 0;
    double t0 = bench_now();
    for (long i = 0; i < ndev; i++) {
        b.len = 0;
        b.over = false;
        fmt(userpwd, sizeof(userpwd), "%s:%s", ds[i].name, ds[i].token);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, ds[i].csr_b64);
        CURLcode rc = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK || code != 200 || b.len < 100 || b.over) {
            if (*fails == 0)
                fprintf(stderr, "bench_est: enrolment of %s: %s, HTTP %ld\n", ds[i].name,
                        curl_easy_strerror(rc), code);
            (*fails)++;
        }
    }
    double dt = bench_now() - t0;
    /* CURLINFO_NUM_CONNECTS counts the last transfer only: 0 when it reused
     * the connection. */
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &est_new_conn);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return (double)(ndev - *fails) / dt;
}

static void start_est(int port)
{
    char listen[64], cert[600], key[600], log[512];
    fmt(listen, sizeof(listen), "127.0.0.1:%d", port);
    fmt(cert, sizeof(cert), "%s/est-server.crt", home);
    fmt(key, sizeof(key), "%s/est-server.key", home);
    fmt(log, sizeof(log), "%s/est.log", tmp);
    pid_t p = fork();
    if (p < 0)
        die("fork");
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(m2mguard, m2mguard, "est", "run", "--dir", home, "--listen", listen, "--cert", cert,
              "--key", key, (char *)NULL);
        _exit(127);
    }
    est_pid = p;
    for (int i = 0; i < 200; i++) {
        char line[256];
        FILE *f = fopen(log, "r");
        bool up = false;
        while (f && fgets(line, sizeof(line), f))
            if (strstr(line, "est: listening on"))
                up = true;
        if (f)
            fclose(f);
        if (up)
            return;
        if (waitpid(p, NULL, WNOHANG) == p) {
            est_pid = 0;
            keep = true;
            die("`m2mguard est run` exited (see est.log)");
        }
        usleep(50000);
    }
    keep = true;
    die("`m2mguard est run` did not start listening");
}

static void usage(void)
{
    printf("usage: bench_est [--devices N] [--m2mguard BIN] [--tmpdir DIR] [--keep]\n"
           "EST first enrolments per second (simpleenroll, HTTP Basic with one-time tokens,\n"
           "one keep-alive HTTPS connection, libcurl) against `m2mguard est run`, and a raw\n"
           "OpenSSL X509_sign loop with the same issuing key over the same CSRs (the anchor),\n"
           "in the same run; prints both and the ratio. N devices (default 200).\n"
           "The working directory is made in DIR (default /tmp; /dev/shm shows the cost\n"
           "without the registry's fsyncs); --keep keeps it.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else if (strcmp(argv[i], "--devices") == 0 && i + 1 < argc) {
            char *end;
            ndev = strtol(argv[++i], &end, 10);
            if (*end || ndev < 1 || ndev > 100000) {
                fprintf(stderr, "bench_est: --devices expects 1..100000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--tmpdir") == 0 && i + 1 < argc) {
            tmpdir = argv[++i];
        } else if (strcmp(argv[i], "--m2mguard") == 0 && i + 1 < argc) {
            m2mguard = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (snprintf(tmp, sizeof(tmp), "%s/mg-bench-est.XXXXXX", tmpdir) >= (int)sizeof(tmp) ||
        !mkdtemp(tmp))
        die("mkdtemp");
    fmt(home, sizeof(home), "%s/home", tmp);
    char skey[600], scert[600], cafile[600], ikeyf[600], icertf[600];
    fmt(skey, sizeof(skey), "%s/est-server.key", home);
    fmt(scert, sizeof(scert), "%s/est-server.crt", home);
    fmt(cafile, sizeof(cafile), "%s/ca/chain.pem", home);
    fmt(ikeyf, sizeof(ikeyf), "%s/ca/issuing.key", home);
    fmt(icertf, sizeof(icertf), "%s/ca/issuing.crt", home);
    char *init[] = {m2mguard, "init", home, NULL};
    char *cainit[] = {m2mguard, "ca", "init", "--dir", home, NULL};
    char *server[] = {m2mguard, "ca", "server", "localhost", "--dir", home, "--dns",
                      "localhost", "--ip", "127.0.0.1", "--key-out", skey, "--out", scert, NULL};
    if (!run(init, NULL, 0) || !run(cainit, NULL, 0) || !run(server, NULL, 0)) {
        keep = true;
        die("m2mguard init / ca init / ca server failed (see cmd.log)");
    }
    dev *ds = calloc((size_t)ndev, sizeof(dev));
    if (!ds)
        die("out of memory");
    double t = bench_now();
    for (long i = 0; i < ndev; i++) {
        char out[512];
        snprintf(ds[i].name, sizeof(ds[i].name), "bench-%04ld", i);
        char *add[] = {m2mguard, "device", "add", ds[i].name, "--dir", home, "--ip",
                       "--enrol-token", NULL};
        if (!run(add, out, sizeof(out)))
            die("device add --ip --enrol-token failed (see cmd.log)");
        char *tk = strstr(out, "enrol-token: ");
        if (!tk || sscanf(tk + 13, "%39[0-9a-f]", ds[i].token) != 1 || strlen(ds[i].token) != 32)
            die("no 'enrol-token: HEX' line in the output of device add");
        make_csr(&ds[i]);
    }
    printf("bench_est: %ld IP devices with enrolment tokens and P-256 CSRs in %.1f s; %s\n", ndev,
           bench_now() - t, tmp);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    int port = free_port();
    start_est(port);
    long fails = 0;
    double est = est_rate(ds, port, cafile, &fails);
    kill(est_pid, SIGTERM);
    waitpid(est_pid, NULL, 0);
    est_pid = 0;
    curl_global_cleanup();

    FILE *f = fopen(ikeyf, "r");
    EVP_PKEY *ikey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    f = fopen(icertf, "r");
    X509 *ica = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!ikey || !ica)
        die("cannot read the issuing CA's key and certificate");
    double sign = anchor_rate(ds, ica, ikey, false);
    double full = anchor_rate(ds, ica, ikey, true);
    const char *kt = EVP_PKEY_get0_type_name(ikey);
    printf("  issuing key: %s (%d bits); device keys P-256\n", kt ? kt : "?",
           EVP_PKEY_get_bits(ikey));
    printf("  EST simpleenroll over HTTPS (keep-alive)   %10.1f enrolments/s (%ld of %ld ok%s)\n",
           est, ndev - fails, ndev, est_new_conn == 0 ? ", connection reused" : "");
    printf("  anchor: build + X509_sign                  %10.1f certificates/s\n", sign);
    printf("  anchor: CSR parse + verify (PoP) + sign    %10.1f certificates/s\n", full);
    printf("  ratio EST / anchor (sign only)             %10.3f\n", est / sign);
    printf("  ratio EST / anchor (verify + sign)         %10.3f\n", est / full);
    EVP_PKEY_free(ikey);
    X509_free(ica);
    for (long i = 0; i < ndev; i++) {
        OPENSSL_free(ds[i].csr);
        free(ds[i].csr_b64);
        OPENSSL_cleanse(ds[i].token, sizeof(ds[i].token));
    }
    free(ds);
    if (!keep) {
        char *rm[] = {"rm", "-rf", tmp, NULL};
        (void)run(rm, NULL, 0);
    } else {
        printf("kept %s\n", tmp);
    }
    return fails == 0 ? 0 : 1;
}
