package zmtp

import (
	"fmt"
	"strings"
)

// socketPeers returns, for a socket type of RFC 23 and 37 (upper case), the
// peer types it may talk to (RFC 37's table; libzmq enforces the same), and
// false for an unknown type.
func socketPeers(t string) ([]string, bool) {
	switch t {
	case "REQ":
		return []string{"REP", "ROUTER"}, true
	case "REP":
		return []string{"REQ", "DEALER"}, true
	case "DEALER":
		return []string{"REP", "DEALER", "ROUTER"}, true
	case "ROUTER":
		return []string{"REQ", "DEALER", "ROUTER"}, true
	case "PUB", "XPUB":
		return []string{"SUB", "XSUB"}, true
	case "SUB", "XSUB":
		return []string{"PUB", "XPUB"}, true
	case "PUSH":
		return []string{"PULL"}, true
	case "PULL":
		return []string{"PUSH"}, true
	case "PAIR":
		return []string{"PAIR"}, true
	case "CLIENT":
		return []string{"SERVER"}, true
	case "SERVER":
		return []string{"CLIENT"}, true
	case "RADIO":
		return []string{"DISH"}, true
	case "DISH":
		return []string{"RADIO"}, true
	case "SCATTER":
		return []string{"GATHER"}, true
	case "GATHER":
		return []string{"SCATTER"}, true
	case "PEER":
		return []string{"PEER"}, true
	case "CHANNEL":
		return []string{"CHANNEL"}, true
	}
	return nil, false
}

// ValidSocketType reports whether s names a ZMTP socket type (compared
// without regard to case).
func ValidSocketType(s string) bool {
	_, ok := socketPeers(strings.ToUpper(s))
	return ok
}

// SocketTypesCompatible reports whether a socket of type ours may talk to a
// peer of type peer, per RFC 37's table. Names are compared without regard
// to case; unknown names are never compatible.
func SocketTypesCompatible(ours, peer string) bool {
	peers, ok := socketPeers(strings.ToUpper(ours))
	if !ok {
		return false
	}
	for _, p := range peers {
		if strings.EqualFold(p, peer) {
			return true
		}
	}
	return false
}

// checkPeerSocketType verifies that the peer announced a Socket-Type and,
// when ours is not empty, that it is compatible with ours.
func checkPeerSocketType(ours string, peer Metadata) (string, error) {
	v, ok := peer.Get(PropSocketType)
	if !ok {
		return "", fmt.Errorf("%w: peer announced no Socket-Type property", ErrSocketType)
	}
	st := string(v)
	if !ValidSocketType(st) {
		return "", fmt.Errorf("%w: peer announced unknown socket type %q", ErrSocketType, st)
	}
	if ours != "" && !SocketTypesCompatible(ours, st) {
		return "", fmt.Errorf("%w: a %s socket cannot talk to a %s peer", ErrSocketType, strings.ToUpper(ours), strings.ToUpper(st))
	}
	return st, nil
}
