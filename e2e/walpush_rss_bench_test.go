package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/internal/testserver"
)

// BenchmarkWALPushPeakRSS measures the peak RSS of one `walnut wal-push
// --pool-size N` that stores N full segments of table data at once, as
// PostgreSQL's archive_command does with a backlog, against every store,
// with zstd and with compression off. It reports the largest peak over
// its runs as peak-RSS-MiB, and asserts nothing: `make bench-go` runs it.
//
//	go test -run '^$' -bench WALPushPeakRSS -benchtime 3x ./e2e/
//
// It also reports the CPU time walnut spent per segment. BENCH_WALNUT
// names another walnut binary to measure (an older build, to compare);
// BENCH_GOGC, BENCH_GOMEMLIMIT and BENCH_GODEBUG (gctrace=1 logs each
// collection) are passed to walnut as GOGC, GOMEMLIMIT and GODEBUG.
func BenchmarkWALPushPeakRSS(b *testing.B) {
	const maxPool = 8
	segs := fullSegments(b, maxPool)
	stores := []struct {
		name string
		open func(b *testing.B) (prefix string, env []string)
	}{
		{"file", func(b *testing.B) (string, []string) {
			return "file://" + b.TempDir(), nil
		}},
		{"s3", func(b *testing.B) (string, []string) {
			m := testserver.MinIO(b)
			m.CreateBucket(b, s3Bucket)
			return "s3://" + s3Bucket + "/bench", m.Env("")
		}},
		// S3 over TLS, as AWS is reached: the body is not signed chunk by
		// chunk (TLS protects it), unlike on plain HTTP.
		{"s3tls", func(b *testing.B) (string, []string) {
			m := testserver.MinIOTLS(b)
			m.CreateBucket(b, s3Bucket)
			return "s3://" + s3Bucket + "/bench", m.Env("")
		}},
		{"azure", func(b *testing.B) (string, []string) {
			az := testserver.StartAzurite(b)
			az.CreateContainer(b, "walnut")
			return "azure://walnut/bench", az.Env()
		}},
		{"gcs", func(b *testing.B) (string, []string) {
			f := testserver.StartFakeGCS(b)
			f.CreateBucket(b, "walnut")
			return "gs://walnut/bench", []string{"STORAGE_EMULATOR_HOST=" + f.URL}
		}},
		{"swift", func(b *testing.B) (string, []string) {
			s := testserver.Swift(b)
			s.CreateContainer(b, "walnut")
			return "swift://walnut/bench", s.Env()
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			prefix, env := st.open(b)
			run := 0
			for _, codec := range []string{"zstd", "none"} {
				for _, pool := range []int{1, 4, 8} {
					b.Run(fmt.Sprintf("%s/pool%d", codec, pool), func(b *testing.B) {
						var peak, stored int64
						var cpu float64
						runs := 0
						for b.Loop() {
							run++
							rss, n, c := pushOnce(b, segs[:pool], fmt.Sprintf("%s/run%d", prefix, run),
								append([]string{"WALNUT_COMPRESSION=" + codec}, env...))
							peak, stored, cpu = max(peak, rss), n, cpu+c
							runs++
						}
						b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
						b.ReportMetric(float64(stored)/float64(pool)/(1<<20), "stored-MiB/seg")
						b.ReportMetric(cpu/float64(runs*pool)*1000, "CPU-ms/seg")
					})
				}
			}
		})
	}
}

// fullSegments makes n WAL segments full of table data (rows of md5 text,
// which zstd shrinks to about half, as busy servers' WAL) and returns
// copies of them, oldest first.
func fullSegments(b *testing.B, n int) []string {
	c := testpg.New(b, testpg.Options{})
	first := c.QueryString(b, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	c.Exec(b, fmt.Sprintf("CREATE TABLE filler AS SELECT g, md5(g::text) AS v FROM generate_series(1, %d) g", 170000*(n+1)))
	c.QueryString(b, "SELECT pg_walfile_name(pg_switch_wal())")
	entries, err := os.ReadDir(filepath.Join(c.DataDir, "pg_wal"))
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if len(e.Name()) == 24 && e.Name() > first {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) < n {
		b.Fatalf("only %d full segments after %s", len(names), first)
	}
	dir := b.TempDir()
	var out []string
	for _, name := range names[:n] {
		data, err := os.ReadFile(filepath.Join(c.DataDir, "pg_wal", name))
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// pushOnce lays segs out in a fresh pg_wal with every one ready, runs one
// wal-push of the first with a pool as large as segs, and returns its peak
// RSS, the bytes it stored and the CPU seconds it used.
func pushOnce(b *testing.B, segs []string, prefix string, env []string) (rss, stored int64, cpu float64) {
	b.StopTimer()
	walDir := filepath.Join(b.TempDir(), "pg_wal")
	if err := os.MkdirAll(filepath.Join(walDir, "archive_status"), 0o700); err != nil {
		b.Fatal(err)
	}
	for _, s := range segs {
		dst := filepath.Join(walDir, filepath.Base(s))
		if err := copyFile(s, dst); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(walDir, "archive_status", filepath.Base(s)+".ready"), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	// GNU time reports the peak RSS of walnut alone. The rusage of a
	// child of this test would count the test's own memory: a child's
	// high-water mark starts at its parent's size when it is forked.
	timeOut := filepath.Join(walDir, "time.out")
	bin := walnutBin
	if v := os.Getenv("BENCH_WALNUT"); v != "" {
		bin = v
	}
	cmd := exec.Command(gnuTime(b), "-f", "%M %U %S", "-o", timeOut,
		bin, "--log-format", "json", "wal-push", "--pool-size", fmt.Sprint(len(segs)),
		filepath.Join(walDir, filepath.Base(segs[0])))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "WALNUT_PREFIX=" + prefix}, env...)
	if v := os.Getenv("BENCH_GOMEMLIMIT"); v != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+v)
	}
	if v := os.Getenv("BENCH_GOGC"); v != "" {
		cmd.Env = append(cmd.Env, "GOGC="+v)
	}
	var stderr bytes.Buffer
	if v := os.Getenv("BENCH_GODEBUG"); v != "" {
		cmd.Env = append(cmd.Env, "GODEBUG="+v)
		defer func() { b.Log(stderr.String()) }()
	}
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("wal-push: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		var n int64
		if i := strings.Index(line, `"stored_bytes":`); i >= 0 {
			fmt.Sscan(line[i+len(`"stored_bytes":`):], &n)
			stored += n
		}
	}
	out, err := os.ReadFile(timeOut)
	if err != nil {
		b.Fatal(err)
	}
	var kib int64
	var user, sys float64
	if _, err := fmt.Sscan(string(out), &kib, &user, &sys); err != nil {
		b.Fatalf("GNU time wrote %q: %v", out, err)
	}
	return kib << 10, stored, user + sys
}

// gnuTime finds GNU time, which bench/run.sh needs too.
func gnuTime(b *testing.B) string {
	p, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		b.Skipf("GNU time missing (Debian: apt-get install time): %v", err)
	}
	return p
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
