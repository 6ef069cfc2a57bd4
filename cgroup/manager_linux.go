package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Errors a caller maps to exit 125, each with its fix (Hint).
var (
	ErrNoUserManager = errors.New("no systemd user manager reachable")
	ErrNoCgroup2     = errors.New("no cgroup v2 hierarchy")
	ErrNotDelegated  = errors.New("controller not delegated")
)

// Error is an error of this package with a one-line fix.
type Error struct {
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Env is what the connection needs from the caller's environment,
// passed in: this package reads no environment and changes none.
type Env struct {
	RuntimeDir string // $XDG_RUNTIME_DIR
	BusAddress string // $DBUS_SESSION_BUS_ADDRESS
	User       string
	UID        int
}

const (
	sdDest      = "org.freedesktop.systemd1"
	sdPath      = dbus.ObjectPath("/org/freedesktop/systemd1")
	sdManager   = "org.freedesktop.systemd1.Manager"
	callTimeout = 25 * time.Second
)

// Manager is a connection to the caller's systemd user manager.
type Manager struct {
	conn    *dbus.Conn
	Version string
	Via     string // the address used
}

// Connect reaches the user manager: its private socket
// ($XDG_RUNTIME_DIR/systemd/private, no bus daemon in between) first,
// then the user bus ($DBUS_SESSION_BUS_ADDRESS, else
// $XDG_RUNTIME_DIR/bus). It never starts a bus (no dbus-launch) and
// probes the manager's Version before returning.
func Connect(env Env) (*Manager, error) {
	type try struct {
		addr string
		bus  bool
	}
	var tries []try
	if env.RuntimeDir != "" {
		tries = append(tries, try{"unix:path=" + filepath.Join(env.RuntimeDir, "systemd", "private"), false})
	}
	switch {
	case env.BusAddress != "":
		tries = append(tries, try{env.BusAddress, true})
	case env.RuntimeDir != "":
		tries = append(tries, try{"unix:path=" + filepath.Join(env.RuntimeDir, "bus"), true})
	}
	var errs []string
	for _, t := range tries {
		m, err := dial(t.addr, t.bus, env.UID)
		if err == nil {
			return m, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", strings.TrimPrefix(t.addr, "unix:path="), err))
	}
	why := "XDG_RUNTIME_DIR is not set"
	if len(errs) > 0 {
		why = strings.Join(errs, "; ")
	}
	return nil, &Error{
		Err:  fmt.Errorf("%w (%s)", ErrNoUserManager, why),
		Hint: fmt.Sprintf("limits need your systemd user manager: log in through a PAM session (not su/sudo) or run `loginctl enable-linger %s`, and keep XDG_RUNTIME_DIR set", userOr(env.User)),
	}
}

func userOr(u string) string {
	if u == "" {
		return "$USER"
	}
	return u
}

func dial(addr string, bus bool, uid int) (*Manager, error) {
	if p, ok := strings.CutPrefix(addr, "unix:path="); ok {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	conn, err := dbus.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(uid))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if bus {
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("hello: %w", err)
		}
	}
	m := &Manager{conn: conn, Via: addr}
	v, err := m.obj().GetProperty(sdManager + ".Version")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("probe the manager: %w", err)
	}
	m.Version, _ = v.Value().(string)
	return m, nil
}

func (m *Manager) obj() dbus.BusObject { return m.conn.Object(sdDest, sdPath) }

// Close ends the connection.
func (m *Manager) Close() error { return m.conn.Close() }

type property struct {
	Name  string
	Value dbus.Variant
}

type auxUnit struct {
	Name  string
	Props []property
}

// StartScope asks for a transient scope named name holding pid, with
// Delegate=yes, waits for its job and returns the scope's cgroup path
// (relative to the cgroup2 mount).
func (m *Manager) StartScope(name string, pid int, description string) (string, error) {
	return m.startUnit(name, []property{
		{"Description", dbus.MakeVariant(description)},
		{"PIDs", dbus.MakeVariant([]uint32{uint32(pid)})},
		{"Delegate", dbus.MakeVariant(true)},
		{"CollectMode", dbus.MakeVariant("inactive-or-failed")},
	}, "org.freedesktop.systemd1.Scope")
}

// startUnit starts a transient unit, waits for its job and returns its
// cgroup (iface is the unit type's D-Bus interface, which holds the
// ControlGroup property).
func (m *Manager) startUnit(name string, props []property, iface string) (string, error) {
	// Subscribe before starting, so that the job's end cannot be missed.
	sigc := make(chan *dbus.Signal, 16)
	m.conn.Signal(sigc)
	defer m.conn.RemoveSignal(sigc)
	if err := m.conn.AddMatchSignal(dbus.WithMatchInterface(sdManager), dbus.WithMatchMember("JobRemoved")); err != nil {
		// The private socket has no bus daemon to match on: the
		// manager sends its signals to subscribed peers directly.
		if !strings.Contains(m.Via, "/systemd/private") {
			return "", fmt.Errorf("subscribe to JobRemoved: %w", err)
		}
	}
	if call := m.obj().Call(sdManager+".Subscribe", 0); call.Err != nil {
		return "", fmt.Errorf("subscribe: %w", call.Err)
	}
	var job dbus.ObjectPath
	call := m.obj().Call(sdManager+".StartTransientUnit", 0, name, "fail", props, []auxUnit{})
	if call.Err != nil {
		return "", fmt.Errorf("start transient unit %s: %w", name, call.Err)
	}
	if err := call.Store(&job); err != nil {
		return "", fmt.Errorf("start transient unit %s: %w", name, err)
	}
	deadline := time.After(callTimeout)
	for done := false; !done; {
		select {
		case s := <-sigc:
			if s == nil || s.Name != sdManager+".JobRemoved" || len(s.Body) < 4 {
				continue
			}
			if p, _ := s.Body[1].(dbus.ObjectPath); p != job {
				continue
			}
			if result, _ := s.Body[3].(string); result != "done" {
				return "", fmt.Errorf("start transient unit %s: job %s", name, result)
			}
			done = true
		case <-deadline:
			return "", fmt.Errorf("start transient unit %s: no answer in %s", name, callTimeout)
		}
	}
	return m.unitCgroup(name, iface)
}

// unitCgroup reads a loaded unit's cgroup path.
func (m *Manager) unitCgroup(name, iface string) (string, error) {
	var unit dbus.ObjectPath
	if err := m.obj().Call(sdManager+".GetUnit", 0, name).Store(&unit); err != nil {
		return "", fmt.Errorf("look up %s: %w", name, err)
	}
	v, err := m.conn.Object(sdDest, unit).GetProperty(iface + ".ControlGroup")
	if err != nil {
		return "", fmt.Errorf("read the cgroup of %s: %w", name, err)
	}
	cg, _ := v.Value().(string)
	if cg == "" {
		return "", fmt.Errorf("%s has no cgroup", name)
	}
	return cg, nil
}

// ControlGroup is the user manager's own cgroup path (relative to the
// cgroup2 mount).
func (m *Manager) ControlGroup() (string, error) {
	v, err := m.obj().GetProperty(sdManager + ".ControlGroup")
	if err != nil {
		return "", err
	}
	cg, _ := v.Value().(string)
	return cg, nil
}
