package curve

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// exchange sends a few frames each way through the two codecs and checks
// that they arrive intact.
func exchange(t *testing.T, client, server zmtp.FrameCodec) {
	t.Helper()
	frames := []struct {
		flags   zmtp.Flags
		payload []byte
	}{
		{zmtp.FlagMore, []byte("first part")},
		{0, []byte("last part")},
		{zmtp.FlagCommand, []byte("\x04PING\x00\x00")},
		{0, nil},
	}
	for _, dir := range []struct {
		name     string
		from, to zmtp.FrameCodec
	}{{"client to server", client, server}, {"server to client", server, client}} {
		for i, f := range frames {
			body, err := dir.from.Seal(nil, f.flags, f.payload)
			if err != nil {
				t.Fatalf("%s frame %d: Seal: %v", dir.name, i, err)
			}
			flags, got, err := dir.to.Open(nil, body)
			if err != nil {
				t.Fatalf("%s frame %d: Open: %v", dir.name, i, err)
			}
			if flags != f.flags || !bytes.Equal(got, f.payload) {
				t.Fatalf("%s frame %d: got flags %#x payload %q, want %#x %q", dir.name, i, flags, got, f.flags, f.payload)
			}
		}
	}
}

func TestHandshake(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 4000)
	tests := []struct {
		name                   string
		clientInfo, serverInfo zmtp.HandshakeInfo
		auth                   zmtp.AuthResult
	}{
		{
			name: "metadata both ways",
			clientInfo: zmtp.HandshakeInfo{Local: zmtp.Metadata{
				{Name: zmtp.PropSocketType, Value: []byte("DEALER")},
				{Name: zmtp.PropIdentity, Value: []byte("client-1")},
				{Name: "X-Extra", Value: []byte("hello")},
			}},
			serverInfo: zmtp.HandshakeInfo{Local: zmtp.Metadata{
				{Name: zmtp.PropSocketType, Value: []byte("ROUTER")},
				{Name: zmtp.PropIdentity, Value: nil},
			}, RemoteAddr: "198.51.100.4:5555"},
			auth: zmtp.AuthResult{StatusCode: 200, UserID: "alice", Metadata: zmtp.Metadata{{Name: "Team", Value: []byte("blue")}}},
		},
		{
			name: "no metadata",
			auth: zmtp.AuthResult{StatusCode: 200},
		},
		{
			name:       "large metadata",
			clientInfo: zmtp.HandshakeInfo{Local: zmtp.Metadata{{Name: "Big", Value: big}}},
			serverInfo: zmtp.HandshakeInfo{Local: zmtp.Metadata{{Name: "Big", Value: big}}},
			auth:       zmtp.AuthResult{StatusCode: 200, UserID: "bob"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverKey, clientKey := mustKeyPair(t), mustKeyPair(t)
			auth := &authLog{result: tt.auth}
			server := mustServer(t, auth, serverKey)
			client := mustClient(t, clientKey, serverKey.Public)
			o := runHandshake(t, client, server, handshakeOpts{clientInfo: tt.clientInfo, serverInfo: tt.serverInfo})
			if o.clientErr != nil || o.serverErr != nil {
				t.Fatalf("client error %v, server error %v", o.clientErr, o.serverErr)
			}
			if got, want := fmt.Sprint(o.server.Peer), fmt.Sprint(tt.clientInfo.Local); got != want {
				t.Errorf("server sees client metadata %s, want %s", got, want)
			}
			if got, want := fmt.Sprint(o.client.Peer), fmt.Sprint(tt.serverInfo.Local); got != want {
				t.Errorf("client sees server metadata %s, want %s", got, want)
			}
			if o.server.UserID != tt.auth.UserID || fmt.Sprint(o.server.AuthMetadata) != fmt.Sprint(tt.auth.Metadata) {
				t.Errorf("server result UserID %q AuthMetadata %v, want %q %v", o.server.UserID, o.server.AuthMetadata, tt.auth.UserID, tt.auth.Metadata)
			}
			if !bytes.Equal(o.server.ClientKey, clientKey.Public[:]) {
				t.Errorf("server result ClientKey %x, want %x", o.server.ClientKey, clientKey.Public[:])
			}
			if o.client.UserID != "" || o.client.ClientKey != nil {
				t.Errorf("client result has UserID %q ClientKey %x, want none", o.client.UserID, o.client.ClientKey)
			}
			reqs := auth.Requests()
			if len(reqs) != 1 {
				t.Fatalf("authenticator called %d times, want 1", len(reqs))
			}
			wantAddr := tt.serverInfo.RemoteAddr
			if wantAddr == "" {
				wantAddr = "192.0.2.7:40000"
			}
			r := reqs[0]
			if r.Mechanism != "CURVE" || r.Domain != "test-domain" || r.Address != wantAddr || !bytes.Equal(r.ClientKey, clientKey.Public[:]) {
				t.Errorf("auth request %v, want CURVE, test-domain, %s, client key %x", r, wantAddr, clientKey.Public[:])
			}
			exchange(t, o.client.Codec, o.server.Codec)
		})
	}
}

