package curve

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/zmqauth/zmqauth/zmtp"
)

// ClientConfig configures a CURVE client.
type ClientConfig struct {
	// Key is the client's long-term keypair.
	Key KeyPair
	// ServerKey is the server's long-term public key.
	ServerKey PublicKey
	// Rand is the source of short-term keys and nonces; crypto/rand when nil.
	// Tests may set a deterministic reader; the Client serialises its reads.
	Rand io.Reader
}

// Client is the CURVE mechanism in the client role (a zmtp.Mechanism). One
// Client may run any number of handshakes concurrently, each with its own
// short-term keypair.
type Client struct {
	key    longTermKey
	server PublicKey
	rand   io.Reader
}

var _ zmtp.Mechanism = (*Client)(nil)

// NewClient returns a CURVE client. It parses the client's keypair once and
// rejects a zero or low-order server key.
func NewClient(cfg ClientConfig) (*Client, error) {
	key, err := parseKeyPair(&cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("curve: client key: %w", err)
	}
	if cfg.ServerKey.IsZero() {
		return nil, fmt.Errorf("%w: the server public key is not set", ErrInvalidKey)
	}
	var probe sharedKey
	err = precompute(&probe, key.priv, (*[KeySize]byte)(&cfg.ServerKey))
	clear(probe[:])
	if err != nil {
		return nil, fmt.Errorf("curve: server key: %w", err)
	}
	c := &Client{key: key, server: cfg.ServerKey, rand: rand.Reader}
	if cfg.Rand != nil {
		c.rand = &lockedReader{r: cfg.Rand}
	}
	return c, nil
}

// Name returns "CURVE".
func (c *Client) Name() string { return "CURVE" }

// AsServer returns false.
func (c *Client) AsServer() bool { return false }

// PublicKey returns the client's long-term public key.
func (c *Client) PublicKey() PublicKey { return c.key.public }

// ServerKey returns the server public key the client connects to.
func (c *Client) ServerKey() PublicKey { return c.server }

// String describes the client by its public key and the server's.
func (c *Client) String() string {
	return fmt.Sprintf("CURVE client (key %s, server %s)", c.key.public, c.server)
}

// clientState is one client handshake's keys.
type clientState struct {
	short    *ecdh.PrivateKey // c'
	shortPub PublicKey        // C'
	hello    sharedKey        // c'-S: HELLO and WELCOME boxes
	session  sharedKey        // c'-S': INITIATE, READY, MESSAGE boxes
	cookie   [cookieSize]byte
}

func (st *clientState) erase() {
	clear(st.hello[:])
	clear(st.session[:])
	st.short = nil
}

