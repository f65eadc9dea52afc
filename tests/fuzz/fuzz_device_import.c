/*
 * libFuzzer target: the reader of `m2mguard device import` (src/cli/devimport.c):
 * CSV with a header line, or JSON lines, one device a line. The operator's
 * file, but a file someone else may have produced: every line must be bounded
 * (IMP_LINE_MAX), and what the reader keeps must be what imp_take checked.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "devimport.h"
#include "m2mguard/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 18) /* many lines are as good as many files */
        return 0;
    if (devnull == NULL && (devnull = fopen("/dev/null", "we")) == NULL)
        abort();
    for (int format = 0; format <= 2; format++) {
        imp_state st;
        memset(&st, 0, sizeof(st));
        st.file = "fuzz";
        st.err = devnull;
        st.cont = (size & 1) != 0;
        int rc = mg_imp_read_mem(&st, (const char *)data, size, format);
        if (rc != 0 && rc != MG_EXIT_REJECT && rc != MG_EXIT_INPUT)
            abort(); /* no memory failure on a quarter of a megabyte */
        /* what the command relies on: every kept row checked, unique, in the arena */
        for (size_t i = 0; i < st.n; i++) {
            const imp_row *r = &st.rows[i];
            if (r->name >= st.an || r->cls >= st.an || r->msisdn >= st.an)
                abort();
            const char *name = st.arena + r->name, *msisdn = st.arena + r->msisdn;
            if (!mg_store_name_valid(name) || !mg_store_class_valid(st.arena + r->cls))
                abort();
            if (msisdn[0] != '\0' && !mg_store_msisdn_valid(msisdn))
                abort();
            if ((r->len != 0) != (msisdn[0] != '\0'))
                abort(); /* keys exactly for the SMS devices, which have an MSISDN */
            if (r->bearers == 0 || r->line == 0)
                abort();
        }
        for (size_t i = 0; i + 1 < st.n && i < 64; i++)
            for (size_t j = i + 1; j < st.n; j++)
                if (strcmp(st.arena + st.rows[i].name, st.arena + st.rows[j].name) == 0)
                    abort();
        mg_imp_free(&st);
    }
    return 0;
}
