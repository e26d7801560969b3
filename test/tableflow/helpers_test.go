package tableflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/test/harness"
)

// cmdTimeout bounds one run of a client program.
const cmdTimeout = 90 * time.Second

// jsDir holds the reader and the kafkajs producer with their node_modules.
func jsDir() string { return filepath.Join(harness.RepoRoot(), "test", "tableflow", "js") }

// requireTool skips (or, with RUNNEL_REQUIRE_CLIENTS set, fails) a test
// whose client is missing; check returns why the client is unusable.
func requireTool(t *testing.T, name string, check func() error) {
	t.Helper()
	err := check()
	if err == nil {
		return
	}
	if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
		t.Fatalf("%s is required (RUNNEL_REQUIRE_CLIENTS is set) but unusable: %v", name, err)
	}
	t.Skipf("%s not available (%v); run scripts/test to install it", name, err)
}

// requireNodeModules needs node and the given packages installed in js/.
func requireNodeModules(t *testing.T, what string, pkgs ...string) {
	t.Helper()
	requireTool(t, what, func() error {
		if _, err := exec.LookPath("node"); err != nil {
			return err
		}
		for _, p := range pkgs {
			if _, err := os.Stat(filepath.Join(jsDir(), "node_modules", p)); err != nil {
				return fmt.Errorf("test/tableflow/js/node_modules/%s missing: run npm ci in test/tableflow/js", p)
			}
		}
		return nil
	})
}

// requireReader needs what js/read_table.mjs runs on.
func requireReader(t *testing.T) {
	t.Helper()
	requireNodeModules(t, "the Iceberg reader (@duckdb/node-api, avsc)", "@duckdb/node-api", "avsc")
}

// tableRead is what js/read_table.mjs prints.
type tableRead struct {
	Rows         int64              `json:"rows"`
	ManifestRows int64              `json:"manifest_rows"`
	Sums         map[string]*string `json:"sums"`
	Snapshot     *string            `json:"snapshot"`
	Files        []string           `json:"files"`
}

// readTable runs the reader against the REST catalog at catalogURI and
// returns its result, or an error carrying its stderr when it fails.
func readTable(ctx context.Context, catalogURI, ns, table string, exprs ...string) (tableRead, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	args := append([]string{"read_table.mjs", catalogURI, ns, table}, exprs...)
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = jsDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return tableRead{}, fmt.Errorf("read_table.mjs %s: %v: %s", strings.Join(args[1:], " "), err, strings.TrimSpace(stderr.String()))
	}
	var res tableRead
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return tableRead{}, fmt.Errorf("read_table.mjs printed %q: %v", stdout.String(), err)
	}
	return res, nil
}

// checkRead compares a reader's result with the expected row count and
// sums (each an exact number: integers, decimals, or doubles that are
// exact in binary). Sums compare as numbers, so "12.50" equals "12.5" and
// DuckDB's "3.0" for a double equals "3".
func checkRead(t *testing.T, what string, got tableRead, rows int64, sums map[string]*big.Rat) {
	t.Helper()
	if got.Rows != rows {
		t.Errorf("%s: reader counted %d rows, want %d", what, got.Rows, rows)
	}
	if got.ManifestRows != rows {
		t.Errorf("%s: manifests record %d rows, want %d", what, got.ManifestRows, rows)
	}
	exprs := make([]string, 0, len(sums))
	for e := range sums {
		exprs = append(exprs, e)
	}
	sort.Strings(exprs)
	for _, e := range exprs {
		want := sums[e]
		s, ok := got.Sums[e]
		switch {
		case !ok:
			t.Errorf("%s: reader printed no sum of %s", what, e)
		case s == nil && want != nil:
			t.Errorf("%s: sum(%s) is NULL, want %s", what, e, want.RatString())
		case s == nil:
		case want == nil:
			t.Errorf("%s: sum(%s) = %s, want NULL", what, e, *s)
		default:
			r, ok := new(big.Rat).SetString(*s)
			if !ok {
				t.Errorf("%s: sum(%s) = %q is not a number", what, e, *s)
			} else if r.Cmp(want) != 0 {
				t.Errorf("%s: sum(%s) = %s, want %s", what, e, *s, want.FloatString(6))
			}
		}
	}
}

// sums holds expected sums by SQL expression, accumulated exactly; an
// expression never added to is expected to sum to NULL if listed as nil.
type sums map[string]*big.Rat

func (s sums) add(expr string, r *big.Rat) {
	if s[expr] == nil {
		s[expr] = new(big.Rat)
	}
	s[expr].Add(s[expr], r)
}

func (s sums) addInt(expr string, v int64) { s.add(expr, new(big.Rat).SetInt64(v)) }

// addFloat adds a double; the test's doubles are multiples of 1/4, exact
// in binary, so the sum is the same in any order.
func (s sums) addFloat(expr string, v float64) { s.add(expr, new(big.Rat).SetFloat64(v)) }

// ratOfCents is a decimal(p, 2) value given in hundredths.
func ratOfCents(cents int64) *big.Rat { return big.NewRat(cents, 100) }
