#!/bin/bash
# Records what `kubectl get pods -A` fetches (see README.md).
# record.sh DIR(with ca.pem crt.pem key.pem url) OUT
set -e
D=$1; O=$2; mkdir -p $O; S=$(cat $D/url)
C="curl -s --cacert $D/ca.pem --cert $D/crt.pem --key $D/key.pem"
DA='Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json'
$C -H "$DA" "$S/api" -o $O/api; $C -H "$DA" "$S/apis" -o $O/apis
TA='Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json'
cont=""; i=0
while :; do
  if [ -z "$cont" ]; then q="limit=500"; else q="continue=$cont&limit=500"; fi
  $C -H "$TA" "$S/api/v1/pods?$q" -o $O/page$i
  echo "$cont" > $O/page$i.key
  cont=$(python3 -c "import json,sys,urllib.parse; print(urllib.parse.quote(json.load(open('$O/page$i'))['metadata'].get('continue',''), safe=''))")
  i=$((i+1)); [ -z "$cont" ] && break
done
echo pages=$i
