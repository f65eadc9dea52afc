/* The detector (src/detect): window arithmetic at the edges, aggregated
 * events, the baseline percentile, "unauthenticated evidence never acts on a
 * device", alert extension, the YAML rules and their round trip, the cursor. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "detect_internal.h"
#include "m2mguard/detect.h"
#include "m2mguard/store.h"

static char tmpdir[64], dbpath[128], rulespath[128];
static const uint8_t master[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void remove_db(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
    unlink(rulespath);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-detect-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(dbpath, sizeof(dbpath), "%s/test.db", tmpdir);
    snprintf(rulespath, sizeof(rulespath), "%s/rules.yaml", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_db();
    rmdir(tmpdir);
    return 0;
}

static mg_store *fresh(void)
{
    mg_store *s = NULL;
    remove_db();
    assert_int_equal(mg_store_open(dbpath, master, true, &s), MG_OK);
    return s;
}

/* A detector with only the rules of yaml (builtins: false), dry run. */
static mg_detect *detector(mg_store *s, const char *yaml, bool dry)
{
    FILE *f = fopen(rulespath, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    mg_detect_cfg cfg = {.store = s, .rules_path = rulespath, .dry_run = dry};
    mg_detect *d = NULL;
    char why[256];
    mg_err e = mg_detect_new(&cfg, &d, why, sizeof(why));
    if (e != MG_OK)
        fail_msg("mg_detect_new: %s", why);
    return d;
}

static int64_t next_id = 1;

static mg_event ev(const char *kind, const char *source, int64_t dev, int64_t t, bool auth)
{
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.id = next_id++;
    e.time = t;
    e.last = t;
    e.count = 1;
    e.device_id = dev;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.source, sizeof(e.source), "%s", source);
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    snprintf(e.reason, sizeof(e.reason), "test");
    e.authenticated = auth;
    return e;
}

static void feed(mg_detect *d, mg_event e)
{
    assert_int_equal(mg_detect_feed(d, &e, 1000), MG_OK);
}

typedef struct alerts_ctx {
    mg_alert a[32];
    size_t n;
} alerts_ctx;

static bool collect(void *ctx, const mg_alert *a)
{
    alerts_ctx *c = ctx;
    if (c->n < 32)
        c->a[c->n++] = *a;
    return true;
}

static alerts_ctx *alerts(mg_store *s)
{
    static alerts_ctx c;
    c.n = 0;
    assert_int_equal(mg_store_alerts(s, 0, false, collect, &c), MG_OK);
    return &c;
}

static const char *burst_yaml = "builtins: false\n"
                                "rules:\n"
                                "  burst:\n"
                                "    kinds: [auth_fail]\n"
                                "    scope: source\n"
                                "    window_s: 60\n"
                                "    threshold: 2\n"
                                "    response: [throttle, notify]\n";

/* ---- mg_detect_allowed: the one rule ------------------------------------------------ */

static void test_allowed(void **state)
{
    (void)state;
    for (unsigned want = 0; want < 64; want++) {
        for (int src = 0; src < 2; src++) {
            unsigned un = mg_detect_allowed(want, false, src != 0);
            assert_int_equal(un & MG_RESP_ON_DEVICE, 0); /* never acts on a device */
            assert_int_equal(un & ~MG_RESP_THROTTLE, want & ~MG_RESP_ON_DEVICE & ~MG_RESP_THROTTLE);
            if ((want & MG_RESP_ON_DEVICE) != 0 && src)
                assert_true((un & MG_RESP_THROTTLE) != 0);
            if ((want & MG_RESP_ON_DEVICE) == 0)
                assert_int_equal(un, want);
            assert_int_equal(mg_detect_allowed(want, true, src != 0), want);
        }
    }
    assert_int_equal(mg_detect_allowed(MG_RESP_QUARANTINE | MG_RESP_NOTIFY, false, true),
                     MG_RESP_THROTTLE | MG_RESP_NOTIFY);
    assert_int_equal(mg_detect_allowed(MG_RESP_QUARANTINE | MG_RESP_NOTIFY, false, false),
                     MG_RESP_NOTIFY);
    unsigned bit = 99;
    assert_int_equal(mg_detect_resp_parse("revoke", &bit), MG_OK);
    assert_int_equal(bit, MG_RESP_REVOKE);
    assert_int_equal(mg_detect_resp_parse("none", &bit), MG_OK);
    assert_int_equal(bit, MG_RESP_NONE);
    assert_int_equal(mg_detect_resp_parse("Quarantine", &bit), MG_ERR_ARG);
    assert_int_equal(mg_detect_resp_parse("", &bit), MG_ERR_ARG);
}

