/*
 * m2mguard — command policy (policy.h): the YAML loader (libyaml document
 * API; every error "file:line: ..."; bounded: file size, rules, list
 * entries, word length), the pure decision, and the one enforcement point
 * used by the SMS gateway and the broker plugin.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "m2mguard/cose.h"
#include "m2mguard/policy.h"
#include "m2mguard/suit.h"

typedef struct rule {
    char command[MG_POLICY_WORD_MAX]; /* "*" any */
    char classes[MG_POLICY_LIST_MAX][MG_POLICY_WORD_MAX];
    size_t n_classes; /* 0: any */
    char roles[MG_POLICY_LIST_MAX][MG_POLICY_WORD_MAX];
    size_t n_roles; /* 0: any */
    bool require_signed;
    bool require_set; /* require_signed given in the rule: overrides the file's */
    bool critical;
    int line;
} rule;

struct mg_policy {
    char name[128];
    bool require_signed;
    bool deny_default;
    size_t n_rules;
    rule *rules;
};

const char *mg_policy_why_str(mg_policy_why w)
{
    switch (w) {
    case MG_POLICY_OK: return "ok";
    case MG_POLICY_UNSIGNED: return "signature_required";
    case MG_POLICY_CRITICAL_UNSIGNED: return "critical_unsigned";
    case MG_POLICY_UNKNOWN_SIGNER: return "unknown_signer";
    case MG_POLICY_REVOKED_SIGNER: return "revoked_signer";
    case MG_POLICY_ROLE: return "role_not_allowed";
    case MG_POLICY_CRITICAL_ROLES: return "critical_needs_two_roles";
    case MG_POLICY_NO_RULE: return "no_rule";
    case MG_POLICY_BAD_SIGNATURE: return "bad_signature";
    }
    return "unknown";
}

/* ---- loading ---------------------------------------------------------------- */

typedef struct ld {
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t err_cap;
} ld;

static bool fail(ld *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(ld *l, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (l->err != NULL && l->err_cap > 0)
        (void)snprintf(l->err, l->err_cap, "%s:%lu: %s", l->name,
                       n != NULL ? (unsigned long)n->start_mark.line + 1 : 1ul, msg);
    return false;
}

static bool scalar(const yaml_node_t *n, const char **s, size_t *len)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return false;
    *s = (const char *)n->data.scalar.value;
    *len = n->data.scalar.length;
    return true;
}

static bool key_is(const yaml_node_t *k, const char *want)
{
    const char *s;
    size_t n;
    return scalar(k, &s, &n) && n == strlen(want) && memcmp(s, want, n) == 0;
}

static bool get_bool(ld *l, const yaml_node_t *v, const char *key, bool *out)
{
    const char *s;
    size_t n;
    if (!scalar(v, &s, &n))
        return fail(l, v, "%s: expected true or false", key);
    if (n == 4 && memcmp(s, "true", 4) == 0)
        *out = true;
    else if (n == 5 && memcmp(s, "false", 5) == 0)
        *out = false;
    else
        return fail(l, v, "%s: expected true or false", key);
    return true;
}

