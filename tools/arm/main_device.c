/*
 * Cortex-M0+ size probe of the device library (tools/arm-size.sh): a
 * program that calls the public API of device.h with callback stubs, so that
 * --gc-sections keeps it. Not a firmware: only linked, never run. Its own
 * code (and the callbacks, which are the application's) is excluded from the
 * figures. tools/arm-size.sh also generates keep_device.c, which takes the
 * address of every other public function of include/m2mguard/device.h.
 */
#include "m2mguard/device.h"

volatile int probe_sink;

static mg_err persist(void *ctx, const mg_dev_state *st)
{
    (void)ctx;
    probe_sink = (int)st->cntr_in;
    return MG_OK;
}

static mg_err send_sms(void *ctx, const uint8_t *ud, size_t len)
{
    (void)ctx;
    probe_sink = ud[0] + (int)len;
    return MG_OK;
}

static uint8_t execute(void *ctx, const uint8_t *cmd, size_t len, uint64_t cntr)
{
    (void)ctx;
    probe_sink = cmd[0] + (int)len + (int)cntr;
    return MG_POR_OK;
}

static void event(void *ctx, mg_dev_event kind, const char *reason)
{
    (void)ctx;
    probe_sink = (int)kind + reason[0];
}

static uint32_t now(void *ctx)
{
    (void)ctx;
    return (uint32_t)probe_sink;
}

static uint64_t now_s(void *ctx)
{
    (void)ctx;
    return (uint64_t)probe_sink;
}

static mg_dev dev;
static mg_dev_trust trust;
static mg_dev_sigpol pol;
static uint8_t rx[140];
static mg_upd upd; /* updates over secured SMS (issue 14) */

int main(void)
{
    static const uint8_t key[16] = {0};
    mg_dev_cfg cfg = {{1, 2, 3}, MG_ALG_AES, 1, key, key, 16, 30000, "door-1", &trust, &pol, &upd};
    mg_dev_cb cb = {0, persist, send_sms, execute, event, now, now_s};
    mg_sms_in in = {true, 0, 4, false, rx, (size_t)probe_sink, 0};
    int acc = mg_dev_init(&dev, &cfg, &cb, 0);
    acc += (int)mg_dev_receive(&dev, &in, 0);
    acc += mg_dev_telemetry(&dev, rx, (size_t)probe_sink, true, 0);
    acc += mg_dev_resume(&dev);
    /* the signed-command check as the IP agent calls it (one implementation) */
    mg_dev_signed sc;
    acc += mg_dev_signed_check(&trust, &pol, "door-1", rx, (size_t)probe_sink, (uint64_t)acc, &sc,
                               0, 0);
    probe_sink = acc;
    return 0;
}
