#!/bin/sh
# Runs once per cache build, as root in a chroot of the fresh debootstrap
# tree (tests/vm): the test users, their subordinate ids, lingering, and
# a boot trimmed to what the tests need. The unit files are already in
# /etc/systemd/system.
set -eu
user=sbxtest  # with subordinate ids, lingering: the tests run as this user
nosub=sbxnosub # without any: TestFallbackNoRanges runs as this one

echo sbx-vm >/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsbx-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts
useradd -m -s /bin/bash "$user"
useradd -m -s /bin/bash "$nosub"

# useradd may have given either user a range already (login.defs SUB_UID_*).
# None for $nosub; for $user, 65536 ids after the highest range there (and
# from 100000 at the least, as tests/testenv does on the host).
for f in /etc/subuid /etc/subgid; do
	touch "$f"
	id=$(id -u "$nosub")
	sed -i -e "/^$nosub:/d" -e "/^$id:/d" "$f"
	if ! grep -q "^$user:" "$f"; then
		start=$(awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' "$f")
		echo "$user:$start:65536" >>"$f"
	fi
done

# What `loginctl enable-linger` writes: logind starts user@UID.service at boot.
mkdir -p /var/lib/systemd/linger
touch "/var/lib/systemd/linger/$user"

ln -sf /etc/systemd/system/sbx-vm.target /etc/systemd/system/default.target
# Units and generators that cost boot time under emulation and test nothing.
for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
	fstrim.timer e2scrub_reap.service systemd-tmpfiles-clean.timer systemd-pstore.service \
	systemd-firstboot.service ldconfig.service systemd-hwdb-update.service \
	systemd-journal-catalog-update.service systemd-update-done.service \
	systemd-machine-id-commit.service systemd-modules-load.service kmod-static-nodes.service \
	modprobe@.service remote-fs.target sys-kernel-config.mount sys-kernel-debug.mount \
	sys-kernel-tracing.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
	proc-sys-fs-binfmt_misc.automount systemd-binfmt.service; do
	ln -sf /dev/null "/etc/systemd/system/$u"
done
mkdir -p /etc/systemd/system-generators
for g in systemd-cryptsetup-generator systemd-fstab-generator systemd-getty-generator \
	systemd-gpt-auto-generator systemd-hibernate-resume-generator \
	systemd-integritysetup-generator systemd-rc-local-generator systemd-run-generator \
	systemd-system-update-generator systemd-sysv-generator systemd-veritysetup-generator; do
	ln -sf /dev/null "/etc/systemd/system-generators/$g"
done
mkdir -p /opt

# Smaller image: nothing here reads documentation or translations.
rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/* /usr/share/doc/* \
	/usr/share/man/* /usr/share/info/* /usr/share/locale/*
