/* Internal to the SQLite backend: stacking a shim VFS over another, as the
 * sticky-lock VFS (sqlite_shmlock.h) and the writer's WAL write-combining VFS
 * (sqlite_walbuf.h) do. Each file SQLite allocates for a shim holds the shim's
 * own struct, then (aligned) the lower VFS's file. */
#ifndef CT_STORE_SQLITE_VFS_H
#define CT_STORE_SQLITE_VFS_H

#include <stddef.h>

#include <sqlite3.h>

/* Where the lower VFS's file starts in a shim's file whose own struct is size bytes. */
static inline size_t ct__sq_vfs_lower_offset(size_t size)
{
    return (size + 15) & ~(size_t)15;
}

/* Makes *vfs a copy of the VFS named below (NULL: the default) with its own name,
 * room for a struct of header bytes before the lower file, and xopen; registers
 * it, not as the default. Returns the lower VFS, or NULL (nothing registered). */
sqlite3_vfs *ct__sq_vfs_stack(sqlite3_vfs *vfs, const char *below, const char *name, size_t header,
                              int (*xopen)(sqlite3_vfs *, sqlite3_filename, sqlite3_file *, int,
                                           int *));

#endif
