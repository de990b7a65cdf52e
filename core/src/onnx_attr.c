/* ONNX AttributeProto <-> pare_attr.
 *
 * Modelled kinds (FLOAT, INT, STRING, TENSOR, FLOATS, INTS, STRINGS) are
 * decoded into pare_attr fields. Everything else (GRAPH, TENSORS, GRAPHS,
 * SPARSE_TENSOR(S), TYPE_PROTO(S), unknown kinds, ref_attr_name) keeps its
 * serialized AttributeProto in opaque and is written back verbatim. A
 * modelled attribute the fields cannot hold exactly (a doc_string, unknown
 * fields, a string tensor, strings with NUL bytes) keeps both: its decoded
 * value and opaque; on save the opaque bytes are used while the decoded value
 * is unchanged, and the decoded value once someone edited it. */
#include <limits.h>
#include <string.h>

#include "onnx_io.h"
#include "pare/alloc.h"

static bool is_modelled(int type)
{
    return (type >= PARE_ATTR_FLOAT && type <= PARE_ATTR_TENSOR) ||
           (type >= PARE_ATTR_FLOATS && type <= PARE_ATTR_STRINGS);
}

/* Decodes the modelled value of ap into a (name and type already set).
 * *lossy: the decoded form misses something. EUNSUPPORTED from a tensor is
 * turned into lossy with a->t == NULL. */
static pare_status decode_value(const Onnx__AttributeProto *ap, pare_attr *a, bool *lossy,
                                const char *where, pare_error *err)
{
    onnx_tensor_opts topts = { NULL, false };
    pare_status rc = PARE_OK;

    switch (a->type) {
    case PARE_ATTR_FLOAT:
        a->f = ap->f;
        break;
    case PARE_ATTR_INT:
        a->i = ap->i;
        break;
    case PARE_ATTR_STRING:
        a->s = pare_alloc(ap->s.len + 1);
        if (!a->s)
            return pare_fail(err, PARE_ENOMEM, where, "out of memory loading attribute '%s'", a->name);
        if (ap->s.len)
            memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = '\0';
        a->s_len = ap->s.len;
        break;
    case PARE_ATTR_TENSOR:
        if (!ap->t) {
            *lossy = true;
            break;
        }
        rc = onnx_tensor_from_proto(ap->t, &topts, &a->t, where, err);
        if (rc == PARE_EUNSUPPORTED) {
            *lossy = true;
            rc = PARE_OK;
        } else if (rc != PARE_OK) {
            pare_error_prefix(err, "attribute '%s': ", a->name);
        } else if ((ap->t->name && ap->t->name[0]) || (ap->t->doc_string && ap->t->doc_string[0]) ||
                   ap->t->segment || ap->t->base.n_unknown_fields) {
            *lossy = true;
        }
        break;
    case PARE_ATTR_FLOATS:
        if (ap->n_floats > INT_MAX)
            return pare_fail(err, PARE_EINPUT, where, "attribute '%s' has too many values", a->name);
        a->n = (int)ap->n_floats;
        a->floats = pare_alloc((ap->n_floats ? ap->n_floats : 1) * sizeof(float));
        if (!a->floats)
            return pare_fail(err, PARE_ENOMEM, where, "out of memory loading attribute '%s'", a->name);
        if (ap->n_floats)
            memcpy(a->floats, ap->floats, ap->n_floats * sizeof(float));
        break;
    case PARE_ATTR_INTS:
        if (ap->n_ints > INT_MAX)
            return pare_fail(err, PARE_EINPUT, where, "attribute '%s' has too many values", a->name);
        a->n = (int)ap->n_ints;
        a->ints = pare_alloc((ap->n_ints ? ap->n_ints : 1) * sizeof(int64_t));
        if (!a->ints)
            return pare_fail(err, PARE_ENOMEM, where, "out of memory loading attribute '%s'", a->name);
        if (ap->n_ints)
            memcpy(a->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        break;
    case PARE_ATTR_STRINGS:
        if (ap->n_strings > INT_MAX)
            return pare_fail(err, PARE_EINPUT, where, "attribute '%s' has too many values", a->name);
        a->strings = pare_calloc(ap->n_strings ? ap->n_strings : 1, sizeof(char *));
        if (!a->strings)
            return pare_fail(err, PARE_ENOMEM, where, "out of memory loading attribute '%s'", a->name);
        a->n = (int)ap->n_strings;
        for (size_t k = 0; k < ap->n_strings; k++) {
            const ProtobufCBinaryData *s = &ap->strings[k];
            a->strings[k] = pare_alloc(s->len + 1);
            if (!a->strings[k])
                return pare_fail(err, PARE_ENOMEM, where, "out of memory loading attribute '%s'",
                                 a->name);
            if (s->len)
                memcpy(a->strings[k], s->data, s->len);
            a->strings[k][s->len] = '\0';
            if (s->len && memchr(s->data, 0, s->len))
                *lossy = true;
        }
        break;
    default:
        break;
    }
    return rc;
}

/* Builds the AttributeProto of a modelled attribute (no doc_string, no
 * ref_attr_name); borrows a's arrays. */
static pare_status build_modelled(const pare_attr *a, onnx_arena *ar, Onnx__AttributeProto **out)
{
    Onnx__AttributeProto *ap = onnx_arena_alloc(ar, sizeof *ap);
    pare_status rc = PARE_OK;

    *out = NULL;
    if (!ap)
        return PARE_ENOMEM;
    onnx__attribute_proto__init(ap);
    ap->name = a->name;
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case PARE_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case PARE_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case PARE_ATTR_STRING:
        ap->has_s = 1;
        ap->s.len = a->s ? a->s_len : 0;
        ap->s.data = (uint8_t *)a->s;
        break;
    case PARE_ATTR_TENSOR:
        if (!a->t)
            return PARE_EINTERNAL;
        ap->t = onnx_arena_alloc(ar, sizeof *ap->t);
        if (!ap->t)
            return PARE_ENOMEM;
        onnx__tensor_proto__init(ap->t);
        rc = onnx_tensor_to_proto(a->t, ar, ap->t);
        break;
    case PARE_ATTR_FLOATS:
        ap->n_floats = a->floats ? (size_t)a->n : 0;
        ap->floats = a->floats;
        break;
    case PARE_ATTR_INTS:
        ap->n_ints = a->ints ? (size_t)a->n : 0;
        ap->ints = a->ints;
        break;
    case PARE_ATTR_STRINGS:
        ap->n_strings = a->strings ? (size_t)a->n : 0;
        if (ap->n_strings) {
            ap->strings = onnx_arena_alloc(ar, ap->n_strings * sizeof *ap->strings);
            if (!ap->strings)
                return PARE_ENOMEM;
            for (int k = 0; k < a->n; k++) {
                ap->strings[k].data = (uint8_t *)a->strings[k];
                ap->strings[k].len = a->strings[k] ? strlen(a->strings[k]) : 0;
            }
        }
        break;
    default:
        return PARE_EINTERNAL;
    }
    if (rc == PARE_OK)
        *out = ap;
    return rc;
}

