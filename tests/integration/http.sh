#!/usr/bin/env bash
# http.sh - pbftd's HTTP API on a 4-replica cluster (127.0.0.1 only):
#   - every endpoint with good input: status, peers, submit, kv put, get,
#     delete, tx, /metrics on http_listen and on metrics_listen, the page;
#   - bad input: bad JSON (400), a body over the limit (413), headers over
#     it, an absent key (404), an unknown path (404), a wrong method (405);
#   - no quorum within reach of pbftd's client: 503 at once;
#   - tokens: with http_tokens set (required then even on loopback), no
#     token is 401, a wrong one 403, a right one 200, and pbftd refuses a
#     tokens file others may read, and a non-loopback http_listen without
#     tokens;
#   - TLS with http_cert and http_key; a key others may read is refused;
#   - a client that sends half a request and stalls does not hold up the
#     others;
#   - a request still waiting for the cluster when pbftd stops is answered
#     (503) and pbftd exits 0.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" http
gentle=1 # pbftd stops its replicas
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }

base=$(( 20000 + ($$ % 2000) * 10 ))
hport=$((base + 8))
mport=$((base + 9))
"$pbftctl" init -n 4 --base-port "$base" -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
tok=$dir/c/http.tokens
umask 077
printf '# name token\nci  s3cret-token-0123456789\nops other-token-9876543210\n' >"$tok"
umask 022
sed -i "/^\[cluster\]/a http_listen = 127.0.0.1:$hport\nmetrics_listen = 127.0.0.1:$mport\nhttp_tokens = http.tokens" "$cfg"
url=http://127.0.0.1:$hport
auth=(-H "Authorization: Bearer s3cret-token-0123456789")

# code METHOD PATH [curl args...]: prints the status code, the body to $dir/body.
code() {
	local m=$1 p=$2; shift 2
	curl -s -m $((10 * mult)) -o "$dir/body" -w '%{http_code}' -X "$m" \
	    "$@" "$url$p"
}
expect() { # expect CODE METHOD PATH [curl args...]
	local want=$1 got; shift
	got=$(code "$@") || true
	[ "$got" = "$want" ] || fail "$1 ${2:0:48}: HTTP $got, want $want: $(head -c 300 "$dir/body")"
	echo "ok: $1 ${2:0:48} -> $want"
}

# Refusals at start: a tokens file others may read, a non-loopback
# address without tokens.
chmod 644 "$tok"
if timeout $((20 * mult)) "$pbftd" -c "$cfg" -L "$dir/refuse.log" 2>"$dir/refuse.err"; then
	fail "pbftd started with a world-readable tokens file"
fi
grep -q "group or others may read" "$dir/refuse.err" "$dir/refuse.log" ||
    fail "no reason for the tokens refusal: $(cat "$dir/refuse.err")"
rc=0
"$pbftd" -t -c "$cfg" >"$dir/t.out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "group or others may read" "$dir/t.out" ||
    fail "pbftd -t: status $rc: $(cat "$dir/t.out")"
chmod 600 "$tok"
sed "s/^http_listen = .*/http_listen = 0.0.0.0:$hport/; /^http_tokens/d" \
    "$cfg" >"$dir/c/open.ini"
if timeout $((20 * mult)) "$pbftd" -c "$dir/c/open.ini" -L "$dir/refuse2.log" 2>"$dir/refuse2.err"; then
	fail "pbftd served 0.0.0.0 without tokens"
fi
grep -q "not a loopback address" "$dir/refuse2.err" "$dir/refuse2.log" ||
    fail "no reason for the address refusal: $(cat "$dir/refuse2.err")"
echo "ok: refuses a readable tokens file and an open address without tokens"

"$pbftd" -c "$cfg" -L "$dir/pbftd.log" 2>"$dir/stderr.log" &
pid=$!
ready() { code GET /v1/status "${auth[@]}" >/dev/null && grep -q '"ready":true' "$dir/body"; }
wait_until 30 ready || fail "cluster not ready over HTTP"

# Tokens.
expect 401 GET /v1/status
expect 403 GET /v1/status -H "Authorization: Bearer s3cret-token-0123456788"
expect 403 GET /v1/status -H "Authorization: Basic czNjcmV0"
expect 200 GET /v1/status -H "Authorization: Bearer other-token-9876543210"
expect 401 GET /metrics
expect 200 GET / # the page holds no data: no token
grep -q "pbftd not answering" "$dir/body" || fail "page without its down state"

# A web page of another origin is refused (a page in the operator's
# browser must not use the API); the page's own origin is served.
expect 403 POST /v1/submit "${auth[@]}" -H "Origin: http://evil.example" \
    -d '{"data":"from a web page"}'
