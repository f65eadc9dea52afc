/* `m2mguard backup FILE` and `m2mguard restore FILE` (docs/operations.md,
 * "Backup and restore"). backup is online: it copies the store through
 * mg_store_backup (SQLite: VACUUM INTO, one read transaction) while the
 * gateway goes on. restore checks the file (the master key opens it and
 * unwraps a key blob, its schema is not newer than ours: older ones are
 * migrated, integrity), then replaces DIR/m2mguard.db with one rename(2);
 * it refuses while a process holds the store (SQLite's lock on its -shm
 * file), so the services are stopped around a restore. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/keyref.h"
#include "workdir.h"

static const char backup_usage[] =
    "usage: m2mguard backup FILE [--dir DIR]\n"
    "\n"
    "Writes a consistent copy of the working directory's store (" MG_DB_FILE ") into FILE,\n"
    "a new file of mode 0600 (an existing FILE is refused). Online: a running gateway,\n"
    "detector or broker goes on meanwhile. The copy is synced to disk and passes an\n"
    "integrity check before the command returns. Keys stay wrapped: the master key\n"
    "(DIR/" MG_MASTER_FILE " or the token named by master_key) is NOT in FILE; keep a copy\n"
    "of it offline, apart from the backups, or FILE cannot be restored.\n"
    "The PostgreSQL engine is refused: use pg_dump (docs/operations.md).\n"
    "  --dir DIR    working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "exit: 0 written and checked; 1 refused (engine without backup); 2 bad command line;\n"
    "      3 bad working directory or FILE exists; 4 copy or check failed (FILE removed).\n";

static const char restore_usage[] =
    "usage: m2mguard restore FILE [--dir DIR]\n"
    "\n"
    "Replaces the working directory's store (DIR/" MG_DB_FILE ") with the backup FILE.\n"
    "DIR must hold " MG_CONF_FILE " and the master key of the backed-up store (" MG_MASTER_FILE ",\n"
    "or master_key = pkcs11:... in " MG_CONF_FILE "); DIR/" MG_DB_FILE " may be absent (a new\n"
    "machine). FILE is checked first, on a private copy: the master key opens it and\n"
    "unwraps one device's key blob when there is one, its schema version is not newer\n"
    "than this program's (an older one is migrated), and the migrated copy passes an\n"
    "integrity check. Then one rename(2) puts it in place; the store it replaces is\n"
    "kept as DIR/" MG_DB_FILE ".pre-restore-TIME. Refused while a process holds the\n"
    "store (gateway, detector, EST server, broker, console): stop them first.\n"
    "The PostgreSQL engine (store = in " MG_CONF_FILE ") is refused: use pg_restore.\n"
    "  --dir DIR    working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "exit: 0 restored; 1 refused (store in use, master key does not open FILE);\n"
    "     2 bad command line; 3 bad working directory or FILE (not a store, newer schema,\n"
    "     damaged); 4 internal failure.\n";

/* `CMD FILE [--dir DIR]`: -1 to go on, else the exit code. */
static int parse_args(const char *path, const char *usage, int argc, char **argv,
                      const char **file, const char **dir)
{
    enum { L_DIR = 256 };
    static const struct option lo[] = {
        {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(usage, stdout); return MG_EXIT_OK;
        case L_DIR: *dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(path, "expected exactly one FILE");
    *file = argv[optind];
    if ((*file)[0] == '\0' || strlen(*file) >= MG_PATH_MAX)
        return mg_cli_usage_error(path, "FILE is empty or too long");
    return -1;
}

int mg_cmd_backup(int argc, char **argv)
{
    static const char path[] = "m2mguard backup";
    const char *file = NULL, *dir = NULL;
    int rc = parse_args(path, backup_usage, argc, argv, &file, &dir);
    if (rc >= 0)
        return rc;
    mg_workdir w;
    if ((rc = mg_workdir_open(dir, &w)) != MG_EXIT_OK)
        return rc;
    bool in_token = mg_conf_get(&w, "master_key", "")[0] != '\0';
    mg_err e = mg_store_backup(w.store, file);
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, mg_store_errmsg(w.store));
        rc = e == MG_ERR_UNSUPPORTED ? MG_EXIT_REJECT : e == MG_ERR_ARG ? MG_EXIT_INPUT : MG_EXIT_INTERNAL;
        mg_workdir_close(&w);
        return rc;
    }
    struct stat st;
    long long size = stat(file, &st) == 0 ? (long long)st.st_size : -1;
    printf("backup %s: %lld octets, schema version %d, integrity ok, mode 0600\n", file, size,
           mg_store_schema_version(w.store));
    if (in_token)
        printf("the master key is not in it: it stays in the token named by master_key in %s/%s\n",
               w.dir, MG_CONF_FILE);
    else
        printf("the master key is not in it: keep a copy of %s/%s offline, apart from the backups\n",
               w.dir, MG_MASTER_FILE);
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}

