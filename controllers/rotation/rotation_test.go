package rotation

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zmqauth/zmqauth/api/v1alpha1"
	"github.com/zmqauth/zmqauth/controllers/keys"
	"github.com/zmqauth/zmqauth/controllers/secretlayout"
	"github.com/zmqauth/zmqauth/keygen"
)

func pair(t *testing.T) keygen.KeyPair {
	t.Helper()
	kp, err := keygen.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestNextStep(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cur, prev := pair(t), pair(t)
	steady := secretlayout.State{Current: cur, Revision: 3, RotatedAt: t0, RotationRequest: "a"}
	overlap := steady
	overlap.Previous, overlap.OverlapUntil = &prev, t0.Add(time.Hour)
	const period, delay = 24 * time.Hour, 2 * time.Minute
	// staged: request "b" staged nxt a day after t0 (past the period end).
	nxt := pair(t)
	staged := steady
	staged.Next, staged.NextSince = &nxt, t0.Add(period+time.Second)
	staged.RotationRequest, staged.RotationReason = "b", v1alpha1.ReasonRotationRequested
	// stagedOverlap: request "b" staged nxt during the overlap of the
	// rotation before; stagedNoOverlap is it after that overlap ended.
	stagedOverlap := overlap
	stagedOverlap.Next, stagedOverlap.NextSince = &nxt, t0.Add(time.Minute)
	stagedOverlap.RotationRequest, stagedOverlap.RotationReason = "b", v1alpha1.ReasonRotationRequested
	stagedNoOverlap := stagedOverlap
	stagedNoOverlap.Previous, stagedNoOverlap.OverlapUntil = nil, time.Time{}
	tests := []struct {
		name        string
		kind        keys.Kind
		st          secretlayout.State
		now         time.Time
		request     string
		scheduled   bool
		overlap     time.Duration
		wantReason  string
		wantPrevSec bool
		delay       time.Duration // the propagation delay; 0: no staging
	}{
		{"nothing due", keys.ServerKind(), steady, t0.Add(time.Hour), "a", true, time.Hour, "", false, 0},
		{"same request again", keys.ServerKind(), steady, t0.Add(time.Hour), "a", true, time.Hour, "", false, 0},
		{"request removed", keys.ServerKind(), steady, t0.Add(time.Hour), "", true, time.Hour, "", false, 0},
		{"new request", keys.ServerKind(), steady, t0.Add(time.Hour), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, true, 0},
		{"new request, client", keys.ClientKind(), steady, t0.Add(time.Hour), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, false, 0},
		{"period over", keys.ServerKind(), steady, t0.Add(period), "a", true, time.Hour, v1alpha1.ReasonRotationScheduled, true, 0},
		{"period over, not scheduled", keys.ServerKind(), steady, t0.Add(period), "a", false, time.Hour, "", false, 0},
		{"zero overlap", keys.ServerKind(), steady, t0.Add(period), "a", true, 0, v1alpha1.ReasonRotationScheduled, false, 0},
		{"in overlap", keys.ServerKind(), overlap, t0.Add(time.Minute), "a", true, time.Hour, "", false, 0},
		{"overlap over", keys.ServerKind(), overlap, t0.Add(time.Hour), "a", true, time.Hour, v1alpha1.ReasonOverlapEnded, false, 0},
		{"overlap over beats a request", keys.ServerKind(), overlap, t0.Add(2 * time.Hour), "b", true, time.Hour, v1alpha1.ReasonOverlapEnded, false, 0},
		{"request during overlap", keys.ServerKind(), overlap, t0.Add(time.Minute), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, true, 0},
		// Staged rotation (a propagation delay): a due rotation first stages
		// the next keypair beside the current one, and the switch to it
		// comes once the delay has passed since it was staged.
		{"new request, staged", keys.ServerKind(), steady, t0.Add(time.Hour), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, false, delay},
		{"new request, staged at a fraction of a second", keys.ServerKind(), steady, t0.Add(time.Hour + 300*time.Millisecond), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, false, delay},
		{"period over, staged, client", keys.ClientKind(), steady, t0.Add(period), "a", true, time.Hour, v1alpha1.ReasonRotationScheduled, false, delay},
		{"period over, not scheduled, not staged", keys.ServerKind(), steady, t0.Add(period), "a", false, time.Hour, "", false, delay},
		{"request during overlap, staged", keys.ServerKind(), overlap, t0.Add(time.Minute), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, false, delay},
		{"staged, delay not over", keys.ServerKind(), staged, staged.NextSince.Add(delay - time.Second), "b", true, time.Hour, "", false, delay},
		{"staged, period over, delay not over: no second key", keys.ServerKind(), staged, staged.NextSince.Add(time.Second), "b", true, time.Hour, "", false, delay},
		{"staged, newer request waits for the switch", keys.ServerKind(), staged, staged.NextSince.Add(time.Second), "c", true, time.Hour, "", false, delay},
		{"staged, delay over: switch", keys.ServerKind(), staged, staged.NextSince.Add(delay), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, true, delay},
		{"staged, delay over: switch, client", keys.ClientKind(), staged, staged.NextSince.Add(delay), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, false, delay},
		{"staged, delay over: switch, zero overlap", keys.ServerKind(), staged, staged.NextSince.Add(delay), "b", true, 0, v1alpha1.ReasonRotationRequested, false, delay},
		{"staged, switch even when no longer scheduled", keys.ServerKind(), staged, staged.NextSince.Add(time.Hour), "b", false, time.Hour, v1alpha1.ReasonRotationRequested, true, delay},
		{"staged in overlap, overlap over first", keys.ServerKind(), stagedOverlap, t0.Add(time.Hour), "b", true, time.Hour, v1alpha1.ReasonOverlapEnded, false, delay},
		{"staged in overlap, then switch", keys.ServerKind(), stagedNoOverlap, stagedOverlap.NextSince.Add(delay), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, true, delay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reconciler{Kind: tt.kind, PropagationDelay: tt.delay}
			obj := tt.kind.NewObject()
			obj.SetAnnotations(map[string]string{v1alpha1.AnnotationRotate: tt.request})
			next, reason, err := r.nextStep(obj, tt.st, tt.now, period, tt.overlap, tt.scheduled)
			if err != nil {
				t.Fatal(err)
			}
			if reason != tt.wantReason {
				t.Fatalf("reason %q, want %q", reason, tt.wantReason)
			}
			switch {
			case reason == "":
				if next != nil {
					t.Fatal("a state to write without a reason")
				}
			case reason == v1alpha1.ReasonOverlapEnded:
				if next.InOverlap() || next.Current.Public != tt.st.Current.Public || next.Revision != tt.st.Revision {
					t.Fatalf("overlap end changed more than the previous key: %+v", next)
				}
				if !samePair(next.Next, tt.st.Next) || !next.NextSince.Equal(tt.st.NextSince) {
					t.Fatal("overlap end changed the staged next key")
				}
			case tt.st.Next == nil && tt.delay > 0:
				checkStaged(t, tt.st, *next, tt.now, tt.request, reason)
			default:
				want := tt.st.Current.Public // the old key, which must change
				if next.Revision != tt.st.Revision+1 || next.Current.Public == want {
					t.Fatalf("rotation: revision %d key unchanged=%v", next.Revision, next.Current.Public == want)
				}
				request := tt.request
				if tt.st.Next != nil {
					// The switch: to the staged key, answering what the
					// staging answered, and nothing staged any more.
					if !samePair(&next.Current, tt.st.Next) {
						t.Fatal("the switch did not make the staged keypair current")
					}
					if next.Next != nil || !next.NextSince.IsZero() {
						t.Fatalf("still staged after the switch: %v since %v", next.Next != nil, next.NextSince)
					}
					request = tt.st.RotationRequest
				}
				if next.RotationRequest != request || next.RotationReason != reason || !next.RotatedAt.Equal(tt.now) {
					t.Fatalf("rotation bookkeeping %+v", next)
				}
				if tt.overlap == 0 {
					if next.InOverlap() {
						t.Fatal("zero overlap kept a previous key")
					}
					return
				}
				if next.Previous == nil || next.Previous.Public != tt.st.Current.Public || !next.OverlapUntil.Equal(tt.now.Add(tt.overlap)) {
					t.Fatalf("previous %+v until %v", next.Previous, next.OverlapUntil)
				}
				if got := !next.Previous.Secret.IsZero(); got != tt.wantPrevSec {
					t.Fatalf("previous secret kept = %v, want %v", got, tt.wantPrevSec)
				}
				if tt.wantPrevSec && !next.Previous.Secret.Equal(tt.st.Current.Secret) {
					t.Fatal("previous secret is not the old current secret")
				}
			}
		})
	}
}

