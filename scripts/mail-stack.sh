#!/usr/bin/env bash
# Copied from the team's verified recipe (shared/recipes/mail-stack.md); used by tests/it and scripts/bench.
# Ours: SMTPS_PORT, when set, adds an implicit-TLS submission port (smtpd_tls_wrappermode).
# Ours: OAUTH2_INTROSPECTION_URL, when set, adds Dovecot's oauth2 passdb (XOAUTH2 and
#   OAUTHBEARER, tokens checked at that RFC 7662 endpoint; shared/recipes/postgres-oauth2-chromium.md),
#   for IMAP and, through Dovecot SASL, for Postfix's submission ports.
# mailstack.sh - throwaway loopback mail stack for integration tests (no systemd needed).
#   Dovecot 2.3: IMAP (plaintext+STARTTLS) + IMAPS, LMTP on a unix socket, passwd-file users
#   Postfix 3.7: SMTP "MX" port (no auth, accepts mail for $MAIL_DOMAIN only) and a
#                submission port (AUTH PLAIN/LOGIN against Dovecot, STARTTLS offered)
#   Everything (configs, sockets, queue, maildirs, logs, TLS files) lives under DIR.
# Usage:  mailstack.sh start DIR | stop DIR | status DIR      (as root; DIR e.g. from mktemp -d)
#   start is idempotent (restarts a running stack, keeps mail); stop waits until both are gone.
# Debian 12 packages: dovecot-imapd dovecot-lmtpd postfix openssl
set -euo pipefail

: "${IMAP_PORT:=10143}" "${IMAPS_PORT:=10993}" "${SMTP_PORT:=10025}" "${SUBMISSION_PORT:=10587}"
: "${MAIL_DOMAIN:=example.test}"
: "${MAILSTACK_USERS:=support:support-pw customer:customer-pw agent:agent-pw expert:expert-pw stranger:stranger-pw vendor:vendor-pw}"  # local:password

_ms_wait_port() {  # wait until 127.0.0.1:$1 accepts TCP (max ~10 s)
  local i
  for i in $(seq 1 1000); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.01
  done
  echo "mailstack: port $1 did not open" >&2; return 1
}

_ms_alive() {  # pid $1 runs, is not a zombie (pid 1 may reap late) and, if given, is named $2
  local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] || return 1
  [ -z "${2:-}" ] || [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]   # stale pid file, reused pid
}

_ms_wait_gone() {  # wait until pid $1 has exited (max 10 s), then SIGKILL it
  local i
  for i in $(seq 1 1000); do _ms_alive "$1" || return 0; sleep 0.01; done
  kill -KILL "$1" 2>/dev/null || true
}

mailstack_stop() {
  local D; D=$(realpath -m "$1"); local pid
  if [ -f "$D/postfix/spool/pid/master.pid" ]; then
    pid=$(tr -d ' ' < "$D/postfix/spool/pid/master.pid")
    if [ -n "$pid" ] && _ms_alive "$pid" master; then
      postfix -c "$D/postfix/etc" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
      _ms_wait_gone "$pid"
    fi
  fi
  if [ -f "$D/run/dovecot/master.pid" ]; then
    pid=$(cat "$D/run/dovecot/master.pid")
    if [ -n "$pid" ] && _ms_alive "$pid" dovecot; then kill -TERM "$pid"; _ms_wait_gone "$pid"; fi
    rm -f "$D/run/dovecot/master.pid"
  fi
}

