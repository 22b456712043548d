/* Stacking a shim VFS over another (see sqlite_vfs.h). */
#include "store/sqlite_vfs.h"

sqlite3_vfs *ct__sq_vfs_stack(sqlite3_vfs *vfs, const char *below, const char *name, size_t header,
                              int (*xopen)(sqlite3_vfs *, sqlite3_filename, sqlite3_file *, int,
                                           int *))
{
    sqlite3_vfs *lower = sqlite3_vfs_find(below);
    if (!lower)
        return NULL;
    *vfs = *lower;
    vfs->zName = name;
    vfs->pNext = NULL;
    vfs->szOsFile = (int)ct__sq_vfs_lower_offset(header) + lower->szOsFile;
    vfs->xOpen = xopen;
    return sqlite3_vfs_register(vfs, 0) == SQLITE_OK ? lower : NULL;
}
