/* Write-combining for the write-ahead log (see sqlite_walbuf.h for why it is safe). */
#include "store/sqlite_walbuf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/sqlite_shmlock.h"
#include "store/sqlite_vfs.h"

#define WALBUF_NAME "ct-walbuf"
#define WALBUF_CAP (1u << 20) /* a batch of ~250 pages per write-out; more is written in parts */
#define WALBUF_PIECE (120u * 1024) /* under the unix VFS's largest write (see flush) */

/* A WAL opened through the shim: the lower VFS's file follows this struct in
 * the same allocation (SQLite allocates szOsFile bytes). Used by one connection,
 * so by one thread at a time (the driver's writer, behind write_lock). */
struct walbuf_file {
    sqlite3_file base;
    sqlite3_file *real;
    unsigned char *buf; /* WALBUF_CAP bytes, allocated on the first write */
    size_t len;         /* bytes pending, to be written at off */
    sqlite3_int64 off;
};

static sqlite3_vfs *real_vfs; /* the VFS below, set once by ct__sq_walbuf_vfs */
static sqlite3_vfs walbuf_vfs;
static const char *walbuf_name;
static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;

static size_t real_offset(void)
{
    return ct__sq_vfs_lower_offset(sizeof(struct walbuf_file));
}

static struct walbuf_file *wal_of(sqlite3_file *p)
{
    return (struct walbuf_file *)p;
}

/* Writes out what is pending, in pieces the unix VFS takes whole: its write
 * masks a length to 17 bits (SQLite itself never writes more at once), so a
 * 128 KiB write would write nothing and report a full disk. The bytes are
 * dropped even on failure: SQLite fails the transaction on the error, and
 * frames past the last commit are ignored by every reader and by recovery. */
static int flush(struct walbuf_file *f)
{
    int rc = SQLITE_OK;
    for (size_t done = 0; done < f->len && rc == SQLITE_OK; done += WALBUF_PIECE) {
        size_t n = f->len - done < WALBUF_PIECE ? f->len - done : WALBUF_PIECE;
        rc =
            f->real->pMethods->xWrite(f->real, f->buf + done, (int)n, f->off + (sqlite3_int64)done);
    }
    f->len = 0;
    return rc;
}

static int wb_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 off)
{
    struct walbuf_file *f = wal_of(p);
    size_t len = (size_t)n;
    if (f->len && off == f->off + (sqlite3_int64)f->len && f->len + len <= WALBUF_CAP) {
        memcpy(f->buf + f->len, data, len);
        f->len += len;
        return SQLITE_OK;
    }
    /* Not an append to the pending run (a WAL restart, a frame rewritten in
     * place) or no room: what is pending goes first, so the order of writes
     * to the file is SQLite's. */
    int rc = flush(f);
    if (rc != SQLITE_OK)
        return rc;
    if (!f->buf)
        f->buf = malloc(WALBUF_CAP);
    if (!f->buf || len > WALBUF_PIECE) /* SQLite writes a frame or a header at a time */
        return f->real->pMethods->xWrite(f->real, data, n, off);
    memcpy(f->buf, data, len);
    f->len = len;
    f->off = off;
    return SQLITE_OK;
}

static int wb_close(sqlite3_file *p)
{
    struct walbuf_file *f = wal_of(p);
    int rc = flush(f);
    free(f->buf);
    f->buf = NULL;
    int rc2 = f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *p, void *data, int n, sqlite3_int64 off)
{
    struct walbuf_file *f = wal_of(p);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, data, n, off);
}

static int wb_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    struct walbuf_file *f = wal_of(p);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wb_sync(sqlite3_file *p, int flags)
{
    struct walbuf_file *f = wal_of(p);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wb_file_size(sqlite3_file *p, sqlite3_int64 *ret_size)
{
    struct walbuf_file *f = wal_of(p);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, ret_size);
}

static int wb_file_control(sqlite3_file *p, int op, void *arg)
{
    struct walbuf_file *f = wal_of(p);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wb_lock(sqlite3_file *p, int level)
{
    return wal_of(p)->real->pMethods->xLock(wal_of(p)->real, level);
}

static int wb_unlock(sqlite3_file *p, int level)
{
    return wal_of(p)->real->pMethods->xUnlock(wal_of(p)->real, level);
}

static int wb_check_reserved(sqlite3_file *p, int *ret_out)
{
    return wal_of(p)->real->pMethods->xCheckReservedLock(wal_of(p)->real, ret_out);
}

static int wb_sector_size(sqlite3_file *p)
{
    return wal_of(p)->real->pMethods->xSectorSize(wal_of(p)->real);
}

static int wb_device_characteristics(sqlite3_file *p)
{
    return wal_of(p)->real->pMethods->xDeviceCharacteristics(wal_of(p)->real);
}

/* Version 1: SQLite maps and shares memory through the database file only,
 * never through a WAL, so a WAL needs none of the later methods. */
static const sqlite3_io_methods walbuf_methods = {
    .iVersion = 1,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
};

/* Any file but a WAL is the lower VFS's file itself, at the start of p (the
 * shim's szOsFile covers it), with its own methods: nothing in between. */
static int wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p, int flags,
                   int *ret_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return real_vfs->xOpen(real_vfs, name, p, flags, ret_flags);
    struct walbuf_file *f = wal_of(p);
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(void *)((char *)p + real_offset());
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, ret_flags);
    /* SQLite closes a file whose open failed only when pMethods is set. */
    f->base.pMethods = f->real->pMethods ? &walbuf_methods : NULL;
    return rc;
}

/* Over the sticky-lock VFS when there is one (sqlite_shmlock.h), else the default. */
static void walbuf_register(void)
{
    real_vfs = ct__sq_vfs_stack(&walbuf_vfs, ct__sq_shm_vfs(), WALBUF_NAME,
                                sizeof(struct walbuf_file), wb_open);
    if (real_vfs)
        walbuf_name = WALBUF_NAME;
}

const char *ct__sq_walbuf_vfs(void)
{
    pthread_once(&walbuf_once, walbuf_register);
    return walbuf_name;
}
