/*
 * m2mguard detect — the responder: carries out the responses of an alert.
 * Internal to src/detect (the detector calls it; `m2mguard alerts undo` too).
 *
 * The caller has already filtered the actions with mg_detect_allowed()
 * (detect.h): this module does what it is told, and only refuses a device
 * action when the alert is not authenticated (defence in depth: the same
 * rule checked twice, the second time where the action is carried out).
 *
 * Every action is recorded as one event: bearer "detect", kind
 * "response_<action>" (quarantine, throttle, block, rotate, revoke, notify,
 * undo), device_id/source of the alert, reason "alert N: <what was done>",
 * authenticated false. Failures of one action do not stop the others.
 */
#ifndef M2MGUARD_DETECT_RESPOND_H
#define M2MGUARD_DETECT_RESPOND_H

#include <stddef.h>

#include "m2mguard/detect.h"
#include "m2mguard/store.h"

typedef struct mg_responder mg_responder;

/** Keeps the pointers of cfg (store, ca_dir, notify): they must outlive it.
 *  Opens nothing that may fail later silently: a webhook secret that
 *  cannot be read, a CA that cannot be opened, an MQTT host that does not
 *  resolve fail here, with why. */
MG_MUST_CHECK mg_err mg_responder_new(const mg_detect_cfg *cfg, mg_responder **out, char *why,
                                      size_t cap);
void mg_responder_free(mg_responder *r);

/** Carries out `actions` (MG_RESP_* bits) for the stored alert a (a->id set).
 *  done receives a one-line human summary of what was done and what failed
 *  ("quarantined meter-7; throttled sms +4915... for 600 s; webhook 200"),
 *  which the detector stores as the alert's response. MG_OK when every
 *  action succeeded, MG_ERR_STATE when a device action was refused for
 *  unauthenticated evidence, MG_ERR_STORE when one failed (a store write, a
 *  notification channel, the CA). */
MG_MUST_CHECK mg_err mg_responder_run(mg_responder *r, const mg_alert *a, unsigned actions,
                                      char *done, size_t cap);

/** The operator's undo of an alert's responses: re-activates a device the
 *  alert quarantined (only if it is still quarantined), clears the block of
 *  its source. A rotation or a revocation is not undone (a new key or a
 *  re-enrolment is the way back): done says so. One "response_undo" event. */
MG_MUST_CHECK mg_err mg_responder_undo(mg_responder *r, const mg_alert *a, char *done, size_t cap);

/** The operator's own device actions (the web console, src/console), without
 *  an alert: the key rotation and the certificate revocation exactly as the
 *  responses above carry them out. what (cap octets) receives the one-line
 *  summary; no event is written (the caller records its own). rotate:
 *  MG_ERR_STATE when the device has no SMS keys, MG_ERR_STORE when the store
 *  refused (e.g. the device is not active). revoke: MG_RESP_ERR_IO when the
 *  CA failed, MG_ERR_STORE when the store did. */
MG_MUST_CHECK mg_err mg_responder_rotate(mg_responder *r, const mg_device *d, char *what,
                                         size_t cap);
MG_MUST_CHECK mg_err mg_responder_revoke(mg_responder *r, const mg_device *d, char *what,
                                         size_t cap);

#endif
