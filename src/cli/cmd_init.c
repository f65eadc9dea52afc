/* `m2mguard init [DIR]`: creates a working directory (docs/operations.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/crypto.h"
#include "workdir.h"

#define INIT_PATH "m2mguard init"

static const char init_usage[] =
    "usage: " INIT_PATH " [DIR]\n"
    "\n"
    "Creates the working directory DIR (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT
    "),\n"
    "mode 0700, with:\n"
    "  " MG_DB_FILE "    the device registry and key store (SQLite, WAL)\n"
    "  " MG_CONF_FILE "  the gateway configuration, mode 0600 (it holds the SMPP password)\n"
    "  " MG_MASTER_FILE "     32 random octets (64 hex digits), mode 0600: wraps every device key\n"
    "  " MG_DEVICES_DIR "/       provisioning files of new devices, mode 0700\n"
    "The parent directory must exist. Refuses to touch a directory that is not empty.\n"
    "\n"
    "exit: 0 created; 3 DIR already initialised or not empty, or cannot be created;\n"
    "      4 internal failure.\n";

static const char conf_template[] =
    "# m2mguard configuration: key=value, one a line; '#' starts a comment.\n"
    "# Mode 0600: it holds the SMPP password. See docs/operations.md.\n"
    "\n"
    "# The gateway's own number (+E.164): devices send to it, provisioning files name it.\n"
    "gateway_number=+491710000001\n"
    "\n"
    "# The SMSC (SMPP 3.4); the gateway binds as a transceiver.\n"
    "smsc_host=127.0.0.1\n"
    "smsc_port=2775\n"
    "system_id=m2mguard\n"
    "password=%s\n"
    "system_type=\n"
    "# Outstanding submit_sm at most; enquire_link interval in milliseconds.\n"
    "window=10\n"
    "enquire_link_ms=30000\n"
    "\n"
    "# Seconds to wait for a proof of receipt before a command is marked timeout.\n"
    "por_timeout_s=120\n"
    "# Accepted messages, as JSON lines (relative to the working directory).\n"
    "output=inbox.jsonl\n"
    "# Most accepted messages per transaction (group commit).\n"
    "group_commit_max=256\n";

/* 8 printable characters from [A-Za-z0-9], without modulo bias. */
static bool random_password(char out[9])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = 0;
    while (n < 8) {
        uint8_t r[16];
        if (mg_crypto_random(r, sizeof(r)) != MG_OK)
            return false;
        for (size_t i = 0; i < sizeof(r) && n < 8; i++)
            if (r[i] < 248) /* 248 = 4 * 62 */
                out[n++] = alphabet[r[i] % 62];
        mg_wipe(r, sizeof(r));
    }
    out[8] = '\0';
    return true;
}

/* 0: absent or empty directory we may use; else an exit code (message printed). */
static int check_target(const char *dir, bool *existed)
{
    struct stat st;
    *existed = false;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? MG_EXIT_OK : MG_EXIT_INPUT;
    *existed = true;
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, INIT_PATH ": %s exists and is not a directory\n", dir);
        return MG_EXIT_INPUT;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, INIT_PATH ": cannot read %s: %s\n", dir, strerror(errno));
        return MG_EXIT_INPUT;
    }
    bool ours = false, empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        empty = false;
        if (strcmp(e->d_name, MG_DB_FILE) == 0 || strcmp(e->d_name, MG_MASTER_FILE) == 0 ||
            strcmp(e->d_name, MG_CONF_FILE) == 0)
            ours = true;
    }
    (void)closedir(d);
    if (ours) {
        fprintf(stderr, INIT_PATH ": %s is already initialised; refusing to overwrite it\n", dir);
        return MG_EXIT_INPUT;
    }
    if (!empty) {
        fprintf(stderr, INIT_PATH ": %s exists and is not empty; refusing to use it\n", dir);
        return MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    (void)close(fd);
    return rc;
}

/* Creates the store and records the first event. */
static int create_store(const mg_workdir *w, const char *db, const uint8_t master[32])
{
    mg_store *s = NULL;
    int rc = mg_file_create(db, "", 0, 0600); /* SQLite's -wal and -shm take this mode */
    if (rc != MG_EXIT_OK)
        return rc;
    mg_err e = mg_store_open(db, master, true, &s);
    if (e != MG_OK) {
        fprintf(stderr, INIT_PATH ": %s: %s\n", db, mg_store_errmsg(NULL));
        return MG_EXIT_INTERNAL;
    }
    mg_event ev = {0};
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "cli");
    (void)snprintf(ev.kind, sizeof(ev.kind), "init");
    (void)snprintf(ev.reason, sizeof(ev.reason), "working directory created");
    (void)w;
    e = mg_store_event_add(s, &ev);
    if (e != MG_OK)
        fprintf(stderr, INIT_PATH ": %s: %s\n", db, mg_store_errmsg(s));
    mg_store_close(s);
    return e == MG_OK ? MG_EXIT_OK : MG_EXIT_INTERNAL;
}

