package strace

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParse(t *testing.T) {
	trace := `1201 sendfile(7, 9, NULL, 4194304) = 4194304
1201 sendfile(7, 9, NULL, 4194304 <unfinished ...>
1202 write(7, "HTTP/1.1 200 OK\r\n"..., 512 <unfinished ...>
1201 <... sendfile resumed>) = 131072
1202 <... write resumed>) = 512
1203 write(8, "x", 1) = -1 EAGAIN (Resource temporarily unavailable)
1203 read(8, "", 4096) = 0
1204 +++ exited with 0 +++
1205 sendfile(7, 9, NULL, 10) = ?
1206 ???( <detached ...>
`
	p := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(p, []byte(trace), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ParseFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{
		"sendfile": {Count: 3, Sum: 4194304 + 131072},
		"write":    {Count: 2, Errors: 1, Sum: 512},
		"read":     {Count: 1},
	}
	if len(s) != len(want) {
		t.Fatalf("got %v, want %v", s, want)
	}
	for name, w := range want {
		if s[name] != w {
			t.Errorf("%s = %+v, want %+v", name, s[name], w)
		}
	}
	if got := s.Total("read", "write"); got != (Calls{Count: 3, Errors: 1, Sum: 512}) {
		t.Errorf("Total(read, write) = %+v", got)
	}
}

func TestLiveTrace(t *testing.T) {
	if err := Check(); err != nil {
		t.Skip(err)
	}
	out := filepath.Join(t.TempDir(), "trace")
	cmd := Command(t.Context(), out, []string{"write"}, "sh", "-c", "printf hello >/dev/null")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	s, err := ParseFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := s["write"]; got.Count != 1 || got.Sum != 5 {
		t.Errorf("write = %+v, want one call of 5 bytes", got)
	}
}

func TestDetails(t *testing.T) {
	s := Summary{
		"write":    {Count: 3, Errors: 1, Sum: 100},
		"sendfile": {Count: 2, Sum: 1 << 20},
	}
	tests := []struct {
		name  string
		names []string
		want  string
	}{
		{"in the order asked", []string{"sendfile", "write"}, " sendfile=2 (0 errors, 1048576 bytes) write=3 (1 errors, 100 bytes)"},
		{"calls not made left out", []string{"read", "write", "splice"}, " write=3 (1 errors, 100 bytes)"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Details(tt.names...); got != tt.want {
				t.Errorf("Details(%q) = %q, want %q", tt.names, got, tt.want)
			}
		})
	}
}
