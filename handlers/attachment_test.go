package handlers

import (
	"mime"
	"net/http"
	"strings"
	"testing"
)

func TestAttachment(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ascii", "report.pdf", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{"space", "my report.pdf", `attachment; filename="my report.pdf"; filename*=UTF-8''my%20report.pdf`},
		{"non-ASCII", "résumé 2024.pdf", `attachment; filename="r_sum_ 2024.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf`},
		{"CJK", "報告.txt", `attachment; filename="__.txt"; filename*=UTF-8''%E5%A0%B1%E5%91%8A.txt`},
		{"emoji", "😀.png", `attachment; filename="_.png"; filename*=UTF-8''%F0%9F%98%80.png`},
		{"CRLF injection", "a\r\nSet-Cookie: x=1.txt", `attachment; filename="a__Set-Cookie: x=1.txt"; filename*=UTF-8''a__Set-Cookie%3A%20x%3D1.txt`},
		{"NUL", "a\x00b.txt", `attachment; filename="a_b.txt"; filename*=UTF-8''a_b.txt`},
		{"quotes", `say "hi".txt`, `attachment; filename="say _hi_.txt"; filename*=UTF-8''say%20%22hi%22.txt`},
		{"semicolon", "a;b=c.txt", `attachment; filename="a_b=c.txt"; filename*=UTF-8''a%3Bb%3Dc.txt`},
		{"percent", "100%.txt", `attachment; filename="100_.txt"; filename*=UTF-8''100%25.txt`},
		{"unix directory", "/etc/passwd", `attachment; filename="passwd"; filename*=UTF-8''passwd`},
		{"relative directory", "../../secret.txt", `attachment; filename="secret.txt"; filename*=UTF-8''secret.txt`},
		{"windows directory", `C:\Users\me\doc.txt`, `attachment; filename="doc.txt"; filename*=UTF-8''doc.txt`},
		{"backslash in name", `a\b`, `attachment; filename="b"; filename*=UTF-8''b`},
		{"trailing slash", "dir/", `attachment; filename="download"; filename*=UTF-8''download`},
		{"empty", "", `attachment; filename="download"; filename*=UTF-8''download`},
		{"dot", ".", `attachment; filename="download"; filename*=UTF-8''download`},
		{"dotdot", "a/..", `attachment; filename="download"; filename*=UTF-8''download`},
		{"dotfile", ".bashrc", `attachment; filename=".bashrc"; filename*=UTF-8''.bashrc`},
		{"tab and DEL", "a\tb\x7fc", `attachment; filename="a_b_c"; filename*=UTF-8''a_b_c`},
		{"C1 control", "a\u0085b", `attachment; filename="a_b"; filename*=UTF-8''a_b`},
		{"invalid UTF-8", "a\xffb", `attachment; filename="a_b"; filename*=UTF-8''a%EF%BF%BDb`},
		{"attr-chars kept", "a!#$&+-.^_`|~z", "attachment; filename=\"a!#$&+-.^_`|~z\"; filename*=UTF-8''a!#$&+-.^_`|~z"},
		{"right-to-left override", "invoice\u202Efdp.exe", `attachment; filename="invoicefdp.exe"; filename*=UTF-8''invoicefdp.exe`},
		{"every bidi control", "a\u202Ab\u202Bc\u202Cd\u202De\u202Ef\u2066g\u2067h\u2068i\u2069j\u200Ek\u200Fl.txt", `attachment; filename="abcdefghijkl.txt"; filename*=UTF-8''abcdefghijkl.txt`},
		{"bidi control only", "\u202E", `attachment; filename="download"; filename*=UTF-8''download`},
		{"other format characters kept", "a\u200Db.txt", `attachment; filename="a_b.txt"; filename*=UTF-8''a%E2%80%8Db.txt`},
		{"other punctuation encoded", "a(b)c'd*e,f", `attachment; filename="a(b)c'd*e,f"; filename*=UTF-8''a%28b%29c%27d%2Ae%2Cf`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Attachment(tt.in)
			if got != tt.want {
				t.Fatalf("Attachment(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			for i := 0; i < len(got); i++ {
				if c := got[i]; c < 0x20 || c >= 0x7f {
					t.Fatalf("byte %#x at %d", c, i)
				}
			}
			// The value parses, and filename* round-trips to the
			// sanitised base name.
			disp, params, err := mime.ParseMediaType(got)
			if err != nil || disp != "attachment" {
				t.Fatalf("ParseMediaType: %q %v", disp, err)
			}
			if want := baseName(tt.in); params["filename"] != want {
				t.Errorf("decoded filename* = %q, want %q", params["filename"], want)
			}
		})
	}
}

func TestSetAttachment(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Disposition", "inline")
	SetAttachment(h, "x/y.txt")
	if got := h.Values("Content-Disposition"); len(got) != 1 || !strings.HasPrefix(got[0], `attachment; filename="y.txt"`) {
		t.Errorf("Content-Disposition = %q", got)
	}
}
