package handlers

import (
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// mediaTypes gives the Content-Type of audio and video files, consulted
// before mime.TypeByExtension. Go's built-in table has some of these wrong
// for a file server (".webm" is audio/webm, though WebM files are mostly
// video; ".ts" is Qt's translation source), and on Linux TypeByExtension
// also reads the system's mime.types, so the answer for the rest would
// depend on the machine. The values are those of nginx's mime.types; the
// extensions nginx does not list (mkv, ogv, mpd, and audio formats) have
// their registered or most widely used types.
var mediaTypes = map[string]string{
	// Video.
	".3gp":  "video/3gpp",
	".3gpp": "video/3gpp",
	".asf":  "video/x-ms-asf",
	".asx":  "video/x-ms-asf",
	".avi":  "video/x-msvideo",
	".flv":  "video/x-flv",
	".m4v":  "video/x-m4v",
	".mkv":  "video/x-matroska",
	".mng":  "video/x-mng",
	".mov":  "video/quicktime",
	".mp4":  "video/mp4",
	".mpeg": "video/mpeg",
	".mpg":  "video/mpeg",
	".ogv":  "video/ogg",
	".ts":   "video/mp2t",
	".webm": "video/webm",
	".wmv":  "video/x-ms-wmv",
	// Streaming manifests.
	".m3u8": "application/vnd.apple.mpegurl",
	".mpd":  "application/dash+xml",
	// Audio.
	".aac":  "audio/aac",
	".flac": "audio/flac",
	".kar":  "audio/midi",
	".m4a":  "audio/x-m4a",
	".mid":  "audio/midi",
	".midi": "audio/midi",
	".mp3":  "audio/mpeg",
	".oga":  "audio/ogg",
	".ogg":  "audio/ogg",
	".opus": "audio/ogg",
	".ra":   "audio/x-realaudio",
	".wav":  "audio/wav",
	".weba": "audio/webm",
}

// typeByName returns the media type for name's extension: this package's
// table for audio and video, then mime.TypeByExtension. "" means unknown.
func typeByName(name string) string {
	ext := filepath.Ext(name)
	if t, ok := mediaTypes[strings.ToLower(ext)]; ok {
		return t
	}
	return mime.TypeByExtension(ext)
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
