/* Loading a system model (docs/risk-model.md) against a catalogue. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "risk_internal.h"

#define MAX_MODEL (16u << 20)
#define MAX_KINDS 256
#define MAX_PLACED 64     /* measures on one node or link */
#define MAX_COMMANDS 1000
#define MAX_VIA 256

typedef struct kinds { const char *k[MAX_KINDS]; size_t n; } kinds;

static void kinds_add(kinds *ks, const char *k)
{
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->k[i], k) == 0)
            return;
    if (ks->n < MAX_KINDS)
        ks->k[ks->n++] = k;
}

static void known_kinds(const mg_risk_catalogue *c, kinds *ks)
{
    ks->n = 0;
    for (size_t i = 0; i < c->n_vectors; i++)
        for (size_t j = 0; j < c->vectors[i].n_kinds; j++)
            kinds_add(ks, c->vectors[i].kinds[j]);
    for (size_t i = 0; i < c->n_measures; i++)
        for (size_t j = 0; j < c->measures[i].n_kinds; j++)
            kinds_add(ks, c->measures[i].kinds[j]);
}

static bool measure_fits(const mg_risk_measure *m, const char *kind)
{
    for (size_t i = 0; i < m->n_kinds; i++)
        if (strcmp(m->kinds[i], kind) == 0 || strcmp(m->kinds[i], "any") == 0)
            return true;
    return false;
}

static bool grow_measures(mg_arena *a, mg_risk_target *t)
{
    if (t->n_measures < t->cap_measures)
        return true;
    size_t nc = t->cap_measures ? t->cap_measures * 2 : 8;
    mg_risk_placed *p = mg_arena_array(a, nc, sizeof(*p));
    if (p == NULL)
        return false;
    if (t->n_measures)
        memcpy(p, t->measures, t->n_measures * sizeof(*p));
    t->measures = p;
    t->cap_measures = nc;
    return true;
}

