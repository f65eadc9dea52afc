/* `m2mguard app add|list`: applications, the backend clients of the broker
 * (their own certificates, a role from the registry; docs/mqtt-profile.md). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "workdir.h"

#define APP_DIR_HELP                                                                              \
    "  --dir DIR    working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
#define APP_EXIT_HELP                                                                             \
    "exit: 0 done; 1 refused (name taken by an application or a device);\n"                      \
    "      2 bad command line; 3 no working directory; 4 internal failure.\n"

static const char add_usage[] =
    "usage: m2mguard app add NAME --role ROLE [--dir DIR]\n"
    "\n"
    "Registers an application (a backend client of the broker). Its certificate is\n"
    "issued with 'm2mguard ca issue --app NAME --csr FILE'. The broker plugin gives\n"
    "it the rights of its role (docs/mqtt-profile.md):\n"
    "  telemetry-reader   may subscribe m2m/+/up/telemetry\n"
    "  operator           may subscribe m2m/+/up/#\n"
    "Other roles (same characters as NAME) are stored; the plugin grants them nothing.\n"
    "  NAME         [A-Za-z0-9._-], 1..63 characters, not a device's name\n" APP_DIR_HELP
        APP_EXIT_HELP;

static const char list_usage[] =
    "usage: m2mguard app list [--json] [--dir DIR]\n"
    "\n"
    "One line per application, tab-separated: id name role created (ISO-8601 UTC).\n"
    "--json: a JSON array of objects with those keys.\n" APP_DIR_HELP APP_EXIT_HELP;

static int app_add(int argc, char **argv)
{
    static const char path[] = "m2mguard app add";
    enum { L_ROLE = 256, L_DIR };
    static const struct option lo[] = {
        {"role", required_argument, NULL, L_ROLE}, {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *role = NULL, *dir = NULL;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(add_usage, stdout); return MG_EXIT_OK;
        case L_ROLE: role = optarg; break;
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(path, "expected exactly one NAME");
    if (role == NULL)
        return mg_cli_usage_error(path, "--role is required");
    const char *name = argv[optind];
    if (!mg_store_name_valid(name))
        return mg_cli_usage_error(path, "invalid NAME: use 1..63 of A-Z a-z 0-9 . _ -");
    if (!mg_store_role_valid(role) || strlen(role) >= MG_ROLE_MAX)
        return mg_cli_usage_error(path, "invalid --role: use 1..31 of A-Z a-z 0-9 . _ -");
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_app a;
    memset(&a, 0, sizeof(a));
    (void)snprintf(a.name, sizeof(a.name), "%s", name);
    (void)snprintf(a.role, sizeof(a.role), "%s", role);
    mg_err e = mg_store_app_add(w.store, &a);
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, mg_store_errmsg(w.store));
        mg_workdir_close(&w);
        return e == MG_ERR_ARG ? MG_EXIT_REJECT : mg_store_exit(e);
    }
    printf("added application %s (id %lld, role %s)\n", a.name, (long long)a.id, a.role);
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}

typedef struct app_list_ctx {
    bool json;
    size_t n;
} app_list_ctx;

static bool list_one(void *ctx, const mg_app *a)
{
    app_list_ctx *l = ctx;
    char created[32];
    mg_time_iso(a->created, created);
    if (l->json) {
        printf("%s{\"id\":%lld,\"name\":", l->n ? "," : "", (long long)a->id);
        mg_json_str(stdout, a->name);
        printf(",\"role\":");
        mg_json_str(stdout, a->role);
        printf(",\"created\":\"%s\"}", created);
    } else {
        printf("%lld\t%s\t%s\t%s\n", (long long)a->id, a->name, a->role, created);
    }
    l->n++;
    return true;
}

static mg_err list_rows(mg_store *s, bool json)
{
    app_list_ctx l = {json, 0};
    return mg_store_app_list(s, list_one, &l);
}

static int app_list(int argc, char **argv)
{
    return mg_workdir_list("m2mguard app list", list_usage, argc, argv, list_rows);
}

int mg_cmd_app(int argc, char **argv)
{
    static const mg_cmd table[] = {
        {"add", app_add, "register an application with a role"},
        {"list", app_list, "list the applications (tab-separated, or --json)"},
    };
    return mg_cli_dispatch("m2mguard app", table, sizeof(table) / sizeof(table[0]), argc - 1,
                           argv + 1);
}
