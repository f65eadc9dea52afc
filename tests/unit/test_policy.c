/* Command policy (issue 12): the YAML loader (file:line errors, bounds), the
 * decision table (role / command / class, critical needs two roles,
 * require_signed, revoked signer, unknown kid), and the check with real
 * ES256 signatures (COSE_Sign1 and COSE_Sign) and the enforcement point
 * against a real SQLite store (claim + FAILED + event). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

#include "m2mguard/cose.h"
#include "m2mguard/crypto.h"
#include "m2mguard/policy.h"
#include "m2mguard/store.h"

static const char POLICY[] =
    "# test policy\n"
    "require_signed: false\n"
    "rules:\n"
    "  - command: unlock\n"                   /* line 4 */
    "    classes: [door-lock]\n"
    "    roles: [operator, security]\n"
    "    critical: true\n"
    "  - command: reboot\n"                   /* line 8 */
    "    roles: [operator]\n"
    "    require_signed: true\n"
    "  - command: status\n"                   /* line 11 */
    "  - command: \"*\"\n"                    /* line 12 */
    "    classes: [meter]\n"
    "    require_signed: true\n";

typedef struct row {
    const char *label;
    const char *cmd;
    const char *cls;
    bool is_signed;
    const char *roles[3]; /* signer roles; "?" unknown kid, "!role" revoked */
    bool allow;
    mg_policy_why why;
    int rule; /* 1-based, 0 none */
} row;

static const row ROWS[] = {
    {"unlock by operator + security", "unlock", "door-lock", true, {"operator", "security"}, true, MG_POLICY_OK, 1},
    {"unlock by one operator: critical", "unlock", "door-lock", true, {"operator"}, false, MG_POLICY_CRITICAL_ROLES, 1},
    {"unlock by two operators: same role", "unlock", "door-lock", true, {"operator", "operator"}, false, MG_POLICY_CRITICAL_ROLES, 1},
    {"unlock unsigned: critical", "unlock", "door-lock", false, {0}, false, MG_POLICY_CRITICAL_UNSIGNED, 1},
    {"unlock by a viewer: role", "unlock", "door-lock", true, {"viewer", "operator"}, false, MG_POLICY_ROLE, 1},
    {"unlock with a revoked signer", "unlock", "door-lock", true, {"operator", "!security"}, false, MG_POLICY_REVOKED_SIGNER, 1},
    {"unlock with an unknown kid", "unlock", "door-lock", true, {"operator", "?"}, false, MG_POLICY_UNKNOWN_SIGNER, 1},
    {"unlock on another class: no rule", "unlock", "pump", false, {0}, true, MG_POLICY_OK, 0},
    {"reboot by operator", "reboot", "pump", true, {"operator"}, true, MG_POLICY_OK, 2},
    {"reboot unsigned", "reboot", "pump", false, {0}, false, MG_POLICY_UNSIGNED, 2},
    {"reboot by security: role", "reboot", "pump", true, {"security"}, false, MG_POLICY_ROLE, 2},
    {"reboot by revoked operator", "reboot", "", true, {"!operator"}, false, MG_POLICY_REVOKED_SIGNER, 2},
    {"status unsigned: any", "status", "meter", false, {0}, true, MG_POLICY_OK, 3},
    {"status by anyone", "status", "meter", true, {"viewer"}, true, MG_POLICY_OK, 3},
    {"meter: anything must be signed", "relay", "meter", false, {0}, false, MG_POLICY_UNSIGNED, 4},
    {"meter: signed by any role", "relay", "meter", true, {"viewer"}, true, MG_POLICY_OK, 4},
    {"no rule, unsigned", "relay", "pump", false, {0}, true, MG_POLICY_OK, 0},
    {"no rule, unknown kid", "relay", "pump", true, {"?"}, false, MG_POLICY_UNKNOWN_SIGNER, 0},
    {"prefix is not the command", "unlockx", "door-lock", false, {0}, true, MG_POLICY_OK, 0},
};

