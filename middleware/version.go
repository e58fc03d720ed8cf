package middleware

import "runtime/debug"

// scopeName is the OpenTelemetry instrumentation scope of Metrics and Tracing.
const scopeName = "github.com/fastpath-go/fastpath/middleware"

// scopeVersion is this module's version as the build records it: the
// required version when fastpath is a dependency, empty in its own tests.
var scopeVersion = func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range append([]*debug.Module{&bi.Main}, bi.Deps...) {
		if m.Path == "github.com/fastpath-go/fastpath" && m.Version != "(devel)" {
			return m.Version
		}
	}
	return ""
}()
