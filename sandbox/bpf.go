package sandbox

import (
	"encoding/binary"
	"fmt"
)

// insn is one classic BPF instruction, as seccomp(2) loads it.
type insn struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// Classic BPF opcodes (linux/bpf_common.h), the subset seccomp allows.
const (
	bpfLD   = 0x00
	bpfLDX  = 0x01
	bpfST   = 0x02
	bpfSTX  = 0x03
	bpfALU  = 0x04
	bpfJMP  = 0x05
	bpfRET  = 0x06
	bpfMISC = 0x07

	bpfW   = 0x00
	bpfABS = 0x20
	bpfIMM = 0x00
	bpfMEM = 0x60
	bpfLEN = 0x80

	bpfADD = 0x00
	bpfSUB = 0x10
	bpfMUL = 0x20
	bpfDIV = 0x30
	bpfOR  = 0x40
	bpfAND = 0x50
	bpfLSH = 0x60
	bpfRSH = 0x70
	bpfNEG = 0x80
	bpfMOD = 0x90
	bpfXOR = 0xa0

	bpfJA   = 0x00
	bpfJEQ  = 0x10
	bpfJGT  = 0x20
	bpfJGE  = 0x30
	bpfJSET = 0x40

	bpfK = 0x00
	bpfX = 0x08
	bpfA = 0x10

	bpfTAX = 0x00
	bpfTXA = 0x80
)