/* A word: 1..63 of A-Z a-z 0-9 . _ - (or "*" where star_ok). */
static bool get_word(ld *l, const yaml_node_t *v, const char *key, bool star_ok,
                     char out[MG_POLICY_WORD_MAX])
{
    const char *s;
    size_t n;
    if (!scalar(v, &s, &n))
        return fail(l, v, "%s: expected a word", key);
    if (n == 0 || n >= MG_POLICY_WORD_MAX)
        return fail(l, v, "%s: 1..%d characters", key, MG_POLICY_WORD_MAX - 1);
    if (!(star_ok && n == 1 && s[0] == '*'))
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-'))
                return fail(l, v, "%s: '%.*s' is not a word (A-Z a-z 0-9 . _ -)", key,
                            (int)(n > 40 ? 40 : n), s);
        }
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* A list of words: [a, b] or a single word; "*" alone means any (n = 0). */
static bool get_list(ld *l, const yaml_node_t *v, const char *key,
                     char out[MG_POLICY_LIST_MAX][MG_POLICY_WORD_MAX], size_t *n)
{
    *n = 0;
    if (v != NULL && v->type == YAML_SCALAR_NODE) {
        if (!get_word(l, v, key, true, out[0]))
            return false;
        *n = strcmp(out[0], "*") == 0 ? 0 : 1;
        return true;
    }
    if (v == NULL || v->type != YAML_SEQUENCE_NODE)
        return fail(l, v, "%s: expected a list of words", key);
    yaml_node_item_t *it = v->data.sequence.items.start;
    size_t cnt = (size_t)(v->data.sequence.items.top - it);
    if (cnt == 0)
        return fail(l, v, "%s: empty list (leave the key out for any)", key);
    if (cnt > MG_POLICY_LIST_MAX)
        return fail(l, v, "%s: more than %d entries", key, MG_POLICY_LIST_MAX);
    bool star = false;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *e = yaml_document_get_node(l->doc, it[i]);
        if (!get_word(l, e, key, true, out[*n]))
            return false;
        if (strcmp(out[*n], "*") == 0)
            star = true;
        else
            (*n)++;
    }
    if (star)
        *n = 0;
    return true;
}

static bool load_rule(ld *l, const yaml_node_t *m, rule *r)
{
    bool have_cmd = false;
    memset(r, 0, sizeof(*r));
    r->line = (int)m->start_mark.line + 1;
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, "a rule is a mapping (command:, roles:, classes:, critical:, ...)");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        bool ok;
        if (key_is(k, "command")) {
            ok = get_word(l, v, "command", true, r->command);
            have_cmd = true;
        } else if (key_is(k, "classes"))
            ok = get_list(l, v, "classes", r->classes, &r->n_classes);
        else if (key_is(k, "roles"))
            ok = get_list(l, v, "roles", r->roles, &r->n_roles);
        else if (key_is(k, "require_signed")) {
            ok = get_bool(l, v, "require_signed", &r->require_signed);
            r->require_set = true;
        }
        else if (key_is(k, "critical"))
            ok = get_bool(l, v, "critical", &r->critical);
        else {
            const char *s = "?";
            size_t n = 1;
            (void)scalar(k, &s, &n);
            ok = fail(l, k, "unknown rule key '%.*s' (command, classes, roles, require_signed,"
                            " critical)", (int)(n > 40 ? 40 : n), s);
        }
        if (!ok)
            return false;
    }
    if (!have_cmd)
        return fail(l, m, "a rule needs a command (a command word or \"*\")");
    return true;
}

static bool load_root(ld *l, mg_policy *p)
{
    yaml_node_t *root = yaml_document_get_root_node(l->doc);
    if (root == NULL)
        return true; /* an empty file: the empty policy */
    if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)
        return true;
    if (root->type != YAML_MAPPING_NODE)
        return fail(l, root, "the policy is a mapping (require_signed:, default:, rules:)");
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
         pr < root->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(l->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(l->doc, pr->value);
        if (key_is(k, "require_signed")) {
            if (!get_bool(l, v, "require_signed", &p->require_signed))
                return false;
        } else if (key_is(k, "default")) {
            const char *s;
            size_t n;
            if (!scalar(v, &s, &n) || !((n == 5 && memcmp(s, "allow", 5) == 0) ||
                                         (n == 4 && memcmp(s, "deny", 4) == 0)))
                return fail(l, v, "default: allow or deny");
            p->deny_default = n == 4;
        } else if (key_is(k, "rules")) {
            if (v == NULL || v->type != YAML_SEQUENCE_NODE)
                return fail(l, v, "rules: expected a list of rules");
            yaml_node_item_t *it = v->data.sequence.items.start;
            size_t cnt = (size_t)(v->data.sequence.items.top - it);
            if (cnt > MG_POLICY_RULES_MAX)
                return fail(l, v, "rules: more than %d rules", MG_POLICY_RULES_MAX);
            if (cnt > 0) {
                free(p->rules);
                p->rules = calloc(cnt, sizeof(rule));
                if (p->rules == NULL)
                    return fail(l, v, "out of memory");
            }
            p->n_rules = 0;
            for (size_t i = 0; i < cnt; i++) {
                if (!load_rule(l, yaml_document_get_node(l->doc, it[i]), &p->rules[i]))
                    return false;
                p->n_rules++;
            }
        } else {
            const char *s = "?";
            size_t n = 1;
            (void)scalar(k, &s, &n);
            return fail(l, k, "unknown key '%.*s' (require_signed, default, rules)",
                        (int)(n > 40 ? 40 : n), s);
        }
    }
    return true;
}

