package sidecar

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// TestMessageSizeLimit sends, through an audit-mode inbound route with the
// default limit, one frame just over DefaultMaxMessageSize: that client's
// connection and session are closed without the message reaching the
// application, while another client's session keeps relaying.
func TestMessageSizeLimit(t *testing.T) {
	s := newServerSetup(t)
	if err := os.MkdirAll(s.allowDir, 0o755); err != nil {
		t.Fatal(err)
	}
	app := startApp(t, "PULL")
	cfg := s.inbound(app.addr)
	cfg.Inbound[0].Mode = "audit"
	sc := startSidecar(t, cfg, s.sec)
	addr := sc.Addr("bus").String()

	big, err := dialCurve(t, addr, newKeyPair(t, s.sec), s.server.Public)
	if err != nil {
		t.Fatal(err)
	}
	bigApp := app.accept(t)
	small, err := dialCurve(t, addr, newKeyPair(t, s.sec), s.server.Public)
	if err != nil {
		t.Fatal(err)
	}
	smallApp := app.accept(t)

	// The sidecar refuses the frame from its header and may close the
	// connection while the client is still writing it.
	go func() { _ = big.WriteMessage(make([]byte, DefaultMaxMessageSize+1)) }()
	ended := make(chan error, 1)
	go func() {
		_, err := big.ReadFrame(nil)
		ended <- err
	}()
	select {
	case err := <-ended:
		t.Logf("the oversized client's connection ended: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("the connection that sent an oversized message is still open")
	}
	if f, err := bigApp.ReadFrame(nil); err == nil {
		t.Fatalf("the application got a frame of %d bytes from the oversized client's session", len(f.Payload))
	}
	waitFor(t, "the session's end logged with its reason", testTimeout, func() bool {
		logs := sc.logs.String()
		return strings.Contains(logs, zmtp.ErrFrameTooLarge.Error()) || strings.Contains(logs, zmtp.ErrMessageTooLarge.Error())
	})

	if err := small.WriteMessage([]byte("still relaying")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		m, err := smallApp.ReadMessage()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(m[0])
	}()
	select {
	case m := <-got:
		if m != "still relaying" {
			t.Fatalf("the other session's application got %q", m)
		}
	case <-time.After(testTimeout):
		t.Fatal("the other session relays nothing")
	}
}
