// Package metrics holds the sidecar's Prometheus metrics, namespace
// zmqauth_sidecar: handshakes, sessions, relayed traffic, allowlist reloads
// and revocations.
//
// Every label value is bounded: routes and reload sources are names from the
// sidecar's configuration, results, reasons and directions come from the
// fixed sets below (anything else is recorded as "other" or "failed"), and
// no label ever carries a key, an address or an identity.
//
// A nil *Metrics is valid and records nothing, so packages that take one work
// without metrics in tests.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric name.
const Namespace = "zmqauth_sidecar"

// Handshake results, the values of the "result" label.
const (
	// ResultAccepted is a handshake whose client key is in the allowlist.
	ResultAccepted = "accepted"
	// ResultRefused is a handshake the policy refused (ZAP status other than 200).
	ResultRefused = "refused"
	// ResultAuditPass is a handshake accepted in audit mode although its
	// client key is not in the allowlist.
	ResultAuditPass = "audit_pass"
	// ResultFailed is a handshake that failed before or apart from the
	// policy's decision: protocol error, timeout, wrong server key, I/O.
	ResultFailed = "failed"
)

// Handshake reasons, the values of the "reason" label.
const (
	// ReasonAllowlisted: the client key is in the allowlist.
	ReasonAllowlisted = "allowlisted"
	// ReasonNotInAllowlist: the client key is not in the allowlist.
	ReasonNotInAllowlist = "not_in_allowlist"
	// ReasonNotLoaded: no allowlist has been loaded yet (fail closed).
	ReasonNotLoaded = "allowlist_not_loaded"
	// ReasonMechanism: the client used a mechanism other than CURVE.
	ReasonMechanism = "mechanism"
	// ReasonMalformedKey: the client key handed to the policy is not 32 bytes.
	ReasonMalformedKey = "malformed_key"
	// ReasonServerKey: the client's HELLO was made for a server key this
	// side does not hold.
	ReasonServerKey = "wrong_server_key"
	// ReasonProtocol: the peer broke the ZMTP or CURVE protocol.
	ReasonProtocol = "protocol_error"
	// ReasonTimeout: the handshake deadline passed.
	ReasonTimeout = "timeout"
	// ReasonIO: the connection failed (reset, closed) during the handshake.
	ReasonIO = "io_error"
	// ReasonUpstream: the other end of the relay (the application, or the
	// remote server) could not be reached or refused us.
	ReasonUpstream = "upstream_error"
	// ReasonBusy: the route already had as many handshakes in progress as
	// it allows, so the connection was closed as soon as it was accepted.
	ReasonBusy = "busy"
	// ReasonOther is recorded for any reason outside this set.
	ReasonOther = "other"
)

// Relay directions, the values of the "direction" label.
const (
	// DirectionIn is traffic from the network peer towards the application.
	DirectionIn = "in"
	// DirectionOut is traffic from the application towards the network peer.
	DirectionOut = "out"
)

var (
	knownResults = map[string]bool{
		ResultAccepted: true, ResultRefused: true, ResultAuditPass: true, ResultFailed: true,
	}
	knownReasons = map[string]bool{
		ReasonAllowlisted: true, ReasonNotInAllowlist: true, ReasonNotLoaded: true,
		ReasonMechanism: true, ReasonMalformedKey: true, ReasonServerKey: true,
		ReasonProtocol: true, ReasonTimeout: true, ReasonIO: true, ReasonUpstream: true,
		ReasonBusy: true, ReasonOther: true,
	}
)

// Metrics records the sidecar's metrics. Its methods are safe for concurrent
// use and do nothing on a nil *Metrics.
type Metrics struct {
	handshakes    *prometheus.CounterVec
	sessions      *prometheus.GaugeVec
	bytes         *prometheus.CounterVec
	messages      *prometheus.CounterVec
	allowlistSize *prometheus.GaugeVec
	lastReload    *prometheus.GaugeVec
	reloadErrors  *prometheus.CounterVec
	revoked       *prometheus.CounterVec
}

