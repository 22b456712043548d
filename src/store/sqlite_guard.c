#include "store/sqlite_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/time.h"

#define RELOG_US (60 * 1000000LL)

/* Ordering argument: fd, dev and ino are set at open and never change; `lost`
 * and `last_log_us` (the logging state) are under `lock`, taken by the writer,
 * /healthz and the checkpointer thread. */
struct ct__sq_guard {
    char path[PATH_MAX];
    int fd;
    dev_t dev;
    ino_t ino;
    pthread_mutex_t lock;
    bool lost;
    int64_t last_log_us;
};

static bool exists(const char *path, const char *suffix)
{
    char p[PATH_MAX + 16];
    struct stat st;
    snprintf(p, sizeof p, "%s%s", path, suffix);
    return stat(p, &st) == 0;
}

/* Which sign of a previous database is there, or NULL. */
static const char *leftover(const char *path)
{
    static const char *const suffixes[] = {"-created", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        if (exists(path, suffixes[i]))
            return suffixes[i];
    }
    return NULL;
}

static void write_marker(const char *path)
{
    char p[PATH_MAX + 16], ts[CT_RFC3339_LEN];
    snprintf(p, sizeof p, "%s-created", path);
    ct_rfc3339(ct_now_us(), ts);
    FILE *f = NULL;
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        f = fdopen(fd, "w");
    if (!f) {
        if (fd >= 0)
            close(fd);
        ct_warn("sqlite: cannot write %s: %s (a missing database will not be noticed at "
                "start-up)",
                p, strerror(errno));
        return;
    }
    fprintf(f,
            "cockpit-tokens created the database %s on %s.\n"
            "While this file exists, cockpit-tokens refuses to start if that database is\n"
            "missing, instead of creating an empty one: restore it from a backup. Delete\n"
            "this file only to start over with an empty database.\n",
            path, ts);
    fclose(f);
}

ct_status ct__sq_guard_open(const char *path, bool exclusive, struct ct__sq_guard **ret_g)
{
    struct stat st;
    bool is_new = stat(path, &st) != 0;
    const char *left = is_new ? leftover(path) : NULL;
    if (left) {
        ct_err("sqlite: the database %s is missing, but %s%s is there: it was deleted or not "
               "restored. Refusing to start with an empty database; restore it from a backup "
               "(or delete %s-created and any %s-wal / -shm to start over)",
               path, path, left, path, path);
        return CT_E_STORE;
    }
    /* SQLite maps PATH-shm; one it cannot write would end in SIGBUS, not an error. */
    char shm[PATH_MAX + 8];
    snprintf(shm, sizeof shm, "%s-shm", path);
    if (!is_new && access(shm, F_OK) == 0 && access(shm, R_OK | W_OK) != 0) {
        ct_err("sqlite: %s exists but this process cannot read and write it (%s): fix its owner "
               "or mode, or remove it when no process uses the database",
               shm, strerror(errno));
        return CT_E_STORE;
    }
    struct ct__sq_guard *g = calloc(1, sizeof *g);
    if (!g)
        return CT_E_NOMEM;
    snprintf(g->path, sizeof g->path, "%s", path);
    pthread_mutex_init(&g->lock, NULL);
    /* 0600: the file holds secret hashes; SQLite gives -wal and -shm the same mode. */
    g->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ct_status rc = CT_OK;
    if (g->fd < 0) {
        ct_err("sqlite: cannot open %s: %s", path, strerror(errno));
        rc = CT_E_STORE;
    } else if (exclusive && flock(g->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            ct_err("sqlite: %s is in use by another cockpit-tokens server: one server per "
                   "SQLite database (two would not see each other's changes); stop the other "
                   "one, or use PostgreSQL for several nodes",
                   path);
        else
            ct_err("sqlite: cannot lock %s: %s", path, strerror(errno));
        rc = errno == EWOULDBLOCK ? CT_E_CONFLICT : CT_E_STORE;
    } else if (fstat(g->fd, &st) != 0) {
        rc = CT_E_STORE;
    }
    if (rc != CT_OK) {
        ct__sq_guard_close(g);
        return rc;
    }
    g->dev = st.st_dev;
    g->ino = st.st_ino;
    if (!exists(path, "-created")) /* new, or made before markers existed */
        write_marker(path);
    *ret_g = g;
    return CT_OK;
}

ct_status ct__sq_guard_check(struct ct__sq_guard *g)
{
    struct stat st;
    const char *why = NULL;
    if (stat(g->path, &st) != 0)
        why = errno == ENOENT ? "was removed" : "cannot be examined";
    else if (st.st_dev != g->dev || st.st_ino != g->ino)
        why = "was replaced by another file";
    pthread_mutex_lock(&g->lock);
    int64_t now = ct_mono_us();
    if (why && (!g->lost || now - g->last_log_us >= RELOG_US)) {
        ct_err("sqlite: the database file %s %s while this process had it open: writes are "
               "refused and /healthz fails. This process still holds the original: copy it "
               "now (cp /proc/%d/fd/%d %s.recovered), then stop the server, put it back "
               "and restart",
               g->path, why, (int)getpid(), g->fd, g->path);
        g->last_log_us = now;
    }
    if (!why && g->lost)
        ct_notice("sqlite: the database file %s is back", g->path);
    g->lost = why != NULL;
    pthread_mutex_unlock(&g->lock);
    return why ? CT_E_UNAVAILABLE : CT_OK;
}

void ct__sq_guard_close(struct ct__sq_guard *g)
{
    if (!g)
        return;
    if (g->fd >= 0)
        close(g->fd); /* drops the flock */
    pthread_mutex_destroy(&g->lock);
    free(g);
}
