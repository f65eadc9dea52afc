/*
 * libFuzzer target: the command policy's YAML loader (src/policy/policy.c).
 * Invariants: a parse either succeeds with at most MG_POLICY_RULES_MAX rules
 * or fails with a "NAME:LINE: ..." message and no policy; a loaded policy
 * decides every input without reading out of bounds (ASan), and a refusal
 * always names a reason. Needs m2mguard_policy linked in.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_policy *p = NULL;
    char err[256];
    mg_err e = mg_policy_parse("f.yaml", (const char *)data, size, &p, err, sizeof(err));
    if (e != MG_OK) {
        if (p != NULL || strncmp(err, "f.yaml:", 7) != 0)
            abort();
        return 0;
    }
    if (p == NULL || mg_policy_rule_count(p) > MG_POLICY_RULES_MAX)
        abort();
    static const char *const cmds[] = {"unlock", "reboot", "x", ""};
    static const char *const classes[] = {"door-lock", "", "meter"};
    mg_policy_signer sg[2] = {{"a", "operator", MG_PSIGNER_ACTIVE},
                              {"b", "security", MG_PSIGNER_ACTIVE}};
    for (size_t c = 0; c < 4; c++)
        for (size_t k = 0; k < 3; k++)
            for (size_t n = 0; n <= 2; n++) {
                mg_policy_input in = {cmds[c], strlen(cmds[c]), classes[k], n > 0, sg, n};
                mg_policy_decision d;
                mg_policy_decide(p, &in, &d);
                if (!d.allow && d.why == MG_POLICY_OK)
                    abort();
                if (d.rule >= (int)mg_policy_rule_count(p))
                    abort();
            }
    mg_policy_free(p);
    return 0;
}
