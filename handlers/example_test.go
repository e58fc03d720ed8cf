package handlers_test

import (
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/fastpath-go/fastpath/handlers"
)

func ExampleFileServer() {
	dir, err := os.MkdirTemp("", "fastpath-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("Hello, world!\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=1\n"), 0o644)

	root, err := os.OpenRoot(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()

	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static/",
		handlers.FileServer(root, handlers.WithCacheControl("public, max-age=3600"))))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	for _, path := range []string{"/static/hello.txt", "/static/.env", "/static/missing.txt"} {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%s: %d %q Cache-Control=%q Content-Length=%d\n",
			path, res.StatusCode, body, res.Header.Get("Cache-Control"), res.ContentLength)
	}
	// Output:
	// /static/hello.txt: 200 "Hello, world!\n" Cache-Control="public, max-age=3600" Content-Length=14
	// /static/.env: 404 "404 page not found\n" Cache-Control="" Content-Length=19
	// /static/missing.txt: 404 "404 page not found\n" Cache-Control="" Content-Length=19
}

func ExampleServeContent() {
	dir, err := os.MkdirTemp("", "fastpath-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "report-7f3a.csv")
	os.WriteFile(path, []byte("id,name\n1,alpha\n2,beta\n3,gamma\n"), 0o644)

	// A download API: it finds the file itself, then serves it with
	// ServeContent, which keeps sendfile for every range request too.
	download := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		handlers.SetAttachment(w.Header(), "Q3 report.csv")
		handlers.ServeContent(w, r, "report.csv", fi.ModTime(), f)
	})

	req := httptest.NewRequest("GET", "/download", nil)
	req.Header.Set("Range", "bytes=8-15,-8")
	rec := httptest.NewRecorder()
	download.ServeHTTP(rec, req)

	fmt.Println(rec.Code, rec.Header().Get("Content-Disposition"))
	fmt.Println("Content-Length matches:", rec.Header().Get("Content-Length") == fmt.Sprint(rec.Body.Len()))
	_, params, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	mr := multipart.NewReader(rec.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(part)
		fmt.Printf("%s %q\n", part.Header.Get("Content-Range"), b)
	}
	// Output:
	// 206 attachment; filename="Q3 report.csv"; filename*=UTF-8''Q3%20report.csv
	// Content-Length matches: true
	// bytes 8-15/31 "1,alpha\n"
	// bytes 23-30/31 "3,gamma\n"
}

func ExampleAttachment() {
	fmt.Println(handlers.Attachment("résumé 2024.pdf"))
	fmt.Println(handlers.Attachment("../../etc/passwd"))
	fmt.Println(handlers.Attachment("evil\r\nSet-Cookie: a=b"))
	// Output:
	// attachment; filename="r_sum_ 2024.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%202024.pdf
	// attachment; filename="passwd"; filename*=UTF-8''passwd
	// attachment; filename="evil__Set-Cookie: a=b"; filename*=UTF-8''evil__Set-Cookie%3A%20a%3Db
}

func ExampleWithAttachments() {
	dir, err := os.MkdirTemp("", "fastpath-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "upload.html"), []byte("<script>alert(1)</script>"), 0o644)
	root, err := os.OpenRoot(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()

	// User uploads are downloaded, never rendered in the site's origin.
	uploads := handlers.FileServer(root, handlers.WithAttachments())
	rec := httptest.NewRecorder()
	uploads.ServeHTTP(rec, httptest.NewRequest("GET", "/upload.html", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Println(rec.Header().Get("Content-Disposition"))
	// Output:
	// 200 text/html; charset=utf-8
	// attachment; filename="upload.html"; filename*=UTF-8''upload.html
}
