/*
 * static_files.c - loads the files of the static directory into memory
 * at start, so serving one never touches the disk and a request path can
 * never reach outside the directory (it is only ever compared to names).
 * Files of a first-level subdirectory are served under its name
 * ("/vendor/uPlot.esm.js").
 */
#include "server/static_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <microhttpd.h>

#include "server/log.h"

#define FILES_MAX 64
#define FILE_SIZE_MAX (4 * 1024 * 1024)
#define NAME_MAX_LEN 128

/*
 * The dashboard's pages may load only their own scripts, styles and
 * images (never inline script, so injected markup cannot run), connect
 * only to this server, never be framed (clickjacking) and never send a
 * Referer off the site: an address in a page's URL stays here.
 */
#define STATIC_CSP "default-src 'self'; script-src 'self'; " \
    "style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct static_file {
    char name[NAME_MAX_LEN];        /* "/index.html" */
    struct MHD_Response *response;
};

struct static_files {
    size_t n;
    struct static_file files[FILES_MAX];
};

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".svg", "image/svg+xml" },
    { ".png", "image/png" },
    { ".json", "application/json" },
    { ".txt", "text/plain; charset=utf-8" },
};


static const char *
content_type_for(const char *name)
{
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot != NULL
         && i < sizeof(content_types) / sizeof(content_types[0]); i++) {
        if (strcmp(dot, content_types[i].ext) == 0) {
            return content_types[i].type;
        }
    }
    return "application/octet-stream";
}


static struct MHD_Response *
response_from_file(const char *path, const char *name)
{
    struct MHD_Response *r;
    struct stat st;
    char *data;
    FILE *f;

    f = fopen(path, "rbe");
    if (f == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)
        || st.st_size > FILE_SIZE_MAX) {
        if (f != NULL) {
            fclose(f);
        }
        return NULL;
    }

    data = malloc((size_t) st.st_size + 1);
    if (data == NULL
        || fread(data, 1, (size_t) st.st_size, f) != (size_t) st.st_size) {
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);

    r = MHD_create_response_from_buffer((size_t) st.st_size, data,
                                        MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(data);
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            content_type_for(name));
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy", STATIC_CSP);
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return r;
}


/*
 * Adds the regular files of dir to sf under prefix ("" or "/vendor"),
 * and, while depth > 0, the files of its subdirectories one level further
 * down.  Names too long to keep are skipped, as are dot files.
 */
static void
load_dir(struct static_files *sf, const char *dir, const char *prefix,
         int depth)
{
    struct dirent *de;
    char path[4096];
    struct stat st;
    DIR *d;

    d = opendir(dir);
    if (d == NULL) {
        log_msg(LOG_WARN, "static.missing", "dir=%s err=\"%s\"", dir,
                strerror(errno));
        return;
    }

    while ((de = readdir(d)) != NULL && sf->n < FILES_MAX) {
        struct static_file *file = &sf->files[sf->n];
        int len;

        if (de->d_name[0] == '.'
            || (size_t) snprintf(path, sizeof(path), "%s/%s", dir,
                                 de->d_name) >= sizeof(path)
            || stat(path, &st) != 0) {
            continue;
        }
        len = snprintf(file->name, sizeof(file->name), "%s/%s", prefix,
                       de->d_name);
        if (len < 0 || (size_t) len >= sizeof(file->name)) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0) {
                char sub[NAME_MAX_LEN];

                memcpy(sub, file->name, (size_t) len + 1);
                load_dir(sf, path, sub, depth - 1);
            }
            continue;
        }
        file->response = response_from_file(path, de->d_name);
        if (file->response != NULL) {
            sf->n++;
        }
    }
    closedir(d);
}


int
static_files_load(struct static_files **out, const char *dir, char *err,
                  size_t errlen)
{
    struct static_files *sf;

    *out = sf = calloc(1, sizeof(*sf));
    if (sf == NULL) {
        snprintf(err, errlen, "static: out of memory");
        return -1;
    }
    if (dir == NULL) {
        return 0;
    }

    /* One level of subdirectories: static/vendor/ holds the libraries
     * the build copies in from npm. */
    load_dir(sf, dir, "", 1);
    log_msg(LOG_INFO, "static.loaded", "dir=%s files=%zu", dir, sf->n);
    return 0;
}


struct MHD_Response *
static_files_find(const struct static_files *sf, const char *url)
{
    if (sf == NULL) {
        return NULL;
    }
    if (strcmp(url, "/") == 0) {
        url = "/index.html";
    }
    for (size_t i = 0; i < sf->n; i++) {
        if (strcmp(sf->files[i].name, url) == 0) {
            return sf->files[i].response;
        }
    }
    return NULL;
}


void
static_files_free(struct static_files *sf)
{
    if (sf == NULL) {
        return;
    }
    for (size_t i = 0; i < sf->n; i++) {
        MHD_destroy_response(sf->files[i].response);
    }
    free(sf);
}