/* ---- restore -------------------------------------------------------------------- */

/* The process that holds the SQLite store at db, 0 if none, -1 on error.
 * Every connection of SQLite's unix VFS to a WAL database keeps a read lock
 * on the "DMS" byte of DB-shm (offset 128: (22 + 8) * 4 + 8) as long as it is
 * open; F_GETLK names a process that holds it. */
static long store_holder(const char *db)
{
    char shm[MG_PATH_MAX + 48];
    int n = snprintf(shm, sizeof(shm), "%s-shm", db);
    if (n < 0 || (size_t)n >= sizeof(shm))
        return -1;
    int fd = open(shm, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 128;
    fl.l_len = 1;
    int r = fcntl(fd, F_GETLK, &fl);
    (void)close(fd);
    if (r != 0)
        return -1;
    return fl.l_type == F_UNLCK ? 0 : (long)(fl.l_pid > 0 ? fl.l_pid : 1);
}

static int refuse_if_held(const char *path, const char *db)
{
    long pid = store_holder(db);
    if (pid == 0)
        return MG_EXIT_OK;
    if (pid < 0)
        fprintf(stderr, "%s: cannot tell whether %s is in use: %s\n", path, db, strerror(errno));
    else
        fprintf(stderr, "%s: %s is in use by process %ld (gateway, detector, EST server, broker"
                        " or console): stop it first (systemctl stop 'm2mguard-*')\n",
                path, db, pid);
    return pid < 0 ? MG_EXIT_INTERNAL : MG_EXIT_REJECT;
}

/* Copies src (a regular file, not a link) into the new file dst (0600), synced. */
static int copy_file(const char *path, const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: %s: %s\n", path, src, in < 0 ? strerror(errno) : "not a regular file");
        if (in >= 0)
            (void)close(in);
        return MG_EXIT_INPUT;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        fprintf(stderr, "%s: cannot create %s: %s\n", path, dst, strerror(errno));
        (void)close(in);
        return MG_EXIT_INPUT;
    }
    char buf[65536];
    int rc = MG_EXIT_OK;
    for (;;) {
        ssize_t r = read(in, buf, sizeof(buf));
        if (r == 0)
            break;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "%s: reading %s: %s\n", path, src, strerror(errno));
            rc = MG_EXIT_INPUT;
            break;
        }
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                fprintf(stderr, "%s: writing %s: %s\n", path, dst, strerror(errno));
                rc = MG_EXIT_INTERNAL;
                break;
            }
            off += w;
        }
        if (rc != MG_EXIT_OK)
            break;
    }
    if (rc == MG_EXIT_OK && fsync(out) != 0) {
        fprintf(stderr, "%s: syncing %s: %s\n", path, dst, strerror(errno));
        rc = MG_EXIT_INTERNAL;
    }
    (void)close(in);
    (void)close(out);
    if (rc != MG_EXIT_OK)
        (void)unlink(dst);
    return rc;
}

/* Removes a scratch database and its -wal/-shm (absent: fine). */
static void remove_db(const char *db)
{
    char side[MG_PATH_MAX + 160];
    (void)unlink(db);
    (void)snprintf(side, sizeof(side), "%s-wal", db);
    (void)unlink(side);
    (void)snprintf(side, sizeof(side), "%s-shm", db);
    (void)unlink(side);
}

typedef struct key_probe {
    int64_t id;
    int version;
    char name[MG_NAME_MAX];
} key_probe;

static bool find_keyed(void *ctx, const mg_device *d)
{
    key_probe *p = ctx;
    if (d->key_version > 0 && d->status != MG_DEV_REVOKED) {
        p->id = d->id;
        p->version = d->key_version;
        (void)snprintf(p->name, sizeof(p->name), "%s", d->name);
        return false;
    }
    return true;
}

