/* Helpers shared by the benchmarks that start servers (bench_mqtt, bench_est):
 * a monotonic clock, a free loopback port, an X.509 extension by its text. */
#ifndef M2MGUARD_BENCHUTIL_H
#define M2MGUARD_BENCHUTIL_H

#include <stdbool.h>

#include <openssl/x509.h>

/** Monotonic clock in seconds. */
double bench_now(void);
/** A TCP port free on 127.0.0.1 at the time of the call; -1 if none. */
int bench_free_port(void);
/** Adds the extension nid with OpenSSL's text form value (issuer may be x). */
bool bench_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

#endif