static void run_rows(const mg_policy *p, const row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        mg_policy_signer sg[3];
        size_t k = 0;
        for (; k < 3 && r->roles[k] != NULL; k++) {
            const char *role = r->roles[k];
            sg[k].kid = "k";
            sg[k].state = MG_PSIGNER_ACTIVE;
            if (role[0] == '?') {
                sg[k].state = MG_PSIGNER_UNKNOWN;
                role = "";
            } else if (role[0] == '!') {
                sg[k].state = MG_PSIGNER_REVOKED;
                role++;
            }
            sg[k].role = role;
        }
        mg_policy_input in = {r->cmd, strlen(r->cmd), r->cls, r->is_signed, sg, k};
        mg_policy_decision d;
        mg_policy_decide(p, &in, &d);
        if (d.allow != r->allow || d.why != r->why || d.rule + 1 != r->rule)
            fail_msg("%s: allow %d why %s rule %d", r->label, d.allow, mg_policy_why_str(d.why),
                     d.rule + 1);
    }
}

static void test_decisions(void **st)
{
    (void)st;
    mg_policy *p = NULL;
    char err[256];
    assert_int_equal(mg_policy_parse("t.yaml", POLICY, strlen(POLICY), &p, err, sizeof(err)),
                     MG_OK);
    assert_int_equal(mg_policy_rule_count(p), 4);
    run_rows(p, ROWS, sizeof(ROWS) / sizeof(ROWS[0]));
    mg_policy_free(p);

    /* global require_signed and default deny */
    static const char G[] = "require_signed: true\ndefault: deny\nrules:\n  - command: ping\n"
                            "  - command: connect\n    require_signed: false\n";
    assert_int_equal(mg_policy_parse("g.yaml", G, strlen(G), &p, err, sizeof(err)), MG_OK);
    static const row GR[] = {
        {"ping unsigned: file requires", "ping", "", false, {0}, false, MG_POLICY_UNSIGNED, 1},
        {"ping signed", "ping", "", true, {"x"}, true, MG_POLICY_OK, 1},
        {"other signed: default deny", "other", "", true, {"x"}, false, MG_POLICY_NO_RULE, 0},
        {"other unsigned", "other", "", false, {0}, false, MG_POLICY_UNSIGNED, 0},
        {"connect: the rule's require_signed false wins", "connect", "", false, {0}, true, MG_POLICY_OK, 2},
    };
    run_rows(p, GR, sizeof(GR) / sizeof(GR[0]));
    mg_policy_free(p);

    /* the empty policy allows everything known */
    assert_int_equal(mg_policy_parse("e.yaml", "", 0, &p, err, sizeof(err)), MG_OK);
    static const row ER[] = {
        {"empty: unsigned", "x", "", false, {0}, true, MG_POLICY_OK, 0},
        {"empty: revoked signer", "x", "", true, {"!a"}, false, MG_POLICY_REVOKED_SIGNER, 0},
    };
    run_rows(p, ER, 2);
    mg_policy_free(p);
    run_rows(NULL, ER, 2);
}