mailstack_status() {
  local D; D=$(realpath -m "$1"); local ok=0 pid
  pid=$(cat "$D/run/dovecot/master.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && _ms_alive "$pid" dovecot; then echo "dovecot running pid $pid"; else echo "dovecot stopped"; ok=1; fi
  pid=$( { tr -d " " < "$D/postfix/spool/pid/master.pid"; } 2>/dev/null || true)
  if [ -n "$pid" ] && _ms_alive "$pid" master; then echo "postfix running pid $pid"; else echo "postfix stopped"; ok=1; fi
  return $ok
}

mailstack_start() {
  local D; mkdir -p "$1"; D=$(realpath "$1")
  [ "$(id -u)" = 0 ] || { echo "mailstack: must run as root" >&2; return 1; }
  command -v dovecot >/dev/null && command -v postfix >/dev/null && command -v openssl >/dev/null || {
    echo "mailstack: apt-get install -y dovecot-imapd dovecot-lmtpd postfix openssl" >&2; return 1; }
  mailstack_stop "$D"                       # idempotent: restart cleanly, keep mail
  # Dovecot mail processes run as 'mail' (uid 8); postfix/dovecot/dovenull need to traverse DIR.
  chmod 755 "$D"
  if ! runuser -u mail -- test -x "$D"; then
    echo "mailstack: $D is not reachable by user 'mail' (a parent dir is not o+x); use a dir made by mktemp -d" >&2; return 1
  fi
  mkdir -p "$D"/{tls,log,state,dovecot,mail,run/dovecot,postfix/etc,postfix/data,postfix/spool}
  chown mail:mail "$D/mail"; chown postfix "$D/postfix/data"

  # --- TLS: throwaway CA + leaf (CA:FALSE, SAN localhost/127.0.0.1) so rustls/webpki accept it ---
  if [ ! -s "$D/tls/server.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=mailstack test CA" -keyout "$D/tls/ca.key" -out "$D/tls/ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout "$D/tls/server.key" -out "$D/tls/server.csr" 2>/dev/null
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
      'extendedKeyUsage=serverAuth' "subjectAltName=DNS:localhost,DNS:mail.$MAIL_DOMAIN,IP:127.0.0.1" > "$D/tls/server.ext"
    openssl x509 -req -in "$D/tls/server.csr" -CA "$D/tls/ca.pem" -CAkey "$D/tls/ca.key" \
      -CAcreateserial -days 3650 -extfile "$D/tls/server.ext" -out "$D/tls/server.pem" 2>/dev/null
    chmod 644 "$D/tls/server.key"   # test-only key; postfix/dovecot read it as root anyway
  fi

  # --- users ---
  : > "$D/dovecot/users"; : > "$D/postfix/etc/vmailbox"
  local u
  for u in $MAILSTACK_USERS; do
    echo "${u%%:*}@$MAIL_DOMAIN:{PLAIN}${u#*:}::::::" >> "$D/dovecot/users"
    echo "${u%%:*}@$MAIL_DOMAIN OK" >> "$D/postfix/etc/vmailbox"
  done
  chmod 640 "$D/dovecot/users"; chown root:dovecot "$D/dovecot/users"

  # --- Dovecot ---
  local dh=""; [ -f /usr/share/dovecot/dh.pem ] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
  local mechs="plain login" oauth2_passdb="" plain_only="" all_users=""
  if [ -n "${OAUTH2_INTROSPECTION_URL:-}" ]; then
    mechs="plain login xoauth2 oauthbearer"
    printf '%s\n' "introspection_mode = post" "introspection_url = $OAUTH2_INTROSPECTION_URL" \
      "username_attribute = username" "active_attribute = active" "active_value = true" \
      > "$D/dovecot/oauth2.conf.ext"
    oauth2_passdb="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $D/dovecot/oauth2.conf.ext
}"
    plain_only="  mechanisms = plain login"   # a token is never checked as a password
    all_users=" allow_all_users=yes"          # LMTP's user lookups no longer reach that passdb
  fi
  cat > "$D/dovecot/dovecot.conf" <<EOF
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $D/run/dovecot
state_dir = $D/state
log_path = $D/log/dovecot.log
info_log_path = $D/log/dovecot.log
ssl = yes
ssl_cert = <$D/tls/server.pem
ssl_key = <$D/tls/server.key
$dh
disable_plaintext_auth = no
auth_mechanisms = $mechs
auth_verbose = yes
mail_location = maildir:~/Maildir
mail_uid = mail
mail_gid = mail
first_valid_uid = $(id -u mail)
first_valid_gid = $(id -g mail)
mail_fsync = never
$oauth2_passdb
passdb {
  driver = passwd-file
$plain_only
  args = scheme=PLAIN username_format=%u $D/dovecot/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$D/mail/%d/%n$all_users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
protocol lmtp {
  postmaster_address = postmaster@$MAIL_DOMAIN
}
protocol imap {
  mail_max_userip_connections = 100
}
EOF

  # --- Postfix (own config_directory, queue_directory, data_directory, log file) ---
  cat > "$D/postfix/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $D/postfix/spool
data_directory = $D/postfix/data
maillog_file = $D/log/postfix.log
maillog_file_prefixes = $D/log
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.$MAIL_DOMAIN
mydomain = $MAIL_DOMAIN
myorigin = $MAIL_DOMAIN
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP mailstack
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
virtual_mailbox_domains = $MAIL_DOMAIN
virtual_mailbox_maps = texthash:$D/postfix/etc/vmailbox
# customer+anything@ is customer@'s mailbox (Dovecot's LMTP strips the same "+detail").
recipient_delimiter = +
virtual_transport = lmtp:unix:$D/run/dovecot/lmtp
# Nothing ever leaves loopback: any other domain bounces at once.
default_transport = error:mailstack delivers only to $MAIL_DOMAIN
relay_transport = error:mailstack delivers only to $MAIL_DOMAIN
local_transport = error:no local delivery
alias_maps =
alias_database =
local_recipient_maps =
notify_classes =
biff = no
smtpd_tls_cert_file = $D/tls/server.pem
smtpd_tls_key_file = $D/tls/server.key
smtpd_tls_security_level = may
smtp_tls_security_level = none
smtpd_sasl_type = dovecot
smtpd_sasl_path = $D/run/dovecot/auth-postfix
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 20s
EOF
  cat > "$D/postfix/etc/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
127.0.0.1:$SUBMISSION_PORT inet n - n - - smtpd
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=no
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
${SMTPS_PORT:+127.0.0.1:$SMTPS_PORT inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject}
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
proxywrite unix - - n -  1 proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF

  # Postfix re-reads "hot" files (mtime within ~1 s) in 300 ms steps: backdate them (saves ~2 s)
  touch -d "@$(( $(date +%s) - 10 ))" "$D"/postfix/etc/{main.cf,master.cf,vmailbox}
  # daemons must not inherit our stdout/stderr, or $(...)/pipes around this script never see EOF
  dovecot -c "$D/dovecot/dovecot.conf" </dev/null >>"$D/log/start.log" 2>&1 || {
    echo "mailstack: dovecot failed to start" >&2; tail -n 5 "$D/log/start.log" "$D/log/dovecot.log" >&2; return 1; }
  postfix -c "$D/postfix/etc" start </dev/null >>"$D/log/start.log" 2>&1 || {
    echo "mailstack: postfix failed to start" >&2; tail -n 5 "$D/log/start.log" "$D/log/postfix.log" >&2
    mailstack_stop "$D"; return 1; }
  _ms_wait_port "$IMAP_PORT"; _ms_wait_port "$IMAPS_PORT"
  _ms_wait_port "$SMTP_PORT"; _ms_wait_port "$SUBMISSION_PORT"
  [ -z "${SMTPS_PORT:-}" ] || _ms_wait_port "$SMTPS_PORT"
  local i; for i in $(seq 1 500); do [ -S "$D/run/dovecot/lmtp" ] && break; sleep 0.01; done
  echo "mailstack up: IMAP 127.0.0.1:$IMAP_PORT IMAPS :$IMAPS_PORT SMTP :$SMTP_PORT SUBMISSION :$SUBMISSION_PORT CA $D/tls/ca.pem"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    start)  mailstack_start "${2:?DIR}" ;;
    stop)   mailstack_stop "${2:?DIR}" ;;
    status) mailstack_status "${2:?DIR}" ;;
    *) echo "usage: $0 start|stop|status DIR" >&2; exit 2 ;;
  esac
fi