func TestLocalFunc(t *testing.T) {
	serverKey, clientKey := mustKeyPair(t), mustKeyPair(t)
	server := mustServer(t, allow("carol"), serverKey)
	client := mustClient(t, clientKey, serverKey.Public)

	var clientSaw, serverSaw []*zmtp.HandshakeResult
	var mu sync.Mutex
	clientInfo := zmtp.HandshakeInfo{
		Local: zmtp.Metadata{{Name: "Ignored", Value: []byte("x")}},
		LocalFunc: func(peer *zmtp.HandshakeResult) (zmtp.Metadata, error) {
			mu.Lock()
			clientSaw = append(clientSaw, peer)
			mu.Unlock()
			return zmtp.Metadata{{Name: zmtp.PropSocketType, Value: []byte("DEALER")}}, nil
		},
	}
	serverInfo := zmtp.HandshakeInfo{
		LocalFunc: func(peer *zmtp.HandshakeResult) (zmtp.Metadata, error) {
			mu.Lock()
			serverSaw = append(serverSaw, peer)
			mu.Unlock()
			st, _ := peer.Peer.Get(zmtp.PropSocketType)
			// Present the socket type that matches the peer's, as a relay does.
			mine := map[string]string{"DEALER": "ROUTER"}[string(st)]
			return zmtp.Metadata{{Name: zmtp.PropSocketType, Value: []byte(mine)}, {Name: "Seen-User", Value: []byte(peer.UserID)}}, nil
		},
	}
	o := runHandshake(t, client, server, handshakeOpts{clientInfo: clientInfo, serverInfo: serverInfo})
	if o.clientErr != nil || o.serverErr != nil {
		t.Fatalf("client error %v, server error %v", o.clientErr, o.serverErr)
	}
	if len(clientSaw) != 1 || clientSaw[0] != nil {
		t.Errorf("client LocalFunc called with %v, want once with nil", clientSaw)
	}
	if len(serverSaw) != 1 || serverSaw[0] == nil {
		t.Fatalf("server LocalFunc called %d times (%v), want once with the peer's result", len(serverSaw), serverSaw)
	}
	if serverSaw[0].UserID != "carol" || !bytes.Equal(serverSaw[0].ClientKey, clientKey.Public[:]) {
		t.Errorf("server LocalFunc saw UserID %q ClientKey %x, want carol and the client key", serverSaw[0].UserID, serverSaw[0].ClientKey)
	}
	if v, _ := o.server.Peer.Get(zmtp.PropSocketType); string(v) != "DEALER" {
		t.Errorf("server sees Socket-Type %q, want DEALER (from the client's LocalFunc)", v)
	}
	if v, _ := o.client.Peer.Get(zmtp.PropSocketType); string(v) != "ROUTER" {
		t.Errorf("client sees Socket-Type %q, want ROUTER (from the server's LocalFunc)", v)
	}
	if v, _ := o.client.Peer.Get("Seen-User"); string(v) != "carol" {
		t.Errorf("client sees Seen-User %q, want carol", v)
	}
	if _, ok := o.server.Peer.Get("Ignored"); ok {
		t.Error("client announced Local although LocalFunc was set")
	}
}

