/* What the gateway benchmarks share (gwpath.h). */
#include "gwpath.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "m2mguard/crypto.h"
#include "m2mguard/sms.h"

const uint8_t bench_dev_tar[3] = {0x4d, 0x47, 0x01};
uint64_t bench_gw_acks;

double bench_gw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_gw_ack(void *ctx, uint64_t tag, mg_gw_verdict v)
{
    (void)ctx;
    (void)tag;
    if (v == MG_GW_DONE)
        bench_gw_acks++;
}

mg_err bench_gw_submit_none(void *ctx, const char *dest, const uint8_t *ud, size_t len,
                            bool receipt, uint64_t tag)
{
    (void)ctx;
    (void)dest;
    (void)ud;
    (void)len;
    (void)receipt;
    (void)tag;
    return MG_OK;
}

bench_dev *bench_gw_devices(mg_store *s, size_t devices)
{
    bench_dev *dk = calloc(devices, sizeof(*dk));
    if (dk == NULL)
        return NULL;
    for (size_t d = 0; d < devices; d++) {
        mg_device dv;
        memset(&dv, 0, sizeof(dv));
        snprintf(dv.name, sizeof(dv.name), "dev-%zu", d);
        snprintf(dv.msisdn, sizeof(dv.msisdn), "+49151%08u", (unsigned)(d % 100000000u));
        memcpy(dv.tar, bench_dev_tar, 3);
        dv.key_version = 1;
        mg_keyset ks;
        memset(&ks, 0, sizeof(ks));
        ks.version = 1;
        ks.alg = MG_ALG_AES;
        ks.len = 16;
        ks.state = MG_KEY_ACTIVE;
        bool ok = mg_crypto_random(ks.kic, 16) == MG_OK && mg_crypto_random(ks.kid, 16) == MG_OK &&
                  mg_store_device_add(s, &dv) == MG_OK && mg_store_keys_put(s, dv.id, &ks) == MG_OK &&
                  mg_store_keys_activate(s, dv.id, 1) == MG_OK;
        snprintf(dk[d].msisdn, sizeof(dk[d].msisdn), "%s", dv.msisdn);
        ok = ok && mg_key_init(&dk[d].kic, MG_ALG_AES, ks.kic, 16) == MG_OK &&
             mg_key_init(&dk[d].kid, MG_ALG_AES, ks.kid, 16) == MG_OK;
        mg_keyset_wipe(&ks);
        if (!ok) {
            bench_gw_devices_free(dk, devices);
            return NULL;
        }
    }
    return dk;
}

void bench_gw_devices_free(bench_dev *dk, size_t devices)
{
    if (dk == NULL)
        return;
    for (size_t d = 0; d < devices; d++) {
        mg_key_clear(&dk[d].kic);
        mg_key_clear(&dk[d].kid);
    }
    free(dk);
}

bool bench_gw_packets(bench_dev *dk, size_t devices, size_t n, uint8_t (*ud)[140],
                      size_t *udl)
{
    for (size_t i = 0; i < n; i++) {
        size_t d = i % devices;
        char text[64];
        int tl = snprintf(text, sizeof(text), "temp=21.5C;door=locked;seq=%zu", i);
        mg_ota_keys keys;
        mg_sms_keys(&keys, &dk[d].kic, &dk[d].kid, 1);
        uint8_t pkt[MG_SMS_PKT_MAX];
        size_t pl = 0;
        if (mg_sms_seal(MG_SMS_MO, bench_dev_tar, &keys, i / devices + 1, false,
                        (const uint8_t *)text, (size_t)tl, pkt, sizeof(pkt), &pl) != MG_OK ||
            mg_sms_part(pkt, pl, 0, 1, ud[i], 140, &udl[i]) != MG_OK)
            return false;
    }
    return true;
}

mg_gw *bench_gw_new(mg_store *s, mg_store *commit, FILE *out, size_t batch)
{
    mg_gw_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = s;
    cfg.commit_store = commit;
    /* as gateway run (device_index = yes): the index's counter is raised
     * for every message committed; MG_BENCH_NO_INDEX=1: without */
    const char *ni = getenv("MG_BENCH_NO_INDEX");
    cfg.device_index = !(ni != NULL && strcmp(ni, "1") == 0);
    cfg.gateway_number = "+491710000001";
    cfg.group_commit_max = batch;
    cfg.output = out;
    cfg.ack = bench_gw_ack;
    cfg.submit = bench_gw_submit_none;
    return mg_gw_new(&cfg);
}

double bench_gw_inbound(mg_gw *gw, mg_store *s, const bench_dev *dk, size_t devices, size_t n,
                        uint8_t (*ud)[140], const size_t *udl)
{
    double t0 = bench_gw_now();
    for (size_t i = 0; i < n; i++) {
        mg_gw_msg m;
        memset(&m, 0, sizeof(m));
        m.source = dk[i % devices].msisdn;
        m.source_raw = m.source;
        m.sms.udhi = true;
        m.sms.dcs = 0x04;
        m.sms.smpp_dcs = true;
        m.sms.ud = ud[i];
        m.sms.ud_len = udl[i];
        m.tag = i + 1;
        mg_gw_verdict r = mg_gw_inbound(gw, &m);
        if (r != MG_GW_DEFER) {
            fprintf(stderr, "message %zu answered %d: %s\n", i, r, mg_store_errmsg(s));
            return -1;
        }
    }
    if (mg_gw_flush(gw) != MG_OK) {
        fprintf(stderr, "flush: %s\n", mg_store_errmsg(s));
        return -1;
    }
    return bench_gw_now() - t0;
}