/* The checks of restore on the opened candidate, then its checked copy into
 * fresh (mg_store_backup: integrity). */
static int check_candidate(const char *path, const char *file, mg_store *s, const char *fresh)
{
    key_probe p = {0, 0, ""};
    mg_err e = mg_store_device_list(s, find_keyed, &p);
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s: %s\n", path, file, mg_store_errmsg(s));
        return MG_EXIT_INPUT;
    }
    if (p.id > 0) {
        mg_keyset k;
        e = mg_store_keys_get(s, p.id, p.version, &k);
        mg_keyset_wipe(&k);
        if (e != MG_OK) {
            fprintf(stderr, "%s: %s: the keys of device %s (version %d) do not unwrap with this "
                            "master key: %s\n", path, file, p.name, p.version, mg_store_errmsg(s));
            return e == MG_ERR_AUTH || e == MG_ERR_KEY ? MG_EXIT_REJECT : MG_EXIT_INPUT;
        }
    }
    e = mg_store_backup(s, fresh);
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s: %s\n", path, file, mg_store_errmsg(s));
        return e == MG_ERR_STORE ? MG_EXIT_INPUT : MG_EXIT_INTERNAL;
    }
    printf("%s: master key ok%s%s%s, schema version %d, integrity ok\n", file,
           p.id > 0 ? ", keys of " : "", p.id > 0 ? p.name : "", p.id > 0 ? " unwrap" : "",
           mg_store_schema_version(s));
    return MG_EXIT_OK;
}

/* Puts fresh in the place of db: the old store (and its WAL) kept as
 * db.pre-restore-TIME, then one rename(2). */
static int swap_in(const char *path, const char *db, const char *fresh, char *kept, size_t cap)
{
    char side[MG_PATH_MAX + 160], kside[MG_PATH_MAX + 160];
    struct stat st;
    kept[0] = '\0';
    if (lstat(db, &st) == 0) {
        int n = snprintf(kept, cap, "%s.pre-restore-%lld", db, (long long)time(NULL));
        if (n < 0 || (size_t)n >= cap)
            return MG_EXIT_INTERNAL;
        /* the WAL first: SQLite finds it by name, so it goes with the kept file */
        (void)snprintf(side, sizeof(side), "%s-wal", db);
        (void)snprintf(kside, sizeof(kside), "%s-wal", kept);
        if (lstat(side, &st) == 0 && rename(side, kside) != 0) {
            fprintf(stderr, "%s: cannot move %s: %s\n", path, side, strerror(errno));
            return MG_EXIT_INTERNAL;
        }
        if (link(db, kept) != 0) {
            fprintf(stderr, "%s: cannot keep %s as %s: %s\n", path, db, kept, strerror(errno));
            return MG_EXIT_INTERNAL;
        }
    }
    if (rename(fresh, db) != 0) {
        fprintf(stderr, "%s: cannot rename %s to %s: %s\n", path, fresh, db, strerror(errno));
        return MG_EXIT_INTERNAL;
    }
    (void)snprintf(side, sizeof(side), "%s-shm", db);
    (void)unlink(side); /* nobody holds it (checked): SQLite makes a new one */
    return MG_EXIT_OK;
}

static int sync_dir(const char *path, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        fprintf(stderr, "%s: cannot sync %s: %s\n", path, dir, strerror(errno));
        if (fd >= 0)
            (void)close(fd);
        return MG_EXIT_INTERNAL;
    }
    (void)close(fd);
    return MG_EXIT_OK;
}

