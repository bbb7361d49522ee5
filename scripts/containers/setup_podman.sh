#!/bin/bash
# Installs and configures rootful podman for the container test on this kind of
# machine (Debian bookworm, no container registry access). Idempotent; run as root.
#
#   sudo scripts/containers/setup_podman.sh
#
# - runc is the runtime: crun fails on this host's cgroup setup.
# - podman's default container open-file and process limits are above this
#   shell's hard limits, so containers fail to start ("error setting rlimits");
#   they are lowered to `ulimit -Hn` and to the smaller of `ulimit -Hu` and
#   kernel.pid_max (here 32768 passes and 32769 fails with "error setting
#   rlimit type 6", with a process hard limit of 96365 and no CAP_SYS_RESOURCE).
# - podman 4.3 here uses CNI networks; without the dnsname plugin a compose
#   network has no DNS and services cannot find each other by name ("kafka").
# - The check runs `true` in the locally built base image when it exists
#   (scripts/containers/build_base.sh makes it), else in a throw-away image
#   imported from an empty tar holding only the host's /bin/true.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "setup_podman.sh: run as root" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
pkgs="podman runc podman-compose docker-compose mmdebstrap uidmap slirp4netns passt fuse-overlayfs containernetworking-plugins golang-github-containernetworking-plugin-dnsname"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -q
    # Packages that ship services must not start them while installing.
    had_policy=0
    [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    if [ "$had_policy" = 0 ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get install -y -q --no-install-recommends $missing
    [ "$had_policy" = 0 ] && rm -f /usr/sbin/policy-rc.d
fi

nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
pid_max="$(cat /proc/sys/kernel/pid_max)"
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then
    nproc="$pid_max"
fi
mkdir -p /etc/containers
conf=/etc/containers/containers.conf
want="# Written by MarketPulse scripts/containers/setup_podman.sh
[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]

[engine]
runtime = \"runc\"
"
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$(printf %s "$want")" ]; then
    if [ -f "$conf" ] && ! grep -q "setup_podman.sh" "$conf"; then
        cp "$conf" "$conf.bak"
        echo "setup_podman.sh: saved the previous $conf as $conf.bak"
    fi
    printf %s "$want" > "$conf"
fi

image="${MARKETPULSE_BASE_IMAGE:-localhost/marketpulse-base:bookworm}"
if ! podman image exists "$image"; then
    image=localhost/marketpulse-true:check
    if ! podman image exists "$image"; then
        tmp="$(mktemp -d)"
        mkdir -p "$tmp/root/bin"
        cp /bin/true "$tmp/root/bin/true"
        # /bin/true is dynamically linked: bring its loader and libc.
        for lib in $(ldd /bin/true | grep -o '/[^ ]*'); do
            mkdir -p "$tmp/root$(dirname "$lib")"
            cp -L "$lib" "$tmp/root$lib"
        done
        tar -C "$tmp/root" -cf "$tmp/root.tar" .
        podman import -q "$tmp/root.tar" "$image" > /dev/null
        rm -rf "$tmp"
    fi
fi
podman run --rm "$image" /bin/true
echo "setup_podman.sh: podman $(podman --version | awk '{print $3}') runs containers (runtime runc, nofile ${nofile}, nproc ${nproc}; checked with $image)"