mg_err mg_policy_empty(mg_policy **out)
{
    if (out == NULL)
        return MG_ERR_ARG;
    *out = calloc(1, sizeof(mg_policy));
    if (*out == NULL)
        return MG_ERR_STORE;
    (void)snprintf((*out)->name, sizeof((*out)->name), "(none)");
    return MG_OK;
}

mg_err mg_policy_parse(const char *name, const char *text, size_t len, mg_policy **out,
                       char *err, size_t err_cap)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    mg_policy *p = NULL;
    ld l = {&doc, name != NULL ? name : "policy", err, err_cap};
    mg_err e;

    if (err != NULL && err_cap > 0)
        err[0] = '\0';
    if (out == NULL || (text == NULL && len > 0))
        return MG_ERR_ARG;
    *out = NULL;
    if (len > (size_t)MG_POLICY_FILE_MAX) {
        (void)fail(&l, NULL, "larger than %d octets", MG_POLICY_FILE_MAX);
        return MG_ERR_LENGTH;
    }
    e = mg_policy_empty(&p);
    if (e != MG_OK)
        return e;
    (void)snprintf(p->name, sizeof(p->name), "%s", l.name);
    if (!yaml_parser_initialize(&parser)) {
        mg_policy_free(p);
        return MG_ERR_STORE;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text != NULL ? text : ""), len);
    if (!yaml_parser_load(&parser, &doc)) {
        if (err != NULL && err_cap > 0)
            (void)snprintf(err, err_cap, "%s:%lu: %s", l.name,
                           (unsigned long)parser.problem_mark.line + 1,
                           parser.problem != NULL ? parser.problem : "YAML syntax error");
        yaml_parser_delete(&parser);
        mg_policy_free(p);
        return MG_ERR_FORMAT;
    }
    bool ok = load_root(&l, p);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (!ok) {
        mg_policy_free(p);
        return MG_ERR_FORMAT;
    }
    *out = p;
    return MG_OK;
}

mg_err mg_policy_load(const char *path, bool missing_ok, mg_policy **out, char *err,
                      size_t err_cap)
{
    if (path == NULL || out == NULL)
        return MG_ERR_ARG;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT && missing_ok)
            return mg_policy_empty(out);
        if (err != NULL && err_cap > 0)
            (void)snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        return MG_ERR_STORE;
    }
    char *buf = malloc(MG_POLICY_FILE_MAX + 1);
    if (buf == NULL) {
        (void)fclose(f);
        return MG_ERR_STORE;
    }
    size_t n = fread(buf, 1, MG_POLICY_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    (void)fclose(f);
    mg_err e;
    if (bad) {
        if (err != NULL && err_cap > 0)
            (void)snprintf(err, err_cap, "%s: read error", path);
        e = MG_ERR_STORE;
    } else if (n > (size_t)MG_POLICY_FILE_MAX) {
        if (err != NULL && err_cap > 0)
            (void)snprintf(err, err_cap, "%s: larger than %d octets", path, MG_POLICY_FILE_MAX);
        e = MG_ERR_LENGTH;
    } else
        e = mg_policy_parse(path, buf, n, out, err, err_cap);
    free(buf);
    return e;
}