grep -q "cross-origin" "$dir/body" || fail "403 without its reason"
expect 200 GET /v1/peers "${auth[@]}" -H "Origin: http://127.0.0.1:$hport"

# Status and peers.
expect 200 GET /v1/status "${auth[@]}"
python3 - "$dir/body" <<'PY' || fail "status body"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["ok"] and s["n"] == 4 and len(s["replicas"]) == 4, s
assert all(r["state"] == "running" for r in s["replicas"]), s
PY
expect 200 GET /v1/peers "${auth[@]}"
grep -q '"public_key"' "$dir/body" || fail "peers body"

# Submit, kv, tx.
expect 200 POST /v1/submit "${auth[@]}" -d '{"data":"hello http"}'
idx=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["index"])' "$dir/body")
expect 200 PUT /v1/kv/colour "${auth[@]}" -d '{"value":"blue"}'
expect 200 GET /v1/kv/colour "${auth[@]}"
grep -q '"value":"blue"' "$dir/body" || fail "get: $(cat "$dir/body")"
expect 200 DELETE /v1/kv/colour "${auth[@]}"
expect 404 GET /v1/kv/colour "${auth[@]}"
grep -q '"ok":false' "$dir/body" || fail "404 without a JSON error"
expect 404 DELETE /v1/kv/never-there "${auth[@]}"
expect 200 GET "/v1/tx/$idx" "${auth[@]}"
grep -q '"data":"hello http"' "$dir/body" || fail "tx: $(cat "$dir/body")"
expect 404 GET /v1/tx/999999 "${auth[@]}"
expect 400 GET /v1/tx/x1 "${auth[@]}"

# Bad input.
expect 400 POST /v1/submit "${auth[@]}" -d '{"data":'
expect 400 POST /v1/submit "${auth[@]}" -d '["data"]'
expect 400 POST /v1/submit "${auth[@]}" -d '{"data":7}'
expect 400 PUT /v1/kv/k "${auth[@]}" -d 'not json'
head -c 300000 /dev/zero | tr '\0' 'a' >"$dir/big"
expect 413 POST /v1/submit "${auth[@]}" --data-binary @"$dir/big"
expect 413 POST /v1/submit "${auth[@]}" -H "Expect: 100-continue" \
    --data-binary @"$dir/big"
expect 413 POST /v1/submit "${auth[@]}" -H "Transfer-Encoding: chunked" \
    --data-binary @"$dir/big"
expect 404 GET /v2/nothing "${auth[@]}"
expect 405 POST /v1/status "${auth[@]}" -d '{}'
expect 405 PATCH /v1/kv/k "${auth[@]}" -d '{}'
long=$(head -c 2000 /dev/zero | tr '\0' 'k')
expect 400 GET "/v1/kv/$long" "${auth[@]}"

# Metrics on both listeners; the scrape of metrics_listen needs no token.
expect 200 GET /metrics "${auth[@]}"
grep -q '^pbft_replica_up{node="0"} 1' "$dir/body" || fail "metrics body"
curl -s -m $((10 * mult)) -o "$dir/scrape" "http://127.0.0.1:$mport/metrics"
grep -q '^pbft_requests_executed_total' "$dir/scrape" || fail "metrics_listen"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/v1/status")" = 404 ] ||
    fail "metrics_listen serves the API"
echo "ok: /metrics on both listeners"

# A client that sends half a request and stalls: the others are served,
# each within 2 s, while it hangs on.
python3 - "$hport" "$mult" <<'PY' || fail "a stalled client held up the others"
import socket, sys, time, urllib.request
port, mult = int(sys.argv[1]), int(sys.argv[2])
stalled = []
for _ in range(8):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /v1/submit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              b"s3cret-token-0123456789\r\nContent-Length: 100\r\n\r\n{\"da")
    stalled.append(s)
hdr = {"Authorization": "Bearer s3cret-token-0123456789"}
for i in range(5):
    t0 = time.monotonic()
    req = urllib.request.Request("http://127.0.0.1:%d/v1/peers" % port, headers=hdr)
    with urllib.request.urlopen(req, timeout=10 * mult) as r:
        assert r.status == 200
    took = time.monotonic() - t0
    assert took < 2 * mult, took
print("ok: 5 requests served beside 8 stalled clients")
PY

# Headers over the connection's memory (64 KiB) are refused.
hdr=$(head -c 70000 /dev/zero | tr '\0' 'h')
got=$(code GET /v1/peers "${auth[@]}" -H "X-Big: $hdr") || true
case $got in 413 | 431) echo "ok: 70 KB of headers -> $got" ;;
*) fail "70 KB of headers: HTTP $got" ;; esac