// seccompData is struct seccomp_data: what a filter reads.
type seccompData struct {
	NR                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// bytes lays the data out as the kernel does, in native byte order.
func (d *seccompData) bytes() []byte {
	b := make([]byte, 64)
	e := binary.NativeEndian
	e.PutUint32(b[0:], uint32(d.NR))
	e.PutUint32(b[4:], d.Arch)
	e.PutUint64(b[8:], d.InstructionPointer)
	for i, a := range d.Args {
		e.PutUint64(b[16+8*i:], a)
	}
	return b
}

// runBPF evaluates a seccomp program on data as the kernel would and
// returns the action it gives. It lets tests read a filter's decisions
// without loading it, and PID 1 tell which error a notified call gets.
func runBPF(prog []insn, d *seccompData) (uint32, error) {
	data := d.bytes()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		k := in.K
		switch in.Code & 0x07 {
		case bpfLD:
			switch in.Code &^ 0x07 {
			case bpfW | bpfABS:
				if k%4 != 0 || int(k)+4 > len(data) {
					return 0, fmt.Errorf("pc %d: load at %d", pc, k)
				}
				a = binary.NativeEndian.Uint32(data[k:])
			case bpfW | bpfIMM:
				a = k
			case bpfW | bpfMEM:
				a = mem[k%16]
			case bpfW | bpfLEN:
				a = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: load code %#x", pc, in.Code)
			}
		case bpfLDX:
			switch in.Code &^ 0x07 {
			case bpfW | bpfIMM:
				x = k
			case bpfW | bpfMEM:
				x = mem[k%16]
			case bpfW | bpfLEN:
				x = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: ldx code %#x", pc, in.Code)
			}
		case bpfST:
			mem[k%16] = a
		case bpfSTX:
			mem[k%16] = x
		case bpfALU:
			v := k
			if in.Code&bpfX != 0 {
				v = x
			}
			switch in.Code & 0xf0 {
			case bpfADD:
				a += v
			case bpfSUB:
				a -= v
			case bpfMUL:
				a *= v
			case bpfDIV:
				if v == 0 {
					return 0, nil
				}
				a /= v
			case bpfMOD:
				if v == 0 {
					return 0, nil
				}
				a %= v
			case bpfOR:
				a |= v
			case bpfAND:
				a &= v
			case bpfXOR:
				a ^= v
			case bpfLSH:
				a <<= v % 32
			case bpfRSH:
				a >>= v % 32
			case bpfNEG:
				a = -a
			}
		case bpfJMP:
			v := k
			if in.Code&bpfX != 0 {
				v = x
			}
			var taken bool
			switch in.Code & 0xf0 {
			case bpfJA:
				pc += int(k)
				continue
			case bpfJEQ:
				taken = a == v
			case bpfJGT:
				taken = a > v
			case bpfJGE:
				taken = a >= v
			case bpfJSET:
				taken = a&v != 0
			default:
				return 0, fmt.Errorf("pc %d: jump code %#x", pc, in.Code)
			}
			if taken {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case bpfRET:
			if in.Code&0x18 == bpfA {
				return a, nil
			}
			return k, nil
		case bpfMISC:
			if in.Code&0xf8 == bpfTXA {
				a = x
			} else {
				x = a
			}
		}
	}
	return 0, fmt.Errorf("fell off the end of the program")
}

// guardedArch is an ABI whose ioctl the terminal guard checks: its
// AUDIT_ARCH value and its ioctl number.
type guardedArch struct {
	audit   uint32
	ioctlNR int32
}

// terminalGuard is the first part of every filter sbx loads: ioctl
// TIOCSTI (push a byte into a terminal's input) and TIOCLINUX (the
// console's, selection paste among them) answer deny, on every ABI the
// filter lets through. The command is compared on its low 32 bits only,
// as the kernel reads it (an unsigned int): a filter that compares all
// 64 is bypassed by setting the high ones (CVE-2019-10063). Other calls
// fall through to the program that follows.
func terminalGuard(arches []guardedArch, deny uint32) []insn {
	const tiocsti, tioclinux = 0x5412, 0x541C
	low := uint32(24) // args[1]'s low half: little endian
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 {
		low = 28
	}
	// Per ABI a block of 7; then a jump over the denial, and the denial.
	n := len(arches)
	denyAt := 7*n + 1
	var prog []insn
	for i, a := range arches {
		b := 7 * i
		prog = append(prog,
			insn{Code: bpfLD | bpfW | bpfABS, K: 4},
			insn{Code: bpfJMP | bpfJEQ | bpfK, Jt: 0, Jf: 5, K: a.audit},
			insn{Code: bpfLD | bpfW | bpfABS, K: 0},
			insn{Code: bpfJMP | bpfJEQ | bpfK, Jt: 0, Jf: 3, K: uint32(a.ioctlNR)},
			insn{Code: bpfLD | bpfW | bpfABS, K: low},
			insn{Code: bpfJMP | bpfJEQ | bpfK, Jt: uint8(denyAt - (b + 6)), Jf: 0, K: tiocsti},
			insn{Code: bpfJMP | bpfJEQ | bpfK, Jt: uint8(denyAt - (b + 7)), Jf: 0, K: tioclinux},
		)
	}
	return append(prog,
		insn{Code: bpfJMP | bpfJA, K: 1},
		insn{Code: bpfRET | bpfK, K: deny},
	)
}

// x32Bit marks the calls of x86_64's x32 ABI (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// numberedABI is an ABI on which numberedCalls decides: its AUDIT_ARCH
// value and the bit its call numbers carry (x32's, or none).
type numberedABI struct{ audit, bit uint32 }

// numberedCall is a call a filter decides by its number: nr answers ret.
type numberedCall struct{ nr, ret uint32 }

// numberedCalls answers each of calls (in the order of their numbers)
// with its action, on every ABI of abis; other calls fall through to the
// program that follows. A call numbered below the first leaves the block
// after one compare of its number: most calls are older than the table.
// A block per ABI jumps over its calls with 8 bits: 126 calls at most
// (the table of calls libseccomp may not know has fewer).
func numberedCalls(abis []numberedABI, calls []numberedCall) []insn {
	if len(calls) == 0 {
		return nil
	}
	var prog []insn
	for _, a := range abis {
		prog = append(prog,
			insn{Code: bpfLD | bpfW | bpfABS, K: 4},
			insn{Code: bpfJMP | bpfJEQ | bpfK, Jt: 0, Jf: uint8(2 + 2*len(calls)), K: a.audit},
			insn{Code: bpfLD | bpfW | bpfABS, K: 0},
			insn{Code: bpfJMP | bpfJGE | bpfK, Jt: 0, Jf: uint8(2 * len(calls)), K: calls[0].nr | a.bit},
		)
		for _, c := range calls {
			prog = append(prog,
				insn{Code: bpfJMP | bpfJEQ | bpfK, Jt: 0, Jf: 1, K: c.nr | a.bit},
				insn{Code: bpfRET | bpfK, K: c.ret},
			)
		}
	}
	return prog
}

// newerCalls answers ret to the calls of the ABI audit numbered above
// last, the highest the filter's author could name: calls newer than the
// filter, to which an allowlist's EPERM would be a refusal where ENOSYS
// says "not on this kernel", and lets a program fall back as it does on
// an older kernel (runc's -ENOSYS stub, libcontainer/seccomp/patchbpf,
// whose bound is the highest call its profile names; sbx's is the
// highest it knows, so that every call it knows keeps the profile's
// answer). Numbers from 1<<30 on fall through: on x86_64 they are x32's,
// which the filter kills, and no architecture's table reaches them.
func newerCalls(audit, last, ret uint32) []insn {
	return []insn{
		{Code: bpfLD | bpfW | bpfABS, K: 4},
		{Code: bpfJMP | bpfJEQ | bpfK, Jt: 0, Jf: 4, K: audit},
		{Code: bpfLD | bpfW | bpfABS, K: 0},
		{Code: bpfJMP | bpfJGE | bpfK, Jt: 2, Jf: 0, K: x32Bit},
		{Code: bpfJMP | bpfJGT | bpfK, Jt: 0, Jf: 1, K: last},
		{Code: bpfRET | bpfK, K: ret},
	}
}
