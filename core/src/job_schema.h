/* The job schema: one row per key, shared by the loader (job_load.c), the
 * writer and comparison (job_save.c) and the reference generator
 * (job_schema.c). Core-private. */
#ifndef PARE_JOB_SCHEMA_H
#define PARE_JOB_SCHEMA_H

#include <stddef.h>

#include "pare/job.h"

enum job_type {
    JT_STR,      /* char * (NULL = unset) */
    JT_INT,      /* long */
    JT_FLOAT,    /* double */
    JT_BOOL,     /* bool */
    JT_ENUM,     /* an enum stored as int; spelled by `choices` */
    JT_STRS,     /* pare_job_strs */
    JT_FLOATS,   /* pare_job_floats */
    JT_INTS,     /* pare_job_ints */
    JT_BOOLS,    /* pare_job_bools */
    JT_ENUMS,    /* pare_job_enums */
    JT_REGIONS,  /* pare_job_regions: a list of [[input names], [output names]] */
    JT_SUB,      /* a nested mapping described by `sub` */
    JT_PAIRS,    /* pare_job_pairs: a list of mappings described by `sub` */
    JT_NAME_INTS /* pare_job_name_ints: a mapping name -> integer (min/max per value) */
};

enum {
    JK_MIN = 1 << 0,        /* value (or each item) >= min */
    JK_MAX = 1 << 1,        /* value (or each item) <= max */
    JK_MIN_EXCL = 1 << 2,   /* with JK_MIN: > min */
    JK_MAX_EXCL = 1 << 3,   /* with JK_MAX: < max */
    JK_SCALAR_OK = 1 << 4,  /* a list key that also takes one scalar */
    JK_REQUIRED = 1 << 5,   /* must be given (entries of `pairs`) */
    JK_INHERIT = 1 << 6,    /* no static default: Global.batch_size when unset */
    JK_RANGE2 = 1 << 7,     /* a list of exactly two items, lo <= hi */
    JK_OPTIONAL = 1 << 8,   /* no default: written only when set */
    JK_COMPAT = 1 << 9      /* read-only spelling of other rows (ACT's optimizer_builder):
                               owns no field, never written, compared or freed */
};

struct job_schema;

typedef struct job_key {
    const char *name;
    const char *alias;            /* another accepted spelling, or NULL */
    enum job_type type;
    size_t off;                   /* offset of the field in the section struct */
    const char *def;              /* default as text, list items comma separated */
    double min, max;
    unsigned flags;
    const char *const *choices;   /* JT_ENUM / JT_ENUMS, NULL-terminated */
    const struct job_schema *sub; /* JT_SUB / JT_PAIRS */
    const char *doc;
} job_key;

typedef struct job_schema {
    const char *name;             /* "QuantPost", "TrainConfig.optimizer" */
    const job_key *keys;
    int n_keys;
    size_t size;                  /* size of the struct the offsets point into */
    int scalar_key;               /* key a bare scalar sets (`optimizer: Adam`), or -1 */
    const struct job_schema *parent; /* non-NULL: offsets point into the parent's struct and
                                        each key stands for the parent key at the same offset */
} job_schema;

typedef struct job_section {
    const char *name;
    const char *alias;            /* Quantization for QuantAware, or NULL */
    size_t off;                   /* offset of the section struct in pare_job */
    const job_schema *schema;     /* NULL: Layers, a name -> ratio mapping */
    const char *doc;
} job_section;

extern const job_section job_sections[];
extern const int job_n_sections;

/* Section lookup by canonical name or alias; NULL when unknown. */
const job_section *job_section_find(const char *name);
/* Key row index by canonical name or alias; -1 when unknown. */
int job_key_find(const job_schema *s, const char *name);
/* Fills every field of a struct described by `s` with its default (the
 * struct must be zeroed or already freed with job_fields_free). PARE_ENOMEM
 * when a default list or string cannot be allocated. */
pare_status job_fields_default(const job_schema *s, void *base);
void job_fields_free(const job_schema *s, void *base);
/* Frees one field (row k at `field`) and leaves it empty. */
void job_field_free(const job_key *k, void *field);
/* Whether the field of row k holds the row's default value. */
int job_field_is_default(const job_key *k, const void *base);
/* The spelled choice for an enum value, or "?" out of range. */
const char *job_choice_name(const job_key *k, int value);
int job_n_choices(const job_key *k);

#define JOB_FIELD(base, k) ((void *)((char *)(base) + (k)->off))
#define JOB_CFIELD(base, k) ((const void *)((const char *)(base) + (k)->off))

#endif