# Two replicas stopped (pbftctl stop): pbftd's client reaches fewer than
# 2f+1, and a submit is answered 503 at once; status still answers, also
# with all four stopped.
ctl stop 2 >/dev/null
ctl stop 3 >/dev/null
few() { code POST /v1/submit "${auth[@]}" -d '{"data":"x"}' | grep -qx 503; }
wait_until 20 few || fail "no 503 with two replicas stopped: $(cat "$dir/body")"
grep -q "fewer than 2f+1" "$dir/body" || fail "503 without its reason"
echo "ok: POST /v1/submit -> 503 with two of four replicas stopped"
expect 200 GET /v1/status "${auth[@]}"
# With none running, status is answered at once, inside the handler.
ctl stop 0 >/dev/null
ctl stop 1 >/dev/null
expect 200 GET /v1/status "${auth[@]}"
grep -q '"state":"running"' "$dir/body" && fail "a stopped replica shown running"
for i in 0 1 2 3; do ctl restart $i >/dev/null; done
wait_until 30 ready || fail "cluster not ready again after the restarts"
expect 200 POST /v1/submit "${auth[@]}" -d '{"data":"after the restarts"}'

# A request waiting for the cluster when pbftd stops: two replicas paused
# (no quorum, and they stay paused), a submit left hanging, then SIGTERM:
# once pbftd has stopped its replicas the client gets its
# answer (503, cancelled) and pbftd exits cleanly (0; under the sanitizers,
# no leak of the suspended request).
code GET /v1/status "${auth[@]}" >/dev/null
cp "$dir/body" "$dir/status.json"
rpids=($(python3 -c 'import json,sys; print(" ".join(str(r["pid"]) for r in json.load(open(sys.argv[1]))["replicas"][2:]))' "$dir/status.json"))
[ ${#rpids[@]} = 2 ] || fail "no replica pids in status"
kill -STOP "${rpids[@]}"
curl -s -m $((60 * mult)) -o "$dir/hang.body" -w '%{http_code}' -X POST \
    "${auth[@]}" -d '{"data":"left hanging"}' "$url/v1/submit" >"$dir/hang.code" &
cpid=$!
sleep 1
kill -0 "$cpid" || fail "the submit did not wait for the cluster"
kill "$pid" # the paused replicas get SIGKILL after pbftd's 5 s of grace
rc=0
wait "$pid" || rc=$?
pid=
[ $rc = 0 ] || fail "pbftd exited with status $rc"
wait "$cpid" || true
[ "$(cat "$dir/hang.code")" = 503 ] ||
    fail "hanging submit: HTTP $(cat "$dir/hang.code"): $(cat "$dir/hang.body")"
echo "ok: a request waiting at shutdown is answered 503, pbftd exits 0"
rpids=()

# TLS (http_cert, http_key): https with the certificate answers, plain
# http does not; a key others may read is refused.
if command -v openssl >/dev/null; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 2 \
	    -keyout "$dir/c/http.key" -out "$dir/c/http.crt" 2>/dev/null
	chmod 644 "$dir/c/http.key"
	sed -i "/^\[cluster\]/a http_cert = http.crt\nhttp_key = http.key" "$cfg"
	if timeout $((20 * mult)) "$pbftd" -c "$cfg" -L "$dir/refuse3.log" 2>"$dir/refuse3.err"; then
		fail "pbftd started with a world-readable TLS key"
	fi
	grep -q "only its owner may read" "$dir/refuse3.err" "$dir/refuse3.log" ||
	    fail "no reason for the key refusal: $(cat "$dir/refuse3.err")"
	chmod 600 "$dir/c/http.key"
	"$pbftd" -c "$cfg" -L "$dir/pbftd-tls.log" 2>"$dir/stderr-tls.log" &
	pid=$!
	url=https://127.0.0.1:$hport
	tls_ok() { code GET /v1/peers "${auth[@]}" --cacert "$dir/c/http.crt" | grep -qx 200; }
	wait_until 30 tls_ok || fail "no answer over https: $(cat "$dir/body" 2>/dev/null)"
	echo "ok: GET /v1/peers over https"
	plain=$(curl -s -m $((10 * mult)) -o /dev/null -w '%{http_code}' \
	    "http://127.0.0.1:$hport/v1/peers" "${auth[@]}" || true)
	[ "$plain" != 200 ] || fail "plain http answered on a TLS listener"
	echo "ok: plain http refused on the TLS listener ($plain)"
	kill "$pid"
	rc=0
	wait "$pid" || rc=$?
	pid=
	[ $rc = 0 ] || fail "pbftd (TLS) exited with status $rc"
else
	echo "no openssl: TLS not checked"
fi
echo "http: all checks passed"