// New creates the metrics and registers them with reg (never the global
// registry unless the caller passes it). A nil reg leaves them unregistered.
// Registering twice with the same registry panics, as prometheus.MustRegister
// does: that is a programming error.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "handshakes_total",
			Help:      "CURVE handshakes by route, result (accepted, refused, audit_pass, failed) and reason.",
		}, []string{"route", "result", "reason"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "sessions_active",
			Help:      "Relayed sessions currently open, by route.",
		}, []string{"route"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "relayed_bytes_total",
			Help:      "Message payload bytes relayed, by route and direction (in: towards the application, out: towards the network).",
		}, []string{"route", "direction"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "relayed_messages_total",
			Help:      "Messages relayed, by route and direction (in: towards the application, out: towards the network).",
		}, []string{"route", "direction"}),
		allowlistSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "allowlist_keys",
			Help:      "Client keys in the allowlist in force, by route.",
		}, []string{"route"}),
		lastReload: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "allowlist_last_reload_timestamp_seconds",
			Help:      "Unix time of the last successful allowlist load, by route.",
		}, []string{"route"}),
		reloadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "reload_errors_total",
			Help:      "Failed reloads of keys or allowlists, by source; the last good copy stays in force.",
		}, []string{"source"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "sessions_revoked_total",
			Help:      "Live sessions closed because their client key left the allowlist, by route.",
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.handshakes, m.sessions, m.bytes, m.messages,
			m.allowlistSize, m.lastReload, m.reloadErrors, m.revoked)
	}
	return m
}

// Handshake counts one handshake outcome. result is one of the Result
// constants (anything else is counted as ResultFailed) and reason one of the
// Reason constants (anything else is counted as ReasonOther).
func (m *Metrics) Handshake(route, result, reason string) {
	if m == nil {
		return
	}
	if !knownResults[result] {
		result = ResultFailed
	}
	if !knownReasons[reason] {
		reason = ReasonOther
	}
	m.handshakes.WithLabelValues(route, result, reason).Inc()
}

// SessionOpened counts a relayed session as active.
func (m *Metrics) SessionOpened(route string) {
	if m == nil {
		return
	}
	m.sessions.WithLabelValues(route).Inc()
}

// SessionClosed counts a relayed session as no longer active.
func (m *Metrics) SessionClosed(route string) {
	if m == nil {
		return
	}
	m.sessions.WithLabelValues(route).Dec()
}

// Relayed counts msgs messages of bytes payload bytes relayed in direction
// (DirectionIn or DirectionOut; anything else is counted as "other").
// Negative counts are ignored.
func (m *Metrics) Relayed(route, direction string, msgs, bytes int) {
	if m == nil {
		return
	}
	if direction != DirectionIn && direction != DirectionOut {
		direction = ReasonOther
	}
	if msgs > 0 {
		m.messages.WithLabelValues(route, direction).Add(float64(msgs))
	}
	if bytes > 0 {
		m.bytes.WithLabelValues(route, direction).Add(float64(bytes))
	}
}

// AllowlistLoaded records a successful allowlist load: its size and when.
func (m *Metrics) AllowlistLoaded(route string, size int, at time.Time) {
	if m == nil {
		return
	}
	m.allowlistSize.WithLabelValues(route).Set(float64(size))
	m.lastReload.WithLabelValues(route).Set(float64(at.UnixNano()) / 1e9)
}

// ReloadError counts a failed reload. source names what failed to load, a
// fixed name from the configuration such as "keys" or "allowlist:ROUTE",
// never a key.
func (m *Metrics) ReloadError(source string) {
	if m == nil {
		return
	}
	m.reloadErrors.WithLabelValues(source).Inc()
}

// Revoked counts n live sessions closed because their key left the allowlist.
func (m *Metrics) Revoked(route string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.revoked.WithLabelValues(route).Add(float64(n))
}