/* ---- windows --------------------------------------------------------------------------- */

/* An event exactly window_s after another is outside that one's window. */
static void test_window_edge(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_detect *d = detector(s, burst_yaml, true);
    feed(d, ev("auth_fail", "+100", 0, 1000, false));
    feed(d, ev("auth_fail", "+100", 0, 1060, false)); /* 1000 + 60: out */
    assert_int_equal(alerts(s)->n, 0);
    feed(d, ev("auth_fail", "+100", 0, 1119, false)); /* 1060 + 59: in */
    alerts_ctx *c = alerts(s);
    assert_int_equal(c->n, 1);
    assert_string_equal(c->a[0].rule, "burst");
    assert_string_equal(c->a[0].scope, "source");
    assert_string_equal(c->a[0].source, "+100");
    assert_int_equal(c->a[0].first_evidence, 1060);
    assert_int_equal(c->a[0].evidence_count, 2);
    assert_int_equal(c->a[0].n_evidence, 2);
    assert_false(c->a[0].authenticated);
    assert_int_equal(c->a[0].detected_ms, 1000);
    /* another source has its own window */
    feed(d, ev("auth_fail", "+200", 0, 2000, false));
    assert_int_equal(alerts(s)->n, 1);
    /* a kind the rule does not name */
    feed(d, ev("replay", "+200", 0, 2001, false));
    assert_int_equal(alerts(s)->n, 1);
    feed(d, ev("auth_fail", "+200", 0, 2059, false));
    assert_int_equal(alerts(s)->n, 2);
    mg_detect_free(d);
    mg_store_close(s);
}

/* An aggregated event counts `count` times at its last occurrence. */
static void test_aggregate(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_detect *d = detector(s,
                            "builtins: false\nrules:\n  burst:\n    kinds: [auth_fail]\n"
                            "    scope: source\n    window_s: 10\n    threshold: 5\n",
                            true);
    mg_event a = ev("auth_fail", "+1", 0, 100, false);
    a.count = 4;
    a.last = 150; /* first at 100, last at 150 */
    feed(d, a);
    assert_int_equal(alerts(s)->n, 0);
    feed(d, ev("auth_fail", "+1", 0, 160, false)); /* 150 + 10: the aggregate is out */
    assert_int_equal(alerts(s)->n, 0);
    mg_event b = ev("auth_fail", "+1", 0, 161, false);
    b.count = 4;
    feed(d, b); /* 1 + 4 = 5 in (151, 161] */
    alerts_ctx *c = alerts(s);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->a[0].evidence_count, 5);
    mg_detect_free(d);
    mg_store_close(s);
}

/* An open alert is extended by new evidence; a closed one is not reopened. */
static void test_extend(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_detect *d = detector(s, burst_yaml, true);
    feed(d, ev("auth_fail", "+100", 0, 1000, false));
    feed(d, ev("auth_fail", "+100", 0, 1001, false));
    feed(d, ev("auth_fail", "+100", 0, 1002, false));
    feed(d, ev("auth_fail", "+100", 0, 5000, false));
    alerts_ctx *c = alerts(s);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->a[0].evidence_count, 4);
    assert_int_equal(c->a[0].n_evidence, 4);
    assert_int_equal(mg_store_alert_set_state(s, c->a[0].id, MG_ALERT_CLOSED, "seen"), MG_OK);
    feed(d, ev("auth_fail", "+100", 0, 5001, false));
    assert_int_equal(alerts(s)->n, 1); /* one event: below the threshold again */
    feed(d, ev("auth_fail", "+100", 0, 5002, false));
    c = alerts(s);
    assert_int_equal(c->n, 2);
    assert_int_equal(c->a[1].evidence_count, 2);
    /* a restarted detector finds the open alert and extends it */
    mg_detect_free(d);
    d = detector(s, burst_yaml, true);
    feed(d, ev("auth_fail", "+100", 0, 6000, false));
    feed(d, ev("auth_fail", "+100", 0, 6001, false));
    c = alerts(s);
    assert_int_equal(c->n, 2);
    assert_int_equal(c->a[1].evidence_count, 4);
    mg_detect_free(d);
    mg_store_close(s);
}

/* ---- "unauthenticated evidence never acts on a device" ---------------------------------- */

