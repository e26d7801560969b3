package kgo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// franzGoModule is the module whose pkg/kgo tests run here, at the version
// go.mod requires.
const franzGoModule = "github.com/twmb/franz-go"

// notBuilt lists the franz-go tests skipped by name because they need a
// feature Runnel does not have yet, with the reason. Everything else must
// pass. A name here that the suite no longer has fails the run, so the list
// cannot go stale unnoticed.
var notBuilt = map[string]string{}

// suiteEnv is the environment franz-go's test helpers read (helpers_test.go).
// 50,000 records keep the ETL chains (producer → three levels of consumer
// groups, six balancer variants, rebalances while they run) at well under a
// minute each while every transaction still spans many polls.
var suiteEnv = []string{
	"KGO_TEST_RF=1",
	"KGO_TEST_RECORDS=50000",
	"KGO_LOG_LEVEL=none",
}

// The SCRAM user of the suite's SCRAM tests.
const scramUser, scramPassword = "kgo", "kgo-secret"

// suiteTimeout bounds the franz-go run; it takes about two minutes.
const suiteTimeout = 10 * time.Minute

// TestFranzGoKgo compiles franz-go's pkg/kgo tests and runs them against
// one runnel broker; each franz-go test becomes a subtest with its output.
func TestFranzGoKgo(t *testing.T) {
	if testing.Short() {
		t.Skip("franz-go's suite takes minutes; skipped with -short")
	}
	dir := franzGoSource(t)
	bin := filepath.Join(t.TempDir(), "kgo.test")
	goCmd(t, dir, "test", "-c", "-o", bin, "./pkg/kgo")
	pkgDir := filepath.Join(dir, "pkg", "kgo")
	checkSkipList(t, bin, pkgDir)

	// A PLAINTEXT listener for the suite, and a SASL_PLAINTEXT one with a
	// SCRAM user for its SCRAM tests.
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte(scramUser+":"+scramPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := harness.Start(t, harness.Options{
		Listeners: []harness.Listener{{Name: "PLAINTEXT", SecurityProtocol: "PLAINTEXT"}, {Name: "SCRAM", SecurityProtocol: "SASL_PLAINTEXT"}},
		Config:    "sasl: {mechanisms: [SCRAM-SHA-256, SCRAM-SHA-512], bootstrap-users-file: " + users + "}\n",
	})
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	var names []string
	for _, name := range slices.Sorted(maps.Keys(notBuilt)) {
		names = append(names, regexp.QuoteMeta(name))
	}
	args := []string{"tool", "test2json", "-t", bin, "-test.v=test2json", "-test.timeout", (suiteTimeout - time.Minute).String()}
	if len(names) > 0 {
		args = append(args, "-test.skip", "^("+strings.Join(names, "|")+")$")
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = pkgDir // tests read their own sources (client_sweep_test.go)
	cmd.Env = append(append(os.Environ(), suiteEnv...), "KGO_SEEDS="+b.Kafka,
		"KGO_TEST_SCRAM_SEEDS="+b.Listeners["SCRAM"], "KGO_TEST_SCRAM="+scramUser+":"+scramPassword+":512")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	results := readEvents(t, out)
	runErr := cmd.Wait()
	t.Logf("%s pkg/kgo: %d tests ran in %v", filepath.Base(dir), len(results), time.Since(start).Round(time.Second))

	for _, name := range slices.Sorted(maps.Keys(notBuilt)) {
		results = append(results, &result{name: name, action: "skip"})
	}
	var passed, failed, skipped int
	for _, r := range results {
		switch r.action {
		case "pass":
			passed++
		case "skip":
			skipped++
		default:
			failed++
		}
	}
	t.Logf("passed %d, failed %d, skipped %d (%d of them not built yet)", passed, failed, skipped, len(notBuilt))
	for _, r := range results {
		t.Run(r.name, func(t *testing.T) {
			switch r.action {
			case "pass":
				if r.elapsed >= 5 {
					t.Logf("took %.1fs", r.elapsed)
				}
			case "skip":
				if reason, ok := notBuilt[r.name]; ok {
					t.Skip(reason)
				}
				t.Skipf("franz-go skipped it itself:\n%s", tail(r.output.String(), 2000))
			default:
				t.Fatalf("franz-go test %s (%.1fs):\n%s", r.action, r.elapsed, tail(r.output.String(), 20000))
			}
		})
	}
	if passed == 0 {
		t.Errorf("franz-go's suite passed no test")
	}
	if runErr != nil && failed == 0 {
		t.Fatalf("franz-go suite: %v\nstderr:\n%s", runErr, tail(stderr.String(), 8000))
	}
	if t.Failed() {
		t.Logf("broker log (tail):\n%s", tail(b.Log(), 8000))
	}
}

// franzGoSource makes sure franz-go's source, at the version go.mod
// requires, is in the module cache (go mod download fetches it through the
// module proxy if it is not) and returns its directory there.
func franzGoSource(t *testing.T) string {
	t.Helper()
	version := strings.TrimSpace(goCmd(t, harness.RepoRoot(), "list", "-m", "-f", "{{.Version}}", franzGoModule))
	var mod struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal([]byte(goCmd(t, harness.RepoRoot(), "mod", "download", "-json", franzGoModule+"@"+version)), &mod); err != nil {
		t.Fatalf("go mod download: %v", err)
	}
	if mod.Error != "" || mod.Dir == "" {
		t.Fatalf("go mod download %s@%s: %s", franzGoModule, version, mod.Error)
	}
	return mod.Dir
}

// goCmd runs the go command in dir and returns its standard output. The
// module cache is read-only, so franz-go's own go.mod and go.sum are used
// as they are (-mod=readonly), outside any workspace; modules its tests need
// and the cache lacks are fetched through the module proxy.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, tail(stderr.String(), 8000))
	}
	return stdout.String()
}

