//go:build !unix

package zmtp

import "net"

// waitReadable has no portable implementation: reads block in Read,
// holding their buffer.
func waitReadable(net.Conn) func() error { return nil }