static int64_t add_device(mg_store *s, const char *name, const char *msisdn, const char *cls)
{
    mg_device dv;
    memset(&dv, 0, sizeof(dv));
    snprintf(dv.name, sizeof(dv.name), "%s", name);
    snprintf(dv.msisdn, sizeof(dv.msisdn), "%s", msisdn);
    snprintf(dv.dev_class, sizeof(dv.dev_class), "%s", cls);
    dv.tar[0] = 1;
    dv.tar[1] = 2;
    dv.tar[2] = 3;
    assert_int_equal(mg_store_device_add(s, &dv), MG_OK);
    return dv.id;
}

static void test_unauth_never_acts(void **state)
{
    (void)state;
    mg_store *s = fresh();
    int64_t id = add_device(s, "meter-1", "+4915550001", "");
    mg_detect *d = detector(s,
                            "builtins: false\nrules:\n"
                            "  forged:\n    kinds: [auth_fail]\n    scope: source\n"
                            "    threshold: 1\n    response: [quarantine, rotate, revoke, block, notify]\n"
                            "  devrule:\n    kinds: [tamper]\n    scope: device\n"
                            "    threshold: 1\n    response: [quarantine, revoke, notify]\n",
                            true);
    /* a forged SMS carrying the device's number: unauthenticated */
    feed(d, ev("auth_fail", "+4915550001", id, 100, false));
    alerts_ctx *c = alerts(s);
    assert_int_equal(c->n, 1);
    assert_false(c->a[0].authenticated);
    /* device actions removed; block of a device's number downgraded to throttle */
    assert_non_null(strstr(c->a[0].response, "throttle notify ("));
    assert_null(strstr(c->a[0].response, "block notify"));
    assert_non_null(strstr(c->a[0].response, "refused: evidence not authenticated"));
    assert_int_equal(strncmp(c->a[0].response, "throttle notify", 15), 0);
    /* a source that is no device's number may be blocked */
    feed(d, ev("auth_fail", "+4915559999", 0, 100, false));
    c = alerts(s);
    assert_int_equal(c->n, 2);
    assert_int_equal(strncmp(c->a[1].response, "throttle block notify", 21), 0);
    /* device scope, unauthenticated tamper claim: only notify (no source to throttle) */
    feed(d, ev("tamper", "+4915550001", id, 100, false));
    c = alerts(s);
    assert_int_equal(c->n, 3);
    assert_int_equal(strncmp(c->a[2].response, "notify (quarantine revoke refused", 33), 0);
    mg_device dv;
    assert_int_equal(mg_store_device_by_id(s, id, &dv), MG_OK);
    assert_int_equal(dv.status, MG_DEV_ACTIVE);
    /* authenticated: the device actions stand */
    assert_int_equal(mg_store_alert_set_state(s, c->a[2].id, MG_ALERT_CLOSED, NULL), MG_OK);
    feed(d, ev("tamper", "+4915550001", id, 101, true));
    c = alerts(s);
    assert_int_equal(c->n, 4);
    assert_true(c->a[3].authenticated);
    assert_int_equal(strncmp(c->a[3].response, "quarantine revoke notify: ", 26), 0);
    mg_detect_stats st = mg_detect_get_stats(d);
    assert_int_equal(st.suppressed_responses, 3);
    assert_int_equal(st.alerts, 4);
    /* a window with one unauthenticated occurrence is not authenticated */
    mg_detect_free(d);
    d = detector(s,
                 "builtins: false\nrules:\n  two:\n    kinds: [x]\n    scope: device\n"
                 "    threshold: 2\n    response: [quarantine]\n",
                 true);
    feed(d, ev("x", "+4915550001", id, 200, true));
    feed(d, ev("x", "+4915550001", id, 201, false));
    c = alerts(s);
    assert_int_equal(c->n, 5);
    assert_false(c->a[4].authenticated);
    assert_int_equal(strncmp(c->a[4].response, "none (quarantine refused", 24), 0);
    mg_detect_free(d);
    mg_store_close(s);
}

/* ---- baseline -------------------------------------------------------------------------- */

