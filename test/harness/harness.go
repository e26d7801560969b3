// Package harness builds the runnel binary and runs it as a child process
// for end-to-end and system tests: fresh data directories, free loopback
// ports, graceful stop, SIGKILL and restart.
package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds ./cmd/runnel once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "runnel-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "runnel")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/runnel")
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Main runs a package's tests and then removes the binary Binary built, so
// repeated runs do not leave a copy behind each time. Call it from TestMain:
// os.Exit(harness.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if buildPath != "" {
		_ = os.RemoveAll(filepath.Dir(buildPath))
	}
	return code
}

// RepoRoot is the module root.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call in this process returned: the kernel may hand the
// same ephemeral port to listeners opened and closed in turn, and a broker
// given one port twice (etcd client and peer) refuses its configuration.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// Options describe one broker process.
type Options struct {
	BrokerID int
	// DataDir defaults to a new t.TempDir().
	DataDir string
	// ObjectStore URL; empty = the data dir's default.
	ObjectStore string
	// EtcdEndpoints of another broker's embedded member; empty = embedded.
	EtcdEndpoints string
	// Config is YAML written to a file and passed with --config.
	Config string
	// Args are extra command-line arguments.
	Args []string
	// Env is extra environment.
	Env []string
	// Listeners, when set, replace the single PLAINTEXT listener: each
	// gets a free loopback port (Proc.Listeners maps its name to
	// host:port, and Proc.Kafka is the first). Config must not set
	// listeners itself.
	Listeners []Listener
	// HTTPS says the broker's HTTP servers speak TLS (Config sets tls):
	// readiness is then probed over HTTPS, without verifying the
	// certificate.
	HTTPS bool
}

// Listener is a Kafka listener of a broker process.
type Listener struct {
	Name             string
	SecurityProtocol string
}

// Proc is a running (or stopped) broker process.
type Proc struct {
	t        testing.TB
	opts     Options
	Kafka    string // host:port
	HTTP     string // host:port
	Registry string // host:port of the schema registry
	// Listeners maps each Options.Listeners name to its host:port.
	Listeners map[string]string
	EtcdURL   string // client URL of the embedded member (if any)
	etcdPeer  int
	cmd       *exec.Cmd
	logPath   string
	done      chan struct{}
	mu        sync.Mutex
	paused    bool
}

// Start runs `runnel serve` with fresh ports and waits for /readyz.
func Start(t testing.TB, opts Options) *Proc {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, opts: opts}
	p.logPath = filepath.Join(opts.DataDir, fmt.Sprintf("broker-%d.log", opts.BrokerID))
	t.Cleanup(p.Stop)
	// A free port may be taken by another process between picking it and
	// the broker binding it: pick new ports and try again.
	for attempt := 1; ; attempt++ {
		p.Kafka = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		if len(opts.Listeners) > 0 {
			p.Listeners = map[string]string{}
			for i, l := range opts.Listeners {
				addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
				if i == 0 {
					addr = p.Kafka
				}
				p.Listeners[l.Name] = addr
			}
		}
		p.HTTP = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		p.Registry = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		if opts.EtcdEndpoints == "" {
			p.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
			p.etcdPeer = FreePort(t)
		}
		err := p.tryStart()
		if err == nil {
			return p
		}
		if attempt == 3 || !strings.Contains(p.Log(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("start attempt %d: a port was taken; retrying with new ports", attempt)
		os.Remove(p.logPath)
		if opts.EtcdEndpoints == "" {
			// The embedded member must start afresh on its new addresses.
			os.RemoveAll(filepath.Join(opts.DataDir, "etcd"))
		}
	}
}

func (p *Proc) args() []string {
	a := []string{"serve",
		"--data-dir", p.opts.DataDir,
		"--kafka-addr", p.Kafka,
		"--http-addr", p.HTTP,
		"--registry-addr", p.Registry,
		"--broker-id", fmt.Sprint(p.opts.BrokerID),
	}
	if p.opts.ObjectStore != "" {
		a = append(a, "--object-store", p.opts.ObjectStore)
	}
	if p.opts.EtcdEndpoints != "" {
		a = append(a, "--etcd-endpoints", p.opts.EtcdEndpoints)
	}
	if p.opts.Config != "" || p.EtcdURL != "" || len(p.opts.Listeners) > 0 {
		cfg := p.opts.Config
		if len(p.opts.Listeners) > 0 {
			cfg += "\nlisteners:\n"
			for _, l := range p.opts.Listeners {
				cfg += fmt.Sprintf("  - {name: %s, addr: %q, security-protocol: %s}\n", l.Name, p.Listeners[l.Name], l.SecurityProtocol)
			}
		}
		if p.EtcdURL != "" {
			cfg += fmt.Sprintf("\netcd:\n  client-addr: %s\n  peer-addr: 127.0.0.1:%d\n  name: runnel-%d\n",
				strings.TrimPrefix(p.EtcdURL, "http://"), p.etcdPeer, p.opts.BrokerID)
		}
		path := filepath.Join(p.opts.DataDir, fmt.Sprintf("broker-%d.yaml", p.opts.BrokerID))
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			p.t.Fatal(err)
		}
		a = append(a, "--config", path)
	}
	return append(a, p.opts.Args...)
}

