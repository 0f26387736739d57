package zmtp

import (
	"fmt"
	"time"
)

// heartbeatLoop sends a PING every interval (ZMTP 3.1 peers only) and closes
// the connection when nothing at all arrives within timeout after one. The
// PING itself is queued for whoever holds the write lock, so a blocked
// writer never stops the timeout from firing.
func (c *Conn) heartbeatLoop(interval, timeout time.Duration) {
	defer close(c.hbDone)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	probe := time.NewTimer(timeout)
	probe.Stop()
	defer probe.Stop()
	armed := false
	var seen int64
	for {
		select {
		case <-c.done:
			return
		case <-ticker.C:
			if !armed {
				seen = c.cr.n.Load()
				probe.Reset(timeout)
				armed = true
			}
			c.pingPending.Store(true)
			c.kickControl()
		case <-probe.C:
			armed = false
			if c.cr.n.Load() != seen {
				continue
			}
			if !c.cr.reading.Load() {
				// Nobody is reading, so silence proves nothing yet.
				probe.Reset(timeout)
				armed = true
				continue
			}
			c.fail(fmt.Errorf("%w: nothing received from %s within %v after a PING", ErrHeartbeatTimeout, c.peer.RemoteAddr, timeout))
			return
		}
	}
}
