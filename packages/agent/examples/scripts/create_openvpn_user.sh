#!/bin/sh
# Example hive-agent script command: script.create_openvpn_user
# The agent validated every param against agent.yaml before starting this script and passes them
# as one argv element each (--username=alice). Report the outcome on the LAST stdout line:
#   {"ok":true,"data":{...}}   or   {"ok":false,"error":{"code":"USER_ALREADY_EXISTS","message":"..."}}
# Without such a line the exit code decides (0 ok, 2 INVALID_PARAMETERS, 3 USER_NOT_FOUND,
# 4 USER_ALREADY_EXISTS, 5 SESSION_NOT_FOUND, 6 CONTAINER_NOT_FOUND, 7 SERVICE_NOT_RUNNING,
# 8 INSUFFICIENT_RESOURCES, 9 PERMISSION_DENIED, 10 TIMEOUT, other INTERNAL_ERROR).
set -eu

USERS_DIR=/etc/openvpn/users
username='' email='' days=365 protocol=udp admin=false
for arg in "$@"; do
  case "$arg" in
    --username=*) username=${arg#--username=} ;;
    --email=*) email=${arg#--email=} ;;
    --days=*) days=${arg#--days=} ;;
    --protocol=*) protocol=${arg#--protocol=} ;;
    --admin=*) admin=${arg#--admin=} ;;
    *) echo '{"ok":false,"error":{"code":"INVALID_PARAMETERS","message":"unknown argument"}}'; exit 2 ;;
  esac
done

if ! [ -d "$USERS_DIR" ]; then
  echo '{"ok":false,"error":{"code":"SERVICE_NOT_RUNNING","message":"OpenVPN is not set up on this gateway"}}'
  exit 7
fi
config="$USERS_DIR/$username.ovpn"
if [ -e "$config" ]; then
  printf '{"ok":false,"error":{"code":"USER_ALREADY_EXISTS","message":"user %s already exists"}}\n' "$username"
  exit 4
fi

echo "creating $username ($email) for $days days over $protocol, admin=$admin"   # free-form output is kept
printf 'client\nproto %s\n# user %s\n' "$protocol" "$username" > "$config"
printf '{"ok":true,"data":{"user_created":true,"config_file":"%s"}}\n' "$config"
