#!/usr/bin/env bash
# The plugin with a PostgreSQL connection string as its store (issue 15): it
# refuses to start unless the command policy is named (there is no directory
# beside a connection string to find policy.yaml in), and it never writes the
# connection string, which may hold a password, to the broker's log. No
# server is needed: the refusal comes before any connection, and the store
# that cannot be reached is logged by its label.
# usage: pgstore.sh M2MGUARD_BIN PLUGIN_SO
source "$(dirname "$0")/lib.sh"
setup
secret=Mg-Test-Pw-7d1f0e
sed -i "s|^plugin_opt_store .*|plugin_opt_store host=127.0.0.1 port=1 dbname=m2mguard user=mg password=$secret connect_timeout=1|" "$conf"
sed -i '/^plugin_opt_policy /d' "$conf"
: > "$tmp/broker.log"
rc=0
timeout 20 mosquitto -c "$conf" >> "$tmp/mosquitto.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "the broker did not refuse to start without plugin_opt_policy (exit $rc)"
has "$tmp/broker.log" "plugin_opt_policy is required with a PostgreSQL store" ||
  fail "no reason in the broker log: $(tail -5 "$tmp/broker.log")"
ok "a PostgreSQL store without plugin_opt_policy: the broker refuses to start (exit $rc)"

# the policy named: the broker starts, the store cannot be reached, and the log names it by its label
: > "$tmp/policy.yaml"
sed -i "s|^plugin_opt_store .*|&\nplugin_opt_policy $tmp/policy.yaml|" "$conf"
start_broker
wait_for 15 has "$tmp/broker.log" "cannot open the store (a PostgreSQL connection string)" ||
  fail "the unreachable store is not logged by its label: $(grep -i store "$tmp/broker.log" | tail -3)"
ok "an unreachable PostgreSQL store is logged as '(a PostgreSQL connection string)'"
if grep -- "$secret" "$tmp/broker.log" "$tmp/mosquitto.log" > /dev/null; then
  fail "the connection string's password is in the broker's log"
fi
ok "the password of the connection string is in no log"
stop_broker
