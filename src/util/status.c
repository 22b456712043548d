#include "util/status.h"

struct status_row {
    unsigned http;
    const char *type;
    const char *message;
    const char *name;
};

static const struct status_row rows[] = {
#define CT_STATUS_ROW(name, http, type, msg) {http, type, msg, #name},
    CT_STATUS_TABLE(CT_STATUS_ROW)
#undef CT_STATUS_ROW
};

static const struct status_row *row(ct_status st)
{
    if ((unsigned)st >= CT_STATUS_COUNT_)
        return &rows[CT_E_INTERNAL];
    return &rows[st];
}

unsigned ct_status_http(ct_status st)
{
    return row(st)->http;
}

const char *ct_status_type(ct_status st)
{
    return row(st)->type;
}

const char *ct_status_message(ct_status st)
{
    return row(st)->message;
}

const char *ct_status_name(ct_status st)
{
    return row(st)->name;
}