static void test_percentile(void **state)
{
    (void)state;
    int64_t v[20], tmp[20];
    for (int i = 0; i < 20; i++)
        v[i] = 20 - i; /* 20..1, unsorted input */
    assert_int_equal(dr_percentile(v, 20, 95, tmp), 19); /* rank ceil(19) = 19 */
    assert_int_equal(dr_percentile(v, 20, 50, tmp), 10);
    assert_int_equal(dr_percentile(v, 20, 100, tmp), 20);
    assert_int_equal(dr_percentile(v, 20, 1, tmp), 1);
    assert_int_equal(dr_percentile(v, 20, 96, tmp), 20); /* ceil(19.2) = 20 */
    assert_int_equal(v[0], 20);                          /* input untouched */
    int64_t one = 7;
    assert_int_equal(dr_percentile(&one, 1, 95, tmp), 7);
    assert_int_equal(dr_percentile(v, 0, 95, tmp), 0);
    int64_t ten[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 100};
    assert_int_equal(dr_percentile(ten, 10, 95, tmp), 100); /* ceil(9.5) = 10 */
    assert_int_equal(dr_percentile(ten, 10, 90, tmp), 0);
    assert_int_equal(dr_octets("payload of 5000 octets exceeds"), 5000);
    assert_int_equal(dr_octets("counter 7"), 0);
}

static void test_baseline(void **state)
{
    (void)state;
    mg_store *s = fresh();
    int64_t id = add_device(s, "meter-2", "+4915550002", "");
    mg_detect *d = detector(s,
                            "builtins: false\nrules:\n  rate:\n    kinds: [auth_ok]\n"
                            "    scope: device\n    metric: rate_baseline\n    window_s: 10\n"
                            "    threshold: 3\n    percentile: 95\n    margin: 2\n"
                            "    min_windows: 4\n    history: 8\n    evidence: authenticated\n"
                            "    response: [quarantine, notify]\n",
                            true);
    /* 2 messages a window for 4 windows: the baseline is 2, the limit max(3, 2 x 2) = 4 */
    int64_t t = 10000;
    for (int w = 0; w < 4; w++)
        for (int i = 0; i < 2; i++)
            feed(d, ev("auth_ok", "+4915550002", id, t + w * 10 + i, true));
    /* unauthenticated events do not count */
    for (int i = 0; i < 10; i++)
        feed(d, ev("auth_ok", "+4915550002", id, t + 40, false));
    assert_int_equal(alerts(s)->n, 0);
    for (int i = 0; i < 4; i++)
        feed(d, ev("auth_ok", "+4915550002", id, t + 40 + i, true));
    assert_int_equal(alerts(s)->n, 0); /* 4: not above 4 */
    feed(d, ev("auth_ok", "+4915550002", id, t + 45, true));
    alerts_ctx *c = alerts(s);
    assert_int_equal(c->n, 1);
    assert_true(c->a[0].authenticated);
    assert_int_equal(c->a[0].device_id, id);
    assert_int_equal(c->a[0].evidence_count, 5);
    assert_int_equal(strncmp(c->a[0].response, "quarantine notify", 17), 0);
    assert_non_null(strstr(c->a[0].summary, "p95 2"));
    /* one alert per window */
    feed(d, ev("auth_ok", "+4915550002", id, t + 46, true));
    assert_int_equal(alerts(s)->n, 1);
    assert_int_equal(alerts(s)->a[0].evidence_count, 5);
    mg_detect_free(d);
    mg_store_close(s);
}

/* ---- outside hours, LRU ----------------------------------------------------------------- */

static void test_off_hours_and_lru(void **state)
{
    (void)state;
    mg_store *s = fresh();
    int64_t id = add_device(s, "lock-1", "+4915550003", "lock");
    int64_t other = add_device(s, "meter-3", "+4915550004", "meter");
    mg_detect *d = detector(s,
                            "builtins: false\nrules:\n  hours:\n    kinds: [cmd_sent]\n"
                            "    outside_hours: true\n    threshold: 1\n"
                            "  lru:\n    kinds: [auth_fail]\n    scope: source\n    threshold: 2\n"
                            "    max_keys: 2\n"
                            "classes:\n  lock: {hours: \"06-22\"}\n",
                            true);
    int64_t day = 1764547200; /* 2025-12-01T00:00:00Z */
    feed(d, ev("cmd_sent", "+4915550003", id, day + 12 * 3600, false)); /* noon: allowed */
    feed(d, ev("cmd_sent", "+4915550004", other, day + 3 * 3600, false)); /* class without hours */
    assert_int_equal(alerts(s)->n, 0);
    feed(d, ev("cmd_sent", "+4915550003", id, day + 22 * 3600, false)); /* 22:00: out */
    alerts_ctx *c = alerts(s);
    assert_int_equal(c->n, 1);
    assert_string_equal(c->a[0].rule, "hours");
    assert_int_equal(c->a[0].device_id, id);
    /* three sources through a rule that keeps two: windows stay bounded */
    feed(d, ev("auth_fail", "+1", 0, 100, false));
    feed(d, ev("auth_fail", "+2", 0, 100, false));
    feed(d, ev("auth_fail", "+3", 0, 100, false)); /* evicts +1 */
    feed(d, ev("auth_fail", "+1", 0, 101, false)); /* +1 starts again: no alert */
    assert_int_equal(alerts(s)->n, 1);
    mg_detect_stats st = mg_detect_get_stats(d);
    assert_true(st.windows <= 3); /* hours: 1 key, lru: 2 */
    feed(d, ev("auth_fail", "+1", 0, 102, false));
    assert_int_equal(alerts(s)->n, 2);
    mg_detect_free(d);
    mg_store_close(s);
}

