/* The console's static files, embedded at build time (embed.cmake). */
#ifndef M2MGUARD_CONSOLE_ASSETS_H
#define M2MGUARD_CONSOLE_ASSETS_H
#include <stddef.h>

typedef struct mg_asset {
    const char *name;          /**< file name, e.g. "app.js" */
    const unsigned char *data; /**< its octets (NUL-terminated, the NUL not counted) */
    size_t len;
} mg_asset;

extern const mg_asset mg_console_assets[]; /**< ends with a NULL name */
extern const size_t mg_console_n_assets;

#endif
