/* risk.h together with store.h (crypto.h) in one translation unit.
 *
 * risk.h's mg_risk_alg and crypto.h's mg_alg both define the enumerators
 * MG_ALG_NONE, MG_ALG_3DES2 and MG_ALG_3DES3 (with other values), so the two
 * headers cannot be included together. Here risk.h's three are renamed
 * MG_RALG_NONE, MG_RALG_3DES2, MG_RALG_3DES3 (same values, same ABI) while
 * it is read; MG_ALG_* keep crypto.h's meaning. The lasting fix is to rename
 * risk.h's enumerators MG_RISK_ALG_* on main (see the branch h-fleet report). */
#ifndef M2MGUARD_RISK_WITH_STORE_H
#define M2MGUARD_RISK_WITH_STORE_H

#include "m2mguard/store.h"

#define MG_ALG_NONE MG_RALG_NONE
#define MG_ALG_3DES2 MG_RALG_3DES2
#define MG_ALG_3DES3 MG_RALG_3DES3
#include "risk_internal.h"
#undef MG_ALG_NONE
#undef MG_ALG_3DES2
#undef MG_ALG_3DES3

#endif
