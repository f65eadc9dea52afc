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
    {"init", mg_cmd_init, "create a working directory: database, configuration, master key"},
    {"device", mg_cmd_device, "device registry: add, list, show, quarantine, revoke, delete"},
    {"events", mg_cmd_events, "list or follow the security events"},
    {"detect", mg_cmd_detect, "the detector: run the rules over the events, print the defaults"},
    {"alerts", mg_cmd_alerts, "alerts: list, follow, show, acknowledge, close, undo"},
    {"audit", mg_cmd_audit, "audit the fleet's configuration: shared or weak keys, certificates, files"},
    {"backup", mg_cmd_backup, "online, checked copy of the store into a file (keys stay wrapped)"},
    {"restore", mg_cmd_restore, "check a backup and put it in place of the store"},
    {"store", mg_cmd_store, "the store: move its master key into a PKCS#11 token"},
    {"config", mg_cmd_config, "the configuration file: check it, list the known keys"},
#ifdef MG_HAVE_CA
    {"ca", mg_cmd_ca, "certificate authority: init, issue, server, revoke, crl, list"},
#endif
    {"app", mg_cmd_app, "applications (backend clients of the broker): add, list"},
    {"signer", mg_cmd_signer, "command signers (operator keys, policy roles): add, list, revoke"},
    {"block", mg_cmd_block, "blocked and throttled source addresses: list, add, clear"},
    {"key", mg_cmd_key, "key management: rotate a device's SMS keys"},
    {"send", mg_cmd_send, "queue a secured command for a device"},
    {"cmd", mg_cmd_cmd, "signed commands (COSE_Sign1): sign, verify, inspect"},
    {"update", mg_cmd_update, "signed updates (SUIT): create, inspect, verify, push"},
    {"gateway", mg_cmd_gateway, "run the SMS gateway (SMPP client of the SMSC)"},
#ifdef MG_HAVE_EST
    {"est", mg_cmd_est, "EST enrolment server (RFC 7030) of the CA"},
#endif
#ifdef MG_HAVE_CONSOLE
    {"console", mg_cmd_console, "the web console (HTTPS) and its operator accounts"},
#endif
    {"agent", mg_cmd_agent, "reference device agent (SMPP ESME standing in for a modem)"},
    {"broker", mg_cmd_broker, "MQTT broker: write a mosquitto.conf with the m2mguard plugin"},
    {"demo", mg_cmd_demo, "run the demonstration: secured SMS and the attacks it stops"},
    {"version", cmd_version, "print the version and the crypto backend"},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0)
        return cmd_version(0, NULL);
    return mg_cli_dispatch("m2mguard", top, sizeof(top) / sizeof(top[0]), argc - 1, argv + 1);
}
