module sbx

go 1.26.0

require (
	github.com/spf13/pflag v1.1.0
	golang.org/x/sys v0.50.0
)

require github.com/godbus/dbus/v5 v5.2.4

require (
	github.com/landlock-lsm/go-landlock v0.11.2
	github.com/moby/profiles/seccomp v0.3.0
	github.com/opencontainers/runtime-spec v1.2.1
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/seccomp/libseccomp-golang v0.11.1
)

require kernel.org/pub/linux/libs/security/libcap/psx v1.2.78 // indirect
