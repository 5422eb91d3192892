/*
 * store_names.c - the names of fetch classes and call-list reasons.
 *
 * These names are part of the interface: the API shows them, the rules
 * file uses the class names, the call list is filtered by reason name,
 * and the database stores the class names (a CHECK in the schema of
 * store_sqlite.c lists the same six).  Never rename one.
 */
#include "store/store.h"

#include <string.h>

static const char *const class_names[STORE_N_CLASSES] = {
    [STORE_HUMAN] = "human",
    [STORE_PROXY] = "proxy",
    [STORE_PRIVACY_PREFETCH] = "privacy_prefetch",
    [STORE_SCANNER] = "scanner",
    [STORE_INTERNAL] = "internal",
    [STORE_HEAD_PROBE] = "head_probe",
};

static const char *const reason_names[STORE_N_REASONS] = {
    [STORE_NEVER_FETCHED] = "never_fetched",
    [STORE_MACHINE_ONLY] = "machine_only",
    [STORE_OPENED_NOTHING_RECENT] = "opened_nothing_recent",
};


/* The index of s in names[0..n), compared exactly, or -1. */
static int
find_name(const char *const *names, int n, const char *s)
{
    if (s == NULL) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            return i;
        }
    }
    return -1;
}


const char *
store_class_name(int cls)
{
    if (cls < 0 || cls >= STORE_N_CLASSES) {
        return NULL;
    }
    return class_names[cls];
}


int
store_class_parse(const char *s)
{
    return find_name(class_names, STORE_N_CLASSES, s);
}


const char *
store_reason_name(int reason)
{
    if (reason < 0 || reason >= STORE_N_REASONS) {
        return NULL;
    }
    return reason_names[reason];
}


int
store_reason_parse(const char *s)
{
    return find_name(reason_names, STORE_N_REASONS, s);
}
