/* Internal to the SQLite backend: a VFS that keeps a read transaction's WAL
 * read lock after the transaction ends, until someone needs it.
 *
 * Every SQLite read transaction in WAL mode takes a shared lock on one of the
 * WAL index's read-mark bytes and releases it at the end: two fcntl calls,
 * about 12 % of a Get's CPU here (measured by faking them away). Most of the
 * time the next read takes the very same byte again. So the shim does not
 * pass on the release of a read-mark shared lock: the lock stays held for the
 * connection ("sticky"), and the connection's next shared lock on that byte
 * is already there. A sticky lock is really released, before anything else
 * happens, when:
 *   - its connection takes a shared lock on another byte, or unmaps or closes;
 *   - any connection of this process on the same database asks for an
 *     exclusive lock that covers it (setting a read mark, a checkpoint copying
 *     into the database, the writer restarting the WAL, recovery): so in this
 *     process an idle connection never delays anyone.
 * Until then the byte stays locked as if that connection were still reading:
 * another process sees one more reader (SQLite's normal long-reader case: its
 * checkpoints copy less, its writer restarts the WAL later), never a wrong
 * answer, because SQLite takes a read mark's value as settled only while the
 * byte is locked, and it stays locked throughout.
 *
 * Ordering: one mutex covers every shared-memory lock call through the shim
 * and the list of open database files; SQLite's own unix VFS serializes the
 * same calls per database under its own mutex, so this adds no new waiting
 * order (the shim never calls into SQLite while holding it, other than the
 * lock call itself). tests/store's test_wal_bounded (readers, writers and the
 * checkpointer at once; the WAL must still restart) and tests/unit/test_shmlock.c
 * check it. */
#ifndef CT_STORE_SQLITE_SHMLOCK_H
#define CT_STORE_SQLITE_SHMLOCK_H

#include <stdint.h>

/* The shim's VFS name for sqlite3_open_v2, registered (not as the default) on
 * the first call; NULL when it could not be (then open with the default VFS). */
const char *ct__sq_shm_vfs(void);

/* Counters, for tests: shared read locks taken without a system call (the
 * sticky lock was there), and sticky locks released for an exclusive request. */
struct ct__sq_shm_stats {
    uint64_t kept, released_for_exclusive;
};
void ct__sq_shm_stats(struct ct__sq_shm_stats *ret);

#endif
