#!/usr/bin/env bash
# Issue 9: one definition of the secured-SMS profile. Its constants (SPI
# values, KIc/KID codings, the CPI/RPI identifiers, the backend TAR) and the
# raw packet functions appear only in the endpoint module (src/core/sms.c,
# include/m2mguard/sms.h) and the layers below it (ota, udh, tpdu). Allowed
# besides, each for a stated reason:
#   src/cli/cmd_sms.c          `m2mguard sms pack/unpack`: the raw TS 102 225 tool, every SPI on request
#   bench/bench_ota_verify.c   the core primitive's benchmark (profile and a no-cipher variant)
#   tools/arm/main.c           the Cortex-M0+ size probe of the core
# No packet octet is read by offset outside the module (no pkt[6]-style peeks).
set -euo pipefail
src=${MG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src"
allowed='^(src/core/(ota|sms|udh|tpdu)\.c|include/m2mguard/(ota|sms|tpdu)\.h|src/cli/cmd_sms\.c|bench/bench_ota_verify\.c|tools/arm/main\.c):'
pattern='MG_SPI\(|MG_IEI_CPI|MG_IEI_RPI|0x4[dD], ?0x47, ?0x00|\\x4[dD]\\x47\\x00|MG_KIC_|MG_KID_|mg_ota_cmd_pack|mg_ota_rsp_pack|mg_ota_cmd_open|mg_ota_rsp_open|<< ?4\) ?\| ?0x0?[259]|pkt\[[0-9]+\]'
found=$(grep -rnE "$pattern" src bench tools include --include='*.c' --include='*.h' | grep -vE "$allowed" || true)
if [ -n "$found" ]; then
  echo "a copy of the secured-SMS profile outside the endpoint module:"
  echo "$found"
  echo "profile_once: 0 passed, 1 failed"
  exit 1
fi
# and the module itself defines each profile value once
[ "$(grep -c 'SPI1_PROFILE (' src/core/sms.c)" -eq 1 ] || { echo "SPI defined more than once"; exit 1; }
[ "$(grep -c 'mg_sms_tar_backend\[3\] = ' src/core/sms.c)" -eq 1 ] || { echo "backend TAR defined more than once"; exit 1; }
echo "profile_once: 2 passed, 0 failed"
