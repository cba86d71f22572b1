/*
** facts.h: the patient-facts model, its validation, and its read-only
** view for protocol scripts.
**
** One table describes the facts (pw_facts_schema, in facts_schema.c):
** each field's path, kind, range or names, and where it lives in pw_facts.
** Validation, the canonical JSON, pw_facts_describe, the Lua views, the
** JSON Schema (docs/schema/facts.schema.json) and the cohort generator all
** walk that table; adding a field is a member of pw_facts and one entry.
**
** pw_facts_from_lua validates a decoded JSON object (a Lua table, read
** with raw access only, so no metamethod ever runs) into a pw_facts. The
** safety kernel decides on that C copy alone. Protocols see it through
** userdata views that cannot be written and die with their evaluation.
** Unknown and absent are the same: PW_UNKNOWN (-1) or 0-valued enums.
*/
#ifndef PW_FACTS_H
#define PW_FACTS_H

#include <lua.h>
#include <stdint.h>
#include "arena.h"
#include "buf.h"
#include "pathwise.h"

#define PW_UNKNOWN (-1)
#define PW_FACTS_MAX_LIST 64
#define PW_FACTS_MAX_UNKNOWN 32

/* primary.site: colon = colon, side not known; non_colorectal = the
** guideline does not apply */
enum { PW_PRIM_UNKNOWN, PW_PRIM_RECTUM, PW_PRIM_COLON_LEFT, PW_PRIM_COLON_RIGHT, PW_PRIM_COLON,
       PW_PRIM_NON_COLORECTAL };
enum { PW_MOL_UNKNOWN, PW_MOL_WILD_TYPE, PW_MOL_MUTANT };
enum { PW_MSI_UNKNOWN, PW_MSI_HIGH, PW_MSI_MSS };
enum { PW_OUTCOME_UNKNOWN, PW_OUTCOME_PROGRESSION, PW_OUTCOME_ONGOING, PW_OUTCOME_INTOLERANCE };
enum { PW_SURGERY_UNKNOWN, PW_SURGERY_NONE, PW_SURGERY_PLANNED };
enum {
  PW_SITE_BONE = 1, PW_SITE_INGUINAL, PW_SITE_RETROPERITONEAL, PW_SITE_LIVER,
  PW_SITE_LUNG, PW_SITE_PERITONEUM, PW_SITE_BRAIN, PW_SITE_OTHER
};
/* prior_radiation_sites: base site (0 = not recognised) and laterality */
enum {
  PW_RT_PELVIS = 1, PW_RT_GROIN, PW_RT_INGUINAL, PW_RT_SPINE, PW_RT_RETROPERITONEUM, PW_RT_BONE,
  PW_RT_BRAIN, PW_RT_LIVER, PW_RT_LUNG, PW_RT_CHEST, PW_RT_ABDOMEN, PW_RT_OTHER
};
enum { PW_SIDE_UNSPECIFIED, PW_SIDE_LEFT, PW_SIDE_RIGHT, PW_SIDE_BILATERAL };
/* symptom bits */
enum { PW_PSYM_BLEEDING = 1, PW_PSYM_OBSTRUCTION = 2, PW_PSYM_PAIN = 4 };
enum {
  PW_MSYM_PAIN = 1, PW_MSYM_FRACTURE_RISK = 2, PW_MSYM_SKIN_BREAKDOWN = 4,
  PW_MSYM_LYMPHEDEMA = 8, PW_MSYM_OBSTRUCTION = 16, PW_MSYM_NEUROLOGIC = 32
};

/* line is 0 when unknown; spine is 1, 0 or PW_UNKNOWN (only on a bone site) */
typedef struct pw_regimen_fact { const char *name; int line, outcome; } pw_regimen_fact;
typedef struct pw_met_fact { int site, symptoms_known; unsigned symptoms; int spine; } pw_met_fact;
/* One prior radiation site as written (text) and as read: site is a PW_RT_
** value, 0 when not recognised (then it may include the groin). */
typedef struct pw_rt_fact { const char *text; int site, side, recognised; } pw_rt_fact;
typedef struct pw_facts_warning { const char *id, *text; } pw_facts_warning;
typedef struct pw_order_fact { const char *id; uint32_t agents; int action, kind; } pw_order_fact;

typedef struct pw_facts {
  const char *patient_id;
  int ecog;                          /* 0..4 or PW_UNKNOWN */
  int metastatic;                    /* 1, 0, PW_UNKNOWN */
  struct { int site, resected, prior_pelvic_radiation, symptoms_known; unsigned symptoms; } primary;
  int regimens_known, nregimens;
  pw_regimen_fact regimens[PW_FACTS_MAX_LIST];
  struct { int grade, persistent; } neuropathy;
  int kras, nras, braf_v600e, msi;
  int mets_known, nmets;
  pw_met_fact mets[PW_FACTS_MAX_LIST];
  int rt_known, nrt;
  const char *rt_sites[PW_FACTS_MAX_LIST];   /* as written */
  pw_rt_fact rt[PW_FACTS_MAX_LIST];          /* as read; views: facts.prior_radiation */
  int surgery, surgery_days;
  int orders_known, norders;
  pw_order_fact orders[PW_FACTS_MAX_LIST];
  int nunknown;                      /* unknown fields: warnings */
  const char *unknown[PW_FACTS_MAX_UNKNOWN];
  int nwarnings;                     /* other warnings about the facts (e.g. an */
  pw_facts_warning warnings[PW_FACTS_MAX_UNKNOWN];   /* unrecognised radiation site) */
} pw_facts;

