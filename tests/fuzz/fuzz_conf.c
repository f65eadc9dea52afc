/*
 * libFuzzer target: the configuration parser (m2mguard.conf; src/cli/conf.c,
 * mg_conf_parse: the key=value reader, the table of known keys and the check
 * of every value) in both modes: load (stop at the first bad line) and
 * `config check` (report every bad line). Whatever it keeps must be a known
 * key with a value the table accepts, bounded by the entry's arrays.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "workdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mg_workdir w;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 16384) /* CONF_FILE_MAX of workdir.c: the reader's bound */
        return 0;
    static FILE *devnull;
    if (devnull == NULL && getenv("MG_FUZZ_VERBOSE") == NULL) {
        /* the parser's messages go to stderr: away with them. glibc's stderr is
         * a variable; libFuzzer and the sanitizers keep their own stream and fd 2 */
        if ((devnull = fopen("/dev/null", "we")) == NULL)
            abort();
        stderr = devnull;
    }
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    for (int all = 0; all <= 1; all++) {
        memcpy(text, data, size);
        text[size] = '\0';
        unsigned errors = 0;
        int rc = mg_conf_parse(&w, "fuzz.conf", text, all != 0, &errors);
        if ((rc == MG_EXIT_OK) != (errors == 0))
            abort();
        if (rc != MG_EXIT_OK && w.nconf != 0)
            abort();
        if (w.nconf > MG_CONF_MAX)
            abort();
        for (size_t i = 0; i < w.nconf; i++) {
            const mg_conf_entry *e = &w.conf[i];
            if (memchr(e->key, '\0', sizeof(e->key)) == NULL ||
                memchr(e->value, '\0', sizeof(e->value)) == NULL)
                abort();
            const mg_conf_key *k = mg_conf_key_find(e->key);
            char why[160];
            if (k == NULL || !mg_conf_value_ok(k, e->value, why, sizeof(why)))
                abort();
            if (mg_conf_get(&w, e->key, NULL) != e->value || mg_conf_line(&w, e->key) != e->line)
                abort(); /* a key is kept once */
        }
    }
    free(text);
    return 0;
}
