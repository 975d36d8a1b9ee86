package zone

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A key's timing, in its state file (Kzone.+alg+tag.state, beside the
// .key and .private files), as BIND keeps its keys' timing metadata:
//
//	; sshdyn DNSSEC key state: the times (UTC) this key enters each role
//	Published: 20261207061500   its DNSKEY is in the zone from then
//	Active: 20261207061500      it signs every RRset from then
//	DSPublish: 20261207061500   its CDS and CDNSKEY are published from then: its DS is to be at the parent
//	DSRemove: 20261209061500    its CDS and CDNSKEY are withdrawn then (another key's DS replaces it)
//	DSSubmitted: 20261208061500 the operator said its DS is at the parent (dnssec roll --ds-submitted)
//	Retired: 20261209061500     it neither signs nor is in the DNSKEY RRset from then
//
// A field absent or empty is a time not set: never, or (Published, Active,
// DSPublish) always. A key without a state file is a key of every role,
// always. The daemon reads the files at each signing pass; "sshdyn dnssec
// roll" writes them.
type keyTiming struct {
	Published, Active, DSPublish, DSRemove, DSSubmitted, Retired time.Time
}

// timeFormat is BIND's for key timing.
const timeFormat = "20060102150405"

var timingFields = []string{"Published", "Active", "DSPublish", "DSRemove", "DSSubmitted", "Retired"}

func (kt *keyTiming) field(name string) *time.Time {
	switch name {
	case "Published":
		return &kt.Published
	case "Active":
		return &kt.Active
	case "DSPublish":
		return &kt.DSPublish
	case "DSRemove":
		return &kt.DSRemove
	case "DSSubmitted":
		return &kt.DSSubmitted
	case "Retired":
		return &kt.Retired
	}
	return nil
}

// since reports whether t is set and not after now.
func since(t, now time.Time) bool { return !t.IsZero() && !t.After(now) }

// upTo reports whether an end time t is not yet reached at now.
func upTo(t, now time.Time) bool { return t.IsZero() || now.Before(t) }

// published, active and ds report the key's roles at now.
func (kt keyTiming) published(now time.Time) bool {
	return (kt.Published.IsZero() || since(kt.Published, now)) && upTo(kt.Retired, now)
}

func (kt keyTiming) active(now time.Time) bool {
	return (kt.Active.IsZero() || since(kt.Active, now)) && upTo(kt.Retired, now)
}

func (kt keyTiming) ds(now time.Time) bool {
	return (kt.DSPublish.IsZero() || since(kt.DSPublish, now)) && upTo(kt.DSRemove, now) && upTo(kt.Retired, now)
}

// retired reports whether the key has left the zone at now.
func (kt keyTiming) retired(now time.Time) bool { return since(kt.Retired, now) }

// events returns the times set, for the next wake-up.
func (kt keyTiming) events() []time.Time {
	return []time.Time{kt.Published, kt.Active, kt.DSPublish, kt.DSRemove, kt.Retired}
}

func statePath(keyFile string) string { return strings.TrimSuffix(keyFile, ".key") + ".state" }

// readTiming reads a key's state file; none is the always-everything
// timing.
func readTiming(keyFile string) (keyTiming, error) {
	var kt keyTiming
	path := statePath(keyFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return kt, nil
	}
	if err != nil {
		return kt, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == ';' {
			continue
		}
		name, value, ok := strings.Cut(text, ":")
		f := kt.field(strings.TrimSpace(name))
		if !ok || f == nil {
			return kt, fmt.Errorf("%s:%d: want NAME: YYYYMMDDHHMMSS, NAME one of %s", path, line, strings.Join(timingFields, ", "))
		}
		value = strings.TrimSpace(value)
		if value == "" {
			continue
		}
		t, err := time.Parse(timeFormat, value)
		if err != nil {
			return kt, fmt.Errorf("%s:%d: %q is not a time as YYYYMMDDHHMMSS (UTC)", path, line, value)
		}
		*f = t
	}
	return kt, sc.Err()
}

// writeTiming writes a key's state file.
func writeTiming(keyFile string, kt keyTiming) error {
	var b strings.Builder
	b.WriteString("; sshdyn DNSSEC key state: the times (UTC) this key enters each role; see sshdyn.toml(5), dnssec\n")
	for _, name := range timingFields {
		t := *kt.field(name)
		v := ""
		if !t.IsZero() {
			v = t.UTC().Format(timeFormat)
		}
		fmt.Fprintf(&b, "%s: %s\n", name, v)
	}
	path := statePath(keyFile)
	if err := writeFileAtomic(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return giveToDirOwner(path)
}

func filepathDir(p string) string { return filepath.Dir(p) }
