package alert

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

func faultEvent(typ, id string, at time.Duration) events.FaultChange {
	return events.FaultChange{
		Type: typ, ID: id, Endpoint: "GET /x", Percent: 25, LatencyMS: 200, Status: 503,
		Ends: t0.Add(10 * time.Minute), Reason: "game day", Timestamp: t0.Add(at),
	}
}

func TestFaultAlertLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, m, got := following(t, ManagerConfig{})
		bus.Publish(faultEvent(events.TypeFaultStart, "exp-1", 0))
		synctest.Wait()
		all := got.all()
		if len(all) != 1 {
			t.Fatalf("%d alerts, want 1", len(all))
		}
		a := all[0]
		if a.Severity != Info || a.Resolved || a.ID != faultID("exp-1") || !uuidV8.MatchString(a.ID) || !a.Timestamp.Equal(t0) {
			t.Fatalf("fired %+v", a)
		}
		if want := "Fault injection on endpoint 'GET /x': 200ms of delay then status 503 for 25% of calls until 2025-10-08T12:10:00Z: game day"; a.Message != want {
			t.Fatalf("message %q\nwant    %q", a.Message, want)
		}
		md := a.Type.Metadata
		if md[MetaAlertName] != nameFault || md[MetaEndpoint] != "GET /x" || md["fault_id"] != "exp-1" || md["percent"] != "25" ||
			md["status"] != "503" || md["abort"] != "false" || md["latency_ms"] != "200" || md["ends"] != "2025-10-08T12:10:00Z" {
			t.Fatalf("metadata %v", md)
		}
		// Starting the same experiment again adds nothing; another one alerts
		// on its own.
		bus.Publish(faultEvent(events.TypeFaultStart, "exp-1", time.Second))
		bus.Publish(faultEvent(events.TypeFaultStart, "exp-2", time.Second))
		synctest.Wait()
		if n := len(got.all()); n != 2 || len(m.Active()) != 2 {
			t.Fatalf("%d alerts, %d active; want 2, 2", n, len(m.Active()))
		}
		bus.Publish(faultEvent(events.TypeFaultEnd, "exp-1", time.Minute))
		synctest.Wait()
		all = got.all()
		if r := all[len(all)-1]; !r.Resolved || r.ID != faultID("exp-1") || r.ResolvedAt == nil || !r.ResolvedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("resolved %+v", r)
		}
		if act := m.Active(); len(act) != 1 || act[0].ID != faultID("exp-2") {
			t.Fatalf("active %+v", act)
		}
		// Ending it again resolves nothing more.
		bus.Publish(faultEvent(events.TypeFaultEnd, "exp-1", 2*time.Minute))
		synctest.Wait()
		if n := len(got.all()); n != 3 {
			t.Fatalf("%d alerts handed on, want 3", n)
		}
	})
}

// Another instance's experiment, shared through a store, alerts there,
// not here; NoFaultAlerts turns fault alerts off.
func TestFaultAlertsSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		remote := faultEvent(events.TypeFaultStart, "shared", 0)
		remote.Origin = "web-2"
		bus.Publish(remote)
		synctest.Wait()
		if n := len(got.all()); n != 0 {
			t.Fatalf("%d alerts for another instance's experiment", n)
		}
		off, _, offGot := following(t, ManagerConfig{NoFaultAlerts: true})
		off.Publish(faultEvent(events.TypeFaultStart, "x", 0))
		synctest.Wait()
		if n := len(offGot.all()); n != 0 {
			t.Fatalf("%d alerts with NoFaultAlerts", n)
		}
	})
}

// A Manager's experiments reach the alerts through its bus.
func TestFaultAlertsFromTheManager(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		clock := core.NewFakeClock(t0)
		cm, err := core.NewManager(core.ManagerConfig{Bus: bus, Clock: clock, Faults: &core.FaultLimits{}})
		if err != nil {
			t.Fatal(err)
		}
		f, err := cm.StartFault(core.Fault{ID: "abc", Endpoint: "upstream", Percent: 100, Abort: true, Duration: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		clock.Advance(time.Minute) // the experiment expires
		synctest.Wait()
		all := got.all()
		if len(all) != 2 || all[0].ID != faultID(f.ID) || all[0].Resolved || !all[1].Resolved ||
			all[0].Message != "Fault injection on endpoint 'upstream': an aborted connection for 100% of calls until "+formatTime(f.Ends)+": no reason given" {
			t.Fatalf("alerts %+v", all)
		}
	})
}