// checkStaged checks a staging step from st at now: a new keypair staged as
// next, stamped now rounded up to the second (so the switch never comes
// early), the request answered, and the current and previous keys as they
// were.
func checkStaged(t *testing.T, st, next secretlayout.State, now time.Time, request, reason string) {
	t.Helper()
	if next.Next == nil || next.Next.Public == st.Current.Public || next.Next.Secret.IsZero() {
		t.Fatal("staging did not stage a new keypair")
	}
	if !samePair(&next.Current, &st.Current) || next.Revision != st.Revision || !next.RotatedAt.Equal(st.RotatedAt) {
		t.Fatalf("staging changed the current key: revision %d rotated-at %v", next.Revision, next.RotatedAt)
	}
	if !samePair(next.Previous, st.Previous) || !next.OverlapUntil.Equal(st.OverlapUntil) {
		t.Fatal("staging changed the previous key or its overlap")
	}
	since := now.Truncate(time.Second)
	if !since.Equal(now) {
		since = since.Add(time.Second)
	}
	if !next.NextSince.Equal(since) {
		t.Fatalf("next-since %v, want %v (now %v rounded up)", next.NextSince, since, now)
	}
	if next.RotationRequest != request || next.RotationReason != reason {
		t.Fatalf("staging bookkeeping: request %q reason %q", next.RotationRequest, next.RotationReason)
	}
}

