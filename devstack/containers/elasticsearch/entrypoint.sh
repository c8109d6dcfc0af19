#!/bin/bash
# As the official image: every environment variable named like a setting (cluster.name,
# discovery.seed_hosts, xpack.security.enabled, ...) is passed to the node; ES_JAVA_OPTS adds JVM
# flags (a later -Xmx wins over the default heap); data in /usr/share/elasticsearch/data; HTTP on 9200
# and transport on 9300 on every interface. Settings the launcher's node has no module for
# (xpack.*: no X-Pack is loaded) are left out, as they change nothing here.
set -euo pipefail
cd /usr/share/elasticsearch
settings=(
  path.home=/usr/share/elasticsearch path.data=/usr/share/elasticsearch/data path.logs=/usr/share/elasticsearch/logs
  network.host=0.0.0.0 cluster.routing.allocation.disk.threshold_enabled=false
)
while IFS= read -r -d '' entry; do
  name=${entry%%=*}
  if [[ $name =~ ^[a-z0-9_]+(\.[a-z0-9_]+)+$ && $name != xpack.* ]]; then settings+=("$entry"); fi
done < /proc/self/environ
mapfile -t jvm_options < <(grep -v -e '^#' -e '^$' jvm.options)
# shellcheck disable=SC2206  # ES_JAVA_OPTS is a list of flags, split on spaces as the official image does
java_opts=(${ES_JAVA_OPTS:-})
classpath="classes:$(sed 's|^|lib/|' classpath | paste -sd:)"
exec java -Xms512m -Xmx512m "${jvm_options[@]}" "${java_opts[@]}" -cp "$classpath" devstack.EsLauncher "${settings[@]}"