func TestServerAcceptsEveryKeyOfItsSet(t *testing.T) {
	current, previous, other := mustKeyPair(t), mustKeyPair(t), mustKeyPair(t)
	server := mustServer(t, allow("u"), current, previous)
	tests := []struct {
		name   string
		target PublicKey
		ok     bool
	}{
		{"current key", current.Public, true},
		{"previous key", previous.Public, true},
		{"unknown key", other.Public, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := mustClient(t, mustKeyPair(t), tt.target)
			o := runHandshake(t, client, server, handshakeOpts{clientInfo: dealerInfo(), serverInfo: routerInfo()})
			if tt.ok {
				if o.clientErr != nil || o.serverErr != nil {
					t.Fatalf("client error %v, server error %v", o.clientErr, o.serverErr)
				}
				exchange(t, o.client.Codec, o.server.Codec)
				return
			}
			if !errors.Is(o.serverErr, ErrCryptographic) {
				t.Errorf("server error %v, want ErrCryptographic", o.serverErr)
			}
			if _, ok := o.serverEnd.Find(zmtp.CmdWelcome); ok {
				t.Error("server sent WELCOME to a HELLO made for a key it does not hold")
			}
			if o.clientErr == nil {
				t.Error("client handshake succeeded")
			}
		})
	}
	if got := server.PublicKeys(); len(got) != 2 || got[0] != current.Public || got[1] != previous.Public {
		t.Errorf("PublicKeys() = %v, want current then previous", got)
	}
}

func TestSetKeys(t *testing.T) {
	k1, k2 := mustKeyPair(t), mustKeyPair(t)

	t.Run("handshake in flight survives", func(t *testing.T) {
		server := mustServer(t, allow("u"), k1)
		client := mustClient(t, mustKeyPair(t), k1.Public)
		o := runHandshake(t, client, server, handshakeOpts{
			clientInfo: dealerInfo(), serverInfo: routerInfo(),
			afterHello: func() {
				if err := server.SetKeys([]KeyPair{k2}); err != nil {
					t.Error(err)
				}
			},
		})
		if o.clientErr != nil || o.serverErr != nil {
			t.Fatalf("client error %v, server error %v", o.clientErr, o.serverErr)
		}
		exchange(t, o.client.Codec, o.server.Codec)

		o = runHandshake(t, mustClient(t, mustKeyPair(t), k1.Public), server, handshakeOpts{})
		if !errors.Is(o.serverErr, ErrCryptographic) {
			t.Errorf("new HELLO for the removed key: server error %v, want ErrCryptographic", o.serverErr)
		}
		o = runHandshake(t, mustClient(t, mustKeyPair(t), k2.Public), server, handshakeOpts{clientInfo: dealerInfo(), serverInfo: routerInfo()})
		if o.clientErr != nil || o.serverErr != nil {
			t.Errorf("new HELLO for the new key: client error %v, server error %v", o.clientErr, o.serverErr)
		}
	})

	t.Run("invalid sets are refused and change nothing", func(t *testing.T) {
		server := mustServer(t, allow("u"), k1)
		bad := k2
		bad.Public[0] ^= 1
		for _, keys := range [][]KeyPair{nil, {{}}, {k2, bad}} {
			if err := server.SetKeys(keys); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("SetKeys(%d keys) = %v, want ErrInvalidKey", len(keys), err)
			}
		}
		if got := server.PublicKeys(); len(got) != 1 || got[0] != k1.Public {
			t.Errorf("keys after refused SetKeys: %v, want only k1", got)
		}
	})

	t.Run("concurrent with handshakes", func(t *testing.T) {
		server := mustServer(t, allow("u"), k1, k2)
		stop := make(chan struct{})
		var flipper sync.WaitGroup
		flipper.Add(1)
		go func() {
			defer flipper.Done()
			sets := [][]KeyPair{{k1, k2}, {k2, k1}}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := server.SetKeys(sets[i%2]); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				target := []PublicKey{k1.Public, k2.Public}[i%2]
				o := runHandshake(t, mustClient(t, mustKeyPair(t), target), server, handshakeOpts{clientInfo: dealerInfo(), serverInfo: routerInfo()})
				if o.clientErr != nil || o.serverErr != nil {
					t.Errorf("handshake %d: client error %v, server error %v", i, o.clientErr, o.serverErr)
				}
			}()
		}
		wg.Wait()
		close(stop)
		flipper.Wait()
	})
}

