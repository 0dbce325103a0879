#!/bin/sh
# Example hive-agent script command with `pass: env`: params arrive as HIVE_PARAM_<NAME>.
# No JSON result line here: the exit code alone tells the agent what happened.
set -eu
config="/etc/openvpn/users/${HIVE_PARAM_USERNAME}.ovpn"
[ -e "$config" ] || exit 3   # USER_NOT_FOUND
rm -f -- "$config"
