// Package admin serves the sidecar's admin endpoints over HTTP: /metrics
// (Prometheus), /healthz (liveness: 200 while the process runs) and /readyz
// (readiness: 200 once keys and allowlists are loaded, else 503 with the
// reason), for the probes the injector sets on the sidecar container.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ShutdownTimeout bounds the graceful shutdown when Serve's context ends.
const ShutdownTimeout = 5 * time.Second

// Server is the admin HTTP server.
type Server struct {
	addr    string
	handler http.Handler

	mu sync.Mutex
	ln net.Listener
}

// New returns an admin server for addr (host:port; port 0 picks one) that
// serves gatherer's metrics and asks ready whether the sidecar is ready. A
// nil gatherer serves an empty registry; a nil ready is always ready.
func New(addr string, gatherer prometheus.Gatherer, ready func() error) *Server {
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	if ready == nil {
		ready = func() error { return nil }
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeText(w, http.StatusOK, "ok")
	})
	return &Server{addr: addr, handler: mux}
}

// Handler returns the server's HTTP handler, for tests and for mounting
// elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the address now, so that Addr reports the real port before
// Serve runs. Serve calls it if the caller did not.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("admin: listen: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr returns the address being listened on once Listen or Serve has bound
// it, else the configured address.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Serve serves until ctx ends, then shuts down gracefully (waiting up to
// ShutdownTimeout for requests in flight) and returns nil. It returns an
// error if the address cannot be bound or the server fails. Call it once.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: serve: %w", err)
	}
	return nil
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, text)
}
