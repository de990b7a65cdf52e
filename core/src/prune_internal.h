/* Private helpers shared by the pruning files (prune_groups.c,
 * prune_apply.c, prune_unstructured.c, sensitivity.c, prune_select.c). */
#ifndef PARE_PRUNE_INTERNAL_H
#define PARE_PRUNE_INTERNAL_H

#include <stdint.h>

#include "pare/graph.h"
#include "pare/tensor.h"

/* splitmix64 step: the seeded randomness of random criteria and masks. */
static inline uint64_t prune_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double prune_uniform(uint64_t *state)
{
    return (double)(prune_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* FNV-1a 64 of bytes, continuing from h (start with 1469598103934665603). */
static inline uint64_t prune_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Initializer value index behind v: v itself, or followed back through
 * Identity nodes; -1 when v is computed otherwise. */
int prune_resolve_init(const pare_graph *g, int v);

/* Layout of `axis` in t: outer * dims[axis] * inner == numel. */
static inline void prune_axis_split(const pare_tensor *t, int axis, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++)
        *outer *= t->dims[d];
    for (int d = axis + 1; d < t->ndim; d++)
        *inner *= t->dims[d];
}

#endif