/* true when the modelled form of a packs exactly as ap (tensor compared
 * apart: its data encoding may differ without loss). */
static bool same_as_proto(const Onnx__AttributeProto *ap, const pare_attr *a, bool *oom)
{
    Onnx__AttributeProto orig = *ap, *built = NULL;
    onnx_arena ar = { 0 };
    pare_status rc;
    bool same = false;

    if (a->type == PARE_ATTR_TENSOR) {
        /* Compare everything but the tensor; its loss is judged by decode_value. */
        pare_attr shallow = *a;
        shallow.t = NULL;
        shallow.type = PARE_ATTR_FLOAT; /* a kind with no payload, so only the name and metadata compare */
        orig.t = NULL;
        rc = build_modelled(&shallow, &ar, &built);
        if (rc == PARE_OK) {
            built->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
            built->has_f = 0;
        }
    } else {
        rc = build_modelled(a, &ar, &built);
    }
    if (rc == PARE_ENOMEM)
        *oom = true;
    else if (rc == PARE_OK)
        same = onnx_same_packed(&orig.base, &built->base, oom);
    onnx_arena_fini(&ar);
    return same;
}

pare_status onnx_attr_from_proto(const Onnx__AttributeProto *ap, pare_attr *a,
                                 const char *where, pare_error *err)
{
    pare_status rc = PARE_OK;
    bool lossy = false, oom = false;

    memset(a, 0, sizeof *a);
    if (!ap->name || !ap->name[0])
        return pare_fail(err, PARE_EINPUT, where, "attribute has no name");
    a->name = pare_strdup(ap->name);
    if (!a->name)
        return pare_fail(err, PARE_ENOMEM, where, "out of memory loading attribute '%s'", ap->name);
    a->type = ap->has_type ? (int)ap->type : PARE_ATTR_UNDEFINED;
    if (is_modelled(a->type) && !ap->ref_attr_name) {
        rc = decode_value(ap, a, &lossy, where, err);
        if (rc == PARE_OK && !lossy && !same_as_proto(ap, a, &oom))
            lossy = true;
        if (rc == PARE_OK && oom)
            rc = pare_fail(err, PARE_ENOMEM, where, "out of memory loading attribute '%s'", a->name);
    } else {
        lossy = true;
    }
    if (rc == PARE_OK && lossy && onnx_pack(&ap->base, &a->opaque, &a->opaque_len) != PARE_OK)
        rc = pare_fail(err, PARE_ENOMEM, where, "out of memory loading attribute '%s'", a->name);
    if (rc != PARE_OK)
        pare_attr_fini(a);
    return rc;
}