func (p *Proc) start() {
	p.t.Helper()
	if err := p.tryStart(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *Proc) tryStart() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(Binary(p.t), p.args()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.opts.Env...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done, p.paused = cmd, done, false
	p.mu.Unlock()
	return p.waitReady(60 * time.Second)
}

// WaitReady polls /readyz until it answers 200.
func (p *Proc) WaitReady(d time.Duration) {
	p.t.Helper()
	if err := p.waitReady(d); err != nil {
		p.t.Fatal(err)
	}
}

func (p *Proc) waitReady(d time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("runnel exited during start-up:\n%s", p.Log())
		default:
		}
		resp, err := p.httpGet("/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Ask the Go runtime for a goroutine dump before giving up.
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return fmt.Errorf("runnel not ready after %v:\n%s", d, p.Log())
}

// insecureHTTPS probes a broker's HTTPS server without verifying it.
var insecureHTTPS = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
}}

// httpGet GETs path on the broker's HTTP server, over HTTPS when
// Options.HTTPS says so.
func (p *Proc) httpGet(path string) (*http.Response, error) {
	if p.opts.HTTPS {
		return insecureHTTPS.Get("https://" + p.HTTP + path)
	}
	return http.Get("http://" + p.HTTP + path)
}

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 30s).
func (p *Proc) Stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	p.Resume() // a stopped process would not act on SIGTERM
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Kill sends SIGKILL and waits for the process to die.
func (p *Proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	cmd.Process.Kill()
	<-done
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// Pause freezes the process with SIGSTOP (a long GC pause or a VM stall, as
// far as its peers can tell): its sockets stay open but nothing answers. An
// embedded etcd member pauses with it. Resume undoes it; Stop and Kill
// resume a paused process first.
func (p *Proc) Pause() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.t.Fatal("harness: Pause of a process never started")
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		p.t.Fatalf("harness: SIGSTOP broker %d: %v", p.opts.BrokerID, err)
	}
	p.paused = true
}

// Resume continues a process frozen by Pause (SIGCONT); it does nothing if
// the process is not paused.
func (p *Proc) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused || p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.paused = false
}

// Paused reports whether the process is frozen by Pause.
func (p *Proc) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// PID is the process id of the current incarnation (0 before Start).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Restart starts the process again with the same data dir and ports.
func (p *Proc) Restart() {
	p.t.Helper()
	p.start()
}

// SetArgs replaces the extra command-line arguments (Options.Args) the next
// Restart passes, e.g. to restart a broker with another --clock-offset.
// Call it from the goroutine that restarts the process.
func (p *Proc) SetArgs(args ...string) { p.opts.Args = args }

// Name is "broker <id>", for messages.
func (p *Proc) Name() string { return fmt.Sprintf("broker %d", p.opts.BrokerID) }

// DataDir is the broker's data directory.
func (p *Proc) DataDir() string { return p.opts.DataDir }

// Log returns what the process has written so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// Metric returns the value of a Prometheus metric (first sample whose line
// starts with name) from /metrics.
func (p *Proc) Metric(ctx context.Context, name string) (float64, error) {
	scheme, cl := "http://", http.DefaultClient
	if p.opts.HTTPS {
		scheme, cl = "https://", insecureHTTPS
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", scheme+p.HTTP+"/metrics", nil)
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			var v float64
			if _, err := fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v); err != nil {
				return 0, err
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}