// rewrite returns a hook that applies f to the body of commands named name.
func rewrite(name string, f func([]byte) []byte) func(zmtp.Command) zmtp.Command {
	return func(c zmtp.Command) zmtp.Command {
		if c.Name == name {
			c.Body = f(c.Body)
		}
		return c
	}
}

func TestRefusals(t *testing.T) {
	serverKey, clientKey, otherKey := mustKeyPair(t), mustKeyPair(t), mustKeyPair(t)
	type check struct {
		serverErr  error  // errors.Is target for the server's error; nil: server succeeded
		peerReason string // the ERROR reason the client must receive; "" to skip
		clientErr  error  // errors.Is target for the client's error, when set
	}
	tests := []struct {
		name       string
		auth       zmtp.AuthResult
		target     PublicKey // server key the client uses (default: the right one)
		serverFunc func(*zmtp.HandshakeResult) (zmtp.Metadata, error)
		clientHook func(zmtp.Command) zmtp.Command
		serverHook func(zmtp.Command) zmtp.Command
		want       check
	}{
		{
			name: "authenticator denies with a reason",
			auth: zmtp.AuthResult{StatusCode: 400, StatusText: "client key not on the allowlist"},
			want: check{serverErr: zmtp.ErrAuthFailed, peerReason: "400"},
		},
		{
			name: "authenticator denies without a reason",
			auth: zmtp.AuthResult{StatusCode: 400},
			want: check{serverErr: zmtp.ErrAuthFailed, peerReason: "400"},
		},
		{
			name: "authenticator temporary failure",
			auth: zmtp.AuthResult{StatusCode: 300, StatusText: "try later"},
			want: check{serverErr: zmtp.ErrAuthFailed, peerReason: "300"},
		},
		{
			name: "authenticator internal error",
			auth: zmtp.AuthResult{StatusCode: 500},
			want: check{serverErr: zmtp.ErrAuthFailed, peerReason: "500"},
		},
		{
			name:   "client holds the wrong server key",
			target: otherKey.Public,
			want:   check{serverErr: ErrCryptographic, peerReason: "invalid HELLO"},
		},
		{
			name:       "HELLO box tampered",
			clientHook: rewrite(zmtp.CmdHello, func(b []byte) []byte { return flipByte(b, -1) }),
			want:       check{serverErr: ErrCryptographic},
		},
		{
			name:       "HELLO nonce tampered",
			clientHook: rewrite(zmtp.CmdHello, func(b []byte) []byte { return flipByte(b, 2+72+32) }),
			want:       check{serverErr: ErrCryptographic},
		},
		{
			name:       "HELLO truncated",
			clientHook: rewrite(zmtp.CmdHello, func(b []byte) []byte { return b[:len(b)-1] }),
			want:       check{serverErr: zmtp.ErrProtocol},
		},
		{
			name:       "HELLO too long",
			clientHook: rewrite(zmtp.CmdHello, func(b []byte) []byte { return append(b, 0) }),
			want:       check{serverErr: zmtp.ErrProtocol},
		},
		{
			name:       "HELLO version 2.0",
			clientHook: rewrite(zmtp.CmdHello, func(b []byte) []byte { b[0] = 2; return b }),
			want:       check{serverErr: zmtp.ErrProtocol},
		},
		{
			name:       "HELLO padding not zero",
			clientHook: rewrite(zmtp.CmdHello, func(b []byte) []byte { b[40] = 1; return b }),
			want:       check{serverErr: zmtp.ErrProtocol},
		},
		{
			name: "HELLO with a low-order short-term key",
			clientHook: rewrite(zmtp.CmdHello, func(b []byte) []byte {
				clear(b[2+72 : 2+72+32])
				return b
			}),
			want: check{serverErr: ErrInvalidKey},
		},
		{
			name:       "READY instead of HELLO",
			clientHook: func(c zmtp.Command) zmtp.Command { c.Name = zmtp.CmdReady; return c },
			want:       check{serverErr: zmtp.ErrProtocol},
		},
		{
			name:       "WELCOME tampered",
			serverHook: rewrite(zmtp.CmdWelcome, func(b []byte) []byte { return flipByte(b, 20) }),
			want:       check{serverErr: errAny, clientErr: ErrCryptographic},
		},
		{
			name:       "WELCOME truncated",
			serverHook: rewrite(zmtp.CmdWelcome, func(b []byte) []byte { return b[:100] }),
			want:       check{serverErr: errAny, clientErr: zmtp.ErrProtocol},
		},
		{
			name:       "INITIATE box tampered",
			clientHook: rewrite(zmtp.CmdInitiate, func(b []byte) []byte { return flipByte(b, -1) }),
			want:       check{serverErr: ErrCryptographic, peerReason: "invalid INITIATE"},
		},
		{
			name:       "INITIATE cookie box tampered",
			clientHook: rewrite(zmtp.CmdInitiate, func(b []byte) []byte { return flipByte(b, 50) }),
			want:       check{serverErr: ErrCryptographic},
		},
		{
			name:       "INITIATE cookie nonce tampered",
			clientHook: rewrite(zmtp.CmdInitiate, func(b []byte) []byte { return flipByte(b, 3) }),
			want:       check{serverErr: ErrCryptographic},
		},
		{
			name:       "INITIATE truncated",
			clientHook: rewrite(zmtp.CmdInitiate, func(b []byte) []byte { return b[:247] }),
			want:       check{serverErr: zmtp.ErrProtocol},
		},
		{
			name:       "READY tampered",
			serverHook: rewrite(zmtp.CmdReady, func(b []byte) []byte { return flipByte(b, -1) }),
			want:       check{clientErr: ErrCryptographic},
		},
		{
			name:       "READY truncated",
			serverHook: rewrite(zmtp.CmdReady, func(b []byte) []byte { return b[:23] }),
			want:       check{clientErr: zmtp.ErrProtocol},
		},
		{
			name: "server LocalFunc fails",
			serverFunc: func(*zmtp.HandshakeResult) (zmtp.Metadata, error) {
				return nil, errors.New("no application behind this port")
			},
			want: check{serverErr: errAny, peerReason: "zmtp: choosing local metadata: no application behind this port"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := tt.auth
			if auth.StatusCode == 0 {
				auth = zmtp.AuthResult{StatusCode: 200, UserID: "u"}
			}
			server := mustServer(t, &authLog{result: auth}, serverKey)
			target := tt.target
			if target.IsZero() {
				target = serverKey.Public
			}
			client := mustClient(t, clientKey, target)
			serverInfo := routerInfo()
			serverInfo.LocalFunc = tt.serverFunc
			o := runHandshake(t, client, server, handshakeOpts{
				clientInfo: dealerInfo(), serverInfo: serverInfo,
				clientHook: tt.clientHook, serverHook: tt.serverHook,
			})
			switch {
			case tt.want.serverErr == nil:
				if o.serverErr != nil {
					t.Errorf("server error %v, want success", o.serverErr)
				}
			case tt.want.serverErr == errAny:
				if o.serverErr == nil {
					t.Error("server handshake succeeded")
				}
			case !errors.Is(o.serverErr, tt.want.serverErr):
				t.Errorf("server error %v, want %v", o.serverErr, tt.want.serverErr)
			}
			if o.serverErr != nil && o.server != nil {
				t.Error("server returned a result with its error")
			}
			if o.clientErr == nil {
				t.Fatal("client handshake succeeded")
			}
			if tt.want.clientErr != nil && !errors.Is(o.clientErr, tt.want.clientErr) {
				t.Errorf("client error %v, want %v", o.clientErr, tt.want.clientErr)
			}
			if tt.want.peerReason != "" {
				var pe *zmtp.PeerError
				if !errors.As(o.clientErr, &pe) || pe.Reason != tt.want.peerReason {
					t.Errorf("client error %v, want a PeerError with reason %q", o.clientErr, tt.want.peerReason)
				}
			}
			if _, ok := o.serverEnd.Find(zmtp.CmdReady); ok && o.serverErr != nil {
				t.Error("server sent READY although it failed")
			}
			for _, err := range []error{o.clientErr, o.serverErr} {
				assertNoSecrets(t, err, serverKey, clientKey, otherKey)
			}
		})
	}
}

