package tests

import (
	"net"
	"os"
	"slices"
	"strings"
	"testing"
)

// hostListener listens on a loopback port of the host's network namespace.
func hostListener(t *testing.T) string {
	t.Helper()
	return listen(t, "tcp", "127.0.0.1:0", nil).Addr().String()
}

// listen accepts connections on network/addr until the test ends,
// closing each at once after calling accepted (if not nil).
func listen(t *testing.T, network, addr string, accepted func()) net.Listener {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if accepted != nil {
				accepted()
			}
			c.Close()
		}
	}()
	return l
}

// TestNetwork tries to break network isolation: by default only a working
// loopback, and none of the host's; --net host shares the host's.
func TestNetwork(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	addr := hostListener(t)

	t.Run("only lo", func(t *testing.T) {
		t.Parallel()
		r := mustSh(t, `tail -n +3 /proc/net/dev | cut -d: -f1`)
		if got := lines(r.stdout); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("interfaces inside: %q, want only lo", got)
		}
	})

	t.Run("lo up", func(t *testing.T) {
		t.Parallel()
		r := helper(t, nil, "loopback")
		if got := strings.TrimSpace(r.stdout); r.code != 0 || got != "ok" {
			t.Errorf("TCP over the sandbox's loopback: %q\n%s", got, r)
		}
	})

	t.Run("host loopback unreachable", func(t *testing.T) {
		t.Parallel()
		r := helper(t, nil, "dial", addr)
		if got := strings.TrimSpace(r.stdout); r.code != 0 || got == "ok" {
			t.Errorf("dial host listener %s from inside: %q\n%s", addr, got, r)
		}
	})

	t.Run("abstract unix sockets of the host", func(t *testing.T) {
		t.Parallel()
		// Abstract sockets belong to the network namespace: a host one must be invisible.
		name := "@sbx-test-" + strings.ReplaceAll(t.Name(), "/", "-")
		l, err := net.Listen("unix", name)
		if err != nil {
			t.Skipf("skipped: cannot listen on an abstract socket: %v", err)
		}
		defer l.Close()
		r := mustSh(t, `grep -c -- '`+name[1:]+`' /proc/net/unix || true`)
		if got := strings.TrimSpace(r.stdout); got != "0" {
			t.Errorf("the host's abstract socket %s is visible inside: %q", name, got)
		}
	})

	t.Run("net host", func(t *testing.T) {
		t.Parallel()
		r := helper(t, []string{"--net", "host"}, "dial", addr)
		if got := strings.TrimSpace(r.stdout); r.code != 0 || got != "ok" {
			t.Errorf("--net host: dial %s: %q\n%s", addr, got, r)
		}
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil && len(b) > 0 {
			r := mustSh(t, `cat /etc/resolv.conf`, "--net", "host")
			if r.stdout != string(b) {
				t.Errorf("--net host: /etc/resolv.conf inside %q, host %q", r.stdout, b)
			}
		}
	})
}
