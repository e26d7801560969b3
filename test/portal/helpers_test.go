package portal_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// step is one step for js/portal.mjs.
type step map[string]any

// setup is the first line js/portal.mjs reads.
type setup struct {
	Base     string `json:"base"`
	Chromium string `json:"chromium"`
	Shots    string `json:"shots,omitempty"`
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

// browser is one run of js/portal.mjs: a page in headless Chromium
// that batches of steps run in, one after the other.
type browser struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *bytes.Buffer
	cancel context.CancelFunc
}

// startBrowser starts the driver on the portal at base; the test's end
// stops it.
func startBrowser(t *testing.T, chromium, base, shots string) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), driveTimeout)
	b := &browser{cmd: exec.CommandContext(ctx, "node", "portal.mjs"), stderr: &bytes.Buffer{}, cancel: cancel}
	b.cmd.Dir = jsDir()
	b.cmd.Stderr = b.stderr
	var err error
	if b.in, err = b.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.out = bufio.NewScanner(stdout)
	b.out.Buffer(make([]byte, 64<<10), 16<<20)
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.in.Close()
		b.cmd.Wait()
		cancel()
	})
	line, _ := json.Marshal(setup{Base: base, Chromium: chromium, Shots: shots})
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs steps in the page and returns each step's answer by name; a
// failed step, console error or failed request fails the test.
func (b *browser) run(t *testing.T, steps ...step) map[string]stepOut {
	t.Helper()
	line, err := json.Marshal(map[string]any{"steps": steps})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		t.Fatalf("the browser driver is gone: %v\n%s", err, b.stderr)
	}
	outs := map[string]stepOut{}
	for b.out.Scan() {
		var o stepOut
		if err := json.Unmarshal(b.out.Bytes(), &o); err != nil {
			t.Fatalf("portal.mjs printed %q: %v", b.out.Text(), err)
		}
		if o.Step == "end" {
			return outs
		}
		outs[o.Name] = o
	}
	b.in.Close()
	err = b.cmd.Wait()
	done, _ := json.Marshal(outs)
	t.Fatalf("the browser run failed (%v):\n%s\nsteps done: %s", err, strings.TrimSpace(b.stderr.String()), done)
	return nil
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