static void test_parse_errors(void **st)
{
    (void)st;
    static const struct {
        const char *yaml;
        const char *want; /* substring of the error */
    } BAD[] = {
        {"rules:\n  - command: unlock\n    critical: maybe\n", "p.yaml:3: critical: expected true or false"},
        {"rules:\n  - roles: [a]\n", "p.yaml:2: a rule needs a command"},
        {"rules:\n  - command: unlock\n    colour: red\n", "p.yaml:3: unknown rule key 'colour'"},
        {"rulez: []\n", "p.yaml:1: unknown key 'rulez'"},
        {"rules:\n  - command: 'un lock'\n", "p.yaml:2: command: 'un lock' is not a word"},
        {"rules:\n  - command: x\n    roles: []\n", "p.yaml:3: roles: empty list"},
        {"default: maybe\n", "p.yaml:1: default: allow or deny"},
        {"rules: {a: 1}\n", "p.yaml:1: rules: expected a list"},
        {"- a\n- b\n", "p.yaml:1: the policy is a mapping"},
        {"rules:\n  - command: [x\n", "p.yaml:3: "},
        {"rules:\n  - command: x\n    roles: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q]\n",
         "p.yaml:3: roles: more than 16 entries"},
    };
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        mg_policy *p = (mg_policy *)1;
        char err[256] = "";
        mg_err e = mg_policy_parse("p.yaml", BAD[i].yaml, strlen(BAD[i].yaml), &p, err, sizeof(err));
        if (e == MG_OK || p != NULL || strstr(err, BAD[i].want) == NULL)
            fail_msg("case %zu: err '%s', want '%s'", i, err, BAD[i].want);
    }
    /* a word of 64 characters, and 257 rules */
    char big[64 * 1024];
    size_t n = (size_t)snprintf(big, sizeof(big), "rules:\n  - command: %064d\n", 0);
    mg_policy *p = NULL;
    char err[256];
    assert_int_equal(mg_policy_parse("p.yaml", big, n, &p, err, sizeof(err)), MG_ERR_FORMAT);
    assert_non_null(strstr(err, "p.yaml:2: command: 1..63"));
    n = (size_t)snprintf(big, sizeof(big), "rules:\n");
    for (int i = 0; i < 257; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "  - {command: c%d}\n", i);
    assert_int_equal(mg_policy_parse("p.yaml", big, n, &p, err, sizeof(err)), MG_ERR_FORMAT);
    assert_non_null(strstr(err, "more than 256 rules"));
    /* a missing file: the empty policy only when allowed */
    assert_int_equal(mg_policy_load("/nonexistent/policy.yaml", true, &p, err, sizeof(err)), MG_OK);
    assert_int_equal(mg_policy_rule_count(p), 0);
    mg_policy_free(p);
    assert_int_not_equal(mg_policy_load("/nonexistent/policy.yaml", false, &p, err, sizeof(err)),
                         MG_OK);
    assert_null(p);
}

/* ---- with signatures and a store ------------------------------------------------ */

static const char PRIV_A[] = "57c92077664146e876760c9520d054aa93c3afb04e306705db6090308507b4d3";
static const char PRIV_B[] = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
static char tmpdir[] = "/tmp/mg_policy_XXXXXX";
static char dbpath[300];

static void add_signer(mg_store *s, const char *kid, const char *role, const char *privhex)
{
    uint8_t d[32];
    size_t pl = 0;
    mg_signer g;
    memset(&g, 0, sizeof(g));
    hx(privhex, d, 32);
    assert_int_equal(mg_crypto_public_key(MG_SIG_ES256, d, 32, g.pub, sizeof(g.pub), &pl), MG_OK);
    g.pub_len = pl;
    g.alg = MG_COSE_ALG_ES256;
    snprintf(g.kid, sizeof(g.kid), "%s", kid);
    snprintf(g.role, sizeof(g.role), "%s", role);
    assert_int_equal(mg_store_signer_add(s, &g), MG_OK);
}

static size_t sign(const char *dev, const char *cmd, const char *k1, const char *p1,
                   const char *k2, const char *p2, uint8_t *out, size_t cap)
{
    uint8_t d1[32], d2[32];
    hx(p1, d1, 32);
    if (p2 != NULL)
        hx(p2, d2, 32);
    mg_signed_cmd c;
    memset(&c, 0, sizeof(c));
    c.kid = (const uint8_t *)k1;
    c.kid_len = strlen(k1);
    c.audience = dev;
    c.audience_len = strlen(dev);
    c.command = cmd;
    c.command_len = strlen(cmd);
    c.seq = 1;
    c.iat = 1000;
    c.exp = 5000;
    mg_cmd_signer_key k[2] = {{MG_COSE_ALG_ES256, (const uint8_t *)k1, strlen(k1), d1, 32},
                              {MG_COSE_ALG_ES256, (const uint8_t *)(k2 != NULL ? k2 : ""),
                               k2 != NULL ? strlen(k2) : 0, d2, 32}};
    size_t n = 0;
    assert_int_equal(mg_cmd_sign_multi(&c, k, p2 != NULL ? 2 : 1, out, cap, &n), MG_OK);
    return n;
}

