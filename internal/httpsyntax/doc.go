// Package httpsyntax checks the syntax of HTTP message parts that more than
// one fastpath package reads or writes: tokens (RFC 9110, section 5.6.2),
// which name range units in the file server and methods and header fields
// in the reverse proxy's transport.
package httpsyntax