// checkSkipList fails if a name in notBuilt is not a test of the suite.
func checkSkipList(t *testing.T, bin, dir string) {
	t.Helper()
	cmd := exec.Command(bin, "-test.list", ".")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -test.list: %v", bin, err)
	}
	tests := strings.Fields(string(out))
	for name := range notBuilt {
		if !slices.Contains(tests, name) {
			t.Errorf("skip list names %s, which franz-go's suite no longer has", name)
		}
	}
}

// result is one top-level franz-go test: its final action (pass, fail or
// skip; empty if it never finished), time and output.
type result struct {
	name    string
	action  string
	elapsed float64
	output  strings.Builder
}

// readEvents reads test2json events until the stream ends and returns the
// top-level tests in the order they finished (unfinished ones last, failed).
func readEvents(t *testing.T, r interface{ Read([]byte) (int, error) }) []*result {
	t.Helper()
	byName := map[string]*result{}
	var order []*result
	get := func(name string) *result {
		if res, ok := byName[name]; ok {
			return res
		}
		res := &result{name: name}
		byName[name] = res
		return res
	}
	var trailer strings.Builder // output outside any test (a panic, a timeout)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Action  string
			Test    string
			Output  string
			Elapsed float64
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			trailer.WriteString(sc.Text() + "\n")
			continue
		}
		if ev.Test == "" {
			trailer.WriteString(ev.Output)
			continue
		}
		top, _, sub := strings.Cut(ev.Test, "/")
		res := get(top)
		if ev.Action == "output" {
			if res.output.Len() < 4<<20 {
				res.output.WriteString(ev.Output)
			}
			continue
		}
		if !sub && (ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip") {
			res.action, res.elapsed = ev.Action, ev.Elapsed
			order = append(order, res)
		}
	}
	if err := sc.Err(); err != nil {
		t.Errorf("reading franz-go's test events: %v", err)
	}
	var unfinished []string
	for name, res := range byName {
		if res.action == "" {
			unfinished = append(unfinished, name)
		}
	}
	sort.Strings(unfinished)
	for _, name := range unfinished {
		res := byName[name]
		res.action = "did not finish"
		fmt.Fprintf(&res.output, "\n(suite output outside any test:)\n%s", tail(trailer.String(), 8000))
		order = append(order, res)
	}
	return order
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