/* ---- the one description of the facts ---- */

typedef enum pw_fkind {
  PW_FK_OBJECT,    /* an object of fields (kids); stored in place */
  PW_FK_RECORDS,   /* a list of objects: items of item_size at off, count at count_off */
  PW_FK_INT,       /* int at off, lo..hi; below lo (PW_UNKNOWN, or 0 in a record) is unknown */
  PW_FK_BOOL,      /* int at off: 1, 0 or PW_UNKNOWN */
  PW_FK_ENUM,      /* int at off: 1-based position in names, 0 unknown */
  PW_FK_STRING,    /* const char * at off, NULL unknown */
  PW_FK_SET,       /* a list of names: unsigned bit set at off */
  PW_FK_RT_SITES,  /* prior radiation sites: const char *[] at off, count at count_off */
  PW_FK_ORDERS,    /* proposed orders: pw_order_fact[] at off, count at count_off */
  PW_FK_SURGERY    /* planned_surgery_in_days: surgery state at off, days at count_off */
} pw_fkind;

typedef struct pw_field pw_field;
struct pw_field {
  const char *key;            /* member name, "site" */
  size_t klen;                /* strlen(key) */
  const char *path;           /* "primary.site", "metastases[].site" */
  pw_fkind kind;
  size_t off;                 /* into pw_facts, or into the record for a record's fields */
  int lo, hi;                 /* INT, SURGERY */
  const char *const *names;   /* ENUM, SET */
  int nnames;
  int unknown_name;           /* ENUM: 1-based position of a name meaning unknown, or 0 */
  size_t known_off;           /* SET, RECORDS, RT_SITES, ORDERS: int "present" flag */
  size_t count_off;           /* RECORDS, RT_SITES, ORDERS: int count; SURGERY: int days */
  size_t item_size;           /* RECORDS */
  const char *absent;         /* RECORDS: what describe says of an item not there */
  const pw_field *kids;       /* OBJECT, RECORDS */
  int nkids;
  const char *expected;       /* what an error says was expected */
  const char *doc;            /* one line for the JSON Schema */
  const char *only_key;       /* allowed only when sibling only_key ... */
  int only_value;             /* ... (an ENUM) has this value */
  int derived;                /* read, not written: views and describe only */
};

/* The root object; its kids in canonical order. */
extern const pw_field pw_facts_schema;

/* The field at a schema path ("molecular.kras", "metastases[].site",
** "" for the root), or NULL. */
const pw_field *pw_facts_field(const char *path);

/* The JSON Schema (draft 2020-12) of the facts, as committed in
** docs/schema/facts.schema.json. */
void pw_facts_schema_json(pw_buf *out);

void pw_facts_clear(pw_facts *f);

/* Validate the table at idx into f (strings go to arena a). On error
** returns -1 with "path: expected ..., got ..." in err, or -2 with
** "path: out of memory" when the arena could not grow (not the input's
** fault: the caller reports PW_EMEMORY). Same for the orders below. */
int pw_facts_from_lua(lua_State *L, int idx, pw_facts *f, pw_arena *a,
                      char *err, size_t errlen);

/* Validate a list of order ids at idx into f->orders. */
int pw_facts_orders_from_lua(lua_State *L, int idx, pw_facts *f, pw_arena *a,
                             char *err, size_t errlen);

/* Prior groin radiation: 1 when a site is the groin or inguinal (any
** laterality), else 2 when a site is not recognised (it may include the
** groin), else 0. */
int pw_facts_prior_groin_rt(const pw_facts *f);

/* After lua-cjson decoded the JSON text json[0..len) (which passed the
** gate) into the value at idx: marks each empty table with what it was,
** {} or [] (cjson makes both the same empty table), so that validation can
** refuse an empty object where a list belongs and the reverse. */
void pw_facts_mark_empty(lua_State *L, int idx, const char *json, size_t len);
#define PW_FACTS_EMPTY_OBJECT_MT "pathwise.empty_object"
#define PW_FACTS_EMPTY_ARRAY_MT "pathwise.empty_array"

/* Canonical JSON of the validated facts (fixed key order). */
void pw_facts_canonical(const pw_facts *f, pw_buf *out);

/* Value of a fact path (e.g. "molecular.kras") as display text; "unknown"
** when unknown. Writes into buf. Returns NULL for a path it does not know. */
const char *pw_facts_describe(const pw_facts *f, const char *path, char *buf, size_t n);

/* Views for scripts. pw_facts_open registers the metatable once per state.
** A view stays valid while *gen equals the generation it was made with. */
void pw_facts_open(lua_State *L);
void pw_facts_push_view(lua_State *L, const pw_facts *f, const uint32_t *gen);

/* Names, for output. */
const char *pw_facts_site_name(int site);
const char *pw_facts_mol_name(int v);
const char *pw_facts_msi_name(int v);

#endif