// errAny marks an expected error of any kind.
var errAny = errors.New("any error")

// assertNoSecrets fails when err's text contains a secret key in any of the
// usual encodings.
func assertNoSecrets(t *testing.T, err error, keys ...KeyPair) {
	t.Helper()
	if err == nil {
		return
	}
	msg := strings.ToLower(err.Error())
	for _, k := range keys {
		for _, enc := range []string{fmt.Sprintf("%x", k.Secret[:]), fmt.Sprint(k.Secret[:]), string(k.Secret[:])} {
			if strings.Contains(msg, strings.ToLower(enc)) {
				t.Errorf("error %q contains a secret key", err)
			}
		}
	}
}

// driveServer runs server.Handshake on one end of a pipe while script plays
// the client on the other, and returns the server's outcome.
func driveServer(t *testing.T, server *Server, script func(c *pipeEnd)) (*zmtp.HandshakeResult, error) {
	t.Helper()
	ce, se, closeC, closeS := newPipe()
	type result struct {
		res *zmtp.HandshakeResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer closeS()
		res, err := server.Handshake(t.Context(), se, routerInfo())
		done <- result{res, err}
	}()
	script(ce)
	closeC()
	r := <-done
	if r.res != nil && r.res.Codec != nil {
		r.res.Codec.Close()
	}
	return r.res, r.err
}

