# Sourced first by the test step (tests/vm): what the tests below stand on,
# in the output for the record. The user manager's controllers, and those of
# a transient scope with Delegate=yes, should include cpu, memory and pids.
uid=$(id -u)
echo "=== vm: kernel $(uname -r); $(id -un) (uid $uid), session ${XDG_SESSION_ID:-none}:" \
	"$(loginctl show-session "${XDG_SESSION_ID:-}" -p Class -p Type 2>&1 | tr '\n' ' ')"
echo "=== vm: XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-unset} DBUS_SESSION_BUS_ADDRESS=${DBUS_SESSION_BUS_ADDRESS:-unset}"
echo "=== vm: /etc/subuid: $(grep "^$(id -un):" /etc/subuid)  /etc/subgid: $(grep "^$(id -un):" /etc/subgid)"
echo "=== vm: cgroup mounts: $(grep cgroup /proc/mounts | cut -d' ' -f2,3 | tr '\n' ' ')"
echo "=== vm: /sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/cgroup.controllers:" \
	"$(cat "/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/cgroup.controllers")"
systemd-run --user --scope --quiet -p Delegate=yes /bin/sh -c '
	cg=$(cut -d: -f3 /proc/self/cgroup)
	echo "=== vm: systemd-run --user --scope -p Delegate=yes: /proc/self/cgroup: $(cat /proc/self/cgroup)"
	echo "=== vm: its cgroup.controllers: $(cat "/sys/fs/cgroup$cg/cgroup.controllers")"
' || echo "=== vm: systemd-run --user --scope failed"
