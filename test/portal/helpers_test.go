package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/test/harness"
)

// driveTimeout bounds one run of the browser driver.
const driveTimeout = 3 * time.Minute

func jsDir() string { return filepath.Join(harness.RepoRoot(), "test", "portal", "js") }

// chromium is Debian's headless browser.
func chromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium not on PATH (apt-get install chromium)")
}

// requireBrowser needs chromium, node and puppeteer-core in js/.
func requireBrowser(t *testing.T) string {
	t.Helper()
	var path string
	harness.RequireTool(t, "headless Chromium with puppeteer-core", func() error {
		var err error
		if path, err = chromium(); err != nil {
			return err
		}
		if _, err := exec.LookPath("node"); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(jsDir(), "node_modules", "puppeteer-core")); err != nil {
			return fmt.Errorf("test/portal/js/node_modules/puppeteer-core missing: run npm ci in test/portal/js")
		}
		return nil
	})
	return path
}

func requireKcat(t *testing.T) {
	t.Helper()
	harness.RequireTool(t, "kcat", func() error {
		_, err := exec.LookPath("kcat")
		return err
	})
}

// step is one step of a browser plan (see js/portal.mjs).
type step map[string]any

// plan is what js/portal.mjs runs.
type plan struct {
	Base     string `json:"base"`
	Chromium string `json:"chromium"`
	Shots    string `json:"shots,omitempty"`
	Steps    []step `json:"steps"`
}

// stepOut is one step's answer: what the page showed.
type stepOut struct {
	Step         string              `json:"step"`
	Name         string              `json:"name"`
	Who          string              `json:"who"`
	Results      []searchResult      `json:"results"`
	Facets       map[string][]string `json:"facets"`
	Head         string              `json:"head"`
	Schema       string              `json:"schema"`
	PIIFields    []string            `json:"piiFields"`
	Contract     string              `json:"contract"`
	Sample       string              `json:"sample"`
	Activity     string              `json:"activity"`
	Lineage      string              `json:"lineage"`
	LineageNodes int                 `json:"lineageNodes"`
	FullNodes    int                 `json:"fullLineageNodes"`
	Diff         [][]string          `json:"diff"`
	Answer       string              `json:"answer"`
	Rows         [][]string          `json:"rows"`
	After        string              `json:"after"`
	Credentials  string              `json:"credentials"`
}

type searchResult struct {
	Topic   string   `json:"topic"`
	Matched []string `json:"matched"`
	Tags    []string `json:"tags"`
}

// drive runs p in the browser and returns each step's answer by name; a
// failed step, console error or failed request fails the test.
func drive(t *testing.T, p plan) map[string]stepOut {
	t.Helper()
	in, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), driveTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "portal.mjs")
	cmd.Dir = jsDir()
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	outs := map[string]stepOut{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var o stepOut
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("portal.mjs printed %q: %v", line, err)
		}
		outs[o.Name] = o
	}
	if runErr != nil {
		t.Fatalf("the browser run failed (%v):\n%s\nsteps done: %s", runErr, strings.TrimSpace(stderr.String()), stdout.String())
	}
	return outs
}

// rowWith returns the first row having every one of cells.
func rowWith(rows [][]string, cells ...string) []string {
	for _, r := range rows {
		have := map[string]bool{}
		for _, c := range r {
			have[c] = true
		}
		ok := true
		for _, c := range cells {
			if !have[c] {
				ok = false
				break
			}
		}
		if ok {
			return r
		}
	}
	return nil
}
