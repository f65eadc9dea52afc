/*
 * m2mguard — command policy (issue 12): who may issue which command to which
 * device class, which commands need a signature, which need two (host side,
 * libyaml; may allocate). Format and semantics: docs/commands.md "Policy".
 *
 * WORKDIR/policy.yaml:
 *   require_signed: false      # optional: every command must be signed
 *   default: allow             # optional: allow | deny a command no rule matches
 *   rules:
 *     - command: unlock        # the command word, or "*"
 *       classes: [door-lock]   # optional: device classes ("*" or absent: any)
 *       roles: [operator]      # optional: signer roles allowed (absent: any)
 *       require_signed: true   # optional: unsigned refused (overrides the file's)
 *       critical: true         # optional: two signatures by two different roles
 * The first rule whose command and class match decides.
 *
 * mg_policy_enforce() is the one enforcement point: the SMS gateway and the
 * broker plugin call it for every queued command before forwarding.
 */
#ifndef M2MGUARD_POLICY_H
#define M2MGUARD_POLICY_H

#include "m2mguard/common.h"
#include "m2mguard/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MG_POLICY_RULES_MAX 256 /**< rules in one file */
#define MG_POLICY_LIST_MAX 16   /**< classes / roles in one rule */
#define MG_POLICY_FILE_MAX (256 * 1024) /**< largest policy file read */
#define MG_POLICY_WORD_MAX 64   /**< a command word, class or role: 1..63 octets */

typedef struct mg_policy mg_policy;

/**
 * Loads a policy from YAML text (name is used in messages). On an error,
 * err gets "NAME:LINE: what is wrong" and *out is NULL. Unknown keys,
 * wrong types, too many rules/entries and over-long words are errors
 * (MG_ERR_FORMAT; MG_ERR_LENGTH above MG_POLICY_FILE_MAX; MG_ERR_STORE when
 * memory runs out).
 */
MG_MUST_CHECK mg_err mg_policy_parse(const char *name, const char *text, size_t len,
                                     mg_policy **out, char *err, size_t err_cap);
/** Loads a file (at most MG_POLICY_FILE_MAX octets). A missing file gives
 *  the empty policy (allow, nothing required) when missing_ok; another file
 *  that cannot be read is MG_ERR_STORE (err names it and why). */
MG_MUST_CHECK mg_err mg_policy_load(const char *path, bool missing_ok, mg_policy **out, char *err,
                                    size_t err_cap);
/** The empty policy: every command allowed, signed or not. */
MG_MUST_CHECK mg_err mg_policy_empty(mg_policy **out);
void mg_policy_free(mg_policy *p);
size_t mg_policy_rule_count(const mg_policy *p);

/** A signer as the decision sees it (resolved from the store by the caller). */
typedef enum mg_policy_signer_state {
    MG_PSIGNER_ACTIVE = 0,
    MG_PSIGNER_REVOKED = 1,
    MG_PSIGNER_UNKNOWN = 2, /**< no signer with this kid */
} mg_policy_signer_state;

typedef struct mg_policy_signer {
    const char *kid;
    const char *role; /**< "" when unknown */
    mg_policy_signer_state state;
} mg_policy_signer;

typedef struct mg_policy_input {
    const char *command;   /**< the command word (text up to the first space) */
    size_t command_len;
    const char *dev_class; /**< the device's class ("" none) */
    bool is_signed;
    const mg_policy_signer *signers; /**< the verified signers of a signed command */
    size_t n_signers;
} mg_policy_input;

/** Why a command was refused. */
typedef enum mg_policy_why {
    MG_POLICY_OK = 0,
    MG_POLICY_UNSIGNED,         /**< the matching rule (or the file) requires a signature */
    MG_POLICY_CRITICAL_UNSIGNED,/**< critical: an unsigned command */
    MG_POLICY_UNKNOWN_SIGNER,   /**< a signer kid that is not registered */
    MG_POLICY_REVOKED_SIGNER,   /**< a signer that is revoked */
    MG_POLICY_ROLE,             /**< a signer whose role the rule does not allow */
    MG_POLICY_CRITICAL_ROLES,   /**< critical: not two signers of two different allowed roles */
    MG_POLICY_NO_RULE,          /**< default deny and no rule matched */
    MG_POLICY_BAD_SIGNATURE,    /**< the COSE object does not verify (mg_policy_enforce) */
} mg_policy_why;

const char *mg_policy_why_str(mg_policy_why w);

typedef struct mg_policy_decision {
    bool allow;
    mg_policy_why why;
    int rule;      /**< index of the rule that decided, -1: none matched */
    int rule_line; /**< its line in the file (0: none) */
} mg_policy_decision;

/** The pure decision (no store, no crypto): table-driven testable. */
void mg_policy_decide(const mg_policy *p, const mg_policy_input *in, mg_policy_decision *d);

/**
 * The enforcement point for a queued command c (state QUEUED) about to go
 * out on bearer ("sms" / "mqtt"): reads its COSE bytes (none: unsigned),
 * verifies them (mg_cmd_verify_multi: the signers' keys from the store,
 * audience = the device's name, not expired at now; replay is the device's
 * check), checks that the signed command equals c->text, and decides.
 * MG_OK: forward; *cose_len > 0 means send cose[0..*cose_len) (cap >=
 * MG_SIGNED_CMD_MAX). MG_ERR_AUTH: refused — the command was claimed and
 * set FAILED ("policy: REASON") and an event kind "cmd_policy_refused" on
 * bearer was recorded; reason (may be NULL) says which rule. MG_ERR_STATE:
 * someone else claimed it meanwhile. Other errors: the store's.
 */
MG_MUST_CHECK mg_err mg_policy_enforce(mg_store *s, const mg_policy *p, const mg_command *c,
                                       const char *bearer, int64_t now, uint8_t *cose,
                                       size_t cap, size_t *cose_len, char *reason,
                                       size_t reason_cap);

/**
 * The check without the store's side effects (the gateway's verify path,
 * also used by the benchmark): for device `device` of class dev_class, the
 * queued text and its COSE bytes (cose_len 0: unsigned). Bytes that are a
 * SUIT envelope (mg_suit_is_envelope: an update over SMS, which the device
 * verifies) are no COSE command: the queued text's command word decides,
 * as unsigned. Signers are
 * resolved through lookup(ctx, kid, kid_len, out) (false: unknown kid).
 * MG_OK allowed, MG_ERR_AUTH refused; *d and reason (may be NULL) say why.
 */
typedef bool (*mg_policy_lookup)(void *ctx, const uint8_t *kid, size_t kid_len, mg_signer *out);
MG_MUST_CHECK mg_err mg_policy_check(const mg_policy *p, const char *device, const char *dev_class,
                                     const char *text, const uint8_t *cose, size_t cose_len,
                                     int64_t now, mg_policy_lookup lookup, void *ctx,
                                     mg_policy_decision *d, char *reason, size_t reason_cap);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_POLICY_H */
