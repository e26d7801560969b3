package lint

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/runnel-dev/runnel/"

// rules: a package (or, ending in "/...", a package tree) and the import
// path prefixes its non-test files must not import directly.
var rules = []struct {
	pkg    string
	forbid []string
	why    string
}{
	{"internal/registry", []string{"github.com/hamba/", "github.com/santhosh-tekuri/", "github.com/bufbuild/",
		"google.golang.org/protobuf/", "cel.dev/", module + "internal/registry/", module + "internal/broker"},
		"the registry core knows formats and rules only through its interfaces (doc.go)"},
	{"internal/registry/...", []string{module + "internal/broker", module + "internal/protocol", module + "internal/stream"},
		"schema formats and rules do not reach into the broker"},
	{"internal/wire", []string{module + "internal/"}, "framing stands alone"},
	{"internal/bufs", []string{module + "internal/"}, "buffer free lists are a leaf the front end and the log share"},
	{"internal/stream", []string{module + "internal/protocol", module + "internal/broker", module + "internal/groups",
		module + "internal/registry", module + "internal/cli"}, "the log knows nothing of the Kafka front end or the services above it"},
	{"internal/protocol", []string{module + "internal/broker", module + "internal/registry", module + "internal/groups",
		module + "internal/cli"}, "handlers call domain interfaces, not their implementations"},
	{"internal/objstore/...", []string{module + "internal/stream", module + "internal/protocol", module + "internal/broker"},
		"object storage is below the log"},
	{"internal/groups", []string{module + "internal/broker", module + "internal/cli"}, "the coordinator does not assemble brokers"},
	{"internal/groups", []string{module + "internal/protocol"},
		"the coordinator implements an interface of the Kafka front end; the types they share live in internal/peer"},
	{"internal/cluster", []string{module + "internal/protocol", module + "internal/broker", module + "internal/groups"},
		"membership is below the front end and the coordinator; the types they share live in internal/peer"},
	{"internal/peer", []string{module + "internal/"}, "the shared types are a leaf"},
	{"internal/auth", []string{module + "internal/protocol", module + "internal/broker", module + "internal/cli",
		module + "internal/stream", module + "internal/groups", module + "internal/registry", module + "internal/objstore"},
		"security is called by the front ends; it imports no handler and never touches the log (doc.go)"},
	{"internal/config", []string{module + "internal/"}, "configuration is a leaf"},
	{"internal/metadata", []string{module + "internal/"},
		"the etcd connection and the prefix mirror are a leaf that auth, groups and the broker build on (doc.go)"},
	{"internal/retry", []string{module + "internal/protocol", module + "internal/broker", module + "internal/cli",
		module + "internal/groups", module + "internal/share"},
		"retry policies are wired in by the broker and reach the log through their own interfaces (doc.go)"},
	{"internal/tableflow", []string{module + "internal/protocol", module + "internal/broker", module + "internal/cli",
		module + "internal/groups", module + "internal/share"},
		"tableflow is wired in by the broker and reaches the log and the registry through its own interfaces (DESIGN §1)"},
	{"internal/telemetry/...", []string{module + "internal/protocol", module + "internal/broker", module + "internal/cli"},
		"telemetry is wired in by the broker and reaches the log through its own interfaces (DESIGN §1)"},
	{"internal/governance/...", []string{module + "internal/protocol", module + "internal/broker", module + "internal/cli",
		module + "internal/stream", module + "internal/groups", module + "internal/share", module + "internal/tableflow",
		module + "internal/portal"},
		"governance is wired in by the broker and reaches the log, the groups and the tables through its own interfaces (doc.go)"},
	{"internal/portal", []string{module + "internal/protocol", module + "internal/broker", module + "internal/cli",
		module + "internal/stream", module + "internal/governance/catalog", module + "internal/governance/lineage",
		module + "internal/governance/access", module + "internal/governance/asyncapi"},
		"the portal is built only on the governance API (DESIGN §7)"},
	{"internal/governance/catalog", []string{module + "internal/governance/lineage", module + "internal/governance/access", module + "internal/governance/asyncapi"},
		"the governance parts meet only through interfaces the broker wires"},
	{"internal/governance/lineage", []string{module + "internal/governance/catalog", module + "internal/governance/access", module + "internal/governance/asyncapi"},
		"the governance parts meet only through interfaces the broker wires"},
	{"internal/governance/access", []string{module + "internal/governance/catalog", module + "internal/governance/lineage", module + "internal/governance/asyncapi"},
		"the governance parts meet only through interfaces the broker wires"},
	{"internal/governance/asyncapi", []string{module + "internal/governance/catalog", module + "internal/governance/lineage", module + "internal/governance/access"},
		"the governance parts meet only through interfaces the broker wires"},
}

// TestImportRules checks the rules above against `go list`.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			imports[strings.TrimPrefix(f[0], module)] = f[1:]
		}
	}
	if len(imports) == 0 {
		t.Fatal("go list found no packages")
	}
	for _, r := range rules {
		matched := false
		for pkg, imps := range imports {
			if tree, ok := strings.CutSuffix(r.pkg, "/..."); ok {
				if !strings.HasPrefix(pkg, tree+"/") {
					continue
				}
			} else if pkg != r.pkg {
				continue
			}
			matched = true
			for _, imp := range imps {
				for _, f := range r.forbid {
					if strings.HasPrefix(imp, f) || imp+"/" == f {
						t.Errorf("%s imports %s: %s", pkg, imp, r.why)
					}
				}
			}
		}
		if !matched {
			t.Errorf("rule for %s matches no package", r.pkg)
		}
	}
}
