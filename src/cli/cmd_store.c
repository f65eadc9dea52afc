/* `m2mguard store master-import`: moves the store's master key into a
 * PKCS#11 token (docs/pkcs11.md). The wrapped rows stay as they are: the
 * token's RFC 5649 wrap gives the same bytes as the file key's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/keyref.h"
#include "workdir.h"

static const char import_usage[] =
    "usage: m2mguard store master-import URI [--dir DIR]\n"
    "\n"
    "Moves the store's master key (DIR/" MG_MASTER_FILE ") into the PKCS#11 token named by\n"
    "URI, an RFC 7512 pkcs11: URI with object= (the new key's label), e.g.\n"
    "  pkcs11:token=m2mguard;object=store-master;type=secret-key?pin-source=/etc/m2mguard/store.pin\n"
    "The key becomes a token object that cannot be read out (CKA_SENSITIVE, not\n"
    "CKA_EXTRACTABLE); the command then opens the store through the token (the\n"
    "master-key check must pass) and adds `master_key = URI` to DIR/" MG_CONF_FILE ".\n"
    "The store is the one " MG_CONF_FILE " names: DIR/" MG_DB_FILE ", or PostgreSQL (store =).\n"
    "From then on every command wraps and unwraps the SMS keys inside the token.\n"
    "DIR/" MG_MASTER_FILE " is left in place: back it up offline, then delete it.\n"
    "Refused when " MG_CONF_FILE " already names a master_key or the token already\n"
    "holds an object with that label or id.\n"
    "  --dir DIR    working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "exit: 0 done; 1 refused; 2 bad command line; 3 bad working directory, token or\n"
    "      PIN; 4 internal failure.\n";

static int master_import(int argc, char **argv)
{
    static const char path[] = "m2mguard store master-import";
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
        case 'h': fputs(import_usage, stdout); return MG_EXIT_OK;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(path, "expected exactly one URI");
    const char *uri = argv[optind];
    if (!mg_keyref_is_pkcs11(uri))
        return mg_cli_usage_error(path, "URI must be a pkcs11: URI");
    if (strlen(uri) >= MG_CONF_VAL_MAX || strpbrk(uri, "\r\n#") != NULL)
        return mg_cli_usage_error(path, "URI must be one line without '#', shorter than 256 characters");

    /* 1. the working directory opens with the key file */
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    /* db: the store the working directory names (DIR/m2mguard.db, or the
     * PostgreSQL connection string of `store`: it may hold a password) */
    char conf[MG_PATH_MAX + 32], keyfile[MG_PATH_MAX + 32], db[MG_PATH_MAX + MG_CONF_VAL_MAX];
    if (mg_conf_get(&w, "master_key", "")[0] != '\0') {
        fprintf(stderr, "%s: %s already names a master_key\n", path, MG_CONF_FILE);
        mg_workdir_close(&w);
        return MG_EXIT_REJECT;
    }
    if ((rc = mg_workdir_file(&w, MG_CONF_FILE, conf, sizeof(conf))) != MG_EXIT_OK ||
        (rc = mg_workdir_file(&w, MG_MASTER_FILE, keyfile, sizeof(keyfile))) != MG_EXIT_OK) {
        mg_workdir_close(&w);
        return rc;
    }
    const char *pg = mg_workdir_store_pg(&w);
    if (pg != NULL)
        (void)snprintf(db, sizeof(db), "%s", pg); /* fits: MG_CONF_VAL_MAX */
    else if ((rc = mg_workdir_file(&w, MG_DB_FILE, db, sizeof(db))) != MG_EXIT_OK) {
        mg_workdir_close(&w);
        return rc;
    }
    mg_workdir_close(&w);

    /* 2. into the token: the import takes the 32 octets from a 0600 file
     * (master.key holds them as hex), made here and wiped at once */
    uint8_t master[32];
    char raw[MG_PATH_MAX + 48], why[256] = "";
    if ((rc = mg_workdir_read_master(keyfile, master)) != MG_EXIT_OK) {
        mg_wipe(db, sizeof(db));
        return rc;
    }
    int n0 = snprintf(raw, sizeof(raw), "%s.import-%ld", keyfile, (long)getpid());
    if (n0 < 0 || (size_t)n0 >= sizeof(raw) ||
        (rc = mg_file_create(raw, master, sizeof(master), 0600)) != MG_EXIT_OK) {
        mg_wipe(master, sizeof(master));
        mg_wipe(db, sizeof(db));
        return n0 < 0 || (size_t)n0 >= sizeof(raw) ? MG_EXIT_USAGE : rc;
    }
    mg_wipe(master, sizeof(master));
    mg_err e = mg_p11_master_import(uri, raw, why, sizeof(why));
    {
        /* overwrite, then remove the temporary copy */
        int zfd = open(raw, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (zfd >= 0) {
            if (write(zfd, master, sizeof(master)) != (ssize_t)sizeof(master) || fsync(zfd) != 0)
                fprintf(stderr, "%s: cannot overwrite %s before removing it\n", path, raw);
            (void)close(zfd);
        }
        if (unlink(raw) != 0)
            fprintf(stderr, "%s: cannot remove %s: %s (remove it yourself)\n", path, raw, strerror(errno));
    }
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, why);
        mg_wipe(db, sizeof(db));
        return e == MG_ERR_CRYPTO ? MG_EXIT_INTERNAL : e == MG_ERR_ARG ? MG_EXIT_REJECT : MG_EXIT_INPUT;
    }
    /* 3. the store opens through the token (its master-key check passes) */
    mg_store *s = NULL;
    rc = mg_workdir_open_store_p11(db, uri, false, &s);
    mg_wipe(db, sizeof(db));
    if (rc != MG_EXIT_OK) {
        fprintf(stderr, "%s: the key is in the token but the store does not open with it;"
                        " %s is unchanged\n", path, MG_CONF_FILE);
        return rc;
    }
    mg_workdir_close_store(s);
    /* 4. the configuration names it */
    int fd = open(conf, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    char line[MG_CONF_VAL_MAX + 64];
    int n = snprintf(line, sizeof(line), "\n# the store's master key is in a PKCS#11 token\nmaster_key = %s\n",
                     uri);
    if (fd < 0 || n < 0 || (size_t)n >= sizeof(line) || write(fd, line, (size_t)n) != (ssize_t)n ||
        fsync(fd) != 0) {
        fprintf(stderr, "%s: cannot append to %s: %s (add the line 'master_key = URI' yourself)\n",
                path, conf, strerror(errno));
        if (fd >= 0)
            (void)close(fd);
        return MG_EXIT_INTERNAL;
    }
    (void)close(fd);
    printf("master key imported into the token; %s names it (master_key)\n", MG_CONF_FILE);
    printf("the store opens through the token; back up %s offline, then delete it\n", keyfile);
    return MG_EXIT_OK;
}

int mg_cmd_store(int argc, char **argv)
{
    static const mg_cmd table[] = {
        {"master-import", master_import, "move the store's master key into a PKCS#11 token"},
    };
    return mg_cli_dispatch("m2mguard store", table, sizeof(table) / sizeof(table[0]), argc - 1,
                           argv + 1);
}
