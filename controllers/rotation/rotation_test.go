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
	const period = 24 * time.Hour
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
	}{
		{"nothing due", keys.ServerKind(), steady, t0.Add(time.Hour), "a", true, time.Hour, "", false},
		{"same request again", keys.ServerKind(), steady, t0.Add(time.Hour), "a", true, time.Hour, "", false},
		{"request removed", keys.ServerKind(), steady, t0.Add(time.Hour), "", true, time.Hour, "", false},
		{"new request", keys.ServerKind(), steady, t0.Add(time.Hour), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, true},
		{"new request, client", keys.ClientKind(), steady, t0.Add(time.Hour), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, false},
		{"period over", keys.ServerKind(), steady, t0.Add(period), "a", true, time.Hour, v1alpha1.ReasonRotationScheduled, true},
		{"period over, not scheduled", keys.ServerKind(), steady, t0.Add(period), "a", false, time.Hour, "", false},
		{"zero overlap", keys.ServerKind(), steady, t0.Add(period), "a", true, 0, v1alpha1.ReasonRotationScheduled, false},
		{"in overlap", keys.ServerKind(), overlap, t0.Add(time.Minute), "a", true, time.Hour, "", false},
		{"overlap over", keys.ServerKind(), overlap, t0.Add(time.Hour), "a", true, time.Hour, v1alpha1.ReasonOverlapEnded, false},
		{"overlap over beats a request", keys.ServerKind(), overlap, t0.Add(2 * time.Hour), "b", true, time.Hour, v1alpha1.ReasonOverlapEnded, false},
		{"request during overlap", keys.ServerKind(), overlap, t0.Add(time.Minute), "b", true, time.Hour, v1alpha1.ReasonRotationRequested, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reconciler{Kind: tt.kind}
			obj := tt.kind.NewObject()
			obj.SetAnnotations(map[string]string{v1alpha1.AnnotationRotate: tt.request})
			next, reason, err := r.nextStep(obj, tt.st, tt.now, period, tt.overlap, tt.scheduled)
			if err != nil {
				t.Fatal(err)
			}
			if reason != tt.wantReason {
				t.Fatalf("reason %q, want %q", reason, tt.wantReason)
			}
			switch reason {
			case "":
				if next != nil {
					t.Fatal("a state to write without a reason")
				}
			case v1alpha1.ReasonOverlapEnded:
				if next.InOverlap() || next.Current.Public != tt.st.Current.Public || next.Revision != tt.st.Revision {
					t.Fatalf("overlap end changed more than the previous key: %+v", next)
				}
			default:
				if next.Revision != tt.st.Revision+1 || next.Current.Public == tt.st.Current.Public {
					t.Fatalf("rotation: revision %d key unchanged=%v", next.Revision, next.Current.Public == tt.st.Current.Public)
				}
				if next.RotationRequest != tt.request || next.RotationReason != reason || !next.RotatedAt.Equal(tt.now) {
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
