/* yaml_util.c: YAML errors as the engine's ev_error. */
#include "yaml_util.h"

#include <stdio.h>

int ev_fail_yaml(ev_error *err, const ev_yaml_error *yaml_err)
{
    int code;

    switch (yaml_err->code) {
    case EV_YAML_ERR_IO:
        code = EV_ERR_IO;
        break;
    case EV_YAML_ERR_TOO_LARGE:
        code = EV_ERR_FORMAT;
        break;
    case EV_YAML_ERR_NOMEM:
        code = EV_ERR_NOMEM;
        break;
    default:
        code = EV_ERR_INVALID;
        break;
    }
    return ev_fail(err, code, "%s", yaml_err->message);
}

int ev_fail_yaml_doc(ev_error *err, const ev_yaml_doc *doc)
{
    return ev_fail_yaml(err, ev_yaml_doc_error(doc));
}
