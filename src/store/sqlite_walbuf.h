/* Internal to the SQLite backend: a VFS that gathers the writes SQLite makes to a
 * write-ahead log between two syncs into one pwrite.
 *
 * SQLite appends a WAL frame as two writes (its 24-byte header, then the page),
 * so a group-commit batch of N pages costs 2N pwrite calls; measured, that was
 * ~20 calls per create and ~15 % of a create's CPU. Nothing in those writes is
 * durable or visible to another connection before the WAL is synced: with
 * synchronous=FULL (which every connection of this driver sets) SQLite syncs the
 * WAL before it publishes a commit in the shared WAL index, and readers read
 * only published frames. So the shim keeps contiguous WAL writes in a buffer and
 * writes them out, in order, before anything that could observe the file from
 * this handle: a sync, a read, a truncate, a size query, a file control, a
 * close. A failed write-out is returned by that call (SQLite then fails the
 * transaction, as if the write itself had failed). Files other than WALs, and
 * every other method, go straight to the VFS below it (the sticky-lock one,
 * sqlite_shmlock.h). Only the writer uses it. */
#ifndef CT_STORE_SQLITE_WALBUF_H
#define CT_STORE_SQLITE_WALBUF_H

/* The shim's VFS name for sqlite3_open_v2, registered (not as the default) on
 * the first call; NULL when it could not be (then open with the default VFS). */
const char *ct__sq_walbuf_vfs(void);

#endif
