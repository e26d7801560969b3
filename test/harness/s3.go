package harness

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// VersityGWVersion is the S3 server the tests run: versitygw, a real
// S3-compatible gateway over a POSIX directory, installed by scripts/test
// with `go install github.com/versity/versitygw/cmd/versitygw@<version>`.
const VersityGWVersion = "v1.8.0"

// S3Server is a real S3-compatible server on loopback serving one bucket
// whose objects are files under Dir/<Bucket>.
type S3Server struct {
	Endpoint string // http://127.0.0.1:<port>
	Bucket   string
	Dir      string
	// Env is what a broker process needs to authenticate to it (static
	// credentials; the SDK kept away from the user's AWS files and the
	// instance metadata service).
	Env []string
}

// URL is the object store URL of the bucket for a broker.
func (s *S3Server) URL() string {
	q := url.Values{"endpoint": {s.Endpoint}, "region": {"us-east-1"}, "use_path_style": {"true"}}
	return "s3://" + s.Bucket + "?" + q.Encode()
}

// Keys lists the bucket's object keys, read from the server's directory.
func (s *S3Server) Keys(t testing.TB) []string {
	t.Helper()
	root := filepath.Join(s.Dir, s.Bucket)
	var keys []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err == nil && !strings.HasPrefix(rel, ".") {
			keys = append(keys, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// versityGW finds the versitygw binary: on PATH, or where go install put it.
func versityGW() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var dirs []string
	if len(lines) > 0 && lines[0] != "" {
		dirs = append(dirs, lines[0])
	}
	if len(lines) > 1 {
		for _, gp := range filepath.SplitList(lines[1]) {
			dirs = append(dirs, filepath.Join(gp, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw is neither on PATH nor in %v (go install github.com/versity/versitygw/cmd/versitygw@%s)", dirs, VersityGWVersion)
}

// StartS3 starts versitygw on a free loopback port over a new directory
// holding one bucket, and stops it when the test ends. Without versitygw
// the test is skipped (failed under RUNNEL_REQUIRE_CLIENTS).
func StartS3(t testing.TB, bucket string) *S3Server {
	t.Helper()
	var bin string
	RequireTool(t, "versitygw (a real S3 server)", func() (err error) {
		bin, err = versityGW()
		return err
	})
	const access, secret = "runnel", "runnel-test-secret"
	s := &S3Server{Bucket: bucket, Dir: t.TempDir(), Env: []string{
		"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_SESSION_TOKEN=",
		"AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}}
	if err := os.Mkdir(filepath.Join(s.Dir, bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		var logs bytes.Buffer
		// --keep-alive: as S3 itself, keep connections open between requests
		// (versitygw closes each one by default).
		cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr, "--quiet", "--keep-alive", "posix", s.Dir)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{}) // closed once the process is reaped
		go func() { cmd.Wait(); close(exited) }()
		if waitListening(addr, exited, 15*time.Second) {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			s.Endpoint = "http://" + addr
			return s
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 4 {
			t.Fatalf("versitygw did not start on %s:\n%s", addr, logs.String())
		}
	}
}

// waitListening reports whether addr accepts connections before the
// process exits or the timeout passes.
func waitListening(addr string, exited <-chan struct{}, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