int mg_cmd_restore(int argc, char **argv)
{
    static const char path[] = "m2mguard restore";
    const char *file = NULL, *dir = NULL;
    int rc = parse_args(path, restore_usage, argc, argv, &file, &dir);
    if (rc >= 0)
        return rc;
    /* the working directory: as mg_workdir_open checks it, without the store */
    static mg_workdir w; /* large: not on the stack */
    char conf[MG_PATH_MAX + 32], db[MG_PATH_MAX + 32], cand[MG_PATH_MAX + 64],
        fresh[MG_PATH_MAX + 64], kept[MG_PATH_MAX + 64], uri[MG_CONF_VAL_MAX];
    uint8_t master[32];
    struct stat st;
    memset(&w, 0, sizeof(w));
    if ((rc = mg_workdir_path(dir, w.dir, sizeof(w.dir))) != MG_EXIT_OK)
        return rc;
    if (lstat(w.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: no working directory at %s\n", path, w.dir);
        return MG_EXIT_INPUT;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        fprintf(stderr, "%s: working directory %s has mode %04o: it must be 0700 (chmod 700 %s)\n",
                path, w.dir, (unsigned)(st.st_mode & 07777), w.dir);
        return MG_EXIT_INPUT;
    }
    if ((rc = mg_workdir_file(&w, MG_CONF_FILE, conf, sizeof(conf))) != MG_EXIT_OK ||
        (rc = mg_conf_load(&w, conf)) != MG_EXIT_OK ||
        (rc = mg_workdir_file(&w, MG_DB_FILE, db, sizeof(db))) != MG_EXIT_OK)
        return rc;
    if (mg_workdir_store_pg(&w) != NULL) {
        /* a file put in place of DIR/m2mguard.db would be read by nobody */
        fprintf(stderr, "%s: the store is PostgreSQL (store in %s): restore is for the SQLite "
                        "store; use pg_restore (docs/operations.md)\n", path, MG_CONF_FILE);
        mg_wipe(w.conf, sizeof(w.conf));
        return MG_EXIT_REJECT;
    }
    (void)snprintf(uri, sizeof(uri), "%s", mg_conf_get(&w, "master_key", ""));
    mg_wipe(w.conf, sizeof(w.conf));
    bool in_token = uri[0] != '\0';
    if (in_token && !mg_keyref_is_pkcs11(uri)) {
        fprintf(stderr, "%s: master_key in %s must be a pkcs11: URI\n", path, MG_CONF_FILE);
        return MG_EXIT_INPUT;
    }
    if (!in_token) {
        char keyfile[MG_PATH_MAX + 32];
        if ((rc = mg_workdir_file(&w, MG_MASTER_FILE, keyfile, sizeof(keyfile))) != MG_EXIT_OK ||
            (rc = mg_workdir_read_master(keyfile, master)) != MG_EXIT_OK)
            return rc;
    }
    if ((rc = refuse_if_held(path, db)) != MG_EXIT_OK) {
        mg_wipe(master, sizeof(master));
        return rc;
    }
    /* 1. a private copy of FILE, opened (master-key check, schema, migration) */
    (void)snprintf(cand, sizeof(cand), "%s.restore-%ld", db, (long)getpid());
    (void)snprintf(fresh, sizeof(fresh), "%s.new-%ld", db, (long)getpid());
    remove_db(cand);
    (void)unlink(fresh);
    if ((rc = copy_file(path, file, cand)) != MG_EXIT_OK) {
        mg_wipe(master, sizeof(master));
        return rc;
    }
    mg_store *s = NULL;
    if (in_token) {
        rc = mg_workdir_open_store_p11(cand, uri, false, &s);
    } else {
        mg_err e = mg_store_open(cand, master, false, &s);
        if (e != MG_OK) {
            fprintf(stderr, "%s: %s: %s\n", path, file, mg_store_errmsg(NULL));
            /* another master key: refused; not a store, damaged, a newer
             * schema: bad input; the crypto backend: internal */
            rc = e == MG_ERR_KEY || e == MG_ERR_AUTH ? MG_EXIT_REJECT
                 : e == MG_ERR_CRYPTO                ? MG_EXIT_INTERNAL
                                                     : MG_EXIT_INPUT;
        }
    }
    mg_wipe(master, sizeof(master));
    /* 2. a key blob unwraps; the migrated store, checked, into fresh */
    if (rc == MG_EXIT_OK)
        rc = check_candidate(path, file, s, fresh);
    mg_workdir_close_store(s);
    remove_db(cand);
    /* 3. still nobody holds the store: swap */
    if (rc == MG_EXIT_OK)
        rc = refuse_if_held(path, db);
    if (rc == MG_EXIT_OK)
        rc = swap_in(path, db, fresh, kept, sizeof(kept));
    (void)unlink(fresh);
    if (rc != MG_EXIT_OK) {
        fprintf(stderr, "%s: %s is not replaced\n", path, db);
        return rc;
    }
    if ((rc = sync_dir(path, w.dir)) != MG_EXIT_OK)
        return rc;
    printf("restored %s into %s\n", file, db);
    if (kept[0] != '\0')
        printf("the store it replaced is kept as %s\n", kept);
    return MG_EXIT_OK;
}
