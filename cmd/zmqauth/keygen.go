package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zmqauth/zmqauth/keygen"
)

// keygenOptions are the flags of `zmqauth keygen`.
type keygenOptions struct {
	name       string
	dir        string
	force      bool
	metadata   []string
	publicFrom string
}

func newKeygenCommand() *cobra.Command {
	var o keygenOptions
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Generate a CURVE keypair, write it as zcert files, or derive a public key",
		Long: `Generate a CURVE keypair.

With no flags, print a new keypair in the layout of libzmq's curve_keygen.

With --name, write it instead as the zcert certificate files pyzmq's
zmq.auth.create_certificates writes: DIR/NAME.key (public, mode 0644) and
DIR/NAME.key_secret (secret, mode 0600). Existing files are kept unless
--force is given; if any check fails nothing is written.

With --public-from, print the public key that belongs to a secret key. The
secret may be given as a file (raw 40-character Z85 key, or a .key_secret
certificate) or "-" for standard input; a key typed on the command line
works too but lands in shell history and the process list.`,
		Example: `  zmqauth keygen
  zmqauth keygen --name server --dir ./certs --metadata owner=team-a
  zmqauth keygen --public-from ./certs/server.key_secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "write DIR/NAME.key and DIR/NAME.key_secret instead of printing the keypair")
	f.StringVar(&o.dir, "dir", ".", "directory the certificate files go to (with --name)")
	f.BoolVar(&o.force, "force", false, "overwrite existing certificate files (with --name)")
	f.StringArrayVar(&o.metadata, "metadata", nil, "NAME=VALUE to put in the certificates' metadata section, repeatable (with --name)")
	f.StringVar(&o.publicFrom, "public-from", "", "print the public key of SECRET: a file holding a Z85 secret key or a .key_secret certificate, \"-\" for stdin, or the key itself")
	return cmd
}

func (o *keygenOptions) run(cmd *cobra.Command) error {
	flags := cmd.Flags()
	withName := []string{"dir", "force", "metadata"}
	switch {
	case flags.Changed("public-from"):
		for _, name := range append([]string{"name"}, withName...) {
			if flags.Changed(name) {
				return fmt.Errorf("--public-from cannot be combined with --%s", name)
			}
		}
		return o.printPublicFrom(cmd)
	case flags.Changed("name"):
		return o.writeFiles(cmd)
	}
	for _, name := range withName {
		if flags.Changed(name) {
			return fmt.Errorf("--%s needs --name", name)
		}
	}
	return printKeyPair(cmd.OutOrStdout())
}

// printKeyPair prints a new keypair in curve_keygen's layout: a paragraph
// about the keys, then "== CURVE PUBLIC KEY ==" and "== CURVE SECRET KEY =="
// each after a blank line and followed by its key, so scripts written for
// curve_keygen's output read ours.
func printKeyPair(w io.Writer) error {
	pair, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, `This tool generates a CurveZMQ keypair as two printable strings to use
in configuration files or source code. The encoding is Z85, the base-85
format of ZeroMQ RFC 32. The secret key stays with one party; the public
key goes (securely!) to the peers that connect to it. To get the same
keypair as zcert certificate files instead, use --name; to get the public
key of an existing secret key, use --public-from.

== CURVE PUBLIC KEY ==
%s

== CURVE SECRET KEY ==
%s
`, pair.Public, pair.Secret.Z85())
	return err
}

// writeFiles writes a new keypair as DIR/NAME.key and DIR/NAME.key_secret.
func (o *keygenOptions) writeFiles(cmd *cobra.Command) error {
	if o.name == "" {
		return errors.New("--name is empty")
	}
	metadata := make(map[string]string, len(o.metadata))
	for _, kv := range o.metadata {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return fmt.Errorf("--metadata %q: want NAME=VALUE", kv)
		}
		if _, dup := metadata[name]; dup {
			return fmt.Errorf("--metadata %s given twice", name)
		}
		// The keygen package names nothing from its input in errors; a
		// flag the user typed can be named.
		if err := keygen.CheckMetadata(name, value); err != nil {
			return fmt.Errorf("--metadata %q: %w", name, err)
		}
		metadata[name] = value
	}
	pair, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		return err
	}
	cert := keygen.NewCertificate(pair, metadata)
	publicPath, secretPath, err := keygen.WriteCertificateFiles(o.dir, o.name, cert, keygen.WriteOptions{Overwrite: o.force})
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w; nothing written (--force overwrites)", err)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "public key:         %s\npublic certificate: %s\nsecret certificate: %s (mode 0600, keep it private)\n",
		pair.Public, publicPath, secretPath)
	return err
}

// printPublicFrom prints the public key of the secret named by --public-from.
func (o *keygenOptions) printPublicFrom(cmd *cobra.Command) error {
	secret, err := resolveSecret(o.publicFrom, cmd.InOrStdin())
	if err != nil {
		return fmt.Errorf("--public-from: %w", err)
	}
	public, err := keygen.PublicFromSecret(secret)
	if err != nil {
		return fmt.Errorf("--public-from: %w", err)
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), public)
	return err
}

// resolveSecret reads a secret key from arg: "-" (stdin), a 40-character Z85
// key, or the path of a file holding a key or a secret certificate. Errors
// never repeat arg, since it may be a mistyped secret key, except as the path
// of a file that exists.
func resolveSecret(arg string, stdin io.Reader) (keygen.SecretKey, error) {
	if arg == "" {
		return keygen.SecretKey{}, errors.New("empty value")
	}
	if arg == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, keygen.MaxCertificateSize+1))
		if err != nil {
			return keygen.SecretKey{}, fmt.Errorf("read standard input: %w", err)
		}
		if len(data) > keygen.MaxCertificateSize {
			return keygen.SecretKey{}, fmt.Errorf("standard input: %w", keygen.ErrTooLarge)
		}
		secret, err := parseSecretText(data)
		if err != nil {
			return keygen.SecretKey{}, fmt.Errorf("standard input: %w", err)
		}
		return secret, nil
	}
	var keyErr error
	if len(arg) == keygen.KeyTextSize {
		secret, err := keygen.ParseSecretKey(arg)
		if err == nil {
			return secret, nil
		}
		keyErr = err
	}
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		data, err := readFileBounded(arg)
		if err != nil {
			return keygen.SecretKey{}, err
		}
		secret, err := parseSecretText(data)
		if err != nil {
			return keygen.SecretKey{}, fmt.Errorf("%s: %w", arg, err)
		}
		return secret, nil
	}
	if keyErr == nil {
		_, keyErr = keygen.ParseSecretKey(arg) // says what is wrong with it as a key
	}
	return keygen.SecretKey{}, fmt.Errorf("not a readable file, and not a secret key: %w", keyErr)
}

// parseSecretText reads a secret key from a file's contents: a bare Z85 key
// (with optional surrounding white space, as in a Kubernetes Secret's
// secret.key) or a secret zcert certificate.
func parseSecretText(data []byte) (keygen.SecretKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == keygen.KeyTextSize && bytes.IndexFunc(trimmed, func(r rune) bool { return r <= ' ' }) < 0 {
		return keygen.ParseSecretKey(string(trimmed))
	}
	cert, err := keygen.ParseSecretCertificate(data)
	if err != nil {
		return keygen.SecretKey{}, err
	}
	return cert.SecretKey, nil
}

// readFileBounded reads a file no larger than a certificate may be.
func readFileBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, keygen.MaxCertificateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > keygen.MaxCertificateSize {
		return nil, fmt.Errorf("%s: %w", path, keygen.ErrTooLarge)
	}
	return data, nil
}