static bool load_placed(ydoc *y, yaml_node_t *e, const mg_risk_catalogue *c, mg_risk_target *t,
                        const char **mids)
{
    yaml_node_t *idn = e;
    if (e == NULL)
        return false;
    if (e->type == YAML_MAPPING_NODE) {
        static const char *const keys[] = {"id", "key_bits", "mac_bits", "time_to_detect_hours",
                                           "per_hour", "algorithm"};
        y_check_keys(y, e, keys, 6);
        if (!y_req(y, e, "id", &idn))
            return false;
    }
    if (t->n_measures >= MAX_PLACED) {
        y_err(y, e, "list each measure once", "more than %d measures on '%s'", MAX_PLACED, t->id);
        return false;
    }
    int m = y_enum(y, idn, "measure", mids, c->n_measures);
    if (m < 0)
        return false;
    const mg_risk_measure *me = &c->measures[m];
    if (!measure_fits(me, t->kind)) {
        char hint[256];
        size_t used = (size_t)snprintf(hint, sizeof(hint), "it fits on:");
        for (size_t i = 0; i < me->n_kinds && used < sizeof(hint); i++) {
            int w = snprintf(hint + used, sizeof(hint) - used, " %s", me->kinds[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        y_err(y, idn, hint, "measure '%s' cannot be placed on a %s", me->id, t->kind);
        return false;
    }
    if (!grow_measures(y->arena, t)) {
        y_err(y, e, NULL, "out of memory");
        return false;
    }
    mg_risk_placed *p = &t->measures[t->n_measures];
    p->measure = m;
    memcpy(p->param, me->param, sizeof(p->param));
    p->algorithm = MG_RISK_ALG_NONE;
    if (e->type == YAML_MAPPING_NODE) {
        static const char *const algs[] = {"aes128", "aes192", "aes256", "3des2", "3des3"};
        static const double algbits[] = {128, 192, 256, 80, 112};
        yaml_node_t *a = y_get(y, e, "algorithm");
        if (a != NULL) {
            int k = y_enum(y, a, "algorithm", algs, 5);
            if (k < 0)
                return false;
            p->param[MG_P_KEY_BITS] = algbits[k];
            p->algorithm = (mg_risk_alg)k;
        }
        static const double lo[] = {1, 1, 0.001, 0.001}, hi[] = {1024, 1024, 1e6, 1e9};
        for (int q = 0; q < MG_P_N; q++) {
            yaml_node_t *v = y_get(y, e, mg_risk_param_name((mg_param)q));
            if (v == NULL)
                continue;
            if (isnan(me->param[q])) {
                y_err(y, v, "remove it; see 'm2mguard risk catalogue measures'",
                      "measure '%s' has no parameter '%s'", me->id,
                      mg_risk_param_name((mg_param)q));
                return false;
            }
            if (!y_num(y, v, lo[q], hi[q], &p->param[q]))
                return false;
        }
    }
    t->n_measures++;
    return true;
}

static int find_target(const mg_risk_model *m, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(m->targets[i].id, id) == 0)
            return (int)i;
    return -1;
}

static bool load_targets(ydoc *y, yaml_node_t *seq, bool links, const mg_risk_catalogue *c,
                         mg_risk_model *m, const char **mids, const char **rids, const kinds *ks)
{
    static const char *const nkeys[] = {"id", "kind", "name", "owner", "per_device", "measures"};
    static const char *const lkeys[] = {"id", "kind", "name", "owner", "per_device", "measures",
                                        "from", "to"};
    size_t len = y_seq_len(seq);
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *e = y_seq_at(y, seq, i), *v;
        mg_risk_target *t = &m->targets[m->n_targets];
        if (!y_is_map(y, e, links ? "a link" : "a node"))
            return false;
        y_check_keys(y, e, links ? lkeys : nkeys, links ? 8 : 6);
        t->is_link = links;
        t->owner = -1;
        if (!y_req_str(y, e, "id", &t->id) || !y_req(y, e, "kind", &v))
            return false;
        if (find_target(m, m->n_targets, t->id) >= 0) {
            y_err(y, e, "node and link ids must be unique", "duplicate id '%s'", t->id);
            return false;
        }
        int k = y_enum(y, v, "kind", ks->k, ks->n);
        if (k < 0)
            return false;
        t->kind = ks->k[k];
        t->name = t->id;
        if (!y_opt_str(y, e, "name", &t->name))
            return false;
        v = y_get(y, e, "owner");
        if (v != NULL && (t->owner = y_enum(y, v, "role", rids, c->n_roles)) < 0)
            return false;
        v = y_get(y, e, "per_device");
        if (v != NULL && !y_bool(y, v, &t->per_device))
            return false;
        if (links) {
            t->from = t->to = "";
            if (!y_opt_str(y, e, "from", &t->from) || !y_opt_str(y, e, "to", &t->to))
                return false;
        }
        v = y_get(y, e, "measures");
        if (v != NULL) {
            if (!y_is_seq(y, v, "measures"))
                return false;
            for (size_t j = 0; j < y_seq_len(v); j++)
                if (!load_placed(y, y_seq_at(y, v, j), c, t, mids))
                    return false;
        }
        m->n_targets++;
    }
    return true;
}

static bool load_system(ydoc *y, yaml_node_t *s, mg_risk_model *m)
{
    static const char *const keys[] = {"name", "year", "lifetime_years", "devices", "networks",
                                       "value_eur", "time_to_detect_days", "time_to_resolve_days"};
    static const char *const vkeys[] = {"stolen_per_device", "manipulated_per_device",
                                        "destroyed_per_device", "outage_per_day", "publicity"};
    static const char *const nkeys[] = {"name", "devices"};
    yaml_node_t *v;
    if (!y_is_map(y, s, "system"))
        return false;
    y_check_keys(y, s, keys, 8);
    m->lifetime_years = 10;
    if (!y_req_str(y, s, "name", &m->name) || !y_req_num(y, s, "year", 1990, 2200, &m->year) ||
        !y_opt_num(y, s, "lifetime_years", 0, 100, &m->lifetime_years) ||
        !y_opt_num(y, s, "time_to_detect_days", 0, 36500, &m->ttd_days) ||
        !y_opt_num(y, s, "time_to_resolve_days", 0, 36500, &m->ttr_days))
        return false;
    yaml_node_t *nets = y_get(y, s, "networks"), *dev = y_get(y, s, "devices");
    if (nets == NULL && dev == NULL) {
        y_err(y, s, "add 'devices: N' or a 'networks:' list", "the system has no device count");
        return false;
    }
    if (dev != NULL && !y_num(y, dev, 1, 1e10, &m->devices))
        return false;
    m->network_devices = m->devices;
    if (nets != NULL) {
        if (!y_is_seq(y, nets, "networks"))
            return false;
        double total = 0, most = 0;
        for (size_t i = 0; i < y_seq_len(nets); i++) {
            yaml_node_t *e = y_seq_at(y, nets, i);
            const char *name;
            double d;
            if (!y_is_map(y, e, "a network"))
                return false;
            y_check_keys(y, e, nkeys, 2);
            if (!y_req_str(y, e, "name", &name) || !y_req_num(y, e, "devices", 0, 1e10, &d))
                return false;
            total += d;
            if (d > most)
                most = d;
        }
        if (dev == NULL)
            m->devices = total;
        else if (fabs(total - m->devices) > 0.5) {
            y_err(y, dev, "make 'devices' the sum of the networks' devices or drop it",
                  "devices (%g) differs from the networks' total (%g)", m->devices, total);
            return false;
        }
        m->network_devices = most;
        if (m->devices < 1) {
            y_err(y, nets, NULL, "the networks have no device");
            return false;
        }
    }
    if (!y_req(y, s, "value_eur", &v) || !y_is_map(y, v, "value_eur"))
        return false;
    y_check_keys(y, v, vkeys, 5);
    for (int i = 0; i < 4; i++)
        if (!y_opt_num(y, v, vkeys[i], 0, 1e15, &m->value[i]))
            return false;
    return y_opt_num(y, v, "publicity", 0, 1e15, &m->publicity);
}

/* vectors: [{vector: id, attackers: [id...], probability: p}] — which in-scope
 * attackers use a vector, and the analyst's probability that it is attempted. */
static bool load_uses(ydoc *y, yaml_node_t *v, const mg_risk_catalogue *c, const char **aids,
                      mg_risk_model *m)
{
    static const char *const ukeys[] = {"vector", "attackers", "probability"};
    if (!y_is_seq(y, v, "vectors"))
        return false;
    size_t nu = y_seq_len(v);
    const char **vids = mg_arena_array(y->arena, c->n_vectors ? c->n_vectors : 1, sizeof(char *));
    m->uses = mg_arena_array(y->arena, nu ? nu : 1, sizeof(mg_risk_vector_use));
    if (vids == NULL || m->uses == NULL)
        return false;
    for (size_t i = 0; i < c->n_vectors; i++)
        vids[i] = c->vectors[i].id;
    for (size_t i = 0; i < nu; i++) {
        yaml_node_t *e = y_seq_at(y, v, i), *n;
        mg_risk_vector_use *u = &m->uses[i];
        if (!y_is_map(y, e, "an entry of vectors"))
            return false;
        y_check_keys(y, e, ukeys, 3);
        u->probability = NAN;
        if (!y_req(y, e, "vector", &n) ||
            (u->vector = y_enum(y, n, "vector", vids, c->n_vectors)) < 0 ||
            !y_opt_num(y, e, "probability", 0, 1, &u->probability))
            return false;
        for (size_t k = 0; k < i; k++)
            if (m->uses[k].vector == u->vector) {
                y_err(y, n, "list each vector once", "vector '%s' repeated",
                      c->vectors[u->vector].id);
                return false;
            }
        n = y_get(y, e, "attackers");
        if (n != NULL) {
            if (!y_is_seq(y, n, "attackers"))
                return false;
            size_t na = y_seq_len(n);
            u->attackers = mg_arena_array(y->arena, na ? na : 1, sizeof(int));
            if (u->attackers == NULL)
                return false;
            if (na == 0) {
                y_err(y, n, "leave 'attackers' out when every attacker in scope uses it",
                      "no attacker named");
                return false;
            }
            for (size_t k = 0; k < na; k++) {
                yaml_node_t *an = y_seq_at(y, n, k);
                int a = y_enum(y, an, "attacker", aids, c->n_attackers);
                if (a < 0)
                    return false;
                bool in_scope = false;
                for (size_t j = 0; j < m->n_attackers; j++)
                    in_scope |= m->attackers[j] == a;
                if (!in_scope) {
                    y_err(y, an, "add it to the model's 'attackers:' first",
                          "attacker '%s' is not in scope", aids[a]);
                    return false;
                }
                u->attackers[u->n_attackers++] = a;
            }
        }
        m->n_uses = i + 1;
    }
    return true;
}

static bool load_model(ydoc *y, const mg_risk_catalogue *c, mg_risk_model *m)
{
    static const char *const top[] = {"system", "attackers", "roles",   "nodes",
                                      "links",  "commands",  "vectors"};
    yaml_node_t *r = y_root(y), *v;
    kinds ks;
    if (!y_is_map(y, r, "the model"))
        return false;
    y_check_keys(y, r, top, sizeof(top) / sizeof(top[0]));
    if (!y_req(y, r, "system", &v) || !load_system(y, v, m))
        return false;
    if (y_get(y, y_get(y, r, "system"), "time_to_detect_days") == NULL)
        m->ttd_days = c->calib.default_ttd_days;

    const char **aids = mg_arena_array(y->arena, c->n_attackers, sizeof(char *));
    const char **mids = mg_arena_array(y->arena, c->n_measures ? c->n_measures : 1, sizeof(char *));
    const char **rids = mg_arena_array(y->arena, c->n_roles ? c->n_roles : 1, sizeof(char *));
    m->role_org = mg_arena_array(y->arena, c->n_roles ? c->n_roles : 1, sizeof(char *));
    if (aids == NULL || mids == NULL || rids == NULL || m->role_org == NULL)
        return false;
    for (size_t i = 0; i < c->n_attackers; i++)
        aids[i] = c->attackers[i].id;
    for (size_t i = 0; i < c->n_measures; i++)
        mids[i] = c->measures[i].id;
    for (size_t i = 0; i < c->n_roles; i++)
        rids[i] = c->roles[i].id;

    if (!y_req(y, r, "attackers", &v) || !y_is_seq(y, v, "attackers"))
        return false;
    m->attackers = mg_arena_array(y->arena, y_seq_len(v) + 1, sizeof(int));
    m->attacker_probability = mg_arena_array(y->arena, y_seq_len(v) + 1, sizeof(double));
    if (m->attackers == NULL || m->attacker_probability == NULL)
        return false;
    for (size_t i = 0; i < y_seq_len(v); i++) {
        /* an id, or {id, probability} */
        static const char *const akeys[] = {"id", "probability"};
        yaml_node_t *an = y_seq_at(y, v, i), *idn = an;
        double pa = NAN;
        if (an != NULL && an->type == YAML_MAPPING_NODE) {
            y_check_keys(y, an, akeys, 2);
            if (!y_req(y, an, "id", &idn) || !y_opt_num(y, an, "probability", 0, 1, &pa))
                return false;
        }
        int a = y_enum(y, idn, "attacker", aids, c->n_attackers);
        if (a < 0)
            return false;
        m->attacker_probability[m->n_attackers] = pa;
        for (size_t j = 0; j < m->n_attackers; j++)
            if (m->attackers[j] == a) {
                y_err(y, idn, "list each attacker once", "attacker repeated");
                return false;
            }
        m->attackers[m->n_attackers++] = a;
    }
    if (m->n_attackers == 0) {
        y_err(y, v, "name at least one attacker profile in scope", "no attacker in scope");
        return false;
    }
    v = y_get(y, r, "roles");
    if (v != NULL) {
        if (!y_is_map(y, v, "roles"))
            return false;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            int ro = y_enum(y, y_node(y, p->key), "role", rids, c->n_roles);
            if (ro < 0 || !y_str(y, y_node(y, p->value), &m->role_org[ro]))
                return false;
        }
    }
    yaml_node_t *nodes = y_get(y, r, "nodes"), *links = y_get(y, r, "links");
    if ((nodes != NULL && !y_is_seq(y, nodes, "nodes")) ||
        (links != NULL && !y_is_seq(y, links, "links")))
        return false;
    size_t nt = y_seq_len(nodes) + y_seq_len(links);
    if (nt == 0) {
        y_err(y, r, "describe the chain: device MCU, modem, SIM, SMSC, backend...",
              "the model has no nodes and no links");
        return false;
    }
    m->targets = mg_arena_array(y->arena, nt, sizeof(mg_risk_target));
    if (m->targets == NULL)
        return false;
    known_kinds(c, &ks);
    if (!load_targets(y, nodes, false, c, m, mids, rids, &ks) ||
        !load_targets(y, links, true, c, m, mids, rids, &ks))
        return false;
    /* links name their end nodes */
    for (size_t i = 0; i < m->n_targets; i++) {
        mg_risk_target *t = &m->targets[i];
        if (!t->is_link)
            continue;
        const char *ends[2] = {t->from, t->to};
        for (int e = 0; e < 2; e++) {
            if (ends[e][0] == '\0')
                continue;
            int k = find_target(m, m->n_targets, ends[e]);
            if (k < 0 || m->targets[k].is_link) {
                yaml_node_t *ln = y_seq_at(y, links, i - y_seq_len(nodes));
                y_err(y, y_get(y, ln, e ? "to" : "from"), "name a node id from 'nodes:'",
                      "link end '%s' is not a node", ends[e]);
                return false;
            }
        }
    }
    v = y_get(y, r, "vectors");
    if (v != NULL && !load_uses(y, v, c, aids, m))
        return false;
    v = y_get(y, r, "commands");
    if (v != NULL) {
        static const char *const ckeys[] = {"name", "value_eur", "via"};
        if (!y_is_seq(y, v, "commands"))
            return false;
        size_t nc = y_seq_len(v);
        if (nc > MAX_COMMANDS) {
            y_err(y, v, NULL, "more than %d commands", MAX_COMMANDS);
            return false;
        }
        m->commands = mg_arena_array(y->arena, nc ? nc : 1, sizeof(mg_risk_command));
        if (m->commands == NULL)
            return false;
        const char **tids = mg_arena_array(y->arena, m->n_targets, sizeof(char *));
        if (tids == NULL)
            return false;
        for (size_t i = 0; i < m->n_targets; i++)
            tids[i] = m->targets[i].id;
        for (size_t i = 0; i < nc; i++) {
            yaml_node_t *e = y_seq_at(y, v, i), *via;
            mg_risk_command *cm = &m->commands[i];
            if (!y_is_map(y, e, "a command"))
                return false;
            y_check_keys(y, e, ckeys, 3);
            if (!y_req_str(y, e, "name", &cm->name) ||
                !y_req_num(y, e, "value_eur", 0, 1e15, &cm->value) || !y_req(y, e, "via", &via) ||
                !y_is_seq(y, via, "via"))
                return false;
            if (y_seq_len(via) > MAX_VIA) {
                y_err(y, via, NULL, "a command passes through more than %d nodes and links",
                      MAX_VIA);
                return false;
            }
            cm->via = mg_arena_array(y->arena, y_seq_len(via) + 1, sizeof(int));
            if (cm->via == NULL)
                return false;
            for (size_t j = 0; j < y_seq_len(via); j++) {
                int k = y_enum(y, y_seq_at(y, via, j), "node or link", tids, m->n_targets);
                if (k < 0)
                    return false;
                cm->via[cm->n_via++] = k;
            }
            m->n_commands = i + 1;
        }
    }
    return y->errors == 0;
}

