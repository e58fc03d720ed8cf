package handlers

import (
	"mime"
	"net/http"
	"os"
	"path/filepath"
)

// typeByName returns the media type for name's extension, "" when it is
// unknown.
func typeByName(name string) string {
	return mime.TypeByExtension(filepath.Ext(name))
}

// sniffLen is how many bytes http.DetectContentType looks at.
const sniffLen = 512

// sniffType returns the type http.DetectContentType finds in f's first 512
// bytes. It reads with ReadAt, so f's offset does not move.
func sniffType(f *os.File) string {
	var buf [sniffLen]byte
	n, _ := f.ReadAt(buf[:], 0)
	return http.DetectContentType(buf[:n])
}
