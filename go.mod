module sbx

go 1.26.0

require (
	github.com/spf13/pflag v1.1.0
	golang.org/x/sys v0.50.0
)

require github.com/godbus/dbus/v5 v5.2.4

require github.com/pelletier/go-toml/v2 v2.4.3
