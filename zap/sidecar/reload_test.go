package sidecar

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/filecontract"
	"github.com/zmqauth/zmqauth/internal/testenv"
	"github.com/zmqauth/zmqauth/keygen"
)

// allowAs writes the public certificate of kp into dir as file, with the
// identity in its metadata, as the operator writes allowlist entries.
func allowAs(t *testing.T, dir, file, identity string, kp keygen.KeyPair) {
	t.Helper()
	md := map[string]string{filecontract.MetadataIdentity: identity}
	data, err := keygen.NewCertificate(keygen.KeyPair{Public: kp.Public}, md).MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, file), data, 0o644)
}

// TestSessionOutlivesItsKeysOverlap: when a client's rotation overlap ends
// (its previous-key entry leaves the allowlist while its current key
// stays), a session made with the old key keeps relaying, while new
// handshakes with that key are refused; replacing the client's current key
// (a lost or leaked key) closes that session within a second.
func TestSessionOutlivesItsKeysOverlap(t *testing.T) {
	s := newServerSetup(t)
	oldKey, newKey, replacement := newKeyPair(t, s.sec), newKeyPair(t, s.sec), newKeyPair(t, s.sec)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	allowAs(t, s.allowDir, "team.client.key", "team/client", newKey)
	allowAs(t, s.allowDir, filecontract.PreviousClientKeyFileName("team", "client"), "team/client", oldKey)
	app := startApp(t, "PULL")
	sc := startSidecar(t, s.inbound(app.addr), s.sec)
	addr := sc.Addr("bus").String()

	live, err := dialCurve(t, addr, oldKey, s.server.Public)
	if err != nil {
		t.Fatalf("the previous key is refused during the overlap: %v", err)
	}
	appSide := app.accept(t)
	closed := closedAt(live)

	// The overlap ends.
	if err := os.Remove(filepath.Join(s.allowDir, filecontract.PreviousClientKeyFileName("team", "client"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old key refused for new sessions", 3*time.Second, func() bool {
		c, err := dialCurve(t, addr, oldKey, s.server.Public)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	if err := live.WriteMessage([]byte("after the overlap")); err != nil {
		t.Fatal(err)
	}
	msg, err := appSide.ReadMessage()
	if err != nil || len(msg) != 1 || string(msg[0]) != "after the overlap" {
		t.Fatalf("the application read %q (%v) after the overlap ended, want the session's message", msg, err)
	}
	select {
	case <-closed:
		t.Fatal("the session made with the old key was closed when its overlap ended")
	default:
	}

	// The client's current key is replaced outside a rotation.
	allowAs(t, s.allowDir, "team.client.key", "team/client", replacement)
	replaced := time.Now()
	expectClosedWithinSecond(t, closed, replaced, "the session of a retired key, after its client's key was replaced,")
}

// TestModeFileSwitchesMode: the mode file an operator's allowlist carries
// overrides the configured mode and is reloaded: switching it from audit
// to enforce refuses strangers from then on and closes the sessions that
// audit mode let in, within a second; a mode file with anything else in it
// is a failed reload that keeps the last good state.
func TestModeFileSwitchesMode(t *testing.T) {
	s := newServerSetup(t)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	member, stranger := newKeyPair(t, s.sec), newKeyPair(t, s.sec)
	allowAs(t, s.allowDir, "team.member.key", "team/member", member)
	modeFile := filepath.Join(s.allowDir, filecontract.ModeFile)
	writeFile(t, modeFile, []byte("audit\n"), 0o644)
	app := startApp(t, "PULL")
	sc := startSidecar(t, s.inbound(app.addr), s.sec) // configured: enforce
	addr := sc.Addr("bus").String()

	live, err := dialCurve(t, addr, stranger, s.server.Public)
	if err != nil {
		t.Fatalf("the allowlist's mode file says audit, yet a stranger is refused: %v", err)
	}
	closed := closedAt(live)
	app.accept(t) // the stranger's session
	kept, err := dialCurve(t, addr, member, s.server.Public)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	keptApp := app.accept(t)

	writeFile(t, modeFile, []byte("lax\n"), 0o644)
	waitFor(t, "a bad mode file reported as a failed reload", 3*time.Second, func() bool {
		return sc.Ready() == nil && metricValue(t, sc.Registry(), "zmqauth_sidecar_reload_errors_total", map[string]string{"source": "allowlist:bus"}) >= 1
	})
	select {
	case <-closed:
		t.Fatal("a bad mode file closed an audited session: the last good state must stay")
	default:
	}

	writeFile(t, modeFile, []byte("enforce\n"), 0o644)
	switched := time.Now()
	expectClosedWithinSecond(t, closed, switched, "a session audit mode let in, after the switch to enforce,")
	if _, err := dialCurve(t, addr, stranger, s.server.Public); err == nil {
		t.Error("a stranger got in after the switch to enforce")
	}
	if err := kept.WriteMessage([]byte("still here")); err != nil {
		t.Fatalf("the allowlisted session was closed by the switch: %v", err)
	}
	if msg, err := keptApp.ReadMessage(); err != nil || len(msg) != 1 || string(msg[0]) != "still here" {
		t.Errorf("the allowlisted session relayed %q (%v) after the switch, want its message", msg, err)
	}
}

// TestBrokenAllowlistReportedOnce: an allowlist broken from the start is
// logged and counted once, not once by the sidecar's first load and again
// at each of the watch's checks, and a new failure after a good load is
// reported again.
func TestBrokenAllowlistReportedOnce(t *testing.T) {
	s := newServerSetup(t)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(s.allowDir, "broken.key")
	writeFile(t, broken, []byte("curve\n    public-key = \"short\"\n"), 0o644)
	// Each load of the allowlist opens broken.key (and fails there), one
	// load after the other: Open's, the watch's first, then one at each of
	// the watch's checks, which retry a failed load.
	loads := testenv.WatchOpens(t, broken)
	app := startApp(t, "PULL")
	sc := startSidecar(t, s.inbound(app.addr), s.sec)
	errors := func() float64 {
		return metricValue(t, sc.Registry(), "zmqauth_sidecar_reload_errors_total", map[string]string{"source": "allowlist:bus"})
	}
	// When the fifth load begins, the four before it (two of them retries
	// at the watch's checks) have failed and been dealt with.
	waitFor(t, "five loads of the broken allowlist", 10*time.Duration(fastReload), func() bool { return loads.Count() >= 5 })
	if n := strings.Count(sc.logs.String(), "allowlist not loaded"); n != 1 || errors() != 1 {
		t.Fatalf("a lasting failure logged %d times and counted %v times, want once each", n, errors())
	}

	allow(t, s.allowDir, "team.client", newKeyPair(t, s.sec))
	if err := os.Remove(filepath.Join(s.allowDir, "broken.key")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready after the repair", 3*time.Second, func() bool { return sc.Ready() == nil })
	writeFile(t, filepath.Join(s.allowDir, "broken.key"), []byte("curve\n    public-key = \"short\"\n"), 0o644)
	waitFor(t, "the new failure counted", 3*time.Second, func() bool { return errors() == 2 })
}