static int64_t queue(mg_store *s, int64_t dev, const char *text, const uint8_t *cose, size_t n)
{
    mg_command c;
    memset(&c, 0, sizeof(c));
    c.device_id = dev;
    snprintf(c.text, sizeof(c.text), "%s", text);
    assert_int_equal(mg_store_cmd_enqueue(s, &c), MG_OK);
    if (n > 0)
        assert_int_equal(mg_store_cmd_set_signed(s, c.id, cose, n), MG_OK);
    return c.id;
}

static bool count_refusals(void *ctx, const mg_event *e)
{
    if (strcmp(e->kind, "cmd_policy_refused") == 0)
        (*(int *)ctx)++;
    return true;
}

static mg_err enforce(mg_store *s, const mg_policy *p, int64_t id, char *why, size_t *n)
{
    mg_command c;
    uint8_t buf[MG_SIGNED_CMD_MAX];
    assert_int_equal(mg_store_cmd_get(s, id, &c), MG_OK);
    return mg_policy_enforce(s, p, &c, "sms", 2000, buf, sizeof(buf), n, why, 200);
}

static void test_enforce(void **st)
{
    (void)st;
    assert_non_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof(dbpath), "%s/m2mguard.db", tmpdir);
    uint8_t master[32];
    memset(master, 0x42, sizeof(master));
    mg_store *s = NULL;
    assert_int_equal(mg_store_open(dbpath, master, true, &s), MG_OK);
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "door-1");
    snprintf(d.dev_class, sizeof(d.dev_class), "door-lock");
    snprintf(d.msisdn, sizeof(d.msisdn), "+4911");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    add_signer(s, "alice", "operator", PRIV_A);
    add_signer(s, "bob", "security", PRIV_B);
    mg_policy *p = NULL;
    char err[256], why[200];
    assert_int_equal(mg_policy_parse("t.yaml", POLICY, strlen(POLICY), &p, err, sizeof(err)), MG_OK);
    uint8_t cose[1100];
    size_t n, out = 0;

    /* two roles: allowed, the bytes come back */
    n = sign("door-1", "unlock", "alice", PRIV_A, "bob", PRIV_B, cose, sizeof(cose));
    int64_t ok = queue(s, d.id, "unlock", cose, n);
    assert_int_equal(enforce(s, p, ok, why, &out), MG_OK);
    assert_int_equal(out, n);
    /* one signer: refused, FAILED with the reason, one event */
    n = sign("door-1", "unlock", "alice", PRIV_A, NULL, NULL, cose, sizeof(cose));
    int64_t one = queue(s, d.id, "unlock", cose, n);
    assert_int_equal(enforce(s, p, one, why, &out), MG_ERR_AUTH);
    assert_non_null(strstr(why, "critical_needs_two_roles (rule 1, t.yaml:4)"));
    mg_command c;
    assert_int_equal(mg_store_cmd_get(s, one, &c), MG_OK);
    assert_int_equal(c.state, MG_CMD_FAILED);
    assert_non_null(strstr(c.detail, "policy: critical_needs_two_roles"));
    int k = 0;
    assert_int_equal(mg_store_events(s, 0, 0, 0, count_refusals, &k), MG_OK);
    assert_int_equal(k, 1);
    /* a second gateway sees it no longer queued */
    assert_int_equal(enforce(s, p, one, why, &out), MG_ERR_STATE);
    /* unsigned unlock: critical */
    int64_t uns = queue(s, d.id, "unlock", NULL, 0);
    assert_int_equal(enforce(s, p, uns, why, &out), MG_ERR_AUTH);
    assert_non_null(strstr(why, "critical_unsigned"));
    /* status unsigned: allowed, nothing to send but the text */
    int64_t stat = queue(s, d.id, "status", NULL, 0);
    assert_int_equal(enforce(s, p, stat, why, &out), MG_OK);
    assert_int_equal(out, 0);
    /* signed for another device */
    n = sign("door-2", "status", "alice", PRIV_A, NULL, NULL, cose, sizeof(cose));
    int64_t other = queue(s, d.id, "status", cose, n);
    assert_int_equal(enforce(s, p, other, why, &out), MG_ERR_AUTH);
    assert_non_null(strstr(why, "bad_signature: wrong_audience"));
    /* the queued text is not what was signed */
    n = sign("door-1", "status", "alice", PRIV_A, NULL, NULL, cose, sizeof(cose));
    int64_t lie = queue(s, d.id, "reboot", cose, n);
    assert_int_equal(enforce(s, p, lie, why, &out), MG_ERR_AUTH);
    assert_non_null(strstr(why, "not the signed command"));
    /* a tampered signature */
    n = sign("door-1", "unlock", "alice", PRIV_A, "bob", PRIV_B, cose, sizeof(cose));
    cose[n - 1] ^= 1;
    int64_t bad = queue(s, d.id, "unlock", cose, n);
    assert_int_equal(enforce(s, p, bad, why, &out), MG_ERR_AUTH);
    assert_non_null(strstr(why, "bad_signature"));
    /* signed by a key that is not registered */
    n = sign("door-1", "status", "mallory", PRIV_A, NULL, NULL, cose, sizeof(cose));
    int64_t unk = queue(s, d.id, "status", cose, n);
    assert_int_equal(enforce(s, p, unk, why, &out), MG_ERR_AUTH);
    assert_non_null(strstr(why, "unknown_signer"));
    /* bob revoked: the two-person unlock is refused */
    assert_int_equal(mg_store_signer_revoke(s, "bob", 1500), MG_OK);
    n = sign("door-1", "unlock", "alice", PRIV_A, "bob", PRIV_B, cose, sizeof(cose));
    int64_t rev = queue(s, d.id, "unlock", cose, n);
    assert_int_equal(enforce(s, p, rev, why, &out), MG_ERR_AUTH);
    assert_non_null(strstr(why, "revoked_signer"));
    k = 0;
    assert_int_equal(mg_store_events(s, 0, 0, 0, count_refusals, &k), MG_OK);
    assert_int_equal(k, 7);
    mg_policy_free(p);
    mg_store_close(s);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
}

