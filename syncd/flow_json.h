/* Flow model -> JSON for the control socket. */
#ifndef HAFW_FLOW_JSON_H
#define HAFW_FLOW_JSON_H

#include "flow.h"

struct json_object;

struct json_object *flow_json(const struct hafw_flow *f);
struct json_object *exp_json(const struct hafw_exp *e);
struct json_object *tuple_json(const struct hafw_tuple *t);

#endif
