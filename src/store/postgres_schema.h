/* The PostgreSQL schema: its numbered migrations and the version it is at.
 * Internal to src/store (postgres.c runs them). */
#ifndef CT_STORE_POSTGRES_SCHEMA_H
#define CT_STORE_POSTGRES_SCHEMA_H

#include "store/postgres_driver.h"

/* Applies the pending migrations, all in the caller's transaction, under a
 * cluster-wide advisory lock (a ct__pg_tx_fn for a CT_PG_TX_WRITE unit of work;
 * arg unused). CT_E_SCHEMA_NEWER when the database is ahead of this program. */
ct_status ct__pg_schema_migrate(struct ct__pg_conn *c, void *arg);
/* The number of applied migrations (a ct__pg_tx_fn; arg: int *, written on CT_OK). */
ct_status ct__pg_schema_version(struct ct__pg_conn *c, void *arg);

#endif
