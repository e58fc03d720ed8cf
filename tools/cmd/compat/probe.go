package main

import (
	"io"
	"net/http"
	"reflect"
	"runtime"
	"strings"
)

// link is one ResponseWriter in the chain from the file handler down to
// net/http.
type link struct {
	Type     string // its type, as fmt's %T prints it (anonymous structs shortened)
	GoType   string // its type in full, as fastpath's copy_wrapper names it
	ReadFrom bool   // whether it implements io.ReaderFrom
}

var (
	responseWriterType = reflect.TypeFor[http.ResponseWriter]()
	readerFromType     = reflect.TypeFor[io.ReaderFrom]()
)

// maxChain bounds the walk down the writer chain.
const maxChain = 16

// walkWriters returns w and each writer it wraps, down to net/http's. It
// follows Unwrap() http.ResponseWriter, the convention http.ResponseController
// relies on; a writer without Unwrap is looked into with reflection, for a
// field holding the http.ResponseWriter it wraps (a field it may not export:
// only its type is read then, never its methods called).
func walkWriters(w http.ResponseWriter) []link {
	var chain []link
	v := reflect.ValueOf(w)
	for i := 0; i < maxChain && v.IsValid(); i++ {
		t := v.Type()
		chain = append(chain, link{Type: typeName(t), GoType: t.String(), ReadFrom: t.Implements(readerFromType)})
		v = wrapped(v)
	}
	return chain
}

// wrapped returns the writer v wraps, or an invalid Value when there is none
// to be found.
func wrapped(v reflect.Value) reflect.Value {
	if v.CanInterface() {
		if u, ok := v.Interface().(interface{ Unwrap() http.ResponseWriter }); ok {
			if inner := u.Unwrap(); inner != nil {
				return reflect.ValueOf(inner)
			}
			return reflect.Value{}
		}
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	// A field declared as http.ResponseWriter first; then any interface
	// field holding one (httpsnoop's structs embed narrower interfaces).
	for _, exact := range []bool{true, false} {
		for i := range v.NumField() {
			f := v.Field(i)
			if f.Kind() != reflect.Interface || f.IsNil() || (f.Type() == responseWriterType) != exact {
				continue
			}
			if e := f.Elem(); e.Type().Implements(responseWriterType) {
				return e
			}
		}
	}
	return reflect.Value{}
}

// typeName is t as fmt's %T prints it, with anonymous structs (httpsnoop's
// and promhttp's wrappers are) shortened to their first embedded type that
// is not an http or io interface.
func typeName(t reflect.Type) string {
	if t.Name() != "" || t.Kind() != reflect.Struct {
		return t.String()
	}
	for i := range t.NumField() {
		s := t.Field(i).Type.String()
		if !strings.HasPrefix(s, "http.") && !strings.HasPrefix(s, "io.") {
			return "struct{" + s + ", …}"
		}
	}
	return "struct{…}"
}

// hider returns the first writer in chain that has no ReadFrom while the
// writer it wraps has one: the one that hides io.ReaderFrom. ok is false
// when there is none.
func hider(chain []link) (hides, wraps link, ok bool) {
	for i := 0; i+1 < len(chain); i++ {
		if !chain[i].ReadFrom && chain[i+1].ReadFrom {
			return chain[i], chain[i+1], true
		}
	}
	return link{}, link{}, false
}

// stackReader is the body of a diagnostic request. It records which
// function started each copy that reads it: net/http's own ReadFrom and the
// connection's fallback copy when nothing in between interferes,
// http.ServeContent when the handler's writer has no ReadFrom, or a
// middleware's ReadFrom method that copies through Write. It has no WriteTo
// method, and is not a file, so nothing can send it by sendfile.
type stackReader struct {
	rs         io.ReadSeeker
	initiators []string
}

func (s *stackReader) Read(p []byte) (int, error) {
	var pcs [64]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		fr, more := frames.Next()
		if !strings.HasPrefix(fr.Function, "io.") {
			if !containsString(s.initiators, fr.Function) {
				s.initiators = append(s.initiators, fr.Function)
			}
			break
		}
		if !more {
			break
		}
	}
	return s.rs.Read(p)
}

func (s *stackReader) Seek(offset int64, whence int) (int64, error) {
	return s.rs.Seek(offset, whence)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Initiators of a copy that are on the fast path: net/http's ReadFrom copies
// the first 512 bytes itself, then hands the rest to the connection, whose
// ReadFrom falls back to a copy only because the diagnostic body is not a
// file.
const (
	netHTTPReadFrom   = "net/http.(*response).ReadFrom"
	netGenericCopy    = "net.genericReadFrom"
	serveContentCopy  = "net/http.serveContent"
	serveContentCopy2 = "net/http.ServeContent"
)

// handlerCopied reports whether culprit is the diagnostic request's handler
// itself: it copied the body because its writer has no ReadFrom.
func handlerCopied(culprit string) bool {
	return culprit == serveContentCopy || culprit == serveContentCopy2
}

// culprit returns the function that started a copy of the body that was
// not on the fast path, or "" when all the copies were.
func culprit(initiators []string) string {
	for _, f := range initiators {
		if f != netHTTPReadFrom && f != netGenericCopy {
			return f
		}
	}
	return ""
}

// shortFunc drops the import path from a function name:
// "github.com/go-chi/chi/v5/middleware.(*httpFancyWriter).ReadFrom" becomes
// "middleware.(*httpFancyWriter).ReadFrom".
func shortFunc(f string) string {
	if i := strings.LastIndex(f, "/"); i >= 0 {
		return f[i+1:]
	}
	return f
}
