package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/keygen"
)

// cPrograms are the libzmq programs in bench/c, built into the temporary
// directory under their own names.
var cPrograms = []string{"zmq_thr", "zmq_lat", "zmq_hs_server", "tcp_relay"}

// bench holds what the benchmarks share: options, tools, keys, processes.
type bench struct {
	o     options
	dir   string // temporary directory
	procs *procs

	benchpeer string // Go peer (bench/cmd/benchpeer)
	zmqauth   string // the zmqauth binary; empty when it does not build
	zmqErr    error  // why zmqauth is missing
	c         map[string]string

	serverKeys string // server keypair directory (public.key, secret.key, zcert files)
	clientKeys string // client keypair directory
	allowlist  string // allowlist directory: the client's public certificate
	serverPub  string // file holding the server's public key
}

// setup builds the tools and creates the keys. The returned bench, even
// with an error, must be cleaned up.
func setup(ctx context.Context, o options) (*bench, error) {
	dir, err := os.MkdirTemp("", "zmqauth-bench-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	b := &bench{o: o, dir: dir, c: make(map[string]string)}
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		return b, fmt.Errorf("log directory: %w", err)
	}
	b.procs = newProcs(logDir)
	if !o.selected("handshake") && !o.selected("throughput") && !o.selected("sidecar") {
		// The scale and micro sections need neither libzmq nor keys.
		status("building cmd/zmqauth in %s", dir)
		b.zmqauth = filepath.Join(dir, "zmqauth")
		if err := command(ctx, "go", "build", "-o", b.zmqauth, "./cmd/zmqauth"); err != nil {
			b.zmqauth, b.zmqErr = "", fmt.Errorf("cmd/zmqauth does not build: %w", err)
		}
		return b, nil
	}
	status("building the C programs, bench/cmd/benchpeer and cmd/zmqauth in %s", dir)
	for _, name := range cPrograms {
		out := filepath.Join(dir, name)
		src := filepath.Join("bench", "c", name+".c")
		if err := command(ctx, "gcc", "-O2", "-Wall", "-o", out, src, "-lzmq", "-lpthread"); err != nil {
			return b, fmt.Errorf("compiling %s (is libzmq3-dev installed?): %w", src, err)
		}
		b.c[name] = out
	}
	b.benchpeer = filepath.Join(dir, "benchpeer")
	if err := command(ctx, "go", "build", "-o", b.benchpeer, "./bench/cmd/benchpeer"); err != nil {
		return b, fmt.Errorf("building benchpeer: %w", err)
	}
	if zmqauth := filepath.Join(dir, "zmqauth"); command(ctx, "go", "build", "-o", zmqauth, "./cmd/zmqauth") != nil {
		b.zmqErr = fmt.Errorf("cmd/zmqauth does not build")
	} else if command(ctx, zmqauth, "sidecar", "inbound", "--help") != nil {
		b.zmqErr = fmt.Errorf("zmqauth has no working `sidecar inbound` command yet")
		b.zmqauth = zmqauth
	} else {
		b.zmqauth = zmqauth
	}
	if err := b.makeKeys(ctx); err != nil {
		return b, err
	}
	return b, nil
}

// makeKeys creates a server and a client identity the way an operator
// would by hand, `zmqauth keygen --name NAME --dir DIR` (zcert files), and
// lays each out as zmqauth's keypair Secret is mounted (public.key and
// secret.key next to the certificates); the allowlist directory holds the
// client's public certificate. Secret keys are only ever in these files,
// which cleanup removes.
func (b *bench) makeKeys(ctx context.Context) error {
	keys := filepath.Join(b.dir, "keys")
	b.serverKeys = filepath.Join(keys, "server")
	b.clientKeys = filepath.Join(keys, "client")
	b.allowlist = filepath.Join(keys, "allowlist")
	b.serverPub = filepath.Join(b.serverKeys, filecontract.PublicKeyFile)
	for _, d := range []string{b.serverKeys, b.clientKeys, b.allowlist} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("key directory: %w", err)
		}
	}
	for _, id := range []struct{ name, dir string }{{"server", b.serverKeys}, {"client", b.clientKeys}} {
		if b.zmqauth != "" {
			if err := command(ctx, b.zmqauth, "keygen", "--name", id.name, "--dir", id.dir); err != nil {
				return fmt.Errorf("zmqauth keygen: %w", err)
			}
		} else {
			// No zmqauth binary: write the same files with its library.
			kp, err := keygen.GenerateKeyPair(nil)
			if err != nil {
				return fmt.Errorf("generating keys: %w", err)
			}
			if _, _, err := keygen.WriteCertificateFiles(id.dir, id.name, keygen.NewCertificate(kp, nil), keygen.WriteOptions{}); err != nil {
				return fmt.Errorf("writing certificates: %w", err)
			}
		}
		pub, sec, err := keygen.CertificatePaths(id.dir, id.name)
		if err != nil {
			return fmt.Errorf("certificate paths: %w", err)
		}
		cert, err := keygen.ReadSecretCertificate(sec)
		if err != nil {
			return fmt.Errorf("reading %s: %w", sec, err)
		}
		if err := os.WriteFile(filepath.Join(id.dir, filecontract.PublicKeyFile), []byte(cert.PublicKey.String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing public key: %w", err)
		}
		if err := os.WriteFile(filepath.Join(id.dir, filecontract.SecretKeyFile), []byte(cert.SecretKey.Z85()+"\n"), 0o600); err != nil {
			return fmt.Errorf("writing secret key: %w", err)
		}
		if id.name == "client" {
			data, err := os.ReadFile(pub)
			if err != nil {
				return fmt.Errorf("reading client certificate: %w", err)
			}
			if err := os.WriteFile(filepath.Join(b.allowlist, filepath.Base(pub)), data, 0o644); err != nil {
				return fmt.Errorf("writing allowlist: %w", err)
			}
		}
	}
	return nil
}

// cleanup stops every process and removes the temporary directory (only
// the keys when -keep is set).
func (b *bench) cleanup() {
	if b.procs != nil {
		b.procs.killAll()
	}
	if b.o.keepTemp {
		_ = os.RemoveAll(filepath.Join(b.dir, "keys"))
		status("kept %s (keys removed)", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

// command runs a short build or setup command, returning its output in
// the error when it fails.
func command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// status prints progress to standard error, apart from the report.
func status(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchall: "+format+"\n", args...)
}
