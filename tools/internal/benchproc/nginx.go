package benchproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NginxCommand writes the configuration of an nginx that runs server (an
// http block's server and upstream directives) as one process in the
// foreground, files by sendfile, no access log, and at most a million
// requests per connection, with its files under dir named after name, and
// returns the command line that runs it.
func NginxCommand(dir, name, server string) ([]string, error) {
	tmp := filepath.Join(dir, name+"-tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(nginxConf(dir, name, tmp, server)), 0o644); err != nil {
		return nil, err
	}
	return []string{"nginx", "-p", dir, "-e", filepath.Join(dir, name+"-error.log"), "-c", path}, nil
}

func nginxConf(dir, name, tmp, server string) string {
	return fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/%[2]s.pid;
error_log %[1]s/%[2]s-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	client_body_temp_path %[3]s/body;
	proxy_temp_path %[3]s/proxy;
	fastcgi_temp_path %[3]s/fastcgi;
	uwsgi_temp_path %[3]s/uwsgi;
	scgi_temp_path %[3]s/scgi;
	%[4]s
}
`, dir, name, tmp, server)
}

// NginxFiles returns the server directive of an nginx serving the files
// under root on addr.
func NginxFiles(addr, root string) string {
	return fmt.Sprintf(`server { listen %s; root %s; location / {} }`, addr, root)
}

// NginxTLSFiles returns the server directive of an nginx serving the files
// under root over HTTPS on addr, with the certificate and key in the PEM
// files named, followed by directives (such as "ssl_protocols TLSv1.3;").
func NginxTLSFiles(addr, root, certFile, keyFile string, directives ...string) string {
	extra := ""
	for _, d := range directives {
		extra += " " + d
	}
	return fmt.Sprintf(`server { listen %s ssl; ssl_certificate %s; ssl_certificate_key %s;%s root %s; location / {} }`,
		addr, certFile, keyFile, extra, root)
}

// NginxVersion returns the version of the nginx installed, such as
// "1.22.1", or "" if it does not say.
func NginxVersion() string {
	out, _ := exec.Command("nginx", "-v").CombinedOutput()
	return nginxVersion(string(out))
}

// nginxVersion reads the version from the output of nginx -v.
func nginxVersion(out string) string {
	_, v, _ := strings.Cut(strings.TrimSpace(out), "nginx/")
	return v
}