// samePair reports whether a and b are both nil or the same keypair.
func samePair(a, b *keygen.KeyPair) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Public == b.Public && a.Secret.Equal(b.Secret)
}

func TestWake(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cur, prev := pair(t), pair(t)
	steady := secretlayout.State{Current: cur, Revision: 1, RotatedAt: t0}
	overlap := steady
	overlap.Previous, overlap.OverlapUntil = &prev, t0.Add(time.Hour)
	staged := steady
	staged.Next, staged.NextSince = &prev, t0.Add(24*time.Hour+time.Second)
	r := &Reconciler{PropagationDelay: 2 * time.Minute}
	tests := []struct {
		name      string
		st        secretlayout.State
		now       time.Time
		scheduled bool
		want      time.Duration
	}{
		{"unscheduled steady: never", steady, t0, false, 0},
		{"scheduled: at period end", steady, t0.Add(time.Hour), true, 23 * time.Hour},
		{"overlap first", overlap, t0.Add(time.Minute), true, 59 * time.Minute},
		{"overlap unscheduled", overlap, t0.Add(time.Minute), false, 59 * time.Minute},
		{"overdue: soon", steady, t0.Add(48 * time.Hour), true, 100 * time.Millisecond},
		{"staged after the period: at the switch", staged, t0.Add(24*time.Hour + 2*time.Second), true, 2*time.Minute - time.Second},
		{"staged, switch overdue: soon", staged, t0.Add(25 * time.Hour), true, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.wake(tt.st, tt.now, 24*time.Hour, tt.scheduled); got != tt.want {
				t.Fatalf("wake = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	d := func(s string) *metav1.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.Duration{Duration: v}
	}
	tests := []struct {
		name            string
		spec            *v1alpha1.RotationSpec
		period, overlap time.Duration
		scheduled       bool
	}{
		{"no rotation block", nil, 720 * time.Hour, 24 * time.Hour, false},
		{"empty block: defaults", &v1alpha1.RotationSpec{}, 720 * time.Hour, 24 * time.Hour, true},
		{"explicit", &v1alpha1.RotationSpec{Period: d("1h"), Overlap: d("10m")}, time.Hour, 10 * time.Minute, true},
		{"zero overlap", &v1alpha1.RotationSpec{Period: d("1h"), Overlap: d("0s")}, time.Hour, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, o, s := keys.Schedule(tt.spec)
			if p != tt.period || o != tt.overlap || s != tt.scheduled {
				t.Fatalf("Schedule = %v %v %v", p, o, s)
			}
		})
	}
}
