package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/tableflow"
)

func TestTableCommands(t *testing.T) {
	orders := tableflow.TableStatus{Namespace: "default", Name: "orders", Topic: "orders", Mode: "append", State: "running",
		Writer: 2, LagRecords: 7, LagSeconds: 1.5, LastCommitMs: 1700000000000, Files: 3, Bytes: 4096, Errors: 1, LastError: "bad record"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tables", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]tableflow.TableStatus{orders})
	})
	mux.HandleFunc("GET /tables/{ns}/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("ns") != "default" || r.PathValue("name") != "orders" {
			http.Error(w, "tableflow: no such table", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(orders)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, c := range []struct {
		name string
		args []string
		want []string
		err  string
	}{
		{"list", []string{"table", "list"}, []string{"TABLE", "default.orders", "append", "running"}, ""},
		{"status", []string{"table", "status"}, []string{"LAG_RECORDS", "default.orders", "7", "1.5", "2023-11-14T22:13:20Z", "4096"}, ""},
		{"status of one", []string{"table", "status", "orders"}, []string{"default.orders", "7"}, ""},
		{"describe", []string{"table", "describe", "default.orders"}, []string{"Writer:", "2", "Last error:", "bad record"}, ""},
		{"describe json", []string{"table", "describe", "orders", "--json"}, []string{`"lag_records": 7`}, ""},
		{"unknown", []string{"table", "describe", "default.nope"}, nil, "404"},
		{"bad name", []string{"table", "describe", "a.b.c"}, nil, "NAMESPACE.NAME"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runCLI(t, "", append(c.args, "--http", srv.URL)...)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
