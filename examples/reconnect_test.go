package examples_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestRequestClientReconnectsEvery: with --reconnect-every N the REQ client
// opens a new connection after every N requests (each a new CURVE session
// behind a sidecar) and loses nothing doing so.
func TestRequestClientReconnectsEvery(t *testing.T) {
	for _, tc := range []struct {
		every, count, wantConnections int
	}{
		{every: 0, count: 12, wantConnections: 1},
		{every: 4, count: 12, wantConnections: 3},
		{every: 5, count: 12, wantConnections: 3},
	} {
		t.Run(fmt.Sprintf("every %d", tc.every), func(t *testing.T) {
			bin := programs(t)
			ep := freePort(t)
			server := start(t, "rep-server", filepath.Join(bin, "rep-server"), "--bind", ep)
			waitListening(t, ep)
			client := start(t, "req-client", filepath.Join(bin, "req-client"), "--connect", ep,
				"--interval", "5ms", "--timeout", "2s", "--count", fmt.Sprint(tc.count), "--reconnect-every", fmt.Sprint(tc.every))
			client.wait(t, 30*time.Second)
			var st struct {
				Sent, Received, Lost, Connections int
			}
			client.lastJSON(t, &st)
			if st.Sent != tc.count || st.Received != tc.count || st.Lost != 0 || st.Connections != tc.wantConnections {
				t.Errorf("client's final line %+v: want %d sent and received over %d connections", st, tc.count, tc.wantConnections)
			}
			server.stop(t)
		})
	}
}
