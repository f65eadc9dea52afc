/*
 * The reader of `m2mguard device import` (cmd_device.c): CSV or JSON lines,
 * one device a line, every line checked (fields, unique names and MSISDNs in
 * the file) and kept in an imp_state. No store, no output: the command checks
 * the registry and adds the devices. Split out of cmd_device.c so that a
 * fuzzer (tests/fuzz/fuzz_device_import.c) reaches it with a buffer.
 */
#ifndef M2MGUARD_DEVIMPORT_H
#define M2MGUARD_DEVIMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "m2mguard/common.h"
#include "m2mguard/crypto.h" /* mg_alg */

#define IMP_LINE_MAX 1024        /* octets of one input line, newline excluded */
#define IMP_ROWS_MAX 50000000u   /* rows of one file (memory: ~70 octets a row) */
#define IMP_ERRORS_SHOWN 100     /* --continue: lines reported one by one, then a count */

/* One parsed line. The strings live in the arena (offsets). */
typedef struct imp_row {
    uint32_t line;
    uint32_t name, cls, msisdn; /* arena offsets; msisdn "" for IP-only */
    uint8_t tar[3];
    uint8_t alg, len, bearers;
    bool skip; /* --continue: taken by a device of the registry */
} imp_row;

typedef struct imp_state {
    const char *file; /* for messages */
    FILE *err;        /* where messages go; NULL: stderr */
    bool cont;
    imp_row *rows;
    size_t n, cap;
    char *arena;
    size_t an, acap;
    uint32_t *h_name, *h_msisdn; /* open addressing: row index + 1; 0 free */
    size_t hcap;
    size_t bad;
} imp_state;

/* The TAR a new device gets unless told otherwise (device add, device import). */
extern const uint8_t mg_imp_default_tar[3];
/* An algorithm name of --alg / the alg column: aes, aes192, ..., 3des3. */
bool mg_imp_alg_of(const char *s, mg_alg *alg, size_t *len);

/* Reads and checks the whole input (format: 0 by the first octet, 1 CSV,
 * 2 JSON lines) into st (zeroed by the caller; file and cont set). 0 (bad
 * lines counted in st->bad, each reported as FILE:LINE: why), or the exit
 * code (cli.h). Free st with mg_imp_free in any case. */
int mg_imp_read(imp_state *st, FILE *in, int format);
/* The same on len octets in memory (the fuzzer's entry). */
int mg_imp_read_mem(imp_state *st, const char *data, size_t len, int format);
void mg_imp_free(imp_state *st);
/* Reports a bad line (the first IMP_ERRORS_SHOWN with --continue) and counts it; returns 0. */
int mg_imp_bad(imp_state *st, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