/* A SUIT envelope queued as a command's blob (an update over SMS) is no COSE
 * command: the rule of the text's command word decides, as unsigned. */
static bool no_signer(void *ctx, const uint8_t *kid, size_t kid_len, mg_signer *out)
{
    (void)ctx;
    (void)kid;
    (void)kid_len;
    (void)out;
    return false;
}

static void test_suit_envelope_blob(void **st)
{
    (void)st;
    static const uint8_t env[] = {0xD8, 0x6B, 0xA2, 0x02, 0x40, 0x03, 0x40}; /* 107({2:h'',3:h''}) */
    static const char P[] = "rules:\n  - command: update\n    classes: [meter]\n"
                            "  - command: update\n    require_signed: true\n";
    mg_policy *p = NULL;
    mg_policy_decision d;
    char err[256], why[256];
    assert_int_equal(mg_policy_parse("u.yaml", P, strlen(P), &p, err, sizeof(err)), MG_OK);
    assert_int_equal(mg_policy_check(p, "m1", "meter", "update 3", env, sizeof(env), 0, no_signer,
                                     NULL, &d, why, sizeof(why)),
                     MG_OK);
    assert_int_equal(d.rule, 0);
    /* a class whose rule wants signed commands: the gateway cannot tell (the
     * device verifies the manifest), so it refuses as unsigned */
    assert_int_equal(mg_policy_check(p, "p1", "pump", "update 3", env, sizeof(env), 0, no_signer,
                                     NULL, &d, why, sizeof(why)),
                     MG_ERR_AUTH);
    assert_int_equal(d.why, MG_POLICY_UNSIGNED);
    mg_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_enforce),
        cmocka_unit_test(test_suit_envelope_blob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
