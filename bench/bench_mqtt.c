/*
 * Mosquitto with the m2mguard plugin against the same Mosquitto without it
 * (the anchor), measured in the same run, with a load generator in C on
 * libmosquitto.
 *
 *   The bench makes a temporary working directory: `m2mguard init`, a CA
 *   (the CA library, src/ca), a server certificate for 127.0.0.1, IDLE+THREADS
 *   IP devices bench-NNN with their certificates, and one application
 *   `bench-reader` (role operator). Without the CA library (a build without
 *   src/ca) it makes its own throwaway CA with OpenSSL and measures the
 *   anchor only.
 *   Then, for each round, it starts Debian `mosquitto` (fork/exec) on a free
 *   port of 127.0.0.1 twice: (a) anchor: TLS listener, require_certificate,
 *   cafile, crlfile, use_identity_as_username (Mosquitto's own certificate
 *   authentication), no plugin; (b) the same listener and certificates with
 *   the plugin (m2mguard_mosquitto.so) instead of use_identity_as_username.
 *   For each broker:
 *     connections/s  CONNS connect + TLS handshake with a client certificate
 *                    + CONNECT/CONNACK + DISCONNECT, THREADS clients in
 *                    parallel, each reconnecting in a loop;
 *     QoS 0 msgs/s   MSGS messages of SIZE octets published by bench-000 to
 *                    m2m/bench-000/up/telemetry, counted by bench-reader
 *                    subscribed to m2m/+/up/telemetry: received / (time of
 *                    the last received - time of the first published);
 *     kB per idle    VmRSS of the broker (/proc/PID/status) before and after
 *                    IDLE idle mTLS connections, divided by IDLE.
 *   Each broker is stopped by its PID. The figures are the medians over the
 *   rounds; the ratio plugin/anchor is printed (goal: >= 0.95 for the first
 *   two, issue 10).
 *
 * Usage: bench_mqtt [--conns N] [--msgs M] [--size S] [--idle K]
 *                   [--threads P] [--rounds R] [--plugin SO] [--m2mguard BIN]
 *                   [--tmpdir DIR] [--keep]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include "benchutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef MG_BENCH_HAVE_CA
#include "m2mguard/ca.h"
#include "m2mguard/store.h"
#endif

#ifndef MG_BENCH_M2MGUARD
#define MG_BENCH_M2MGUARD "m2mguard"
#endif
#ifndef MG_BENCH_PLUGIN
#define MG_BENCH_PLUGIN ""
#endif

#define HOST "127.0.0.1"

static struct {
    long conns, msgs, size, idle, threads, rounds;
    const char *plugin;
    char *m2mguard;
    const char *tmpdir;
    bool keep;
} opt = {1000, 200000, 64, 500, 2, 3, MG_BENCH_PLUGIN, MG_BENCH_M2MGUARD, "/tmp", false};

static char tmp[256];       /* temporary directory */
static char cafile[512];    /* chain the broker and the clients trust */
static char crlfile[512];   /* "" without the CA library */
static char srvcert[512], srvkey[512];
static char dbpath[512];
static pid_t broker_pid;

static void die(const char *what)
{
    fprintf(stderr, "bench_mqtt: %s\n", what);
    if (broker_pid > 0) {
        kill(broker_pid, SIGTERM);
        waitpid(broker_pid, NULL, 0);
    }
    exit(1);
}

static void path_of(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void path_of(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        die("path too long");
}

/* Runs argv (no shell), output into tmp/cmd.log; true if it exited 0. */
static bool run(char *const argv[])
{
    char log[512];
    path_of(log, sizeof(log), "%s/cmd.log", tmp);
    pid_t p = fork();
    if (p < 0)
        return false;
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
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

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

/* ---- certificates ---------------------------------------------------------- */

static EVP_PKEY *genkey(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k)
        die("EC key generation failed");
    return k;
}

static void write_key(const char *path, EVP_PKEY *k)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0)
        die("cannot write a key");
}

static void write_cert(const char *path, X509 *x, bool append)
{
    FILE *f = fopen(path, append ? "a" : "w");
    if (!f || !PEM_write_X509(f, x) || fclose(f) != 0)
        die("cannot write a certificate");
}

