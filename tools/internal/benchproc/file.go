package benchproc

import (
	"os"
	"path/filepath"
)

// WriteFile creates path holding size bytes, byte n being byte(n*7): a file
// whose content is known without keeping it, written a MiB at a time.
func WriteFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for n := int64(0); n < size; n += int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), size-n)]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// WorkDir makes a temporary directory for one run, named after the command,
// holding an empty directory files for what the servers serve, apart from
// the configurations, logs and traces written to dir. The caller removes
// dir when done.
func WorkDir(command string) (dir, files string, err error) {
	dir, err = os.MkdirTemp("", "fastpath-"+command)
	if err != nil {
		return "", "", err
	}
	files = filepath.Join(dir, "files")
	if err := os.Mkdir(files, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return dir, files, nil
}
