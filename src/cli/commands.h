/* Entry points of the top-level subcommands (one line each). */
#ifndef M2MGUARD_COMMANDS_H
#define M2MGUARD_COMMANDS_H

int mg_cmd_sms(int argc, char **argv);   /* cmd_sms.c: secured packets, PoR, TPDU */
int mg_cmd_tpdu(int argc, char **argv);  /* cmd_tpdu.c: `sms tpdu encode|decode` */
int mg_cmd_demo(int argc, char **argv);  /* cmd_demo.c: the main job */
int mg_cmd_init(int argc, char **argv);   /* cmd_init.c: create a working directory */
int mg_cmd_device(int argc, char **argv); /* cmd_device.c: the device registry */
int mg_cmd_events(int argc, char **argv); /* cmd_events.c: list/follow security events */
int mg_cmd_detect(int argc, char **argv); /* cmd_detect.c: detect run|defaults */
int mg_cmd_alerts(int argc, char **argv); /* cmd_alerts.c: alerts list|show|ack|close|undo */
int mg_cmd_gateway(int argc, char **argv); /* cmd_gateway.c: gateway run */
int mg_cmd_send(int argc, char **argv);    /* cmd_gateway.c: queue a command */
int mg_cmd_key(int argc, char **argv);     /* cmd_gateway.c: key rotate */
int mg_cmd_agent(int argc, char **argv);   /* cmd_agent.c: reference device agent */
int mg_cmd_cmd(int argc, char **argv);     /* cmd_cmd.c: signed commands sign/verify/inspect */
int mg_cmd_update(int argc, char **argv);  /* cmd_update.c: SUIT updates create/inspect/verify/push */
int mg_cmd_broker(int argc, char **argv);  /* cmd_broker.c: mosquitto.conf with the plugin */
int mg_cmd_store(int argc, char **argv);   /* cmd_store.c: master key into a token */
int mg_cmd_backup(int argc, char **argv);  /* cmd_backup.c: online backup of the store */
int mg_cmd_restore(int argc, char **argv); /* cmd_backup.c: restore a backup */
int mg_cmd_block(int argc, char **argv);   /* cmd_block.c: blocked/throttled sources */
int mg_cmd_config(int argc, char **argv);  /* cmd_config.c: config check|keys */
#ifdef MG_HAVE_CA
int mg_cmd_ca(int argc, char **argv);    /* cmd_ca.c: the certificate authority */
#endif
int mg_cmd_app(int argc, char **argv);   /* cmd_app.c: applications (broker clients) */
int mg_cmd_signer(int argc, char **argv); /* cmd_signer.c: command signers and roles */
#ifdef MG_HAVE_EST
int mg_cmd_est(int argc, char **argv);    /* cmd_est.c: est run */
#endif
/* cmd_signer.c: the COSE algorithm and raw public key of a P-256 / Ed25519
 * key (false: another kind of key); also used by `send --sign`. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>
bool mg_cli_signer_pub(EVP_PKEY *k, int64_t *alg, uint8_t *pub /* MG_SIGNER_PUB_MAX */,
                       size_t *pub_len);
/* Signs tbs with k (file or token key) into the COSE signature form (64 octets). */
bool mg_cli_sign_raw(EVP_PKEY *k, int64_t alg, const uint8_t *tbs, size_t tbs_len,
                     uint8_t sig[64]);

#ifdef MG_HAVE_CONSOLE
int mg_cmd_console(int argc, char **argv); /* cmd_console.c: the web console (src/console) */
#endif
int mg_cmd_audit(int argc, char **argv); /* cmd_audit.c: configuration audit (src/detect/audit.h) */
/* cmd_audit.c, shared with the console: the audit's settings of m2mguard.conf
 * (false: a bad value, said on stderr) and the risk catalogue's directory. */
struct mg_workdir;
struct mg_audit_cfg;
bool mg_cli_audit_cfg(const struct mg_workdir *w, struct mg_audit_cfg *out);
const char *mg_cli_risk_catalogue(const char *opt, const struct mg_workdir *w);
#ifdef MG_HAVE_RISK
int mg_cmd_risk(int argc, char **argv);  /* src/risk: analysis engine */
#endif

/* cmd_detect.c: the detector's configuration from m2mguard.conf (rules NULL:
 * detect_rules); the pointers point into w and ca_dir. An exit code. */
struct mg_workdir;
struct mg_detect_cfg;
int mg_cli_detect_cfg(const struct mg_workdir *w, const char *rules, bool dry_run,
                      struct mg_detect_cfg *cfg, char *ca_dir /* MG_PATH_MAX */);

#endif
