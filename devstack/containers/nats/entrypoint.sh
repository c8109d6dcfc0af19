#!/bin/sh
# As the official image: arguments that start with a flag are nats-server's.
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- nats-server "$@"
fi
exec "$@"
