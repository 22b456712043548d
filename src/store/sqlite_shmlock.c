/* Sticky WAL read locks (see sqlite_shmlock.h for why they are safe). */
#include "store/sqlite_shmlock.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store/sqlite_vfs.h"

#define SHM_NAME "ct-shm"
/* The WAL index's lock bytes (SQLite's file format, walformat.html): 0 write,
 * 1 checkpoint, 2 recover, 3..7 the five read marks. */
#define READ_MARK_0 3
#define N_LOCKS 8

/* A main database file opened through the shim: the default VFS's file follows
 * this struct in the same allocation. */
struct shm_file {
    sqlite3_file base;
    sqlite3_file *real;
    dev_t dev;
    ino_t ino;
    bool plain;            /* no sticky locks (identity unknown) */
    unsigned sticky;       /* read-mark bytes locked shared for a finished read */
    struct shm_file *next; /* every open database file, under lock */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shm_vfs;
static const char *shm_name;
static pthread_once_t shm_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct shm_file *files; /* under lock */
static uint64_t n_kept, n_released;

static size_t real_offset(void)
{
    return ct__sq_vfs_lower_offset(sizeof(struct shm_file));
}

static struct shm_file *sf(sqlite3_file *p)
{
    return (struct shm_file *)p;
}

#define REAL(p) (sf(p)->real)
#define FWD(p, method, ...) (REAL(p)->pMethods->method(REAL(p), __VA_ARGS__))

/* Releases f's sticky locks in mask, for real. Under lock. */
static void release(struct shm_file *f, unsigned mask)
{
    unsigned m = f->sticky & mask;
    for (int i = READ_MARK_0; m && i < N_LOCKS; i++)
        if (m & (1u << i)) {
            (void)f->real->pMethods->xShmLock(f->real, i, 1, SQLITE_SHM_UNLOCK | SQLITE_SHM_SHARED);
            m &= ~(1u << i);
        }
    f->sticky &= ~mask;
}

static int s_shm_lock(sqlite3_file *p, int ofst, int n, int flags)
{
    struct shm_file *f = sf(p);
    bool read_mark = !f->plain && n == 1 && ofst >= READ_MARK_0 && ofst < N_LOCKS;
    unsigned bit = read_mark ? 1u << ofst : 0;
    int rc;
    pthread_mutex_lock(&lock);
    if (read_mark && flags == (SQLITE_SHM_LOCK | SQLITE_SHM_SHARED) && (f->sticky & bit)) {
        f->sticky &= ~bit; /* held all along: the read owns it again */
        n_kept++;
        rc = SQLITE_OK;
    } else if (read_mark && flags == (SQLITE_SHM_UNLOCK | SQLITE_SHM_SHARED)) {
        f->sticky |= bit; /* kept: the next read most likely takes it again */
        rc = SQLITE_OK;
    } else {
        if (flags == (SQLITE_SHM_LOCK | SQLITE_SHM_SHARED)) {
            release(f, ~0u); /* another byte: one sticky lock per connection */
        } else if (flags & SQLITE_SHM_EXCLUSIVE && flags & SQLITE_SHM_LOCK) {
            unsigned mask = ((1u << n) - 1) << ofst;
            for (struct shm_file *g = files; g; g = g->next)
                if (g->dev == f->dev && g->ino == f->ino && (g->sticky & mask)) {
                    release(g, mask);
                    n_released++;
                }
        }
        rc = FWD(p, xShmLock, ofst, n, flags);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int s_shm_unmap(sqlite3_file *p, int delete_flag)
{
    pthread_mutex_lock(&lock);
    release(sf(p), ~0u);
    int rc = FWD(p, xShmUnmap, delete_flag);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int s_close(sqlite3_file *p)
{
    struct shm_file *f = sf(p);
    pthread_mutex_lock(&lock);
    release(f, ~0u);
    for (struct shm_file **pp = &files; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    pthread_mutex_unlock(&lock);
    return f->real->pMethods->xClose(f->real);
}

static int s_read(sqlite3_file *p, void *data, int n, sqlite3_int64 off)
{
    return FWD(p, xRead, data, n, off);
}
static int s_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 off)
{
    return FWD(p, xWrite, data, n, off);
}
static int s_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    return FWD(p, xTruncate, size);
}
static int s_sync(sqlite3_file *p, int flags)
{
    return FWD(p, xSync, flags);
}
static int s_file_size(sqlite3_file *p, sqlite3_int64 *ret)
{
    return FWD(p, xFileSize, ret);
}
static int s_lock(sqlite3_file *p, int level)
{
    return FWD(p, xLock, level);
}
static int s_unlock(sqlite3_file *p, int level)
{
    return FWD(p, xUnlock, level);
}
static int s_check_reserved(sqlite3_file *p, int *ret)
{
    return FWD(p, xCheckReservedLock, ret);
}
static int s_file_control(sqlite3_file *p, int op, void *arg)
{
    return FWD(p, xFileControl, op, arg);
}
static int s_sector_size(sqlite3_file *p)
{
    return REAL(p)->pMethods->xSectorSize(REAL(p));
}
static int s_device_characteristics(sqlite3_file *p)
{
    return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p));
}
static int s_shm_map(sqlite3_file *p, int page, int size, int extend, void volatile **ret)
{
    return FWD(p, xShmMap, page, size, extend, ret);
}
static void s_shm_barrier(sqlite3_file *p)
{
    REAL(p)->pMethods->xShmBarrier(REAL(p));
}
static int s_fetch(sqlite3_file *p, sqlite3_int64 off, int n, void **ret)
{
    return FWD(p, xFetch, off, n, ret);
}
static int s_unfetch(sqlite3_file *p, sqlite3_int64 off, void *page)
{
    return FWD(p, xUnfetch, off, page);
}

/* The real file's methods are version 3 (the unix VFS's); a file with fewer
 * (no shared memory) goes through this one-version table. */
#define METHODS(v)                                                                                 \
    {                                                                                              \
        .iVersion = (v), .xClose = s_close, .xRead = s_read, .xWrite = s_write,                    \
        .xTruncate = s_truncate, .xSync = s_sync, .xFileSize = s_file_size, .xLock = s_lock,       \
        .xUnlock = s_unlock, .xCheckReservedLock = s_check_reserved,                               \
        .xFileControl = s_file_control, .xSectorSize = s_sector_size,                              \
        .xDeviceCharacteristics = s_device_characteristics,                                        \
        .xShmMap = (v) >= 2 ? s_shm_map : NULL, .xShmLock = (v) >= 2 ? s_shm_lock : NULL,          \
        .xShmBarrier = (v) >= 2 ? s_shm_barrier : NULL,                                            \
        .xShmUnmap = (v) >= 2 ? s_shm_unmap : NULL, .xFetch = (v) >= 3 ? s_fetch : NULL,           \
        .xUnfetch = (v) >= 3 ? s_unfetch : NULL,                                                   \
    }
static const sqlite3_io_methods methods_v1 = METHODS(1), methods_v3 = METHODS(3);

/* Any file but a main database is the default VFS's file itself, at the start
 * of p, with its own methods: nothing in between. */
static int s_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p, int flags,
                  int *ret_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_MAIN_DB) || !name)
        return real_vfs->xOpen(real_vfs, name, p, flags, ret_flags);
    struct shm_file *f = sf(p);
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(void *)((char *)p + real_offset());
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, ret_flags);
    if (!f->real->pMethods)
        return rc; /* SQLite closes a file whose open failed only when pMethods is set */
    struct stat st;
    memset(&st, 0, sizeof st);
    /* Without the file's identity, no sticky locks: its exclusive requests could
     * not find the other connections on the same database. */
    f->plain = stat(name, &st) != 0;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    pthread_mutex_lock(&lock);
    f->next = files;
    files = f;
    pthread_mutex_unlock(&lock);
    f->base.pMethods = f->real->pMethods->iVersion >= 3 ? &methods_v3 : &methods_v1;
    return rc;
}

static void shm_register(void)
{
    real_vfs = ct__sq_vfs_stack(&shm_vfs, NULL, SHM_NAME, sizeof(struct shm_file), s_open);
    if (real_vfs)
        shm_name = SHM_NAME;
}

const char *ct__sq_shm_vfs(void)
{
    pthread_once(&shm_once, shm_register);
    return shm_name;
}

void ct__sq_shm_stats(struct ct__sq_shm_stats *ret)
{
    pthread_mutex_lock(&lock);
    ret->kept = n_kept;
    ret->released_for_exclusive = n_released;
    pthread_mutex_unlock(&lock);
}