// Handshake runs the client side: HELLO, WELCOME, INITIATE, READY. A LocalFunc
// in info is called with nil, since INITIATE precedes the server's READY. An
// ERROR from the server is returned as a *zmtp.PeerError.
func (c *Client) Handshake(ctx context.Context, rw zmtp.CommandReadWriter, info zmtp.HandshakeInfo) (*zmtp.HandshakeResult, error) {
	var st clientState
	defer st.erase()
	helloBody, err := c.produceHello(&st)
	if err != nil {
		return nil, err
	}
	if err := rw.WriteCommand(zmtp.Command{Name: zmtp.CmdHello, Body: helloBody}); err != nil {
		return nil, fmt.Errorf("curve: writing HELLO: %w", err)
	}
	body, err := zmtp.ExpectCommand(rw, zmtp.CmdWelcome)
	if err != nil {
		return nil, fmt.Errorf("curve: reading WELCOME: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("curve: handshake: %w", err)
	}
	serverShort, err := c.processWelcome(&st, body)
	if err != nil {
		return nil, err
	}
	local, err := zmtp.LocalProperties(info, nil)
	if err != nil {
		return nil, fmt.Errorf("curve: %w", err)
	}
	initiateBody, err := c.produceInitiate(&st, &serverShort, local)
	if err != nil {
		return nil, err
	}
	if err := rw.WriteCommand(zmtp.Command{Name: zmtp.CmdInitiate, Body: initiateBody}); err != nil {
		return nil, fmt.Errorf("curve: writing INITIATE: %w", err)
	}
	body, err = zmtp.ExpectCommand(rw, zmtp.CmdReady)
	if err != nil {
		return nil, fmt.Errorf("curve: reading READY: %w", err)
	}
	peer, readyNonce, err := processReady(&st.session, body)
	if err != nil {
		return nil, err
	}
	return &zmtp.HandshakeResult{
		Peer:  peer,
		Codec: newCodec(&st.session, prefixMessageC, prefixMessageS, 2, readyNonce),
	}, nil
}

// produceHello draws the short-term keypair and returns the HELLO body with
// short nonce 1.
func (c *Client) produceHello(st *clientState) ([]byte, error) {
	var secret [KeySize]byte
	defer clear(secret[:])
	if _, err := io.ReadFull(c.rand, secret[:]); err != nil {
		return nil, fmt.Errorf("curve: drawing a short-term key: %w", err)
	}
	short, err := parseShortTermKey(secret[:])
	if err != nil {
		return nil, err
	}
	st.short = short
	copy(st.shortPub[:], short.PublicKey().Bytes())
	if err := precompute(&st.hello, short, (*[KeySize]byte)(&c.server)); err != nil {
		return nil, fmt.Errorf("curve: HELLO: %w", err)
	}
	h := hello{clientShort: st.shortPub, nonce: 1}
	var nonce [nonceSize]byte
	shortNonceFrom(&nonce, prefixHello, h.nonce)
	var zeros [helloZeros]byte
	h.box = seal(make([]byte, 0, helloBoxSize), &st.hello, &nonce, zeros[:])
	return appendHello(make([]byte, 0, helloBodySize), &h), nil
}

// processWelcome opens WELCOME's box, keeps the cookie and returns S'.
func (c *Client) processWelcome(st *clientState, body []byte) (PublicKey, error) {
	w, err := parseWelcome(body)
	if err != nil {
		return PublicKey{}, err
	}
	var nonce [nonceSize]byte
	nonceFrom(&nonce, prefixWelcome, w.nonce)
	var plain [welcomePlainSize]byte
	if _, ok := open(plain[:0], &st.hello, &nonce, w.box); !ok {
		return PublicKey{}, fmt.Errorf("%w: WELCOME box does not open with server key %s", ErrCryptographic, c.server)
	}
	copy(st.cookie[:], plain[KeySize:])
	return PublicKey(plain[:KeySize]), nil
}

// produceInitiate returns the INITIATE body with short nonce 2: the cookie
// and Box[C + vouch + metadata](C'->S'), the vouch being Box[C' + S](C->S').
func (c *Client) produceInitiate(st *clientState, serverShort *PublicKey, md zmtp.Metadata) ([]byte, error) {
	if err := precompute(&st.session, st.short, (*[KeySize]byte)(serverShort)); err != nil {
		return nil, fmt.Errorf("curve: WELCOME: server short-term key: %w", err)
	}
	p := initiateParams{claim: c.key.public, signer: c.key.priv, nonce: 2}
	copy(p.vouch[:], st.shortPub[:])
	copy(p.vouch[KeySize:], c.server[:])
	return c.initiateBody(st, serverShort, md, &p)
}

// initiateParams are the parts of an INITIATE a well-behaved client derives
// from its state; tests vary them to forge INITIATEs.
type initiateParams struct {
	vouch  [vouchPlainSize]byte // C' + S
	claim  PublicKey            // the long-term key C written in the box
	signer *ecdh.PrivateKey     // the long-term key that boxes the vouch
	nonce  uint64
}

// initiateBody builds an INITIATE body from st (session key and cookie) and p.
func (c *Client) initiateBody(st *clientState, serverShort *PublicKey, md zmtp.Metadata, p *initiateParams) ([]byte, error) {
	var vk sharedKey
	defer clear(vk[:])
	if err := precompute(&vk, p.signer, (*[KeySize]byte)(serverShort)); err != nil {
		return nil, fmt.Errorf("curve: WELCOME: server short-term key: %w", err)
	}
	plain := make([]byte, initiatePlainMin, initiatePlainMin+md.EncodedLen())
	copy(plain, p.claim[:])
	vouchNonce := plain[KeySize : KeySize+longNonce]
	if _, err := io.ReadFull(c.rand, vouchNonce); err != nil {
		return nil, fmt.Errorf("curve: drawing the vouch nonce: %w", err)
	}
	var nonce [nonceSize]byte
	nonceFrom(&nonce, prefixVouch, vouchNonce)
	seal(plain[KeySize+longNonce:KeySize+longNonce], &vk, &nonce, p.vouch[:])
	plain, err := zmtp.AppendMetadata(plain, md)
	if err != nil {
		return nil, fmt.Errorf("curve: INITIATE metadata: %w", err)
	}
	in := initiate{cookie: st.cookie[:], nonce: p.nonce}
	shortNonceFrom(&nonce, prefixInitiate, in.nonce)
	in.box = seal(make([]byte, 0, len(plain)+boxOverhead), &st.session, &nonce, plain)
	return appendInitiate(make([]byte, 0, cookieSize+shortNonce+len(in.box)), &in), nil
}

// processReady opens READY's box and returns the server's metadata and its
// short nonce.
func processReady(k *sharedKey, body []byte) (zmtp.Metadata, uint64, error) {
	r, err := parseReady(body)
	if err != nil {
		return nil, 0, err
	}
	var nonce [nonceSize]byte
	shortNonceFrom(&nonce, prefixReady, r.nonce)
	plain, ok := open(make([]byte, 0, len(r.box)-boxOverhead), k, &nonce, r.box)
	if !ok {
		return nil, 0, fmt.Errorf("%w: READY box does not open", ErrCryptographic)
	}
	md, err := zmtp.ParseMetadata(plain)
	if err != nil {
		return nil, 0, fmt.Errorf("curve: READY metadata: %w (%w)", err, zmtp.ErrProtocol)
	}
	return md, r.nonce, nil
}
