package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// With a backlog of ready segments and pgbench writing, a pooled
// wal-push archives every file exactly once (one Put each, one object
// each), PostgreSQL's later calls for files stored ahead store nothing,
// and archive_status is PostgreSQL's alone: no .ready file is ever
// changed by walnut.
func TestWALPushPoolArchivesEachFileOnce(t *testing.T) {
	for _, pool := range []int{1, 4, 8} {
		t.Run(fmt.Sprintf("pool%d", pool), func(t *testing.T) {
			a := newArchive(t)
			// An empty archive_command holds archiving while WAL
			// accumulates, so the pool has a backlog to work on.
			src := archivingCluster(t, a, map[string]string{"archive_command": ""})
			src.Pgbench(t, "-i", "-s", "10", "-q")
			src.Exec(t, "CREATE TABLE filler AS SELECT g, md5(g::text) AS v FROM generate_series(1, 2000000) g")
			backlog := readyCount(t, src)
			if backlog < 16 {
				t.Fatalf("only %d segments ready before archiving starts; want a backlog of 16 or more", backlog)
			}

			watch := watchReady(t, src)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			load := src.Command(ctx, nil, filepath.Join(src.BinDir, "pgbench"), "-n", "-c", "2", "-T", "15", "postgres")
			if err := load.Start(); err != nil {
				t.Fatal(err)
			}
			cmd := fmt.Sprintf("%s --log-format json wal-push --pool-size %d %%p", walnutBin, pool)
			src.Exec(t, "ALTER SYSTEM SET archive_command = '"+cmd+"'")
			src.Exec(t, "SELECT pg_reload_conf()")
			load.Wait()
			switchAndWaitArchived(t, src)
			waitNoBacklog(t, src)
			changed := watch()

			if n := src.QueryString(t, "SELECT failed_count::text FROM pg_stat_archiver"); n != "0" {
				t.Errorf("archiver failed %s times\n%s", n, src.LogTail(20))
			}
			for _, c := range changed {
				t.Errorf("archive_status/%s changed while ready", c)
			}
			puts, skipped := walnutPushes(t, src)
			objects := map[string]int{}
			entries, err := os.ReadDir(filepath.Join(a.Path, "wal"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				name, _, _ := strings.Cut(e.Name(), "-")
				objects[name]++
			}
			for name, n := range objects {
				if n != 1 {
					t.Errorf("%s: %d objects in the archive, want 1", name, n)
				}
				if puts[name] != 1 {
					t.Errorf("%s: stored %d times, want once", name, puts[name])
				}
			}
			for name := range puts {
				if objects[name] == 0 {
					t.Errorf("%s: stored but not in the archive", name)
				}
			}
			if len(objects) < backlog {
				t.Fatalf("%d files archived, fewer than the %d ready at the start", len(objects), backlog)
			}
			if pool > 1 && skipped == 0 {
				t.Errorf("pool of %d: no call was answered by a file stored ahead", pool)
			}
			if pool == 1 && skipped != 0 {
				t.Errorf("pool of 1: %d calls answered by files stored ahead", skipped)
			}
			t.Logf("pool %d: %d files archived, %d calls answered from markers", pool, len(objects), skipped)
		})
	}
}

func readyCount(t *testing.T, c *testpg.Cluster) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(c.DataDir, "pg_wal", "archive_status", "*.ready"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// waitNoBacklog waits until no file is left ready to archive.
func waitNoBacklog(t *testing.T, c *testpg.Cluster) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for readyCount(t, c) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d files still ready to archive after 2 minutes\n%s", readyCount(t, c), c.LogTail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchReady polls archive_status until the returned function is called,
// and then returns the .ready files whose inode, size or mtime changed
// while they existed. PostgreSQL only creates them and renames them to
// .done.
func watchReady(t *testing.T, c *testpg.Cluster) func() []string {
	t.Helper()
	dir := filepath.Join(c.DataDir, "pg_wal", "archive_status")
	type state struct {
		ino   uint64
		size  int64
		mtime time.Time
	}
	seen := map[string]state{}
	changed := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".ready") {
					continue
				}
				fi, err := e.Info()
				if err != nil {
					continue // renamed to .done meanwhile
				}
				st := state{ino: fi.Sys().(*syscall.Stat_t).Ino, size: fi.Size(), mtime: fi.ModTime()}
				if old, ok := seen[e.Name()]; ok && old != st {
					changed[e.Name()] = true
				}
				seen[e.Name()] = st
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(stop)
		wg.Wait()
		if len(seen) == 0 {
			t.Fatal("no .ready file seen while archiving")
		}
		var out []string
		for name := range changed {
			out = append(out, name)
		}
		return out
	}
}

// walnutPushes reads walnut's JSON log lines from the server log and
// returns how many times each file was stored, and how many calls a
// marker answered.
func walnutPushes(t *testing.T, c *testpg.Cluster) (map[string]int, int) {
	t.Helper()
	f, err := os.Open(c.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	puts := map[string]int{}
	skipped := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec struct {
			Msg string `json:"msg"`
			Key string `json:"key"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("walnut log line %q: %v", line, err)
		}
		switch rec.Msg {
		case "archived", "archived ahead":
			name, _, _ := strings.Cut(strings.TrimPrefix(rec.Key, "wal/"), "-")
			puts[name]++
		case "already archived ahead with the same content":
			skipped++
		case "already archived with the same content":
			t.Errorf("a call went to the store to find %s already archived", rec.Key)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return puts, skipped
}
