package handlers

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestMediaTypes checks the Content-Type FileServer sends for audio and
// video files: nginx's mime.types where it has the extension, whatever the
// machine's own mime.types says.
func TestMediaTypes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, want string }{
		{"a.mp4", "video/mp4"},
		{"a.m4v", "video/x-m4v"},
		{"a.webm", "video/webm"},
		{"a.mkv", "video/x-matroska"},
		{"a.mov", "video/quicktime"},
		{"a.ogv", "video/ogg"},
		{"a.mpeg", "video/mpeg"},
		{"a.mpg", "video/mpeg"},
		{"a.ts", "video/mp2t"},
		{"a.m3u8", "application/vnd.apple.mpegurl"},
		{"a.mpd", "application/dash+xml"},
		{"a.avi", "video/x-msvideo"},
		{"a.flv", "video/x-flv"},
		{"a.3gp", "video/3gpp"},
		{"a.3gpp", "video/3gpp"},
		{"a.wmv", "video/x-ms-wmv"},
		{"a.asf", "video/x-ms-asf"},
		{"a.mng", "video/x-mng"},
		{"a.mp3", "audio/mpeg"},
		{"a.m4a", "audio/x-m4a"},
		{"a.ogg", "audio/ogg"},
		{"a.oga", "audio/ogg"},
		{"a.opus", "audio/ogg"},
		{"a.flac", "audio/flac"},
		{"a.wav", "audio/wav"},
		{"a.aac", "audio/aac"},
		{"a.weba", "audio/webm"},
		{"a.mid", "audio/midi"},
		{"a.ra", "audio/x-realaudio"},
		{"UPPER.MP4", "video/mp4"},
		{"a.txt", "text/plain; charset=utf-8"}, // Go's table
	}
	for _, tt := range tests {
		if err := os.WriteFile(filepath.Join(dir, tt.name), []byte("\x00\x01binary"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fs := FileServer(root)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := typeByName(tt.name); got != tt.want {
				t.Errorf("typeByName = %q, want %q", got, tt.want)
			}
			res := record(fs, request("GET", "/"+tt.name))
			if got := res.header.Get("Content-Type"); res.status != http.StatusOK || got != tt.want {
				t.Errorf("FileServer: %d Content-Type %q, want %q", res.status, got, tt.want)
			}
			rec := record(serveContentHandler(t, filepath.Join(dir, tt.name), tt.name), request("GET", "/", "Range", "bytes=0-0,2-2"))
			if ps := parts(t, rec); len(ps) != 2 {
				t.Errorf("ServeContent multipart: %d parts", len(ps))
			}
		})
	}
}
