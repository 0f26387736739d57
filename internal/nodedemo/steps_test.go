package nodedemo

import "testing"

// TestLastSummary: the rotation's counts come from lines where no request
// was in flight, so that sent and received compare exactly; the client's
// other output (lost requests on stderr) is skipped.
func TestLastSummary(t *testing.T) {
	log := `{"sent":3,"received":3,"lost":0,"connections":1,"user_ids":["ns/c"]}
req-client: request 4 lost: no reply in time
{"sent":5,"received":3,"lost":1,"connections":2,"user_ids":["ns/c"]}
{"sent":6,"received":4,"lost":1,"connections":2,"user_ids":["ns/c"]}
`
	s, ok := lastSummary(log, true)
	if !ok || s.Sent != 3 || s.Received != 3 {
		t.Errorf("last settled line: %+v (%v), want the first (sent 3, received 3)", s, ok)
	}
	s, ok = lastSummary(log, false)
	if !ok || s.Sent != 6 || s.Received != 4 || s.Lost != 1 || s.Connections != 2 || s.settled() {
		t.Errorf("last line: %+v (%v), want sent 6, received 4, lost 1, in flight", s, ok)
	}
	if _, ok := lastSummary("req-client: connecting\n", false); ok {
		t.Error("a log without a summary line has one")
	}
}

// TestReadyColumn reads a pod's READY from `kubectl get pods`.
func TestReadyColumn(t *testing.T) {
	table := `NAME                      READY   STATUS    RESTARTS   AGE
caller-645c78856b-hxjv9   2/2     Running   0          3s
echo-775fd4f7f8-4plqp     1/2     Running   0          3s
`
	if got := readyColumn(table, "caller-645c78856b-hxjv9"); got != "2/2" {
		t.Errorf("caller: %q, want 2/2", got)
	}
	if got := readyColumn(table, "echo-775fd4f7f8-4plqp"); got != "1/2" {
		t.Errorf("echo: %q, want 1/2", got)
	}
	if got := readyColumn(table, "echo"); got != "" {
		t.Errorf("a name that is no pod's: %q, want none", got)
	}
}
