package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is the release's, set at build time by scripts/release.sh
// with -ldflags "-X main.version=..."; empty in other builds, which
// report the module's version and VCS revision instead.
var version string

// commit is the release's commit, set with version; other builds take it
// from the VCS stamp Go records (unless built with -buildvcs=false).
var commit string

// buildInfo is what sshdyn version prints: the version, the Go version
// and the commit the binary was built from.
type buildInfo struct {
	Version, Go, Commit string
	Modified            bool // built from a tree with changes not committed
}

// readBuildInfo describes this binary: the release version if set,
// else the module's version ("(devel)" from a checkout, or a pseudo
// version from go install), and the VCS revision Go recorded.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), Commit: commit}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	if b.Version == "" {
		b.Version = strings.TrimPrefix(info.Main.Version, "v")
		if b.Version == "" || b.Version == "(devel)" {
			b.Version = "dev"
		}
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				b.Commit = s.Value
			}
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is sshdyn version's line.
func (b buildInfo) String() string {
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("sshdyn %s (%s, commit %s)", b.Version, b.Go, commit)
}
