#!/usr/bin/env bash
# --display sdl: the framebuffer in a real SDL window on a real X server (Xvfb), read back with
# xwd; keys and clicks sent to the window with xdotool reach the guest.
. "$(dirname "$0")/../lib.sh"
need_kvm
for tool in Xvfb xdotool xwd; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (make deps installs it); the SDL window was not tested" >&2
        echo "1..0 # SKIP $tool is not installed"
        exit 0
    fi
done
plan 11
# Under `make check-asan`: SDL loads libdbus and the X11 libraries with dlopen and unloads them at
# SDL_Quit, and LeakSanitizer then reports their own small leaks from "<unknown module>". They are
# not slate's; leak checking stays on for every other test.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
DISPLAY_GUEST=$GUEST/display.elf
XWDPIXEL="perl tests/tools/xwdpixel.pl"

run_slate_env() { env -u DISPLAY -u WAYLAND_DISPLAY -u SDL_VIDEODRIVER "$@"; }
run_slate_env "$SLATE" --display sdl "$DISPLAY_GUEST" </dev/null >"$TMP/out" 2>"$TMP/err"
is "$?/$(cat "$TMP/err")" "125/slate: --display sdl: no screen to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set); use --display vnc" \
    "with no X11 or Wayland display, --display sdl says so and exits 125"

# An X server of the test's own, on a display number nobody else uses.
for n in $(seq $((100 + $$ % 400)) 600); do [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || break; done
Xvfb ":$n" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null; rm -rf "$TMP"' EXIT
export DISPLAY=":$n"
for _ in $(seq "$(scaled 100)"); do xdpyinfo >/dev/null 2>&1 && break; [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.05; done
sleep 0.2

# start MODE ARGS...: slate in an SDL window, in the background, once the guest has drawn; W is
# the window's id.
start() {
    local mode=$1
    shift
    : >"$TMP/out" # emptied first: the wait below must not see the last run's lines
    timeout -s KILL "$(scaled 60)" "$SLATE" --display sdl "$@" --append "$mode" "$DISPLAY_GUEST" </dev/null >"$TMP/out" 2>"$TMP/err" &
    PID=$!
    for _ in $(seq "$(scaled 200)"); do grep -q '^drawn' "$TMP/out" && break; sleep 0.05; done
    W=""  # xdotool's --sync has no timeout: poll with a deadline instead
    for _ in $(seq "$(scaled 200)"); do
        W=$(xdotool search --name '^slate$' 2>/dev/null | head -1)
        [ -n "$W" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    sleep 0.2 # one refresh (16 ms) after drawing, with room to spare
}

PORT=$(free_port)
start graphics --screenshot "$TMP/shot.png" --vnc "127.0.0.1:$PORT"
xwd -id "$W" -silent >"$TMP/win.xwd"
X=$($XWDPIXEL "$TMP/win.xwd" 10 10 300 10 10 190 300 190)
is "$(grep '^size' <<<"$X")" "size 320 200" "the window takes the size of the mode the guest set"
is "$(grep '^pixel' <<<"$X" | cut -d' ' -f4 | tr '\n' ' ')" "ff0000 00ff00 0000ff ffffff " \
    "the window shows the guest's red, green, blue and white quadrants, exactly"
V=$("$BUILD/tools/vnctool" vnc "127.0.0.1:$PORT" pixel 300 10)
has "$V" '^pixel 300 10 00ff00$' "with --vnc as well, a VNC client sees the same screen"
xdotool mousemove --window "$W" 50 60 mousedown 1 sleep 0.3 mouseup 1
timeout "$(scaled 10)" xdotool windowfocus --sync "$W" 2>/dev/null
xdotool key --delay 100 a shift+b q
wait "$PID"
RC=$?
OUT=$(cat "$TMP/out")
has "$OUT" '^pointer x=50 y=60 buttons=1 ' "a click in the window reaches the pointer at the same pixel"
has "$OUT" '^key usage=0x4 char=97 ' "a key pressed in the window arrives with its HID usage and character"
has "$OUT" '^key usage=0x5 char=66 mods=2$' "Shift+b arrives as 'B' with the Shift modifier"
is "$RC" 0 "q ends the guest and slate exits 0"
P=$("$BUILD/tools/vnctool" png "$TMP/shot.png" 10 10)
has "$P" '^pixel 10 10 ff0000$' "--screenshot works with the SDL window too"

start text
xwd -id "$W" -silent >"$TMP/text.xwd"
T=$($XWDPIXEL "$TMP/text.xwd" 1 1 1 5)
timeout "$(scaled 10)" xdotool windowfocus --sync "$W" 2>/dev/null
xdotool key q
wait "$PID"
is "$(grep '^size' <<<"$T")" "size 640 400" "text mode: the window is 80x25 cells of 8x16"
is "$(grep '^pixel' <<<"$T" | cut -d' ' -f4 | tr '\n' ' ')" "0000aa ffffff " "text mode: slate's font draws the guest's text in the window"