mg_err mg_risk_model_load_text(const mg_risk_text *t, const mg_risk_catalogue *c,
                               mg_risk_model *m, mg_risk_diag *d)
{
    ydoc y;
    memset(m, 0, sizeof(*m));
    m->arena = mg_arena_new();
    if (m->arena == NULL)
        return MG_ERR_BUF;
    m->file = mg_arena_strdup(m->arena, t->name);
    if (m->file == NULL) {
        mg_risk_model_free(m);
        return MG_ERR_BUF;
    }
    if (!y_load(&y, m->file, (const unsigned char *)t->data, t->len, d, m->arena)) {
        y_free(&y);
        mg_risk_model_free(m);
        return MG_ERR_FORMAT;
    }
    bool ok = load_model(&y, c, m);
    if (!ok && y.errors == 0)
        mg_diag_add(d, m->file, 1, 1, "out of memory", NULL);
    y_free(&y);
    if (!ok) {
        mg_risk_model_free(m);
        return MG_ERR_FORMAT;
    }
    return MG_OK;
}

mg_err mg_risk_model_load(const char *path, const mg_risk_catalogue *c, mg_risk_model *m,
                          mg_risk_diag *d)
{
    size_t len = 0;
    unsigned char *buf = mg_read_file(path, MAX_MODEL, &len);
    memset(m, 0, sizeof(*m));
    if (buf == NULL) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot read the model: %s", strerror(errno));
        mg_diag_add(d, path, 0, 0, msg, NULL);
        return MG_ERR_ARG;
    }
    mg_risk_text t = {path, (const char *)buf, len};
    mg_err e = mg_risk_model_load_text(&t, c, m, d);
    free(buf);
    return e;
}

void mg_risk_model_free(mg_risk_model *m)
{
    if (m == NULL)
        return;
    mg_arena_free(m->arena);
    memset(m, 0, sizeof(*m));
}

mg_err mg_risk_model_add_measure(mg_risk_model *m, const mg_risk_catalogue *c, size_t target,
                                 int measure)
{
    if (target >= m->n_targets || measure < 0 || (size_t)measure >= c->n_measures)
        return MG_ERR_ARG;
    mg_risk_target *t = &m->targets[target];
    if (!measure_fits(&c->measures[measure], t->kind))
        return MG_ERR_ARG;
    if (!grow_measures(m->arena, t))
        return MG_ERR_BUF;
    mg_risk_placed *p = &t->measures[t->n_measures++];
    p->measure = measure;
    memcpy(p->param, c->measures[measure].param, sizeof(p->param));
    p->algorithm = MG_RISK_ALG_NONE;
    return MG_OK;
}