void mg_policy_free(mg_policy *p)
{
    if (p == NULL)
        return;
    free(p->rules);
    free(p);
}

size_t mg_policy_rule_count(const mg_policy *p)
{
    return p != NULL ? p->n_rules : 0;
}

/* ---- the decision ------------------------------------------------------------- */

static bool in_list(const char (*list)[MG_POLICY_WORD_MAX], size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
            return true;
    return false;
}

static void decided(mg_policy_decision *d, bool allow, mg_policy_why why)
{
    d->allow = allow;
    d->why = why;
}

/* Every signer known and active (and, with roles, of an allowed role). */
static bool signers_ok(const rule *r, const mg_policy_input *in, mg_policy_decision *d)
{
    for (size_t i = 0; i < in->n_signers; i++) {
        const mg_policy_signer *g = &in->signers[i];
        if (g->state == MG_PSIGNER_UNKNOWN) {
            decided(d, false, MG_POLICY_UNKNOWN_SIGNER);
            return false;
        }
        if (g->state != MG_PSIGNER_ACTIVE) {
            decided(d, false, MG_POLICY_REVOKED_SIGNER);
            return false;
        }
        if (r != NULL && r->n_roles > 0 &&
            !in_list(r->roles, r->n_roles, g->role != NULL ? g->role : "",
                     g->role != NULL ? strlen(g->role) : 0)) {
            decided(d, false, MG_POLICY_ROLE);
            return false;
        }
    }
    return true;
}

void mg_policy_decide(const mg_policy *p, const mg_policy_input *in, mg_policy_decision *d)
{
    static const mg_policy empty = {.name = "(none)"};
    const rule *r = NULL;
    if (d == NULL)
        return;
    memset(d, 0, sizeof(*d));
    d->rule = -1;
    if (in == NULL) {
        decided(d, false, MG_POLICY_NO_RULE);
        return;
    }
    if (p == NULL)
        p = &empty;
    const char *cls = in->dev_class != NULL ? in->dev_class : "";
    for (size_t i = 0; i < p->n_rules; i++) {
        const rule *x = &p->rules[i];
        bool cmd_ok = strcmp(x->command, "*") == 0 ||
                      (strlen(x->command) == in->command_len && in->command != NULL &&
                       memcmp(x->command, in->command, in->command_len) == 0);
        if (cmd_ok && (x->n_classes == 0 || in_list(x->classes, x->n_classes, cls, strlen(cls)))) {
            r = x;
            d->rule = (int)i;
            d->rule_line = x->line;
            break;
        }
    }
    if (!in->is_signed) {
        if (r != NULL && r->critical)
            decided(d, false, MG_POLICY_CRITICAL_UNSIGNED);
        else if (r != NULL && r->require_set ? r->require_signed : p->require_signed)
            decided(d, false, MG_POLICY_UNSIGNED);
        else if (r == NULL && p->deny_default)
            decided(d, false, MG_POLICY_NO_RULE);
        else
            decided(d, true, MG_POLICY_OK);
        return;
    }
    if (!signers_ok(r, in, d))
        return;
    if (r == NULL) {
        decided(d, !p->deny_default, p->deny_default ? MG_POLICY_NO_RULE : MG_POLICY_OK);
        return;
    }
    if (r->critical) {
        /* two signers whose roles differ (both allowed: checked above) */
        bool two = false;
        for (size_t i = 0; i < in->n_signers && !two; i++)
            for (size_t j = i + 1; j < in->n_signers && !two; j++)
                two = in->signers[i].role != NULL && in->signers[j].role != NULL &&
                      strcmp(in->signers[i].role, in->signers[j].role) != 0;
        if (!two) {
            decided(d, false, MG_POLICY_CRITICAL_ROLES);
            return;
        }
    }
    decided(d, true, MG_POLICY_OK);
}

/* ---- the check with signatures ---------------------------------------------------- */

