package bulwarkotel

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/bulwark-go/bulwark/core"
)

// durationPoints returns bulwark.request.duration's data points by
// endpoint.
func durationPoints(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.HistogramDataPoint[float64] {
	t.Helper()
	out := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, m := range collect(t, r) {
		if m.Name != "bulwark.request.duration" {
			continue
		}
		for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
			ep, _ := dp.Attributes.Value(keyEndpoint)
			out[ep.AsString()] = dp
		}
	}
	return out
}

// histogramOf is what a histogram with bounds holds after values.
type histogramOf struct {
	count    uint64
	sum      float64
	min, max float64
	buckets  []uint64
}

func expectHistogram(bounds []float64, values []float64) histogramOf {
	h := histogramOf{buckets: make([]uint64, len(bounds)+1), min: values[0], max: values[0]}
	for _, v := range values {
		h.count++
		h.sum += v
		h.min, h.max = min(h.min, v), max(h.max, v)
		h.buckets[sort.SearchFloat64s(bounds, v)]++
	}
	return h
}

func checkPoint(t *testing.T, name string, dp metricdata.HistogramDataPoint[float64], want histogramOf) {
	t.Helper()
	gotMin, _ := dp.Min.Value()
	gotMax, _ := dp.Max.Value()
	if dp.Count != want.count || gotMin != want.min || gotMax != want.max {
		t.Errorf("%s: count %d min %v max %v, want %d, %v, %v", name, dp.Count, gotMin, gotMax, want.count, want.min, want.max)
	}
	// The sum's terms arrive in another order than ours.
	if d := dp.Sum - want.sum; d > 1e-9 || d < -1e-9 {
		t.Errorf("%s: sum %v, want %v", name, dp.Sum, want.sum)
	}
	for i := range want.buckets {
		if dp.BucketCounts[i] != want.buckets[i] {
			t.Errorf("%s: bucket %d (≤ %v) holds %d, want %d", name, i, dp.Bounds[min(i, len(dp.Bounds)-1)], dp.BucketCounts[i], want.buckets[i])
		}
	}
}

// Durations kept per processor reach the histogram exactly as measured:
// those whose shard filled on the way, and at collection those still
// waiting in a shard.
func TestBatchedDurationsAreExact(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	tel, r := newTelemetry(t, Config{Manager: m})
	names := []string{"GET /a", "GET /b"}
	for _, n := range names {
		endpoint(t, m, n)
	}
	obs := tel.Observer()
	const workers, each = 4, 1001 // not a multiple of the batch: some wait for the collection
	// Durations from 0.1 ms to 100 ms, a different series per endpoint.
	durs := make([][]time.Duration, len(names))
	values := make([][]float64, len(names))
	for i := range names {
		for j := range workers * each {
			d := time.Duration(j%997+1+i) * 100 * time.Microsecond
			durs[i] = append(durs[i], d)
			values[i] = append(values[i], d.Seconds())
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range each {
				for i, n := range names {
					obs.Done(context.Background(), n, core.Success, durs[i][w*each+k])
				}
			}
		})
	}
	wg.Wait()
	pts := durationPoints(t, r)
	for i, n := range names {
		dp, ok := pts[n]
		if !ok {
			t.Fatalf("no duration point for %s", n)
		}
		checkPoint(t, n, dp, expectHistogram(dp.Bounds, values[i]))
	}

	// Three more, fewer than a batch: the next collection has them.
	for range 3 {
		obs.Done(context.Background(), "GET /a", core.Success, 2*time.Millisecond)
		values[0] = append(values[0], (2 * time.Millisecond).Seconds())
	}
	dp := durationPoints(t, r)["GET /a"]
	checkPoint(t, "GET /a after three more", dp, expectHistogram(dp.Bounds, values[0]))
}

// Close records the durations still waiting in shards.
func TestCloseRecordsWaitingDurations(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	tel, r := newTelemetry(t, Config{Manager: m})
	endpoint(t, m, "GET /x")
	obs := tel.Observer()
	const calls = 3*batchSize + 5
	for range calls {
		obs.Done(context.Background(), "GET /x", core.Success, time.Millisecond)
	}
	if err := tel.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := durationPoints(t, r)["GET /x"].Count; n != calls {
		t.Fatalf("%d durations recorded after Close, want %d", n, calls)
	}
}

// Closing while calls finish loses none that finished before Close began.
func TestCloseWhileRecording(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	tel, r := newTelemetry(t, Config{Manager: m})
	endpoint(t, m, "GET /x")
	obs := tel.Observer()
	var finished atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				obs.Done(context.Background(), "GET /x", core.Success, time.Millisecond)
				finished.Add(1)
			}
		})
	}
	for finished.Load() < 10*batchSize+7 {
		runtime.Gosched() // let the writers run
	}
	before := finished.Load()
	if err := tel.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	dp := durationPoints(t, r)["GET /x"]
	if dp.Count < before || dp.Count > finished.Load() {
		t.Fatalf("%d durations recorded; %d calls had finished before Close and %d in all", dp.Count, before, finished.Load())
	}
}
