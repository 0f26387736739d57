//go:build !unix

package zmtp

import "net"

// idleReader has no portable implementation: reads block in Read, holding
// their buffer.
type idleReader struct{}

// newIdleReader returns nil: there is no idle reader on this platform.
func newIdleReader(net.Conn) *idleReader { return nil }

func (*idleReader) read(*readBuffer) (int, error) { panic("zmtp: no idle reader") }
