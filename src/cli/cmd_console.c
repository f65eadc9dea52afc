/* `m2mguard console`: the web console (src/console, docs/console.md). */
#ifdef MG_HAVE_CONSOLE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "commands.h"
#include "console.h"
#include "m2mguard/ca.h"
#include "workdir.h"

#define CON_PATH "m2mguard console"

static const char console_usage[] =
    "usage: " CON_PATH " run [--dir DIR] [--listen ADDR:PORT] [--cert FILE --key FILE]\n"
    "       " CON_PATH " user add NAME --role viewer|operator|security [--password-file F] [--dir DIR]\n"
    "       " CON_PATH " user passwd NAME [--password-file F] [--dir DIR]\n"
    "       " CON_PATH " user del NAME [--dir DIR]\n"
    "       " CON_PATH " user list [--dir DIR]\n"
    "\n"
    "run: serves the web console over HTTPS (TLS 1.2 or 1.3 only) until SIGTERM or\n"
    "SIGINT; prints 'console: listening on https://ADDR:PORT' once it accepts\n"
    "connections. Operators log in with the accounts of DIR/console/users; their\n"
    "role decides what they may do: viewer reads; operator also acknowledges and\n"
    "closes alerts, quarantines and re-activates devices; security also rotates\n"
    "keys and revokes certificates. Every login (and failed login) and every action\n"
    "is a security event (bearer console).\n"
    "  --dir DIR, -C DIR  working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "  --listen A:P       key console_listen (127.0.0.1:8443); [::1]:P for IPv6\n"
    "  --cert F --key F   PEM server certificate and its key (0600), keys console_cert and\n"
    "                     console_key. Default DIR/console/tls.crt and tls.key, made at the\n"
    "                     first start: issued by the CA of DIR/ca when there is one, else\n"
    "                     self-signed, for localhost, 127.0.0.1 and ::1.\n"
    "Configuration only: console_max_conn (64), console_max_conn_per_ip (16),\n"
    "console_timeout_s (30), console_sessions (64), console_streams (32),\n"
    "console_max_body (8192), console_login_failures (5 per console_login_window_s,\n"
    "300; then 429), console_idle_s (1800), console_session_s (43200), console_ping_s\n"
    "(15). The audit page uses the audit_* thresholds (docs/audit.md).\n"
    "\n"
    "user: manages DIR/console/users (mode 0600; Argon2id hashes, t=3, 64 MiB, p=1;\n"
    "DIR/m2mguard.conf console_argon2_t and console_argon2_m_kib change the cost of new\n"
    "hashes, not below t=2, 19456 KiB).\n"
    "The password is never an argument: it is read from --password-file F (a 0600\n"
    "file; its first line) or from the standard input (first line; not echoed on a\n"
    "terminal). At least 8 octets. A removed account or a changed role applies to\n"
    "running consoles at the next request of its sessions.\n"
    "\n"
    "exit: 0 done (run: stopped by a signal); 2 bad command line; 3 bad working\n"
    "      directory, account, password, certificate or key; 4 cannot listen or\n"
    "      internal error; 1 refused (the account exists / does not exist).\n";

enum { O_DIR = 'C', O_LISTEN = 256, O_CERT, O_KEY, O_ROLE, O_PWFILE, O_HELP = 'h' };

static const struct option opts[] = {
    {"dir", required_argument, NULL, O_DIR},        {"listen", required_argument, NULL, O_LISTEN},
    {"cert", required_argument, NULL, O_CERT},      {"key", required_argument, NULL, O_KEY},
    {"role", required_argument, NULL, O_ROLE},      {"password-file", required_argument, NULL, O_PWFILE},
    {"help", no_argument, NULL, O_HELP},            {NULL, 0, NULL, 0},
};

typedef struct con_args {
    const char *dir, *listen, *cert, *key, *role, *pwfile;
    int nargs;
    char **args;
} con_args;