/* ---- YAML ----------------------------------------------------------------------------------- */

static char *defaults_text(const dr_set *set, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    assert_non_null(f);
    if (set == NULL)
        assert_int_equal(mg_detect_write_defaults(f), MG_OK);
    else
        assert_int_equal(dr_write(f, set), MG_OK);
    fclose(f);
    return buf;
}

static void test_yaml_roundtrip(void **state)
{
    (void)state;
    size_t len1 = 0, len2 = 0;
    char *t1 = defaults_text(NULL, &len1);
    dr_set *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    assert_non_null(a);
    assert_non_null(b);
    char why[256];
    mg_err e = dr_load_text("defaults", t1, len1, a, why, sizeof(why));
    if (e != MG_OK)
        fail_msg("%s", why);
    dr_builtin(b);
    assert_int_equal(a->n_rules, b->n_rules);
    assert_true(a->n_rules >= 15);
    for (size_t i = 0; i < a->n_rules; i++) {
        const dr_rule *x = &a->rules[i], *y = &b->rules[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->n_kinds, y->n_kinds);
        for (size_t k = 0; k < x->n_kinds; k++)
            assert_string_equal(x->kinds[k], y->kinds[k]);
        assert_int_equal(x->scope, y->scope);
        assert_int_equal(x->window_s, y->window_s);
        assert_int_equal(x->threshold, y->threshold);
        assert_string_equal(x->severity, y->severity);
        assert_int_equal(x->response, y->response);
        assert_int_equal(x->enabled, y->enabled);
        assert_int_equal(x->metric, y->metric);
        assert_int_equal(x->percentile, y->percentile);
        assert_true(x->margin == y->margin);
        assert_int_equal(x->min_windows, y->min_windows);
        assert_int_equal(x->evidence, y->evidence);
        assert_int_equal(x->outside_hours, y->outside_hours);
        assert_int_equal(x->max_keys, y->max_keys);
    }
    char *t2 = defaults_text(a, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(t1, t2, len1);
    /* a class and a changed rule survive the round trip too */
    static const char extra[] = "rules:\n  checksum_burst: {threshold: 7, enabled: false}\n"
                                "  mine:\n    kinds: [\"mqtt_auth_fail:revoked\"]\n"
                                "    margin: 2.5\n    metric: rate_baseline\n"
                                "classes:\n  lock: {hours: \"22-06\"}\n";
    assert_int_equal(dr_load_text("x", extra, sizeof(extra) - 1, a, why, sizeof(why)), MG_OK);
    assert_int_equal(a->rules[0].threshold, 7);
    assert_false(a->rules[0].enabled);
    assert_int_equal(a->n_rules, b->n_rules + 1);
    assert_int_equal(a->n_classes, 1);
    assert_false(dr_hour_allowed(&a->classes[0], 12));
    assert_true(dr_hour_allowed(&a->classes[0], 23));
    assert_true(dr_hour_allowed(&a->classes[0], 5));
    assert_false(dr_hour_allowed(&a->classes[0], 6));
    free(t2);
    t2 = defaults_text(a, &len2);
    assert_int_equal(dr_load_text("y", t2, len2, b, why, sizeof(why)), MG_OK);
    size_t len3 = 0;
    char *t3 = defaults_text(b, &len3);
    assert_int_equal(len2, len3);
    assert_memory_equal(t2, t3, len2);
    free(t1);
    free(t2);
    free(t3);
    free(a);
    free(b);
}

static void expect_error(const char *yaml, const char *want)
{
    dr_set *s = malloc(sizeof(*s));
    assert_non_null(s);
    char why[256];
    mg_err e = dr_load_text("r.yaml", yaml, strlen(yaml), s, why, sizeof(why));
    free(s);
    assert_int_not_equal(e, MG_OK);
    if (strstr(why, want) == NULL)
        fail_msg("error '%s' lacks '%s'", why, want);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    expect_error("rules:\n  a:\n    kinds: [x]\n    severity: grave\n", "r.yaml:4: severity");
    expect_error("rules:\n  a:\n    kinds: [x]\n    window_s: 0\n", "r.yaml:4: window_s");
    expect_error("rules:\n  a:\n    kinds: [x]\n    response: [punish]\n", "r.yaml:4: response");
    expect_error("rules:\n  a:\n    scope: device\n", "r.yaml:3: rule a: no kinds");
    expect_error("rules:\n  Bad-Name:\n    kinds: [x]\n", "r.yaml:2: rule name");
    expect_error("rules:\n  a:\n    kinds: [x]\n    colour: red\n", "r.yaml:4: rule a: unknown");
    expect_error("rules:\n  a:\n    kinds: [x]\n    scope: source\n    metric: rate_baseline\n",
                 "needs scope device");
    expect_error("classes:\n  lock: {hours: \"6-22\"}\n", "r.yaml:2: class lock: hours");
    expect_error("rules: [\n", "r.yaml:");
    expect_error("other: 1\n", "r.yaml:1: unknown key");
    expect_error("rules:\n  a:\n    kinds: [x]\n    threshold: 100001\n", "threshold");
}

/* ---- the cursor --------------------------------------------------------------------------- */

static void store_ev(mg_store *s, const char *bearer, const char *kind, const char *src)
{
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.time = 1000;
    snprintf(e.bearer, sizeof(e.bearer), "%s", bearer);
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    snprintf(e.source, sizeof(e.source), "%s", src);
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
}

static void test_cursor(void **state)
{
    (void)state;
    mg_store *s = fresh();
    for (int i = 0; i < 3; i++)
        store_ev(s, "sms", "auth_fail", "+777");
    store_ev(s, "detect", "auth_fail", "+777"); /* ignored: the detector's own */
    mg_detect *d = detector(s, burst_yaml, true);
    size_t n = 0;
    assert_int_equal(mg_detect_poll(d, 2, &n), MG_OK);
    assert_int_equal(n, 2);
    int64_t cur = 0;
    assert_int_equal(mg_store_meta_int(s, "detect_cursor", &cur), MG_OK);
    assert_int_equal(cur, 2);
    assert_int_equal(alerts(s)->n, 1);
    assert_int_equal(mg_detect_poll(d, 0, &n), MG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(mg_store_meta_int(s, "detect_cursor", &cur), MG_OK);
    assert_int_equal(cur, 4);
    alerts_ctx *c = alerts(s);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->a[0].evidence_count, 3); /* the "detect" event did not count */
    assert_int_equal(strncmp(c->a[0].response, "throttle notify: dry run", 24), 0);
    mg_detect_free(d);
    /* a new detector resumes after the cursor */
    d = detector(s, burst_yaml, true);
    assert_int_equal(mg_detect_poll(d, 0, &n), MG_OK);
    assert_int_equal(n, 0);
    store_ev(s, "sms", "auth_fail", "+777");
    assert_int_equal(mg_detect_poll(d, 0, &n), MG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(mg_detect_tick(d, 2000), MG_OK);
    mg_detect_free(d);
    /* an alert left "pending" by a crash gets its responses when the detector starts */
    mg_alert a;
    memset(&a, 0, sizeof(a));
    snprintf(a.rule, sizeof(a.rule), "burst");
    snprintf(a.scope, sizeof(a.scope), "source");
    snprintf(a.source, sizeof(a.source), "+888");
    snprintf(a.severity, sizeof(a.severity), "high");
    snprintf(a.response, sizeof(a.response), "pending: throttle notify");
    assert_int_equal(mg_store_alert_add(s, &a), MG_OK);
    d = detector(s, burst_yaml, true);
    assert_int_equal(mg_store_alert_get(s, a.id, &a), MG_OK);
    assert_string_equal(a.response, "throttle notify: dry run: nothing done");
    mg_detect_free(d);
    mg_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_window_edge),
        cmocka_unit_test(test_aggregate),
        cmocka_unit_test(test_extend),
        cmocka_unit_test(test_unauth_never_acts),
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_off_hours_and_lru),
        cmocka_unit_test(test_yaml_roundtrip),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_cursor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
