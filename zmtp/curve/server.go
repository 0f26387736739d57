package curve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zmqauth/zmqauth/zmtp"
)

// DefaultCookieKeyLifetime is how long a Server uses one cookie key before it
// draws the next; a cookie stays valid until the key after next replaces its
// key, so for between one and two lifetimes.
const DefaultCookieKeyLifetime = 60 * time.Second

// ServerConfig configures a CURVE server.
type ServerConfig struct {
	// Keys are the server's long-term keypairs; at least one. The first is
	// the current key; a HELLO made for any of them is accepted (its box is
	// tried against each key in order), so that clients still holding the
	// previous public key keep connecting during a rotation.
	Keys []KeyPair
	// Authenticator decides which client keys may connect. Required: a nil
	// Authenticator makes NewServer return zmtp.ErrNoAuthenticator.
	Authenticator zmtp.Authenticator
	// Domain is the ZAP domain passed to the Authenticator.
	Domain string
	// Rand is the source of short-term keys and nonces; crypto/rand when nil.
	// Tests may set a deterministic reader; the Server serialises its reads.
	Rand io.Reader
	// Now is the clock that times cookie keys; time.Now when nil.
	Now func() time.Time
	// CookieKeyLifetime is how long one cookie key is used;
	// DefaultCookieKeyLifetime when zero.
	CookieKeyLifetime time.Duration
}

// Server is the CURVE mechanism in the server role (a zmtp.Mechanism). One
// Server serves any number of connections concurrently; its key set can be
// replaced at run time with SetKeys.
type Server struct {
	keys       atomic.Pointer[keySet]
	cookies    atomic.Pointer[cookieKeys]
	auth       zmtp.Authenticator
	domain     string
	rand       io.Reader
	now        func() time.Time
	cookieLife time.Duration
}

// keySet is an immutable set of parsed long-term server keys.
type keySet struct {
	keys []longTermKey
}

// cookieKeys is an immutable generation of cookie keys: cookies are sealed
// under cur and accepted under cur or prev.
type cookieKeys struct {
	cur, prev [KeySize]byte
	hasPrev   bool
	born      time.Time
}

var _ zmtp.Mechanism = (*Server)(nil)

// NewServer returns a CURVE server. It parses every key once and fails on a
// missing Authenticator (zmtp.ErrNoAuthenticator), on an empty key set and on
// an invalid key.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Authenticator == nil {
		return nil, zmtp.ErrNoAuthenticator
	}
	s := &Server{
		auth:       cfg.Authenticator,
		domain:     cfg.Domain,
		rand:       rand.Reader,
		now:        cfg.Now,
		cookieLife: cfg.CookieKeyLifetime,
	}
	if cfg.Rand != nil {
		s.rand = &lockedReader{r: cfg.Rand}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cookieLife <= 0 {
		s.cookieLife = DefaultCookieKeyLifetime
	}
	if err := s.SetKeys(cfg.Keys); err != nil {
		return nil, err
	}
	if _, err := s.cookieKeys(); err != nil {
		return nil, err
	}
	return s, nil
}

// SetKeys replaces the server's long-term keys; the first is the current
// one. It is safe to call while handshakes run: a handshake keeps the key set
// it saw when its HELLO arrived. An empty set or an invalid key leaves the
// keys unchanged and returns an error.
func (s *Server) SetKeys(keys []KeyPair) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: a CURVE server needs at least one keypair", ErrInvalidKey)
	}
	set := &keySet{keys: make([]longTermKey, len(keys))}
	for i := range keys {
		k, err := parseKeyPair(&keys[i])
		if err != nil {
			return fmt.Errorf("curve: server key %d: %w", i, err)
		}
		set.keys[i] = k
	}
	s.keys.Store(set)
	return nil
}

// PublicKeys returns the server's public keys, the current one first.
func (s *Server) PublicKeys() []PublicKey {
	set := s.keys.Load()
	if set == nil {
		return nil
	}
	out := make([]PublicKey, len(set.keys))
	for i, k := range set.keys {
		out[i] = k.public
	}
	return out
}

// Name returns "CURVE".
func (s *Server) Name() string { return "CURVE" }

// AsServer returns true.
func (s *Server) AsServer() bool { return true }

// String describes the server by its public keys.
func (s *Server) String() string {
	var b strings.Builder
	b.WriteString("CURVE server (keys")
	for _, k := range s.PublicKeys() {
		b.WriteString(" ")
		b.WriteString(k.String())
	}
	b.WriteString(")")
	return b.String()
}

