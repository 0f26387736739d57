package node_test

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestLastLogAttr: the suite reads the keys a sidecar put in force from its
// text log; Z85 keys hold '=' and so are quoted by slog.
func TestLastLogAttr(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("server keys in force", "public_key", "old.key-1", "previous_public_key", "older")
	log.Info("server keys in force", "public_key", "new=key/2", "previous_public_key", "old.key-1")
	log.Info("server key in force", "server_key", "other")
	for _, tc := range []struct{ msg, attr, want string }{
		{"server keys in force", "public_key", "new=key/2"},
		{"server keys in force", "previous_public_key", "old.key-1"},
		{"server key in force", "server_key", "other"},
		{"client keys in force", "public_key", ""},
	} {
		if got := lastLogAttr(buf.String(), tc.msg, tc.attr); got != tc.want {
			t.Errorf("lastLogAttr(%q, %q) = %q, want %q\n%s", tc.msg, tc.attr, got, tc.want, buf.String())
		}
	}
}