#ifndef MG_BENCH_HAVE_CA
static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    if (!bench_add_ext(x, issuer, nid, value))
        die("cannot add an extension");
}

/* Only for a build without the CA library: a throwaway CA of the bench. */
static X509 *mkcert(EVP_PKEY *k, const char *cn, X509 *issuer, EVP_PKEY *ikey, const char *kind)
{
    X509 *x = X509_new();
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
        die("X509_new");
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        die("serial");
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509_set_pubkey(x, k);
    X509 *is = issuer ? issuer : x;
    if (strcmp(kind, "ca") == 0) {
        add_ext(x, is, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, is, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else if (strcmp(kind, "server") == 0) {
        add_ext(x, is, NID_key_usage, "critical,digitalSignature");
        add_ext(x, is, NID_ext_key_usage, "serverAuth");
        add_ext(x, is, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    } else {
        add_ext(x, is, NID_key_usage, "critical,digitalSignature");
        add_ext(x, is, NID_ext_key_usage, "clientAuth");
    }
    if (!X509_sign(x, ikey ? ikey : k, EVP_sha256()))
        die("X509_sign");
    return x;
}
#endif

static char **cert_of, **key_of, **id_of; /* per client: files and client id */
static long nclients;

static void client_files(long i, const char *name)
{
    char p[512];
    id_of[i] = strdup(name);
    path_of(p, sizeof(p), "%s/%s.crt", tmp, name);
    cert_of[i] = strdup(p);
    path_of(p, sizeof(p), "%s/%s.key", tmp, name);
    key_of[i] = strdup(p);
    if (!id_of[i] || !cert_of[i] || !key_of[i])
        die("out of memory");
}

#ifdef MG_BENCH_HAVE_CA
static uint8_t *mkcsr(EVP_PKEY *k, const char *cn, size_t *len)
{
    X509_REQ *r = X509_REQ_new();
    unsigned char *der = NULL;
    if (!r)
        die("X509_REQ_new");
    X509_NAME *n = X509_REQ_get_subject_name(r);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_pubkey(r, k);
    if (!X509_REQ_sign(r, k, EVP_sha256()))
        die("X509_REQ_sign");
    int l = i2d_X509_REQ(r, &der);
    X509_REQ_free(r);
    if (l <= 0)
        die("i2d_X509_REQ");
    *len = (size_t)l;
    return der;
}

static void write_der_as_pem(const char *path, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x)
        die("issued certificate does not parse");
    write_cert(path, x, false);
    X509_free(x);
}

static void read_master(const char *path, uint8_t master[32])
{
    char hex[80] = {0};
    FILE *f = fopen(path, "r");
    if (!f || !fgets(hex, sizeof(hex), f))
        die("cannot read master.key");
    fclose(f);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            die("master.key is not hex");
        master[i] = (uint8_t)v;
    }
    OPENSSL_cleanse(hex, sizeof(hex));
}

static void make_pki(void)
{
    char home[512], p[512], why[256];
    path_of(home, sizeof(home), "%s/home", tmp);
    char *init[] = {opt.m2mguard, "init", home, NULL};
    if (!run(init))
        die("m2mguard init failed (see the log in --keep's directory)");
    uint8_t master[32];
    path_of(p, sizeof(p), "%s/master.key", home);
    read_master(p, master);
    path_of(dbpath, sizeof(dbpath), "%s/m2mguard.db", home);
    mg_store *s = NULL;
    mg_err e = mg_store_open(dbpath, master, false, &s);
    OPENSSL_cleanse(master, sizeof(master));
    if (e != MG_OK)
        die("cannot open the store");
    char cadir[512];
    path_of(cadir, sizeof(cadir), "%s/ca", home);
    mg_ca_init_opts io = {0};
    mg_ca *ca = NULL;
    if (mg_ca_init(cadir, &io, why, sizeof(why)) != MG_OK ||
        mg_ca_open(cadir, s, &ca, why, sizeof(why)) != MG_OK) {
        fprintf(stderr, "bench_mqtt: CA: %s\n", why);
        die("CA set-up failed");
    }
    path_of(cafile, sizeof(cafile), "%s/chain.pem", cadir);
    path_of(crlfile, sizeof(crlfile), "%s/crl.pem", cadir);
    const char *dns[] = {"localhost", NULL}, *ips[] = {HOST, NULL};
    if (mg_ca_issue_server(ca, "localhost", dns, ips, 30, srvkey, srvcert, why, sizeof(why)) !=
        MG_OK) {
        fprintf(stderr, "bench_mqtt: CA: %s\n", why);
        die("server certificate failed");
    }
    for (long i = 0; i < nclients; i++) {
        EVP_PKEY *k = genkey();
        size_t csr_len = 0, der_len = 0;
        uint8_t *csr = mkcsr(k, id_of[i], &csr_len), *der = NULL;
        mg_ca_issue_opts o = {.days = 2};
        if (i == nclients - 1) { /* the reader: an application */
            mg_app a = {0};
            snprintf(a.name, sizeof(a.name), "%s", id_of[i]);
            snprintf(a.role, sizeof(a.role), "operator");
            if (mg_store_app_add(s, &a) != MG_OK)
                die(mg_store_errmsg(s));
            e = mg_ca_issue_app(ca, &a, csr, csr_len, &o, &der, &der_len, NULL, why, sizeof(why));
        } else {
            mg_device d = {0};
            snprintf(d.name, sizeof(d.name), "%s", id_of[i]);
            d.bearers = MG_BEARER_IP;
            if (mg_store_device_add(s, &d) != MG_OK)
                die(mg_store_errmsg(s));
            e = mg_ca_issue_device(ca, &d, csr, csr_len, &o, &der, &der_len, NULL, why,
                                   sizeof(why));
        }
        if (e != MG_OK) {
            fprintf(stderr, "bench_mqtt: issue %s: %s\n", id_of[i], why);
            die("issue failed");
        }
        write_der_as_pem(cert_of[i], der, der_len);
        write_key(key_of[i], k);
        OPENSSL_free(csr);
        free(der);
        EVP_PKEY_free(k);
    }
    mg_ca_close(ca);
    mg_store_close(s);
}
#else
static void make_pki(void)
{
    EVP_PKEY *cak = genkey(), *sk = genkey();
    X509 *cax = mkcert(cak, "bench throwaway CA", NULL, NULL, "ca");
    X509 *sx = mkcert(sk, "localhost", cax, cak, "server");
    path_of(cafile, sizeof(cafile), "%s/ca.crt", tmp);
    write_cert(cafile, cax, false);
    write_cert(srvcert, sx, false);
    write_key(srvkey, sk);
    for (long i = 0; i < nclients; i++) {
        EVP_PKEY *k = genkey();
        X509 *x = mkcert(k, id_of[i], cax, cak, "client");
        write_cert(cert_of[i], x, false);
        write_key(key_of[i], k);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    X509_free(sx);
    X509_free(cax);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(cak);
}
#endif

/* ---- the broker ------------------------------------------------------------ */

static int start_broker(bool plugin)
{
    char conf[512], log[512];
    int port = free_port();
    path_of(conf, sizeof(conf), "%s/mosquitto-%s.conf", tmp, plugin ? "plugin" : "anchor");
    path_of(log, sizeof(log), "%s/mosquitto-%s.log", tmp, plugin ? "plugin" : "anchor");
    FILE *f = fopen(conf, "w");
    if (!f)
        die("cannot write mosquitto.conf");
    /* Started as root, mosquitto would switch to user mosquitto, which cannot
     * read the bench's 0700 directory: it stays who we are. */
    const struct passwd *pw = getpwuid(getuid());
    if (pw)
        fprintf(f, "user %s\n", pw->pw_name);
    fprintf(f,
            "per_listener_settings false\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            "max_queued_messages 0\n"
            "listener %d " HOST "\n"
            "set_tcp_nodelay true\n"
            "cafile %s\n"
            "certfile %s\n"
            "keyfile %s\n"
            "require_certificate true\n"
            "tls_version tlsv1.2\n",
            port, cafile, srvcert, srvkey);
    if (crlfile[0])
        fprintf(f, "crlfile %s\n", crlfile);
    if (plugin)
        fprintf(f,
                "plugin %s\n"
                "plugin_opt_store %s\n"
                /* the per-client limit at its maximum: the bench measures
                 * the plugin's cost, not its flood protection */
                "plugin_opt_rate 100000\n"
                "plugin_opt_burst 1000000\n"
                "plugin_opt_max_payload %ld\n",
                opt.plugin, dbpath, opt.size);
    else
        fprintf(f, "use_identity_as_username true\n");
    if (fclose(f) != 0)
        die("cannot write mosquitto.conf");
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
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    broker_pid = p;
    for (int i = 0; i < 100; i++) {
        if (port_open(port))
            return port;
        if (waitpid(p, NULL, WNOHANG) == p) {
            broker_pid = 0;
            fprintf(stderr, "bench_mqtt: mosquitto exited; its log: %s\n", log);
            opt.keep = true;
            die("mosquitto did not start");
        }
        usleep(50000);
    }
    die("mosquitto did not open its port");
    return -1;
}

static void stop_broker(void)
{
    if (broker_pid > 0) {
        kill(broker_pid, SIGTERM);
        waitpid(broker_pid, NULL, 0);
        broker_pid = 0;
    }
}

static long vmrss_kb(pid_t p)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)p);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* ---- clients ------------------------------------------------------------------ */

