#!/bin/bash
# Debian's nginx is 1.22; `server NAME:PORT resolve` in an upstream (1.27.3+: NAME re-resolved while
# running, so replicas that come, go or change address are followed) is not. The config mounted in
# conf.d/ is served from standin.d/ without `resolve`, so nginx resolves NAME when it loads the config,
# and NAME is looked up again every 2 s: when its addresses change, nginx reloads, following them as
# `resolve` would. Everything else in the config is served as it is.
set -euo pipefail
shopt -s nullglob
for conf in /etc/nginx/conf.d/*.conf; do
  sed -E 's/^(\s*server\s+\S+)\s+resolve\b/\1/' "$conf" >"/etc/nginx/standin.d/$(basename "$conf")"
done
names=$(cat /dev/null /etc/nginx/conf.d/*.conf | sed -nE 's/^\s*server\s+([^:; ]+)(:[0-9]+)?\s+resolve\b.*/\1/p' | sort -u)
addresses() {
  local name
  for name in $names; do getent ahostsv4 "$name" | awk '{print $1}' | sort -u; done
}
if [ -n "$names" ]; then
  (
    known=$(addresses)
    while sleep 2; do
      current=$(addresses)
      if [ -n "$current" ] && [ "$current" != "$known" ]; then
        echo "entrypoint: $(echo $names) now at $(echo $current); reloading" >&2
        known=$current
        nginx -s reload
      fi
    done
  ) &
fi
exec nginx -g 'daemon off;'
