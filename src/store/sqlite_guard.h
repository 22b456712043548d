/* Internal to the SQLite backend: the guard around the database file, which
 * SQLite itself does not give (plain POSIX, no <sqlite3.h>).
 *
 *   - One server per database: `serve` holds an exclusive flock() on the file
 *     for its lifetime; a second server is refused at start-up. (flock locks are
 *     independent of the POSIX record locks SQLite uses.) Admin commands
 *     (apikey, audit, bulk-load) do not take it: they are short and are meant
 *     to run beside a server.
 *   - No silent new database: the first creation of PATH writes PATH-created,
 *     a marker that says a database is expected there. A later start that finds
 *     PATH missing while the marker, or a PATH-wal / PATH-shm / PATH-journal,
 *     is there refuses to start instead of creating an empty database. To start
 *     over on purpose, delete the marker.
 *   - A database file removed or replaced under a running process is noticed:
 *     the guard keeps the file open and compares the inode at PATH with it;
 *     /healthz and every write then fail with 503 and the log says why. */
#ifndef CT_STORE_SQLITE_GUARD_H
#define CT_STORE_SQLITE_GUARD_H

#include <stdbool.h>

#include "util/status.h"

struct ct__sq_guard;

/* Before SQLite opens path. CT_E_STORE when the database is missing where one is
 * expected, CT_E_CONFLICT when exclusive and another process holds the lock
 * (both logged, saying what to do). Creates path (mode 0600) when it is new. */
ct_status ct__sq_guard_open(const char *path, bool exclusive, struct ct__sq_guard **ret_g);
/* CT_OK while path is still the file opened; else CT_E_UNAVAILABLE, logged
 * loudly when it is first noticed and then at most once a minute. */
ct_status ct__sq_guard_check(struct ct__sq_guard *g);
/* Releases the lock and the file: call after every SQLite connection to it is
 * closed (closing a descriptor of a file drops the process's POSIX locks on it).
 * Accepts NULL. */
void ct__sq_guard_close(struct ct__sq_guard *g);

#endif
