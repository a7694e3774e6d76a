#!/usr/bin/env bash
# --display web: noVNC's page and files over HTTP and libvncserver's WebSocket on the same port,
# checked with raw HTTP requests, a WebSocket client speaking VNC (tests/tools/wsclient.pl), and a
# real browser: Chromium on Xvfb shows the guest's pixels and types a key the guest receives.
. "$(dirname "$0")/../lib.sh"
need_kvm
plan 28
DISPLAY_GUEST=$GUEST/display.elf
WS="perl tests/tools/wsclient.pl"
PORT=$(free_port)

# request PORT RAW: sends RAW (\n becomes \r\n) and prints what came back.
request() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]", Timeout => 5) or die "connect: $!\n";
        (my $r = $ARGV[1]) =~ s/\n/\r\n/g; print $s $r; local $/; my $a = <$s> // ""; $a =~ s/\r//g; print $a' "$1" "$2"
}
get() { request "$PORT" "GET $1 HTTP/1.1
Host: 127.0.0.1:$PORT

"; }

# start ARGS...: slate with the web display on $PORT in the background, once the guest has drawn.
start() {
    : >"$TMP/out"
    timeout -s KILL "$(scaled 60)" "$SLATE" --display "web=127.0.0.1:$PORT" "$@" "$DISPLAY_GUEST" \
        >"$TMP/out" 2>"$TMP/err" </dev/null &
    PID=$!
    for _ in $(seq "$(scaled 200)"); do grep -q '^drawn\|^waiting for a key' "$TMP/out" && break; sleep 0.05; done
}

SLATE_NOVNC_DIR=$TMP/nowhere run_slate --display web "$DISPLAY_GUEST"
is "$RC/$ERR" "125/slate: --display web: noVNC's files are not in $TMP/nowhere (install Debian's novnc package: apt-get install novnc, or run \`make deps\`)" \
    "noVNC missing: one line naming the package, status 125, before the guest starts"
run_slate --display web=nonsense "$DISPLAY_GUEST"
is "$RC/$ERR" "125/slate: --display web=nonsense: expected web=[HOST:]PORT" "a bad web address is refused"
run_slate --display "web=$PORT" --vnc "127.0.0.1:$PORT" "$DISPLAY_GUEST"
is "$RC/$ERR" "125/slate: --display web: port $PORT is --vnc's too; give web=PORT another" \
    "the web port and the VNC port cannot be the same"

start --append graphics
has "$(cat "$TMP/err")" "^slate: the screen is in a browser at http://127.0.0.1:$PORT/$" "slate says where the page is"
R=$(get /)
has "$R" '^HTTP/1.1 302 Found$' "/ redirects ..."
has "$R" '^Location: /vnc.html\?autoconnect=true&resize=scale&reconnect=true&path=websockify$' \
    "... to noVNC's page, connecting at once and scaled to the window"
R=$(get /vnc.html)
has "$R" '^HTTP/1.1 200 OK$' "the page is served"
has "$R" '^Content-Type: text/html' "as HTML"
has "$R" 'noVNC' "and it is noVNC's"
R=$(get /core/rfb.js)
has "$R" '^Content-Type: text/javascript' "noVNC's modules are served as JavaScript"
R=$(get /../../../../etc/passwd)
has "$R" '^HTTP/1.1 404 Not Found$' "a path out of noVNC's directory is not found ..."
lacks "$R" 'root:' "... and nothing of /etc/passwd is sent"
has "$(get /app/.hidden)$(get /%2e%2e/etc/passwd)" '^HTTP/1.1 404' "dot files and escaped names are not served either"
R=$(request "$PORT" "GET /vnc.html HTTP/1.1
Host: rebound.example:$PORT

")
has "$R" '^HTTP/1.1 403 Forbidden$' "served on loopback: a Host naming another site (DNS rebinding) is refused"
R=$(request "$PORT" "POST /vnc.html HTTP/1.1
Host: 127.0.0.1:$PORT
Content-Length: 0

")
has "$R" '^HTTP/1.1 405 Method Not Allowed$' "only GET and HEAD"

W=$($WS "$PORT" hello)
is "$W" "HTTP/1.1 101 Switching Protocols
server RFB 003.008
security 1" "the page's WebSocket on the same port speaks VNC (libvncserver's own WebSocket support)"
has "$($WS "$PORT" --origin http://evil.example hello)" '^HTTP/1.1 403 Forbidden$' \
    "a WebSocket opened by another site's page (its Origin) is refused"
has "$(cat "$TMP/err")" 'refused a WebSocket from http://evil.example' "and the refusal is logged"

# 300 connections that never send a request: slate answers at most 32 at once, each waits 3 s at
# most, and a newcomer takes the place of the one idle longest, so a browser is still served.
: >"$TMP/flood.out"
perl -MIO::Socket::INET -e '
    $| = 1; my @held; for (1..300) { my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]", Timeout => 2); push @held, $c if $c }
    print scalar(@held), " connected\n"; sleep $ARGV[1];' "$PORT" "$(scaled 4)" >"$TMP/flood.out" &
FLOOD=$!
wait_until 10 grep -q connected "$TMP/flood.out"
has "$(get /vnc.html)" '^HTTP/1.1 200 OK$' "300 idle connections held open: the page is still served"
threads=$(ls "/proc/$(pgrep -P "$PID" | head -1)/task" 2>/dev/null | wc -l)
if [ "$threads" -gt 0 ] && [ "$threads" -lt 100 ]; then pass "slate keeps its threads bounded ($threads) with 300 connections held"
else fail "slate keeps its threads bounded with 300 connections held" "threads: $threads"; fi
wait "$FLOOD"

# A real browser, when there is one.
BROWSER=$(command -v chromium || command -v chromium-browser || true)
missing=""
for tool in Xvfb xdotool xwd; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
[ -n "$BROWSER" ] || missing="$missing chromium"
if [ -n "$missing" ]; then
    kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null
    skip_tests 4 "not installed:$missing (make deps installs them): the page was not opened in a browser"
else
    for n in $(seq $((100 + $$ % 400)) 600); do [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || break; done
    Xvfb ":$n" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
    XVFB=$!
    trap 'kill $XVFB $CHROME 2>/dev/null; rm -rf "$TMP"' EXIT
    export DISPLAY=":$n"
    wait_until 10 xdpyinfo >/dev/null 2>&1
    # (--no-sandbox: tests run as root, where Chromium's sandbox will not start)
    "$BROWSER" --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage --user-data-dir="$TMP/chromium" \
        --window-position=0,0 --window-size=800,600 --app="http://127.0.0.1:$PORT/" >"$TMP/chromium.log" 2>&1 &
    CHROME=$!
    # The guest draws red, green, blue and white quadrants; the page scales them to the window.
    quadrants() {
        xwd -root -silent >"$TMP/root.xwd" 2>/dev/null &&
            perl tests/tools/xwdpixel.pl "$TMP/root.xwd" 200 150 600 150 200 450 600 450 | grep '^pixel' | cut -d' ' -f4 | tr '\n' ' '
    }
    for _ in $(seq "$(scaled 300)"); do [ "$(quadrants)" = "ff0000 00ff00 0000ff ffffff " ] && break; sleep 0.1; done
    is "$(quadrants)" "ff0000 00ff00 0000ff ffffff " "Chromium shows the guest's red, green, blue and white quadrants"
    wait_until 10 xdotool search --onlyvisible --name '^slate - noVNC$' >/dev/null 2>&1
    is "$(xdotool search --onlyvisible --name '^slate - noVNC$' getwindowname %@ 2>/dev/null | head -1)" "slate - noVNC" \
        "the page is named after the machine: connected"
    W=$(xdotool search --onlyvisible --class chromium | tail -1)
    # A click (again, until noVNC has taken it: a loaded machine may still be setting up the
    # page), then a key.
    for _ in $(seq "$(scaled 20)"); do
        xdotool windowfocus "$W" mousemove 300 200 sleep 0.2 click 1 2>/dev/null
        wait_until 1 grep -q '^pointer x=[0-9]* y=[0-9]* buttons=1 ' "$TMP/out" && break
    done
    xdotool windowfocus "$W" key q
    wait_until 10 grep -q '^key usage=0x14 ' "$TMP/out"
    kill "$PID" 2>/dev/null
    wait "$PID"; RC=$?
    has "$(cat "$TMP/out")" '^pointer x=[0-9]+ y=[0-9]+ buttons=1 ' "a click in the browser reaches the guest's pointer"
    has "$(cat "$TMP/out")" '^key usage=0x14 char=113 ' "a key typed in the browser reaches the guest's keyboard (and it ends)"
    kill "$CHROME" 2>/dev/null; wait "$CHROME" 2>/dev/null
    kill "$XVFB" 2>/dev/null; wait "$XVFB" 2>/dev/null
    trap 'rm -rf "$TMP"' EXIT
fi

# --vnc-password applies to the web page too (noVNC asks for it).
printf 'secret12\n' >"$TMP/vncpass"
start --vnc-password "$TMP/vncpass" --timeout "$(scaled 10)" --append text
is "$($WS "$PORT" hello | tail -1)" "security 2" "with --vnc-password the page's WebSocket asks for the VNC password"
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null

# A browser that stops reading must not stall the guest: 20 mode switches with a stalled
# WebSocket client connected.
start --append switches
$WS "$PORT" stall "$(scaled 8000)" >"$TMP/stall" 2>&1 &
STALL=$!
wait "$PID"; RC=$?
kill "$STALL" 2>/dev/null; wait "$STALL" 2>/dev/null
is "$RC" 0 "20 mode switches with a stalled browser connected: the guest runs to its end"
us=$(sed -n 's/^longest MODE write us: //p' "$TMP/out")
if [ -n "$us" ] && [ "$us" -lt "$(scaled 50000)" ]; then pass "the longest MODE write took ${us} us (under 50 ms)"
else fail "the longest MODE write took under 50 ms with a stalled browser" "got: '$us' us" "$(cat "$TMP/err")"; fi
lacks "$(cat "$TMP/err")" 'Segmentation|Aborted|AddressSanitizer' "nothing went wrong on stderr"