typedef struct client {
    struct mosquitto *m;
    atomic_int connected; /* 0 waiting, 1 CONNACK accepted, -1 refused */
    atomic_int subscribed;
    atomic_long received;
    atomic_int disconnected;
    double last_rx;
    long expect;
} client;

static void on_connect(struct mosquitto *m, void *ctx, int rc)
{
    (void)m;
    atomic_store(&((client *)ctx)->connected, rc == 0 ? 1 : -1);
}
static void on_disconnect(struct mosquitto *m, void *ctx, int rc)
{
    (void)m;
    (void)rc;
    atomic_store(&((client *)ctx)->disconnected, 1);
}
static void on_subscribe(struct mosquitto *m, void *ctx, int mid, int n, const int *qos)
{
    (void)m;
    (void)mid;
    atomic_store(&((client *)ctx)->subscribed, n == 1 && qos[0] <= 2 ? 1 : -1);
}
static void on_message(struct mosquitto *m, void *ctx, const struct mosquitto_message *msg)
{
    (void)m;
    (void)msg;
    client *c = ctx;
    atomic_fetch_add(&c->received, 1);
    c->last_rx = bench_now();
}

static struct mosquitto *new_client(long i, client *c)
{
    struct mosquitto *m = mosquitto_new(id_of[i], true, c);
    if (!m)
        die("mosquitto_new");
    if (mosquitto_tls_set(m, cafile, NULL, cert_of[i], key_of[i], NULL) != MOSQ_ERR_SUCCESS)
        die("mosquitto_tls_set");
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    c->m = m;
    return m;
}

