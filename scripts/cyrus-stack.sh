#!/usr/bin/env bash
# cyrus-stack.sh - a throwaway Cyrus IMAP 3.6 server on loopback, the second IMAP server the
# integration tests run the source against (Dovecot is the first, scripts/mail-stack.sh).
#   Debian's defaults are kept where they change what a client sees: personal folders live
#   under "INBOX." (altnamespace: no, unixhierarchysep: no), so creating a top-level folder
#   is refused, as on many production Cyrus servers.
#   Logins: any user of the test domain, password "<local>-pw" is not checked
#   (sasl_pwcheck_method: alwaystrue); a user's INBOX is created at first login.
#   Everything (config, spool, sockets, pid) lives under DIR, owned by the user cyrus.
# Usage:  cyrus-stack.sh install | start DIR | stop DIR       (as root)
#   install: Debian's cyrus-imapd conflicts with dovecot-imapd (both provide imap-server),
#   so only cyrus-common is installed as a package and imapd is unpacked from cyrus-imapd's
#   .deb into $CYRUS_ROOT.
# Environment: CYRUS_IMAP_PORT (default 11143), CYRUS_ROOT (default /opt/helpdesk-test/cyrus),
#   CYRUS_EXTRA_CONF (lines added to imapd.conf, e.g. "suppress_capabilities: MOVE")
set -euo pipefail

: "${CYRUS_IMAP_PORT:=11143}"
: "${CYRUS_ROOT:=/opt/helpdesk-test/cyrus}"
IMAPD="$CYRUS_ROOT/usr/lib/cyrus/bin/imapd"
MASTER=/usr/lib/cyrus/bin/master

cyrus_install() {
  if [ -x "$IMAPD" ] && [ -x "$MASTER" ]; then return 0; fi
  local SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  local created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d; created_policy=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cyrus-common
  # Only its files are used: the system service must not start at boot.
  $SUDO systemctl disable --quiet cyrus-imapd.service 2>/dev/null || true
  [ -n "$created_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
  local tmp; tmp=$(mktemp -d)
  chmod 777 "$tmp"
  (cd "$tmp" && apt-get download cyrus-imapd >/dev/null 2>&1)
  $SUDO mkdir -p "$CYRUS_ROOT"
  $SUDO dpkg-deb -x "$tmp"/cyrus-imapd_*.deb "$CYRUS_ROOT"
  rm -rf "$tmp"
  [ -x "$IMAPD" ] || { echo "cyrus-stack: $IMAPD missing after install" >&2; return 1; }
}

_wait_port() {
  local i
  for i in $(seq 1 1000); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.01
  done
  echo "cyrus-stack: port $1 did not open" >&2; return 1
}

cyrus_stop() {
  local D; D=$(realpath -m "$1")
  [ -f "$D/master.pid" ] || return 0
  local pid; pid=$(cat "$D/master.pid")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 500); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  pkill -KILL -f "imapd -C $D/imapd.conf" 2>/dev/null || true
  rm -f "$D/master.pid"
}

cyrus_start() {
  local D; mkdir -p "$1"; D=$(realpath "$1")
  [ -x "$IMAPD" ] || { echo "cyrus-stack: $IMAPD is missing: run scripts/cyrus-stack.sh install" >&2; return 1; }
  cyrus_stop "$D"
  chmod 755 "$D"
  mkdir -p "$D"/{conf,spool,proc,lock,socket,log,sieve}
  cat > "$D/imapd.conf" <<CONF
configdirectory: $D/conf
proc_path: $D/proc
mboxname_lockpath: $D/lock
defaultpartition: default
partition-default: $D/spool
sievedir: $D/sieve
altnamespace: no
unixhierarchysep: no
allowplaintext: yes
sasl_pwcheck_method: alwaystrue
sasl_mech_list: PLAIN LOGIN
admins: cyrus
autocreate_quota: 0
autocreate_post: 1
hashimapspool: false
lmtpsocket: $D/socket/lmtp
idlesocket: $D/socket/idle
notifysocket: $D/socket/notify
syslog_prefix: cyrus-test
${CYRUS_EXTRA_CONF:-}
CONF
  cat > "$D/cyrus.conf" <<CONF
START {
  recover cmd="ctl_cyrusdb -C $D/imapd.conf -r"
}
SERVICES {
  imap cmd="$IMAPD -C $D/imapd.conf" listen="127.0.0.1:$CYRUS_IMAP_PORT" prefork=0 maxchild=20
}
EVENTS {
}
CONF
  chown -R cyrus:mail "$D"
  # master forks the services; -D keeps it in the foreground of this background job. Every
  # descriptor but 0-2 is closed first: a caller waiting on our stdout pipe (a test's
  # Command::output) must not wait for master too.
  (
    cd "$D"
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
    done
    exec setsid "$MASTER" -C "$D/imapd.conf" -M "$D/cyrus.conf" -p "$D/master.pid" -D \
      </dev/null >"$D/log/master.log" 2>&1
  ) &
  _wait_port "$CYRUS_IMAP_PORT" || { cat "$D/log/master.log" >&2; return 1; }
  echo "cyrus imap on 127.0.0.1:$CYRUS_IMAP_PORT"
}

case "${1:-}" in
  install) cyrus_install ;;
  start) cyrus_start "${2:?DIR}" ;;
  stop) cyrus_stop "${2:?DIR}" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
