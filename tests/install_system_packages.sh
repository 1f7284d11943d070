#!/bin/sh
# Debian packages the napari GUI tests need: a virtual X server (Xvfb, started by
# pytest-xvfb), Mesa's software OpenGL for vispy, and the X/xcb libraries Qt 6 loads.
# Installs only what is missing (as root, or through sudo). Elsewhere it says what to
# install and lets the tests run: the GUI tests then fail with Qt's own message.
set -e
packages="xvfb libgl1 libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-cursor0
libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
libxcb-xinerama0 libxcb-xkb1 libdbus-1-3 libfontconfig1"
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_packages: not Debian; for the GUI tests install Xvfb, Mesa GL and" \
         "Qt's xcb libraries with your package manager" >&2
    exit 0
fi
missing=""
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
as_root=""
[ "$(id -u)" -eq 0 ] || as_root="sudo"
echo "install_system_packages: installing$missing" >&2
$as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $missing