// serverState is what one server handshake remembers between HELLO and
// INITIATE: public values only. The short-term secret key is not among them;
// it comes back inside the cookie.
type serverState struct {
	key         longTermKey // the server key the HELLO was made for
	clientShort PublicKey   // C'
	helloNonce  uint64
	cookieNonce [longNonce]byte // the nonce of the cookie sent in WELCOME
}

// initiateResult is what a checked INITIATE yields.
type initiateResult struct {
	session   sharedKey // C'-S' box key; the caller erases it
	nonce     uint64
	clientKey PublicKey // C
	peer      zmtp.Metadata
}

func (r *initiateResult) erase() { clear(r.session[:]) }

// Handshake runs the server side: HELLO, WELCOME, INITIATE (checked, then
// authorized), READY. A LocalFunc in info is called after authorization,
// before READY, with the client's metadata and the Authenticator's answer. On
// failure the server sends ERROR with the reason before returning.
func (s *Server) Handshake(ctx context.Context, rw zmtp.CommandReadWriter, info zmtp.HandshakeInfo) (*zmtp.HandshakeResult, error) {
	if s.auth == nil || s.keys.Load() == nil {
		return nil, zmtp.Refuse(rw, "no authenticator", zmtp.ErrNoAuthenticator)
	}
	body, err := zmtp.ExpectCommand(rw, zmtp.CmdHello)
	if err != nil {
		return nil, zmtp.Refuse(rw, "expected HELLO", fmt.Errorf("curve: reading HELLO: %w", err))
	}
	var st serverState
	welcomeBody, err := s.processHello(&st, body)
	if err != nil {
		return nil, zmtp.Refuse(rw, "invalid HELLO", err)
	}
	if err := rw.WriteCommand(zmtp.Command{Name: zmtp.CmdWelcome, Body: welcomeBody}); err != nil {
		return nil, fmt.Errorf("curve: writing WELCOME: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("curve: handshake: %w", err)
	}
	body, err = zmtp.ExpectCommand(rw, zmtp.CmdInitiate)
	if err != nil {
		return nil, zmtp.Refuse(rw, "expected INITIATE", fmt.Errorf("curve: reading INITIATE: %w", err))
	}
	res, readyBody, err := s.acceptInitiate(ctx, &st, body, info)
	if err != nil {
		var refusal *refusal
		if errors.As(err, &refusal) {
			return nil, zmtp.Refuse(rw, refusal.reason, refusal.err)
		}
		return nil, err
	}
	if err := rw.WriteCommand(zmtp.Command{Name: zmtp.CmdReady, Body: readyBody}); err != nil {
		res.Codec.Close()
		return nil, fmt.Errorf("curve: writing READY: %w", err)
	}
	return res, nil
}

// refusal is an error the server reports to the client in ERROR.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason string, err error) error { return &refusal{reason: reason, err: err} }

// acceptInitiate checks and authorizes an INITIATE and returns the result
// (with its codec) and the READY body to send. Its errors are refusals.
func (s *Server) acceptInitiate(ctx context.Context, st *serverState, body []byte, info zmtp.HandshakeInfo) (*zmtp.HandshakeResult, []byte, error) {
	var in initiateResult
	defer in.erase()
	if err := s.processInitiate(st, body, &in); err != nil {
		return nil, nil, refuse("invalid INITIATE", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, refuse("handshake cancelled", fmt.Errorf("curve: handshake: %w", err))
	}
	ar := s.auth.Authenticate(ctx, &zmtp.AuthRequest{
		Domain:    s.domain,
		Address:   info.RemoteAddr,
		Mechanism: "CURVE",
		ClientKey: append([]byte(nil), in.clientKey[:]...),
	})
	if ar.StatusCode != zmtp.StatusOK {
		return nil, nil, refuse(zmtp.AuthErrorReason(ar),
			fmt.Errorf("curve: client key %s: %w", in.clientKey, zmtp.AuthError("CURVE", ar)))
	}
	res := &zmtp.HandshakeResult{
		Peer:         in.peer,
		UserID:       ar.UserID,
		AuthMetadata: ar.Metadata,
		ClientKey:    append([]byte(nil), in.clientKey[:]...),
	}
	local, err := zmtp.LocalProperties(info, res)
	if err != nil {
		return nil, nil, refuse(err.Error(), fmt.Errorf("curve: %w", err))
	}
	readyBody, err := produceReady(&in.session, 1, local)
	if err != nil {
		return nil, nil, refuse("internal error", err)
	}
	res.Codec = newCodec(&in.session, prefixMessageS, prefixMessageC, 1, in.nonce)
	return res, readyBody, nil
}

// processHello checks a HELLO against the current key set and returns the
// WELCOME body. It records in st only public values.
func (s *Server) processHello(st *serverState, body []byte) ([]byte, error) {
	h, err := parseHello(body)
	if err != nil {
		return nil, err
	}
	set := s.keys.Load()
	var k sharedKey
	defer clear(k[:])
	var nonce [nonceSize]byte
	shortNonceFrom(&nonce, prefixHello, h.nonce)
	var plain [helloZeros]byte
	matched := -1
	for i := range set.keys {
		if err := precompute(&k, set.keys[i].priv, (*[KeySize]byte)(&h.clientShort)); err != nil {
			return nil, fmt.Errorf("curve: HELLO: client short-term key: %w", err)
		}
		if p, ok := open(plain[:0], &k, &nonce, h.box); ok && subtle.ConstantTimeCompare(p, make([]byte, helloZeros)) == 1 {
			matched = i
			break
		}
	}
	if matched < 0 {
		return nil, fmt.Errorf("%w: HELLO box does not open with the server's %d key(s): the client holds another server public key", ErrCryptographic, len(set.keys))
	}
	st.key = set.keys[matched]
	st.clientShort = h.clientShort
	st.helloNonce = h.nonce
	return s.produceWelcome(st, &k)
}

// produceWelcome draws the short-term keypair and returns the WELCOME body:
// Box[S' + cookie](S->C'), the cookie holding C' and s' under the cookie key.
func (s *Server) produceWelcome(st *serverState, k *sharedKey) ([]byte, error) {
	ck, err := s.cookieKeys()
	if err != nil {
		return nil, err
	}
	var welcomePlain [welcomePlainSize]byte // S' + cookie nonce + cookie box
	var cookiePlain [cookiePlainSize]byte   // C' + s'
	defer clear(cookiePlain[:])
	var nonces [2 * longNonce]byte // cookie nonce, welcome nonce
	if _, err := io.ReadFull(s.rand, nonces[:]); err != nil {
		return nil, fmt.Errorf("curve: drawing nonces: %w", err)
	}
	copy(cookiePlain[:], st.clientShort[:])
	if err := s.newShortTermKey((*PublicKey)(welcomePlain[:KeySize]), (*[KeySize]byte)(cookiePlain[KeySize:])); err != nil {
		return nil, err
	}

	var nonce [nonceSize]byte
	nonceFrom(&nonce, prefixCookie, nonces[:longNonce])
	copy(welcomePlain[KeySize:], nonces[:longNonce])
	seal(welcomePlain[KeySize+longNonce:KeySize+longNonce], (*sharedKey)(&ck.cur), &nonce, cookiePlain[:])
	copy(st.cookieNonce[:], nonces[:longNonce])

	out := make([]byte, longNonce, welcomeBodySize)
	copy(out, nonces[longNonce:])
	nonceFrom(&nonce, prefixWelcome, nonces[longNonce:])
	return seal(out, k, &nonce, welcomePlain[:]), nil
}

// newShortTermKey draws a short-term keypair for one connection.
func (s *Server) newShortTermKey(pub *PublicKey, secret *[KeySize]byte) error {
	if _, err := io.ReadFull(s.rand, secret[:]); err != nil {
		return fmt.Errorf("curve: drawing a short-term key: %w", err)
	}
	priv, err := parseShortTermKey(secret[:])
	if err != nil {
		return err
	}
	copy(pub[:], priv.PublicKey().Bytes())
	return nil
}

// processInitiate checks an INITIATE: the cookie is the one this handshake
// sent and opens under a live cookie key, the box opens under the session
// key, and the vouch proves that the client's long-term key vouches for C'
// and for the server key the HELLO was made for. It does not authorize.
func (s *Server) processInitiate(st *serverState, body []byte, out *initiateResult) error {
	in, err := parseInitiate(body)
	if err != nil {
		return err
	}
	if in.nonce <= st.helloNonce {
		return fmt.Errorf("%w: INITIATE nonce %d after HELLO nonce %d", ErrNonce, in.nonce, st.helloNonce)
	}
	if subtle.ConstantTimeCompare(in.cookie[:longNonce], st.cookieNonce[:]) != 1 {
		return fmt.Errorf("%w: INITIATE carries a cookie this connection was not given", ErrCryptographic)
	}
	ck, err := s.cookieKeys()
	if err != nil {
		return err
	}
	var nonce [nonceSize]byte
	nonceFrom(&nonce, prefixCookie, in.cookie[:longNonce])
	var cookiePlain [cookiePlainSize]byte
	defer clear(cookiePlain[:])
	_, ok := open(cookiePlain[:0], (*sharedKey)(&ck.cur), &nonce, in.cookie[longNonce:])
	if !ok && ck.hasPrev {
		_, ok = open(cookiePlain[:0], (*sharedKey)(&ck.prev), &nonce, in.cookie[longNonce:])
	}
	if !ok {
		return fmt.Errorf("%w: INITIATE cookie does not open (expired or forged)", ErrCryptographic)
	}
	if subtle.ConstantTimeCompare(cookiePlain[:KeySize], st.clientShort[:]) != 1 {
		return fmt.Errorf("%w: INITIATE cookie was made for another client short-term key", ErrCryptographic)
	}
	serverShort, err := parseShortTermKey(cookiePlain[KeySize:])
	if err != nil {
		return err
	}
	clear(cookiePlain[:])

	if err := precompute(&out.session, serverShort, (*[KeySize]byte)(&st.clientShort)); err != nil {
		return fmt.Errorf("curve: INITIATE: %w", err)
	}
	shortNonceFrom(&nonce, prefixInitiate, in.nonce)
	plain, ok := open(make([]byte, 0, len(in.box)-boxOverhead), &out.session, &nonce, in.box)
	if !ok {
		return fmt.Errorf("%w: INITIATE box does not open", ErrCryptographic)
	}
	ip, err := parseInitiatePlain(plain)
	if err != nil {
		return err
	}

	var vk sharedKey
	defer clear(vk[:])
	if err := precompute(&vk, serverShort, (*[KeySize]byte)(&ip.client)); err != nil {
		return fmt.Errorf("curve: INITIATE: client long-term key: %w", err)
	}
	nonceFrom(&nonce, prefixVouch, ip.vouchNonce)
	var vouch [vouchPlainSize]byte
	if _, ok := open(vouch[:0], &vk, &nonce, ip.vouchBox); !ok {
		return fmt.Errorf("%w: INITIATE vouch does not open with client key %s", ErrCryptographic, ip.client)
	}
	if subtle.ConstantTimeCompare(vouch[:KeySize], st.clientShort[:]) != 1 {
		return fmt.Errorf("%w: INITIATE vouch is for another client short-term key", ErrCryptographic)
	}
	if subtle.ConstantTimeCompare(vouch[KeySize:], st.key.public[:]) != 1 {
		return fmt.Errorf("%w: INITIATE vouch names server key %x, the HELLO was made for %s", ErrCryptographic, vouch[KeySize:], st.key.public)
	}
	md, err := zmtp.ParseMetadata(ip.metadata)
	if err != nil {
		return fmt.Errorf("curve: INITIATE metadata: %w (%w)", err, zmtp.ErrProtocol)
	}
	out.nonce = in.nonce
	out.clientKey = ip.client
	out.peer = md
	return nil
}

// produceReady returns a READY body: short nonce n and Box[metadata](S'->C').
func produceReady(k *sharedKey, n uint64, md zmtp.Metadata) ([]byte, error) {
	plain, err := zmtp.AppendMetadata(make([]byte, 0, md.EncodedLen()), md)
	if err != nil {
		return nil, fmt.Errorf("curve: READY metadata: %w", err)
	}
	var nonce [nonceSize]byte
	shortNonceFrom(&nonce, prefixReady, n)
	out := make([]byte, 0, shortNonce+boxOverhead+len(plain))
	out = binary.BigEndian.AppendUint64(out, n)
	return seal(out, k, &nonce, plain), nil
}

// cookieKeys returns the live cookie keys, drawing a new generation when the
// current one has outlived its lifetime. Concurrent callers agree on one.
func (s *Server) cookieKeys() (*cookieKeys, error) {
	for {
		ck := s.cookies.Load()
		now := s.now()
		var age time.Duration
		if ck != nil {
			age = now.Sub(ck.born)
			if age < s.cookieLife {
				return ck, nil
			}
		}
		next := &cookieKeys{born: now}
		if _, err := io.ReadFull(s.rand, next.cur[:]); err != nil {
			return nil, fmt.Errorf("curve: drawing a cookie key: %w", err)
		}
		if ck != nil && age < 2*s.cookieLife {
			next.prev, next.hasPrev = ck.cur, true
		}
		if s.cookies.CompareAndSwap(ck, next) {
			return next, nil
		}
	}
}

// lockedReader serialises reads from a reader that may not be safe for
// concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
