package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fastpath-go/fastpath/handlers"
)

// Config is what the flags set.
type Config struct {
	Addr              string        // listen address
	ReadHeaderTimeout time.Duration // cut off a client that does not finish its request headers
	ShutdownTimeout   time.Duration // how long in-flight requests get on SIGINT or SIGTERM
	DebugAddr         string        // where to serve net/http/pprof; "" for nowhere
	MetricsAddr       string        // where to serve /metrics instead of the public listener; "" for there
	TLSCert, TLSKey   string        // PEM files: serve HTTPS, with kernel TLS where the kernel has it

	// For an example with Files:
	Root        string        // directory served
	Listing     bool          // directory listings
	SendTimeout time.Duration // cut off a response that moves nothing for this long
}

// FileOptions returns the handlers.FileServer options the flags ask for.
func (c Config) FileOptions() []handlers.Option {
	opts := []handlers.Option{handlers.WithSendTimeout(c.SendTimeout)}
	if c.Listing {
		opts = append(opts, handlers.WithDirectoryListing())
	}
	return opts
}

// usageError is a command line the flags cannot parse; the flag package has
// printed what is wrong, and the usage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parseFlags parses ex's flags. On -h or -help it prints the usage to
// stderr and returns flag.ErrHelp.
func parseFlags(ex Example, args []string, stderr io.Writer) (Config, error) {
	fset := flag.NewFlagSet(ex.Name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [flags]\n\n%s\n\nflags:\n", ex.Name, ex.Doc)
		fset.PrintDefaults()
	}
	var c Config
	fset.StringVar(&c.Addr, "addr", ex.Addr, "address to listen on")
	fset.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "cut off a client that has not sent its request headers after this long")
	fset.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long in-flight requests get to finish")
	fset.StringVar(&c.DebugAddr, "debug-addr", "", "serve net/http/pprof on this address (keep it private), e.g. 127.0.0.1:6060")
	fset.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this address instead of -addr, so metrics need not be public, e.g. 127.0.0.1:9464")
	fset.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM, the chain after the leaf), with kernel TLS where the kernel has it, so downloads still go by sendfile; needs -tls-key")
	fset.StringVar(&c.TLSKey, "tls-key", "", "the private key (PEM) of -tls-cert")
	if ex.Files {
		fset.StringVar(&c.Root, "root", ".", "directory to serve under /files/")
		fset.BoolVar(&c.Listing, "list", false, "serve directory listings")
		fset.DurationVar(&c.SendTimeout, "send-timeout", time.Minute, "cut off a response, such as a download, that makes no progress for this long (0: never)")
	}
	if ex.Flags != nil {
		ex.Flags(fset)
	}
	if err := fset.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return c, err
		}
		return c, usageError{err}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		err := errors.New("-tls-cert and -tls-key go together")
		fmt.Fprintln(stderr, err)
		fset.Usage()
		return c, usageError{err}
	}
	if fset.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %v", fset.Args())
		fmt.Fprintln(stderr, err)
		fset.Usage()
		return c, usageError{err}
	}
	return c, nil
}
