/* For the C tests that make SQLite files: a temporary directory for them,
 * removed with everything in it (a store also leaves its "-created" marker
 * there). Header-only. */
#ifndef CT_TESTS_LIB_TMPDB_H
#define CT_TESTS_LIB_TMPDB_H

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct tmpdb {
    char dir[PATH_MAX / 2];
    char path[PATH_MAX]; /* dir/name */
};

/* Makes $TMPDIR/ct-TAG-XXXXXX (or under /tmp) and the path of NAME in it. */
static inline bool tmpdb_make(struct tmpdb *t, const char *tag, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/ct-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (!mkdtemp(t->dir))
        return false;
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return true;
}

/* Removes every file of directory dir (a database, its -wal and -shm, any
 * other a test made there), then dir. */
static inline void tmpdb_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        char f[PATH_MAX + NAME_MAX + 2];
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(f, sizeof f, "%s/%s", dir, e->d_name);
            unlink(f);
        }
        closedir(d);
    }
    rmdir(dir);
}

static inline void tmpdb_remove(const struct tmpdb *t)
{
    tmpdb_remove_dir(t->dir);
}

#endif
