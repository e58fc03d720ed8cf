package benchproc

import (
	"fmt"
	"io"
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

// VerifyFile reads r to its end and checks that it holds what WriteFile
// writes, byte n being byte(n*7); it returns the number of bytes read, and
// an error at the first byte that differs or when reading fails. A client
// checks a large download this way without keeping the file.
func VerifyFile(r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var off int64
	for {
		n, err := r.Read(buf)
		for i, b := range buf[:n] {
			if want := byte((off + int64(i)) * 7); b != want {
				return off + int64(i), fmt.Errorf("byte %d is %d, want %d", off+int64(i), b, want)
			}
		}
		off += int64(n)
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
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
