/* Entry points of the top-level subcommands (one line each). */
#ifndef M2MGUARD_COMMANDS_H
#define M2MGUARD_COMMANDS_H

int mg_cmd_sms(int argc, char **argv);   /* cmd_sms.c: secured packets, PoR, TPDU */
int mg_cmd_tpdu(int argc, char **argv);  /* cmd_tpdu.c: `sms tpdu encode|decode` */
int mg_cmd_demo(int argc, char **argv);  /* cmd_demo.c: the main job */
#ifdef MG_HAVE_RISK
int mg_cmd_risk(int argc, char **argv);  /* src/risk: analysis engine */
#endif

#endif