func TestReplayedInitiate(t *testing.T) {
	serverKey, clientKey := mustKeyPair(t), mustKeyPair(t)
	server := mustServer(t, allow("u"), serverKey)
	client := mustClient(t, clientKey, serverKey.Public)
	o := runHandshake(t, client, server, handshakeOpts{clientInfo: dealerInfo(), serverInfo: routerInfo()})
	if o.clientErr != nil || o.serverErr != nil {
		t.Fatalf("recording handshake: client error %v, server error %v", o.clientErr, o.serverErr)
	}
	recHello, _ := o.clientEnd.Find(zmtp.CmdHello)
	recInitiate, _ := o.clientEnd.Find(zmtp.CmdInitiate)

	tests := []struct {
		name  string
		hello func(t *testing.T) zmtp.Command
	}{
		{"recorded HELLO then recorded INITIATE", func(*testing.T) zmtp.Command { return recHello }},
		{"fresh HELLO then recorded INITIATE", func(t *testing.T) zmtp.Command {
			var st clientState
			body, err := client.produceHello(&st)
			if err != nil {
				t.Fatal(err)
			}
			return zmtp.Command{Name: zmtp.CmdHello, Body: body}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := driveServer(t, server, func(c *pipeEnd) {
				if err := c.WriteCommand(tt.hello(t)); err != nil {
					t.Fatal(err)
				}
				if w, err := c.ReadCommand(); err != nil || w.Name != zmtp.CmdWelcome {
					t.Errorf("got %q, %v; want WELCOME", w.Name, err)
					return
				}
				_ = c.WriteCommand(recInitiate)
				if e, err := c.ReadCommand(); err != nil || e.Name != zmtp.CmdError {
					t.Errorf("after the replayed INITIATE got %q, %v; want ERROR", e.Name, err)
				}
			})
			if res != nil || !errors.Is(err, ErrCryptographic) {
				t.Errorf("server accepted a replayed INITIATE: result %v, error %v", res, err)
			}
		})
	}
}

// forgeInitiate plays a client that completes HELLO and WELCOME honestly and
// then sends the INITIATE that mutate makes of the honest parameters.
func forgeInitiate(t *testing.T, client *Client, mutate func(*initiateParams), wantReady bool) func(c *pipeEnd) {
	return func(c *pipeEnd) {
		var st clientState
		body, err := client.produceHello(&st)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.WriteCommand(zmtp.Command{Name: zmtp.CmdHello, Body: body})
		w, err := c.ReadCommand()
		if err != nil || w.Name != zmtp.CmdWelcome {
			t.Errorf("got %q, %v; want WELCOME", w.Name, err)
			return
		}
		serverShort, err := client.processWelcome(&st, w.Body)
		if err != nil {
			t.Fatal(err)
		}
		if err := precompute(&st.session, st.short, (*[KeySize]byte)(&serverShort)); err != nil {
			t.Fatal(err)
		}
		p := initiateParams{claim: client.key.public, signer: client.key.priv, nonce: 2}
		copy(p.vouch[:], st.shortPub[:])
		copy(p.vouch[KeySize:], client.server[:])
		mutate(&p)
		body, err = client.initiateBody(&st, &serverShort, dealerInfo().Local, &p)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.WriteCommand(zmtp.Command{Name: zmtp.CmdInitiate, Body: body})
		r, err := c.ReadCommand()
		if got := err == nil && r.Name == zmtp.CmdReady; got != wantReady {
			t.Errorf("server answered INITIATE with %q (%v), want READY: %v", r.Name, err, wantReady)
		}
	}
}

