#!/usr/bin/env bash
# Builds the Debian root filesystem every local image starts from (what the public debian:<suite>-slim image is for
# users), with debootstrap from Debian's packages, and downloads the .deb files of the packages named after the
# output directory (for images that install Debian packages, e.g. memcached), resolved against that rootfs.
#
# usage: make-rootfs.sh <suite> <out-dir> [package...]
# out:   <out-dir>/rootfs.tar (numeric owners; /dev, /proc, /sys empty) and <out-dir>/debs/<package>/*.deb
#
# The mirror and suites are the machine's own apt sources (/etc/apt/sources.list.d/debian.sources or
# /etc/apt/sources.list): nothing here names a mirror. The rootfs gets those sources too, every update available
# (security and point-release updates included), and the slimming of Debian's -slim images: no documentation,
# manual pages or translations, and a dpkg configuration that keeps them out of later installs.
set -euo pipefail
suite=$1
out=$2
shift 2
log() { printf '[stack] images: %s\n' "$*" >&2; }

# The machine's apt sources: the mirror that serves the suite itself (not the security archive).
sources_file=""
mirror=""
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  sources_file=/etc/apt/sources.list.d/debian.sources
  # The stanza whose Suites name the suite itself (not <suite>-security or -updates).
  mirror=$(awk -v suite="$suite" 'BEGIN { RS = "" } {
      uri = ""; found = 0
      n = split($0, lines, "\n")
      for (i = 1; i <= n; i++) {
        if (lines[i] ~ /^URIs:/) { split(lines[i], f, " "); uri = f[2] }
        if (lines[i] ~ /^Suites:/) { m = split(lines[i], s, " "); for (j = 2; j <= m; j++) if (s[j] == suite) found = 1 }
      }
      if (found && uri != "") { print uri; exit }
    }' "$sources_file")
elif [[ -f /etc/apt/sources.list ]]; then
  sources_file=/etc/apt/sources.list
  mirror=$(awk -v suite="$suite" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /:\/\// && $(i + 1) == suite) { print $i; exit } }' "$sources_file")
fi
[[ -n "$mirror" ]] || { log "no Debian mirror in the machine's apt sources"; exit 1; }

bash "$(dirname "$0")/../install-apt.sh" debootstrap debootstrap

work=$(mktemp -d "${out%/}.work.XXXXXX")
cleanup() {
  # debootstrap may leave /proc and /sys mounted in the target when it fails.
  for m in proc sys dev/pts dev; do umount -l "$work/rootfs/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
root=$work/rootfs
t0=$SECONDS
log "debootstrap $suite (minbase) from the machine's Debian mirror, ~1 min"
debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$suite" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

# The machine's sources (the suite, its updates and the security archive), then every update.
if [[ "$sources_file" == */debian.sources ]]; then
  rm -f "$root/etc/apt/sources.list"
  cp "$sources_file" "$root/etc/apt/sources.list.d/debian.sources"
else
  grep -E '^deb\s' "$sources_file" >"$root/etc/apt/sources.list"
fi
cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# As Debian's -slim images: no documentation, manual pages or translations (copyright files stay).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$root/etc/apt/apt.conf.d/slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
chroot "$root" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -y -qq upgrade >/dev/null
chroot "$root" apt-get clean

for pkg in "$@"; do
  log "downloading Debian's $pkg and its dependencies"
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -y -qq install --download-only "$pkg" >/dev/null
  mkdir -p "$work/debs/$pkg"
  mv "$root"/var/cache/apt/archives/*.deb "$work/debs/$pkg/"
  chroot "$root" apt-get clean
done

# Slim: what the dpkg configuration above keeps out of later installs, and the package lists.
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/var/log/apt/*
rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
for m in proc sys dev/pts dev; do ! mountpoint -q "$root/$m" || umount -l "$root/$m"; done
find "$root/dev" "$root/proc" "$root/sys" "$root/tmp" -mindepth 1 -delete

tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
rm -rf "$out"
mkdir -p "$out"
mv "$work/rootfs.tar" "$out/rootfs.tar"
[[ ! -d "$work/debs" ]] || mv "$work/debs" "$out/debs"
log "Debian $suite rootfs ready in $((SECONDS - t0)) s: $(du -h "$out/rootfs.tar" | cut -f1)"
