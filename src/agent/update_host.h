/*
 * m2mguard — the reference agent's update host (issue 14, docs/update.md):
 * the device library's A/B updater (mg_upd_*, device.h) on two slot files
 * and a state file in the agent's state directory, driven by the MQTT
 * profile's down/update messages (mqtt_profile.h), answering on up/update.
 * Host side: may allocate, does I/O.
 *
 * State directory:
 *   slot-0.bin, slot-1.bin  the two image slots (the bootloader boots the
 *                           active one; a slot is written only while it is
 *                           inactive, each write fdatasync'ed)
 *   update.state            mg_upd_state_encode bytes (CRC), written to a
 *                           temporary file, fsynced, renamed, directory fsynced
 *   tampered                present after a tamper response: the agent
 *                           refuses to start until re-provisioned
 *
 * The update provisioning file (--update FILE), one "key=value" a line:
 *   vendor=UUID   class=UUID   slot_size=N   [factory_seq=N]
 * The manifest authorities are the signed-command anchors (--anchors).
 *
 * Test hook: M2MGUARD_UPDATE_CRASH=download:N (SIGKILL once N octets are
 * written), verified (after VERIFIED is persisted, before the switch) or
 * switched (after the switch write, before the simulated reboot).
 */
#ifndef M2MGUARD_AGENT_UPDATE_HOST_H
#define M2MGUARD_AGENT_UPDATE_HOST_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2mguard/device.h"

typedef struct mg_uh mg_uh;

/** Publishes p[0..n) on the device's up/update (QoS 1). false: no link (the
 *  host keeps the report and sends it on the next mg_uh_link). */
typedef bool (*mg_uh_send_fn)(void *ctx, const uint8_t *p, size_t n);

/** Opens the update host: reads the provisioning, restores update.state
 *  (a restart in DOWNLOADING is abandoned and reported "interrupted"; in
 *  VERIFIED the switch is completed; in SWITCHING the boot is reported
 *  "ok"), logs the booted slot and its SHA-256. 0, or an exit code (3). */
int mg_uh_open(mg_uh **out, const char *state_dir, const char *prov_path,
               const mg_dev_trust *trust, mg_uh_send_fn send, void *send_ctx);
/** The link is up: sends the reports kept while it was down. */
void mg_uh_link(mg_uh *u);

/** Sends one report text ("update_ok SEQ" / "update_failed REASON") as an
 *  authenticated message; MG_ERR_STATE: no link yet (mg_upd_resume later). */
typedef mg_err (*mg_uh_text_fn)(void *ctx, const char *text, size_t n);

/**
 * The SMS agent's updater (updates over secured SMS, docs/update.md): the
 * same verification, slots and one-write switch as mg_uh_open, with files
 * beside the state file STATE: STATE.slot-0, STATE.slot-1, STATE.update (the
 * mg_upd_state), and STATE.config: after every switch (and at start) the
 * active slot's image is copied there atomically (temporary file, fsync,
 * rename, directory fsync). Reports go to text(text_ctx, ...). prov_path:
 * the --update file (vendor=, class=, slot_size=[, factory_seq=]). 0, or
 * the CLI's exit code (3 bad file or state, 4 internal).
 */
int mg_uh_open_sms(mg_uh **out, const char *state_path, const char *prov_path,
                   const mg_dev_trust *trust, mg_uh_text_fn text, void *text_ctx);
/** The updater (for mg_dev_cfg.upd). */
mg_upd *mg_uh_updater(mg_uh *u);
/** A down/update payload. */
void mg_uh_message(mg_uh *u, const uint8_t *p, size_t n);
void mg_uh_close(mg_uh *u);

/** Tamper response of an IP device without SMS keys (ip.c): after the alarm
 *  went out, overwrites and removes every key and counter file of dir
 *  (key.pem, key.new.pem, cmd.state, update.state), leaves `tampered`.
 *  0 ok, -1 (errno) when a file could not be wiped. */
int mg_uh_tamper_wipe(const char *dir);
/** True when dir holds the `tampered` marker. */
bool mg_uh_tampered(const char *dir);

/** Set (by a SIGUSR1 handler or --tamper) to simulate the enclosure switch:
 *  the SMS and the IP agent run their tamper response (alarm, wipe, stop). */
extern volatile sig_atomic_t mg_agent_tamper_req;

#endif
