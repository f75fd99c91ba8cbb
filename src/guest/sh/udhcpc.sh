#!/bin/sh
# /usr/lib/kjx/udhcpc.script: busybox udhcpc's event script (docs/services.md). $1 is
# deconfig, bound, renew, leasefail or nak; the lease is in the environment ($interface,
# $ip, $mask, $router, $dns, $domain). Written into images by kjx build from
# src/guest/sh/udhcpc.sh.
# shellcheck disable=SC2154 # udhcpc sets the lease variables
#
# @value KJX_RESOLV_CONF  the resolver configuration /etc/resolv.conf links to (in /run)
case "$1" in
deconfig)
  ip -4 addr flush dev "$interface"
  ip link set "$interface" up
  ;;
bound | renew)
  ip -4 addr flush dev "$interface"
  ip -4 addr add "$ip/${mask:-24}" dev "$interface"
  if [ -n "$router" ]; then
    while ip -4 route del default dev "$interface" 2>/dev/null; do :; done
    for r in $router; do ip -4 route add default via "$r" dev "$interface" && break; done
  fi
  if [ -n "$dns" ]; then
    : >"$KJX_RESOLV_CONF.new"
    [ -n "$domain" ] && echo "search $domain" >>"$KJX_RESOLV_CONF.new"
    for d in $dns; do echo "nameserver $d" >>"$KJX_RESOLV_CONF.new"; done
    mv "$KJX_RESOLV_CONF.new" "$KJX_RESOLV_CONF"
  fi
  echo "kjx: $interface: dhcp $ip/${mask:-24} router ${router:-none} dns ${dns:-none}"
  ;;
leasefail | nak)
  echo "kjx: $interface: dhcp: $1"
  ;;
esac
exit 0
