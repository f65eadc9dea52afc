/* m2mguard console: the fleet analysis (risk_report.c includes risk.h, which
 * cannot meet store.h, so this header names the store by its struct only). */
#ifndef M2MGUARD_CONSOLE_RISK_REPORT_H
#define M2MGUARD_CONSOLE_RISK_REPORT_H
#include <stdbool.h>
#include <stddef.h>

#include "m2mguard/common.h"

struct mg_store;
/* `m2mguard risk analyze --fleet WORKDIR --format html` on the open store:
 * the report into *html (malloc'ed, *html_len octets), the verdict with the
 * evidence in *secure and a one-line summary. why-style message in summary
 * on failure. */
MG_MUST_CHECK mg_err mg_con_risk_run(struct mg_store *s, const char *catalogue_dir,
                                     const char *policy_path, const char *workdir, char **html,
                                     size_t *html_len, bool *secure, char *summary, size_t cap);
#endif
