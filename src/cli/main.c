/* m2mguard: git-style command-line tool. Subcommands come from the table. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/common.h"
#include "m2mguard/crypto.h"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("m2mguard %s (crypto: %s)\n", MG_VERSION_STRING, mg_crypto_backend());
    return MG_EXIT_OK;
}

static const mg_cmd top[] = {
    {"sms", mg_cmd_sms, "secured SMS: pack/unpack command packets and PoRs, TPDUs"},
#ifdef MG_HAVE_RISK
    {"risk", mg_cmd_risk, "risk and defence analysis of an M2M system"},
#endif
    {"demo", mg_cmd_demo, "run the demonstration: secured SMS and the attacks it stops"},
    {"version", cmd_version, "print the version and the crypto backend"},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0)
        return cmd_version(0, NULL);
    return mg_cli_dispatch("m2mguard", top, sizeof(top) / sizeof(top[0]), argc - 1, argv + 1);
}
