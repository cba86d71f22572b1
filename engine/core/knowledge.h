/*
** knowledge.h: constant drug, regimen and action tables.
**
** Every id a protocol or an order may use is here; anything else is an
** error. A regimen or a '+' combination resolves to the set of its agents,
** and safety rules reason on agents and their classes, never on names.
*/
#ifndef PW_KNOWLEDGE_H
#define PW_KNOWLEDGE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  PW_AG_FLUOROURACIL, PW_AG_LEUCOVORIN, PW_AG_IRINOTECAN, PW_AG_OXALIPLATIN,
  PW_AG_BEVACIZUMAB, PW_AG_CETUXIMAB, PW_AG_PANITUMUMAB, PW_AG_ENCORAFENIB,
  PW_AG_PEMBROLIZUMAB, PW_AG_NIVOLUMAB, PW_AG_ZOLEDRONIC_ACID, PW_AG_DENOSUMAB,
  PW_AG_CAPECITABINE, PW_AG_COUNT
} pw_agent;

typedef enum {
  PW_CLS_CYTOTOXIC, PW_CLS_ANTI_VEGF, PW_CLS_ANTI_EGFR, PW_CLS_BRAF_INHIBITOR,
  PW_CLS_PD1_INHIBITOR, PW_CLS_BONE_AGENT, PW_CLS_COUNT
} pw_class;

typedef enum {
  PW_ACT_RT_BONE, PW_ACT_RT_INGUINAL, PW_ACT_RT_RETROPERITONEAL,
  PW_ACT_PRIMARY_LOCAL_THERAPY, PW_ACT_PRIMARY_RESECTION, PW_ACT_LONG_COURSE_CRT,
  PW_ACT_RAS_TESTING, PW_ACT_BRAF_TESTING, PW_ACT_MSI_TESTING,
  PW_ACT_CT_REASSESSMENT, PW_ACT_BSC, PW_ACT_COUNT
} pw_action;

typedef enum { PW_KIND_AGENT, PW_KIND_REGIMEN, PW_KIND_ACTION, PW_KIND_COMBINATION } pw_kind;

typedef struct pw_agent_info { const char *id, *name; pw_class cls; } pw_agent_info;
typedef struct pw_regimen_info { const char *id, *name; uint32_t agents; } pw_regimen_info;
typedef struct pw_action_info { const char *id, *name; uint32_t agents; } pw_action_info;

#define PW_AGENT_BIT(a) (1u << (a))

const pw_agent_info *pw_knowledge_agent(int i);     /* NULL past the end */
const pw_regimen_info *pw_knowledge_regimen(int i);
const pw_action_info *pw_knowledge_action(int i);
const char *pw_knowledge_class_name(pw_class c);

/* Agents of a class, as a bit set. */
uint32_t pw_knowledge_class_agents(pw_class c);

/* Resolve an id (agent, regimen, action, or agents/regimens joined by '+').
** Returns 0 and fills agents, action (-1 if none) and kind; or -1 with a
** message naming the unknown part (user text in it is cut on UTF-8
** boundaries; PW_KNOWLEDGE_MSG bytes always hold it whole). */
#define PW_KNOWLEDGE_MSG 320
int pw_knowledge_resolve(const char *id, uint32_t *agents, int *action,
                         pw_kind *kind, char *err, size_t errlen);

const char *pw_knowledge_kind_name(pw_kind k);

/* A prior regimen's name as clinicians write it (facts.prior_regimens[].name):
** case-insensitive, mFOLFOX6/FOLFOX4/FOLFOX6 read as FOLFOX, CAPEOX as CAPOX,
** 5-FU as fluorouracil, parts joined by '+'. Returns 0 and the agents, or -1
** when a part is not known (the name is kept verbatim; the kernel then
** cannot tell what it contained). */
int pw_knowledge_prior_regimen(const char *name, uint32_t *agents);

/* The drugs that decide whether a regimen was "the same" one again: the
** agents with capecitabine counted as fluorouracil (both fluoropyrimidines)
** and leucovorin (a modulator of fluorouracil) left out. */
uint32_t pw_knowledge_active(uint32_t agents);

#endif
