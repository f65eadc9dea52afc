#!/usr/bin/env bash
# The store's master key in a SoftHSM2 token: `m2mguard store master-import`
# moves master.key into the token (sensitive, never extractable); with
# `master_key = pkcs11:...` in m2mguard.conf and master.key gone, every key
# wrap and unwrap runs in the token (device add wraps, device show unwraps
# every version); a wrong PIN or a missing token stops the store; the rows
# are byte-compatible: the saved key file opens the same store again.
. "$(dirname "$0")/lib.sh"
new_token m2mguard
uri="pkcs11:token=m2mguard;object=store-master;type=secret-key?pin-source=$tmp/m2mguard.pin&module-path=$module"
export M2MGUARD_HOME=$tmp/wd
run 0 init "$M2MGUARD_HOME"
run 0 device add meter-1 --msisdn +4915100000001
run 0 store --help
has "store help lists master-import" "$out" "master-import"
run 0 store master-import --help
has "master-import usage" "$out" "^usage: m2mguard store master-import URI"
run 2 store master-import /not/a/uri
has "file path refused" "$err" "pkcs11: URI"
run 0 store master-import "$uri"
has "import says what to do with the file" "$out" "back up .*master.key offline, then delete it"
has "conf names the token key" "$M2MGUARD_HOME/m2mguard.conf" "^master_key = pkcs11:token=m2mguard;object=store-master"
run 1 store master-import "$uri"
has "second import refused" "$err" "already names a master_key"

# the key in the token cannot be read
p11 --token-label m2mguard --login --pin 1234 --list-objects --type secrkey > "$tmp/objs" 2>&1
has "master key in the token" "$tmp/objs" "label: +store-master"
has "master key sensitive" "$tmp/objs" "Access: +sensitive"
hasnt "master key not extractable (imported: CKA_EXTRACTABLE false)" "$tmp/objs" "Access: .*[^r ]extractable"
has "reading its value is refused by the token" "$tmp/objs" "CKR_ATTRIBUTE_SENSITIVE"

# master.key away: everything goes through the token
mv "$M2MGUARD_HOME/master.key" "$tmp/master.key.offline"
run 0 device show meter-1
has "meter-1 key version 1 unwrapped in the token" "$out" "aes-128"
run 0 device add meter-2 --msisdn +4915100000002
run 0 device show meter-2
has "meter-2 keys wrapped and unwrapped in the token" "$out" "aes-128"
cp "$M2MGUARD_HOME/devices/meter-2.prov" "$tmp/meter-2.prov"

# a wrong PIN: the store does not open (exit 3), no PIN in the message
(umask 077; printf '9999\n' > "$tmp/wrong.pin")
sed "s|pin-source=$tmp/m2mguard.pin|pin-source=$tmp/wrong.pin|" "$M2MGUARD_HOME/m2mguard.conf" > "$tmp/conf.wrong"
cp "$M2MGUARD_HOME/m2mguard.conf" "$tmp/conf.good"
cp "$tmp/conf.wrong" "$M2MGUARD_HOME/m2mguard.conf"
run 3 device show meter-1
has "wrong PIN refused" "$err" "master key"
hasnt "no PIN in the error" "$err" "9999|1234"
# a token without the key: refused
cp "$tmp/conf.good" "$M2MGUARD_HOME/m2mguard.conf"
sed -i "s|object=store-master|object=other|" "$M2MGUARD_HOME/m2mguard.conf"
run 3 device show meter-1
has "missing key object refused" "$err" "master key"
cp "$tmp/conf.good" "$M2MGUARD_HOME/m2mguard.conf"
run 0 device show meter-1

# byte-compatible: back to the offline file, the rows the token wrote open
grep -v -E '^master_key|master key is in a PKCS' "$tmp/conf.good" > "$M2MGUARD_HOME/m2mguard.conf"
cp "$tmp/master.key.offline" "$M2MGUARD_HOME/master.key"
chmod 600 "$M2MGUARD_HOME/master.key" "$M2MGUARD_HOME/m2mguard.conf"
run 0 device show meter-2
has "rows wrapped in the token unwrap with the file key" "$out" "aes-128"
# and a different file key is refused (the store's master-key check)
printf '%064d\n' 0 > "$M2MGUARD_HOME/master.key"
run 3 device show meter-2
has "another master key refused" "$err" "does not match"
echo "master_token: $pass checks passed"