static bool same_tensor(const pare_tensor *x, const pare_tensor *y)
{
    if (!x || !y)
        return x == y;
    if (x->dtype != y->dtype || !pare_tensor_same_shape(x, y))
        return false;
    if (!x->data || !y->data)
        return x->data == y->data;
    return !memcmp(x->data, y->data, pare_tensor_nbytes(x));
}

/* Deep equality of two attribute values of the same modelled kind. */
static bool same_value(const pare_attr *x, const pare_attr *y)
{
    if (x->type != y->type)
        return false;
    switch (x->type) {
    case PARE_ATTR_FLOAT: return !memcmp(&x->f, &y->f, sizeof x->f);
    case PARE_ATTR_INT: return x->i == y->i;
    case PARE_ATTR_STRING:
        return x->s_len == y->s_len && (!x->s_len || !memcmp(x->s, y->s, x->s_len));
    case PARE_ATTR_TENSOR: return same_tensor(x->t, y->t);
    case PARE_ATTR_FLOATS:
        return x->n == y->n && (!x->n || !memcmp(x->floats, y->floats, (size_t)x->n * sizeof(float)));
    case PARE_ATTR_INTS:
        return x->n == y->n && (!x->n || !memcmp(x->ints, y->ints, (size_t)x->n * sizeof(int64_t)));
    case PARE_ATTR_STRINGS:
        if (x->n != y->n)
            return false;
        for (int k = 0; k < x->n; k++)
            if (strcmp(x->strings[k] ? x->strings[k] : "", y->strings[k] ? y->strings[k] : ""))
                return false;
        return true;
    default:
        return false;
    }
}

pare_status onnx_attr_to_proto(const pare_attr *a, onnx_arena *ar, onnx_alloc *alloc,
                               Onnx__AttributeProto **out, ProtobufCMessage **unpacked)
{
    Onnx__AttributeProto *orig;
    pare_attr decoded;
    pare_status rc;
    bool lossy = false;

    *out = NULL;
    *unpacked = NULL;
    if (!a->opaque)
        return is_modelled(a->type) ? build_modelled(a, ar, out) : PARE_EINTERNAL;
    orig = onnx__attribute_proto__unpack(&alloc->pc, a->opaque_len, a->opaque);
    if (!orig)
        return alloc->failed ? PARE_ENOMEM : PARE_EINTERNAL;
    *unpacked = &orig->base;
    if (!is_modelled(a->type) || orig->ref_attr_name || !orig->has_type ||
        (int)orig->type != a->type) {
        *out = orig;
        return PARE_OK;
    }
    /* Modelled kind kept for its extras: verbatim unless the value changed. */
    memset(&decoded, 0, sizeof decoded);
    decoded.name = a->name;
    decoded.type = a->type;
    rc = decode_value(orig, &decoded, &lossy, a->name, NULL);
    decoded.name = NULL;
    if (rc == PARE_OK && (!decoded.t && a->type == PARE_ATTR_TENSOR ? true : same_value(&decoded, a)))
        *out = orig;
    pare_attr_fini(&decoded);
    if (rc == PARE_ENOMEM)
        return rc;
    if (*out)
        return PARE_OK;
    return build_modelled(a, ar, out);
}