func TestForgedInitiate(t *testing.T) {
	serverKey, secondKey, clientKey, otherKey := mustKeyPair(t), mustKeyPair(t), mustKeyPair(t), mustKeyPair(t)
	other, err := parseKeyPair(&otherKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*initiateParams)
		want   error
	}{
		{"honest", func(*initiateParams) {}, nil},
		{"vouch for another server key of the same server", func(p *initiateParams) { copy(p.vouch[KeySize:], secondKey.Public[:]) }, ErrCryptographic},
		{"vouch for an unrelated server key", func(p *initiateParams) { copy(p.vouch[KeySize:], otherKey.Public[:]) }, ErrCryptographic},
		{"vouch for another short-term key", func(p *initiateParams) { p.vouch[0] ^= 1 }, ErrCryptographic},
		{"claims a key it does not hold", func(p *initiateParams) { p.claim = otherKey.Public }, ErrCryptographic},
		{"vouch signed by another key", func(p *initiateParams) { p.signer = other.priv }, ErrCryptographic},
		{"another key, consistently", func(p *initiateParams) { p.claim, p.signer = other.public, other.priv }, nil},
		{"INITIATE nonce equal to HELLO's", func(p *initiateParams) { p.nonce = 1 }, ErrNonce},
		{"INITIATE nonce zero", func(p *initiateParams) { p.nonce = 0 }, ErrNonce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := allow("u")
			server := mustServer(t, auth, serverKey, secondKey)
			client := mustClient(t, clientKey, serverKey.Public)
			res, err := driveServer(t, server, forgeInitiate(t, client, tt.mutate, tt.want == nil))
			if tt.want == nil {
				if err != nil || res == nil {
					t.Fatalf("server error %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("server error %v, want %v", err, tt.want)
			}
			if len(auth.Requests()) != 0 {
				t.Error("the authenticator was consulted for a forged INITIATE")
			}
		})
	}
}

func TestCookieKeyRotation(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration // clock moves between WELCOME and INITIATE
		ok      bool
	}{
		{"same cookie key", time.Second, true},
		{"cookie key rotated once: previous key still accepted", 61 * time.Second, true},
		{"just under two lifetimes", 119 * time.Second, true},
		{"two lifetimes: cookie expired", 121 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverKey := mustKeyPair(t)
			var mu sync.Mutex
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			server, err := NewServer(ServerConfig{Keys: []KeyPair{serverKey}, Authenticator: allow("u"), Now: clock, CookieKeyLifetime: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			first := server.cookies.Load().cur
			o := runHandshake(t, mustClient(t, mustKeyPair(t), serverKey.Public), server, handshakeOpts{
				clientInfo: dealerInfo(), serverInfo: routerInfo(),
				afterHello: func() { mu.Lock(); now = now.Add(tt.advance); mu.Unlock() },
			})
			if tt.ok {
				if o.clientErr != nil || o.serverErr != nil {
					t.Fatalf("client error %v, server error %v", o.clientErr, o.serverErr)
				}
			} else if !errors.Is(o.serverErr, ErrCryptographic) || o.clientErr == nil {
				t.Fatalf("expired cookie: server error %v, client error %v; want ErrCryptographic", o.serverErr, o.clientErr)
			}
			if rotated := server.cookies.Load().cur != first; rotated != (tt.advance >= time.Minute) {
				t.Errorf("cookie key rotated: %v, want %v", rotated, tt.advance >= time.Minute)
			}
		})
	}
}
