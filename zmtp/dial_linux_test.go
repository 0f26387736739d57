//go:build linux

package zmtp

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// silentAddr returns a 127.0.0.1 address that never answers a connect: a
// listening socket with a backlog of 0 whose accept queue is kept full, so
// the kernel drops further SYNs, as a deleted pod's address behind a
// Service does.
func silentAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue until a connect goes unanswered.
	for i := 0; i < 16; i++ {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("%s still accepts connections with its accept queue full", addr)
	return ""
}

// TestDialConnectTimeout: ConnectTimeout bounds one connect to an address
// that does not answer, well before the context ends; without it only the
// context does.
func TestDialConnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		name           string
		connectTimeout time.Duration
		ctxTimeout     time.Duration
		// wantAtDeadline: Dial gave up only at the context's deadline.
		wantAtDeadline bool
	}{
		{"bounded", 300 * time.Millisecond, 20 * time.Second, false},
		{"unbounded", 0, time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := silentAddr(t)
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctxTimeout)
			defer cancel()
			deadline, _ := ctx.Deadline()
			c, err := Dial(ctx, "tcp://"+addr, &Config{Mechanism: NewNullClient(), SocketType: "DEALER", ConnectTimeout: tc.connectTimeout})
			if err == nil {
				c.Close()
				t.Fatal("Dial of an address that never answers succeeded")
			}
			// The two outcomes are far apart (20 s of context against a
			// 300 ms bound), so a margin of a tenth of the context's time
			// tells them apart on any machine.
			if atDeadline := time.Until(deadline) < tc.ctxTimeout/10; atDeadline != tc.wantAtDeadline {
				t.Errorf("Dial returned %v with %s of its context left, want it to give up at the context's deadline: %v", err, time.Until(deadline).Round(time.Millisecond), tc.wantAtDeadline)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("Dial: %v, want a timeout", err)
			}
		})
	}
	if _, err := (&Config{Mechanism: NewNullClient(), SocketType: "DEALER", ConnectTimeout: -1}).withDefaults(); err == nil {
		t.Error("a negative ConnectTimeout was accepted")
	}
}
