#!/usr/bin/env bash
# The admin API's transport and audit: it refuses to listen beyond loopback without TLS; over
# HTTPS dxctl verifies the scheduler's certificate (and refuses an unknown one); tokens never
# travel in a URL or a process argument; the audit key file is created 0600 and an open one is
# refused; an audit record edited or deleted with sqlite3 is detected by dxctl audit-verify.
source "$(dirname "$0")/harness.sh"
harness_init admin_security

# Beyond loopback without a certificate: the scheduler does not start, naming the key.
cat >"$T/open.yaml" <<YAML
store: {path: $T/open.db}
listen: {agents: "127.0.0.1:0", admin: "0.0.0.0:0"}
admin: {token: $TOKEN}
YAML
set +e; out=$("$SCHEDULER_BIN" -c "$T/open.yaml" 2>&1); rc=$?; set -e
[ $rc = 2 ] || fail "a scheduler with the admin API on 0.0.0.0 without TLS exited $rc"
echo "$out" | grep -q "open.yaml:2: key 'listen.admin': '0.0.0.0:0' is reachable beyond this machine" ||
  fail "message: $out"
[ ! -e "$T/open.db" ] || fail "the refused scheduler created its store"
pass "no admin API beyond loopback without TLS: '$(echo "$out" | head -1)'"

# HTTPS (on loopback here), with the audit key where the config says.
make_tls_cert "$T/admin"
bash "$ROOT/scripts/make-cert.sh" -q -f -d 30 -o "$T/other" 127.0.0.1
write_scheduler_config
cat >>"$T/scheduler.yaml" <<YAML
audit: {key_file: $T/keys/audit.key}
YAML
sed -i "s#^admin: .*#admin: {token: $TOKEN, tls: {cert: $T/admin.crt, key: $T/admin.key}}#" "$T/scheduler.yaml"
mkdir -m 700 "$T/keys"
start_scheduler
export DX_SERVER=https://127.0.0.1:$ADMIN_PORT
[ "$(stat -c %a "$T/keys/audit.key")" = 600 ] || fail "the audit key is not 0600"
grep -q "admin API on https://" "$T/scheduler.log" || fail "not serving https"
DX_CA_FILE="$T/admin.crt" dxctl whoami >/dev/null || fail "dxctl over https with the CA"
expect_fail 1 "(certificate|SSL)" env DX_CA_FILE="$T/other.crt" "$DXCTL_BIN" whoami
expect_fail 1 "(certificate|SSL)" env -u DX_CA_FILE "$DXCTL_BIN" whoami
pass "dxctl verifies the scheduler's certificate: its CA works, another CA or none is refused"
export DX_CA_FILE="$T/admin.crt"

# Tokens: not as an argument, not in a URL, and plain HTTP is not served on the TLS port.
expect_fail 2 "token" dxctl --token "$TOKEN" agents
code=$(curl -s -o "$T/url.json" -w '%{http_code}' --cacert "$T/admin.crt" \
  "https://127.0.0.1:$ADMIN_PORT/api/v1/agents?token=$TOKEN")
[ "$code" = 400 ] && grep -q "never in a URL" "$T/url.json" || fail "a token in the URL: $code $(cat "$T/url.json")"
set +e
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$ADMIN_PORT/api/v1/agents")
set -e
[ "$code" = 000 ] || fail "plain HTTP answered on the HTTPS port: $code"
pass "a token is refused as a dxctl argument and in a URL; plain HTTP gets no answer"

# An unauthenticated caller gets its 401 before sending its body: the scheduler reads no body
# (16 MB announced here, none sent) for someone it does not know.
python3 - "$ADMIN_PORT" "$T/admin.crt" <<'PY' || fail "the scheduler waited for an unauthenticated body"
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(b"POST /api/v1/apply HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nobody-0123456789\r\n"
                  b"Content-Length: 16000000\r\n\r\n")
        start = time.time()
        reply = s.recv(4096).decode("utf-8", "replace")
        assert reply.startswith("HTTP/1.1 401"), reply
        assert time.time() - start < 3, "slow"
PY
pass "an unauthenticated request is answered 401 from its header alone"

# The audit log: edit a record, then delete the newest, with sqlite3 — both detected.
dxctl org add 徐汇区教育局 >/dev/null
make_user cons 徐汇区教育局 consumer
as_user cons whoami >/dev/null
expect_fail 4 "only admin" as_user cons org add 浦东新区教育局
dxctl audit-verify | grep -q "intact" || fail "a fresh log does not verify"
id=$(sqlite3 "$T/scheduler.db" "SELECT id FROM audit WHERE action='organisation.put' AND actor='cons'")
[ -n "$id" ] || fail "the refusal is not in the audit log"
sqlite3 "$T/scheduler.db" "CREATE TABLE kept AS SELECT id, result FROM audit WHERE id=$id;
  DROP TRIGGER audit_no_update; UPDATE audit SET result='ok' WHERE id=$id"
expect_fail 1 "audit record $id does not match the chain" dxctl audit-verify
sqlite3 "$T/scheduler.db" "DROP TRIGGER IF EXISTS audit_no_update;
  UPDATE audit SET result=(SELECT result FROM kept) WHERE id=$id"
dxctl audit-verify | grep -q "intact" || fail "the restored record does not verify"
last=$(sqlite3 "$T/scheduler.db" "SELECT max(id) FROM audit")
sqlite3 "$T/scheduler.db" "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id=$last"
expect_fail 1 "audit records after $((last - 1)) .* were deleted" dxctl audit-verify
pass "an audit record edited, and one deleted from the end, with sqlite3 are detected ('$LAST_OUT')"

# The audit key file must be the scheduler's alone.
stop_all; SCHEDULER_PID=""
chmod 644 "$T/keys/audit.key"
set +e; out=$("$SCHEDULER_BIN" -c "$T/scheduler.yaml" 2>&1); rc=$?; set -e
[ $rc = 2 ] && echo "$out" | grep -q "key 'audit.key_file': audit key file $T/keys/audit.key has mode 0644" ||
  fail "an open audit key was accepted: $rc $out"
pass "an audit key file others may read is refused at start"
