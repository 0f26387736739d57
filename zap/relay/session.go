package relay

import (
	"sync"

	"github.com/zmqauth/zmqauth/zmtp"
)

// session is one relayed connection pair: the network side and the
// application side.
type session struct {
	net, app *zmtp.Conn
	// clientKey is the client's long-term CURVE public key (inbound routes);
	// nil when there is none.
	clientKey []byte
	// gen is the registry generation when the handshake started.
	gen       uint64
	closeOnce sync.Once
	revoked   bool // set under the registry lock by CloseWhere
}

// close closes both connections; it is idempotent.
func (s *session) close() {
	s.closeOnce.Do(func() {
		_ = s.net.Close()
		_ = s.app.Close()
	})
}

// registry tracks the live sessions of one route, for revocation and
// shutdown.
type registry struct {
	mu       sync.Mutex
	sessions map[*session]struct{}
	// gen counts CloseWhere sweeps; sweep is the latest predicate. A
	// session whose handshake started before a sweep is checked against it
	// when it registers, so that a key authorized by the old allowlist
	// cannot slip in between the sweep and its registration.
	gen    uint64
	sweep  func(clientKey []byte) bool
	closed bool
}

// generation returns the current sweep generation.
func (r *registry) generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// add registers s. It returns false, and s must be closed, when the route is
// shutting down or a sweep that ran during s's handshake matches its key.
// The second result reports the latter.
func (r *registry) add(s *session) (ok, revoked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false, false
	}
	if s.clientKey != nil && s.gen != r.gen && r.sweep != nil && r.sweep(s.clientKey) {
		return false, true
	}
	if r.sessions == nil {
		r.sessions = make(map[*session]struct{})
	}
	r.sessions[s] = struct{}{}
	return true, false
}

// remove forgets s.
func (r *registry) remove(s *session) {
	r.mu.Lock()
	delete(r.sessions, s)
	r.mu.Unlock()
}

// closeWhere closes the sessions whose client key matches and returns how
// many it closed. Sessions without a client key never match.
func (r *registry) closeWhere(match func(clientKey []byte) bool) int {
	var hit []*session
	r.mu.Lock()
	r.gen++
	r.sweep = match
	for s := range r.sessions {
		if s.clientKey != nil && !s.revoked && match(s.clientKey) {
			s.revoked = true
			hit = append(hit, s)
		}
	}
	r.mu.Unlock()
	for _, s := range hit {
		s.close()
	}
	return len(hit)
}

// closeAll closes every session and refuses new ones.
func (r *registry) closeAll() {
	r.mu.Lock()
	r.closed = true
	all := make([]*session, 0, len(r.sessions))
	for s := range r.sessions {
		all = append(all, s)
	}
	r.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

// clientKeys returns the client keys of the live sessions that have one.
func (r *registry) clientKeys() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([][]byte, 0, len(r.sessions))
	for s := range r.sessions {
		if s.clientKey != nil && !s.revoked {
			keys = append(keys, s.clientKey)
		}
	}
	return keys
}

// count returns the number of live sessions.
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}
