package watch

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestWatcher: a set of files is reloaded when one of them changes (its
// content, or the file replaced by rename with the same size and time),
// appears or vanishes, once per change; Kick reloads every set.
func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "one")
	write(b, "two")
	write(c, "three")
	var mu sync.Mutex
	var got []string
	w := &Watcher{}
	w.Add(func(why string) { mu.Lock(); got = append(got, "ab "+why); mu.Unlock() }, a, b)
	w.Add(func(why string) { mu.Lock(); got = append(got, "c "+why); mu.Unlock() }, c)
	calls := func() []string { mu.Lock(); defer mu.Unlock(); out := got; got = nil; return out }

	w.Look()
	if g := calls(); len(g) != 0 {
		t.Fatalf("nothing changed, reloaded %v", g)
	}
	write(b, "two, longer")
	w.Look()
	w.Look()
	if g := calls(); len(g) != 1 || g[0] != "ab file changed" {
		t.Fatalf("one change: %v", g)
	}
	// Replaced by rename: same size and modification time, another inode.
	fi, _ := os.Stat(c)
	tmp := filepath.Join(dir, "c.new")
	write(tmp, "THREE")
	os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	if err := os.Rename(tmp, c); err != nil {
		t.Fatal(err)
	}
	w.Look()
	if g := calls(); len(g) != 1 || g[0] != "c file changed" {
		t.Fatalf("a file replaced by rename: %v", g)
	}
	os.Remove(a)
	w.Look()
	w.Look()
	write(a, "back")
	w.Look()
	if g := calls(); len(g) != 2 {
		t.Fatalf("a file gone and back: %v, want two reloads", g)
	}
	w.Kick("SIGHUP")
	if g := calls(); len(g) != 2 || g[0] != "ab SIGHUP" || g[1] != "c SIGHUP" {
		t.Fatalf("Kick: %v", g)
	}
	// Run looks by itself.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, 5*time.Millisecond)
	write(c, "three again, longer")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if g := calls(); len(g) == 1 && g[0] == "c file changed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not reload a changed file")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