/* One step of m's network loop with poll(): libmosquitto's own
 * mosquitto_loop() uses select(), which cannot watch a descriptor above
 * FD_SETSIZE (1024), and the idle test holds hundreds of clients (each with
 * a socket and a socket pair). */
static int step(struct mosquitto *m, int timeout_ms)
{
    struct pollfd pf = {.fd = mosquitto_socket(m), .events = POLLIN};
    if (pf.fd < 0)
        return MOSQ_ERR_NO_CONN;
    if (mosquitto_want_write(m))
        pf.events |= POLLOUT;
    int n = poll(&pf, 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ERRNO;
    int rc = MOSQ_ERR_SUCCESS;
    if (pf.revents & (POLLIN | POLLHUP | POLLERR))
        rc = mosquitto_loop_read(m, 1);
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(m) >= 0 && mosquitto_want_write(m))
        rc = mosquitto_loop_write(m, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_misc(m);
    return rc;
}

/* Loops m until *flag != 0 or timeout; true if it became 1. */
static bool loop_until(struct mosquitto *m, atomic_int *flag, double timeout)
{
    double end = bench_now() + timeout;
    while (atomic_load(flag) == 0 && bench_now() < end) {
        int rc = step(m, 100);
        if (rc != MOSQ_ERR_SUCCESS && atomic_load(flag) == 0)
            return false;
    }
    return atomic_load(flag) == 1;
}

typedef struct conn_job {
    long index, count, done;
    int port;
} conn_job;

static void *conn_worker(void *arg)
{
    conn_job *j = arg;
    client c = {0};
    struct mosquitto *m = new_client(j->index, &c);
    for (long n = 0; n < j->count; n++) {
        atomic_store(&c.connected, 0);
        atomic_store(&c.disconnected, 0);
        int rc = n == 0 ? mosquitto_connect(m, HOST, j->port, 60) : mosquitto_reconnect(m);
        if (rc != MOSQ_ERR_SUCCESS || !loop_until(m, &c.connected, 10))
            break;
        mosquitto_disconnect(m);
        atomic_int *d = &c.disconnected;
        double end = bench_now() + 5;
        while (!atomic_load(d) && bench_now() < end)
            if (step(m, 100) != MOSQ_ERR_SUCCESS)
                break;
        j->done++;
    }
    mosquitto_destroy(m);
    return NULL;
}

static double conn_rate(int port)
{
    pthread_t th[64];
    conn_job jobs[64];
    long p = opt.threads;
    double t0 = bench_now();
    for (long i = 0; i < p; i++) {
        jobs[i] = (conn_job){.index = i, .count = opt.conns / p, .port = port};
        if (pthread_create(&th[i], NULL, conn_worker, &jobs[i]) != 0)
            die("pthread_create");
    }
    long done = 0;
    for (long i = 0; i < p; i++) {
        pthread_join(th[i], NULL);
        done += jobs[i].done;
    }
    double dt = bench_now() - t0;
    if (done != (opt.conns / p) * p) {
        fprintf(stderr, "bench_mqtt: only %ld of %ld connections succeeded\n", done,
                (opt.conns / p) * p);
        opt.keep = true;
        die("connections failed");
    }
    return (double)done / dt;
}

static double throughput(int port, long *lost)
{
    client sub = {0}, pub = {0};
    long r = nclients - 1;
    struct mosquitto *s = new_client(r, &sub), *p = new_client(0, &pub);
    char topic[128];
    snprintf(topic, sizeof(topic), "m2m/%s/up/telemetry", id_of[0]);
    if (mosquitto_connect(s, HOST, port, 60) != MOSQ_ERR_SUCCESS ||
        !loop_until(s, &sub.connected, 10))
        die("the subscriber could not connect");
    if (mosquitto_subscribe(s, NULL, "m2m/+/up/telemetry", 0) != MOSQ_ERR_SUCCESS ||
        !loop_until(s, &sub.subscribed, 10))
        die("the subscriber could not subscribe");
    if (mosquitto_connect(p, HOST, port, 60) != MOSQ_ERR_SUCCESS ||
        !loop_until(p, &pub.connected, 10))
        die("the publisher could not connect");
    /* The subscriber reads in its own thread; the publisher writes inline
     * (libmosquitto writes a packet at once when not in threaded mode). */
    if (mosquitto_loop_start(s) != MOSQ_ERR_SUCCESS)
        die("mosquitto_loop_start");
    unsigned char *payload = malloc((size_t)opt.size);
    if (!payload)
        die("out of memory");
    memset(payload, 'x', (size_t)opt.size);
    double t0 = bench_now();
    for (long i = 0; i < opt.msgs; i++) {
        int rc = mosquitto_publish(p, NULL, topic, (int)opt.size, payload, 0, false);
        if (rc != MOSQ_ERR_SUCCESS)
            die("mosquitto_publish");
        if (i % 256 == 255 && step(p, 0) != MOSQ_ERR_SUCCESS)
            die("the publisher lost its connection");
    }
    for (double end = bench_now() + 30; mosquitto_want_write(p) && bench_now() < end;)
        if (step(p, 10) != MOSQ_ERR_SUCCESS)
            die("the publisher lost its connection");
    /* Wait for the last message, or 3 s without any. */
    long seen = -1;
    double quiet = bench_now();
    while (atomic_load(&sub.received) < opt.msgs) {
        long got = atomic_load(&sub.received);
        if (got != seen) {
            seen = got;
            quiet = bench_now();
        } else if (bench_now() - quiet > 3) {
            break;
        }
        usleep(2000);
    }
    long got = atomic_load(&sub.received);
    double dt = sub.last_rx - t0;
    mosquitto_disconnect(p);
    mosquitto_disconnect(s);
    mosquitto_loop_stop(s, false);
    mosquitto_destroy(p);
    mosquitto_destroy(s);
    free(payload);
    *lost = opt.msgs - got;
    return got > 0 && dt > 0 ? (double)got / dt : 0;
}

static double idle_kb(int port)
{
    client *cs = calloc((size_t)opt.idle, sizeof(client));
    if (!cs)
        die("out of memory");
    usleep(300000);
    long before = vmrss_kb(broker_pid);
    for (long i = 0; i < opt.idle; i++) {
        struct mosquitto *m = new_client(i, &cs[i]);
        if (mosquitto_connect(m, HOST, port, 600) != MOSQ_ERR_SUCCESS ||
            !loop_until(m, &cs[i].connected, 10)) {
            fprintf(stderr, "bench_mqtt: idle client %s refused\n", id_of[i]);
            opt.keep = true;
            die("idle connections failed");
        }
    }
    usleep(500000);
    long after = vmrss_kb(broker_pid);
    for (long i = 0; i < opt.idle; i++) {
        mosquitto_disconnect(cs[i].m);
        (void)step(cs[i].m, 10);
        mosquitto_destroy(cs[i].m);
    }
    free(cs);
    if (before < 0 || after < 0)
        die("cannot read VmRSS of the broker");
    return (double)(after - before) / (double)opt.idle;
}

/* ---- main ------------------------------------------------------------------ */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, long n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long arg_long(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_mqtt: %s: expected %ld..%ld\n", s, lo, hi);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    printf("usage: bench_mqtt [--conns N] [--msgs M] [--size S] [--idle K] [--threads P]\n"
           "                  [--rounds R] [--plugin SO] [--m2mguard BIN] [--tmpdir DIR]\n"
           "                  [--keep]\n"
           "Mosquitto with the m2mguard plugin versus the same Mosquitto and certificates\n"
           "without it, in the same run: mTLS connections/s (N, default 1000, P parallel\n"
           "clients, default 2), QoS 0 messages/s (M messages of S octets, default\n"
           "200000 x 64), broker memory per idle mTLS connection (K, default 500); the\n"
           "medians over R rounds (default 3) and the ratios plugin/anchor.\n"
           "--plugin '' measures the anchor only. The working directory (registry,\n"
           "certificates) is made in DIR (default /tmp; /dev/shm shows the cost without\n"
           "the registry's fsyncs). --keep keeps it.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        } else if (strcmp(a, "--keep") == 0) {
            opt.keep = true;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--conns") == 0)
            opt.conns = arg_long(v, 1, 10000000);
        else if (strcmp(a, "--msgs") == 0)
            opt.msgs = arg_long(v, 1, 100000000);
        else if (strcmp(a, "--size") == 0)
            opt.size = arg_long(v, 1, 1 << 20);
        else if (strcmp(a, "--idle") == 0)
            opt.idle = arg_long(v, 1, 10000);
        else if (strcmp(a, "--threads") == 0)
            opt.threads = arg_long(v, 1, 64);
        else if (strcmp(a, "--rounds") == 0)
            opt.rounds = arg_long(v, 1, 99);
        else if (strcmp(a, "--plugin") == 0)
            opt.plugin = v;
        else if (strcmp(a, "--tmpdir") == 0)
            opt.tmpdir = v;
        else if (strcmp(a, "--m2mguard") == 0)
            opt.m2mguard = argv[i];
        else {
            usage();
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    bool with_plugin = opt.plugin[0] != '\0';
#ifndef MG_BENCH_HAVE_CA
    if (with_plugin) {
        fprintf(stderr, "bench_mqtt: built without the CA library: anchor only\n");
        with_plugin = false;
    }
#endif
    if (with_plugin && access(opt.plugin, R_OK) != 0) {
        fprintf(stderr, "bench_mqtt: no plugin at %s: anchor only\n", opt.plugin);
        with_plugin = false;
    }
    if (snprintf(tmp, sizeof(tmp), "%s/mg-bench-mqtt.XXXXXX", opt.tmpdir) >= (int)sizeof(tmp) ||
        !mkdtemp(tmp))
        die("mkdtemp");
    path_of(srvcert, sizeof(srvcert), "%s/server.crt", tmp);
    path_of(srvkey, sizeof(srvkey), "%s/server.key", tmp);
    nclients = (opt.idle > opt.threads ? opt.idle : opt.threads) + 1;
    cert_of = calloc((size_t)nclients, sizeof(char *));
    key_of = calloc((size_t)nclients, sizeof(char *));
    id_of = calloc((size_t)nclients, sizeof(char *));
    if (!cert_of || !key_of || !id_of)
        die("out of memory");
    for (long i = 0; i < nclients - 1; i++) {
        char name[32];
        snprintf(name, sizeof(name), "bench-%03ld", i);
        client_files(i, name);
    }
    client_files(nclients - 1, "bench-reader");
    mosquitto_lib_init();
    double t = bench_now();
    make_pki();
    printf("bench_mqtt: %ld client certificates (P-256) in %.1f s; directory %s\n", nclients,
           bench_now() - t, tmp);
    printf("  mosquitto %s, %ld connections x %ld clients, %ld QoS 0 messages of %ld octets, "
           "%ld idle connections, %ld round(s)\n",
           "(Debian)", opt.conns, opt.threads, opt.msgs, opt.size, opt.idle, opt.rounds);

    double *fig[2][3];
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 3; k++)
            if (!(fig[b][k] = calloc((size_t)opt.rounds, sizeof(double))))
                die("out of memory");
    for (long r = 0; r < opt.rounds; r++) {
        for (int b = 0; b < (with_plugin ? 2 : 1); b++) {
            int port = start_broker(b == 1);
            long lost = 0;
            fig[b][0][r] = conn_rate(port);
            fig[b][1][r] = throughput(port, &lost);
            fig[b][2][r] = idle_kb(port);
            printf("  round %ld %-7s pid %-7d %8.0f conn/s %10.0f msg/s (%ld lost) %6.1f kB/conn\n",
                   r + 1, b ? "plugin" : "anchor", (int)broker_pid, fig[b][0][r], fig[b][1][r],
                   lost, fig[b][2][r]);
            fflush(stdout);
            stop_broker();
        }
    }
    const char *what[3] = {"mTLS connections/s", "QoS 0 messages/s (received)",
                           "kB per idle mTLS connection"};
    double m[2][3];
    for (int b = 0; b < (with_plugin ? 2 : 1); b++)
        for (int k = 0; k < 3; k++)
            m[b][k] = median(fig[b][k], opt.rounds);
    printf("\n  %-30s %12s %12s %8s\n", "median", "anchor", "plugin", "ratio");
    for (int k = 0; k < 3; k++) {
        if (with_plugin)
            printf("  %-30s %12.1f %12.1f %8.3f%s\n", what[k], m[0][k], m[1][k],
                   m[0][k] > 0 ? m[1][k] / m[0][k] : 0,
                   k < 2 ? (m[1][k] >= 0.95 * m[0][k] ? "  (goal >= 0.95: met)"
                                                      : "  (goal >= 0.95: NOT met)")
                         : "");
        else
            printf("  %-30s %12.1f %12s %8s\n", what[k], m[0][k], "-", "-");
    }
    if (!opt.keep) {
        char *rm[] = {"rm", "-rf", tmp, NULL};
        if (!run(rm))
            fprintf(stderr, "bench_mqtt: could not remove %s\n", tmp);
    } else {
        printf("kept %s\n", tmp);
    }
    mosquitto_lib_cleanup();
    return 0;
}