static void say(char *reason, size_t cap, const mg_policy *p, const mg_policy_decision *d,
                const char *detail)
{
    if (reason == NULL || cap == 0)
        return;
    if (d->rule >= 0)
        (void)snprintf(reason, cap, "%s (rule %d, %s:%d)%s%s", mg_policy_why_str(d->why),
                       d->rule + 1, p != NULL ? p->name : "policy", d->rule_line,
                       detail != NULL ? ": " : "", detail != NULL ? detail : "");
    else
        (void)snprintf(reason, cap, "%s%s%s", mg_policy_why_str(d->why),
                       detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

/* The signed command's text as queued: "command" or "command args". */
static bool same_text(const mg_signed_cmd *c, const char *text)
{
    size_t n = strlen(text);
    if (c->args == NULL || c->args_len == 0)
        return n == c->command_len && memcmp(text, c->command, n) == 0;
    return n == c->command_len + 1 + c->args_len && memcmp(text, c->command, c->command_len) == 0 &&
           text[c->command_len] == ' ' &&
           memcmp(text + c->command_len + 1, c->args, c->args_len) == 0;
}

mg_err mg_policy_check(const mg_policy *p, const char *device, const char *dev_class,
                       const char *text, const uint8_t *cose, size_t cose_len, int64_t now,
                       mg_policy_lookup lookup, void *ctx, mg_policy_decision *d, char *reason,
                       size_t reason_cap)
{
    mg_policy_input in;
    mg_policy_signer ps[MG_CMD_SIGNERS_MAX];
    mg_signer sg[MG_CMD_SIGNERS_MAX];
    mg_cmd_anchor an[MG_CMD_SIGNERS_MAX];
    mg_signed_cmd c;
    mg_cmd_why why = MG_CMD_OK;
    size_t n_an = 0;

    if (d == NULL || device == NULL || text == NULL || (cose == NULL && cose_len > 0) ||
        (cose_len > 0 && lookup == NULL))
        return MG_ERR_ARG;
    memset(d, 0, sizeof(*d));
    d->rule = -1;
    memset(&in, 0, sizeof(in));
    in.dev_class = dev_class != NULL ? dev_class : "";
    /* A SUIT envelope (an update over SMS; suit.h mg_suit_is_envelope, the one
     * place the kinds are told apart) is no COSE command: the device verifies
     * its signature against its update anchors. The gateway applies the rule
     * of the queued text's command word ("update"), as for an unsigned one. */
    if (cose_len == 0 || mg_suit_is_envelope(cose, cose_len)) {
        const char *sp = strchr(text, ' ');
        in.command = text;
        in.command_len = sp != NULL ? (size_t)(sp - text) : strlen(text);
        mg_policy_decide(p, &in, d);
        if (!d->allow)
            say(reason, reason_cap, p, d, NULL);
        return d->allow ? MG_OK : MG_ERR_AUTH;
    }
    /* who signed it (not yet verified), then verify with their keys */
    if (mg_cmd_inspect(cose, cose_len, &c, &why) != MG_OK) {
        decided(d, false, MG_POLICY_BAD_SIGNATURE);
        say(reason, reason_cap, p, d, mg_cmd_why_str(why));
        return MG_ERR_AUTH;
    }
    size_t n_kids = c.n_kids;
    for (size_t i = 0; i < n_kids; i++) {
        if (!lookup(ctx, c.kids[i].kid, c.kids[i].kid_len, &sg[i])) {
            decided(d, false, MG_POLICY_UNKNOWN_SIGNER);
            say(reason, reason_cap, p, d, NULL);
            return MG_ERR_AUTH;
        }
        an[n_an].kid = c.kids[i].kid;
        an[n_an].kid_len = c.kids[i].kid_len;
        an[n_an].alg = sg[i].alg;
        an[n_an].pub = sg[i].pub;
        an[n_an].pub_len = sg[i].pub_len;
        n_an++;
    }
    if (mg_cmd_verify_multi(cose, cose_len, an, n_an, device, 0, (uint64_t)(now < 0 ? 0 : now), 1,
                            &c, &why) != MG_OK) {
        decided(d, false, MG_POLICY_BAD_SIGNATURE);
        say(reason, reason_cap, p, d, mg_cmd_why_str(why));
        return MG_ERR_AUTH;
    }
    if (!same_text(&c, text)) {
        decided(d, false, MG_POLICY_BAD_SIGNATURE);
        say(reason, reason_cap, p, d, "the queued text is not the signed command");
        return MG_ERR_AUTH;
    }
    for (size_t i = 0; i < c.n_kids; i++) {
        const mg_signer *g = &sg[c.kids[i].anchor];
        ps[i].kid = g->kid;
        ps[i].role = g->role;
        ps[i].state = g->status == MG_SIGNER_ACTIVE ? MG_PSIGNER_ACTIVE : MG_PSIGNER_REVOKED;
    }
    in.is_signed = true;
    in.command = c.command;
    in.command_len = c.command_len;
    in.signers = ps;
    in.n_signers = c.n_kids;
    mg_policy_decide(p, &in, d);
    if (!d->allow)
        say(reason, reason_cap, p, d, NULL);
    return d->allow ? MG_OK : MG_ERR_AUTH;
}

/* ---- the enforcement point ------------------------------------------------------- */

static bool store_lookup(void *ctx, const uint8_t *kid, size_t kid_len, mg_signer *out)
{
    char k[MG_SIGNER_KID_MAX + 1];
    if (kid_len == 0 || kid_len > MG_SIGNER_KID_MAX)
        return false;
    for (size_t i = 0; i < kid_len; i++)
        if (kid[i] < 0x21 || kid[i] > 0x7e)
            return false;
    memcpy(k, kid, kid_len);
    k[kid_len] = '\0';
    return mg_store_signer_get((mg_store *)ctx, k, out) == MG_OK;
}

mg_err mg_policy_enforce(mg_store *s, const mg_policy *p, const mg_command *c, const char *bearer,
                         int64_t now, uint8_t *cose, size_t cap, size_t *cose_len, char *reason,
                         size_t reason_cap)
{
    mg_device dev;
    mg_policy_decision d;
    char why[MG_REASON_MAX];
    size_t n = 0;
    mg_err e;

    if (s == NULL || c == NULL || bearer == NULL || cose == NULL || cose_len == NULL)
        return MG_ERR_ARG;
    *cose_len = 0;
    why[0] = '\0';
    e = mg_store_device_by_id(s, c->device_id, &dev);
    if (e != MG_OK)
        return e;
    e = mg_store_cmd_signed(s, c->id, cose, cap, &n);
    if (e == MG_ERR_KEY)
        n = 0;
    else if (e != MG_OK)
        return e;
    e = mg_policy_check(p, dev.name, dev.dev_class, c->text, cose, n, now, store_lookup, s, &d,
                        why, sizeof(why));
    if (e == MG_OK) {
        *cose_len = n;
        return MG_OK;
    }
    if (e != MG_ERR_AUTH)
        return e;
    if (reason != NULL && reason_cap > 0)
        (void)snprintf(reason, reason_cap, "%s", why);
    /* refused: claim it (once, whoever forwards) and fail it, with an event */
    e = mg_store_cmd_claim(s, c->id, bearer, 0);
    if (e != MG_OK)
        return e;
    char detail[MG_REASON_MAX];
    (void)snprintf(detail, sizeof(detail), "policy: %s", why);
    e = mg_store_cmd_complete(s, c->id, MG_CMD_FAILED, detail);
    if (e != MG_OK)
        return e;
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time = now;
    ev.device_id = c->device_id;
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "%s", bearer);
    (void)snprintf(ev.kind, sizeof(ev.kind), "cmd_policy_refused");
    (void)snprintf(ev.reason, sizeof(ev.reason), "command %lld: %s", (long long)c->id, why);
    e = mg_store_event_add(s, &ev);
    return e != MG_OK ? e : MG_ERR_AUTH;
}
