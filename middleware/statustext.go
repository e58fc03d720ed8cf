package middleware

import (
	"net/http"
	"strconv"
)

// statusText returns the decimal form of a status code, without allocating
// for the common ones.
func statusText(code int) string {
	if code >= 100 && code < 600 {
		if s := statusStrings[code-100]; s != "" {
			return s
		}
	}
	return strconv.Itoa(code)
}

// statusStrings holds the decimal form of every status code net/http names,
// at index code-100.
var statusStrings = func() (s [500]string) {
	for code := 100; code < 600; code++ {
		if http.StatusText(code) != "" {
			s[code-100] = strconv.Itoa(code)
		}
	}
	return s
}()