int mg_cmd_init(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "h", longopts, NULL);
        if (ch == -1)
            break;
        if (ch == 'h') {
            fputs(init_usage, stdout);
            return MG_EXIT_OK;
        }
        return mg_cli_usage_error(INIT_PATH, "unknown option");
    }
    if (argc - optind > 1)
        return mg_cli_usage_error(INIT_PATH, "at most one DIR");

    mg_workdir w;
    memset(&w, 0, sizeof(w));
    int rc = mg_workdir_path(optind < argc ? argv[optind] : NULL, w.dir, sizeof(w.dir));
    if (rc != MG_EXIT_OK)
        return rc;
    bool existed;
    if ((rc = check_target(w.dir, &existed)) != MG_EXIT_OK)
        return rc;
    if (!existed && mkdir(w.dir, 0700) != 0) {
        fprintf(stderr, INIT_PATH ": cannot create %s: %s\n", w.dir, strerror(errno));
        return MG_EXIT_INPUT;
    }
    if (chmod(w.dir, 0700) != 0) {
        fprintf(stderr, INIT_PATH ": cannot chmod %s: %s\n", w.dir, strerror(errno));
        return MG_EXIT_INPUT;
    }

    char key_path[MG_PATH_MAX + 32], conf_path[MG_PATH_MAX + 32], dev_path[MG_PATH_MAX + 32],
        db_path[MG_PATH_MAX + 32];
    if (mg_workdir_file(&w, MG_MASTER_FILE, key_path, sizeof(key_path)) != MG_EXIT_OK ||
        mg_workdir_file(&w, MG_CONF_FILE, conf_path, sizeof(conf_path)) != MG_EXIT_OK ||
        mg_workdir_file(&w, MG_DEVICES_DIR, dev_path, sizeof(dev_path)) != MG_EXIT_OK ||
        mg_workdir_file(&w, MG_DB_FILE, db_path, sizeof(db_path)) != MG_EXIT_OK)
        return MG_EXIT_USAGE;

    uint8_t master[32];
    char hex[2 * sizeof(master) + 2], password[9], conf[sizeof(conf_template) + 16];
    bool made_key = false, made_conf = false, made_dev = false, made_db = false;
    rc = MG_EXIT_INTERNAL;
    if (mg_crypto_random(master, sizeof(master)) != MG_OK || !random_password(password)) {
        fprintf(stderr, INIT_PATH ": the random generator failed\n");
        goto out;
    }
    mg_hex_encode(hex, master, sizeof(master));
    hex[2 * sizeof(master)] = '\n';
    hex[2 * sizeof(master) + 1] = '\0';
    int n = snprintf(conf, sizeof(conf), conf_template, password);
    if (n < 0 || (size_t)n >= sizeof(conf))
        goto out;
    if ((rc = mg_file_create(key_path, hex, strlen(hex), 0600)) != MG_EXIT_OK)
        goto out;
    made_key = true;
    if ((rc = mg_file_create(conf_path, conf, (size_t)n, 0600)) != MG_EXIT_OK)
        goto out;
    made_conf = true;
    made_dev = mkdir(dev_path, 0700) == 0;
    if (!made_dev || chmod(dev_path, 0700) != 0) {
        fprintf(stderr, INIT_PATH ": cannot create %s: %s\n", dev_path, strerror(errno));
        rc = MG_EXIT_INPUT;
        goto out;
    }
    made_db = true; /* create_store makes it or fails before any other process can use it */
    if ((rc = create_store(&w, db_path, master)) != MG_EXIT_OK)
        goto out;
    if (sync_dir(w.dir) != 0) {
        fprintf(stderr, INIT_PATH ": cannot sync %s: %s\n", w.dir, strerror(errno));
        rc = MG_EXIT_INPUT;
        goto out;
    }
    printf("initialised %s\n"
           "  %s/%s   device registry and key store\n"
           "  %s/%s configuration (mode 0600)\n"
           "  %s/%s    master key (mode 0600): back it up apart from the database\n"
           "  %s/%s/      provisioning files (mode 0700)\n",
           w.dir, w.dir, MG_DB_FILE, w.dir, MG_CONF_FILE, w.dir, MG_MASTER_FILE, w.dir,
           MG_DEVICES_DIR);
out:
    if (rc != MG_EXIT_OK) { /* leave nothing half made */
        static const char *const suffixes[] = {"", "-wal", "-shm"};
        for (size_t i = 0; made_db && i < 3; i++) {
            char p[MG_PATH_MAX + 40];
            (void)snprintf(p, sizeof(p), "%s%s", db_path, suffixes[i]);
            (void)unlink(p);
        }
        if (made_key)
            (void)unlink(key_path);
        if (made_conf)
            (void)unlink(conf_path);
        if (made_dev)
            (void)rmdir(dev_path);
        if (!existed)
            (void)rmdir(w.dir);
    }
    mg_wipe(master, sizeof(master));
    mg_wipe(hex, sizeof(hex));
    mg_wipe(password, sizeof(password));
    mg_wipe(conf, sizeof(conf));
    return rc;
}
