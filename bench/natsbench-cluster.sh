#!/bin/bash
# The stock `nats bench service` on a 3-node Roost cluster (BENCHMARKS.md,
# "Zero-hop text API"): three `roost serve` processes of BIN, one
# `nats bench service serve roost.echo` responder on each node, then 32
# requesters through n2 against roost.echo (the spread echo) and against
# roost.get.<key> for a key whose primary is not n2.
#
# usage: bench/natsbench-cluster.sh BIN LABEL    (NATS= the nats CLI, default: nats on PATH;
#        ROUTE= extra serve flags, e.g. ROUTE='--text-route local' for the forwarding path)
# prints: LABEL key=<key> primary=<node> | echo: <stats> | get: <stats>
set -u
BIN=$1; LABEL=$2
NATS=${NATS:-nats}
ROUTE=${ROUTE:-}
D=$(mktemp -d)
base=$((20000 + RANDOM % 20000))
p1=$base; p2=$((base+1)); p3=$((base+2)); c1=$((base+10)); c2=$((base+11)); c3=$((base+12))
pids=()
$BIN serve $ROUTE --name n1 --listen 127.0.0.1:$p1 --cluster-listen 127.0.0.1:$c1 --http off > $D/n1.log 2>&1 & pids+=($!)
sleep 0.5
$BIN serve $ROUTE --name n2 --listen 127.0.0.1:$p2 --cluster-listen 127.0.0.1:$c2 --join 127.0.0.1:$c1 --http off > $D/n2.log 2>&1 & pids+=($!)
$BIN serve $ROUTE --name n3 --listen 127.0.0.1:$p3 --cluster-listen 127.0.0.1:$c3 --join 127.0.0.1:$c1 --http off > $D/n3.log 2>&1 & pids+=($!)
cleanup() { for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
S2=nats://127.0.0.1:$p2
# wait until n2's table has 3 servers
for i in $(seq 1 100); do
  n=$($NATS -s $S2 req roost.admin.table '' 2>/dev/null | python3 -c 'import sys,json; print(len(json.load(sys.stdin)["ids"]))' 2>/dev/null)
  [ "$n" = 3 ] && break; sleep 0.2
done
sleep 2  # primaries ready
# a key whose primary is not n2 (the node the clients go through)
KEY=""
TABLE=$($NATS -s $S2 req roost.admin.table '' 2>/dev/null)
for i in $(seq 1 50); do
  k="benchkey$i"
  # the key's primary by the table: FNV-1a 32 of the key without dots, mod P
  prim=$(echo "$TABLE" | K=$k python3 -c '
import sys,json,os
t=json.load(sys.stdin); k=os.environ["K"].replace(".","").encode()
h=2166136261
for b in k: h=((h^b)*16777619)&0xffffffff
print(t["owners"][h%t["partitions"]][0])')
  if [ "$prim" != n2 ]; then KEY=$k; PRIM=$prim; break; fi
done
head -c 100 /dev/zero | tr '\0' 'x' > $D/val
$NATS -s $S2 req roost.set.$KEY "$(cat $D/val)" >/dev/null 2>&1
# the spread echo: one responder on each node
epids=()
for p in $p1 $p2 $p3; do $NATS -s nats://127.0.0.1:$p bench service serve roost.echo --clients 1 --msgs 100000000 --no-progress > $D/serve.$p.log 2>&1 & epids+=($!); done
sleep 1
echo_rate=$($NATS -s $S2 bench service request roost.echo --clients 32 --msgs 200000 --size 100 --no-progress 2>&1 | grep -i "stats:" | head -1)
for p in "${epids[@]}"; do kill $p 2>/dev/null; done
get_rate=$($NATS -s $S2 bench service request roost.get.$KEY --clients 32 --msgs 200000 --size 100 --no-progress 2>&1 | grep -i "stats:" | head -1)
echo "$LABEL key=$KEY primary=$PRIM | echo: $echo_rate | get: $get_rate"
