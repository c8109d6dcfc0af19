#!/bin/sh
# As the official image: arguments that start with a flag or name a .conf file are redis-server's, and
# redis-server started as root runs as the redis user, owning /data. Anything else (`sh -c ...`) runs as is.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