/* -1 to go on, else an exit code. */
static int parse(int argc, char **argv, con_args *a)
{
    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "C:h", opts, NULL)) != -1) {
        switch (ch) {
        case O_DIR: a->dir = optarg; break;
        case O_LISTEN: a->listen = optarg; break;
        case O_CERT: a->cert = optarg; break;
        case O_KEY: a->key = optarg; break;
        case O_ROLE: a->role = optarg; break;
        case O_PWFILE: a->pwfile = optarg; break;
        case O_HELP: fputs(console_usage, stdout); return MG_EXIT_OK;
        default: return mg_cli_usage_error(CON_PATH, "unknown option or missing argument");
        }
    }
    a->nargs = argc - optind;
    a->args = argv + optind;
    return -1;
}

/* DIR/console (made 0700 when absent) and the users file in it. */
static int console_dir(const char *dir, char *cdir, char *users, char *wd)
{
    char w[MG_PATH_MAX];
    if (mg_workdir_path(dir, w, sizeof(w)) != MG_EXIT_OK)
        return MG_EXIT_INPUT;
    struct stat st;
    if (stat(w, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, CON_PATH ": %s is not a working directory (m2mguard init)\n", w);
        return MG_EXIT_INPUT;
    }
    if (wd != NULL)
        (void)snprintf(wd, MG_PATH_MAX, "%s", w);
    if ((size_t)snprintf(cdir, MG_PATH_MAX, "%s/console", w) >= MG_PATH_MAX ||
        (size_t)snprintf(users, MG_PATH_MAX, "%s/console/users", w) >= MG_PATH_MAX) {
        fprintf(stderr, CON_PATH ": path too long\n");
        return MG_EXIT_INPUT;
    }
    if (mkdir(cdir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, CON_PATH ": cannot create %s: %s\n", cdir, strerror(errno));
        return MG_EXIT_INPUT;
    }
    if (lstat(cdir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077) != 0) {
        fprintf(stderr, CON_PATH ": %s must be a directory of yours with mode 0700 "
                        "(chmod 700 %s)\n", cdir, cdir);
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

/* The password: the first line of a 0600 file, or of the standard input. */
static int read_password(const char *file, char *pw, size_t cap, size_t *len)
{
    *len = 0;
    if (file != NULL) {
        if (mg_read_private("password file", file, pw, cap, len) != MG_EXIT_OK)
            return MG_EXIT_INPUT;
    } else {
        bool tty = isatty(STDIN_FILENO) == 1;
        struct termios old, quiet;
        if (tty) {
            fputs("password: ", stderr);
            if (tcgetattr(STDIN_FILENO, &old) == 0) {
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t)ECHO;
                (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
            } else
                tty = false;
        }
        char *r = fgets(pw, (int)cap, stdin);
        if (tty) {
            (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            fputc('\n', stderr);
        }
        if (r == NULL) {
            fprintf(stderr, CON_PATH ": no password on the standard input\n");
            return MG_EXIT_INPUT;
        }
        *len = strlen(pw);
    }
    char *nl = memchr(pw, '\n', *len);
    if (nl != NULL)
        *len = (size_t)(nl - pw);
    if (*len > 0 && pw[*len - 1] == '\r')
        (*len)--;
    pw[*len] = '\0';
    if (strlen(pw) != *len) {
        fprintf(stderr, CON_PATH ": the password contains a NUL octet\n");
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

static int err_exit(mg_err e)
{
    return e == MG_ERR_STATE || e == MG_ERR_KEY ? MG_EXIT_REJECT
           : e == MG_ERR_ARG || e == MG_ERR_FORMAT ? MG_EXIT_INPUT
                                                     : MG_EXIT_INTERNAL;
}

static unsigned conf_uint(const mg_workdir *w, const char *key, unsigned max, bool *bad)
{
    const char *v = mg_conf_get(w, key, NULL);
    uint64_t x = 0;
    if (v == NULL || *v == '\0')
        return 0;
    if (!mg_cli_parse_u64(v, max, &x)) {
        fprintf(stderr, CON_PATH ": %s = '%s': a whole number up to %u\n", key, v, max);
        *bad = true;
        return 0;
    }
    return (unsigned)x;
}

static int user_cmd(con_args *a)
{
    if (a->nargs < 1)
        return mg_cli_usage_error(CON_PATH, "user add|passwd|del|list");
    const char *verb = a->args[0];
    char cdir[MG_PATH_MAX], users[MG_PATH_MAX], why[300] = "";
    bool list = strcmp(verb, "list") == 0;
    bool add = strcmp(verb, "add") == 0, passwd = strcmp(verb, "passwd") == 0,
         del = strcmp(verb, "del") == 0;
    if (!list && !add && !passwd && !del)
        return mg_cli_usage_error(CON_PATH, "user add|passwd|del|list");
    if (a->nargs != (list ? 1 : 2))
        return mg_cli_usage_error(CON_PATH, list ? "user list takes no name" : "one account name");
    if ((a->role != NULL) != add)
        return mg_cli_usage_error(CON_PATH, add ? "user add needs --role" : "--role is for user add");
    if (a->pwfile != NULL && !add && !passwd)
        return mg_cli_usage_error(CON_PATH, "--password-file is for add and passwd");
    if (a->listen != NULL || a->cert != NULL || a->key != NULL)
        return mg_cli_usage_error(CON_PATH, "--listen, --cert and --key are for run");
    mg_console_role role = MG_ROLE_NONE;
    if (add && !mg_console_role_parse(a->role, &role))
        return mg_cli_usage_error(CON_PATH, "--role viewer, operator or security");
    int rc = console_dir(a->dir, cdir, users, NULL);
    if (rc != MG_EXIT_OK)
        return rc;
    if (list) {
        mg_console_user *v = NULL;
        size_t n = 0;
        mg_err e = mg_console_users_read(users, &v, &n, why, sizeof(why));
        if (e != MG_OK) {
            fprintf(stderr, CON_PATH ": %s\n", why);
            return MG_EXIT_INPUT;
        }
        for (size_t i = 0; i < n; i++)
            printf("%s\t%s\n", v[i].name, mg_console_role_name(v[i].role));
        if (v != NULL) {
            mg_wipe(v, MG_CONSOLE_USERS_MAX * sizeof(*v));
            free(v);
        }
        return MG_EXIT_OK;
    }
    const char *name = a->args[1];
    if (!mg_store_name_valid(name))
        return mg_cli_usage_error(CON_PATH, "an account name: 1..63 of A-Z a-z 0-9 . _ -");
    mg_err e;
    if (del) {
        e = mg_console_user_del(users, name, why, sizeof(why));
    } else {
        char pw[MG_CONSOLE_PW_MAX + 2];
        size_t len = 0;
        rc = read_password(a->pwfile, pw, sizeof(pw), &len);
        if (rc != MG_EXIT_OK) {
            mg_wipe(pw, sizeof(pw));
            return rc;
        }
        /* the hash's cost: m2mguard.conf console_argon2_t / console_argon2_m_kib */
        mg_workdir *w = calloc(1, sizeof(*w));
        char conf[MG_PATH_MAX + 32];
        unsigned t = 0, m_kib = 0;
        bool bad = w == NULL;
        if (w != NULL && snprintf(conf, sizeof(conf), "%s/../" MG_CONF_FILE, cdir) <
                             (int)sizeof(conf) && access(conf, F_OK) == 0) {
            bad = mg_conf_load(w, conf) != MG_EXIT_OK;
            if (!bad) {
                t = conf_uint(w, "console_argon2_t", 100, &bad);
                m_kib = conf_uint(w, "console_argon2_m_kib", 4194304, &bad);
            }
        }
        if (w != NULL) {
            mg_wipe(w, sizeof(*w));
            free(w);
        }
        e = bad ? MG_ERR_ARG
                : mg_console_user_set(users, name, role, pw, len, add, t, m_kib, why, sizeof(why));
        if (bad && why[0] == '\0')
            (void)snprintf(why, sizeof(why), "bad configuration (see above)");
        mg_wipe(pw, sizeof(pw));
    }
    if (e != MG_OK) {
        fprintf(stderr, CON_PATH ": %s\n", why);
        return err_exit(e);
    }
    printf("account %s %s\n", name, add ? "added" : del ? "removed" : "password changed");
    return MG_EXIT_OK;
}

/* The issuing CA's certificate after the server's: the chain a client needs
 * to reach the root it trusts. */
static bool append_issuing(const char *ca_dir, const char *cert)
{
    char path[MG_PATH_MAX + 16], buf[8192];
    if ((size_t)snprintf(path, sizeof(path), "%s/issuing.crt", ca_dir) >= sizeof(path))
        return false;
    FILE *in = fopen(path, "r");
    if (in == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof(buf), in);
    bool ok = ferror(in) == 0 && n > 0 && n < sizeof(buf);
    (void)fclose(in);
    FILE *out = ok ? fopen(cert, "a") : NULL;
    if (out == NULL)
        return false;
    ok = fwrite(buf, 1, n, out) == n;
    if (fclose(out) != 0)
        ok = false;
    return ok;
}

/* The default certificate: issued by the CA of DIR/ca, else self-signed. */
static int make_cert(const mg_workdir *w, const char *ca_dir, const char *cert, const char *key)
{
    char why[300] = "";
    mg_err e;
    if (ca_dir != NULL) {
        mg_ca *ca = NULL;
        e = mg_ca_open(ca_dir, w->store, &ca, why, sizeof(why));
        if (e == MG_OK) {
            static const char *const dns[] = {"localhost", NULL};
            static const char *const ips[] = {"127.0.0.1", "::1", NULL};
            e = mg_ca_issue_server(ca, "localhost", dns, ips, 365, key, cert, why, sizeof(why));
            mg_ca_close(ca);
        }
        if (e == MG_OK && !append_issuing(ca_dir, cert)) {
            (void)snprintf(why, sizeof(why), "cannot append the issuing CA certificate to %.200s", cert);
            (void)unlink(key);
            (void)unlink(cert);
            e = MG_ERR_STORE;
        }
        if (e == MG_OK)
            fprintf(stderr, "console: made %s, issued by the CA of %s\n", cert, ca_dir);
    } else {
        e = mg_console_self_signed(cert, key, why, sizeof(why));
        if (e == MG_OK)
            fprintf(stderr, "console: made %s (self-signed: no CA in the working directory)\n",
                    cert);
    }
    if (e != MG_OK) {
        fprintf(stderr, CON_PATH ": cannot make the TLS certificate: %s\n", why);
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

static int in_dir(const mg_workdir *w, const char *name, char *out, size_t cap)
{
    if (name[0] == '/')
        return (size_t)snprintf(out, cap, "%s", name) < cap ? MG_EXIT_OK : MG_EXIT_INPUT;
    return mg_workdir_file(w, name, out, cap);
}

static int run_cmd(con_args *a)
{
    if (a->nargs != 0)
        return mg_cli_usage_error(CON_PATH, "run takes no arguments");
    if (a->role != NULL || a->pwfile != NULL)
        return mg_cli_usage_error(CON_PATH, "--role and --password-file are for user");
    if ((a->cert == NULL) != (a->key == NULL))
        return mg_cli_usage_error(CON_PATH, "--cert and --key go together");
    char cdir[MG_PATH_MAX], users[MG_PATH_MAX];
    int rc = console_dir(a->dir, cdir, users, NULL);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_workdir w;
    rc = mg_workdir_open(a->dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    static char cert[MG_PATH_MAX], key[MG_PATH_MAX], ca_dir[MG_PATH_MAX], policy[MG_PATH_MAX],
        probe[MG_PATH_MAX + 16];
    struct stat st;
    bool have_ca = mg_workdir_file(&w, "ca", ca_dir, sizeof(ca_dir)) == MG_EXIT_OK &&
                   snprintf(probe, sizeof(probe), "%s/ca.conf", ca_dir) < (int)sizeof(probe) &&
                   stat(probe, &st) == 0;
    const char *cf = a->cert != NULL ? a->cert : mg_conf_get(&w, "console_cert", "");
    const char *kf = a->key != NULL ? a->key : mg_conf_get(&w, "console_key", "");
    if (cf[0] != '\0' && kf[0] != '\0') {
        if (in_dir(&w, cf, cert, sizeof(cert)) != MG_EXIT_OK ||
            in_dir(&w, kf, key, sizeof(key)) != MG_EXIT_OK)
            rc = MG_EXIT_INPUT;
    } else {
        if ((size_t)snprintf(cert, sizeof(cert), "%s/tls.crt", cdir) >= sizeof(cert) ||
            (size_t)snprintf(key, sizeof(key), "%s/tls.key", cdir) >= sizeof(key))
            rc = MG_EXIT_INPUT;
        else if (stat(key, &st) != 0 && stat(cert, &st) != 0)
            rc = make_cert(&w, have_ca ? ca_dir : NULL, cert, key);
    }
    (void)mg_workdir_file(&w, "policy.yaml", policy, sizeof(policy));
    bool bad = false;
    mg_console_opts o;
    memset(&o, 0, sizeof(o));
    o.listen = a->listen != NULL ? a->listen : mg_conf_get(&w, "console_listen", "127.0.0.1:8443");
    o.workdir = w.dir;
    o.users_path = users;
    o.cert_file = cert;
    o.key_file = key;
    o.store = w.store;
    o.ca_dir = have_ca ? ca_dir : NULL;
    o.catalogue_dir = mg_cli_risk_catalogue(NULL, &w);
    o.policy_path = policy;
    o.max_conn = conf_uint(&w, "console_max_conn", 1024, &bad);
    o.per_ip = conf_uint(&w, "console_max_conn_per_ip", 1024, &bad);
    o.timeout_s = conf_uint(&w, "console_timeout_s", 3600, &bad);
    o.max_sessions = conf_uint(&w, "console_sessions", 10000, &bad);
    o.max_streams = conf_uint(&w, "console_streams", 1024, &bad);
    o.max_body = conf_uint(&w, "console_max_body", 65536, &bad);
    o.login_failures = conf_uint(&w, "console_login_failures", 1000, &bad);
    o.login_window_s = conf_uint(&w, "console_login_window_s", 86400, &bad);
    o.idle_s = conf_uint(&w, "console_idle_s", 86400, &bad);
    o.absolute_s = conf_uint(&w, "console_session_s", 7 * 86400, &bad);
    o.ping_s = conf_uint(&w, "console_ping_s", 3600, &bad);
    /* the audit of /api/audit: its defaults, the working directory's files */
    mg_audit_paths ap;
    memset(&ap, 0, sizeof(ap));
    ap.dir = w.dir;
    ap.ca_dir = have_ca ? ca_dir : NULL;
    ap.master_in_token = mg_conf_get(&w, "master_key", "")[0] != '\0';
    ap.store_pg = mg_workdir_store_pg(&w) != NULL;
    mg_audit_cfg ac;
    if (!mg_cli_audit_cfg(&w, &ac))
        bad = true;
    mg_audit_risk *risk = NULL;
    char why[512] = "";
    if (o.catalogue_dir != NULL &&
        mg_audit_risk_load(o.catalogue_dir, mg_conf_get(&w, "audit_attacker", NULL), &risk, why,
                           sizeof(why)) != MG_OK)
        fprintf(stderr, "console: %s (the audit quotes no years)\n", why);
    ac.risk = risk;
    o.audit_paths = &ap;
    o.audit_cfg = &ac;
    if (bad)
        rc = MG_EXIT_INPUT;
    mg_console *con = NULL;
    if (rc == MG_EXIT_OK) {
        mg_err e = mg_console_start(&o, &con, why, sizeof(why));
        if (e != MG_OK) {
            fprintf(stderr, CON_PATH ": %s\n", why);
            rc = e == MG_ERR_STATE ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
        }
    }
    if (rc == MG_EXIT_OK) {
        (void)mg_cli_catch_stop();
        const char *colon = strrchr(o.listen, ':');
        printf("console: listening on https://%.*s:%u\n",
               colon != NULL ? (int)(colon - o.listen) : 0, o.listen, mg_console_port(con));
        fflush(stdout);
        while (!mg_cli_stop) {
            struct timespec ts = {0, 200L * 1000 * 1000};
            (void)nanosleep(&ts, NULL);
        }
        mg_console_stop(con);
        printf("console: stopped\n");
    }
    mg_audit_risk_free(risk);
    mg_workdir_close(&w);
    return rc;
}

int mg_cmd_console(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(console_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? MG_EXIT_USAGE : MG_EXIT_OK;
    }
    bool run = strcmp(argv[1], "run") == 0, user = strcmp(argv[1], "user") == 0;
    if (!run && !user)
        return mg_cli_usage_error(CON_PATH, "run or user");
    con_args a;
    int rc = parse(argc - 1, argv + 1, &a);
    if (rc >= 0)
        return rc;
    return run ? run_cmd(&a) : user_cmd(&a);
}
#endif
