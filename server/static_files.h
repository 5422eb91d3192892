/*
 * static_files.h - the files under static/, read once at start and
 * served from memory.
 */
#ifndef BEACON_STATIC_FILES_H
#define BEACON_STATIC_FILES_H

#include <stddef.h>

struct MHD_Response;
struct static_files;

/*
 * Loads the regular files in dir (NULL: none) and in its first-level
 * subdirectories, served as "/sub/name".  A missing directory is not an
 * error: there is simply nothing to serve.
 */
int static_files_load(struct static_files **out, const char *dir,
                      char *err, size_t errlen);

/* The response for url ("/" means "/index.html"), or NULL. */
struct MHD_Response *static_files_find(const struct static_files *sf,
                                       const char *url);

void static_files_free(struct static_files *sf);

#endif
