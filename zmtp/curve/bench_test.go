package curve

import (
	"context"
	"crypto/ecdh"
	"runtime"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// BenchmarkHandshake runs complete handshakes, client and server in two
// goroutines over the in-memory pipe: the cost of one connection for both
// sides together.
func BenchmarkHandshake(b *testing.B) {
	serverKey, clientKey := mustKeyPair(b), mustKeyPair(b)
	server := mustServer(b, allow("u"), serverKey)
	client := mustClient(b, clientKey, serverKey.Public)
	b.ReportAllocs()
	for b.Loop() {
		o := runHandshake(b, client, server, handshakeOpts{clientInfo: dealerInfo(), serverInfo: routerInfo()})
		if o.clientErr != nil || o.serverErr != nil {
			b.Fatal(o.clientErr, o.serverErr)
		}
		o.closeCodecs()
	}
}

// BenchmarkServerHandshake runs the client's and the server's steps of
// whole handshakes in one goroutine, without I/O, and reports the server's
// share: processing HELLO into WELCOME, then INITIATE into READY and a codec
// (authorization included), as wall time (server-ns/op) and, on Linux, as
// the CPU time of the thread (server-cpu-ns/op), which other processes
// competing for the CPU do not inflate.
func BenchmarkServerHandshake(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	serverKey, clientKey := mustKeyPair(b), mustKeyPair(b)
	server := mustServer(b, allow("u"), serverKey)
	client := mustClient(b, clientKey, serverKey.Public)
	ctx := context.Background()
	info := routerInfo()
	local := dealerInfo().Local
	// One X25519 per iteration, timed the same way, gives the unit to read
	// the server's cost in (server-x25519/op) whatever the machine's load.
	calPriv := mustShortKey(b)
	calPeer, err := ecdh.X25519().NewPublicKey(clientKey.Public[:])
	if err != nil {
		b.Fatal(err)
	}
	var serverTime, serverCPU, calCPU time.Duration
	b.ReportAllocs()
	for b.Loop() {
		var cst clientState
		hello, err := client.produceHello(&cst)
		if err != nil {
			b.Fatal(err)
		}

		t0, c0 := time.Now(), threadCPU()
		var sst serverState
		welcome, err := server.processHello(&sst, hello)
		serverTime += time.Since(t0)
		serverCPU += threadCPU() - c0
		if err != nil {
			b.Fatal(err)
		}

		serverShort, err := client.processWelcome(&cst, welcome)
		if err != nil {
			b.Fatal(err)
		}
		initiate, err := client.produceInitiate(&cst, &serverShort, local)
		if err != nil {
			b.Fatal(err)
		}

		t0, c0 = time.Now(), threadCPU()
		res, ready, err := server.acceptInitiate(ctx, &sst, initiate, info)
		serverTime += time.Since(t0)
		serverCPU += threadCPU() - c0
		if err != nil {
			b.Fatal(err)
		}

		if _, _, err := processReady(&cst.session, ready); err != nil {
			b.Fatal(err)
		}
		c0 = threadCPU()
		if _, err := calPriv.ECDH(calPeer); err != nil {
			b.Fatal(err)
		}
		calCPU += threadCPU() - c0
		res.Codec.Close()
		cst.erase()
	}
	b.ReportMetric(float64(serverTime.Nanoseconds())/float64(b.N), "server-ns/op")
	if serverCPU > 0 && calCPU > 0 {
		b.ReportMetric(float64(serverCPU.Nanoseconds())/float64(b.N), "server-cpu-ns/op")
		b.ReportMetric(float64(calCPU.Nanoseconds())/float64(b.N), "x25519-cpu-ns/op")
		b.ReportMetric(float64(serverCPU)/float64(calCPU), "server-x25519/op")
	}
}

// BenchmarkServerHello measures the server's HELLO step alone (open HELLO,
// draw the short-term key, seal cookie and WELCOME), replaying one HELLO
// (HELLO carries no state, so a replay costs the server the same).
func BenchmarkServerHello(b *testing.B) {
	serverKey, clientKey := mustKeyPair(b), mustKeyPair(b)
	server := mustServer(b, allow("u"), serverKey)
	client := mustClient(b, clientKey, serverKey.Public)
	var cst clientState
	hello, err := client.produceHello(&cst)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var st serverState
		if _, err := server.processHello(&st, hello); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealOpen seals and opens one frame, as a connection's two ends do
// per frame, reusing the caller's buffers. cpu-ns/op is the thread's CPU
// time, which competing processes do not inflate (Linux only).
func BenchmarkSealOpen(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"64B", 64}, {"64KiB", 64 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			client, server, _, _ := sessionPair(b)
			p := payloadOf(size.n)
			sealed := make([]byte, 0, client.SealedSize(size.n))
			opened := make([]byte, 0, size.n)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.SetBytes(int64(size.n))
			b.ReportAllocs()
			c0 := threadCPU()
			for b.Loop() {
				s, err := client.Seal(sealed[:0], zmtp.FlagMore, p)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := server.Open(opened[:0], s); err != nil {
					b.Fatal(err)
				}
			}
			if cpu := threadCPU() - c0; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkX25519 is the unit the handshake costs are made of: one X25519
// scalar multiplication with an already parsed key (crypto/ecdh), run in the
// same conditions as the other benchmarks.
func BenchmarkX25519(b *testing.B) {
	priv := mustShortKey(b)
	kp := mustKeyPair(b)
	peer, err := ecdh.X25519().NewPublicKey(kp.Public[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := priv.ECDH(peer); err != nil {
			b.Fatal(err)
		}
	}
}
