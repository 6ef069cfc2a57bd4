package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Under the host's nested virtualization KVM hangs (and -cpu host asserts
// on MSR 0x10a), so the VM is emulated: multi-threaded TCG, a CPU model
// with what Debian's userland likes to find (about 1 s faster to boot
// than -cpu max).
const (
	qemuBinary = "qemu-system-x86_64"
	qemuCPU    = "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+rdrand"
)

// The virtio-serial ports, by name in the guest (see guest/run).
const (
	portCtl = "sbx.ctl"
	portOut = "sbx.out"
	portErr = "sbx.err"
)

// vmConfig is what one boot needs.
type vmConfig struct {
	kernel, initrd, image string
	console               string            // file for the serial console (ttyS0)
	ports                 map[string]string // virtio-serial port name -> host file
	mem                   int               // MiB
	smp                   int
	quiet                 bool // "quiet" on the kernel command line
}

// kernelCmdline is a pure cgroup v2 hierarchy with every controller
// (cgroup_no_v1=all), the console on the serial port, and a panic that
// ends the VM at once (panic=-1 reboots, and QEMU has -no-reboot).
func kernelCmdline(quiet bool) string {
	s := "console=ttyS0 panic=-1 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
	if quiet {
		s += " quiet"
	}
	return s
}

// qemuArgs is QEMU's command line for c: no network device, no display,
// no default devices, the root image read-only, output through files
// (QEMU's file chardev truncates on open: never /dev/stderr).
func qemuArgs(c vmConfig) []string {
	args := []string{
		"-M", "pc", "-accel", "tcg,thread=multi", "-cpu", qemuCPU,
		"-smp", strconv.Itoa(c.smp), "-m", strconv.Itoa(c.mem),
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-no-reboot",
		"-nic", "none",
		"-chardev", "file,id=console,path=" + qemuEscape(c.console), "-serial", "chardev:console",
		"-kernel", c.kernel, "-initrd", c.initrd, "-append", kernelCmdline(c.quiet),
		"-drive", "file=" + qemuEscape(c.image) + ",if=none,id=root,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=root",
		"-device", "virtio-rng-pci",
		"-device", "virtio-serial-pci",
	}
	for i, name := range []string{portCtl, portOut, portErr} {
		id := "port" + strconv.Itoa(i)
		args = append(args,
			"-chardev", "file,id="+id+",path="+qemuEscape(c.ports[name]),
			"-device", "virtserialport,chardev="+id+",name="+name)
	}
	return args
}

// qemuEscape doubles commas, QEMU's escape inside an option value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// follower copies what is appended to a file to w until stopped, like
// tail -f: QEMU's file chardevs are regular files that never end.
type follower struct {
	stop, done chan struct{}
	sync       chan chan struct{}
}

// follow starts following the file at path, which must exist.
func follow(path string, w io.Writer) (*follower, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fl := &follower{stop: make(chan struct{}), done: make(chan struct{}), sync: make(chan chan struct{})}
	go func() {
		defer close(fl.done)
		defer f.Close()
		buf := make([]byte, 64<<10)
		var synced []chan struct{} // to close at the next end of file
		stopping := false
		for {
			n, err := f.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				continue
			}
			if err != nil && err != io.EOF {
				fmt.Fprintf(os.Stderr, "vm: read %s: %v\n", path, err)
				return
			}
			for _, c := range synced {
				close(c)
			}
			synced = nil
			if stopping {
				return
			}
			select {
			case <-fl.stop:
				stopping = true // one more pass to the end of the file
			case c := <-fl.sync:
				synced = append(synced, c)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return fl, nil
}

// catchUp returns once the follower has copied the file up to its
// current end: what the guest wrote before an event it sent afterwards.
func (fl *follower) catchUp() {
	c := make(chan struct{})
	select {
	case fl.sync <- c:
		<-c
	case <-fl.done:
	}
}

// finish reads what is left and waits for the follower to end.
func (fl *follower) finish() {
	close(fl.stop)
	<-fl.done
}

// lineWriter calls fn with each complete line written to it.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = append(lw.buf, p...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(lw.buf[:i])
		lw.buf = lw.buf[i+1:]
		lw.fn(line)
	}
}

// event is one line of the control port (see guest/run).
type event struct {
	kind   string // "ready", "step" or "exit"
	status int    // of a step or of the job
	detail string // "ready": the guest's uptime and the system state
}

func parseEvent(line string) (event, bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return event{}, false
	}
	switch {
	case f[0] == "ready" && len(f) == 3:
		return event{kind: "ready", detail: "guest uptime " + f[1] + " s, system " + f[2]}, true
	case f[0] == "step" && len(f) == 3:
		n, err := strconv.Atoi(f[2])
		return event{kind: "step", status: n, detail: f[1]}, err == nil
	case f[0] == "exit" && len(f) == 2:
		n, err := strconv.Atoi(f[1])
		return event{kind: "exit", status: n}, err == nil
	}
	return event{}, false
}

// consoleTail returns the last lines of the console log, for a report.
func consoleTail(path string, maxLines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no console log: %v)", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "(empty)"
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if len(lines) > maxLines {
		lines = append([]string{fmt.Sprintf("(... %d earlier lines)", len(lines)-maxLines)}, lines[len(lines)-maxLines:]...)
	}
	return strings.Join(lines, "\n")
}
